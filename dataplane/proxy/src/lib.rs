//! `homeostat-proxy`: the bundled L7 proxy. hyper 1 moves the bytes; every decision — route
//! split, endpoint choice, outlier ejection, retry, back-off, retry budget — is made by the
//! `homeostat-dataplane` state machines, the same code the simulator runs, so what the
//! simulator predicts is what this proxy does.
//!
//! ```text
//!  client ─► listener (server) ─► Forwarder::handle ─► RouteTable::find ─► WeightedSplit
//!                                       │                                        │
//!                                       ▼                                        ▼
//!                              Telemetry::record ◄── Metered body ◄── Upstream (dataplane
//!                                       │                              Cluster + hyper client)
//!                                       ▼
//!                          admin: /stats/prometheus, /ready, /config_dump
//! ```
//!
//! # Layout
//!
//! * [`config`] — the bootstrap file (Envoy-shaped YAML) and its validation, errors naming
//!   file and field.
//! * [`snapshot`] — the configuration in force (compiled routes + live clusters), swapped
//!   whole; clusters that stay keep their state.
//! * [`routing`] — virtual hosts by host, routes by path prefix, weighted clusters.
//! * [`upstream`] — one cluster: the dataplane `Cluster` behind a mutex, endpoint addresses,
//!   the HTTP clients, per-endpoint counters.
//! * [`pool`] — idle HTTP/1.1 upstream connections per endpoint, reused when a response ends.
//! * [`forward`] — one request end to end: body limits, attempts, retries, timeouts.
//! * [`body`] — the boxed body type, local replies, the metered response body.
//! * [`telemetry`] — Istio's standard metrics and the upstream counters, Prometheus text.
//! * [`server`] — accepting HTTP/1.1 + HTTP/2 connections with bounded resources.
//! * [`admin`] — the admin / stats listener.
//! * [`xds`] — the ADS client (state-of-the-world CDS / EDS / RDS, ACK / NACK, reconnect) and
//!   the conversion of Envoy's v3 resources.
//! * [`test_upstream`] — a loopback upstream with injectable errors, latency and resets, for
//!   tests and the benchmark.
//! * [`clock`] — tokio time as the dataplane's `Nanos` (pausable in tests).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
pub mod body;
pub mod clock;
pub mod config;
pub mod forward;
pub mod pool;
pub mod routing;
pub mod server;
pub mod snapshot;
pub mod telemetry;
pub mod test_upstream;
pub mod upstream;
pub mod xds;

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A running proxy: the addresses it bound and the handle to stop it.
#[derive(Debug)]
pub struct Running {
    /// Bound address of each listener, in bootstrap order (useful with port 0).
    pub listeners: Vec<SocketAddr>,
    /// Bound address of the admin listener.
    pub admin: SocketAddr,
    /// The configuration store (an xDS client or a test publishes updates through it).
    pub store: Arc<snapshot::SnapshotStore>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and waits for the listeners to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// Waits until every listener has ended (after [`Running::shutdown`] or a stop signal).
    pub async fn wait(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// A handle that stops the proxy when sent `true`.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Binds every listener and the admin port and starts serving `bootstrap` (already
/// validated, e.g. by [`config::Bootstrap::load`]).
pub async fn start(bootstrap: config::Bootstrap) -> anyhow::Result<Running> {
    let clock = clock::Clock::start();
    let store =
        Arc::new(snapshot::SnapshotStore::new(&bootstrap, clock).map_err(anyhow::Error::msg)?);
    let telemetry = Arc::new(telemetry::Telemetry::new(&bootstrap.node));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut bound = Vec::with_capacity(bootstrap.listeners.len());
    for l in &bootstrap.listeners {
        let listener = TcpListener::bind(l.address).await.map_err(|e| {
            anyhow::anyhow!("listeners {:?}: cannot bind {}: {e}", l.name, l.address)
        })?;
        bound.push(listener.local_addr()?);
        let fwd = Arc::new(forward::Forwarder {
            store: store.clone(),
            telemetry: telemetry.clone(),
            limits: bootstrap.limits.clone(),
            route_config: l.route_config.clone(),
        });
        let handle = move |req| fwd.clone().handle(req);
        tasks.spawn(server::serve(
            listener,
            bootstrap.limits.clone(),
            handle,
            stopped_signal(stopped.clone()),
        ));
    }
    if let Some(ads) = &bootstrap.ads {
        let cfg = xds::AdsClientConfig {
            server: ads.address.clone(),
            node_id: bootstrap.node.id.clone(),
            route_configs: bootstrap
                .listeners
                .iter()
                .map(|l| l.route_config.clone())
                .collect(),
        };
        tasks.spawn(xds::run(cfg, store.clone(), stopped.clone(), None));
    }
    let admin_listener = TcpListener::bind(bootstrap.admin.address)
        .await
        .map_err(|e| anyhow::anyhow!("admin: cannot bind {}: {e}", bootstrap.admin.address))?;
    let admin_addr = admin_listener.local_addr()?;
    let admin_limits = admin::limits(&bootstrap.limits);
    let admin = Arc::new(admin::Admin {
        store: store.clone(),
        telemetry,
        bootstrap,
    });
    let handle = move |req| admin.clone().handle(req);
    tasks.spawn(server::serve(
        admin_listener,
        admin_limits,
        handle,
        stopped_signal(stopped),
    ));
    Ok(Running {
        listeners: bound,
        admin: admin_addr,
        store,
        stop,
        tasks,
    })
}

async fn stopped_signal(mut rx: watch::Receiver<bool>) {
    // A dropped sender also means stop.
    let _ = rx.wait_for(|&s| s).await;
}
