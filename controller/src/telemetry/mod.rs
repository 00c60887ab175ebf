//! Telemetry adapters: the world's metrics → the Governor's [`Observation`].
//!
//! This module is the seam between the reconciler and whatever reads telemetry (Prometheus with
//! PromQL over Istio's standard metrics; later the bundled proxies' stats endpoints). The
//! reconciler reads the configuration in force from the cluster and asks a source for the
//! telemetry windows; a source never decides anything and never reads or writes the mesh.
//!
//! Failures are told apart because they lead to different conditions, and neither ever leads to
//! an action: too little traffic is [`TelemetryError::Insufficient`] (`InsufficientData`), a
//! store that cannot be reached or answers nonsense is [`TelemetryError::Unavailable`] /
//! [`TelemetryError::Malformed`] (`TelemetryUnavailable`).
//!
//! # Layout
//!
//! * [`promql`] — every PromQL query homeostat sends (Istio's standard metrics, CPU for the
//!   HPA), with why each label and window was chosen.
//! * [`grid`] — the Observation's time grid; a range-query series placed on it (NaN where absent).
//! * [`fanout`] — one batch's answers filed per service / subset / pod, and a policy's
//!   Observation built from them.
//! * [`quantiles`] — p50 / p90 / p99 at every level from one answer of per-pod bucket rates.
//! * [`prometheus`] — the HTTP client: range queries on the grid, failures told apart.
//! * [`source`] — the [`ObservationSource`]s: one policy at a time, or batched across policies.
//! * [`proxy_scrape`] — the fast path: the proxies' own stats pages scraped directly, filed
//!   by `fanout` into the same Observation.

pub mod fanout;
pub mod grid;
pub mod prometheus;
pub mod promql;
pub mod proxy_scrape;
pub mod quantiles;
pub mod source;

use std::future::Future;

use homeostat_models::governor::{MeshConfig, Observation};
use homeostat_models::policy::PolicySpec;

/// What the reconciler asks of a telemetry source for one policy at one time.
#[derive(Debug, Clone)]
pub struct ObserveRequest {
    /// Namespace of the AdaptivePolicy (and of its target service).
    pub namespace: String,
    /// The validated policy: target service, subsets, telemetry interval and lookback.
    pub spec: PolicySpec,
    /// Unix seconds of the newest point wanted (the evaluation time).
    pub end: i64,
    /// The configuration in force, read from the cluster; copied into the Observation.
    pub config: MeshConfig,
}

impl ObserveRequest {
    /// A request for `spec`'s service in `namespace` ending at `end` on a mesh where nothing is
    /// configured ([`MeshConfig::default`]): what tests and benchmarks of a source need.
    pub fn unconfigured(namespace: &str, spec: PolicySpec, end: i64) -> ObserveRequest {
        ObserveRequest {
            namespace: namespace.into(),
            spec,
            end,
            config: MeshConfig::default(),
        }
    }
}

/// Why no Observation could be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TelemetryError {
    /// The store answered, but with too little data to judge (no or low traffic, empty series).
    #[error("insufficient telemetry: {0}")]
    Insufficient(String),
    /// The store could not be reached, timed out, or returned an error.
    #[error("telemetry unavailable: {0}")]
    Unavailable(String),
    /// The store answered something that is not a valid result for the query sent.
    #[error("malformed telemetry: {0}")]
    Malformed(String),
}

pub use fanout::ServiceKey;
pub use prometheus::{Prometheus, PrometheusConfig};
pub use source::{BatchedSource, PrometheusSource};

/// A source of Observations. Implementations may batch across policies behind this call (one
/// query per signal per interval, fanned out), so the call is cheap per policy.
pub trait ObservationSource: Send + Sync + 'static {
    fn observe(
        &self,
        req: &ObserveRequest,
    ) -> impl Future<Output = Result<Observation, TelemetryError>> + Send;

    /// The policy governing `key` is gone: a batching source stops fetching it.
    fn release(&self, _key: &ServiceKey) {}
}
