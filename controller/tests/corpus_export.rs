//! `homeostat corpus export` end to end: the NAB layout, the rows, the label windows by NAB's
//! rule, the errors users see for bad arguments; and `evaluate nab --thresholds-from`.

use std::path::Path;
use std::process::Command;

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

fn seconds(stamp: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("{stamp}: {e}"))
        .and_utc()
        .timestamp()
}

fn rows(path: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,value"), "{}", path.display());
    lines
        .map(|l| {
            let (t, v) = l.split_once(',').unwrap();
            (t.to_string(), v.parse::<f64>().unwrap())
        })
        .collect()
}

/// One seed of bad-canary (its checkout canary fails half its requests with a fast HTTP 500):
/// seed 0 is a faulted run and, being even, also a clean twin; two exported services (checkout,
/// the policy's target, and frontend, the entry) × three signals × two runs = 12 files.
#[test]
fn bad_canary_exports_a_labelled_nab_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let out_s = out.to_str().unwrap();
    let (ok, stdout, stderr) = homeostat(&[
        "corpus",
        "export",
        out_s,
        "--seeds",
        "1",
        "--scenarios",
        "bad-canary",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("wrote 12 series from 2 runs (2 label windows)"),
        "{stdout}"
    );

    let labels: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("labels/combined_windows.json")).unwrap(),
    )
    .unwrap();
    let labels = labels.as_object().unwrap();
    assert_eq!(labels.len(), 12);
    let profiles: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config/profiles.json")).unwrap())
            .unwrap();
    assert_eq!(
        profiles["reward_low_FN_rate"]["CostMatrix"]["fnWeight"],
        2.0
    );

    for (name, windows) in labels {
        let windows = windows.as_array().unwrap();
        let path = out.join("data").join(name);
        let rows = rows(&path);
        // Scrapes every 15 s from 0; a row needs two scrapes (one interval), so the first is
        // stamped 00:00:15; the last visible before the 3 h end (15 s telemetry lag) is the
        // scrape at 02:59:30. (10770 − 15)/15 + 1 = 718 rows.
        assert_eq!(rows.len(), 718, "{name}");
        assert_eq!(rows[0].0, "2026-01-01 00:00:15", "{name}");
        assert_eq!(rows[717].0, "2026-01-01 02:59:30", "{name}");
        for pair in rows.windows(2) {
            assert_eq!(seconds(&pair[1].0) - seconds(&pair[0].0), 15, "{name}");
        }
        // Only the faulted run's error ratio is labelled, on checkout and on frontend (which
        // calls it): no surge (request rate) and fast 500s (p99 within its objective).
        let labelled = !name.contains("-clean-") && name.ends_with("-error_ratio.csv");
        assert_eq!(windows.len(), usize::from(labelled), "{name}: {windows:?}");
        if name.contains("-clean-") && name.ends_with("-error_ratio.csv") {
            assert!(
                rows.iter().all(|r| r.1 == 0.0),
                "{name}: no fault, no error"
            );
        }
        let Some(w) = windows.first() else { continue };
        let (start, end) = (w[0].as_str().unwrap(), w[1].as_str().unwrap());
        // NAB's rule: ⌊0.1 · 718 / 1⌋ = 71 rows, 35 either side of the anomaly row: 70
        // intervals of 15 s (the fault lies in 45–80 % of the run, so nothing is clipped).
        assert_eq!(seconds(end) - seconds(start), 70 * 15, "{name}");
        let first = rows.iter().position(|r| r.0 == start).unwrap();
        // Before the window (8¾ minutes before the impact) nothing fails yet; from the anomaly
        // row on, the canary's errors show within two intervals.
        assert!(rows[..first].iter().all(|r| r.1 == 0.0), "{name}");
        let centre = first + 35;
        let soon = rows[centre..=centre + 2]
            .iter()
            .map(|r| r.1)
            .fold(0.0, f64::max);
        assert!(
            soon > 0.01,
            "{name}: error ratio {soon} just after the onset"
        );
    }

    // Deterministic: the same arguments write the same files.
    let again = dir.path().join("again");
    let (ok, _, stderr) = homeostat(&[
        "corpus",
        "export",
        again.to_str().unwrap(),
        "--seeds",
        "1",
        "--scenarios",
        "bad-canary",
    ]);
    assert!(ok, "{stderr}");
    for name in labels.keys() {
        assert_eq!(
            std::fs::read(out.join("data").join(name)).unwrap(),
            std::fs::read(again.join("data").join(name)).unwrap(),
            "{name}"
        );
    }

    // Exporting over an existing corpus is refused, naming the file.
    let (ok, _, stderr) = homeostat(&["corpus", "export", out_s, "--seeds", "1"]);
    assert!(!ok);
    assert!(
        stderr.contains("combined_windows.json: already exists"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    let (ok, _, stderr) = homeostat(&["corpus", "export", out, "--scenarios", "no-such"]);
    assert!(!ok);
    assert!(
        stderr.contains("no built-in scenario named \"no-such\""),
        "{stderr}"
    );
    let (ok, _, stderr) = homeostat(&["corpus", "export", out, "--seeds", "0"]);
    assert!(!ok);
    assert!(stderr.contains("--seeds must be at least 1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!Path::new(out).join("labels").exists());
}

/// Thresholds chosen on the corpus itself are the in-sample ones, so the cross-corpus figures
/// of a corpus scored "at the thresholds chosen on" itself equal its in-sample figures.
#[test]
fn thresholds_from_the_same_corpus_reproduce_the_in_sample_score() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let write = |rel: &str, text: &str| {
        let path = corpus.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    // 200 rows of 1.0/1.1/1.2 (5-minute steps, 00:00–16:35) with a spike to 9 at row 150,
    // labelled 145..=155. `conformal` is silent for its first 60 points (30 set the yardstick,
    // 30 calibrate), so the spike is judged against 90 calibrated points; far beyond them, it
    // has the top score.
    let stamp = |row: usize| format!("2014-01-01 {:02}:{:02}:00", row * 5 / 60, row * 5 % 60);
    let mut data = String::from("timestamp,value\n");
    for row in 0..200 {
        let v = if row == 150 {
            9.0
        } else {
            1.0 + (row % 3) as f64 * 0.1
        };
        data += &format!("{},{v}\n", stamp(row));
    }
    write("data/cat/a.csv", &data);
    write(
        "labels/combined_windows.json",
        &format!(
            r#"{{"cat/a.csv": [["{}.000000", "{}.000000"]]}}"#,
            stamp(145),
            stamp(155)
        ),
    );
    write(
        "config/profiles.json",
        r#"{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11}}}"#,
    );
    let c = corpus.to_str().unwrap();
    let (ok, stdout, stderr) = homeostat(&[
        "evaluate",
        "nab",
        "--corpus",
        c,
        "--detector",
        "conformal",
        "--format",
        "json",
        "--thresholds-from",
        c,
    ]);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let cross = &doc["thresholds_from"]["profiles"]["standard"];
    assert_eq!(doc["thresholds_from"]["corpus"], c);
    assert_eq!(cross["threshold"], doc["thresholds"]["standard"]);
    assert_eq!(cross["normalised"], doc["standard"]);
    assert_eq!(cross["raw"], doc["raw"]["standard"]["raw"]);
    assert_eq!(cross["detected"], doc["raw"]["standard"]["detected"]);
    // The spike is detected (in sample, and so across), at a threshold above 0.
    assert_eq!(cross["detected"], 1, "{stdout}");
    assert!(cross["threshold"].as_f64().unwrap() > 0.0, "{stdout}");

    // A missing other corpus is an error naming it.
    let missing = dir.path().join("nowhere");
    let (ok, _, stderr) = homeostat(&[
        "evaluate",
        "nab",
        "--corpus",
        c,
        "--detector",
        "conformal",
        "--thresholds-from",
        missing.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("nowhere"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
