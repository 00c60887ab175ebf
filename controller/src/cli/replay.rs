//! `homeostat replay`: runs scenarios (the built-in suite when none is given) through the
//! simulated mesh under each baseline and homeostat, and prints what happened.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use homeostat_simulator::runs::{RunKind, RunResult};
use homeostat_simulator::scenario::Scenario;
use homeostat_simulator::{compare, suite};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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

    let bar = ProgressBar::new((loaded.len() * kinds.len()) as u64);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }

    // Every (scenario, run) pair is independent and deterministic: they are simulated on
    // `--jobs` threads, then put back in the order a one-at-a-time loop would produce.
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
    let jobs: Vec<(usize, RunKind)> = loaded
        .iter()
        .enumerate()
        .flat_map(|(i, (s, _))| {
            kinds
                .iter()
                .filter(|k| k.not_applicable(s).is_none())
                .map(move |&k| (i, k))
        })
        .collect();
    let workers = match args.jobs {
        Some(0) => anyhow::bail!("--jobs must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut done = in_parallel(&jobs, workers, |&(i, k)| {
        let s = &loaded[i].0;
        bar.set_message(format!("{} / {}", s.name, k.name()));
        let r = homeostat_simulator::runs::run(s, k).map_err(|e| e.to_string());
        bar.inc(1);
        r
    })
    .into_iter();

    let mut reports = Vec::new();
    for (s, notes) in loaded {
        let mut runs = Vec::new();
        let mut notes = notes;
        let mut not_applicable: Vec<String> = Vec::new();
        for &k in &kinds {
            if let Some(why) = k.not_applicable(&s) {
                // One note per kind of run (the hpa sweep shares one).
                let what = match k {
                    RunKind::Hpa(_) => "hpa".to_string(),
                    other => other.name(),
                };
                if !not_applicable.contains(&what) {
                    notes.push(format!("{what}: not run ({why})"));
                    not_applicable.push(what);
                }
                bar.inc(1);
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
                Some(Err(e)) => notes.push(format!("{}: {e}", k.name())),
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
    bar.finish_and_clear();

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
    Ok(())
}

/// `f` over every job on up to `workers` threads (each takes the next job not yet taken); the
/// results in job order.
fn in_parallel<T: Sync, R: Send>(jobs: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.clamp(1, jobs.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        mine.push((i, f(job)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    results.sort_by_key(|&(i, _)| i);
    results.into_iter().map(|(_, r)| r).collect()
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

#[cfg(test)]
mod tests {
    use super::in_parallel;

    #[test]
    fn results_come_back_in_job_order_whatever_finishes_first() {
        let jobs: Vec<u64> = (0..40).collect();
        // Later jobs finish first: job i sleeps (40 − i) % 7 ms.
        let f = |&i: &u64| {
            std::thread::sleep(std::time::Duration::from_millis((40 - i) % 7));
            i * 2
        };
        let want: Vec<u64> = jobs.iter().map(|i| i * 2).collect();
        for workers in [1, 3, 8, 100] {
            assert_eq!(in_parallel(&jobs, workers, f), want, "{workers} workers");
        }
        assert!(in_parallel(&[] as &[u64], 4, f).is_empty());
    }
}
