//! The mesh's own objects ⇄ the models' types, as pure functions: Istio's DestinationRule and
//! VirtualService ([`istio`]) and the `autoscaling/v2` HorizontalPodAutoscaler ([`hpa`]).
//!
//! Reading turns the objects in force into the Governor's [`MeshConfig`]; writing turns one
//! `Change` into a server-side-apply body that carries only the fields homeostat owns, so a
//! person's other fields and GitOps tools are untouched. Neither direction decides anything:
//! the value written is the `Change`'s `proposed` value, as given.
//!
//! Objects are located by convention: the DestinationRule and the VirtualService are named
//! after `spec.target.service`, the HPA is `spec.target.horizontalPodAutoscaler`. [`schema`]
//! checks bodies strictly against a CRD's structural schema (Istio's own, in tests);
//! [`manifests`] finds the same objects in a user's YAML files (`recommend --current`).
//!
//! [`MeshConfig`]: homeostat_models::governor::MeshConfig

pub mod hpa;
pub mod istio;
pub mod manifests;
pub mod schema;

use std::fmt;

use homeostat_models::governor::{MeshConfig, OutlierConfig, RetryConfig};

use crate::crd::KnobSetting;

/// A mesh object homeostat cannot read or write, with the field path that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MeshError {
    /// e.g. `VirtualService checkout`.
    pub object: String,
    /// e.g. `spec.http[1].route[0].weight`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.object, self.path, self.message)
    }
}

impl MeshError {
    pub fn new(object: &str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            object: object.to_string(),
            path: path.into(),
            message: message.into(),
        }
    }
}

/// What homeostat reads from the cluster for one policy: each owned field as found (`None`
/// when the object does not set it) — the basis of `MeshConfig` and of reverts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Found {
    /// The governed route's weights per subset (empty without subsets).
    pub weights: std::collections::BTreeMap<String, u32>,
    /// `trafficPolicy.outlierDetection`, if the DestinationRule sets it.
    pub outlier: Option<OutlierConfig>,
    /// The governed route's `retries`, if set.
    pub retries: Option<RetryConfig>,
    /// The governed route's `timeout`, if set.
    pub route_timeout: Option<homeostat_models::policy::Duration>,
    /// The HPA, if the policy names one.
    pub hpa: Option<homeostat_models::governor::HpaConfig>,
}

impl Found {
    /// The owned fields of the governed objects as found; an absent object (`None`) sets
    /// nothing. On error, the kind of the object that could not be read and why.
    pub fn read(
        service: &str,
        namespace: &str,
        dr: Option<&serde_json::Value>,
        vs: Option<&serde_json::Value>,
        hpa: Option<&k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>,
    ) -> Result<Found, (&'static str, MeshError)> {
        let mut found = Found::default();
        if let Some(dr) = dr {
            found.outlier = istio::read_outlier(dr).map_err(|e| ("DestinationRule", e))?;
        }
        if let Some(vs) = vs {
            let r = istio::read_route(vs, service, namespace).map_err(|e| ("VirtualService", e))?;
            found.weights = r.weights;
            found.retries = r.retries;
            found.route_timeout = r.timeout;
        }
        if let Some(h) = hpa {
            found.hpa = Some(hpa::read(h).map_err(|e| ("HorizontalPodAutoscaler", e))?);
        }
        Ok(found)
    }

    /// The configuration in force, with Istio's defaults where a field is unset (that is what
    /// the proxies run with).
    pub fn mesh_config(&self) -> MeshConfig {
        MeshConfig {
            route_timeout: self.route_timeout,
            weights: self.weights.clone(),
            outlier_detection: self.outlier.clone().unwrap_or_default(),
            retries: self.retries.clone().unwrap_or_default(),
            hpa: self.hpa.clone(),
        }
    }

    /// The owned fields as found, for `status.appliedChanges[].original`.
    pub fn original(&self) -> KnobSetting {
        use homeostat_models::governor::KnobValue;
        let mut s = KnobSetting::default();
        if !self.weights.is_empty() {
            s.weights = Some(self.weights.clone());
        }
        if let Some(o) = &self.outlier {
            s.outlier_detection =
                KnobSetting::of(&KnobValue::OutlierDetection(o.clone())).outlier_detection;
        }
        if let Some(r) = &self.retries {
            s.retries = KnobSetting::of(&KnobValue::Retries(r.clone())).retries;
        }
        if let Some(h) = &self.hpa {
            s.autoscaling = KnobSetting::of(&KnobValue::Autoscaling(h.clone())).autoscaling;
        }
        s
    }
}
