//! The admin listener (Istio's sidecars use 15090 for stats): `/stats/prometheus` — Istio's
//! request metrics and the per-endpoint counters; `/ready` — 200 once the proxy serves;
//! `/config_dump` — the configuration in force as JSON (the bootstrap file's shape).

use crate::body::{ProxyBody, full};
use crate::config::{Bootstrap, Limits};
use crate::snapshot::SnapshotStore;
use crate::telemetry::Telemetry;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use std::convert::Infallible;
use std::sync::Arc;

/// What the admin pages read.
#[derive(Debug)]
pub struct Admin {
    pub store: Arc<SnapshotStore>,
    pub telemetry: Arc<Telemetry>,
    /// The bootstrap the proxy started from (listeners, node, limits do not change later).
    pub bootstrap: Bootstrap,
}

impl Admin {
    /// The hyper service.
    pub async fn handle<B>(
        self: Arc<Self>,
        req: Request<B>,
    ) -> Result<Response<ProxyBody>, Infallible> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Ok(text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET only\n".into(),
            ));
        }
        Ok(match req.uri().path() {
            "/stats/prometheus" | "/metrics" => {
                let snapshot = self.store.current();
                let mut upstreams: Vec<_> = snapshot.clusters.values().map(|u| u.stats()).collect();
                upstreams.sort_by(|a, b| a.name.cmp(&b.name));
                text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    self.telemetry.render(&upstreams),
                )
            }
            "/ready" => text(StatusCode::OK, "text/plain", "LIVE\n".into()),
            "/config_dump" => {
                let snapshot = self.store.current();
                let mut dump = self.bootstrap.clone();
                dump.clusters = snapshot.cluster_configs();
                dump.route_configs = snapshot.route_configs.clone();
                match serde_json::to_string_pretty(&dump) {
                    Ok(json) => text(StatusCode::OK, "application/json", json),
                    Err(e) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        format!("{e}\n"),
                    ),
                }
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "text/plain",
                "try /stats/prometheus, /ready or /config_dump\n".into(),
            ),
        })
    }
}

/// The admin listener needs no body limits beyond hyper's defaults, but it gets the same
/// header bounds as the data path.
pub fn limits(data: &Limits) -> Limits {
    Limits {
        max_connections: 64,
        ..data.clone()
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<ProxyBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
