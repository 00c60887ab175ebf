//! The Aggregated Discovery Service (state of the world) over tonic; see the module docs of
//! [`crate::xds`] for the protocol rules it follows.

use super::snapshot::XdsSnapshot;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// What happened on the streams (for logs, metrics and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XdsEvent {
    /// A response was sent.
    Sent {
        node: String,
        type_url: String,
        version: String,
        nonce: String,
    },
    /// The proxy applied `version`.
    Ack {
        node: String,
        type_url: String,
        version: String,
    },
    /// The proxy rejected the response with `nonce`, keeping `version`, because `reason`.
    Nack {
        node: String,
        type_url: String,
        version: String,
        nonce: String,
        reason: String,
    },
}

/// The ADS service: clone-cheap, one per server.
#[derive(Debug, Clone)]
pub struct AdsServer {
    snapshots: watch::Receiver<Arc<XdsSnapshot>>,
    events: broadcast::Sender<XdsEvent>,
    nonces: Arc<AtomicU64>,
}

impl AdsServer {
    /// A server that serves whatever `snapshots` holds, pushing every new value.
    pub fn new(snapshots: watch::Receiver<Arc<XdsSnapshot>>) -> AdsServer {
        AdsServer {
            snapshots,
            events: broadcast::channel(1024).0,
            nonces: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Subscribes to the server's events.
    pub fn events(&self) -> broadcast::Receiver<XdsEvent> {
        self.events.subscribe()
    }

    /// Serves ADS on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        tonic::transport::Server::builder()
            .add_service(AggregatedDiscoveryServiceServer::new(self))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                shutdown,
            )
            .await
    }

    /// Binds `addr` and serves in the background; returns the bound address.
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(e) = self.serve(listener, std::future::pending()).await {
                tracing::error!(error = %e, "ADS server stopped");
            }
        });
        Ok(bound)
    }
}

/// Per type URL on one stream.
#[derive(Debug, Default)]
struct Subscription {
    names: Vec<String>,
    nonce: String,
    /// Version last sent on this stream ("" before the first response).
    sent_version: String,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<DiscoveryResponse, Status>> + Send>>;
type DeltaStream = Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsServer {
    type StreamAggregatedResourcesStream = ResponseStream;
    type DeltaAggregatedResourcesStream = DeltaStream;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let mut incoming = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let mut snapshots = self.snapshots.clone();
        let events = self.events.clone();
        let nonces = self.nonces.clone();
        tokio::spawn(async move {
            let mut subs: HashMap<String, Subscription> = HashMap::new();
            let mut node = String::new();
            let mut current = snapshots.borrow_and_update().clone();
            loop {
                tokio::select! {
                    req = incoming.message() => {
                        let Ok(Some(req)) = req else { return };
                        if let Some(n) = &req.node {
                            node.clone_from(&n.id);
                        }
                        let sub = subs.entry(req.type_url.clone()).or_default();
                        if !req.response_nonce.is_empty() && req.response_nonce != sub.nonce {
                            continue; // stale: answers a response we have since replaced
                        }
                        let names_changed = sub.names != req.resource_names;
                        sub.names = req.resource_names.clone();
                        if let Some(err) = &req.error_detail {
                            tracing::warn!(%node, type_url = %req.type_url, reason = %err.message, "xDS NACK");
                            let _ = events.send(XdsEvent::Nack {
                                node: node.clone(),
                                type_url: req.type_url.clone(),
                                version: req.version_info.clone(),
                                nonce: req.response_nonce.clone(),
                                reason: err.message.clone(),
                            });
                            if !names_changed {
                                continue; // wait for a new snapshot
                            }
                        } else if !req.response_nonce.is_empty() {
                            let _ = events.send(XdsEvent::Ack {
                                node: node.clone(),
                                type_url: req.type_url.clone(),
                                version: req.version_info.clone(),
                            });
                        }
                        let up_to_date = sub.sent_version == current.version
                            || (sub.sent_version.is_empty() && req.version_info == current.version);
                        if !req.response_nonce.is_empty() && up_to_date && !names_changed {
                            continue;
                        }
                        if !send(&tx, &current, &req.type_url, sub, &nonces, &events, &node).await {
                            return;
                        }
                    }
                    changed = snapshots.changed() => {
                        if changed.is_err() { return; }
                        current = snapshots.borrow_and_update().clone();
                        for (type_url, sub) in subs.iter_mut() {
                            if !send(&tx, &current, type_url, sub, &nonces, &events, &node).await {
                                return;
                            }
                        }
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<DeltaStream>, Status> {
        Err(Status::unimplemented(
            "homeostat serves state-of-the-world ADS only",
        ))
    }
}

/// Sends the snapshot's resources of `type_url` to one stream; `false` if the stream is gone.
async fn send(
    tx: &mpsc::Sender<Result<DiscoveryResponse, Status>>,
    snapshot: &XdsSnapshot,
    type_url: &str,
    sub: &mut Subscription,
    nonces: &AtomicU64,
    events: &broadcast::Sender<XdsEvent>,
    node: &str,
) -> bool {
    let Some(resources) = snapshot.resources(type_url, &sub.names) else {
        return true; // a type we do not serve: no answer, as Envoy's servers do
    };
    let nonce = nonces.fetch_add(1, Ordering::Relaxed).to_string();
    sub.nonce.clone_from(&nonce);
    sub.sent_version.clone_from(&snapshot.version);
    let response = DiscoveryResponse {
        version_info: snapshot.version.clone(),
        resources,
        type_url: type_url.to_owned(),
        nonce: nonce.clone(),
        ..DiscoveryResponse::default()
    };
    let _ = events.send(XdsEvent::Sent {
        node: node.to_owned(),
        type_url: type_url.to_owned(),
        version: snapshot.version.clone(),
        nonce,
    });
    tx.send(Ok(response)).await.is_ok()
}
