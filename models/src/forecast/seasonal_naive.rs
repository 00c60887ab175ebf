//! Seasonal naive: tomorrow at 10:00 looks like today at 10:00. The period is found
//! automatically; without one this is the plain naive forecast (the last value).

use super::interval::{self, ResidualVariance};
use super::period::PeriodFinder;
use super::{Forecast, Forecaster};
use std::collections::VecDeque;

pub const NAME: &str = "seasonal_naive";

#[derive(Debug, Clone)]
pub struct SeasonalNaive {
    /// `None` when the period is supplied from outside ([`super::auto::Auto`] shares one).
    finder: Option<PeriodFinder>,
    period: usize,
    /// The last `period` points, NaN kept so positions stay aligned with the season.
    recent: VecDeque<f64>,
    last_present: Option<f64>,
    residuals: ResidualVariance,
}

impl Default for SeasonalNaive {
    fn default() -> Self {
        Self::new()
    }
}

impl SeasonalNaive {
    pub fn new() -> Self {
        Self {
            finder: Some(PeriodFinder::new()),
            period: 1,
            recent: VecDeque::new(),
            last_present: None,
            residuals: ResidualVariance::default(),
        }
    }

    pub(crate) fn with_external_period() -> Self {
        Self {
            finder: None,
            ..Self::new()
        }
    }

    /// Switches to period `m`, taking the last season from `history` (oldest first, ending with
    /// the latest update).
    pub(crate) fn adopt_period(&mut self, m: usize, history: &[f64]) {
        if m < 2 || history.len() < m {
            return;
        }
        self.period = m;
        self.recent = history[history.len() - m..].iter().copied().collect();
    }

    pub fn period(&self) -> usize {
        self.period
    }

    fn mean(&self, h: usize) -> Option<f64> {
        let m = self.period;
        if m > 1 && self.recent.len() == m {
            // The point k = ⌈h/m⌉ seasons before the target sits m·k − h steps before the last.
            let back = m * h.div_ceil(m) - h;
            let v = self.recent[m - 1 - back];
            if !v.is_nan() {
                return Some(v);
            }
        }
        self.last_present
    }
}

impl Forecaster for SeasonalNaive {
    fn update(&mut self, value: f64) {
        let value = super::missing_unless_finite(value);
        if !value.is_nan()
            && let Some(f) = self.mean(1)
        {
            self.residuals.push(value - f);
        }
        if self.recent.len() == self.period {
            self.recent.pop_front();
        }
        self.recent.push_back(value);
        if !value.is_nan() {
            self.last_present = Some(value);
        }
        if let Some(finder) = &mut self.finder
            && let Some(m) = finder.push(value)
        {
            let history = finder.history().to_vec();
            self.adopt_period(m, &history);
        }
    }

    /// The error of a seasonal random walk k = ⌈h/m⌉ seasons ahead has variance k·σ².
    fn predict(&self, h: usize, coverage: f64) -> Option<Forecast> {
        let h = h.max(1);
        let mean = self.mean(h)?;
        let seasons = h.div_ceil(self.period) as f64;
        let sigma2 = self.residuals.get().unwrap_or(0.0);
        Some(interval::forecast(mean, seasons * sigma2, coverage))
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_on_an_exact_seasonal_series() {
        // Period 6 pattern; after the 64-point check the forecast h steps past t = 99 is the
        // value one (or more) seasons earlier, which equals the pattern at 99 + h.
        let pat = |t: usize| [3.0, 7.0, 1.0, 8.0, 2.0, 5.0][t % 6];
        let mut f = SeasonalNaive::new();
        for t in 0..100 {
            f.update(pat(t));
        }
        assert_eq!(f.period(), 6);
        for h in 1..=13 {
            assert_eq!(f.predict(h, 0.8).unwrap().mean, pat(99 + h), "h={h}");
        }
    }

    #[test]
    fn naive_without_a_season_and_intervals_widen() {
        let mut f = SeasonalNaive::new();
        assert!(f.predict(1, 0.8).is_none());
        // 1, 3, 2, NaN: one-step errors 3-1 = 2 and 2-3 = -1 → mean |e| 1.5, σ² = π/2 · 2.25.
        for v in [1.0, 3.0, 2.0, f64::NAN] {
            f.update(v);
        }
        let p1 = f.predict(1, 0.8).unwrap();
        let p4 = f.predict(4, 0.8).unwrap();
        assert_eq!(p1.mean, 2.0);
        let sigma = (std::f64::consts::FRAC_PI_2 * 2.25).sqrt();
        assert!((p1.upper - 2.0 - interval::z_for(0.8) * sigma).abs() < 1e-9);
        // Naive is a random walk: variance 4σ² at h = 4, so the width doubles.
        assert!(((p4.upper - p4.lower) / (p1.upper - p1.lower) - 2.0).abs() < 1e-9);
    }
}
