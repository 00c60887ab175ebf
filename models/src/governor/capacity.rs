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
//! Capacity limits a move only where load may explain the errors: the failing pods are at
//! least as busy as the destination. A pod broken by a bug fails fast and is less busy than
//! its peers, and cutting it off is right even onto busy peers (they already serve its
//! retries); overloaded pods fail *because* they are the busiest.
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

/// Whether load may explain the errors of pods at `failing` utilisation against pods at
/// `other`: both known and the failing ones at least as busy.
pub fn load_may_explain(failing: Option<f64>, other: Option<f64>) -> bool {
    matches!((failing, other), (Some(f), Some(o)) if f.is_finite() && o.is_finite() && f >= o)
}

/// Percentage points of traffic that pods serving `weight` % at `utilization` can take before
/// they pass `ceiling`; `None` when that cannot be known (no utilisation, no traffic now).
pub fn room_percent(utilization: Option<f64>, weight: u32, ceiling: f64) -> Option<u32> {
    let u = utilization.filter(|u| u.is_finite() && *u > 0.0)?;
    if weight == 0 {
        return None;
    }
    let w = f64::from(weight);
    // Largest whole Δ with u · (w + Δ) / w ≤ ceiling; 0 when already at or past it. Decimal
    // fractions are not exact in binary (90 · (0.85 / 0.5 − 1) is 62.99999… in f64), so a
    // billionth of a point is forgiven before rounding down.
    let room = (w * (ceiling / u - 1.0) + 1e-9).floor();
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
        assert_eq!(room_percent(Some(0.5), 90, 0.85), Some(63));
        assert_eq!(room_percent(Some(0.4), 10, 0.85), Some(11));
        // 10 + 11 = 21 % at 0.4 · 21 / 10 = 84 % ≤ 85 %; 22 % would be 88 %.
        assert!(projected(0.4, 10.0, 21.0) <= 0.85);
        assert!(projected(0.4, 10.0, 22.0) > 0.85);
        // Already at or over the ceiling: no room.
        assert_eq!(room_percent(Some(0.85), 30, 0.85), Some(0));
        assert_eq!(room_percent(Some(1.3), 30, 0.85), Some(0));
        // Nothing to project from.
        assert_eq!(room_percent(None, 30, 0.85), None);
        assert_eq!(room_percent(Some(f64::NAN), 30, 0.85), None);
        assert_eq!(room_percent(Some(0.0), 30, 0.85), None);
        assert_eq!(room_percent(Some(0.5), 0, 0.85), None);
        // Nearly idle pods: capped at the whole traffic.
        assert_eq!(room_percent(Some(1e-9), 50, 0.85), Some(100));
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
