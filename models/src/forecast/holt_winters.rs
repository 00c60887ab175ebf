//! Holt-Winters, additive trend and additive season, period found automatically.
//!
//! Until [`PeriodFinder`] finds a season the forecaster is plain [`Holt`]; once it does, a small
//! grid of (α, β, γ) states is initialised from the kept history (first two seasons: level,
//! trend and seasonal offsets), replayed through the rest of it, and from then on updated with
//! every point. Forecasts come from the state with the lowest recent one-step absolute error.

use super::holt::Holt;
use super::interval::{self, ResidualVariance};
use super::period::PeriodFinder;
use super::{Forecast, Forecaster};

pub const NAME: &str = "holt_winters";

const ALPHAS: [f64; 3] = [0.1, 0.3, 0.6];
const BETAS: [Option<f64>; 2] = [None, Some(0.02)];
const GAMMAS: [f64; 2] = [0.05, 0.3];

#[derive(Debug, Clone)]
struct State {
    alpha: f64,
    beta: Option<f64>,
    gamma: f64,
    level: f64,
    trend: f64,
    /// Seasonal offsets; `season[pos]` belongs to the next point.
    season: Vec<f64>,
    pos: usize,
    residuals: ResidualVariance,
}

impl State {
    fn update(&mut self, y: f64) {
        let m = self.season.len();
        let s = self.season[self.pos];
        let forecast = self.level + self.trend + s;
        if y.is_nan() {
            self.level += self.trend;
        } else {
            self.residuals.push(y - forecast);
            let level = self.alpha * (y - s) + (1.0 - self.alpha) * (self.level + self.trend);
            if let Some(beta) = self.beta {
                self.trend = beta * (level - self.level) + (1.0 - beta) * self.trend;
            }
            self.season[self.pos] = self.gamma * (y - level) + (1.0 - self.gamma) * s;
            self.level = level;
        }
        self.pos = (self.pos + 1) % m;
    }

    fn mean(&self, h: usize) -> f64 {
        let m = self.season.len();
        self.level + h as f64 * self.trend + self.season[(self.pos + h - 1) % m]
    }

    /// σ²(1 + Σ_{j=1}^{h-1} c_j²) with c_j = α(1 + βj) + γ(1 − α)·[j ≡ 0 mod m], the
    /// ETS(A,A,A) error weights (the γ term appears when step j reuses an updated offset).
    fn variance(&self, h: usize) -> Option<f64> {
        let sigma2 = self.residuals.get()?;
        let m = self.season.len();
        let beta = self.beta.unwrap_or(0.0);
        let growth: f64 = (1..h)
            .map(|j| {
                let seasonal = if j % m == 0 {
                    self.gamma * (1.0 - self.alpha)
                } else {
                    0.0
                };
                (self.alpha * (1.0 + beta * j as f64) + seasonal).powi(2)
            })
            .sum();
        Some(sigma2 * (1.0 + growth))
    }
}

#[derive(Debug, Clone)]
pub struct HoltWinters {
    /// `None` when the period is supplied from outside ([`super::auto::Auto`] shares one).
    finder: Option<PeriodFinder>,
    /// The forecaster until a season is found; `None` inside `auto`, which has its own Holt.
    holt: Option<Holt>,
    states: Vec<State>,
}

impl Default for HoltWinters {
    fn default() -> Self {
        Self::new()
    }
}

impl HoltWinters {
    pub fn new() -> Self {
        Self {
            finder: Some(PeriodFinder::new()),
            holt: Some(Holt::new()),
            states: Vec::new(),
        }
    }

    /// A Holt-Winters that waits for [`Self::adopt_period`] instead of looking itself, and
    /// forecasts nothing until then.
    pub(crate) fn with_external_period() -> Self {
        Self {
            finder: None,
            holt: None,
            states: Vec::new(),
        }
    }

    /// Starts seasonal modelling with period `m` from `history` (oldest first, ending with the
    /// latest update). Needs two full seasons; with fewer it stays Holt.
    pub(crate) fn adopt_period(&mut self, m: usize, history: &[f64]) {
        if m < 2 || history.len() < 2 * m {
            return;
        }
        let mean_of = |v: &[f64]| crate::stats::mean_std(v).map(|(mean, _)| mean);
        let (Some(first), Some(second)) = (mean_of(&history[..m]), mean_of(&history[m..2 * m]))
        else {
            return;
        };
        let trend = (second - first) / m as f64;
        let centre = (m - 1) as f64 / 2.0;
        // Offsets around the first season's line; a missing point gets no offset.
        let season: Vec<f64> = history[..m]
            .iter()
            .enumerate()
            .map(|(i, &y)| {
                let off = y - (first + trend * (i as f64 - centre));
                if off.is_nan() { 0.0 } else { off }
            })
            .collect();
        let level = first + trend * centre;
        self.holt = None;
        self.states = ALPHAS
            .iter()
            .flat_map(|&alpha| {
                BETAS
                    .iter()
                    .flat_map(move |&beta| GAMMAS.iter().map(move |&gamma| (alpha, beta, gamma)))
            })
            .map(|(alpha, beta, gamma)| State {
                alpha,
                beta,
                gamma,
                level,
                trend: if beta.is_some() { trend } else { 0.0 },
                season: season.clone(),
                pos: 0,
                residuals: ResidualVariance::default(),
            })
            .collect();
        for &y in &history[m..] {
            for s in &mut self.states {
                s.update(y);
            }
        }
    }

    fn best(&self) -> Option<&State> {
        self.states.iter().min_by(|a, b| {
            a.residuals
                .get()
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.residuals.get().unwrap_or(f64::INFINITY))
        })
    }

    /// The season length in use, once there is one.
    pub fn period(&self) -> Option<usize> {
        self.states.first().map(|s| s.season.len())
    }
}

impl Forecaster for HoltWinters {
    fn update(&mut self, value: f64) {
        let value = super::missing_unless_finite(value);
        if self.states.is_empty() {
            if let Some(holt) = &mut self.holt {
                holt.update(value);
            }
        } else {
            for s in &mut self.states {
                s.update(value);
            }
        }
        if let Some(finder) = &mut self.finder
            && let Some(m) = finder.push(value)
        {
            let history = finder.history().to_vec();
            self.adopt_period(m, &history);
        }
    }

    fn predict(&self, h: usize, coverage: f64) -> Option<Forecast> {
        let h = h.max(1);
        match self.best() {
            None => self.holt.as_ref()?.predict(h, coverage),
            Some(s) => Some(interval::forecast(
                s.mean(h),
                s.variance(h).unwrap_or(0.0),
                coverage,
            )),
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seasonal(t: usize) -> f64 {
        // Period 8: a level of 100, offsets summing to zero, plus a trend of 0.5 per step.
        const OFF: [f64; 8] = [0.0, 4.0, 9.0, 4.0, 0.0, -4.0, -9.0, -4.0];
        100.0 + 0.5 * t as f64 + OFF[t % 8]
    }

    #[test]
    fn exact_on_an_exact_seasonal_series() {
        // Period found at the 64-point check; seasons 1 and 2 give means 101.75 and 105.75, trend
        // 4 / 8 = 0.5, offsets exactly OFF, so every later one-step error is 0 for every state
        // with a trend; states without one err and lose the selection.
        let mut f = HoltWinters::new();
        for t in 0..120 {
            f.update(seasonal(t));
        }
        assert_eq!(f.period(), Some(8));
        for h in [1, 3, 8, 13] {
            let p = f.predict(h, 0.8).unwrap();
            assert!((p.mean - seasonal(119 + h)).abs() < 1e-9, "h={h}: {p:?}");
        }
    }

    #[test]
    fn an_exact_line_without_season_is_holt() {
        let mut f = HoltWinters::new();
        for t in 0..100 {
            f.update(7.0 - 0.25 * t as f64);
        }
        assert_eq!(f.period(), None);
        // y(99 + 4) = 7 - 0.25 × 103 = -18.75.
        assert!((f.predict(4, 0.8).unwrap().mean + 18.75).abs() < 1e-9);
    }

    #[test]
    fn intervals_widen_with_the_horizon() {
        let mut f = HoltWinters::new();
        for t in 0..400 {
            f.update(seasonal(t) + ((t * 37 % 11) as f64 - 5.0) / 5.0);
        }
        assert_eq!(f.period(), Some(8));
        let w = |h| {
            let p = f.predict(h, 0.8).unwrap();
            p.upper - p.lower
        };
        assert!(w(1) > 0.0 && w(1) < w(5) && w(5) < w(20));
    }
}
