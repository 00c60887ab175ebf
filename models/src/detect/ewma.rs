//! EWMA control chart (Roberts 1959): a fast exponentially weighted average of standardised
//! deviations, compared with its own stationary spread.
//!
//! Each point is standardised against a slow EWMA mean and variance (the "in control" process),
//! and the chart statistic `S ← λ·z + (1-λ)·S` accumulates evidence; for independent unit noise
//! S has stationary standard deviation √(λ / (2-λ)). A single spike moves S by only λ·z, but a
//! small sustained shift that a point-wise z-score never flags builds up in S: this detector is
//! the shift specialist. The slow variance learns from z clipped at ±`clip`, so an anomaly does
//! not widen the yardstick it is measured with.

use super::{Detector, Member, Reading, gate, normal_two_sided};

/// EWMA control chart detector.
#[derive(Debug, Clone)]
pub struct Ewma {
    lambda: f64,
    alpha: f64,
    clip: f64,
    warmup: usize,
    seen: usize,
    mean: f64,
    var: f64,
    chart: f64,
}

impl Default for Ewma {
    /// λ = 0.25 (a classic chart weight), slow mean/variance α = 0.01 (≈ 100-point memory),
    /// clip at 4σ, 30 points of warm-up.
    fn default() -> Self {
        Self::new(0.25, 0.01, 4.0, 30)
    }
}

impl Ewma {
    pub fn new(lambda: f64, alpha: f64, clip: f64, warmup: usize) -> Self {
        Self {
            lambda: lambda.clamp(1e-3, 1.0),
            alpha: alpha.clamp(1e-4, 1.0),
            clip: clip.max(1.0),
            warmup: warmup.max(2),
            seen: 0,
            mean: 0.0,
            var: 0.0,
            chart: 0.0,
        }
    }

    fn sd(&self) -> f64 {
        self.var.sqrt().max(1e-3 * self.mean.abs()).max(1e-9)
    }
}

impl Member for Ewma {
    fn observe(&mut self, value: f64) -> Reading {
        self.seen += 1;
        if self.seen == 1 {
            self.mean = value;
            return Reading::Quiet;
        }
        if self.seen <= self.warmup {
            // Plain running mean/variance while the EWMA has too little to go on.
            let n = self.seen as f64;
            let d = value - self.mean;
            self.mean += d / n;
            self.var += (d * (value - self.mean) - self.var) / n;
            return Reading::Quiet;
        }
        let sd = self.sd();
        let z = (value - self.mean) / sd;
        self.chart = self.lambda * z + (1.0 - self.lambda) * self.chart;
        let stat = self.chart.abs() / (self.lambda / (2.0 - self.lambda)).sqrt();
        let zc = z.clamp(-self.clip, self.clip);
        self.mean += self.alpha * zc * sd;
        self.var += self.alpha * (zc * zc * sd * sd - self.var);
        Reading::Stat {
            raw: stat,
            p: normal_two_sided(stat),
        }
    }
}

impl Detector for Ewma {
    fn update(&mut self, value: f64) -> f64 {
        gate(value, self)
    }

    fn name(&self) -> &'static str {
        "ewma"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit;

    #[test]
    fn chart_by_hand() {
        let mut d = Ewma::new(0.5, 0.1, 4.0, 3);
        // Warm-up on 9, 11, 10: mean 10, population variance (1 + 1 + 0)/3 = 2/3.
        for v in [9.0, 11.0, 10.0] {
            assert_eq!(d.observe(v), Reading::Quiet);
        }
        assert!((d.mean - 10.0).abs() < 1e-12 && (d.var - 2.0 / 3.0).abs() < 1e-12);
        // 12: z = 2 / √(2/3) = 2.4495; S = 0.5 × 2.4495 = 1.2247;
        // stat = 1.2247 / √(0.5/1.5) = 1.2247 / 0.57735 = 2.1213.
        match d.observe(12.0) {
            Reading::Stat { raw, .. } => assert!((raw - 2.1213).abs() < 1e-3, "{raw}"),
            Reading::Quiet => panic!("warm-up is over"),
        }
    }

    #[test]
    fn spike_level_shift() {
        testkit::flags_level_shift_onset(&mut Ewma::default());
        // A +30 spike is ≈ 50 sd: even λ × 50 / √(λ/(2-λ)) = 0.25 × 50 / 0.378 ≈ 33 chart-sd.
        testkit::scores_spike_high(&mut Ewma::default());
    }
}
