//! `PolicyDirectory` over the cluster: the AdaptivePolicies of a watch cache (valid specs only,
//! none that shares its target with another) and each target's configuration in force, read by
//! the reconciler's own reader.

use std::sync::Arc;

use homeostat_models::governor::MeshConfig;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::crd::AdaptivePolicy;
use crate::reconcile::Context;
use crate::reconcile::conditions::Outcome;
use crate::reconcile::policy::read_live;
use crate::telemetry::ObservationSource;
use crate::webhook::{KnownPolicy, PolicyDirectory, PolicyKey, SeamError};

pub struct KubeDirectory<S> {
    ctx: Arc<Context<S>>,
    store: Store<AdaptivePolicy>,
}

impl<S> KubeDirectory<S> {
    pub fn new(ctx: Arc<Context<S>>, store: Store<AdaptivePolicy>) -> Self {
        Self { ctx, store }
    }
}

/// A policy as the webhook sees it; `None` for one without a namespace or with an invalid
/// spec (the reconciler reports those in its status).
pub fn known(p: &AdaptivePolicy) -> Option<KnownPolicy> {
    p.spec.0.validate().ok()?;
    Some(KnownPolicy {
        key: PolicyKey {
            namespace: p.namespace()?,
            name: p.name_any(),
        },
        spec: p.spec.0.clone(),
    })
}

/// Why the target cannot be read, as the reconciler's condition would say it.
pub fn outcome_message(o: &Outcome) -> String {
    match o {
        Outcome::Degraded { message, .. }
        | Outcome::Invalid { message }
        | Outcome::TelemetryUnavailable { message }
        | Outcome::InsufficientData { message } => message.clone(),
        Outcome::Evaluated { .. } => "evaluated".into(),
    }
}

impl<S: ObservationSource> PolicyDirectory for KubeDirectory<S> {
    async fn policies(&self) -> Result<Vec<KnownPolicy>, SeamError> {
        // A policy that shares its target with another acts on nothing, alerts included (its
        // status says why: `reconcile::sharing_target`).
        let all = self.store.state();
        let mut out: Vec<KnownPolicy> = all
            .iter()
            .filter(|p| crate::reconcile::sharing_target(p, &all).is_empty())
            .filter_map(|p| known(p))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn mesh_config(&self, policy: &KnownPolicy) -> Result<MeshConfig, SeamError> {
        match read_live(&policy.spec, &policy.key.namespace, &self.ctx).await {
            Ok(Ok(live)) => Ok(live.found.mesh_config()),
            Ok(Err(o)) => Err(SeamError(format!(
                "{}: {}",
                policy.key,
                outcome_message(&o)
            ))),
            Err(e) => Err(SeamError(format!("{}: {e}", policy.key))),
        }
    }
}
