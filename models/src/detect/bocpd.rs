//! Bayesian online changepoint detection (Adams & MacKay 2007, arXiv:0710.3742).
//!
//! The series is a sequence of segments; within a segment points are Normal with unknown mean
//! and variance under a Normal-Gamma prior, so each run-length hypothesis r ("the current segment
//! started r points ago") predicts the next point with a Student-t ([`student_t`](super::student_t):
//! ν is always a whole number, which has a closed form). The posterior over
//! r is updated by the message-passing recursion with a constant hazard 1/λ, and truncated to
//! the `max_run` most recent hypotheses (the oldest one absorbs the mass it would have passed on)
//! so each point costs O(max_run).
//!
//! The statistic is the predictive tail probability of the point under the posterior mixture,
//! P(|X - μ_r| ≥ |x - μ_r|) averaged over r: a point unlike every live segment is rare whatever the
//! current run length. (P(r = 0) itself is useless here: with a constant hazard it equals 1/λ
//! whatever the data, a known property of the recursion.)
//!
//! The prior (μ0 = 0, κ0 = 1, α0 = β0 = 3: variance of order 1, ν = 6 predictive tails) suits
//! data that are first standardised by a slow EWMA mean and variance, so it suits any series;
//! the EWMA is slow enough (≈ 200 points) that within-segment structure is the Bayesian model's
//! job.

use super::standardise::Standardiser;
use super::student_t::StudentT;
use super::{Detector, Member, Reading, gate};

#[derive(Debug, Clone, Copy)]
struct Hyp {
    /// Posterior probability of this run length.
    prob: f64,
    mu: f64,
    kappa: f64,
    alpha: f64,
    beta: f64,
}

impl Hyp {
    const PRIOR: Hyp = Hyp {
        prob: 1.0,
        mu: 0.0,
        kappa: 1.0,
        alpha: 3.0,
        beta: 3.0,
    };

    /// Student-t predictive: ν = 2α, location μ, scale² = β(κ+1)/(ακ).
    fn predictive(&self) -> Option<StudentT> {
        let scale = (self.beta * (self.kappa + 1.0) / (self.alpha * self.kappa)).sqrt();
        StudentT::new(self.mu, scale, 2.0 * self.alpha)
    }

    fn posterior(&self, x: f64) -> Hyp {
        Hyp {
            prob: self.prob,
            mu: (self.kappa * self.mu + x) / (self.kappa + 1.0),
            kappa: self.kappa + 1.0,
            alpha: self.alpha + 0.5,
            beta: self.beta + self.kappa * (x - self.mu).powi(2) / (2.0 * (self.kappa + 1.0)),
        }
    }
}

/// Bayesian online changepoint detector.
#[derive(Debug, Clone)]
pub struct Bocpd {
    hazard: f64,
    max_run: usize,
    yardstick: Standardiser,
    /// Run-length hypotheses, shortest first.
    hyps: Vec<Hyp>,
    /// The previous step's hypotheses, kept only for their allocation: each step builds the
    /// next posterior in it and swaps, instead of allocating a vector per point.
    spare: Vec<Hyp>,
}

impl Default for Bocpd {
    /// Hazard 1/250, 100 run lengths kept, standardising EWMA α = 0.005, 30 points warm-up.
    fn default() -> Self {
        Self::new(250.0, 100, 0.005, 30)
    }
}

impl Bocpd {
    pub fn new(lambda: f64, max_run: usize, alpha: f64, warmup: usize) -> Self {
        Self {
            hazard: 1.0 / lambda.max(1.0),
            max_run: max_run.max(2),
            yardstick: Standardiser::new(alpha, u32::try_from(warmup).unwrap_or(u32::MAX)),
            hyps: vec![Hyp::PRIOR],
            spare: Vec::new(),
        }
    }

    /// The same model keeping at most `max_run` run-length hypotheses (at least 2).
    pub fn truncated(mut self, max_run: usize) -> Self {
        self.max_run = max_run.max(2);
        self
    }

    /// Most probable current run length (for tests and explanations).
    pub fn map_run_length(&self) -> usize {
        self.hyps
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.prob.total_cmp(&b.1.prob))
            .map_or(0, |(i, _)| i)
    }

    /// One step of the recursion; returns the predictive tail probability of `x`.
    fn step(&mut self, x: f64) -> f64 {
        let mut tail = 0.0;
        let mut cp_mass = 0.0;
        let mut grown = std::mem::take(&mut self.spare);
        grown.clear();
        grown.push(Hyp::PRIOR); // r = 0; its probability is set below.
        for h in &self.hyps {
            let Some(t) = h.predictive() else { continue };
            tail += h.prob * t.two_sided_tail(x);
            let like = t.pdf(x);
            let joint = h.prob * like;
            cp_mass += joint * self.hazard;
            let mut next = h.posterior(x);
            next.prob = joint * (1.0 - self.hazard);
            grown.push(next);
        }
        grown[0].prob = cp_mass;
        if grown.len() > self.max_run
            && let Some(oldest) = grown.pop()
            && let Some(last) = grown.last_mut()
        {
            last.prob += oldest.prob;
        }
        let total: f64 = grown.iter().map(|h| h.prob).sum();
        if total > 0.0 && total.is_finite() {
            for h in &mut grown {
                h.prob /= total;
            }
        } else {
            // Every hypothesis found x impossible (density underflow): a changepoint for sure.
            grown.clear();
            grown.push(Hyp::PRIOR.posterior(x));
        }
        self.spare = std::mem::replace(&mut self.hyps, grown);
        tail.clamp(0.0, 1.0)
    }
}

impl Member for Bocpd {
    fn observe(&mut self, value: f64) -> Reading {
        let Some(x) = self.yardstick.standardise(value) else {
            return Reading::Quiet;
        };
        let p = self.step(x);
        Reading::Stat {
            raw: -p.max(1e-300).ln(),
            p,
        }
    }
}

impl Detector for Bocpd {
    fn update(&mut self, value: f64) -> f64 {
        gate(value, self)
    }

    fn name(&self) -> &'static str {
        "bocpd"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit;

    #[test]
    fn normal_gamma_update_by_hand() {
        // Prior μ0 = 0, κ0 = 1, α0 = 3, β0 = 3; observe x = 2:
        // μ = (1·0 + 2)/2 = 1, κ = 2, α = 3.5, β = 3 + 1·4/(2·2) = 4.
        let h = Hyp::PRIOR.posterior(2.0);
        assert_eq!((h.mu, h.kappa, h.alpha, h.beta), (1.0, 2.0, 3.5, 4.0));
        // Predictive scale² = 4·3/(3.5·2) = 12/7, ν = 7.
        let t = h.predictive().unwrap();
        assert!((t.scale() - (12.0f64 / 7.0).sqrt()).abs() < 1e-12 && t.freedom() == 7.0);
    }

    #[test]
    fn first_step_tail_is_the_prior_predictive_tail() {
        let mut d = Bocpd::default();
        // Prior predictive: ν = 6, scale² = 3·2/(3·1) = 2. For Student-t with ν = 6,
        // P(|T| ≥ t) = 1 − u(1 + (1−u²)/2 + 3(1−u²)²/8) with u = t/√(t² + 6); at x = √2 (t = 1):
        // u = 1/√7 = 0.37796, 1 − u² = 6/7 → 1 − 0.37796 × (1 + 0.42857 + 0.27551) = 0.35592.
        let p = d.step(2f64.sqrt());
        assert!((p - 0.355_917_68).abs() < 1e-7, "{p}");
    }

    #[test]
    fn run_length_resets_after_a_shift() {
        let mut d = Bocpd::default();
        let v = testkit::shift_series();
        for &x in &v[..testkit::EVENT] {
            d.update(x);
        }
        assert!(d.map_run_length() > 50);
        for &x in &v[testkit::EVENT..testkit::EVENT + 20] {
            d.update(x);
        }
        // 20 points into the new level, the MAP segment started ≈ 20 points ago.
        let r = d.map_run_length();
        assert!((15..=25).contains(&r), "{r}");
    }

    #[test]
    fn spike_and_level_shift() {
        testkit::scores_spike_high(&mut Bocpd::default());
        testkit::flags_level_shift_onset(&mut Bocpd::default());
    }

    #[test]
    fn quiet_on_a_clean_season() {
        // Standardised, the sine stays within ≈ ±1.5 sd and every run length's Student-t has
        // learnt that spread, so no point is in a far tail.
        testkit::quiet_on_season(&mut Bocpd::default());
    }
}
