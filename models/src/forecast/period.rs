//! When to look for a season, and on what: the seasonal forecasters keep a bounded history and
//! ask [`crate::season::detect_period`] at doubling checkpoints (64, 128, ... points, then every
//! `CAPACITY` points) until it finds one. Looking at every step would cost O(n²); looking once
//! would miss seasons that only show after a few days of data.

use std::collections::VecDeque;

/// Bounded history plus the period once found.
#[derive(Debug, Clone)]
pub struct PeriodFinder {
    history: VecDeque<f64>,
    seen: usize,
    next_check: usize,
    period: Option<usize>,
}

impl Default for PeriodFinder {
    fn default() -> Self {
        Self::new()
    }
}

impl PeriodFinder {
    /// Points kept; a daily season at a 5-minute step (288) fits with room for three periods.
    pub const CAPACITY: usize = 4096;
    const FIRST_CHECK: usize = 64;
    /// Periods shorter than this are more often noise than a season.
    const MIN_PERIOD: usize = 4;

    pub fn new() -> Self {
        Self {
            history: VecDeque::new(),
            seen: 0,
            next_check: Self::FIRST_CHECK,
            period: None,
        }
    }

    /// Records `value`; returns `Some(period)` exactly once, at the step the season is found.
    pub fn push(&mut self, value: f64) -> Option<usize> {
        if self.history.len() == Self::CAPACITY {
            self.history.pop_front();
        }
        self.history.push_back(value);
        self.seen += 1;
        if self.period.is_some() || self.seen < self.next_check {
            return None;
        }
        self.next_check = if self.seen < Self::CAPACITY {
            self.seen * 2
        } else {
            self.seen + Self::CAPACITY
        };
        let detrended = detrend(self.history.make_contiguous());
        let max = detrended.len() / 3;
        // A "peak" at the last lag searched is only the edge of a still-rising ACF (a period-24
        // wave seen through 64 points peaks at 21 that way); wait for more data instead.
        self.period =
            crate::season::detect_period(&detrended, Self::MIN_PERIOD, max).filter(|&p| p < max);
        self.period
    }

    pub fn period(&self) -> Option<usize> {
        self.period
    }

    /// The kept history, oldest first (the last point is the latest update).
    pub fn history(&mut self) -> &[f64] {
        self.history.make_contiguous()
    }
}

/// The values minus their least-squares line, so a trend does not pass for a long season.
fn detrend(values: &[f64]) -> Vec<f64> {
    let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &y) in values.iter().enumerate().filter(|(_, y)| !y.is_nan()) {
        let x = i as f64;
        n += 1.0;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    let var = sxx - sx * sx / n;
    let slope = if n >= 2.0 && var > 0.0 {
        (sxy - sx * sy / n) / var
    } else {
        0.0
    };
    let intercept = if n > 0.0 { (sy - slope * sx) / n } else { 0.0 };
    values
        .iter()
        .enumerate()
        .map(|(i, y)| y - intercept - slope * i as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_season_on_a_trend_at_a_checkpoint() {
        // Period 12 on a steep trend: 64 points hold five periods, so the first check finds it.
        let mut f = PeriodFinder::new();
        let mut found_at = None;
        for i in 0..200 {
            let v = 5.0 * i as f64 + 10.0 * (i as f64 * std::f64::consts::TAU / 12.0).sin();
            if let Some(p) = f.push(v) {
                found_at = Some((i, p));
            }
        }
        assert_eq!(found_at, Some((63, 12)));
        assert_eq!(f.period(), Some(12));
    }

    #[test]
    fn an_acf_still_rising_at_the_last_lag_is_not_a_season() {
        // Period 24 through 64 points: the search stops at lag 21 where the ACF is still
        // climbing; the season is only accepted at the 128-point check (lags up to 42).
        let mut f = PeriodFinder::new();
        let mut found_at = None;
        for i in 0..200 {
            let v = (i as f64 * std::f64::consts::TAU / 24.0).sin();
            if let Some(p) = f.push(v) {
                found_at = Some((i, p));
            }
        }
        assert_eq!(found_at, Some((127, 24)));
    }

    #[test]
    fn a_pure_trend_has_no_season() {
        let mut f = PeriodFinder::new();
        for i in 0..300 {
            assert_eq!(f.push(i as f64), None);
        }
        assert_eq!(f.period(), None);
    }
}
