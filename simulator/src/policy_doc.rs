//! An AdaptivePolicy document inside a scenario file: the same YAML as the custom resource.

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
    #[schemars(with = "serde_json::Value")]
    pub spec: serde_json::Value,
}

impl PolicyDocument {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    /// (success-rate objective, p99 objective in ms).
    pub fn objectives(&self) -> (f64, f64) {
        let o = self.spec.get("objectives");
        let sr = o
            .and_then(|o| o.get("successRate"))
            .and_then(|v| v.as_f64())
            .unwrap_or(0.999);
        let p99 = o
            .and_then(|o| o.get("latencyP99"))
            .and_then(|v| v.as_str())
            .and_then(|t| crate::duration::Duration::parse(t).ok())
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(300.0);
        (sr, p99)
    }
    pub fn target_service(&self) -> Option<&str> {
        self.spec.get("target")?.get("service")?.as_str()
    }
}
