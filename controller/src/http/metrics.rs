//! The controller's Prometheus metrics (prometheus-client, the official Rust client, which
//! writes the OpenMetrics text format without global state).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    knob: String,
    /// applied, recommended or rolled_back.
    outcome: String,
}

/// Labels of `homeostat_remediations_total` (docs/remediation.md): the policy, its target and
/// the outcome (applied, recommended, held, failed, reverted, kept).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RemediationLabels {
    policy_namespace: String,
    policy: String,
    target_service: String,
    outcome: String,
}

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    failures: Family<Reason, Counter>,
    pub decisions: Counter,
    changes: Family<ChangeLabels, Counter>,
    pub telemetry_seconds: Histogram,
    remediations: Family<RemediationLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("homeostat");
        let reconciles = Counter::default();
        let failures = Family::<Reason, Counter>::default();
        let decisions = Counter::default();
        let changes = Family::<ChangeLabels, Counter>::default();
        // 1 ms .. ~16 s: a batched PromQL answer is milliseconds; a timeout is seconds.
        let telemetry_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "reconciles",
            "Reconciles run by the leader",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Failed reconciles, by reason",
            failures.clone(),
        );
        registry.register("decisions", "Governor decisions made", decisions.clone());
        registry.register(
            "changes",
            "Changes by knob and outcome (applied, recommended, rolled_back)",
            changes.clone(),
        );
        registry.register(
            "telemetry_query_seconds",
            "Time to obtain one policy's observation",
            telemetry_seconds.clone(),
        );
        let remediations = Family::<RemediationLabels, Counter>::default();
        registry.register(
            "remediations",
            "Changes of alert-triggered remediations, by policy and outcome",
            remediations.clone(),
        );
        Self {
            remediations,
            registry,
            reconciles,
            failures,
            decisions,
            changes,
            telemetry_seconds,
        }
    }
}

impl Metrics {
    pub fn failure(&self, reason: &str) {
        self.failures
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn change(&self, knob: &str, outcome: &str) {
        self.changes
            .get_or_create(&ChangeLabels {
                knob: knob.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// One change of an alert-triggered remediation (or of its revert) and what became of it.
    pub fn remediation(&self, namespace: &str, policy: &str, service: &str, outcome: &str) {
        self.remediations
            .get_or_create(&RemediationLabels {
                policy_namespace: namespace.into(),
                policy: policy.into(),
                target_service: service.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, String> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}
