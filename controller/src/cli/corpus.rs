//! `homeostat corpus export DIR`: writes the simulated incident corpus
//! ([`homeostat_simulator::corpus`]) in NAB's layout, so `evaluate nab --corpus DIR` scores
//! detectors on our own domain:
//!
//! ```text
//! DIR/data/<scenario>/<seedK[-clean]>-<service>-<signal>.csv   timestamp,value
//! DIR/labels/combined_windows.json                            {"<scenario>/<file>": [[start, end], ..]}
//! DIR/config/profiles.json                                    NAB's three cost profiles
//! ```
//!
//! Only the generator lives in the repository; the data are regenerated on demand and are the
//! same for the same `--seeds`.

use anyhow::{Context, Result, bail};
use chrono::DateTime;
use homeostat_simulator::corpus::{self, Series, Variant};
use homeostat_simulator::suite;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::parallel::parallel_map;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Simulate incidents of the built-in scenarios and write them as a NAB-format corpus.
    Export(ExportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Output directory (created; must not already hold a corpus).
    pub dir: PathBuf,
    /// Seeds per scenario (each a faulted run; every other seed also a clean twin).
    #[arg(long, default_value_t = 4)]
    pub seeds: u64,
    /// Only these built-in scenarios (comma separated names); default: every one with a fault.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
}

/// The runs start at this instant (2026-01-01 00:00:00 UTC); NAB timestamps are naive UTC.
const EPOCH: i64 = 1_767_225_600;

/// NAB's published cost profiles (numenta/NAB config/profiles.json: A_TP, A_FN, A_FP).
const PROFILES: [(&str, f64, f64, f64); 3] = [
    ("standard", 1.0, 1.0, 0.11),
    ("reward_low_FP_rate", 1.0, 1.0, 0.22),
    ("reward_low_FN_rate", 1.0, 2.0, 0.11),
];

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Export(args) => {
            let summary = export(&args)?;
            println!("{summary}");
            Ok(())
        }
    }
}

/// The variants the arguments ask for.
pub fn variants(args: &ExportArgs) -> Result<Vec<Variant>> {
    let mut bases = Vec::new();
    for b in suite::builtin() {
        match b {
            Ok(s) if args.scenarios.is_empty() || args.scenarios.contains(&s.name) => bases.push(s),
            Ok(_) => {}
            Err(skip) => tracing::info!("corpus: skipping {}: {}", skip.name, skip.reason),
        }
    }
    for want in &args.scenarios {
        if !bases.iter().any(|b| &b.name == want) {
            bail!("--scenarios: no built-in scenario named {want:?}");
        }
    }
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let v = corpus::variants(&bases, args.seeds);
    if v.is_empty() {
        bail!("no built-in scenario with a fault was selected");
    }
    Ok(v)
}

/// Simulates every variant (2 threads) and writes the corpus; returns a one-line summary.
pub fn export(args: &ExportArgs) -> Result<String> {
    let labels_path = args.dir.join("labels").join("combined_windows.json");
    if labels_path.exists() {
        bail!(
            "{}: already exists; export into an empty directory",
            labels_path.display()
        );
    }
    let variants = variants(args)?;
    let runs = parallel_map("simulating", &variants, |v| {
        corpus::simulate(v).map_err(|e| anyhow::anyhow!("{}/{}: {e}", v.category, v.stem))
    })?;
    let mut windows = Map::new();
    let (mut files, mut labelled) = (0usize, 0usize);
    for series in runs.iter().flatten() {
        let rel = format!("{}/{}", series.category, series.file);
        write_series(&args.dir.join("data").join(&rel), series)?;
        let w: Vec<Value> = series
            .windows
            .iter()
            .map(|&(s, e)| json!([stamp(series.t_s[s]), stamp(series.t_s[e])]))
            .collect();
        labelled += w.len();
        windows.insert(rel, Value::Array(w));
        files += 1;
    }
    write_json(&labels_path, &Value::Object(windows))?;
    let profiles: Map<String, Value> = PROFILES
        .iter()
        .map(|&(name, tp, fn_, fp)| {
            (
                name.to_string(),
                json!({"CostMatrix": {"tpWeight": tp, "fnWeight": fn_, "fpWeight": fp, "tnWeight": 1.0}}),
            )
        })
        .collect();
    write_json(
        &args.dir.join("config").join("profiles.json"),
        &Value::Object(profiles),
    )?;
    Ok(format!(
        "wrote {files} series from {} runs ({labelled} label windows) to {}",
        variants.len(),
        args.dir.display()
    ))
}

/// `YYYY-MM-DD HH:MM:SS` of a run's second `t`.
fn stamp(t: u64) -> String {
    let secs = EPOCH.saturating_add(i64::try_from(t).unwrap_or(i64::MAX));
    DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn write_series(path: &Path, s: &Series) -> Result<()> {
    let mut text = String::from("timestamp,value\n");
    for (t, v) in s.t_s.iter().zip(&s.values) {
        if v.is_finite() {
            let _ = writeln!(text, "{},{v}", stamp(*t));
        } else {
            let _ = writeln!(text, "{},nan", stamp(*t));
        }
    }
    write_file(path, &text)
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    write_file(path, &format!("{v:#}\n"))
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_nab_timestamps() {
        // EPOCH is 2026-01-01 00:00:00; 3 h 15 s later is 03:00:15.
        assert_eq!(stamp(0), "2026-01-01 00:00:00");
        assert_eq!(stamp(3 * 3600 + 15), "2026-01-01 03:00:15");
    }
}
