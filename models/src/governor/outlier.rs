//! Outlier detection: derive `consecutive5xxErrors`, `interval`, `baseEjectionTime` and
//! `maxEjectionPercent` from the endpoints' error base rate and request rate.
//!
//! A healthy endpoint with error rate p serving r requests/s sees a run of k consecutive errors
//! (ending the run with a success) about r·3600·p^k·(1−p) times an hour, and each such run
//! ejects it by mistake. p^k is the binomial probability of k failures in k trials
//! (statrs' `Binomial(p, k).pmf(k)`). The threshold is the smallest k within the policy's bounds
//! that keeps chance ejections under `falseEjectionsPerHour`.
//!
//! Worked example: p = 1%, r = 10 requests/s ⇒ 36,000 requests/h.
//! k = 2: 36,000 · 10⁻⁴ · 0.99 = 3.56/h; k = 3: 36,000 · 10⁻⁶ · 0.99 = 0.0356/h ≤ 0.1 ⇒ k = 3.
//!
//! Which endpoints are outliers — an incident — is `survey`'s (its docs: errors concentrated
//! on some endpoints of a subset, seen by the callers, with room for their traffic); this module
//! derives the setting from what the survey finds.
//!
//! Tighten during an incident: the false-ejection budget is multiplied by 10 (ejecting a healthy pod
//! by mistake now costs less than keeping a bad one), k is the smallest that budget allows and
//! never above the k in force (detection that is off is turned on at that k, not at the
//! policy's lowest, and not at all where no k within the policy's bounds keeps that budget:
//! `beyond_every_threshold`), the sweep interval goes to its lower bound (or stays, where the owner's
//! is already shorter: an incident never slows the sweep), the ejection time doubles within
//! bounds and `maxEjectionPercent` grows to cover the bad endpoints, never beyond its bound.
//! The incident setting is derived from the setting in force when the incident began, so it is
//! a fixed point: a second run of the same incident asks for the same setting, not for the
//! ejection time to double again (30 → 60 → 120 s …).
//!
//! An incident is remembered. An ejected endpoint gets no traffic, so while it is out it looks
//! like no incident at all; when it returns and fails again it is the same incident. The
//! planner therefore relaxes only once no incident has been seen for
//! `max(telemetry.lookback, maxEjectionTime + interval)`: the history the policy judges on, and
//! at least the longest an endpoint can stay ejected (Envoy caps an ejection at
//! `maxEjectionTime`; it is back by the next sweep) — so that a pod failing on and off, ejected
//! and returning, cannot toggle the setting (seen: 30 → 60 → 120 → 30 → 60 → 30 s, 12 changes in
//! 28 minutes, each undoing the last). Relaxing after: the ejection time back to the one in
//! force before the incident (within the policy's bounds), k kept unless the calm budget needs
//! it higher.
//! A slow endpoint (`latency`) counts in the incident too where a timeout cuts its tries short
//! (the slow-endpoint per-try timeout, or one in force below its p99): those 504s are 5xx to
//! Envoy's detector, and only an ejection removes it. A slow endpoint no timeout cuts short
//! answers without a 5xx, so no setting here can remove it; counted, it only had a lower k
//! eject the pods sooner for their ordinary errors (`latency::SlowPlan`).
//!
//! In calm (no incident) k only ever rises, and only when the setting in force breaks the
//! false-ejection budget at the measured base rate: healthy pods are being ejected by chance
//! now, a harm observed (so never while the healthy endpoints have returned no error at all).
//! Lowering k in calm answers nothing observed — no endpoint is failing — and buys at most one
//! loop interval at the start of some future incident, since the incident path lowers k at
//! the first run that sees an outlier; on a clean service it is a change with no
//! justification (the diurnal replay made it, off → 2, an hour in). Detection that is off
//! (k = 0, Istio's default) stays off in calm for the same reason. Because calm k is
//! monotone, noise in the estimated p cannot make it flap. Calm-time raises are tuning and not
//! protection: they relax, behind the warm-up and hysteresis guardrails (a k derived from 30 s
//! of data is not a base rate).
//! The base rate p is pooled over the endpoints that are not outliers, with half an error added
//! (p = (errors + ½)/(requests + 1)) so that zero observed errors does not mean "never fails".

use statrs::distribution::{Binomial, Discrete};

use super::Ctx;
use super::capacity;
use super::observation::OutlierConfig;
use super::plan::{Change, Evidence, Finding, FindingKind, Knob, KnobValue, Origin, Posture};
use crate::policy::Duration;

mod peers;
mod survey;

pub use survey::concentrated;
use survey::{Endpoints, survey};

const INCIDENT_BUDGET_FACTOR: f64 = 10.0;

/// Chance ejections per hour of one healthy endpoint at threshold `k`.
pub fn chance_ejections_per_hour(rate_rps: f64, p: f64, k: u32) -> f64 {
    let p_run = Binomial::new(p.clamp(0.0, 1.0), u64::from(k))
        .map(|b| b.pmf(u64::from(k)))
        .unwrap_or(1.0);
    rate_rps * 3600.0 * p_run * (1.0 - p)
}

/// The smallest k in `[lo, hi]` whose chance ejections stay under `budget`; `hi` if none does.
pub fn threshold(rate_rps: f64, p: f64, budget: f64, lo: u32, hi: u32) -> u32 {
    (lo..=hi)
        .find(|&k| chance_ejections_per_hour(rate_rps, p, k) <= budget)
        .unwrap_or(hi)
}

/// What the planner remembers of the current incident.
#[derive(Default)]
pub struct OutlierState {
    /// The newest run (unix seconds) at which the incident condition held.
    pub(super) last_incident: Option<i64>,
    /// The setting in force when the incident began: the incident setting derives from it.
    pub(super) before_incident: Option<OutlierConfig>,
    /// When a calm-time tuning (a relaxing change) of outlier detection was last applied: the
    /// next one needs a fresh lookback of evidence under the setting now in force.
    pub(super) last_tuned: Option<i64>,
}

impl OutlierState {
    /// The adapter applied `change` at `now`.
    pub fn applied(&mut self, now: i64, change: &Change) {
        if change.knob == Knob::OutlierDetection && change.posture == Posture::Relax {
            self.last_tuned = Some(now);
        }
    }
}

/// How long an incident is remembered after it was last seen: the policy's lookback, and at
/// least the longest ejection plus one sweep (the endpoint is back and judged by then).
pub fn incident_memory_seconds(ctx: &Ctx<'_>) -> i64 {
    let cur = &ctx.obs.config.outlier_detection;
    let ejected = cur
        .max_ejection_time
        .max(cur.base_ejection_time)
        .as_secs_ceil()
        .saturating_add(cur.interval.as_secs_ceil());
    ctx.spec.telemetry.lookback.as_secs_ceil().max(ejected)
}

/// The setting for calm or incident conditions, from the current one (and, in an incident, the
/// one in force when it began, `before`).
fn settings(
    ctx: &Ctx<'_>,
    eps: &Endpoints,
    incident: bool,
    before: &OutlierConfig,
) -> OutlierConfig {
    let od = &ctx.spec.controls.outlier_detection;
    let cur = &ctx.obs.config.outlier_detection;
    let (lo, hi) = (od.consecutive_errors.min, od.consecutive_errors.max);
    let (p, r) = (eps.base_rate, eps.rate_per_endpoint);
    let k = if incident {
        let derived = threshold(
            r,
            p,
            od.false_ejections_per_hour * INCIDENT_BUDGET_FACTOR,
            lo,
            hi,
        );
        // An incident never raises k. Detection that is off (k = 0) has no k to keep: the
        // budget alone decides. (Clamped into the bounds, 0 read as the lower bound, so
        // turning detection on always chose it: k = 2 beside healthy pods failing 2.72 % at
        // 633 req/s, 1,637 chance ejections an hour each.)
        match cur.consecutive_5xx_errors {
            0 => derived,
            now => derived.min(od.consecutive_errors.clamp(now)),
        }
    } else {
        // Up to what the calm budget needs, never down (see the header), and only when the k in
        // force breaks that budget: a k outside the policy's bounds that breaks nothing is the
        // owner's and stays (clamped into 2..=20, a `consecutive5xxErrors: 1` became 2 at the
        // first calm tuning, on no evidence). k = 0 is detection off (Istio's default: no
        // outlierDetection; `consecutive5xxErrors: 0` disables it): turning it on answers no
        // failure, so calm leaves it off and only an incident turns it on (the diurnal replay
        // turned it on, 0 → 2, an hour into a clean day).
        // With no error seen on the healthy endpoints nothing can have been ejected by chance:
        // the budget is then "broken" only by the half error the base rate adds so that zero
        // errors do not mean "never fails", a prior, not a harm observed (a k of 1 was raised
        // to 2 on a mesh that had returned no 5xx at all). Half an error, not one: the counts
        // are rates × step, and a Prometheus rate extrapolates a single error to less or more.
        let k = cur.consecutive_5xx_errors;
        if k == 0
            || eps.base_errors < 0.5
            || chance_ejections_per_hour(r, p, k) <= od.false_ejections_per_hour
        {
            k
        } else {
            k.max(threshold(r, p, od.false_ejections_per_hour, lo, hi))
        }
    };
    // Counted over the service's endpoints, not over each subset's as Envoy does (`clusters`
    // says why).
    let needed_pct = (100 * eps.outliers.len()).div_ceil(eps.count.max(1)) as u32;
    // In calm the share, the sweep interval and the ejection time stay as they are, or go back
    // to what an incident took (below): the policy's bounds limit what the Governor sets, and
    // a setting of the owner's outside them — `maxEjectionPercent: 100`, as Istio's own
    // examples write it, or a 60 s `baseEjectionTime` — is not the Governor's to move in a
    // mesh with nothing wrong (clamped, a calm day cut 100 → 50 % and 60 → 30 s).
    let max_ejection_percent = if incident {
        od.max_ejection_percent
            .clamp(cur.max_ejection_percent.max(needed_pct))
    } else {
        cur.max_ejection_percent
    };
    let (interval, base_ejection_time) = if incident {
        // Twice what was in force before the incident, never shorter than now: the same
        // incident asks for the same setting at every run.
        let doubled = Duration::from_secs_f64(2.0 * before.base_ejection_time.as_secs_f64());
        // The sweep at the policy's lower bound, or the owner's if it is already shorter: an
        // incident never slows the sweep, as it never raises k (the lower bound alone took an
        // owner's 1 s sweep to 5 s).
        let sweep = if cur.interval > Duration::ZERO {
            od.interval.min.min(cur.interval)
        } else {
            od.interval.min
        };
        (
            sweep,
            od.base_ejection_time
                .clamp(doubled)
                .max(od.base_ejection_time.clamp(cur.base_ejection_time)),
        )
    } else {
        // After an incident, the ejection time it doubled goes back to the one in force before
        // it (within the policy's bounds); `before` is the setting in force when no incident is
        // remembered, so in calm nothing moves.
        let base = if before.base_ejection_time == cur.base_ejection_time {
            cur.base_ejection_time
        } else {
            od.base_ejection_time.clamp(before.base_ejection_time)
        };
        (cur.interval, base)
    };
    OutlierConfig {
        consecutive_5xx_errors: k,
        interval,
        base_ejection_time,
        max_ejection_percent,
        // Envoy rejects a cap below the base ejection time: raise the cap with it.
        max_ejection_time: cur.max_ejection_time.max(base_ejection_time),
    }
}

fn evidence(eps: &Endpoints, k: u32, budget: f64) -> Vec<Evidence> {
    vec![
        Evidence::new("endpoints", eps.count as f64),
        Evidence::new("outlier_endpoints", eps.outliers.len() as f64),
        Evidence::new("base_error_rate", eps.base_rate),
        Evidence::new("requests_per_endpoint_rps", eps.rate_per_endpoint),
        Evidence::new("consecutive_5xx_errors", f64::from(k)),
        Evidence::new(
            "chance_ejections_per_hour",
            chance_ejections_per_hour(eps.rate_per_endpoint, eps.base_rate, k),
        ),
        Evidence::new("false_ejection_budget_per_hour", budget),
    ]
}

/// The outlier-detection planner (one run of the control loop).
pub fn plan(
    ctx: &Ctx<'_>,
    state: &mut OutlierState,
    slow: &[String],
    findings: &mut Vec<Finding>,
) -> Option<Change> {
    let Some(mut eps) = survey(ctx) else {
        if !ctx.obs.endpoints.is_empty() {
            findings.push(Finding {
                kind: FindingKind::InsufficientData,
                subject: "endpoints".into(),
                summary: "fewer than two endpoints have recent data: outlier detection left alone"
                    .into(),
                evidence: vec![Evidence::new("endpoints", ctx.obs.endpoints.len() as f64)],
            });
        }
        return None;
    };
    if let Some((worse, rest_rate)) = &eps.spread {
        findings.push(Finding {
            kind: FindingKind::Note,
            subject: format!("endpoints {}", worse.join(", ")),
            summary: format!(
                "{} of {} endpoints fail more than the rest, but the rest fail too ({:.2}% of recent requests, over the error budget): errors spread over every endpoint are an overload or a shared fault, not outliers, and ejecting would only remove capacity; outlier detection left alone",
                worse.len(),
                eps.count,
                rest_rate * 100.0
            ),
            evidence: vec![
                Evidence::new("endpoints", eps.count as f64),
                Evidence::new("worse_endpoints", worse.len() as f64),
                Evidence::new("rest_error_rate", *rest_rate),
            ],
        });
    }
    if let Some((worse, seen)) = &eps.hidden {
        findings.push(Finding {
            kind: FindingKind::Note,
            subject: format!("endpoints {}", worse.join(", ")),
            summary: format!(
                "{} of {} endpoints fail more than the rest, but {}: their retries absorb the errors, ejecting could not make the callers' objectives better met and would move the endpoints' traffic onto the rest; outlier detection left alone",
                worse.len(),
                eps.count,
                seen.describe(ctx),
            ),
            evidence: [
                Evidence::new("endpoints", eps.count as f64),
                Evidence::new("worse_endpoints", worse.len() as f64),
            ]
            .into_iter()
            .chain(seen.evidence())
            .collect(),
        });
    }
    for no in &eps.no_room {
        let rest = format!(
            "the rest would run at {:.0}% CPU utilisation with {}, over {}",
            no.after * 100.0,
            if no.busy { "their traffic" } else { "those" },
            capacity::cpu_limit(ctx).describe(ctx)
        );
        let why = if no.busy {
            format!(
                "they are the busiest and {rest}: busy pods, not broken ones, and ejecting them would move the overload"
            )
        } else {
            format!(
                "they still serve {:.1} req/s successfully and {rest}: ejecting them would overload the rest",
                no.moved_rps
            )
        };
        findings.push(Finding {
            kind: FindingKind::Note,
            subject: format!("endpoints {}", no.endpoints.join(", ")),
            summary: format!(
                "{} of {} endpoints fail more than the rest of their cluster, but {why}; outlier detection left alone for them",
                no.endpoints.len(),
                eps.count,
            ),
            evidence: vec![
                Evidence::new("endpoints", eps.count as f64),
                Evidence::new("held_endpoints", no.endpoints.len() as f64),
                Evidence::new("moved_rps", no.moved_rps),
                Evidence::new("rest_utilization_after", no.after),
            ],
        });
    }
    // Endpoints that fail but are held back (errors spread over the rest, or no room for their
    // traffic) are not calm: the notes above say outlier detection is left alone, and it is.
    // Going on to calm-time tuning counted the held endpoints' errors in the healthy base rate
    // and raised k, then an incident lowered it again: 5 → 6 → 5 with one of three pods failing
    // on and off (`governor_properties`).
    // Held in one subset, an outlier in another is still an incident.
    let held = eps.spread.is_some() || eps.hidden.is_some() || !eps.no_room.is_empty();
    if held && eps.outliers.is_empty() && slow.is_empty() {
        // Errors hidden from the callers by the setting an incident made (an ejected endpoint
        // back and failing, its peers retrying for it) are that incident still: it must not
        // be forgotten, and the setting relaxed, while they last.
        if eps.hidden.is_some() && state.last_incident.is_some() {
            state.last_incident = Some(ctx.obs.end);
        }
        return None;
    }
    if !eps.outliers.is_empty() {
        findings.push(Finding {
            kind: FindingKind::Anomaly,
            subject: format!("endpoints {}", eps.outliers.join(", ")),
            summary: format!(
                "{} of {} endpoints fail significantly more than the rest",
                eps.outliers.len(),
                eps.count
            ),
            evidence: evidence(
                &eps,
                ctx.obs.config.outlier_detection.consecutive_5xx_errors,
                0.0,
            ),
        });
    }
    // A slow endpoint a timeout cuts short is part of the incident: the timeout turns its slow
    // answers into 504s, which only ejection removes (`latency`).
    for name in slow {
        if !eps.outliers.contains(name) {
            eps.outliers.push(name.clone());
        }
    }
    // Only concentrated errors are an outlier incident: a service over its error budget with
    // every endpoint failing alike is overloaded or shares a faulty dependency (see the header).
    let incident = !eps.outliers.is_empty();
    let now = ctx.obs.end;
    if incident {
        state.last_incident = Some(now);
        state
            .before_incident
            .get_or_insert_with(|| ctx.obs.config.outlier_detection.clone());
    } else if let Some(last) = state.last_incident {
        let memory = incident_memory_seconds(ctx);
        let since = now.saturating_sub(last);
        if since < memory {
            // The same incident until proven over: an ejected endpoint looks healthy only
            // because it gets no traffic.
            findings.push(Finding {
                kind: FindingKind::Note,
                subject: "outlier detection".into(),
                summary: format!(
                    "no failing endpoint for {since}s; keeping the incident setting until {memory}s without one (the longest ejection, or the policy's lookback)"
                ),
                evidence: vec![
                    Evidence::new("seconds_since_incident", since as f64),
                    Evidence::new("incident_memory_seconds", memory as f64),
                ],
            });
            return None;
        }
        // The incident is over; the setting from before it stays known until the relaxation
        // below has given back what the incident took (a relaxation the guardrails hold is
        // proposed again at the next run, from the same setting).
        state.last_incident = None;
    }
    if !incident
        && let Some(t) = state.last_tuned
        && now.saturating_sub(t) < ctx.spec.telemetry.lookback.as_secs_ceil()
    {
        // One calm-time tuning per lookback: its evidence must be gathered under the setting
        // it replaces, or noise in the base rate walks k down a step at a time.
        return None;
    }
    if incident && let Some(note) = beyond_every_threshold(ctx, &eps) {
        findings.push(note);
        return None;
    }
    let before = state
        .before_incident
        .clone()
        .unwrap_or_else(|| ctx.obs.config.outlier_detection.clone());
    let change = propose(ctx, &eps, incident, &before, Origin::Planner);
    if !incident && change.is_none() {
        // Nothing left to give back.
        state.before_incident = None;
    }
    change
}

/// Detection that is off stays off when even the policy's largest k would eject the healthy
/// endpoints by chance more often than the incident budget allows (`threshold` answers that k
/// when none fits): at a base rate that high every endpoint is failing, and turning ejection on
/// would take healthy ones out at random, faster than the policy's `falseEjectionsPerHour`
/// times the incident's allowance of 10. Seen on a random mesh: detection turned on at k = 20
/// beside healthy pods failing 71.5 %, 41.7 chance ejections an hour each. Worked example at
/// the policy's default budget (0.1 an hour, so 1 in an incident), r = 10 req/s, k = 20: at
/// p = 0.5, 10 · 3,600 · 0.5²⁰ · 0.5 = 0.017 an hour, under 1, and detection goes on; at
/// p = 0.8, 10 · 3,600 · 0.8²⁰ · 0.2 = 83 an hour, and it does not.
fn beyond_every_threshold(ctx: &Ctx<'_>, eps: &Endpoints) -> Option<Finding> {
    let od = &ctx.spec.controls.outlier_detection;
    if ctx.obs.config.outlier_detection.consecutive_5xx_errors != 0 {
        return None;
    }
    let k = od.consecutive_errors.max;
    let budget = od.false_ejections_per_hour * INCIDENT_BUDGET_FACTOR;
    let chance = chance_ejections_per_hour(eps.rate_per_endpoint, eps.base_rate, k);
    (chance > budget).then(|| Finding {
        kind: FindingKind::Note,
        subject: "outlier detection".into(),
        summary: format!(
            "{} of {} endpoints fail more than the rest, but the rest fail {:.2}% of {:.1} req/s each: even after {k} consecutive 5xx they would be ejected by chance {chance:.3} times/hour, over the incident budget of {budget}; outlier detection stays off",
            eps.outliers.len(),
            eps.count,
            eps.base_rate * 100.0,
            eps.rate_per_endpoint,
        ),
        evidence: evidence(eps, k, budget),
    })
}

/// `ejectOutliers`: the incident setting, whatever the models say.
pub fn eject_outliers(ctx: &Ctx<'_>, findings: &mut Vec<Finding>) -> Option<Change> {
    let Some(eps) = survey(ctx) else {
        findings.push(Finding {
            kind: FindingKind::InsufficientData,
            subject: "endpoints".into(),
            summary: "ejectOutliers: no per-endpoint data, cannot derive thresholds".into(),
            evidence: Vec::new(),
        });
        return None;
    };
    let cur = ctx.obs.config.outlier_detection.clone();
    propose(ctx, &eps, true, &cur, Origin::Planner)
}

fn propose(
    ctx: &Ctx<'_>,
    eps: &Endpoints,
    incident: bool,
    before: &OutlierConfig,
    origin: Origin,
) -> Option<Change> {
    let od = &ctx.spec.controls.outlier_detection;
    let cur = ctx.obs.config.outlier_detection.clone();
    let next = settings(ctx, eps, incident, before);
    if next == cur {
        return None;
    }
    let budget = od.false_ejections_per_hour
        * if incident {
            INCIDENT_BUDGET_FACTOR
        } else {
            1.0
        };
    // Protection answers an incident; anything else is tuning from the calm base rate, slow.
    let posture = if incident {
        Posture::Protect
    } else {
        Posture::Relax
    };
    let chance = chance_ejections_per_hour(
        eps.rate_per_endpoint,
        eps.base_rate,
        next.consecutive_5xx_errors,
    );
    let reason = if incident {
        format!(
            "{} of {} endpoints are failing: ejecting after {} consecutive 5xx (was {}) so bad pods leave fast; healthy pods at {:.2}% errors and {:.1} req/s would be ejected by chance {:.3} times/hour",
            eps.outliers.len(),
            eps.count,
            next.consecutive_5xx_errors,
            cur.consecutive_5xx_errors,
            eps.base_rate * 100.0,
            eps.rate_per_endpoint,
            chance
        )
    } else {
        format!(
            "endpoints fail {:.3}% of {:.1} req/s: {} consecutive 5xx (was {}) keeps chance ejections at {:.3}/hour, under the {} budget",
            eps.base_rate * 100.0,
            eps.rate_per_endpoint,
            next.consecutive_5xx_errors,
            cur.consecutive_5xx_errors,
            chance,
            od.false_ejections_per_hour
        )
    };
    Some(Change {
        knob: Knob::OutlierDetection,
        current: KnobValue::OutlierDetection(cur),
        proposed: KnobValue::OutlierDetection(next.clone()),
        posture,
        origin,
        reason,
        evidence: evidence(eps, next.consecutive_5xx_errors, budget),
        confidence: if incident { 0.9 } else { 0.7 },
        expected_effect: format!(
            "an endpoint is ejected after {} consecutive errors, at most {}% at once, for {} or more",
            next.consecutive_5xx_errors, next.max_ejection_percent, next.base_ejection_time
        ),
        held_by: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_matches_the_worked_example() {
        // p = 1%, r = 10/s: k = 2 gives 3.564/h, k = 3 gives 0.03564/h ≤ 0.1.
        assert!((chance_ejections_per_hour(10.0, 0.01, 2) - 3.564).abs() < 1e-9);
        assert!((chance_ejections_per_hour(10.0, 0.01, 3) - 0.03564).abs() < 1e-9);
        assert_eq!(threshold(10.0, 0.01, 0.1, 1, 20), 3);
        // The policy's bounds win: never below 5, and 2 is the ceiling if nothing fits.
        assert_eq!(threshold(10.0, 0.01, 0.1, 5, 20), 5);
        assert_eq!(threshold(10.0, 0.5, 0.1, 1, 2), 2);
    }
}
