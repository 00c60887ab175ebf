//! The cost/SLO chart of one scenario: SLO-violation minutes (y) against replica-hours (x).
//! The HPA sweep (`hpa-N`) is drawn as a line through its targets, ordered by cost — the
//! frontier stock autoscaling buys — and every other run as a labelled point. A run below and
//! left of the line does better for less.

use std::fmt::Write as _;

use super::chart::{nice_ticks, run_colour, tick_label};
use super::esc;
use crate::compare::{Point, SWEEP_PREFIX};

const W: f64 = 420.0;
const H: f64 = 240.0;
const ML: f64 = 44.0;
const MR: f64 = 90.0;
const MT: f64 = 12.0;
const MB: f64 = 34.0;

/// The chart as inline SVG; empty when fewer than two runs have something to place.
pub(super) fn frontier_svg(points: &[Point]) -> String {
    let finite: Vec<&Point> = points
        .iter()
        .filter(|p| p.replica_hours.is_finite())
        .collect();
    if finite.len() < 2 {
        return String::new();
    }
    let (mut x0, mut x1) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.replica_hours), hi.max(p.replica_hours))
        });
    // Pad the cost axis so points do not sit on the frame.
    let pad = ((x1 - x0) * 0.08).max(x1.abs() * 0.02).max(0.01);
    x0 = (x0 - pad).max(0.0);
    x1 += pad;
    let y_max = finite
        .iter()
        .map(|p| p.slo_violation_minutes)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let y_ticks = nice_ticks(0.0, y_max, 4, true);
    let y1 = y_ticks.last().copied().unwrap_or(y_max).max(y_max);
    let x_ticks = nice_ticks(x0, x1, 5, false);
    let sx = |x: f64| ML + (x - x0) / (x1 - x0) * (W - ML - MR);
    let sy = |y: f64| H - MB - y / y1 * (H - MT - MB);
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<svg class="chart frontier" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>SLO-violation minutes against replica-hours</title>"#
    );
    for &t in &y_ticks {
        let _ = write!(
            h,
            r##"<line x1="{ML}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eef0f3"/><text class="yl" x="{:.1}" y="{:.1}">{}</text>"##,
            W - MR,
            ML - 4.0,
            sy(t) + 3.0,
            tick_label(t, 1.0),
            y = sy(t)
        );
    }
    let step = if x_ticks.len() > 1 {
        x_ticks[1] - x_ticks[0]
    } else {
        1.0
    };
    for &t in x_ticks.iter().filter(|&&t| t >= x0 && t <= x1) {
        let _ = write!(
            h,
            r#"<text class="xl" x="{:.1}" y="{:.1}">{}</text>"#,
            sx(t),
            H - MB + 13.0,
            tick_label(t, step)
        );
    }
    let _ = write!(
        h,
        r#"<text class="xl" x="{:.1}" y="{:.1}">replica-hours</text><text x="2" y="{:.1}">SLO min</text>"#,
        (ML + W - MR) / 2.0,
        H - 4.0,
        MT - 2.0
    );
    let mut sweep: Vec<&Point> = finite
        .iter()
        .copied()
        .filter(|p| p.run.starts_with(SWEEP_PREFIX))
        .collect();
    sweep.sort_by(|a, b| a.replica_hours.total_cmp(&b.replica_hours));
    if sweep.len() > 1 {
        let path: Vec<String> = sweep
            .iter()
            .map(|p| {
                format!(
                    "{:.1},{:.1}",
                    sx(p.replica_hours),
                    sy(p.slo_violation_minutes as f64)
                )
            })
            .collect();
        let _ = write!(
            h,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
            path.join(" "),
            run_colour("hpa", 0)
        );
    }
    for (i, p) in finite.iter().enumerate() {
        let (x, y) = (sx(p.replica_hours), sy(p.slo_violation_minutes as f64));
        let r = if p.run == "homeostat" { 5.0 } else { 3.5 };
        let _ = write!(
            h,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{}"><title>{}: {} SLO min, {:.2} replica-hours</title></circle><text x="{:.1}" y="{:.1}">{}</text>"#,
            run_colour(&p.run, i),
            esc(&p.run),
            p.slo_violation_minutes,
            p.replica_hours,
            x + 6.0,
            y + 3.0,
            esc(&p.run)
        );
    }
    h.push_str("</svg>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(run: &str, slo: u64, rh: f64) -> Point {
        Point {
            run: run.into(),
            slo_violation_minutes: slo,
            replica_hours: rh,
        }
    }

    #[test]
    fn the_sweep_is_a_line_in_cost_order_and_other_runs_are_points() {
        let svg = frontier_svg(&[
            p("hpa-90", 8, 10.0),
            p("hpa-40", 0, 20.0),
            p("istio", 30, 12.0),
            p("homeostat", 1, 15.0),
        ]);
        // x from 10 − 0.8 = 9.2 to 20.8 (8 % padding of 10); plot width 420 − 44 − 90 = 286.
        // hpa-90 at x = 44 + (10 − 9.2)/11.6·286 = 63.7; y: max 30 → ticks 0..30, y(8) =
        // 240 − 34 − 8/30·194 = 154.3. hpa-40 at x = 44 + 10.8/11.6·286 = 310.3, y(0) = 206.
        assert!(
            svg.contains(r#"<polyline points="63.7,154.3 310.3,206.0""#),
            "{svg}"
        );
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("homeostat: 1 SLO min, 15.00 replica-hours"));
        // One run alone is not a chart.
        assert_eq!(frontier_svg(&[p("istio", 1, 1.0)]), "");
    }
}
