//! One scenario's section of the page: description, comparison, summary table, frontier chart
//! and the grid of time-series charts (one column per run, one row per signal).

use std::fmt::Write as _;

use super::chart::*;
use super::csv::{csv_name, num};
use super::summary::*;
use super::{ScenarioResult, esc};
use crate::record::Series;

pub(super) struct RowSpec {
    title: &'static str,
    log: bool,
    floor0: bool,
    integer: bool,
}

pub(super) fn scenario_section(s: &ScenarioResult, index: usize) -> String {
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
    h.push_str(&super::frontier::frontier_svg(&points(s)));

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
