//! Anomaly likelihood: how unusual a member's *recent* statistic is compared with that member's
//! own long-run behaviour on this series (after Numenta's anomaly likelihood, Ahmad et al. 2017).
//!
//! A raw statistic means different things on different series: a robust z of 6 is routine on a
//! bursty tweet count and unheard of on a smooth CPU curve. So the statistic is first compressed
//! (`ln(1 + raw)`, making its heavy tail roughly Gaussian), averaged over the last `short` points,
//! and that average is compared with the mean and standard deviation of the compressed statistic
//! over the last `long` points: the upper Gaussian tail probability is the calibrated answer.
//! Running sums make it O(1) per point (they are recomputed exactly every `long` points so
//! rounding cannot drift).

use std::collections::VecDeque;

use super::normal_upper;

/// Calibrates one member's raw statistic into an upper-tail probability.
#[derive(Debug, Clone)]
pub struct Likelihood {
    short: usize,
    long: usize,
    min_history: usize,
    recent: VecDeque<f64>,
    recent_sum: f64,
    history: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    since_resum: usize,
    /// Floor on the long-run standard deviation of the compressed statistic, so a member that has
    /// said exactly the same thing for a long time does not call the first change impossible.
    min_sd: f64,
}

impl Likelihood {
    pub fn new(short: usize, long: usize, min_history: usize) -> Self {
        let long = long.max(2);
        Self {
            short: short.max(1),
            long,
            min_history: min_history.clamp(2, long),
            recent: VecDeque::new(),
            recent_sum: 0.0,
            history: VecDeque::new(),
            sum: 0.0,
            sum_sq: 0.0,
            since_resum: 0,
            min_sd: 0.05,
        }
    }

    /// Learns `raw` (≥ 0) and returns the upper-tail probability of the current short-term mean,
    /// or `None` while the long-run history is too short to judge.
    pub fn observe(&mut self, raw: f64) -> Option<f64> {
        let c = if raw.is_finite() { raw.max(0.0) } else { 1e300 }.ln_1p();
        self.recent.push_back(c);
        self.recent_sum += c;
        if self.recent.len() > self.short
            && let Some(old) = self.recent.pop_front()
        {
            self.recent_sum -= old;
        }
        let answer = (self.history.len() >= self.min_history).then(|| {
            let n = self.history.len() as f64;
            let mean = self.sum / n;
            let sd = (self.sum_sq / n - mean * mean)
                .max(0.0)
                .sqrt()
                .max(self.min_sd);
            let short_mean = self.recent_sum / self.recent.len() as f64;
            normal_upper((short_mean - mean) / sd)
        });
        self.history.push_back(c);
        self.sum += c;
        self.sum_sq += c * c;
        if self.history.len() > self.long
            && let Some(old) = self.history.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.since_resum += 1;
        if self.since_resum >= self.long {
            self.since_resum = 0;
            self.sum = self.history.iter().sum();
            self.sum_sq = self.history.iter().map(|x| x * x).sum();
            self.recent_sum = self.recent.iter().sum();
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_by_hand() {
        let mut l = Likelihood::new(1, 4, 4);
        // Raw e - 1 and e² - 1 compress to exactly 1 and 2 (ln(1 + raw)).
        let e = std::f64::consts::E;
        for raw in [e - 1.0, e * e - 1.0, e - 1.0, e * e - 1.0] {
            assert_eq!(l.observe(raw), None);
        }
        // History 1 2 1 2: mean 1.5, sd 0.5. Next raw e³ - 1 → 3: z = (3 - 1.5)/0.5 = 3,
        // P(Z ≥ 3) = 0.0013499.
        let p = l.observe(e.powi(3) - 1.0).unwrap();
        assert!((p - 0.0013499).abs() < 1e-6, "{p}");
    }

    #[test]
    fn a_noisy_member_is_not_alarming_but_a_change_in_it_is() {
        // A member that always says raw ∈ {0, 10} alternately: compressed 0 and ln 11 = 2.398,
        // long-run mean 1.199, sd 1.199. Its usual values give tails ≥ P(Z ≥ 1) ≈ 0.16 —
        // calm, though 10 would be an extreme z for another member.
        let mut l = Likelihood::new(1, 100, 50);
        let mut tails = Vec::new();
        for i in 0..200 {
            if let Some(p) = l.observe(if i % 2 == 0 { 0.0 } else { 10.0 }) {
                tails.push(p);
            }
        }
        assert!(tails.iter().all(|&p| p > 0.15));
        // raw 1e6 → ln(1e6 + 1) = 13.8: z ≈ (13.8 - 1.2)/1.2 ≈ 10.5 → p < 1e-20.
        assert!(l.observe(1e6).unwrap() < 1e-20);
    }
}
