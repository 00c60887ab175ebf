//! Novelty of the recent shape: the distance from the latest `dim` points to their `k` nearest
//! neighbours among the windows of the last `memory` points (after KNN-CAD, Burnaev & Ishimtsev
//! 2016).
//!
//! The other members judge one value at a time against a model; this one asks whether the
//! *pattern* of the last few points has been seen before, so a burst shape the series produces
//! every day is not news even when its values are extreme, and a never-seen wiggle is news even
//! when every value is in range. The distance is in the series' own units: the ensemble's
//! calibration makes it comparable across series. Reference windows end at least `dim` points
//! before the current one, so a window never matches a shifted copy of itself. O(memory · dim)
//! per point.

use std::collections::VecDeque;

use super::{Detector, Member, Reading, gate};

/// k-nearest-neighbour novelty of the last `dim` points.
#[derive(Debug, Clone)]
pub struct Novelty {
    dim: usize,
    k: usize,
    memory: usize,
    min_refs: usize,
    values: VecDeque<f64>,
}

impl Default for Novelty {
    /// Windows of 6 points, 3 neighbours, among the windows of the last 1000 points (tuned on
    /// NAB: 4, 6, 8, 10, 16 points; 1, 2, 3, 5 neighbours; 500, 1000, 2000, 3000 points).
    fn default() -> Self {
        Self::new(6, 3, 1000)
    }
}

impl Novelty {
    pub fn new(dim: usize, k: usize, memory: usize) -> Self {
        let dim = dim.max(1);
        let k = k.max(1);
        Self {
            dim,
            k,
            memory: memory.max(4 * dim + k),
            min_refs: (10 * k).max(30),
            values: VecDeque::new(),
        }
    }

    /// Mean Euclidean distance from the newest window to its `k` nearest reference windows.
    fn distance(&self) -> Option<f64> {
        let n = self.values.len();
        let d = self.dim;
        if n < 2 * d + self.min_refs {
            return None;
        }
        let newest = n - d;
        // Reference windows start at 0..=newest-d (ending before the newest window starts).
        let mut best = vec![f64::INFINITY; self.k];
        for start in 0..=newest - d {
            let mut sum = 0.0;
            for j in 0..d {
                let diff = self.values[start + j] - self.values[newest + j];
                sum += diff * diff;
                if sum >= best[self.k - 1] {
                    break;
                }
            }
            if sum < best[self.k - 1] {
                let at = best.partition_point(|&b| b <= sum);
                best.insert(at, sum);
                best.pop();
            }
        }
        Some(best.iter().map(|s| s.sqrt()).sum::<f64>() / self.k as f64)
    }
}

impl Member for Novelty {
    fn observe(&mut self, value: f64) -> Reading {
        self.values.push_back(value);
        if self.values.len() > self.memory {
            self.values.pop_front();
        }
        match self.distance() {
            // No noise model of its own: the tail is left to the ensemble's calibration, so alone
            // it reports the distance relative to the window's spread as a rough normal z.
            Some(raw) => Reading::Stat {
                raw,
                p: super::normal_two_sided(raw / self.spread()),
            },
            None => Reading::Quiet,
        }
    }
}

impl Novelty {
    /// Typical distance scale: √dim × the standard deviation of the remembered values.
    fn spread(&self) -> f64 {
        let n = self.values.len().max(1) as f64;
        let mean = self.values.iter().sum::<f64>() / n;
        let var = self.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let sd = var.sqrt();
        (sd * (self.dim as f64).sqrt())
            .max(1e-3 * mean.abs())
            .max(1e-9)
    }
}

impl Detector for Novelty {
    fn update(&mut self, value: f64) -> f64 {
        gate(value, self)
    }

    fn name(&self) -> &'static str {
        "novelty"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit;

    #[test]
    fn distance_by_hand() {
        let mut d = Novelty::new(2, 1, 100);
        // min_refs = max(10 × 1, 30) = 30: quiet until 2·2 + 30 = 34 values.
        for i in 0..34 {
            let r = d.observe((i % 2) as f64);
            assert_eq!(r == Reading::Quiet, i < 33, "{i}");
        }
        // Newest window [0, 1] (values 32, 33) has exact copies among the references.
        assert_eq!(d.distance(), Some(0.0));
        // Feed 5: newest window [1, 5]; nearest reference [0, 1] at √(1² + 4²) = √17 = 4.1231
        // ([1, 0] is at √(0 + 25) = 5).
        d.observe(5.0);
        assert!((d.distance().unwrap() - 17f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn spike_and_level_shift() {
        testkit::scores_spike_high(&mut Novelty::default());
        testkit::flags_level_shift_onset(&mut Novelty::default());
    }

    #[test]
    fn quiet_on_a_clean_season() {
        // Every 6-point shape recurs every 48 points, ~20 times within the 1000-point memory:
        // nearest-neighbour distances stay noise-sized.
        testkit::quiet_on_season(&mut Novelty::default());
    }
}
