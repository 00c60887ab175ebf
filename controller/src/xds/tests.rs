//! The ADS server driving a real bundled proxy on loopback, in front of real upstreams.

use super::snapshot::{ENDPOINTS, ROUTES};
use super::{AdsServer, XdsEvent, XdsSnapshot};
use bytes::Bytes;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, address, socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster,
    route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier,
    weighted_cluster::ClusterWeight,
};
use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};
use homeostat_proxy::config::Bootstrap;
use homeostat_proxy::test_upstream::{self, Behavior, TestUpstream};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, broadcast, watch};

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn cluster(name: &str) -> Cluster {
    Cluster {
        name: name.to_owned(),
        connect_timeout: Some(PbDuration {
            seconds: 1,
            nanos: 0,
        }),
        ..Cluster::default()
    }
}

fn assignment(name: &str, addr: SocketAddr) -> ClusterLoadAssignment {
    let endpoint = Endpoint {
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: addr.ip().to_string(),
                port_specifier: Some(PortSpecifier::PortValue(u32::from(addr.port()))),
                ..SocketAddress::default()
            })),
        }),
        ..Endpoint::default()
    };
    ClusterLoadAssignment {
        cluster_name: name.to_owned(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(endpoint)),
                ..LbEndpoint::default()
            }],
            ..LocalityLbEndpoints::default()
        }],
        ..ClusterLoadAssignment::default()
    }
}

fn routes(w1: u32, w2: u32) -> RouteConfiguration {
    let weight = |name: &str, w: u32| ClusterWeight {
        name: name.to_owned(),
        weight: Some(UInt32Value { value: w }),
        ..ClusterWeight::default()
    };
    RouteConfiguration {
        name: "main".into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(PathSpecifier::Prefix("/".into())),
                    ..RouteMatch::default()
                }),
                action: Some(Action::Route(RouteAction {
                    cluster_specifier: Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
                        clusters: vec![weight("v1", w1), weight("v2", w2)],
                        ..WeightedCluster::default()
                    })),
                    ..RouteAction::default()
                })),
                ..Route::default()
            }],
            ..VirtualHost::default()
        }],
        ..RouteConfiguration::default()
    }
}

fn snapshot(
    version: &str,
    v1: &TestUpstream,
    v2: &TestUpstream,
    w1: u32,
    w2: u32,
) -> Arc<XdsSnapshot> {
    Arc::new(XdsSnapshot::new(
        version,
        vec![cluster("v1"), cluster("v2")],
        vec![assignment("v1", v1.addr), assignment("v2", v2.addr)],
        vec![routes(w1, w2)],
    ))
}

type TestClient = Client<HttpConnector, Full<Bytes>>;

async fn get(c: &TestClient, addr: SocketAddr) -> (u16, String) {
    let req = hyper::Request::get(format!("http://{addr}/"))
        .body(Full::new(Bytes::new()))
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

async fn wait_for(
    events: &mut broadcast::Receiver<XdsEvent>,
    what: impl Fn(&XdsEvent) -> bool,
) -> XdsEvent {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(e) if what(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
            }
        }
    })
    .await
    .expect("event within 5 s")
}

/// Waits until the proxy has ACKed `version` of every type in `types`, in whatever order the
/// ACKs come (RDS is subscribed with CDS; EDS only once CDS names its clusters, so an RDS ACK
/// can come before the endpoints exist).
async fn wait_for_acks(events: &mut broadcast::Receiver<XdsEvent>, types: &[&str], version: &str) {
    let mut missing: Vec<&str> = types.to_vec();
    while !missing.is_empty() {
        let e = wait_for(events, |e| {
            matches!(e, XdsEvent::Ack { type_url, version: v, .. } if v == version && missing.contains(&type_url.as_str()))
        })
        .await;
        if let XdsEvent::Ack { type_url, .. } = e {
            missing.retain(|t| *t != type_url);
        }
    }
}

/// (start, status, body) of every request of the background load.
type Log = Arc<Mutex<Vec<(Instant, u16, String)>>>;

fn load(addr: SocketAddr, stop: Arc<AtomicBool>, log: Log) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|_| {
            let (stop, log) = (stop.clone(), log.clone());
            tokio::spawn(async move {
                let c = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    let (status, body) = get(&c, addr).await;
                    log.lock().await.push((t, status, body));
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_move_over_xds_within_a_second_and_a_bad_update_is_nacked_and_changes_nothing() {
    let v1 = test_upstream::start("v1", any_port(), Behavior::default()).await;
    let v2 = test_upstream::start("v2", any_port(), Behavior::default()).await;
    let (publish, snapshots) = watch::channel(snapshot("1", &v1, &v2, 100, 0));
    let server = AdsServer::new(snapshots);
    let mut events = server.events();
    let ads = server.spawn(any_port()).await.expect("ADS server binds");
    let bootstrap = Bootstrap::parse(
        "xds-test.yaml",
        &format!(
            "node: {{ id: test-proxy }}
admin: {{ address: '127.0.0.1:0' }}
ads: {{ address: 'http://{ads}' }}
listeners: [{{ name: http, address: '127.0.0.1:0', routeConfig: main }}]"
        ),
    )
    .expect("bootstrap");
    let proxy = homeostat_proxy::start(bootstrap)
        .await
        .expect("proxy starts");
    let addr = proxy.listeners[0];
    // The proxy ACKs version 1 of every type; then it routes everything to v1.
    wait_for_acks(&mut events, &[ROUTES, ENDPOINTS], "1").await;
    let c = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    assert_eq!(get(&c, addr).await, (200, "v1\n".into()));

    let stop = Arc::new(AtomicBool::new(false));
    let log: Log = Arc::default();
    let tasks = load(addr, stop.clone(), log.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Version 2 moves all traffic to v2.
    let switched = Instant::now();
    publish.send_replace(snapshot("2", &v1, &v2, 0, 100));
    wait_for(&mut events, |e| matches!(e, XdsEvent::Ack { type_url, version, .. } if type_url == ROUTES && version == "2")).await;
    let acked = switched.elapsed();

    // Version 3 is malformed (every weight 0): NACKed with the reason, version 2 stays.
    publish.send_replace(snapshot("3", &v1, &v2, 0, 0));
    let nack = wait_for(
        &mut events,
        |e| matches!(e, XdsEvent::Nack { type_url, .. } if type_url == ROUTES),
    )
    .await;
    let XdsEvent::Nack {
        version,
        reason,
        node,
        ..
    } = nack
    else {
        unreachable!()
    };
    assert_eq!(
        (version.as_str(), node.as_str()),
        ("2", "test-proxy"),
        "the NACK names the version kept"
    );
    assert!(reason.contains("all 2 weights are 0"), "{reason}");
    let nacked = Instant::now();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("load task");
    }

    let log = log.lock().await;
    assert!(log.len() > 50, "the load ran: {} requests", log.len());
    let failed: Vec<_> = log.iter().filter(|(_, s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(
        acked < Duration::from_secs(1),
        "version 2 applied after {acked:?}"
    );
    // Every request started a second or more after the switch went to v2, including those
    // after the rejected version 3.
    let late: Vec<_> = log
        .iter()
        .filter(|(t, _, _)| *t >= switched + Duration::from_secs(1))
        .collect();
    assert!(!late.is_empty());
    assert!(
        late.iter().all(|(_, _, b)| b == "v2\n"),
        "v1 still served a second after the switch"
    );
    assert!(
        log.iter()
            .any(|(t, _, _)| *t > nacked + Duration::from_millis(500)),
        "load ran after the NACK"
    );
    proxy.shutdown().await;
}

/// A TCP relay in front of the ADS server that can be cut and restored, so the proxy's
/// stream really breaks (a control plane that crashes or a network that partitions).
struct Relay {
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(listen: SocketAddr, to: SocketAddr) -> (Relay, SocketAddr) {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .expect("relay binds");
        let bound = listener.local_addr().expect("addr");
        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let inner = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                inner.lock().expect("relay tasks").push(conn);
            }
        });
        tasks.lock().expect("relay tasks").push(accept);
        (Relay { tasks }, bound)
    }

    /// Drops the listener and every relayed connection.
    fn cut(&self) {
        for t in self.tasks.lock().expect("relay tasks").drain(..) {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_control_plane_leaves_the_proxy_serving_and_it_reconnects() {
    let v1 = test_upstream::start("v1", any_port(), Behavior::default()).await;
    let v2 = test_upstream::start("v2", any_port(), Behavior::default()).await;
    let (publish, snapshots) = watch::channel(snapshot("1", &v1, &v2, 100, 0));
    let server = AdsServer::new(snapshots);
    let mut events = server.events();
    let ads = server.spawn(any_port()).await.expect("ADS server binds");
    let (relay, relay_addr) = Relay::start(any_port(), ads).await;
    let bootstrap = Bootstrap::parse(
        "xds-test.yaml",
        &format!(
            "admin: {{ address: '127.0.0.1:0' }}
ads: {{ address: 'http://{relay_addr}' }}
listeners: [{{ name: http, address: '127.0.0.1:0', routeConfig: main }}]"
        ),
    )
    .expect("bootstrap");
    let proxy = homeostat_proxy::start(bootstrap)
        .await
        .expect("proxy starts");
    wait_for_acks(&mut events, &[ROUTES, ENDPOINTS], "1").await;
    let c = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    assert_eq!(get(&c, proxy.listeners[0]).await, (200, "v1\n".into()));
    // The control plane becomes unreachable; a new version is published meanwhile.
    relay.cut();
    publish.send_replace(snapshot("2", &v1, &v2, 0, 100));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        assert_eq!(
            get(&c, proxy.listeners[0]).await,
            (200, "v1\n".into()),
            "still serving version 1"
        );
    }
    // Reachable again on the same address: the proxy reconnects (back-off from 100 ms,
    // doubling, at most 10 s) and applies version 2.
    let (_relay, _) = Relay::start(relay_addr, ads).await;
    wait_for(&mut events, |e| matches!(e, XdsEvent::Ack { type_url, version, .. } if type_url == ROUTES && version == "2")).await;
    assert_eq!(get(&c, proxy.listeners[0]).await, (200, "v2\n".into()));
    proxy.shutdown().await;
}
