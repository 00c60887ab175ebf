//! `status` of an `AdaptivePolicy`: conditions, what the models saw, what homeostat recommends,
//! and what it applied — the last being the guardrail memory a restarted controller reloads, so
//! it neither repeats a change nor breaks the hourly limit, and can revert on deletion.
//!
//! Knob values are stored as [`KnobSetting`] (a typed mirror of `models`' `KnobValue` that
//! also derives `Deserialize` and `JsonSchema`); converting back and forth is lossless.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use homeostat_models::governor::{
    Change, Decision, Evidence, Finding, HpaConfig, Knob, KnobValue, Origin, OutlierConfig,
    Posture, RetryConfig, RetryOn,
};
use homeostat_models::policy::Duration;

/// Everything the controller reports about one policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdaptivePolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One word for `kubectl get`: Ready, DryRun, Invalid, Degraded, TelemetryUnavailable,
    /// InsufficientData.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `Ready`, `Degraded`, `Invalid`, `TelemetryUnavailable`, `InsufficientData`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When this status was last written. The Governor runs every interval, but status is
    /// written only when something in it changed, or at the heartbeat (five minutes) to refresh
    /// its numbers: at scale, a write per policy per interval would load the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluated: Option<Time>,
    /// When homeostat last changed the mesh for this policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change: Option<Time>,
    /// What the models saw on the last run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<StatusFinding>,
    /// The last run's plan: changes admitted (applied in Enforce) and changes held back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<Recommendation>,
    /// Changes homeostat applied (Enforce), newest last: the guardrail memory and what a
    /// deletion reverts to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_changes: Vec<AppliedChange>,
    /// The Governor's memory (hysteresis streaks, the objectives before each change, alert
    /// freezes, warm-up, planner baselines), as versioned compact JSON
    /// (`homeostat_models::governor::GovernorMemory`): what a restarted controller or a new
    /// leader restores so that it decides as the one that never stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governor_memory: Option<String>,
    /// Alert occurrences the webhook acted on, written only by the webhook (its own field
    /// manager): the idempotency record that survives restarts and is shared by replicas, and
    /// what a resolve gives back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_remediations: Vec<AlertRemediation>,
}

/// One occurrence of an Alertmanager alert (fingerprint + startsAt) and what homeostat did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRemediation {
    pub alertname: String,
    /// Alertmanager's fingerprint of the alert's label set.
    pub fingerprint: String,
    /// The occurrence's `startsAt`, unix seconds.
    pub starts_at: i64,
    /// Unix seconds the webhook handled it at.
    pub handled_at: i64,
    /// Enforce or DryRun, as the policy was then.
    pub mode: String,
    /// The Governor's plan for it: admitted changes (`applied` when Enforce applied them) and
    /// held ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<Recommendation>,
    /// The changes applied (also in `appliedChanges`): what a resolve gives back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied: Vec<AppliedChange>,
    /// Changes that could not be applied, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// Unix seconds Alertmanager reported it resolved at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
    /// Knobs still to be given back (or kept) after the resolve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_revert: Vec<String>,
    /// What became of each knob after the resolve (reverted, or kept and why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverts: Vec<String>,
}

/// The condition types homeostat sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    Degraded,
    Invalid,
    TelemetryUnavailable,
    InsufficientData,
}

impl ConditionType {
    pub const ALL: [ConditionType; 5] = [
        ConditionType::Ready,
        ConditionType::Degraded,
        ConditionType::Invalid,
        ConditionType::TelemetryUnavailable,
        ConditionType::InsufficientData,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Degraded => "Degraded",
            ConditionType::Invalid => "Invalid",
            ConditionType::TelemetryUnavailable => "TelemetryUnavailable",
            ConditionType::InsufficientData => "InsufficientData",
        }
    }
}

/// A finding of the models, as status carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusFinding {
    /// anomaly, recovered, forecast, insufficientData, regression or note.
    pub kind: String,
    pub subject: String,
    pub summary: String,
    /// The numbers behind it; null where a number is unknown (NaN).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, Option<f64>>,
}

/// One change of the last plan: current → proposed, why, and whether a guardrail held it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// weights, outlierDetection, retries or autoscaling.
    pub knob: String,
    pub current: KnobSetting,
    pub proposed: KnobSetting,
    pub reason: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, Option<f64>>,
    /// How sure the models are, in [0, 1].
    pub confidence: f64,
    pub expected_effect: String,
    /// protect or relax.
    pub posture: String,
    /// planner, forecast, rollback, or alert:NAME.
    pub origin: String,
    /// Set when a guardrail held the change back (never applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// Whether homeostat applied it (Enforce and admitted by every guardrail).
    pub applied: bool,
}

/// A change homeostat applied to the mesh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedChange {
    /// weights, outlierDetection, retries or autoscaling.
    pub knob: String,
    /// Unix seconds it was applied at.
    pub at: i64,
    /// The knob just before this change.
    pub before: KnobSetting,
    /// The knob after it.
    pub after: KnobSetting,
    /// protect or relax.
    pub posture: String,
    /// planner, forecast, rollback, or alert:NAME.
    pub origin: String,
    pub reason: String,
    /// The owned fields as found before homeostat first touched this knob (a field left unset
    /// means it was not set): what a deletion of the policy restores.
    pub original: KnobSetting,
}

/// A knob's whole setting; exactly one field is set for a knob value. As `original`, an unset
/// field means the mesh object did not carry it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnobSetting {
    /// Route weight per subset, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<BTreeMap<String, u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetrySetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSetting>,
}

/// DestinationRule `trafficPolicy.outlierDetection`, as homeostat owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutlierSetting {
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: u32,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
}

/// VirtualService `http[].retries`, as homeostat owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrySetting {
    pub attempts: u32,
    /// Absent when the route has no per-try timeout (Istio's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    /// Istio's `retryOn` text, as the Governor's typed value renders it.
    pub retry_on: String,
}

/// HorizontalPodAutoscaler bounds and CPU target, as homeostat owns them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSetting {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_utilization_percent: u32,
}

/// A stored setting that does not hold a value for the knob it claims to be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("status.appliedChanges: {0}")]
pub struct StatusError(pub String);

pub fn knob_name(knob: Knob) -> &'static str {
    match knob {
        Knob::Weights => "weights",
        Knob::OutlierDetection => "outlierDetection",
        Knob::Retries => "retries",
        Knob::Autoscaling => "autoscaling",
    }
}

pub fn knob_from_name(name: &str) -> Option<Knob> {
    Knob::ALL.into_iter().find(|k| knob_name(*k) == name)
}

fn posture_name(p: Posture) -> &'static str {
    match p {
        Posture::Protect => "protect",
        Posture::Relax => "relax",
    }
}

fn origin_name(o: &Origin) -> String {
    match o {
        Origin::Planner => "planner".into(),
        Origin::Forecast => "forecast".into(),
        Origin::Rollback => "rollback".into(),
        Origin::Alert(name) => format!("alert:{name}"),
    }
}

fn origin_from_name(s: &str) -> Origin {
    match s {
        "rollback" => Origin::Rollback,
        "forecast" => Origin::Forecast,
        s => match s.strip_prefix("alert:") {
            Some(name) => Origin::Alert(name.to_string()),
            None => Origin::Planner,
        },
    }
}

fn evidence_map(evidence: &[Evidence]) -> BTreeMap<String, Option<f64>> {
    evidence
        .iter()
        .map(|e| (e.name.clone(), e.value.is_finite().then_some(e.value)))
        .collect()
}

impl KnobSetting {
    /// The setting of a `KnobValue`. The HPA's `currentReplicas` is status, not spec, so it
    /// is not kept.
    pub fn of(value: &KnobValue) -> Self {
        let mut s = Self::default();
        match value {
            KnobValue::Weights(w) => s.weights = Some(w.clone()),
            KnobValue::OutlierDetection(o) => {
                s.outlier_detection = Some(OutlierSetting {
                    consecutive_5xx_errors: o.consecutive_5xx_errors,
                    interval: o.interval,
                    base_ejection_time: o.base_ejection_time,
                    max_ejection_percent: o.max_ejection_percent,
                })
            }
            KnobValue::Retries(r) => {
                s.retries = Some(RetrySetting {
                    attempts: r.attempts,
                    per_try_timeout: r.per_try_timeout,
                    retry_on: r.retry_on.to_string(),
                })
            }
            KnobValue::Autoscaling(h) => {
                s.autoscaling = Some(AutoscalingSetting {
                    min_replicas: h.min_replicas,
                    max_replicas: h.max_replicas,
                    target_utilization_percent: h.target_utilization_percent,
                })
            }
        }
        s
    }

    /// The value of `knob` this setting holds, if it holds one.
    pub fn value(&self, knob: Knob) -> Option<KnobValue> {
        match knob {
            Knob::Weights => self.weights.clone().map(KnobValue::Weights),
            Knob::OutlierDetection => self.outlier_detection.as_ref().map(|o| {
                KnobValue::OutlierDetection(OutlierConfig {
                    consecutive_5xx_errors: o.consecutive_5xx_errors,
                    interval: o.interval,
                    base_ejection_time: o.base_ejection_time,
                    max_ejection_percent: o.max_ejection_percent,
                    // Istio does not expose Envoy's `max_ejection_time`: Envoy's default holds.
                    max_ejection_time: OutlierConfig::default().max_ejection_time,
                })
            }),
            // A stored `retryOn` that no longer parses holds no usable value.
            Knob::Retries => self.retries.as_ref().and_then(|r| {
                let retry_on = RetryOn::parse(&r.retry_on).ok()?;
                Some(KnobValue::Retries(RetryConfig {
                    attempts: r.attempts,
                    per_try_timeout: r.per_try_timeout,
                    retry_on,
                }))
            }),
            Knob::Autoscaling => self.autoscaling.as_ref().map(|h| {
                KnobValue::Autoscaling(HpaConfig {
                    min_replicas: h.min_replicas,
                    max_replicas: h.max_replicas,
                    target_utilization_percent: h.target_utilization_percent,
                    current_replicas: 0,
                    replica_cap: None,
                })
            }),
        }
    }

    /// Keeps only `knob`'s field.
    pub fn only(&self, knob: Knob) -> Self {
        let mut s = Self::default();
        match knob {
            Knob::Weights => s.weights = self.weights.clone(),
            Knob::OutlierDetection => s.outlier_detection = self.outlier_detection.clone(),
            Knob::Retries => s.retries = self.retries.clone(),
            Knob::Autoscaling => s.autoscaling = self.autoscaling.clone(),
        }
        s
    }
}

impl StatusFinding {
    pub fn of(f: &Finding) -> Self {
        // FindingKind serialises camelCase; the JSON string is the name.
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Self {
            kind,
            subject: f.subject.clone(),
            summary: f.summary.clone(),
            evidence: evidence_map(&f.evidence),
        }
    }
}

impl Recommendation {
    pub fn of(c: &Change, applied: bool) -> Self {
        Self {
            knob: knob_name(c.knob).into(),
            current: KnobSetting::of(&c.current),
            proposed: KnobSetting::of(&c.proposed),
            reason: c.reason.clone(),
            evidence: evidence_map(&c.evidence),
            confidence: c.confidence,
            expected_effect: c.expected_effect.clone(),
            posture: posture_name(c.posture).into(),
            origin: origin_name(&c.origin),
            held_by: c.held_by.as_ref().map(ToString::to_string),
            applied,
        }
    }

    /// Every change of a decision's plan: admitted ones (`applied` when Enforce applied them)
    /// then held ones.
    pub fn of_decision(d: &Decision, applied: bool) -> Vec<Self> {
        d.plan
            .changes
            .iter()
            .map(|c| Self::of(c, applied))
            .chain(d.plan.held.iter().map(|c| Self::of(c, false)))
            .collect()
    }
}

impl AppliedChange {
    pub fn new(at: i64, c: &Change, original: KnobSetting) -> Self {
        Self {
            knob: knob_name(c.knob).into(),
            at,
            before: KnobSetting::of(&c.current),
            after: KnobSetting::of(&c.proposed),
            posture: posture_name(c.posture).into(),
            origin: origin_name(&c.origin),
            reason: c.reason.clone(),
            original,
        }
    }

    /// The `Change` as the Governor saw it, to replay into a fresh Governor after a restart.
    pub fn to_change(&self) -> Result<Change, StatusError> {
        let knob = knob_from_name(&self.knob)
            .ok_or_else(|| StatusError(format!("unknown knob {:?}", self.knob)))?;
        let missing = |what: &str| StatusError(format!("{} change without its {what}", self.knob));
        Ok(Change {
            knob,
            current: self.before.value(knob).ok_or_else(|| missing("before"))?,
            proposed: self.after.value(knob).ok_or_else(|| missing("after"))?,
            posture: if self.posture == "relax" {
                Posture::Relax
            } else {
                Posture::Protect
            },
            origin: origin_from_name(&self.origin),
            reason: self.reason.clone(),
            evidence: Vec::new(),
            confidence: 1.0,
            expected_effect: String::new(),
            held_by: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_names_round_trip() {
        // A restarted reconciler rebuilds the Governor's record from these names, so each
        // must read back as what was written.
        for o in [
            Origin::Planner,
            Origin::Forecast,
            Origin::Rollback,
            Origin::Alert("HighErrorRate".into()),
        ] {
            assert_eq!(origin_from_name(&origin_name(&o)), o);
        }
        assert_eq!(origin_name(&Origin::Forecast), "forecast");
    }
}
