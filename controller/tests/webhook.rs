//! The Alertmanager webhook, through its HTTP route and its in-memory seams: matching,
//! idempotency, resolve, guardrails on a burst, DryRun, and the security checks (token, size,
//! malformed payloads, leadership, a flood) — each rejected request leaving no trace.
//!
//! The policy used throughout governs `checkout` in namespace `shop`, subsets stable (70%) and
//! canary (30%), Istio's default 2 retries, `maxStepPercent` 20, cooldown 2m:
//! * `SubsetErrorRatioOutlier` → shiftToStable: canary 30 − 20 = 10, stable 70 + 20 = 90;
//! * `ErrorBudgetBurn{severity="page"}` → shiftToStable and disableRetries (attempts 2 → 0).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use homeostat::webhook::{
    BearerToken, FixedObservations, InMemoryDirectory, InMemorySink, KnownPolicy, Leadership,
    Outcome, PolicyKey, Remediator, Webhook, payload, router,
};
use homeostat_models::governor::{
    Governor, Hold, Knob, KnobValue, MeshConfig, Observation, OutlierConfig, RetryConfig, Signals,
};
use homeostat_models::policy::PolicySpec;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tower::ServiceExt;

const TOKEN: &str = "t0ken-from-a-secret";
const T0: i64 = 1_800_000_000;

fn spec(service: &str, mode: &str) -> PolicySpec {
    let yaml = format!(
        "mode: {mode}
target: {{service: {service}, subsets: [stable, canary]}}
remediation:
  - onAlert: {{alertname: SubsetErrorRatioOutlier}}
    actions: [shiftToStable]
  - onAlert: {{alertname: ErrorBudgetBurn, labels: {{severity: page}}}}
    actions: [shiftToStable, disableRetries]
  - onAlert: {{alertname: HomeostatTelemetryUnavailable}}
    actions: [freeze]
"
    );
    let spec: PolicySpec = serde_yaml::from_str(&yaml).expect("policy");
    spec.validate().expect("valid policy");
    spec
}

fn config() -> MeshConfig {
    MeshConfig {
        route_timeout: None,
        weights: [("stable".to_string(), 70), ("canary".to_string(), 30)].into(),
        outlier_detection: OutlierConfig::default(),
        retries: RetryConfig::default(),
        hpa: None,
    }
}

fn policy(ns: &str, name: &str, service: &str, mode: &str) -> (KnownPolicy, MeshConfig) {
    (
        KnownPolicy {
            key: PolicyKey {
                namespace: ns.into(),
                name: name.into(),
            },
            spec: spec(service, mode),
        },
        config(),
    )
}

type Hook = Webhook<InMemoryDirectory, FixedObservations, InMemorySink>;

struct App {
    hook: Arc<Hook>,
    governor: Arc<Mutex<Governor>>,
    clock: Arc<AtomicI64>,
}

impl App {
    /// shop/checkout (mode as given), shop/cart and other/checkout (DryRun), no telemetry.
    fn new(mode: &str) -> Self {
        Self::with(mode, InMemorySink::new())
    }

    fn with(mode: &str, sink: InMemorySink) -> Self {
        let directory = InMemoryDirectory::new(vec![
            policy("shop", "checkout", "checkout", mode),
            policy("shop", "cart", "cart", "DryRun"),
            policy("other", "checkout", "checkout", "DryRun"),
        ]);
        let governor = Arc::new(Mutex::new(Governor::new()));
        let clock = Arc::new(AtomicI64::new(T0));
        let c = clock.clone();
        let remediator = Remediator::new(
            directory,
            FixedObservations::default(),
            sink,
            governor.clone(),
            Arc::new(move || c.load(Ordering::SeqCst)),
        );
        let hook = Arc::new(Webhook {
            remediator,
            token: BearerToken::new(TOKEN).expect("token"),
            leadership: Leadership::new(true),
            max_body_bytes: 64 * 1024,
        });
        Self {
            hook,
            governor,
            clock,
        }
    }

    fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    fn log(&self) -> homeostat::webhook::SinkLog {
        self.hook.remediator.sink().log()
    }

    async fn post(&self, auth: Option<&str>, body: impl Into<Body>) -> (StatusCode, Value) {
        let mut req = Request::post("/alertmanager").header("content-type", "application/json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = router(self.hook.clone())
            .oneshot(req.body(body.into()).expect("request"))
            .await
            .expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v)
    }

    async fn send(&self, body: String) -> (StatusCode, Value) {
        self.post(Some(&format!("Bearer {TOKEN}")), body).await
    }
}

type Labels<'a> = &'a [(&'a str, &'a str)];

/// A version 4 payload; each alert is (status, labels, fingerprint, startsAt).
fn payload(alerts: &[(&str, Labels<'_>, &str, &str)]) -> String {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(status, labels, fp, starts)| {
            let labels: serde_json::Map<String, Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            json!({"status": status, "labels": labels, "annotations": {},
                   "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
                   "generatorURL": "http://prometheus:9090/graph", "fingerprint": fp})
        })
        .collect();
    json!({"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
           "receiver": "homeostat", "groupLabels": {}, "commonLabels": {},
           "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": alerts})
    .to_string()
}

const OUTLIER: &[(&str, &str)] = &[
    ("alertname", "SubsetErrorRatioOutlier"),
    ("service", "checkout"),
    ("namespace", "shop"),
    ("subset", "canary"),
];
const BURN_PAGE: &[(&str, &str)] = &[
    ("alertname", "ErrorBudgetBurn"),
    ("service", "checkout"),
    ("namespace", "shop"),
    ("severity", "page"),
];
const STARTS: &str = "2027-01-15T08:00:00Z";

fn weights(stable: u32, canary: u32) -> KnobValue {
    KnobValue::Weights(
        [
            ("stable".to_string(), stable),
            ("canary".to_string(), canary),
        ]
        .into(),
    )
}

fn outcomes(v: &Value) -> Vec<(String, String)> {
    v["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| {
            let p = &o["policy"];
            let key = if p.is_null() {
                String::new()
            } else {
                format!(
                    "{}/{}",
                    p["namespace"].as_str().unwrap(),
                    p["name"].as_str().unwrap()
                )
            };
            (o["outcome"].as_str().unwrap().to_string(), key)
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[tokio::test]
async fn an_alert_reaches_only_the_policy_its_labels_target() {
    let app = App::new("Enforce");
    let (status, v) = app
        .send(payload(&[("firing", OUTLIER, "fp-outlier", STARTS)]))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // shop/cart targets another service, other/checkout another namespace.
    assert_eq!(outcomes(&v), [pair("remediated", "shop/checkout")]);
    let log = app.log();
    assert_eq!(log.applied.len(), 1);
    let (key, change) = &log.applied[0];
    assert_eq!(key.to_string(), "shop/checkout");
    assert_eq!(change.knob, Knob::Weights);
    assert_eq!(change.current, weights(70, 30));
    assert_eq!(change.proposed, weights(90, 10));
    // Telemetry was unavailable (no observation): the Governor decided on the config alone.
    assert!(log.remediations[0].telemetry_error.is_some());
}

#[tokio::test]
async fn an_alert_without_service_labels_reaches_every_matching_policy() {
    let app = App::new("DryRun");
    // ErrorBudgetBurn without namespace/service: all three policies match its entry.
    let labels: &[(&str, &str)] = &[("alertname", "ErrorBudgetBurn"), ("severity", "page")];
    let (_, v) = app
        .send(payload(&[("firing", labels, "fp-all", STARTS)]))
        .await;
    assert_eq!(
        outcomes(&v),
        [
            pair("remediated", "shop/checkout"),
            pair("remediated", "shop/cart"),
            pair("remediated", "other/checkout")
        ]
    );
    // DryRun everywhere: 3 policies x (weights, retries) recommended, nothing applied.
    let log = app.log();
    assert_eq!(log.recommended.len(), 6);
    assert!(log.applied.is_empty());
}

#[tokio::test]
async fn on_alert_labels_must_match_and_unknown_alerts_do_nothing() {
    let app = App::new("Enforce");
    let ticket: &[(&str, &str)] = &[
        ("alertname", "ErrorBudgetBurn"),
        ("service", "checkout"),
        ("namespace", "shop"),
        ("severity", "ticket"),
    ];
    let unknown: &[(&str, &str)] = &[("alertname", "DiskFull"), ("service", "checkout")];
    let (_, v) = app
        .send(payload(&[
            ("firing", ticket, "fp-ticket", STARTS),
            ("firing", unknown, "fp-disk", STARTS),
        ]))
        .await;
    assert_eq!(outcomes(&v), [pair("unmatched", ""), pair("unmatched", "")]);
    let log = app.log();
    assert!(log.remediations.is_empty() && log.handled.is_empty());

    // The page-severity entry: both of its actions, as two changes.
    let (_, v) = app
        .send(payload(&[("firing", BURN_PAGE, "fp-page", STARTS)]))
        .await;
    assert_eq!(outcomes(&v), [pair("remediated", "shop/checkout")]);
    let log = app.log();
    let knobs: Vec<Knob> = log.applied.iter().map(|(_, c)| c.knob).collect();
    assert_eq!(knobs, [Knob::Weights, Knob::Retries]);
    let KnobValue::Retries(r) = &log.applied[1].1.proposed else {
        panic!("retries")
    };
    assert_eq!(r.attempts, 0);
}

#[tokio::test]
async fn the_same_occurrence_acts_once_even_when_delivered_concurrently() {
    let app = Arc::new(App::new("Enforce"));
    let body = payload(&[("firing", OUTLIER, "fp-1", STARTS)]);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, body) = (app.clone(), body.clone());
        tasks.push(tokio::spawn(async move { app.send(body).await }));
    }
    let mut remediated = 0;
    let mut duplicate = 0;
    for t in tasks {
        let (status, v) = t.await.expect("task");
        assert_eq!(status, StatusCode::OK);
        match outcomes(&v)[0].0.as_str() {
            "remediated" => remediated += 1,
            "duplicate" => duplicate += 1,
            o => panic!("unexpected {o}"),
        }
    }
    assert_eq!((remediated, duplicate), (1, 15));
    assert_eq!(app.log().applied.len(), 1);
    assert_eq!(app.log().remediations.len(), 1);

    // Alertmanager's repeat_interval resend, minutes later: still the same occurrence.
    app.advance(600);
    let (_, v) = app.send(body).await;
    assert_eq!(outcomes(&v), [pair("duplicate", "shop/checkout")]);
    assert_eq!(app.log().applied.len(), 1);
}

#[tokio::test]
async fn a_burst_of_distinct_alerts_is_held_by_the_cooldown() {
    let app = App::new("Enforce");
    // Ten different outlier alerts (e.g. one per pod) within ten seconds.
    for i in 0..10 {
        let fp = format!("fp-burst-{i}");
        let (status, _) = app.send(payload(&[("firing", OUTLIER, &fp, STARTS)])).await;
        assert_eq!(status, StatusCode::OK);
        app.advance(1);
    }
    let log = app.log();
    assert_eq!(log.remediations.len(), 10);
    // The first moves weights; the Governor was told (Governor::applied), so the next nine are
    // held by the 2m cooldown: 120 s − 1..9 s since the change.
    assert_eq!(log.applied.len(), 1);
    for (i, r) in log.remediations.iter().enumerate().skip(1) {
        assert!(r.decision.plan.changes.is_empty());
        assert_eq!(
            r.decision.plan.held[0].held_by,
            Some(Hold::Cooldown {
                remaining_seconds: 120 - i as i64
            })
        );
    }
    assert_eq!(log.remediations_total.get("held"), Some(&9));
    // Past the cooldown a new occurrence acts again.
    app.advance(120);
    app.send(payload(&[("firing", OUTLIER, "fp-later", STARTS)]))
        .await;
    assert_eq!(app.log().applied.len(), 2);
}

#[tokio::test]
async fn a_freeze_holds_later_remediations() {
    let app = App::new("Enforce");
    let telemetry: &[(&str, &str)] = &[
        ("alertname", "HomeostatTelemetryUnavailable"),
        ("namespace", "shop"),
        ("service", "checkout"),
    ];
    app.send(payload(&[("firing", telemetry, "fp-tele", STARTS)]))
        .await;
    app.advance(60);
    app.send(payload(&[("firing", OUTLIER, "fp-o", STARTS)]))
        .await;
    let log = app.log();
    assert!(log.applied.is_empty());
    // Frozen for freezeDuration (30m) from T0.
    assert_eq!(
        log.remediations[1].decision.plan.held[0].held_by,
        Some(Hold::Freeze {
            until: Some(T0 + 1800)
        })
    );
}

#[tokio::test]
async fn dry_run_recommends_and_applies_nothing() {
    let app = App::new("DryRun");
    let (_, v) = app
        .send(payload(&[("firing", BURN_PAGE, "fp-d", STARTS)]))
        .await;
    assert_eq!(v["outcomes"][0]["mode"], "DryRun");
    assert_eq!(v["outcomes"][0]["applied"], 0);
    let log = app.log();
    assert_eq!(log.recommended.len(), 2);
    assert!(log.applied.is_empty());
    assert_eq!(log.remediations_total.get("recommended"), Some(&2));
    // Nothing was applied, so the Governor started no cooldown: a second occurrence recommends
    // the same again.
    app.send(payload(&[("firing", BURN_PAGE, "fp-d2", STARTS)]))
        .await;
    assert_eq!(app.log().recommended.len(), 4);
}

#[tokio::test]
async fn a_failed_change_is_reported_and_not_told_to_the_governor() {
    let app = App::with("Enforce", InMemorySink::failing(&[Knob::Weights]));
    let (_, v) = app
        .send(payload(&[("firing", BURN_PAGE, "fp-f", STARTS)]))
        .await;
    assert_eq!(v["outcomes"][0]["applied"], 1);
    assert_eq!(v["outcomes"][0]["failed"], 1);
    let log = app.log();
    assert_eq!(log.failed.len(), 1);
    assert_eq!(log.remediations_total.get("failed"), Some(&1));
    // Weights never changed, so no cooldown holds the next try; retries did and are held.
    app.advance(5);
    app.send(payload(&[("firing", BURN_PAGE, "fp-f2", STARTS)]))
        .await;
    let plan = &app.log().remediations[1].decision.plan;
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].knob, Knob::Weights);
    assert_eq!(plan.held[0].knob, Knob::Retries);
}

/// Healthy telemetry for the loop: 40 points at 15 s, 50 req/s, no errors.
fn healthy(now: i64, config: MeshConfig) -> Observation {
    Observation {
        service: "checkout".into(),
        end: now,
        step_seconds: 15,
        service_signals: Signals {
            request_rate: vec![50.0; 40],
            success_rate: vec![1.0; 40],
            latency_p99: vec![0.05; 40],
            ..Signals::default()
        },
        callers: Default::default(),
        subsets: Vec::new(),
        endpoints: Vec::new(),
        config,
        pod_startup: None,
    }
}

#[tokio::test]
async fn resolve_is_recorded_and_the_governors_loop_restores_retries() {
    let app = App::new("Enforce");
    let firing = payload(&[("firing", BURN_PAGE, "fp-r", STARTS)]);
    app.send(firing).await;
    app.advance(60);
    let (_, v) = app
        .send(payload(&[("resolved", BURN_PAGE, "fp-r", STARTS)]))
        .await;
    assert_eq!(outcomes(&v), [pair("resolved", "shop/checkout")]);
    let log = app.log();
    // Recorded with its time; the webhook decided no revert (nothing new handed over).
    assert_eq!(log.handled.values().collect::<Vec<_>>(), [&Some(T0 + 60)]);
    assert_eq!(log.remediations.len(), 1);
    // A resolve for an occurrence never acted on leaves no trace.
    app.send(payload(&[("resolved", BURN_PAGE, "fp-never", STARTS)]))
        .await;
    assert_eq!(app.log().handled.len(), 1);

    // The revert is the loop's: with retries at 0 (as applied) and clean telemetry, relaxing
    // needs 3 runs in a row (hysteresis) and the 2m cooldown since T0. Runs at T0+75, +90: held
    // by hysteresis (1 of 3, 2 of 3); at T0+105 the streak is 3 but the cooldown has 15 s left;
    // at T0+120 it passes: 2 retries, as before the alert.
    let spec = spec("checkout", "Enforce");
    let mut cfg = config();
    cfg.retries.attempts = 0;
    cfg.weights = [("stable".to_string(), 90), ("canary".to_string(), 10)].into();
    let mut g = app.governor.lock().await;
    let mut holds = Vec::new();
    for t in [75, 90, 105, 120] {
        let d = g.step(T0 + t, &healthy(T0 + t, cfg.clone()), &spec);
        let retry = |c: &&homeostat_models::governor::Change| c.knob == Knob::Retries;
        if let Some(c) = d.plan.changes.iter().find(retry) {
            let KnobValue::Retries(r) = &c.proposed else {
                panic!()
            };
            holds.push(format!("restore {}", r.attempts));
        } else if let Some(c) = d.plan.held.iter().find(retry) {
            holds.push(format!("{:?}", c.held_by.as_ref().unwrap()));
        }
    }
    assert_eq!(
        holds,
        [
            "Hysteresis { seen: 1, needed: 3 }",
            "Hysteresis { seen: 2, needed: 3 }",
            "Cooldown { remaining_seconds: 15 }",
            "restore 2"
        ]
    );
}

#[tokio::test]
async fn wrong_or_missing_token_is_401_and_leaves_no_trace() {
    let app = App::new("Enforce");
    let body = payload(&[("firing", OUTLIER, "fp-x", STARTS)]);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(&format!("Bearer {TOKEN}x")[..]),
        Some(&format!("Basic {TOKEN}")[..]),
        Some(TOKEN),
    ] {
        let (status, v) = app.post(auth, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(v["error"], "missing or wrong bearer token");
    }
    // An oversized body without a token is refused for the token, before it is read.
    let (status, _) = app.post(None, vec![b' '; 1 << 20]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(app.log().handled.is_empty() && app.log().remediations.is_empty());
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = App::new("Enforce");
    // 64 KiB limit: a valid payload padded with an annotation of 70 000 characters.
    let mut v: Value =
        serde_json::from_str(&payload(&[("firing", OUTLIER, "fp-big", STARTS)])).unwrap();
    v["alerts"][0]["annotations"]["description"] = json!("x".repeat(70_000));
    let (status, _) = app.send(v.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(app.log().remediations.is_empty());
}

#[tokio::test]
async fn a_malformed_payload_is_400_naming_the_field() {
    let app = App::new("Enforce");
    let good = payload(&[("firing", OUTLIER, "fp-m", STARTS)]);
    let cases = [
        ("not json".to_string(), "."),
        (
            good.replace(r#""version":"4""#, r#""version":"3""#),
            "version",
        ),
        (
            good.replace("SubsetErrorRatioOutlier", ""),
            "alerts[0].labels.alertname",
        ),
        (good.replace(STARTS, "soon"), "alerts[0].startsAt"),
        // serde_json writes keys in order: the group's status has a comma after it, the alert's
        // closes its object.
        (
            good.replace(r#""status":"firing","#, r#""status":"on fire","#),
            "status",
        ),
        (
            good.replace(r#""status":"firing"}"#, r#""status":"on fire"}"#),
            "alerts[0].status",
        ),
        (
            good.replace(r#""alerts":["#, r#""alerts":[1,"#),
            "alerts[0]",
        ),
    ];
    for (body, field) in cases {
        assert_ne!(body, good, "case {field} did not change the payload");
        let (status, v) = app.send(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(v["field"], field, "{v}");
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
    assert!(app.log().handled.is_empty());
}

#[tokio::test]
async fn a_replica_that_is_not_the_leader_answers_503_so_alertmanager_retries() {
    let app = App::new("Enforce");
    app.hook.leadership.set(false);
    let body = payload(&[("firing", OUTLIER, "fp-l", STARTS)]);
    let (status, _) = app.send(body.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(app.log().remediations.is_empty());
    // The retry, once this replica leads, acts.
    app.hook.leadership.set(true);
    let (status, v) = app.send(body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcomes(&v), [pair("remediated", "shop/checkout")]);
}

#[tokio::test]
async fn a_flood_of_bad_and_replayed_requests_acts_once() {
    let app = Arc::new(App::new("Enforce"));
    let good = payload(&[("firing", OUTLIER, "fp-flood", STARTS)]);
    let mut tasks = Vec::new();
    // 200 requests: a quarter each with no token, malformed, oversized, and the same alert.
    for i in 0..200 {
        let (app, good) = (app.clone(), good.clone());
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                0 => (app.post(None, good).await.0, StatusCode::UNAUTHORIZED),
                1 => (
                    app.send("{\"version\":".into()).await.0,
                    StatusCode::BAD_REQUEST,
                ),
                2 => (
                    app.send(" ".repeat(70_000)).await.0,
                    StatusCode::PAYLOAD_TOO_LARGE,
                ),
                _ => (app.send(good).await.0, StatusCode::OK),
            }
        }));
    }
    for t in tasks {
        let (got, want) = t.await.expect("task");
        assert_eq!(got, want);
    }
    let log = app.log();
    assert_eq!(log.remediations.len(), 1);
    assert_eq!(log.applied.len(), 1);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Arbitrary bytes never panic the parser.
    #[test]
    fn the_parser_never_panics_on_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = payload::parse(&body);
    }

    /// Nor does a valid payload with one byte changed, or cut short.
    #[test]
    fn the_parser_never_panics_on_mutated_payloads(at in 0usize..1000, byte in proptest::prelude::any::<u8>(), cut in proptest::prelude::any::<bool>()) {
        let mut body = payload(&[("firing", OUTLIER, "fp-p", STARTS), ("resolved", BURN_PAGE, "fp-q", STARTS)]).into_bytes();
        let at = at % body.len();
        if cut { body.truncate(at) } else { body[at] = byte }
        if let Ok(p) = payload::parse(&body) {
            // Whatever parses is valid: every alert has a name and a parseable start.
            for a in &p.alerts {
                proptest::prop_assert!(!a.alertname().is_empty());
                proptest::prop_assert!(chrono::DateTime::parse_from_rfc3339(&a.starts_at).is_ok());
            }
        }
    }
}

#[test]
fn every_outcome_serialises_with_its_tag() {
    let o = Outcome::Unmatched {
        alertname: "X".into(),
        fingerprint: "f".into(),
    };
    assert_eq!(
        serde_json::to_value(&o).unwrap(),
        json!({"outcome": "unmatched", "alertname": "X", "fingerprint": "f"})
    );
}

/// Sends one raw HTTP/1.1 request over `io` and reads the whole answer.
async fn raw_http<S>(mut io: S, body: &str) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!(
        "POST /alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if io.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    let _ = io.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn with_a_certificate_the_webhook_speaks_tls_only() {
    // A self-signed certificate for 127.0.0.1, as a mounted kubernetes.io/tls Secret would hold.
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    assert!(homeostat::webhook::server_config(&cert, &dir.path().join("missing.key")).is_err());
    let config = homeostat::webhook::server_config(&cert, &key).expect("server config");

    let app = App::new("Enforce");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = homeostat::webhook::TlsListener::new(tcp, config).unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let served = router(app.hook.clone());
    tokio::spawn(async move { axum::serve(listener, served).await });

    // Plain HTTP to the TLS port gets no HTTP answer and leaves no trace.
    let body = payload(&[("firing", OUTLIER, "fp-tls", STARTS)]);
    let plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    let answer = raw_http(plain, &body).await;
    assert!(!answer.starts_with("HTTP/1.1"), "{answer}");
    assert!(app.log().remediations.is_empty());

    // A client trusting the certificate is served.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let answer = raw_http(tls, &body).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""outcome":"remediated""#), "{answer}");
    assert_eq!(app.log().applied.len(), 1);
}
