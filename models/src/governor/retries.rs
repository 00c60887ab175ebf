//! Retries: as many as independent transient failures justify, none in an overload.
//!
//! With independent failures at rate p, n retries leave p^(n+1) of requests failing and cost
//! (1 − p^(n+1)) / (1 − p) attempts per request. Worked example: p = 2%, objective 99.9%
//! (budget 0.1%, aim 0.01%): n = 1 leaves 0.04%, too many; n = 2 leaves 0.0008% at a cost of
//! (1 − 8·10⁻⁶)/0.98 = 1.0204 attempts per request, inside a 20% retry budget ⇒ 2 retries.
//!
//! p is the per-try rate. What the callers see (`Observation::callers`) is what the retries in
//! force leave, p^(a+1) with a retries, so p is its (a+1)-th root: 0.25% of requests failing
//! after 1 retry is a 5% per-try rate, which needs 3 retries (5%⁴ = 0.0006%), not the 1 that
//! 0.25% alone suggests. The server's side counts every try, so its rate is p itself; it is
//! what the planner goes by where the callers' side is not reported, and it then judges "over
//! budget" by the tries, which overstates what the callers get.
//! This holds only for failures that are retried, and the success signal does not say which
//! 5xx they were: the planner raises retries only when `retryOn` retries every 5xx, or adds
//! `5xx` to it when the policy declares the requests idempotent (`retries.idempotent`), and
//! otherwise reports that more attempts may not reach the failures (Istio's default retries a
//! 503, never a 500).
//!
//! The callers' side also shows failures the server never sees. Retries can only make the
//! callers fail less than the server's tries; where they fail significantly more, and the
//! per-try timeout is under the server's median, the callers are abandoning tries the server
//! completes, and the timeout goes to twice the p99 ([`unseen_timeouts`]).
//!
//! When failures come from overload they are not independent: they rise with load and latency,
//! and each retry is more load on a saturated service — a retry storm. The planner tells the
//! two apart by the correlation, over the recent window, of the error rate with the request
//! rate and with p99 latency (both ≥ 0.6 while over budget = overload). It stops retries
//! (0 attempts) only when they are a material share of the load, more than the policy's retry
//! budget allows (`budgetPercent`, 20 %): 2 retries at 3 % of tries failing cost 1.03 attempts
//! per request, and cutting them frees 3 % of capacity while every failure they answered
//! reaches a user. The previous setting returns behind the hysteresis guardrail once the
//! errors are back within budget and no storm has been seen for one `telemetry.lookback`.
//!
//! What a retry costs the server depends on how the try failed. A try that times out is wasted
//! work: the caller gives up while the server works on (Envoy resets the stream; the application
//! rarely notices), and the retry queues the same work again — the storm proper. A failure the
//! server answers before any timeout is, in an overload, mostly a full queue's or a circuit
//! breaker's fast 503, and a retry of it costs next to nothing. The telemetry does not say what
//! each failure cost, but its latency quantiles bound how many tries can have reached the
//! timeout ([`timed_out_share`]); only those count towards the storm. Worked example (a random
//! mesh, `simulator/tests/scenario_fuzz.rs`): a 2× surge on one-pod subsets, 37 % of tries
//! failing, 2 retries = 1.51 attempts per request; but the route timeout is 1 s and every recent
//! p99 was under 500 ms (the lower edge of the histogram bucket holding 1 s), so at most 1 % of
//! tries timed out: 1.01 attempts' worth of wasted work, no storm. Cutting the retries there cost
//! 2 SLO-violation minutes of 30 against leaving them. Where no timeout bounds a try, nothing
//! bounds the share, and every failure counts as costly, as before.

use homeostat_dataplane::config::RetryCondition;
use homeostat_dataplane::histogram::bucket_floor_ms;

use super::Ctx;
use super::observation::RetryConfig;
use super::plan::{Change, Evidence, Finding, FindingKind, Knob, KnobValue, Origin, Posture};
use super::window::{self, RECENT};
use crate::policy::Duration;

/// Independent failures should leave at most this share of the error budget.
const RESIDUAL_SHARE: f64 = 0.1;

#[derive(Default)]
pub struct RetriesState {
    /// The setting in force before the Governor cut retries, to restore after.
    pub(super) before_cut: Option<RetryConfig>,
    /// The newest run (unix seconds) that diagnosed a retry storm.
    pub(super) last_storm: Option<i64>,
}

impl RetriesState {
    /// Called when a protective retries change is applied (from any origin), so that the
    /// planner can restore the setting once the overload is over.
    pub fn remember_before_cut(&mut self, before: &RetryConfig) {
        if self.before_cut.is_none() {
            self.before_cut = Some(before.clone());
        }
    }
}

/// Attempts per request with `retries` retries at independent failure rate `p`.
pub fn load_factor(p: f64, retries: u32) -> f64 {
    let p = p.clamp(0.0, 1.0 - 1e-12);
    // Capped: beyond 1,000 retries p^(n+1) is 0 for any p < 1 anyway.
    let n = retries.min(1000) as i32;
    (1.0 - p.powi(n + 1)) / (1.0 - p)
}

/// Fewest retries (≤ `max`) that bring failures under `target` within the load budget; the
/// most the budget allows if none reaches the target.
pub fn retries_needed(p: f64, target: f64, max: u32, budget_percent: f64) -> u32 {
    let allowed = 1.0 + budget_percent / 100.0;
    let mut best = 0;
    for n in 0..=max {
        if load_factor(p, n) > allowed {
            break;
        }
        best = n;
        if p.powi(n as i32 + 1) <= target {
            break;
        }
    }
    best
}

/// How much of the recent traffic can have timed out, and what says so.
struct TimedOut {
    /// At most this share of recent tries reached the timeout.
    share: f64,
    /// The timeout a try is held to (the per-try timeout, else the route timeout).
    timeout: Duration,
    /// The quantile that bounds the share (`"p99"`, `"p90"`, `"p50"`) and its largest recent value.
    quantile: &'static str,
    value: f64,
}

/// The most a share of the recent tries can have timed out, from the latency quantiles: a
/// quantile `q` at or below [`bucket_floor_ms`] of the timeout in each of the newest
/// [`RECENT`] points that has one means at least `q` of each point's tries ended before the
/// timeout, so at most 1 − q timed out: `histogram_quantile` never reads a sample above a
/// bucket's lower edge as at or below it. (A point too small for its p99 to be a percentile
/// reports its slowest try, which only makes the bound safer.) The largest `q` that holds is
/// taken. `None` when no timeout bounds a try or no quantile holds.
fn timed_out_share(ctx: &Ctx<'_>) -> Option<TimedOut> {
    let cfg = &ctx.obs.config;
    let timeout = try_deadline(cfg.retries.per_try_timeout, cfg.route_timeout)?;
    let floor_s = bucket_floor_ms(timeout.as_secs_f64() * 1e3) / 1e3;
    let s = &ctx.obs.service_signals;
    [
        ("p99", 0.99, &s.latency_p99),
        ("p90", 0.9, &s.latency_p90),
        ("p50", 0.5, &s.latency_p50),
    ]
    .into_iter()
    .find_map(|(quantile, q, values)| {
        let value = window::recent(values, RECENT).fold(f64::NAN, f64::max);
        (value <= floor_s).then_some(TimedOut {
            share: 1.0 - q,
            timeout,
            quantile,
            value,
        })
    })
}

struct Mode {
    error_rate: f64,
    corr_load: Option<f64>,
    corr_latency: Option<f64>,
    utilization: Option<f64>,
    /// Significantly over the error budget (not just noise).
    over_budget: bool,
    overload: bool,
}

fn diagnose(ctx: &Ctx<'_>) -> Option<Mode> {
    let s = &ctx.obs.service_signals;
    let budget = 1.0 - ctx.spec.objectives.success_rate;
    let (error_rate, _, over) = window::over_budget(s, ctx.obs.step_seconds, budget)?;
    let trend = window::LoadTrend::of(s);
    let (corr_load, corr_latency) = (trend.with_load, trend.with_latency);
    let utilization = window::recent_mean(&s.utilization, RECENT);
    let correlated = trend.load_driven();
    let saturated = utilization.is_some_and(|u| u >= 0.95);
    Some(Mode {
        error_rate,
        corr_load,
        corr_latency,
        utilization,
        over_budget: over,
        overload: over && (correlated || saturated),
    })
}

/// The diagnosis, and the attempts per request `attempts` retries cost at failure rate `rate`
/// (the per-try rate where it is known; otherwise the observed one).
fn evidence(m: &Mode, attempts: u32, rate: f64) -> Vec<Evidence> {
    vec![
        Evidence::new("error_rate", m.error_rate),
        Evidence::new("corr_errors_load", m.corr_load.unwrap_or(f64::NAN)),
        Evidence::new(
            "corr_errors_latency_p99",
            m.corr_latency.unwrap_or(f64::NAN),
        ),
        Evidence::new("utilization", m.utilization.unwrap_or(f64::NAN)),
        Evidence::new("attempts_per_request", load_factor(rate, attempts)),
    ]
}

/// Why a retries change is proposed and what it should do: the `Change`'s own fields.
struct Why {
    reason: String,
    evidence: Vec<Evidence>,
    confidence: f64,
    expected_effect: String,
}

/// `most`: the retries per request the change may ask for (`Retries::attempts_ceiling` of the
/// setting the owner made: the one in force, or the one an overload cut that is restored).
fn change(
    ctx: &Ctx<'_>,
    most: u32,
    mut next: RetryConfig,
    posture: Posture,
    why: Why,
) -> Option<Change> {
    let Why {
        reason,
        evidence,
        confidence,
        expected_effect,
    } = why;
    // Whatever the reason for a change, what it proposes is what gets applied: within the
    // policy's bounds, and no per-try timeout that could not fire before the route's own.
    let cur = &ctx.obs.config.retries;
    next.attempts = next.attempts.min(most);
    // A per-try timeout the change leaves as it is stays the owner's, in bounds or not.
    if next.per_try_timeout != cur.per_try_timeout {
        next.per_try_timeout = bounded_per_try(ctx, next.per_try_timeout);
    }
    (next != *cur).then(|| Change {
        knob: Knob::Retries,
        current: KnobValue::Retries(cur.clone()),
        proposed: KnobValue::Retries(next),
        posture,
        origin: Origin::Planner,
        reason,
        evidence,
        confidence,
        expected_effect,
        held_by: None,
    })
}

/// How long a try may run before Envoy ends it with a 504: the per-try timeout or the route's
/// (which covers the first try too), whichever is shorter; `None` (or zero, Envoy's "no
/// timeout") for both means a try runs until it answers.
pub fn try_deadline(per_try: Option<Duration>, route: Option<Duration>) -> Option<Duration> {
    let positive = |d: Option<Duration>| d.filter(|d| *d > Duration::ZERO);
    match (positive(per_try), positive(route)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A per-try timeout within the policy's bounds, or none when it is not under the route timeout:
/// Envoy's route timeout covers every try, so a per-try timeout at or above it never fires first
/// and only states something false (Istio: "perTryTimeout … must be less than the route
/// timeout" for a retry to happen).
pub fn bounded_per_try(ctx: &Ctx<'_>, t: Option<Duration>) -> Option<Duration> {
    let t = ctx.spec.controls.retries.per_try_timeout.clamp(t?);
    match ctx.obs.config.route_timeout {
        Some(route) if route > Duration::ZERO && t >= route => None,
        _ => Some(t),
    }
}

/// The retries planner (one run of the control loop).
pub fn plan(
    ctx: &Ctx<'_>,
    state: &mut RetriesState,
    findings: &mut Vec<Finding>,
) -> Option<Change> {
    let cur = &ctx.obs.config.retries;
    let r = &ctx.spec.controls.retries;
    let m = diagnose(ctx)?;
    let budget = 1.0 - ctx.spec.objectives.success_rate;
    // Retries are a storm only when they are a material share of the load: within the retry
    // budget the policy allows them (`budgetPercent`, Envoy's 20 % by default), cutting them
    // frees less capacity than that while every failure they were answering reaches a user.
    // Seen on a random overloaded mesh: a surge, 3.1 % of tries failing with a full queue's
    // fast 503s, which Istio's 2 retries kept from users (116 requests failed in 30 minutes
    // left alone); the cut (2 → 0 retries, 3 % less load) left 16 of the 30 minutes over the
    // error budget.
    let allowed = 1.0 + r.budget_percent / 100.0;
    let amp = load_factor(m.error_rate, cur.attempts);
    // Only tries that time out waste the work a retry repeats (see the module docs).
    let timed_out = timed_out_share(ctx);
    let wasted = timed_out
        .as_ref()
        .map_or(m.error_rate, |t| m.error_rate.min(t.share));
    let storm = m.overload && load_factor(wasted, cur.attempts) > allowed;
    if m.overload && !storm && cur.attempts > 0 {
        // Not a storm: only because the timeout bounds the wasted share, or within the budget
        // even with every failure counted.
        let summary = match &timed_out {
            Some(t) if amp > allowed => format!(
                "errors ({:.2}%) rise with load and latency, but at most {:.0}% of tries can have reached the {} timeout ({} at most {:.0} ms in each of the last {RECENT} points): retrying failures that end before it wastes no work, and cutting the {} retries would turn the failures they answer into users' failures; retries stay",
                m.error_rate * 100.0,
                t.share * 100.0,
                t.timeout,
                t.quantile,
                t.value * 1e3,
                cur.attempts
            ),
            _ => format!(
                "errors ({:.2}%) rise with load and latency, but the {} retries add only {:.1}% load, within the {:.0}% retry budget: cutting them would turn the failures they answer into users' failures and free too little capacity to end an overload; retries stay",
                m.error_rate * 100.0,
                cur.attempts,
                (amp - 1.0) * 100.0,
                r.budget_percent
            ),
        };
        findings.push(Finding {
            kind: FindingKind::Note,
            subject: "retries".into(),
            summary,
            evidence: evidence(&m, cur.attempts, m.error_rate),
        });
    }
    if storm {
        state.last_storm = Some(ctx.obs.end);
        findings.push(Finding {
            kind: FindingKind::Anomaly,
            subject: "service".into(),
            summary: format!(
                "errors ({:.2}%) rise with load and latency: overload, and retries add to it",
                m.error_rate * 100.0
            ),
            evidence: evidence(&m, cur.attempts, m.error_rate),
        });
        let next = RetryConfig {
            attempts: 0,
            ..cur.clone()
        };
        return change(
            ctx,
            r.attempts_ceiling(cur.attempts),
            next,
            Posture::Protect,
            Why {
                reason: format!(
                    "retry storm: {:.1}% of requests fail and the failures rise with load (r = {:.2}) and latency (r = {:.2}); each of the {} retries adds load to an overloaded service, so retries stop",
                    m.error_rate * 100.0,
                    m.corr_load.unwrap_or(f64::NAN),
                    m.corr_latency.unwrap_or(f64::NAN),
                    cur.attempts
                ),
                evidence: evidence(&m, cur.attempts, m.error_rate),
                confidence: 0.85,
                expected_effect: format!(
                    "load falls by up to {:.0}% (from {amp:.2} attempts per request to 1), letting the service recover",
                    (1.0 - 1.0 / amp) * 100.0
                ),
            },
        );
    }
    // No storm. Restore what a storm cut, once the errors are within budget and no
    // storm has been seen for one `telemetry.lookback`. A storm is remembered because cutting
    // retries hides it: the errors fall at once, and a restore at the next calm run brings the
    // storm back (seen on a random mesh: 2 → 0 → 2 → 0 → 2 retries every two minutes for ten).
    let lookback = ctx.spec.telemetry.lookback.as_secs_ceil();
    let storm_recent = state
        .last_storm
        .is_some_and(|t| ctx.obs.end.saturating_sub(t) < lookback);
    if let Some(before) = state.before_cut.clone() {
        if *cur == before {
            state.before_cut = None;
        } else if storm_recent {
            findings.push(Finding {
                kind: FindingKind::Note,
                subject: "retries".into(),
                summary: format!(
                    "retries stay cut: the last retry storm was seen {}s ago, and they return after {lookback}s without one",
                    ctx.obs.end.saturating_sub(state.last_storm.unwrap_or(ctx.obs.end))
                ),
                evidence: evidence(&m, cur.attempts, m.error_rate),
            });
            return None;
        } else if m.error_rate <= budget {
            let next = RetryConfig {
                attempts: before.attempts.min(r.attempts_ceiling(before.attempts)),
                ..before
            };
            return change(
                ctx,
                r.attempts_ceiling(before.attempts),
                next.clone(),
                Posture::Relax,
                Why {
                    reason: format!(
                        "the overload is over (errors {:.3}%, within budget): restoring {} retries",
                        m.error_rate * 100.0,
                        next.attempts
                    ),
                    evidence: evidence(&m, cur.attempts, m.error_rate),
                    confidence: 0.7,
                    expected_effect: "transient failures are retried again".into(),
                },
            );
        } else {
            return None;
        }
    }
    let most = r.attempts_ceiling(cur.attempts);
    if cur.attempts > most {
        return change(
            ctx,
            most,
            RetryConfig {
                attempts: most,
                ..cur.clone()
            },
            Posture::Protect,
            Why {
                reason: format!(
                    "{} retries exceed the policy's maxAttempts {most}",
                    cur.attempts
                ),
                evidence: evidence(&m, cur.attempts, m.error_rate),
                confidence: 1.0,
                expected_effect: format!("at most {most} retries per request"),
            },
        );
    }
    // Failures the server does not see: the callers fail significantly more than the server's
    // tries do, where retries can only make the callers fail less. A per-try timeout under
    // the server's own median is such a cause: the caller abandons most tries, the server
    // completes them and counts them served. It goes to twice the p99, what the planner sets
    // when it adds retries (the median, not the p99, so that a timeout meant to cut a slow
    // minority of tries, `latency`, is never undone here). Seen on a random mesh: a 1 ms
    // per-try timeout under 15 ms requests, all calls failing for 30 minutes; the planner had
    // fixed it only as a side effect of adding `5xx` to retryOn, on the server's misleading
    // 3 % of errors.
    let callers = window::over_budget(&ctx.obs.callers, ctx.obs.step_seconds, budget);
    if let Some(c) = callers.and_then(|seen| unseen_timeouts(ctx, seen)) {
        return Some(c);
    }
    // Independent transient failures over budget: as many retries as the aim needs. Over the
    // budget *for the callers*: where their side is reported, what they finally got decides
    // (retries that already keep them within the objective need no more of them); where it is
    // not, the server's count of tries is all there is.
    let (over, seen) = callers.map_or((m.over_budget, m.error_rate), |(e, _, over)| (over, e));
    if over && m.corr_load.is_none_or(|c| c < 0.3) {
        // The success signal counts every 5xx as a failure, but a retry happens only for what
        // `retryOn` names: Istio's default retries a 503, not a 500. Without the response codes
        // the Governor cannot tell which failures more attempts would reach, so it predicts an
        // effect only when every 5xx is retried (seen: 2 → 3 retries "leaving 0.04% failing"
        // while every failure was a 500 that no retry touched). It adds `5xx` to `retryOn` only
        // on the owner's word that the requests are safe to repeat, and otherwise says so.
        let every_5xx = cur.retry_on.contains(RetryCondition::FiveXx);
        if !every_5xx && !r.idempotent {
            findings.push(Finding {
                kind: FindingKind::Note,
                subject: "retries".into(),
                summary: format!(
                    "{:.2}% of requests fail independently of load, but retryOn ({}) does not retry every 5xx: more attempts may not reach these failures; if the requests are safe to retry, `5xx` in retryOn would (the policy's `retries.idempotent: true` lets the Governor add it)",
                    seen * 100.0,
                    cur.retry_on
                ),
                evidence: evidence(&m, cur.attempts, m.error_rate),
            });
            return None;
        }
        // The per-try failure rate q. The callers see what the retries in force leave: q^(a+1)
        // of requests fail with a retries, so q is its (a+1)-th root; failures `retryOn` did not
        // cover were tried once, so before `5xx` is added their rate is q itself (the lower
        // bound, if some were 503s already retried: the next run sizes again). The server
        // counts every try, so its rate is q already (until 2026-12-03 the root was taken of
        // it too, which overstates q: 0.25 % of tries failing under 1 retry read as 5 %).
        let tries = match callers {
            Some(_) if every_5xx => cur.attempts.saturating_add(1),
            _ => 1,
        };
        let q = seen.powf(1.0 / f64::from(tries));
        let n = retries_needed(q, budget * RESIDUAL_SHARE, most, r.budget_percent);
        // Adding `5xx` with no retry to use it would change nothing.
        if n > cur.attempts || (!every_5xx && n > 0) {
            let attempts = n.max(cur.attempts);
            let retry_on = cur.retry_on.clone().with(RetryCondition::FiveXx);
            let p99 = window::recent_mean(&ctx.obs.service_signals.latency_p99, RECENT);
            let per_try_timeout = p99.map_or(cur.per_try_timeout, |p| Some(twice_p99(p)));
            let reason = if every_5xx {
                format!(
                    "{:.2}% of requests fail independently of load after {} retries, {:.2}% of tries: {attempts} retries leave {:.4}% failing at {:.3} attempts per request",
                    seen * 100.0,
                    cur.attempts,
                    q * 100.0,
                    q.powi(attempts as i32 + 1) * 100.0,
                    load_factor(q, attempts)
                )
            } else {
                format!(
                    "{:.2}% of requests fail independently of load, and retryOn ({}) may not retry them: the policy declares the requests idempotent, so retryOn gains 5xx; {attempts} retries leave {:.4}% failing at {:.3} attempts per request",
                    seen * 100.0,
                    cur.retry_on,
                    q.powi(attempts as i32 + 1) * 100.0,
                    load_factor(q, attempts)
                )
            };
            return change(
                ctx,
                most,
                RetryConfig {
                    attempts,
                    per_try_timeout,
                    retry_on,
                },
                Posture::Relax,
                Why {
                    reason,
                    evidence: {
                        let mut e = evidence(&m, attempts, q);
                        e.push(Evidence::new("per_try_failure_rate", q));
                        e
                    },
                    confidence: 0.7,
                    expected_effect: format!(
                        "success rate rises to about {:.4}%",
                        (1.0 - q.powi(attempts as i32 + 1)) * 100.0
                    ),
                },
            );
        }
    }
    None
}

/// The per-try timeout raised to twice the server's recent p99, where the callers fail
/// significantly more than the server's tries (binomial at `OVER_BUDGET_ALPHA`, against the
/// larger of the server's rate and the budget) and the timeout in force is at or under the
/// server's recent median: most tries the server completes are abandoned by the callers.
/// (Envoy's server-side proxy records an abandoned try as it ends, at the reset, so on a real
/// mesh that median sits near the timeout and this may not fire; the simulator's server counts
/// its whole work.)
/// `callers` is the callers' side as `window::over_budget` reads it.
fn unseen_timeouts(ctx: &Ctx<'_>, (callers, n, over): (f64, f64, bool)) -> Option<Change> {
    let cur = &ctx.obs.config.retries;
    let timeout = cur.per_try_timeout.filter(|t| *t > Duration::ZERO)?;
    let budget = 1.0 - ctx.spec.objectives.success_rate;
    let step = ctx.obs.step_seconds;
    let (server, _) = window::error_rate(&ctx.obs.service_signals, RECENT, step)?;
    let p50 = window::recent_mean(&ctx.obs.service_signals.latency_p50, RECENT)?;
    let p99 = window::recent_mean(&ctx.obs.service_signals.latency_p99, RECENT)?;
    let unseen = over
        && window::binomial_tail(callers * n, n, server.max(budget)) <= window::OVER_BUDGET_ALPHA;
    if !unseen || timeout.as_secs_f64() > p50 {
        return None;
    }
    let next = twice_p99(p99);
    if bounded_per_try(ctx, Some(next)).is_none_or(|t| t <= timeout) {
        return None;
    }
    change(
        ctx,
        ctx.spec.controls.retries.attempts_ceiling(cur.attempts),
        RetryConfig {
            per_try_timeout: Some(next),
            ..cur.clone()
        },
        Posture::Protect,
        Why {
            reason: format!(
                "the callers fail {:.2}% of their calls while the server fails {:.2}% of its tries, and the {} per-try timeout is under the server's {:.1} ms median: the callers abandon most tries the server completes; per-try timeout twice the {:.1} ms p99",
                callers * 100.0,
                server * 100.0,
                timeout,
                p50 * 1e3,
                p99 * 1e3
            ),
            evidence: vec![
                Evidence::new("caller_error_rate", callers),
                Evidence::new("server_error_rate", server),
                Evidence::new("server_p50_seconds", p50),
                Evidence::new("server_p99_seconds", p99),
            ],
            confidence: 0.8,
            expected_effect: "tries the server completes in time are no longer abandoned".into(),
        },
    )
}

/// A per-try timeout of twice the p99 (seconds), in whole milliseconds (Envoy's timer
/// resolution) rounded up: a healthy try outlives it well under 1% of the time.
fn twice_p99(p99: f64) -> Duration {
    Duration::from_secs_f64((2e3 * p99).ceil() / 1e3)
}

/// `tightenRetries`: fewer retries than now — what independent failures justify, at least one
/// fewer.
pub fn tighten(ctx: &Ctx<'_>, findings: &mut Vec<Finding>) -> Option<Change> {
    let cur = &ctx.obs.config.retries;
    let r = &ctx.spec.controls.retries;
    let budget = 1.0 - ctx.spec.objectives.success_rate;
    let Some(m) = diagnose(ctx) else {
        findings.push(Finding {
            kind: FindingKind::InsufficientData,
            subject: "service".into(),
            summary: "tightenRetries: no recent error data; retries left alone".into(),
            evidence: Vec::new(),
        });
        return None;
    };
    let justified = retries_needed(
        m.error_rate,
        budget * RESIDUAL_SHARE,
        r.attempts_ceiling(cur.attempts),
        r.budget_percent,
    );
    let next_attempts = justified.min(cur.attempts.saturating_sub(1));
    change(
        ctx,
        r.attempts_ceiling(cur.attempts),
        RetryConfig {
            attempts: next_attempts,
            ..cur.clone()
        },
        Posture::Protect,
        Why {
            reason: format!(
                "alert remediation: retries cut from {} to {next_attempts}",
                cur.attempts
            ),
            evidence: evidence(&m, cur.attempts, m.error_rate),
            confidence: 0.7,
            expected_effect: "less retry load while the alert fires".into(),
        },
    )
}

/// `disableRetries`: no retries at all.
pub fn disable(ctx: &Ctx<'_>) -> Option<Change> {
    let cur = &ctx.obs.config.retries;
    change(
        ctx,
        ctx.spec.controls.retries.attempts_ceiling(cur.attempts),
        RetryConfig {
            attempts: 0,
            ..cur.clone()
        },
        Posture::Protect,
        Why {
            reason: format!(
                "alert remediation: retries disabled (were {})",
                cur.attempts
            ),
            evidence: Vec::new(),
            confidence: 0.7,
            expected_effect: "no retry load while the alert fires".into(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_match_the_worked_example() {
        // p = 2%, aim 0.01%: 2 retries; cost (1 − 0.02³)/0.98 = 1.020400.
        assert_eq!(retries_needed(0.02, 0.0001, 4, 20.0), 2);
        assert!((load_factor(0.02, 2) - (1.0 - 0.000008) / 0.98).abs() < 1e-12);
        // p = 30%: n = 1 costs 1.3 attempts > 1.2 allowed ⇒ 0 retries.
        assert_eq!(retries_needed(0.3, 0.0001, 4, 20.0), 0);
        // The policy's maximum wins.
        assert_eq!(retries_needed(0.1, 1e-9, 1, 100.0), 1);
    }
}
