//! Conformal calibration of a nonconformity statistic against the series' own past, in O(1)
//! memory and time per point.
//!
//! A raw statistic (a |z|, a CUSUM) means different things on different series; what is
//! comparable across series is its rank among the same statistic's past values there. The
//! conformal p-value of a new value s among past values s₁..sₙ is (1 + #{sᵢ ≥ s}) / (n + 1):
//! under exchangeability P(p ≤ α) ≤ α exactly, whatever the distribution (Vovk, Gammerman &
//! Shafer 2005, *Algorithmic Learning in a Random World*, ch. 2). Real telemetry drifts, so past
//! values are weighted by age, w = (1 − 1/N)^age — weighted conformal prediction, whose coverage
//! gap is bounded by the weight on the data that drifted (Barber, Candès, Ramdas & Tibshirani
//! 2023, "Conformal prediction beyond exchangeability").
//!
//! * **Storage**: the weights live in a histogram over c = ln(1 + s) with [`BINS`] bins of
//!   [`WIDTH`], so memory is fixed (a few hundred bytes) and a p-value costs one pass over the
//!   bins. The decay is applied by growing the weight of new points and rescaling rarely.
//!   Counting the whole bin of s as "≥ s" makes the empirical p conservative by at most one bin.
//! * **Beyond the data**: a conformal p cannot go below ≈ 1/N, which cannot tell a big incident
//!   from a barely rare point. Above the weighted 90th percentile the tail is exponential in c
//!   with the mean excess as scale (peaks over threshold, as in SPOT, Siffer et al. 2017, KDD),
//!   i.e. a Pareto tail in s: heavy tails get a heavy tail instead of a flood of tiny p.

/// Histogram bins over c = ln(1 + s).
pub const BINS: usize = 48;
/// Bin width in c: ln(1 + s) up to 7.2 (s ≈ 1300) is resolved; beyond, the last bin holds it
/// (the exponential tail still sees the exact value).
pub const WIDTH: f64 = 0.15;
/// Quantile above which the exponential tail takes over (SPOT's initial threshold is a high
/// empirical quantile; 0.9 is the existing [`super::likelihood`] choice and SPOT's example).
const TAIL_FROM: f64 = 0.9;
/// Rescale when new points weigh this much more than the oldest would: keeps f64 sums exact
/// enough (1e12 ≪ 2^53) and rescaling rare.
const RESCALE_AT: f64 = 1e12;

/// Weighted conformal p-values of a non-negative statistic.
#[derive(Debug, Clone)]
pub struct Calibrator {
    weights: [f64; BINS],
    total: f64,
    /// Weight given to the next learned value (grows by 1/(1 − 1/N) per point).
    increment: f64,
    growth: f64,
    learned: u32,
    min_history: u32,
}

impl Calibrator {
    /// Effective memory `memory` points (weights (1 − 1/memory)^age); no answer before
    /// `min_history` values were learned.
    pub fn new(memory: f64, min_history: u32) -> Self {
        let memory = memory.max(2.0);
        Self {
            weights: [0.0; BINS],
            total: 0.0,
            increment: 1.0,
            growth: 1.0 / (1.0 - 1.0 / memory),
            learned: 0,
            min_history: min_history.max(1),
        }
    }

    fn compress(s: f64) -> f64 {
        if s.is_nan() {
            0.0
        } else {
            s.clamp(0.0, 1e300).ln_1p()
        }
    }

    fn bin(c: f64) -> usize {
        ((c / WIDTH) as usize).min(BINS - 1)
    }

    /// The p-value of `s` against the values learned so far (`None` before `min_history`).
    pub fn p_value(&self, s: f64) -> Option<f64> {
        if self.learned < self.min_history || self.total <= 0.0 {
            return None;
        }
        let c = Self::compress(s);
        let b = Self::bin(c);
        // Bin u holds the weighted 90th percentile: the lowest bin whose weight from the top
        // is still ≥ 10 % of the total.
        let mut above = 0.0;
        let mut u = BINS - 1;
        let mut at_or_above_b = 0.0;
        for j in (0..BINS).rev() {
            if above < (1.0 - TAIL_FROM) * self.total {
                u = j;
            }
            above += self.weights[j];
            if j == b {
                at_or_above_b = above;
            }
        }
        let empirical = (at_or_above_b + self.increment) / (self.total + self.increment);
        let u_c = u as f64 * WIDTH;
        if c <= u_c + WIDTH {
            return Some(empirical.min(1.0));
        }
        // Exponential tail over the bins from u up: ζ · e^{−(c − u_c)/ē}.
        let (mut zeta, mut excess) = (0.0, 0.0);
        for (j, &w) in self.weights.iter().enumerate().skip(u) {
            zeta += w;
            excess += w * ((j as f64 + 0.5) * WIDTH - u_c);
        }
        let mean_excess = (excess / zeta.max(f64::MIN_POSITIVE)).max(WIDTH / 2.0);
        let tail = (zeta / self.total) * (-(c - u_c) / mean_excess).exp();
        Some(tail.min(empirical).clamp(0.0, 1.0))
    }

    /// Adds `s` to the past.
    pub fn learn(&mut self, s: f64) {
        let b = Self::bin(Self::compress(s));
        self.weights[b] += self.increment;
        self.total += self.increment;
        self.learned = self.learned.saturating_add(1);
        self.increment *= self.growth;
        if self.increment > RESCALE_AT {
            let k = 1.0 / self.increment;
            for w in &mut self.weights {
                *w *= k;
            }
            self.total *= k;
            self.increment = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformal_p_by_hand() {
        // No decay (memory huge): 9 past values s = 0 (c = 0, bin 0) and 1 value s = e² − 1
        // (c = 2, bin 13). New s = e² − 1: weight ≥ its bin = 1, conformal p = (1 + 1)/(10 + 1).
        let mut c = Calibrator::new(1e15, 10);
        let e2 = std::f64::consts::E.powi(2) - 1.0;
        for _ in 0..9 {
            c.learn(0.0);
        }
        assert_eq!(c.p_value(0.0), None, "9 < min_history");
        c.learn(e2);
        let p = c.p_value(e2).unwrap();
        assert!((p - 2.0 / 11.0).abs() < 1e-9, "{p}");
        // s = 0 is in the lowest bin: everything is ≥ it: (10 + 1)/(10 + 1) = 1.
        assert!((c.p_value(0.0).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn exponential_tail_by_hand() {
        // 10 values: 9 at c = 0 and 1 at c = 2 (bin 13). From the top, bin 13 alone holds 10 %
        // (1 of 10) → u = 13... the 90th percentile rule takes the lowest bin with weight above
        // it still < 10 %: above(13) = 0 < 1 → u = 13; above(12) = 1, not < 1 → stays 13.
        // u_c = 13 · 0.15 = 1.95; ζ = 1/10; mean excess = (13.5·0.15 − 1.95) = 0.075 → floored
        // to WIDTH/2 = 0.075. New c = 3 (s = e³ − 1): tail = 0.1 · e^{−(3 − 1.95)/0.075}
        // = 0.1 · e^{−14} = 8.3e-8; empirical (0 + 1)/(10 + 1) is larger, so the tail wins.
        let mut c = Calibrator::new(1e15, 1);
        for _ in 0..9 {
            c.learn(0.0);
        }
        c.learn(std::f64::consts::E.powi(2) - 1.0);
        let p = c.p_value(std::f64::consts::E.powi(3) - 1.0).unwrap();
        let want = 0.1 * (-(3.0 - 1.95) / 0.075f64).exp();
        assert!(
            (p - want).abs() < 1e-12 * want.max(1e-30) + 1e-15,
            "{p} vs {want}"
        );
    }

    #[test]
    fn old_values_fade() {
        // Memory 10: a value learned 100 points ago weighs (0.9)^100 ≈ 2.7e-5 of a new one, so
        // after 100 calm points a once-common large value is rare again.
        let mut c = Calibrator::new(10.0, 1);
        for _ in 0..100 {
            c.learn(100.0);
        }
        for _ in 0..100 {
            c.learn(0.0);
        }
        assert!(c.p_value(100.0).unwrap() < 1e-3);
    }

    #[test]
    fn uniform_past_gives_uniform_p() {
        // Values spread one per bin (c = (j + 0.5)·WIDTH for j < 40), no decay: the conformal p
        // of the value in bin j is (40 − j + 1)/(40 + 1) below the tail.
        let mut c = Calibrator::new(1e15, 1);
        for j in 0..40 {
            c.learn(((j as f64 + 0.5) * WIDTH).exp_m1());
        }
        for j in [0usize, 10, 20, 30] {
            let p = c.p_value(((j as f64 + 0.5) * WIDTH).exp_m1()).unwrap();
            assert!(
                (p - (40 - j + 1) as f64 / 41.0).abs() < 1e-9,
                "bin {j}: {p}"
            );
        }
    }
}
