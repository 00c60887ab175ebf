//! Automatic period detection, shared by the seasonal detector and Holt-Winters so both agree on
//! what "a season" is for a given series.

/// The dominant period of `values` (in steps) between `min` and `max` inclusive, or `None` if the
/// series shows no convincing seasonality.
///
/// Method: the autocorrelation function of the (NaN-skipping) series; the candidate is the lag
/// with the highest ACF that is a local peak. It must reach `0.3` (weaker seasonality is better
/// modelled as noise) and the series must hold at least three periods, because one or two
/// repetitions cannot tell a season from a coincidence.
pub fn detect_period(values: &[f64], min: usize, max: usize) -> Option<usize> {
    const MIN_ACF: f64 = 0.3;
    let min = min.max(2);
    let n = values.len();
    let max = max.min(n / 3);
    if max < min {
        return None;
    }
    // One lag past `max` so that a peak at `max` is a real peak, not the edge of a still-rising
    // ACF (a period-24 wave seen through 64 points would otherwise "peak" at 21).
    let acf = autocorrelation(values, max + 2)?;
    let mut best: Option<(usize, f64)> = None;
    for lag in min..=max {
        let (prev, here, next) = (acf[lag - 1], acf[lag], acf[lag + 1]);
        let is_peak = here >= prev && here > next;
        if is_peak && here >= MIN_ACF && best.is_none_or(|(_, b)| here > b + 1e-9) {
            best = Some((lag, here));
        }
    }
    best.map(|(lag, _)| lag)
}

/// Sample autocorrelation for lags `0..max_lag` (exclusive), skipping pairs with a missing
/// value. `None` if the series is constant or has fewer than two present values.
pub fn autocorrelation(values: &[f64], max_lag: usize) -> Option<Vec<f64>> {
    let (mean, std) = crate::stats::mean_std(values)?;
    let var = std * std;
    if var <= f64::EPSILON * mean.abs().max(1.0) {
        return None;
    }
    // Each lag is normalised by its own number of complete pairs: dividing by the count of
    // present values instead would favour lags whose pairs line up with regular gaps.
    let n = values.len() as f64;
    let acf = (0..max_lag)
        .map(|lag| {
            let (sum, pairs) = values
                .iter()
                .zip(values.iter().skip(lag))
                .filter(|(a, b)| !a.is_nan() && !b.is_nan())
                .fold((0.0, 0usize), |(s, k), (a, b)| {
                    (s + (a - mean) * (b - mean), k + 1)
                });
            if pairs == 0 {
                return 0.0;
            }
            // The (n - lag) / n factor keeps the usual biased estimator's decay with the lag, so
            // a long lag backed by few pairs cannot outscore the true period by chance.
            (sum / pairs as f64) / var * ((n - lag as f64) / n)
        })
        .collect();
    Some(acf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_period_of_a_noisy_sine() {
        // Period 24 with a small deterministic wobble; 10 periods of data.
        let v: Vec<f64> = (0..240)
            .map(|i| {
                (i as f64 * std::f64::consts::TAU / 24.0).sin()
                    + 0.1 * ((i * 7 % 5) as f64 - 2.0) / 2.0
            })
            .collect();
        assert_eq!(detect_period(&v, 2, 100), Some(24));
    }

    #[test]
    fn no_period_in_a_trend_or_a_constant() {
        let trend: Vec<f64> = (0..200).map(|i| i as f64).collect();
        // A trend's ACF decays monotonically: no local peak above lag 2.
        assert_eq!(detect_period(&trend, 2, 60), None);
        assert_eq!(detect_period(&[5.0; 100], 2, 30), None);
        // Too short for three periods of 24.
        let short: Vec<f64> = (0..60)
            .map(|i| (i as f64 * std::f64::consts::TAU / 24.0).sin())
            .collect();
        assert_eq!(detect_period(&short, 20, 30), None);
    }

    #[test]
    fn regular_gaps_do_not_shift_the_period() {
        // Period 48 with every 7th point missing: dividing each lag by the present count
        // (instead of its pairs) found 49 here.
        let v: Vec<f64> = (0..480)
            .map(|i| {
                if i % 7 == 3 {
                    f64::NAN
                } else {
                    (i as f64 * std::f64::consts::TAU / 48.0).sin()
                }
            })
            .collect();
        assert_eq!(detect_period(&v, 2, 150), Some(48));
    }

    #[test]
    fn a_still_rising_acf_is_no_peak() {
        // 64 points of a period-24 sine, searched up to 21 = 64 / 3: the ACF is still rising
        // at lag 21 (it peaks at 24), so there is no period to report yet.
        let v: Vec<f64> = (0..64)
            .map(|i| (i as f64 * std::f64::consts::TAU / 24.0).sin())
            .collect();
        assert_eq!(detect_period(&v, 4, 21), None);
    }

    #[test]
    fn acf_at_lag_zero_is_one() {
        let acf = autocorrelation(&[1.0, 3.0, 2.0, f64::NAN, 5.0], 2).unwrap();
        assert!((acf[0] - 1.0).abs() < 1e-12);
    }
}
