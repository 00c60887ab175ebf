//! Reads a NAB-format corpus from disk.
//!
//! Layout of a corpus directory (the Numenta Anomaly Benchmark's, which users copy for their own
//! labelled incidents):
//!
//! ```text
//! DIR/data/<category>/<file>.csv          timestamp,value
//! DIR/labels/combined_windows.json        {"<category>/<file>.csv": [["start", "end"], ...]}
//! DIR/config/profiles.json                {"standard": {"CostMatrix": {"tpWeight": ..}}, ..}
//! ```
//!
//! Users point this at files they wrote by hand, so every error names the file and, where there
//! is one, the line; nothing here panics on input.

use crate::parallel::parallel_map;
use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One series of the corpus, rows exactly as in its file (NAB scores rows, not grid steps).
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusSeries {
    /// Path below `DIR/data`, with `/` separators: `realTraffic/speed_6005.csv`.
    pub name: String,
    /// The first path component: `realTraffic`.
    pub category: String,
    /// Unix seconds, in file order: increasing except where `irregular` says.
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    /// Rows whose timestamp is not later than the row before, if any.
    pub irregular: Option<Irregular>,
}

/// Rows of a file whose timestamp repeats or steps back. NAB's own corpus has 8 such files (the
/// daylight-saving hour logged repeatedly, one row stepping back), and NAB scores rows in file
/// order, so the reader keeps them and reports them; each command decides what they mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Irregular {
    /// How many rows have a timestamp not later than the row before.
    pub count: usize,
    /// Line of the first of them (the header is line 1).
    pub first_line: u64,
    /// Its timestamp cell as written.
    pub first_text: String,
}

/// The `timestamp` column and one numeric column of a CSV file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    pub irregular: Option<Irregular>,
}

impl CorpusSeries {
    /// The rows a time grid can hold: the first row of each timestamp, and no row earlier than
    /// one kept before it.
    pub fn increasing_points(&self) -> Vec<(i64, f64)> {
        let mut points: Vec<(i64, f64)> = Vec::with_capacity(self.timestamps.len());
        for (&t, &v) in self.timestamps.iter().zip(&self.values) {
            if points.last().is_none_or(|&(prev, _)| t > prev) {
                points.push((t, v));
            }
        }
        points
    }
}

/// Cost weights of one NAB application profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub tp_weight: f64,
    pub fn_weight: f64,
    pub fp_weight: f64,
}

/// A loaded corpus. Series are sorted by name so every run visits them in the same order.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub root: PathBuf,
    pub series: Vec<CorpusSeries>,
    /// Labelled anomaly windows per series name, inclusive `[start, end]` in unix seconds.
    pub windows: BTreeMap<String, Vec<(i64, i64)>>,
    /// Cost profiles, `standard` first, then by name.
    pub profiles: Vec<Profile>,
}

impl Corpus {
    /// Loads the series, labels and profiles; every series must have a labels entry and every
    /// labels entry must name a series.
    pub fn load(root: &Path) -> Result<Self> {
        let series = load_series(root)?;
        let labels_path = root.join("labels").join("combined_windows.json");
        let windows = read_windows(&labels_path)?;
        for s in &series {
            if !windows.contains_key(&s.name) {
                bail!(
                    "{}: no entry for data file {:?} (use [] for a series without anomalies)",
                    labels_path.display(),
                    s.name
                );
            }
        }
        if let Some(extra) = windows
            .keys()
            .find(|k| !series.iter().any(|s| &s.name == *k))
        {
            bail!(
                "{}: entry {extra:?} names no file under {}",
                labels_path.display(),
                root.join("data").display()
            );
        }
        let profiles = read_profiles(&root.join("config").join("profiles.json"))?;
        Ok(Self {
            root: root.to_path_buf(),
            series,
            windows,
            profiles,
        })
    }

    /// Loads only the series (forecast evaluation needs no labels).
    pub fn load_series_only(root: &Path) -> Result<Self> {
        Ok(Self {
            root: root.to_path_buf(),
            series: load_series(root)?,
            windows: BTreeMap::new(),
            profiles: Vec::new(),
        })
    }

    /// Where a series' file is: `DIR/data/<name>`.
    pub fn data_path(&self, series: &CorpusSeries) -> PathBuf {
        self.root.join("data").join(&series.name)
    }

    /// Total number of labelled windows (NAB's W).
    pub fn window_count(&self) -> usize {
        self.windows.values().map(Vec::len).sum()
    }
}

/// Every `DIR/data/**/*.csv`, parsed and checked.
pub fn load_series(root: &Path) -> Result<Vec<CorpusSeries>> {
    let data = root.join("data");
    if !data.is_dir() {
        bail!(
            "{}: not a directory (a corpus has DIR/data/<category>/<file>.csv)",
            data.display()
        );
    }
    let mut files = Vec::new();
    collect_csv(&data, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("{}: no .csv files found", data.display());
    }
    parallel_map("reading data", &files, |path| {
        let rel = path.strip_prefix(&data).unwrap_or(path);
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let category = name.split('/').next().unwrap_or_default().to_string();
        let column = read_column(path, "value")?;
        Ok(CorpusSeries {
            name,
            category,
            timestamps: column.timestamps,
            values: column.values,
            irregular: column.irregular,
        })
    })
}

fn collect_csv(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() {
            collect_csv(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "csv") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads the `timestamp` column and the named numeric column of a CSV file, in file order.
/// Repeated or backward timestamps are kept and reported in [`Column::irregular`]; anything
/// else wrong (header, timestamp syntax, numbers, no rows) is an error naming file and line. A
/// value of `nan` or an empty cell is kept as NaN (missing).
pub fn read_column(path: &Path, column: &str) -> Result<Column> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("reading {shown}"))?;
    // csv reports a record's line from where the previous record ended; with CRLF line ends
    // that is the `\n` still to be consumed, one line early, so step over it.
    let line_of = |p: &csv::Position| {
        let early = bytes.get(p.byte() as usize) == Some(&b'\n');
        p.line() + u64::from(early)
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .with_context(|| format!("{shown}: reading the header line"))?
        .clone();
    let find = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            anyhow!(
                "{shown}:1: no {name:?} column (header is {:?})",
                headers.iter().collect::<Vec<_>>()
            )
        })
    };
    let (ts_col, value_col) = (find("timestamp")?, find(column)?);
    let (mut timestamps, mut values) = (Vec::<i64>::new(), Vec::<f64>::new());
    let mut irregular: Option<Irregular> = None;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, line_of);
                bail!("{shown}:{line}: malformed CSV: {e}");
            }
        }
        let line = record.position().map_or(0, line_of);
        let ts_text = record.get(ts_col).unwrap_or_default();
        let ts = parse_timestamp(ts_text)
            .with_context(|| format!("{shown}:{line}: column \"timestamp\""))?;
        let raw = record.get(value_col).unwrap_or_default();
        let value = if raw.is_empty() || raw.eq_ignore_ascii_case("nan") {
            f64::NAN
        } else {
            raw.parse::<f64>().map_err(|_| {
                anyhow!("{shown}:{line}: column {column:?}: {raw:?} is not a number")
            })?
        };
        if timestamps.last().is_some_and(|&prev| ts <= prev) {
            irregular
                .get_or_insert_with(|| Irregular {
                    count: 0,
                    first_line: line,
                    first_text: ts_text.to_string(),
                })
                .count += 1;
        }
        timestamps.push(ts);
        values.push(value);
    }
    if timestamps.is_empty() {
        bail!("{shown}: no data rows (an empty series cannot be evaluated)");
    }
    Ok(Column {
        timestamps,
        values,
        irregular,
    })
}

/// Parses `2014-03-07 03:41:00`, with an optional fraction (`.000000`), a `T` separator, or an
/// RFC 3339 offset. Naive times are UTC. Returns unix seconds.
pub fn parse_timestamp(text: &str) -> Result<i64> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc().timestamp());
        }
    }
    bail!("{text:?} is not a timestamp like \"2014-03-07 03:41:00\"")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))
}

/// Reads `combined_windows.json`: windows must have start ≤ end.
pub fn read_windows(path: &Path) -> Result<BTreeMap<String, Vec<(i64, i64)>>> {
    let raw: BTreeMap<String, Vec<(String, String)>> = read_json(path)?;
    raw.into_iter()
        .map(|(name, windows)| {
            let parsed = windows
                .iter()
                .enumerate()
                .map(|(i, (start, end))| {
                    let at = || format!("{}: {name:?} window {i}", path.display());
                    let (s, e) = (
                        parse_timestamp(start).with_context(at)?,
                        parse_timestamp(end).with_context(at)?,
                    );
                    if s > e {
                        bail!("{}: start {start:?} is after end {end:?}", at());
                    }
                    Ok((s, e))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((name, parsed))
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CostMatrix {
    tp_weight: f64,
    fn_weight: f64,
    fp_weight: f64,
}

#[derive(Deserialize)]
struct ProfileEntry {
    #[serde(rename = "CostMatrix")]
    cost_matrix: CostMatrix,
}

/// Reads `profiles.json`; weights must be finite and non-negative.
pub fn read_profiles(path: &Path) -> Result<Vec<Profile>> {
    let raw: BTreeMap<String, ProfileEntry> = read_json(path)?;
    let mut profiles = raw
        .into_iter()
        .map(|(name, p)| {
            let m = p.cost_matrix;
            for (field, v) in [
                ("tpWeight", m.tp_weight),
                ("fnWeight", m.fn_weight),
                ("fpWeight", m.fp_weight),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    bail!(
                        "{}: {name}.CostMatrix.{field}: must be a non-negative number, got {v}",
                        path.display()
                    );
                }
            }
            Ok(Profile {
                name,
                tp_weight: m.tp_weight,
                fn_weight: m.fn_weight,
                fp_weight: m.fp_weight,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if profiles.is_empty() {
        bail!("{}: no profiles", path.display());
    }
    profiles.sort_by_key(|p| (p.name != "standard", p.name.clone()));
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn loads_a_tiny_corpus() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "data/cat/a.csv",
            "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2.5\n",
        );
        write(
            dir.path(),
            "labels/combined_windows.json",
            r#"{"cat/a.csv": [["2014-01-01 00:05:00.000000", "2014-01-01 00:10:00.000000"]]}"#,
        );
        write(
            dir.path(),
            "config/profiles.json",
            r#"{"x": {"CostMatrix": {"tpWeight": 1, "fnWeight": 2, "fpWeight": 0.1, "tnWeight": 1}}, "standard": {"CostMatrix": {"tpWeight": 1, "fnWeight": 1, "fpWeight": 0.11}}}"#,
        );
        let c = Corpus::load(dir.path()).unwrap();
        assert_eq!(c.series.len(), 1);
        assert_eq!(c.series[0].name, "cat/a.csv");
        assert_eq!(c.series[0].category, "cat");
        // 2014-01-01T00:00:00Z is 1388534400.
        assert_eq!(c.series[0].timestamps, vec![1_388_534_400, 1_388_534_700]);
        assert_eq!(c.series[0].values, vec![1.0, 2.5]);
        assert_eq!(c.windows["cat/a.csv"], vec![(1_388_534_700, 1_388_535_000)]);
        assert_eq!(c.window_count(), 1);
        assert_eq!(c.profiles[0].name, "standard");
        assert_eq!(c.profiles[1].fn_weight, 2.0);
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "timestamp,value\r\n2014-01-01 00:00:00,1\r\n2014-01-01 00:00:00,x\r\n",
                "a.csv:3: column \"value\": \"x\" is not a number",
            ),
            (
                "timestamp,value\n2014-01-01 00:00:00,abc\n",
                "a.csv:2: column \"value\": \"abc\" is not a number",
            ),
            (
                "timestamp,value\nyesterday,1\n",
                "a.csv:2: column \"timestamp\"",
            ),
            ("timestamp,value\n", "no data rows"),
            (
                "time,value\n2014-01-01 00:00:00,1\n",
                "a.csv:1: no \"timestamp\" column",
            ),
        ];
        for (text, expected) in cases {
            write(dir.path(), "a.csv", text);
            let err = format!(
                "{:#}",
                read_column(&dir.path().join("a.csv"), "value").unwrap_err()
            );
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn repeated_and_backward_rows_are_kept_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        // Line 2 00:00, line 3 00:05, line 4 00:05 again (first irregular row), line 5 back to
        // 00:00 (second), line 6 00:10: two irregular rows, the first on line 4.
        let rows = [
            "2014-01-01 00:00:00,1",
            "2014-01-01 00:05:00,2",
            "2014-01-01 00:05:00,3",
            "2014-01-01 00:00:00,4",
            "2014-01-01 00:10:00,5",
        ];
        for end in ["\n", "\r\n"] {
            let text = format!("timestamp,value{end}{}{end}", rows.join(end));
            write(dir.path(), "data/cat/a.csv", &text);
            let column = read_column(&dir.path().join("data/cat/a.csv"), "value").unwrap();
            // 2014-01-01T00:00:00Z is 1388534400; rows stay in file order.
            let t0 = 1_388_534_400;
            assert_eq!(
                column.timestamps,
                vec![t0, t0 + 300, t0 + 300, t0, t0 + 600],
                "{end:?}"
            );
            assert_eq!(column.values, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
            let expected = Irregular {
                count: 2,
                first_line: 4,
                first_text: "2014-01-01 00:05:00".to_string(),
            };
            assert_eq!(column.irregular.as_ref(), Some(&expected), "{end:?}");

            let corpus = Corpus::load_series_only(dir.path()).unwrap();
            let series = &corpus.series[0];
            assert_eq!(series.irregular.as_ref(), Some(&expected));
            assert_eq!(corpus.data_path(series), dir.path().join("data/cat/a.csv"));
            // A grid keeps the first row of 00:05 and drops the step back to 00:00.
            assert_eq!(
                series.increasing_points(),
                vec![(t0, 1.0), (t0 + 300, 2.0), (t0 + 600, 5.0)]
            );
        }
        write(
            dir.path(),
            "data/cat/a.csv",
            "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2\n",
        );
        let column = read_column(&dir.path().join("data/cat/a.csv"), "value").unwrap();
        assert_eq!(column.irregular, None);
    }

    #[test]
    fn bad_json_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "w.json",
            "{\n \"a.csv\": [[\"2014-01-01 00:00:00\"]]\n}",
        );
        let err = format!(
            "{:#}",
            read_windows(&dir.path().join("w.json")).unwrap_err()
        );
        assert!(err.contains("w.json:2:"), "{err}");
        write(
            dir.path(),
            "w.json",
            r#"{"a.csv": [["2014-01-02 00:00:00", "2014-01-01 00:00:00"]]}"#,
        );
        let err = format!(
            "{:#}",
            read_windows(&dir.path().join("w.json")).unwrap_err()
        );
        assert!(err.contains("is after end"), "{err}");
    }
}
