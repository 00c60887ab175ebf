//! Cross-sectional peer comparison: which of N peers (pods of one workload, canary vs stable)
//! is worse than the others, and how strongly — "the one bad pod".
//!
//! Each peer is compared with the *other* peers (leave-one-out): per feature, its robust z is
//! (x − median of the others) / scale, where the scale is the others' MAD floored at 10 % of the
//! others' median magnitude (and 10 % of the mean magnitude of all peers, and 1e-12). The
//! leave-one-out reference is what makes N = 2 work: with two pods, the median of both sits half
//! way and MAD says they are equally odd, whereas "the other pod" is a clean reference, and the
//! relative floor turns "10× the other's error rate" into z = 90 while 5 % jitter stays z = 0.5.
//! It is also robust to a bad *group*: the others' median stays healthy while bad peers are at
//! most half of the others.
//!
//! Beyond that breakdown point (most peers bad — a rollout that reached 6 of 10 pods) the median
//! *is* the bad group and leave-one-out sees nothing. That is where clustering serves: 2-means
//! (linfa) on robustly standardised features splits the peers into two groups, and if the split
//! is clean on some feature — the empty gap between the groups is large against the spread
//! inside them (same 10 % floor) — every member of the worse group is flagged with that gap as
//! its deviation, whatever the group's size. A single outlier is left to leave-one-out (groups of
//! one are ignored), and a continuous spread of healthy values has no gap, so it is not split
//! into "good" and "bad". Two genuinely different groups (pods on a slow node) are flagged, which
//! is the point. K-means runs with linfa's fixed seed, so results are deterministic.
//!
//! The score is the tail probability of the worst feature's z, Bonferroni-corrected for the number
//! of features compared, on the detectors' log scale ([`score_from_tail`]): z = 3 with one
//! feature → p = 0.00135 → 0.29; z ≥ 6.4 → 1.

use super::{normal_upper, score_from_tail};
use std::collections::BTreeMap;

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::Array2;

use crate::stats::{mad, median};

/// One finding per peer (see [`compare`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerFinding {
    pub index: usize,
    pub score: f64,
    pub feature: usize,
    pub deviation: f64,
}

/// Relative floor on the peer scale: differences under ~10 % of the typical value are noise.
const REL_FLOOR: f64 = 0.1;

/// One finding per peer, same order as input. Features are oriented so that higher = worse
/// (caller's job). score in `[0, 1]`: how strongly this peer is an outlier (worse side only).
/// `feature` = index of its most deviant feature, `deviation` = that feature's robust z.
/// NaN features are ignored. Robust to N = 2 and to all-equal inputs (all scores 0).
pub fn compare(peers: &[Vec<f64>]) -> Vec<PeerFinding> {
    let width = peers.iter().map(Vec::len).max().unwrap_or(0);
    let usable = |x: f64| x.is_finite().then_some(x);
    // Mean magnitude of each feature over all peers: the floor's anchor when the others' median
    // is 0 (e.g. every other pod has no errors).
    let magnitude: Vec<f64> = (0..width)
        .map(|f| {
            let vals: Vec<f64> = peers
                .iter()
                .filter_map(|p| p.get(f).copied().and_then(usable))
                .collect();
            if vals.is_empty() {
                0.0
            } else {
                vals.iter().map(|x| x.abs()).sum::<f64>() / vals.len() as f64
            }
        })
        .collect();
    let group = worse_group(peers, width, &magnitude);
    peers
        .iter()
        .enumerate()
        .map(|(index, peer)| {
            let mut worst: Option<(usize, f64)> = None;
            let mut compared = 0usize;
            for (f, &x) in peer.iter().enumerate() {
                let Some(x) = usable(x) else { continue };
                let others: Vec<f64> = peers
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != index)
                    .filter_map(|(_, p)| p.get(f).copied().and_then(usable))
                    .collect();
                let (Some(m), Some(s)) = (median(&others), mad(&others)) else {
                    continue;
                };
                let scale = s
                    .max(REL_FLOOR * m.abs())
                    .max(REL_FLOOR * magnitude[f])
                    .max(1e-12);
                let z = (x - m) / scale;
                compared += 1;
                if worst.is_none_or(|(_, w)| z > w) {
                    worst = Some((f, z));
                }
            }
            if let Some(&(f, z)) = group.get(&index)
                && worst.is_none_or(|(_, w)| z > w)
            {
                worst = Some((f, z));
            }
            let (feature, deviation) = worst.unwrap_or((0, 0.0));
            let score = if deviation > 0.0 {
                score_from_tail((normal_upper(deviation) * compared as f64).min(1.0))
            } else {
                0.0
            };
            PeerFinding {
                index,
                score,
                feature,
                deviation,
            }
        })
        .collect()
}

/// Members of a cleanly separated worse group (2-means), each with (feature, gap z). Empty when
/// there are fewer than 4 peers, no clean split, or a group of fewer than 2.
fn worse_group(
    peers: &[Vec<f64>],
    width: usize,
    magnitude: &[f64],
) -> BTreeMap<usize, (usize, f64)> {
    let n = peers.len();
    let mut out = BTreeMap::new();
    if n < 4 || width == 0 {
        return out;
    }
    // Robustly standardised features; a missing value sits at the feature's median (neutral).
    let mut flat = Vec::with_capacity(n * width);
    let mut columns: Vec<Vec<f64>> = Vec::with_capacity(width);
    for f in 0..width {
        let col: Vec<f64> = peers
            .iter()
            .map(|p| {
                p.get(f)
                    .copied()
                    .filter(|x| x.is_finite())
                    .unwrap_or(f64::NAN)
            })
            .collect();
        columns.push(col);
    }
    let centre: Vec<(f64, f64)> = columns
        .iter()
        .zip(magnitude)
        .map(|(col, &mag)| {
            let m = median(col).unwrap_or(0.0);
            let s = mad(col).unwrap_or(0.0).max(REL_FLOOR * mag).max(1e-12);
            (m, s)
        })
        .collect();
    for i in 0..n {
        for (col, &(m, s)) in columns.iter().zip(&centre) {
            let x = col[i];
            flat.push(if x.is_nan() { 0.0 } else { (x - m) / s });
        }
    }
    let Ok(data) = Array2::from_shape_vec((n, width), flat) else {
        return out;
    };
    let dataset = DatasetBase::from(data.clone());
    let Ok(model) = KMeans::params(2)
        .max_n_iterations(100)
        .tolerance(1e-9)
        .fit(&dataset)
    else {
        return out;
    };
    let labels = model.predict(&data);
    let members = |g: usize| -> Vec<usize> { (0..n).filter(|&i| labels[i] == g).collect() };
    let (a, b) = (members(0), members(1));
    if a.len() < 2 || b.len() < 2 {
        return out;
    }
    let mut best: Option<(usize, f64, bool)> = None; // (feature, gap z, group a is worse)
    for (f, col) in columns.iter().enumerate() {
        let vals = |g: &[usize]| -> Vec<f64> {
            g.iter().map(|&i| col[i]).filter(|x| !x.is_nan()).collect()
        };
        let (va, vb) = (vals(&a), vals(&b));
        let (Some(ma), Some(mb)) = (median(&va), median(&vb)) else {
            continue;
        };
        let a_worse = ma > mb;
        let (worse, better) = if a_worse { (&va, &vb) } else { (&vb, &va) };
        let lo = worse.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = better.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread = mad(worse)
            .unwrap_or(0.0)
            .max(mad(better).unwrap_or(0.0))
            .max(REL_FLOOR * magnitude[f])
            .max(1e-12);
        let z = (lo - hi) / spread;
        if z > 0.0 && best.is_none_or(|(_, bz, _)| z > bz) {
            best = Some((f, z, a_worse));
        }
    }
    if let Some((f, z, a_worse)) = best {
        for i in if a_worse { a } else { b } {
            out.insert(i, (f, z));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_pods_one_with_ten_times_the_errors() {
        // Features: error rate, p99 latency (ms). Pod 1 has 10× pod 0's error rate.
        let f = compare(&[vec![0.01, 200.0], vec![0.10, 205.0]]);
        // Pod 1, errors: others = [0.01], MAD 0 → scale max(0.1 × 0.01, 0.1 × 0.055) = 0.0055;
        // z = 0.09 / 0.0055 = 16.4 → p ≈ 1e-60 → score 1.
        // Latency: scale max(0.1 × 200, 0.1 × 202.5) = 20.25, z = 5/20.25 = 0.25 → noise.
        assert_eq!(f[1].feature, 0);
        assert!((f[1].deviation - 0.09 / 0.0055).abs() < 1e-9);
        assert_eq!(f[1].score, 1.0);
        // Pod 0 is better on errors (z < 0); its latency z = −5/20.5 < 0 too → score 0.
        assert_eq!(f[0].score, 0.0);
    }

    #[test]
    fn two_pods_with_jitter_are_not_flagged() {
        // 5 % apart: scale = 0.1 × mean magnitude 1.025 = 0.1025 (> 0.1 × the other's 1.0);
        // z = 0.05 / 0.1025 = 0.488 → p = 0.313, × 1 feature → score −log10(0.313)/10 = 0.05.
        let f = compare(&[vec![1.0], vec![1.05]]);
        assert!((f[1].deviation - 0.05 / 0.1025).abs() < 1e-9);
        assert!(f[1].score < 0.06 && f[0].score == 0.0);
    }

    #[test]
    fn all_equal_scores_zero() {
        let f = compare(&vec![vec![0.5, 100.0, 3.0]; 6]);
        assert!(f.iter().all(|x| x.score == 0.0 && x.deviation == 0.0));
        let f = compare(&vec![vec![0.0, 0.0]; 3]);
        assert!(f.iter().all(|x| x.score == 0.0));
    }

    #[test]
    fn one_bad_pod_of_ten() {
        // Nine pods with p99 latency 100 + i (i = 0..8), pod 9 at 300.
        let mut peers: Vec<Vec<f64>> = (0..9).map(|i| vec![0.01, 100.0 + i as f64]).collect();
        peers.push(vec![0.01, 300.0]);
        let f = compare(&peers);
        // Pod 9: others 100..108, median 104, |dev| 4 3 2 1 0 1 2 3 4 → MAD 2 × 1.4826 = 2.965;
        // floors 0.1 × 104 = 10.4 and 0.1 × mean magnitude (936 + 300)/10 = 12.36: the latter
        // binds → z = 196 / 12.36 = 15.9 → score 1.
        assert_eq!(f[9].feature, 1);
        assert!((f[9].deviation - 196.0 / 12.36).abs() < 1e-9);
        assert_eq!(f[9].score, 1.0);
        // Healthy pods are at most 4 ms above the others' median: z ≤ 4 / 12.36 = 0.32 →
        // p ≥ 0.37, × 2 features → score < 0.05.
        assert!(f[..9].iter().all(|x| x.score < 0.05), "{f:?}");
    }

    #[test]
    fn a_bad_group_below_half_is_found() {
        // 6 healthy at 1.0, 4 bad at 5.0: for a bad pod, others = six 1.0 and three 5.0 →
        // median 1.0, MAD 0 → floor 0.1 × max(1.0, mean 2.6) = 0.26 → z = 4/0.26 = 15.4.
        let peers: Vec<Vec<f64>> = (0..10)
            .map(|i| vec![if i < 4 { 5.0 } else { 1.0 }])
            .collect();
        let f = compare(&peers);
        assert!(f[..4].iter().all(|x| x.score == 1.0));
        assert!(f[4..].iter().all(|x| x.score == 0.0));
    }

    #[test]
    fn a_bad_majority_is_found_by_clustering() {
        // 6 pods at error rate 10 ± 0.5, 4 at 1 ± 0.05. Leave-one-out cannot see it: for a bad pod
        // the others' median is bad (5 bad of 9). 2-means splits 6 / 4; gap = min(bad) 9.5 −
        // max(good) 1.05 = 8.45; spread = max(MAD bad, MAD good, 0.1 × mean 6.4 = 0.64) where
        // MAD bad = 1.4826 × 0.5 = 0.741 → z = 8.45 / 0.741 = 11.4 → score 1.
        let bad = [9.5, 10.5, 10.0, 9.5, 10.5, 10.0];
        let good = [1.0, 1.05, 0.95, 1.0];
        let peers: Vec<Vec<f64>> = bad.iter().chain(&good).map(|&x| vec![x]).collect();
        let f = compare(&peers);
        assert!(f[..6].iter().all(|x| x.score == 1.0), "{f:?}");
        assert!(
            (f[0].deviation - 8.45 / (1.4826 * 0.5)).abs() < 1e-9,
            "{}",
            f[0].deviation
        );
        assert!(f[6..].iter().all(|x| x.score == 0.0));
    }

    #[test]
    fn an_even_healthy_spread_is_not_split_into_good_and_bad() {
        // Latencies 50, 60, ..., 140: 2-means splits them, but the gap between the halves is one
        // step (10) against a floor of 0.1 × mean 95 = 9.5 and within-half MADs of
        // 1.4826 × 10 = 14.8 → group z = 10 / 14.826 = 0.674 (pods 5 and 6 carry exactly that).
        // The strongest finding is pod 9's own: others 50..130, median 90, |dev| 40 30 20 10 0 …
        // → MAD 1.4826 × 20 = 29.65, z = 50 / 29.65 = 1.686 → p = 0.046 → score 0.134: mild.
        let peers: Vec<Vec<f64>> = (0..10).map(|i| vec![50.0 + 10.0 * i as f64]).collect();
        let f = compare(&peers);
        assert!((f[5].deviation - 10.0 / 14.826).abs() < 1e-9, "{f:?}");
        assert!((f[9].deviation - 50.0 / 29.652).abs() < 1e-9);
        assert!(f.iter().all(|x| x.score < 0.14), "{f:?}");
    }

    #[test]
    fn nan_features_and_ragged_rows_are_ignored() {
        let f = compare(&[vec![f64::NAN, 1.0], vec![0.2, 1.0], vec![0.2]]);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|x| x.score == 0.0));
        assert!(compare(&[]).is_empty());
        assert_eq!(compare(&[vec![1.0]])[0].score, 0.0);
    }

    proptest::proptest! {
        #[test]
        fn any_input_gives_one_bounded_finding_per_peer(
            peers in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        6 => -1e3..1e3f64,
                        1 => proptest::prelude::Just(f64::NAN),
                        1 => proptest::prelude::Just(f64::INFINITY),
                        1 => proptest::num::f64::NORMAL,
                    ],
                    0..4,
                ),
                0..12,
            )
        ) {
            let f = compare(&peers);
            proptest::prop_assert_eq!(f.len(), peers.len());
            for (i, x) in f.iter().enumerate() {
                proptest::prop_assert_eq!(x.index, i);
                proptest::prop_assert!((0.0..=1.0).contains(&x.score), "{x:?}");
                proptest::prop_assert!(!x.deviation.is_nan(), "{x:?}");
            }
            // Determinism.
            proptest::prop_assert_eq!(f, compare(&peers));
        }
    }
}
