//! The Prometheus rules shipped in `rules/`, as the Prometheus Operator's `PrometheusRule`.
//!
//! `rules/*.yml` is the one source: plain Prometheus rule files that `promtool` checks and unit
//! tests, and that a Prometheus without the Operator loads as they are. This module embeds them
//! in the binary and wraps their `groups` in a `monitoring.coreos.com/v1` `PrometheusRule`, so
//! `homeostat rules` (and later `homeostat install`) prints the very rules the tests ran —
//! nothing is maintained twice.

use anyhow::{Context, Result, bail};
use serde_yaml::{Mapping, Value};

/// The rule files, in load order: recording rules first (the alerts read their series).
pub const RULE_FILES: [(&str, &str); 3] = [
    (
        "istio.rules.yml",
        include_str!("../../rules/istio.rules.yml"),
    ),
    ("slo.alerts.yml", include_str!("../../rules/slo.alerts.yml")),
    (
        "homeostat.alerts.yml",
        include_str!("../../rules/homeostat.alerts.yml"),
    ),
];

/// Every rule group of every file, in file order.
pub fn groups() -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (name, text) in RULE_FILES {
        let doc: Value = serde_yaml::from_str(text).with_context(|| format!("rules/{name}"))?;
        let Some(groups) = doc.get("groups").and_then(Value::as_sequence) else {
            bail!("rules/{name}: no `groups` list");
        };
        out.extend(groups.iter().cloned());
    }
    Ok(out)
}

/// The `PrometheusRule` holding every group. `labels` are added to its metadata, for an
/// Operator whose `ruleSelector` picks rules by label (e.g. `release: prometheus`).
pub fn prometheus_rule(name: &str, namespace: &str, labels: &[(String, String)]) -> Result<Value> {
    let mut meta_labels = Mapping::new();
    meta_labels.insert("app.kubernetes.io/name".into(), "homeostat".into());
    for (k, v) in labels {
        meta_labels.insert(k.as_str().into(), v.as_str().into());
    }
    let mut metadata = Mapping::new();
    metadata.insert("name".into(), name.into());
    metadata.insert("namespace".into(), namespace.into());
    metadata.insert("labels".into(), Value::Mapping(meta_labels));
    let mut spec = Mapping::new();
    spec.insert("groups".into(), Value::Sequence(groups()?));
    let mut rule = Mapping::new();
    rule.insert("apiVersion".into(), "monitoring.coreos.com/v1".into());
    rule.insert("kind".into(), "PrometheusRule".into());
    rule.insert("metadata".into(), Value::Mapping(metadata));
    rule.insert("spec".into(), Value::Mapping(spec));
    Ok(Value::Mapping(rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_carries_every_group_of_every_file_unchanged() {
        let rule = prometheus_rule("homeostat", "homeostat-system", &[]).unwrap();
        assert_eq!(rule["kind"], Value::from("PrometheusRule"));
        assert_eq!(
            rule["metadata"]["namespace"],
            Value::from("homeostat-system")
        );
        let groups = rule["spec"]["groups"].as_sequence().unwrap();
        // One group per file, in file order.
        let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "homeostat-istio",
                "homeostat-slo-alerts",
                "homeostat-self-alerts"
            ]
        );
    }
}
