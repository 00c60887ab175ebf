//! The proxy end to end on loopback: real hyper upstreams with injected failures and latency
//! behind a real proxy, driven by a real HTTP client.

mod support;

use std::time::{Duration, Instant};
use support::upstream::{self, Behavior};
use support::{any_port, client, get, h2_client, parse_prometheus, proxy, scrape, sum};

/// Listener and admin on ephemeral ports; `routes` and `clusters` are YAML list items.
fn bootstrap(routes: &str, clusters: &str) -> String {
    format!(
        "node: {{ workload: productpage-v1, namespace: default }}
admin: {{ address: '127.0.0.1:0' }}
limits: {{ headerReadTimeout: 500ms, requestBodyTimeout: 500ms, maxRequestBodyBytes: 1024 }}
listeners: [{{ name: http, address: '127.0.0.1:0', routeConfig: main }}]
routeConfigs:
  - name: main
    virtualHosts:
{routes}
clusters:
{clusters}"
    )
}

#[tokio::test]
async fn routes_by_host_and_prefix_and_splits_by_weight() {
    let v1 = upstream::start("v1", any_port(), Behavior::default()).await;
    let v2 = upstream::start("v2", any_port(), Behavior::default()).await;
    let api = upstream::start("api", any_port(), Behavior::default()).await;
    let p = proxy(&bootstrap(
        "      - name: reviews
        domains: [reviews]
        routes:
          - prefix: /api/
            weightedClusters: [{ cluster: api }]
          - prefix: /
            weightedClusters: [{ cluster: v1, weight: 80 }, { cluster: v2, weight: 20 }]",
        &format!(
            "  - {{ name: v1, endpoints: [{{ address: '{}' }}] }}
  - {{ name: v2, endpoints: [{{ address: '{}' }}] }}
  - {{ name: api, endpoints: [{{ address: '{}' }}] }}",
            v1.addr, v2.addr, api.addr
        ),
    ))
    .await;
    let c = client();
    let addr = p.listeners[0];
    assert_eq!(
        get(&c, addr, "reviews:9080", "/api/x").await,
        (200, String::new(), "api\n".into())
    );
    let (status, flags, _) = get(&c, addr, "ratings", "/").await;
    assert_eq!((status, flags.as_str()), (404, "NR"));
    let n = 1000;
    for _ in 0..n {
        let (status, _, _) = get(&c, addr, "reviews", "/").await;
        assert_eq!(status, 200);
    }
    // v2 gets Binomial(1000, 0.2): mean 200, sd √(1000·0.2·0.8) ≈ 12.6; ±5 sd is 137..263.
    let to_v2 = v2.hits();
    assert_eq!(v1.hits() + to_v2, n);
    assert!((137..=263).contains(&to_v2), "v2 got {to_v2} of {n}");
    p.shutdown().await;
}

fn two_endpoint_cluster(
    name: &str,
    a: &upstream::TestUpstream,
    b: &upstream::TestUpstream,
    extra: &str,
) -> String {
    format!(
        "  - name: {name}
    balancer: {{ kind: ROUND_ROBIN }}
{extra}
    endpoints: [{{ address: '{}' }}, {{ address: '{}' }}]",
        a.addr, b.addr
    )
}

#[tokio::test]
async fn five_consecutive_5xx_eject_the_failing_endpoint() {
    let bad = upstream::start(
        "bad",
        any_port(),
        Behavior {
            fail_all: true,
            ..Behavior::default()
        },
    )
    .await;
    let good = upstream::start("good", any_port(), Behavior::default()).await;
    let p = proxy(&bootstrap(
        "      - name: all
        domains: ['*']
        routes: [{ prefix: /, retries: { attempts: 0 }, weightedClusters: [{ cluster: c }] }]",
        &two_endpoint_cluster(
            "c",
            &bad,
            &good,
            "    outlierDetection: { maxEjectionPercent: 50 }",
        ),
    ))
    .await;
    let c = client();
    let mut failed = 0;
    for _ in 0..20 {
        let (status, _, _) = get(&c, p.listeners[0], "x", "/").await;
        if status == 503 {
            failed += 1;
        }
    }
    // Round robin alternates bad, good, bad, …: the 5th 503 (request 9) ejects `bad`
    // (Istio's consecutive5xxErrors 5; 1 of 2 = 50 % ≤ maxEjectionPercent), and the other
    // 11 requests all go to `good`: bad 5 hits, good 15.
    assert_eq!((bad.hits(), good.hits(), failed), (5, 15, 5));
    let samples = parse_prometheus(&scrape(p.admin).await);
    let bad_ep = bad.addr.to_string();
    assert_eq!(
        sum(
            &samples,
            "homeostat_upstream_ejections_total",
            &[("endpoint", &bad_ep)]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "homeostat_upstream_ejected",
            &[("endpoint", &bad_ep)]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "homeostat_upstream_rq_total",
            &[("endpoint", &bad_ep), ("result", "5xx")]
        ),
        5.0
    );
    p.shutdown().await;
}

#[tokio::test]
async fn retries_recover_from_a_failing_try_on_another_endpoint() {
    let bad = upstream::start(
        "bad",
        any_port(),
        Behavior {
            fail_all: true,
            ..Behavior::default()
        },
    )
    .await;
    let good = upstream::start("good", any_port(), Behavior::default()).await;
    // Istio's default policy: 2 retries on connect-failure, refused-stream, 503, avoiding the
    // host already tried. No outlier detection, so `bad` stays in rotation.
    let p = proxy(&bootstrap(
        "      - name: all
        domains: ['*']
        routes: [{ prefix: /, weightedClusters: [{ cluster: c }] }]",
        &two_endpoint_cluster("c", &bad, &good, ""),
    ))
    .await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(
            get(&c, p.listeners[0], "x", "/").await,
            (200, String::new(), "good\n".into())
        );
    }
    // Round robin starts at the first endpoint (`bad`) and every retry avoids it and lands on
    // `good`, after which the schedule is back at `bad`: 10 first tries on bad, 10 retries.
    assert_eq!((bad.hits(), good.hits()), (10, 10));
    let samples = parse_prometheus(&scrape(p.admin).await);
    assert_eq!(
        sum(
            &samples,
            "homeostat_upstream_rq_retry_total",
            &[("cluster_name", "c")]
        ),
        10.0
    );
    assert_eq!(
        sum(
            &samples,
            "istio_requests_total",
            &[("response_code", "200")]
        ),
        10.0
    );
    p.shutdown().await;
}

#[tokio::test]
async fn a_per_try_timeout_retries_elsewhere_and_a_route_timeout_answers_504() {
    let slow = upstream::start(
        "slow",
        any_port(),
        Behavior {
            latency: Duration::from_secs(5),
            ..Behavior::default()
        },
    )
    .await;
    let fast = upstream::start("fast", any_port(), Behavior::default()).await;
    let p = proxy(&bootstrap(
        "      - name: retry
        domains: [retry]
        routes: [{ prefix: /, retries: { attempts: 1, perTryTimeout: 100ms, retryOn: 5xx }, weightedClusters: [{ cluster: c }] }]
      - name: slow
        domains: [slow]
        routes: [{ prefix: /, timeout: 200ms, retries: { attempts: 0 }, weightedClusters: [{ cluster: s }] }]",
        &format!(
            "{}\n  - {{ name: s, endpoints: [{{ address: '{}' }}] }}",
            two_endpoint_cluster("c", &slow, &fast, ""),
            slow.addr
        ),
    ))
    .await;
    let c = client();
    // First try on `slow` times out after 100 ms; the retry (back-off < 25 ms) goes to `fast`.
    let t = Instant::now();
    assert_eq!(
        get(&c, p.listeners[0], "retry", "/").await,
        (200, String::new(), "fast\n".into())
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let t = Instant::now();
    let (status, flags, _) = get(&c, p.listeners[0], "slow", "/").await;
    assert_eq!((status, flags.as_str()), (504, "UT"));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn upstream_resets_and_dead_endpoints_get_clear_status_codes() {
    let resetting = upstream::start(
        "resetting",
        any_port(),
        Behavior {
            fail_all: true,
            reset: true,
            ..Behavior::default()
        },
    )
    .await;
    // A port nobody listens on: bind, note the port, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let p = proxy(&bootstrap(
        "      - name: r
        domains: [reset]
        routes: [{ prefix: /, retries: { attempts: 0 }, weightedClusters: [{ cluster: r }] }]
      - name: d
        domains: [dead]
        routes: [{ prefix: /, retries: { attempts: 0 }, weightedClusters: [{ cluster: d }] }]
      - name: e
        domains: [empty]
        routes: [{ prefix: /, weightedClusters: [{ cluster: e }] }]",
        &format!(
            "  - {{ name: r, endpoints: [{{ address: '{}' }}] }}
  - {{ name: d, connectTimeout: 1s, endpoints: [{{ address: '{dead}' }}] }}
  - {{ name: e, endpoints: [] }}",
            resetting.addr
        ),
    ))
    .await;
    let c = client();
    let (status, flags, _) = get(&c, p.listeners[0], "reset", "/").await;
    assert_eq!((status, flags.as_str()), (503, "UC"));
    let (status, flags, _) = get(&c, p.listeners[0], "dead", "/").await;
    assert_eq!((status, flags.as_str()), (503, "UF"));
    let (status, flags, _) = get(&c, p.listeners[0], "empty", "/").await;
    assert_eq!((status, flags.as_str()), (503, "UH"));
    p.shutdown().await;
}

#[tokio::test]
async fn http2_downstream_and_upstream() {
    let up = upstream::start("h2", any_port(), Behavior::default()).await;
    let p = proxy(&bootstrap(
        "      - name: all
        domains: ['*']
        routes: [{ prefix: /, weightedClusters: [{ cluster: c }] }]",
        &format!(
            "  - {{ name: c, http2: true, endpoints: [{{ address: '{}' }}] }}",
            up.addr
        ),
    ))
    .await;
    let c = h2_client();
    let req = hyper::Request::get(format!("http://{}/", p.listeners[0]))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let resp = c.request(req).await.expect("h2 answer");
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    // And an HTTP/1.1 client on the same port, to an HTTP/2 upstream.
    assert_eq!(get(&client(), p.listeners[0], "x", "/").await.0, 200);
    assert_eq!(up.hits(), 2);
    p.shutdown().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_attempt_is_neither_success_nor_failure() {
    let slow = upstream::start(
        "slow",
        any_port(),
        Behavior {
            latency: Duration::from_millis(300),
            ..Behavior::default()
        },
    )
    .await;
    // One endpoint, ejected by a single failure (consecutive5xxErrors 1, max 100 %): were the
    // abandoned attempt counted as a failure, the endpoint would be out and the next request
    // would get `503 UH`.
    let p = proxy(&bootstrap(
        "      - name: all
        domains: ['*']
        routes: [{ prefix: /, retries: { attempts: 0 }, weightedClusters: [{ cluster: s }] }]",
        &format!(
            "  - name: s
    outlierDetection: {{ consecutive5xxErrors: 1, maxEjectionPercent: 100 }}
    endpoints: [{{ address: '{}' }}]",
            slow.addr
        ),
    ))
    .await;
    let c = client();
    // The client gives up after 50 ms, well before the upstream's 300 ms answer.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(50), get(&c, p.listeners[0], "x", "/")).await;
    assert!(gave_up.is_err(), "the client hung up first");
    // The proxy notices the closed connection and drops the attempt; poll until it has.
    let bad_ep = slow.addr.to_string();
    let mut samples = Vec::new();
    for _ in 0..100 {
        samples = parse_prometheus(&scrape(p.admin).await);
        let cancelled = sum(
            &samples,
            "homeostat_upstream_rq_total",
            &[("endpoint", &bad_ep), ("result", "cancelled")],
        );
        if cancelled == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let of = |name: &str| sum(&samples, name, &[("cluster_name", "s")]);
    assert_eq!(
        sum(
            &samples,
            "homeostat_upstream_rq_total",
            &[("endpoint", &bad_ep), ("result", "cancelled")]
        ),
        1.0
    );
    assert_eq!(of("homeostat_upstream_rq_active"), 0.0, "released");
    assert_eq!(of("homeostat_upstream_ejections_total"), 0.0);
    // The endpoint still serves: not ejected, and the next request completes.
    assert_eq!(
        get(&c, p.listeners[0], "x", "/").await,
        (200, String::new(), "slow\n".into())
    );
    p.shutdown().await;
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let up = upstream::start("up", any_port(), Behavior::default()).await;
    let p = proxy(&bootstrap(
        "      - name: all
        domains: ['*']
        routes: [{ prefix: /, weightedClusters: [{ cluster: c }] }]",
        &format!(
            "  - {{ name: c, endpoints: [{{ address: '{}' }}] }}",
            up.addr
        ),
    ))
    .await;
    let c = client();
    // One at a time, each response read to its end before the next request: the connection
    // goes back to the pool when the body ends, and the next attempt takes it, so the
    // upstream sees 20 requests on exactly one connection.
    for _ in 0..20 {
        assert_eq!(
            get(&c, p.listeners[0], "x", "/").await,
            (200, String::new(), "up\n".into())
        );
    }
    assert_eq!((up.hits(), up.connections()), (20, 1));
    p.shutdown().await;
}
