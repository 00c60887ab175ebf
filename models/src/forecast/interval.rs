//! Prediction intervals shared by our forecasters: a running estimate of the one-step residual
//! variance, and the normal quantile that turns a variance into a central interval.

use super::Forecast;
use statrs::distribution::{ContinuousCDF, Normal};

/// The two-sided standard-normal quantile for a central interval of `coverage`: 1.2816 for
/// 0.8, 1.96 for 0.95. Coverage outside (0, 1) is clamped just inside it.
pub fn z_for(coverage: f64) -> f64 {
    let c = if coverage.is_nan() { 0.8 } else { coverage };
    let c = c.clamp(1e-6, 1.0 - 1e-9);
    // Normal::new(0, 1) cannot fail; the fallback only keeps us panic-free.
    Normal::new(0.0, 1.0)
        .map(|n| n.inverse_cdf(0.5 + c / 2.0))
        .unwrap_or(1.2816)
}

/// A forecast whose h-step error variance is `variance`, centred on `mean`.
pub fn forecast(mean: f64, variance: f64, coverage: f64) -> Forecast {
    let half = z_for(coverage) * variance.max(0.0).sqrt();
    Forecast {
        mean,
        lower: mean - half,
        upper: mean + half,
        coverage,
    }
}

/// One-step error variance, estimated robustly as (√(π/2) · mean |error|)² — exact for normal
/// errors, and not blown up by the rare huge error of a level shift the way a mean square is
/// (metric errors are heavy-tailed; a mean-square σ made 80 % intervals cover ~90 %). The mean
/// is over all errors until `MEMORY` of them, then exponentially weighted with that memory so
/// the interval follows changes in noise level.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResidualVariance {
    n: usize,
    mean_abs: f64,
}

const MEMORY: usize = 200;

/// 1/n for n ≤ MEMORY: every grid state pushes an error every step, and a table lookup is
/// much cheaper than a division there.
const INVERSE: [f64; MEMORY + 1] = {
    let mut t = [0.0; MEMORY + 1];
    let mut n = 1;
    while n <= MEMORY {
        t[n] = 1.0 / n as f64;
        n += 1;
    }
    t
};

impl ResidualVariance {
    pub fn push(&mut self, error: f64) {
        if !error.is_finite() {
            return;
        }
        self.n += 1;
        let w = INVERSE[self.n.min(MEMORY)];
        self.mean_abs += w * (error.abs() - self.mean_abs);
    }

    /// The one-step variance, once there is at least one residual.
    pub fn get(&self) -> Option<f64> {
        (self.n > 0).then_some(std::f64::consts::FRAC_PI_2 * self.mean_abs * self.mean_abs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_matches_normal_tables() {
        // Φ⁻¹(0.9) = 1.28155, Φ⁻¹(0.975) = 1.95996.
        assert!((z_for(0.8) - 1.28155).abs() < 1e-4);
        assert!((z_for(0.95) - 1.95996).abs() < 1e-4);
    }

    #[test]
    fn residual_variance_from_the_mean_absolute_error_skips_nan() {
        let mut r = ResidualVariance::default();
        assert_eq!(r.get(), None);
        r.push(1.0);
        r.push(-3.0);
        r.push(f64::NAN);
        // mean |e| = (1 + 3) / 2 = 2 → σ² = π/2 · 4 = 6.2832.
        assert!((r.get().unwrap() - 2.0 * std::f64::consts::PI).abs() < 1e-12);
        let f = forecast(10.0, 4.0, 0.8);
        // half width = 1.28155 × 2.
        assert!((f.upper - 12.5631).abs() < 1e-3 && (f.lower - 7.4369).abs() < 1e-3);
    }
}
