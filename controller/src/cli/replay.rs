//! `homeostat replay`: runs scenarios (the built-in suite when none is given) through the
//! simulated mesh under each baseline and homeostat, and prints what happened.

use std::path::PathBuf;

use anyhow::{Context, Result};
use homeostat_simulator::runs::{RunKind, RunResult};
use homeostat_simulator::scenario::Scenario;
use homeostat_simulator::{compare, suite};
use serde::Serialize;

use super::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files; none runs the built-in suite embedded in the binary.
    pub scenarios: Vec<PathBuf>,
    /// Baselines to run beside homeostat, comma separated: istio, tuned, hpa (the 70 % default
    /// and the 40–90 % sweep), hpa-N (one target), flagger.
    #[arg(long, default_value = "istio,tuned,hpa,flagger", value_delimiter = ',')]
    pub baseline: Vec<String>,
    /// Override every scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write report.html and CSV time series here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Compress each scenario's timeline by this factor (e.g. 0.1 for a quick look).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Print the JSON schema of scenario files and exit.
    #[arg(long)]
    pub print_schema: bool,
    /// Runs simulated at once (default: one per CPU). Each run is deterministic and
    /// independent of the others, so the output does not depend on this.
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// One scenario's runs, as printed.
#[derive(Debug, Serialize)]
struct ScenarioReport {
    scenario: String,
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    runs: Vec<RunResult>,
    /// homeostat against the best baseline and the HPA frontier (absent without both).
    #[serde(skip_serializing_if = "Option::is_none")]
    comparison: Option<compare::Comparison>,
    #[serde(skip)]
    objectives: Option<homeostat_simulator::record::Objectives>,
}

#[derive(Debug, Serialize)]
struct Skipped {
    scenario: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Document {
    scenarios: Vec<ScenarioReport>,
    skipped: Vec<Skipped>,
}

pub fn run(args: Args) -> Result<()> {
    if args.print_schema {
        println!(
            "{}",
            serde_json::to_string_pretty(&homeostat_simulator::scenario::json_schema())?
        );
        return Ok(());
    }
    let mut kinds = Vec::new();
    for b in &args.baseline {
        if b.trim().is_empty() {
            continue;
        }
        let ks = RunKind::parse(b).map_err(|e| anyhow::anyhow!("--baseline: {e}"))?;
        for k in ks {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    kinds.push(RunKind::Homeostat);
    kinds.sort();
    kinds.dedup();
    if !(args.scale.is_finite() && args.scale > 0.0) {
        anyhow::bail!("--scale must be positive, got {}", args.scale);
    }
    let workers = match args.jobs {
        Some(0) => anyhow::bail!("--jobs must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };

    let mut loaded: Vec<(Scenario, Vec<String>)> = Vec::new();
    let mut skipped = Vec::new();
    if args.scenarios.is_empty() {
        for b in suite::builtin() {
            match b {
                Ok(s) => loaded.push((s, Vec::new())),
                Err(skip) => skipped.push(Skipped {
                    scenario: skip.name,
                    reason: skip.reason,
                }),
            }
        }
    } else {
        for p in &args.scenarios {
            let s = Scenario::load(p)?;
            loaded.push((s, Vec::new()));
        }
    }

    // Every (scenario, run) pair is independent and deterministic: they are simulated on
    // `--jobs` threads (`parallel_map_on`, with its progress bar on a terminal), and come back
    // in the order a one-at-a-time loop would produce.
    let loaded: Vec<(Scenario, Vec<String>)> = loaded
        .into_iter()
        .map(|(mut s, notes)| {
            if let Some(seed) = args.seed {
                s.seed = seed;
            }
            if args.scale != 1.0 {
                s = s.scaled(args.scale);
            }
            (s, notes)
        })
        .collect();
    // Per scenario, each kind of run with why it does not apply (`None`: it is run).
    let plans: Vec<Vec<(RunKind, Option<String>)>> = loaded
        .iter()
        .map(|(s, _)| kinds.iter().map(|&k| (k, k.not_applicable(s))).collect())
        .collect();
    let jobs: Vec<(usize, RunKind)> = plans
        .iter()
        .enumerate()
        .flat_map(|(i, plan)| {
            plan.iter()
                .filter(|(_, why)| why.is_none())
                .map(move |&(k, _)| (i, k))
        })
        .collect();
    let mut done = crate::parallel::parallel_map_on("simulating", &jobs, workers, |&(i, k)| {
        // A run that fails is a note of its scenario, not the end of the replay.
        Ok(homeostat_simulator::runs::run(&loaded[i].0, k).map_err(|e| e.to_string()))
    })?
    .into_iter();

    let mut reports = Vec::new();
    let mut failed = 0usize;
    for ((s, notes), plan) in loaded.into_iter().zip(plans) {
        let mut runs = Vec::new();
        let mut notes = notes;
        let mut not_applicable: Vec<String> = Vec::new();
        for (k, why) in plan {
            if let Some(why) = why {
                // One note per kind of run (the hpa sweep shares one).
                let what = match k {
                    RunKind::Hpa(_) => "hpa".to_string(),
                    other => other.name(),
                };
                if !not_applicable.contains(&what) {
                    notes.push(format!("{what}: not run ({why})"));
                    not_applicable.push(what);
                }
                continue;
            }
            match done.next() {
                Some(Ok(r)) => {
                    for n in &r.notes {
                        if !notes.contains(n) {
                            notes.push(n.clone());
                        }
                    }
                    runs.push(r)
                }
                Some(Err(e)) => {
                    failed += 1;
                    notes.push(format!("{}: {e}", k.name()));
                }
                None => anyhow::bail!("internal: fewer run results than runs"),
            }
        }
        let points: Vec<compare::Point> = runs
            .iter()
            .map(|r| compare::Point {
                run: r.kind.name(),
                slo_violation_minutes: r.metrics.slo_violation_minutes,
                replica_hours: r.metrics.replica_hours,
            })
            .collect();
        reports.push(ScenarioReport {
            scenario: s.name.clone(),
            description: s.description.clone(),
            notes,
            comparison: compare::compare(&points),
            runs,
            objectives: Some(homeostat_simulator::runs::objectives(&s)),
        });
    }

    if let Some(dir) = &args.out {
        write_outputs(dir, &reports)?;
    }
    let doc = Document {
        scenarios: reports,
        skipped,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        Format::Table => print_table(&doc),
    }
    // Everything that ran is printed and written first; a run that could not be simulated
    // still fails the command, so a script does not take a report with holes for a whole one.
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} runs could not be simulated; each one's error is a note of its scenario above",
            jobs.len()
        );
    }
    Ok(())
}

/// `DIR/report.html` and one CSV per scenario and run (simreport's report), plus summary.json.
fn write_outputs(dir: &std::path::Path, reports: &[ScenarioReport]) -> Result<()> {
    use homeostat_simulator::report;
    let scenarios: Vec<report::ScenarioResult> = reports
        .iter()
        .map(|r| {
            let objectives = r
                .objectives
                .clone()
                .unwrap_or_else(|| homeostat_simulator::record::Objectives::new(0.999, 300.0));
            report::ScenarioResult {
                name: r.scenario.clone(),
                description: r.description.clone(),
                runs: r
                    .runs
                    .iter()
                    .map(|run| report::RunResult {
                        name: run.kind.name(),
                        record: run.record.clone(),
                        metrics: run.metrics.clone(),
                    })
                    .collect(),
                objectives,
            }
        })
        .collect();
    let html = report::write_report(dir, &scenarios)?;
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(reports)?)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {} and CSV series beside it", html.display());
    Ok(())
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

fn print_table(doc: &Document) {
    println!(
        "{:<16} {:<10} {:>9} {:>7} {:>7} {:>8} {:>7} {:>8} {:>7} {:>7} {:>6} {:>7} {:>6} {:>8}",
        "scenario",
        "run",
        "requests",
        "SLO-min",
        "budget",
        "avail%",
        "p50ms",
        "p99ms",
        "rep-h",
        "retries",
        "ejects",
        "actions",
        "scales",
        "TTD/TTM s"
    );
    for r in &doc.scenarios {
        for run in &r.runs {
            let m = &run.metrics;
            let ttx = m
                .faults
                .iter()
                .map(|f| format!("{}/{}", opt(f.ttd_s, 0), opt(f.ttm_s, 0)))
                .collect::<Vec<_>>()
                .join(" ");
            // Replica changes (the HPA's own scaling, in the hpa and homeostat runs) are counted
            // apart from the changes a policy engine made.
            let scales = m.actions.iter().filter(|a| a.knob == "replicas").count();
            println!(
                "{:<16} {:<10} {:>9} {:>7} {:>7} {:>8} {:>7} {:>8} {:>7.1} {:>7} {:>6} {:>7} {:>6} {:>8}",
                r.scenario,
                run.kind.name(),
                m.requests,
                m.slo_violation_minutes,
                opt(m.error_budget_burned, 2),
                opt(m.availability.map(|a| a * 100.0), 3),
                opt(m.p50_ms, 1),
                opt(m.p99_ms, 1),
                m.replica_hours,
                m.retries,
                m.ejections,
                m.actions.len() - scales,
                scales,
                ttx
            );
        }
        if let Some(c) = &r.comparison {
            println!(
                "  homeostat {} SLO-min / {:.1} rep-h vs best baseline {} {} / {:.1}: {}{}; target {}",
                c.homeostat.slo_violation_minutes,
                c.homeostat.replica_hours,
                c.best_baseline.run,
                c.best_baseline.slo_violation_minutes,
                c.best_baseline.replica_hours,
                c.ratio_text(),
                match c.below_frontier {
                    Some(true) => ", below the HPA frontier",
                    Some(false) => ", not below the HPA frontier",
                    None => "",
                },
                if c.target_met { "met" } else { "not met" }
            );
        }
        for n in &r.notes {
            println!("  note: {n}");
        }
    }
    for s in &doc.skipped {
        println!("skipped {}: {}", s.scenario, s.reason);
    }
}
