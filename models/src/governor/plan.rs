//! What the Governor answers: findings (what it saw, with numbers) and a plan (what to change,
//! why, and what held a change back).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::observation::{HpaConfig, OutlierConfig, RetryConfig};

/// The answer to one `step` or `on_alert`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub service: String,
    /// Unix seconds the decision was made at.
    pub at: i64,
    pub findings: Vec<Finding>,
    pub plan: Plan,
}

/// What the models saw: an anomaly, a forecast, a lack of data, a regression.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub kind: FindingKind,
    /// What it is about, e.g. `subset canary`, `endpoint pod-3`, `service`.
    pub subject: String,
    /// One sentence for a human on call.
    pub summary: String,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FindingKind {
    /// Something is off (against its peers, its own history or the objective).
    Anomaly,
    /// Something that was off is normal again.
    Recovered,
    /// A demand forecast.
    Forecast,
    /// Too little traffic or telemetry to judge: the Governor holds.
    InsufficientData,
    /// The objectives got worse after an applied change.
    Regression,
    /// A note that explains a non-decision (e.g. every subset is bad: nowhere to move traffic).
    Note,
}

/// A named number behind a finding or a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub name: String,
    pub value: f64,
}

impl Evidence {
    pub fn new(name: &str, value: f64) -> Self {
        Self {
            name: name.to_string(),
            value,
        }
    }
}

/// The changes to apply now, and those a guardrail held back (shown, never applied).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Changes that passed every guardrail. In Enforce mode the adapter applies these, then
    /// reports each with `Governor::applied`.
    pub changes: Vec<Change>,
    /// Changes a guardrail held back, each with `held_by` set.
    pub held: Vec<Change>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The four knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Knob {
    Weights,
    OutlierDetection,
    Retries,
    Autoscaling,
}

impl Knob {
    pub const ALL: [Knob; 4] = [
        Knob::Weights,
        Knob::OutlierDetection,
        Knob::Retries,
        Knob::Autoscaling,
    ];
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Knob::Weights => "weights",
            Knob::OutlierDetection => "outlier detection",
            Knob::Retries => "retries",
            Knob::Autoscaling => "autoscaling",
        })
    }
}

/// A knob's whole setting, so that a change (and its rollback) is one value for another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KnobValue {
    /// Percent per subset, summing to 100.
    Weights(BTreeMap<String, u32>),
    OutlierDetection(OutlierConfig),
    Retries(RetryConfig),
    Autoscaling(HpaConfig),
}

impl KnobValue {
    pub fn knob(&self) -> Knob {
        match self {
            KnobValue::Weights(_) => Knob::Weights,
            KnobValue::OutlierDetection(_) => Knob::OutlierDetection,
            KnobValue::Retries(_) => Knob::Retries,
            KnobValue::Autoscaling(_) => Knob::Autoscaling,
        }
    }
}

impl fmt::Display for KnobValue {
    /// The setting in words for people (reports, Events, the CLI): the adapters print this and
    /// never format knob values themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KnobValue::Weights(m) => {
                let parts: Vec<String> = m.iter().map(|(k, w)| format!("{k} {w}%")).collect();
                f.write_str(&parts.join(", "))
            }
            KnobValue::OutlierDetection(o) => write!(
                f,
                "eject after {} consecutive 5xx, sweep every {}, base ejection {} (at most {}), at most {}% of endpoints",
                o.consecutive_5xx_errors,
                o.interval,
                o.base_ejection_time,
                o.max_ejection_time,
                o.max_ejection_percent
            ),
            KnobValue::Retries(r) => {
                write!(f, "{} retries on {}", r.attempts, r.retry_on)?;
                match r.per_try_timeout {
                    Some(t) => write!(f, ", per-try timeout {t}"),
                    None => f.write_str(", no per-try timeout"),
                }
            }
            KnobValue::Autoscaling(h) => write!(
                f,
                "HPA target {}%, {}..{} replicas",
                h.target_utilization_percent, h.min_replicas, h.max_replicas
            ),
        }
    }
}

/// Whether a change makes the service safer now (fast) or gives back what protection cost
/// (slow, behind hysteresis): cutting a canary, tightening ejection, cutting retries and adding
/// capacity protect; the reverse relaxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Posture {
    Protect,
    Relax,
}

/// What asked for a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// A planner, from the telemetry.
    Planner,
    /// A planner, from what its models predict rather than from harm observed now: a
    /// scale-ahead for demand that has not arrived, or for pods the autoscaler has not yet
    /// taken away. While the objectives are met such a change is calm-time tuning and waits
    /// for the warm-up like a relaxing one: a prediction from a few minutes of data is not
    /// evidence (`guardrails.rs`).
    Forecast,
    /// Reverting an applied change after the objectives got worse.
    Rollback,
    /// A remediation action for this alert.
    Alert(String),
}

/// One proposed change of one knob.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub knob: Knob,
    pub current: KnobValue,
    pub proposed: KnobValue,
    pub posture: Posture,
    pub origin: Origin,
    /// Why, in words a human on call understands.
    pub reason: String,
    /// The numbers that triggered it.
    pub evidence: Vec<Evidence>,
    /// How sure the models are, in [0, 1].
    pub confidence: f64,
    /// What should happen once it is applied.
    pub expected_effect: String,
    /// Set when a guardrail held the change back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<Hold>,
}

/// Why a guardrail held a change back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "guardrail"
)]
pub enum Hold {
    /// The knob changed less than `cooldown` ago.
    Cooldown { remaining_seconds: i64 },
    /// `maxChangesPerHour` changes were already made in the last hour.
    MaxChangesPerHour { limit: u32 },
    /// Changes are frozen (by the policy, or by a `freeze` remediation until `until`).
    Freeze { until: Option<i64> },
    /// Relaxing needs `needed` consecutive runs asking for it; this is run `seen`.
    Hysteresis { seen: u32, needed: u32 },
    /// Calm-time tuning waits until the service has had usable data for one policy lookback
    /// (`telemetry.lookback`): the history the policy says its models judge on.
    Warmup { remaining_seconds: i64 },
    /// The knob is disabled in the policy (`controls.<knob>.enabled: false`).
    Disabled,
    /// A relaxing change of this knob was rolled back for a regression less than one policy
    /// lookback ago; relaxing it again would repeat what the evidence judged harmful.
    RolledBack { remaining_seconds: i64 },
    /// The change works only together with a change of `knob` proposed in the same run, and
    /// that one is held (the slow-endpoint per-try timeout needs outlier detection able to
    /// eject the slow pods).
    WaitsFor { knob: Knob },
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Cooldown { remaining_seconds } => {
                write!(
                    f,
                    "cooldown: {remaining_seconds}s left since the last change"
                )
            }
            Hold::MaxChangesPerHour { limit } => {
                write!(
                    f,
                    "already {limit} changes in the last hour (maxChangesPerHour)"
                )
            }
            Hold::Freeze { until: Some(t) } => write!(f, "changes are frozen until {t}"),
            Hold::Freeze { until: None } => write!(f, "changes are frozen by the policy"),
            Hold::Hysteresis { seen, needed } => write!(
                f,
                "waiting for the signal to stay clear ({seen} of {needed} runs) before relaxing"
            ),
            Hold::Disabled => write!(f, "this control is disabled in the policy"),
            Hold::Warmup { remaining_seconds } => write!(
                f,
                "still learning the service's normal: {remaining_seconds}s until one lookback of data"
            ),
            Hold::RolledBack { remaining_seconds } => write!(
                f,
                "a relaxing change of this control was rolled back after a regression: no relaxing for {remaining_seconds}s more (one lookback)"
            ),
            Hold::WaitsFor { knob } => write!(
                f,
                "works only together with the {knob} change proposed with it, which is held"
            ),
        }
    }
}
