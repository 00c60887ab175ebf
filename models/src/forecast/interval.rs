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

/// One-step error variance from a Huber-clipped mean absolute error (robust exponential
/// smoothing's scale, Gelper, Fried & Croux 2010, *J. Forecasting* 29(3)).
///
/// Why clipped: a mean absolute error is already kinder than a mean square to the rare huge
/// error (metric errors are heavy-tailed; a mean-square σ made 80 % intervals cover ~90 %), but
/// a level shift still puts a handful of errors of the shift's size into the memory, and those
/// dominate the scale for the whole memory: after a 150 → 750 → 150 req/s surge the 80 % upper
/// bound sat ~9× its pre-surge width above the level for `MEMORY` steps, and the autoscaling
/// planner scaled ahead for a surge that had ended. So each error counts at most `K` current
/// standard deviations (Huber's ψ with k = 2, the cleaning constant of Gelper et al.), and the
/// clipped mean is turned into σ with the factor that makes it exact for normal errors:
/// E[min(|Z|, k)] = 2(φ(0) − φ(k)) + 2k(1 − Φ(k)) = 0.780903 for k = 2.
///
/// A lasting rise in the noise still comes through: errors beyond the clip count at the clip,
/// which moves with the scale, so the scale grows by up to a factor 1 + (k/0.7809 − 1)/`MEMORY`
/// per step (10× in ~300 steps, against ~70 unclipped) — the price of ignoring a shift's
/// transient. A scale of exactly 0 (a constant series so far) has no σ to clip at: the first
/// error counts in full, at its weight among the zeros before it (as an unclipped mean would).
///
/// The plain mean absolute error is kept beside it for choosing between models
/// ([`Self::mean_abs_error`]): a model that lags a level shift must pay for every step of the lag
/// in full, or the slowest model would look best (clipped, a lag costs at most 2σ a step).
///
/// The means are over all errors until `MEMORY` of them, then exponentially weighted with that
/// memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResidualVariance {
    n: usize,
    /// Mean of min(|error|, K·σ), σ from the estimate before the error.
    mean_clipped: f64,
    mean_abs: f64,
}

const MEMORY: usize = 200;
/// Huber's clipping constant, in standard deviations (Gelper, Fried & Croux 2010).
const K: f64 = 2.0;
/// E[min(|Z|, K)] for a standard normal Z: 2(φ(0) − φ(2)) + 4(1 − Φ(2))
/// = 2(0.398942 − 0.053991) + 4 · 0.022750 = 0.780903.
const CLIPPED_MEAN_ABS: f64 = 0.780_903;

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
        let a = error.abs();
        let clip = if self.mean_clipped > 0.0 {
            K / CLIPPED_MEAN_ABS * self.mean_clipped
        } else {
            f64::INFINITY
        };
        self.mean_abs += w * (a - self.mean_abs);
        self.mean_clipped += w * (a.min(clip) - self.mean_clipped);
    }

    /// The one-step variance, once there is at least one residual.
    pub fn get(&self) -> Option<f64> {
        let sigma = self.mean_clipped / CLIPPED_MEAN_ABS;
        (self.n > 0).then_some(sigma * sigma)
    }

    /// The recent mean absolute one-step error, unclipped: what models are chosen by.
    pub fn mean_abs_error(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean_abs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::Continuous;

    #[test]
    fn z_matches_normal_tables() {
        // Φ⁻¹(0.9) = 1.28155, Φ⁻¹(0.975) = 1.95996.
        assert!((z_for(0.8) - 1.28155).abs() < 1e-4);
        assert!((z_for(0.95) - 1.95996).abs() < 1e-4);
    }

    #[test]
    fn the_clipping_constant_is_the_clipped_normal_mean() {
        // E[min(|Z|, k)] = 2(φ(0) − φ(k)) + 2k(1 − Φ(k)), from the normal tables via statrs.
        let n = Normal::new(0.0, 1.0).unwrap();
        let (pdf0, pdfk) = (n.pdf(0.0), n.pdf(K));
        let exact = 2.0 * (pdf0 - pdfk) + 2.0 * K * (1.0 - n.cdf(K));
        assert!((exact - CLIPPED_MEAN_ABS).abs() < 1e-6, "{exact}");
    }

    #[test]
    fn one_huge_error_counts_at_the_clip_and_nan_is_skipped() {
        let mut r = ResidualVariance::default();
        assert_eq!(r.get(), None);
        for e in [1.0, -1.0, f64::NAN, 1.0, -1.0] {
            r.push(e);
        }
        // Four errors of size 1: clipped mean 1, σ = 1/0.780903 = 1.280569.
        assert!((r.get().unwrap().sqrt() - 1.280569).abs() < 1e-6);
        // 100 counts as K·σ = 2 × 1.280569 = 2.561138: mean (4 + 2.561138)/5 = 1.312228,
        // σ = 1.312228/0.780903 = 1.680400 (unclipped it would be 20.8/0.7979 = 26.1).
        r.push(100.0);
        assert!((r.get().unwrap().sqrt() - 1.680400).abs() < 1e-5);
        // Models are still chosen on the plain mean: (4 + 100)/5 = 20.8.
        assert_eq!(r.mean_abs_error(), Some(20.8));
    }

    #[test]
    fn after_a_scale_of_zero_the_first_error_counts_in_full() {
        let mut r = ResidualVariance::default();
        for _ in 0..99 {
            r.push(0.0);
        }
        assert_eq!(r.get(), Some(0.0));
        // Clipped at 0·σ the 30 would be lost for ever; it counts in full at weight 1/100:
        // mean 0.3, σ = 0.3/0.780903 = 0.384170. The next 30 is clipped at 2σ = 0.768340:
        // mean (30 + 0.768340)/101 = 0.304637, σ = 0.390109.
        r.push(30.0);
        assert!((r.get().unwrap().sqrt() - 0.384170).abs() < 1e-6);
        r.push(30.0);
        assert!((r.get().unwrap().sqrt() - 0.390109).abs() < 1e-6);
    }

    #[test]
    fn sigma_is_unbiased_for_normal_errors() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut r = ResidualVariance::default();
        let (mut sum, mut count) = (0.0, 0.0);
        for i in 0..40_000 {
            // Box–Muller: σ = 2.
            let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
            let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            r.push(2.0 * z);
            if i >= 1000 {
                sum += r.get().unwrap().sqrt();
                count += 1.0;
            }
        }
        // The clipped mean's fixed point is σ·0.780903 (the constant above), so the average σ
        // estimate is 2 within sampling error (about 0.6 % for 39,000 overlapping estimates).
        let mean = sum / count;
        assert!((mean - 2.0).abs() < 0.04, "{mean}");
    }
}
