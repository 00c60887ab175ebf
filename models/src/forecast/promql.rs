//! Faithful re-implementations of what a Prometheus user would write instead of homeostat:
//!
//! * `predict_linear(v[R], h)` — ordinary least squares over the samples in the range, with
//!   time measured in seconds from the evaluation time, so the intercept is the fitted value *at
//!   the evaluation time* and the result is `intercept + slope · h`. All-equal values give slope
//!   0 (PromQL special-cases them to avoid rounding noise); fewer than two samples give nothing.
//! * `double_exponential_smoothing(v[R], sf, tf)` (called `holt_winters` before Prometheus 3) —
//!   Holt's smoothing run over the samples in the range, seeded with level = first sample and
//!   trend = second − first. It returns the smoothed value at the *last sample*: PromQL does not
//!   project the trend forward, so the same number answers every horizon.
//!
//! The setting is the one a user would pick for a one-hour-ahead question: range R = 1 h (but at
//! least 12 samples, so coarse series still get a fit), `sf = 0.3`, `tf = 0.1`. The evaluation
//! time is the origin's timestamp, i.e. the last sample; the range is PromQL's left-open
//! `(t − R, t]`. PromQL has no prediction intervals, so `lower`/`upper` are NaN.

use super::{Forecast, Forecaster};
use std::collections::VecDeque;

pub const PREDICT_LINEAR: &str = "predict_linear";
pub const DOUBLE_EXPONENTIAL_SMOOTHING: &str = "double_exponential_smoothing";

/// Range in seconds.
const RANGE_SECONDS: i64 = 3600;
const MIN_SAMPLES: i64 = 12;
pub const SMOOTHING_FACTOR: f64 = 0.3;
pub const TREND_FACTOR: f64 = 0.1;

/// The samples of a range vector `v[R]` evaluated at the latest step: the last
/// ⌈R / step⌉ grid points (those with t − R < time ≤ t), missing ones kept as NaN.
#[derive(Debug, Clone)]
struct RangeWindow {
    step: i64,
    len: usize,
    values: VecDeque<f64>,
}

impl RangeWindow {
    fn new(step: i64) -> Self {
        let step = step.max(1);
        let range = RANGE_SECONDS.max(MIN_SAMPLES * step);
        let len = (range + step - 1) / step;
        Self {
            step,
            len: len as usize,
            values: VecDeque::with_capacity(len as usize),
        }
    }

    fn push(&mut self, v: f64) {
        if self.values.len() == self.len {
            self.values.pop_front();
        }
        self.values.push_back(v);
    }

    /// (seconds relative to the evaluation time, value) of the present samples, oldest first.
    fn samples(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let last = self.values.len() as i64 - 1;
        self.values
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan())
            .map(move |(i, &v)| (((i as i64 - last) * self.step) as f64, v))
    }
}

fn no_interval(mean: f64, coverage: f64) -> Forecast {
    Forecast {
        mean,
        lower: f64::NAN,
        upper: f64::NAN,
        coverage,
    }
}

/// PromQL's `linearRegression(samples, interceptTime)`: (slope, intercept) with x in seconds
/// from the intercept time. `None` with fewer than two samples.
pub fn linear_regression(samples: &[(f64, f64)]) -> Option<(f64, f64)> {
    let (&(_, first), rest) = samples.split_first()?;
    if rest.is_empty() {
        return None;
    }
    if rest.iter().all(|&(_, y)| y == first) {
        return Some((0.0, first));
    }
    let n = samples.len() as f64;
    let (mut sx, mut sy, mut sxy, mut sxx) = (0.0, 0.0, 0.0, 0.0);
    for &(x, y) in samples {
        sx += x;
        sy += y;
        sxy += x * y;
        sxx += x * x;
    }
    let cov_xy = sxy - sx * sy / n;
    let var_x = sxx - sx * sx / n;
    let slope = cov_xy / var_x;
    Some((slope, sy / n - slope * sx / n))
}

/// PromQL's double exponential smoothing of `values` (oldest first): the smoothed value at the
/// last one. `None` with fewer than two values.
pub fn double_exponential_smoothing(values: &[f64], sf: f64, tf: f64) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, values[0]);
    let mut trend = values[1] - values[0];
    for (i, &v) in values.iter().enumerate().skip(1) {
        // The seed trend is used as is for the first step, then smoothed.
        if i > 1 {
            trend = tf * (s1 - s0) + (1.0 - tf) * trend;
        }
        let next = sf * v + (1.0 - sf) * (s1 + trend);
        s0 = s1;
        s1 = next;
    }
    Some(s1)
}

/// `predict_linear(v[1h], h · step)` evaluated at each origin.
#[derive(Debug, Clone)]
pub struct PredictLinear {
    window: RangeWindow,
}

impl PredictLinear {
    pub fn new(step_seconds: i64) -> Self {
        Self {
            window: RangeWindow::new(step_seconds),
        }
    }
}

impl Forecaster for PredictLinear {
    fn update(&mut self, value: f64) {
        self.window.push(value);
    }

    fn predict(&self, h: usize, coverage: f64) -> Option<Forecast> {
        let samples: Vec<(f64, f64)> = self.window.samples().collect();
        let (slope, intercept) = linear_regression(&samples)?;
        let duration = (h.max(1) as i64 * self.window.step) as f64;
        Some(no_interval(intercept + slope * duration, coverage))
    }

    fn name(&self) -> &'static str {
        PREDICT_LINEAR
    }
}

/// `double_exponential_smoothing(v[1h], 0.3, 0.1)` evaluated at each origin.
#[derive(Debug, Clone)]
pub struct DoubleExponentialSmoothing {
    window: RangeWindow,
}

impl DoubleExponentialSmoothing {
    pub fn new(step_seconds: i64) -> Self {
        Self {
            window: RangeWindow::new(step_seconds),
        }
    }
}

impl Forecaster for DoubleExponentialSmoothing {
    fn update(&mut self, value: f64) {
        self.window.push(value);
    }

    fn predict(&self, _h: usize, coverage: f64) -> Option<Forecast> {
        let values: Vec<f64> = self.window.samples().map(|(_, v)| v).collect();
        let smoothed = double_exponential_smoothing(&values, SMOOTHING_FACTOR, TREND_FACTOR)?;
        Some(no_interval(smoothed, coverage))
    }

    fn name(&self) -> &'static str {
        DOUBLE_EXPONENTIAL_SMOOTHING
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_regression_by_hand() {
        // Points (−20, 1), (−10, 2), (0, 4): Σxy = −20 − 20 + 0 = −40, Σx = −30, Σy = 7
        // → cov = −40 − (−30·7)/3 = 30; Σx² = 500 → var = 500 − 900/3 = 200; slope = 0.15;
        // intercept = ȳ − slope·x̄ = 7/3 + 0.15·10 = 23/6.
        let (slope, intercept) =
            linear_regression(&[(-20.0, 1.0), (-10.0, 2.0), (0.0, 4.0)]).unwrap();
        assert!((slope - 0.15).abs() < 1e-12);
        assert!((intercept - 23.0 / 6.0).abs() < 1e-12);
        assert_eq!(linear_regression(&[(0.0, 5.0)]), None);
        assert_eq!(
            linear_regression(&[(-1.0, 5.0), (0.0, 5.0)]),
            Some((0.0, 5.0))
        );
    }

    #[test]
    fn predict_linear_is_anchored_at_the_evaluation_time() {
        // Step 10 s, so the range keeps ⌈max(3600, 120) / 10⌉ = 360 samples; we give three:
        // 1, 2, 4 at −20 s, −10 s, 0 s. predict_linear(v, 30 s) = 3.8333 + 0.15 · 30 = 8.3333
        // (h = 3 steps of 10 s).
        let mut f = PredictLinear::new(10);
        for v in [1.0, 2.0, 4.0] {
            f.update(v);
        }
        let p = f.predict(3, 0.8).unwrap();
        assert!((p.mean - (23.0 / 6.0 + 4.5)).abs() < 1e-12);
        assert!(p.lower.is_nan() && p.upper.is_nan());
    }

    #[test]
    fn predict_linear_sees_only_the_range() {
        // Step 600 s: R = max(3600, 12 · 600) = 7200 s → 12 samples. A jump 13 points back is
        // outside the range, so 12 equal samples give slope 0 and the level itself.
        let mut f = PredictLinear::new(600);
        f.update(1000.0);
        for _ in 0..12 {
            f.update(7.0);
        }
        assert_eq!(f.predict(5, 0.8).unwrap().mean, 7.0);
    }

    #[test]
    fn double_exponential_smoothing_by_hand() {
        // sf = tf = 0.5 on 1, 2, 4: s1 = 1, b = 1.
        // i = 1: b stays 1; s = 0.5·2 + 0.5·(1 + 1) = 2.
        // i = 2: b = 0.5·(2 − 1) + 0.5·1 = 1; s = 0.5·4 + 0.5·(2 + 1) = 3.5.
        assert_eq!(
            double_exponential_smoothing(&[1.0, 2.0, 4.0], 0.5, 0.5),
            Some(3.5)
        );
        assert_eq!(double_exponential_smoothing(&[1.0], 0.5, 0.5), None);
        // The smoothed value at the last sample, whatever the horizon, skipping missing samples:
        // sf = 0.3, tf = 0.1 on 10, 12: s = 0.3·12 + 0.7·(10 + 2) = 12.
        let mut f = DoubleExponentialSmoothing::new(300);
        for v in [10.0, f64::NAN, 12.0] {
            f.update(v);
        }
        assert!((f.predict(1, 0.8).unwrap().mean - 12.0).abs() < 1e-12);
        assert!((f.predict(12, 0.8).unwrap().mean - 12.0).abs() < 1e-12);
    }
}
