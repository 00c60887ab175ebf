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
    pub fn target_service(&self) -> Option<&str> {
        self.spec.get("target")?.get("service")?.as_str()
    }
}
