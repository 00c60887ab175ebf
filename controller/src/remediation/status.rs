//! The webhook's status writes. They use their own field manager, so a write carrying only
//! `alertRemediations` (and the `appliedChanges` it adds to) leaves the reconciler's fields
//! alone, and they carry the `resourceVersion` read, so a write racing another (the
//! reconciler's, or another replica's) fails with 409 instead of losing it: the webhook then
//! answers 500 and Alertmanager redelivers, to a fresh read.

use kube::api::{Api, Patch, PatchParams, ResourceExt};
use serde_json::{Map, Value, json};

use crate::crd::{AdaptivePolicy, AdaptivePolicyStatus};
use crate::reconcile::policy::time;
use crate::webhook::SeamError;

/// The field manager of the webhook's status writes.
pub const FIELD_MANAGER: &str = "homeostat-remediation";

/// Which status fields a write carries besides `alertRemediations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carry {
    Records,
    /// Also `appliedChanges` and `lastChange` (a change was added at `at`).
    AppliedAt(i64),
}

/// Writes `status` of `p` (as read, with its resourceVersion); the updated object.
pub async fn write(
    api: &Api<AdaptivePolicy>,
    p: &AdaptivePolicy,
    status: &AdaptivePolicyStatus,
    carry: Carry,
) -> Result<AdaptivePolicy, SeamError> {
    let mut st = Map::new();
    st.insert(
        "alertRemediations".into(),
        to_json(&status.alert_remediations),
    );
    if let Carry::AppliedAt(at) = carry {
        st.insert("appliedChanges".into(), to_json(&status.applied_changes));
        st.insert("lastChange".into(), to_json(&time(at)));
    }
    let mut metadata = json!({ "name": p.name_any() });
    if let Some(rv) = p.resource_version() {
        metadata["resourceVersion"] = Value::String(rv);
    }
    let body = json!({
        "apiVersion": "homeostat.dev/v1alpha1",
        "kind": "AdaptivePolicy",
        "metadata": metadata,
        "status": Value::Object(st),
    });
    api.patch_status(
        &p.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| SeamError(format!("writing the status of {}: {e}", p.name_any())))
}

/// A status part as JSON (the status types always serialise; null otherwise).
fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
