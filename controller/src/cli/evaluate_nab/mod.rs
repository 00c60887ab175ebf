//! `homeostat evaluate nab`: scores a detector on a NAB-format corpus.
//!
//! Either runs one of our detectors over every series (`--detector`), or reads another
//! detector's per-row output in NAB's results layout (`--results`), then hands timestamps,
//! scores and label windows to the pure scorer in [`homeostat_models::nab`].
//!
//! Besides the corpus score (one threshold per profile chosen on the whole corpus, NAB's rule,
//! an in-sample figure) it reports a leave-one-category-out score: each category (top-level
//! folder under `data/`) is scored at the threshold chosen on the other categories
//! ([`nab::score_leave_one_category_out`]). The threshold is the only setting chosen here; a
//! detector's own parameters are fixed before the corpus is read.

use super::Format;

use crate::corpus::{Corpus, CorpusSeries, read_column};
use crate::parallel::parallel_map;
use anyhow::{Context, Result, anyhow, bail};
use homeostat_models::detect;
use homeostat_models::nab::{
    self, CostProfile, FileInput, LeaveOneOutResult, ProfileResult, Tally,
};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Corpus directory: DIR/data/<category>/<file>.csv, DIR/labels/combined_windows.json,
    /// DIR/config/profiles.json.
    #[arg(long)]
    pub corpus: PathBuf,
    /// Detector to run (default: the first of the built-in detectors).
    #[arg(long, conflicts_with = "results")]
    pub detector: Option<String>,
    /// Score another detector's output instead: RESULTS_DIR/<category>/<detector>_<file>.csv
    /// with `timestamp` and `anomaly_score` columns.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Also score this corpus at the thresholds chosen on ANOTHER corpus (same detector): the
    /// honest cross-corpus figure, settings chosen without the corpus scored.
    #[arg(long, conflicts_with = "results")]
    pub thresholds_from: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// This corpus scored at thresholds chosen on another one.
#[derive(Debug, Clone)]
pub struct CrossCorpus {
    pub chosen_on: String,
    /// In `Evaluation::profiles` order.
    pub thresholds: Vec<Option<f64>>,
    pub totals: Vec<Tally>,
}

/// What was scored and how it scored.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The detector's name (for `--results`, the results directory's name).
    pub detector: String,
    pub files: usize,
    pub windows: usize,
    /// One per profile, `standard` first.
    pub profiles: Vec<ProfileResult>,
    /// Leave-one-category-out, in `profiles` order: each category scored at the threshold
    /// chosen on the other categories.
    pub leave_one_out: Vec<LeaveOneOutResult>,
    /// The highest score and how many rows have it: a detector that saturates (thousands of
    /// rows at exactly 1.0) cannot be thresholded finely, which explains many poor scores.
    pub top_score: Option<(f64, usize)>,
    /// With `--thresholds-from`.
    pub cross: Option<CrossCorpus>,
}

pub fn run(args: Args) -> Result<()> {
    let evaluation = evaluate(&args)?;
    match args.format {
        Format::Table => print!("{}", render_table(&evaluation)),
        Format::Json => println!("{:#}", render_json(&evaluation)),
    }
    Ok(())
}

/// Loads the corpus, obtains every series' scores and scores them.
pub fn evaluate(args: &Args) -> Result<Evaluation> {
    // Phase timings go to the log (HOMEOSTAT_LOG=info) for whoever tunes detectors in a loop.
    let started = std::time::Instant::now();
    let corpus = Corpus::load(&args.corpus)?;
    warn_irregular(&corpus);
    let loaded = started.elapsed();
    let (detector, scores) = match &args.results {
        Some(dir) => {
            let detector = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.display().to_string());
            let scores = parallel_map("reading results", &corpus.series, |s| {
                read_results(dir, &detector, &corpus.root, s)
            })?;
            (detector, scores)
        }
        None => {
            let name = pick_detector(args.detector.as_deref())?;
            let scores = parallel_map(name, &corpus.series, |s| run_detector(name, &s.values))?;
            (name.to_string(), scores)
        }
    };
    let scored_rows = started.elapsed();
    let mut evaluation = score(&corpus, detector, &scores)?;
    if let Some(other_dir) = &args.thresholds_from {
        let other = Corpus::load(other_dir)?;
        let name = pick_detector(args.detector.as_deref())?;
        let other_scores = parallel_map(name, &other.series, |s| run_detector(name, &s.values))?;
        let profiles = cost_profiles(&corpus);
        let thresholds = nab::choose_thresholds(&inputs(&other, &other_scores), &profiles)
            .with_context(|| format!("choosing thresholds on {}", other_dir.display()))?;
        let totals = nab::score_at(&inputs(&corpus, &scores), &profiles, &thresholds)
            .with_context(|| format!("scoring {}", args.corpus.display()))?;
        evaluation.cross = Some(CrossCorpus {
            chosen_on: other_dir.display().to_string(),
            thresholds,
            totals,
        });
    }
    tracing::info!(
        "evaluate nab: corpus loaded in {:.3} s, anomaly scores in {:.3} s, scoring in {:.3} s",
        loaded.as_secs_f64(),
        (scored_rows - loaded).as_secs_f64(),
        (started.elapsed() - scored_rows).as_secs_f64()
    );
    Ok(evaluation)
}

/// NAB scores rows in file order, so repeated or backward timestamps are kept; the scorer still
/// refuses files where such a row breaks up a labelled window. One warning for the corpus, the
/// lines at info level.
fn warn_irregular(corpus: &Corpus) {
    let irregular: Vec<&CorpusSeries> = corpus
        .series
        .iter()
        .filter(|s| s.irregular.is_some())
        .collect();
    for s in &irregular {
        if let Some(irr) = &s.irregular {
            tracing::info!(
                "{}:{}: {} row(s) from here on have a timestamp ({:?} first) not later than the row before; kept, as NAB scores rows in file order",
                corpus.data_path(s).display(),
                irr.first_line,
                irr.count,
                irr.first_text
            );
        }
    }
    if let Some(first) = irregular.first() {
        tracing::warn!(
            "{} file(s) have repeated or backward timestamps ({} first); their rows are scored in file order (HOMEOSTAT_LOG=info names the lines)",
            irregular.len(),
            first.name
        );
    }
}

/// Scores per-row anomaly scores (`scores[i]` for `corpus.series[i]`) against the corpus'
/// labels. Separate from [`evaluate`] so a tuning loop can load the corpus once (with
/// [`Corpus::load`]) and score many detector settings.
pub fn score(corpus: &Corpus, detector: String, scores: &[Vec<f64>]) -> Result<Evaluation> {
    if scores.len() != corpus.series.len() {
        bail!(
            "{} score series for {} corpus files",
            scores.len(),
            corpus.series.len()
        );
    }
    let inputs = inputs(corpus, scores);
    let profiles = cost_profiles(corpus);
    let labels = corpus.root.join("labels").join("combined_windows.json");
    let leave_one_out = nab::score_leave_one_category_out(&inputs, &profiles)
        .with_context(|| format!("scoring against {}", labels.display()))?;
    let profiles = nab::score_corpus(&inputs, &profiles)
        .with_context(|| format!("scoring against {}", labels.display()))?;
    let top = scores
        .iter()
        .flatten()
        .copied()
        .filter(|v| !v.is_nan())
        .max_by(f64::total_cmp);
    let top_score = top.map(|t| (t, scores.iter().flatten().filter(|&&v| v == t).count()));
    Ok(Evaluation {
        detector,
        files: corpus.series.len(),
        windows: corpus.window_count(),
        profiles,
        leave_one_out,
        top_score,
        cross: None,
    })
}

/// The scorer's view of a corpus and its per-row scores (`scores[i]` for `corpus.series[i]`).
fn inputs<'a>(corpus: &'a Corpus, scores: &'a [Vec<f64>]) -> Vec<FileInput<'a>> {
    const NONE: &[(i64, i64)] = &[];
    corpus
        .series
        .iter()
        .zip(scores)
        .map(|(s, scores)| FileInput {
            name: &s.name,
            category: &s.category,
            timestamps: &s.timestamps,
            scores,
            windows: corpus.windows.get(&s.name).map_or(NONE, |w| w.as_slice()),
        })
        .collect()
}

fn cost_profiles(corpus: &Corpus) -> Vec<CostProfile> {
    corpus
        .profiles
        .iter()
        .map(|p| CostProfile {
            name: p.name.clone(),
            a_tp: p.tp_weight,
            a_fn: p.fn_weight,
            a_fp: p.fp_weight,
        })
        .collect()
}

fn pick_detector(requested: Option<&str>) -> Result<&'static str> {
    let known = detect::NAMES;
    if known.is_empty() {
        bail!(
            "no detectors are built in yet (homeostat_models::detect::NAMES is empty); \
             score another detector's output with --results RESULTS_DIR instead"
        );
    }
    let name = requested.unwrap_or(known[0]);
    known
        .iter()
        .copied()
        .find(|k| *k == name)
        .ok_or_else(|| anyhow!("unknown detector {name:?}; known: {}", known.join(", ")))
}

/// A fresh detector per series, fed the rows in order.
fn run_detector(name: &str, values: &[f64]) -> Result<Vec<f64>> {
    let mut detector = detect::by_name(name).ok_or_else(|| {
        anyhow!("detector {name:?} is listed in detect::NAMES but detect::by_name cannot build it")
    })?;
    Ok(values.iter().map(|&v| detector.update(v)).collect())
}

/// Finds `RESULTS_DIR/<category>/<detector>_<file>` (or, failing that, the one file there
/// named `<anything>_<file>`) and reads its scores, checking its timestamps row by row.
fn read_results(
    dir: &Path,
    detector: &str,
    corpus_root: &Path,
    series: &CorpusSeries,
) -> Result<Vec<f64>> {
    let data_file = series.name.rsplit('/').next().unwrap_or(&series.name);
    let rel_dir = series
        .name
        .rsplit_once('/')
        .map_or("", |(category_path, _)| category_path);
    let category_dir = dir.join(rel_dir);
    let exact = category_dir.join(format!("{detector}_{data_file}"));
    let path = if exact.is_file() {
        exact
    } else {
        let suffix = format!("_{data_file}");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&category_dir)
            .with_context(|| {
                format!(
                    "{}: missing results file for {} (reading {})",
                    exact.display(),
                    series.name,
                    category_dir.display()
                )
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
            })
            .collect();
        found.sort();
        match found.len() {
            0 => bail!(
                "{}: missing results file for {} (no file named <detector>_{data_file} in {})",
                exact.display(),
                series.name,
                category_dir.display()
            ),
            1 => found.remove(0),
            _ => bail!(
                "{}: several results files could belong to {}: {}",
                category_dir.display(),
                series.name,
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    // Irregular rows need no report here: they must match the data file's, checked below.
    let column = read_column(&path, "anomaly_score")?;
    let (timestamps, scores) = (column.timestamps, column.values);
    let data_path = corpus_root.join("data").join(&series.name);
    let data_path = data_path.display();
    if let Some(row) = timestamps
        .iter()
        .zip(&series.timestamps)
        .position(|(a, b)| a != b)
    {
        // Row k is on line k + 2: the header is line 1.
        bail!(
            "{}:{}: timestamp differs from {data_path} line {} (results rows must match the data file's rows)",
            path.display(),
            row + 2,
            row + 2
        );
    }
    if timestamps.len() != series.timestamps.len() {
        bail!(
            "{}: {} rows but {data_path} has {} (line {} is the first row present in only one of them)",
            path.display(),
            timestamps.len(),
            series.timestamps.len(),
            timestamps.len().min(series.timestamps.len()) + 2
        );
    }
    Ok(scores)
}

/// `{"<profile>": {"normalised", "raw", "detected", "false_positives", "categories":
/// {"<category>": {"threshold", "windows", "normalised", "raw", "detected", "false_positives"}}}}`.
fn leave_one_out_json(e: &Evaluation) -> Value {
    let tally = |t: &Tally, profile: &CostProfile| {
        let mut m = Map::new();
        m.insert("windows".into(), json!(t.windows));
        m.insert("normalised".into(), json!(t.normalised(profile)));
        m.insert("raw".into(), json!(t.raw));
        m.insert("detected".into(), json!(t.detected));
        m.insert("false_positives".into(), json!(t.false_positives));
        m
    };
    Value::Object(
        e.leave_one_out
            .iter()
            .map(|l| {
                let mut entry = tally(&l.total, &l.profile);
                let categories: Map<String, Value> = l
                    .categories
                    .iter()
                    .map(|h| {
                        let mut c = tally(&h.tally, &l.profile);
                        c.insert("threshold".into(), json!(h.threshold));
                        (h.category.clone(), Value::Object(c))
                    })
                    .collect();
                entry.insert("categories".into(), Value::Object(categories));
                (l.profile.name.clone(), Value::Object(entry))
            })
            .collect(),
    )
}

fn threshold_text(t: Option<f64>) -> String {
    t.map_or_else(
        || "none (above every score)".to_string(),
        |t| format!("{t:.6}"),
    )
}

fn normalised_text(tally: &Tally, profile: &CostProfile) -> String {
    match tally.normalised(profile) {
        Some(v) => format!("{v:.2}"),
        None => format!("raw {:.2}", tally.raw),
    }
}

/// Overall scores with thresholds, then per category at those thresholds.
pub fn render_table(e: &Evaluation) -> String {
    let mut out = format!(
        "NAB evaluation of {}: {} files, {} windows\n\n",
        e.detector, e.files, e.windows
    );
    out += &format!(
        "{:<22} {:>8} {:>26} {:>10} {:>9} {:>8}\n",
        "profile", "score", "threshold", "raw", "detected", "FP"
    );
    for p in &e.profiles {
        out += &format!(
            "{:<22} {:>8} {:>26} {:>10.3} {:>9} {:>8}\n",
            p.profile.name,
            normalised_text(&p.total, &p.profile),
            threshold_text(p.threshold),
            p.total.raw,
            format!("{}/{}", p.total.detected, p.total.windows),
            p.total.false_positives
        );
    }
    if let Some((top, rows)) = e.top_score {
        out += &format!("top score {top:.6} on {rows} rows (any threshold detects all of them)\n");
    }
    out += "\nper category, at the corpus-wide thresholds\n";
    out += &format!("{:<24} {:>7}", "category", "windows");
    for p in &e.profiles {
        out += &format!(" {:>20}", p.profile.name);
    }
    out += "\n";
    let mut no_windows = false;
    if let Some(first) = e.profiles.first() {
        for (k, (category, tally)) in first.categories.iter().enumerate() {
            out += &format!("{category:<24} {:>7}", tally.windows);
            for p in &e.profiles {
                let t = p.categories.get(k).map_or(Tally::default(), |c| c.1);
                out += &format!(" {:>20}", normalised_text(&t, &p.profile));
            }
            out += "\n";
            no_windows |= tally.windows == 0;
        }
    }
    out += &render_leave_one_out(e);
    if let Some(x) = &e.cross {
        out += &format!("\nat the thresholds chosen on {}\n", x.chosen_on);
        for ((p, t), tally) in e.profiles.iter().zip(&x.thresholds).zip(&x.totals) {
            out += &format!(
                "{:<22} {:>8} {:>26} {:>10.3} {:>9} {:>8}\n",
                p.profile.name,
                normalised_text(tally, &p.profile),
                threshold_text(*t),
                tally.raw,
                format!("{}/{}", tally.detected, tally.windows),
                tally.false_positives
            );
        }
    }
    if no_windows {
        out += "\n\"raw\": the category has no labelled windows (W = 0), so its score cannot be\n\
                normalised; shown is its raw score, the (non-positive) cost of its false positives.\n";
    }
    out
}

/// The leave-one-category-out section of the table: per profile the held-out total, then per
/// category the threshold chosen without it and the category's score at that threshold.
fn render_leave_one_out(e: &Evaluation) -> String {
    let mut out = String::from(
        "\nleave-one-category-out: each category scored at the threshold chosen on the others\n",
    );
    out += &format!(
        "{:<22} {:>8} {:>10} {:>9} {:>8}\n",
        "profile", "score", "raw", "detected", "FP"
    );
    for l in &e.leave_one_out {
        out += &format!(
            "{:<22} {:>8} {:>10.3} {:>9} {:>8}\n",
            l.profile.name,
            normalised_text(&l.total, &l.profile),
            l.total.raw,
            format!("{}/{}", l.total.detected, l.total.windows),
            l.total.false_positives
        );
    }
    out += &format!("{:<24} {:>7}", "held-out category", "windows");
    for l in &e.leave_one_out {
        out += &format!(" {:>32}", format!("{} (threshold)", l.profile.name));
    }
    out += "\n";
    if let Some(first) = e.leave_one_out.first() {
        for (k, held) in first.categories.iter().enumerate() {
            out += &format!("{:<24} {:>7}", held.category, held.tally.windows);
            for l in &e.leave_one_out {
                let cell = l.categories.get(k).map_or(String::new(), |h| {
                    let t = h
                        .threshold
                        .map_or("none".to_string(), |t| format!("{t:.6}"));
                    format!("{} ({t})", normalised_text(&h.tally, &l.profile))
                });
                out += &format!(" {cell:>32}");
            }
            out += "\n";
        }
    }
    out
}

/// One JSON document: each profile's normalised score at top level, then the details.
pub fn render_json(e: &Evaluation) -> Value {
    let mut doc = Map::new();
    for p in &e.profiles {
        doc.insert(
            p.profile.name.clone(),
            json!(p.total.normalised(&p.profile)),
        );
    }
    let by_profile = |f: &dyn Fn(&ProfileResult) -> Value| -> Value {
        Value::Object(
            e.profiles
                .iter()
                .map(|p| (p.profile.name.clone(), f(p)))
                .collect(),
        )
    };
    let tally_json = |t: &Tally, profile: &CostProfile| {
        json!({
            "normalised": t.normalised(profile),
            "raw": t.raw,
            "detected": t.detected,
            "false_positives": t.false_positives,
        })
    };
    doc.insert("thresholds".into(), by_profile(&|p| json!(p.threshold)));
    if let Some(x) = &e.cross {
        let per: Map<String, Value> = e
            .profiles
            .iter()
            .zip(&x.thresholds)
            .zip(&x.totals)
            .map(|((p, t), tally)| {
                let mut v = tally_json(tally, &p.profile);
                v["threshold"] = json!(t);
                (p.profile.name.clone(), v)
            })
            .collect();
        doc.insert(
            "thresholds_from".into(),
            json!({"corpus": x.chosen_on, "profiles": per}),
        );
    }
    doc.insert(
        "raw".into(),
        by_profile(&|p| tally_json(&p.total, &p.profile)),
    );
    let mut categories = Map::new();
    if let Some(first) = e.profiles.first() {
        for (k, (category, tally)) in first.categories.iter().enumerate() {
            let mut entry = Map::new();
            entry.insert("windows".into(), json!(tally.windows));
            for p in &e.profiles {
                if let Some((_, t)) = p.categories.get(k) {
                    entry.insert(p.profile.name.clone(), tally_json(t, &p.profile));
                }
            }
            categories.insert(category.clone(), Value::Object(entry));
        }
    }
    doc.insert("categories".into(), Value::Object(categories));
    doc.insert("leave_one_category_out".into(), leave_one_out_json(e));
    doc.insert("detector".into(), json!(e.detector));
    doc.insert("windows".into(), json!(e.windows));
    doc.insert("files".into(), json!(e.files));
    doc.insert(
        "top_score".into(),
        e.top_score
            .map_or(Value::Null, |(v, rows)| json!({"value": v, "rows": rows})),
    );
    let mut per_file = Map::new();
    if let Some(first) = e.profiles.first() {
        for (k, (name, tally)) in first.files.iter().enumerate() {
            let mut entry = Map::new();
            entry.insert("windows".into(), json!(tally.windows));
            for p in &e.profiles {
                if let Some((_, t)) = p.files.get(k) {
                    entry.insert(p.profile.name.clone(), tally_json(t, &p.profile));
                }
            }
            per_file.insert(name.clone(), Value::Object(entry));
        }
    }
    doc.insert("per_file".into(), Value::Object(per_file));
    Value::Object(doc)
}
