//! The calibrated ensemble: every member's statistic becomes an anomaly likelihood against that
//! member's own history on this series ([`Likelihood`]), the tail probabilities are combined, and
//! an alarm is followed by a refractory period.
//!
//! * Members complement each other: robust z (spikes), EWMA chart (small sustained shifts),
//!   seasonal residual (anomalies inside the usual daily range). BOCPD is not a member by
//!   default: on the NAB corpus adding it lowered the standard score (see
//!   docs/benchmarks-detect.md); it stays available on its own and through [`Ensemble::with_members`].
//! * Calibration: peaks-over-threshold tails ([`Tail::Exponential`]) by default; Numenta's
//!   Gaussian tail is kept as an option because it is the better-known reference.
//! * Combination: the Bonferroni-corrected minimum (k · min pᵢ) by default, so one specialist can
//!   speak alone, or Fisher's method (−2 Σ ln pᵢ is χ² with 2k degrees of freedom when all members
//!   are calm), which lets agreement count but also lets shared noise add up.
//! * Refractory period: once the score reaches `fire`, the next `refractory` points score 0. An
//!   operator wants one page at the onset of an incident, not one per minute while it lasts, and
//!   a level shift would otherwise keep every member excited until it is learnt.

use super::ewma::Ewma;
use super::likelihood::{Likelihood, Tail};
use super::novelty::Novelty;
use super::robust_z::RobustZ;
use super::seasonal::Seasonal;
use super::{Detector, Member, score_from_tail};

/// How member tail probabilities are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    Fisher,
    MinBonferroni,
}

/// Settings of the ensemble (one setting for every series).
#[derive(Debug, Clone, Copy)]
pub struct EnsembleConfig {
    pub short: usize,
    pub long: usize,
    pub min_history: usize,
    pub combine: Combine,
    pub fire: f64,
    pub refractory: usize,
    pub tail: Tail,
    /// Share of the false-alarm budget of the first member under [`Combine::MinBonferroni`]
    /// (the others share the rest equally): p = minᵢ pᵢ / wᵢ.
    pub lead_weight: f64,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        Self {
            short: 1,
            long: 4000,
            min_history: 100,
            combine: Combine::MinBonferroni,
            fire: 0.2,
            refractory: 100,
            tail: Tail::Exponential,
            lead_weight: 0.99,
        }
    }
}

struct Calibrated {
    member: Box<dyn Member>,
    likelihood: Likelihood,
}

/// The calibrated pipeline over one or more members.
pub struct Ensemble {
    name: &'static str,
    config: EnsembleConfig,
    members: Vec<Calibrated>,
    quiet_for: usize,
}

impl Default for Ensemble {
    fn default() -> Self {
        Self::new(EnsembleConfig::default())
    }
}

impl Ensemble {
    /// `ensemble`: novelty leads (99 % of the false-alarm budget), robust z, EWMA chart and
    /// seasonal residual share the rest.
    pub fn new(config: EnsembleConfig) -> Self {
        let members: Vec<Box<dyn Member>> = vec![
            Box::new(Novelty::default()),
            Box::new(RobustZ::default()),
            Box::new(Ewma::default()),
            Box::new(Seasonal::default()),
        ];
        Self::with_members(config, members)
    }

    /// `likelihood`: the calibrated pipeline over the novelty member alone — the best NAB score.
    pub fn likelihood() -> Self {
        let mut e = Self::with_members(
            EnsembleConfig::default(),
            vec![Box::new(Novelty::default())],
        );
        e.name = "likelihood";
        e
    }

    /// An ensemble over custom members (each calibrated by its own [`Likelihood`]).
    pub fn with_members(config: EnsembleConfig, members: Vec<Box<dyn Member>>) -> Self {
        let members = members
            .into_iter()
            .map(|member| Calibrated {
                member,
                likelihood: Likelihood::with_tail(
                    config.tail,
                    config.short,
                    config.long,
                    config.min_history,
                ),
            })
            .collect();
        Self {
            name: "ensemble",
            config,
            members,
            quiet_for: 0,
        }
    }

    /// Combined tail probability of the point, `None` while no member is calibrated yet.
    fn combined_tail(&mut self, value: f64) -> Option<f64> {
        let k = self.members.len();
        let lead = self.config.lead_weight;
        let mut tails = Vec::with_capacity(k);
        let mut weighted = f64::INFINITY;
        for (i, c) in self.members.iter_mut().enumerate() {
            if let Some(raw) = c.member.observe_raw(value)
                && let Some(p) = c.likelihood.observe(raw)
            {
                tails.push(p);
                let w = if k == 1 {
                    1.0
                } else if i == 0 {
                    lead
                } else {
                    (1.0 - lead) / (k - 1) as f64
                };
                weighted = weighted.min(p / w.max(1e-12));
            }
        }
        if tails.is_empty() {
            return None;
        }
        Some(match self.config.combine {
            Combine::Fisher => fisher(&tails),
            Combine::MinBonferroni => weighted.min(1.0),
        })
    }
}

/// Fisher's method: X = −2 Σ ln pᵢ ~ χ²(2k) under the null, whose survival function has the
/// closed form e^{−X/2} Σ_{j<k} (X/2)^j / j! (evaluated in logs so tiny p do not underflow early).
pub fn fisher(tails: &[f64]) -> f64 {
    let k = tails.len();
    if k == 0 {
        return 1.0;
    }
    let half_x: f64 = tails.iter().map(|p| -p.clamp(1e-300, 1.0).ln()).sum();
    let mut term = 1.0;
    let mut sum = 1.0;
    for j in 1..k {
        term *= half_x / j as f64;
        sum += term;
    }
    (-half_x + sum.ln()).exp().clamp(0.0, 1.0)
}

impl Detector for Ensemble {
    fn update(&mut self, value: f64) -> f64 {
        if value.is_nan() {
            return 0.0;
        }
        if value.is_infinite() {
            return 1.0;
        }
        let value = value.clamp(-super::MAX_MAGNITUDE, super::MAX_MAGNITUDE);
        let Some(p) = self.combined_tail(value) else {
            return 0.0;
        };
        let score = score_from_tail(p);
        if self.quiet_for > 0 {
            self.quiet_for -= 1;
            return 0.0;
        }
        if score >= self.config.fire {
            self.quiet_for = self.config.refractory;
        }
        score
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit;

    #[test]
    fn fisher_by_hand() {
        // One p: X/2 = −ln p, sf = e^{ln p} · 1 = p.
        assert!((fisher(&[0.03]) - 0.03).abs() < 1e-12);
        // p = (0.1, 0.1): X/2 = 2 ln 10 = 4.6052; sf = e^{−4.6052}(1 + 4.6052) = 0.01 × 5.6052.
        assert!((fisher(&[0.1, 0.1]) - 0.056052).abs() < 1e-6);
        assert_eq!(fisher(&[]), 1.0);
        assert_eq!(fisher(&[1.0, 1.0]), 1.0);
    }

    #[test]
    fn spike_level_shift_and_season() {
        testkit::scores_spike_high(&mut Ensemble::default());
        testkit::flags_level_shift_onset(&mut Ensemble::default());
        testkit::quiet_on_season(&mut Ensemble::default());
        testkit::scores_spike_high(&mut Ensemble::likelihood());
        testkit::flags_level_shift_onset(&mut Ensemble::likelihood());
        testkit::quiet_on_season(&mut Ensemble::likelihood());
    }

    #[test]
    fn one_alarm_per_incident() {
        // The shift keeps members excited for many points; after the first score ≥ fire the
        // refractory period silences the next `refractory` points.
        let cfg = EnsembleConfig::default();
        let s = testkit::run(&mut Ensemble::new(cfg), &testkit::shift_series());
        let first = (testkit::EVENT..testkit::LEN)
            .find(|&i| s[i] >= cfg.fire)
            .expect("the shift fires");
        assert!(first < testkit::EVENT + 5);
        assert!(
            s[first + 1..=first + cfg.refractory]
                .iter()
                .all(|&x| x == 0.0)
        );
    }
}
