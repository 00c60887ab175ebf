//! End to end with the real parts: a real Prometheus (Debian's `prometheus`) scrapes Istio-shaped
//! metrics from a fake mesh exporter and evaluates the shipped `rules/`; a real Alertmanager
//! (Debian's `prometheus-alertmanager`), configured from `deploy/alertmanager/alertmanager.yml`,
//! routes the alerts to homeostat's webhook on loopback, over TLS, with the bearer token. The
//! webhook is the controller's own (`remediation::build`: the policies of a watch cache, the
//! reconciler's Governor and telemetry, the KubeSink) in front of a stateful mock Kubernetes API
//! server (`homeostat_e2e::fake_api`), whose write log is asserted: the exact server-side apply
//! of the VirtualService for Enforce, no mesh write at all for DryRun, and a replayed delivery
//! that acts no further.
//!
//! The mesh (all in namespace shop, objective 99.9%, so an error budget of 0.1%):
//! * checkout — 10% errors (100x burn), policy in Enforce;
//! * cart     — 10% errors (100x burn), policy in DryRun;
//! * payments — 0.01% errors (0.1x burn), policy in DryRun: no alert, no remediation.
//!
//! 100x is over every pair's factor, so Prometheus fires all four ErrorBudgetBurn alerts per
//! burning service (each window's error ratio is exact from the second scrape on: numerator and
//! denominator are extrapolated alike). The policies act on `severity: page` (the 1h and 6h
//! pairs): two distinct alerts per service. Expected, worked out from the policy:
//! * checkout (Enforce): weights stable 70 / canary 30 → 90 / 10 (maxStepPercent 20) and retries
//!   2 → 0 (Istio's default of 2 attempts, retries unset on the route), applied once — two
//!   server-side applies of the VirtualService in all; the second page alert's changes are held
//!   by the 2m cooldown, however often Alertmanager delivers;
//! * cart (DryRun): the same two changes recommended for each page alert, nothing applied;
//! * the ticket alerts (1d, 3d) match no remediation entry: no record.
//!
//! The webhook starts as a replica that is not the leader: it answers 503, Alertmanager retries,
//! and the alerts arrive once it leads — the documented "not lost" choice, with the real sender.
//!
//! Counters grow at 100 000 requests/s so that even the 6h window's request rate, estimated from
//! a few seconds of data (about 100 000 x 5 s / 21 600 s = 23 req/s), clears the policy's
//! 1 req/s low-traffic guard at once.
//!
//! Without the binaries this fails under `CI=true` and skips with a printed reason otherwise.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use homeostat::crd::{AdaptivePolicy, AdaptivePolicySpec};
use homeostat::http::Metrics;
use homeostat::reconcile::{self, Context};
use homeostat::remediation;
use homeostat::webhook::{BearerToken, FixedObservations, TlsListener, router, server_config};
use homeostat_e2e::fake_api::FakeApi;
use homeostat_models::governor::RetryConfig;
use homeostat_models::policy::PolicySpec;
use kube::runtime::{reflector, watcher};
use serde_json::{Value, json};

const TOKEN: &str = "e2e-token-5f3a";
const RATE: f64 = 100_000.0;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The first of `names` on the PATH; `None` (skip) when missing outside CI, a failure inside.
fn tool(names: &[&str], package: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&paths)
        .flat_map(|p| names.iter().map(move |n| p.join(n)))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{names:?} required under CI=true (Debian package: {package})"
        );
        eprintln!("skipping: none of {names:?} on PATH (apt-get install {package})");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed when the test ends, whatever way it ends.
struct Proc(Child, PathBuf);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn spawn(bin: &Path, args: &[String], log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn");
        Self(child, log)
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.1).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

fn policy(service: &str, mode: &str) -> AdaptivePolicy {
    let yaml = format!(
        "mode: {mode}
target: {{service: {service}, subsets: [stable, canary]}}
remediation:
  - onAlert: {{alertname: ErrorBudgetBurn, labels: {{severity: page}}}}
    actions: [shiftToStable, disableRetries]
"
    );
    let spec: PolicySpec = serde_yaml::from_str(&yaml).expect("policy");
    spec.validate().expect("valid");
    let mut p = AdaptivePolicy::new(service, AdaptivePolicySpec(spec));
    p.metadata.namespace = Some("shop".into());
    p.metadata.resource_version = Some("1".into());
    p
}

fn path(kind: &str, name: &str) -> String {
    match kind {
        "adaptivepolicies" => format!("/apis/homeostat.dev/v1alpha1/namespaces/shop/{kind}/{name}"),
        _ => format!("/apis/networking.istio.io/v1/namespaces/shop/{kind}/{name}"),
    }
}

/// The default route of `svc` at stable / canary, with `retries` if given.
fn routes(svc: &str, stable: u32, canary: u32, retries: Option<Value>) -> Value {
    let mut r = json!({"name": "default", "route": [
        {"destination": {"host": svc, "subset": "stable"}, "weight": stable},
        {"destination": {"host": svc, "subset": "canary"}, "weight": canary}]});
    if let Some(x) = retries {
        r["retries"] = x;
    }
    json!([r])
}

/// The three policies with their DestinationRules and VirtualServices (70 / 30, no retries).
fn cluster() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (svc, mode) in [
        ("checkout", "Enforce"),
        ("cart", "DryRun"),
        ("payments", "DryRun"),
    ] {
        let p = serde_json::to_value(policy(svc, mode)).unwrap();
        out.push((path("adaptivepolicies", svc), p));
        out.push((
            path("destinationrules", svc),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                   "metadata": {"name": svc, "namespace": "shop", "resourceVersion": "1"},
                   "spec": {"host": svc, "subsets": [
                       {"name": "stable", "labels": {"version": "v1"}},
                       {"name": "canary", "labels": {"version": "v2"}}]}}),
        ));
        out.push((
            path("virtualservices", svc),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                   "metadata": {"name": svc, "namespace": "shop", "resourceVersion": "1"},
                   "spec": {"hosts": [svc], "http": routes(svc, 70, 30, None)}}),
        ));
    }
    out
}

/// Istio's counters and homeostat's policy gauges, as Prometheus' text format, `secs` after the
/// start: every service at RATE requests/s with its error share.
fn exposition(secs: f64) -> String {
    let mut s = String::new();
    for (svc, errors) in [("checkout", 0.1), ("cart", 0.1), ("payments", 0.0001)] {
        for (code, share) in [("200", 1.0 - errors), ("500", errors)] {
            s += &format!(
                "istio_requests_total{{reporter=\"destination\",destination_service_namespace=\"shop\",destination_service_name=\"{svc}\",destination_version=\"v1\",response_code=\"{code}\"}} {}\n",
                (RATE * share * secs).floor()
            );
        }
        let labels = format!("policy_namespace=\"shop\",policy=\"{svc}\",target_service=\"{svc}\"");
        s += &format!("homeostat_policy_objective_success_rate{{{labels}}} 0.999\n");
        s += &format!("homeostat_policy_min_requests_per_second{{{labels}}} 1\n");
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_from_real_prometheus_via_real_alertmanager_remediates_once() {
    let Some(prometheus) = tool(&["prometheus"], "prometheus") else {
        return;
    };
    let Some(alertmanager) = tool(
        &["prometheus-alertmanager", "alertmanager"],
        "prometheus-alertmanager",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    // The fake mesh exporter.
    let started = Instant::now();
    let exporter = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move { exposition(started.elapsed().as_secs_f64()) }),
    );
    let exporter_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exporter_addr = exporter_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(exporter_listener, exporter).await });

    // homeostat's webhook as `homeostat run` builds it, over the mock API server.
    let api = FakeApi::new(cluster());
    let leader = Arc::new(AtomicBool::new(false));
    let ctx = Arc::new(Context::new(
        api.client(),
        // No telemetry: the Governor decides on the configuration in force.
        FixedObservations::default(),
        Arc::new(Metrics::default()),
        reconcile::system_clock(),
        // Not the leader at first: the alerts must not be lost (see below).
        leader.clone(),
    ));
    let (store, mut writer) = reflector::store();
    for svc in ["checkout", "cart", "payments"] {
        let mode = if svc == "checkout" {
            "Enforce"
        } else {
            "DryRun"
        };
        writer.apply_watcher_event(&watcher::Event::Apply(policy(svc, mode)));
    }
    let hook = remediation::build(
        ctx,
        store,
        BearerToken::new(TOKEN).unwrap(),
        homeostat::webhook::DEFAULT_MAX_BODY_BYTES,
    );
    // Every delivery answered 200 is kept, to replay one later.
    let delivered: Arc<Mutex<Vec<axum::body::Bytes>>> = Arc::default();
    let keep = delivered.clone();
    let app = router(hook).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let keep = keep.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let req = axum::extract::Request::from_parts(parts, bytes.clone().into());
                let resp = next.run(req).await;
                if resp.status() == 200 {
                    keep.lock().unwrap().push(bytes);
                }
                resp
            }
        },
    ));
    // Served over TLS with a certificate for 127.0.0.1, which Alertmanager is told to trust.
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    std::fs::write(d.join("tls.crt"), ck.cert.pem()).unwrap();
    std::fs::write(d.join("tls.key"), ck.signing_key.serialize_pem()).unwrap();
    let tls = server_config(&d.join("tls.crt"), &d.join("tls.key")).expect("tls");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr: SocketAddr = tcp.local_addr().unwrap();
    let hook_listener = TlsListener::new(tcp, tls).unwrap();
    let replay = app.clone();
    tokio::spawn(async move { axum::serve(hook_listener, app).await });

    // Alertmanager, from the shipped example: only the address, the token file and the timings
    // change.
    std::fs::write(d.join("token"), format!("{TOKEN}\n")).unwrap();
    let example =
        std::fs::read_to_string(repo().join("deploy/alertmanager/alertmanager.yml")).unwrap();
    let mut am_config = example.clone();
    for (from, to) in [
        (
            "https://homeostat.homeostat-system.svc:8443/alertmanager".to_string(),
            format!("https://{hook_addr}/alertmanager"),
        ),
        (
            "/etc/alertmanager/secrets/homeostat-webhook/ca.crt".to_string(),
            d.join("tls.crt").display().to_string(),
        ),
        (
            "/etc/alertmanager/secrets/homeostat-webhook/token".to_string(),
            d.join("token").display().to_string(),
        ),
        ("group_wait: 10s".to_string(), "group_wait: 1s".to_string()),
        (
            "group_interval: 1m".to_string(),
            "group_interval: 2s".to_string(),
        ),
    ] {
        assert!(
            am_config.contains(&from),
            "the example no longer has {from}"
        );
        am_config = am_config.replace(&from, &to);
    }
    std::fs::write(d.join("alertmanager.yml"), am_config).unwrap();
    let am_port = free_port();
    let am = Proc::spawn(
        &alertmanager,
        &[
            format!("--config.file={}", d.join("alertmanager.yml").display()),
            format!("--storage.path={}", d.join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            // No gossip: a single Alertmanager, no port for peers.
            "--cluster.listen-address=".to_string(),
        ],
        d.join("alertmanager.log"),
    );

    // Prometheus with the shipped rules, scraping and evaluating every second.
    let rules: Vec<String> = homeostat::rules::RULE_FILES
        .iter()
        .map(|(f, _)| format!("  - {}", repo().join("rules").join(f).display()))
        .collect();
    let prom_config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{}\n\
alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
scrape_configs:\n  - job_name: mesh\n    static_configs:\n      - targets: ['{exporter_addr}']\n",
        rules.join("\n")
    );
    std::fs::write(d.join("prometheus.yml"), prom_config).unwrap();
    let prom = Proc::spawn(
        &prometheus,
        &[
            format!("--config.file={}", d.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", d.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()),
        ],
        d.join("prometheus.log"),
    );

    // While this replica is not the leader the webhook answers 503, which Alertmanager retries;
    // once it leads, the same alerts arrive. Wait for Alertmanager to log a 503 (at most 60 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(d.join("alertmanager.log"))
        .unwrap_or_default()
        .contains("unexpected status code 503")
    {
        assert!(
            Instant::now() < deadline,
            "Alertmanager never reached the webhook in 60 s:\n--- prometheus ---\n{}\n--- alertmanager ---\n{}",
            prom.log(),
            am.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(api.writes().is_empty(), "{:?}", api.writes());
    leader.store(true, Ordering::SeqCst);

    // Wait for the four page-alert records (at most 90 s), then 5 s more for any redelivery.
    let records = |svc: &str| -> Vec<Value> {
        api.object(&path("adaptivepolicies", svc))
            .and_then(|p| p["status"]["alertRemediations"].as_array().cloned())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while records("checkout").len() < 2 || records("cart").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no remediation after 90 s: {:?}\n--- prometheus ---\n{}\n--- alertmanager ---\n{}",
            api.writes(),
            prom.log(),
            am.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Only page alerts (1h and 6h pairs), each occurrence recorded once per burning service.
    for svc in ["checkout", "cart"] {
        let recs = records(svc);
        assert_eq!(recs.len(), 2, "{svc}: {recs:?}");
        assert!(recs.iter().all(|r| r["alertname"] == "ErrorBudgetBurn"));
    }
    assert!(records("payments").is_empty());
    let writes = api.writes();
    let mesh: Vec<_> = writes
        .iter()
        .filter(|w| !w.path.contains("/adaptivepolicies/") && !w.path.contains("/events"))
        .collect();
    // checkout, Enforce: exactly two server-side applies of its VirtualService, as homeostat,
    // forced: 90 / 10, then retries off on top (attempts 0, retryOn as in force).
    let retry_on = RetryConfig::default().retry_on.to_string();
    let vs = |stable, canary, retries| {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
               "metadata": {"name": "checkout"},
               "spec": {"http": routes("checkout", stable, canary, retries)}})
    };
    assert_eq!(mesh.len(), 2, "{mesh:#?}");
    for w in &mesh {
        assert_eq!(
            (w.method.as_str(), w.path.as_str()),
            ("PATCH", path("virtualservices", "checkout").as_str())
        );
        assert!(w.query.contains("fieldManager=homeostat") && w.query.contains("force=true"));
    }
    assert_eq!(mesh[0].body, vs(90, 10, None));
    assert_eq!(
        mesh[1].body,
        vs(90, 10, Some(json!({"attempts": 0, "retryOn": retry_on})))
    );
    // Its second page alert: recorded, its changes held by the cooldown, nothing applied.
    let recs = records("checkout");
    let (first, second) = if recs[0]["applied"].is_array() {
        (&recs[0], &recs[1])
    } else {
        (&recs[1], &recs[0])
    };
    assert_eq!(
        first["applied"].as_array().map(Vec::len),
        Some(2),
        "{first}"
    );
    assert!(second["applied"].is_null(), "{second}");
    let held = second["recommendations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!held.is_empty(), "{second}");
    assert!(
        held.iter()
            .all(|r| r["heldBy"].as_str().is_some_and(|h| h.contains("cooldown"))),
        "{held:?}"
    );
    // cart, DryRun: both records recommend both changes; no write to its mesh objects above.
    for r in records("cart") {
        assert_eq!(r["mode"], "DryRun");
        let knobs: Vec<&str> = r["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["knob"].as_str().unwrap())
            .collect();
        assert_eq!(knobs, ["weights", "retries"], "{r}");
        assert!(r["applied"].is_null());
    }

    // A replayed delivery (the first one answered 200, sent again verbatim) acts no further.
    let body = delivered.lock().unwrap()[0].clone();
    let before = api.writes().len();
    let req = axum::extract::Request::post("/alertmanager")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(replay, req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = serde_json::from_slice(
        &axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    let outcomes = answer["outcomes"].as_array().unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| o["outcome"] == "duplicate" || o["outcome"] == "unmatched"),
        "{answer}"
    );
    assert!(
        outcomes.iter().any(|o| o["outcome"] == "duplicate"),
        "{answer}"
    );
    assert_eq!(api.writes().len(), before, "the replay wrote something");
}
