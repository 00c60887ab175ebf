//! Open-loop arrivals: a Poisson process whose rate follows a profile (constant, diurnal, a
//! replayed request-rate series, times any surge), or replayed arrival timestamps.

use rand::Rng;

use crate::duration::Nanos;
use crate::scenario::{ProfileSpec, Scenario};

const SECOND: u64 = 1_000_000_000;

/// The rate of the non-homogeneous Poisson process, piecewise constant per second.
#[derive(Debug, Clone)]
pub enum Rate {
    Constant(f64),
    Diurnal {
        mean: f64,
        amplitude: f64,
        period_s: f64,
    },
    /// A replayed request-count series rescaled to a mean rate.
    Series {
        series: crate::traces::RateSeries,
        mean_rps: f64,
    },
}

impl Rate {
    fn at(&self, t: u64) -> f64 {
        match self {
            Rate::Constant(r) => *r,
            Rate::Diurnal {
                mean,
                amplitude,
                period_s,
            } => {
                let x = (t / SECOND) as f64 / period_s;
                // A trough at t = 0: the day starts at night.
                mean * (1.0 - amplitude * (std::f64::consts::TAU * x).cos())
            }
            Rate::Series { series, mean_rps } => {
                if (t / SECOND) as f64 > series.duration_s() {
                    0.0
                } else {
                    series.rate_at((t / SECOND) as f64, *mean_rps)
                }
            }
        }
    }
}

/// Produces arrival times, one at a time.
#[derive(Debug, Clone)]
pub enum Arrivals {
    Poisson {
        rate: Rate,
        /// Exponential mass still to cover before the next arrival (exact thinning-free
        /// sampling of a piecewise-constant rate).
        carry: f64,
        t: u64,
    },
    Replay {
        times: Vec<u64>,
        next: usize,
    },
}

/// A surge window: rate multiplied by `factor` in [start, end).
#[derive(Debug, Clone, Copy)]
pub struct Surge {
    pub start: u64,
    pub end: u64,
    pub factor: f64,
}

impl Arrivals {
    /// Builds the arrival process. `notes` collects what the user should know (e.g. replayed
    /// data shorter than the run).
    pub fn compile(s: &Scenario, notes: &mut Vec<String>) -> Result<Arrivals, String> {
        Ok(match &s.traffic.profile {
            ProfileSpec::Constant { rate } => Arrivals::poisson(Rate::Constant(*rate)),
            ProfileSpec::Diurnal {
                mean,
                amplitude,
                period,
            } => Arrivals::poisson(Rate::Diurnal {
                mean: *mean,
                amplitude: *amplitude,
                period_s: period.as_secs_f64().max(1.0),
            }),
            ProfileSpec::Arrivals { file, time_scale } => {
                let raw = crate::traces_adapter::arrival_seconds(file)?;
                let Some(&first) = raw.first() else {
                    return Err(format!("{}: no arrivals", file.display()));
                };
                let mut times: Vec<u64> = raw
                    .iter()
                    .map(|t| ((t - first) / time_scale * 1e9).max(0.0) as u64)
                    .collect();
                times.sort_unstable();
                let span = times.last().copied().unwrap_or(0);
                if span < s.duration.nanos() {
                    notes.push(format!(
                        "{}: {} arrivals span {:.0} s of the {:.0} s run; no traffic after that",
                        file.display(),
                        times.len(),
                        span as f64 / 1e9,
                        s.duration.as_secs_f64()
                    ));
                }
                Arrivals::Replay { times, next: 0 }
            }
            ProfileSpec::RateSeries {
                file,
                time_scale,
                mean_rate,
            } => {
                let series = crate::traces_adapter::rate_series(file, *time_scale)?;
                if series.mean() <= 0.0 {
                    return Err(format!(
                        "{}: the series never rises above 0",
                        file.display()
                    ));
                }
                if series.duration_s() < s.duration.as_secs_f64() {
                    notes.push(format!(
                        "{}: the series covers {:.0} s of the {:.0} s run; no traffic after that",
                        file.display(),
                        series.duration_s(),
                        s.duration.as_secs_f64()
                    ));
                }
                Arrivals::poisson(Rate::Series {
                    series,
                    mean_rps: *mean_rate,
                })
            }
        })
    }

    /// About how many arrivals a run of `end` nanoseconds draws: the profile's mean rate over
    /// the run plus each surge's extra over its window (exact for a constant rate; a whole
    /// number of diurnal periods averages to the mean), or the replayed timestamps before `end`.
    pub fn expected(&self, surges: &[Surge], end: u64) -> f64 {
        let mean = match self {
            Arrivals::Replay { times, .. } => {
                return times.iter().filter(|&&t| t < end).count() as f64;
            }
            Arrivals::Poisson { rate, .. } => match rate {
                Rate::Constant(r) => *r,
                Rate::Diurnal { mean, .. } => *mean,
                Rate::Series { mean_rps, .. } => *mean_rps,
            },
        };
        let seconds = |from: u64, to: u64| to.min(end).saturating_sub(from) as f64 / 1e9;
        let surged: f64 = surges
            .iter()
            .map(|s| (s.factor - 1.0).max(0.0) * seconds(s.start, s.end))
            .sum();
        mean * (seconds(0, end) + surged)
    }

    fn poisson(rate: Rate) -> Arrivals {
        Arrivals::Poisson {
            rate,
            carry: 0.0,
            t: 0,
        }
    }

    /// The next arrival strictly before `end`, or None.
    pub fn next<R: Rng>(&mut self, rng: &mut R, surges: &[Surge], end: u64) -> Option<u64> {
        match self {
            Arrivals::Replay { times, next } => {
                let t = *times.get(*next)?;
                *next += 1;
                (t < end).then_some(t)
            }
            Arrivals::Poisson { rate, carry, t } => loop {
                if *t >= end {
                    return None;
                }
                if *carry <= 0.0 {
                    // Exp(1) by inversion; 1 - u avoids ln(0).
                    *carry = -(1.0 - rng.random::<f64>()).ln();
                }
                let seg_end = (*t / SECOND + 1) * SECOND;
                let mut r = rate.at(*t);
                for s in surges {
                    if *t >= s.start && *t < s.end {
                        r *= s.factor;
                    }
                }
                if r > 0.0 {
                    let dt = *carry / r * 1e9;
                    if (*t as f64 + dt) < seg_end as f64 {
                        *t += (dt as u64).max(1);
                        *carry = 0.0;
                        return (*t < end).then_some(*t);
                    }
                    *carry -= r * (seg_end - *t) as f64 / 1e9;
                }
                *t = seg_end;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_expected_count_adds_each_surges_extra_over_its_window() {
        // 100 req/s for 100 s, tripled from 10 s to 30 s and doubled from 90 s to past the
        // end: 100 · (100 + 2 · 20 + 1 · 10) = 15,000.
        let a = Arrivals::poisson(Rate::Constant(100.0));
        let surges = [
            Surge {
                start: 10 * SECOND,
                end: 30 * SECOND,
                factor: 3.0,
            },
            Surge {
                start: 90 * SECOND,
                end: u64::MAX,
                factor: 2.0,
            },
        ];
        assert_eq!(a.expected(&surges, 100 * SECOND), 15_000.0);
        // Replayed arrivals: the timestamps before the end.
        let r = Arrivals::Replay {
            times: vec![0, SECOND, 5 * SECOND],
            next: 0,
        };
        assert_eq!(r.expected(&surges, 2 * SECOND), 2.0);
    }

    #[test]
    fn poisson_count_matches_rate() {
        // 100 req/s for 100 s: 10,000 expected, sd = 100; allow 5 sd.
        let mut a = Arrivals::poisson(Rate::Constant(100.0));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut n = 0;
        while a.next(&mut rng, &[], 100 * SECOND).is_some() {
            n += 1;
        }
        assert!((9_500..=10_500).contains(&n), "{n}");
    }

    #[test]
    fn surge_multiplies_the_rate() {
        // 100 req/s, ×5 during [10 s, 20 s): 20 s × 100 + 10 s × 500 = 7,000 in 30 s.
        let mut a = Arrivals::poisson(Rate::Constant(100.0));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let surge = [Surge {
            start: 10 * SECOND,
            end: 20 * SECOND,
            factor: 5.0,
        }];
        let mut n = 0;
        while a.next(&mut rng, &surge, 30 * SECOND).is_some() {
            n += 1;
        }
        // sd = sqrt(7000) ≈ 84; allow ~5 sd.
        assert!((6_600..=7_400).contains(&n), "{n}");
    }
}
