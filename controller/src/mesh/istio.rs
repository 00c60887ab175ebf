//! Istio `networking.istio.io/v1` DestinationRule and VirtualService ⇄ the models' types.
//!
//! Owned fields:
//! * DestinationRule `spec.trafficPolicy.outlierDetection.{consecutive5xxErrors, interval,
//!   baseEjectionTime, maxEjectionPercent}` — a nested object, so a server-side apply of just
//!   these four fields owns just these four fields.
//! * VirtualService: the governed route's `route[].weight` and `retries.{attempts,
//!   perTryTimeout, retryOn}`. Istio's CRD declares `spec.http` an atomic list (no
//!   `x-kubernetes-list-type`), so server-side apply can only set it whole: the body carries
//!   the live `spec.http` with only those fields replaced, and every other field of every route
//!   exactly as found. GitOps tools must ignore `spec.http` weights/retries (docs/controller.md).
//!
//! The governed route is the last `spec.http` entry whose every destination is the target
//! service (Istio matches routes in order, so the last is the catch-all default route).

use std::collections::BTreeMap;

use kube::discovery::ApiResource;
use serde_json::{Map, Value, json};

use homeostat_models::governor::{OutlierConfig, RetryConfig, RetryOn};
use homeostat_models::policy::Duration;

use super::MeshError;

pub const GROUP: &str = "networking.istio.io";
pub const VERSION: &str = "v1";

/// The DestinationRule kind, for `Api<DynamicObject>`.
pub fn destination_rule() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: "DestinationRule".into(),
        plural: "destinationrules".into(),
    }
}

/// The VirtualService kind, for `Api<DynamicObject>`.
pub fn virtual_service() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: "VirtualService".into(),
        plural: "virtualservices".into(),
    }
}

/// Whether `host` names `service` in `namespace` (short, namespaced or fully qualified).
pub fn names_service(host: &str, service: &str, namespace: &str) -> bool {
    host == service
        || host == format!("{service}.{namespace}")
        || host == format!("{service}.{namespace}.svc")
        || host == format!("{service}.{namespace}.svc.cluster.local")
}

fn object_label(kind: &str, obj: &Value) -> String {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{kind} {name}")
}

fn duration_at(obj: &str, v: &Value, path: &str) -> Result<Option<Duration>, MeshError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Duration::parse(s)
            .map(Some)
            .map_err(|e| MeshError::new(obj, path, format!("not a duration {s:?}: {e}"))),
        other => Err(MeshError::new(
            obj,
            path,
            format!("expected a duration string, got {other}"),
        )),
    }
}

fn u32_at(obj: &str, v: &Value, path: &str) -> Result<Option<u32>, MeshError> {
    match v {
        Value::Null => Ok(None),
        v => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                MeshError::new(
                    obj,
                    path,
                    format!("expected a non-negative integer, got {v}"),
                )
            }),
    }
}

/// The DestinationRule's outlier detection, `None` when it sets none. Unset fields take Istio's
/// defaults (5 errors, 10s, 30s, 10%).
pub fn read_outlier(dr: &Value) -> Result<Option<OutlierConfig>, MeshError> {
    let obj = object_label("DestinationRule", dr);
    let Some(od) = dr.pointer("/spec/trafficPolicy/outlierDetection") else {
        return Ok(None);
    };
    let p = "spec.trafficPolicy.outlierDetection";
    if !od.is_object() {
        return Err(MeshError::new(&obj, p, "expected an object"));
    }
    let d = OutlierConfig::default();
    let get = |k: &str| od.get(k).unwrap_or(&Value::Null);
    Ok(Some(OutlierConfig {
        consecutive_5xx_errors: u32_at(
            &obj,
            get("consecutive5xxErrors"),
            &format!("{p}.consecutive5xxErrors"),
        )?
        .unwrap_or(d.consecutive_5xx_errors),
        interval: duration_at(&obj, get("interval"), &format!("{p}.interval"))?
            .unwrap_or(d.interval),
        base_ejection_time: duration_at(
            &obj,
            get("baseEjectionTime"),
            &format!("{p}.baseEjectionTime"),
        )?
        .unwrap_or(d.base_ejection_time),
        // Istio does not expose Envoy's `max_ejection_time`: Envoy's default holds.
        max_ejection_time: d.max_ejection_time,
        max_ejection_percent: u32_at(
            &obj,
            get("maxEjectionPercent"),
            &format!("{p}.maxEjectionPercent"),
        )?
        .unwrap_or(d.max_ejection_percent),
    }))
}

/// The server-side-apply body that sets the DestinationRule's outlier detection to `value` and
/// nothing else; `None` applies no owned field (homeostat's outlier fields are removed, which
/// is how a revert to "not set" is written).
pub fn outlier_apply_body(name: &str, value: Option<&OutlierConfig>) -> Value {
    let mut body = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "DestinationRule",
        "metadata": { "name": name },
    });
    if let Some(o) = value {
        body["spec"] = json!({
            "trafficPolicy": {
                "outlierDetection": {
                    "consecutive5xxErrors": o.consecutive_5xx_errors,
                    "interval": o.interval.to_string(),
                    "baseEjectionTime": o.base_ejection_time.to_string(),
                    "maxEjectionPercent": o.max_ejection_percent,
                }
            }
        });
    }
    body
}

/// The governed route of a VirtualService, as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Route {
    /// Index in `spec.http`.
    pub index: usize,
    /// Weight per subset of the destinations that name one.
    pub weights: BTreeMap<String, u32>,
    /// `retries`, if the route sets it (unset fields take Istio's defaults).
    pub retries: Option<RetryConfig>,
    /// The route's `timeout`, if set (Istio's default is none).
    pub timeout: Option<Duration>,
}

fn http_routes<'a>(obj: &str, vs: &'a Value) -> Result<&'a Vec<Value>, MeshError> {
    match vs.pointer("/spec/http") {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(MeshError::new(obj, "spec.http", "expected a list")),
        None => Err(MeshError::new(
            obj,
            "spec.http",
            "no HTTP routes: nothing to govern",
        )),
    }
}

/// Finds the governed route: the last one whose every destination is the target service.
pub fn read_route(vs: &Value, service: &str, namespace: &str) -> Result<Route, MeshError> {
    let obj = object_label("VirtualService", vs);
    let http = http_routes(&obj, vs)?;
    let index = http
        .iter()
        .rposition(|r| {
            r.get("route").and_then(Value::as_array).is_some_and(|ds| {
                !ds.is_empty()
                    && ds.iter().all(|d| {
                        d.pointer("/destination/host")
                            .and_then(Value::as_str)
                            .is_some_and(|h| names_service(h, service, namespace))
                    })
            })
        })
        .ok_or_else(|| {
            MeshError::new(
                &obj,
                "spec.http",
                format!("no route sends all its traffic to service {service}"),
            )
        })?;
    let route = &http[index];
    let base = format!("spec.http[{index}]");
    let dests = route
        .get("route")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut weights = BTreeMap::new();
    for (i, d) in dests.iter().enumerate() {
        let Some(subset) = d.pointer("/destination/subset").and_then(Value::as_str) else {
            continue;
        };
        let path = format!("{base}.route[{i}].weight");
        // Istio: a lone destination without a weight takes all the traffic; with several,
        // an unset weight is 0.
        let default = if dests.len() == 1 { 100 } else { 0 };
        let w = u32_at(&obj, d.get("weight").unwrap_or(&Value::Null), &path)?.unwrap_or(default);
        if weights.insert(subset.to_string(), w).is_some() {
            return Err(MeshError::new(
                &obj,
                &path,
                format!("subset {subset} appears twice"),
            ));
        }
    }
    let retries = match route.get("retries") {
        None | Some(Value::Null) => None,
        Some(r) => {
            let p = format!("{base}.retries");
            let d = RetryConfig::default();
            let get = |k: &str| r.get(k).unwrap_or(&Value::Null);
            Some(RetryConfig {
                attempts: u32_at(&obj, get("attempts"), &format!("{p}.attempts"))?
                    .unwrap_or(d.attempts),
                per_try_timeout: duration_at(
                    &obj,
                    get("perTryTimeout"),
                    &format!("{p}.perTryTimeout"),
                )?
                .or(d.per_try_timeout),
                retry_on: match get("retryOn") {
                    Value::Null => d.retry_on,
                    Value::String(s) => RetryOn::parse(s)
                        .map_err(|e| MeshError::new(&obj, format!("{p}.retryOn"), e))?,
                    other => {
                        return Err(MeshError::new(
                            &obj,
                            format!("{p}.retryOn"),
                            format!("expected a string, got {other}"),
                        ));
                    }
                },
            })
        }
    };
    let timeout = duration_at(
        &obj,
        route.get("timeout").unwrap_or(&Value::Null),
        &format!("{base}.timeout"),
    )?;
    Ok(Route {
        index,
        weights,
        retries,
        timeout,
    })
}

/// What to set on the governed route.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteEdit<'a> {
    /// Set these subsets' weights (a subset the route lacks gets a destination to it).
    Weights(&'a BTreeMap<String, u32>),
    /// Set `retries.{attempts, perTryTimeout, retryOn}`, keeping a person's other retry fields.
    Retries(&'a RetryConfig),
    /// Remove `retries` (revert to "not set").
    RemoveRetries,
}

/// The server-side-apply body for a VirtualService: `spec.http` as found with only the edit
/// applied to the governed route (see the module doc for why the whole list).
pub fn route_apply_body(
    vs: &Value,
    service: &str,
    namespace: &str,
    edit: &RouteEdit<'_>,
) -> Result<Value, MeshError> {
    let obj = object_label("VirtualService", vs);
    let route = read_route(vs, service, namespace)?;
    let name = vs
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut http = http_routes(&obj, vs)?.clone();
    let r = http[route.index].as_object_mut().ok_or_else(|| {
        MeshError::new(
            &obj,
            format!("spec.http[{}]", route.index),
            "expected an object",
        )
    })?;
    match edit {
        RouteEdit::Weights(weights) => {
            let dests = r
                .get_mut("route")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| {
                    MeshError::new(
                        &obj,
                        format!("spec.http[{}].route", route.index),
                        "expected a list",
                    )
                })?;
            let host = dests
                .iter()
                .find_map(|d| d.pointer("/destination/host").and_then(Value::as_str))
                .unwrap_or(service)
                .to_string();
            for (subset, w) in weights.iter() {
                let existing = dests.iter_mut().find(|d| {
                    d.pointer("/destination/subset").and_then(Value::as_str)
                        == Some(subset.as_str())
                });
                match existing {
                    Some(d) => d["weight"] = json!(w),
                    None => dests.push(json!({
                        "destination": { "host": host, "subset": subset },
                        "weight": w,
                    })),
                }
            }
        }
        RouteEdit::Retries(rc) => {
            let entry = r
                .entry("retries")
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            entry["attempts"] = json!(rc.attempts);
            // No per-try timeout: the field goes, and each try may use the route's timeout.
            match rc.per_try_timeout {
                Some(t) => entry["perTryTimeout"] = json!(t.to_string()),
                None => {
                    if let Some(m) = entry.as_object_mut() {
                        m.remove("perTryTimeout");
                    }
                }
            }
            entry["retryOn"] = json!(rc.retry_on.to_string());
        }
        RouteEdit::RemoveRetries => {
            r.remove("retries");
        }
    }
    Ok(json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "VirtualService",
        "metadata": { "name": name },
        "spec": { "http": http },
    }))
}
