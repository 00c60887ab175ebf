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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{AlertMatch, Remediation};

    #[test]
    fn labels_must_all_match_and_actions_are_merged_once() {
        let mut spec = PolicySpec::for_service("checkout");
        let rem = |labels: &[(&str, &str)], actions: Vec<RemediationAction>| Remediation {
            on_alert: AlertMatch {
                alertname: "HighErrors".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            actions,
        };
        spec.remediation = vec![
            rem(&[], vec![RemediationAction::ShiftToStable]),
            rem(
                &[("severity", "page")],
                vec![RemediationAction::ShiftToStable, RemediationAction::Freeze],
            ),
        ];
        let alert = |labels: &[(&str, &str)]| Alert {
            alertname: "HighErrors".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(
            matching_actions(&spec, &alert(&[("severity", "ticket")])),
            vec![RemediationAction::ShiftToStable]
        );
        assert_eq!(
            matching_actions(&spec, &alert(&[("severity", "page"), ("team", "x")])),
            vec![RemediationAction::ShiftToStable, RemediationAction::Freeze]
        );
        let other = Alert {
            alertname: "Other".into(),
            labels: BTreeMap::new(),
        };
        assert!(matching_actions(&spec, &other).is_empty());
    }
}
