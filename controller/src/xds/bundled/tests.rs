//! Reading and writing the bundled mesh's description.

use std::collections::BTreeMap;

use homeostat_dataplane::config::RetryOn;
use homeostat_models::governor::{HpaConfig, KnobValue, OutlierConfig, RetryConfig};
use homeostat_models::policy::Duration;

use super::*;

const MESH: &str = r#"
routeConfigs:
  - name: main
    virtualHosts:
      - name: checkout
        domains: ["checkout", "checkout.shop.svc.cluster.local"]
        routes:
          - prefix: /
            timeout: 3s
            retries: { attempts: 2, retryOn: "5xx", perTryTimeout: 1s }
            weightedClusters:
              - { cluster: "outbound|8080|stable|checkout.shop.svc.cluster.local", weight: 90 }
              - { cluster: "outbound|8080|canary|checkout.shop.svc.cluster.local", weight: 10 }
      - name: cart
        domains: ["cart"]
        routes:
          - weightedClusters: [{ cluster: "outbound|8080|v1|cart.shop.svc.cluster.local" }]
clusters:
  - name: "outbound|8080|stable|checkout.shop.svc.cluster.local"
    balancer: { panicThresholdPercent: 50 }
    outlierDetection: { consecutive5xxErrors: 7, minHealthPercent: 50 }
    endpoints: [{ address: "10.0.0.1:8080" }, { address: "10.0.0.2:8080" }]
  - name: "outbound|8080|canary|checkout.shop.svc.cluster.local"
    balancer: { panicThresholdPercent: 50 }
    outlierDetection: { consecutive5xxErrors: 7, minHealthPercent: 50 }
    endpoints: [{ address: "10.0.0.3:8080" }]
  - name: "outbound|8080|v1|cart.shop.svc.cluster.local"
    endpoints: [{ address: "10.0.1.1:8080" }]
"#;

fn mesh() -> MeshFile {
    MeshFile::parse("mesh.yaml", MESH).expect("valid description")
}

#[test]
fn the_configuration_in_force_is_read_from_the_services_clusters_and_route() {
    let f = mesh().found("shop", "checkout").expect("found");
    assert_eq!(
        f.weights,
        BTreeMap::from([("canary".to_string(), 10), ("stable".to_string(), 90)])
    );
    let o = f.outlier.expect("outlier detection set");
    // 7 as written; the rest Envoy's defaults (10 s, 30 s, 10 %, 300 s).
    assert_eq!(
        (
            o.consecutive_5xx_errors,
            o.interval,
            o.base_ejection_time,
            o.max_ejection_percent
        ),
        (7, Duration::from_secs(10), Duration::from_secs(30), 10)
    );
    let r = f.retries.expect("retries set");
    assert_eq!(
        (r.attempts, r.per_try_timeout, r.retry_on.to_string()),
        (2, Some(Duration::from_secs(1)), "5xx".to_string())
    );
    assert_eq!(f.route_timeout, Some(Duration::from_secs(3)));
    // A lone destination takes all the traffic; no outlier detection is none. A route without
    // `retries` runs the proxy's default, which is Istio's (2 attempts on
    // connect-failure,refused-stream,unavailable,cancelled,503), and is read as that.
    let cart = mesh().found("shop", "cart").expect("found");
    assert_eq!(cart.weights, BTreeMap::from([("v1".to_string(), 100)]));
    assert_eq!(
        (cart.outlier, cart.retries),
        (None, Some(RetryConfig::default()))
    );
    assert_eq!(RetryConfig::default().attempts, 2);
}

#[test]
fn each_knob_is_written_where_istio_would_put_it_and_nothing_else_moves() {
    let m = mesh();
    let w = m
        .with(
            "shop",
            "checkout",
            &KnobValue::Weights(BTreeMap::from([
                ("stable".to_string(), 100),
                ("canary".to_string(), 0),
            ])),
        )
        .expect("weights");
    assert_eq!(
        w.found("shop", "checkout").unwrap().weights,
        BTreeMap::from([("canary".to_string(), 0), ("stable".to_string(), 100)])
    );
    // The other service's route and every cluster are untouched.
    assert_eq!(w.clusters, m.clusters);
    assert_eq!(
        w.route_configs[0].virtual_hosts[1],
        m.route_configs[0].virtual_hosts[1]
    );

    let o = OutlierConfig {
        consecutive_5xx_errors: 3,
        interval: Duration::from_secs(5),
        base_ejection_time: Duration::from_secs(15),
        max_ejection_percent: 50,
        max_ejection_time: Duration::from_secs(120),
    };
    let od = m
        .with("shop", "checkout", &KnobValue::OutlierDetection(o.clone()))
        .expect("outlier");
    for c in &od.clusters[..2] {
        let d = c.outlier_detection.as_ref().expect("set");
        assert_eq!(
            (
                d.consecutive_5xx,
                d.interval,
                d.base_ejection_time,
                d.max_ejection_percent,
                d.max_ejection_time
            ),
            (3, 5_000_000_000, 15_000_000_000, 50, 120_000_000_000)
        );
        // What the Governor does not govern stays as written.
        assert_eq!(d.min_health_percent, 50);
    }
    assert_eq!(od.clusters[2], m.clusters[2]);
    assert_eq!(od.found("shop", "checkout").unwrap().outlier, Some(o));

    let r = RetryConfig {
        attempts: 1,
        per_try_timeout: Some(Duration::from_millis(250)),
        retry_on: RetryOn::parse("gateway-error,reset").unwrap(),
    };
    let rd = m
        .with("shop", "checkout", &KnobValue::Retries(r.clone()))
        .expect("retries");
    assert_eq!(rd.found("shop", "checkout").unwrap().retries, Some(r));
    assert_eq!(rd.clusters, m.clusters);
}

#[test]
fn what_cannot_be_written_is_an_error_and_changes_nothing() {
    let (b, rx) = BundledMesh::new(mesh(), None);
    let before = rx.borrow().version.clone();
    let unknown = KnobValue::Weights(BTreeMap::from([
        ("stable".to_string(), 50),
        ("blue".to_string(), 50),
    ]));
    let e = b.apply("shop", "checkout", &unknown).unwrap_err();
    assert!(e.to_string().contains("no cluster of subset blue"), "{e}");
    let e = b
        .apply(
            "shop",
            "checkout",
            &KnobValue::Autoscaling(HpaConfig {
                min_replicas: 1,
                max_replicas: 2,
                target_utilization_percent: 50,
                current_replicas: 1,
                replica_cap: None,
            }),
        )
        .unwrap_err();
    assert!(e.to_string().contains("HorizontalPodAutoscaler"), "{e}");
    let e = b
        .apply(
            "shop",
            "payments",
            &KnobValue::Weights(BTreeMap::from([("v1".to_string(), 100)])),
        )
        .unwrap_err();
    assert!(e.to_string().contains("no cluster named"), "{e}");
    assert_eq!(b.current(), mesh());
    assert_eq!(rx.borrow().version, before);
}

#[test]
fn a_bad_file_names_the_field() {
    let typo = MESH.replace(
        "weightedClusters:\n              - { cluster: \"outbound|8080|stable",
        "weightedClusters:\n              - { cluster: \"outbound|8080|stabel",
    );
    let e = MeshFile::parse("mesh.yaml", &typo).unwrap_err().to_string();
    assert!(
        e.starts_with("mesh.yaml: routeConfigs[0].virtualHosts[0].routes[0].weightedClusters[0].cluster: no cluster named"),
        "{e}"
    );
    let unknown = MESH.replace("routeConfigs:", "routeConfig:");
    let e = MeshFile::parse("mesh.yaml", &unknown)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `routeConfig`"), "{e}");
}

#[test]
fn applied_changes_are_pushed_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mesh.yaml");
    let state = dir.path().join("mesh.state.yaml");
    std::fs::write(&file, MESH).unwrap();
    let (b, mut rx) = BundledMesh::open(&file, Some(state.clone())).unwrap();
    let v0 = rx.borrow_and_update().version.clone();
    let to_stable = KnobValue::Weights(BTreeMap::from([
        ("stable".to_string(), 100),
        ("canary".to_string(), 0),
    ]));
    let v1 = b.apply("shop", "checkout", &to_stable).unwrap();
    assert_ne!(v0, v1);
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().version, v1);
    // A restart serves the applied description, under the same (content) version.
    drop(b);
    let (again, rx2) = BundledMesh::open(&file, Some(state)).unwrap();
    assert_eq!(rx2.borrow().version, v1);
    assert_eq!(
        again.config("shop", "checkout").unwrap().0.weights["stable"],
        100
    );
}
