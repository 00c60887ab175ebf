//! Failures told apart, against a stand-in HTTP server on a loopback port that answers every
//! request with one canned response (or never answers).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use homeostat_models::policy::PolicySpec;

use super::*;
use crate::telemetry::source::PrometheusSource;
use crate::telemetry::{ObservationSource, ObserveRequest};

/// Serves `response` (status line, content type, body) to every connection; `None` accepts and
/// holds connections without answering. Returns the base URL.
fn serve(response: Option<(&'static str, &'static str, &'static str)>) -> String {
    serve_logged(response).0
}

/// [`serve`], also keeping every request (head and body) it answered.
fn serve_logged(
    response: Option<(&'static str, &'static str, &'static str)>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = log.clone();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            let Some((status, ctype, body)) = response else {
                held.push(c);
                continue;
            };
            // Read the request head and body (the form-encoded query) before answering.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = c.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= head_end + 4 + len {
                        break;
                    }
                }
            }
            kept.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).into_owned());
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, log)
}

fn request() -> ObserveRequest {
    let mut spec = PolicySpec::for_service("checkout");
    // 4 points: keeps the queries short.
    spec.telemetry.lookback = homeostat_models::policy::Duration::from_secs(60);
    ObserveRequest::unconfigured("shop", spec, 1_700_000_030)
}

async fn observe(url: &str) -> Result<homeostat_models::governor::Observation, TelemetryError> {
    let mut cfg = PrometheusConfig::new(url);
    cfg.timeout = Duration::from_millis(500);
    PrometheusSource::new(Prometheus::new(cfg).unwrap())
        .observe(&request())
        .await
}

#[tokio::test]
async fn refused_connection_is_unavailable() {
    // Bind then drop: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = observe(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Unavailable(m) if m.contains("request rate by service") && m.contains("istio_requests_total")),
        "{e}"
    );
}

#[tokio::test]
async fn no_answer_in_time_is_unavailable() {
    let e = observe(&serve(None)).await.unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Unavailable(m) if m.contains("within")),
        "{e}"
    );
}

#[tokio::test]
async fn prometheus_timeout_is_unavailable() {
    let url = serve(Some((
        "503 Service Unavailable",
        "application/json",
        r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
    )));
    let e = observe(&url).await.unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Unavailable(m) if m.contains("timed out")),
        "{e}"
    );
}

#[tokio::test]
async fn a_rejected_query_is_malformed() {
    let url = serve(Some((
        "400 Bad Request",
        "application/json",
        r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#,
    )));
    let e = observe(&url).await.unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Malformed(m) if m.contains("bad_data") || m.contains("parse error")),
        "{e}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_the_api_is_malformed_but_a_gateway_error_is_unavailable() {
    let url = serve(Some(("200 OK", "application/json", "{\"status\":")));
    let e = observe(&url).await.unwrap_err();
    assert!(matches!(&e, TelemetryError::Malformed(_)), "{e}");
    let url = serve(Some(("200 OK", "text/html", "<html>login</html>")));
    let e = observe(&url).await.unwrap_err();
    assert!(matches!(&e, TelemetryError::Malformed(_)), "{e}");
    let url = serve(Some((
        "502 Bad Gateway",
        "text/html",
        "<html>bad gateway</html>",
    )));
    let e = observe(&url).await.unwrap_err();
    assert!(matches!(&e, TelemetryError::Unavailable(_)), "{e}");
}

#[tokio::test]
async fn an_empty_answer_is_insufficient() {
    let url = serve(Some((
        "200 OK",
        "application/json",
        r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
    )));
    let e = observe(&url).await.unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Insufficient(m) if m.contains("shop/checkout")),
        "{e}"
    );
}

#[test]
fn a_batch_sends_one_query_per_signal_and_level() {
    let p = Prometheus::new(PrometheusConfig::new("http://127.0.0.1:9")).unwrap();
    let keys: BTreeSet<ServiceKey> = (0..1000)
        .map(|i| ServiceKey {
            namespace: format!("ns{}", i % 10),
            service: format!("svc{i}"),
        })
        .collect();
    let q = p.queries(&keys, &Grid::ending(1_700_000_000, 15, 3600));
    // 2 rates × (3 levels + the callers' side) + the bucket rates of the pods and of the
    // callers + 2 CPU halves = 12, whatever the number of services; the latency quantiles of
    // all three levels come from the one pod bucket query.
    assert_eq!(q.len(), 12);
    let callers: Vec<_> = q
        .iter()
        .filter(|(_, _, text)| text.contains("reporter=\"source\""))
        .map(|(signal, level, _)| (*signal, *level))
        .collect();
    assert_eq!(
        callers,
        [
            (Signal::RequestRate, Level::Callers),
            (Signal::SuccessRate, Level::Callers),
            (Signal::LatencyBuckets, Level::Callers)
        ]
    );
    let latency: Vec<_> = q
        .iter()
        .filter(|(_, _, text)| text.contains("duration") && text.contains("destination\","))
        .collect();
    assert_eq!(latency.len(), 1);
    assert_eq!(
        (latency[0].0, latency[0].1),
        (Signal::LatencyBuckets, Level::Pod)
    );
    assert!(
        q[0].2.contains("svc999"),
        "every service is in the one query"
    );
}

#[tokio::test]
async fn a_batched_source_asks_once_per_interval_then_only_the_new_steps() {
    use crate::telemetry::source::BatchedSource;
    let (url, log) = serve_logged(Some((
        "200 OK",
        "application/json",
        r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
    )));
    let mut cfg = PrometheusConfig::new(&url);
    cfg.timeout = Duration::from_secs(5);
    let src = BatchedSource::new(Prometheus::new(cfg).unwrap());
    let mut reqs: Vec<ObserveRequest> = ["a", "b", "c"]
        .iter()
        .map(|s| {
            let mut r = request();
            r.spec.target.service = s.to_string();
            r
        })
        .collect();
    src.register(reqs.iter().map(ServiceKey::of));
    let count = || log.lock().unwrap().len();
    // Three policies, one interval: one batch of 12 queries (each answers "no series": the
    // policies are told Insufficient, not Unavailable).
    for r in &reqs {
        let e = src.observe(r).await.unwrap_err();
        assert!(matches!(e, TelemetryError::Insufficient(_)), "{e}");
    }
    assert_eq!(count(), 12);
    let first = log.lock().unwrap()[0].clone();
    // `end` 1_700_000_030 is aligned down to a multiple of the 15 s step: 1_700_000_025
    // (= 15 · 113_333_335). The lookback of 60 s at 15 s is 4 points: start 1_700_000_025 −
    // 3·15 = 1_699_999_980.
    assert!(
        first.contains("start=1699999980") && first.contains("end=1700000025"),
        "{first}"
    );
    // The 10 Istio queries (8 rates and 2 bucket rates, the callers' 3 among them) each name
    // all three services (`=~"a|b|c"`,
    // form-encoded).
    let naming_all = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.contains("destination_service_name%3D%7E%22a%7Cb%7Cc%22"))
        .count();
    assert_eq!(naming_all, 10);
    // A request 7 s later (…037) in the same interval: aligned down to …025 again, no query.
    for r in reqs.iter_mut() {
        r.end += 7;
    }
    let _ = src.observe(&reqs[0]).await;
    assert_eq!(count(), 12);
    // The next interval (…045, aligned to …040): 12 queries for the one new point only.
    for r in reqs.iter_mut() {
        r.end += 8;
    }
    for r in &reqs {
        let _ = src.observe(r).await;
    }
    assert_eq!(count(), 24);
    let last = log.lock().unwrap()[23].clone();
    assert!(
        last.contains("start=1700000040") && last.contains("end=1700000040"),
        "{last}"
    );
}

#[test]
fn a_long_grid_over_many_services_is_fetched_in_time_chunks() {
    // 1 h at 15 s = 240 points. 10,000 services × 20 bucket series = 200,000 series: at most
    // 2,000,000 / 200,000 = 10 points per answer, so 24 chunks of 10.
    let grid = Grid::ending(1_700_000_000, 15, 3600);
    let parts = chunks(grid, 10_000);
    assert_eq!(parts.len(), 24);
    assert!(parts.iter().all(|g| g.points == 10 && g.step == 15));
    assert_eq!(parts[0].start(), grid.start());
    assert_eq!(parts[23].end, grid.end);
    for w in parts.windows(2) {
        assert_eq!(
            w[1].start(),
            w[0].end + 15,
            "consecutive, no gap or overlap"
        );
    }
    // 3,000 services: 2,000,000 / 60,000 = 33 points; 240 = 7 · 33 + 9.
    let parts = chunks(grid, 3_000);
    assert_eq!(parts.len(), 8);
    assert_eq!(parts[7].points, 9);
    assert_eq!(parts[7].end, grid.end);
    // 416 services (8,320 series: 240 points = 1,996,800 samples) fit whole; 417 do not.
    assert_eq!(chunks(grid, 416), vec![grid]);
    assert_eq!(chunks(grid, 417).len(), 2);
    // A steady-state step is never cut.
    let step = Grid::ending(1_700_000_000, 15, 15);
    assert_eq!(chunks(step, 1_000_000), vec![step]);
}
