//! `POST /alertmanager`: the HTTP edge. Checks, in this order, each before anything else is
//! read or touched, so a rejected request leaves no trace:
//!
//! 1. the bearer token (401, before the body is read);
//! 2. the body size (413 past `max_body_bytes`);
//! 3. the payload (400, with the field and the reason);
//! 4. leadership (503 with `Retry-After`: see below);
//!
//! then hands the payload to the [`Remediator`] (200 with the outcomes; 500 when a seam fails,
//! which Alertmanager retries — safe, since handled occurrences are not acted on twice).
//!
//! Not the leader: only the leader acts (it holds the guardrail memory and writes status), so a
//! replica that is not answers 503 and Alertmanager retries with backoff, reaching the leader
//! through the Service on a later attempt. The alert is never accepted and dropped; accepting
//! and forwarding would need a replica-to-replica channel for no gain over Alertmanager's own
//! retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::auth::BearerToken;
use super::directory::PolicyDirectory;
use super::governors::Governors;
use super::payload;
use super::remediate::Remediator;
use super::sink::RemediationSink;
use crate::telemetry::ObservationSource;

/// Default body limit: a payload of ~500 alerts; Alertmanager's `max_alerts` keeps it under.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Whether this replica holds the leader Lease; set by the controller's election.
#[derive(Debug, Clone, Default)]
pub struct Leadership(Arc<AtomicBool>);

impl Leadership {
    pub fn new(leader: bool) -> Self {
        Self(Arc::new(AtomicBool::new(leader)))
    }

    /// Follows the flag the leader election sets (the reconciler reads the same one).
    pub fn following(flag: Arc<AtomicBool>) -> Self {
        Self(flag)
    }

    pub fn set(&self, leader: bool) {
        self.0.store(leader, Ordering::SeqCst);
    }

    pub fn is_leader(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Everything the route needs.
pub struct Webhook<D, O, S, G = Arc<tokio::sync::Mutex<homeostat_models::governor::Governor>>> {
    pub remediator: Remediator<D, O, S, G>,
    pub token: BearerToken,
    pub leadership: Leadership,
    pub max_body_bytes: usize,
}

/// The router serving `POST /alertmanager`.
pub fn router<D, O, S, G>(webhook: Arc<Webhook<D, O, S, G>>) -> Router
where
    D: PolicyDirectory,
    O: ObservationSource,
    S: RemediationSink,
    G: Governors,
{
    let limit = webhook.max_body_bytes;
    Router::new()
        .route("/alertmanager", post(receive::<D, O, S, G>))
        .route_layer(middleware::from_fn_with_state(
            webhook.clone(),
            authenticate::<D, O, S, G>,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(webhook)
}

async fn authenticate<D, O, S, G>(
    State(w): State<Arc<Webhook<D, O, S, G>>>,
    req: Request,
    next: Next,
) -> Response
where
    D: PolicyDirectory,
    O: ObservationSource,
    S: RemediationSink,
    G: Governors,
{
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if !w.token.accepts(auth) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            None,
            "missing or wrong bearer token",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    next.run(req).await
}

async fn receive<D, O, S, G>(State(w): State<Arc<Webhook<D, O, S, G>>>, body: Bytes) -> Response
where
    D: PolicyDirectory,
    O: ObservationSource,
    S: RemediationSink,
    G: Governors,
{
    let payload = match payload::parse(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, Some(&e.field), &e.reason),
    };
    if !w.leadership.is_leader() {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "not the leader: retry (another replica acts on alerts)",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    }
    match w.remediator.handle(&payload).await {
        Ok(outcomes) => {
            (StatusCode::OK, axum::Json(json!({ "outcomes": outcomes }))).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string()),
    }
}

fn error(status: StatusCode, field: Option<&str>, reason: &str) -> Response {
    let body = match field {
        Some(f) => json!({ "error": reason, "field": f }),
        None => json!({ "error": reason }),
    };
    (status, axum::Json(body)).into_response()
}
