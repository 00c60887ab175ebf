//! The per-run CSV time series written beside `report.html`: every window, blank where a
//! value is undefined.

use crate::record::Series;

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

/// A number as written in the files: at most six decimals, no trailing zeros, blank if not
/// finite.
pub(super) fn num(v: f64) -> String {
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
