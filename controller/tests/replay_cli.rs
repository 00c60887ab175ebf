//! `homeostat replay` end to end on a small scenario file: JSON and --out.

use clap::Parser;
use homeostat::cli::{Cli, run};

const SCENARIO: &str = "name: cli-canary
description: a canary that fails half its requests from minute 1
duration: 4m
seed: 3
topology:
  services:
    - name: api
      subsets:
        - { name: stable, pods: 3, weight: 90 }
        - { name: canary, pods: 1, weight: 10 }
      serviceTime: { lognormal: { median: 10ms, sigma: 0.4 } }
traffic:
  entries: [{ service: api }]
  profile: { constant: { rate: 50 } }
faults:
  - { at: 1m, service: api, subset: canary, errorRate: 0.5 }
policies:
  - metadata: { name: api }
    spec:
      target: { service: api, subsets: [stable, canary] }
";

#[test]
fn replay_writes_report_and_csvs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, SCENARIO).expect("write scenario");
    let out = dir.path().join("out");
    let cli = Cli::try_parse_from([
        "homeostat",
        "replay",
        file.to_str().expect("utf-8 path"),
        "--baseline",
        "istio,flagger,hpa",
        "--format",
        "json",
        "--out",
        out.to_str().expect("utf-8 path"),
    ])
    .expect("arguments parse");
    run(cli).expect("replay runs");
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html written");
    assert!(html.contains("cli-canary"));
    assert!(out.join("cli-canary_istio.csv").exists());
    assert!(out.join("cli-canary_flagger.csv").exists());
    assert!(out.join("cli-canary_homeostat.csv").exists());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("summary is JSON");
    let runs = summary[0]["runs"].as_array().expect("runs");
    let kinds: Vec<&str> = runs.iter().filter_map(|r| r["kind"].as_str()).collect();
    // No HPA in the scenario: the hpa sweep is not run, and a note says so.
    assert_eq!(kinds, ["istio", "flagger", "homeostat"]);
    let notes = summary[0]["notes"].to_string();
    assert!(notes.contains("hpa: not run"), "{notes}");
    // The comparison names a best baseline among the runs.
    let best = summary[0]["comparison"]["best_baseline"]["run"]
        .as_str()
        .expect("a best baseline");
    assert!(["istio", "flagger"].contains(&best), "{best}");
}

#[test]
fn an_unknown_baseline_is_an_error_listing_the_runs() {
    let cli = Cli::try_parse_from(["homeostat", "replay", "--baseline", "static"])
        .expect("arguments parse");
    let err = format!("{:#}", run(cli).expect_err("static is gone"));
    assert!(err.contains("static") && err.contains("istio"), "{err}");
}

#[test]
fn a_bad_scenario_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, SCENARIO.replace("seed: 3", "seed: three")).expect("write");
    let cli = Cli::try_parse_from(["homeostat", "replay", file.to_str().expect("utf-8")])
        .expect("arguments parse");
    let err = format!("{:#}", run(cli).expect_err("must fail"));
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("seed"), "{err}");
}

#[test]
fn a_run_that_cannot_be_simulated_fails_the_command_after_the_report() {
    // A rate typo (1e15 req/s for 4 minutes): every run is refused by the engine. The report
    // is still written, with each run's error as a note, and the command fails saying so.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("typo.yaml");
    std::fs::write(&file, SCENARIO.replace("rate: 50", "rate: 1e15")).expect("write");
    let out = dir.path().join("out");
    let cli = Cli::try_parse_from([
        "homeostat",
        "replay",
        file.to_str().expect("utf-8 path"),
        "--baseline",
        "istio",
        "--out",
        out.to_str().expect("utf-8 path"),
    ])
    .expect("arguments parse");
    let err = format!("{:#}", run(cli).expect_err("no run could be simulated"));
    assert_eq!(
        err,
        "2 of 2 runs could not be simulated; each one's error is a note of its scenario above"
    );
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary written");
    assert!(
        summary.contains("istio: traffic: about 2.400e17 entry requests"),
        "{summary}"
    );
}

#[test]
fn one_job_or_many_write_the_same_summary() {
    // Two scenarios × three runs each, simulated one at a time and on three threads: the runs
    // are independent and deterministic, and the summary must come out in the same order.
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, SCENARIO).expect("write a");
    std::fs::write(
        &b,
        SCENARIO
            .replace("name: cli-canary", "name: cli-canary-b")
            .replace("seed: 3", "seed: 4"),
    )
    .expect("write b");
    let summary = |jobs: &str| {
        let out = dir.path().join(format!("out-{jobs}"));
        let cli = Cli::try_parse_from([
            "homeostat",
            "replay",
            a.to_str().expect("utf-8 path"),
            b.to_str().expect("utf-8 path"),
            "--baseline",
            "istio,flagger",
            "--jobs",
            jobs,
            "--out",
            out.to_str().expect("utf-8 path"),
        ])
        .expect("arguments parse");
        run(cli).expect("replay runs");
        std::fs::read_to_string(out.join("summary.json")).expect("summary")
    };
    let one = summary("1");
    let three = summary("3");
    let parsed: serde_json::Value = serde_json::from_str(&one).expect("summary is JSON");
    let order: Vec<String> = parsed
        .as_array()
        .expect("scenarios")
        .iter()
        .flat_map(|s| {
            let name = s["scenario"].as_str().unwrap_or("?").to_string();
            s["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |r| format!("{name}/{}", r["kind"].as_str().unwrap_or("?")))
        })
        .collect();
    assert_eq!(
        order,
        [
            "cli-canary/istio",
            "cli-canary/flagger",
            "cli-canary/homeostat",
            "cli-canary-b/istio",
            "cli-canary-b/flagger",
            "cli-canary-b/homeostat"
        ]
    );
    assert_eq!(one, three, "the summary depends on --jobs");
}

#[test]
fn zero_jobs_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, SCENARIO).expect("write scenario");
    let cli = Cli::try_parse_from([
        "homeostat",
        "replay",
        file.to_str().expect("utf-8 path"),
        "--jobs",
        "0",
    ])
    .expect("arguments parse");
    let err = format!("{:#}", run(cli).expect_err("--jobs 0 must fail"));
    assert!(err.contains("--jobs"), "{err}");
}
