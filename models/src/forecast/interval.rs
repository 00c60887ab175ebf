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

/// Mean squared one-step error, averaged over all errors so far until `MEMORY` of them, then
/// exponentially weighted with that memory so the interval follows changes in noise level.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResidualVariance {
    n: usize,
    mean_sq: f64,
}

impl ResidualVariance {
    const MEMORY: usize = 200;

    pub fn push(&mut self, error: f64) {
        if !error.is_finite() {
            return;
        }
        self.n += 1;
        let w = 1.0 / self.n.min(Self::MEMORY) as f64;
        self.mean_sq += w * (error * error - self.mean_sq);
    }

    /// The one-step variance, once there is at least one residual.
    pub fn get(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean_sq)
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
    fn residual_variance_is_the_mean_square_then_skips_nan() {
        let mut r = ResidualVariance::default();
        assert_eq!(r.get(), None);
        r.push(1.0);
        r.push(-3.0);
        r.push(f64::NAN);
        // (1 + 9) / 2 = 5.
        assert!((r.get().unwrap() - 5.0).abs() < 1e-12);
        let f = forecast(10.0, 4.0, 0.8);
        // half width = 1.28155 × 2.
        assert!((f.upper - 12.5631).abs() < 1e-3 && (f.lower - 7.4369).abs() < 1e-3);
    }
}
