//! Automatic model choice by rolling-origin backtest.
//!
//! All candidates (Holt-Winters, Holt, linear trend, seasonal naive) see every point. Every `k`
//! steps each candidate's forecast `H` steps ahead is recorded; when the target step arrives the
//! forecast's absolute error, scaled by the in-sample mean absolute one-step naive error so far
//! (the MASE scale), is added to the candidate's score — an average over its last ~50 scored
//! origins, so the choice can change when the series does. Forecasts are only ever scored
//! against points that arrived after they were made: nothing peeks. Every `k` steps `auto`
//! delegates to the candidate with the lowest score.
//!
//! `H` is one hour of steps (at least 1): the horizon the controller plans over and the one the
//! evaluation reports. `k = max(1, H/4)` keeps the bookkeeping to a few forecasts per hour.

use super::holt::Holt;
use super::holt_winters::HoltWinters;
use super::linear_trend::LinearTrend;
use super::period::PeriodFinder;
use super::seasonal_naive::SeasonalNaive;
use super::{Forecast, Forecaster};
use std::collections::VecDeque;

pub const NAME: &str = "auto";

const CANDIDATES: usize = 4;
/// Scored origins a candidate needs before it can be chosen.
const MIN_SCORED: usize = 3;
/// Memory of the score average, in scored origins.
const MEMORY: usize = 50;
/// Used until scores exist: the safest general-purpose choice.
const DEFAULT: usize = 1;

#[derive(Debug, Clone, Copy, Default)]
struct Score {
    n: usize,
    mean: f64,
}

impl Score {
    fn push(&mut self, scaled_error: f64) {
        self.n += 1;
        let w = 1.0 / self.n.min(MEMORY) as f64;
        self.mean += w * (scaled_error - self.mean);
    }
}

#[derive(Debug, Clone)]
pub struct Auto {
    finder: PeriodFinder,
    holt_winters: HoltWinters,
    holt: Holt,
    linear: LinearTrend,
    seasonal_naive: SeasonalNaive,
    horizon: usize,
    every: usize,
    /// Index of the latest point; `None` before the first.
    t: Option<usize>,
    /// (target index, each candidate's forecast for it), oldest first.
    pending: VecDeque<(usize, [Option<f64>; CANDIDATES])>,
    scores: [Score; CANDIDATES],
    previous: f64,
    naive_abs_sum: f64,
    naive_count: usize,
    best: usize,
}

impl Auto {
    pub fn new(step_seconds: i64) -> Self {
        let horizon = ((3600 + step_seconds.max(1) / 2) / step_seconds.max(1)).max(1) as usize;
        Self {
            finder: PeriodFinder::new(),
            holt_winters: HoltWinters::with_external_period(),
            holt: Holt::new(),
            linear: LinearTrend::new(step_seconds),
            seasonal_naive: SeasonalNaive::with_external_period(),
            horizon,
            every: (horizon / 4).max(1),
            t: None,
            pending: VecDeque::new(),
            scores: [Score::default(); CANDIDATES],
            previous: f64::NAN,
            naive_abs_sum: 0.0,
            naive_count: 0,
            best: DEFAULT,
        }
    }

    fn candidates(&self) -> [&dyn Forecaster; CANDIDATES] {
        [
            &self.holt_winters,
            &self.holt,
            &self.linear,
            &self.seasonal_naive,
        ]
    }

    /// The name of the candidate `auto` currently delegates to.
    pub fn chosen(&self) -> &'static str {
        self.candidates()[self.best].name()
    }

    fn choose(&mut self) {
        let best = (0..CANDIDATES)
            .filter(|&i| self.scores[i].n >= MIN_SCORED)
            .min_by(|&a, &b| self.scores[a].mean.total_cmp(&self.scores[b].mean));
        if let Some(best) = best {
            self.best = best;
        }
    }
}

impl Forecaster for Auto {
    fn update(&mut self, value: f64) {
        self.holt_winters.update(value);
        self.holt.update(value);
        self.linear.update(value);
        self.seasonal_naive.update(value);
        if let Some(m) = self.finder.push(value) {
            let history = self.finder.history();
            self.holt_winters.adopt_period(m, history);
            self.seasonal_naive.adopt_period(m, history);
        }
        if !value.is_nan() && !self.previous.is_nan() {
            self.naive_abs_sum += (value - self.previous).abs();
            self.naive_count += 1;
        }
        self.previous = value;
        let t = self.t.map_or(0, |t| t + 1);
        self.t = Some(t);

        let scale = self.naive_abs_sum / self.naive_count.max(1) as f64;
        while let Some(&(due, forecasts)) = self.pending.front() {
            if due > t {
                break;
            }
            self.pending.pop_front();
            if due < t || value.is_nan() || scale <= 0.0 {
                continue;
            }
            for (score, f) in self.scores.iter_mut().zip(forecasts) {
                if let Some(f) = f {
                    score.push((value - f).abs() / scale);
                }
            }
        }
        if t.is_multiple_of(self.every) {
            let h = self.horizon;
            let forecasts = self.candidates().map(|c| c.predict(h, 0.5).map(|f| f.mean));
            self.pending.push_back((t + h, forecasts));
            self.choose();
        }
    }

    fn predict(&self, h: usize, coverage: f64) -> Option<Forecast> {
        let candidates = self.candidates();
        candidates[self.best]
            .predict(h, coverage)
            .or_else(|| candidates.iter().find_map(|c| c.predict(h, coverage)))
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Aperiodic deterministic noise in [−1, 1) (splitmix64 of t).
    pub(crate) fn noise(t: usize) -> f64 {
        let mut z = (t as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    #[test]
    fn exact_on_an_exact_line() {
        // Every candidate but seasonal naive is exact on y = 4 + 0.5t; whichever is chosen,
        // the forecast at t = 299 for h = 12 is 4 + 0.5 · 311 = 159.5.
        let mut f = Auto::new(300);
        for t in 0..300 {
            f.update(4.0 + 0.5 * t as f64);
        }
        assert_ne!(f.chosen(), "seasonal_naive");
        assert!((f.predict(12, 0.8).unwrap().mean - 159.5).abs() < 1e-6);
    }

    #[test]
    fn picks_a_seasonal_model_on_a_seasonal_series() {
        // Period 24 at 5-minute steps (H = 12): seasonal naive and Holt-Winters are exact,
        // Holt and the line lag the wave, so the choice lands on a seasonal model and the
        // 12-step forecast is exact.
        let wave = |t: usize| 50.0 + 20.0 * (t as f64 * std::f64::consts::TAU / 24.0).sin();
        let mut f = Auto::new(300);
        for t in 0..600 {
            f.update(wave(t));
        }
        assert!(
            matches!(f.chosen(), "seasonal_naive" | "holt_winters"),
            "{}",
            f.chosen()
        );
        let p = f.predict(12, 0.8).unwrap();
        assert!(
            (p.mean - wave(611)).abs() < 1e-6,
            "{} {p:?} {}",
            f.chosen(),
            wave(611)
        );
    }

    #[test]
    fn intervals_widen_with_the_horizon() {
        let mut f = Auto::new(300);
        for t in 0..500 {
            f.update(10.0 + noise(t));
        }
        let w = |h| {
            let p = f.predict(h, 0.8).unwrap();
            p.upper - p.lower
        };
        assert!(w(1) > 0.0 && w(1) < w(12), "{} {}", w(1), w(12));
    }
}
