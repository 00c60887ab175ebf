//! `homeostat evaluate nab` end to end: the published windowedGaussian scores (when the NAB
//! corpus is available) and the errors users see for bad input.

use homeostat::cli::Format;
use homeostat::cli::evaluate_nab::{self, Args};
use homeostat::corpus::parse_timestamp;
use homeostat_models::nab::rules::PreparedFile;
use homeostat_models::nab::score_file;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The NAB corpus (`scripts/test` sets `HOMEOSTAT_NAB_DIR` from `../shared/data/nab`), or
/// `None` with the reason printed; under `CI=true` it must be there: CI must not pass by
/// skipping.
fn nab_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HOMEOSTAT_NAB_DIR").map(PathBuf::from);
    if dir.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "HOMEOSTAT_NAB_DIR is not set under CI=true (scripts/test sets it from ../shared/data)"
        );
        println!("skipped: HOMEOSTAT_NAB_DIR not set");
    }
    dir
}

fn homeostat(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_homeostat"))
        .args(args)
        .output()
        .expect("run homeostat");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn windowed_gaussian_reproduces_the_published_scores() {
    let Some(nab) = nab_dir() else { return };
    let results = nab.join("results").join("windowedGaussian");
    let (ok, stdout, stderr) = homeostat(&[
        "evaluate",
        "nab",
        "--corpus",
        nab.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // NAB's final_results.json: 39.65 / 20.87 / 47.41 (standard / low FP / low FN).
    for (profile, expected) in [
        ("standard", 39.65),
        ("reward_low_FP_rate", 20.87),
        ("reward_low_FN_rate", 47.41),
    ] {
        let got = doc[profile].as_f64().unwrap();
        assert!((got - expected).abs() <= 0.01, "{profile}: {got}");
    }
    assert_eq!(doc["windows"], 116);
    assert_eq!(doc["files"], 58);
    assert_eq!(doc["detector"], "windowedGaussian");
    // artificialNoAnomaly has no windows: its score is raw only.
    assert!(doc["categories"]["artificialNoAnomaly"]["standard"]["normalised"].is_null());
}

/// Every row's score agrees with NAB's own per-row `S(t)_<profile>` column, at the threshold
/// our sweep chose.
#[test]
fn windowed_gaussian_per_row_scores_match_nab() {
    let Some(nab) = nab_dir() else { return };
    let results_dir = nab.join("results").join("windowedGaussian");
    let evaluation = evaluate_nab::evaluate(&Args {
        corpus: nab.clone(),
        detector: None,
        results: Some(results_dir.clone()),
        thresholds_from: None,
        format: Format::Json,
    })
    .unwrap();
    let labels =
        homeostat::corpus::read_windows(&nab.join("labels/combined_windows.json")).unwrap();
    let mut checked = 0;
    for (name, windows) in &labels {
        let (category, file) = name.split_once('/').unwrap();
        let path = results_dir
            .join(category)
            .join(format!("windowedGaussian_{file}"));
        // One pass over the file (the debug-build CSV reader is the slow part of this test).
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let headers = reader.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let ts_col = col("timestamp");
        let score_col = col("anomaly_score");
        let reference_cols: Vec<usize> = evaluation
            .profiles
            .iter()
            .map(|p| col(&format!("S(t)_{}", p.profile.name)))
            .collect();
        let (mut ts, mut scores, mut reference) = (Vec::new(), Vec::new(), Vec::new());
        for record in reader.records() {
            let record = record.unwrap();
            ts.push(parse_timestamp(&record[ts_col]).unwrap());
            scores.push(record[score_col].parse::<f64>().unwrap());
            reference.push(
                reference_cols
                    .iter()
                    .map(|&c| record[c].parse::<f64>().unwrap())
                    .collect::<Vec<_>>(),
            );
        }
        let prepared = PreparedFile::new(name, &ts, windows).unwrap();
        for (k, p) in evaluation.profiles.iter().enumerate() {
            let ours = score_file(&prepared, &scores, &p.profile, p.threshold).rows;
            for (row, (a, b)) in ours.iter().zip(reference.iter().map(|r| r[k])).enumerate() {
                assert!(
                    (a - b).abs() < 1e-6,
                    "{} row {row} ({}): ours {a}, NAB {b}",
                    path.display(),
                    p.profile.name
                );
                checked += 1;
            }
        }
    }
    // 365,558 rows × 3 profiles.
    assert_eq!(checked, 3 * 365_558);
}

/// A one-series corpus: `cat/a.csv` with 4 rows and one window on the last two.
fn tiny_corpus(dir: &Path) {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "corpus/data/cat/a.csv",
        "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,1\n2014-01-01 00:10:00,9\n2014-01-01 00:15:00,1\n",
    );
    write(
        "corpus/labels/combined_windows.json",
        r#"{"cat/a.csv": [["2014-01-01 00:10:00.000000", "2014-01-01 00:15:00.000000"]]}"#,
    );
    write(
        "corpus/config/profiles.json",
        r#"{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11}}}"#,
    );
    std::fs::create_dir_all(dir.join("det/cat")).unwrap();
}

fn run_on(dir: &Path) -> (bool, String, String) {
    homeostat(&[
        "evaluate",
        "nab",
        "--corpus",
        dir.join("corpus").to_str().unwrap(),
        "--results",
        dir.join("det").to_str().unwrap(),
    ])
}

#[test]
fn tiny_corpus_scores_a_perfect_detection() {
    let dir = tempfile::tempdir().unwrap();
    tiny_corpus(dir.path());
    // Probation is floor(0.15·4) = 0 rows; the window covers rows 2..=3 and row 2 scores 1:
    // detection at the window's first row earns A_TP = 1 → normalised 100·(1+1)/(1+1) = 100.
    std::fs::write(
        dir.path().join("det/cat/det_a.csv"),
        "timestamp,value,anomaly_score\n2014-01-01 00:00:00,1,0\n2014-01-01 00:05:00,1,0\n2014-01-01 00:10:00,9,1\n2014-01-01 00:15:00,1,0\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = run_on(dir.path());
    assert!(ok, "{stderr}");
    let line = stdout.lines().find(|l| l.starts_with("standard")).unwrap();
    assert!(
        line.contains("100.00") && line.contains("1.000000"),
        "{line}"
    );
}

#[test]
fn missing_results_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    tiny_corpus(dir.path());
    let (ok, _, stderr) = run_on(dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("det_a.csv") && stderr.contains("missing results file for cat/a.csv"),
        "{stderr}"
    );
}

#[test]
fn mismatched_timestamps_name_both_files_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    tiny_corpus(dir.path());
    // Third data row (line 4) is 00:10 in the data but 00:11 here.
    std::fs::write(
        dir.path().join("det/cat/det_a.csv"),
        "timestamp,anomaly_score\n2014-01-01 00:00:00,0\n2014-01-01 00:05:00,0\n2014-01-01 00:11:00,1\n2014-01-01 00:15:00,0\n",
    )
    .unwrap();
    let (ok, _, stderr) = run_on(dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("det_a.csv:4: timestamp differs from ")
            && stderr.contains("corpus/data/cat/a.csv line 4"),
        "{stderr}"
    );
}

#[test]
fn malformed_csv_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    tiny_corpus(dir.path());
    let cases: [(&str, &[&str]); 4] = [
        // A row with an extra field.
        (
            "timestamp,anomaly_score\n2014-01-01 00:00:00,0\n2014-01-01 00:05:00,0,7\n",
            &["det_a.csv:3: malformed CSV"],
        ),
        // A score that is not a number.
        (
            "timestamp,anomaly_score\n2014-01-01 00:00:00,0\n2014-01-01 00:05:00,high\n",
            &["det_a.csv:3: column \"anomaly_score\": \"high\" is not a number"],
        ),
        // No anomaly_score column at all.
        (
            "timestamp,score\n2014-01-01 00:00:00,0\n",
            &["det_a.csv:1: no \"anomaly_score\" column"],
        ),
        // Too few rows (2 of 4): the first missing row is line 4.
        (
            "timestamp,anomaly_score\n2014-01-01 00:00:00,0\n2014-01-01 00:05:00,0\n",
            &[
                "det_a.csv: 2 rows but ",
                "corpus/data/cat/a.csv has 4 (line 4",
            ],
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.path().join("det/cat/det_a.csv"), text).unwrap();
        let (ok, _, stderr) = run_on(dir.path());
        assert!(!ok);
        for e in expected {
            assert!(stderr.contains(e), "{e:?} not in {stderr:?}");
        }
    }
    // CRLF line ends: the bad value is still reported on line 3.
    std::fs::write(
        dir.path().join("det/cat/det_a.csv"),
        "timestamp,anomaly_score\r\n2014-01-01 00:00:00,0\r\n2014-01-01 00:05:00,x\r\n",
    )
    .unwrap();
    let (_, _, stderr) = run_on(dir.path());
    assert!(stderr.contains("det_a.csv:3: column"), "{stderr}");
}

#[test]
fn detector_mode_names_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    tiny_corpus(dir.path());
    let corpus = dir.path().join("corpus");
    let (ok, _, stderr) = homeostat(&[
        "evaluate",
        "nab",
        "--corpus",
        corpus.to_str().unwrap(),
        "--detector",
        "no-such-detector",
    ]);
    assert!(!ok);
    if homeostat_models::detect::NAMES.is_empty() {
        assert!(stderr.contains("no detectors are built in yet"), "{stderr}");
    } else {
        assert!(
            stderr.contains("unknown detector \"no-such-detector\"; known: ")
                && stderr.contains(homeostat_models::detect::NAMES[0]),
            "{stderr}"
        );
    }
}

#[test]
fn repeated_timestamps_are_scored_as_rows_but_may_not_split_a_window() {
    let dir = tempfile::tempdir().unwrap();
    tiny_corpus(dir.path());
    // NAB's corpus repeats timestamps (daylight saving): rows 0 and 1 share 00:00, outside the
    // window 00:10..00:15, so the file still scores. Probation floor(0.15·4) = 0; the window
    // covers rows 2..=3 and row 2 scores 1 → 100 again.
    std::fs::write(
        dir.path().join("corpus/data/cat/a.csv"),
        "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:00:00,1\n2014-01-01 00:10:00,9\n2014-01-01 00:15:00,1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("det/cat/det_a.csv"),
        "timestamp,anomaly_score\n2014-01-01 00:00:00,0\n2014-01-01 00:00:00,0\n2014-01-01 00:10:00,1\n2014-01-01 00:15:00,0\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = run_on(dir.path());
    assert!(ok, "{stderr}");
    let line = stdout.lines().find(|l| l.starts_with("standard")).unwrap();
    assert!(line.contains("100.00"), "{line}");

    // Timestamps leaving the window and coming back (00:10, 00:20, 00:12) cannot be scored.
    let scattered = "timestamp,anomaly_score\n2014-01-01 00:00:00,0\n2014-01-01 00:10:00,0\n2014-01-01 00:20:00,1\n2014-01-01 00:12:00,0\n";
    std::fs::write(
        dir.path().join("corpus/data/cat/a.csv"),
        scattered.replace("anomaly_score", "value"),
    )
    .unwrap();
    std::fs::write(dir.path().join("det/cat/det_a.csv"), scattered).unwrap();
    let (ok, _, stderr) = run_on(dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("cat/a.csv: the rows inside window") && stderr.contains("not consecutive"),
        "{stderr}"
    );
}

#[test]
fn detector_mode_runs_the_default_detector_deterministically() {
    if homeostat_models::detect::NAMES.is_empty() {
        println!("skipped: no detectors built in yet");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    tiny_corpus(dir.path());
    let corpus = dir.path().join("corpus");
    let args = [
        "evaluate",
        "nab",
        "--corpus",
        corpus.to_str().unwrap(),
        "--format",
        "json",
    ];
    let (ok, first, stderr) = homeostat(&args);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(doc["detector"], homeostat_models::detect::NAMES[0]);
    assert_eq!(doc["windows"], 1);
    // With one window the normalised score lies between all-missed-plus-FPs and perfect.
    let standard = doc["standard"].as_f64().unwrap();
    assert!(standard <= 100.0, "{standard}");
    let (_, second, _) = homeostat(&args);
    assert_eq!(first, second, "same corpus, same detector: same output");
}

/// Three categories (`a`, `b`, `c`), one 20-row file each at 5-minute steps, one window on rows
/// 10..=14 (00:50–01:10). Probation is floor(0.15·20) = 3 rows; a detection at row 10 earns
/// the full reward 1 and a false positive before the window costs A_FP = 0.11. Scores: `a` 0.3
/// at row 10; `b` 0.9 at row 10 and 0.3 at rows 4–6; `c` 0.9 at row 10.
///
/// In sample: at 0.9 the total is −1 + 1 + 1 = 1, at 0.3 it is 3 − 0.33 = 2.67 → threshold 0.3,
/// 100·(2.67 + 3)/6 = 94.50.
/// Held out: a → chosen on b, c: 2 at 0.9 beats 1.67 at 0.3, so a is missed (−1);
/// b → chosen on a, c: 2 at 0.3 beats 0 at 0.9, b scores 1 − 0.33 = 0.67;
/// c → chosen on a, b: 1.67 at 0.3 beats 0 at 0.9, c scores 1.
/// Total 0.67 → 100·(0.67 + 3)/6 = 61.17; a alone: 100·(−1 + 1)/2 = 0, b 83.5, c 100.
fn three_category_corpus(dir: &Path) {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let stamp = |row: usize| format!("2014-01-01 {:02}:{:02}:00", row * 5 / 60, row * 5 % 60);
    let mut labels = Vec::new();
    for (category, hits) in [
        ("a", vec![(10, 0.3)]),
        ("b", vec![(10, 0.9), (4, 0.3), (5, 0.3), (6, 0.3)]),
        ("c", vec![(10, 0.9)]),
    ] {
        let (mut data, mut results) = (
            String::from("timestamp,value\n"),
            String::from("timestamp,value,anomaly_score\n"),
        );
        for row in 0..20 {
            let score = hits
                .iter()
                .find(|(r, _)| *r == row)
                .map_or(0.0, |(_, s)| *s);
            data += &format!("{},1\n", stamp(row));
            results += &format!("{},1,{score}\n", stamp(row));
        }
        write(&format!("corpus/data/{category}/f.csv"), &data);
        write(&format!("det/{category}/det_f.csv"), &results);
        labels.push(format!(
            r#""{category}/f.csv": [["{}.000000", "{}.000000"]]"#,
            stamp(10),
            stamp(14)
        ));
    }
    write(
        "corpus/labels/combined_windows.json",
        &format!("{{{}}}", labels.join(", ")),
    );
    write(
        "corpus/config/profiles.json",
        r#"{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11}}}"#,
    );
}

#[test]
fn leave_one_category_out_scores_each_category_at_the_others_threshold() {
    let dir = tempfile::tempdir().unwrap();
    three_category_corpus(dir.path());
    let corpus = dir.path().join("corpus");
    let det = dir.path().join("det");
    let (ok, stdout, stderr) = homeostat(&[
        "evaluate",
        "nab",
        "--corpus",
        corpus.to_str().unwrap(),
        "--results",
        det.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let near = |v: &serde_json::Value, expected: f64| {
        let got = v.as_f64().unwrap_or(f64::NAN);
        assert!((got - expected).abs() < 1e-9, "{got} ≠ {expected}");
    };
    near(&doc["standard"], 100.0 * 5.67 / 6.0);
    near(&doc["thresholds"]["standard"], 0.3);
    let loco = &doc["leave_one_category_out"]["standard"];
    near(&loco["normalised"], 100.0 * 3.67 / 6.0);
    near(&loco["raw"], 0.67);
    assert_eq!(loco["windows"], 3);
    assert_eq!(loco["detected"], 2);
    assert_eq!(loco["false_positives"], 3);
    for (category, threshold, normalised) in [
        ("a", 0.9, 0.0),
        ("b", 0.3, 100.0 * 1.67 / 2.0),
        ("c", 0.3, 100.0),
    ] {
        let held = &loco["categories"][category];
        near(&held["threshold"], threshold);
        near(&held["normalised"], normalised);
        assert_eq!(held["windows"], 1);
    }

    // The table shows the same figures.
    let (ok, table, stderr) = homeostat(&[
        "evaluate",
        "nab",
        "--corpus",
        corpus.to_str().unwrap(),
        "--results",
        det.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let section = table
        .split("leave-one-category-out")
        .nth(1)
        .expect("a leave-one-category-out section");
    let line = |start: &str| {
        section
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in {table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("standard")[1..], ["61.17", "0.670", "2/3", "3"]);
    assert_eq!(line("a ")[1..], ["1", "0.00", "(0.900000)"]);
    assert_eq!(line("b ")[1..], ["1", "83.50", "(0.300000)"]);
}
