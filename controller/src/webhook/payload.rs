//! Alertmanager's webhook payload, version 4: a small serde type of our own (the one crate that
//! has these types is AGPL), and its validation.
//!
//! Parsing never panics and every error names the field, in the payload's own JSON spelling
//! (`alerts[2].labels.alertname`), so whoever configured the sender can fix it from the 400 alone.
//! Unknown fields are ignored: Alertmanager adds fields within a version.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One webhook notification: a group of alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// Must be `"4"`.
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    /// Alerts the sender left out (its `max_alerts`); they are not seen here.
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: AlertStatus,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<PayloadAlert>,
}

/// One alert of the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAlert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339. With the fingerprint, it names one occurrence of the alert: the same alert
    /// firing again after it resolved starts at a new time.
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's hash of the label set.
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// Longest fingerprint accepted (Alertmanager's are 16 hex digits); it is stored in status.
const MAX_FINGERPRINT: usize = 128;

/// A malformed payload: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayloadError {
    /// JSON path of the field, e.g. `alerts[0].startsAt`; `.` for the document itself.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for PayloadError {}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> PayloadError {
    PayloadError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl PayloadAlert {
    /// The `alertname` label (present: [`parse`] checked it).
    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// `startsAt` in unix seconds (valid: [`parse`] checked it).
    pub fn starts_at_unix(&self) -> i64 {
        chrono::DateTime::parse_from_rfc3339(&self.starts_at).map_or(0, |t| t.timestamp())
    }
}

/// Parses and validates a payload.
pub fn parse(body: &[u8]) -> Result<Payload, PayloadError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let payload: Payload = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A missing field is reported at its parent, with its name in the message. Syntax errors
        // before any field is known give an empty or unknown (`?`) path: the document.
        let mut field = if path.is_empty() || path == "?" || path == "." {
            String::new()
        } else {
            path
        };
        let reason = inner.to_string();
        if let Some(name) = reason
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            field = if field.is_empty() {
                name.to_string()
            } else {
                format!("{field}.{name}")
            };
        }
        bad(if field.is_empty() { ".".into() } else { field }, reason)
    })?;
    if payload.version != "4" {
        return Err(bad(
            "version",
            format!(
                "only Alertmanager webhook payload version 4 is understood, got {:?}",
                payload.version
            ),
        ));
    }
    for (i, a) in payload.alerts.iter().enumerate() {
        if a.labels.get("alertname").is_none_or(|n| n.is_empty()) {
            return Err(bad(
                format!("alerts[{i}].labels.alertname"),
                "missing or empty: every alert needs a name",
            ));
        }
        if a.fingerprint.is_empty() || a.fingerprint.len() > MAX_FINGERPRINT {
            return Err(bad(
                format!("alerts[{i}].fingerprint"),
                format!("must be 1 to {MAX_FINGERPRINT} characters"),
            ));
        }
        if let Err(e) = chrono::DateTime::parse_from_rfc3339(&a.starts_at) {
            return Err(bad(
                format!("alerts[{i}].startsAt"),
                format!("not an RFC 3339 time ({e}): {:?}", a.starts_at),
            ));
        }
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"version":"4","groupKey":"{}:{alertname=\"X\"}","truncatedAlerts":0,
        "status":"firing","receiver":"homeostat","groupLabels":{"alertname":"X"},
        "commonLabels":{},"commonAnnotations":{},"externalURL":"http://am:9093",
        "alerts":[{"status":"firing","labels":{"alertname":"X","service":"checkout"},
        "annotations":{},"startsAt":"2026-11-30T19:00:00.123Z","endsAt":"0001-01-01T00:00:00Z",
        "generatorURL":"http://prom/graph","fingerprint":"3c2f2ba1e4d0a7b9"}]}"#;

    #[test]
    fn a_valid_payload_parses() {
        let p = parse(ONE.as_bytes()).unwrap();
        assert_eq!(p.alerts.len(), 1);
        assert_eq!(p.alerts[0].alertname(), "X");
        // 2026-11-30T19:00:00Z: 20 787 days after 1970-01-01 (56 years, 14 of them leap:
        // 56·365 + 14 = 20 454, plus 333 days to Nov 30) · 86 400 = 1 795 996 800 s, + 19 h.
        assert_eq!(p.alerts[0].starts_at_unix(), 1_795_996_800 + 19 * 3600);
    }

    #[test]
    fn errors_name_the_field() {
        let field = |s: &str| parse(s.as_bytes()).unwrap_err().field;
        assert_eq!(
            field(&ONE.replace(r#""version":"4""#, r#""version":"3""#)),
            "version"
        );
        assert_eq!(
            field(&ONE.replace(r#""alertname":"X","service""#, r#""service""#)),
            "alerts[0].labels.alertname"
        );
        assert_eq!(
            field(&ONE.replace("2026-11-30T19:00:00.123Z", "yesterday")),
            "alerts[0].startsAt"
        );
        assert_eq!(
            field(&ONE.replace(
                r#""status":"firing","labels""#,
                r#""status":"burning","labels""#
            )),
            "alerts[0].status"
        );
        assert_eq!(
            field(&ONE.replace("3c2f2ba1e4d0a7b9", "")),
            "alerts[0].fingerprint"
        );
        assert_eq!(
            field(&ONE.replace(r#""service":"checkout""#, r#""service":7"#)),
            "alerts[0].labels.service"
        );
        assert_eq!(field("{"), ".");
        assert_eq!(
            field(&ONE.replace(r#","fingerprint":"3c2f2ba1e4d0a7b9""#, "")),
            "alerts[0].fingerprint"
        );
        assert_eq!(field(r#"{"version":"4","status":"firing"}"#), "alerts");
    }
}
