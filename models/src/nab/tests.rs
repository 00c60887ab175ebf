//! Hand-worked scorer cases. Every file has 20 rows at t = 0..19 s, so probation is
//! floor(0.15·20) = 3 rows (0, 1, 2) and windows are given directly in seconds = rows.
//!
//! Reference values of σ(p) = 2/(1+e^{5p}) − 1:
//!   σ(−1)   = 2/(1+e^−5)   − 1 = 0.986614298
//!   σ(−0.6) = 2/(1+e^−3)   − 1 = 0.905148254 → reward 0.905148254/0.986614298 = 0.917428680
//!   σ(−0.2) = 2/(1+e^−1)   − 1 = 0.462117157 → reward 0.462117157/0.986614298 = 0.468386844
//!   σ(0.5)  = 2/(1+e^2.5)  − 1 = −0.848283640 → FP cost 0.11 · σ(0.5) = −0.093311200

use super::rules::{PreparedFile, probation_rows, scaled_sigmoid};
use super::*;

const N: usize = 20;

fn standard() -> CostProfile {
    CostProfile {
        name: "standard".into(),
        a_tp: 1.0,
        a_fn: 1.0,
        a_fp: 0.11,
    }
}

fn low_fn() -> CostProfile {
    CostProfile {
        name: "reward_low_FN_rate".into(),
        a_tp: 1.0,
        a_fn: 2.0,
        a_fp: 0.11,
    }
}

fn timestamps() -> Vec<i64> {
    (0..N as i64).collect()
}

/// Scores with 1.0 at `hits` and 0 elsewhere, scored at threshold 0.5.
fn raw_with_hits(windows: &[(i64, i64)], hits: &[usize]) -> Tally {
    let ts = timestamps();
    let mut scores = vec![0.0; N];
    for &h in hits {
        scores[h] = 1.0;
    }
    let file = PreparedFile::new("t.csv", &ts, windows).unwrap();
    score_file(&file, &scores, &standard(), Some(0.5)).tally
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn sigmoid_and_probation() {
    assert!(close(scaled_sigmoid(-1.0), 0.986_614_298_151_430_5));
    assert!(close(scaled_sigmoid(0.0), 0.0));
    // Beyond p = 3 the rule clamps to −1 (σ(3) itself is 2/(1+e^15) − 1 ≈ −0.9999994).
    assert_eq!(scaled_sigmoid(3.0001), -1.0);
    assert!(scaled_sigmoid(3.0) > -1.0);
    assert_eq!(probation_rows(20), 3); // floor(3.0)
    assert_eq!(probation_rows(99), 14); // floor(14.85)
    assert_eq!(probation_rows(10_000), 750); // min(1500, 750)
}

#[test]
fn detection_at_window_start_earns_the_full_reward() {
    // Window rows 10..=14 (w = 5); a hit at 10: position −(14−10+1)/5 = −1, reward σ(−1)/σ(−1).
    let t = raw_with_hits(&[(10, 14)], &[10]);
    assert!(close(t.raw, 1.0), "{t:?}");
    assert_eq!((t.detected, t.false_positives), (1, 0));
    // Normalised: 100·(1 − (−1))/(1 − (−1)) = 100.
    assert!(close(t.normalised(&standard()).unwrap(), 100.0));
}

#[test]
fn later_detections_earn_less() {
    // Hit at 12: position −(14−12+1)/5 = −0.6 → 0.917428680.
    assert!(close(
        raw_with_hits(&[(10, 14)], &[12]).raw,
        0.917_428_680_428_407_9
    ));
    // Hit at 14 (last row): position −1/5 = −0.2 → 0.468386844.
    assert!(close(
        raw_with_hits(&[(10, 14)], &[14]).raw,
        0.468_386_843_902_278_1
    ));
}

#[test]
fn only_the_earliest_detection_in_a_window_counts() {
    // Hits at 12 and 10: the window is worth its best (earliest) reward 1.0, not 1.0 + 0.917.
    let t = raw_with_hits(&[(10, 14)], &[10, 12]);
    assert!(close(t.raw, 1.0));
    assert_eq!((t.detected, t.false_positives), (1, 0));
}

#[test]
fn false_positive_before_the_first_window_costs_full_a_fp() {
    // Hit at 5 (after probation, before the window): −0.11; window missed: −1 → −1.11.
    let t = raw_with_hits(&[(10, 14)], &[5]);
    assert!(close(t.raw, -1.11), "{t:?}");
    assert_eq!((t.detected, t.false_positives), (0, 1));
}

#[test]
fn false_positive_after_a_window_fades_in() {
    // Hit at 16 after window 10..=14: |14 − 16|/(5 − 1) = 0.5 → 0.11·σ(0.5) = −0.0933112;
    // window missed: −1 → −1.0933112.
    let t = raw_with_hits(&[(10, 14)], &[16]);
    assert!(close(t.raw, -1.0 - 0.093_311_200_395_326_42), "{t:?}");
}

#[test]
fn one_row_window_makes_later_false_positives_cost_full_a_fp() {
    // Window 10..=10 (w = 1): the rule's w − 1 is 0, so the cost is the sigmoid's limit, −1.
    // Hit at 10 (TP, reward 1) and at 12 (FP, −0.11) → 0.89.
    let t = raw_with_hits(&[(10, 10)], &[10, 12]);
    assert!(close(t.raw, 0.89), "{t:?}");
}

#[test]
fn probation_rows_are_never_detections() {
    // Hit at row 2 (probation is rows 0..=2): ignored, the window is missed → −1.
    let t = raw_with_hits(&[(10, 14)], &[2]);
    assert!(close(t.raw, -1.0));
    assert_eq!((t.detected, t.false_positives), (0, 0));
}

#[test]
fn window_partly_in_probation_keeps_its_full_width() {
    // Window rows 1..=5 (w = 5), hits at 2 (probation, ignored) and 3:
    // position −(5−3+1)/5 = −0.6 → 0.917428680.
    let t = raw_with_hits(&[(1, 5)], &[2, 3]);
    assert!(close(t.raw, 0.917_428_680_428_407_9), "{t:?}");
}

#[test]
fn missed_windows_cost_a_fn_each() {
    // Two windows, nothing detected: −2 standard; low-FN (A_FN = 2): −4.
    let ts = timestamps();
    let file = PreparedFile::new("t.csv", &ts, &[(5, 6), (10, 14)]).unwrap();
    let scores = vec![0.0; N];
    assert!(close(
        score_file(&file, &scores, &standard(), Some(0.5)).tally.raw,
        -2.0
    ));
    let t = score_file(&file, &scores, &low_fn(), Some(0.5)).tally;
    assert!(close(t.raw, -4.0));
    // Normalised: 100·(−4 + 2·2)/(2·(1 + 2)) = 0: the null detector's score.
    assert!(close(t.normalised(&low_fn()).unwrap(), 0.0));
}

#[test]
fn per_row_attribution_places_each_term_on_its_row() {
    let ts = timestamps();
    let file = PreparedFile::new("t.csv", &ts, &[(5, 6), (10, 14)]).unwrap();
    let mut scores = vec![0.0; N];
    scores[3] = 1.0;
    scores[12] = 1.0;
    let rows = score_file(&file, &scores, &standard(), Some(0.5)).rows;
    // FP on its own row 3 (−0.11); the missed window 5..=6 on its first row 5 (−1); the window
    // 10..=14 detected at 12 on its first row 10 (0.917428680, as NAB's S(t) column has it).
    assert!(close(rows[3], -0.11));
    assert!(close(rows[5], -1.0));
    assert!(close(rows[10], 0.917_428_680_428_407_9));
    assert_eq!(rows.iter().filter(|v| **v != 0.0).count(), 3);
}

#[test]
fn sweep_picks_the_threshold_with_the_best_total() {
    // Window 10..=14; scores 0.9 at row 5 (FP before), 0.8 at row 12 (TP, 0.917), 0.7 at
    // row 16 (FP after, −0.0933), 0 elsewhere. Standard totals per threshold:
    //   none: −1          0.9: −0.11 − 1 = −1.11
    //   0.8: −0.11 + 0.917429 = 0.807429
    //   0.7: 0.807429 − 0.093311 = 0.714117
    //   0.0: every row after probation: rows 3..=9 cost 7·0.11 = 0.77, row 10 earns 1.0, rows
    //        15..=19 cost 0.11·Σσ(k/4) for k = 1..5 → total −0.247366
    // so 0.8 wins with 0.807429. Low-FN only changes the miss cost (−2 instead of −1), which
    // the winner does not pay: 0.8 again.
    let ts = timestamps();
    let mut scores = vec![0.0; N];
    scores[5] = 0.9;
    scores[12] = 0.8;
    scores[16] = 0.7;
    let windows = [(10, 14)];
    let input = FileInput {
        name: "c/t.csv",
        category: "c",
        timestamps: &ts,
        scores: &scores,
        windows: &windows,
    };
    let results = score_corpus(&[input], &[standard(), low_fn()]).unwrap();
    for r in &results {
        assert_eq!(r.threshold, Some(0.8), "{}", r.profile.name);
        assert!(close(r.total.raw, 0.807_428_680_428_407_9), "{r:?}");
    }
    assert_eq!(results[0].categories.len(), 1);
    assert_eq!(results[0].categories[0].0, "c");
}

#[test]
fn sweep_detects_nothing_when_every_threshold_loses() {
    // One FP-only file: any detection only costs, so no threshold beats detecting nothing.
    let ts = timestamps();
    let mut scores = vec![0.0; N];
    scores[8] = 1.0;
    let input = FileInput {
        name: "c/t.csv",
        category: "c",
        timestamps: &ts,
        scores: &scores,
        windows: &[],
    };
    let r = &score_corpus(&[input], &[standard()]).unwrap()[0];
    assert_eq!(r.threshold, None);
    assert_eq!(r.total.raw, 0.0);
    // W = 0: nothing to normalise by.
    assert_eq!(r.total.normalised(&standard()), None);
}

#[test]
fn bad_windows_and_lengths_are_errors_naming_the_file() {
    let ts = timestamps();
    let overlap = PreparedFile::new("x.csv", &ts, &[(10, 14), (12, 16)]).unwrap_err();
    assert!(
        overlap.to_string().starts_with("x.csv: windows"),
        "{overlap}"
    );
    let inverted = PreparedFile::new("x.csv", &ts, &[(14, 10)]).unwrap_err();
    assert!(matches!(inverted, NabError::InvertedWindow { .. }));
    // Timestamps step back into the window after leaving it: rows 10..=14 and 16 are inside.
    let mut scattered = timestamps();
    scattered[16] = 12;
    let err = PreparedFile::new("x.csv", &scattered, &[(10, 14)]).unwrap_err();
    assert!(matches!(err, NabError::ScatteredWindow { .. }), "{err}");
    let input = FileInput {
        name: "c/t.csv",
        category: "c",
        timestamps: &ts,
        scores: &[0.0; 3],
        windows: &[],
    };
    let err = score_corpus(&[input], &[standard()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "c/t.csv: 20 timestamps but 3 anomaly scores"
    );
}

#[test]
fn repeated_timestamps_outside_windows_are_scored_as_rows() {
    // NAB's corpus repeats timestamps; rows 6 and 7 share t = 6 and both are FPs (−0.22), the
    // window 10..=14 is detected at its start (+1) → 0.78.
    let mut ts = timestamps();
    ts[7] = 6;
    let file = PreparedFile::new("t.csv", &ts, &[(10, 14)]).unwrap();
    let mut scores = vec![0.0; N];
    scores[6] = 1.0;
    scores[7] = 1.0;
    scores[10] = 1.0;
    let t = score_file(&file, &scores, &standard(), Some(0.5)).tally;
    assert!(close(t.raw, 0.78), "{t:?}");
}

mod sweep_matches_brute_force {
    use super::*;
    use proptest::prelude::*;

    /// Timestamps, scores, windows.
    type OwnedFile = (Vec<i64>, Vec<f64>, Vec<(i64, i64)>);

    proptest! {
        /// The incremental sweep's best total equals the best of scoring the corpus afresh at
        /// every distinct score (and at "nothing detected").
        #[test]
        fn on_random_corpora(
            files in prop::collection::vec(
                (prop::collection::vec(0u8..6, 20..40), prop::collection::vec((0i64..40, 0i64..6), 0..3)),
                1..4,
            )
        ) {
            let owned: Vec<OwnedFile> = files
                .iter()
                .map(|(scores, windows)| {
                    let ts: Vec<i64> = (0..scores.len() as i64).collect();
                    let scores: Vec<f64> = scores.iter().map(|&s| f64::from(s) / 5.0).collect();
                    // Keep only windows that do not overlap the ones already kept.
                    let mut kept: Vec<(i64, i64)> = Vec::new();
                    for &(start, len) in windows {
                        let w = (start, start + len);
                        if kept.iter().all(|k| w.1 < k.0 || w.0 > k.1) {
                            kept.push(w);
                        }
                    }
                    (ts, scores, kept)
                })
                .collect();
            let inputs: Vec<FileInput<'_>> = owned
                .iter()
                .map(|(ts, scores, windows)| FileInput {
                    name: "f",
                    category: "c",
                    timestamps: ts,
                    scores,
                    windows,
                })
                .collect();
            let profiles = [standard(), low_fn()];
            let results = score_corpus(&inputs, &profiles).unwrap();
            let prepared: Vec<PreparedFile> = owned
                .iter()
                .map(|(ts, _, w)| PreparedFile::new("f", ts, w).unwrap())
                .collect();
            let mut candidates: Vec<Option<f64>> = vec![None];
            candidates.extend((0..6).map(|s| Some(f64::from(s) / 5.0)));
            for (profile, result) in profiles.iter().zip(&results) {
                let best = candidates
                    .iter()
                    .map(|&t| {
                        prepared
                            .iter()
                            .zip(&owned)
                            .map(|(p, (_, s, _))| score_file(p, s, profile, t).tally.raw)
                            .sum::<f64>()
                    })
                    .fold(f64::NEG_INFINITY, f64::max);
                prop_assert!((result.total.raw - best).abs() < 1e-9, "{} vs {}", result.total.raw, best);
            }
        }
    }
}

/// Three categories, one file each, one window on rows 10..=14 (a detection at row 10 earns the
/// full reward 1). `a` sees its anomaly only weakly (0.3 at row 10); `b` sees its anomaly
/// strongly (0.9 at row 10) but also scores 0.3 on rows 4, 5 and 6 (before any window: each
/// costs A_FP·1 = 0.11); `c` sees its anomaly strongly (0.9 at row 10).
///
/// Standard profile, totals over the training categories at the two candidate thresholds:
/// * hold out a: b+c at 0.9 = 1 + 1 = 2; at 0.3 = 2 − 0.33 = 1.67 → 0.9; a at 0.9 misses: −1.
/// * hold out b: a+c at 0.9 = −1 + 1 = 0; at 0.3 = 2 → 0.3; b at 0.3: 1 − 0.33 = 0.67.
/// * hold out c: a+b at 0.9 = −1 + 1 = 0; at 0.3 = 1 + 0.67 = 1.67 → 0.3; c at 0.3: +1.
///
/// Held-out total 0.67 over W = 3: 100·(0.67 + 3)/6 = 61.1667. In sample the corpus threshold is
/// 0.3 (2.67 against 1 at 0.9): 100·(2.67 + 3)/6 = 94.5.
#[test]
fn leave_one_category_out_scores_each_category_at_thresholds_chosen_without_it() {
    let ts = timestamps();
    let windows = [(10, 14)];
    let mut a = [0.0; N];
    a[10] = 0.3;
    let mut b = [0.0; N];
    b[10] = 0.9;
    b[4] = 0.3;
    b[5] = 0.3;
    b[6] = 0.3;
    let mut c = [0.0; N];
    c[10] = 0.9;
    let file = |name, category, scores| FileInput {
        name,
        category,
        timestamps: &ts,
        scores,
        windows: &windows,
    };
    // Input order differs from category order: results come sorted by category.
    let files = [
        file("c/1.csv", "c", &c[..]),
        file("a/1.csv", "a", &a[..]),
        file("b/1.csv", "b", &b[..]),
    ];
    let profiles = [standard(), low_fn()];
    let loco = score_leave_one_category_out(&files, &profiles).unwrap();
    let in_sample = score_corpus(&files, &profiles).unwrap();

    let std = &loco[0];
    let held: Vec<(&str, Option<f64>)> = std
        .categories
        .iter()
        .map(|h| (h.category.as_str(), h.threshold))
        .collect();
    assert_eq!(held, [("a", Some(0.9)), ("b", Some(0.3)), ("c", Some(0.3))]);
    let raws: Vec<f64> = std.categories.iter().map(|h| h.tally.raw).collect();
    assert!(close(raws[0], -1.0) && close(raws[1], 0.67) && close(raws[2], 1.0));
    assert_eq!(
        (
            std.total.windows,
            std.total.detected,
            std.total.false_positives
        ),
        (3, 2, 3)
    );
    assert!(close(std.total.raw, 0.67));
    assert!(close(
        std.total.normalised(&standard()).unwrap(),
        100.0 * 3.67 / 6.0
    ));
    assert_eq!(in_sample[0].threshold, Some(0.3));
    assert!(close(
        in_sample[0].total.normalised(&standard()).unwrap(),
        94.5
    ));

    // Low FN (A_FN = 2): a held out → 0.9 (2 against 1.67), a missed: −2; b held out → 0.3
    // (2 against −1): 0.67; c held out → 0.3: +1. Total −0.33, normalised
    // 100·(−0.33 + 6)/9 = 63.0.
    let low = &loco[1];
    let thresholds: Vec<Option<f64>> = low.categories.iter().map(|h| h.threshold).collect();
    assert_eq!(thresholds, [Some(0.9), Some(0.3), Some(0.3)]);
    assert!(close(low.total.raw, -0.33));
    assert!(close(low.total.normalised(&low_fn()).unwrap(), 63.0));
}

/// With one category nothing is left to choose a threshold on: nothing is detected, every
/// window is missed and the held-out score is 0.
#[test]
fn leave_one_category_out_with_one_category_detects_nothing() {
    let ts = timestamps();
    let mut scores = vec![0.0; N];
    scores[10] = 1.0;
    let files = [FileInput {
        name: "only/1.csv",
        category: "only",
        timestamps: &ts,
        scores: &scores,
        windows: &[(10, 14)],
    }];
    let loco = score_leave_one_category_out(&files, &[standard()]).unwrap();
    assert_eq!(loco[0].categories[0].threshold, None);
    assert_eq!(loco[0].total.detected, 0);
    assert!(close(loco[0].total.raw, -1.0));
    assert_eq!(loco[0].total.normalised(&standard()), Some(0.0));
}

#[test]
fn leave_one_category_out_names_a_bad_file() {
    let ts = timestamps();
    let files = [FileInput {
        name: "x/short.csv",
        category: "x",
        timestamps: &ts,
        scores: &[0.0; 3],
        windows: &[],
    }];
    let err = score_leave_one_category_out(&files, &[standard()]).unwrap_err();
    assert!(err.to_string().starts_with("x/short.csv:"), "{err}");
}

/// Cross-corpus: thresholds chosen on one corpus, another scored with them. On the fixture above
/// the standard threshold chosen on {a, b} alone is 0.3 (hold-out-c case: 1.67 against 0 at 0.9);
/// scoring {c} at 0.3 detects its window at the first row: raw +1, normalised 100·(1 + 1)/2 =
/// 100. Chosen on {c} (0.9 is the highest equal-best), {a} scored at 0.9 misses: raw −1 → 0.
#[test]
fn thresholds_chosen_on_one_corpus_score_another() {
    let ts = timestamps();
    let windows = [(10, 14)];
    let mut a = [0.0; N];
    a[10] = 0.3;
    let mut b = [0.0; N];
    b[10] = 0.9;
    b[4] = 0.3;
    b[5] = 0.3;
    b[6] = 0.3;
    let mut c = [0.0; N];
    c[10] = 0.9;
    let file = |name, category, scores| FileInput {
        name,
        category,
        timestamps: &ts,
        scores,
        windows: &windows,
    };
    let ab = [file("a/1.csv", "a", &a[..]), file("b/1.csv", "b", &b[..])];
    let only_c = [file("c/1.csv", "c", &c[..])];
    let only_a = [file("a/1.csv", "a", &a[..])];
    let profiles = [standard()];
    let t = choose_thresholds(&ab, &profiles).unwrap();
    assert_eq!(t, [Some(0.3)]);
    let tally = score_at(&only_c, &profiles, &t).unwrap();
    assert!(close(tally[0].raw, 1.0));
    assert!(close(tally[0].normalised(&standard()).unwrap(), 100.0));
    let t = choose_thresholds(&only_c, &profiles).unwrap();
    assert_eq!(t, [Some(0.9)]);
    let tally = score_at(&only_a, &profiles, &t).unwrap();
    assert!(close(tally[0].raw, -1.0));
    assert!(close(tally[0].normalised(&standard()).unwrap(), 0.0));
}
