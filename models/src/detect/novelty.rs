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

use super::{Detector, Member, Reading, gate};

/// k-nearest-neighbour novelty of the last `dim` points.
#[derive(Debug, Clone)]
pub struct Novelty {
    dim: usize,
    k: usize,
    memory: usize,
    min_refs: usize,
    /// The remembered values are `buf[start..]`, oldest first, always one contiguous slice (the
    /// distance loop is the detector's whole cost, and a ring buffer's wrap-around test in its
    /// innermost line doubled it). The slice slides right as values arrive; once it has slid
    /// a quarter of `memory` places it is copied back to the front: four values copied per
    /// value remembered, and at most 1.25 × `memory` values held (a ring holds 1 ×).
    buf: Vec<f64>,
    start: usize,
    /// The k smallest squared distances so far, ascending (kept to spare an allocation a point).
    best: Vec<f64>,
}

impl Novelty {
    /// Points per window of the default setting.
    pub const WINDOW: usize = 6;
}

impl Default for Novelty {
    /// Windows of 6 points, 3 neighbours, among the windows of the last 1000 points (tuned on
    /// NAB: 4, 6, 8, 10, 16 points; 1, 2, 3, 5 neighbours; 500, 1000, 2000, 3000 points).
    fn default() -> Self {
        Self::new(Self::WINDOW, 3, 1000)
    }
}

/// Reference windows compared side by side: each lane sums its own window's squares in the
/// same order as a one-at-a-time loop, so the sums are bit-for-bit those of the plain loop,
/// but the lanes are independent and the compiler can keep them in vector registers.
const LANES: usize = 8;

impl Novelty {
    pub fn new(dim: usize, k: usize, memory: usize) -> Self {
        let dim = dim.max(1);
        let k = k.max(1);
        Self {
            dim,
            k,
            memory: memory.max(4 * dim + k),
            min_refs: (10 * k).max(30),
            buf: Vec::new(),
            start: 0,
            best: Vec::new(),
        }
    }

    fn values(&self) -> &[f64] {
        &self.buf[self.start..]
    }

    fn remember(&mut self, value: f64) {
        if self.buf.len() - self.start == self.memory {
            self.start += 1;
        }
        if self.start >= (self.memory / 4).max(1) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() == self.buf.capacity() {
            // Grow by doubling as `Vec` would, but never past what the slide can hold, so the
            // buffer's capacity is the 1.25 × `memory` above, not the next power of two.
            let limit = self.memory + (self.memory / 4).max(1);
            let room = limit.saturating_sub(self.buf.len()).max(1);
            self.buf.reserve_exact(self.buf.len().max(8).min(room));
        }
        self.buf.push(value);
    }

    /// Offers one reference window's squared distance to the k best (ascending; a tie goes
    /// after its equals). Shifted by hand: `Vec::insert` calls `memmove` for the two or three
    /// values it moves, which was an eighth of the detector's time.
    fn offer(best: &mut [f64], sum: f64) {
        let Some(&kth) = best.last() else {
            return;
        };
        if sum >= kth {
            return;
        }
        let mut i = best.len() - 1;
        while i > 0 && best[i - 1] > sum {
            best[i] = best[i - 1];
            i -= 1;
        }
        best[i] = sum;
    }

    /// Mean Euclidean distance from the newest window to its `k` nearest reference windows.
    ///
    /// Every reference window's full squared distance is summed (no early abandoning): the k
    /// smallest sums do not depend on the order or on abandoning, and a branch per term cost
    /// more than the terms it skipped.
    fn distance(&mut self) -> Option<f64> {
        let d = self.dim;
        let n = self.buf.len() - self.start;
        if n < 2 * d + self.min_refs {
            return None;
        }
        let mut best = std::mem::take(&mut self.best);
        best.clear();
        best.resize(self.k, f64::INFINITY);
        let v = self.values();
        let newest = n - d;
        let query = &v[newest..];
        // Reference windows start at 0..=last, ending before the newest window starts.
        let last = newest - d;
        let mut s = 0;
        while s + LANES <= last + 1 {
            let mut acc = [0.0f64; LANES];
            for (j, &q) in query.iter().enumerate() {
                let refs = &v[s + j..s + j + LANES];
                for (a, &r) in acc.iter_mut().zip(refs) {
                    let diff = r - q;
                    *a += diff * diff;
                }
            }
            for sum in acc {
                Self::offer(&mut best, sum);
            }
            s += LANES;
        }
        for start in s..=last {
            let mut sum = 0.0;
            for (j, &q) in query.iter().enumerate() {
                let diff = v[start + j] - q;
                sum += diff * diff;
            }
            Self::offer(&mut best, sum);
        }
        let mean = best.iter().map(|s| s.sqrt()).sum::<f64>() / self.k as f64;
        self.best = best;
        Some(mean)
    }
}

impl Member for Novelty {
    fn observe(&mut self, value: f64) -> Reading {
        self.remember(value);
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

    /// The distance without its rough tail: the spread it needs is a pass over the whole
    /// memory, a fifth of the detector's time, and the ensemble calibrates the distance itself.
    fn observe_raw(&mut self, value: f64) -> Option<f64> {
        self.remember(value);
        self.distance()
    }
}

impl Novelty {
    /// Typical distance scale: √dim × the standard deviation of the remembered values.
    fn spread(&self) -> f64 {
        let values = self.values();
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
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

    /// The one-window-at-a-time loop the detector started with (early abandoning, a sorted
    /// insert), over the remembered values: the reference the lane loop must match exactly.
    fn plain_distance(values: &[f64], d: usize, k: usize) -> f64 {
        let newest = values.len() - d;
        let mut best = vec![f64::INFINITY; k];
        for start in 0..=newest - d {
            let mut sum = 0.0;
            for j in 0..d {
                let diff = values[start + j] - values[newest + j];
                sum += diff * diff;
                if sum >= best[k - 1] {
                    break;
                }
            }
            if sum < best[k - 1] {
                let at = best.partition_point(|&b| b <= sum);
                best.insert(at, sum);
                best.pop();
            }
        }
        best.iter().map(|s| s.sqrt()).sum::<f64>() / k as f64
    }

    #[test]
    fn lanes_and_the_sliding_buffer_give_the_plain_loops_distances_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        // Window lengths around and across the lane width, several k, and a short memory so the
        // buffer slides back to its front many times; values with ties (rounded) and a level
        // shift, so equal distances and changing neighbours both occur.
        for (dim, k, memory) in [(1, 1, 40), (3, 2, 57), (6, 3, 100), (8, 5, 90), (11, 4, 64)] {
            let mut d = Novelty::new(dim, k, memory);
            let mut seen: Vec<f64> = Vec::new();
            for t in 0..700 {
                let level = if t > 350 { 20.0 } else { 0.0 };
                let v = level + (rng.random::<f64>() * 8.0).round();
                d.remember(v);
                seen.push(v);
                assert!(
                    d.buf.capacity() <= d.memory + (d.memory / 4).max(1),
                    "dim {dim} t {t}"
                );
                let kept = &seen[seen.len().saturating_sub(d.memory)..];
                assert_eq!(d.values(), kept, "dim {dim} t {t}");
                let got = d.distance();
                if kept.len() < 2 * dim + d.min_refs {
                    assert_eq!(got, None);
                } else {
                    let want = plain_distance(kept, dim, k);
                    assert_eq!(
                        got.map(f64::to_bits),
                        Some(want.to_bits()),
                        "dim {dim} t {t}"
                    );
                }
            }
        }
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
