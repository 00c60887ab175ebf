//! Choosing one threshold per profile for a whole corpus, exactly.
//!
//! Lowering the threshold only ever adds detections, so sweeping the distinct scores from the
//! highest down and keeping, per window, the best reward seen so far (the earliest detection's,
//! as the reward falls across a window) gives the corpus total at every candidate threshold
//! after one sort: O(n log n) for n scored rows, and all profiles share the sweep.

use super::CostProfile;
use super::rules::{PreparedFile, Role};

/// The threshold that maximises each profile's corpus total, in `profiles` order. `None` means
/// detecting nothing scores best (a threshold above every score). Among equal totals the
/// highest threshold wins. `scores[f]` must have one entry per row of `files[f]`; NaN scores
/// never count as detections.
pub fn best_thresholds(
    files: &[PreparedFile],
    scores: &[&[f64]],
    profiles: &[CostProfile],
) -> Vec<Option<f64>> {
    let mut offsets = Vec::with_capacity(files.len());
    let mut window_count = 0;
    for f in files {
        offsets.push(window_count);
        window_count += f.windows.len();
    }
    // (score, global window index or usize::MAX, reward or cost)
    let mut candidates: Vec<(f64, usize, f64)> = Vec::new();
    for ((file, &scores), &offset) in files.iter().zip(scores).zip(&offsets) {
        for (k, role) in file.roles.iter().enumerate() {
            let Some(&score) = scores.get(file.probation + k) else {
                break;
            };
            if score.is_nan() {
                continue;
            }
            candidates.push(match *role {
                Role::InWindow { window, reward } => (score, offset + window, reward),
                Role::Outside { cost } => (score, usize::MAX, cost),
            });
        }
    }
    candidates.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));

    // Rewards are > 0, so 0 marks a window not yet detected.
    let mut best_reward = vec![0.0_f64; window_count];
    let (mut reward_sum, mut detected, mut cost_sum) = (0.0_f64, 0_usize, 0.0_f64);
    let total = |p: &CostProfile, reward_sum: f64, detected: usize, cost_sum: f64| {
        p.a_tp * reward_sum - p.a_fn * (window_count - detected) as f64 + p.a_fp * cost_sum
    };
    let mut best: Vec<(f64, Option<f64>)> = profiles
        .iter()
        .map(|p| (total(p, 0.0, 0, 0.0), None))
        .collect();
    let mut i = 0;
    while i < candidates.len() {
        let threshold = candidates[i].0;
        while i < candidates.len() && candidates[i].0 == threshold {
            let (_, window, value) = candidates[i];
            if window == usize::MAX {
                cost_sum += value;
            } else if value > best_reward[window] {
                if best_reward[window] == 0.0 {
                    detected += 1;
                }
                reward_sum += value - best_reward[window];
                best_reward[window] = value;
            }
            i += 1;
        }
        for (p, b) in profiles.iter().zip(best.iter_mut()) {
            let t = total(p, reward_sum, detected, cost_sum);
            if t > b.0 {
                *b = (t, Some(threshold));
            }
        }
    }
    best.into_iter().map(|(_, t)| t).collect()
}
