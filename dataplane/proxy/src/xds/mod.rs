//! The ADS client: state-of-the-world CDS, EDS and RDS on one aggregated gRPC stream.
//!
//! ```text
//!  proxy                                     control plane
//!  ── DiscoveryRequest(CDS, nonce "") ─────►
//!  ── DiscoveryRequest(RDS, [main]) ───────►
//!  ◄──────────── DiscoveryResponse(CDS, version v1, nonce n1)
//!  ── ACK(CDS, version v1, nonce n1) ──────►      valid: applied, version moves
//!  ── DiscoveryRequest(EDS, [clusters]) ───►
//!  ◄──────────── DiscoveryResponse(RDS, version v2, nonce n2)
//!  ── NACK(RDS, version v1, nonce n2, error_detail) ►   invalid: last good config stays
//! ```
//!
//! * Every response is converted ([`convert`]) and checked together with the other types in
//!   force (routes must name known clusters); only then is it published to the
//!   [`SnapshotStore`], and ACKed with its version. Otherwise it is NACKed: the request
//!   carries the last accepted version of that type, the response's nonce, and the reason in
//!   `error_detail`; nothing changes.
//! * A lost control plane changes nothing either: the proxy keeps serving the last good
//!   configuration and reconnects with jittered exponential back-off (100 ms doubling to
//!   10 s); on reconnect it re-subscribes sending the versions it has.
//! * Publishing swaps a snapshot, so requests in flight finish on the configuration they
//!   started with (see [`crate::snapshot`]).

pub mod convert;

use crate::config::{ClusterConfig, EndpointConfig, RouteConfig, validate_route_config};
use crate::snapshot::SnapshotStore;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status;
use prost::Message;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Where the control plane is and who we are.
#[derive(Debug, Clone)]
pub struct AdsClientConfig {
    /// `http://host:port` of the ADS server.
    pub server: String,
    pub node_id: String,
    /// Route configurations to ask RDS for (the listeners' `routeConfig` names).
    pub route_configs: Vec<String>,
}

/// What was last accepted, per type.
#[derive(Debug, Default, Clone)]
struct Accepted {
    cds_version: String,
    eds_version: String,
    rds_version: String,
    clusters: Vec<ClusterConfig>,
    /// EDS assignments by cluster name.
    endpoints: BTreeMap<String, Vec<EndpointConfig>>,
    routes: Vec<RouteConfig>,
    /// Clusters whose endpoints come from EDS (no inline load assignment).
    eds_clusters: Vec<String>,
}

impl Accepted {
    /// The clusters with their EDS endpoints filled in.
    fn merged_clusters(&self) -> Vec<ClusterConfig> {
        self.clusters
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(eps) = self.endpoints.get(&c.name) {
                    c.endpoints = eps.clone();
                }
                c
            })
            .collect()
    }

    /// Routes must name known clusters: the proxy resolves them when compiling.
    fn check(&self) -> Result<(), String> {
        let names: HashSet<&str> = self.clusters.iter().map(|c| c.name.as_str()).collect();
        for rc in &self.routes {
            validate_route_config(rc, &names)
                .map_err(|(f, m)| format!("route configuration {:?}: {f}: {m}", rc.name))?;
        }
        Ok(())
    }
}

/// Events for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdsEvent {
    Connected,
    Applied {
        type_url: String,
        version: String,
    },
    Rejected {
        type_url: String,
        version: String,
        reason: String,
    },
    Disconnected {
        reason: String,
    },
}

/// Runs the ADS client until `stop` turns true. Publishes accepted configuration into
/// `store`; `events` (if any) sees what happened.
pub async fn run(
    cfg: AdsClientConfig,
    store: Arc<SnapshotStore>,
    mut stop: watch::Receiver<bool>,
    events: Option<mpsc::UnboundedSender<AdsEvent>>,
) {
    let mut accepted = Accepted::default();
    let mut backoff = Duration::from_millis(100);
    let emit = |e: AdsEvent| {
        if let Some(tx) = &events {
            let _ = tx.send(e);
        }
    };
    loop {
        let got_response = tokio::select! {
            r = session(&cfg, &store, &mut accepted, &emit) => {
                let (got, reason) = r;
                tracing::warn!(server = %cfg.server, %reason, "ADS stream ended; keeping the last good configuration");
                emit(AdsEvent::Disconnected { reason });
                got
            }
            _ = stop.wait_for(|&s| s) => return,
        };
        if got_response {
            backoff = Duration::from_millis(100);
        }
        // Full jitter in [backoff/2, backoff).
        let wait = backoff / 2 + backoff.mul_f64(rand::random::<f64>() / 2.0);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

fn request(
    cfg: &AdsClientConfig,
    type_url: &str,
    version: &str,
    names: Vec<String>,
    nonce: &str,
    error: Option<String>,
) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: version.to_owned(),
        node: Some(Node {
            id: cfg.node_id.clone(),
            ..Node::default()
        }),
        resource_names: names,
        type_url: type_url.to_owned(),
        response_nonce: nonce.to_owned(),
        error_detail: error.map(|message| Status {
            // google.rpc.Code.INVALID_ARGUMENT
            code: 3,
            message,
            details: Vec::new(),
        }),
        ..DiscoveryRequest::default()
    }
}

/// One stream: returns whether any response arrived, and why it ended.
async fn session(
    cfg: &AdsClientConfig,
    store: &SnapshotStore,
    accepted: &mut Accepted,
    emit: &impl Fn(AdsEvent),
) -> (bool, String) {
    let mut client = match AggregatedDiscoveryServiceClient::connect(cfg.server.clone()).await {
        Ok(c) => c,
        Err(e) => return (false, format!("connect: {e}")),
    };
    let (tx, rx) = mpsc::channel::<DiscoveryRequest>(16);
    // Subscribe, telling the server what we already have (empty on the first connect).
    let _ = tx.try_send(request(
        cfg,
        convert::CLUSTER,
        &accepted.cds_version,
        Vec::new(),
        "",
        None,
    ));
    let _ = tx.try_send(request(
        cfg,
        convert::ROUTES,
        &accepted.rds_version,
        cfg.route_configs.clone(),
        "",
        None,
    ));
    if !accepted.eds_clusters.is_empty() {
        let _ = tx.try_send(request(
            cfg,
            convert::ENDPOINTS,
            &accepted.eds_version,
            accepted.eds_clusters.clone(),
            "",
            None,
        ));
    }
    let mut stream = match client
        .stream_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(e) => return (false, format!("stream: {e}")),
    };
    emit(AdsEvent::Connected);
    let mut got = false;
    loop {
        let resp = match stream.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return (got, "closed by the server".into()),
            Err(e) => return (got, format!("stream: {e}")),
        };
        got = true;
        let before_eds = accepted.eds_clusters.clone();
        let (reply, event) = handle(cfg, store, accepted, &resp);
        emit(event);
        if tx.send(reply).await.is_err() {
            return (got, "request channel closed".into());
        }
        // New clusters that need EDS: (re)subscribe with the new name list.
        if accepted.eds_clusters != before_eds {
            let r = request(
                cfg,
                convert::ENDPOINTS,
                &accepted.eds_version,
                accepted.eds_clusters.clone(),
                "",
                None,
            );
            if tx.send(r).await.is_err() {
                return (got, "request channel closed".into());
            }
        }
    }
}

/// Applies or rejects one response; returns the ACK/NACK to send.
fn handle(
    cfg: &AdsClientConfig,
    store: &SnapshotStore,
    accepted: &mut Accepted,
    resp: &DiscoveryResponse,
) -> (DiscoveryRequest, AdsEvent) {
    let mut next = accepted.clone();
    let result = candidate(&mut next, resp)
        .and_then(|()| next.check())
        .and_then(|()| store.apply(&next.merged_clusters(), &next.routes));
    let names = |a: &Accepted| match resp.type_url.as_str() {
        convert::ENDPOINTS => a.eds_clusters.clone(),
        convert::ROUTES => cfg.route_configs.clone(),
        _ => Vec::new(),
    };
    match result {
        Ok(()) => {
            *accepted = next;
            tracing::info!(type_url = %resp.type_url, version = %resp.version_info, "xDS update applied");
            (
                request(
                    cfg,
                    &resp.type_url,
                    &resp.version_info,
                    names(accepted),
                    &resp.nonce,
                    None,
                ),
                AdsEvent::Applied {
                    type_url: resp.type_url.clone(),
                    version: resp.version_info.clone(),
                },
            )
        }
        Err(reason) => {
            tracing::warn!(type_url = %resp.type_url, version = %resp.version_info, %reason, "xDS update rejected (NACK)");
            let last_good = match resp.type_url.as_str() {
                convert::CLUSTER => accepted.cds_version.clone(),
                convert::ENDPOINTS => accepted.eds_version.clone(),
                _ => accepted.rds_version.clone(),
            };
            (
                request(
                    cfg,
                    &resp.type_url,
                    &last_good,
                    names(accepted),
                    &resp.nonce,
                    Some(reason.clone()),
                ),
                AdsEvent::Rejected {
                    type_url: resp.type_url.clone(),
                    version: resp.version_info.clone(),
                    reason,
                },
            )
        }
    }
}

/// Replaces one type's resources in `next` with the response's (state of the world: the
/// response is the complete set).
fn candidate(next: &mut Accepted, resp: &DiscoveryResponse) -> Result<(), String> {
    for any in &resp.resources {
        if any.type_url != resp.type_url {
            return Err(format!(
                "resource of type {} in a {} response",
                any.type_url, resp.type_url
            ));
        }
    }
    let decode_err = |e: prost::DecodeError| format!("cannot decode {}: {e}", resp.type_url);
    match resp.type_url.as_str() {
        convert::CLUSTER => {
            let mut clusters = Vec::with_capacity(resp.resources.len());
            let mut eds = Vec::new();
            let mut seen = HashSet::new();
            for any in &resp.resources {
                let c = Cluster::decode(any.value.as_slice()).map_err(decode_err)?;
                if !seen.insert(c.name.clone()) {
                    return Err(format!("cluster {:?} appears twice", c.name));
                }
                if c.load_assignment.is_none() {
                    eds.push(c.name.clone());
                }
                clusters.push(convert::cluster(&c)?);
            }
            eds.sort();
            next.clusters = clusters;
            next.eds_clusters = eds;
            next.cds_version = resp.version_info.clone();
        }
        convert::ENDPOINTS => {
            let mut endpoints = BTreeMap::new();
            for any in &resp.resources {
                let la = ClusterLoadAssignment::decode(any.value.as_slice()).map_err(decode_err)?;
                let (name, eps) = convert::endpoints(&la)?;
                let mut seen = HashSet::new();
                if let Some(dup) = eps.iter().find(|e| !seen.insert(e.address)) {
                    return Err(format!(
                        "endpoints of {name:?}: duplicate endpoint {}",
                        dup.address
                    ));
                }
                endpoints.insert(name, eps);
            }
            next.endpoints = endpoints;
            next.eds_version = resp.version_info.clone();
        }
        convert::ROUTES => {
            let mut routes = Vec::with_capacity(resp.resources.len());
            for any in &resp.resources {
                let rc = RouteConfiguration::decode(any.value.as_slice()).map_err(decode_err)?;
                routes.push(convert::route_config(&rc)?);
            }
            next.routes = routes;
            next.rds_version = resp.version_info.clone();
        }
        other => return Err(format!("unsupported type {other}")),
    }
    Ok(())
}
