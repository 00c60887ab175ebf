//! `homeostat evaluate forecast`: rolling-origin backtest of every forecaster and both PromQL
//! baselines on every series of a corpus, reporting MASE and interval coverage per method,
//! overall and per category.
//!
//! Each series is put on its regular grid (step = modal gap, missing steps NaN), the horizon is
//! converted to steps of that series, and every method is backtested by
//! [`homeostat_models::backtest`] (no peeking; MASE scale from the training part only). A series
//! whose step is longer than the horizon cannot be forecast "one horizon ahead" and is skipped
//! with a note.
//!
//! `--series-out DIR` also writes every scored forecast, for plotting (`notebooks/`):
//! `DIR/<category>/<file>.csv` (the corpus' own layout) with columns
//! `method,origin_s,target_s,actual,forecast,lower,upper` — unix seconds of the forecast's
//! origin (the last point seen) and of its target, the target's value, the forecast and its
//! interval at `--coverage` (empty when the method gives none).

use super::Format;
use crate::parallel::parallel_map;
use anyhow::{Context, Result, bail};
use homeostat_models::backtest::{self, Backtest, Scored};
use homeostat_models::forecast;
use homeostat_models::series::TimeSeries;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Corpus directory (NAB layout: DIR/data/<category>/<file>.csv).
    #[arg(long)]
    pub corpus: PathBuf,
    /// Forecast horizon, Go-style duration: 1h, 30m, 90s, 1h30m.
    #[arg(long, value_parser = parse_horizon)]
    pub horizon: i64,
    /// Central coverage of the prediction intervals, in (0, 1).
    #[arg(long, default_value_t = 0.8, value_parser = parse_coverage)]
    pub coverage: f64,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Also write every scored forecast with its interval and the actual value to
    /// DIR/<category>/<file>.csv (columns: method,origin_s,target_s,actual,forecast,lower,upper).
    #[arg(long, value_name = "DIR")]
    pub series_out: Option<PathBuf>,
}

/// Parses a Go-style duration ("1h", "30m", "90s", "1h30m", "1.5h") into whole seconds > 0,
/// with the project's one duration parser.
pub fn parse_horizon(text: &str) -> std::result::Result<i64, String> {
    let d = homeostat_models::policy::Duration::parse(text).map_err(|e| e.to_string())?;
    let nanos = d.as_std().as_nanos();
    if nanos < 1_000_000_000 {
        return Err(format!("invalid horizon {text:?}: must be at least 1s"));
    }
    if nanos % 1_000_000_000 != 0 {
        return Err(format!(
            "invalid horizon {text:?}: not a whole number of seconds"
        ));
    }
    i64::try_from(nanos / 1_000_000_000).map_err(|_| format!("invalid horizon {text:?}: too large"))
}

fn parse_coverage(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(c) if c > 0.0 && c < 1.0 => Ok(c),
        _ => Err(format!(
            "invalid coverage {text:?}: expected a number strictly between 0 and 1"
        )),
    }
}

/// Backtest results of one series, one entry per method in [`forecast::NAMES`] order.
struct SeriesResult {
    category: String,
    results: Vec<Backtest>,
}

/// Aggregate of one method over a set of series.
#[derive(Debug, Clone, serde::Serialize)]
struct MethodSummary {
    method: &'static str,
    baseline: bool,
    /// Series with at least one scored forecast.
    series: usize,
    mase_mean: Option<f64>,
    mase_median: Option<f64>,
    /// Pooled share of interval forecasts covering the target; `None` = no intervals.
    coverage: Option<f64>,
    scored: usize,
}

fn summarise(rows: &[&SeriesResult]) -> Vec<MethodSummary> {
    forecast::NAMES
        .iter()
        .enumerate()
        .map(|(i, &method)| {
            let mut mases: Vec<f64> = rows.iter().filter_map(|r| r.results[i].mase()).collect();
            mases.sort_by(f64::total_cmp);
            let with_interval: usize = rows.iter().map(|r| r.results[i].with_interval).sum();
            let covered: usize = rows.iter().map(|r| r.results[i].covered).sum();
            MethodSummary {
                method,
                baseline: forecast::is_baseline(method),
                series: mases.len(),
                mase_mean: (!mases.is_empty())
                    .then(|| mases.iter().sum::<f64>() / mases.len() as f64),
                mase_median: homeostat_models::stats::median(&mases),
                coverage: (with_interval > 0).then(|| covered as f64 / with_interval as f64),
                scored: rows.iter().map(|r| r.results[i].scored).sum(),
            }
        })
        .collect()
}

/// (best of ours, better baseline, relative improvement of ours over it) by mean MASE.
fn target(overall: &[MethodSummary]) -> Option<(&'static str, &'static str, f64)> {
    let best = |baseline: bool| {
        overall
            .iter()
            .filter(|m| m.baseline == baseline)
            .filter_map(|m| m.mase_mean.map(|v| (m.method, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    let (ours, ours_mase) = best(false)?;
    let (base, base_mase) = best(true)?;
    Some((ours, base, 1.0 - ours_mase / base_mase))
}

pub fn run(args: Args) -> Result<()> {
    let corpus = crate::corpus::Corpus::load_series_only(&args.corpus)?;
    let mut notes = Vec::new();
    // (series index, grid values, step seconds, horizon in steps)
    let mut jobs = Vec::new();
    for (i, s) in corpus.series.iter().enumerate() {
        // A grid needs increasing times; NAB's own files repeat the daylight-saving hour and
        // step back once, so keep the first row of each time and say how many were dropped.
        let points = s.increasing_points();
        if s.irregular.is_some() {
            notes.push(format!(
                "{}: {} rows with a repeated or backward timestamp ignored",
                s.name,
                s.timestamps.len() - points.len()
            ));
        }
        let grid = TimeSeries::from_points(&points)
            .with_context(|| format!("{}: {}", args.corpus.join("data").display(), s.name))?;
        let step = grid.step();
        if args.horizon < step {
            notes.push(format!(
                "{}: skipped, its step ({step} s) is longer than the horizon ({} s)",
                s.name, args.horizon
            ));
            continue;
        }
        let h = ((args.horizon as f64 / step as f64).round() as usize).max(1);
        if args.horizon % step != 0 {
            notes.push(format!(
                "{}: horizon {} s is not a multiple of the step {step} s; using {h} steps",
                s.name, args.horizon
            ));
        }
        jobs.push((i, grid, h));
    }
    if jobs.is_empty() {
        bail!(
            "no series of {} can be forecast at a horizon of {} s",
            args.corpus.display(),
            args.horizon
        );
    }

    // jobs are in series order and parallel_map keeps input order, so output is deterministic.
    let detailed = args.series_out.is_some();
    let done = parallel_map("backtesting", &jobs, |(i, grid, h)| {
        let (results, scored) = backtest_all(grid, *h, args.coverage, detailed);
        if let Some(dir) = &args.series_out {
            write_series(&dir.join(&corpus.series[*i].name), grid, *h, &scored)?;
        }
        Ok((*i, results))
    })?;
    let rows: Vec<SeriesResult> = done
        .into_iter()
        .map(|(i, results)| SeriesResult {
            category: corpus.series[i].category.clone(),
            results,
        })
        .collect();

    let all: Vec<&SeriesResult> = rows.iter().collect();
    let overall = summarise(&all);
    let mut by_category: BTreeMap<&str, Vec<&SeriesResult>> = BTreeMap::new();
    for r in &rows {
        by_category.entry(&r.category).or_default().push(r);
    }
    let categories: BTreeMap<&str, Vec<MethodSummary>> = by_category
        .iter()
        .map(|(c, rs)| (*c, summarise(rs)))
        .collect();
    let target = target(&overall);

    match args.format {
        Format::Json => {
            let doc = json!({
                "corpus": args.corpus.display().to_string(),
                "horizon_seconds": args.horizon,
                "coverage": args.coverage,
                "series": rows.len(),
                "overall": overall,
                "categories": categories,
                "target": target.map(|(ours, base, improvement)| json!({
                    "best": ours, "better_baseline": base, "mase_improvement": improvement,
                })),
                "notes": notes,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Table => {
            println!(
                "forecast backtest: {} series, horizon {} s, interval coverage asked {}",
                rows.len(),
                args.horizon,
                args.coverage
            );
            print_table("overall", &overall);
            for (c, summary) in &categories {
                print_table(c, summary);
            }
            if let Some((ours, base, improvement)) = target {
                println!(
                    "\nbest homeostat method {ours}: mean MASE {:.1}% below the better PromQL \
                     baseline {base} (target: at least 25%)",
                    improvement * 100.0
                );
            }
            for n in &notes {
                println!("note: {n}");
            }
        }
    }
    Ok(())
}

/// Every method's backtest, in [`forecast::NAMES`] order; with `detailed`, also every scored
/// forecast per method (otherwise those lists are empty).
fn backtest_all(
    grid: &TimeSeries,
    h: usize,
    coverage: f64,
    detailed: bool,
) -> (Vec<Backtest>, Vec<Vec<Scored>>) {
    // Warm-up: two horizons and at least 24 points, so every method (the baselines read a 1 h
    // range) has something to say at the first scored origin and all share the same origins.
    let warmup = (2 * h).max(24);
    forecast::NAMES
        .iter()
        .map(|&name| {
            let mut f = forecast::by_name(name, grid.step())
                .unwrap_or_else(|| unreachable!("NAMES lists only buildable forecasters"));
            let mut scored = Vec::new();
            let result =
                backtest::run_detailed(f.as_mut(), grid.values(), h, warmup, coverage, |s| {
                    if detailed {
                        scored.push(s);
                    }
                });
            (result, scored)
        })
        .unzip()
}

/// Writes one series' scored forecasts (see the module docs for the columns).
fn write_series(path: &Path, grid: &TimeSeries, h: usize, scored: &[Vec<Scored>]) -> Result<()> {
    let cell = |v: f64| {
        if v.is_finite() {
            v.to_string()
        } else {
            String::new()
        }
    };
    let mut out = String::from("method,origin_s,target_s,actual,forecast,lower,upper\n");
    for (method, rows) in forecast::NAMES.iter().zip(scored) {
        for s in rows {
            out += &format!(
                "{method},{},{},{},{},{},{}\n",
                grid.time_at(s.origin),
                grid.time_at(s.origin + h),
                cell(s.actual),
                cell(s.forecast),
                cell(s.interval.map_or(f64::NAN, |i| i.0)),
                cell(s.interval.map_or(f64::NAN, |i| i.1))
            );
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

fn fmt(v: Option<f64>, pct: bool) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if pct => format!("{:.1}%", v * 100.0),
        Some(v) => format!("{v:.3}"),
    }
}

fn print_table(title: &str, rows: &[MethodSummary]) {
    println!("\n{title}");
    println!(
        "  {:<38} {:>10} {:>12} {:>9} {:>7} {:>9}",
        "method", "MASE mean", "MASE median", "coverage", "series", "scored"
    );
    for m in rows {
        let name = if m.baseline {
            format!("{} (PromQL)", m.method)
        } else {
            m.method.to_string()
        };
        println!(
            "  {:<38} {:>10} {:>12} {:>9} {:>7} {:>9}",
            name,
            fmt(m.mase_mean, false),
            fmt(m.mase_median, false),
            fmt(m.coverage, true),
            m.series,
            m.scored
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_parse_go_style() {
        assert_eq!(parse_horizon("1h"), Ok(3600));
        assert_eq!(parse_horizon("30m"), Ok(1800));
        assert_eq!(parse_horizon("90s"), Ok(90));
        assert_eq!(parse_horizon("1h30m"), Ok(5400));
        assert_eq!(parse_horizon("1.5h"), Ok(5400));
    }

    #[test]
    fn bad_horizons_are_clear_errors() {
        for (input, why) in [
            ("", "empty"),
            ("60", "missing unit"),
            ("1d", "unknown unit \"d\""),
            ("h", "expected numbers with units"),
            ("1..5h", "expected numbers with units"),
            ("0s", "at least 1s"),
            ("1.5s", "whole number of seconds"),
            ("0.5s", "at least 1s"),
            ("-1h", "expected numbers with units"),
        ] {
            let err = parse_horizon(input).unwrap_err();
            assert!(err.contains(why), "{input:?}: {err}");
        }
    }

    #[test]
    fn target_compares_best_ours_with_better_baseline() {
        let m = |method, baseline, mase| MethodSummary {
            method,
            baseline,
            series: 1,
            mase_mean: Some(mase),
            mase_median: Some(mase),
            coverage: None,
            scored: 1,
        };
        // Ours best 1.5, baselines best 2.0 → 1 − 1.5/2 = 25 %.
        let rows = [
            m("auto", false, 1.5),
            m("holt", false, 1.8),
            m("predict_linear", true, 3.0),
            m("double_exponential_smoothing", true, 2.0),
        ];
        let (ours, base, imp) = target(&rows).unwrap();
        assert_eq!((ours, base), ("auto", "double_exponential_smoothing"));
        assert!((imp - 0.25).abs() < 1e-12);
    }
}

#[cfg(test)]
mod corpus_tests {
    use super::*;

    fn write_corpus(dir: &std::path::Path, step: i64, n: usize) {
        let data = dir.join("data").join("synthetic");
        std::fs::create_dir_all(&data).unwrap();
        let mut csv = String::from("timestamp,value\n");
        for i in 0..n {
            let t = chrono::DateTime::from_timestamp(1_400_000_000 + i as i64 * step, 0).unwrap();
            csv += &format!(
                "{},{}\n",
                t.format("%Y-%m-%d %H:%M:%S"),
                10.0 + (i % 7) as f64
            );
        }
        std::fs::write(data.join("a.csv"), csv).unwrap();
    }

    fn args(dir: &std::path::Path, horizon: &str) -> Args {
        Args {
            corpus: dir.to_path_buf(),
            horizon: parse_horizon(horizon).unwrap(),
            coverage: 0.8,
            format: Format::Json,
            series_out: None,
        }
    }

    #[test]
    fn runs_on_an_unlabelled_corpus() {
        let dir = tempfile::tempdir().unwrap();
        write_corpus(dir.path(), 300, 200);
        run(args(dir.path(), "1h")).unwrap();
    }

    /// 200 points at 5-minute steps, value 10 + (i mod 7); horizon 1 h = 12 steps, warm-up
    /// max(2·12, 24) = 24 points, so origins run from row 23 to row 187 (the last with a target,
    /// 187 + 12 = 199) and every row's actual is the value 12 steps after its origin.
    #[test]
    fn series_out_writes_each_scored_forecast_against_its_actual() {
        let dir = tempfile::tempdir().unwrap();
        write_corpus(dir.path(), 300, 200);
        let out = dir.path().join("forecasts");
        let mut a = args(dir.path(), "1h");
        a.series_out = Some(out.clone());
        run(a).unwrap();
        let text = std::fs::read_to_string(out.join("synthetic").join("a.csv")).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("method,origin_s,target_s,actual,forecast,lower,upper")
        );
        let start = 1_400_000_000_i64;
        let mut per_method: BTreeMap<String, usize> = BTreeMap::new();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 7, "{line}");
            assert!(forecast::NAMES.contains(&f[0]), "{line}");
            let origin: i64 = f[1].parse().unwrap();
            let target: i64 = f[2].parse().unwrap();
            assert_eq!(target - origin, 3600, "{line}");
            let row = (origin - start) / 300;
            assert!((23..=187).contains(&row), "{line}");
            let actual: f64 = f[3].parse().unwrap();
            assert_eq!(actual, 10.0 + ((row + 12) % 7) as f64, "{line}");
            if !f[5].is_empty() {
                let (lower, upper): (f64, f64) = (f[5].parse().unwrap(), f[6].parse().unwrap());
                assert!(lower <= upper, "{line}");
            }
            *per_method.entry(f[0].to_string()).or_default() += 1;
        }
        // At most one forecast per origin and method: 187 − 23 + 1 = 165.
        assert!(!per_method.is_empty());
        assert!(per_method.values().all(|&n| n <= 165), "{per_method:?}");
        // The naive seasonal methods and the baselines answer from the first origin on.
        assert_eq!(per_method.values().max(), Some(&165), "{per_method:?}");
    }

    #[test]
    fn a_horizon_shorter_than_every_step_is_an_error() {
        // Hourly data cannot be forecast 30 minutes ahead.
        let dir = tempfile::tempdir().unwrap();
        write_corpus(dir.path(), 3600, 50);
        let err = run(args(dir.path(), "30m")).unwrap_err().to_string();
        assert!(err.contains("no series"), "{err}");
        let missing = run(args(&dir.path().join("nope"), "1h"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("not a directory"), "{missing}");
    }
}
