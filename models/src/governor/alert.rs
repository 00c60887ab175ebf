//! Alert-triggered remediation: an Alertmanager alert in, the policy's matching actions out;
//! and, once the alert resolves, whether to give back what the remediation changed.
//!
//! Resolve-then-revert, per knob the remediation changed (newest change of each knob):
//!
//! ```text
//!  value in force ≠ what the remediation set ─► Keep     (the loop or a person changed it since:
//!                                                          theirs now, never overwritten)
//!  now < applied + cooldown                   ─► NotYet   (until then)
//!  telemetry short (coverage, low traffic)    ─► NotYet   (missing data never causes an action)
//!  objectives missed now                      ─► NotYet   (the loop's own judgement: protection
//!                                                          stays while the service is unwell)
//!  otherwise                                  ─► Revert   (a relaxing change back to the value
//!                                                          before the remediation)
//! ```
//!
//! [`Governor::on_resolved`] passes the reverts through the loop's guardrails (freeze, disabled
//! knobs, cooldown, the hourly budget) except hysteresis: hysteresis makes the loop's own noisy
//! signal repeat itself before relaxing, and here the evidence is the resolve itself —
//! Alertmanager resolves only after the alert's expression (both windows of a burn-rate pair)
//! has stopped holding — together with the objectives-met check on the current observation.
//! A revert is a `Relax` change, so the loop's rollback judging watches it like any relaxation:
//! if the objectives worsen after it, the protection comes back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::guardrails::{current_value, data_sufficiency};
use super::plan::{
    Change, Decision, Evidence, Finding, FindingKind, Knob, KnobValue, Origin, Posture,
};
use super::window::{self, RECENT};
use super::{Governor, Observation};
use crate::policy::{PolicySpec, RemediationAction};

/// A firing alert, as the Alertmanager webhook carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub alertname: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The actions of every remediation entry matching the alert, in policy order, each once.
pub fn matching_actions(spec: &PolicySpec, alert: &Alert) -> Vec<RemediationAction> {
    let mut out: Vec<RemediationAction> = Vec::new();
    for rem in &spec.remediation {
        let m = &rem.on_alert;
        let labels_match = m.labels.iter().all(|(k, v)| alert.labels.get(k) == Some(v));
        if m.alertname == alert.alertname && labels_match {
            for a in &rem.actions {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
    }
    out
}

/// What one alert occurrence's remediation applied, as the adapter recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemediationRecord {
    pub alertname: String,
    /// Each applied change with the unix second it was applied at, oldest first.
    pub applied: Vec<(i64, Change)>,
}

/// What to do with one knob a resolved alert's remediation changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "verdict"
)]
pub enum RevertVerdict {
    /// Give the knob back: this relaxing change returns it to its value before the remediation.
    Revert { change: Box<Change> },
    /// Not now; ask again later (at `until` when a time is known).
    NotYet { reason: String, until: Option<i64> },
    /// Leave the knob as it is for good: the value in force is no longer the remediation's.
    Keep { reason: String },
}

/// Whether two values are the same setting: an HPA's running replicas and the cluster's
/// replica cap are state, not the setting a remediation wrote.
fn same_setting(a: &KnobValue, b: &KnobValue) -> bool {
    match (a, b) {
        (KnobValue::Autoscaling(x), KnobValue::Autoscaling(y)) => {
            (x.min_replicas, x.max_replicas, x.target_utilization_percent)
                == (y.min_replicas, y.max_replicas, y.target_utilization_percent)
        }
        _ => a == b,
    }
}

/// Per knob the remediation changed (its newest change), what to do now that the alert resolved
/// at `resolved_at`, judged on `obs` (whose `config` is the configuration in force) at `now`.
/// Pure: the guardrails are applied by [`Governor::on_resolved`].
pub fn revert_verdicts(
    record: &RemediationRecord,
    resolved_at: i64,
    now: i64,
    obs: &Observation,
    spec: &PolicySpec,
) -> Vec<(Knob, RevertVerdict)> {
    let mut newest: BTreeMap<Knob, &(i64, Change)> = BTreeMap::new();
    for a in &record.applied {
        newest.insert(a.1.knob, a);
    }
    let budget = 1.0 - spec.objectives.success_rate;
    let over = window::over_budget(&obs.service_signals, obs.step_seconds, budget);
    let p99 = window::recent_mean(&obs.service_signals.latency_p99, RECENT);
    let coverage = window::coverage(&obs.service_signals.request_rate, RECENT)
        .min(window::coverage(&obs.service_signals.success_rate, RECENT));
    newest
        .into_iter()
        .map(|(knob, (at, c))| {
            let verdict = match current_value(obs, knob) {
                Some(v) if !same_setting(&v, &c.proposed) => RevertVerdict::Keep {
                    reason: format!(
                        "{knob} is {v} now, not the {} alert {} set: changed since, left as it is",
                        c.proposed, record.alertname
                    ),
                },
                None => RevertVerdict::Keep {
                    reason: format!("{knob} is no longer in force (no HPA): nothing to give back"),
                },
                Some(in_force) => verdict(
                    record,
                    c,
                    *at,
                    resolved_at,
                    now,
                    obs,
                    spec,
                    in_force,
                    over,
                    p99,
                    coverage,
                ),
            };
            (knob, verdict)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn verdict(
    record: &RemediationRecord,
    c: &Change,
    at: i64,
    resolved_at: i64,
    now: i64,
    obs: &Observation,
    spec: &PolicySpec,
    in_force: KnobValue,
    over: Option<(f64, f64, bool)>,
    p99: Option<f64>,
    coverage: f64,
) -> RevertVerdict {
    let until = at
        .saturating_add(spec.guardrails.cooldown.as_secs_ceil())
        .max(resolved_at);
    if now < until {
        return RevertVerdict::NotYet {
            reason: format!(
                "the {}-second cooldown since alert {} changed {} has not run out",
                spec.guardrails.cooldown.as_secs_ceil(),
                record.alertname,
                c.knob
            ),
            until: Some(until),
        };
    }
    if let Err(f) = data_sufficiency(obs, spec) {
        return RevertVerdict::NotYet {
            reason: f.summary,
            until: None,
        };
    }
    let (error_rate, requests, significant) = over.unwrap_or((f64::NAN, 0.0, false));
    let latency_missed = p99.is_some_and(|p| p > spec.objectives.latency_p99.as_secs_f64());
    if significant || latency_missed {
        return RevertVerdict::NotYet {
            reason: format!(
                "the objectives are still missed (error rate {:.4} over {requests:.0} requests, budget {:.4}; p99 {:.3}s, objective {}): the protection stays",
                error_rate,
                1.0 - spec.objectives.success_rate,
                p99.unwrap_or(f64::NAN),
                spec.objectives.latency_p99
            ),
            until: None,
        };
    }
    // The value before the remediation, with the state parts (running replicas) as they are now.
    let proposed = match (&c.current, &in_force) {
        (KnobValue::Autoscaling(before), KnobValue::Autoscaling(now_hpa)) => {
            let mut h = before.clone();
            h.current_replicas = now_hpa.current_replicas;
            h.replica_cap = now_hpa.replica_cap;
            KnobValue::Autoscaling(h)
        }
        (before, _) => before.clone(),
    };
    RevertVerdict::Revert {
        change: Box::new(Change {
            knob: c.knob,
            current: in_force,
            proposed,
            posture: Posture::Relax,
            origin: Origin::Alert(record.alertname.clone()),
            reason: format!(
                "alert {} resolved, the cooldown has run out and the objectives are met: {} returns to its value before the remediation",
                record.alertname, c.knob
            ),
            evidence: vec![
                Evidence::new("applied_at", at as f64),
                Evidence::new("resolved_at", resolved_at as f64),
                Evidence::new("recent_error_rate", error_rate),
                Evidence::new("recent_requests", requests),
                Evidence::new("recent_latency_p99_seconds", p99.unwrap_or(f64::NAN)),
            ],
            // How much of the recent window the "objectives met" judgement rests on.
            confidence: coverage,
            expected_effect: format!(
                "{} as it was before alert {}; rolled back by the loop if the objectives worsen",
                c.knob, record.alertname
            ),
            held_by: None,
        }),
    }
}

impl Governor {
    /// The alert of `record` resolved at `resolved_at`: the reverts of what its remediation
    /// changed that may be applied now (`plan.changes`; report each with
    /// [`Governor::applied`]), those a guardrail holds (`plan.held`), and every knob's verdict.
    /// A knob is finished when its verdict is `Keep` or its revert was applied; the others are
    /// asked again later.
    pub fn on_resolved(
        &mut self,
        now: i64,
        record: &RemediationRecord,
        resolved_at: i64,
        obs: &Observation,
        spec: &PolicySpec,
    ) -> (Decision, Vec<(Knob, RevertVerdict)>) {
        let verdicts = match obs.validate(spec) {
            Ok(()) => revert_verdicts(record, resolved_at, now, obs, spec),
            Err(e) => record
                .applied
                .iter()
                .map(|(_, c)| c.knob)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|k| {
                    let reason = format!("unusable observation: {e}");
                    (
                        k,
                        RevertVerdict::NotYet {
                            reason,
                            until: None,
                        },
                    )
                })
                .collect(),
        };
        let findings = verdicts
            .iter()
            .map(|(knob, v)| Finding {
                kind: FindingKind::Note,
                subject: format!("alert {} resolved: {knob}", record.alertname),
                summary: match v {
                    RevertVerdict::Revert { change } => change.reason.clone(),
                    RevertVerdict::NotYet { reason, .. } => format!("not yet: {reason}"),
                    RevertVerdict::Keep { reason } => format!("kept: {reason}"),
                },
                evidence: Vec::new(),
            })
            .collect();
        let proposals = verdicts
            .iter()
            .filter_map(|(_, v)| match v {
                RevertVerdict::Revert { change } => Some((**change).clone()),
                _ => None,
            })
            .collect();
        // Hysteresis is the one guardrail not applied (see the module header): the resolve is
        // the repeated evidence it would ask for.
        let mut guarded = spec.clone();
        guarded.guardrails.hysteresis_runs = 0;
        let state = self.services.entry(obs.service.clone()).or_default();
        let plan = state.guard.admit(now, &guarded, proposals, false, None);
        let decision = Decision {
            service: obs.service.clone(),
            at: now,
            findings,
            plan,
        };
        (decision, verdicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{AlertMatch, Remediation};

    #[test]
    fn labels_must_all_match_and_actions_are_merged_once() {
        let mut spec = PolicySpec::for_service("checkout");
        let rem = |labels: &[(&str, &str)], actions: Vec<RemediationAction>| Remediation {
            on_alert: AlertMatch {
                alertname: "HighErrors".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            actions,
        };
        spec.remediation = vec![
            rem(&[], vec![RemediationAction::ShiftToStable]),
            rem(
                &[("severity", "page")],
                vec![RemediationAction::ShiftToStable, RemediationAction::Freeze],
            ),
        ];
        let alert = |labels: &[(&str, &str)]| Alert {
            alertname: "HighErrors".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(
            matching_actions(&spec, &alert(&[("severity", "ticket")])),
            vec![RemediationAction::ShiftToStable]
        );
        assert_eq!(
            matching_actions(&spec, &alert(&[("severity", "page"), ("team", "x")])),
            vec![RemediationAction::ShiftToStable, RemediationAction::Freeze]
        );
        let other = Alert {
            alertname: "Other".into(),
            labels: BTreeMap::new(),
        };
        assert!(matching_actions(&spec, &other).is_empty());
    }
}

#[cfg(test)]
mod revert_tests {
    //! One remediation throughout: alert `SubsetErrorRatioOutlier` moved weights stable 70 /
    //! canary 30 → 90 / 10 at T0; the policy's cooldown is the default 120 s, its objectives the
    //! default 99.9 % success (an error budget of 0.001) and p99 ≤ 300 ms, low-traffic guard
    //! 1 req/s, coverage 50 %.
    use super::*;
    use crate::governor::{Hold, MeshConfig, Signals};

    const T0: i64 = 1_800_000_000;

    fn spec() -> PolicySpec {
        let mut s = PolicySpec::for_service("checkout");
        s.target.subsets = vec!["stable".into(), "canary".into()];
        s
    }

    fn weights(stable: u32, canary: u32) -> BTreeMap<String, u32> {
        [
            ("stable".to_string(), stable),
            ("canary".to_string(), canary),
        ]
        .into()
    }

    fn record() -> RemediationRecord {
        RemediationRecord {
            alertname: "SubsetErrorRatioOutlier".into(),
            applied: vec![(
                T0,
                Change {
                    knob: Knob::Weights,
                    current: KnobValue::Weights(weights(70, 30)),
                    proposed: KnobValue::Weights(weights(90, 10)),
                    posture: Posture::Protect,
                    origin: Origin::Alert("SubsetErrorRatioOutlier".into()),
                    reason: "shiftToStable".into(),
                    evidence: Vec::new(),
                    confidence: 1.0,
                    expected_effect: String::new(),
                    held_by: None,
                },
            )],
        }
    }

    /// Six 10 s points ending at `end`, `rps` requests/s at `success` each, p99 100 ms, with
    /// `in_force` as the weights in force.
    fn obs(end: i64, rps: f64, success: f64, in_force: BTreeMap<String, u32>) -> Observation {
        Observation {
            service: "checkout".into(),
            end,
            step_seconds: 10,
            service_signals: Signals {
                request_rate: vec![rps; 6],
                success_rate: vec![success; 6],
                latency_p99: vec![0.1; 6],
                ..Default::default()
            },
            callers: Default::default(),
            subsets: Vec::new(),
            endpoints: Vec::new(),
            config: MeshConfig {
                route_timeout: None,
                weights: in_force,
                outlier_detection: Default::default(),
                retries: Default::default(),
                hpa: None,
            },
            pod_startup: None,
        }
    }

    fn only(v: Vec<(Knob, RevertVerdict)>) -> RevertVerdict {
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].0, Knob::Weights);
        v.into_iter().next().map(|(_, v)| v).unwrap()
    }

    #[test]
    fn waits_for_the_cooldown_then_gives_the_weights_back() {
        // Resolved at T0 + 30; at T0 + 60 the cooldown (T0 + 120) has not run out.
        let v = revert_verdicts(
            &record(),
            T0 + 30,
            T0 + 60,
            &obs(T0 + 60, 100.0, 1.0, weights(90, 10)),
            &spec(),
        );
        match only(v) {
            RevertVerdict::NotYet { until, .. } => assert_eq!(until, Some(T0 + 120)),
            other => panic!("{other:?}"),
        }
        // At T0 + 130: 0 errors in the last 4 points (4 × 10 s × 100 req/s = 4000 requests),
        // p99 0.1 s ≤ 0.3 s, coverage 100 % and 100 req/s ≥ 1: revert 90/10 → 70/30.
        let v = revert_verdicts(
            &record(),
            T0 + 30,
            T0 + 130,
            &obs(T0 + 130, 100.0, 1.0, weights(90, 10)),
            &spec(),
        );
        match only(v) {
            RevertVerdict::Revert { change } => {
                assert_eq!(change.current, KnobValue::Weights(weights(90, 10)));
                assert_eq!(change.proposed, KnobValue::Weights(weights(70, 30)));
                assert_eq!(change.posture, Posture::Relax);
                assert_eq!(
                    change.origin,
                    Origin::Alert("SubsetErrorRatioOutlier".into())
                );
                assert_eq!(change.confidence, 1.0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_value_changed_since_is_kept_for_good() {
        // Someone (or the loop) set 100/0 after the remediation's 90/10: not ours to revert.
        let v = revert_verdicts(
            &record(),
            T0 + 30,
            T0 + 600,
            &obs(T0 + 600, 100.0, 1.0, weights(100, 0)),
            &spec(),
        );
        assert!(matches!(only(v), RevertVerdict::Keep { .. }));
    }

    #[test]
    fn missed_objectives_or_low_traffic_keep_the_protection_for_now() {
        // 99 % success: 40 errors in 4000 requests where the budget expects 4;
        // P(X ≥ 40 | Binomial(4000, 0.001)) is far below the 1e-3 significance: still burning.
        let v = revert_verdicts(
            &record(),
            T0 + 30,
            T0 + 600,
            &obs(T0 + 600, 100.0, 0.99, weights(90, 10)),
            &spec(),
        );
        assert!(
            matches!(only(v), RevertVerdict::NotYet { until: None, .. }),
            "still burning"
        );
        // 0.5 req/s is under the 1 req/s guard: low traffic is no evidence of health.
        let v = revert_verdicts(
            &record(),
            T0 + 30,
            T0 + 600,
            &obs(T0 + 600, 0.5, 1.0, weights(90, 10)),
            &spec(),
        );
        assert!(
            matches!(only(v), RevertVerdict::NotYet { until: None, .. }),
            "low traffic"
        );
    }

    #[test]
    fn the_governor_admits_the_revert_through_its_guardrails() {
        let rec = record();
        let mut g = Governor::new();
        g.applied(T0, "checkout", &rec.applied[0].1);
        // At T0 + 130 the cooldown since T0 has run out and one change in the hour is under the
        // default budget of 12: admitted, although no loop run asked to relax (hysteresis is
        // not applied to a resolve).
        let o = obs(T0 + 130, 100.0, 1.0, weights(90, 10));
        let (d, verdicts) = g.on_resolved(T0 + 130, &rec, T0 + 30, &o, &spec());
        assert!(matches!(verdicts[0].1, RevertVerdict::Revert { .. }));
        assert_eq!(d.plan.changes.len(), 1, "{d:?}");
        assert_eq!(
            d.plan.changes[0].proposed,
            KnobValue::Weights(weights(70, 30))
        );
        // A policy freeze holds it: verdict Revert, but nothing admitted.
        let mut frozen = spec();
        frozen.guardrails.freeze = true;
        let (d, _) = g.on_resolved(T0 + 130, &rec, T0 + 30, &o, &frozen);
        assert!(d.plan.changes.is_empty());
        assert_eq!(d.plan.held[0].held_by, Some(Hold::Freeze { until: None }));
        // A spent hourly budget holds it: 12 other changes applied in the hour.
        let mut busy = Governor::new();
        busy.applied(T0, "checkout", &rec.applied[0].1);
        let mut other = rec.applied[0].1.clone();
        other.knob = Knob::Retries;
        for i in 1..=11 {
            busy.applied(T0 + i, "checkout", &other);
        }
        let (d, _) = busy.on_resolved(T0 + 130, &rec, T0 + 30, &o, &spec());
        assert!(d.plan.changes.is_empty(), "{d:?}");
        assert_eq!(
            d.plan.held[0].held_by,
            Some(Hold::MaxChangesPerHour { limit: 12 })
        );
    }
}
