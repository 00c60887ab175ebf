//! The Numenta Anomaly Benchmark's scoring rules, implemented from their description in words.
//!
//! A detector's per-row anomaly scores become detections where score ≥ a threshold. Each
//! labelled window earns a reward for its earliest detection (more for earlier) or costs A_FN
//! when missed; each detection outside every window costs up to A_FP (less just after a
//! window). One threshold per cost profile is chosen for the whole corpus to maximise the total,
//! which is then normalised so that detecting nothing scores 0 and detecting every window at its
//! first row with no false positive scores 100.
//!
//! * [`rules`] — probation, windows as row ranges, the value of one detection at each row.
//! * [`sweep`] — the exact corpus-wide threshold search.
//! * [`score_leave_one_category_out`] — the same search made honest: each category scored at
//!   thresholds chosen on the other categories only.
//!
//! Pure: callers pass timestamps, scores and windows; nothing here touches the filesystem.

pub mod rules;
pub mod sweep;

use rules::{PreparedFile, Role};
use std::collections::BTreeMap;

/// Cost weights of one application profile.
#[derive(Debug, Clone, PartialEq)]
pub struct CostProfile {
    pub name: String,
    /// Reward for a window detected at its first row.
    pub a_tp: f64,
    /// Cost of a missed window.
    pub a_fn: f64,
    /// Cost of a false positive far from any window.
    pub a_fp: f64,
}

/// One series to score.
#[derive(Debug, Clone, Copy)]
pub struct FileInput<'a> {
    /// Shown in errors and per-file results (`realTraffic/speed_6005.csv`).
    pub name: &'a str,
    pub category: &'a str,
    /// Unix seconds, one per row, in file order.
    pub timestamps: &'a [i64],
    /// Anomaly score per row; NaN is never a detection.
    pub scores: &'a [f64],
    /// Labelled windows, inclusive `[start, end]` in unix seconds, not overlapping.
    pub windows: &'a [(i64, i64)],
}

/// Input the rules cannot score; each names the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NabError {
    #[error("{file}: {timestamps} timestamps but {scores} anomaly scores")]
    LengthMismatch {
        file: String,
        timestamps: usize,
        scores: usize,
    },
    #[error(
        "{file}: the rows inside window {window:?} are not consecutive (timestamps jump out of \
         the window and back in, or into an earlier window)"
    )]
    ScatteredWindow { file: String, window: (i64, i64) },
    #[error("{file}: window [{start}, {end}] ends before it starts")]
    InvertedWindow { file: String, start: i64, end: i64 },
    #[error("{file}: windows {first:?} and {second:?} overlap")]
    OverlappingWindows {
        file: String,
        first: (i64, i64),
        second: (i64, i64),
    },
}

/// A total over some files at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tally {
    /// Labelled windows (W).
    pub windows: usize,
    /// Windows with at least one detection.
    pub detected: usize,
    /// Detections outside every window.
    pub false_positives: usize,
    /// The weighted total S.
    pub raw: f64,
}

impl Tally {
    /// 100 · (S − S_null) / (S_perfect − S_null) with S_perfect = W·A_TP and S_null = −W·A_FN;
    /// `None` when there is nothing to normalise by (W = 0 or zero weights).
    pub fn normalised(&self, profile: &CostProfile) -> Option<f64> {
        let w = self.windows as f64;
        let span = w * (profile.a_tp + profile.a_fn);
        (span > 0.0).then(|| 100.0 * (self.raw + w * profile.a_fn) / span)
    }

    fn add(&mut self, other: &Tally) {
        self.windows += other.windows;
        self.detected += other.detected;
        self.false_positives += other.false_positives;
        self.raw += other.raw;
    }
}

/// One file scored at one threshold, with NAB's per-row attribution: a window's result (the
/// earliest detection's reward, or −A_FN when missed) sits on the window's first row, a false
/// positive on its own row.
#[derive(Debug, Clone, PartialEq)]
pub struct FileScore {
    pub tally: Tally,
    /// Weighted score per row (0 for rows that earn or cost nothing). A window with no rows at
    /// all has no row to sit on: its miss is in `tally.raw` only.
    pub rows: Vec<f64>,
}

/// Scores one prepared file at `threshold` (`None`: nothing is a detection).
pub fn score_file(
    file: &PreparedFile,
    scores: &[f64],
    profile: &CostProfile,
    threshold: Option<f64>,
) -> FileScore {
    let mut rows = vec![0.0; scores.len()];
    let mut best_reward: Vec<Option<f64>> = vec![None; file.windows.len()];
    let mut false_positives = 0;
    if let Some(threshold) = threshold {
        for (i, &score) in scores.iter().enumerate() {
            // NaN compares false, so a missing score is never a detection.
            if score < threshold || score.is_nan() {
                continue;
            }
            match file.role(i) {
                None => {}
                Some(Role::Outside { cost }) => {
                    rows[i] = profile.a_fp * cost;
                    false_positives += 1;
                }
                // Rows come in order, so the first detection seen is the earliest.
                Some(Role::InWindow { window, reward }) if best_reward[window].is_none() => {
                    best_reward[window] = Some(reward);
                }
                Some(Role::InWindow { .. }) => {}
            }
        }
    }
    let mut raw: f64 = rows.iter().sum();
    for (range, reward) in file.windows.iter().zip(&best_reward) {
        let value = reward.map_or(-profile.a_fn, |r| profile.a_tp * r);
        raw += value;
        if let Some(cell) = rows.get_mut(range.start).filter(|_| !range.is_empty()) {
            *cell += value;
        }
    }
    FileScore {
        tally: Tally {
            windows: file.windows.len(),
            detected: best_reward.iter().filter(|e| e.is_some()).count(),
            false_positives,
            raw,
        },
        rows,
    }
}

/// One profile's result over the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileResult {
    pub profile: CostProfile,
    /// The corpus-wide threshold (`None`: above every score, nothing detected).
    pub threshold: Option<f64>,
    pub total: Tally,
    /// Per category, sorted by name, at the corpus-wide threshold.
    pub categories: Vec<(String, Tally)>,
    /// Per file, in input order, at the corpus-wide threshold.
    pub files: Vec<(String, Tally)>,
}

/// Scores a corpus: one exact best threshold per profile, then totals overall, per category and
/// per file at that threshold.
pub fn score_corpus(
    files: &[FileInput<'_>],
    profiles: &[CostProfile],
) -> Result<Vec<ProfileResult>, NabError> {
    let prepared = prepare(files)?;
    let scores: Vec<&[f64]> = files.iter().map(|f| f.scores).collect();
    let thresholds = sweep::best_thresholds(&prepared, &scores, profiles);
    Ok(profiles
        .iter()
        .zip(thresholds)
        .map(|(profile, threshold)| {
            let mut total = Tally::default();
            let mut categories: BTreeMap<&str, Tally> = BTreeMap::new();
            let per_file = files
                .iter()
                .zip(&prepared)
                .map(|(f, p)| {
                    let tally = score_file(p, f.scores, profile, threshold).tally;
                    total.add(&tally);
                    categories.entry(f.category).or_default().add(&tally);
                    (f.name.to_string(), tally)
                })
                .collect();
            ProfileResult {
                profile: profile.clone(),
                threshold,
                total,
                categories: categories
                    .into_iter()
                    .map(|(c, t)| (c.to_string(), t))
                    .collect(),
                files: per_file,
            }
        })
        .collect())
}

/// Checks lengths and maps every file's windows onto its rows.
fn prepare(files: &[FileInput<'_>]) -> Result<Vec<PreparedFile>, NabError> {
    files
        .iter()
        .map(|f| {
            if f.timestamps.len() != f.scores.len() {
                return Err(NabError::LengthMismatch {
                    file: f.name.to_string(),
                    timestamps: f.timestamps.len(),
                    scores: f.scores.len(),
                });
            }
            PreparedFile::new(f.name, f.timestamps, f.windows)
        })
        .collect()
}

/// Each profile's best corpus-wide threshold on `files` (the choice [`score_corpus`] makes), so
/// that another corpus can be scored with settings chosen without it ([`score_at`]).
pub fn choose_thresholds(
    files: &[FileInput<'_>],
    profiles: &[CostProfile],
) -> Result<Vec<Option<f64>>, NabError> {
    let prepared = prepare(files)?;
    let scores: Vec<&[f64]> = files.iter().map(|f| f.scores).collect();
    Ok(sweep::best_thresholds(&prepared, &scores, profiles))
}

/// Totals of `files` at the given thresholds (`thresholds[k]` for `profiles[k]`).
pub fn score_at(
    files: &[FileInput<'_>],
    profiles: &[CostProfile],
    thresholds: &[Option<f64>],
) -> Result<Vec<Tally>, NabError> {
    let prepared = prepare(files)?;
    Ok(profiles
        .iter()
        .zip(thresholds)
        .map(|(profile, &threshold)| {
            let mut total = Tally::default();
            for (f, p) in files.iter().zip(&prepared) {
                total.add(&score_file(p, f.scores, profile, threshold).tally);
            }
            total
        })
        .collect())
}

/// One category scored at the threshold chosen without it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOut {
    pub category: String,
    /// The threshold that maximises the profile's total over every *other* category's files
    /// (`None`: detecting nothing scores best there, or there are no other categories).
    pub threshold: Option<f64>,
    /// The held-out category's files scored at that threshold.
    pub tally: Tally,
}

/// One profile's leave-one-category-out result.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaveOneOutResult {
    pub profile: CostProfile,
    /// Sum of the held-out tallies: every window and false positive is counted once, each at a
    /// threshold chosen without its own category.
    pub total: Tally,
    /// Per held-out category, sorted by name.
    pub categories: Vec<HeldOut>,
}

/// Leave-one-category-out scoring. The only setting NAB's scoring chooses from the labels is the
/// detection threshold per profile ([`sweep::best_thresholds`]); here, for each category, that
/// threshold is chosen on the files of all other categories and the category's own files are
/// scored with it. The held-out tallies add up to a corpus total whose normalised score is an
/// out-of-sample estimate: the in-sample [`score_corpus`] total is never below it, since the
/// in-sample threshold maximises the very same sum.
///
/// Settings a detector fixes before it sees the corpus (its window lengths, fire levels) are
/// not re-chosen here; a tuning loop that picks them by corpus score must hold them out itself.
pub fn score_leave_one_category_out(
    files: &[FileInput<'_>],
    profiles: &[CostProfile],
) -> Result<Vec<LeaveOneOutResult>, NabError> {
    let prepared = prepare(files)?;
    let mut categories: Vec<&str> = files.iter().map(|f| f.category).collect();
    categories.sort_unstable();
    categories.dedup();
    let mut results: Vec<LeaveOneOutResult> = profiles
        .iter()
        .map(|p| LeaveOneOutResult {
            profile: p.clone(),
            total: Tally::default(),
            categories: Vec::with_capacity(categories.len()),
        })
        .collect();
    for &held_out in &categories {
        let (mut train_files, mut train_scores) = (Vec::new(), Vec::new());
        for (f, p) in files.iter().zip(&prepared) {
            if f.category != held_out {
                train_files.push(p.clone());
                train_scores.push(f.scores);
            }
        }
        let thresholds = sweep::best_thresholds(&train_files, &train_scores, profiles);
        for (result, threshold) in results.iter_mut().zip(thresholds) {
            let mut tally = Tally::default();
            for (f, p) in files.iter().zip(&prepared) {
                if f.category == held_out {
                    tally.add(&score_file(p, f.scores, &result.profile, threshold).tally);
                }
            }
            result.total.add(&tally);
            result.categories.push(HeldOut {
                category: held_out.to_string(),
                threshold,
                tally,
            });
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests;
