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
//! A destination whose utilisation is not reported (no CPU metrics, or no traffic to project
//! from) is limited only by the step, as before this module: the move's trigger is the
//! source's own errors, and the absence of CPU metrics must not disable traffic shifting.

use super::Ctx;

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

/// Utilisation of pods at `utilization` serving `now` once they serve `after` (same unit).
pub fn projected(utilization: f64, now: f64, after: f64) -> f64 {
    utilization * after / now
}

/// The utilisation of pods at `utilization` serving `now` once they also take `moved` (same
/// unit), if that passes the ceiling; `None` when it stays within it or cannot be known (no
/// utilisation, no traffic now). What ejecting outliers and timing out a slow pod both ask of
/// the pods left.
pub fn overload_after(
    ctx: &Ctx<'_>,
    utilization: Option<f64>,
    now: f64,
    moved: f64,
) -> Option<f64> {
    let u = utilization.filter(|u| u.is_finite())?;
    if now <= 0.0 {
        return None;
    }
    let after = projected(u, now, now + moved);
    (after > ceiling(ctx)).then_some(after)
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
