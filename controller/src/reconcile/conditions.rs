//! Status conditions and phase, built without I/O from what one reconcile found.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{AdaptivePolicyStatus, ConditionType};

/// What one reconcile concluded, for the conditions.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The Governor ran on sufficient telemetry (`recommended`: DryRun, nothing applied).
    Evaluated { dry_run: bool },
    /// The spec failed validation; `message` lists every field path.
    Invalid { message: String },
    /// A governed object is missing or unreadable.
    Degraded { reason: String, message: String },
    /// The telemetry store could not be reached or answered nonsense.
    TelemetryUnavailable { message: String },
    /// Too little traffic or telemetry to judge.
    InsufficientData { message: String },
}

impl Outcome {
    pub fn phase(&self) -> &'static str {
        match self {
            Outcome::Evaluated { dry_run: true } => "DryRun",
            Outcome::Evaluated { dry_run: false } => "Ready",
            Outcome::Invalid { .. } => "Invalid",
            Outcome::Degraded { .. } => "Degraded",
            Outcome::TelemetryUnavailable { .. } => "TelemetryUnavailable",
            Outcome::InsufficientData { .. } => "InsufficientData",
        }
    }

    /// (status, reason, message) of condition `t` for this outcome.
    fn condition(&self, t: ConditionType) -> (bool, String, String) {
        use ConditionType as C;
        let ok = |r: &str, m: &str| (false, r.to_string(), m.to_string());
        match (self, t) {
            (Outcome::Evaluated { dry_run }, C::Ready) => (
                true,
                "Evaluated".into(),
                if *dry_run {
                    "evaluated in DryRun: recommendations in status, nothing applied".into()
                } else {
                    "evaluated in Enforce: admitted changes applied".into()
                },
            ),
            (Outcome::Invalid { message }, C::Invalid) => {
                (true, "SpecInvalid".into(), message.clone())
            }
            (Outcome::Degraded { reason, message }, C::Degraded) => {
                (true, reason.clone(), message.clone())
            }
            (Outcome::TelemetryUnavailable { message }, C::TelemetryUnavailable) => {
                (true, "QueryFailed".into(), message.clone())
            }
            (Outcome::InsufficientData { message }, C::InsufficientData) => {
                (true, "LowTraffic".into(), message.clone())
            }
            (_, C::Ready) => (
                false,
                self.phase().into(),
                "not evaluated: see the other conditions".into(),
            ),
            (_, C::Invalid) => ok("SpecValid", "the spec is valid"),
            (_, C::Degraded) => ok("TargetsFound", "every governed object was read"),
            (_, C::TelemetryUnavailable) => ok("QueryOk", "telemetry answered"),
            (_, C::InsufficientData) => ok("EnoughData", "enough telemetry to judge"),
        }
    }
}

/// All five conditions for `outcome`. `lastTransitionTime` moves only when a condition's status
/// changes (the Kubernetes convention), so it is carried over from `previous`.
pub fn conditions(
    outcome: &Outcome,
    previous: Option<&AdaptivePolicyStatus>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    ConditionType::ALL
        .iter()
        .map(|t| {
            let (on, reason, message) = outcome.condition(*t);
            let status = if on { "True" } else { "False" };
            let since = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == t.as_str()))
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: t.as_str().into(),
                status: status.into(),
                reason,
                message,
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}
