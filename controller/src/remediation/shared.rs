//! The reconciler's own Governor and telemetry, lent to the webhook: an alert is decided by
//! the Governor that runs the policy's loop (one memory of cooldowns, the hourly budget and
//! freezes for both paths) on the telemetry the loop reads.

use std::sync::Arc;

use homeostat_models::governor::{Governor, Observation};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::crd::AdaptivePolicy;
use crate::reconcile::Context;
use crate::reconcile::policy::replay;
use crate::telemetry::{ObservationSource, ObserveRequest, TelemetryError};
use crate::webhook::{Governors, KnownPolicy};

/// The reconciler's per-policy Governors. A policy the loop has not run yet gets its Governor
/// here, seeded from `status.appliedChanges` exactly as the loop seeds it.
pub struct LoopGovernors<S> {
    ctx: Arc<Context<S>>,
    store: Store<AdaptivePolicy>,
}

impl<S> LoopGovernors<S> {
    pub fn new(ctx: Arc<Context<S>>, store: Store<AdaptivePolicy>) -> Self {
        Self { ctx, store }
    }
}

impl<S: ObservationSource> Governors for LoopGovernors<S> {
    async fn with<T: Send>(
        &self,
        policy: &KnownPolicy,
        f: impl FnOnce(&mut Governor) -> T + Send,
    ) -> T {
        let key = &policy.key;
        let applied = self
            .store
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
            .and_then(|p| p.status.clone())
            .map(|s| s.applied_changes)
            .unwrap_or_default();
        let now = (self.ctx.clock)();
        let service = policy.spec.target.service.clone();
        self.ctx
            .with_governor(&key.to_string(), |g| replay(g, &service, &applied, now), f)
    }
}

/// The reconciler's telemetry source.
pub struct LoopTelemetry<S>(pub Arc<Context<S>>);

impl<S: ObservationSource> ObservationSource for LoopTelemetry<S> {
    async fn observe(&self, req: &ObserveRequest) -> Result<Observation, TelemetryError> {
        self.0.source.observe(req).await
    }
}
