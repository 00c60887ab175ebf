//! The stats endpoint parses as Prometheus text, carries Istio's standard names and labels,
//! and its counts equal the requests sent.

mod support;

use support::upstream::{self, Behavior};
use support::{any_port, client, get, parse_prometheus, proxy, scrape, sum};

#[tokio::test]
async fn istio_metrics_count_exactly_what_was_sent() {
    // Every 4th request fails with 503 (error_rate 0.25 is deterministic: requests 4, 8, …).
    let v1 = upstream::start(
        "v1",
        any_port(),
        Behavior {
            error_rate: 0.25,
            body_bytes: 100,
            ..Behavior::default()
        },
    )
    .await;
    let p = proxy(&format!(
        "node: {{ workload: productpage-v1, namespace: default, app: productpage, version: v1 }}
admin: {{ address: '127.0.0.1:0' }}
listeners: [{{ name: http, address: '127.0.0.1:0', routeConfig: main }}]
routeConfigs:
  - name: main
    virtualHosts:
      - name: reviews
        domains: [reviews]
        routes: [{{ prefix: /, retries: {{ attempts: 0 }}, weightedClusters: [{{ cluster: reviews-v1 }}] }}]
clusters:
  - name: reviews-v1
    destination: {{ service: reviews.default.svc.cluster.local, workload: reviews-v1, namespace: default, app: reviews, version: v1 }}
    endpoints: [{{ address: '{}' }}]",
        v1.addr
    ))
    .await;
    let c = client();
    let n = 40;
    for _ in 0..n {
        get(&c, p.listeners[0], "reviews", "/").await;
    }
    // Three requests that match no route.
    for _ in 0..3 {
        assert_eq!(get(&c, p.listeners[0], "nowhere", "/").await.0, 404);
    }
    let text = scrape(p.admin).await;
    let samples = parse_prometheus(&text);
    let dest = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("source_workload_namespace", "default"),
        ("destination_service", "reviews.default.svc.cluster.local"),
        ("destination_workload", "reviews-v1"),
        ("destination_version", "v1"),
        ("destination_service_name", "reviews"),
        ("request_protocol", "http"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut m = dest.to_vec();
        m.extend_from_slice(extra);
        m
    };
    // 40 requests: 10 × 503 (4, 8, …, 40) and 30 × 200.
    assert_eq!(
        sum(
            &samples,
            "istio_requests_total",
            &with(&[("response_code", "200"), ("response_flags", "-")])
        ),
        30.0
    );
    assert_eq!(
        sum(
            &samples,
            "istio_requests_total",
            &with(&[("response_code", "503")])
        ),
        10.0
    );
    assert_eq!(
        sum(
            &samples,
            "istio_requests_total",
            &[
                ("response_code", "404"),
                ("response_flags", "NR"),
                ("destination_service", "unknown")
            ]
        ),
        3.0
    );
    assert_eq!(sum(&samples, "istio_requests_total", &[]), 43.0);
    // Histogram: _count equals the requests; +Inf bucket equals _count; every response body
    // was 100 bytes, so the bytes histogram's sum is 100 per upstream answer and the ≤100
    // bucket holds all of them while the ≤50 bucket holds none.
    assert_eq!(
        sum(
            &samples,
            "istio_request_duration_milliseconds_count",
            &with(&[])
        ),
        40.0
    );
    assert_eq!(
        sum(
            &samples,
            "istio_request_duration_milliseconds_bucket",
            &with(&[("le", "+Inf")])
        ),
        40.0
    );
    assert_eq!(
        sum(&samples, "istio_response_bytes_sum", &with(&[])),
        4000.0
    );
    assert_eq!(
        sum(
            &samples,
            "istio_response_bytes_bucket",
            &with(&[("le", "100")])
        ),
        40.0
    );
    assert_eq!(
        sum(
            &samples,
            "istio_response_bytes_bucket",
            &with(&[("le", "50")])
        ),
        0.0
    );
    assert_eq!(sum(&samples, "istio_request_bytes_count", &with(&[])), 40.0);
    // Every series carries Istio's full standard label set.
    for s in samples.iter().filter(|s| s.name == "istio_requests_total") {
        for label in [
            "reporter",
            "source_workload",
            "source_workload_namespace",
            "source_principal",
            "source_app",
            "source_version",
            "source_canonical_service",
            "source_canonical_revision",
            "source_cluster",
            "destination_workload",
            "destination_workload_namespace",
            "destination_principal",
            "destination_app",
            "destination_version",
            "destination_service",
            "destination_canonical_service",
            "destination_canonical_revision",
            "destination_service_name",
            "destination_service_namespace",
            "destination_cluster",
            "request_protocol",
            "response_code",
            "grpc_response_status",
            "response_flags",
            "connection_security_policy",
        ] {
            assert!(s.labels.contains_key(label), "{label} missing from {s:?}");
        }
    }
    // Per-endpoint counters agree with the upstream's own count.
    let ep = v1.addr.to_string();
    assert_eq!(
        sum(
            &samples,
            "homeostat_upstream_rq_total",
            &[("endpoint", &ep)]
        ),
        v1.hits() as f64
    );
    assert_eq!(v1.hits(), 40);
    promtool_check(&text);
    p.shutdown().await;
}

/// `promtool check metrics` (Debian's `prometheus` package) when it is installed; the parse
/// above is the check that always runs.
fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed; skipped `promtool check metrics`");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool runs");
    // promtool 2.42 exits non-zero for lint findings as well as parse errors. Istio's own
    // names break one naming lint (`_milliseconds` is not a base unit) and keeping Istio's
    // names is the point, so that finding is allowed and any other line fails the test.
    let report =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let other: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| *l != "istio_request_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"")
        .collect();
    assert!(
        other.is_empty(),
        "promtool (exit {:?}): {report}",
        out.status.code()
    );
    eprintln!(
        "promtool check metrics: exit {:?}: {report}",
        out.status.code()
    );
}
