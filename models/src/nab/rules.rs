//! NAB's per-row rules: probation, which rows a window covers, and what one detection at a row
//! is worth before the profile's weights are applied.
//!
//! Everything here is independent of the threshold, so a file is prepared once and the
//! threshold sweep only has to sort and add.

use super::NabError;
use std::ops::Range;

/// NAB's scaled sigmoid: 2/(1+e^{5p}) − 1, clamped to −1 beyond p = 3.
///
/// It falls from +1 (p → −∞) through 0 (p = 0) to −1, so detections early in a window earn
/// almost the full reward and false positives just after a window cost little (the window's end
/// is a judgement call by the labeller).
pub fn scaled_sigmoid(p: f64) -> f64 {
    if p > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * p).exp()) - 1.0
    }
}

/// Rows at the start of a file that are never scored: detectors need them to learn.
pub fn probation_rows(n: usize) -> usize {
    // floor(0.15·n) with integers, so no float rounding decides a boundary row.
    (n * 15 / 100).min(750)
}

/// What a detection at one scored row is worth, without the profile's weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    /// Inside window `window` (its index within the file): the reward in (0, 1], 1 at the
    /// window's first row, falling towards its end.
    InWindow { window: usize, reward: f64 },
    /// Outside every window: the cost in [−1, 0), multiplied by A_FP.
    Outside { cost: f64 },
}

/// One file's windows as row ranges, and the role of every row after probation.
#[derive(Debug, Clone)]
pub struct PreparedFile {
    /// Row range of each window, in time order (possibly empty when no row falls inside).
    pub windows: Vec<Range<usize>>,
    /// Number of rows not scored at the start.
    pub probation: usize,
    /// `roles[i - probation]` is the role of row `i`.
    pub roles: Vec<Role>,
}

impl PreparedFile {
    /// Maps `windows` (inclusive `[start, end]`, unix seconds) onto the rows of `timestamps`: a
    /// window covers the rows whose timestamp lies inside it. Rows are scored in file order, and
    /// timestamps need not be strictly increasing (NAB's own corpus repeats some and steps back
    /// once), but each window's rows must be consecutive and the windows must not overlap.
    pub fn new(name: &str, timestamps: &[i64], windows: &[(i64, i64)]) -> Result<Self, NabError> {
        let mut sorted = windows.to_vec();
        sorted.sort_unstable();
        if let Some(&(start, end)) = sorted.iter().find(|(s, e)| s > e) {
            return Err(NabError::InvertedWindow {
                file: name.to_string(),
                start,
                end,
            });
        }
        if let Some(pair) = sorted.windows(2).find(|p| p[1].0 <= p[0].1) {
            return Err(NabError::OverlappingWindows {
                file: name.to_string(),
                first: pair[0],
                second: pair[1],
            });
        }
        // (first row, last row, rows seen) per window.
        let mut seen: Vec<Option<(usize, usize, usize)>> = vec![None; sorted.len()];
        for (i, &t) in timestamps.iter().enumerate() {
            let k = sorted.partition_point(|w| w.0 <= t);
            if k > 0 && t <= sorted[k - 1].1 {
                let entry = seen[k - 1].get_or_insert((i, i, 0));
                entry.1 = i;
                entry.2 += 1;
            }
        }
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(sorted.len());
        let mut covered_until = 0;
        for (k, s) in seen.iter().enumerate() {
            let range = match *s {
                Some((first, last, count)) => {
                    if count != last - first + 1 || first < covered_until {
                        return Err(NabError::ScatteredWindow {
                            file: name.to_string(),
                            window: sorted[k],
                        });
                    }
                    covered_until = last + 1;
                    first..last + 1
                }
                // No row inside: the window can only be missed. Placing the empty range where
                // the window would start keeps the ranges in row order.
                None => covered_until..covered_until,
            };
            ranges.push(range);
        }
        let n = timestamps.len();
        let probation = probation_rows(n);
        let mut roles = Vec::with_capacity(n - probation);
        // `next` is the first window not yet entered, `prev` the last non-empty window passed.
        let (mut next, mut prev): (usize, Option<&Range<usize>>) = (0, None);
        for i in probation..n {
            while next < ranges.len() && ranges[next].end <= i {
                if !ranges[next].is_empty() {
                    prev = Some(&ranges[next]);
                }
                next += 1;
            }
            let role = match ranges.get(next) {
                Some(w) if w.contains(&i) => {
                    let width = w.len() as f64;
                    let right = (w.end - 1) as f64;
                    let position = -(right - i as f64 + 1.0) / width;
                    Role::InWindow {
                        window: next,
                        reward: scaled_sigmoid(position) / scaled_sigmoid(-1.0),
                    }
                }
                _ => Role::Outside {
                    cost: match prev {
                        None => -1.0,
                        Some(w) => {
                            let right = w.end - 1;
                            // A one-row window has no width to fade over (the rule divides by
                            // w − 1 = 0): every later false positive costs the full A_FP, the
                            // limit of the sigmoid as the denominator shrinks to zero.
                            if w.len() == 1 {
                                -1.0
                            } else {
                                scaled_sigmoid((i - right) as f64 / (w.len() - 1) as f64)
                            }
                        }
                    },
                },
            };
            roles.push(role);
        }
        Ok(Self {
            windows: ranges,
            probation,
            roles,
        })
    }

    /// The role of row `i`, or `None` during probation.
    pub fn role(&self, i: usize) -> Option<Role> {
        i.checked_sub(self.probation)
            .and_then(|k| self.roles.get(k))
            .copied()
    }
}
