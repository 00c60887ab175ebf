//! Push latency of the bundled mesh: `BundledMesh::apply` (a weight change written, the
//! description validated, persisted and published) until the connected homeostat-proxy's ACK
//! of the new route version reaches the ADS server — the path an applied `Plan` change takes.
//! A bench binary, not criterion: what matters is the distribution of one event's latency.
//!
//! `cargo bench -p homeostat --bench xds_push -- [pushes]` (default 300); results in
//! docs/benchmarks-xds.md.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use homeostat::xds::snapshot::ROUTES;
use homeostat::xds::{AdsServer, BundledMesh, MeshFile, XdsEvent};
use homeostat_models::governor::KnobValue;
use homeostat_proxy::config::Bootstrap;
use tokio::sync::broadcast;

const MESH: &str = r#"
routeConfigs:
  - name: main
    virtualHosts:
      - name: checkout
        domains: ["*"]
        routes:
          - weightedClusters:
              - { cluster: "outbound|80|stable|checkout.shop.svc.cluster.local", weight: 100 }
              - { cluster: "outbound|80|canary|checkout.shop.svc.cluster.local", weight: 0 }
clusters:
  - name: "outbound|80|stable|checkout.shop.svc.cluster.local"
    endpoints: [{ address: "127.0.0.1:9" }]
  - name: "outbound|80|canary|checkout.shop.svc.cluster.local"
    endpoints: [{ address: "127.0.0.1:10" }]
"#;

async fn acked(events: &mut broadcast::Receiver<XdsEvent>, version: &str) -> Instant {
    loop {
        match events.recv().await {
            Ok(XdsEvent::Ack {
                type_url,
                version: v,
                ..
            }) if type_url == ROUTES && v == version => return Instant::now(),
            Ok(XdsEvent::Nack { reason, .. }) => panic!("NACK: {reason}"),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => panic!("events closed"),
        }
    }
}

fn main() {
    let pushes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mesh, snapshots) = BundledMesh::new(
            MeshFile::parse("bench.yaml", MESH).expect("valid"),
            Some(dir.path().join("state.yaml")),
        );
        let v0 = snapshots.borrow().version.clone();
        let server = AdsServer::new(snapshots);
        let mut events = server.events();
        let ads = server
            .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("ADS binds");
        let bootstrap = Bootstrap::parse(
            "bench-proxy.yaml",
            &format!(
                "admin: {{ address: '127.0.0.1:0' }}
ads: {{ address: 'http://{ads}' }}
listeners: [{{ name: http, address: '127.0.0.1:0', routeConfig: main }}]"
            ),
        )
        .expect("bootstrap");
        let proxy = homeostat_proxy::start(bootstrap).await.expect("proxy");
        acked(&mut events, &v0).await;
        let mut took = Vec::with_capacity(pushes);
        for i in 0..pushes {
            let canary = if i % 2 == 0 { 100 } else { 0 };
            let w = BTreeMap::from([
                ("stable".to_string(), 100 - canary),
                ("canary".to_string(), canary),
            ]);
            let start = Instant::now();
            let v = mesh
                .apply("shop", "checkout", &KnobValue::Weights(w))
                .expect("apply");
            took.push(acked(&mut events, &v).await - start);
        }
        proxy.shutdown().await;
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "xds_push: {pushes} weight changes, apply → ACK (ms): min {:.2}, median {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
            ms(took[0]),
            ms(at(0.5)),
            ms(at(0.9)),
            ms(at(0.99)),
            ms(took[took.len() - 1])
        );
    });
}
