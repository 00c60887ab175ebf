//! Alert-triggered remediation: an Alertmanager alert in, the policy's matching actions out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::{PolicySpec, RemediationAction};

/// A firing alert, as the Alertmanager webhook carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub alertname: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The actions of every remediation entry matching the alert, in policy order, each once.
pub fn matching_actions(spec: &PolicySpec, alert: &Alert) -> Vec<RemediationAction> {
    let mut out: Vec<RemediationAction> = Vec::new();
    for rem in &spec.remediation {
        let m = &rem.on_alert;
        let labels_match = m.labels.iter().all(|(k, v)| alert.labels.get(k) == Some(v));
        if m.alertname == alert.alertname && labels_match {
            for a in &rem.actions {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
    }
    out
}
