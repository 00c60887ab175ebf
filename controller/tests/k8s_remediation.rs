//! The webhook as `homeostat run` serves it — the controller's seams (`remediation::build`) —
//! against a mock API server (ApiServerVerifier): every request's method, path, query and body
//! is asserted, in order; a request never made, or one not expected, fails.
//!
//! Policy `shop/checkout-policy` governs `checkout` (subsets stable / canary, 70 / 30 in force,
//! no retries set: Istio's default of 2 attempts), `maxStepPercent: 20`, and answers
//! `ErrorBudgetBurn{severity="page"}` with shiftToStable and disableRetries. Telemetry is
//! unavailable (an incident may break it): the Governor decides on the configuration alone.
//! Worked out:
//! * shiftToStable: canary 30 − 20 = 10, stable 70 + 20 = 90;
//! * disableRetries: attempts 2 → 0, retryOn unchanged (Istio's default, as in force).

mod k8s_support;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body as AxumBody;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use kube::runtime::reflector;
use kube::runtime::watcher;
use serde_json::{Value, json};
use tower::ServiceExt;

use homeostat::crd::{AdaptivePolicy, AdaptivePolicySpec, AdaptivePolicyStatus};
use homeostat::http::Metrics;
use homeostat::reconcile::Context;
use homeostat::remediation;
use homeostat::telemetry::{ObservationSource, ObserveRequest, TelemetryError};
use homeostat::webhook::{BearerToken, router};
use homeostat_models::governor::{Observation, RetryConfig};
use homeostat_models::policy::PolicySpec;
use k8s_support::{Expect, Log, Step, verify};

const NS: &str = "shop";
const T: i64 = 1_700_000_000;
const TOKEN: &str = "k8s-remediation-token";
const POLICY: &str =
    "/apis/homeostat.dev/v1alpha1/namespaces/shop/adaptivepolicies/checkout-policy";
const STATUS: &str =
    "/apis/homeostat.dev/v1alpha1/namespaces/shop/adaptivepolicies/checkout-policy/status";
const DR: &str = "/apis/networking.istio.io/v1/namespaces/shop/destinationrules/checkout";
const VS: &str = "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/checkout";
const REMEDIATION_SSA: &[(&str, &str)] =
    &[("fieldManager", "homeostat-remediation"), ("force", "true")];

/// Telemetry that is down.
struct Down;

impl ObservationSource for Down {
    async fn observe(&self, _: &ObserveRequest) -> Result<Observation, TelemetryError> {
        Err(TelemetryError::Unavailable(
            "prometheus: connection refused".into(),
        ))
    }
}

fn spec(mode: &str) -> PolicySpec {
    let yaml = format!(
        "mode: {mode}
target: {{service: checkout, subsets: [stable, canary]}}
controls:
  loadBalancing: {{maxStepPercent: 20}}
remediation:
  - onAlert: {{alertname: ErrorBudgetBurn, labels: {{severity: page}}}}
    actions: [shiftToStable, disableRetries]
"
    );
    serde_yaml::from_str(&yaml).expect("policy")
}

fn policy(mode: &str, status: Option<AdaptivePolicyStatus>) -> AdaptivePolicy {
    let mut p = AdaptivePolicy::new("checkout-policy", AdaptivePolicySpec(spec(mode)));
    p.metadata.namespace = Some(NS.into());
    p.metadata.uid = Some("0b5c-uid".into());
    p.metadata.resource_version = Some("41".into());
    p.status = status;
    p
}

fn live_dr() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "checkout", "namespace": NS},
        "spec": {"host": "checkout", "subsets": [
            {"name": "stable", "labels": {"version": "v1"}},
            {"name": "canary", "labels": {"version": "v2"}}]}
    })
}

fn http_routes(stable: u32, canary: u32, retries: Option<Value>) -> Value {
    let mut default = json!({
        "name": "default",
        "route": [
            {"destination": {"host": "checkout", "subset": "stable"}, "weight": stable},
            {"destination": {"host": "checkout", "subset": "canary"}, "weight": canary}
        ]
    });
    if let Some(r) = retries {
        default["retries"] = r;
    }
    json!([default])
}

fn live_vs() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "checkout", "namespace": NS},
        "spec": {"hosts": ["checkout"], "http": http_routes(70, 30, None)}
    })
}

fn vs_apply(stable: u32, canary: u32, retries: Option<Value>) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "checkout"},
        "spec": {"http": http_routes(stable, canary, retries)}
    })
}

/// One firing page alert for checkout in shop.
fn payload() -> String {
    json!({
        "version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "homeostat",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager", "truncatedAlerts": 0,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "ErrorBudgetBurn", "severity": "page", "service": "checkout",
                       "namespace": "shop", "long_window": "1h"},
            "annotations": {},
            "startsAt": "2023-11-14T22:10:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": "c0ffee0123456789"
        }]
    })
    .to_string()
}

/// Sends `payload()` to the controller's webhook once per entry of `steps`, each delivery
/// verified against its steps; the answers' JSON.
async fn deliver(known: AdaptivePolicy, rounds: Vec<Vec<Step>>) -> Vec<Value> {
    deliver_beside(known, Vec::new(), rounds).await
}

/// `deliver`, with `others` in the watch cache beside `known`.
async fn deliver_beside(
    known: AdaptivePolicy,
    others: Vec<AdaptivePolicy>,
    rounds: Vec<Vec<Step>>,
) -> Vec<Value> {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Arc::new(Context::new(
        Client::new(service, NS),
        Down,
        Arc::new(Metrics::default()),
        Arc::new(|| T),
        Arc::new(AtomicBool::new(true)),
    ));
    let (store, mut writer) = reflector::store();
    for p in [known].into_iter().chain(others) {
        writer.apply_watcher_event(&watcher::Event::Apply(p));
    }
    let hook = remediation::build(
        ctx,
        store,
        BearerToken::new(TOKEN).unwrap(),
        homeostat::webhook::DEFAULT_MAX_BODY_BYTES,
    );
    let app = router(hook);
    let mut out = Vec::new();
    for steps in rounds {
        let req = Request::post("/alertmanager")
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(AxumBody::from(payload()))
            .unwrap();
        let (resp, ()) = tokio::join!(
            app.clone().oneshot(req),
            verify(&mut handle, steps, Log::default())
        );
        let resp = resp.unwrap();
        assert_eq!(resp.status(), 200);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        out.push(serde_json::from_slice(&bytes).unwrap());
    }
    out
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

/// The record the first delivery writes, as a later read returns it.
fn handled_status(mode: &str) -> AdaptivePolicyStatus {
    serde_json::from_value(json!({"alertRemediations": [{
        "alertname": "ErrorBudgetBurn", "fingerprint": "c0ffee0123456789",
        // 2023-11-14T22:10:00Z
        "startsAt": 1_699_999_800, "handledAt": T, "mode": mode
    }]}))
    .unwrap()
}

#[tokio::test]
async fn enforce_writes_the_record_first_then_applies_through_the_actuators_once() {
    let p = policy("Enforce", None);
    let retries_in_force = RetryConfig::default().retry_on.to_string();
    let status_check = move |b: &Value| {
        assert_eq!(b["metadata"]["name"], "checkout-policy");
        // Optimistic concurrency: the write fails if the policy changed since it was read.
        assert_eq!(b["metadata"]["resourceVersion"], "41");
        let st = &b["status"];
        let rec = &st["alertRemediations"][0];
        assert_eq!(rec["alertname"], "ErrorBudgetBurn");
        assert_eq!(rec["fingerprint"], "c0ffee0123456789");
        assert_eq!(rec["startsAt"], 1_699_999_800);
        assert_eq!(rec["handledAt"], T);
        assert_eq!(rec["mode"], "Enforce");
        let applied = st["appliedChanges"].as_array().expect("appliedChanges");
        assert_eq!(applied.len(), 2, "{st}");
        assert_eq!(applied[0]["knob"], "weights");
        assert_eq!(
            applied[0]["after"]["weights"],
            json!({"stable": 90, "canary": 10})
        );
        assert_eq!(
            applied[0]["original"]["weights"],
            json!({"stable": 70, "canary": 30})
        );
        assert_eq!(applied[0]["origin"], "alert:ErrorBudgetBurn");
        assert_eq!(applied[1]["knob"], "retries");
        assert_eq!(applied[1]["after"]["retries"]["attempts"], 0);
        assert_eq!(rec["applied"], st["appliedChanges"]);
        assert_eq!(st["lastChange"], "2023-11-14T22:13:20Z");
        // Only the webhook's fields: the reconciler's (conditions, phase, ...) are left alone.
        let keys: Vec<&String> = st.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["alertRemediations", "appliedChanges", "lastChange"]);
    };
    let first = vec![
        Step::get(POLICY, to_json(&p)),
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs()),
        Step::get(POLICY, to_json(&p)),
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs()),
        Step {
            method: "PATCH",
            path: STATUS.into(),
            query: REMEDIATION_SSA,
            body: Expect::With(Box::new(status_check)),
            status: 200,
            answer: Some(to_json(&p)),
        },
        Step::apply(VS, vs_apply(90, 10, None), None),
        Step::apply(
            VS,
            vs_apply(
                90,
                10,
                Some(json!({"attempts": 0, "retryOn": retries_in_force})),
            ),
            None,
        ),
        Step::event(NS, "Normal", "Remediated", &["ErrorBudgetBurn", "weights"]),
        Step::event(NS, "Normal", "Remediated", &["ErrorBudgetBurn", "retries"]),
    ];
    // The redelivery reads the policy (now with the record) and does nothing else.
    let again = vec![Step::get(
        POLICY,
        to_json(&policy("Enforce", Some(handled_status("Enforce")))),
    )];
    let answers = deliver(p, vec![first, again]).await;
    let o = &answers[0]["outcomes"][0];
    assert_eq!(o["outcome"], "remediated", "{o}");
    assert_eq!(o["applied"], 2);
    assert_eq!(o["failed"], 0);
    assert_eq!(answers[1]["outcomes"][0]["outcome"], "duplicate");
}

#[tokio::test]
async fn dry_run_records_and_recommends_without_touching_the_mesh() {
    let p = policy("DryRun", None);
    let status_check = |b: &Value| {
        let st = &b["status"];
        let rec = &st["alertRemediations"][0];
        assert_eq!(rec["mode"], "DryRun");
        let recs = rec["recommendations"].as_array().expect("recommendations");
        let knobs: Vec<&str> = recs.iter().map(|r| r["knob"].as_str().unwrap()).collect();
        assert_eq!(knobs, ["weights", "retries"]);
        assert!(recs.iter().all(|r| r["applied"] == false));
        assert_eq!(
            recs[0]["proposed"]["weights"],
            json!({"stable": 90, "canary": 10})
        );
        // Nothing applied: no appliedChanges, no lastChange.
        let keys: Vec<&String> = st.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["alertRemediations"]);
    };
    // No DestinationRule or VirtualService read by the sink, and no write but the status.
    let steps = vec![
        Step::get(POLICY, to_json(&p)),
        Step::get(DR, live_dr()),
        Step::get(VS, live_vs()),
        Step::get(POLICY, to_json(&p)),
        Step {
            method: "PATCH",
            path: STATUS.into(),
            query: REMEDIATION_SSA,
            body: Expect::With(Box::new(status_check)),
            status: 200,
            answer: Some(to_json(&p)),
        },
        Step::event(
            NS,
            "Normal",
            "RemediationRecommended",
            &["DryRun", "weights"],
        ),
        Step::event(
            NS,
            "Normal",
            "RemediationRecommended",
            &["DryRun", "retries"],
        ),
    ];
    let again = vec![Step::get(
        POLICY,
        to_json(&policy("DryRun", Some(handled_status("DryRun")))),
    )];
    let answers = deliver(p, vec![steps, again]).await;
    let o = &answers[0]["outcomes"][0];
    assert_eq!(o["outcome"], "remediated", "{o}");
    assert_eq!(o["applied"], 0);
    assert_eq!(answers[1]["outcomes"][0]["outcome"], "duplicate");
}

/// A second policy on `checkout` in the same namespace: neither acts, alerts included. The
/// page that the Enforce policy above remediates is unmatched, and nothing is read or written
/// (the verifier fails on any request).
#[tokio::test]
async fn a_policy_sharing_its_target_takes_no_alert() {
    let p = policy("Enforce", None);
    let mut sibling = p.clone();
    sibling.metadata.name = Some("checkout-scaling".into());
    let answers = deliver_beside(p, vec![sibling], vec![Vec::new()]).await;
    let o = &answers[0]["outcomes"][0];
    assert_eq!(o["outcome"], "unmatched", "{o}");
}
