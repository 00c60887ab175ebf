//! Small robust statistics shared by detectors, forecasters and the Governor. Every function
//! skips NaN (missing) values rather than letting them poison a result.

/// Median of the present values; `None` when there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Median absolute deviation around the median, scaled by 1.4826 so that it estimates the
/// standard deviation of normal data. `None` when there are no present values.
pub fn mad(values: &[f64]) -> Option<f64> {
    let m = median(values)?;
    let dev: Vec<f64> = values
        .iter()
        .filter(|x| !x.is_nan())
        .map(|x| (x - m).abs())
        .collect();
    median(&dev).map(|d| 1.4826 * d)
}

/// Mean and (population) standard deviation of the present values.
pub fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    let (mut n, mut sum, mut sq) = (0usize, 0.0, 0.0);
    for &x in values.iter().filter(|x| !x.is_nan()) {
        n += 1;
        sum += x;
        sq += x * x;
    }
    if n == 0 {
        return None;
    }
    let mean = sum / n as f64;
    Some((mean, (sq / n as f64 - mean * mean).max(0.0).sqrt()))
}

/// Empirical quantile (linear interpolation between order statistics, like numpy's default)
/// of the present values, `q` in [0, 1].
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// Median of an already sorted slice without NaN (the sliding-window fast path: O(1) instead
/// of a copy and a sort). `None` when empty.
pub fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    })
}

/// [`mad`] of an already sorted slice without NaN, in O(n) without allocating: the absolute
/// deviations grow outward from the median on both sides, so merging the two runs finds their
/// median directly.
pub fn mad_sorted(sorted: &[f64]) -> Option<f64> {
    let m = median_sorted(sorted)?;
    let n = sorted.len();
    let split = sorted.partition_point(|&x| x < m);
    let (mut left, mut right) = (split, split);
    // The k-th smallest deviation (0-based), merged from the left run (indices split-1 down to
    // 0) and the right run (split up to n-1).
    let mut next = || {
        let dl = (left > 0).then(|| m - sorted[left - 1]);
        let dr = (right < n).then(|| sorted[right] - m);
        match (dl, dr) {
            (Some(a), Some(b)) if a <= b => {
                left -= 1;
                a
            }
            (Some(a), None) => {
                left -= 1;
                a
            }
            (_, Some(b)) => {
                right += 1;
                b
            }
            (None, None) => 0.0,
        }
    };
    let mut prev = 0.0;
    for _ in 0..n / 2 {
        prev = next();
    }
    let here = next();
    let med = if n % 2 == 1 {
        here
    } else {
        (prev + here) / 2.0
    };
    Some(1.4826 * med)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_stats_by_hand() {
        let v = [1.0, 2.0, f64::NAN, 3.0, 4.0, 100.0];
        // Present: 1 2 3 4 100 → median 3; |dev| = 2 1 0 1 97 → median 1 → MAD 1.4826.
        assert_eq!(median(&v), Some(3.0));
        assert!((mad(&v).unwrap() - 1.4826).abs() < 1e-12);
        assert_eq!(median(&[1.0, 2.0]), Some(1.5));
        assert_eq!(median(&[f64::NAN]), None);
        // mean of 1..4 = 2.5, population variance = 1.25.
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(m, 2.5);
        assert!((s - 1.25f64.sqrt()).abs() < 1e-12);
        // Sorted 1 2 3 4 100: q=0.5 → 3; q=0.9 → pos 3.6 → 4 + 0.6 × 96 = 61.6.
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert!((quantile(&v, 0.9).unwrap() - 61.6).abs() < 1e-9);
        // The sorted fast paths agree with the general ones.
        let sorted = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median_sorted(&sorted), Some(3.0));
        assert!((mad_sorted(&sorted).unwrap() - 1.4826).abs() < 1e-12);
        // 1 2 4 8: median 3; |dev| 2 1 1 5 → sorted 1 1 2 5 → median 1.5 → × 1.4826.
        assert!((mad_sorted(&[1.0, 2.0, 4.0, 8.0]).unwrap() - 1.5 * 1.4826).abs() < 1e-12);
        assert_eq!(mad_sorted(&[7.0]), Some(0.0));
        assert_eq!(mad_sorted(&[]), None);
    }
}
