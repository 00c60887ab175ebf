//! An AdaptivePolicy document inside a scenario file: the same YAML as the custom resource, its
//! `spec` the very `homeostat_models::policy::PolicySpec` the controller reads.

use homeostat_models::policy::PolicySpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyDocument {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub metadata: Metadata,
    pub spec: PolicySpec,
}

impl PolicyDocument {
    /// The spec's own validation; every problem with its path, joined.
    pub fn validate(&self) -> Result<(), String> {
        self.spec.validate().map_err(|errs| {
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    pub fn target_service(&self) -> Option<&str> {
        Some(self.spec.target.service.as_str())
    }

    /// (success-rate objective, p99 objective in ms).
    pub fn objectives(&self) -> (f64, f64) {
        let o = &self.spec.objectives;
        (o.success_rate, o.latency_p99.as_secs_f64() * 1e3)
    }
}
