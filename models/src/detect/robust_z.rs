//! Robust z-score: how many robust standard deviations (MAD) the point lies from the median of
//! the previous `window` present points.
//!
//! Median and MAD ignore up to half the window being anomalous, so a spike does not widen its
//! own yardstick the way a mean/std window does. The window is kept sorted (binary-search insert
//! and remove, O(window) memmove) so median and MAD cost O(window) per point, not a sort.

use std::collections::VecDeque;

use super::{Detector, Member, Reading, gate, normal_two_sided};
use crate::stats::{mad_sorted, median_sorted};

/// Sliding median/MAD z-score detector.
#[derive(Debug, Clone)]
pub struct RobustZ {
    window: usize,
    min_points: usize,
    arrival: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl Default for RobustZ {
    /// 1 day of 5-minute points; 30 points before it speaks.
    fn default() -> Self {
        Self::new(288, 30)
    }
}

impl RobustZ {
    /// `window` present points of history; quiet until `min_points` (≥ 3) have been seen.
    pub fn new(window: usize, min_points: usize) -> Self {
        let window = window.max(3);
        Self {
            window,
            min_points: min_points.clamp(3, window),
            arrival: VecDeque::with_capacity(window + 1),
            sorted: Vec::with_capacity(window + 1),
        }
    }

    /// The robust z of `value` against the current window, without learning it.
    pub(crate) fn z(&self, value: f64) -> Option<f64> {
        if self.arrival.len() < self.min_points {
            return None;
        }
        let med = median_sorted(&self.sorted)?;
        let mad = mad_sorted(&self.sorted)?;
        Some((value - med).abs() / scale_floor(mad, med, &self.sorted))
    }

    fn learn(&mut self, value: f64) {
        let at = self.sorted.partition_point(|&x| x < value);
        self.sorted.insert(at, value);
        self.arrival.push_back(value);
        if self.arrival.len() > self.window
            && let Some(old) = self.arrival.pop_front()
        {
            let at = self.sorted.partition_point(|&x| x < old);
            self.sorted.remove(at);
        }
    }
}

/// The MAD, made safe for flat windows (MAD 0 is common for counters that mostly sit at 0):
/// then the mean absolute deviation from the median (× 1.2533, its normal-consistency factor)
/// stands in, and the result is floored at 1e-3 of the median's magnitude so an all-equal window
/// does not make every wiggle infinitely anomalous.
fn scale_floor(mad: f64, med: f64, sorted: &[f64]) -> f64 {
    let spread = if mad > 0.0 {
        mad
    } else {
        let n = sorted.len().max(1) as f64;
        1.2533 * sorted.iter().map(|x| (x - med).abs()).sum::<f64>() / n
    };
    spread.max(1e-3 * med.abs()).max(1e-9)
}

impl Member for RobustZ {
    fn observe(&mut self, value: f64) -> Reading {
        let reading = match self.z(value) {
            Some(z) => Reading::Stat {
                raw: z,
                p: normal_two_sided(z),
            },
            None => Reading::Quiet,
        };
        self.learn(value);
        reading
    }
}

impl Detector for RobustZ {
    fn update(&mut self, value: f64) -> f64 {
        gate(value, self)
    }

    fn name(&self) -> &'static str {
        "robust-z"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit;

    #[test]
    fn z_by_hand() {
        let mut d = RobustZ::new(5, 3);
        for v in [10.0, 12.0, 11.0, 9.0, 13.0] {
            d.update(v);
        }
        // Window 9 10 11 12 13: median 11, |dev| 2 1 0 1 2 → median 1 → MAD 1.4826.
        // Floor 1e-3 × 11 = 0.011 does not bind → scale 1.4826.
        // z(20) = 9 / 1.4826 = 6.0704.
        let z = d.z(20.0).unwrap();
        assert!((z - 9.0 / 1.4826).abs() < 1e-9, "{z}");
        // Sliding: feeding 20 evicts 10 → window 9 11 12 13 20, median 12.
        d.update(20.0);
        assert_eq!(median_sorted(&d.sorted), Some(12.0));
    }

    #[test]
    fn flat_window_uses_the_floor() {
        let mut d = RobustZ::new(10, 3);
        for _ in 0..10 {
            d.update(100.0);
        }
        // MAD 0, mean |dev| 0 → floor 1e-3 × 100 = 0.1: z(100.5) = 0.5 / 0.1 = 5.
        assert!((d.z(100.5).unwrap() - 5.0).abs() < 1e-9);
        // Nine 0s and one 10: median 0, MAD 0 → 1.2533 × 10/10 = 1.2533; z(5) = 5/1.2533.
        let mut d = RobustZ::new(10, 3);
        for i in 0..10 {
            d.update(if i == 4 { 10.0 } else { 0.0 });
        }
        assert!((d.z(5.0).unwrap() - 5.0 / 1.2533).abs() < 1e-9);
    }

    #[test]
    fn spike_level_shift_and_season() {
        testkit::scores_spike_high(&mut RobustZ::default());
        testkit::flags_level_shift_onset(&mut RobustZ::default());
    }
}
