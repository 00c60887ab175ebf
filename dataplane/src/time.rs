//! Virtual time: every state machine takes `now` from its caller and never reads a clock, so the
//! simulator's discrete-event loop and the proxy's tokio timers drive the very same code.
//!
//! Durations in configuration files are written the way Istio and Envoy write them (`10s`,
//! `25ms`, `5m`); [`duration`] and [`opt_duration`] are the serde adapters for that form.

/// Nanoseconds since an arbitrary origin chosen by the caller (simulation start, process start).
pub type Nanos = u64;

/// One microsecond in [`Nanos`].
pub const MICROSECOND: Nanos = 1_000;
/// One millisecond in [`Nanos`].
pub const MILLISECOND: Nanos = 1_000_000;
/// One second in [`Nanos`].
pub const SECOND: Nanos = 1_000_000_000;
/// One minute in [`Nanos`].
pub const MINUTE: Nanos = 60 * SECOND;
/// One hour in [`Nanos`].
pub const HOUR: Nanos = 60 * MINUTE;

/// Parses `"10s"`, `"25ms"`, `"1.5s"`, `"5m"`, `"1h30m"`, `"250us"`, `"100ns"` into
/// nanoseconds (Go / protobuf-JSON style: one or more number-unit pairs).
///
/// A bare number is rejected on purpose: `timeout: 30` is ambiguous (seconds? ms?) and a wrong
/// guess silently changes a scenario by a factor of 1000.
pub fn parse_duration(text: &str) -> Result<Nanos, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. `10s`, `25ms`, `5m`".to_owned());
    }
    let mut rest = t;
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration `{t}` has no unit; write e.g. `10s`, `25ms`, `5m`"))?;
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1,
            "us" | "µs" => MICROSECOND,
            "ms" => MILLISECOND,
            "s" => SECOND,
            "m" => MINUTE,
            "h" => HOUR,
            _ => {
                return Err(format!(
                    "duration `{t}` has unknown unit `{unit}`; use ns, us, ms, s, m or h"
                ));
            }
        };
        let value: f64 = num
            .parse()
            .map_err(|_| format!("duration `{t}`: `{num}` is not a number"))?;
        total += value * scale as f64;
        rest = next;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("duration `{t}` is out of range"));
    }
    Ok(total.round() as Nanos)
}

/// JSON schema of a duration field (for `#[schemars(schema_with = ...)]`).
pub fn duration_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A duration such as \"25ms\", \"10s\", \"5m\" or \"1h30m\" (a unit is required).",
        "type": "string",
        "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
    })
}

/// JSON schema of an optional duration field.
pub fn opt_duration_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A duration such as \"2s\" (a unit is required), or null for none.",
        "type": ["string", "null"],
        "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
    })
}

/// Formats nanoseconds in the largest unit that represents them exactly (`30s`, `25ms`).
pub fn format_duration(n: Nanos) -> String {
    const UNITS: [(Nanos, &str); 5] = [
        (HOUR, "h"),
        (MINUTE, "m"),
        (SECOND, "s"),
        (MILLISECOND, "ms"),
        (MICROSECOND, "us"),
    ];
    if n == 0 {
        return "0s".to_owned();
    }
    for (scale, unit) in UNITS {
        if n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    format!("{n}ns")
}

/// Serde adapter: a [`Nanos`] field written as `"10s"`.
pub mod duration {
    use super::{Nanos, format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Nanos, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Nanos, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter: an `Option<Nanos>` field written as `"2s"` or left out.
pub mod opt_duration {
    use super::{Nanos, format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Nanos>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_some(&format_duration(*n)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Nanos>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_style_durations() {
        assert_eq!(parse_duration("10s"), Ok(10 * SECOND));
        assert_eq!(parse_duration("25ms"), Ok(25 * MILLISECOND));
        // 1.5 s = 1_500_000_000 ns
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("5m"), Ok(300 * SECOND));
        assert_eq!(parse_duration("1h"), Ok(3_600 * SECOND));
        assert_eq!(parse_duration("1h30m"), Ok(5_400 * SECOND));
        assert_eq!(parse_duration("1m0.5s"), Ok(60_500 * MILLISECOND));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10s5").is_err());
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("30 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn formats_in_largest_exact_unit_and_round_trips() {
        assert_eq!(format_duration(30 * SECOND), "30s");
        assert_eq!(format_duration(300 * SECOND), "5m");
        assert_eq!(format_duration(25 * MILLISECOND), "25ms");
        assert_eq!(format_duration(1_500 * MILLISECOND), "1500ms");
        for n in [0, 1, 999, 25 * MILLISECOND, 90 * SECOND, 2 * HOUR] {
            assert_eq!(parse_duration(&format_duration(n)), Ok(n));
        }
    }
}
