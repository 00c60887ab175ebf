//! The replay report: one self-contained `report.html` (inline SVG, no script, no network) and
//! a CSV time series per run beside it.
//!
//! Per scenario: a summary table (best value per row highlighted) and a grid of charts — one
//! column per run (e.g. static / hpa / homeostat), one row per signal (request rate, success
//! rate, p99, replicas, weights), each row on a shared y-axis so columns compare at a glance.
//! Injected faults are shaded red; actions are marked with a tick at the top of the chart (hover
//! for knob, summary and reason). Long runs are drawn from at most [`MAX_POINTS`] aggregated
//! points per line: request rate and weights averaged, success rate by the minimum and p99 and
//! replicas by the maximum of each group, so spikes stay visible. The CSVs hold every window.
//!
//! Output is deterministic: same results, byte-identical files.
//!
//! # Layout
//!
//! * this file — the page's types, its assembly, the files written, HTML escaping;
//! * [`csv`] — the per-run CSV series;
//! * `chart` — inline-SVG time-series charts (axes, ticks, colours, downsampling);
//! * `frontier` — the cost/SLO chart: SLO-violation minutes against replica-hours;
//! * `summary` — the summary and overview tables, the comparison line, action lists;
//! * `section` — one scenario's section.

use std::path::{Path, PathBuf};

use crate::record::{Objectives, RunMetrics, RunRecord};

mod chart;
pub mod csv;
mod frontier;
mod section;
mod summary;

pub use csv::{csv_name, series_csv};
use section::scenario_section;
use summary::overview;

/// Points per drawn line at most.
pub const MAX_POINTS: usize = 600;

/// One run of a scenario (a baseline or homeostat).
#[derive(Debug, Clone)]
pub struct RunResult {
    pub name: String,
    pub record: RunRecord,
    pub metrics: RunMetrics,
}

impl RunResult {
    pub fn new(name: impl Into<String>, record: RunRecord, objectives: &Objectives) -> Self {
        let metrics = record.finish(objectives);
        Self {
            name: name.into(),
            record,
            metrics,
        }
    }
}

/// All runs of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    /// What the scenario tests (one or two sentences).
    pub description: String,
    pub objectives: Objectives,
    pub runs: Vec<RunResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes `dir/report.html` and `dir/<scenario>_<run>.csv`; returns the HTML's path.
pub fn write_report(dir: &Path, scenarios: &[ScenarioResult]) -> Result<PathBuf, ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for s in scenarios {
        for r in &s.runs {
            let path = dir.join(csv_name(&s.name, &r.name));
            std::fs::write(&path, series_csv(&r.record.series())).map_err(io(&path))?;
        }
    }
    let path = dir.join("report.html");
    std::fs::write(&path, render_html(scenarios)).map_err(io(&path))?;
    Ok(path)
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;margin:0;background:#f8fafc}
main{max-width:1400px;margin:0 auto;padding:24px 32px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:0 0 4px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:18px 20px;margin:18px 0}
.desc{margin:2px 0 4px}.verdict{margin:8px 0 0;font-size:13px;color:#1f2937}.muted{color:#6b7280;font-size:12.5px;margin:4px 0}
table.summary{border-collapse:collapse;margin:10px 0 14px;font-variant-numeric:tabular-nums}
table.summary th,table.summary td{padding:4px 12px;border-bottom:1px solid #eef0f3;text-align:right}
table.summary th{font-weight:600;background:#f9fafb}
table.summary td.metric{text-align:left;color:#374151;max-width:28em}
td.best{background:#dcfce7;font-weight:600;color:#065f46}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:5px}
.grid{display:grid;gap:4px 10px;align-items:center}
.colhead{font-weight:600;text-align:center}
.rowhead{font-size:12.5px;color:#374151;text-align:right;padding-right:4px}
svg.chart text{font-size:10px;fill:#6b7280}
svg.chart .yl{text-anchor:end} svg.chart .xl{text-anchor:middle}
.legend{font-size:11.5px;color:#374151;padding-left:44px} .legend>span{margin-right:10px}
.key{font-size:12.5px;color:#374151}.key span{margin-right:16px}
details{margin:6px 0} summary{cursor:pointer;color:#374151}
table.actions{border-collapse:collapse;font-size:12.5px;margin:6px 0 6px 16px}
table.actions td,table.actions th{padding:2px 10px;border-bottom:1px solid #f1f5f9;text-align:left;vertical-align:top}
"#;

/// The whole page.
pub fn render_html(scenarios: &[ScenarioResult]) -> String {
    let mut h = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>homeostat replay report</title><style>",
    );
    h.push_str(CSS);
    h.push_str("</style></head><body><main><h1>homeostat replay report</h1>");
    h.push_str(
        "<p class=\"muted\">Ground truth from the simulator (what users experienced), per scenario and run. \
         Best value per row in green. Charts share a y-axis per row.</p>\
         <p class=\"key\"><span><svg width=\"18\" height=\"10\"><rect width=\"18\" height=\"10\" fill=\"#fecaca\"/></svg> injected fault</span>\
         <span><svg width=\"10\" height=\"9\"><path d=\"M1,0l4,8l4,-8z\" fill=\"#111827\"/></svg> action (hover for reason)</span>\
         <span><svg width=\"8\" height=\"8\"><circle cx=\"4\" cy=\"4\" r=\"3\" fill=\"#7c3aed\"/></svg> outlier ejection</span>\
         <span><svg width=\"18\" height=\"6\"><line x1=\"0\" x2=\"18\" y1=\"3\" y2=\"3\" stroke=\"#b91c1c\" stroke-dasharray=\"4 3\"/></svg> objective</span></p>",
    );
    if scenarios.len() > 1 {
        h.push_str(&overview(scenarios));
    }
    for (i, s) in scenarios.iter().enumerate() {
        h.push_str(&scenario_section(s, i));
    }
    h.push_str("</main></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::chart::{Agg, downsample, nice_ticks, tick_label, ticks};
    use super::summary::verdict;
    use super::*;
    use crate::record::{Outcome, Recorder, RecorderConfig, SampleState};

    const S: u64 = 1_000_000_000;

    /// 2 req/s for 120 s; failures in `[bad_from, bad_to)` s; `pods` replicas throughout.
    fn run(name: &str, bad_from: u64, bad_to: u64, pods: u32) -> RunResult {
        let mut r = Recorder::new(RecorderConfig::default());
        r.on_fault(30 * S, Some(60 * S), "pod <a> & co fail");
        let mut w = std::collections::BTreeMap::new();
        w.insert("v1".to_string(), 0.9);
        w.insert("v2".to_string(), 0.1);
        r.on_sample(
            0,
            SampleState {
                replicas: pods,
                weights: w,
            },
        );
        if bad_to > bad_from {
            r.on_action(bad_from * S + S, "weights", "v2 → 0", "errors on v2");
        }
        for i in 0..240u64 {
            let t = i * S / 2;
            let o = if (bad_from * S..bad_to * S).contains(&t) {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            r.on_request_done(t, 20_000_000, o, 0);
        }
        RunResult::new(name, r.into_record(120 * S), &Objectives::new(0.99, 100.0))
    }

    fn scenario() -> ScenarioResult {
        ScenarioResult {
            name: "bad canary".into(),
            description: "a canary fails".into(),
            objectives: Objectives::new(0.99, 100.0),
            runs: vec![run("static", 30, 60, 4), run("homeostat", 30, 40, 3)],
        }
    }

    #[test]
    fn verdict_states_the_targets() {
        let mut s = scenario();
        let v = verdict(&s).unwrap();
        // Both violate 1 minute: 1 < 5 · 1 → ✗; 0.10 vs 0.13 replica-hours = −25 % → ✓.
        assert!(
            v.contains(
                "✗ SLO-violation minutes: homeostat 1 vs best baseline static 1 (1.0× fewer"
            ),
            "{v}"
        );
        assert!(v.contains("replica-hours: 0.10 vs 0.13 (-25.0 %)"), "{v}");
        // No hpa-N run: no frontier line.
        assert!(!v.contains("frontier"), "{v}");
        // The action at 31 s is the first detection: 31 − 30 = 1 s; windows 3 (30–40 s)
        // violates, 4, 5, 6 are clean → TTM = 40 − 30 = 10 s.
        assert!(v.contains("✓ TTD 1.0 s / ✓ TTM 10.0 s"), "{v}");
        // Without a run named homeostat there is nothing to judge.
        s.runs[1].name = "other".into();
        assert_eq!(verdict(&s), None);
    }

    #[test]
    fn csv_holds_every_window_with_blank_gaps() {
        let s = scenario();
        let csv = series_csv(&s.runs[1].record.series());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "t_s,requests_per_s,success_rate,p50_ms,p99_ms,replicas,weight:v1,weight:v2"
        );
        // 120 s at 10 s steps = 12 windows + header.
        assert_eq!(lines.len(), 13);
        // Window 3 (30–40 s): 20 requests, all failing → success 0; 20 ms ≈ 20.0x ms (bucket
        // mid-point of 2^24 + k·2^18 ns).
        let w3: Vec<&str> = lines[4].split(',').collect();
        assert_eq!(&w3[..3], &["30", "2", "0"]);
        assert!((w3[4].parse::<f64>().unwrap() - 20.0).abs() < 0.16);
        assert_eq!(&w3[5..], &["3", "0.9", "0.1"]);
        assert_eq!(
            csv_name("bad canary", "home/stat"),
            "bad-canary_home-stat.csv"
        );
    }

    #[test]
    fn html_is_deterministic_escaped_and_highlights_the_best() {
        let s = vec![scenario(), scenario()];
        let a = render_html(&s);
        assert_eq!(a, render_html(&s));
        assert!(a.contains("pod &lt;a&gt; &amp; co fail"));
        assert!(!a.contains("pod <a>"));
        assert!(!a.contains("<script"));
        // static violates minute 0 (30–60 s fail: 60 of 120 requests) and homeostat too
        // (30–40 s: 20 of 120 fail): 1 each → tie → neither is highlighted in that row; but
        // replica-hours 3 pods · 120 s = 0.1 h beats 4 · 120 s ≈ 0.133 h.
        assert!(a.contains("<td class=\"best\">0.10</td>"));
        assert!(a.contains("<td>0.13</td>"));
        // One svg per run per row: 2 scenarios · 2 runs · 5 rows (+ legend icons, 4).
        assert_eq!(a.matches("class=\"chart\"").count(), 20);
    }

    #[test]
    fn write_report_writes_html_and_csvs() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_report(dir.path(), &[scenario()]).unwrap();
        assert!(path.ends_with("report.html"));
        assert!(dir.path().join("bad-canary_static.csv").exists());
        assert!(dir.path().join("bad-canary_homeostat.csv").exists());
        // A file where the directory should be is an error naming the path, not a panic.
        let blocked = dir.path().join("report.html").join("x");
        let err = write_report(&blocked, &[scenario()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("report.html"), "{err}");
    }

    #[test]
    fn downsampling_keeps_spikes() {
        let t: Vec<f64> = (0..1200).map(f64::from).collect();
        let mut v = vec![1.0; 1200];
        v[601] = 50.0;
        let (x, y) = downsample(&t, &v, Agg::Max);
        // 1200 points → groups of 2 → 600 points; the spike survives in group 300.
        assert_eq!(x.len(), 600);
        assert_eq!(y[300], 50.0);
        let (_, y) = downsample(&t, &v, Agg::Mean);
        assert_eq!(y[300], 25.5);
    }

    #[test]
    fn nice_ticks_and_labels() {
        assert_eq!(ticks(0.0, 100.0, 4), vec![0.0, 25.0, 50.0, 75.0, 100.0]);
        assert_eq!(ticks(0.0, 3600.0, 5), vec![0.0, 1000.0, 2000.0, 3000.0]);
        // Counts: 0..9.45 in 4 steps would be 2.5 apart; integers only → steps of 5.
        assert_eq!(nice_ticks(0.0, 9.45, 4, true), vec![0.0, 5.0]);
        assert_eq!(nice_ticks(0.0, 2.0, 4, true), vec![0.0, 1.0, 2.0]);
        // Success rates 0.0005 apart need four decimals to tell them apart.
        assert_eq!(tick_label(0.9995, 0.0005), "0.9995");
        assert_eq!(tick_label(0.75, 0.25), "0.75");
        assert_eq!(tick_label(25_000.0, 5_000.0), "25k");
    }
}
