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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::record::{FaultOutcome, Objectives, RunMetrics, RunRecord, Series};

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

/// `<scenario>_<run>.csv` with anything but `[A-Za-z0-9-]` turned into `-`.
pub fn csv_name(scenario: &str, run: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("{}_{}.csv", clean(scenario), clean(run))
}

fn num(v: f64) -> String {
    if v.is_finite() {
        // Six decimals is finer than anything measured here and keeps the files stable.
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.into() }
    } else {
        String::new()
    }
}

/// The per-window series as CSV; empty fields where a value is undefined.
pub fn series_csv(s: &Series) -> String {
    let mut out = String::from("t_s,requests_per_s,success_rate,p50_ms,p99_ms,replicas");
    for name in s.weights.keys() {
        out.push_str(",weight:");
        out.push_str(&name.replace([',', '"', '\n'], "_"));
    }
    out.push('\n');
    for i in 0..s.t_s.len() {
        let row = [
            s.t_s[i],
            s.request_rate[i],
            s.success_rate[i],
            s.p50_ms[i],
            s.p99_ms[i],
            s.replicas[i],
        ];
        let cells: Vec<String> = row
            .iter()
            .copied()
            .chain(s.weights.values().map(|w| w[i]))
            .map(num)
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

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

const RUN_COLOURS: [&str; 6] = [
    "#6b7280", "#d97706", "#2563eb", "#059669", "#9333ea", "#db2777",
];
const SUBSET_COLOURS: [&str; 8] = [
    "#2563eb", "#dc2626", "#059669", "#d97706", "#9333ea", "#0891b2", "#db2777", "#4b5563",
];

/// Colour of a run: well-known names keep their colour across scenarios.
fn run_colour(name: &str, index: usize) -> &'static str {
    match name {
        "static" => RUN_COLOURS[0],
        "hpa" => RUN_COLOURS[1],
        "homeostat" => RUN_COLOURS[2],
        _ => RUN_COLOURS[3 + index % 3],
    }
}

#[derive(Clone, Copy)]
enum Agg {
    Mean,
    Min,
    Max,
}

/// Aggregates `(t, v)` into at most [`MAX_POINTS`] groups; NaN values are skipped, an all-NaN
/// group stays NaN (a gap in the line).
fn downsample(t: &[f64], v: &[f64], agg: Agg) -> (Vec<f64>, Vec<f64>) {
    let n = t.len().min(v.len());
    let group = n.div_ceil(MAX_POINTS).max(1);
    let mut xs = Vec::with_capacity(n / group + 1);
    let mut ys = Vec::with_capacity(n / group + 1);
    let mut i = 0;
    while i < n {
        let j = (i + group).min(n);
        let vals = v[i..j].iter().copied().filter(|x| x.is_finite());
        let y = match agg {
            Agg::Mean => {
                let (s, c) = vals.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
                if c == 0 { f64::NAN } else { s / c as f64 }
            }
            Agg::Min => vals.fold(f64::NAN, f64::min),
            Agg::Max => vals.fold(f64::NAN, f64::max),
        };
        xs.push(t[i]);
        ys.push(y);
        i = j;
    }
    (xs, ys)
}

/// "Nice" tick positions covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    nice_ticks(lo, hi, target, false)
}

/// "Nice" ticks; `integer` keeps them on whole numbers (for counts such as replicas).
fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> Vec<f64> {
    let span = hi - lo;
    if span <= 0.0 || !span.is_finite() {
        return vec![lo];
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .filter(|s| !integer || (*s >= 1.0 && s.fract() == 0.0))
        .find(|s| *s >= raw)
        .unwrap_or(if integer {
            (10.0 * mag).max(1.0)
        } else {
            10.0 * mag
        });
    let mut out = Vec::new();
    let mut k = (lo / step).ceil();
    while k * step <= hi + step * 1e-9 {
        out.push(k * step);
        k += 1.0;
    }
    out
}

/// A tick label with just enough decimals for ticks `step` apart.
fn tick_label(v: f64, step: f64) -> String {
    if step >= 1.0 || !step.is_finite() || step <= 0.0 {
        return label(v);
    }
    let decimals = (0..=6)
        .find(|&d| {
            let x = step * 10f64.powi(d);
            (x - x.round()).abs() < 1e-6
        })
        .unwrap_or(6) as usize;
    format!("{v:.decimals$}")
}

fn label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", num(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", num(v / 1e3))
    } else if a >= 100.0 || a == 0.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The y-axis of one chart row.
#[derive(Clone, Copy)]
struct YAxis {
    lo: f64,
    hi: f64,
    log: bool,
    integer: bool,
}

impl YAxis {
    fn from_values<'a>(values: impl Iterator<Item = &'a f64>, log: bool, floor0: bool) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in values {
            if v.is_finite() && (!log || v > 0.0) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if !lo.is_finite() {
            return Self {
                lo: if log { 1.0 } else { 0.0 },
                hi: if log { 10.0 } else { 1.0 },
                log,
                integer: false,
            };
        }
        if log {
            let lo = 10f64.powf(lo.log10().floor());
            let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
            return Self {
                lo,
                hi,
                log,
                integer: false,
            };
        }
        if floor0 {
            lo = lo.min(0.0);
        }
        if hi - lo < 1e-9 {
            hi = lo + if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        }
        let pad = (hi - lo) * 0.05;
        Self {
            lo: if floor0 && lo >= 0.0 { lo } else { lo - pad },
            hi: hi + pad,
            log,
            integer: false,
        }
    }

    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn ticks(&self) -> Vec<f64> {
        if !self.log {
            return nice_ticks(self.lo, self.hi, 4, self.integer);
        }
        let mut out = Vec::new();
        let mut d = self.lo;
        let decades = (self.hi / self.lo).log10().round() as i32;
        while d <= self.hi * 1.000001 {
            out.push(d);
            if decades <= 2 {
                for m in [2.0, 5.0] {
                    if d * m < self.hi {
                        out.push(d * m);
                    }
                }
            }
            d *= 10.0;
        }
        out.sort_by(f64::total_cmp);
        out
    }
}

struct Line {
    colour: &'static str,
    name: String,
    x: Vec<f64>,
    y: Vec<f64>,
}

struct Chart<'a> {
    end_s: f64,
    y: YAxis,
    lines: &'a [Line],
    /// A dashed reference line (the objective), with its label.
    reference: Option<(f64, String)>,
    faults: &'a [FaultOutcome],
    actions: Vec<(f64, String)>,
    ejections: Vec<(f64, String)>,
}

const W: f64 = 360.0;
const H: f64 = 150.0;
const ML: f64 = 44.0;
const MR: f64 = 16.0;
const MT: f64 = 12.0;
const MB: f64 = 22.0;

/// The time axis' unit (seconds per unit, suffix) for a run of `end` seconds.
fn time_unit(end: f64) -> (f64, &'static str) {
    if end > 3.0 * 3600.0 {
        (3600.0, "h")
    } else if end > 180.0 {
        (60.0, "m")
    } else {
        (1.0, "s")
    }
}

impl Chart<'_> {
    fn svg(&self) -> String {
        let pw = W - ML - MR;
        let ph = H - MT - MB;
        let end = self.end_s.max(1e-9);
        let px = |t: f64| ML + (t / end).clamp(0.0, 1.0) * pw;
        let py = |v: f64| MT + (1.0 - self.y.frac(v).clamp(0.0, 1.0)) * ph;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" class="chart">"#
        );
        let _ = write!(
            s,
            r##"<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="#fff" stroke="#d1d5db"/>"##
        );
        for f in self.faults {
            let (a, b) = (px(f.start_s), px(f.end_s.unwrap_or(end)));
            let _ = write!(
                s,
                r##"<rect x="{a:.1}" y="{MT}" width="{:.1}" height="{ph}" fill="#fecaca" fill-opacity="0.55"><title>fault: {}</title></rect>"##,
                (b - a).max(1.5),
                esc(&f.description)
            );
        }
        let yt = self.y.ticks();
        let step = if self.y.log {
            1.0
        } else {
            yt.windows(2).map(|w| w[1] - w[0]).next().unwrap_or(1.0)
        };
        for v in yt {
            let y = py(v);
            let _ = write!(
                s,
                r##"<line x1="{ML}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eef0f3"/><text x="{:.1}" y="{:.1}" class="yl">{}</text>"##,
                ML + pw,
                ML - 4.0,
                y + 3.5,
                tick_label(v, step)
            );
        }
        let (unit, suffix) = time_unit(end);
        for t in ticks(0.0, end / unit, 5) {
            let x = px(t * unit);
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" class="xl">{}{suffix}</text>"#,
                H - 6.0,
                label(t)
            );
        }
        if let Some((v, name)) = &self.reference {
            let y = py(*v);
            let _ = write!(
                s,
                r##"<line x1="{ML}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#b91c1c" stroke-dasharray="4 3" stroke-width="1"><title>{}</title></line>"##,
                ML + pw,
                esc(name)
            );
        }
        for l in self.lines {
            let mut d = String::new();
            let mut pen_down = false;
            for (&x, &y) in l.x.iter().zip(&l.y) {
                if !y.is_finite() || (self.y.log && y <= 0.0) {
                    pen_down = false;
                    continue;
                }
                let _ = write!(
                    d,
                    "{}{:.1},{:.1}",
                    if pen_down { "L" } else { "M" },
                    px(x),
                    py(y)
                );
                pen_down = true;
            }
            let _ = write!(
                s,
                r#"<path d="{d}" fill="none" stroke="{}" stroke-width="1.4" stroke-linejoin="round"><title>{}</title></path>"#,
                l.colour,
                esc(&l.name)
            );
        }
        for (t, what) in &self.ejections {
            let x = px(*t);
            let _ = write!(
                s,
                r##"<circle cx="{x:.1}" cy="{:.1}" r="2.2" fill="#7c3aed"><title>{}</title></circle>"##,
                MT + ph - 3.0,
                esc(what)
            );
        }
        for (t, what) in &self.actions {
            let x = px(*t);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{MT}" y2="{:.1}" stroke="#111827" stroke-opacity="0.25"/><path d="M{:.1},{MT}l4,-7h-8z" fill="#111827"><title>{}</title></path>"##,
                MT + ph,
                x,
                esc(what)
            );
        }
        s.push_str("</svg>");
        s
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "—".to_string(), |x| format!("{x:.digits$}"))
}

/// Lower-is-better, higher-is-better or not ranked.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
    Neither,
}

struct Row {
    name: String,
    hint: &'static str,
    better: Better,
    values: Vec<Option<f64>>,
    cells: Vec<String>,
}

fn summary_rows(s: &ScenarioResult) -> Vec<Row> {
    let runs = &s.runs;
    let row = |name: &str,
               hint: &'static str,
               better: Better,
               f: &dyn Fn(&RunMetrics) -> (Option<f64>, String)| {
        let (values, cells) = runs.iter().map(|r| f(&r.metrics)).unzip();
        Row {
            name: name.to_string(),
            hint,
            better,
            values,
            cells,
        }
    };
    let pct = |v: Option<f64>| v.map(|x| format!("{:.3} %", x * 100.0));
    let mut rows = vec![
        row(
            "SLO-violation minutes",
            "minutes whose success rate or p99 missed the objective",
            Better::Lower,
            &|m| {
                let v = m.slo_violation_minutes as f64;
                (
                    Some(v),
                    format!("{} / {}", m.slo_violation_minutes, m.minutes_with_traffic),
                )
            },
        ),
        row(
            "error budget burned",
            "failed ÷ allowed failures over the run (1 = all of it)",
            Better::Lower,
            &|m| (m.error_budget_burned, fmt_opt(m.error_budget_burned, 3)),
        ),
        row(
            "availability",
            "successes ÷ requests",
            Better::Higher,
            &|m| {
                (
                    m.availability,
                    pct(m.availability).unwrap_or_else(|| "—".into()),
                )
            },
        ),
        row("p50 latency (ms)", "", Better::Lower, &|m| {
            (m.p50_ms, fmt_opt(m.p50_ms, 1))
        }),
        row("p99 latency (ms)", "", Better::Lower, &|m| {
            (m.p99_ms, fmt_opt(m.p99_ms, 1))
        }),
        row("replica-hours", "∫ pods dt (cost)", Better::Lower, &|m| {
            (Some(m.replica_hours), format!("{:.2}", m.replica_hours))
        }),
        row("requests", "", Better::Neither, &|m| {
            (Some(m.requests as f64), m.requests.to_string())
        }),
        row("retries sent", "", Better::Neither, &|m| {
            (Some(m.retries as f64), m.retries.to_string())
        }),
        row("ejections", "", Better::Neither, &|m| {
            (Some(m.ejections as f64), m.ejections.to_string())
        }),
        row(
            "actions",
            "changes applied (per simulated day in brackets)",
            Better::Neither,
            &|m| {
                (
                    Some(m.actions.len() as f64),
                    format!("{} ({:.1}/day)", m.actions.len(), m.actions_per_day),
                )
            },
        ),
    ];
    let faults = runs
        .iter()
        .map(|r| r.metrics.faults.len())
        .max()
        .unwrap_or(0);
    for i in 0..faults {
        let desc = runs
            .iter()
            .find_map(|r| r.metrics.faults.get(i))
            .map_or(String::new(), |f| f.description.clone());
        let (values, cells) = runs
            .iter()
            .map(|r| match r.metrics.faults.get(i) {
                Some(f) => (
                    f.ttd_s,
                    f.ttd_s
                        .map_or("not detected".into(), |t| format!("{t:.1} s")),
                ),
                None => (None, "—".into()),
            })
            .unzip();
        rows.push(Row {
            name: format!("time to detect: {desc}"),
            hint: "first action, finding or ejection after the fault started",
            better: Better::Lower,
            values,
            cells,
        });
        let (values, cells) = runs
            .iter()
            .map(|r| match r.metrics.faults.get(i) {
                Some(f) => match f.ttm_s {
                    Some(t) if !f.user_impact => (Some(t), "no impact".to_string()),
                    Some(t) => (
                        Some(t),
                        format!(
                            "{t:.1} s{}",
                            if f.mitigated_after_fault_end {
                                " (fault ended)"
                            } else {
                                ""
                            }
                        ),
                    ),
                    None => (None, "not mitigated".into()),
                },
                None => (None, "—".into()),
            })
            .unzip();
        rows.push(Row {
            name: format!("time to mitigate: {desc}"),
            hint: "from the fault's start until the SLO held for consecutive windows",
            better: Better::Lower,
            values,
            cells,
        });
    }
    rows
}

/// homeostat against the issue's targets, in words: ≥ 5× fewer SLO-violation minutes than the
/// best baseline, no more replica-hours than that baseline, TTD ≤ 30 s and TTM ≤ 45 s per fault.
/// `None` unless there is a run named `homeostat` and at least one other run.
fn verdict(s: &ScenarioResult) -> Option<String> {
    let home = s.runs.iter().find(|r| r.name == "homeostat")?;
    let best = s
        .runs
        .iter()
        .filter(|r| r.name != "homeostat")
        .min_by(|a, b| {
            a.metrics
                .slo_violation_minutes
                .cmp(&b.metrics.slo_violation_minutes)
                .then(a.metrics.replica_hours.total_cmp(&b.metrics.replica_hours))
        })?;
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    let (h, b) = (
        home.metrics.slo_violation_minutes,
        best.metrics.slo_violation_minutes,
    );
    let slo_ok = if h == 0 { true } else { b >= 5 * h };
    let ratio = if h == 0 {
        if b == 0 {
            "both have none".to_string()
        } else {
            "homeostat has none".to_string()
        }
    } else {
        format!("{:.1}× fewer", b as f64 / h as f64)
    };
    let (hr, br) = (home.metrics.replica_hours, best.metrics.replica_hours);
    let mut parts = vec![
        format!(
            "{} SLO-violation minutes: homeostat {h} vs best baseline {} {b} ({ratio}; target ≥ 5×)",
            mark(slo_ok),
            esc(&best.name)
        ),
        format!(
            "{} replica-hours: {hr:.2} vs {br:.2} ({:+.1} %)",
            mark(hr <= br * (1.0 + 1e-9)),
            if br > 0.0 {
                (hr / br - 1.0) * 100.0
            } else {
                0.0
            }
        ),
    ];
    for f in &home.metrics.faults {
        let ttd_ok = f.ttd_s.is_some_and(|t| t <= 30.0);
        let ttm_ok = f.ttm_s.is_some_and(|t| t <= 45.0);
        parts.push(format!(
            "{} TTD {} / {} TTM {} ({})",
            mark(ttd_ok),
            f.ttd_s.map_or("—".into(), |t| format!("{t:.1} s")),
            mark(ttm_ok),
            f.ttm_s.map_or("—".into(), |t| format!("{t:.1} s")),
            esc(&f.description)
        ));
    }
    Some(format!(
        "<p class=\"verdict\">{}</p>",
        parts.join(" &nbsp;·&nbsp; ")
    ))
}

fn summary_table(s: &ScenarioResult) -> String {
    let mut h = String::from("<table class=\"summary\"><thead><tr><th></th>");
    for (i, r) in s.runs.iter().enumerate() {
        let _ = write!(
            h,
            r#"<th><span class="dot" style="background:{}"></span>{}</th>"#,
            run_colour(&r.name, i),
            esc(&r.name)
        );
    }
    h.push_str("</tr></thead><tbody>");
    for row in summary_rows(s) {
        let best = match row.better {
            Better::Neither => None,
            b => row
                .values
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
                .reduce(|a, v| {
                    if b == Better::Lower {
                        a.min(v)
                    } else {
                        a.max(v)
                    }
                }),
        };
        let _ = write!(
            h,
            r#"<tr><td class="metric" title="{}">{}</td>"#,
            esc(row.hint),
            esc(&row.name)
        );
        let ranked = s.runs.len() > 1 && row.values.iter().flatten().any(|v| Some(*v) != best);
        for (v, c) in row.values.iter().zip(&row.cells) {
            let is_best = ranked
                && best
                    .is_some_and(|b| v.is_some_and(|v| (v - b).abs() <= 1e-9 * b.abs().max(1.0)));
            let _ = write!(
                h,
                "<td{}>{}</td>",
                if is_best { " class=\"best\"" } else { "" },
                esc(c)
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
}

fn actions_list(r: &RunResult) -> String {
    let m = &r.metrics;
    if m.actions.is_empty() {
        return format!("<p class=\"muted\">{}: no actions.</p>", esc(&r.name));
    }
    let mut h = format!(
        "<details><summary>{}: {} action{}</summary><table class=\"actions\"><tr><th>time</th><th>knob</th><th>change</th><th>reason</th></tr>",
        esc(&r.name),
        m.actions.len(),
        if m.actions.len() == 1 { "" } else { "s" }
    );
    for a in &m.actions {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            hms(a.t_s),
            esc(&a.knob),
            esc(&a.summary),
            esc(&a.reason)
        );
    }
    h.push_str("</table></details>");
    h
}

fn hms(t: f64) -> String {
    let s = t.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

struct RowSpec {
    title: &'static str,
    log: bool,
    floor0: bool,
    integer: bool,
}

fn scenario_section(s: &ScenarioResult, index: usize) -> String {
    let series: Vec<Series> = s.runs.iter().map(|r| r.record.series()).collect();
    let end = s.runs.iter().map(|r| r.record.end_s).fold(0.0, f64::max);
    let mut h = format!(
        r#"<section id="s{index}"><h2>{}</h2><p class="desc">{}</p><p class="muted">Objectives: success ≥ {:.3} %, p99 ≤ {} ms (evaluated per minute; mitigation = {} clean {}-s windows).</p>"#,
        esc(&s.name),
        esc(&s.description),
        s.objectives.success_rate * 100.0,
        num(s.objectives.p99_latency_ms),
        s.objectives.mitigation_windows,
        s.runs.first().map_or(10.0, |r| r.record.step_s)
    );
    if let Some(v) = verdict(s) {
        h.push_str(&v);
    }
    h.push_str(&summary_table(s));

    let specs = [
        RowSpec {
            title: "request rate (req/s)",
            log: false,
            floor0: true,
            integer: false,
        },
        RowSpec {
            title: "success rate",
            log: false,
            floor0: false,
            integer: false,
        },
        RowSpec {
            title: "p99 latency (ms, log scale)",
            log: true,
            floor0: false,
            integer: false,
        },
        RowSpec {
            title: "replicas",
            log: false,
            floor0: true,
            integer: true,
        },
        RowSpec {
            title: "weights per subset",
            log: false,
            floor0: true,
            integer: false,
        },
    ];
    let aggs = [Agg::Mean, Agg::Min, Agg::Max, Agg::Max];
    h.push_str(r#"<div class="grid" style="grid-template-columns: 9em repeat("#);
    let _ = write!(h, "{}, {W}px)\">", s.runs.len().max(1));
    h.push_str("<div></div>");
    for (i, r) in s.runs.iter().enumerate() {
        let _ = write!(
            h,
            r#"<div class="colhead" style="color:{}">{}</div>"#,
            run_colour(&r.name, i),
            esc(&r.name)
        );
    }
    for (row, spec) in specs.iter().enumerate() {
        // Drawn lines per run for this row: (colour, name, x, y).
        let mut per_run: Vec<Vec<Line>> = Vec::new();
        for (i, (r, ser)) in s.runs.iter().zip(&series).enumerate() {
            let colour = run_colour(&r.name, i);
            let lines = if row < 4 {
                let v = match row {
                    0 => &ser.request_rate,
                    1 => &ser.success_rate,
                    2 => &ser.p99_ms,
                    _ => &ser.replicas,
                };
                let (x, y) = downsample(&ser.t_s, v, aggs[row]);
                vec![Line {
                    colour,
                    name: r.name.clone(),
                    x,
                    y,
                }]
            } else {
                ser.weights
                    .iter()
                    .enumerate()
                    .map(|(k, (name, v))| {
                        let (x, y) = downsample(&ser.t_s, v, Agg::Mean);
                        Line {
                            colour: SUBSET_COLOURS[k % SUBSET_COLOURS.len()],
                            name: name.clone(),
                            x,
                            y,
                        }
                    })
                    .collect()
            };
            per_run.push(lines);
        }
        let mut all: Vec<f64> = per_run
            .iter()
            .flatten()
            .flat_map(|l| l.y.iter().copied())
            .collect();
        let reference = match row {
            1 => Some((s.objectives.success_rate, "success objective".to_string())),
            2 => Some((s.objectives.p99_latency_ms, "p99 objective".to_string())),
            _ => None,
        };
        if let Some((v, _)) = &reference {
            all.push(*v);
        }
        if row == 1 {
            all.push(1.0);
        }
        let y = YAxis {
            integer: spec.integer,
            ..YAxis::from_values(all.iter(), spec.log, spec.floor0)
        };
        let _ = write!(h, r#"<div class="rowhead">{}</div>"#, spec.title);
        for (r, lines) in s.runs.iter().zip(per_run) {
            let chart = Chart {
                end_s: end,
                y,
                lines: &lines,
                reference: reference.clone(),
                faults: &r.metrics.faults,
                actions: r
                    .metrics
                    .actions
                    .iter()
                    .map(|a| {
                        (
                            a.t_s,
                            format!(
                                "{} {} — {}: {} ({})",
                                hms(a.t_s),
                                a.knob,
                                a.summary,
                                a.reason,
                                r.name
                            ),
                        )
                    })
                    .collect(),
                ejections: if row == 1 {
                    r.record
                        .ejections
                        .iter()
                        .map(|e| (e.t_s, format!("{} ejected {}", hms(e.t_s), e.what)))
                        .collect()
                } else {
                    Vec::new()
                },
            };
            h.push_str("<div>");
            h.push_str(&chart.svg());
            if row == 4 && !lines.is_empty() {
                h.push_str("<div class=\"legend\">");
                for l in &lines {
                    let _ = write!(
                        h,
                        r#"<span><span class="dot" style="background:{}"></span>{}</span>"#,
                        l.colour,
                        esc(&l.name)
                    );
                }
                h.push_str("</div>");
            }
            h.push_str("</div>");
        }
    }
    h.push_str("</div>");
    h.push_str("<div class=\"acts\">");
    for r in &s.runs {
        h.push_str(&actions_list(r));
    }
    h.push_str("<p class=\"muted\">CSV: ");
    let links: Vec<String> = s
        .runs
        .iter()
        .map(|r| {
            let f = csv_name(&s.name, &r.name);
            format!("<a href=\"{f}\">{f}</a>")
        })
        .collect();
    h.push_str(&links.join(" · "));
    h.push_str("</p></div></section>");
    h
}

fn overview(scenarios: &[ScenarioResult]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for s in scenarios {
        for r in &s.runs {
            if !names.contains(&r.name.as_str()) {
                names.push(&r.name);
            }
        }
    }
    let mut h = String::from(
        "<table class=\"summary overview\"><thead><tr><th>scenario</th><th colspan=\"",
    );
    let _ = write!(
        h,
        "{}\">SLO-violation minutes</th><th colspan=\"{}\">replica-hours</th></tr><tr><th></th>",
        names.len(),
        names.len()
    );
    for _ in 0..2 {
        for n in &names {
            let _ = write!(h, "<th>{}</th>", esc(n));
        }
    }
    h.push_str("</tr></thead><tbody>");
    for (i, s) in scenarios.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td class=\"metric\"><a href=\"#s{i}\">{}</a></td>",
            esc(&s.name)
        );
        let pick = |f: &dyn Fn(&RunMetrics) -> f64| -> Vec<Option<f64>> {
            names
                .iter()
                .map(|n| s.runs.iter().find(|r| r.name == *n).map(|r| f(&r.metrics)))
                .collect()
        };
        for (vals, digits) in [
            (pick(&|m| m.slo_violation_minutes as f64), 0usize),
            (pick(&|m| m.replica_hours), 2),
        ] {
            let best = vals.iter().flatten().copied().reduce(f64::min);
            let ranked = vals.iter().flatten().any(|v| Some(*v) != best);
            for v in &vals {
                let is_best = ranked && v.is_some() && *v == best;
                let _ = write!(
                    h,
                    "<td{}>{}</td>",
                    if is_best { " class=\"best\"" } else { "" },
                    fmt_opt(*v, digits)
                );
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
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
            v.contains("✗ SLO-violation minutes: homeostat 1 vs best baseline static 1"),
            "{v}"
        );
        assert!(v.contains("✓ replica-hours: 0.10 vs 0.13 (-25.0 %)"), "{v}");
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
