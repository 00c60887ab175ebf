//! Go-style duration strings ("250ms", "15s", "5m", "1h30m") as scenario files and the
//! AdaptivePolicy CRD write them, held as integer nanoseconds so simulated time is exact.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative span of simulated time, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

pub const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub fn from_secs_f64(s: f64) -> Duration {
        Duration((s.max(0.0) * NANOS_PER_SEC as f64).round() as u64)
    }
    pub fn from_secs(s: u64) -> Duration {
        Duration(s.saturating_mul(NANOS_PER_SEC))
    }
    pub fn from_millis(ms: u64) -> Duration {
        Duration(ms.saturating_mul(1_000_000))
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    pub fn nanos(self) -> u64 {
        self.0
    }

    /// Parses "1h30m", "250ms", "1.5s", "2us", "0". A bare number is seconds.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty duration".into());
        }
        if let Ok(secs) = t.parse::<f64>() {
            return if secs.is_finite() && secs >= 0.0 {
                Ok(Duration::from_secs_f64(secs))
            } else {
                Err(format!(
                    "duration {t:?} must be a finite, non-negative number"
                ))
            };
        }
        let bytes = t.as_bytes();
        let mut i = 0;
        let mut total = 0f64;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let number: f64 = t[start..i]
                .parse()
                .map_err(|_| format!("duration {t:?}: expected a number at {:?}", &t[start..]))?;
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let scale = match &t[unit_start..i] {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "d" => 86_400.0,
                other => {
                    return Err(format!(
                        "duration {t:?}: unknown unit {other:?} (use ns, us, ms, s, m, h, d)"
                    ));
                }
            };
            total += number * scale;
        }
        Ok(Duration::from_secs_f64(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_secs_f64();
        if self.0 % NANOS_PER_SEC == 0 {
            write!(f, "{}s", self.0 / NANOS_PER_SEC)
        } else if s < 1.0 {
            write!(f, "{}ms", s * 1e3)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n.is_finite() && n >= 0.0 => Ok(Duration::from_secs_f64(n)),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "duration {n} must be a finite, non-negative number of seconds"
            ))),
            Raw::Text(t) => Duration::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A Go-style duration such as \"250ms\", \"15s\", \"5m\", \"1h30m\", or a number of seconds.",
            "anyOf": [
                { "type": "string", "pattern": "^([0-9.]+(ns|us|µs|ms|s|m|h|d))+$" },
                { "type": "number", "minimum": 0 }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(Duration::parse("15s").unwrap(), Duration::from_secs(15));
        // 1h30m = 3600 + 1800 = 5400 s
        assert_eq!(Duration::parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            Duration::parse("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(Duration::parse("2.5").unwrap(), Duration::from_millis(2500));
        assert!(Duration::parse("5 parsecs").is_err());
        assert!(Duration::parse("-3s").is_err());
        assert_eq!(Duration::from_millis(250).to_string(), "250ms");
    }
}
