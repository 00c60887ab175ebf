//! `autoscaling/v2` HorizontalPodAutoscaler ⇄ the models' [`HpaConfig`].
//!
//! Owned fields: `spec.minReplicas`, `spec.maxReplicas` and the CPU `Utilization` target's
//! `averageUtilization`. `spec.metrics` is an atomic list in Kubernetes, so the apply body
//! carries the live metrics with only the CPU target replaced (a person's memory or custom
//! metrics stay as they are); `scaleTargetRef`, `behavior` and the rest are not sent.

use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, MetricSpec, MetricTarget, ResourceMetricSource,
};
use serde_json::{Value, json};

use homeostat_models::governor::HpaConfig;

use super::MeshError;

fn label(hpa: &HorizontalPodAutoscaler) -> String {
    format!(
        "HorizontalPodAutoscaler {}",
        hpa.metadata.name.as_deref().unwrap_or("?")
    )
}

fn is_cpu_utilization(m: &MetricSpec) -> bool {
    m.type_ == "Resource"
        && m.resource
            .as_ref()
            .is_some_and(|r| r.name == "cpu" && r.target.type_ == "Utilization")
}

fn non_negative(obj: &str, path: &str, v: i32) -> Result<u32, MeshError> {
    u32::try_from(v)
        .map_err(|_| MeshError::new(obj, path, format!("must not be negative, got {v}")))
}

/// The HPA as the Governor sees it. An HPA without a CPU utilisation target cannot be governed
/// by a utilisation target, so it is an error naming `spec.metrics`.
pub fn read(hpa: &HorizontalPodAutoscaler) -> Result<HpaConfig, MeshError> {
    let obj = label(hpa);
    let spec = &hpa.spec;
    let metrics = spec.metrics.as_deref().unwrap_or(&[]);
    let (i, cpu) = metrics
        .iter()
        .enumerate()
        .find(|(_, m)| is_cpu_utilization(m))
        .ok_or_else(|| {
            MeshError::new(
                &obj,
                "spec.metrics",
                "no Resource cpu metric with a Utilization target",
            )
        })?;
    let target = cpu
        .resource
        .as_ref()
        .and_then(|r| r.target.average_utilization)
        .ok_or_else(|| {
            MeshError::new(
                &obj,
                format!("spec.metrics[{i}].resource.target.averageUtilization"),
                "missing",
            )
        })?;
    let current = hpa
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .unwrap_or(0);
    Ok(HpaConfig {
        // Kubernetes defaults minReplicas to 1.
        min_replicas: non_negative(&obj, "spec.minReplicas", spec.min_replicas.unwrap_or(1))?,
        max_replicas: non_negative(&obj, "spec.maxReplicas", spec.max_replicas)?,
        target_utilization_percent: non_negative(
            &obj,
            &format!("spec.metrics[{i}].resource.target.averageUtilization"),
            target,
        )?,
        current_replicas: non_negative(&obj, "status.currentReplicas", current)?,
        // The HPA does not know the cluster's quota; unknown here.
        replica_cap: None,
    })
}

fn to_i32(obj: &str, path: &str, v: u32) -> Result<i32, MeshError> {
    i32::try_from(v).map_err(|_| MeshError::new(obj, path, format!("{v} does not fit an int32")))
}

/// The server-side-apply body setting the HPA's bounds and CPU target to `value`.
pub fn apply_body(hpa: &HorizontalPodAutoscaler, value: &HpaConfig) -> Result<Value, MeshError> {
    let obj = label(hpa);
    let mut metrics: Vec<MetricSpec> = hpa.spec.metrics.clone().unwrap_or_default();
    let target = to_i32(&obj, "spec.metrics", value.target_utilization_percent)?;
    match metrics.iter_mut().find(|m| is_cpu_utilization(m)) {
        Some(m) => {
            if let Some(r) = m.resource.as_mut() {
                r.target.average_utilization = Some(target);
            }
        }
        None => metrics.push(MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(target),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }),
    }
    Ok(json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": hpa.metadata.name },
        "spec": {
            "minReplicas": to_i32(&obj, "spec.minReplicas", value.min_replicas)?,
            "maxReplicas": to_i32(&obj, "spec.maxReplicas", value.max_replicas)?,
            "metrics": metrics,
        }
    }))
}
