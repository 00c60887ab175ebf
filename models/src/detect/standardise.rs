//! A slow, outlier-resistant yardstick: puts a series on a unit scale so one setting fits every
//! series, whatever its units.
//!
//! The first `warmup` points set mean and variance exactly (Welford); afterwards both follow an
//! EWMA with rate α, learning from the z clipped to ±[`CLIP`] so an anomaly moves the yardstick
//! at most as much as a 4σ point would. The standard deviation is floored at 10⁻³ of the mean's
//! magnitude, so a series that has been perfectly constant does not call the first wobble
//! infinitely unlikely.

/// Learning clip in standard deviations: beyond 4σ a Normal point has p ≈ 6·10⁻⁵, so clipping
/// there leaves ordinary points untouched.
pub const CLIP: f64 = 4.0;

#[derive(Debug, Clone)]
pub struct Standardiser {
    alpha: f64,
    warmup: u32,
    seen: u32,
    mean: f64,
    var: f64,
}

impl Standardiser {
    pub fn new(alpha: f64, warmup: u32) -> Self {
        Self {
            alpha: alpha.clamp(1e-4, 1.0),
            warmup: warmup.max(2),
            seen: 0,
            mean: 0.0,
            var: 0.0,
        }
    }

    /// Forgets everything (a changepoint: the old yardstick no longer applies).
    pub fn reset(&mut self) {
        self.seen = 0;
        self.mean = 0.0;
        self.var = 0.0;
    }

    /// The z of `value` against the past, then learns it; `None` during warm-up.
    pub fn standardise(&mut self, value: f64) -> Option<f64> {
        self.seen = self.seen.saturating_add(1);
        let n = f64::from(self.seen);
        if self.seen <= self.warmup {
            let d = value - self.mean;
            self.mean += d / n;
            self.var += (d * (value - self.mean) - self.var) / n;
            return None;
        }
        let sd = self.var.sqrt().max(1e-3 * self.mean.abs()).max(1e-9);
        let z = (value - self.mean) / sd;
        let zc = z.clamp(-CLIP, CLIP);
        self.mean += self.alpha * zc * sd;
        self.var += self.alpha * (zc * zc * sd * sd - self.var);
        // Far beyond any plausible standardised value; keeps downstream sums finite.
        Some(z.clamp(-1e6, 1e6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_ewma_by_hand() {
        let mut s = Standardiser::new(0.5, 2);
        // Warm-up on 1, 3: mean 2, population variance 1.
        assert_eq!(s.standardise(1.0), None);
        assert_eq!(s.standardise(3.0), None);
        // 4: z = (4 − 2)/1 = 2; mean += 0.5·2·1 = 3; var += 0.5·(4 − 1) = 2.5.
        assert_eq!(s.standardise(4.0), Some(2.0));
        // 3: z = (3 − 3)/√2.5 = 0.
        assert_eq!(s.standardise(3.0), Some(0.0));
        s.reset();
        assert_eq!(s.standardise(100.0), None);
    }
}
