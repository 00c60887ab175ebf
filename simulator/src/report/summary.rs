//! The summary tables: one per scenario (every metric, best value highlighted), the overview of
//! all scenarios, the comparison line and each run's list of actions.

use std::fmt::Write as _;

use super::chart::run_colour;
use super::{RunResult, ScenarioResult, esc};
use crate::compare::{Point, compare};
use crate::record::RunMetrics;

pub(super) fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "—".to_string(), |x| format!("{x:.digits$}"))
}

/// Lower-is-better, higher-is-better or not ranked.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Better {
    Lower,
    Higher,
    Neither,
}

pub(super) struct Row {
    name: String,
    hint: &'static str,
    better: Better,
    values: Vec<Option<f64>>,
    cells: Vec<String>,
}

pub(super) fn summary_rows(s: &ScenarioResult) -> Vec<Row> {
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

/// The runs of a scenario on the cost/SLO plane.
pub(super) fn points(s: &ScenarioResult) -> Vec<Point> {
    s.runs
        .iter()
        .map(|r| Point {
            run: r.name.clone(),
            slo_violation_minutes: r.metrics.slo_violation_minutes,
            replica_hours: r.metrics.replica_hours,
        })
        .collect()
}

/// homeostat against the issue's targets, in words (the numbers of [`crate::compare`]): ≥ 5×
/// fewer SLO-violation minutes than the best baseline at no more replica-hours, or strictly
/// below the HPA sweep's frontier; and TTD ≤ 30 s, TTM ≤ 45 s per fault. `None` unless there
/// is a run named `homeostat` and at least one other run.
pub(super) fn verdict(s: &ScenarioResult) -> Option<String> {
    let c = compare(&points(s))?;
    let home = s.runs.iter().find(|r| r.name == "homeostat")?;
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    let (h, b) = (
        c.homeostat.slo_violation_minutes,
        c.best_baseline.slo_violation_minutes,
    );
    let ratio = c.ratio_text();
    let (hr, br) = (c.homeostat.replica_hours, c.best_baseline.replica_hours);
    let mut parts = vec![
        format!(
            "{} SLO-violation minutes: homeostat {h} vs best baseline {} {b} ({ratio}; target ≥ 5× at no more replica-hours)",
            mark(c.five_x_at_no_more_cost),
            esc(&c.best_baseline.run)
        ),
        format!(
            "replica-hours: {hr:.2} vs {br:.2} ({:+.1} %)",
            c.cost_ratio.map_or(0.0, |r| (r - 1.0) * 100.0)
        ),
    ];
    if let Some(below) = c.below_frontier {
        parts.push(format!(
            "{} {} the HPA frontier ({} min at ≤ {hr:.2} replica-hours)",
            mark(below),
            if below { "below" } else { "not below" },
            c.frontier_at_cost
                .map_or("none of the sweep".to_string(), |f| f.to_string())
        ));
    }
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

pub(super) fn summary_table(s: &ScenarioResult) -> String {
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

pub(super) fn actions_list(r: &RunResult) -> String {
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

pub(super) fn hms(t: f64) -> String {
    let s = t.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub(super) fn overview(scenarios: &[ScenarioResult]) -> String {
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
