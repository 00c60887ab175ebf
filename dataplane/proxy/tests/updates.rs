//! Configuration updates (what an xDS client publishes) take effect for the next request and
//! never fail a request already in flight, even one whose cluster the update removes.

mod support;

use homeostat_proxy::config::Bootstrap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::upstream::{self, Behavior};
use support::{any_port, client, get, proxy};

fn config(
    v1: std::net::SocketAddr,
    v2: std::net::SocketAddr,
    w1: u32,
    w2: u32,
    with_v1: bool,
) -> String {
    let v1_cluster = if with_v1 {
        format!("  - {{ name: v1, endpoints: [{{ address: '{v1}' }}] }}\n")
    } else {
        String::new()
    };
    let split = if with_v1 {
        format!("[{{ cluster: v1, weight: {w1} }}, {{ cluster: v2, weight: {w2} }}]")
    } else {
        "[{ cluster: v2 }]".to_owned()
    };
    format!(
        "admin: {{ address: '127.0.0.1:0' }}
listeners: [{{ name: http, address: '127.0.0.1:0', routeConfig: main }}]
routeConfigs:
  - name: main
    virtualHosts: [{{ name: all, domains: ['*'], routes: [{{ prefix: /, weightedClusters: {split} }}] }}]
clusters:
{v1_cluster}  - {{ name: v2, endpoints: [{{ address: '{v2}' }}] }}
"
    )
}

fn apply(p: &homeostat_proxy::Running, yaml: &str) {
    let b = Bootstrap::parse("update.yaml", yaml).expect("valid update");
    p.store
        .apply(&b.clusters, &b.route_configs)
        .expect("applies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_change_moves_the_next_request_and_fails_none_in_flight() {
    let slow = Behavior {
        latency: Duration::from_millis(30),
        ..Behavior::default()
    };
    let v1 = upstream::start("v1", any_port(), slow.clone()).await;
    let v2 = upstream::start("v2", any_port(), slow).await;
    let p = proxy(&config(v1.addr, v2.addr, 100, 0, true)).await;
    let addr = p.listeners[0];
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, failures, done) = (stop.clone(), failures.clone(), done.clone());
        load.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::SeqCst) {
                let (status, _, _) = get(&c, addr, "x", "/").await;
                if status != 200 {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(v2.hits(), 0, "weight 0 gets nothing");
    apply(&p, &config(v1.addr, v2.addr, 0, 100, true));
    let v1_at_switch = v1.hits();
    // The next request reads the new split: it goes to v2.
    assert_eq!(get(&client(), addr, "x", "/").await.2, "v2\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Only the ≤ 4 requests already in flight at the switch may still reach v1.
    assert!(
        v1.hits() <= v1_at_switch + 4,
        "{} > {} + 4",
        v1.hits(),
        v1_at_switch
    );
    // Now remove v1 altogether, with requests in flight to v2, and back again.
    apply(&p, &config(v1.addr, v2.addr, 0, 100, false));
    tokio::time::sleep(Duration::from_millis(100)).await;
    apply(&p, &config(v1.addr, v2.addr, 50, 50, true));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.await.expect("load task");
    }
    assert!(
        done.load(Ordering::SeqCst) > 40,
        "load ran: {}",
        done.load(Ordering::SeqCst)
    );
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_to_a_removed_cluster_completes() {
    let v1 = upstream::start(
        "v1",
        any_port(),
        Behavior {
            latency: Duration::from_millis(300),
            ..Behavior::default()
        },
    )
    .await;
    let v2 = upstream::start("v2", any_port(), Behavior::default()).await;
    let p = proxy(&config(v1.addr, v2.addr, 1, 0, true)).await;
    let addr = p.listeners[0];
    let in_flight = tokio::spawn(async move { get(&client(), addr, "x", "/").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    apply(&p, &config(v1.addr, v2.addr, 0, 0, false));
    assert_eq!(get(&client(), addr, "x", "/").await.2, "v2\n");
    assert_eq!(
        in_flight.await.expect("task"),
        (200, String::new(), "v1\n".into())
    );
    p.shutdown().await;
}
