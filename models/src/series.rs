//! Regular time series with explicit gaps.
//!
//! Telemetry arrives as (timestamp, value) points; models want a regular grid where a missing
//! step is visibly missing (NaN) instead of silently squeezed out or, worse, read as zero. A
//! missing point means "we do not know", and every consumer must treat it that way.

use std::fmt;

/// Why a list of points could not become a [`TimeSeries`]. `index` is the 0-based position of
/// the offending point in the input, so adapters can turn it into a file line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("the series is empty")]
    Empty,
    #[error(
        "point {index}: timestamp {ts} is not after the previous timestamp {prev} (points must be sorted)"
    )]
    Unsorted { index: usize, ts: i64, prev: i64 },
    #[error("point {index}: timestamp {ts} appears twice")]
    Duplicate { index: usize, ts: i64 },
    #[error("step must be positive, got {0}")]
    BadStep(i64),
}

/// A regular series: `values[i]` is the value at `start + i * step` (seconds). `NaN` marks a
/// step with no data.
#[derive(Clone, PartialEq)]
pub struct TimeSeries {
    start: i64,
    step: i64,
    values: Vec<f64>,
}

impl fmt::Debug for TimeSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeSeries")
            .field("start", &self.start)
            .field("step", &self.step)
            .field("len", &self.values.len())
            .field("missing", &self.missing())
            .finish()
    }
}

impl TimeSeries {
    /// A series on a known grid. Non-finite values are stored as NaN (missing).
    pub fn new(start: i64, step: i64, values: Vec<f64>) -> Result<Self, SeriesError> {
        if step <= 0 {
            return Err(SeriesError::BadStep(step));
        }
        let values = values
            .into_iter()
            .map(|v| if v.is_finite() { v } else { f64::NAN })
            .collect();
        Ok(Self {
            start,
            step,
            values,
        })
    }

    /// Builds a regular series from sorted, unique points. The step is the most common gap
    /// between neighbours (ties: the smallest), so a few missing scrapes do not change it;
    /// missing steps become NaN and a point off the grid is placed on its nearest step.
    pub fn from_points(points: &[(i64, f64)]) -> Result<Self, SeriesError> {
        let (first, _) = *points.first().ok_or(SeriesError::Empty)?;
        for (index, pair) in points.windows(2).enumerate() {
            let (prev, ts) = (pair[0].0, pair[1].0);
            if ts == prev {
                return Err(SeriesError::Duplicate {
                    index: index + 1,
                    ts,
                });
            }
            if ts < prev {
                return Err(SeriesError::Unsorted {
                    index: index + 1,
                    ts,
                    prev,
                });
            }
        }
        let step = modal_gap(points).unwrap_or(1);
        let last = points[points.len() - 1].0;
        let len = ((last - first) as f64 / step as f64).round() as usize + 1;
        let mut values = vec![f64::NAN; len];
        for &(ts, v) in points {
            let slot = ((ts - first) as f64 / step as f64).round() as usize;
            // Two points rounding onto one step: keep the later one, it is the fresher reading.
            values[slot.min(len - 1)] = if v.is_finite() { v } else { f64::NAN };
        }
        Ok(Self {
            start: first,
            step,
            values,
        })
    }

    pub fn start(&self) -> i64 {
        self.start
    }

    pub fn step(&self) -> i64 {
        self.step
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Timestamp of step `i`.
    pub fn time_at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Number of missing steps.
    pub fn missing(&self) -> usize {
        self.values.iter().filter(|v| v.is_nan()).count()
    }

    /// Appends the next step (NaN or non-finite = missing).
    pub fn push(&mut self, v: f64) {
        self.values.push(if v.is_finite() { v } else { f64::NAN });
    }

    /// The last `len` steps (fewer if the series is shorter).
    pub fn tail(&self, len: usize) -> &[f64] {
        &self.values[self.values.len().saturating_sub(len)..]
    }

    /// Sliding windows of `len` steps, advancing by `stride` (both at least 1).
    pub fn windows(&self, len: usize, stride: usize) -> impl Iterator<Item = Window<'_>> + '_ {
        let len = len.max(1);
        let stride = stride.max(1);
        let count = if self.values.len() >= len {
            (self.values.len() - len) / stride + 1
        } else {
            0
        };
        (0..count).map(move |k| {
            let from = k * stride;
            Window {
                start: self.time_at(from),
                values: &self.values[from..from + len],
            }
        })
    }
}

/// A window of a series: its first timestamp and its values (NaN = missing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window<'a> {
    pub start: i64,
    pub values: &'a [f64],
}

impl Window<'_> {
    /// The present values, in order.
    pub fn present(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().copied().filter(|v| !v.is_nan())
    }

    /// Share of the window that has data, in [0, 1].
    pub fn coverage(&self) -> f64 {
        if self.values.is_empty() {
            return 0.0;
        }
        self.present().count() as f64 / self.values.len() as f64
    }
}

fn modal_gap(points: &[(i64, f64)]) -> Option<i64> {
    let mut gaps: Vec<i64> = points.windows(2).map(|p| p[1].0 - p[0].0).collect();
    gaps.sort_unstable();
    let mut best: Option<(i64, usize)> = None;
    let mut i = 0;
    while i < gaps.len() {
        let j = gaps[i..].iter().take_while(|&&g| g == gaps[i]).count() + i;
        if best.is_none_or(|(_, n)| j - i > n) {
            best = Some((gaps[i], j - i));
        }
        i = j;
    }
    best.map(|(g, _)| g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_become_nan_and_step_is_the_common_gap() {
        // Steps of 60 s with the point at 180 missing.
        let s = TimeSeries::from_points(&[(0, 1.0), (60, 2.0), (120, 3.0), (240, 5.0)]).unwrap();
        assert_eq!(s.step(), 60);
        assert_eq!(s.len(), 5);
        assert_eq!(&s.values()[..3], &[1.0, 2.0, 3.0]);
        assert!(s.values()[3].is_nan());
        assert_eq!(s.values()[4], 5.0);
        assert_eq!(s.missing(), 1);
        assert_eq!(s.time_at(4), 240);
    }

    #[test]
    fn unsorted_duplicate_and_empty_are_errors_naming_the_point() {
        assert_eq!(TimeSeries::from_points(&[]), Err(SeriesError::Empty));
        assert_eq!(
            TimeSeries::from_points(&[(0, 1.0), (60, 1.0), (30, 1.0)]),
            Err(SeriesError::Unsorted {
                index: 2,
                ts: 30,
                prev: 60
            })
        );
        assert_eq!(
            TimeSeries::from_points(&[(0, 1.0), (0, 2.0)]),
            Err(SeriesError::Duplicate { index: 1, ts: 0 })
        );
    }

    #[test]
    fn windows_slide_and_report_coverage() {
        let s = TimeSeries::new(100, 10, vec![1.0, f64::NAN, 3.0, 4.0, 5.0]).unwrap();
        let w: Vec<_> = s.windows(2, 2).collect();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].start, 100);
        assert_eq!(w[0].coverage(), 0.5);
        assert_eq!(w[1].start, 120);
        assert_eq!(w[1].values, &[3.0, 4.0]);
        assert_eq!(s.tail(2), &[4.0, 5.0]);
    }
}
