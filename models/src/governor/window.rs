//! Small summaries of telemetry windows that every planner needs, all NaN-aware: a missing point
//! is skipped, never read as zero.

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

/// Request-weighted error rate and request count over the newest `n` points where both the
/// request rate and the success rate are known: (errors / requests, requests). `None` when no
/// point has both.
pub fn error_rate(s: &Signals, n: usize, step_seconds: i64) -> Option<(f64, f64)> {
    let len = s.request_rate.len().min(s.success_rate.len());
    let rr = &s.request_rate[s.request_rate.len() - len..];
    let sr = &s.success_rate[s.success_rate.len() - len..];
    let from = len.saturating_sub(n);
    let mut requests = 0.0;
    let mut errors = 0.0;
    for i in from..len {
        let (r, ok) = (rr[i], sr[i]);
        if r.is_finite() && ok.is_finite() && r >= 0.0 {
            let count = r * step_seconds as f64;
            requests += count;
            errors += count * (1.0 - ok.clamp(0.0, 1.0));
        }
    }
    (requests > 0.0).then(|| (errors / requests, requests))
}

/// Pearson correlation of two windows over the points where both are present; `None` with
/// fewer than 4 such points or no variation.
pub fn correlation(a: &[f64], b: &[f64]) -> Option<f64> {
    let len = a.len().min(b.len());
    let a = &a[a.len() - len..];
    let b = &b[b.len() - len..];
    let pairs: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (*x, *y))
        .collect();
    if pairs.len() < 4 {
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

/// One-sided two-proportion z statistic: how much higher error rate `e1` over `n1` requests is
/// than `e2` over `n2`, in standard errors of the pooled rate. The pooled variance has a tiny
/// floor so that zero errors everywhere gives z = 0 rather than NaN.
pub fn z_two_proportions(e1: f64, n1: f64, e2: f64, n2: f64) -> f64 {
    if n1 <= 0.0 || n2 <= 0.0 {
        return 0.0;
    }
    let pooled = (e1 * n1 + e2 * n2) / (n1 + n2);
    let var = (pooled * (1.0 - pooled)).max(1e-9) * (1.0 / n1 + 1.0 / n2);
    (e1 - e2) / var.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn correlation_of_a_line_is_one_and_needs_four_points() {
        assert!(
            (correlation(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 6.0, 8.0]).unwrap() - 1.0).abs()
                < 1e-12
        );
        assert_eq!(correlation(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), None);
    }
}
