//! Linear trend: an ordinary-least-squares line (linfa-linear) over a recent window,
//! extrapolated. The window is two hours of data (at least 8 and at most 240 points): long enough
//! to average out scrape noise, short enough to follow a trend that changes during the day.
//! Refitting costs an SVD, so the line is refreshed every `window / 8` points; between refits the
//! last line keeps extrapolating, which on a linear stretch is the same line.

use super::interval;
use super::{Forecast, Forecaster};
use linfa::Dataset;
use linfa::traits::Fit;
use linfa_linear::LinearRegression;
use ndarray::{Array1, Array2};
use std::collections::VecDeque;

pub const NAME: &str = "linear_trend";

/// A fitted line in absolute step indices: y(t) = intercept + slope · (t − base).
#[derive(Debug, Clone, Copy)]
struct Line {
    base: f64,
    intercept: f64,
    slope: f64,
    /// OLS residual variance SSR / (n − 2) (0 for n = 2), and what the prediction-interval
    /// formula needs about the design: n, mean x and Sxx.
    sigma2: f64,
    n: f64,
    mean_x: f64,
    sxx: f64,
}

#[derive(Debug, Clone)]
pub struct LinearTrend {
    window: usize,
    refit_every: usize,
    recent: VecDeque<f64>,
    /// Index of the latest point (number of updates − 1).
    t: usize,
    updates: usize,
    line: Option<Line>,
}

impl LinearTrend {
    pub fn new(step_seconds: i64) -> Self {
        let window = (7200 / step_seconds.max(1)).clamp(8, 240) as usize;
        Self {
            window,
            refit_every: (window / 8).max(1),
            recent: VecDeque::with_capacity(window),
            t: 0,
            updates: 0,
            line: None,
        }
    }

    fn refit(&mut self) {
        let first = self.t + 1 - self.recent.len();
        let (xs, ys): (Vec<f64>, Vec<f64>) = self
            .recent
            .iter()
            .enumerate()
            .filter(|(_, y)| !y.is_nan())
            .map(|(i, &y)| (i as f64, y))
            .unzip();
        if xs.len() < 2 {
            return;
        }
        let n = xs.len();
        let Ok(records) = Array2::from_shape_vec((n, 1), xs.clone()) else {
            return;
        };
        let dataset = Dataset::new(records, Array1::from(ys.clone()));
        let Ok(fit) = LinearRegression::new().fit(&dataset) else {
            return;
        };
        let (intercept, slope) = (fit.intercept(), fit.params()[0]);
        if !intercept.is_finite() || !slope.is_finite() {
            return;
        }
        let ssr: f64 = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| (y - intercept - slope * x).powi(2))
            .sum();
        let mean_x = xs.iter().sum::<f64>() / n as f64;
        self.line = Some(Line {
            base: first as f64,
            intercept,
            slope,
            sigma2: if n > 2 { ssr / (n - 2) as f64 } else { 0.0 },
            n: n as f64,
            mean_x,
            sxx: xs.iter().map(|x| (x - mean_x).powi(2)).sum(),
        });
    }
}

impl Forecaster for LinearTrend {
    fn update(&mut self, value: f64) {
        if self.updates > 0 {
            self.t += 1;
        }
        self.updates += 1;
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(value);
        if self.line.is_none() || self.updates.is_multiple_of(self.refit_every) {
            self.refit();
        }
    }

    /// Interval: the OLS prediction variance σ²(1 + 1/n + (x₀ − x̄)²/Sxx) at the target x₀.
    fn predict(&self, h: usize, coverage: f64) -> Option<Forecast> {
        let line = self.line?;
        let x0 = (self.t + h.max(1)) as f64 - line.base;
        let mean = line.intercept + line.slope * x0;
        let leverage = if line.sxx > 0.0 {
            (x0 - line.mean_x).powi(2) / line.sxx
        } else {
            0.0
        };
        let variance = line.sigma2 * (1.0 + 1.0 / line.n + leverage);
        Some(interval::forecast(mean, variance, coverage))
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicts_an_exact_line_exactly() {
        // y = 10 − 1.5t with one gap; any window of it fits the same line, so at t = 49:
        // y(49 + h) = 10 − 1.5 (49 + h).
        let mut f = LinearTrend::new(60);
        for t in 0..50 {
            f.update(if t == 45 {
                f64::NAN
            } else {
                10.0 - 1.5 * t as f64
            });
        }
        for h in [1, 7, 30] {
            let p = f.predict(h, 0.8).unwrap();
            let want = 10.0 - 1.5 * (49 + h) as f64;
            assert!((p.mean - want).abs() < 1e-6, "h={h}: {p:?}");
        }
    }

    #[test]
    fn intervals_widen_with_the_horizon() {
        let mut f = LinearTrend::new(300);
        for t in 0..100 {
            f.update(t as f64 + ((t * 37 % 11) as f64 - 5.0) / 5.0);
        }
        let w = |h| {
            let p = f.predict(h, 0.8).unwrap();
            p.upper - p.lower
        };
        assert!(w(1) > 0.0 && w(1) < w(6) && w(6) < w(24));
    }

    #[test]
    fn needs_two_points() {
        let mut f = LinearTrend::new(60);
        f.update(1.0);
        f.update(f64::NAN);
        assert!(f.predict(1, 0.8).is_none());
        f.update(3.0);
        // Points (0, 1) and (2, 3): slope 1, so y(2 + 2) = 5.
        assert!((f.predict(2, 0.8).unwrap().mean - 5.0).abs() < 1e-9);
    }
}
