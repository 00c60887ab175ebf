//! The Observation's time grid, and a range-query series placed on it.
//!
//! A range query evaluated from `start` to `end` every `step` answers at exactly those
//! timestamps, but leaves out the ones where the expression had no value. The grid puts each
//! sample at its index and leaves the absent ones NaN — never 0: "no value" is not "no traffic".

use super::TelemetryError;

/// `points` evaluation times ending at `end`, `step` seconds apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grid {
    /// Unix seconds of the newest point.
    pub end: i64,
    pub step: i64,
    pub points: usize,
}

impl Grid {
    /// A grid ending at `end` holding `lookback` seconds of `step`-second points (at least one).
    pub fn ending(end: i64, step: i64, lookback: i64) -> Grid {
        let step = step.max(1);
        let points = (lookback / step).max(1) as usize;
        Grid { end, step, points }
    }

    /// Unix seconds of the oldest point.
    pub fn start(&self) -> i64 {
        self.end - (self.points as i64 - 1) * self.step
    }

    /// A window of NaN (nothing known yet).
    pub fn empty(&self) -> Vec<f64> {
        vec![f64::NAN; self.points]
    }

    /// Places `(timestamp, value)` samples on the grid. `what` names the query for the error
    /// of a sample that is not one of the grid's evaluation times, or a timestamp given twice.
    /// Infinite values (a division by zero rate) are not measurements: they become NaN.
    pub fn place(
        &self,
        samples: impl IntoIterator<Item = (f64, f64)>,
        what: &str,
    ) -> Result<Vec<f64>, TelemetryError> {
        let mut out = self.empty();
        let mut seen = vec![false; self.points];
        let start = self.start() as f64;
        for (t, v) in samples {
            let offset = (t - start) / self.step as f64;
            let i = offset.round();
            // Prometheus answers at start + k·step exactly (millisecond timestamps).
            if !offset.is_finite()
                || (offset - i).abs() > 1e-3
                || i < 0.0
                || i >= self.points as f64
            {
                return Err(TelemetryError::Malformed(format!(
                    "{what}: sample at {t} is not on the query's grid ({}..={} every {} s)",
                    self.start(),
                    self.end,
                    self.step
                )));
            }
            let i = i as usize;
            if seen[i] {
                return Err(TelemetryError::Malformed(format!(
                    "{what}: two samples at {t} in one series"
                )));
            }
            seen[i] = true;
            out[i] = if v.is_finite() { v } else { f64::NAN };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_points_are_nan_not_zero() {
        // 1 h at 15 s = 240 points ending at 1000·15: start = 15000 − 239·15 = 11415.
        let g = Grid::ending(15_000, 15, 3600);
        assert_eq!(g.points, 240);
        assert_eq!(g.start(), 11_415);
        let v = g
            .place([(11_415.0, 1.0), (14_985.0, 0.0), (15_000.0, 2.5)], "q")
            .unwrap();
        assert_eq!(v[0], 1.0);
        assert!(v[1].is_nan());
        // 14985 is one step before the end: index 238, and a real zero stays zero.
        assert_eq!(v[238], 0.0);
        assert_eq!(v[239], 2.5);
        assert_eq!(v.iter().filter(|x| x.is_nan()).count(), 237);
    }

    #[test]
    fn off_grid_and_duplicate_samples_are_malformed() {
        let g = Grid::ending(150, 15, 60);
        assert_eq!(g.start(), 105);
        let e = g.place([(110.0, 1.0)], "request rate by pod").unwrap_err();
        assert!(
            matches!(&e, TelemetryError::Malformed(m) if m.contains("request rate by pod") && m.contains("110")),
            "{e}"
        );
        assert!(g.place([(165.0, 1.0)], "q").is_err());
        let e = g.place([(120.0, 1.0), (120.0, 2.0)], "q").unwrap_err();
        assert!(matches!(e, TelemetryError::Malformed(m) if m.contains("two samples")));
    }

    #[test]
    fn infinities_are_unknown() {
        let g = Grid::ending(30, 15, 30);
        let v = g
            .place([(15.0, f64::INFINITY), (30.0, f64::NAN)], "q")
            .unwrap();
        assert!(v[0].is_nan() && v[1].is_nan());
    }
}
