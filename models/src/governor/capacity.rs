//! Capacity: how much more traffic a set of pods can take before a move of traffic overloads it.
//!
//! Both planners that move traffic between pods — the weights planner (a share of the traffic
//! from one subset to others) and the outlier planner (ejected endpoints' traffic onto the
//! rest) — must ask whether the destination has the capacity. Errors from an overload look like
//! errors from a bug: the busiest pods fail most. Moving their traffic onto pods that then
//! become as busy moves the overload with it, and the next run finds the destination failing
//! (seen on a random overloaded mesh: a one-pod subset "healthy" only because lightly loaded
//! was given 20 % of the traffic, tripling its load, and the traffic then went round the
//! subsets).
//!
//! CPU work grows with the requests served, so pods at utilisation `u` serving a share `w` of
//! the traffic are at `u · w′ / w` once they serve `w′`. A move may load a destination up to
//! the **ceiling**: the largest HPA target the policy allows (`Autoscaling::target_range`: the
//! owner's stated bound, or the default 85 % widened to take in the HPA's own target) — the
//! utilisation at which the owner's own capacity plan says a pod is full and another is due.
//! Pods carrying more than that are not spare capacity, whatever their error rate says.
//!
//! Worked example: canary at 10 % of the traffic on one pod failing, stable at 90 % on nine
//! pods at 50 %: the stable subset may take `⌊90 · (0.85 / 0.5 − 1)⌋ = 63` points, so a cut of
//! the canary is never held back by capacity. Overload: subsets at 41 / 49 / 10 %, the busiest
//! failing; the 10 % subset at 40 % utilisation may take `⌊10 · (0.85 / 0.4 − 1)⌋ = 11` points,
//! not the 20 a step allows (20 would put it at 120 %).
//!
//! What a move brings the destination depends on why the source fails. Where load may explain
//! the errors — the failing pods are at least as busy as the destination — a point of their
//! traffic is a point of load: overloaded pods fail *because* they are the busiest. A pod
//! broken by a bug is no busier than its peers, but it still serves its other requests, and
//! those must be served elsewhere once it is cut off: a point of its traffic at error rate `e`
//! brings the destination at least `1 − e` of a point (the requests it fails are retried on
//! the destination already — an Envoy retry goes to another host — or become new ones there).
//! A move is stopped only where even that passes the ceiling. (Until 2026-12-02 a broken pod's
//! move was never limited, on the argument that its peers already serve its retries. In the
//! simulator, two pods at 55 % CPU, one failing 20 % of its requests, each retried by Istio's
//! defaults onto the other: no SLO minute lost. Ejecting it put its peer at 109 %, 30 SLO
//! minutes of 30.)
//!
//! CPU is not the only limit: a pod at 80 % of its CPU may already miss the latency objective,
//! the more so the fewer requests it serves at once. A move therefore also stops where the
//! destination's p99, as the queueing model of `pod` projects it, would pass the objective
//! (`limit`): the highest utilisation at which its pods keep the objective, when that is below
//! the CPU ceiling. (Seen on a random mesh: a one-pod subset serving one request at a time, at
//! about half its CPU, was given 17 more points of traffic — within the 85 % ceiling — and
//! queued past its 540 ms objective; the traffic then went back and forth between the subsets,
//! 26 SLO minutes against Istio's defaults' 4. With the limit: 5.)
//!
//! The latency limit at the objective holds weights moves only. Ejecting outliers and timing
//! out a slow pod are held to the CPU ceiling (a slow pod's timeout besides to the retry budget, counting the peers' tries the
//! timeout itself would cut at their load after the move, `latency::healthy_spill`): an ejection is the data plane's, temporary (the host
//! returns after its ejection time) and bounded by `maxEjectionPercent` and the panic
//! threshold, and it answers a pod failing now, whose errors are the larger harm than some
//! queueing on its peers; a weights move stays until the Governor moves it back. (Tried on
//! ejections too: one of three one-slot pods failing 50 % was no longer ejected, because the
//! two left would have run 41 ms over a 300 ms objective.)
//!
//! A destination whose utilisation is not reported (no CPU metrics, or no traffic to project
//! from) is limited only by the step, as before this module: the move's trigger is the
//! source's own errors, and the absence of CPU metrics must not disable traffic shifting.

use super::Ctx;
use super::observation::Signals;
use super::pod;

/// The most a move may load its destination (a fraction, 0.85 = 85 %).
pub fn ceiling(ctx: &Ctx<'_>) -> f64 {
    let hpa_target = ctx
        .obs
        .config
        .hpa
        .as_ref()
        .map_or(0, |h| h.target_utilization_percent);
    f64::from(ctx.spec.controls.autoscaling.target_range(hpa_target).max) / 100.0
}

/// What stops a move at a destination: the utilisation it may be loaded to, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub utilization: f64,
    /// The latency objective binds before the CPU ceiling does.
    pub by_latency: bool,
}

impl Limit {
    /// What the limit is, for a note: "over {this}".
    pub fn describe(&self, ctx: &Ctx<'_>) -> String {
        if self.by_latency {
            format!(
                "the {:.0}% CPU at which the pods' p99 would pass the {:.0} ms objective (queueing model)",
                self.utilization * 100.0,
                ctx.spec.objectives.latency_p99.as_secs_f64() * 1000.0
            )
        } else {
            format!(
                "the {:.0}% CPU the policy lets an autoscaler run a pod at",
                self.utilization * 100.0
            )
        }
    }
}

/// The CPU ceiling as a limit: what ejections and slow-pod timeouts are held to (see the
/// module docs for why not the latency limit too).
pub fn cpu_limit(ctx: &Ctx<'_>) -> Limit {
    Limit {
        utilization: ceiling(ctx),
        by_latency: false,
    }
}

/// The most a move may load `pods` pods that now serve `served` requests/s at mean utilisation
/// `utilization` and p99 `p99_now` (seconds), their service time and low-load p99 read from
/// `signals`: the CPU ceiling, or the utilisation at which the queueing model (`pod`) says
/// their p99 reaches the objective, whichever is lower. The model needs the pods busy enough to
/// measure and their latency; without it only the CPU ceiling holds (the absence of latency
/// data must not disable traffic shifting), and so it does where their p99 misses the
/// objective even at low load (`pod::Latency::max_utilization`: load does not decide it; a
/// broken canary must still be cut off).
pub fn limit(
    ctx: &Ctx<'_>,
    signals: &Signals,
    pods: u32,
    served: f64,
    utilization: Option<f64>,
    p99_now: Option<f64>,
) -> Limit {
    let cpu = cpu_limit(ctx);
    let latency = (|| {
        let objectives = &ctx.spec.objectives;
        let pod = pod::PodModel::measure(
            served,
            pods,
            utilization?,
            pod::service_time(signals, objectives.success_rate)?,
            ctx.obs.end,
        )?;
        let queue = pod::Latency {
            pod,
            base_p99: pod::low_load_p99(signals)?,
            objective: objectives.latency_p99.as_secs_f64(),
        };
        queue.max_utilization(pods, served, p99_now?)
    })();
    match latency {
        Some(u) if u < cpu.utilization => Limit {
            utilization: u,
            by_latency: true,
        },
        _ => cpu,
    }
}

/// Utilisation of pods at `utilization` serving `now` once they serve `after` (same unit).
pub fn projected(utilization: f64, now: f64, after: f64) -> f64 {
    utilization * after / now
}

/// The utilisation of pods at `utilization` serving `now` once they also take `moved` (same
/// unit), if that passes their `limit`; `None` when it stays within it or cannot be known (no
/// utilisation, no traffic now). What ejecting outliers and timing out a slow pod both ask of
/// the pods left.
pub fn overload_after(limit: Limit, utilization: Option<f64>, now: f64, moved: f64) -> Option<f64> {
    let u = utilization.filter(|u| u.is_finite())?;
    if now <= 0.0 {
        return None;
    }
    let after = projected(u, now, now + moved);
    (after > limit.utilization).then_some(after)
}

/// Whether load may explain the errors of pods at `failing` utilisation against pods at
/// `other`: both known and the failing ones at least as busy.
pub fn load_may_explain(failing: Option<f64>, other: Option<f64>) -> bool {
    matches!((failing, other), (Some(f), Some(o)) if f.is_finite() && o.is_finite() && f >= o)
}

/// What a point of traffic moved away from failing pods loads its destination with, as a share
/// of a point of the destination's own traffic: a whole point where load may explain their
/// errors (`busy`), else their successes, `1 − e` at error rate `e` (see the module docs). An
/// error rate that is not a number is no evidence of failures: a whole point.
pub fn load_per_point(busy: bool, error_rate: f64) -> f64 {
    if busy || !error_rate.is_finite() {
        1.0
    } else {
        1.0 - error_rate.clamp(0.0, 1.0)
    }
}

/// Percentage points of traffic that pods serving `weight` % at `utilization` can take before
/// they pass `ceiling`, when a point moved to them loads them as `load_per_point` of a point of
/// their own traffic (1 for an overload's traffic, `1 − e` for a broken pod's); `None` when
/// that cannot be known (no utilisation, no traffic now).
pub fn room_percent(
    utilization: Option<f64>,
    weight: u32,
    ceiling: f64,
    load_per_point: f64,
) -> Option<u32> {
    let u = utilization.filter(|u| u.is_finite() && *u > 0.0)?;
    if weight == 0 {
        return None;
    }
    let w = f64::from(weight);
    // A point that brings no load (a source failing everything) leaves the room unlimited.
    let per_point = if load_per_point.is_finite() {
        load_per_point.clamp(1e-9, 1.0)
    } else {
        1.0
    };
    // Largest whole Δ with u · (w + Δ · per_point) / w ≤ ceiling; 0 when already at or past
    // it. Decimal fractions are not exact in binary (90 · (0.85 / 0.5 − 1) is 62.99999… in
    // f64), so a billionth of a point is forgiven before rounding down.
    let room = (w * (ceiling / u - 1.0) / per_point + 1e-9).floor();
    Some(if room <= 0.0 {
        0
    } else {
        room.min(100.0) as u32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_matches_the_worked_example() {
        assert_eq!(room_percent(Some(0.5), 90, 0.85, 1.0), Some(63));
        assert_eq!(room_percent(Some(0.4), 10, 0.85, 1.0), Some(11));
        // 10 + 11 = 21 % at 0.4 · 21 / 10 = 84 % ≤ 85 %; 22 % would be 88 %.
        assert!(projected(0.4, 10.0, 21.0) <= 0.85);
        assert!(projected(0.4, 10.0, 22.0) > 0.85);
        // A broken source failing 20 %: a point brings 0.8 of one. Stable at 50 % of the
        // traffic and 70 % CPU: 50 · (0.85 / 0.7 − 1) = 10.71 points of its own traffic, so
        // ⌊10.71 / 0.8⌋ = 13 of the source's (0.7 · (50 + 13 · 0.8) / 50 = 84.6 %).
        assert_eq!(room_percent(Some(0.7), 50, 0.85, 1.0), Some(10));
        assert_eq!(room_percent(Some(0.7), 50, 0.85, 0.8), Some(13));
        assert!(projected(0.7, 50.0, 50.0 + 13.0 * 0.8) <= 0.85);
        assert!(projected(0.7, 50.0, 50.0 + 14.0 * 0.8) > 0.85);
        // A source failing everything brings nothing: no limit but the whole traffic.
        assert_eq!(room_percent(Some(0.7), 50, 0.85, 0.0), Some(100));
        // Already at or over the ceiling: no room.
        assert_eq!(room_percent(Some(0.85), 30, 0.85, 1.0), Some(0));
        assert_eq!(room_percent(Some(1.3), 30, 0.85, 0.5), Some(0));
        // Nothing to project from.
        assert_eq!(room_percent(None, 30, 0.85, 1.0), None);
        assert_eq!(room_percent(Some(f64::NAN), 30, 0.85, 1.0), None);
        assert_eq!(room_percent(Some(0.0), 30, 0.85, 1.0), None);
        assert_eq!(room_percent(Some(0.5), 0, 0.85, 1.0), None);
        // Nearly idle pods: capped at the whole traffic.
        assert_eq!(room_percent(Some(1e-9), 50, 0.85, 1.0), Some(100));
    }

    #[test]
    fn a_broken_source_brings_its_successes() {
        assert_eq!(load_per_point(true, 0.2), 1.0);
        assert_eq!(load_per_point(false, 0.25), 0.75);
        assert_eq!(load_per_point(false, 1.0), 0.0);
        assert_eq!(load_per_point(false, 1.5), 0.0);
        assert_eq!(load_per_point(false, f64::NAN), 1.0);
    }

    #[test]
    fn load_explains_only_errors_of_the_busier_pods() {
        assert!(load_may_explain(Some(0.97), Some(0.4)));
        assert!(load_may_explain(Some(0.5), Some(0.5)));
        assert!(!load_may_explain(Some(0.2), Some(0.5)));
        assert!(!load_may_explain(None, Some(0.5)));
        assert!(!load_may_explain(Some(0.9), None));
        assert!(!load_may_explain(Some(f64::NAN), Some(0.5)));
    }
}
