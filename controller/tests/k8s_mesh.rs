//! Istio DR/VS and HPA ⇄ models types, both ways, with hand-worked expectations; and every
//! shape the translator can produce checked strictly against Istio's own CRD schemas.

use std::collections::BTreeMap;
use std::path::PathBuf;

use homeostat::mesh::istio::{self, RouteEdit};
use homeostat::mesh::schema::{self, Required};
use homeostat::mesh::{Found, hpa};
use homeostat_models::governor::{HpaConfig, OutlierConfig, RetryConfig};
use homeostat_models::policy::Duration;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde_json::{Value, json};

fn vs(http: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"hosts": ["checkout.shop.svc.cluster.local"], "http": http}
    })
}

fn canary_vs() -> Value {
    vs(json!([
        {"name": "testers", "match": [{"headers": {"x-canary": {"exact": "1"}}}],
         "route": [{"destination": {"host": "checkout", "subset": "canary"}}]},
        {"name": "other-service", "route": [{"destination": {"host": "payments"}}]},
        {"name": "default",
         "route": [
            {"destination": {"host": "checkout.shop.svc.cluster.local", "subset": "stable", "port": {"number": 8080}}, "weight": 75,
             "headers": {"request": {"set": {"x-from": "mesh"}}}},
            {"destination": {"host": "checkout.shop.svc.cluster.local", "subset": "canary", "port": {"number": 8080}}, "weight": 25}
         ],
         "retries": {"attempts": 3, "perTryTimeout": "500ms", "retryOn": "5xx,reset", "retryRemoteLocalities": true},
         "timeout": "4s",
         "fault": {"delay": {"percentage": {"value": 0.1}, "fixedDelay": "1s"}}}
    ]))
}

fn dr(outlier: Option<Value>) -> Value {
    let mut d = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"host": "checkout", "subsets": [{"name": "stable", "labels": {"version": "v1"}}],
                 "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}}}
    });
    if let Some(o) = outlier {
        d["spec"]["trafficPolicy"]["outlierDetection"] = o;
    }
    d
}

fn w(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

// ---- reading ----

#[test]
fn the_governed_route_is_the_last_one_sending_everything_to_the_service() {
    let r = istio::read_route(&canary_vs(), "checkout", "shop").unwrap();
    assert_eq!(
        r.index, 2,
        "route 1 goes to payments; route 2 is the last all-checkout one"
    );
    assert_eq!(r.weights, w(&[("stable", 75), ("canary", 25)]));
    assert_eq!(
        r.retries,
        Some(RetryConfig {
            attempts: 3,
            per_try_timeout: Some(Duration::from_millis(500)),
            retry_on: homeostat_models::governor::RetryOn::parse("5xx,reset").expect("retryOn")
        })
    );
}

#[test]
fn unset_fields_take_istio_defaults_and_a_lone_destination_takes_all_traffic() {
    let v = vs(
        json!([{"route": [{"destination": {"host": "checkout", "subset": "stable"}}], "retries": {"attempts": 1}}]),
    );
    let r = istio::read_route(&v, "checkout", "shop").unwrap();
    assert_eq!(r.weights, w(&[("stable", 100)]));
    // Istio's defaults for the unset retry fields (RetryConfig::default: 25s stands for none).
    let d = RetryConfig::default();
    assert_eq!(r.retries, Some(RetryConfig { attempts: 1, ..d }));
    let o = istio::read_outlier(&dr(Some(json!({"consecutive5xxErrors": 3}))))
        .unwrap()
        .unwrap();
    assert_eq!(
        o,
        OutlierConfig {
            consecutive_5xx_errors: 3,
            ..OutlierConfig::default()
        }
    );
    assert_eq!(istio::read_outlier(&dr(None)).unwrap(), None);
}

#[test]
fn found_fields_become_the_mesh_config_with_defaults_where_unset() {
    let found = Found {
        weights: w(&[("stable", 100)]),
        outlier: None,
        retries: None,
        route_timeout: None,
        hpa: None,
    };
    let c = found.mesh_config();
    assert_eq!(c.outlier_detection, OutlierConfig::default());
    assert_eq!(c.retries, RetryConfig::default());
    // ...but the revert record says "not set", so a deletion removes rather than pins defaults.
    let o = found.original();
    assert!(o.outlier_detection.is_none() && o.retries.is_none());
    assert_eq!(o.weights, Some(w(&[("stable", 100)])));
}

#[test]
fn bad_input_is_an_error_naming_the_field_path() {
    let e = istio::read_outlier(&dr(Some(json!({"interval": "ten seconds"})))).unwrap_err();
    assert_eq!(
        (e.object.as_str(), e.path.as_str()),
        (
            "DestinationRule checkout",
            "spec.trafficPolicy.outlierDetection.interval"
        )
    );
    let e = istio::read_outlier(&dr(Some(json!({"maxEjectionPercent": -5})))).unwrap_err();
    assert_eq!(
        e.path,
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent"
    );
    let v = vs(json!([{"route": [
        {"destination": {"host": "checkout", "subset": "stable"}, "weight": 50},
        {"destination": {"host": "checkout", "subset": "canary"}, "weight": "fifty"}]}]));
    let e = istio::read_route(&v, "checkout", "shop").unwrap_err();
    assert_eq!(e.path, "spec.http[0].route[1].weight");
    let e = istio::read_route(
        &vs(json!([{"route": [{"destination": {"host": "payments"}}]}])),
        "checkout",
        "shop",
    )
    .unwrap_err();
    assert_eq!(e.path, "spec.http");
    assert!(
        e.to_string()
            .contains("no route sends all its traffic to service checkout"),
        "{e}"
    );
    let e = istio::read_route(&vs(json!([{"route": [{"destination": {"host": "checkout"}}], "retries": {"perTryTimeout": 5}}])), "checkout", "shop").unwrap_err();
    assert_eq!(e.path, "spec.http[0].retries.perTryTimeout");
}

#[test]
fn an_hpa_is_read_from_its_cpu_utilization_target() {
    let h: HorizontalPodAutoscaler = serde_json::from_value(hpa_json(Some(60))).unwrap();
    assert_eq!(
        hpa::read(&h).unwrap(),
        HpaConfig {
            min_replicas: 2,
            max_replicas: 20,
            target_utilization_percent: 60,
            current_replicas: 5,
            replica_cap: None,
        }
    );
    let h: HorizontalPodAutoscaler = serde_json::from_value(hpa_json(None)).unwrap();
    let e = hpa::read(&h).unwrap_err();
    assert_eq!(
        (e.object.as_str(), e.path.as_str()),
        ("HorizontalPodAutoscaler checkout", "spec.metrics")
    );
}

fn hpa_json(cpu: Option<i32>) -> Value {
    let mut metrics = vec![
        json!({"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "100"}}}),
    ];
    if let Some(c) = cpu {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": c}}}));
    }
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout"},
                 "minReplicas": 2, "maxReplicas": 20, "metrics": metrics,
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}},
        "status": {"currentReplicas": 5, "desiredReplicas": 5}
    })
}

// ---- writing ----

#[test]
fn the_outlier_body_carries_only_the_four_owned_fields() {
    let o = OutlierConfig {
        consecutive_5xx_errors: 4,
        interval: Duration::from_millis(2500),
        base_ejection_time: Duration::from_secs(90),
        max_ejection_percent: 33,
        max_ejection_time: OutlierConfig::default().max_ejection_time,
    };
    assert_eq!(
        istio::outlier_apply_body("checkout", Some(&o)),
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "checkout"},
            "spec": {"trafficPolicy": {"outlierDetection": {
                "consecutive5xxErrors": 4, "interval": "2.5s", "baseEjectionTime": "1m30s", "maxEjectionPercent": 33}}}
        })
    );
    assert_eq!(
        istio::outlier_apply_body("checkout", None),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "checkout"}})
    );
}

#[test]
fn a_weights_edit_changes_only_the_governed_routes_weights() {
    let live = canary_vs();
    let body = istio::route_apply_body(
        &live,
        "checkout",
        "shop",
        &RouteEdit::Weights(&w(&[("stable", 95), ("canary", 5)])),
    )
    .unwrap();
    let mut want = live["spec"]["http"].clone();
    want[2]["route"][0]["weight"] = json!(95);
    want[2]["route"][1]["weight"] = json!(5);
    assert_eq!(
        body,
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "checkout"}, "spec": {"http": want}})
    );
}

#[test]
fn a_subset_the_route_lacks_gets_a_destination_on_the_same_host() {
    let live = vs(
        json!([{"route": [{"destination": {"host": "checkout.shop.svc.cluster.local", "subset": "stable"}}]}]),
    );
    let body = istio::route_apply_body(
        &live,
        "checkout",
        "shop",
        &RouteEdit::Weights(&w(&[("stable", 80), ("canary", 20)])),
    )
    .unwrap();
    assert_eq!(
        body["spec"]["http"][0]["route"],
        json!([
            {"destination": {"host": "checkout.shop.svc.cluster.local", "subset": "stable"}, "weight": 80},
            {"destination": {"host": "checkout.shop.svc.cluster.local", "subset": "canary"}, "weight": 20}
        ])
    );
}

#[test]
fn a_retries_edit_keeps_a_persons_other_retry_fields_and_removal_drops_retries() {
    let live = canary_vs();
    let rc = RetryConfig {
        attempts: 1,
        per_try_timeout: Some(Duration::from_millis(250)),
        retry_on: homeostat_models::governor::RetryOn::parse("connect-failure,reset")
            .expect("retryOn"),
    };
    let body =
        istio::route_apply_body(&live, "checkout", "shop", &RouteEdit::Retries(&rc)).unwrap();
    assert_eq!(
        body["spec"]["http"][2]["retries"],
        // retryOn is a set of conditions: written in the typed value's canonical order (the
        // order of Envoy's condition table in dataplane::config), `reset` before
        // `connect-failure`, whatever order it was parsed from.
        json!({"attempts": 1, "perTryTimeout": "250ms", "retryOn": "reset,connect-failure", "retryRemoteLocalities": true})
    );
    assert_eq!(body["spec"]["http"][0], live["spec"]["http"][0]);
    let body =
        istio::route_apply_body(&live, "checkout", "shop", &RouteEdit::RemoveRetries).unwrap();
    assert!(body["spec"]["http"][2].get("retries").is_none());
    assert_eq!(body["spec"]["http"][2]["timeout"], "4s");
}

#[test]
fn the_hpa_body_sets_bounds_and_the_cpu_target_and_keeps_other_metrics() {
    let h: HorizontalPodAutoscaler = serde_json::from_value(hpa_json(Some(60))).unwrap();
    let v = HpaConfig {
        min_replicas: 4,
        max_replicas: 30,
        target_utilization_percent: 55,
        current_replicas: 5,
        replica_cap: None,
    };
    assert_eq!(
        hpa::apply_body(&h, &v).unwrap(),
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "checkout"},
            "spec": {"minReplicas": 4, "maxReplicas": 30, "metrics": [
                {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 55}}}
            ]}
        })
    );
    let huge = HpaConfig {
        max_replicas: u32::MAX,
        ..v
    };
    assert_eq!(
        hpa::apply_body(&h, &huge).unwrap_err().path,
        "spec.maxReplicas"
    );
}

// ---- strict validation against Istio's own CRDs ----

/// Istio's CRDs: $HOMEOSTAT_ISTIO_CRDS, else `../shared/data/istio/networking-crds.yaml`
/// beside the checkout. Missing under CI=true is a failure, not a skip.
fn istio_crds() -> Option<String> {
    let path = std::env::var_os("HOMEOSTAT_ISTIO_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/istio/networking-crds.yaml")
        });
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Istio CRDs not found at {} ({e}); set HOMEOSTAT_ISTIO_CRDS",
                path.display()
            );
            eprintln!(
                "skipped: Istio CRDs not found at {} (set HOMEOSTAT_ISTIO_CRDS)",
                path.display()
            );
            None
        }
    }
}

/// Merges an apply body onto the live object the way SSA would for these shapes (maps merge,
/// the atomic `http` list is replaced), to check the result as a whole.
fn merged(live: &Value, body: &Value) -> Value {
    fn merge(a: &mut Value, b: &Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b.clone(),
        }
    }
    let mut out = live.clone();
    merge(&mut out, body);
    out
}

fn assert_valid(schema: &Value, live: &Value, body: &Value) {
    let v = schema::check_resource(schema, body, Required::Partial);
    assert!(
        v.is_empty(),
        "apply body violates Istio's schema: {v:?}\n{body}"
    );
    let whole = merged(live, body);
    let v = schema::check_resource(schema, &whole, Required::Check);
    assert!(
        v.is_empty(),
        "merged object violates Istio's schema: {v:?}\n{whole}"
    );
}

#[test]
fn every_body_the_translator_can_produce_validates_against_istios_crds() {
    let Some(crds) = istio_crds() else { return };
    let dr_schema = schema::crd_schema(&crds, "DestinationRule", "v1").unwrap();
    let vs_schema = schema::crd_schema(&crds, "VirtualService", "v1").unwrap();
    // The live fixtures themselves are valid Istio objects.
    assert_valid(&dr_schema, &dr(None), &dr(None));
    assert_valid(&vs_schema, &canary_vs(), &canary_vs());
    for (interval, base) in [(1, 30), (2500, 90_000), (60_000, 3_600_000)] {
        let o = OutlierConfig {
            consecutive_5xx_errors: 1000,
            interval: Duration::from_millis(interval),
            base_ejection_time: Duration::from_millis(base),
            max_ejection_percent: 100,
            max_ejection_time: OutlierConfig::default().max_ejection_time,
        };
        assert_valid(
            &dr_schema,
            &dr(None),
            &istio::outlier_apply_body("checkout", Some(&o)),
        );
    }
    assert_valid(
        &dr_schema,
        &dr(None),
        &istio::outlier_apply_body("checkout", None),
    );
    let edits_w = [
        w(&[("stable", 100), ("canary", 0)]),
        w(&[("stable", 50), ("canary", 30), ("blue", 20)]),
    ];
    let rcs = [
        RetryConfig {
            attempts: 0,
            per_try_timeout: Some(Duration::from_millis(1)),
            retry_on: homeostat_models::governor::RetryOn::parse("5xx").expect("retryOn"),
        },
        RetryConfig::default(),
    ];
    for live in [
        canary_vs(),
        vs(json!([{"route": [{"destination": {"host": "checkout"}}]}])),
    ] {
        for ws in &edits_w {
            assert_valid(
                &vs_schema,
                &live,
                &istio::route_apply_body(&live, "checkout", "shop", &RouteEdit::Weights(ws))
                    .unwrap(),
            );
        }
        for rc in &rcs {
            assert_valid(
                &vs_schema,
                &live,
                &istio::route_apply_body(&live, "checkout", "shop", &RouteEdit::Retries(rc))
                    .unwrap(),
            );
        }
        assert_valid(
            &vs_schema,
            &live,
            &istio::route_apply_body(&live, "checkout", "shop", &RouteEdit::RemoveRetries).unwrap(),
        );
    }
}

#[test]
fn the_checker_rejects_unknown_fields_and_wrong_types_with_their_paths() {
    let Some(crds) = istio_crds() else { return };
    let dr_schema = schema::crd_schema(&crds, "DestinationRule", "v1").unwrap();
    let vs_schema = schema::crd_schema(&crds, "VirtualService", "v1").unwrap();
    let bad = json!({"spec": {"trafficPolicy": {"outlierDetection": {"consecutive5xxErrorz": 3, "maxEjectionPercent": "ten"}}}});
    let v = schema::check_resource(&dr_schema, &bad, Required::Partial);
    let paths: Vec<&str> = v.iter().map(|x| x.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.trafficPolicy.outlierDetection.consecutive5xxErrorz",
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent"
        ],
        "{v:?}"
    );
    assert_eq!(v[0].message, "unknown field");
    let bad = json!({"spec": {"http": [{"route": [{"destination": {"subset": "stable"}, "weights": 10}]}]}});
    let v = schema::check_resource(&vs_schema, &bad, Required::Check);
    let paths: Vec<&str> = v.iter().map(|x| x.path.as_str()).collect();
    assert!(paths.contains(&"spec.http[0].route[0].weights"), "{v:?}");
    assert!(
        paths.contains(&"spec.http[0].route[0].destination.host"),
        "{v:?}"
    );
    // A partial body need not carry fields it does not own (spec.host is required on the whole
    // object), but the merged object must.
    let body = istio::outlier_apply_body("checkout", Some(&OutlierConfig::default()));
    assert!(schema::check_resource(&dr_schema, &body, Required::Partial).is_empty());
    let v = schema::check_resource(&dr_schema, &body, Required::Check);
    assert_eq!(
        v.iter().map(|x| x.path.as_str()).collect::<Vec<_>>(),
        ["spec.host"]
    );
}

#[test]
fn written_durations_parse_back_go_style_and_meet_istios_one_millisecond_minimum() {
    // Istio's CEL rule on every duration we write: `duration(self) >= duration('1ms')`.
    for ms in [1u64, 250, 2500, 90_000, 3_600_000] {
        let d = Duration::from_millis(ms);
        let text = d.to_string();
        assert_eq!(Duration::parse(&text).unwrap(), d, "{text}");
        assert!(Duration::parse(&text).unwrap() >= Duration::from_millis(1));
    }
}
