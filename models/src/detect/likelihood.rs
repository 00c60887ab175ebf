//! Anomaly likelihood: how unusual a member's *recent* statistic is compared with that member's
//! own long-run behaviour on this series (after Numenta's anomaly likelihood, Ahmad et al. 2017).
//!
//! A raw statistic means different things on different series: a robust z of 6 is routine on a
//! bursty tweet count and unheard of on a smooth CPU curve. So the statistic is averaged over the
//! last `short` points and that average is compared with its own distribution over the last
//! `long` points, and the upper tail probability is the calibrated answer. Two tail models
//! ([`Tail`]): Numenta's Gaussian (on `ln(1 + raw)`, which makes a heavy tail roughly Gaussian;
//! O(1) per point with running sums, recomputed exactly every `long` points so rounding cannot
//! drift), and peaks over threshold (on the raw statistic, against the long window kept sorted
//! in blocks by [`SortedWindow`]: a point moves one block of at most 64 values and walks the
//! block lengths, about O(√long)), which scored clearly better on NAB because it learns how
//! heavy each member's tail is on each series.

use std::collections::VecDeque;

use super::normal_upper;
use super::sorted_window::SortedWindow;

/// Where the exponential tail takes over from the empirical distribution.
const POT_QUANTILE: f64 = 0.9;

/// How the upper tail of the long-run distribution is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Normal with the long window's mean and standard deviation (Numenta's choice).
    Gaussian,
    /// Empirical below the long window's 90th percentile, exponential beyond it with the mean
    /// excess as scale (peaks over threshold, as in SPOT, Siffer et al. 2017): heavy-tailed members
    /// on bursty series get a heavy tail instead of a flood of tiny p.
    Exponential,
}

/// Calibrates one member's raw statistic into an upper-tail probability.
#[derive(Debug, Clone)]
pub struct Likelihood {
    tail: Tail,
    /// The long window kept sorted (only for [`Tail::Exponential`]).
    sorted: SortedWindow,
    short: usize,
    long: usize,
    min_history: usize,
    recent: VecDeque<f64>,
    recent_sum: f64,
    history: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    since_resum: usize,
    /// Floor on the long-run standard deviation of the compressed statistic (Gaussian tail only),
    /// so a member that has said exactly the same thing for a long time does not call the first
    /// change impossible.
    min_sd: f64,
}

impl Likelihood {
    pub fn new(short: usize, long: usize, min_history: usize) -> Self {
        Self::with_tail(Tail::Gaussian, short, long, min_history)
    }

    pub fn with_tail(tail: Tail, short: usize, long: usize, min_history: usize) -> Self {
        let long = long.max(2);
        Self {
            tail,
            sorted: SortedWindow::default(),
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
        let raw = if raw.is_finite() { raw.max(0.0) } else { 1e300 };
        let c = match self.tail {
            Tail::Gaussian => raw.ln_1p(),
            Tail::Exponential => raw.min(1e100),
        };
        self.recent.push_back(c);
        self.recent_sum += c;
        if self.recent.len() > self.short
            && let Some(old) = self.recent.pop_front()
        {
            self.recent_sum -= old;
        }
        let short_mean = self.recent_sum / self.recent.len() as f64;
        let answer = (self.history.len() >= self.min_history).then(|| match self.tail {
            Tail::Gaussian => {
                let n = self.history.len() as f64;
                let mean = self.sum / n;
                let sd = (self.sum_sq / n - mean * mean)
                    .max(0.0)
                    .sqrt()
                    .max(self.min_sd);
                normal_upper((short_mean - mean) / sd)
            }
            Tail::Exponential => self.pot_tail(short_mean),
        });
        // The value this point pushes out of the long window, if it is full. The sums add the
        // new value before they drop the old one, the order they always had.
        let leaving = if self.history.len() >= self.long {
            self.history.pop_front()
        } else {
            None
        };
        self.history.push_back(short_mean);
        self.sum += short_mean;
        self.sum_sq += short_mean * short_mean;
        if self.tail == Tail::Exponential {
            self.sorted.insert(short_mean);
        }
        if let Some(old) = leaving {
            self.sum -= old;
            self.sum_sq -= old * old;
            if self.tail == Tail::Exponential {
                self.sorted.remove(old);
            }
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

    /// Peaks-over-threshold tail of `x` against the sorted long window.
    fn pot_tail(&self, x: f64) -> f64 {
        let n = self.sorted.len();
        let at = (POT_QUANTILE * n as f64) as usize;
        let Some(u) = self.sorted.get(at.min(n.saturating_sub(1))) else {
            return 1.0;
        };
        if x <= u {
            // Empirical: the fraction of the window at or above x.
            let ge = n - self.sorted.count_below(x);
            return (ge as f64 / n as f64).clamp(0.0, 1.0);
        }
        let above = n - at.min(n);
        let excess = self.sorted.from(at).map(|v| v - u).sum::<f64>() / above.max(1) as f64;
        if excess <= 0.0 {
            // Every value above the threshold equals it (a quantised or constant statistic):
            // no tail to extrapolate, so x, larger than all n, gets the smallest p the window
            // can vouch for, the conformal bound 1/(n + 1).
            return 1.0 / (n as f64 + 1.0);
        }
        // No absolute floor on the scale: the statistic is in the series' own units (the
        // novelty's distance), and a floor in absolute units made a series recorded as a
        // fraction (availability, an error ratio) look calmer than the same series in percent.
        let zeta = above as f64 / n as f64;
        zeta * (-(x - u) / excess).exp()
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
    fn peaks_over_threshold_by_hand() {
        let mut l = Likelihood::with_tail(Tail::Exponential, 1, 20, 20);
        for raw in 1..=20 {
            assert_eq!(l.observe(raw as f64), None);
        }
        // Sorted window 1..20: the 90th-percentile index is 18 → u = 19; above = [19, 20],
        // mean excess (0 + 1)/2 = 0.5, ζ = 2/20 = 0.1. Raw 21: p = 0.1 · e^{−(21 − 19)/0.5}
        // = 0.1 · e^{−4} = 0.0018316.
        let p = l.observe(21.0).unwrap();
        assert!((p - 0.1 * (-4.0f64).exp()).abs() < 1e-12, "{p}");
        // Window now 2..21 (1 evicted); raw 5 is below u: empirical, 17 of 20 values ≥ 5.
        assert!((l.observe(5.0).unwrap() - 17.0 / 20.0).abs() < 1e-12);
    }

    #[test]
    fn a_flat_top_gets_the_conformal_bound() {
        let mut l = Likelihood::with_tail(Tail::Exponential, 1, 20, 20);
        for raw in (1..=17).chain([18, 18, 18]) {
            assert_eq!(l.observe(raw as f64), None);
        }
        // Sorted 1..17, 18, 18, 18: u = sorted[18] = 18 and the values above it are [18, 18],
        // mean excess 0: no tail to fit. 25 exceeds all 20 values: p = 1/21.
        assert_eq!(l.observe(25.0), Some(1.0 / 21.0));
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
