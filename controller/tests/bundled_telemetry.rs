//! The fast telemetry path against Prometheus on the same traffic: a real homeostat-proxy
//! (destination side, as the adapters read) in front of a real upstream, scraped every second
//! both by Debian's Prometheus and by the direct scraper; then the same `ObserveRequest` goes to
//! the Prometheus adapter and to the direct path, and the Observations are compared.
//!
//! The traffic: one client, ~12 s steady, the upstream answering after 15 ms and failing
//! exactly one request in ten (the test upstream's deterministic error pattern). The policy's
//! grid: step 4 s, lookback 8 s, ending a second before the load stopped, so both points lie
//! inside the steady load.
//!
//! Tolerances, from how the two paths read the counters:
//! * Prometheus' `rate()` extrapolates the samples in its 4.5 s window to the window's edges;
//!   the direct path divides the increase by the time between its two scrapes. Both window
//!   edges may fall up to one scrape (1 s) apart between the paths, so each point covers the
//!   same ~4 s of a steady load give or take a second's jitter: rates within 15 %.
//! * Success: ~110 requests a point, one in ten failing: a window shifted by up to a second
//!   changes the error count by at most one either way: within 0.02.
//! * p50 / p90: both interpolate in the same Istio bucket ((10, 25] ms here) on nearly the
//!   same requests: within 10 %. p99 is not compared: of ~110 requests it is the slowest one
//!   or two, which a one-second shift of the window legitimately changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use homeostat::telemetry::proxy_scrape::{ProxyScraper, ScrapeConfig, Target, text};
use homeostat::telemetry::{
    ObservationSource, ObserveRequest, Prometheus, PrometheusConfig, PrometheusSource,
};
use homeostat_models::governor::Signals;
use homeostat_models::policy::{Duration as PolicyDuration, PolicySpec};
use homeostat_proxy::config::Bootstrap;
use homeostat_proxy::test_upstream::{self, Behavior};

const POD: &str = "checkout-v1-0";

/// Debian's Prometheus (`HOMEOSTAT_PROMETHEUS` or PATH); missing fails under `CI=true`.
fn prometheus_binary() -> Option<PathBuf> {
    let found = std::env::var_os("HOMEOSTAT_PROMETHEUS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join("prometheus"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        let why = "prometheus is needed (Debian: apt-get install -y prometheus)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("SKIPPED bundled_telemetry: {why}");
    }
    found
}

/// A Prometheus scraping `target` every second, killed on drop.
struct Scraping {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Scraping {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_prometheus(bin: &PathBuf, target: SocketAddr) -> Scraping {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, scrape_timeout: 1s }}
scrape_configs:
  - job_name: proxies
    metrics_path: /stats/prometheus
    static_configs: [{{ targets: ['{target}'], labels: {{ pod: {POD} }} }}]
"
        ),
    )
    .expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    // Owned at once, so that every path below kills and reaps it (Drop).
    let server = Scraping {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let c: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    for _ in 0..300 {
        let ready = c
            .get(format!("{}/-/ready", server.url).parse().expect("uri"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("prometheus not ready within 30 s");
}

async fn get(c: &Client<HttpConnector, Empty<Bytes>>, url: &str) -> (u16, String) {
    match c.get(url.parse().expect("uri")).await {
        Ok(r) => {
            let s = r.status().as_u16();
            let b = r
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (s, String::from_utf8_lossy(&b).into_owned())
        }
        Err(e) => (0, e.to_string()),
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn compare(what: &str, direct: &Signals, prom: &Signals) {
    for k in 0..2 {
        let (d, p) = (direct.request_rate[k], prom.request_rate[k]);
        assert!(
            (d - p).abs() <= 0.15 * p,
            "{what}[{k}] rate: direct {d}, prometheus {p}"
        );
        let (d, p) = (direct.success_rate[k], prom.success_rate[k]);
        assert!(
            (d - p).abs() <= 0.02,
            "{what}[{k}] success: direct {d}, prometheus {p}"
        );
        // One in ten fails, deterministically.
        assert!((d - 0.9).abs() <= 0.03, "{what}[{k}] success {d}");
        for (name, d, p) in [
            ("p50", direct.latency_p50[k], prom.latency_p50[k]),
            ("p90", direct.latency_p90[k], prom.latency_p90[k]),
        ] {
            assert!(
                (d - p).abs() <= 0.1 * p,
                "{what}[{k}] {name}: direct {d}, prometheus {p}"
            );
        }
        // 15 ms answers: the median is in Istio's (10, 25] ms bucket.
        let p50 = direct.latency_p50[k];
        assert!((0.010..=0.025).contains(&p50), "{what}[{k}] p50 {p50}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_path_and_prometheus_build_the_same_observation() {
    let Some(bin) = prometheus_binary() else {
        return;
    };
    let upstream = test_upstream::start(
        "checkout-v1",
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Behavior {
            latency: Duration::from_millis(15),
            error_rate: 0.1,
            ..Behavior::default()
        },
    )
    .await;
    let bootstrap = Bootstrap::parse(
        "proxy.yaml",
        &format!(
            r#"
node: {{ id: {POD}, workload: checkout-v1, namespace: shop, app: checkout, version: v1, reporter: destination }}
admin: {{ address: "127.0.0.1:0" }}
listeners: [{{ name: http, address: "127.0.0.1:0", routeConfig: main }}]
routeConfigs:
  - name: main
    virtualHosts:
      - name: all
        domains: ["*"]
        routes: [{{ retries: {{ attempts: 0 }}, weightedClusters: [{{ cluster: checkout-v1 }}] }}]
clusters:
  - name: checkout-v1
    destination: {{ service: checkout.shop.svc.cluster.local, workload: checkout-v1, namespace: shop, app: checkout, version: v1 }}
    endpoints: [{{ address: "{}" }}]
"#,
            upstream.addr
        ),
    )
    .expect("bootstrap");
    let proxy = homeostat_proxy::start(bootstrap).await.expect("proxy");
    let front = format!("http://{}/", proxy.listeners[0]);
    let stats = format!("http://{}/stats/prometheus", proxy.admin);
    let c: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());

    // Both series (200 and 503) exist before either path's first scrape, so neither path
    // counts a series from zero (Prometheus never does; see proxy_scrape::history).
    let mut sent = 0u64;
    for _ in 0..20 {
        assert_ne!(get(&c, &front).await.0, 0);
        sent += 1;
    }
    let prom = start_prometheus(&bin, proxy.admin).await;
    let scraper = ProxyScraper::new(ScrapeConfig::new(vec![Target {
        pod: POD.into(),
        url: stats.clone(),
    }]));
    let scraping = scraper.spawn(Duration::from_secs(1));
    // Prometheus' first scrape comes only after its discovery manager's first update (it
    // batches target updates every 5 s), not when it reports ready. A window that begins
    // before its first sample is extrapolated by half a scrape only, so the load must not
    // start before Prometheus holds the series: wait for them, then for one scrape more.
    let holds = format!("{}/api/v1/query?query=istio_requests_total", prom.url);
    let mut scraped = false;
    for _ in 0..300 {
        let (status, body) = get(&c, &holds).await;
        if status == 200 && body.contains("\"result\":[{") {
            scraped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(scraped, "prometheus did not scrape the proxy within 30 s");
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let load_start = unix_now();
    while unix_now() < load_start + 12.0 {
        let (status, _) = get(&c, &front).await;
        assert!(status == 200 || status == 503, "status {status}");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let load_end = unix_now();
    // Let both take the scrapes after the load.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    scraping.abort();

    // The proxy's own counts are the requests sent.
    let (_, page) = get(&c, &stats).await;
    let counted: f64 = text::parse(&page)
        .expect("the stats page is Prometheus text")
        .iter()
        .filter(|s| s.name == "istio_requests_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(counted, sent as f64);

    let mut spec = PolicySpec::for_service("checkout");
    spec.target.subsets = vec!["v1".into()];
    spec.telemetry.interval = PolicyDuration::from_secs(4);
    spec.telemetry.lookback = PolicyDuration::from_secs(8);
    let req = ObserveRequest::unconfigured("shop", spec, (load_end - 1.0).floor() as i64);
    let mut cfg = PrometheusConfig::new(&prom.url);
    cfg.scrape_interval_seconds = 1;
    let via_prometheus = PrometheusSource::new(Prometheus::new(cfg).expect("client"))
        .observe(&req)
        .await
        .expect("prometheus observation");
    let direct = scraper.observe(&req).await.expect("direct observation");

    assert_eq!(
        (direct.end, direct.step_seconds),
        (via_prometheus.end, via_prometheus.step_seconds)
    );
    compare(
        "service",
        &direct.service_signals,
        &via_prometheus.service_signals,
    );
    compare(
        "subset v1",
        &direct.subsets[0].signals,
        &via_prometheus.subsets[0].signals,
    );
    let names = |o: &homeostat_models::governor::Observation| {
        o.endpoints
            .iter()
            .map(|e| (e.name.clone(), e.subset.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&direct),
        vec![(POD.to_string(), Some("v1".to_string()))]
    );
    assert_eq!(names(&direct), names(&via_prometheus));
    compare(
        "pod",
        &direct.endpoints[0].signals,
        &via_prometheus.endpoints[0].signals,
    );
    proxy.shutdown().await;
}
