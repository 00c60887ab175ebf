//! Seasonal residual detector: an additive Holt-Winters model (level + seasonal profile) predicts
//! each point, and the standardised residual is the statistic.
//!
//! The period is not configured: [`crate::season::detect_period`] finds it in the first `chunk`
//! points (until then the model is level-only, so the detector still speaks), and re-checks it
//! on the latest `chunk` points every `recheck` points, because services change their rhythm
//! (a new batch job, a time-zone move). Holt-Winters rather than STL because it updates in O(1)
//! per point; the seasonal profile is seeded from per-phase means of the chunk so it does not
//! need a season of start-up.
//!
//! A missing point advances the clock (so the phase stays aligned with time) and nothing else.

use std::collections::VecDeque;

use super::{Detector, Member, Reading, gate, normal_two_sided};
use crate::season::detect_period;

/// Holt-Winters residual detector with automatic period.
#[derive(Debug, Clone)]
pub struct Seasonal {
    alpha: f64,
    gamma: f64,
    beta_scale: f64,
    clip: f64,
    chunk: usize,
    recheck: usize,
    /// Points seen including missing ones: the clock that defines the phase.
    clock: usize,
    recent: VecDeque<f64>,
    period: Option<usize>,
    season: Vec<f64>,
    level: Option<f64>,
    /// EWMA of squared residuals (the scale of "normal" surprise).
    resid_var: f64,
    present: usize,
    warmup: usize,
}

impl Default for Seasonal {
    /// Level α = 0.05, seasonal γ = 0.1, residual-scale rate 0.01, clip 4σ; period search over
    /// the first 1000 points (enough for 3 days of 5-minute data: a daily period is 288) and
    /// again every 2000 points.
    fn default() -> Self {
        Self::new(0.05, 0.1, 0.01, 1000, 2000)
    }
}

impl Seasonal {
    pub fn new(alpha: f64, gamma: f64, beta_scale: f64, chunk: usize, recheck: usize) -> Self {
        let chunk = chunk.max(12);
        Self {
            alpha: alpha.clamp(1e-4, 1.0),
            gamma: gamma.clamp(0.0, 1.0),
            beta_scale: beta_scale.clamp(1e-4, 1.0),
            clip: 4.0,
            chunk,
            recheck: recheck.max(chunk),
            clock: 0,
            recent: VecDeque::with_capacity(chunk + 1),
            period: None,
            season: Vec::new(),
            level: None,
            resid_var: 0.0,
            present: 0,
            warmup: 30,
        }
    }

    /// The period in use, if one was found.
    pub fn period(&self) -> Option<usize> {
        self.period
    }

    fn phase(&self, clock: usize) -> usize {
        self.period.map_or(0, |m| clock % m)
    }

    fn seasonal_at(&self, clock: usize) -> f64 {
        self.season.get(self.phase(clock)).copied().unwrap_or(0.0)
    }

    /// Looks for the period in the latest chunk; on a change, re-seeds the seasonal profile from
    /// per-phase means of the chunk (deviations from the chunk mean) so the model is right at once.
    fn check_period(&mut self) {
        let values: Vec<f64> = self.recent.iter().copied().collect();
        let found = detect_period(&values, 4, self.chunk / 3);
        if found == self.period {
            return;
        }
        self.period = found;
        self.season.clear();
        let Some(m) = found else { return };
        let Some((mean, _)) = crate::stats::mean_std(&values) else {
            return;
        };
        // recent[k] was seen at clock (self.clock - len + k).
        let first = self.clock + 1 - values.len();
        let (mut sum, mut cnt) = (vec![0.0; m], vec![0usize; m]);
        for (k, v) in values.iter().enumerate() {
            if !v.is_nan() {
                let ph = (first + k) % m;
                sum[ph] += v - mean;
                cnt[ph] += 1;
            }
        }
        self.season = sum
            .iter()
            .zip(&cnt)
            .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
            .collect();
        self.level = Some(mean);
    }

    fn tick(&mut self, value: f64) {
        self.recent.push_back(value);
        if self.recent.len() > self.chunk {
            self.recent.pop_front();
        }
        let due = self.clock + 1 == self.chunk
            || (self.clock + 1 > self.chunk
                && (self.clock + 1 - self.chunk).is_multiple_of(self.recheck));
        if due {
            self.check_period();
        }
        self.clock += 1;
    }

    fn sd(&self) -> f64 {
        let lvl = self.level.unwrap_or(0.0).abs();
        self.resid_var.sqrt().max(1e-3 * lvl).max(1e-9)
    }
}

impl Member for Seasonal {
    fn observe(&mut self, value: f64) -> Reading {
        self.present += 1;
        let s = self.seasonal_at(self.clock);
        let reading = match self.level {
            None => {
                self.level = Some(value);
                Reading::Quiet
            }
            Some(level) => {
                let resid = value - (level + s);
                let sd = self.sd();
                let z = resid / sd;
                let reading = if self.present > self.warmup {
                    Reading::Stat {
                        raw: z.abs(),
                        p: normal_two_sided(z),
                    }
                } else {
                    Reading::Quiet
                };
                // Learning from a clipped residual keeps one anomaly from dragging the model.
                let r = if self.present > self.warmup {
                    z.clamp(-self.clip, self.clip) * sd
                } else {
                    resid
                };
                let new_level = level + self.alpha * r;
                self.level = Some(new_level);
                if let Some(m) = self.period {
                    let ph = self.clock % m;
                    let x = level + s + r;
                    self.season[ph] += self.gamma * (x - new_level - self.season[ph]);
                }
                let rate = if self.present <= self.warmup {
                    1.0 / self.present as f64
                } else {
                    self.beta_scale
                };
                self.resid_var += rate * (r * r - self.resid_var);
                reading
            }
        };
        self.tick(value);
        reading
    }
}

impl Detector for Seasonal {
    fn update(&mut self, value: f64) -> f64 {
        if value.is_nan() {
            // The clock moves so the phase stays aligned with time; the model does not.
            self.tick(f64::NAN);
            return 0.0;
        }
        gate(value, self)
    }

    fn name(&self) -> &'static str {
        "seasonal"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit;

    #[test]
    fn finds_the_period_and_stays_quiet_on_the_season() {
        let mut d = Seasonal::default();
        testkit::quiet_on_season(&mut d);
        assert_eq!(d.period(), Some(48));
    }

    #[test]
    fn a_dip_inside_the_seasonal_range_is_flagged() {
        // At i = 2508 the season is at its crest: 100 + 10·sin(2π·2508/48) = 100 + 10·sin(π/2)
        // (2508 = 52·48 + 12, a quarter period) = 110. Setting the point to 95 stays inside the
        // series' 90..110 range (a global threshold sees nothing) but is 15 below the prediction,
        // ≈ 26 noise sd: p underflows, score 1.
        let mut v = testkit::seasonal_series();
        v[2508] = 95.0;
        let s = testkit::run(&mut Seasonal::default(), &v);
        assert!(s[2508] >= 0.5, "{}", s[2508]);
        assert!(
            s[testkit::QUIET_FROM..2508]
                .iter()
                .all(|&x| x < testkit::QUIET)
        );
    }

    #[test]
    fn spike_and_level_shift() {
        testkit::scores_spike_high(&mut Seasonal::default());
        testkit::flags_level_shift_onset(&mut Seasonal::default());
    }

    #[test]
    fn missing_points_keep_the_phase() {
        // Same season with 3-point outages every 97 points: the period is still found and the
        // clean points stay quiet, which only holds if the clock advanced over the gaps.
        let v: Vec<f64> = testkit::seasonal_series()
            .into_iter()
            .enumerate()
            .map(|(i, x)| if i % 97 < 3 { f64::NAN } else { x })
            .collect();
        let mut d = Seasonal::default();
        let s = testkit::run(&mut d, &v);
        assert_eq!(d.period(), Some(48));
        assert!(s[testkit::QUIET_FROM..].iter().all(|&x| x < testkit::QUIET));
    }
}
