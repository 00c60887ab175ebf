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

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration (write e.g. \"15s\")")]
    Empty,
    #[error(
        "invalid duration {0:?}: expected numbers with units ns, us, ms, s, m, h (e.g. \"1h30m\")"
    )]
    Invalid(String),
    #[error("invalid duration {0:?}: missing unit after {1:?} (e.g. \"{1}s\")")]
    MissingUnit(String, String),
    #[error("invalid duration {0:?}: unknown unit {1:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit(String, String),
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

/// Parses Go's duration syntax (`time.ParseDuration`) minus negative values, into nanoseconds:
/// one or more number-unit pairs such as `"10s"`, `"25ms"`, `"1.5s"`, `"1h30m"`, `"250us"`;
/// `"0"` alone is zero. This is the one duration parser of the project: policies, scenario
/// files, mesh configuration and command-line flags all read durations through it.
///
/// Any other bare number is rejected on purpose: `timeout: 30` is ambiguous (seconds? ms?) and
/// a wrong guess silently changes a setting by a factor of 1000.
pub fn parse_duration(text: &str) -> Result<Nanos, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(0);
    }
    let overflow = || DurationError::Overflow(text.to_string());
    let mut nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
            .map_or(rest.len(), |(i, _)| i);
        let number = &rest[..num_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(DurationError::Invalid(text.to_string()));
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .char_indices()
            .find(|&(_, c)| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "" => {
                return Err(DurationError::MissingUnit(
                    text.to_string(),
                    number.to_string(),
                ));
            }
            "ns" => 1,
            "us" | "µs" | "μs" => u128::from(MICROSECOND),
            "ms" => u128::from(MILLISECOND),
            "s" => u128::from(SECOND),
            "m" => u128::from(MINUTE),
            "h" => u128::from(HOUR),
            other => {
                return Err(DurationError::UnknownUnit(
                    text.to_string(),
                    other.to_string(),
                ));
            }
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| overflow())?
        };
        let mut part = int.checked_mul(scale).ok_or_else(overflow)?;
        // Fractions are exact to the nanosecond: digits beyond what the unit can express are
        // dropped, as Go does (no floating point, so "0.1s" is exactly 100 ms).
        let mut place = scale;
        for d in frac.chars() {
            place /= 10;
            if place == 0 {
                break;
            }
            part += u128::from(d.to_digit(10).unwrap_or(0)) * place;
        }
        nanos = nanos.checked_add(part).ok_or_else(overflow)?;
    }
    Nanos::try_from(nanos).map_err(|_| overflow())
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
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("0.1s"), Ok(100 * MILLISECOND));
        assert_eq!(
            parse_duration("1.5"),
            Err(DurationError::MissingUnit("1.5".into(), "1.5".into()))
        );
        assert!(matches!(
            parse_duration("99999999999h"),
            Err(DurationError::Overflow(_))
        ));
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
