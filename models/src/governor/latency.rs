//! Slow endpoints: one pod whose latency drifts away from its peers' (a leak, GC pressure, a
//! noisy neighbour) while it never returns an error — found, and removed with a per-try timeout.
//!
//! # Finding it
//!
//! Per endpoint whose telemetry points each hold about 100 requests or more (fewer make a point's
//! "p99" the slowest request, not a percentile), on the median of its recent p99s: an outlier
//! against the other endpoints
//! (`detect::peer::compare`, leave-one-out robust z, score ≥ 0.99) *and* at least twice their
//! median p99 (a pod twice as slow as its peers matters whatever the spread) *and* over the p99
//! objective, so that a fast service with one slightly slower pod is not reported, *and* not
//! failing: its recent errors not significantly over the objective's budget
//! (`window::over_budget`, the retries planner's test). A failing pod is outlier detection's.
//! Two endpoints are enough (with one peer, the comparison's scale is its floor, a tenth of the
//! p99s, so twice the other's p99 decides). And the endpoints of their subset that are not
//! slow must have the room to take the slow ones' requests (`room`, the capacity rule of
//! docs/governor.md): the timeout and the ejection that follows move all of them, within the
//! subset (`clusters`). And only for requests the policy
//! declares idempotent (`retries.idempotent`): a try the timeout cuts short may still complete
//! on the slow pod, so its retry may send the request twice.
//!
//! # Why a per-try timeout is the knob
//!
//! Outlier detection ejects on 5xx only (Istio's `outlierDetection` has no latency trigger) and
//! weights move traffic between subsets, not between the pods of one. But Envoy ends a try that
//! outlives `perTryTimeout` with a 504, retries it when `retryOn` has `5xx`, `gateway-error` or
//! `reset`, and — with local-origin errors not split, Envoy's and Istio's default — counts the
//! timeout as a 5xx of that host for `consecutive5xxErrors`. So a per-try timeout above the
//! healthy pods' latency turns the slow pod's answers into retried 504s (the user gets a healthy
//! pod's answer) and lets outlier detection eject the slow pod: slowness becomes a failure the
//! mesh already knows how to remove. Endpoint weights would need per-pod weights Istio does not
//! expose, and the balancing algorithm (LEAST_REQUEST) already shies from a slow pod and still
//! sends it traffic.
//!
//! # The timeout, derived
//!
//! With peer p99 `P` (median p99 of the endpoints that are not slow), p99 objective `O` and
//! Envoy's retry back-off base `b` (25 ms; the first retry waits uniformly in [0, b]):
//!
//! * a request whose first try hits the slow pod answers within `T + b + P` for 99% of healthy
//!   retries, which meets the objective iff `T ≤ O − b − P`;
//! * a healthy try exceeds `T` less than 1% of the time iff `T > P`, so spurious retries add
//!   under 1% load — within any retry budget of at least 1%. But `P` is the healthy pods' p99
//!   at their load now, and the timeout moves the slow pods' requests onto them: the share of
//!   their tries past `T` at the load after the move, as the queueing model projects it
//!   (`healthy_spill`), is what the retry budget must hold;
//! * the slow pod's own tries are retried only until it is ejected (after `consecutive5xxErrors`
//!   timeouts; the outlier planner counts a slow endpoint a timeout cuts short in its
//!   incident, so it turns detection that is off on and raises `maxEjectionPercent` to cover it
//!   within the policy's bounds); if outlier detection cannot eject it (off and not the
//!   policy's to turn on, or the bound too small), its traffic share is retried for good and
//!   must fit the retry budget itself;
//! * `T` must be under the route timeout (else it never fires first) and within the policy's
//!   per-try bounds.
//!
//! So the timeouts that work are the interval `(P, O − b − P]`, non-empty iff `P < (O − b)/2`.
//! The Governor takes its centre, `T = (O − b)/2`: the largest margin against both bounds, and
//! the one choice that stays in the interval for *every* peer p99 at which any timeout works. P
//! is a noisy estimate (a median of recent p99s); the top of the interval, `O − b − P`, would move
//! with every few milliseconds of it and rewrite the route each cooldown (seen in latency-creep
//! variants: 244 → 247 → 257 → 266 → 258 → 255 ms). A timeout already in force — the Governor's
//! or the user's — stays while it is inside the interval, and is replaced by the centre when
//! it is not. Below the top, healthy tries still exceed `T` under 1% of the time (`T > P`), and
//! the slow pod's tries end sooner, so it is ejected sooner.
//!
//! Worked example: peers at p99 100 ms, slow pod at 900 ms, objective 300 ms: the interval is
//! `(100, 175]` ms and `T = (300 − 25)/2 = 137.5` ⇒ per-try timeout 137 ms (whole milliseconds,
//! rounded down) on `…,gateway-error`. A request that met the slow pod: 137 + ≤ 25 + ≤ 100 =
//! ≤ 262 ms ≤ 300 ms. Peers drifting anywhere below 137 ms leave it in place. With peers at
//! 150 ms the interval `(150, 125]` is empty: no timeout both spares the healthy pods and meets
//! the objective, so the finding says so.
//!
//! The timeout is withdrawn (the setting in force before it returns) once no endpoint has been
//! slow for the outlier planner's incident memory — `max(lookback, maxEjectionTime + interval)`:
//! an ejected slow pod is out of sight, not cured, until it has been back a while.

use homeostat_dataplane::config::{RetryCondition, RetryOn, RetryPolicy};

use super::clusters;
use super::observation::{EndpointObservation, RetryConfig};
use super::outlier::incident_memory_seconds;
use super::plan::{Change, Evidence, Finding, FindingKind, Knob, KnobValue, Origin, Posture};
use super::retries::{bounded_per_try, try_deadline};
use super::window::{self, RECENT};
use super::{Ctx, capacity, pod};
use crate::policy::Duration;

/// The peer comparison's score threshold (`detect::peer`'s calibrated outlier probability).
const PEER_SCORE: f64 = 0.99;
/// "Twice as slow as its peers": a pod at 2× the median doubles the latency of every request it
/// serves — the smallest ratio at which it, not the spread, is the story.
const RATIO: f64 = 2.0;
/// The share of healthy tries that exceed their p99: by definition of the p99.
const HEALTHY_SPILL: f64 = pod::P99_TAIL;

/// What the planner remembers while a per-try timeout it set is in force.
#[derive(Default)]
pub struct SlowState {
    /// The retries setting before the Governor first proposed the timeout: what withdrawing
    /// restores.
    pub(super) before: Option<RetryConfig>,
    /// The newest run (unix seconds) at which an endpoint was slow.
    pub(super) last_seen: Option<i64>,
}

struct Slow {
    name: String,
    subset: Option<String>,
    p99: f64,
    rps: f64,
}

/// Finds the slow endpoints, with a finding for each; returns them and the peers' p99 (the
/// median p99 of the endpoints that are not slow).
fn survey(ctx: &Ctx<'_>, findings: &mut Vec<Finding>) -> (Vec<Slow>, Option<f64>) {
    let obs = ctx.obs;
    let objective = ctx.spec.objectives.latency_p99.as_secs_f64();
    let budget = 1.0 - ctx.spec.objectives.success_rate;
    // An endpoint whose points held too few requests for a p99 takes no part, as candidate or
    // as peer (`window::MIN_REQUESTS_FOR_P99`).
    let p99s: Vec<f64> = obs
        .endpoints
        .iter()
        .map(|e| window::comparable_p99(&e.signals, RECENT, obs.step_seconds).unwrap_or(f64::NAN))
        .collect();
    // Two endpoints are enough: the slower is slow only at twice the other's p99 and over the
    // objective, and a timeout only where the other is fast enough for one to work
    // (`slow_endpoint_interval`) and can take its requests (`room`). Without one over the
    // objective the peer comparison (a 2-means fit per call) would only be discarded.
    let reporting = p99s.iter().filter(|p| p.is_finite()).count();
    if reporting < 2 || !p99s.iter().any(|&p| p > objective) {
        return (Vec::new(), None);
    }
    let features: Vec<Vec<f64>> = p99s.iter().map(|p| vec![*p]).collect();
    let mut slow = Vec::new();
    let mut slow_idx = Vec::new();
    for f in crate::detect::peer::compare(&features) {
        let Some((ep, &p99)) = obs.endpoints.get(f.index).zip(p99s.get(f.index)) else {
            continue;
        };
        let others: Vec<f64> = p99s
            .iter()
            .enumerate()
            .filter(|(i, p)| *i != f.index && p.is_finite())
            .map(|(_, p)| *p)
            .collect();
        let Some(peer) = crate::stats::median(&others) else {
            continue;
        };
        // Written positively so that a NaN p99 is never "slow".
        if !(f.score >= PEER_SCORE && p99 >= RATIO * peer && p99 > objective) {
            continue;
        }
        // Slow *without errors*. A pod failing significantly more tries than the objective's
        // budget is a failing pod, for outlier detection and the weights planner: its p99 is
        // that of the few tries it served, often behind a full queue whose overflow it refuses
        // at once, and a per-try timeout would cut short the tries it does serve (seen on a
        // random overloaded mesh: one pod at p50 0.3 ms and p99 447 ms, refusing most tries,
        // got a 128 ms per-try timeout; the timed-out tries left their work in its queue).
        if window::over_budget(&ep.signals, obs.step_seconds, budget).is_some_and(|o| o.2) {
            continue;
        }
        findings.push(Finding {
            kind: FindingKind::Anomaly,
            subject: format!("endpoint {}", ep.name),
            summary: format!(
                "endpoint {}: p99 {:.0} ms, {:.1}× its peers' {:.0} ms and over the {:.0} ms objective, without errors",
                ep.name,
                p99 * 1e3,
                p99 / peer,
                peer * 1e3,
                objective * 1e3
            ),
            evidence: vec![
                Evidence::new("latency_p99_s", p99),
                Evidence::new("peer_latency_p99_s", peer),
                Evidence::new("latency_peer_score", f.score),
                Evidence::new("objective_p99_s", objective),
            ],
        });
        slow_idx.push(f.index);
        slow.push(Slow {
            name: ep.name.clone(),
            subset: ep.subset.clone(),
            p99,
            rps: window::recent_mean(&ep.signals.request_rate, RECENT).unwrap_or(0.0),
        });
    }
    let healthy: Vec<f64> = p99s
        .iter()
        .enumerate()
        .filter(|(i, p)| !slow_idx.contains(i) && p.is_finite())
        .map(|(_, p)| *p)
        .collect();
    if !slow.is_empty()
        && let Err(why) = room(ctx, &slow, &p99s)
    {
        let names: Vec<&str> = slow.iter().map(|s| s.name.as_str()).collect();
        note(
            findings,
            format!(
                "{}: slow, but {why}: its requests stay where they are, no timeout",
                names.join(", ")
            ),
        );
        return (Vec::new(), None);
    }
    (slow, crate::stats::median(&healthy))
}

/// Whether the endpoints that are not slow can take the slow ones' requests: the timeout
/// retries them there and outlier detection then ejects the slow ones, so every request they
/// serve moves — onto the other endpoints of their own subset (`clusters`: a retry, like an
/// ejected host's traffic, stays in the cluster). Where those would pass the capacity ceiling,
/// the timeout would move an overload onto them (`capacity`, rule 4 of docs/governor.md).
/// Where their utilisation is not reported, a subset of three or more endpoints with a p99
/// (`p99s`, in the order of the observation's endpoints) acts as before the rule (the step of
/// one pod's traffic spread over two or more); with two, the one left would take everything,
/// unseen: no action on missing telemetry.
fn room(ctx: &Ctx<'_>, slow: &[Slow], p99s: &[f64]) -> Result<(), String> {
    let obs = ctx.obs;
    // The CPU ceiling here; what the timeout retries of theirs is `healthy_spill`'s.
    let limit = capacity::cpu_limit(ctx);
    // A cluster whose every pod is slow has no takers: the same-subset rule of `propose` says
    // why there is no timeout.
    for Takers {
        cluster,
        others,
        moved,
    } in takers(ctx, slow)
    {
        let rest: Vec<(f64, Option<f64>)> = others
            .iter()
            .filter_map(|e| {
                let rps = window::recent_mean(&e.signals.request_rate, RECENT)?;
                Some((rps, window::recent_mean(&e.signals.utilization, RECENT)))
            })
            .collect();
        let utils: Vec<f64> = rest.iter().filter_map(|(_, u)| *u).collect();
        let rest_rps: f64 = rest.iter().map(|(r, _)| r).sum();
        let u_rest = (!utils.is_empty() && rest_rps > 0.0)
            .then(|| utils.iter().sum::<f64>() / utils.len() as f64);
        let Some(u) = u_rest else {
            let reporting = obs
                .endpoints
                .iter()
                .zip(p99s)
                .filter(|(e, p)| clusters::key(e) == cluster && p.is_finite())
                .count();
            if reporting >= 3 {
                continue;
            }
            return Err("the other endpoint reports no utilisation, so whether it can take all the traffic is unknown".into());
        };
        if let Some(after) = capacity::overload_after(limit, Some(u), rest_rps, moved) {
            return Err(format!(
                "the rest would run at {:.0}% CPU utilisation with its {moved:.1} req/s, over {}",
                after * 100.0,
                limit.describe(ctx)
            ));
        }
    }
    Ok(())
}

/// The endpoints that take a cluster's slow pods' requests once a timeout retries them and
/// outlier detection ejects them: the other endpoints of their own subset (`clusters`: a
/// retry, like an ejected host's traffic, stays in the cluster), and the requests per second
/// that move — all the slow pods serve, since a slow pod fails nothing. Clusters whose every
/// pod is slow are left out.
struct Takers<'a> {
    cluster: Option<&'a str>,
    others: Vec<&'a EndpointObservation>,
    moved: f64,
}

fn takers<'a>(ctx: &Ctx<'a>, slow: &'a [Slow]) -> Vec<Takers<'a>> {
    let mut keys: Vec<Option<&str>> = slow.iter().map(|s| s.subset.as_deref()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|cluster| {
            let others: Vec<_> = ctx
                .obs
                .endpoints
                .iter()
                .filter(|e| clusters::key(e) == cluster && !slow.iter().any(|s| s.name == e.name))
                .collect();
            let moved = slow
                .iter()
                .filter(|s| s.subset.as_deref() == cluster)
                .map(|s| s.rps)
                .sum();
            (!others.is_empty()).then_some(Takers {
                cluster,
                others,
                moved,
            })
        })
        .collect()
}

/// The share of the healthy pods' tries that would outlive the per-try timeout `t` (seconds)
/// once they also serve the slow pods' requests: what the timeout retries besides the slow
/// pods' own. The derivation of `t` (module docs) takes it as 1 % because their p99 is under
/// `t` — their p99 *now*. But the timeout exists to move the slow pods' requests onto them, and
/// pods near their objective queue far more at a third more load. So each healthy pod is
/// projected to its load after the move (the balancer spreads the moved requests evenly) and
/// the queueing model (`pod::Latency::share_past`, each pod its own queue, anchored on the p99
/// it shows now as `capacity::limit` is for weights moves) says how many of its tries pass
/// `t`; weighted by the requests each will serve. A pod whose model cannot be measured (too
/// idle, no latency) counts at the 1 % of the derivation. Seen without it:
/// `known-harm/h83-slowpod-150` at `--seed 5`, one-slot pods at a 244 ms p99 under a 257 ms
/// timeout: their own tries timed out and were retried, the retries planner read a storm and
/// cut the retries, 21 SLO minutes and 2,160 failed requests against Istio's defaults' 4 and
/// 14. There, at 450 s, one healthy pod at 8.6 req/s and 48 % CPU (μ = 17.9 req/s, one slot,
/// p99 245 ms, low-load p99 183 ms) would take 2.1 req/s more: L = max(183, 245 − 419) =
/// 183 ms, and at ρ = 0.60 the model puts 0.01 + 0.60·e^{−7.2 · 0.074} = 36 % of its tries
/// past 257 ms, over the 20 % retry budget.
fn healthy_spill(ctx: &Ctx<'_>, slow: &[Slow], t: f64) -> f64 {
    let obs = ctx.obs;
    let step = obs.step_seconds;
    let (mut past, mut all) = (0.0, 0.0);
    for Takers { others, moved, .. } in takers(ctx, slow) {
        let share = moved / others.len() as f64;
        for e in others {
            let s = &e.signals;
            let Some(rps) = window::recent_mean(&s.request_rate, RECENT) else {
                continue;
            };
            let spill = (|| {
                let util = window::recent_mean(&s.utilization, RECENT)?;
                let p99_now = window::comparable_p99(s, RECENT, step)?;
                let err = window::error_rate(s, RECENT, step).map_or(0.0, |(e, _)| e);
                let served = rps * (1.0 - err.clamp(0.0, 1.0));
                let service_time = pod::service_time(s, ctx.spec.objectives.success_rate)?;
                let queue = pod::Latency {
                    pod: pod::PodModel::measure(served, 1, util, service_time, obs.end)?,
                    base_p99: pod::low_load_p99(s)?,
                    objective: t,
                };
                queue.share_past(1, served, p99_now, served + share, t)
            })()
            .unwrap_or(HEALTHY_SPILL);
            past += (rps + share) * spill;
            all += rps + share;
        }
    }
    // Every pod's share is at least the 1 % past its p99, so the mean is too.
    if all > 0.0 { past / all } else { HEALTHY_SPILL }
}

/// The timeouts that work for peers at `peer_p99` seconds under objective `objective` seconds
/// with retry back-off base `backoff` seconds: `(P, O − b − P]`, as (low, high), when not empty.
/// Its centre, `(O − b)/2`, is what the planner sets when no timeout in force works.
pub fn slow_endpoint_interval(peer_p99: f64, objective: f64, backoff: f64) -> Option<(f64, f64)> {
    let high = objective - backoff - peer_p99;
    (peer_p99.is_finite() && high.is_finite() && high > peer_p99).then_some((peer_p99, high))
}

/// Whether `on` retries a per-try timeout (Envoy: `5xx`, `gateway-error` and `reset` do).
fn retries_timeouts(on: &RetryOn) -> bool {
    on.contains(RetryCondition::FiveXx)
        || on.contains(RetryCondition::GatewayError)
        || on.contains(RetryCondition::Reset)
}

fn note(findings: &mut Vec<Finding>, summary: String) {
    findings.push(Finding {
        kind: FindingKind::Note,
        subject: "slow endpoints".into(),
        summary,
        evidence: Vec::new(),
    });
}

/// What the slow-endpoint planner proposes in one run.
pub struct SlowPlan {
    /// The per-try timeout (or its withdrawal).
    pub change: Option<Change>,
    /// The slow endpoints whose tries a timeout ends with a 504 — the timeout proposed here,
    /// else the one in force, or the route's, below their p99: Envoy's detector counts those
    /// as 5xx, so the outlier planner counts them in its incident and must be able to eject
    /// them. A slow endpoint no timeout cuts short answers without a 5xx; tightening outlier
    /// detection cannot remove it, and only ejects sooner whatever ordinary errors the pods
    /// return (seen on a random mesh: a dependency of one-slot pods, slow, not declared
    /// idempotent so no timeout was set, its queues overflowing now and then — tightened to 2
    /// consecutive 5xx, each ejection moved the overflow onto the other pod: 27 ejections
    /// against the mesh's 11, 5 SLO minutes against Istio's 2;
    /// `simulator/scenarios/known-harm/h106-slow-dependency-ejections.yaml`).
    pub endpoints: Vec<String>,
    /// Whether outlier detection in force cannot eject them, so the timeout counts on the
    /// outlier planner's raise of `maxEjectionPercent` in the same run: until that applies,
    /// every slow answer is a retry. Where the raise is held (cooldown, the hourly budget), the
    /// timeout is held with it. Seen on a random mesh: two pods, one 3.7× slower, the
    /// timeout applied while the raise to 50 % waited a cooldown; with the mesh's retry
    /// budget spent on them, the slow pod's timed-out tries failed (1,538 failed requests
    /// where waiting for the raise gave 111).
    pub needs_ejection_raise: bool,
}

/// The slow-endpoint planner (one run of the control loop): a per-try timeout while endpoints
/// are slow, withdrawn once they have not been for the incident memory.
pub fn plan(ctx: &Ctx<'_>, state: &mut SlowState, findings: &mut Vec<Finding>) -> SlowPlan {
    let (slow, peer) = survey(ctx, findings);
    let od = &ctx.obs.config.outlier_detection;
    let count = ctx.obs.endpoints.len().max(1) as u64;
    let change = propose(ctx, state, &slow, peer, findings);
    let cfg = &ctx.obs.config;
    let per_try = match &change {
        Some(Change {
            proposed: KnobValue::Retries(next),
            ..
        }) => next.per_try_timeout,
        _ => cfg.retries.per_try_timeout,
    };
    let deadline = try_deadline(per_try, cfg.route_timeout).map(|d| d.as_secs_f64());
    let cut: Vec<String> = slow
        .iter()
        .filter(|s| deadline.is_some_and(|d| s.p99 > d))
        .map(|s| s.name.clone())
        .collect();
    SlowPlan {
        needs_ejection_raise: !ejectable(
            od.consecutive_5xx_errors > 0,
            od.max_ejection_percent,
            count,
            cut.len(),
        ),
        change,
        endpoints: cut,
    }
}

/// Whether outlier detection, `on` and ejecting at most `max_percent` % of `count` endpoints,
/// can eject `slow` of them (counted over the service, as the outlier planner sets it:
/// `clusters`).
fn ejectable(on: bool, max_percent: u32, count: u64, slow: usize) -> bool {
    on && u64::from(max_percent) * count >= 100 * slow as u64
}

fn propose(
    ctx: &Ctx<'_>,
    state: &mut SlowState,
    slow: &[Slow],
    peer: Option<f64>,
    findings: &mut Vec<Finding>,
) -> Option<Change> {
    let now = ctx.obs.end;
    let cur = &ctx.obs.config.retries;
    if slow.is_empty() {
        let before = state.before.clone()?;
        let since = state.last_seen.map_or(i64::MAX, |t| now.saturating_sub(t));
        if since < incident_memory_seconds(ctx) {
            return None;
        }
        state.before = None;
        state.last_seen = None;
        let next = RetryConfig {
            attempts: if before.attempts == 0 {
                0
            } else {
                cur.attempts
            },
            per_try_timeout: bounded_per_try(ctx, before.per_try_timeout),
            retry_on: before.retry_on,
        };
        return (next != *cur).then(|| Change {
            knob: Knob::Retries,
            current: KnobValue::Retries(cur.clone()),
            proposed: KnobValue::Retries(next.clone()),
            posture: Posture::Relax,
            origin: Origin::Planner,
            reason: format!(
                "no endpoint has been slow for {since}s: withdrawing the slow-endpoint per-try timeout"
            ),
            evidence: vec![Evidence::new("seconds_since_slow_endpoint", since as f64)],
            confidence: 0.7,
            expected_effect: format!("retries as before: {}", KnobValue::Retries(next)),
            held_by: None,
        });
    }
    state.last_seen = Some(now);
    let names: Vec<&str> = slow.iter().map(|s| s.name.as_str()).collect();
    let names = names.join(", ");
    let r = &ctx.spec.controls.retries;
    if !r.enabled {
        note(
            findings,
            format!("{names}: slow, and retries are disabled in the policy: drain or restart it"),
        );
        return None;
    }
    // A try cut short by a per-try timeout may still complete on the slow pod, so its retry
    // can send the request twice: only the owner can say that is safe (`retries.idempotent`,
    // the same word that lets the retries planner add `5xx`), unless the retries in force
    // already retry timed-out tries (a per-try timeout of the owner's, on a `retryOn` that
    // retries it), where a new value changes nothing about that.
    let retries_timeouts_now =
        cur.attempts > 0 && cur.per_try_timeout.is_some() && retries_timeouts(&cur.retry_on);
    if !r.idempotent && !retries_timeouts_now {
        note(
            findings,
            format!(
                "{names}: slow, but the policy does not declare the requests idempotent (`retries.idempotent`): a try cut short by a per-try timeout may still complete on the slow pod, and its retry would send the request twice; no timeout (drain or restart it)"
            ),
        );
        return None;
    }
    // A retry stays in the cluster of its first try, and in Istio each subset is its own
    // cluster (`outbound|port|subset|host`): a slow pod's timed-out try is retried on a pod of
    // its own subset. Where every pod of that subset is slow, the retry meets a slow pod again
    // and the timeout turns slow answers into failures (seen on a random mesh with a slowed
    // subset: 28 % of requests failing under the timeout; that subset kept one pod fast
    // enough to count as a peer, so this rule does not reach it). Moving traffic off a slow subset is the weights planner's.
    let alone: Vec<&str> = slow
        .iter()
        .filter(|s| {
            s.subset.is_some()
                && !ctx.obs.endpoints.iter().any(|e| {
                    clusters::key(e) == s.subset.as_deref()
                        && !slow.iter().any(|x| x.name == e.name)
                })
        })
        .map(|s| s.name.as_str())
        .collect();
    if !alone.is_empty() {
        note(
            findings,
            format!(
                "{}: slow, but no pod of their subset is fast: a retry after a per-try timeout stays in the subset and would meet a slow pod again, turning slow answers into failures; no timeout",
                alone.join(", ")
            ),
        );
        return None;
    }
    let objective = ctx.spec.objectives.latency_p99.as_secs_f64();
    let backoff = RetryPolicy::default().backoff_base_interval as f64 / 1e9;
    let peer = peer?;
    let Some((low, high)) = slow_endpoint_interval(peer, objective, backoff) else {
        note(
            findings,
            format!(
                "{names}: slow, but no per-try timeout both spares the healthy pods (p99 {:.0} ms) and meets the {:.0} ms objective after a retry: drain or restart it",
                peer * 1e3,
                objective * 1e3
            ),
        );
        return None;
    };
    // Inside the interval and within the policy's bounds (which also keep it under the route
    // timeout): a timeout in force that is stays; else the centre, in whole milliseconds
    // (Envoy's timers tick in milliseconds), rounded down.
    let works = |d: &Duration| {
        let s = d.as_secs_f64();
        // A nanosecond of slack: a whole-millisecond timeout at the very top must not fail
        // on the rounding of `O − b − P`.
        s > low && s <= high + 1e-9 && bounded_per_try(ctx, Some(*d)) == Some(*d)
    };
    let centre = ((low + high) / 2.0 * 1e3).floor();
    let Some(timeout) = cur
        .per_try_timeout
        .filter(works)
        .or_else(|| bounded_per_try(ctx, Some(Duration::from_millis(centre as u64))).filter(works))
    else {
        note(
            findings,
            format!(
                "{names}: slow; no whole-millisecond per-try timeout in ({:.0}, {:.0}] ms, the ones that would work, is within the policy's perTryTimeout bounds and under the route timeout",
                low * 1e3,
                high * 1e3
            ),
        );
        return None;
    };
    // Retry load: healthy tries past the timeout (`healthy_spill`); the slow pods' share is
    // retried until outlier detection ejects them, for good if it cannot. The timeout cuts
    // their tries short, so the outlier planner counts them in its incident (`SlowPlan`): it
    // turns detection that is off on and raises `maxEjectionPercent` up to the policy's bound
    // to cover them, so where the policy lets it, that is what decides.
    let od = &ctx.obs.config.outlier_detection;
    let pod = &ctx.spec.controls.outlier_detection;
    // Where the policy lets the Governor move outlier detection, the incident turns it on (at
    // a k of at least the policy's lower bound, which validation keeps ≥ 1).
    let (on, max_pct) = if pod.enabled {
        (
            true,
            od.max_ejection_percent.max(pod.max_ejection_percent.max),
        )
    } else {
        (od.consecutive_5xx_errors > 0, od.max_ejection_percent)
    };
    let count = ctx.obs.endpoints.len().max(1) as u64;
    let ejectable = ejectable(on, max_pct, count, slow.len());
    let total: f64 = ctx
        .obs
        .endpoints
        .iter()
        .filter_map(|e| window::recent_mean(&e.signals.request_rate, RECENT))
        .sum();
    let slow_share = if total > 0.0 {
        slow.iter().map(|s| s.rps).sum::<f64>() / total
    } else {
        0.0
    };
    let spill = healthy_spill(ctx, slow, timeout.as_secs_f64());
    let retry_load = spill + if ejectable { 0.0 } else { slow_share };
    if retry_load > r.budget_percent / 100.0 {
        note(
            findings,
            format!(
                "{names}: slow; a {timeout} per-try timeout would retry {:.1}% of requests, over the {:.0}% retry budget: {:.1}% of the healthy pods' tries once they take its requests{}",
                retry_load * 100.0,
                r.budget_percent,
                spill * 100.0,
                if ejectable {
                    String::new()
                } else {
                    format!(
                        ", and its {:.1}% for good (outlier detection cannot eject it)",
                        slow_share * 100.0
                    )
                }
            ),
        );
        return None;
    }
    let retry_on = if retries_timeouts(&cur.retry_on) {
        cur.retry_on.clone()
    } else {
        // `gateway-error`: the narrowest condition that retries a per-try timeout (502/503/504,
        // resets, connect failures), not every 5xx.
        cur.retry_on.clone().with(RetryCondition::GatewayError)
    };
    let next = RetryConfig {
        attempts: cur.attempts.max(1).min(r.attempts_ceiling(cur.attempts)),
        per_try_timeout: Some(timeout),
        retry_on,
    };
    if next == *cur || next.attempts == 0 {
        return None;
    }
    state.before.get_or_insert_with(|| cur.clone());
    let worst = slow.iter().map(|s| s.p99).fold(0.0f64, f64::max);
    Some(Change {
        knob: Knob::Retries,
        current: KnobValue::Retries(cur.clone()),
        proposed: KnobValue::Retries(next.clone()),
        posture: Posture::Protect,
        origin: Origin::Planner,
        reason: format!(
            "{names} answers in {:.0} ms at p99 against its peers' {:.0} ms: a {} per-try timeout retries its slow answers on a healthy pod (within {:.0} ms + back-off + {:.0} ms ≤ the {:.0} ms objective) and counts them as 5xx, so outlier detection ejects it",
            worst * 1e3,
            peer * 1e3,
            timeout,
            timeout.as_secs_f64() * 1e3,
            peer * 1e3,
            objective * 1e3
        ),
        evidence: vec![
            Evidence::new("slow_endpoints", slow.len() as f64),
            Evidence::new("slow_latency_p99_s", worst),
            Evidence::new("peer_latency_p99_s", peer),
            Evidence::new("objective_p99_s", objective),
            Evidence::new("per_try_timeout_s", timeout.as_secs_f64()),
            Evidence::new("slow_traffic_share", slow_share),
            Evidence::new("expected_retry_load", retry_load),
        ],
        confidence: 0.8,
        expected_effect: format!(
            "requests that meet {names} are answered by a healthy pod within the objective, and {names} is ejected after {} timeouts in a row",
            od.consecutive_5xx_errors
        ),
        held_by: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_matches_the_worked_example() {
        // O = 300 ms, b = 25 ms, P = 100 ms: interval (100, 175] ms, centre 137.5 ms.
        let (low, high) = slow_endpoint_interval(0.1, 0.3, 0.025).unwrap();
        assert!((low - 0.1).abs() < 1e-12 && (high - 0.175).abs() < 1e-12);
        assert!(((low + high) / 2.0 - 0.1375).abs() < 1e-12);
        // The centre does not depend on P while the interval exists: P = 20 ms gives
        // (20, 255] ms, centre 137.5 ms again.
        let (low, high) = slow_endpoint_interval(0.02, 0.3, 0.025).unwrap();
        assert!(((low + high) / 2.0 - 0.1375).abs() < 1e-12);
        // P = 150 ms: (150, 125] is empty: none.
        assert_eq!(slow_endpoint_interval(0.15, 0.3, 0.025), None);
        assert_eq!(slow_endpoint_interval(f64::NAN, 0.3, 0.025), None);
    }
}
