//! Seam: the AdaptivePolicies the webhook can act for, and the mesh configuration in force for
//! each. The controller implements it over its watch cache of AdaptivePolicies and the Istio /
//! HPA objects it reads for the reconciler; [`InMemoryDirectory`] serves tests and
//! `homeostat alert test`.

use std::future::Future;

use homeostat_models::governor::MeshConfig;
use homeostat_models::policy::PolicySpec;
use serde::Serialize;

use super::SeamError;

/// Namespace and name of an AdaptivePolicy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PolicyKey {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for PolicyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One AdaptivePolicy as the webhook sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownPolicy {
    pub key: PolicyKey,
    /// The validated spec (a policy that fails validation is not listed).
    pub spec: PolicySpec,
}

/// The policies known now.
pub trait PolicyDirectory: Send + Sync + 'static {
    /// Every known AdaptivePolicy with a valid spec.
    fn policies(&self) -> impl Future<Output = Result<Vec<KnownPolicy>, SeamError>> + Send;

    /// The configuration in force for the policy's target (weights, outlier detection, retries,
    /// HPA), read the way the reconciler reads it.
    fn mesh_config(
        &self,
        policy: &KnownPolicy,
    ) -> impl Future<Output = Result<MeshConfig, SeamError>> + Send;
}

/// A fixed set of policies, each with its configuration in force.
#[derive(Debug, Clone, Default)]
pub struct InMemoryDirectory {
    pub policies: Vec<(KnownPolicy, MeshConfig)>,
}

impl InMemoryDirectory {
    pub fn new(policies: Vec<(KnownPolicy, MeshConfig)>) -> Self {
        Self { policies }
    }
}

impl PolicyDirectory for InMemoryDirectory {
    async fn policies(&self) -> Result<Vec<KnownPolicy>, SeamError> {
        Ok(self.policies.iter().map(|(p, _)| p.clone()).collect())
    }

    async fn mesh_config(&self, policy: &KnownPolicy) -> Result<MeshConfig, SeamError> {
        self.policies
            .iter()
            .find(|(p, _)| p.key == policy.key)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| SeamError(format!("policy {} is no longer known", policy.key)))
    }
}
