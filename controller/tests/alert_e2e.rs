//! End to end with the real parts: a real Prometheus (Debian's `prometheus`) scrapes Istio-shaped
//! metrics from a fake mesh exporter and evaluates the shipped `rules/`; a real Alertmanager
//! (Debian's `prometheus-alertmanager`), configured from `deploy/alertmanager/alertmanager.yml`,
//! routes the alerts to homeostat's webhook on loopback, over TLS, with the bearer token; the
//! webhook asks
//! the Governor, and the in-memory sink records the remediation.
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
//!   2 → 0, applied once; the second page alert is held by the 2m cooldown — two changes applied
//!   in all, however often Alertmanager delivers;
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

use homeostat::webhook::{
    BearerToken, FixedObservations, InMemoryDirectory, InMemorySink, KnownPolicy, Leadership,
    PolicyKey, Remediator, TlsListener, Webhook, router, server_config, system_clock,
};
use homeostat_models::governor::{
    Governor, Hold, Knob, KnobValue, MeshConfig, OutlierConfig, RetryConfig,
};
use homeostat_models::policy::PolicySpec;

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

fn policy(service: &str, mode: &str) -> (KnownPolicy, MeshConfig) {
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
    let config = MeshConfig {
        route_timeout: None,
        weights: [("stable".to_string(), 70), ("canary".to_string(), 30)].into(),
        outlier_detection: OutlierConfig::default(),
        retries: RetryConfig::default(),
        hpa: None,
    };
    let key = PolicyKey {
        namespace: "shop".into(),
        name: service.into(),
    };
    (KnownPolicy { key, spec }, config)
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

    // homeostat's webhook with in-memory seams.
    let directory = InMemoryDirectory::new(vec![
        policy("checkout", "Enforce"),
        policy("cart", "DryRun"),
        policy("payments", "DryRun"),
    ]);
    let hook = Arc::new(Webhook {
        remediator: Remediator::new(
            directory,
            FixedObservations::default(),
            InMemorySink::new(),
            Arc::new(tokio::sync::Mutex::new(Governor::new())),
            system_clock(),
        ),
        token: BearerToken::new(TOKEN).unwrap(),
        // Not the leader at first: the alerts must not be lost (see below).
        leadership: Leadership::new(false),
        max_body_bytes: homeostat::webhook::DEFAULT_MAX_BODY_BYTES,
    });
    // Served over TLS with a certificate for 127.0.0.1, which Alertmanager is told to trust.
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    std::fs::write(d.join("tls.crt"), ck.cert.pem()).unwrap();
    std::fs::write(d.join("tls.key"), ck.signing_key.serialize_pem()).unwrap();
    let tls = server_config(&d.join("tls.crt"), &d.join("tls.key")).expect("tls");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr: SocketAddr = tcp.local_addr().unwrap();
    let hook_listener = TlsListener::new(tcp, tls).unwrap();
    let app = router(hook.clone());
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
    assert!(hook.remediator.sink().log().remediations.is_empty());
    hook.leadership.set(true);

    // Wait for both remediations (at most 90 s), then 5 s more for any redelivery.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let log = hook.remediator.sink().log();
        let policies: std::collections::BTreeSet<String> = log
            .remediations
            .iter()
            .map(|r| r.policy.name.clone())
            .collect();
        let page_alerts = log.remediations.len();
        if policies.len() == 2 && page_alerts >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no remediation after 90 s: {:?}\n--- prometheus ---\n{}\n--- alertmanager ---\n{}",
            log.remediations,
            prom.log(),
            am.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let log = hook.remediator.sink().log();

    // Only page alerts, only for the burning services: 2 per service, each acted on once.
    let mut seen: Vec<(String, String)> = log
        .remediations
        .iter()
        .map(|r| (r.policy.name.clone(), r.labels["long_window"].clone()))
        .collect();
    seen.sort();
    let want: Vec<(String, String)> = [
        ("cart", "1h"),
        ("cart", "6h"),
        ("checkout", "1h"),
        ("checkout", "6h"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, want);
    for r in &log.remediations {
        assert_eq!(r.labels["severity"], "page");
        assert_eq!(r.labels["namespace"], "shop");
    }

    // checkout, Enforce: weights and retries applied once; the other page alert held.
    let applied: Vec<(String, Knob, KnobValue)> = log
        .applied
        .iter()
        .map(|(p, c)| (p.name.clone(), c.knob, c.proposed.clone()))
        .collect();
    let KnobValue::Retries(no_retries) = &applied
        .iter()
        .find(|a| a.1 == Knob::Retries)
        .expect("retries applied")
        .2
    else {
        panic!("retries")
    };
    assert_eq!(no_retries.attempts, 0);
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert!(applied.iter().all(|a| a.0 == "checkout"));
    assert!(applied.contains(&(
        "checkout".to_string(),
        Knob::Weights,
        KnobValue::Weights([("stable".to_string(), 90), ("canary".to_string(), 10)].into())
    )));
    let held: Vec<&Option<Hold>> = log
        .remediations
        .iter()
        .filter(|r| r.policy.name == "checkout")
        .flat_map(|r| r.decision.plan.held.iter().map(|c| &c.held_by))
        .collect();
    assert_eq!(
        held.len(),
        2,
        "the second page alert's two changes: {held:?}"
    );
    assert!(
        held.iter()
            .all(|h| matches!(h, Some(Hold::Cooldown { .. })))
    );

    // cart, DryRun: both page alerts recommend both changes; nothing applied.
    let cart: Vec<Knob> = log
        .recommended
        .iter()
        .filter(|(p, _)| p.name == "cart")
        .map(|(_, c)| c.knob)
        .collect();
    assert_eq!(cart.len(), 4, "{cart:?}");
    assert!(log.remediations.iter().all(|r| r.policy.name != "payments"));
}
