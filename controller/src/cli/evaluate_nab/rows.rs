//! Reading NAB-format CSV files row by row, as NAB scores them.
//!
//! [`crate::corpus::read_column`] rejects repeated or backward timestamps, but NAB's own corpus
//! has both (8 files: the 2014-03-09 daylight-saving hour logged eleven times at 03:00:00, one
//! row of `machine_temperature_system_failure.csv` stepping back 55 minutes, a few duplicates)
//! and NAB scores rows, not times. So evaluation reads rows as they are and warns; the scorer
//! still refuses files where such a row breaks up a labelled window. Everything else (header,
//! numbers, timestamp syntax, empty files) is checked as strictly as the corpus reader does.
//! Meant to move into `corpus.rs` once that reader accepts such rows.

use crate::corpus::{Corpus, CorpusSeries, parse_timestamp, read_profiles, read_windows};
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};

/// Like [`Corpus::load`], with rows read by [`read_rows`].
pub fn load_corpus(root: &Path) -> Result<Corpus> {
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
    let series = files
        .iter()
        .map(|path| {
            let rel = path.strip_prefix(&data).unwrap_or(path);
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let category = name.split('/').next().unwrap_or_default().to_string();
            let (timestamps, values) = read_rows(path, "value")?;
            Ok(CorpusSeries {
                name,
                category,
                timestamps,
                values,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let labels_path = root.join("labels").join("combined_windows.json");
    let windows = read_windows(&labels_path)?;
    if let Some(s) = series.iter().find(|s| !windows.contains_key(&s.name)) {
        bail!(
            "{}: no entry for data file {:?} (use [] for a series without anomalies)",
            labels_path.display(),
            s.name
        );
    }
    if let Some(extra) = windows
        .keys()
        .find(|k| !series.iter().any(|s| &s.name == *k))
    {
        bail!(
            "{}: entry {extra:?} names no file under {}",
            labels_path.display(),
            data.display()
        );
    }
    let profiles = read_profiles(&root.join("config").join("profiles.json"))?;
    Ok(Corpus {
        root: root.to_path_buf(),
        series,
        windows,
        profiles,
    })
}

fn collect_csv(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
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

/// The `timestamp` column and the named numeric column, in file order. `nan` or an empty cell
/// is NaN; a repeated or backward timestamp is kept with a warning naming file and line.
pub fn read_rows(path: &Path, column: &str) -> Result<(Vec<i64>, Vec<f64>)> {
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
    let mut record = csv::StringRecord::new();
    let mut out_of_order = 0;
    let mut first_out_of_order = None;
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
            out_of_order += 1;
            first_out_of_order.get_or_insert((line, ts_text.to_string()));
        }
        timestamps.push(ts);
        values.push(value);
    }
    if timestamps.is_empty() {
        bail!("{shown}: no data rows (an empty series cannot be evaluated)");
    }
    if let Some((line, text)) = first_out_of_order {
        tracing::info!(
            "{shown}:{line}: {out_of_order} row(s) from here on have a timestamp ({text:?} first) not later than the row before; kept, as NAB scores rows in file order"
        );
    }
    Ok((timestamps, values))
}
