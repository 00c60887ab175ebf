//! The reconciler: kube-runtime's `Controller` over `AdaptivePolicy`, in the controller-rs shape.
//!
//! ```text
//!  watch AdaptivePolicy ─┐
//!  watch DR / VS / HPA ──┴─► reconcile(policy) ── not leader ──► requeue, touch nothing
//!   (drift re-triggers)        │
//!                              └─► finalizer ─ Apply ───► policy::apply   (evaluate, act, status)
//!                                            └ Cleanup ─► policy::cleanup (revert, release)
//! ```
//!
//! `reconcile` is thin wiring (leadership, metrics, finalizer dispatch); the work is in
//! [`policy`], whose every API call is asserted by the ApiServerVerifier tests
//! (`controller/tests/k8s_reconcile.rs`). Decisions are the Governor's; this module only
//! translates its plan and the cluster's state.

pub mod conditions;
pub mod heartbeat;
pub mod leader;
pub mod policy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Client;
use kube::api::{Api, DynamicObject, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use homeostat_models::governor::Governor;
use homeostat_models::policy::Neighbour;

use crate::crd::{AdaptivePolicy, FINALIZER};
use crate::http::Metrics;
use crate::mesh::{MeshError, istio};
use crate::telemetry::ObservationSource;

/// The field manager of every write: what GitOps tools are told to leave alone.
pub const FIELD_MANAGER: &str = "homeostat";

/// Unix seconds now; injected so tests run on a fixed clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| jiff::Timestamp::now().as_second())
}

/// Everything a reconcile needs, built once and shared.
pub struct Context<S> {
    pub client: Client,
    pub source: S,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// Whether this replica holds the leader Lease; only the leader acts.
    pub leader: Arc<AtomicBool>,
    /// Per policy (`namespace/name`): its Governor, so two namespaces' `checkout` never share
    /// model state, and when it last ran. Locked only around synchronous calls.
    policies: Mutex<HashMap<String, PolicyState>>,
    /// Every watched policy (the controller's reflector), to find policies that share a
    /// target ([`Context::sharing_target`]). Unset, none is found.
    store: OnceLock<Store<AdaptivePolicy>>,
}

/// What the controller keeps in memory per policy (everything that must survive a restart is
/// in status too: the Governor's memory and the applied changes).
#[derive(Default)]
struct PolicyState {
    governor: Governor,
    /// Unix seconds and `metadata.generation` of the last evaluation.
    last_run: Option<(i64, Option<i64>)>,
}

impl<S: ObservationSource> Context<S> {
    pub fn new(
        client: Client,
        source: S,
        metrics: Arc<Metrics>,
        clock: Clock,
        leader: Arc<AtomicBool>,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            source,
            metrics,
            clock,
            leader,
            policies: Mutex::new(HashMap::new()),
            store: OnceLock::new(),
        }
    }
}

impl<S> Context<S> {
    /// Gives the reconciler the controller's view of every policy (set once; `run` does).
    pub fn watch_policies(&self, store: Store<AdaptivePolicy>) {
        // A second store would be the same reflector's; the first one stays.
        let _ = self.store.set(store);
    }

    /// The other live policies of `p`'s namespace that govern what it governs, each with what
    /// they share (`policy::sharing_target`), by name. A policy being deleted is not
    /// counted: its cleanup is under way, and the one that stays may act again.
    pub(crate) fn sharing_target(&self, p: &AdaptivePolicy) -> Vec<(String, String)> {
        self.store
            .get()
            .map_or_else(Vec::new, |store| sharing_target(p, &store.state()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PolicyState>> {
        // A poisoned lock means a panic mid-step; the map itself is still usable.
        self.policies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the policy's Governor, creating it (and replaying `seed` into it) first.
    pub(crate) fn with_governor<T>(
        &self,
        key: &str,
        seed: impl FnOnce(&mut Governor),
        f: impl FnOnce(&mut Governor) -> T,
    ) -> T {
        let mut map = self.lock();
        let state = map.entry(key.to_string()).or_insert_with(|| {
            let mut s = PolicyState::default();
            seed(&mut s.governor);
            s
        });
        f(&mut state.governor)
    }

    /// Seconds until the policy is due, if it ran less than `interval` ago at this generation.
    /// The loop runs once per interval whatever triggers the reconcile (its own status and
    /// mesh writes come back as watch events): extra runs would count towards hysteresis.
    pub(crate) fn not_due(
        &self,
        key: &str,
        now: i64,
        generation: Option<i64>,
        interval: i64,
    ) -> Option<i64> {
        let map = self.lock();
        let (at, seen) = map.get(key)?.last_run?;
        let left = at.saturating_add(interval).saturating_sub(now);
        (seen == generation && left > 0).then_some(left)
    }

    /// Records an evaluation of the policy at `now`.
    pub(crate) fn ran(&self, key: &str, now: i64, generation: Option<i64>) {
        self.lock().entry(key.to_string()).or_default().last_run = Some((now, generation));
    }

    /// Forgets a deleted policy.
    pub(crate) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// The policy's Governor memory as stored in status, if it has a Governor.
    pub(crate) fn memory(&self, key: &str) -> Option<String> {
        self.lock()
            .get(key)
            .map(|s| s.governor.export_memory().to_json())
    }

    /// Forgets every policy: a replica that is not the leader may miss runs of the one that
    /// is, so when it leads (again) it restores each Governor from status, never from a stale
    /// copy of its own.
    pub(crate) fn forget_all(&self) {
        let mut map = self.lock();
        if !map.is_empty() {
            map.clear();
        }
    }
}

/// The policies of `all` in `p`'s namespace, other than `p` and not being deleted, that
/// govern what it governs (`policy::sharing_target`), each with what they share, by name:
/// while any is there, `p` does not act (the reconciler says why in its status, and the
/// webhook does not offer it to alerts). `p` is read as given, not as the store last saw it.
pub fn sharing_target(p: &AdaptivePolicy, all: &[Arc<AdaptivePolicy>]) -> Vec<(String, String)> {
    let others: Vec<&AdaptivePolicy> = all
        .iter()
        .map(|o| &**o)
        .filter(|o| o.namespace() != p.namespace() || o.name_any() != p.name_any())
        .filter(|o| o.metadata.deletion_timestamp.is_none())
        .collect();
    let neighbours: Vec<Neighbour<'_>> = std::iter::once(p)
        .chain(others.iter().copied())
        .map(|o| Neighbour {
            namespace: o.metadata.namespace.as_deref().unwrap_or_default(),
            spec: &o.spec.0,
        })
        .collect();
    let mut shared: Vec<(String, String)> =
        homeostat_models::policy::sharing_target(&neighbours, 0)
            .into_iter()
            .map(|(j, what)| (others[j - 1].name_any(), what))
            .collect();
    shared.sort();
    shared
}

/// Why a reconcile failed. Each variant is also the `reason` label of the failures metric.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Mesh(#[from] MeshError),
    #[error(transparent)]
    Status(#[from] crate::crd::status::StatusError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("the object has no {0}")]
    Missing(&'static str),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Mesh(_) => "mesh",
            Error::Status(_) => "status",
            Error::Finalizer(_) => "finalizer",
            Error::Missing(_) => "missing",
        }
    }
}

/// The controller's entry for one policy: leadership, metrics and finalizer dispatch only.
pub async fn reconcile<S: ObservationSource>(
    policy: Arc<AdaptivePolicy>,
    ctx: Arc<Context<S>>,
) -> Result<Action, Error> {
    if !ctx.leader.load(Ordering::Relaxed) {
        // A follower watches (its caches stay warm for a fast takeover) but never writes.
        ctx.forget_all();
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    ctx.metrics.reconciles.inc();
    let ns = policy.namespace().ok_or(Error::Missing("namespace"))?;
    let api: Api<AdaptivePolicy> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, policy, |event| async {
        match event {
            Finalizer::Apply(p) => policy::apply(&p, &ctx).await,
            Finalizer::Cleanup(p) => policy::cleanup(&p, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Logs, counts by reason, and retries after a pause.
pub fn error_policy<S: ObservationSource>(
    policy: Arc<AdaptivePolicy>,
    error: &Error,
    ctx: Arc<Context<S>>,
) -> Action {
    tracing::warn!(policy = %policy.name_any(), %error, "reconcile failed");
    ctx.metrics.failure(error.metric_label());
    Action::requeue(Duration::from_secs(30))
}

/// Which policies govern a mesh object: same namespace, and the object is named after the
/// target service (DR/VS) or is the target HPA.
fn governing(
    store: &Store<AdaptivePolicy>,
    namespace: Option<String>,
    name: String,
    hpa: bool,
) -> Vec<ObjectRef<AdaptivePolicy>> {
    store
        .state()
        .iter()
        .filter(|p| p.namespace() == namespace)
        .filter(|p| {
            let t = &p.spec.0.target;
            if hpa {
                t.horizontal_pod_autoscaler.as_deref() == Some(name.as_str())
            } else {
                t.service == name
            }
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// Where the controller looks: all namespaces or one, optionally only labelled policies.
#[derive(Debug, Clone, Default)]
pub struct Shard {
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
}

/// Runs the controller until `shutdown` resolves (in-flight reconciles finish first).
pub async fn run<S: ObservationSource>(
    ctx: Arc<Context<S>>,
    shard: Shard,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let policies: Api<AdaptivePolicy> = match &shard.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let dynamic = |ar: &kube::discovery::ApiResource| -> Api<DynamicObject> {
        match &shard.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
            None => Api::all_with(client.clone(), ar),
        }
    };
    let hpas: Api<HorizontalPodAutoscaler> = match &shard.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut wc = watcher::Config::default();
    if let Some(sel) = &shard.label_selector {
        wc = wc.labels(sel);
    }
    let controller = Controller::new(policies, wc);
    let store = controller.store();
    ctx.watch_policies(store.clone());
    let (dr, vs) = (istio::destination_rule(), istio::virtual_service());
    let (s1, s2, s3) = (store.clone(), store.clone(), store);
    controller
        .watches_with(
            dynamic(&dr),
            dr.clone(),
            watcher::Config::default(),
            move |o: DynamicObject| governing(&s1, o.namespace(), o.name_any(), false),
        )
        .watches_with(
            dynamic(&vs),
            vs.clone(),
            watcher::Config::default(),
            move |o: DynamicObject| governing(&s2, o.namespace(), o.name_any(), false),
        )
        .watches(
            hpas,
            watcher::Config::default(),
            move |o: HorizontalPodAutoscaler| governing(&s3, o.namespace(), o.name_any(), true),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}
