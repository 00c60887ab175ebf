//! Inline-SVG line charts: axes and nice ticks, run and subset colours, downsampling that keeps
//! spikes, fault shading and action marks.

use std::fmt::Write as _;

use super::csv::num;
use super::{MAX_POINTS, esc};
use crate::record::FaultOutcome;

pub(super) const RUN_COLOURS: [&str; 6] = [
    "#6b7280", "#d97706", "#2563eb", "#059669", "#9333ea", "#db2777",
];
pub(super) const SUBSET_COLOURS: [&str; 8] = [
    "#2563eb", "#dc2626", "#059669", "#d97706", "#9333ea", "#0891b2", "#db2777", "#4b5563",
];

/// Colour of a run: well-known names keep their colour across scenarios.
pub(super) fn run_colour(name: &str, index: usize) -> &'static str {
    match name {
        "istio" => RUN_COLOURS[0],
        "homeostat" => RUN_COLOURS[2],
        "tuned" => RUN_COLOURS[3],
        "flagger" => RUN_COLOURS[4],
        // The HPA sweep shares one colour: it is one baseline at several targets.
        n if n.starts_with("hpa") => RUN_COLOURS[1],
        _ => RUN_COLOURS[5 - index % 2],
    }
}

#[derive(Clone, Copy)]
pub(super) enum Agg {
    Mean,
    Min,
    Max,
}

/// Aggregates `(t, v)` into at most [`MAX_POINTS`] groups; NaN values are skipped, an all-NaN
/// group stays NaN (a gap in the line).
pub(super) fn downsample(t: &[f64], v: &[f64], agg: Agg) -> (Vec<f64>, Vec<f64>) {
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
pub(super) fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    nice_ticks(lo, hi, target, false)
}

/// "Nice" ticks; `integer` keeps them on whole numbers (for counts such as replicas).
pub(super) fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> Vec<f64> {
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
pub(super) fn tick_label(v: f64, step: f64) -> String {
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

pub(super) fn label(v: f64) -> String {
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
pub(super) struct YAxis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) log: bool,
    pub(super) integer: bool,
}

impl YAxis {
    pub(super) fn from_values<'a>(
        values: impl Iterator<Item = &'a f64>,
        log: bool,
        floor0: bool,
    ) -> Self {
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

    pub(super) fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    pub(super) fn ticks(&self) -> Vec<f64> {
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

pub(super) struct Line {
    pub(super) colour: &'static str,
    pub(super) name: String,
    pub(super) x: Vec<f64>,
    pub(super) y: Vec<f64>,
}

pub(super) struct Chart<'a> {
    pub(super) end_s: f64,
    pub(super) y: YAxis,
    pub(super) lines: &'a [Line],
    /// A dashed reference line (the objective), with its label.
    pub(super) reference: Option<(f64, String)>,
    pub(super) faults: &'a [FaultOutcome],
    pub(super) actions: Vec<(f64, String)>,
    pub(super) ejections: Vec<(f64, String)>,
}

pub(super) const W: f64 = 360.0;
pub(super) const H: f64 = 150.0;
pub(super) const ML: f64 = 44.0;
pub(super) const MR: f64 = 16.0;
pub(super) const MT: f64 = 12.0;
pub(super) const MB: f64 = 22.0;

/// The time axis' unit (seconds per unit, suffix) for a run of `end` seconds.
pub(super) fn time_unit(end: f64) -> (f64, &'static str) {
    if end > 3.0 * 3600.0 {
        (3600.0, "h")
    } else if end > 180.0 {
        (60.0, "m")
    } else {
        (1.0, "s")
    }
}

impl Chart<'_> {
    pub(super) fn svg(&self) -> String {
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
