//! The Prometheus text exposition format (0.0.4), strictly: every line is a comment, blank, or
//! `name{label="value",…} value [timestamp]`; anything else is an error naming the line.
//!
//! Why our own parser: `prometheus-parse` (the one small crate for this) skips lines it cannot
//! match without a word (so a truncated or corrupt page would silently lose series, and a
//! counter that vanishes looks like a reset) and is unmaintained since 2023; `openmetrics-parser`
//! is LGPL-3.0. The grammar is a dozen lines of the format's spec
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>), so it is written here.

use std::fmt;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written; names are unique within a sample.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A line that is not valid exposition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Every sample of `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(sample(line).map_err(|message| ParseError {
            line: i + 1,
            message,
        })?);
    }
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(line.len(), |(i, _)| i);
    let name = &line[..name_end];
    if !name.starts_with(is_name_start) {
        return Err(format!("expected a metric name, found {:?}", clip(line)));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(body)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_ascii_whitespace();
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("{name}: expected a space before the value"));
    }
    let value = fields
        .next()
        .ok_or_else(|| format!("{name}: missing value"))?;
    let value = number(value).ok_or_else(|| format!("{name}: {value:?} is not a number"))?;
    if let Some(ts) = fields.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("{name}: timestamp {ts:?} is not an integer"));
    }
    if let Some(extra) = fields.next() {
        return Err(format!("{name}: unexpected {extra:?} after the value"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `+Inf`, `-Inf`, `NaN` and Go float syntax.
fn number(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses `a="x",b="y"}` (after the `{`); returns the labels and what follows the `}`.
/// Label pairs in the order written.
type LabelPairs = Vec<(String, String)>;

fn label_set(mut s: &str) -> Result<(LabelPairs, &str), String> {
    let mut labels: Vec<(String, String)> = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let end = s
            .char_indices()
            .find(|&(_, c)| !is_name_char(c) || c == ':')
            .map_or(s.len(), |(i, _)| i);
        let name = &s[..end];
        if name.is_empty() || !name.starts_with(is_name_start) {
            return Err(format!("expected a label name, found {:?}", clip(s)));
        }
        s = s[end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("label {name}: expected '='"))?
            .trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("label {name}: expected a quoted value"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(format!("label {name}: unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => {
                        return Err(format!(
                            "label {name}: invalid escape \\{}",
                            other.map_or(String::new(), |(_, c)| c.to_string())
                        ));
                    }
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} given twice"));
        }
        labels.push((name.to_owned(), value));
        s = s[close + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err(format!("after label {name}: expected ',' or '}}'"));
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_escapes_infinities_and_timestamps() {
        let text = "# HELP istio_requests_total Requests.\n\
                    # TYPE istio_requests_total counter\n\
                    \n\
                    istio_requests_total{reporter=\"destination\",path=\"a\\\"b\\\\c\\nd\",} 42\n\
                    up 1 1700000000000\r\n\
                    x_bucket{le=\"+Inf\"} +Inf\n\
                    y NaN\n";
        let s = parse(text).expect("valid text");
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].name, "istio_requests_total");
        assert_eq!(s[0].label("reporter"), Some("destination"));
        // \" → ", \\ → \, \n → newline.
        assert_eq!(s[0].label("path"), Some("a\"b\\c\nd"));
        assert_eq!(s[0].value, 42.0);
        assert_eq!((s[1].name.as_str(), s[1].value), ("up", 1.0));
        assert_eq!(s[2].label("le"), Some("+Inf"));
        assert_eq!(s[2].value, f64::INFINITY);
        assert!(s[3].value.is_nan());
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let cases = [
            ("ok 1\nbad{le=\"1\" 3\n", 2, "expected ',' or '}'"),
            ("m{a=\"x} 1\n", 1, "unterminated value"),
            ("m{a=x} 1\n", 1, "expected a quoted value"),
            ("m 1.2.3\n", 1, "is not a number"),
            ("m\n", 1, "expected a space before the value"),
            ("m{a=\"1\",a=\"2\"} 1\n", 1, "given twice"),
            ("# ok\n\n9m 1\n", 3, "expected a metric name"),
            ("m 1 2 3\n", 1, "unexpected \"3\""),
            ("m{a=\"\\t\"} 1\n", 1, "invalid escape"),
            ("m 1 soon\n", 1, "timestamp"),
        ];
        for (text, line, msg) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(msg), "{text:?}: {e}");
        }
    }
}
