//! A stateful mock Kubernetes API server (kube's `tower_test` mock) for end-to-end tests whose
//! request order is not fixed — a real Alertmanager decides when and how it delivers, so the
//! ApiServerVerifier's exact sequence (`controller/tests/k8s_support`) does not fit. It serves
//! the objects it holds, applies writes to them (status, and server-side applies of `spec`
//! parts), answers Events, enforces a `resourceVersion` precondition like the API server, and
//! logs every write for the test to assert on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

/// One write the code under test made.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub method: String,
    pub path: String,
    /// The query string as sent (e.g. `fieldManager=homeostat&force=true`).
    pub query: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    writes: Vec<Write>,
    version: u64,
}

/// The mock API server's objects and write log.
#[derive(Clone, Default)]
pub struct FakeApi(Arc<Mutex<State>>);

impl FakeApi {
    /// Holds `objects`, each at its API path.
    pub fn new(objects: impl IntoIterator<Item = (String, Value)>) -> Self {
        let api = Self::default();
        api.lock().objects = objects.into_iter().collect();
        api
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client talking to this server; the serving task runs on the current runtime.
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = self.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let method = req.method().to_string();
                let path = req.uri().path().to_string();
                let query = req.uri().query().unwrap_or_default().to_string();
                let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let (status, answer) = api.answer(&method, &path, &query, body);
                let mut resp =
                    Response::new(Body::from(serde_json::to_vec(&answer).unwrap_or_default()));
                *resp.status_mut() =
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                send.send_response(resp);
            }
        });
        kube::Client::new(service, "default")
    }

    /// Every write so far, in order.
    pub fn writes(&self) -> Vec<Write> {
        self.lock().writes.clone()
    }

    /// The object at `path` as it is now.
    pub fn object(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    fn answer(&self, method: &str, path: &str, query: &str, body: Value) -> (u16, Value) {
        let mut st = self.lock();
        if method != "GET" {
            st.writes.push(Write {
                method: method.into(),
                path: path.into(),
                query: query.into(),
                body: body.clone(),
            });
        }
        if path.contains("/events") {
            return (if method == "POST" { 201 } else { 200 }, body);
        }
        let (target, is_status) = match path.strip_suffix("/status") {
            Some(p) => (p.to_string(), true),
            None => (path.to_string(), false),
        };
        st.version += 1;
        let version = st.version;
        let Some(obj) = st.objects.get_mut(&target) else {
            return (404, not_found());
        };
        match method {
            "GET" => (200, obj.clone()),
            "PATCH" => {
                let want = &body["metadata"]["resourceVersion"];
                if !want.is_null() && *want != obj["metadata"]["resourceVersion"] {
                    return (409, conflict());
                }
                let part = if is_status { "status" } else { "spec" };
                if !obj[part].is_object() {
                    obj[part] = json!({});
                }
                if let Some(fields) = body[part].as_object() {
                    for (k, v) in fields {
                        obj[part][k] = v.clone();
                    }
                }
                obj["metadata"]["resourceVersion"] = json!(version.to_string());
                (200, obj.clone())
            }
            _ => (405, not_found()),
        }
    }
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "not found", "reason": "NotFound", "code": 404})
}

fn conflict() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "the object has been modified", "reason": "Conflict", "code": 409})
}
