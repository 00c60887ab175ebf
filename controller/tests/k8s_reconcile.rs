//! The reconciler against a mock API server (ApiServerVerifier): every request's method, path,
//! query and body is asserted, in order; a request never made, or one not expected, fails.
//!
//! The Governor is the real one. The scenario is the models' failing canary (documented in
//! `models/tests/governor_scenarios/common.rs`): stable 80 req/s healthy, canary 20 req/s with 10 %
//! errors in the newest points. With weights 70/30 and `maxStepPercent: 20`, the cut is
//! 30 − 20 = 10: stable 90, canary 10. Other knobs are disabled so the plan holds one change.

mod k8s_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

use homeostat::crd::{AdaptivePolicy, AdaptivePolicySpec, AdaptivePolicyStatus, AppliedChange};
use homeostat::http::Metrics;
use homeostat::reconcile::{self, Context};
use homeostat::telemetry::{ObservationSource, ObserveRequest, TelemetryError};
use homeostat_models::governor::{
    MeshConfig, Observation, OutlierConfig, RetryConfig, Signals, SubsetObservation,
};
use homeostat_models::policy::{Duration, PolicySpec};
use k8s_support::{Log, Step, verify};

const NS: &str = "shop";
const T: i64 = 1_700_000_000;
/// `T` as Kubernetes writes it.
const T_RFC3339: &str = "2023-11-14T22:13:20Z";
const POLICY: &str =
    "/apis/homeostat.dev/v1alpha1/namespaces/shop/adaptivepolicies/checkout-policy";
const DR: &str = "/apis/networking.istio.io/v1/namespaces/shop/destinationrules/checkout";
const VS: &str = "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/checkout";
const HPA: &str = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/checkout";

fn spec(mode: &str, extra: &str) -> PolicySpec {
    let yaml = format!(
        r#"
mode: {mode}
target: {{service: checkout, subsets: [stable, canary]}}
controls:
  loadBalancing: {{maxStepPercent: 20}}
  outlierDetection: {{enabled: false}}
  retries: {{enabled: false}}
  autoscaling: {{enabled: false}}
{extra}
"#
    );
    serde_yaml::from_str(&yaml).expect("test policy")
}

fn policy(
    spec: PolicySpec,
    finalizer: bool,
    status: Option<AdaptivePolicyStatus>,
) -> AdaptivePolicy {
    let mut p = AdaptivePolicy::new("checkout-policy", AdaptivePolicySpec(spec));
    p.metadata.namespace = Some(NS.into());
    p.metadata.uid = Some("0b5c-uid".into());
    p.metadata.generation = Some(3);
    if finalizer {
        p.metadata.finalizers = Some(vec!["homeostat.dev/revert".into()]);
    }
    p.status = status;
    p
}

fn live_dr() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "checkout", "namespace": NS},
        "spec": {
            "host": "checkout",
            "subsets": [{"name": "stable", "labels": {"version": "v1"}}, {"name": "canary", "labels": {"version": "v2"}}],
            // A person's field: homeostat must never send it.
            "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 100}}}
        }
    })
}

/// A header route for testers, then the default route (the governed one) at `stable`/`canary`.
fn http_routes(stable: u32, canary: u32, retries: Option<Value>) -> Value {
    let mut default = json!({
        "name": "default",
        "route": [
            {"destination": {"host": "checkout", "subset": "stable"}, "weight": stable},
            {"destination": {"host": "checkout", "subset": "canary"}, "weight": canary}
        ],
        "timeout": "5s"
    });
    if let Some(r) = retries {
        default["retries"] = r;
    }
    json!([
        {"name": "testers", "match": [{"headers": {"x-canary": {"exact": "1"}}}],
         "route": [{"destination": {"host": "checkout", "subset": "canary"}}]},
        default
    ])
}

fn live_vs(stable: u32, canary: u32, retries: Option<Value>) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "checkout", "namespace": NS},
        "spec": {"hosts": ["checkout"], "gateways": ["mesh"], "http": http_routes(stable, canary, retries)}
    })
}

fn vs_apply(stable: u32, canary: u32, retries: Option<Value>) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "checkout"},
        "spec": {"http": http_routes(stable, canary, retries)}
    })
}

const LEN: usize = 40;

fn signals(rps: f64, success: &[f64]) -> Signals {
    Signals {
        request_rate: vec![rps; success.len()],
        success_rate: success.to_vec(),
        latency_p50: vec![0.05; success.len()],
        latency_p90: vec![0.075; success.len()],
        latency_p99: vec![0.1; success.len()],
        utilization: vec![0.5; success.len()],
    }
}

/// The failing canary: the newest `bad` canary points at 90 % success.
fn canary_obs(config: MeshConfig, bad: usize) -> Observation {
    let stable = vec![0.9995; LEN];
    let mut canary = vec![0.9995; LEN];
    for s in canary.iter_mut().rev().take(bad) {
        *s = 0.90;
    }
    let service: Vec<f64> = stable
        .iter()
        .zip(&canary)
        .map(|(s, c)| (80.0 * s + 20.0 * c) / 100.0)
        .collect();
    Observation {
        service: "checkout".into(),
        end: T,
        step_seconds: 15,
        service_signals: signals(100.0, &service),
        callers: Default::default(),
        subsets: vec![
            SubsetObservation {
                name: "stable".into(),
                signals: signals(80.0, &stable),
            },
            SubsetObservation {
                name: "canary".into(),
                signals: signals(20.0, &canary),
            },
        ],
        endpoints: Vec::new(),
        config,
        pod_startup: Some(Duration::from_secs(120)),
    }
}

type Answer = dyn Fn(&ObserveRequest) -> Result<Observation, TelemetryError> + Send + Sync;

/// A telemetry source with a fixed answer, counting calls and keeping the last request.
#[derive(Clone)]
struct Fake {
    answer: Arc<Answer>,
    calls: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<ObserveRequest>>>,
}

impl Fake {
    fn new(
        f: impl Fn(&ObserveRequest) -> Result<Observation, TelemetryError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            answer: Arc::new(f),
            calls: Arc::default(),
            last: Arc::default(),
        }
    }
    /// The failing canary, on the configuration the reconciler read.
    fn canary() -> Self {
        Self::new(|req| Ok(canary_obs(req.config.clone(), 4)))
    }
}

impl ObservationSource for Fake {
    fn observe(
        &self,
        req: &ObserveRequest,
    ) -> impl std::future::Future<Output = Result<Observation, TelemetryError>> + Send {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some(req.clone());
        let answer = (self.answer)(req);
        async move { answer }
    }
}

/// Runs one reconcile of `policy` against the verifier's `steps`.
async fn run(
    policy: AdaptivePolicy,
    source: Fake,
    steps: Vec<Step>,
) -> (
    Result<kube::runtime::controller::Action, reconcile::Error>,
    Log,
) {
    run_counted(policy, source, steps, Arc::default()).await
}

/// `run`, counting into `metrics`.
async fn run_counted(
    policy: AdaptivePolicy,
    source: Fake,
    steps: Vec<Step>,
    metrics: Arc<Metrics>,
) -> (
    Result<kube::runtime::controller::Action, reconcile::Error>,
    Log,
) {
    run_beside(policy, Vec::new(), source, steps, metrics).await
}

/// `run_counted`, with `others` in the controller's store of policies beside `policy`.
async fn run_beside(
    policy: AdaptivePolicy,
    others: Vec<AdaptivePolicy>,
    source: Fake,
    steps: Vec<Step>,
    metrics: Arc<Metrics>,
) -> (
    Result<kube::runtime::controller::Action, reconcile::Error>,
    Log,
) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NS);
    let ctx = Arc::new(Context::new(
        client,
        source,
        metrics,
        Arc::new(|| T),
        Arc::new(AtomicBool::new(true)),
    ));
    let (store, mut writer) = kube::runtime::reflector::store();
    for o in [policy.clone()].into_iter().chain(others) {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(o));
    }
    ctx.watch_policies(store);
    let log: Log = Arc::default();
    let (res, ()) = tokio::join!(
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            reconcile::reconcile(Arc::new(policy), ctx)
        ),
        verify(&mut handle, steps, log.clone()),
    );
    (res.expect("reconcile finished"), log)
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// The five conditions, `on` True and every other False, observedGeneration 3.
fn assert_conditions(status: &Value, on: &[&str]) {
    for t in [
        "Ready",
        "Degraded",
        "Invalid",
        "TelemetryUnavailable",
        "InsufficientData",
    ] {
        let c = condition(status, t);
        let want = if on.contains(&t) { "True" } else { "False" };
        assert_eq!(c["status"], want, "{t} in {status}");
        assert_eq!(c["observedGeneration"], 3);
        assert_eq!(c["lastTransitionTime"], T_RFC3339);
    }
    assert_eq!(status["observedGeneration"], 3);
    assert_eq!(status["lastEvaluated"], T_RFC3339);
}

fn status_of(body: &Value) -> &Value {
    assert_eq!(body["apiVersion"], "homeostat.dev/v1alpha1");
    assert_eq!(body["kind"], "AdaptivePolicy");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(3),
        "status apply carries only apiVersion, kind, status: {body}"
    );
    &body["status"]
}

fn answer(p: &AdaptivePolicy) -> Value {
    serde_json::to_value(p).unwrap()
}

fn weights(stable: u32, canary: u32) -> Value {
    json!({"weights": {"canary": canary, "stable": stable}})
}

// ---- scenarios (each returns the request log for the RBAC test) ----

async fn finalizer_added() -> Log {
    let p = policy(spec("Enforce", ""), false, None);
    let source = Fake::canary();
    let mut with = p.clone();
    with.metadata.finalizers = Some(vec!["homeostat.dev/revert".into()]);
    let steps = vec![Step {
        method: "PATCH",
        path: POLICY.into(),
        query: &[],
        body: k8s_support::Expect::Json(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["homeostat.dev/revert"]}
        ])),
        status: 200,
        answer: Some(answer(&with)),
    }];
    let (res, log) = run(p, source.clone(), steps).await;
    res.expect("ok");
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        0,
        "no telemetry before the finalizer is in place"
    );
    log
}

async fn enforce_cuts_the_canary() -> Log {
    let p = policy(spec("Enforce", ""), true, None);
    let source = Fake::canary();
    let ans = answer(&p);
    let steps = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
        Step::apply(VS, vs_apply(90, 10, None), None),
        Step::event(
            NS,
            "Normal",
            "Applied",
            &["weights", "\"canary\":30", "\"canary\":10"],
        ),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| {
                let s = status_of(b);
                assert_eq!(s["phase"], "Ready");
                assert_conditions(s, &["Ready"]);
                assert_eq!(s["lastChange"], T_RFC3339);
                let applied = s["appliedChanges"].as_array().expect("appliedChanges");
                assert_eq!(applied.len(), 1);
                let a = &applied[0];
                assert_eq!(a["knob"], "weights");
                assert_eq!(a["at"], T);
                assert_eq!(a["before"], weights(70, 30));
                assert_eq!(a["after"], weights(90, 10));
                assert_eq!(a["original"], weights(70, 30));
                assert_eq!(a["posture"], "protect");
                assert_eq!(a["origin"], "planner");
                let rec = s["recommendations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["knob"] == "weights")
                    .unwrap();
                assert_eq!(rec["applied"], true);
                assert_eq!(rec["current"], weights(70, 30));
                assert_eq!(rec["proposed"], weights(90, 10));
                assert!(rec["reason"].as_str().unwrap().contains("canary"), "{rec}");
                assert!(rec["confidence"].as_f64().unwrap() > 0.99);
                assert!(rec.get("heldBy").is_none());
                let findings = s["findings"].as_array().unwrap();
                assert!(
                    findings.iter().any(|f| f["kind"] == "anomaly"
                        && f["subject"].as_str().unwrap().contains("canary")),
                    "{findings:?}"
                );
            },
            ans,
        ),
    ];
    let metrics = Arc::new(Metrics::default());
    let (res, log) = run_counted(p, source.clone(), steps, metrics.clone()).await;
    res.expect("ok");
    let text = metrics.encode().unwrap();
    for line in [
        "homeostat_reconciles_total 1",
        "homeostat_decisions_total 1",
        r#"homeostat_changes_total{knob="weights",outcome="applied"} 1"#,
        "homeostat_telemetry_query_seconds_count 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // The Governor was given the configuration read from the VirtualService and the Istio
    // defaults for what the DestinationRule and routes do not set.
    let req = source.last.lock().unwrap().clone().expect("observed");
    assert_eq!(
        req.config.weights,
        [("canary".to_string(), 30), ("stable".to_string(), 70)].into()
    );
    assert_eq!(req.config.outlier_detection, OutlierConfig::default());
    assert_eq!(req.config.retries, RetryConfig::default());
    assert_eq!((req.end, req.namespace.as_str()), (T, NS));
    log
}

async fn dry_run_writes_nothing() -> Log {
    let p = policy(spec("DryRun", ""), true, None);
    let ans = answer(&p);
    let steps = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
        // No PATCH of the VirtualService: the verifier fails on any request not listed.
        Step::event(NS, "Normal", "Recommended", &["weights", "\"canary\":10"]),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| {
                let s = status_of(b);
                assert_eq!(s["phase"], "DryRun");
                assert_conditions(s, &["Ready"]);
                assert!(s.get("appliedChanges").is_none(), "nothing applied: {s}");
                assert!(s.get("lastChange").is_none());
                let rec = s["recommendations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["knob"] == "weights")
                    .unwrap();
                assert_eq!(rec["applied"], false);
                assert_eq!(rec["current"], weights(70, 30));
                assert_eq!(rec["proposed"], weights(90, 10));
            },
            ans,
        ),
    ];
    let metrics = Arc::new(Metrics::default());
    let (res, log) = run_counted(p, Fake::canary(), steps, metrics.clone()).await;
    res.expect("ok");
    let text = metrics.encode().unwrap();
    assert!(
        text.lines()
            .any(|l| l == r#"homeostat_changes_total{knob="weights",outcome="recommended"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"outcome="applied""#), "{text}");
    log
}

async fn telemetry_failure(err: TelemetryError, phase: &'static str) -> Log {
    let p = policy(spec("Enforce", ""), true, None);
    let ans = answer(&p);
    let e = err.clone();
    let steps = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
        Step::apply_with(
            format!("{POLICY}/status"),
            move |b| {
                let s = status_of(b);
                assert_eq!(s["phase"], phase);
                assert_conditions(s, &[phase]);
                assert!(
                    condition(s, phase)["message"]
                        .as_str()
                        .unwrap()
                        .contains("prometheus:9090")
                );
                assert!(s.get("recommendations").is_none() && s.get("appliedChanges").is_none());
            },
            ans,
        ),
    ];
    let (res, log) = run(p, Fake::new(move |_| Err(e.clone())), steps).await;
    res.expect("ok");
    log
}

async fn invalid_policy() -> Log {
    let bad = spec("Enforce", "guardrails: {maxChangesPerHour: 0}");
    let mut bad = bad;
    bad.controls.retries.max_attempts = Some(0);
    let p = policy(bad, true, None);
    let ans = answer(&p);
    let source = Fake::canary();
    let paths = [
        "spec.controls.retries.maxAttempts",
        "spec.guardrails.maxChangesPerHour",
    ];
    let steps = vec![
        Step::event(
            NS,
            "Warning",
            "InvalidPolicy",
            &[
                "spec.controls.retries.maxAttempts",
                "spec.guardrails.maxChangesPerHour",
            ],
        ),
        Step::apply_with(
            format!("{POLICY}/status"),
            move |b| {
                let s = status_of(b);
                assert_eq!(s["phase"], "Invalid");
                assert_conditions(s, &["Invalid"]);
                let msg = condition(s, "Invalid")["message"].as_str().unwrap();
                for p in paths {
                    assert!(msg.contains(p), "{msg:?} lacks {p}");
                }
            },
            ans,
        ),
    ];
    let (res, log) = run(p, source.clone(), steps).await;
    res.expect("ok");
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        0,
        "an invalid policy reads no telemetry"
    );
    log
}

/// Another policy in the namespace governs the same service (`checkout-scaling`, its HPA
/// only), and a third a different one: the reconcile writes an `AmbiguousTarget` Warning and
/// a `Degraded` status naming the one that shares, reads no telemetry and writes no mesh
/// object (no GET of the DestinationRule either: nothing is read that would be acted on).
/// Once that policy is being deleted it no longer counts, and the same reconcile goes on to
/// read the mesh as usual.
async fn ambiguous_target() -> Log {
    let p = policy(spec("Enforce", ""), true, None);
    let sibling = |name: &str, service: &str| {
        let mut s = PolicySpec::for_service(service);
        s.target.horizontal_pod_autoscaler = Some(service.to_string());
        let mut o = AdaptivePolicy::new(name, AdaptivePolicySpec(s));
        o.metadata.namespace = Some(NS.into());
        o
    };
    let ans = answer(&p);
    let source = Fake::canary();
    const MESSAGE: &str = "service checkout is also governed by policy checkout-scaling: two policies would each rewrite it, so neither acts until one of them is removed or retargeted";
    let steps = vec![
        Step::event(NS, "Warning", "AmbiguousTarget", &[MESSAGE]),
        Step::apply_with(
            format!("{POLICY}/status"),
            move |b| {
                let s = status_of(b);
                assert_eq!(s["phase"], "Degraded");
                assert_conditions(s, &["Degraded"]);
                let c = condition(s, "Degraded");
                assert_eq!(c["reason"], "AmbiguousTarget");
                assert_eq!(c["message"], MESSAGE);
            },
            ans,
        ),
    ];
    let others = vec![
        sibling("checkout-scaling", "checkout"),
        sibling("cart-policy", "cart"),
    ];
    let (res, log) = run_beside(p.clone(), others, source.clone(), steps, Arc::default()).await;
    res.expect("ok");
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        0,
        "a policy sharing its target reads no telemetry"
    );

    // The sibling being deleted: the policy goes on as usual, to its DestinationRule (missing
    // here, so it stops there, `Degraded` for that reason and no other).
    let mut leaving = sibling("checkout-scaling", "checkout");
    leaving.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::from_second(T).unwrap()));
    leaving.metadata.finalizers = Some(vec!["homeostat.dev/revert".into()]);
    let ans = answer(&p);
    let steps = vec![
        Step::get_missing(DR),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| {
                assert_eq!(
                    condition(status_of(b), "Degraded")["reason"],
                    "TargetNotFound"
                )
            },
            ans,
        ),
    ];
    let (res, _) = run_beside(p, vec![leaving], source, steps, Arc::default()).await;
    res.expect("ok");
    log
}

fn applied_weights(at: i64) -> AppliedChange {
    serde_json::from_value(json!({
        "knob": "weights", "at": at,
        "before": weights(70, 30), "after": weights(90, 10),
        "posture": "protect", "origin": "planner", "reason": "canary errors",
        "original": weights(70, 30)
    }))
    .unwrap()
}

/// 30 s after cutting 70/30 → 90/10, the canary is still failing. The Governor asks for
/// 90/10 → 100/0, but the 2 min cooldown (from status, across the restart) holds it.
async fn restart_does_not_repeat() -> Log {
    let status = AdaptivePolicyStatus {
        applied_changes: vec![applied_weights(T - 30)],
        ..Default::default()
    };
    let p = policy(spec("Enforce", ""), true, Some(status));
    let ans = answer(&p);
    let steps = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(90, 10, None)),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| {
                let s = status_of(b);
                assert_eq!(s["phase"], "Ready");
                let rec = s["recommendations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["knob"] == "weights")
                    .expect("weights held");
                assert_eq!(rec["applied"], false);
                assert_eq!(rec["proposed"], weights(100, 0));
                assert!(
                    rec["heldBy"]
                        .as_str()
                        .unwrap()
                        .starts_with("cooldown: 90s left"),
                    "{rec}"
                );
                // The memory is carried over unchanged.
                assert_eq!(s["appliedChanges"].as_array().unwrap().len(), 1);
                assert_eq!(s["appliedChanges"][0]["at"], T - 30);
            },
            ans,
        ),
    ];
    let (res, log) = run(p, Fake::canary(), steps).await;
    res.expect("ok");
    log
}

async fn target_missing() -> Log {
    let p = policy(spec("Enforce", ""), true, None);
    let ans = answer(&p);
    let source = Fake::canary();
    let steps = vec![
        Step::get_missing(DR),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| {
                let s = status_of(b);
                assert_eq!(s["phase"], "Degraded");
                assert_conditions(s, &["Degraded"]);
                assert_eq!(condition(s, "Degraded")["reason"], "TargetNotFound");
                assert!(
                    condition(s, "Degraded")["message"]
                        .as_str()
                        .unwrap()
                        .contains("DestinationRule shop/checkout not found")
                );
            },
            ans,
        ),
    ];
    let (res, log) = run(p, source.clone(), steps).await;
    res.expect("ok");
    assert_eq!(source.calls.load(Ordering::SeqCst), 0);
    log
}

/// Deleting a policy that changed every knob: each returns to the value found before homeostat
/// first changed it, a field that was unset is removed, then the finalizer goes.
async fn revert_on_deletion() -> Log {
    let mut sp = spec("Enforce", "");
    sp.target.horizontal_pod_autoscaler = Some("checkout".into());
    let change = |knob: &str, before: Value, after: Value, original: Value| -> AppliedChange {
        serde_json::from_value(json!({
            "knob": knob, "at": T - 600, "before": before, "after": after,
            "posture": "protect", "origin": "planner", "reason": "r", "original": original
        }))
        .unwrap()
    };
    let od = |n: u32, pct: u32| json!({"outlierDetection": {"consecutive5xxErrors": n, "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": pct}});
    let status = AdaptivePolicyStatus {
        applied_changes: vec![
            applied_weights(T - 900),
            change("weights", weights(90, 10), weights(100, 0), weights(70, 30)),
            change("outlierDetection", od(7, 20), od(3, 50), od(7, 20)),
            change(
                "retries",
                json!({"retries": {"attempts": 2, "perTryTimeout": "25s", "retryOn": "5xx"}}),
                json!({"retries": {"attempts": 0, "perTryTimeout": "2s", "retryOn": "5xx"}}),
                // The route set no retries before homeostat.
                json!({}),
            ),
            change(
                "autoscaling",
                json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 10, "targetUtilizationPercent": 70}}),
                json!({"autoscaling": {"minReplicas": 4, "maxReplicas": 10, "targetUtilizationPercent": 60}}),
                json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 10, "targetUtilizationPercent": 70}}),
            ),
        ],
        ..Default::default()
    };
    let mut p = policy(sp, true, Some(status));
    p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::from_second(T).unwrap()));
    let mut gone = p.clone();
    gone.metadata.finalizers = None;
    let mut dr_now = live_dr();
    dr_now["spec"]["trafficPolicy"]["outlierDetection"] = json!({"consecutive5xxErrors": 3, "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": 50});
    let memory = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}});
    let hpa_now = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "checkout", "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout"},
            "minReplicas": 4, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                memory
            ]
        },
        "status": {"currentReplicas": 4, "desiredReplicas": 4}
    });
    let steps = vec![
        Step::get(DR, dr_now),
        // Only the four owned fields: not host, subsets or the person's connectionPool.
        Step::apply(
            DR,
            json!({
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "checkout"},
                "spec": {"trafficPolicy": {"outlierDetection": {
                    "consecutive5xxErrors": 7, "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": 20
                }}}
            }),
            None,
        ),
        Step::get(
            VS,
            live_vs(
                100,
                0,
                Some(json!({"attempts": 0, "perTryTimeout": "2s", "retryOn": "5xx"})),
            ),
        ),
        // Weights back to 70/30 and `retries` removed; the testers route and timeout untouched.
        Step::apply(VS, vs_apply(70, 30, None), None),
        Step::get(HPA, hpa_now.clone()),
        Step::apply(
            HPA,
            json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "checkout"},
                "spec": {
                    "minReplicas": 2, "maxReplicas": 10,
                    "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                        memory
                    ]
                }
            }),
            Some(hpa_now),
        ),
        Step::event(
            NS,
            "Normal",
            "Reverted",
            &["outlierDetection, weights, retries, autoscaling"],
        ),
        Step {
            method: "PATCH",
            path: POLICY.into(),
            query: &[],
            body: k8s_support::Expect::Json(json!([
                {"op": "test", "path": "/metadata/finalizers/0", "value": "homeostat.dev/revert"},
                {"op": "remove", "path": "/metadata/finalizers/0"}
            ])),
            status: 200,
            answer: Some(answer(&gone)),
        },
    ];
    let (res, log) = run(p, Fake::canary(), steps).await;
    res.expect("ok");
    log
}

#[tokio::test]
async fn the_finalizer_is_added_before_anything_else() {
    finalizer_added().await;
}

#[tokio::test]
async fn enforce_applies_the_cut_to_virtualservice_weights_only() {
    enforce_cuts_the_canary().await;
}

#[tokio::test]
async fn dry_run_recommends_and_writes_nothing_to_the_mesh() {
    dry_run_writes_nothing().await;
}

#[tokio::test]
async fn unreachable_telemetry_sets_telemetry_unavailable_and_writes_nothing() {
    telemetry_failure(
        TelemetryError::Unavailable("prometheus:9090: connection refused".into()),
        "TelemetryUnavailable",
    )
    .await;
}

#[tokio::test]
async fn malformed_telemetry_is_telemetry_unavailable_too() {
    telemetry_failure(
        TelemetryError::Malformed("prometheus:9090: vector expected, got matrix".into()),
        "TelemetryUnavailable",
    )
    .await;
}

#[tokio::test]
async fn low_traffic_sets_insufficient_data_and_writes_nothing() {
    telemetry_failure(
        TelemetryError::Insufficient("prometheus:9090: 0.2 req/s".into()),
        "InsufficientData",
    )
    .await;
}

#[tokio::test]
async fn an_invalid_policy_gets_every_field_path_and_nothing_is_read_or_applied() {
    invalid_policy().await;
}

#[tokio::test]
async fn two_policies_on_one_service_neither_acts_and_both_say_why() {
    ambiguous_target().await;
}

#[tokio::test]
async fn a_restart_does_not_repeat_or_extend_a_change_within_its_cooldown() {
    restart_does_not_repeat().await;
}

/// The control for the restart test: without the memory in status, the same world gets a
/// second cut at once — so the test above fails if status is not replayed.
#[tokio::test]
async fn without_the_status_memory_the_same_run_would_cut_again() {
    let p = policy(spec("Enforce", ""), true, None);
    let ans = answer(&p);
    let steps = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(90, 10, None)),
        Step::apply(VS, vs_apply(100, 0, None), None),
        Step::event(NS, "Normal", "Applied", &["weights"]),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| assert_eq!(status_of(b)["appliedChanges"][0]["after"], weights(100, 0)),
            ans,
        ),
    ];
    run(p, Fake::canary(), steps).await.0.expect("ok");
}

#[tokio::test]
async fn a_missing_destination_rule_is_a_degraded_condition_and_no_action() {
    target_missing().await;
}

#[tokio::test]
async fn deletion_reverts_every_owned_field_then_releases_the_finalizer() {
    revert_on_deletion().await;
}

/// A person set the weights to 50/50 after homeostat's 100/0: deleting the policy must not
/// clobber that. The retries, still as homeostat set them, are reverted (removed).
#[tokio::test]
async fn deletion_leaves_a_knob_someone_changed_since() {
    let status: AdaptivePolicyStatus = serde_json::from_value(json!({
        "appliedChanges": [
            {"knob": "weights", "at": T - 600, "before": weights(70, 30), "after": weights(100, 0),
             "posture": "protect", "origin": "planner", "reason": "r", "original": weights(70, 30)},
            {"knob": "retries", "at": T - 600,
             "before": {"retries": {"attempts": 2, "perTryTimeout": "25s", "retryOn": "5xx"}},
             "after": {"retries": {"attempts": 0, "perTryTimeout": "2s", "retryOn": "5xx"}},
             "posture": "protect", "origin": "planner", "reason": "r", "original": {}}
        ]
    }))
    .unwrap();
    let mut p = policy(spec("Enforce", ""), true, Some(status));
    p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::from_second(T).unwrap()));
    let mut gone = p.clone();
    gone.metadata.finalizers = None;
    let retries = json!({"attempts": 0, "perTryTimeout": "2s", "retryOn": "5xx"});
    let steps = vec![
        Step::get(VS, live_vs(50, 50, Some(retries))),
        Step::apply(VS, vs_apply(50, 50, None), None),
        Step::event(
            NS,
            "Normal",
            "Reverted",
            &[
                "retries returned",
                "weights left as found (changed by someone else",
            ],
        ),
        Step {
            method: "PATCH",
            path: POLICY.into(),
            query: &[],
            body: k8s_support::Expect::Json(json!([
                {"op": "test", "path": "/metadata/finalizers/0", "value": "homeostat.dev/revert"},
                {"op": "remove", "path": "/metadata/finalizers/0"}
            ])),
            status: 200,
            answer: Some(answer(&gone)),
        },
    ];
    run(p, Fake::canary(), steps).await.0.expect("ok");
}

#[tokio::test]
async fn a_follower_touches_nothing() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let source = Fake::canary();
    let ctx = Arc::new(Context::new(
        Client::new(service, NS),
        source.clone(),
        Arc::new(Metrics::default()),
        Arc::new(|| T),
        Arc::new(AtomicBool::new(false)),
    ));
    let p = policy(spec("Enforce", ""), true, None);
    let (res, ()) = tokio::join!(
        reconcile::reconcile(Arc::new(p), ctx),
        verify(&mut handle, vec![], Log::default())
    );
    res.expect("ok");
    assert_eq!(source.calls.load(Ordering::SeqCst), 0);
}

/// Its own status write comes back as a watch event and re-triggers the reconcile: within the
/// interval that run must do nothing (no API call, no telemetry, no extra Governor run that
/// would count towards hysteresis); a new generation runs at once.
#[tokio::test]
async fn a_second_trigger_within_the_interval_does_nothing_until_the_spec_changes() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let source = Fake::canary();
    let ctx = Arc::new(Context::new(
        Client::new(service, NS),
        source.clone(),
        Arc::new(Metrics::default()),
        Arc::new(|| T),
        Arc::new(AtomicBool::new(true)),
    ));
    let p = policy(spec("DryRun", ""), true, None);
    let ans = answer(&p);
    let first = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
        Step::event(NS, "Normal", "Recommended", &["weights"]),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| assert_eq!(status_of(b)["phase"], "DryRun"),
            ans.clone(),
        ),
    ];
    let (res, ()) = tokio::join!(
        reconcile::reconcile(Arc::new(p.clone()), ctx.clone()),
        verify(&mut handle, first, Log::default())
    );
    let action = res.expect("ok");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(15))
    );
    let (res, ()) = tokio::join!(
        reconcile::reconcile(Arc::new(p.clone()), ctx.clone()),
        verify(&mut handle, vec![], Log::default())
    );
    assert_eq!(
        res.expect("ok"),
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(15))
    );
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    let mut edited = p;
    edited.metadata.generation = Some(4);
    let again = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
        Step::event_repeat(NS),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| assert_eq!(status_of(b)["observedGeneration"], 4),
            ans,
        ),
    ];
    let (res, ()) = tokio::join!(
        reconcile::reconcile(Arc::new(edited), ctx),
        verify(&mut handle, again, Log::default())
    );
    res.expect("ok");
    assert_eq!(source.calls.load(Ordering::SeqCst), 2);
}

/// The webhook wrote status (an alert's retries change) after the reconciler's copy of the
/// policy was read. The reconciler's status apply carries the resourceVersion it read, so the
/// API server refuses it (409) instead of letting it replace `appliedChanges` with the stale
/// list; the reconciler reads the policy again and writes the webhook's entry and its own.
async fn status_conflict_keeps_the_webhooks_changes() -> Log {
    let mut p = policy(spec("Enforce", ""), true, None);
    p.metadata.resource_version = Some("41".into());
    let alert_change: AppliedChange = serde_json::from_value(json!({
        "knob": "retries", "at": T - 10,
        "before": {"retries": {"attempts": 2, "retryOn": "5xx"}},
        "after": {"retries": {"attempts": 0, "retryOn": "5xx"}},
        "posture": "protect", "origin": "alert:ErrorBudgetBurn", "reason": "alert",
        "original": {"retries": {"attempts": 2, "retryOn": "5xx"}}
    }))
    .unwrap();
    let mut fresh = p.clone();
    fresh.metadata.resource_version = Some("42".into());
    fresh.status = Some(AdaptivePolicyStatus {
        applied_changes: vec![alert_change.clone()],
        last_change: Some(Time(jiff::Timestamp::from_second(T - 10).unwrap())),
        ..Default::default()
    });
    let conflict = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the object has been modified", "reason": "Conflict", "code": 409
    });
    let steps = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
        Step::apply(VS, vs_apply(90, 10, None), None),
        Step::event(NS, "Normal", "Applied", &["weights"]),
        Step {
            method: "PATCH",
            path: format!("{POLICY}/status"),
            query: k8s_support::SSA,
            body: k8s_support::Expect::With(Box::new(|b: &Value| {
                assert_eq!(b["metadata"]["resourceVersion"], "41", "{b}");
                let applied = b["status"]["appliedChanges"].as_array().unwrap();
                assert_eq!(applied.len(), 1, "only its own change, as read: {b}");
            })),
            status: 409,
            answer: Some(conflict),
        },
        Step::get(POLICY, answer(&fresh)),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| {
                assert_eq!(b["metadata"]["resourceVersion"], "42", "{b}");
                let s = &b["status"];
                let applied = s["appliedChanges"].as_array().expect("appliedChanges");
                // The webhook's entry first (it is older), then this run's cut.
                assert_eq!(applied.len(), 2, "{s}");
                assert_eq!(applied[0]["origin"], "alert:ErrorBudgetBurn");
                assert_eq!(applied[0]["at"], T - 10);
                assert_eq!(applied[1]["knob"], "weights");
                assert_eq!(applied[1]["at"], T);
                assert_eq!(applied[1]["after"], weights(90, 10));
                // This run's change is the newer one.
                assert_eq!(s["lastChange"], T_RFC3339);
                assert_eq!(s["phase"], "Ready");
            },
            answer(&fresh),
        ),
    ];
    let (res, log) = run(p, Fake::canary(), steps).await;
    res.expect("ok");
    log
}

#[tokio::test]
async fn a_status_conflict_keeps_the_webhooks_changes_and_adds_this_runs() {
    status_conflict_keeps_the_webhooks_changes().await;
}

/// (verb, group, resource) of a recorded request.
fn rbac_request(method: &str, path: &str) -> (String, String, String) {
    let verb = match method {
        "GET" => "get",
        "POST" => "create",
        "PATCH" => "patch",
        "PUT" => "update",
        "DELETE" => "delete",
        m => panic!("unexpected method {m}"),
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // /apis/{group}/{version}/namespaces/{ns}/{resource}[/{name}[/{sub}]] or /api/v1/...
    let (group, rest) = match parts[0] {
        "api" => ("", &parts[2..]),
        _ => (parts[1], &parts[3..]),
    };
    assert_eq!(rest[0], "namespaces", "{path}");
    let mut resource = rest[2].to_string();
    if let Some(sub) = rest.get(4) {
        resource = format!("{resource}/{sub}");
    }
    (verb.into(), group.into(), resource)
}

/// The ClusterRole `homeostat install` prints covers every request the scenarios make, and
/// grants nothing else except the list/watch the controller's caches need.
#[tokio::test]
async fn rbac_covers_every_recorded_request_and_nothing_more() {
    let mut seen = BTreeSet::new();
    let logs = vec![
        finalizer_added().await,
        enforce_cuts_the_canary().await,
        dry_run_writes_nothing().await,
        telemetry_failure(
            TelemetryError::Unavailable("prometheus:9090".into()),
            "TelemetryUnavailable",
        )
        .await,
        invalid_policy().await,
        ambiguous_target().await,
        restart_does_not_repeat().await,
        target_missing().await,
        revert_on_deletion().await,
        status_conflict_keeps_the_webhooks_changes().await,
    ];
    for log in logs {
        for (m, p) in log.lock().unwrap().iter() {
            seen.insert(rbac_request(m, p));
        }
    }
    let mut granted = BTreeSet::new();
    for r in homeostat::cli::install::cluster_rules() {
        for g in r.api_groups.unwrap() {
            for res in r.resources.clone().unwrap() {
                for v in &r.verbs {
                    granted.insert((v.clone(), g.clone(), res.clone()));
                }
            }
        }
    }
    let missing: Vec<_> = seen.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "requests the ClusterRole does not allow: {missing:?}"
    );
    // What the ClusterRole grants beyond the recorded requests, each with its reason:
    // list/watch for the controller's watches (not exercised by one reconcile), and the
    // Recorder's patch of a repeated Event's series.
    let watches = [
        "adaptivepolicies",
        "destinationrules",
        "virtualservices",
        "horizontalpodautoscalers",
    ];
    let extra: Vec<_> = granted
        .difference(&seen)
        .filter(|(v, _, r)| !((v == "list" || v == "watch") && watches.contains(&r.as_str())))
        .filter(|(v, g, r)| !(v == "patch" && g == "events.k8s.io" && r == "events"))
        .collect();
    assert!(extra.is_empty(), "grants no request needs: {extra:?}");
}

// ---- restart memory and status writes ----

/// A reconciler whose clock the test moves.
fn context_at(
    service: tower_test::mock::Mock<Request<Body>, Response<Body>>,
    source: Fake,
    clock: Arc<std::sync::atomic::AtomicI64>,
) -> Arc<Context<Fake>> {
    Arc::new(Context::new(
        Client::new(service, NS),
        source,
        Arc::new(Metrics::default()),
        Arc::new(move || clock.load(Ordering::SeqCst)),
        Arc::new(AtomicBool::new(true)),
    ))
}

/// The world at the reconciler's clock: the canary with `bad` failing newest points.
fn canary_now(bad: usize) -> Fake {
    Fake::new(move |req| {
        let mut o = canary_obs(req.config.clone(), bad);
        o.end = req.end;
        Ok(o)
    })
}

/// A status PATCH whose status the test keeps (what the watch would hand the next reconcile).
fn keep_status(into: Arc<Mutex<Option<AdaptivePolicyStatus>>>, ans: Value) -> Step {
    Step::apply_with(
        format!("{POLICY}/status"),
        move |b| {
            let s: AdaptivePolicyStatus =
                serde_json::from_value(status_of(b).clone()).expect("a status");
            *into.lock().unwrap() = Some(s);
        },
        ans,
    )
}

/// A healthy service, nothing to change. The first run writes status; a run one interval later
/// that finds the same (only the quoted numbers could move) sends no status PATCH at all; at
/// the heartbeat (300 s after the write) status is written again, to refresh the numbers.
#[tokio::test]
async fn status_is_written_when_it_changed_or_at_the_heartbeat_only() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(T));
    let source = canary_now(0);
    let ctx = context_at(service, source.clone(), clock.clone());
    let p = policy(spec("Enforce", ""), true, None);
    let stored = Arc::new(Mutex::new(None));
    let first = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
        keep_status(stored.clone(), answer(&p)),
    ];
    let (res, ()) = tokio::join!(
        reconcile::reconcile(Arc::new(p.clone()), ctx.clone()),
        verify(&mut handle, first, Log::default())
    );
    res.expect("ok");
    let status = stored.lock().unwrap().clone().expect("status written");
    assert_eq!(status.phase.as_deref(), Some("Ready"));
    assert!(
        status.governor_memory.is_some(),
        "the Governor's memory is in status"
    );
    let p = policy(spec("Enforce", ""), true, Some(status));

    // One interval later: the mesh is read and the Governor runs, but no PATCH is sent (the
    // verifier fails on any request after the two GETs).
    clock.store(T + 15, Ordering::SeqCst);
    let quiet = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
    ];
    let (res, ()) = tokio::join!(
        reconcile::reconcile(Arc::new(p.clone()), ctx.clone()),
        verify(&mut handle, quiet, Log::default())
    );
    res.expect("ok");
    assert_eq!(source.calls.load(Ordering::SeqCst), 2, "the Governor ran");

    // At T + 300 s the stored status (written at T) is one heartbeat old: written again.
    clock.store(T + 300, Ordering::SeqCst);
    let heartbeat = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| assert_eq!(status_of(b)["lastEvaluated"], "2023-11-14T22:18:20Z"),
            answer(&p),
        ),
    ];
    let (res, ()) = tokio::join!(
        reconcile::reconcile(Arc::new(p), ctx),
        verify(&mut handle, heartbeat, Log::default())
    );
    res.expect("ok");
}

/// The canary fails; the leader cuts it 70/30 → 90/10 at T and writes status; then it is
/// restarted (a new process: a new Context, nothing in memory). At T + 30 s (two steps: the
/// first point after the cut, which the weights planner waits for) the canary still fails and
/// the restored Governor would cut again (90/10 → 100/0), but it remembers the cut of 30 s ago
/// from status: the 2 min cooldown holds it for 120 − 30 = 90 s more. No PATCH of the
/// VirtualService; status says why.
#[tokio::test]
async fn a_restarted_reconciler_does_not_reapply_a_change_made_before_the_restart() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(T));
    let before = context_at(service, canary_now(4), clock.clone());
    let p = policy(spec("Enforce", ""), true, None);
    let stored = Arc::new(Mutex::new(None));
    let first = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(70, 30, None)),
        Step::apply(VS, vs_apply(90, 10, None), None),
        Step::event(NS, "Normal", "Applied", &["weights"]),
        keep_status(stored.clone(), answer(&p)),
    ];
    let (res, ()) = tokio::join!(
        reconcile::reconcile(Arc::new(p), before.clone()),
        verify(&mut handle, first, Log::default())
    );
    res.expect("ok");
    drop(before);
    let status = stored.lock().unwrap().clone().expect("status written");
    let memory = status.governor_memory.clone().expect("memory in status");
    assert!(memory.contains("\"applied\""), "{memory}");

    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    clock.store(T + 30, Ordering::SeqCst);
    let source = canary_now(4);
    let after = context_at(service, source.clone(), clock);
    let p = policy(spec("Enforce", ""), true, Some(status));
    let steps = vec![
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs(90, 10, None)),
        Step::apply_with(
            format!("{POLICY}/status"),
            |b| {
                let s = status_of(b);
                let rec = s["recommendations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["knob"] == "weights")
                    .expect("weights held");
                assert_eq!(rec["applied"], false);
                assert_eq!(rec["proposed"], weights(100, 0));
                assert!(
                    rec["heldBy"]
                        .as_str()
                        .unwrap()
                        .starts_with("cooldown: 90s left"),
                    "{rec}"
                );
                assert_eq!(s["appliedChanges"].as_array().unwrap().len(), 1);
            },
            answer(&p),
        ),
    ];
    let (res, ()) = tokio::join!(
        reconcile::reconcile(Arc::new(p), after),
        verify(&mut handle, steps, Log::default())
    );
    res.expect("ok");
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}
