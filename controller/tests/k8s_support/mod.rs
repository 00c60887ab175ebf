//! The ApiServerVerifier (the kube-rs controller-rs pattern): a mock API server that expects an
//! exact sequence of requests, asserts each one's method, path, query and body, answers it,
//! and fails on a request it did not expect or one that never came.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// What a step checks of a request body.
pub enum Expect {
    /// No body (GET).
    Empty,
    /// Exactly this JSON.
    Json(Value),
    /// A check of its own (for bodies carrying wall-clock or model-computed parts; the check
    /// asserts every hand-worked field).
    With(Box<dyn Fn(&Value) + Send>),
}

/// One expected request and the answer to give.
pub struct Step {
    pub method: &'static str,
    pub path: String,
    /// Query parameters, exactly (order-insensitive).
    pub query: &'static [(&'static str, &'static str)],
    pub body: Expect,
    pub status: u16,
    /// The answer; `None` echoes the request body.
    pub answer: Option<Value>,
}

pub const SSA: &[(&str, &str)] = &[("fieldManager", "homeostat"), ("force", "true")];

impl Step {
    pub fn get(path: impl Into<String>, answer: Value) -> Self {
        Step {
            method: "GET",
            path: path.into(),
            query: &[],
            body: Expect::Empty,
            status: 200,
            answer: Some(answer),
        }
    }
    pub fn get_missing(path: impl Into<String>) -> Self {
        Step {
            method: "GET",
            path: path.into(),
            query: &[],
            body: Expect::Empty,
            status: 404,
            answer: Some(json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "not found", "reason": "NotFound", "code": 404
            })),
        }
    }
    pub fn apply(path: impl Into<String>, body: Value, answer: Option<Value>) -> Self {
        Step {
            method: "PATCH",
            path: path.into(),
            query: SSA,
            body: Expect::Json(body),
            status: 200,
            answer,
        }
    }
    pub fn apply_with(
        path: impl Into<String>,
        check: impl Fn(&Value) + Send + 'static,
        answer: Value,
    ) -> Self {
        Step {
            method: "PATCH",
            path: path.into(),
            query: SSA,
            body: Expect::With(Box::new(check)),
            status: 200,
            answer: Some(answer),
        }
    }
    /// An Event, checked on the fields that do not depend on the wall clock.
    pub fn event(
        ns: &str,
        type_: &'static str,
        reason: &'static str,
        note_has: &'static [&'static str],
    ) -> Self {
        let path = format!("/apis/events.k8s.io/v1/namespaces/{ns}/events");
        Step {
            method: "POST",
            path,
            query: &[],
            body: Expect::With(Box::new(move |b: &Value| {
                assert_eq!(b["type"], type_, "event type in {b}");
                assert_eq!(b["reason"], reason, "event reason in {b}");
                assert_eq!(b["reportingController"], "homeostat");
                assert_eq!(b["regarding"]["kind"], "AdaptivePolicy");
                assert_eq!(b["regarding"]["name"], "checkout-policy");
                let note = b["note"].as_str().unwrap_or_default();
                for n in note_has {
                    assert!(note.contains(n), "event note {note:?} lacks {n:?}");
                }
            })),
            status: 201,
            answer: None,
        }
    }
}

impl Step {
    /// A repeated Event: the Recorder patches the first one's series (count, last time).
    pub fn event_repeat(ns: &str) -> Self {
        Step {
            method: "PATCH",
            path: format!("/apis/events.k8s.io/v1/namespaces/{ns}/events/*"),
            query: &[],
            body: Expect::With(Box::new(|b: &Value| {
                assert_eq!(b["series"]["count"], 2, "{b}")
            })),
            status: 200,
            answer: None,
        }
    }
}

/// Requests seen, as (method, path) — the RBAC test checks the ClusterRole covers them.
pub type Log = Arc<Mutex<Vec<(String, String)>>>;

/// Answers `steps` in order, then fails on any further request within `quiet`.
pub async fn verify(handle: &mut Handle, steps: Vec<Step>, log: Log) {
    for (i, step) in steps.into_iter().enumerate() {
        let next = tokio::time::timeout(Duration::from_secs(2), handle.next_request()).await;
        let (req, send) = match next {
            Ok(Some(r)) => r,
            _ => panic!(
                "step {i}: expected {} {}, but no request came",
                step.method, step.path
            ),
        };
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        log.lock().unwrap().push((method.clone(), path.clone()));
        // A path ending in `/*` stands for any name under it (a repeated Event's generated name).
        match step.path.strip_suffix("/*") {
            Some(prefix) => {
                assert_eq!(method, step.method, "step {i}: {path}");
                assert!(
                    path.starts_with(&format!("{prefix}/")),
                    "step {i}: {method} {path}, expected {}",
                    step.path
                );
            }
            None => assert_eq!(
                (method.as_str(), path.as_str()),
                (step.method, step.path.as_str()),
                "step {i}"
            ),
        }
        let query: BTreeMap<String, String> = req.uri().query().map(url_pairs).unwrap_or_default();
        let want: BTreeMap<String, String> = step
            .query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(query, want, "step {i}: query of {method} {path}");
        let bytes = req.into_body().collect_bytes().await.expect("body");
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        match &step.body {
            Expect::Empty => assert!(body.is_null(), "step {i}: unexpected body {body}"),
            Expect::Json(want) => assert_eq!(&body, want, "step {i}: body of {method} {path}"),
            Expect::With(check) => check(&body),
        }
        let answer = step.answer.unwrap_or(body);
        let resp = Response::builder()
            .status(step.status)
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap();
        send.send_response(resp);
    }
    if let Ok(Some((req, _))) =
        tokio::time::timeout(Duration::from_millis(300), handle.next_request()).await
    {
        panic!("unexpected request {} {}", req.method(), req.uri());
    }
}

fn url_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let mut it = kv.splitn(2, '=');
            (
                it.next().unwrap_or_default().to_string(),
                it.next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
