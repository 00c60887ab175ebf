//! The bundled mesh end to end on loopback: `BundledMesh` → the ADS server → a real
//! homeostat-proxy in front of real upstreams. Each knob the Governor turns (weights → RDS,
//! outlier detection → CDS, retries → RDS) is applied, pushed, ACKed with the new version and
//! in force in the proxy; the weight change moves live traffic with no failed request.
//!
//! The push latency (apply → ACK) is printed; the issue's target is < 100 ms. It is asserted
//! only against 1 s here, because this machine runs seven builds at once; the distribution
//! belongs to the benchmark (`cargo bench -p homeostat --bench xds_push`, docs/benchmarks-xds.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Mutex, broadcast};

use homeostat::xds::snapshot::{CLUSTER, ENDPOINTS, ROUTES};
use homeostat::xds::{AdsServer, BundledMesh, MeshFile, XdsEvent};
use homeostat_dataplane::config::RetryOn;
use homeostat_models::governor::{KnobValue, OutlierConfig, RetryConfig};
use homeostat_models::policy::Duration as PolicyDuration;
use homeostat_proxy::config::Bootstrap;
use homeostat_proxy::test_upstream::{self, Behavior};

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn description(stable: SocketAddr, canary: SocketAddr) -> MeshFile {
    MeshFile::parse(
        "mesh.yaml",
        &format!(
            r#"
routeConfigs:
  - name: main
    virtualHosts:
      - name: checkout
        domains: ["*"]
        routes:
          - retries: {{ attempts: 0 }}
            weightedClusters:
              - {{ cluster: "outbound|80|stable|checkout.shop.svc.cluster.local", weight: 100 }}
              - {{ cluster: "outbound|80|canary|checkout.shop.svc.cluster.local", weight: 0 }}
clusters:
  - name: "outbound|80|stable|checkout.shop.svc.cluster.local"
    endpoints: [{{ address: "{stable}" }}]
  - name: "outbound|80|canary|checkout.shop.svc.cluster.local"
    endpoints: [{{ address: "{canary}" }}]
"#
        ),
    )
    .expect("valid description")
}

type TestClient = Client<HttpConnector, Empty<Bytes>>;

async fn get(c: &TestClient, addr: SocketAddr) -> (u16, String) {
    let req = hyper::Request::get(format!("http://{addr}/"))
        .body(Empty::new())
        .expect("request");
    match c.request(req).await {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// Waits until each of `type_urls` has ACKed `version`, in whatever order they come; the time
/// the last ACK arrived.
async fn acked_all(
    events: &mut broadcast::Receiver<XdsEvent>,
    type_urls: &[&str],
    version: &str,
) -> Instant {
    let mut waiting = type_urls.to_vec();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !waiting.is_empty() {
            match events.recv().await {
                Ok(XdsEvent::Ack {
                    type_url: t,
                    version: v,
                    ..
                }) if v == version => waiting.retain(|w| *w != t),
                Ok(XdsEvent::Nack { reason, .. }) => panic!("NACK: {reason}"),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("events closed"),
            }
        }
        Instant::now()
    })
    .await
    .unwrap_or_else(|_| panic!("{waiting:?} of {version} not ACKed within 5 s"))
}

/// Waits for the ACK of `version` of `type_url`; the time it arrived.
async fn acked(
    events: &mut broadcast::Receiver<XdsEvent>,
    type_url: &str,
    version: &str,
) -> Instant {
    acked_all(events, &[type_url], version).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_knob_reaches_a_connected_proxy_and_is_acked() {
    let stable = test_upstream::start("stable", any_port(), Behavior::default()).await;
    let canary = test_upstream::start("canary", any_port(), Behavior::default()).await;
    let (mesh, snapshots) = BundledMesh::new(description(stable.addr, canary.addr), None);
    let v0 = snapshots.borrow().version.clone();
    let server = AdsServer::new(snapshots);
    let mut events = server.events();
    let ads = server.spawn(any_port()).await.expect("ADS binds");
    let bootstrap = Bootstrap::parse(
        "proxy.yaml",
        &format!(
            "node: {{ id: caller-0 }}
admin: {{ address: '127.0.0.1:0' }}
ads: {{ address: 'http://{ads}' }}
listeners: [{{ name: http, address: '127.0.0.1:0', routeConfig: main }}]"
        ),
    )
    .expect("bootstrap");
    let proxy = homeostat_proxy::start(bootstrap).await.expect("proxy");
    let addr = proxy.listeners[0];
    // Every type of the first snapshot: a proxy that has ACKed only the routes may still have
    // no endpoints for them (a first request then met "no healthy upstream", once in CI).
    acked_all(&mut events, &[CLUSTER, ENDPOINTS, ROUTES], &v0).await;
    let c: TestClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    assert_eq!(get(&c, addr).await, (200, "stable\n".into()));

    // Live traffic while the weights move to the canary.
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<(Instant, u16, String)>>> = Arc::default();
    let load = {
        let (stop, log, c) = (stop.clone(), log.clone(), c.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                let (s, b) = get(&c, addr).await;
                log.lock().await.push((t, s, b));
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let v1 = mesh
        .apply(
            "shop",
            "checkout",
            &KnobValue::Weights(BTreeMap::from([
                ("stable".to_string(), 0),
                ("canary".to_string(), 100),
            ])),
        )
        .expect("weights apply");
    let weights_push = acked(&mut events, ROUTES, &v1).await - start;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    load.await.expect("load");
    let log = log.lock().await;
    assert!(log.iter().all(|(_, s, _)| *s == 200), "a request failed");
    // Once ACKed, the proxy routes by the new weights: requests started 50 ms after the ACK
    // all reach the canary.
    let after: Vec<_> = log
        .iter()
        .filter(|(t, _, _)| *t > start + weights_push + Duration::from_millis(50))
        .collect();
    assert!(!after.is_empty(), "load ran after the ACK");
    assert!(after.iter().all(|(_, _, b)| b == "canary\n"));

    // Outlier detection is a CDS push.
    let outlier = OutlierConfig {
        consecutive_5xx_errors: 3,
        interval: PolicyDuration::from_secs(5),
        base_ejection_time: PolicyDuration::from_secs(15),
        max_ejection_percent: 50,
        max_ejection_time: PolicyDuration::from_secs(120),
    };
    let start = Instant::now();
    let v2 = mesh
        .apply("shop", "checkout", &KnobValue::OutlierDetection(outlier))
        .expect("outlier apply");
    let outlier_push = acked(&mut events, CLUSTER, &v2).await - start;
    let in_force = proxy.store.current().cluster_configs();
    for c in &in_force {
        let o = c
            .outlier_detection
            .as_ref()
            .expect("outlier detection in force");
        assert_eq!(
            (o.consecutive_5xx, o.interval, o.max_ejection_percent),
            (3, 5_000_000_000, 50),
            "{}",
            c.name
        );
    }

    // Retries are an RDS push.
    let start = Instant::now();
    let retry_on = RetryOn::parse("gateway-error,reset").expect("retryOn");
    let v3 = mesh
        .apply(
            "shop",
            "checkout",
            &KnobValue::Retries(RetryConfig {
                attempts: 2,
                per_try_timeout: Some(PolicyDuration::from_millis(250)),
                retry_on: retry_on.clone(),
            }),
        )
        .expect("retries apply");
    let retries_push = acked(&mut events, ROUTES, &v3).await - start;
    let route = &proxy.store.current().route_configs[0].virtual_hosts[0].routes[0];
    assert_eq!(
        (route.retries.attempts, route.retries.per_try_timeout),
        (2, Some(250_000_000))
    );
    assert_eq!(route.retries.retry_on, retry_on);

    println!(
        "apply → ACK: weights {weights_push:?}, outlier detection {outlier_push:?}, retries {retries_push:?}"
    );
    for (what, d) in [
        ("weights", weights_push),
        ("outlier detection", outlier_push),
        ("retries", retries_push),
    ] {
        assert!(d < Duration::from_secs(1), "{what} took {d:?}");
    }
    proxy.shutdown().await;
}
