//! Small summaries of telemetry windows that every planner needs, all NaN-aware: a missing point
//! is skipped, never read as zero.

use statrs::distribution::{Binomial, DiscreteCDF};

use super::observation::Signals;

/// How many of the newest points count as "now" (with a 15 s loop: the last minute).
pub const RECENT: usize = 4;

/// The present values among the newest `n` points.
pub fn recent(values: &[f64], n: usize) -> impl Iterator<Item = f64> + '_ {
    values[values.len().saturating_sub(n)..]
        .iter()
        .copied()
        .filter(|v| v.is_finite())
}

/// Mean of the present values among the newest `n` points; `None` if there are none.
pub fn recent_mean(values: &[f64], n: usize) -> Option<f64> {
    let (sum, count) = recent(values, n).fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Share of the newest `n` points that are present (0 for an empty window).
pub fn coverage(values: &[f64], n: usize) -> f64 {
    if values.is_empty() || n == 0 {
        return 0.0;
    }
    let tail = &values[values.len().saturating_sub(n)..];
    tail.iter().filter(|v| v.is_finite()).count() as f64 / n as f64
}

/// Requests a telemetry point needs before its p99 is one: 1/(1 − 0.99). With fewer, one request
/// in a hundred cannot be above it and the point's "p99" is its slowest request, whose expected
/// value grows with the number of requests: of two pods or subsets with the same latency, the
/// one taking more traffic (a primary beside its canary, a subset with the larger weight) looks
/// the slower. Found by `simulator/tests/scenario_fuzz.rs` on meshes where every request
/// succeeded within the objective: a pod taking 51 % of 13 req/s had a 5 s-point "p99" of 807 ms
/// against 209 ms for peers at 0.9 req/s each and got a per-try timeout 35 s in; three equal pods
/// at 0.9 req/s with 30 s points (27 requests each) and a heavy tail took turns looking twice as
/// slow as the others; a subset with 69 % of the traffic "failed" at 644 ms against 60 ms and
/// lost 20 % of its weight, given back and taken again within two minutes.
pub const MIN_REQUESTS_FOR_P99: f64 = 100.0;

/// The median of the newest `n` p99s, for comparing peers: `None` when missing, or when the
/// typical point held fewer than [`MIN_REQUESTS_FOR_P99`] requests (mean request rate × step).
///
/// The median, not the mean: a point's p99 from a hundred-odd requests of a heavy-tailed
/// service is at times a far larger request (of 107 requests, a lognormal σ = 1.4 puts the
/// second largest above the true p99.9 — 2.9 × the p99 — in about 0.5 % of points), and one
/// such point lifted a healthy pod's mean of four to twice its peers' in the fuzz test above.
/// A slow pod is slow in most of its points; the median asks for that.
pub fn comparable_p99(s: &Signals, n: usize, step_seconds: i64) -> Option<f64> {
    if p99_is_a_percentile(s, n, step_seconds) {
        let points: Vec<f64> = recent(&s.latency_p99, n).collect();
        crate::stats::median(&points)
    } else {
        None
    }
}

/// Whether the newest `n` points held, on average, at least [`MIN_REQUESTS_FOR_P99`] requests
/// each (mean request rate × step), so that their p99s are percentiles and not each point's
/// slowest request. `false` when the request rate is missing.
pub fn p99_is_a_percentile(s: &Signals, n: usize, step_seconds: i64) -> bool {
    recent_mean(&s.request_rate, n).is_some_and(|r| r * step_seconds as f64 >= MIN_REQUESTS_FOR_P99)
}

/// Errors and requests (rate × step) at each of the newest `n` points, oldest first, `None`
/// where the request rate or the success rate is missing. Every endpoint's series ends at the
/// observation's end, so the i-th entry of two endpoints is the same moment; a series shorter
/// than `n` is padded at the front with `None`.
pub fn error_counts(s: &Signals, n: usize, step_seconds: i64) -> Vec<Option<(f64, f64)>> {
    let len = s.request_rate.len().min(s.success_rate.len());
    let rr = &s.request_rate[s.request_rate.len() - len..];
    let sr = &s.success_rate[s.success_rate.len() - len..];
    let from = len.saturating_sub(n);
    let mut out = vec![None; n.saturating_sub(len)];
    out.extend(rr[from..].iter().zip(&sr[from..]).map(|(&r, &ok)| {
        (r.is_finite() && ok.is_finite() && r >= 0.0).then(|| {
            let count = r * step_seconds as f64;
            (count * (1.0 - ok.clamp(0.0, 1.0)), count)
        })
    }));
    out
}

/// Request-weighted error rate and request count over the newest `n` points where both the
/// request rate and the success rate are known: (errors / requests, requests). `None` when no
/// point has both.
pub fn error_rate(s: &Signals, n: usize, step_seconds: i64) -> Option<(f64, f64)> {
    let len = s.request_rate.len().min(s.success_rate.len());
    pooled(&error_counts(s, n.min(len), step_seconds))
}

/// Per-point counts ([`error_counts`]) pooled: (errors / requests, requests) over the points
/// present; `None` when they hold no request.
pub fn pooled(points: &[Option<(f64, f64)>]) -> Option<(f64, f64)> {
    let (errors, requests) = points
        .iter()
        .flatten()
        .fold((0.0, 0.0), |(e, r), (pe, pr)| (e + pe, r + pr));
    (requests > 0.0).then(|| (errors / requests, requests))
}

/// [`error_rate`] over the newest [`RECENT`] points, or, where they hold fewer than
/// `1 / budget` requests, over the fewest newest points up to [`TREND`] that do (all `TREND`
/// if none do): `1 / budget` requests are the fewest in which a single error is no more than
/// the budget. Below that one error reads as over it, whatever the true rate: at a 1 % budget
/// and 40 requests, one error is 2.5 %. The same reasoning as [`MIN_REQUESTS_FOR_P99`] for a
/// p99. A budget of zero or less (an objective of 100 %) takes the recent points alone:
/// no count resolves it.
pub fn error_rate_resolving(s: &Signals, step_seconds: i64, budget: f64) -> Option<(f64, f64)> {
    let recent = error_rate(s, RECENT, step_seconds)?;
    if budget <= 0.0 || !budget.is_finite() {
        return Some(recent);
    }
    let needed = 1.0 / budget;
    let mut best = recent;
    for n in RECENT + 1..=TREND {
        if best.1 >= needed {
            break;
        }
        best = error_rate(s, n, step_seconds).unwrap_or(best);
    }
    Some(best)
}

/// Points a trend is judged over (5 minutes at a 15 s loop).
pub const TREND: usize = 20;
/// Errors are judged to come from load when, over the last `TREND` points, they correlate
/// with the request rate and with p99 latency at least this strongly (both). Over a full
/// trend of 20 points, r ≥ 0.6 has a one-sided chance of about 0.003 without any correlation
/// (t = r·√18/√(1 − r²) = 3.18 on 18 degrees of freedom); over the fewest points a
/// correlation is computed from (4) it is about 0.2, which is why both signals must agree.
pub const OVERLOAD_CORRELATION: f64 = 0.6;

/// How a window's errors move with its load and its p99 latency over the last `TREND` points
/// (`Default`: nothing known).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadTrend {
    pub with_load: Option<f64>,
    pub with_latency: Option<f64>,
    /// Points of the trend where both errors and load are present.
    pub points: usize,
    /// The load over the trend varies no more than counting noise would (`flat`): there is
    /// nothing for the errors to correlate with, so `with_load` says nothing either way.
    pub load_flat: bool,
}

impl LoadTrend {
    /// Load as the servers count it, every try: what a retry storm feeds on.
    pub fn of(s: &Signals) -> Self {
        Self::against(s, &s.request_rate, None)
    }

    /// Load as the requests served, successful tries only (`request_rate × success_rate`):
    /// what the pods did, unlike tries, which retries inflate. A broken subset's tries climb
    /// with its errors (each failure is retried) while what it serves falls; an overloaded
    /// one fails more as it serves more. Seen on a random mesh: a subset failing 45 % of its
    /// tries from a fault, its try rate driven up by Istio's 2 retries, correlated r = 1.00
    /// with its own errors.
    ///
    /// `step_seconds` turns rates into counts, for whether the served load is `flat`.
    pub fn of_served(s: &Signals, step_seconds: i64) -> Self {
        let len = s.request_rate.len().min(s.success_rate.len());
        let served: Vec<f64> = s.request_rate[s.request_rate.len() - len..]
            .iter()
            .zip(&s.success_rate[s.success_rate.len() - len..])
            .map(|(r, ok)| r * ok)
            .collect();
        Self::against(s, &served, Some(step_seconds))
    }

    fn against(s: &Signals, load: &[f64], step_seconds: Option<i64>) -> Self {
        let tail = |v: &[f64]| v[v.len().saturating_sub(TREND)..].to_vec();
        let errors: Vec<f64> = tail(&s.success_rate).iter().map(|x| 1.0 - x).collect();
        let load = tail(load);
        let pairs = present_pairs(&errors, &load);
        let load_flat = step_seconds.is_some_and(|step| {
            let counts: Vec<f64> = pairs.iter().map(|(_, l)| l * step as f64).collect();
            flat(&counts)
        });
        Self {
            with_load: correlation(&errors, &load),
            with_latency: correlation(&errors, &tail(&s.latency_p99)),
            points: pairs.len(),
            load_flat,
        }
    }

    /// Whether there is history enough to tell load-driven errors from others: the points a
    /// correlation needs (`MIN_CORRELATION_POINTS`). With fewer, an overload's first minutes
    /// look exactly like a fault.
    pub fn known(&self) -> bool {
        self.points >= MIN_CORRELATION_POINTS
    }

    /// Errors that rise with load and latency together: an overload's signature (queues fill,
    /// waits grow, full queues answer 503), not a fault's, whose errors come at any load.
    pub fn load_driven(&self) -> bool {
        self.with_load.is_some_and(|c| c >= OVERLOAD_CORRELATION)
            && self.with_latency.is_some_and(|c| c >= OVERLOAD_CORRELATION)
    }

    /// A queue that overflows now and then at a steady load (`load_flat`), where
    /// [`load_driven`](Self::load_driven)'s first half cannot show: what the pods are offered
    /// does not move, and the queue fills at random, when a burst of arrivals or of long
    /// requests comes. Its errors still come exactly when its wait is longest (a full queue is
    /// the longest wait it has), so there the latency half alone is the signature — over a
    /// full trend only, where r ≥ `OVERLOAD_CORRELATION` has a chance of 0.003 without any
    /// correlation. A fault's errors come at any wait: a broken pod's fail fast.
    pub fn overflowing(&self) -> bool {
        self.load_flat
            && self.points >= TREND
            && self.with_latency.is_some_and(|c| c >= OVERLOAD_CORRELATION)
    }
}

/// Whether every one of the newest `n` points fails more than `budget` of its requests (a
/// point with no data or no request breaks the run): a subset failing *throughout*, not now and
/// then. A queue that overflows at a steady load refuses requests while a burst fills it and
/// none while it drains, so its errors come in some points and not others (seen: 0, 0, 0 and
/// 38 errors in a one-pod subset's four recent points); a subset failing in every point is
/// full, or broken, all the time. Without this, a step change — a canary 5× slower from one
/// point on, its errors and its p99 rising together in every point after it — correlates with
/// its p99 as an overflowing queue's bursts do (r = 1.00 at the step's first point against 19
/// calm ones), and was left its traffic for 135 s while it failed 6–14 % of its requests.
pub fn fails_throughout(s: &Signals, n: usize, step_seconds: i64, budget: f64) -> bool {
    // `error_counts` pads a window shorter than `n` with `None`, which breaks the run too.
    n > 0
        && error_counts(s, n, step_seconds).iter().all(|p| {
            p.is_some_and(|(errors, requests)| requests > 0.0 && errors > budget * requests)
        })
}

/// Whether per-point counts vary no more than Poisson counting noise: the index of dispersion
/// Σ(cᵢ − c̄)² / c̄ is χ² with n − 1 degrees of freedom for Poisson counts (Fisher's dispersion
/// test), and the test does not reject that at the conventional 1 % level. Fewer than
/// `MIN_CORRELATION_POINTS` counts, or none above zero, are not flat: nothing is known.
pub fn flat(counts: &[f64]) -> bool {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    if counts.len() < MIN_CORRELATION_POINTS || counts.iter().any(|c| !c.is_finite()) {
        return false;
    }
    let n = counts.len() as f64;
    let mean = counts.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return false;
    }
    let dispersion = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / mean;
    ChiSquared::new(n - 1.0).is_ok_and(|chi| chi.sf(dispersion) > FLAT_ALPHA)
}

/// The level at which `flat` rejects counting noise (the conventional 1 %).
const FLAT_ALPHA: f64 = 0.01;

/// Fewest points a correlation is computed from (three points always fit some trend).
pub const MIN_CORRELATION_POINTS: usize = 4;

/// The newest points of two windows side by side (aligned at their ends), where both are
/// present.
fn present_pairs(a: &[f64], b: &[f64]) -> Vec<(f64, f64)> {
    let len = a.len().min(b.len());
    a[a.len() - len..]
        .iter()
        .zip(&b[b.len() - len..])
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (*x, *y))
        .collect()
}

/// Pearson correlation of two windows over the points where both are present; `None` with
/// fewer than `MIN_CORRELATION_POINTS` such points or no variation.
pub fn correlation(a: &[f64], b: &[f64]) -> Option<f64> {
    let pairs = present_pairs(a, b);
    if pairs.len() < MIN_CORRELATION_POINTS {
        return None;
    }
    let n = pairs.len() as f64;
    let (ma, mb) = pairs
        .iter()
        .fold((0.0, 0.0), |(sa, sb), (x, y)| (sa + x / n, sb + y / n));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in &pairs {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    let denom = (saa * sbb).sqrt();
    (denom > 1e-12).then(|| sab / denom)
}

/// P(X ≥ errors) for X ~ Binomial(requests, p): how surprising this many errors would be if
/// the true error rate were `p`. Exact (statrs' regularised incomplete beta), so a handful of
/// errors on little traffic is not mistaken for a failure the way a normal approximation would.
pub fn binomial_tail(errors: f64, requests: f64, p: f64) -> f64 {
    let k = errors.max(0.0).round() as u64;
    let n = requests.max(0.0).round() as u64;
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    Binomial::new(p.clamp(1e-12, 1.0 - 1e-12), n).map_or(1.0, |b| b.sf(k - 1))
}

/// An error-rate estimate that is never exactly 0 or 1: (errors + ½) / (requests + 1).
pub fn smoothed_rate(rate: f64, requests: f64) -> f64 {
    (rate * requests + 0.5) / (requests + 1.0)
}

/// Significance below which the service counts as over its error budget.
pub const OVER_BUDGET_ALPHA: f64 = 1e-3;

/// The service's recent error rate, requests, and whether it is significantly over `budget`.
pub fn over_budget(s: &Signals, step_seconds: i64, budget: f64) -> Option<(f64, f64, bool)> {
    let (e, n) = error_rate(s, RECENT, step_seconds)?;
    Some((
        e,
        n,
        e > budget && binomial_tail(e * n, n, budget) <= OVER_BUDGET_ALPHA,
    ))
}

/// Index of the first point of a `len`-point window ending at `end` that is newer than
/// `fed_until` (`len` when none is): the streaming models must see each point once, whether an
/// adapter sends the whole lookback every run or only the newest points. Saturating, so absurd
/// timestamps or steps give "all" or "none", never a panic.
pub fn first_unseen(end: i64, step: i64, len: usize, fed_until: Option<i64>) -> usize {
    let Some(t) = fed_until else { return 0 };
    if t >= end {
        return len;
    }
    let step = step.max(1);
    // The point at end − k·step is new iff k < ⌈(end − t) / step⌉.
    let gap = end.saturating_sub(t);
    let new = gap / step + i64::from(gap % step != 0);
    len - len.min(usize::try_from(new).unwrap_or(usize::MAX))
}

/// How many steps after a change a point must be evaluated for its rate window to hold only
/// traffic from after the change: the controller's points are rates over one step plus half a
/// scrape interval
/// (`controller/src/telemetry/promql.rs`, `rate_window`), at most 1.5 steps when Prometheus
/// scrapes at least once a step, rounded up to whole steps.
pub const SETTLE_STEPS: i64 = 2;

/// The newest points of a window ending at `end` whose rate windows hold only traffic after a
/// change applied at `at` (those evaluated [`SETTLE_STEPS`] steps after it or later); the whole
/// window when nothing was applied. No panic on absurd times: a settling time past the end
/// of time leaves no point.
pub fn after_change(values: &[f64], end: i64, step: i64, at: Option<i64>) -> &[f64] {
    let Some(at) = at else { return values };
    let Some(from) = SETTLE_STEPS
        .checked_mul(step.max(1))
        .and_then(|d| at.checked_add(d))
    else {
        return &[];
    };
    // `first_unseen` counts points newer than a time; a point evaluated at `from` is settled.
    &values[first_unseen(end, step, values.len(), Some(from.saturating_sub(1)))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fisher's dispersion test at 1 %: χ² with 3 degrees of freedom passes 11.345 with a
    /// chance of 1 % (the tables' value). Four counts alternating 100 ± d have dispersion
    /// 4d²/100: d = 16 gives 10.24 (flat), d = 18 gives 12.96 (not). Equal counts have none;
    /// 290, 310, 300, 295, 305 (counting noise of a mean of 300, whose standard deviation is
    /// √300 ≈ 17) have 250/300 = 0.83 on 4 degrees of freedom (flat); 100, 200, 100, 200 have
    /// 10,000/150 = 66.7 (not). Too few counts, no traffic, or a gap say nothing: not flat.
    #[test]
    fn a_load_is_flat_while_it_varies_no_more_than_counting_noise() {
        assert!(flat(&[300.0; 4]));
        assert!(flat(&[116.0, 84.0, 116.0, 84.0]));
        assert!(!flat(&[118.0, 82.0, 118.0, 82.0]));
        assert!(flat(&[290.0, 310.0, 300.0, 295.0, 305.0]));
        assert!(!flat(&[100.0, 200.0, 100.0, 200.0]));
        assert!(!flat(&[300.0; 3]));
        assert!(!flat(&[0.0; 4]));
        assert!(!flat(&[300.0, f64::NAN, 300.0, 300.0, 300.0]));
    }

    /// A full trend (20 points of 15 s) at 20 req/s (300 requests a point), with a burst every
    /// fifth point: 4 % of the requests fail and the p99 is 250 ms against 100 ms otherwise.
    /// The errors come exactly with the longest waits (r = 1) at a flat load: a queue that
    /// overflows. The same bursts at a normal p99 (no correlation to compute), the same with
    /// the load climbing 10 → 29 req/s (not flat), or with only 19 points: not a sign of it.
    #[test]
    fn errors_with_the_longest_waits_at_a_steady_load_are_an_overflowing_queue() {
        let trend = |n: usize, rps: &dyn Fn(usize) -> f64, burst_p99: f64| {
            let burst = |i: usize| (i + 1).is_multiple_of(5);
            let s = Signals {
                request_rate: (0..n).map(rps).collect(),
                success_rate: (0..n).map(|i| if burst(i) { 0.96 } else { 1.0 }).collect(),
                latency_p99: (0..n)
                    .map(|i| if burst(i) { burst_p99 } else { 0.1 })
                    .collect(),
                ..Signals::default()
            };
            LoadTrend::of_served(&s, 15)
        };
        let steady = |_: usize| 20.0;
        let overflow = trend(TREND, &steady, 0.25);
        assert!(overflow.load_flat, "{overflow:?}");
        assert!(
            overflow
                .with_latency
                .is_some_and(|r| (r - 1.0).abs() < 1e-9)
        );
        assert!(overflow.overflowing());
        assert!(!trend(TREND, &steady, 0.1).overflowing());
        let climbing = trend(TREND, &|i| 10.0 + i as f64, 0.25);
        assert!(
            !climbing.load_flat && !climbing.overflowing(),
            "{climbing:?}"
        );
        assert!(!trend(TREND - 1, &steady, 0.25).overflowing());
    }

    /// 20 req/s, 300 requests a point, a 0.1 % budget (0.3 errors a point): a point fails when
    /// it has more errors than that, i.e. at least one. Four recent points with 12, 1, 3 and 30
    /// errors fail throughout; an overflowing queue's 0, 0, 0 and 38 do not; one point with
    /// no data, or fewer points than asked for, breaks the run.
    #[test]
    fn failing_throughout_needs_every_recent_point_over_the_budget() {
        let s = |errors: &[f64]| Signals {
            request_rate: vec![20.0; errors.len()],
            success_rate: errors.iter().map(|e| 1.0 - e / 300.0).collect(),
            ..Signals::default()
        };
        assert!(fails_throughout(
            &s(&[0.0, 12.0, 1.0, 3.0, 30.0]),
            4,
            15,
            0.001
        ));
        assert!(!fails_throughout(&s(&[0.0, 0.0, 0.0, 38.0]), 4, 15, 0.001));
        assert!(!fails_throughout(&s(&[12.0, 1.0, 30.0]), 4, 15, 0.001));
        let mut gap = s(&[12.0, 1.0, 3.0, 30.0]);
        gap.request_rate[1] = f64::NAN;
        assert!(!fails_throughout(&gap, 4, 15, 0.001));
        // At a 1 % budget (3 errors a point) the point with one error is within it.
        assert!(!fails_throughout(&s(&[12.0, 1.0, 3.0, 30.0]), 4, 15, 0.01));
    }

    #[test]
    fn error_rate_weights_points_by_requests_and_skips_gaps() {
        let s = Signals {
            request_rate: vec![10.0, f64::NAN, 30.0],
            success_rate: vec![0.9, 0.5, 1.0],
            ..Signals::default()
        };
        // 10 rps·15 s = 150 requests at 10 % errors = 15 errors; the NaN point is skipped;
        // 30·15 = 450 requests, no errors. 15 / 600 = 0.025.
        let (e, n) = error_rate(&s, 3, 15).unwrap();
        assert!((e - 0.025).abs() < 1e-12);
        assert!((n - 600.0).abs() < 1e-9);
        assert_eq!(coverage(&s.request_rate, 3), 2.0 / 3.0);
        assert_eq!(recent_mean(&s.request_rate, 2), Some(30.0));
    }

    #[test]
    fn an_error_rate_widens_until_its_requests_resolve_the_budget() {
        // 2 requests/s in 5 s points: 10 requests a point. One error in the newest point.
        let low = |points: usize| Signals {
            request_rate: vec![2.0; points],
            success_rate: (0..points)
                .map(|i| if i + 1 == points { 0.9 } else { 1.0 })
                .collect(),
            ..Signals::default()
        };
        // The recent 4 points: 1 error in 40 = 2.5 %, over a 1 % budget by one error alone.
        let close = |(e, n): (f64, f64), (e0, n0): (f64, f64)| {
            (e - e0).abs() < 1e-12 && (n - n0).abs() < 1e-9
        };
        assert!(close(
            error_rate(&low(30), RECENT, 5).unwrap(),
            (0.025, 40.0)
        ));
        // A 1 % budget needs 1 / 0.01 = 100 requests: the newest 10 points, 1 error in 100.
        let got = error_rate_resolving(&low(30), 5, 0.01).unwrap();
        assert!(close(got, (0.01, 100.0)), "{got:?}");
        // A 0.1 % budget needs 1,000: more than the 20-point trend holds (200), so the trend.
        let got = error_rate_resolving(&low(30), 5, 0.001).unwrap();
        assert!(close(got, (0.005, 200.0)), "{got:?}");
        // Only 6 points exist: all of them, 1 in 60.
        let got = error_rate_resolving(&low(6), 5, 0.01).unwrap();
        assert!(close(got, (1.0 / 60.0, 60.0)), "{got:?}");
        // An objective of 100 % is resolved by no count: the recent points.
        let got = error_rate_resolving(&low(30), 5, 0.0).unwrap();
        assert!(close(got, (0.025, 40.0)), "{got:?}");
        // 100 requests/s: the recent 4 points hold 2,000, enough for a 0.1 % budget.
        let busy = Signals {
            request_rate: vec![100.0; 30],
            success_rate: vec![0.999; 30],
            ..Signals::default()
        };
        let (_, n) = error_rate_resolving(&busy, 5, 0.001).unwrap();
        assert!((n - 2000.0).abs() < 1e-9, "{n}");
    }

    #[test]
    fn binomial_tail_matches_hand_worked_values() {
        // 2 or more errors in 2 requests at p = 0.5: 0.25.
        assert!((binomial_tail(2.0, 2.0, 0.5) - 0.25).abs() < 1e-12);
        // At least 1 of 3 at p = 0.1: 1 − 0.9³ = 0.271.
        assert!((binomial_tail(1.0, 3.0, 0.1) - 0.271).abs() < 1e-12);
        assert_eq!(binomial_tail(0.0, 10.0, 0.1), 1.0);
        assert_eq!(smoothed_rate(0.0, 99.0), 0.005);
    }

    #[test]
    fn first_unseen_feeds_each_point_once() {
        // Window of 4 points ending at 60 with step 15: times 15, 30, 45, 60.
        assert_eq!(first_unseen(60, 15, 4, None), 0);
        assert_eq!(first_unseen(60, 15, 4, Some(45)), 3);
        assert_eq!(first_unseen(60, 15, 4, Some(60)), 4);
        assert_eq!(first_unseen(60, 15, 4, Some(-1_000)), 0);
        // Off the grid: 50 < 60, so the newest point is new.
        assert_eq!(first_unseen(60, 15, 4, Some(50)), 3);
        assert_eq!(first_unseen(i64::MAX, 1, 4, Some(i64::MIN)), 0);
    }

    #[test]
    fn after_change_keeps_points_whose_rate_window_follows_the_change() {
        // Points at 15, 30, 45, 60 (step 15). A change at 20 settles 2 steps later, at 50:
        // only the point at 60 is wholly after it. A change at 30 settles at 60: the point at 60
        // counts (evaluated exactly then). A change at 31 settles at 61: none.
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(after_change(&v, 60, 15, None), &v[..]);
        assert_eq!(after_change(&v, 60, 15, Some(20)), &[4.0]);
        assert_eq!(after_change(&v, 60, 15, Some(30)), &[4.0]);
        assert!(after_change(&v, 60, 15, Some(31)).is_empty());
        // Long before the window: all of it.
        assert_eq!(after_change(&v, 60, 15, Some(-100)), &v[..]);
        assert_eq!(after_change(&v, i64::MAX, 1, Some(i64::MAX)), &[] as &[f64]);
        assert_eq!(after_change(&v, 60, 15, Some(i64::MIN)), &v[..]);
    }

    #[test]
    fn correlation_of_a_line_is_one_and_needs_four_points() {
        assert!(
            (correlation(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 6.0, 8.0]).unwrap() - 1.0).abs()
                < 1e-12
        );
        assert_eq!(correlation(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), None);
    }
}
