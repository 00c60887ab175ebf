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
    }
}
