//! `conformal`: a spike statistic and a changepoint statistic, each turned into a
//! p-value by conformal calibration on the series' own past, combined, with a restart at every
//! detected change. O(1) time and a few hundred bytes per series.
//!
//! Per point x, after a slow yardstick ([`Standardiser`]: warm-up mean/variance, then EWMA) puts
//! it on a unit scale, z = (x − mean)/sd:
//!
//! * **spike**: |z| — a single point unlike the recent level;
//! * **change**: the two-sided CUSUM of z, S⁺ = max(0, S⁺ + z − k), S⁻ = max(0, S⁻ − z − k), with
//!   k = 0.5 (Page 1954; k = δ/2 is the textbook reference value for a 1σ shift, Montgomery,
//!   *Introduction to Statistical Quality Control*, §9.1). It is the sequential likelihood-ratio
//!   test of "the mean moved", the O(1) relative of BOCPD's run-length posterior: small
//!   sustained shifts (a latency creep, a slow error burn) add up where no single point is rare.
//!
//! Each statistic gets a weighted conformal p-value against its own past values on this series
//! ([`Calibrator`]), so "rare" means rare *here*: a bursty series is judged by its own bursts,
//! a smooth one by its smoothness, with no threshold chosen on any corpus. The two p-values are
//! combined by Bonferroni (2 · min), valid whatever their dependence.
//!
//! **Restart**: when the combined p falls to the 3σ control limit (p ≤ 0.0027, Shewhart), the
//! yardstick and the CUSUM restart from the current point, as BOCPD's run length drops to 0 at a
//! changepoint: the old level no longer describes the series, and keeping it would alarm on
//! every point of the new level. The warm-up of the fresh yardstick is a natural refractory
//! period, scaled by the same constant as the first warm-up. The calibrators keep their
//! memory: what is rare on this series does not change because the level did.
//!
//! Seasonality: a daily swing is part of the yardstick's variance and of the calibrators' past,
//! so the usual swing is not rare; an explicit seasonal model is the job of the `seasonal`
//! member (not here: its period search keeps 1000 points per series, too much for 30,000 series).

use super::calibrate::Calibrator;
use super::standardise::Standardiser;
use super::{Detector, MAX_MAGNITUDE, score_from_tail};

/// Points that set the yardstick before the detector speaks, after the start and after every
/// restart: the customary minimum sample for a usable variance estimate (n ≥ 30).
pub const WARMUP: u32 = 30;
/// Yardstick EWMA rate: the same slow yardstick as [`super::bocpd`] (memory ≈ 1/α = 200
/// points), slow enough that a change is a departure from it rather than absorbed by it.
pub const ALPHA: f64 = 0.005;
/// CUSUM reference value in standard deviations (k = δ/2 for δ = 1σ, Montgomery §9.1).
pub const CUSUM_K: f64 = 0.5;
/// Calibration memory in points: Numenta's anomaly likelihood keeps 8640 points of history
/// (30 days of 5-minute data; `historicWindowSize` in nupic's `anomaly_likelihood.py`).
pub const MEMORY: f64 = 8640.0;
/// Restart at the two-sided 3σ control limit, P(|Z| ≥ 3) = 0.0027 (Shewhart charts).
pub const RESTART_P: f64 = 0.0027;

/// Conformal spike + changepoint detector.
#[derive(Debug, Clone)]
pub struct Conformal {
    yardstick: Standardiser,
    up: f64,
    down: f64,
    spike: Calibrator,
    change: Calibrator,
}

impl Default for Conformal {
    fn default() -> Self {
        Self {
            yardstick: Standardiser::new(ALPHA, WARMUP),
            up: 0.0,
            down: 0.0,
            spike: Calibrator::new(MEMORY, WARMUP),
            change: Calibrator::new(MEMORY, WARMUP),
        }
    }
}

impl Conformal {
    /// Combined p-value of the point (`None` while warming up or calibrating).
    fn tail(&mut self, value: f64) -> Option<f64> {
        let z = self.yardstick.standardise(value)?;
        self.up = (self.up + z - CUSUM_K).max(0.0);
        self.down = (self.down - z - CUSUM_K).max(0.0);
        let (spike, change) = (z.abs(), self.up.max(self.down));
        let p_spike = self.spike.p_value(spike);
        let p_change = self.change.p_value(change);
        self.spike.learn(spike);
        self.change.learn(change);
        let p = (2.0 * p_spike?.min(p_change?)).min(1.0);
        if p <= RESTART_P {
            self.yardstick.reset();
            self.yardstick.standardise(value);
            self.up = 0.0;
            self.down = 0.0;
        }
        Some(p)
    }
}

impl Detector for Conformal {
    fn update(&mut self, value: f64) -> f64 {
        if value.is_nan() {
            return 0.0;
        }
        if value.is_infinite() {
            return 1.0;
        }
        self.tail(value.clamp(-MAX_MAGNITUDE, MAX_MAGNITUDE))
            .map_or(0.0, score_from_tail)
    }

    fn name(&self) -> &'static str {
        "conformal"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit;

    #[test]
    fn spike_level_shift_and_season() {
        testkit::scores_spike_high(&mut Conformal::default());
        testkit::flags_level_shift_onset(&mut Conformal::default());
        testkit::quiet_on_season(&mut Conformal::default());
    }

    #[test]
    fn restarts_at_a_change_and_learns_the_new_level() {
        // After the shift is flagged the yardstick restarts: WARMUP quiet points, then the new
        // level is ordinary again (every score below the testkit's quiet bound).
        let s = testkit::run(&mut Conformal::default(), &testkit::shift_series());
        let first = (testkit::EVENT..testkit::LEN)
            .find(|&i| s[i] >= score_from_tail(RESTART_P))
            .expect("the shift is flagged");
        assert!(first < testkit::EVENT + 5, "{first}");
        let w = WARMUP as usize;
        assert!(s[first + 1..first + w].iter().all(|&x| x == 0.0));
        let later = &s[first + 3 * w..];
        assert!(
            later.iter().all(|&x| x < testkit::QUIET),
            "{:?}",
            later.iter().copied().fold(0.0, f64::max)
        );
    }

    #[test]
    fn a_slow_creep_is_caught_by_the_cusum() {
        // Noise sd 0.577 around 100; from EVENT the mean creeps up by 0.02 per point. Past
        // |z| alone is unremarkable at first (after 20 points the offset is 0.4 ≈ 0.7 sd), but
        // the CUSUM accumulates (0.7 − 0.5) per point and more as the creep grows: flagged well
        // before the creep reaches 3 sd (≈ 87 points).
        let mut v = testkit::noise(testkit::LEN, 7);
        for (i, x) in v.iter_mut().enumerate() {
            *x += 100.0
                + if i >= testkit::EVENT {
                    0.02 * (i - testkit::EVENT) as f64
                } else {
                    0.0
                };
        }
        let s = testkit::run(&mut Conformal::default(), &v);
        let before = s[testkit::QUIET_FROM..testkit::EVENT]
            .iter()
            .copied()
            .fold(0.0, f64::max);
        let first = (testkit::EVENT..testkit::LEN)
            .find(|&i| s[i] >= score_from_tail(RESTART_P))
            .expect("the creep is flagged");
        assert!(first < testkit::EVENT + 87, "{first}");
        assert!(before < testkit::QUIET, "{before}");
    }
}
