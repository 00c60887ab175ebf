//! The calibrated ensemble: every member's statistic becomes an anomaly likelihood against that
//! member's own history on this series ([`Likelihood`]), the tail probabilities are combined, and
//! an alarm is followed by silence until its incident is over.
//!
//! * Members complement each other: robust z (spikes), EWMA chart (small sustained shifts),
//!   seasonal residual (anomalies inside the usual daily range). BOCPD is not a member of the
//!   default: on the NAB corpus adding it lowered the standard score (see
//!   docs/benchmarks-detect.md); it is the second member of [`Ensemble::changepoint`], for
//!   series whose incidents recur. (There, while nothing is calibrated yet, the cold-start model
//!   runs beside the BOCPD member: two more Student-t tails for the first ~140 points, against
//!   the member's 100 per point, so it is not worth a special case.)
//! * Calibration: peaks-over-threshold tails ([`Tail::Exponential`]) by default; Numenta's
//!   Gaussian tail is kept as an option because it is the better-known reference.
//! * Combination: the Bonferroni-corrected minimum (k · min pᵢ) by default, so one specialist can
//!   speak alone, or Fisher's method (−2 Σ ln pᵢ is χ² with 2k degrees of freedom when all members
//!   are calm), which lets agreement count but also lets shared noise add up.
//! * One alarm per incident: once the score reaches `fire`, the detector scores 0 until the
//!   incident is over, i.e. until `rearm_after` points in a row were calm (p > 0.1), as an alert
//!   fires once and resolves when its condition has cleared. An operator wants one page at the
//!   onset of an incident, not one per minute while it lasts. (This replaced a fixed 100-point
//!   refractory period chosen on NAB: on an hourly series 100 points are four days, and every
//!   incident in them went unseen; docs/detection.md.)
//! * Cold start: until the calibration has its `min_history`, the point's tail probability is
//!   BOCPD's predictive one ([`Bocpd`]), which needs no history of its own beyond a 30-point
//!   yardstick: without it a series is blind for its first ~140 points, most of a week of hourly
//!   data.

use super::bocpd::Bocpd;
use super::ewma::Ewma;
use super::likelihood::{Likelihood, Tail};
use super::novelty::Novelty;
use super::robust_z::RobustZ;
use super::seasonal::Seasonal;
use super::{Detector, Member, Reading, score_from_tail};

/// A point is calm when p > 0.1 (score < 0.1), the conventional "not even suggestive" level: an
/// alarm at p ≤ 0.01 clears only well below it, the hysteresis band every alerting system uses
/// so that a value hovering near the threshold does not page again and again.
const CALM_SCORE: f64 = 0.1;

/// BOCPD with its run-length posterior truncated to two hypotheses (a change just now, or the
/// segment so far): a Student-t predictive of the points seen, which is the honest tail while
/// the mean and variance are known only from a few dozen points. Two hypotheses cost two
/// Student-t tails per point; measured against the default 100 on the corpora of
/// docs/detection.md, they did no worse.
fn cold_start_model() -> Bocpd {
    Bocpd::default().truncated(2)
}

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
    /// Calm points in a row that end an incident and re-arm the alarm.
    pub rearm_after: usize,
    /// Whether BOCPD answers while the calibration is still learning (see the module notes).
    pub cold_start: bool,
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
            // The novelty member's window: an anomalous point stays in its query window for
            // this many points, so that many calm points in a row mean the incident has left it.
            rearm_after: Novelty::WINDOW,
            cold_start: true,
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
    /// Between an alarm and the end of its incident.
    in_incident: bool,
    /// Calm points in a row so far inside the incident.
    calm_run: usize,
    /// The cold-start model; dropped for good once a member is calibrated.
    cold: Option<Bocpd>,
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

    /// `changepoint`: the novelty and BOCPD's predictive tail, each calibrated on this series'
    /// own history, with equal shares of the false-alarm budget (Bonferroni over two members:
    /// p = 2 · min(p_novelty, p_bocpd)). For telemetry whose incidents recur: the kNN novelty
    /// finds the second outage of a shape among the first one's windows and calls it familiar,
    /// while BOCPD compares each point with the current segment only (docs/detection.md,
    /// "Recurring incidents").
    pub fn changepoint() -> Self {
        let mut e = Self::with_members(
            EnsembleConfig {
                lead_weight: 0.5,
                ..EnsembleConfig::default()
            },
            vec![Box::new(Novelty::default()), Box::new(Bocpd::default())],
        );
        e.name = "changepoint";
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
            in_incident: false,
            calm_run: 0,
            cold: config.cold_start.then(cold_start_model),
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
            // Still learning: the cold-start model sees (and answers for) every such point.
            return match self.cold.as_mut().map(|b| b.observe(value)) {
                Some(Reading::Stat { p, .. }) => Some(p),
                _ => None,
            };
        }
        self.cold = None;
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
        if self.in_incident {
            self.calm_run = if score < CALM_SCORE {
                self.calm_run + 1
            } else {
                0
            };
            if self.calm_run >= self.config.rearm_after {
                self.in_incident = false;
            }
            return 0.0;
        }
        if score >= self.config.fire {
            self.in_incident = true;
            self.calm_run = 0;
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

    /// 100 + noise with +30 spikes at the given points.
    fn spikes_at(at: &[usize]) -> Vec<f64> {
        let mut v: Vec<f64> = testkit::noise(testkit::LEN, 1)
            .iter()
            .map(|e| 100.0 + e)
            .collect();
        for &i in at {
            v[i] += 30.0;
        }
        v
    }

    #[test]
    fn one_alarm_per_incident_then_rearmed_once_calm() {
        let cfg = EnsembleConfig::default();
        // A level shift keeps the novelty excited while windows straddle it: one alarm, then at
        // least `rearm_after` silent points.
        let s = testkit::run(&mut Ensemble::likelihood(), &testkit::shift_series());
        let first = (testkit::EVENT..testkit::LEN)
            .find(|&i| s[i] >= cfg.fire)
            .expect("the shift fires");
        assert!(first < testkit::EVENT + 5);
        assert!(
            s[first + 1..=first + cfg.rearm_after]
                .iter()
                .all(|&x| x == 0.0)
        );

        // A second spike 3 points after the first is the same incident: silent. One 60 points
        // later comes after the +30 has left the 6-point window and p > 0.1 again for 6 points
        // in a row: a new incident, which the old 100-point refractory period silenced.
        let e = testkit::EVENT;
        let s = testkit::run(&mut Ensemble::likelihood(), &spikes_at(&[e, e + 3, e + 60]));
        assert!(s[e] >= 0.5, "first spike scored {}", s[e]);
        assert_eq!(s[e + 3], 0.0);
        assert!(s[e + 60] >= 0.5, "second incident scored {}", s[e + 60]);
        assert!(s[e + 1..e + 60].iter().all(|&x| x < cfg.fire));
    }

    #[test]
    fn changepoint_sees_every_repeat_of_a_recurring_incident() {
        // The same incident seven times: the level steps +8 (≈ 14 sd of the uniform noise) for
        // 20 points every 300 points.
        let onsets = [1000, 1300, 1600, 1900, 2200, 2500, 2800];
        let mut v: Vec<f64> = testkit::noise(testkit::LEN, 7)
            .iter()
            .map(|e| 100.0 + e)
            .collect();
        for &o in &onsets {
            for x in &mut v[o..o + 20] {
                *x += 8.0;
            }
        }
        let fire = EnsembleConfig::default().fire;
        // An incident's changes: the step at o and the step back at o + 20.
        let inside = |i: usize| onsets.iter().any(|&o| (o..=o + 20).contains(&i));
        // BOCPD compares each onset with the calm segment before it, whatever came before that:
        // every repeat alarms at its first point, and nothing alarms between the incidents. (The
        // step back is a change too: BOCPD has taken the raised level as a segment within the 20
        // points, and the return may alarm once more, at o + 20.)
        let s = testkit::run(&mut Ensemble::changepoint(), &v);
        for &o in &onsets {
            assert!(s[o] >= fire, "repeat at {o} scored {}", s[o]);
        }
        assert!((1000..testkit::LEN).all(|i| inside(i) || s[i] < fire));
        // The novelty alone: an onset's window (5 calm points, then the step) finds its k = 3
        // nearest windows among the earlier onsets' once three have been seen, so from the
        // fourth repeat on the shape is familiar and nothing in the incident alarms.
        let s = testkit::run(&mut Ensemble::likelihood(), &v);
        assert!(s[1000] >= fire);
        for &o in &onsets[3..] {
            assert!(s[o..o + 20].iter().all(|&x| x < fire), "repeat at {o}");
        }
    }

    #[test]
    fn cold_start_sees_an_incident_before_the_calibration_can() {
        // The calibration answers once the novelty has 2·6 + 30 points and then 100 distances:
        // from point 141 on. A +30 spike (≈ 50 sd) at point 60 is after BOCPD's 30-point
        // yardstick, so the cold start scores it; without it the detector is still silent.
        let v = spikes_at(&[60]);
        let s = testkit::run(&mut Ensemble::likelihood(), &v);
        assert!(s[60] >= 0.5, "early spike scored {}", s[60]);
        let cfg = EnsembleConfig {
            cold_start: false,
            ..EnsembleConfig::default()
        };
        let mut blind = Ensemble::with_members(cfg, vec![Box::new(Novelty::default())]);
        let s = testkit::run(&mut blind, &v);
        assert!(s[..141].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn the_same_series_in_other_units_scores_the_same() {
        // Scaling by a power of two is exact in floating point (distances, sums of squares,
        // square roots and ratios all scale exactly), so a scale-free detector gives the very
        // same bits. An absolute floor anywhere (the old 0.05 on the tail's scale) breaks it.
        let v = spikes_at(&[testkit::EVENT]);
        let base = testkit::run(&mut Ensemble::likelihood(), &v);
        for factor in [1.0 / 1024.0, 1024.0] {
            let scaled: Vec<f64> = v.iter().map(|x| x * factor).collect();
            let s = testkit::run(&mut Ensemble::likelihood(), &scaled);
            assert!(
                s.iter().zip(&base).all(|(a, b)| a.to_bits() == b.to_bits()),
                "scores differ at scale {factor}"
            );
        }
    }
}
