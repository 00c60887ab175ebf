//! Go-style durations ("15s", "5m", "1h30m", "300ms"), as Kubernetes users write them.
//!
//! The CRD carries durations as strings because that is what `kubectl` users and Istio's own
//! resources use; the parser accepts exactly Go's `time.ParseDuration` grammar minus negative
//! values (no knob of ours can be negative).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration written Go-style: a sequence of decimal numbers each with a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. "300ms", "15s", "1h30m", "1.5h"; "0" alone is
/// zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

/// The regular expression the CRD's OpenAPI schema checks durations against.
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$";

pub use homeostat_dataplane::time::DurationError;

impl Duration {
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    pub const fn from_secs(s: u64) -> Self {
        Self(std::time::Duration::from_secs(s))
    }

    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }

    /// From nanoseconds, the data plane's unit ([`homeostat_dataplane::time::Nanos`]).
    pub const fn from_nanos(ns: u64) -> Self {
        Self(std::time::Duration::from_nanos(ns))
    }

    /// Nanoseconds, the data plane's unit; saturates at `u64::MAX` (584 years).
    pub fn as_nanos(&self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }

    /// From seconds; negative or non-finite becomes zero, huge values saturate.
    pub fn from_secs_f64(s: f64) -> Self {
        if !s.is_finite() || s <= 0.0 {
            return Self::ZERO;
        }
        Self(std::time::Duration::try_from_secs_f64(s).unwrap_or(std::time::Duration::MAX))
    }

    pub fn as_secs_f64(&self) -> f64 {
        self.0.as_secs_f64()
    }

    /// Whole seconds, rounded up: a 500 ms cooldown still holds for the next whole second.
    pub fn as_secs_ceil(&self) -> i64 {
        let s = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        i64::try_from(s).unwrap_or(i64::MAX)
    }

    pub fn as_std(&self) -> std::time::Duration {
        self.0
    }

    /// Parses Go's duration syntax (non-negative only), with the project's one parser
    /// ([`homeostat_dataplane::time::parse_duration`]).
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        homeostat_dataplane::time::parse_duration(text)
            .map(|n| Self(std::time::Duration::from_nanos(n)))
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The shortest Go-style spelling: "300ms", "15s", "1h30m", "1m0.5s".
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_nanos();
        if total == 0 {
            return f.write_str("0s");
        }
        if total < 1_000_000_000 {
            return if total.is_multiple_of(1_000_000) {
                write!(f, "{}ms", total / 1_000_000)
            } else if total.is_multiple_of(1_000) {
                write!(f, "{}us", total / 1_000)
            } else {
                write!(f, "{total}ns")
            };
        }
        let secs = self.0.as_secs();
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let sub = self.0.subsec_nanos();
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if sub > 0 {
            let frac = format!("{sub:09}");
            write!(f, "{s}.{}s", frac.trim_end_matches('0'))
        } else if s > 0 {
            write!(f, "{s}s")
        } else {
            Ok(())
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A Go-style duration, e.g. \"300ms\", \"15s\", \"5m\", \"1h30m\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let ms = |t: &str| Duration::parse(t).map(|d| d.as_std().as_millis());
        assert_eq!(ms("15s"), Ok(15_000));
        assert_eq!(ms("5m"), Ok(300_000));
        // 1h30m = 3600 s + 1800 s = 5400 s.
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("300ms"), Ok(300));
        // 1.5h = 90 min = 5400 s.
        assert_eq!(ms("1.5h"), Ok(5_400_000));
        assert_eq!(ms(".5s"), Ok(500));
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(
            Duration::parse("1500us").map(|d| d.as_std().as_micros()),
            Ok(1500)
        );
    }

    #[test]
    fn rejects_bad_durations_with_a_reason() {
        assert_eq!(Duration::parse(""), Err(DurationError::Empty));
        assert_eq!(
            Duration::parse("15"),
            Err(DurationError::MissingUnit("15".into(), "15".into()))
        );
        assert_eq!(
            Duration::parse("3d"),
            Err(DurationError::UnknownUnit("3d".into(), "d".into()))
        );
        assert!(matches!(
            Duration::parse("-5s"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            Duration::parse("1..2s"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            Duration::parse("99999999999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn displays_the_shortest_spelling_and_round_trips() {
        for (text, shown) in [
            ("300ms", "300ms"),
            ("15s", "15s"),
            ("90s", "1m30s"),
            ("1h30m", "1h30m"),
            ("1.5s", "1.5s"),
            ("0", "0s"),
        ] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(d.to_string(), shown);
            assert_eq!(Duration::parse(shown), Ok(d));
        }
    }
}
