//! Holt's linear method (additive trend), with its smoothing parameters chosen by the model.
//!
//! A small grid of (α, β) runs side by side, each state fed every point; the forecast comes from
//! the state with the lowest recent one-step mean absolute error ([`ResidualVariance`]), so the
//! choice follows the series without any per-series tuning. The grid includes β = none (simple
//! exponential smoothing) because on noisy metrics a trend extrapolated an hour ahead often does
//! more harm than good.

use super::interval::{self, ResidualVariance};
use super::{Forecast, Forecaster};

pub const NAME: &str = "holt";

const ALPHAS: [f64; 4] = [0.05, 0.2, 0.5, 0.9];
/// `None` = no trend (simple exponential smoothing).
const BETAS: [Option<f64>; 3] = [None, Some(0.02), Some(0.2)];

#[derive(Debug, Clone, Copy)]
struct State {
    alpha: f64,
    beta: Option<f64>,
    level: f64,
    trend: f64,
    residuals: ResidualVariance,
}

impl State {
    fn update(&mut self, y: f64) {
        let forecast = self.level + self.trend;
        if y.is_nan() {
            self.level = forecast;
            return;
        }
        self.residuals.push(y - forecast);
        let level = self.alpha * y + (1.0 - self.alpha) * forecast;
        if let Some(beta) = self.beta {
            self.trend = beta * (level - self.level) + (1.0 - beta) * self.trend;
        }
        self.level = level;
    }

    /// Error variance h steps ahead: σ²(1 + Σ_{j=1}^{h-1} c_j²) with c_j = α(1 + βj), the
    /// weight of today's error in the level j steps on (Hyndman et al., ETS(A,A,N)).
    fn variance(&self, h: usize) -> Option<f64> {
        let sigma2 = self.residuals.get()?;
        let beta = self.beta.unwrap_or(0.0);
        let growth: f64 = (1..h)
            .map(|j| (self.alpha * (1.0 + beta * j as f64)).powi(2))
            .sum();
        Some(sigma2 * (1.0 + growth))
    }
}

/// Start-up: the first present value fixes the level, the second the trend; afterwards every
/// grid state runs on its own.
#[derive(Debug, Clone)]
enum Phase {
    Empty,
    /// First present value and the steps since it.
    One {
        value: f64,
        gap: usize,
    },
    Running(Vec<State>),
}

#[derive(Debug, Clone)]
pub struct Holt {
    phase: Phase,
}

impl Default for Holt {
    fn default() -> Self {
        Self::new()
    }
}

impl Holt {
    pub fn new() -> Self {
        Self {
            phase: Phase::Empty,
        }
    }

    fn best(&self) -> Option<&State> {
        let Phase::Running(states) = &self.phase else {
            return None;
        };
        // Before any residual, the first state (slowest α with no trend) is as good a guess as any.
        states.iter().min_by(|a, b| {
            let (ea, eb) = (a.residuals.get(), b.residuals.get());
            ea.unwrap_or(f64::INFINITY)
                .total_cmp(&eb.unwrap_or(f64::INFINITY))
        })
    }
}

impl Forecaster for Holt {
    fn update(&mut self, value: f64) {
        let value = super::missing_unless_finite(value);
        if let Phase::Running(states) = &mut self.phase {
            for s in states {
                s.update(value);
            }
            return;
        }
        self.phase = match std::mem::replace(&mut self.phase, Phase::Empty) {
            Phase::Empty if value.is_nan() => Phase::Empty,
            Phase::Empty => Phase::One { value, gap: 0 },
            Phase::One { value: first, gap } if value.is_nan() => Phase::One {
                value: first,
                gap: gap + 1,
            },
            Phase::One { value: first, gap } => {
                let slope = (value - first) / (gap + 1) as f64;
                let states = ALPHAS
                    .iter()
                    .flat_map(|&alpha| {
                        BETAS.iter().map(move |&beta| State {
                            alpha,
                            beta,
                            level: value,
                            trend: if beta.is_some() { slope } else { 0.0 },
                            residuals: ResidualVariance::default(),
                        })
                    })
                    .collect();
                Phase::Running(states)
            }
            running @ Phase::Running(_) => running,
        };
    }

    fn predict(&self, h: usize, coverage: f64) -> Option<Forecast> {
        let h = h.max(1);
        match &self.phase {
            Phase::Empty => None,
            // One point: a flat forecast with no idea of the error yet.
            Phase::One { value, .. } => Some(interval::forecast(*value, 0.0, coverage)),
            Phase::Running(_) => {
                let s = self.best()?;
                let mean = s.level + h as f64 * s.trend;
                Some(interval::forecast(
                    mean,
                    s.variance(h).unwrap_or(0.0),
                    coverage,
                ))
            }
        }
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
        // y = 3 + 2t with a gap: the trend is initialised from (7 - 3) / 2 = 2 and every one-step
        // error is 0, so any (α, β) state forecasts y(9 + h) = 21 + 2h.
        let mut f = Holt::new();
        for t in 0..10 {
            f.update(if t == 1 {
                f64::NAN
            } else {
                3.0 + 2.0 * t as f64
            });
        }
        for h in [1, 5, 20] {
            let p = f.predict(h, 0.8).unwrap();
            assert!(
                (p.mean - (21.0 + 2.0 * h as f64)).abs() < 1e-9,
                "h={h}: {p:?}"
            );
            assert!((p.upper - p.lower).abs() < 1e-9);
        }
    }

    #[test]
    fn intervals_widen_with_the_horizon() {
        let mut f = Holt::new();
        for t in 0..300 {
            // Deterministic noise of amplitude 1 around a level of 50.
            f.update(50.0 + ((t * 37 % 11) as f64 - 5.0) / 5.0);
        }
        let widths: Vec<f64> = [1, 4, 16]
            .iter()
            .map(|&h| {
                let p = f.predict(h, 0.8).unwrap();
                p.upper - p.lower
            })
            .collect();
        assert!(widths[0] > 0.0 && widths[0] < widths[1] && widths[1] < widths[2]);
        assert!(f.predict(4, 0.95).unwrap().upper > f.predict(4, 0.8).unwrap().upper);
    }

    #[test]
    fn nothing_before_data_and_nan_does_not_poison() {
        let mut f = Holt::new();
        assert!(f.predict(1, 0.8).is_none());
        f.update(f64::NAN);
        assert!(f.predict(1, 0.8).is_none());
        for v in [1.0, f64::NAN, 1.0, 1.0, f64::NAN, 1.0] {
            f.update(v);
        }
        assert!((f.predict(3, 0.8).unwrap().mean - 1.0).abs() < 1e-12);
    }
}
