//! Rolling-origin backtest of a [`Forecaster`], the measure behind `homeostat evaluate forecast`.
//!
//! The forecaster is fed the series one point at a time. At every origin `t` (0-based index of
//! the last point it has seen) from `warmup − 1` on, it is asked for `predict(h, coverage)`; the
//! answer is scored against `values[t + h]` once that exists. The forecaster never sees a point
//! after its origin when it forecasts, so future data cannot leak into the score.
//!
//! **MASE** (mean absolute scaled error). At origin `t` the scale is the in-sample mean absolute
//! one-step naive error of the training part `values[0..=t]`:
//! `q_t = mean{ |y_i − y_{i−1}| : 1 ≤ i ≤ t, both present }`. The scaled error is
//! `|y_{t+h} − ŷ_{t+h|t}| / q_t`, and the series' MASE is the mean of the scaled errors over the
//! scored origins. Origins whose target is missing (NaN), whose scale is 0 or undefined (a flat
//! training part), or where the forecaster answered `None`, are not scored; they are counted.
//! A MASE of 1 means "as good, h steps ahead, as the naive method is one step ahead in-sample".
//!
//! **Coverage**: the share of scored forecasts whose interval `[lower, upper]` contains the
//! target, counting only forecasts that have an interval (finite bounds).

use crate::forecast::Forecaster;

/// What one backtest measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Backtest {
    /// Forecasts scored.
    pub scored: usize,
    /// Sum of the scaled absolute errors over the scored forecasts.
    pub scaled_error_sum: f64,
    /// Scored forecasts that had an interval, and how many of those contained the target.
    pub with_interval: usize,
    pub covered: usize,
    /// Origins not scored: target missing, zero scale, or no forecast.
    pub missing_target: usize,
    pub zero_scale: usize,
    pub no_forecast: usize,
}

impl Backtest {
    /// The series' MASE, if anything was scored.
    pub fn mase(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.scaled_error_sum / self.scored as f64)
    }

    /// Share of interval forecasts that covered the target, if any had an interval.
    pub fn coverage(&self) -> Option<f64> {
        (self.with_interval > 0).then(|| self.covered as f64 / self.with_interval as f64)
    }
}

/// One scored origin, for inspection and for the no-peeking property.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub origin: usize,
    pub forecast: f64,
    pub actual: f64,
    pub scaled_error: f64,
    /// The forecast's interval `(lower, upper)` at the asked coverage, when it has finite
    /// bounds (the ones counted for coverage).
    pub interval: Option<(f64, f64)>,
}

/// Runs the backtest of `forecaster` (fresh) over `values` at horizon `h` (≥ 1) steps. The first
/// origin is `warmup − 1` (warm-up of at least one point). See the module docs for the measures.
pub fn run(
    forecaster: &mut dyn Forecaster,
    values: &[f64],
    h: usize,
    warmup: usize,
    coverage: f64,
) -> Backtest {
    run_detailed(forecaster, values, h, warmup, coverage, |_| {})
}

/// [`run`], also handing every scored origin to `on_scored` in origin order.
pub fn run_detailed(
    forecaster: &mut dyn Forecaster,
    values: &[f64],
    h: usize,
    warmup: usize,
    coverage: f64,
    mut on_scored: impl FnMut(Scored),
) -> Backtest {
    let h = h.max(1);
    let warmup = warmup.max(1);
    let mut out = Backtest {
        scored: 0,
        scaled_error_sum: 0.0,
        with_interval: 0,
        covered: 0,
        missing_target: 0,
        zero_scale: 0,
        no_forecast: 0,
    };
    let (mut naive_sum, mut naive_count) = (0.0, 0usize);
    for (t, &y) in values.iter().enumerate() {
        forecaster.update(y);
        if t > 0 && !y.is_nan() && !values[t - 1].is_nan() {
            naive_sum += (y - values[t - 1]).abs();
            naive_count += 1;
        }
        if t + 1 < warmup || t + h >= values.len() {
            continue;
        }
        let actual = values[t + h];
        if actual.is_nan() {
            out.missing_target += 1;
            continue;
        }
        let scale = naive_sum / naive_count.max(1) as f64;
        if naive_count == 0 || scale <= 0.0 || !scale.is_finite() {
            out.zero_scale += 1;
            continue;
        }
        let Some(f) = forecaster
            .predict(h, coverage)
            .filter(|f| f.mean.is_finite())
        else {
            out.no_forecast += 1;
            continue;
        };
        let scaled_error = (actual - f.mean).abs() / scale;
        out.scored += 1;
        out.scaled_error_sum += scaled_error;
        if f.lower.is_finite() && f.upper.is_finite() {
            out.with_interval += 1;
            if f.lower <= actual && actual <= f.upper {
                out.covered += 1;
            }
        }
        on_scored(Scored {
            origin: t,
            forecast: f.mean,
            actual,
            scaled_error,
            interval: (f.lower.is_finite() && f.upper.is_finite()).then_some((f.lower, f.upper)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::{self, Forecast};

    /// Forecasts the last value seen, with a ±1 interval.
    struct Last(f64);
    impl Forecaster for Last {
        fn update(&mut self, v: f64) {
            if !v.is_nan() {
                self.0 = v;
            }
        }
        fn predict(&self, _h: usize, coverage: f64) -> Option<Forecast> {
            Some(Forecast {
                mean: self.0,
                lower: self.0 - 1.0,
                upper: self.0 + 1.0,
                coverage,
            })
        }
        fn name(&self) -> &'static str {
            "last"
        }
    }

    #[test]
    fn mase_and_coverage_by_hand() {
        // values 1 3 2 5 4, h = 1, warm-up 2 → origins t = 1, 2, 3.
        // t=1: scale = |3−1| = 2; forecast 3, actual 2 → 1/2 = 0.5; |err| 1 ≤ 1 → covered.
        // t=2: scale = (2 + 1)/2 = 1.5; forecast 2, actual 5 → 3/1.5 = 2; not covered.
        // t=3: scale = (2 + 1 + 3)/3 = 2; forecast 5, actual 4 → 1/2 = 0.5; covered.
        // MASE = (0.5 + 2 + 0.5) / 3 = 1; coverage 2/3.
        let b = run(&mut Last(f64::NAN), &[1.0, 3.0, 2.0, 5.0, 4.0], 1, 2, 0.8);
        assert_eq!(b.scored, 3);
        assert!((b.mase().unwrap() - 1.0).abs() < 1e-12);
        assert!((b.coverage().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn missing_targets_and_flat_training_are_skipped() {
        // h = 2, warm-up 1: origins 0..=3 with targets at 2..=5.
        // t=0: no one-step pair yet → zero scale. t=1: pair (1,1) → scale 0 → zero scale.
        // t=2: target values[4] is NaN → missing. t=3: pairs |1−1|, |1−1|, |5−1| → scale 4/3;
        // forecast 5 (the last value), actual 9 → 4 / (4/3) = 3.
        let v = [1.0, 1.0, 1.0, 5.0, f64::NAN, 9.0];
        let b = run(&mut Last(f64::NAN), &v, 2, 1, 0.8);
        assert_eq!((b.zero_scale, b.missing_target, b.scored), (2, 1, 1));
        assert!((b.mase().unwrap() - 3.0).abs() < 1e-12);
    }

    #[test]
    fn no_peeking_future_points_change_nothing() {
        // Scores of origins whose target lies within the first 300 points must not depend on
        // whether points after them exist (or what they are).
        let series: Vec<f64> = (0..400)
            .map(|t| 20.0 + 5.0 * (t as f64 / 7.0).sin() + (t % 13) as f64 * 0.3)
            .collect();
        let short_series = series[..300].to_vec();
        let mut altered = series.clone();
        for v in &mut altered[300..] {
            *v *= -3.0;
        }
        for &name in forecast::NAMES {
            let collect = |values: &[f64]| {
                let mut f = forecast::by_name(name, 300).unwrap();
                let mut out = Vec::new();
                run_detailed(f.as_mut(), values, 12, 24, 0.8, |s| out.push(s));
                out.retain(|s| s.origin + 12 < 300);
                out
            };
            let short = collect(&short_series);
            assert!(!short.is_empty());
            assert_eq!(short, collect(&series), "{name}");
            assert_eq!(short, collect(&altered), "{name}");
        }
    }
}
