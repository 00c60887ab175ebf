//! The sorted copy of a sliding window, for the peaks-over-threshold tail of [`Likelihood`]:
//! insert the newest value, remove the one leaving the window, and ask for a rank, a quantile
//! and the values above it.
//!
//! One sorted `Vec` of the 4,000-point window moved on average half of it (16 KB) on every
//! insert and again on every remove; with 30,000 detectors nothing of that is in cache, and it
//! was about 40 % of the streaming step's time. Here the values are kept in sorted blocks of at most
//! `BLOCK` values (the blocks in order, each sorted, all values of a block ≤ all of the next),
//! so an insert or a remove moves at most one block (512 bytes) and a rank walks the block
//! lengths: O(√n)-like with n = 4,000, about a hundred short steps instead of thousands.
//!
//! The multiset is exactly the one sorted `Vec` would hold, in the same order (a value goes
//! before its equals, a removal takes the first equal one), so every answer of the tail is the
//! same bits (`tests::answers_are_those_of_one_sorted_vec`).
//!
//! [`Likelihood`]: super::likelihood::Likelihood

/// Values per block at most. A full block hands a value to a neighbour with room, or else
/// splits into two halves; a block that falls below a quarter merges with a neighbour that has
/// room. 64 f64 are 512 bytes, eight cache lines: small enough that the move inside a block is
/// cheap, large enough that a 4,000-value window is about a hundred blocks.
const BLOCK: usize = 64;

/// Spare places a block keeps at most beyond its values, one cache line. A block grows by this
/// much when full and gives back what it has beyond it after removals. Measured per `likelihood`
/// detector once its windows are full (`PASS_ONCE=memory`, docs/benchmarks-forecast.md): 75.0 KB
/// with the one sorted `Vec`, 88.5 KB with blocks that each kept all [`BLOCK`] places (about
/// 70 % used), 84.5 KB with this slack.
const SLACK: usize = 8;

/// Makes room for one more value in a block that is not full.
fn grow(block: &mut Vec<f64>) {
    if block.len() == block.capacity() {
        block.reserve_exact(SLACK.min(BLOCK.saturating_sub(block.len())).max(1));
    }
}

/// Gives back a block's places beyond its values and one cache line.
fn trim(block: &mut Vec<f64>) {
    if block.capacity() > block.len() + 2 * SLACK {
        block.shrink_to(block.len() + SLACK);
    }
}

/// A sorted multiset of f64 held as sorted blocks.
#[derive(Debug, Clone, Default)]
pub struct SortedWindow {
    blocks: Vec<Vec<f64>>,
    len: usize,
}

impl SortedWindow {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block a value `x` belongs to: the first whose largest value is ≥ x (every block
    /// before it holds only values < x), or the last block when x is above them all.
    fn block_for(&self, x: f64) -> usize {
        let b = self
            .blocks
            .partition_point(|block| block.last().is_some_and(|&last| last < x));
        b.min(self.blocks.len().saturating_sub(1))
    }

    /// Adds `x` before any values equal to it.
    pub fn insert(&mut self, x: f64) {
        if self.blocks.is_empty() {
            self.blocks.push(Vec::with_capacity(SLACK));
        }
        let b = self.block_for(x);
        let at = self.blocks[b].partition_point(|&v| v < x);
        let room = |i: usize| self.blocks.get(i).is_some_and(|block| block.len() < BLOCK);
        if room(b) {
            let block = &mut self.blocks[b];
            grow(block);
            block.insert(at, x);
        } else if room(b + 1) {
            self.spill_right(b, at, x);
        } else if b > 0 && room(b - 1) {
            self.spill_left(b, at, x);
        } else {
            let block = &mut self.blocks[b];
            let mut right = block.split_off(BLOCK / 2);
            if at <= BLOCK / 2 {
                block.insert(at, x);
            } else {
                grow(&mut right);
                right.insert(at - BLOCK / 2, x);
            }
            trim(block);
            self.blocks.insert(b + 1, right);
        }
        self.len += 1;
    }

    /// Inserts `x` at `at` of the full block `b` by handing its largest value to the next block
    /// (which has room): a split only when both neighbours are full keeps the blocks fuller, as
    /// in a B*-tree (per `likelihood` detector, with all 64 places kept per block: 97.3 KB when
    /// a full block always split, 88.5 KB with this).
    fn spill_right(&mut self, b: usize, at: usize, x: f64) {
        let (left, right) = self.blocks.split_at_mut(b + 1);
        let (block, next) = (&mut left[b], &mut right[0]);
        grow(next);
        if at == block.len() {
            next.insert(0, x);
        } else if let Some(last) = block.pop() {
            next.insert(0, last);
            block.insert(at, x);
        }
    }

    /// The mirror of [`Self::spill_right`]: the smallest value moves to the previous block.
    fn spill_left(&mut self, b: usize, at: usize, x: f64) {
        let (left, right) = self.blocks.split_at_mut(b);
        let (prev, block) = (&mut left[b - 1], &mut right[0]);
        grow(prev);
        if at == 0 {
            prev.push(x);
        } else {
            prev.push(block.remove(0));
            block.insert(at - 1, x);
        }
    }

    /// Removes the first value equal to `x` (under `<`, so 0.0 and −0.0 are equal, as in a
    /// sorted `Vec`'s `partition_point`); returns whether there was one.
    pub fn remove(&mut self, x: f64) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        let b = self.block_for(x);
        let block = &mut self.blocks[b];
        let at = block.partition_point(|&v| v < x);
        if block.get(at).is_none_or(|&v| v != x) {
            return false;
        }
        block.remove(at);
        trim(block);
        self.len -= 1;
        let small = block.len();
        if small == 0 {
            self.blocks.remove(b);
        } else if small < BLOCK / 4 {
            self.merge_small(b);
        }
        true
    }

    /// Folds a block that has become small into a neighbour with room for it, keeping the
    /// block count near n / 32 however the removals fall.
    fn merge_small(&mut self, b: usize) {
        let small = self.blocks[b].len();
        if b + 1 < self.blocks.len() && self.blocks[b + 1].len() + small <= BLOCK {
            let next = self.blocks.remove(b + 1);
            self.blocks[b].reserve_exact(next.len());
            self.blocks[b].extend_from_slice(&next);
        } else if b > 0 && self.blocks[b - 1].len() + small <= BLOCK {
            let this = self.blocks.remove(b);
            self.blocks[b - 1].reserve_exact(this.len());
            self.blocks[b - 1].extend_from_slice(&this);
        }
    }

    /// The value at sorted position `i` (0 = smallest).
    pub fn get(&self, mut i: usize) -> Option<f64> {
        for block in &self.blocks {
            if i < block.len() {
                return Some(block[i]);
            }
            i -= block.len();
        }
        None
    }

    /// How many values are < x.
    pub fn count_below(&self, x: f64) -> usize {
        let b = self.block_for(x);
        let before: usize = self.blocks[..b].iter().map(Vec::len).sum();
        before
            + self
                .blocks
                .get(b)
                .map_or(0, |block| block.partition_point(|&v| v < x))
    }

    /// The values from sorted position `i` on, ascending.
    pub fn from(&self, mut i: usize) -> impl Iterator<Item = f64> + '_ {
        let mut first = self.blocks.len();
        for (b, block) in self.blocks.iter().enumerate() {
            if i < block.len() {
                first = b;
                break;
            }
            i -= block.len();
        }
        let head = self.blocks.get(first).map_or(&[][..], |block| &block[i..]);
        let rest = self.blocks.get(first + 1..).unwrap_or(&[]);
        head.iter().chain(rest.iter().flatten()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn a_small_window_by_hand() {
        let mut w = SortedWindow::default();
        for x in [3.0, 1.0, 2.0, 2.0] {
            w.insert(x);
        }
        // Sorted 1 2 2 3.
        assert_eq!(w.len(), 4);
        assert_eq!(
            (0..5).map(|i| w.get(i)).collect::<Vec<_>>(),
            [Some(1.0), Some(2.0), Some(2.0), Some(3.0), None]
        );
        assert_eq!(w.count_below(2.0), 1);
        assert_eq!(w.count_below(2.5), 3);
        assert_eq!(w.count_below(9.0), 4);
        assert_eq!(w.from(2).collect::<Vec<_>>(), [2.0, 3.0]);
        assert!(w.remove(2.0));
        assert!(!w.remove(5.0));
        assert_eq!(w.from(0).collect::<Vec<_>>(), [1.0, 2.0, 3.0]);
    }

    /// A sliding window of 4,000 values (the calibration's), with ties and level shifts, against
    /// one sorted `Vec` updated the way `Likelihood` used to: after every step the whole
    /// contents, ranks, quantiles and tails must be the same bits.
    #[test]
    fn answers_are_those_of_one_sorted_vec() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut w = SortedWindow::default();
        let mut flat: Vec<f64> = Vec::new();
        let mut order = std::collections::VecDeque::new();
        for t in 0..12_000 {
            let level = [0.0, 50.0, -3.0][(t / 3_000) % 3];
            let x: f64 = match rng.random_range(0..4) {
                0 => (rng.random::<f64>() * 6.0).round(),
                1 => -0.0,
                _ => level + rng.random::<f64>() * 10.0,
            };
            w.insert(x);
            let at = flat.partition_point(|&v| v < x);
            flat.insert(at, x);
            order.push_back(x);
            if order.len() > 4_000
                && let Some(old) = order.pop_front()
            {
                assert!(w.remove(old));
                let at = flat.partition_point(|&v| v < old);
                flat.remove(at);
            }
            assert_eq!(w.len(), flat.len());
            if t % 97 == 0 {
                let all: Vec<u64> = w.from(0).map(f64::to_bits).collect();
                let want: Vec<u64> = flat.iter().map(|v| v.to_bits()).collect();
                assert_eq!(all, want, "t {t}");
                assert!(w.blocks.iter().all(|b| {
                    !b.is_empty() && b.capacity() <= BLOCK && b.capacity() <= b.len() + 2 * SLACK
                }));
            }
            let q = rng.random::<f64>() * 60.0 - 5.0;
            assert_eq!(w.count_below(q), flat.partition_point(|&v| v < q), "t {t}");
            let i = (0.9 * flat.len() as f64) as usize;
            assert_eq!(w.get(i).map(f64::to_bits), flat.get(i).map(|v| v.to_bits()));
            let sum: f64 = w.from(i).sum();
            assert_eq!(
                sum.to_bits(),
                flat[i..].iter().sum::<f64>().to_bits(),
                "t {t}"
            );
        }
        // About n / 32 to n / 64 blocks, not thousands: merging keeps them full.
        assert!(w.blocks.len() <= 4_000 / 16, "{} blocks", w.blocks.len());
    }
}
