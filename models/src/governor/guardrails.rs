//! Every guardrail, in one place: insufficient data, freeze, disabled knobs, hysteresis,
//! cooldown, `maxChangesPerHour`, and rollback on regression — and no relaxing a rolled-back
//! knob again within one lookback.
//!
//! Planners propose; only [`GuardState::admit`] decides what may be applied. Order of checks,
//! most to least fundamental: freeze (a human said stop), disabled, no relaxing after a
//! rollback (below), warm-up (calm-time tuning —
//! objectives met — of a setting the Governor has not touched waits until the service has had usable data for one
//! `telemetry.lookback`, the history the policy says its models judge on: a base rate estimated
//! from 30 s of traffic is not a base rate), hysteresis (relaxing must be asked for several runs
//! in a row), cooldown and the hourly budget. Protective changes skip the warm-up: each planner
//! protects only on its own significance test, which already demands the evidence it needs.
//! Except one asked for by a prediction while the objectives are met (`Origin::Forecast`, a
//! scale-ahead): that is calm-time tuning too, and waits. A rollback skips cooldown
//! and the hourly budget (undoing harm must not wait behind the change that caused it) but not
//! freeze. Only relaxing changes are rolled back: after a protective one (cut a canary, stop
//! retries) a worse objective most likely means the incident it answers is growing.
//!
//! After a rollback, the knob is not relaxed again for one `telemetry.lookback` (the history
//! the policy says its models judge on, as for the warm-up): otherwise a planner that still
//! sees the evidence that led to the change proposes it again once cooldown ends, and the knob
//! goes A → B → A → B (found on a pod failing on and off: retries 2 → 3, rolled back to 2, 3
//! again 154 runs later). Protective changes of it still pass.
//! The memory is the applied-change record the Governor already keeps and exports, so a
//! restart keeps it too.

use std::collections::BTreeMap;

use serde::Serialize;

use super::observation::Observation;
use super::plan::{Change, Evidence, Finding, FindingKind, Hold, Knob, Origin, Plan, Posture};
use super::window::{self, RECENT};
use crate::policy::PolicySpec;

/// The service-level objectives as measured over the newest points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub error_rate: f64,
    /// Requests the error rate is measured over (its evidence).
    pub requests: f64,
    /// Seconds; NaN when latency is not collected, or when the points hold too few requests
    /// for a p99 to be a percentile.
    pub latency_p99: f64,
}

impl Snapshot {
    pub fn of(obs: &Observation) -> Option<Self> {
        let s = &obs.service_signals;
        let (error_rate, requests) = window::error_rate(s, RECENT, obs.step_seconds)?;
        // A point's p99 over fewer than 100 requests is its slowest request
        // (`window::MIN_REQUESTS_FOR_P99`): a rollback judged on it would undo a change on
        // one slow request. Such a snapshot judges errors only, on their binomial evidence.
        let latency_p99 = if window::p99_is_a_percentile(s, RECENT, obs.step_seconds) {
            window::recent_mean(&s.latency_p99, RECENT).unwrap_or(f64::NAN)
        } else {
            f64::NAN
        };
        Some(Self {
            error_rate,
            requests,
            latency_p99,
        })
    }
}

/// A change an adapter reported as applied.
#[derive(Debug, Clone)]
pub(super) struct Applied {
    pub(super) at: i64,
    pub(super) change: Change,
    pub(super) before: Option<Snapshot>,
    /// Already judged for regression (once is enough: a rollback is not itself rolled back).
    pub(super) judged: bool,
}

/// Per-service guardrail memory.
#[derive(Debug, Clone, Default)]
pub struct GuardState {
    pub(super) applied: Vec<Applied>,
    pub(super) relax_streak: BTreeMap<Knob, u32>,
    pub(super) freeze_until: Option<i64>,
    pub(super) last_snapshot: Option<Snapshot>,
    /// When the usable data began (unix seconds): the oldest point of the first run with usable
    /// data. The warm-up counts from here.
    pub(super) data_since: Option<i64>,
    /// Whether the objectives are met now (not significantly over the error budget, p99 within
    /// its objective): only then is a relaxing change calm-time tuning, held by the warm-up.
    pub(super) calm: bool,
}

/// Whether the telemetry is good enough to act on; if not, the findings saying why.
pub fn data_sufficiency(obs: &Observation, spec: &PolicySpec) -> Result<(), Finding> {
    let g = &spec.guardrails;
    let s = &obs.service_signals;
    let cov =
        window::coverage(&s.request_rate, RECENT).min(window::coverage(&s.success_rate, RECENT));
    let rate = window::recent_mean(&s.request_rate, RECENT);
    let evidence = vec![
        Evidence::new("recent_data_coverage", cov),
        Evidence::new("request_rate_rps", rate.unwrap_or(f64::NAN)),
        Evidence::new("min_requests_per_second", g.min_requests_per_second),
    ];
    if cov < g.min_data_coverage || rate.is_none() {
        return Err(Finding {
            kind: FindingKind::InsufficientData,
            subject: "service".into(),
            summary: format!(
                "only {:.0}% of the recent telemetry points are present (need {:.0}%): holding every knob until data returns",
                cov * 100.0,
                g.min_data_coverage * 100.0
            ),
            evidence,
        });
    }
    let rate = rate.unwrap_or(0.0);
    if rate < g.min_requests_per_second {
        return Err(Finding {
            kind: FindingKind::InsufficientData,
            subject: "service".into(),
            summary: format!(
                "traffic is {rate:.2} requests/s, below the {:.2} requests/s needed to judge: low traffic is not failure, holding",
                g.min_requests_per_second
            ),
            evidence,
        });
    }
    Ok(())
}

impl GuardState {
    /// Records a change the adapter applied at `now`.
    pub fn applied(&mut self, now: i64, change: &Change) {
        self.applied.push(Applied {
            at: now,
            change: change.clone(),
            before: self.last_snapshot,
            // A protective change is not blamed for the incident it answers growing: it is
            // relaxed by its planner, behind hysteresis, once the signal clears.
            judged: change.origin == Origin::Rollback || change.posture == Posture::Protect,
        });
        // Keep what cooldown, the hourly budget and rollback can still need (and the rollbacks
        // that hold relaxing, for up to this long: a lookback beyond 2 h is capped here).
        let horizon = now.saturating_sub(2 * 3600);
        self.applied.retain(|a| a.at > horizon);
    }

    /// When `knob` was last changed, if within the history kept (the last 2 h).
    pub fn last_applied(&self, knob: Knob) -> Option<i64> {
        self.applied
            .iter()
            .filter(|a| a.change.knob == knob)
            .map(|a| a.at)
            .max()
    }

    /// Freezes every change until `until` (a `freeze` remediation action).
    pub fn freeze_until(&mut self, until: i64) {
        self.freeze_until = Some(self.freeze_until.map_or(until, |t| t.max(until)));
    }

    /// Remembers the objectives as they are now (the "before" of the next applied change),
    /// whether they are met, and that the service had usable data at `now`.
    pub fn observe(&mut self, now: i64, obs: &Observation, spec: &PolicySpec) {
        self.last_snapshot = Snapshot::of(obs);
        let budget = 1.0 - spec.objectives.success_rate;
        let errors_ok = window::over_budget(&obs.service_signals, obs.step_seconds, budget)
            .is_none_or(|(_, _, over)| !over);
        // Written positively so that a missing p99 is no evidence of a latency incident.
        let latency_bad = window::recent_mean(&obs.service_signals.latency_p99, RECENT)
            .is_some_and(|p| p > spec.objectives.latency_p99.as_secs_f64());
        self.calm = errors_ok && !latency_bad;
        let coverage = spec.guardrails.min_data_coverage;
        self.data_since
            .get_or_insert_with(|| usable_since(obs, coverage).map_or(now, |t| t.min(now)));
    }

    /// Rollbacks for applied changes after which the objectives got worse: error rate
    /// significantly (binomial test at `OVER_BUDGET_ALPHA`) over the objective's budget, 1.5×
    /// and half a budget above what it was, or p99 over the objective and 20% above what it was. Judged once, after at least one further run.
    pub fn rollbacks(
        &mut self,
        now: i64,
        spec: &PolicySpec,
        current: &Observation,
        findings: &mut Vec<Finding>,
    ) -> Vec<Change> {
        let g = &spec.guardrails;
        if !g.rollback_on_regression {
            return Vec::new();
        }
        let Some(now_snap) = self.last_snapshot else {
            return Vec::new();
        };
        let budget = 1.0 - spec.objectives.success_rate;
        let p99_objective = spec.objectives.latency_p99.as_secs_f64();
        let window = g.regression_window.as_secs_ceil();
        let settle = spec.telemetry.interval.as_secs_ceil().max(1);
        let mut out: Vec<Change> = Vec::new();
        // Only the newest applied change of each knob can be reverted: its `current` is what
        // the knob was just before it.
        let mut newest: BTreeMap<Knob, usize> = BTreeMap::new();
        for (i, a) in self.applied.iter().enumerate() {
            newest.insert(a.change.knob, i);
        }
        for (_, i) in newest {
            let a = &mut self.applied[i];
            let age = now.saturating_sub(a.at);
            if a.judged || age < settle || age > window {
                continue;
            }
            let Some(before) = a.before else {
                a.judged = true;
                continue;
            };
            // Worse, and significantly so: the errors now would happen by chance at most
            // OVER_BUDGET_ALPHA of the time at the worse-than rate (a handful of errors in a
            // few thousand requests is noise, not a regression).
            let worse_than = (before.error_rate * 1.5)
                .max(before.error_rate + budget * 0.5)
                .max(budget);
            let errors_worse = now_snap.error_rate > worse_than
                && window::binomial_tail(
                    now_snap.error_rate * now_snap.requests,
                    now_snap.requests,
                    worse_than,
                ) <= window::OVER_BUDGET_ALPHA;
            let latency_worse = now_snap.latency_p99 > p99_objective
                && now_snap.latency_p99 > before.latency_p99 * 1.2;
            if !(errors_worse || latency_worse) {
                continue;
            }
            a.judged = true;
            let evidence = vec![
                Evidence::new("error_rate_before", before.error_rate),
                Evidence::new("error_rate_now", now_snap.error_rate),
                Evidence::new("latency_p99_before_s", before.latency_p99),
                Evidence::new("latency_p99_now_s", now_snap.latency_p99),
                Evidence::new("seconds_since_change", age as f64),
            ];
            let what = if errors_worse {
                format!(
                    "the error rate rose from {:.3}% to {:.3}%",
                    before.error_rate * 100.0,
                    now_snap.error_rate * 100.0
                )
            } else {
                format!(
                    "p99 latency rose from {:.0} ms to {:.0} ms",
                    before.latency_p99 * 1000.0,
                    now_snap.latency_p99 * 1000.0
                )
            };
            findings.push(Finding {
                kind: FindingKind::Regression,
                subject: format!("{} change applied {age}s ago", a.change.knob),
                summary: format!("{what} after the {} change", a.change.knob),
                evidence: evidence.clone(),
            });
            // Revert to what was in force before, unless the knob has moved on since.
            let in_force = current_value(current, a.change.knob);
            if in_force.as_ref() != Some(&a.change.proposed) {
                continue;
            }
            out.push(Change {
                knob: a.change.knob,
                current: a.change.proposed.clone(),
                proposed: a.change.current.clone(),
                posture: Posture::Protect,
                origin: Origin::Rollback,
                reason: format!(
                    "{what} in the {age}s since this {} change was applied; reverting it",
                    a.change.knob
                ),
                evidence,
                confidence: 0.6,
                expected_effect: format!(
                    "the {} setting returns to what was in force before the regression",
                    a.change.knob
                ),
                held_by: None,
            });
        }
        out
    }

    /// Splits proposals into the changes that may be applied now and those held back, and
    /// advances the hysteresis counters (`count_runs` is false for alert-triggered plans, which
    /// are not a run of the control loop). `needs`: `(a, b)` when the proposed change of knob
    /// `a` works only together with the proposed change of knob `b` (listed before it): if that
    /// one is held, so is `a`'s (`Hold::WaitsFor`).
    pub fn admit(
        &mut self,
        now: i64,
        spec: &PolicySpec,
        proposals: Vec<Change>,
        count_runs: bool,
        needs: Option<(Knob, Knob)>,
    ) -> Plan {
        if count_runs {
            for knob in Knob::ALL {
                let relaxing = proposals
                    .iter()
                    .any(|c| c.knob == knob && c.posture == Posture::Relax);
                let streak = self.relax_streak.entry(knob).or_insert(0);
                *streak = if relaxing {
                    streak.saturating_add(1)
                } else {
                    0
                };
            }
        }
        let mut recent_changes = self
            .applied
            .iter()
            .filter(|a| now.saturating_sub(a.at) < 3600 && a.change.origin != Origin::Rollback)
            .count() as u32;
        let mut plan = Plan::default();
        for mut c in proposals {
            let waits = needs.and_then(|(a, b)| {
                (c.knob == a && plan.held.iter().any(|h| h.knob == b))
                    .then_some(Hold::WaitsFor { knob: b })
            });
            let hold = waits.or_else(|| self.hold_for(now, spec, &c, recent_changes));
            match hold {
                Some(h) => {
                    c.held_by = Some(h);
                    plan.held.push(c);
                }
                None => {
                    if c.origin != Origin::Rollback {
                        recent_changes += 1;
                    }
                    plan.changes.push(c);
                }
            }
        }
        plan
    }

    fn hold_for(
        &self,
        now: i64,
        spec: &PolicySpec,
        c: &Change,
        recent_changes: u32,
    ) -> Option<Hold> {
        let g = &spec.guardrails;
        if g.freeze {
            return Some(Hold::Freeze { until: None });
        }
        if let Some(until) = self.freeze_until
            && now < until
        {
            return Some(Hold::Freeze { until: Some(until) });
        }
        let enabled = match c.knob {
            Knob::Weights => spec.controls.load_balancing.enabled,
            Knob::OutlierDetection => spec.controls.outlier_detection.enabled,
            Knob::Retries => spec.controls.retries.enabled,
            Knob::Autoscaling => spec.controls.autoscaling.enabled,
        };
        if !enabled {
            return Some(Hold::Disabled);
        }
        if c.origin == Origin::Rollback {
            return None;
        }
        // No relaxing change of a knob within a lookback of a rollback of it. Not only the same
        // value: a planner that still sees the evidence proposes nearly the same thing (a
        // per-try timeout from this run's p99), and exact matching would let it through.
        let lookback = spec.telemetry.lookback.as_secs_ceil();
        if c.posture == Posture::Relax
            && let Some(at) = self
                .applied
                .iter()
                .filter(|a| a.change.origin == Origin::Rollback && a.change.knob == c.knob)
                .map(|a| a.at)
                .max()
        {
            let remaining = at.saturating_add(lookback).saturating_sub(now);
            if remaining > 0 {
                return Some(Hold::RolledBack {
                    remaining_seconds: remaining,
                });
            }
        }
        // Warm-up: only for calm-time tuning of the setting the Governor found (objectives met,
        // no change of this knob on record). While an objective is missed the planners' own
        // significance tests decide (e.g. retries for independent failures); undoing the
        // Governor's own protective change is the incident memory's and hysteresis's business.
        // A change asked for by a prediction (scale ahead of demand not yet seen) is tuning
        // too while the objectives are met: the model is only as good as the history behind
        // it, and 45 s of it (three points) made a calm service's HPA target go 70 → 40 %.
        if (c.posture == Posture::Relax || c.origin == Origin::Forecast)
            && self.calm
            && !self.applied.iter().any(|a| a.change.knob == c.knob)
        {
            let since = self.data_since.unwrap_or(now);
            let remaining = since.saturating_add(lookback).saturating_sub(now);
            if remaining > 0 {
                return Some(Hold::Warmup {
                    remaining_seconds: remaining,
                });
            }
        }
        if c.posture == Posture::Relax {
            let seen = self.relax_streak.get(&c.knob).copied().unwrap_or(0);
            if seen < g.hysteresis_runs {
                return Some(Hold::Hysteresis {
                    seen,
                    needed: g.hysteresis_runs,
                });
            }
        }
        if let Some(last) = self
            .applied
            .iter()
            .filter(|a| a.change.knob == c.knob)
            .map(|a| a.at)
            .max()
        {
            let remaining = last
                .saturating_add(g.cooldown.as_secs_ceil())
                .saturating_sub(now);
            if remaining > 0 {
                return Some(Hold::Cooldown {
                    remaining_seconds: remaining,
                });
            }
        }
        if recent_changes >= g.max_changes_per_hour {
            return Some(Hold::MaxChangesPerHour {
                limit: g.max_changes_per_hour,
            });
        }
        None
    }
}

/// When the usable history of an observation begins (unix seconds): the oldest point from
/// which on at least `min_coverage` of the request-rate points are present (the policy's
/// `minDataCoverage`, the same bar the newest points must clear). A Governor that starts beside
/// a Prometheus with history sees it in its first observation (the adapter fetches one
/// lookback) and its models learn from all of it, so the warm-up counts from there, not from
/// the first run; a lone old point in an empty window does not count as history.
fn usable_since(obs: &Observation, min_coverage: f64) -> Option<i64> {
    let rate = &obs.service_signals.request_rate;
    let (mut present, mut oldest) = (0usize, None);
    for (back, v) in rate.iter().rev().enumerate() {
        if v.is_finite() {
            present += 1;
        }
        if present as f64 >= min_coverage * (back + 1) as f64 && present > 0 {
            oldest = Some(back);
        }
    }
    let back = i64::try_from(oldest?).ok()?;
    Some(
        obs.end
            .saturating_sub(back.saturating_mul(obs.step_seconds.max(1))),
    )
}

/// The value of a knob in force in an observation.
pub fn current_value(obs: &Observation, knob: Knob) -> Option<super::plan::KnobValue> {
    use super::plan::KnobValue;
    let c = &obs.config;
    Some(match knob {
        Knob::Weights => KnobValue::Weights(c.weights.clone()),
        Knob::OutlierDetection => KnobValue::OutlierDetection(c.outlier_detection.clone()),
        Knob::Retries => KnobValue::Retries(c.retries.clone()),
        Knob::Autoscaling => KnobValue::Autoscaling(c.hpa.clone()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governor::observation::{MeshConfig, Signals};

    fn rates(end: i64, request_rate: Vec<f64>) -> Observation {
        Observation {
            service: "checkout".into(),
            end,
            step_seconds: 15,
            service_signals: Signals {
                request_rate,
                ..Default::default()
            },
            callers: Default::default(),
            subsets: Vec::new(),
            endpoints: Vec::new(),
            config: MeshConfig::default(),
            pod_startup: None,
        }
    }

    #[test]
    fn usable_history_starts_where_coverage_holds() {
        let n = f64::NAN;
        // 8 points at 15 s ending at t = 1000, the oldest present but then three missing.
        // From the newest back: 4 of 4 present, 4 of 5 (0.8), 4 of 6 (0.67), 4 of 7, 5 of 8
        // (0.625). At 75 % coverage the usable history is the newest 5 points: it begins 4
        // steps back, 1000 − 60 = 940. At 50 % all 8 count: 1000 − 105 = 895.
        let obs = rates(1000, vec![1.0, n, n, n, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(usable_since(&obs, 0.75), Some(940));
        assert_eq!(usable_since(&obs, 0.5), Some(895));
        // Nothing present: no history (the warm-up then counts from the run).
        assert_eq!(usable_since(&rates(1000, vec![n; 4]), 0.5), None);
    }
}
