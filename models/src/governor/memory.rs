//! The Governor's memory as data: what a controller persists (in `AdaptivePolicy` status) so
//! that a restarted controller, or a new leader, decides exactly as the one that never stopped.
//!
//! ```text
//!  Governor ─ export_memory ─► GovernorMemory ─ to_json ─► status ─ from_json ─► import_memory
//! ```
//!
//! Two kinds of state, kept apart on purpose:
//!
//! * **memory** (this file): everything a decision depends on that telemetry cannot give back —
//!   the guardrails' applied changes (times, values, the objectives before each, judged or not:
//!   cooldowns, the hourly budget, rollback), relaxing streaks (hysteresis), the alert freeze,
//!   the warm-up start, whether the objectives were met; and each planner's small memory (the
//!   setting to return to, when an incident or shortfall was last seen). Part of it,
//!   [`ServiceMemory::readings`], is per-run measurements (the newest objectives, detector
//!   scores, the autoscaler's stabilisation window) that change every run; everything else
//!   changes only when something happens, so an adapter can persist on change of
//!   [`GovernorMemory::durable`] and refresh the readings at a slow heartbeat;
//! * **streaming models** (detectors, forecasters): not here. They are functions of the telemetry
//!   they were fed, so a restored Governor warms them from its first observation (the policy's
//!   lookback, as a fresh Governor does). Only history older than the lookback is lost, which is
//!   the history the policy says not to judge on.
//!
//! The format is versioned ([`VERSION`]); floats are written as Rust's shortest round-trip text
//! (`"0.1"`, `"NaN"`, `"inf"`) so that a restore is bit-exact (a JSON number parser may round
//! the last digit, and JSON has no NaN).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::guardrails::{Applied, Snapshot};
use super::observation::{HpaConfig, OutlierConfig, RetryConfig};
use super::plan::{Change, KnobValue, Origin, Posture};
use super::{Governor, ServiceState};

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Why a stored memory cannot be used (the adapter then falls back to what else it knows).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MemoryError {
    #[error("governor memory: not valid JSON for version {VERSION}: {0}")]
    Malformed(String),
    #[error("governor memory: version {found} is not the version {VERSION} this build reads")]
    Version { found: u32 },
}

/// Everything a Governor must remember, per service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GovernorMemory {
    pub version: u32,
    pub services: BTreeMap<String, ServiceMemory>,
}

/// One service's memory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMemory {
    /// Applied changes still within reach of cooldown, the hourly budget and rollback, oldest
    /// first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    applied: Vec<AppliedMemory>,
    /// Runs in a row each knob was asked to relax (only knobs with a streak).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    relax_streak: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    freeze_until: Option<i64>,
    /// First run with usable data: the warm-up counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_since: Option<i64>,
    /// Whether the objectives were met on the last run with data.
    #[serde(default)]
    calm: bool,
    /// Weights before the Governor first moved traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weights_baseline: Option<BTreeMap<String, u32>>,
    /// When subsets were last given traffic back, and when one of them was bad again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    weights_given_back: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    weights_recurred: BTreeMap<String, i64>,
    /// Retries before the Governor cut them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retries_before_cut: Option<RetryConfig>,
    /// When a retry storm was last diagnosed (retries return one lookback after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retries_last_storm: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outlier_last_incident: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outlier_before_incident: Option<OutlierConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outlier_last_tuned: Option<i64>,
    /// Retries before the slow-endpoint timeout, and when an endpoint was last slow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slow_before: Option<RetryConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slow_last_seen: Option<i64>,
    /// The HPA before the Governor first added headroom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hpa_baseline: Option<HpaConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_shortfall: Option<i64>,
    #[serde(default)]
    longest_calm: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    calm_since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_raise: Option<i64>,
    /// Per-run measurements (see the module docs).
    #[serde(default)]
    pub readings: Readings,
}

/// The per-run measurements a service's memory carries: they change on every run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Readings {
    /// The objectives as last measured: the "before" of the next applied change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_snapshot: Option<SnapshotMemory>,
    /// Each subset's newest detector score.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    history_score: BTreeMap<String, F>,
    /// The autoscaler's stabilisation window: pods needed per request/s, forecast growth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    need_per_rps: Vec<F>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    growth: Vec<F>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppliedMemory {
    at: i64,
    current: Value,
    proposed: Value,
    /// The change protected (true) or relaxed (false).
    protect: bool,
    /// planner, rollback, or the alert's name.
    origin: OriginMemory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<SnapshotMemory>,
    judged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum OriginMemory {
    Planner,
    Forecast,
    Rollback,
    Alert(String),
}

/// A knob's setting (the mirror of [`KnobValue`], which is not itself deserialisable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Value {
    Weights(BTreeMap<String, u32>),
    OutlierDetection(OutlierConfig),
    Retries(RetryConfig),
    Autoscaling(HpaConfig),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SnapshotMemory {
    error_rate: F,
    requests: F,
    latency_p99: F,
}

/// An `f64` written as its shortest round-trip text, NaN and infinities included.
#[derive(Debug, Clone, Copy)]
struct F(f64);

impl PartialEq for F {
    /// Bitwise: NaN equals NaN, so that "nothing changed" holds for a NaN reading.
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Serialize for F {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // `{:?}` is Rust's shortest text that parses back to the same bits ("NaN", "inf").
        s.serialize_str(&format!("{:?}", self.0))
    }
}

impl<'de> Deserialize<'de> for F {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<f64>()
            .map(F)
            .map_err(|_| serde::de::Error::custom(format!("not a number: {text:?}")))
    }
}

impl From<&KnobValue> for Value {
    fn from(v: &KnobValue) -> Self {
        match v {
            KnobValue::Weights(w) => Value::Weights(w.clone()),
            KnobValue::OutlierDetection(o) => Value::OutlierDetection(o.clone()),
            KnobValue::Retries(r) => Value::Retries(r.clone()),
            KnobValue::Autoscaling(h) => Value::Autoscaling(h.clone()),
        }
    }
}

impl From<Value> for KnobValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Weights(w) => KnobValue::Weights(w),
            Value::OutlierDetection(o) => KnobValue::OutlierDetection(o),
            Value::Retries(r) => KnobValue::Retries(r),
            Value::Autoscaling(h) => KnobValue::Autoscaling(h),
        }
    }
}

impl From<Snapshot> for SnapshotMemory {
    fn from(s: Snapshot) -> Self {
        Self {
            error_rate: F(s.error_rate),
            requests: F(s.requests),
            latency_p99: F(s.latency_p99),
        }
    }
}

impl From<SnapshotMemory> for Snapshot {
    fn from(s: SnapshotMemory) -> Self {
        Self {
            error_rate: s.error_rate.0,
            requests: s.requests.0,
            latency_p99: s.latency_p99.0,
        }
    }
}

impl From<&Applied> for AppliedMemory {
    fn from(a: &Applied) -> Self {
        Self {
            at: a.at,
            current: (&a.change.current).into(),
            proposed: (&a.change.proposed).into(),
            protect: a.change.posture == Posture::Protect,
            origin: match &a.change.origin {
                Origin::Planner => OriginMemory::Planner,
                Origin::Forecast => OriginMemory::Forecast,
                Origin::Rollback => OriginMemory::Rollback,
                Origin::Alert(name) => OriginMemory::Alert(name.clone()),
            },
            before: a.before.map(Into::into),
            judged: a.judged,
        }
    }
}

impl From<AppliedMemory> for Applied {
    /// The guardrails read a remembered change's knob, values, posture and origin only; its
    /// words (reason, evidence) were for the people who saw it applied.
    fn from(a: AppliedMemory) -> Self {
        let proposed: KnobValue = a.proposed.into();
        Applied {
            at: a.at,
            change: Change {
                knob: proposed.knob(),
                current: a.current.into(),
                proposed,
                posture: if a.protect {
                    Posture::Protect
                } else {
                    Posture::Relax
                },
                origin: match a.origin {
                    OriginMemory::Planner => Origin::Planner,
                    OriginMemory::Forecast => Origin::Forecast,
                    OriginMemory::Rollback => Origin::Rollback,
                    OriginMemory::Alert(name) => Origin::Alert(name),
                },
                reason: String::new(),
                evidence: Vec::new(),
                confidence: 0.0,
                expected_effect: String::new(),
                held_by: None,
            },
            before: a.before.map(Into::into),
            judged: a.judged,
        }
    }
}

fn knob_key(k: super::Knob) -> String {
    // The serde name (camelCase), stable across the Display text's wording.
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn knob_of(key: &str) -> Option<super::Knob> {
    super::Knob::ALL.into_iter().find(|k| knob_key(*k) == key)
}

impl ServiceMemory {
    fn of(s: &ServiceState) -> Self {
        let g = &s.guard;
        Self {
            applied: g.applied.iter().map(Into::into).collect(),
            relax_streak: g
                .relax_streak
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| (knob_key(*k), *n))
                .collect(),
            freeze_until: g.freeze_until,
            data_since: g.data_since,
            calm: g.calm,
            weights_baseline: s.weights.baseline.clone(),
            weights_given_back: s.weights.given_back.clone(),
            weights_recurred: s.weights.recurred.clone(),
            retries_before_cut: s.retries.before_cut.clone(),
            retries_last_storm: s.retries.last_storm,
            outlier_last_incident: s.outlier.last_incident,
            outlier_before_incident: s.outlier.before_incident.clone(),
            outlier_last_tuned: s.outlier.last_tuned,
            slow_before: s.slow.before.clone(),
            slow_last_seen: s.slow.last_seen,
            hpa_baseline: s.autoscaling.baseline.clone(),
            last_shortfall: s.autoscaling.last_shortfall,
            longest_calm: s.autoscaling.longest_calm,
            calm_since: s.autoscaling.calm_since,
            last_raise: s.autoscaling.last_raise,
            readings: Readings {
                last_snapshot: g.last_snapshot.map(Into::into),
                history_score: s
                    .weights
                    .history_score
                    .iter()
                    .map(|(k, v)| (k.clone(), F(*v)))
                    .collect(),
                need_per_rps: s.autoscaling.need_per_rps.iter().map(|v| F(*v)).collect(),
                growth: s.autoscaling.growth.iter().map(|v| F(*v)).collect(),
            },
        }
    }

    /// A fresh service state holding this memory; its streaming models start empty and are
    /// warmed by the next observation.
    fn restore(self) -> Result<ServiceState, MemoryError> {
        let mut s = ServiceState::default();
        let g = &mut s.guard;
        g.applied = self.applied.into_iter().map(Into::into).collect();
        for (key, n) in self.relax_streak {
            let knob = knob_of(&key).ok_or_else(|| {
                MemoryError::Malformed(format!("relaxStreak: unknown knob {key:?}"))
            })?;
            g.relax_streak.insert(knob, n);
        }
        g.freeze_until = self.freeze_until;
        g.data_since = self.data_since;
        g.calm = self.calm;
        g.last_snapshot = self.readings.last_snapshot.map(Into::into);
        s.weights.baseline = self.weights_baseline;
        s.weights.given_back = self.weights_given_back;
        s.weights.recurred = self.weights_recurred;
        s.weights.history_score = self
            .readings
            .history_score
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        s.retries.before_cut = self.retries_before_cut;
        s.retries.last_storm = self.retries_last_storm;
        s.outlier.last_incident = self.outlier_last_incident;
        s.outlier.before_incident = self.outlier_before_incident;
        s.outlier.last_tuned = self.outlier_last_tuned;
        s.slow.before = self.slow_before;
        s.slow.last_seen = self.slow_last_seen;
        let a = &mut s.autoscaling;
        a.baseline = self.hpa_baseline;
        a.last_shortfall = self.last_shortfall;
        a.longest_calm = self.longest_calm;
        a.calm_since = self.calm_since;
        a.last_raise = self.last_raise;
        a.need_per_rps = self.readings.need_per_rps.iter().map(|v| v.0).collect();
        a.growth = self.readings.growth.iter().map(|v| v.0).collect();
        Ok(s)
    }
}

impl GovernorMemory {
    /// Compact JSON, as stored in status.
    pub fn to_json(&self) -> String {
        // Plain structs with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads what [`GovernorMemory::to_json`] wrote, checking the version first (a memory from
    /// another version is refused whole, never half-read).
    pub fn from_json(text: &str) -> Result<Self, MemoryError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let v: Versioned =
            serde_json::from_str(text).map_err(|e| MemoryError::Malformed(e.to_string()))?;
        if v.version != VERSION {
            return Err(MemoryError::Version { found: v.version });
        }
        serde_json::from_str(text).map_err(|e| MemoryError::Malformed(e.to_string()))
    }

    /// The memory without the per-run readings: what changes only when something happens.
    /// An adapter persists when this differs from what it stored last.
    pub fn durable(&self) -> Self {
        let mut m = self.clone();
        for s in m.services.values_mut() {
            s.readings = Readings::default();
        }
        m
    }
}

impl Governor {
    /// Everything the Governor remembers, for a successor to [`Governor::import_memory`].
    pub fn export_memory(&self) -> GovernorMemory {
        GovernorMemory {
            version: VERSION,
            services: self
                .services
                .iter()
                .map(|(name, s)| (name.clone(), ServiceMemory::of(s)))
                .collect(),
        }
    }

    /// Replaces the state of every service in `memory` (others are left alone). All or
    /// nothing: on error the Governor is unchanged.
    pub fn import_memory(&mut self, memory: GovernorMemory) -> Result<(), MemoryError> {
        if memory.version != VERSION {
            return Err(MemoryError::Version {
                found: memory.version,
            });
        }
        let mut restored = Vec::with_capacity(memory.services.len());
        for (name, m) in memory.services {
            restored.push((name, m.restore()?));
        }
        self.services.extend(restored);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_bit_exactly_nan_and_infinity_included() {
        for v in [
            0.1,
            1e-300,
            -2.5e17,
            f64::NAN,
            f64::INFINITY,
            -0.0,
            0.1 + 0.2,
        ] {
            let text = serde_json::to_string(&F(v)).unwrap();
            let back: F = serde_json::from_str(&text).unwrap();
            assert_eq!(back.0.to_bits(), v.to_bits(), "{v} as {text}");
        }
        // 0.1 + 0.2 is 0.30000000000000004: the text keeps every digit that matters.
        assert_eq!(
            serde_json::to_string(&F(0.1 + 0.2)).unwrap(),
            "\"0.30000000000000004\""
        );
    }

    #[test]
    fn another_version_is_refused_whole() {
        let err = GovernorMemory::from_json(r#"{"version":2,"services":{"x":{"bogus":1}}}"#);
        assert_eq!(err, Err(MemoryError::Version { found: 2 }));
        let err = GovernorMemory::from_json(r#"{"version":1,"services":{"x":{"bogus":1}}}"#);
        assert!(
            matches!(&err, Err(MemoryError::Malformed(m)) if m.contains("bogus")),
            "{err:?}"
        );
    }

    #[test]
    fn an_unknown_knob_in_a_streak_is_an_error_and_changes_nothing() {
        let text = r#"{"version":1,"services":{"checkout":{"relaxStreak":{"sails":2}}}}"#;
        let memory = GovernorMemory::from_json(text).unwrap();
        let mut g = Governor::new();
        let err = g.import_memory(memory).unwrap_err();
        assert!(err.to_string().contains("sails"), "{err}");
        assert_eq!(g.services(), 0);
    }

    #[test]
    fn an_empty_governor_exports_an_empty_versioned_memory() {
        let m = Governor::new().export_memory();
        assert_eq!(m.to_json(), r#"{"version":1,"services":{}}"#);
        assert_eq!(GovernorMemory::from_json(&m.to_json()).unwrap(), m);
    }
}
