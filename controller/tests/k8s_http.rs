//! The operational endpoints: `/healthz`, `/readyz` (503 until the controller runs) and
//! `/metrics` in the OpenMetrics text format with the counters the reconciler moves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use http::{Request, StatusCode};
use tower::ServiceExt;

use homeostat::http::{Metrics, router};

async fn get(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let app = router(metrics.clone(), ready.clone());
    assert_eq!(get(&app, "/healthz").await, (StatusCode::OK, "ok".into()));
    assert_eq!(
        get(&app, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    ready.store(true, Ordering::Relaxed);
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);

    metrics.reconciles.inc();
    metrics.reconciles.inc();
    metrics.failure("kube");
    metrics.change("weights", "applied");
    metrics.change("weights", "recommended");
    metrics.change("weights", "recommended");
    metrics.telemetry_seconds.observe(0.003);
    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "homeostat_reconciles_total 2",
        r#"homeostat_reconcile_failures_total{reason="kube"} 1"#,
        r#"homeostat_changes_total{knob="weights",outcome="applied"} 1"#,
        r#"homeostat_changes_total{knob="weights",outcome="recommended"} 2"#,
        // 3 ms falls in the 4 ms bucket (1, 2, 4, ... ms), not the 2 ms one.
        r#"homeostat_telemetry_query_seconds_bucket{le="0.002"} 0"#,
        r#"homeostat_telemetry_query_seconds_bucket{le="0.004"} 1"#,
        "homeostat_telemetry_query_seconds_count 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"));
}
