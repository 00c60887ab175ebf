//! The governed objects from a user's own manifests (multi-document YAML, as `kubectl get -o
//! yaml` or a GitOps repository holds them), for `homeostat recommend --current` without a
//! cluster. The objects are picked as the reconciler picks them (named after
//! `spec.target.service`; the HPA named by `spec.target.horizontalPodAutoscaler`) and read by
//! the same functions ([`super::Found::read`]), so a file and a cluster give the same
//! `MeshConfig`.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde::Deserialize;
use serde_json::Value;

use homeostat_models::policy::PolicySpec;

use super::{Found, MeshError};

/// What was found in the manifests for one policy, and which objects it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FromManifests {
    pub found: Found,
    /// e.g. `DestinationRule checkout, VirtualService checkout (no HPA named checkout)`.
    pub objects: String,
}

/// Why manifests cannot be used; `document` counts from 1, as editors and `yq` do.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    #[error("document {document}: {message}")]
    Yaml { document: usize, message: String },
    #[error("document {document}: {error}")]
    Object { document: usize, error: MeshError },
    #[error(
        "no DestinationRule, VirtualService or HorizontalPodAutoscaler for service {service} \
         in namespace {namespace} (homeostat reads the ones named after spec.target.service and \
         spec.target.horizontalPodAutoscaler)"
    )]
    Nothing { service: String, namespace: String },
}

/// Whether `text` holds Kubernetes objects (some document has a `kind`), rather than a
/// `MeshConfig`.
pub fn looks_like_manifests(text: &str) -> bool {
    serde_yaml::Deserializer::from_str(text).any(|doc| {
        Value::deserialize(doc)
            .ok()
            .is_some_and(|v| v.get("kind").is_some_and(Value::is_string))
    })
}

/// Which governed object `v` is, if any: kind, name and (when set) namespace must match.
fn pick(v: &Value, service: &str, hpa_name: Option<&str>, namespace: &str) -> Option<&'static str> {
    let field = |p: &str| v.pointer(p).and_then(Value::as_str);
    if field("/metadata/namespace").is_some_and(|n| n != namespace) {
        return None;
    }
    let name = field("/metadata/name");
    match (field("/apiVersion"), field("/kind")) {
        (Some(api), Some("DestinationRule")) if api.starts_with("networking.istio.io/") => {
            (name == Some(service)).then_some("DestinationRule")
        }
        (Some(api), Some("VirtualService")) if api.starts_with("networking.istio.io/") => {
            (name == Some(service)).then_some("VirtualService")
        }
        (Some("autoscaling/v2"), Some("HorizontalPodAutoscaler")) => {
            (hpa_name.is_some() && name == hpa_name).then_some("HorizontalPodAutoscaler")
        }
        _ => None,
    }
}

/// Reads the DestinationRule, VirtualService and HPA governed by `spec` in `namespace` from
/// `text`. An object without a namespace is taken to be in `namespace` (as `kubectl apply -n`
/// would place it); objects of other kinds, names or namespaces are ignored.
pub fn read(
    text: &str,
    spec: &PolicySpec,
    namespace: &str,
) -> Result<FromManifests, ManifestError> {
    let service = &spec.target.service;
    let hpa_name = spec.target.horizontal_pod_autoscaler.as_deref();
    let mut picked: BTreeMap<&'static str, (usize, Value)> = BTreeMap::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let v = Value::deserialize(doc).map_err(|e| ManifestError::Yaml {
            document,
            message: e.to_string(),
        })?;
        // `kubectl get -o yaml` of several objects is one `List` document.
        let objects = match v.get("items").and_then(Value::as_array) {
            Some(items) if v.get("kind").and_then(Value::as_str) == Some("List") => items.clone(),
            _ => vec![v],
        };
        for v in objects {
            if let Some(kind) = pick(&v, service, hpa_name, namespace) {
                picked.insert(kind, (document, v));
            }
        }
    }
    if picked.is_empty() {
        return Err(ManifestError::Nothing {
            service: service.clone(),
            namespace: namespace.to_string(),
        });
    }
    let hpa = match picked.get("HorizontalPodAutoscaler") {
        Some((document, v)) => Some(
            serde_json::from_value::<HorizontalPodAutoscaler>(v.clone()).map_err(|e| {
                ManifestError::Object {
                    document: *document,
                    error: MeshError::new(
                        &format!("HorizontalPodAutoscaler {}", hpa_name.unwrap_or_default()),
                        "",
                        e.to_string(),
                    ),
                }
            })?,
        ),
        None => None,
    };
    let found = Found::read(
        service,
        namespace,
        picked.get("DestinationRule").map(|(_, v)| v),
        picked.get("VirtualService").map(|(_, v)| v),
        hpa.as_ref(),
    )
    .map_err(|(kind, error)| ManifestError::Object {
        document: picked.get(kind).map_or(0, |(d, _)| *d),
        error,
    })?;
    let mut objects: Vec<String> = Vec::new();
    for (kind, name) in [
        ("DestinationRule", Some(service.as_str())),
        ("VirtualService", Some(service.as_str())),
        ("HorizontalPodAutoscaler", hpa_name),
    ] {
        match (picked.contains_key(kind), name) {
            (true, Some(n)) => objects.push(format!("{kind} {n}")),
            (false, Some(n)) => objects.push(format!("no {kind} {n}: Istio's defaults")),
            _ => {}
        }
    }
    Ok(FromManifests {
        found,
        objects: objects.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use homeostat_models::governor::{OutlierConfig, RetryConfig};
    use homeostat_models::policy::Duration;

    fn spec(hpa: bool) -> PolicySpec {
        let mut s = PolicySpec::for_service("checkout");
        s.target.subsets = vec!["stable".into(), "canary".into()];
        if hpa {
            s.target.horizontal_pod_autoscaler = Some("checkout".into());
        }
        s
    }

    const MANIFESTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: checkout, namespace: shop}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: checkout, namespace: shop}
spec:
  host: checkout
  subsets: [{name: stable, labels: {version: v1}}, {name: canary, labels: {version: v2}}]
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 5s, baseEjectionTime: 60s, maxEjectionPercent: 20}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: checkout}
spec:
  hosts: [checkout]
  http:
  - route:
    - {destination: {host: checkout, subset: stable}, weight: 80}
    - {destination: {host: checkout, subset: canary}, weight: 20}
    retries: {attempts: 2, perTryTimeout: 3s, retryOn: 5xx}
    timeout: 10s
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: checkout, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: checkout}
  minReplicas: 3
  maxReplicas: 12
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 65}}
---
"#;

    #[test]
    fn istio_and_hpa_manifests_give_the_config_in_force() {
        let m = read(MANIFESTS, &spec(true), "shop").expect("readable");
        assert_eq!(
            m.found.weights,
            [("stable".to_string(), 80), ("canary".to_string(), 20)].into()
        );
        let o: OutlierConfig = m.found.outlier.clone().expect("outlier detection set");
        assert_eq!(o.consecutive_5xx_errors, 3);
        assert_eq!(o.interval, Duration::from_secs(5));
        assert_eq!(o.base_ejection_time, Duration::from_secs(60));
        assert_eq!(o.max_ejection_percent, 20);
        let r: RetryConfig = m.found.retries.clone().expect("retries set");
        assert_eq!(r.attempts, 2);
        assert_eq!(r.per_try_timeout, Some(Duration::from_secs(3)));
        assert_eq!(m.found.route_timeout, Some(Duration::from_secs(10)));
        let h = m.found.hpa.clone().expect("hpa");
        assert_eq!(
            (h.min_replicas, h.max_replicas, h.target_utilization_percent),
            (3, 12, 65)
        );
        assert_eq!(
            m.objects,
            "DestinationRule checkout, VirtualService checkout, HorizontalPodAutoscaler checkout"
        );
        assert!(looks_like_manifests(MANIFESTS));
        assert!(!looks_like_manifests("weights: {stable: 100}\n"));
    }

    #[test]
    fn objects_of_another_namespace_or_name_are_not_read() {
        let e = read(MANIFESTS, &spec(false), "payments").unwrap_err();
        assert_eq!(
            e,
            ManifestError::Nothing {
                service: "checkout".into(),
                namespace: "payments".into()
            }
        );
        // The VirtualService has no namespace: it is taken to be in the one asked for; the
        // DestinationRule (shop) is not.
        let text = MANIFESTS.replace(
            "name: checkout, namespace: shop}\nspec:\n  host",
            "name: checkout, namespace: other}\nspec:\n  host",
        );
        let m = read(&text, &spec(false), "shop").unwrap();
        assert_eq!(m.found.outlier, None);
        assert_eq!(
            m.objects,
            "no DestinationRule checkout: Istio's defaults, VirtualService checkout"
        );
    }

    #[test]
    fn a_kubectl_list_is_read_like_separate_documents() {
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(MANIFESTS)
            .map(|d| Value::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
        let text = serde_yaml::to_string(&list).unwrap();
        let from_list = read(&text, &spec(true), "shop").unwrap();
        assert_eq!(from_list, read(MANIFESTS, &spec(true), "shop").unwrap());
    }

    #[test]
    fn a_bad_field_names_the_document_and_the_path() {
        let text = MANIFESTS.replace("weight: 20", "weight: 30");
        let e = read(&text, &spec(false), "shop").unwrap_err().to_string();
        assert!(
            e.starts_with("document 3: VirtualService checkout: spec.http"),
            "{e}"
        );
        let e = read("a: [1\n", &spec(false), "shop").unwrap_err();
        assert!(
            matches!(e, ManifestError::Yaml { document: 1, .. }),
            "{e:?}"
        );
    }
}
