//! `homeostat run`: the controller. Watches AdaptivePolicies (all namespaces, or one shard),
//! serves `/metrics`, `/healthz` and `/readyz`, competes for the leader Lease when asked, and
//! stops gracefully on SIGTERM / Ctrl-C (in-flight reconciles finish, the Lease is released).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, Result};

use crate::http::{self, Metrics};
use crate::reconcile::{self, Context, Shard, leader};
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use crate::crd::AdaptivePolicy;
use crate::telemetry::prometheus::{Prometheus, PrometheusConfig};
use crate::telemetry::{BatchedSource, ObservationSource, ServiceKey};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only govern policies in this namespace (sharding: one replica set per namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only govern policies with these labels, e.g. `shard=a` (sharding large clusters).
    #[arg(long)]
    pub label_selector: Option<String>,
    /// Address of the metrics and health endpoints.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Compete for the `homeostat-leader` Lease; only the holder acts. Without it this replica
    /// always acts (run exactly one).
    #[arg(long)]
    pub leader_election: bool,
    /// Namespace of the Lease (defaults to $POD_NAMESPACE, then `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// The Prometheus (or Thanos / Mimir query frontend) holding Istio's standard metrics.
    #[arg(long, env = "HOMEOSTAT_PROMETHEUS")]
    pub prometheus: String,
}

/// `homeostat run`: the reconciler over one batched Prometheus source — one range query per
/// signal and level per interval for every policy (they share the Prometheus of `--prometheus`),
/// fanned out to the policies by Istio's service labels (`telemetry/source.rs`).
pub fn run(args: Args) -> Result<()> {
    let prom = Prometheus::new(PrometheusConfig::new(&args.prometheus))
        .map_err(|e| anyhow::anyhow!("--prometheus: {e}"))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(async {
            let source = BatchedSource::new(prom);
            let client = kube::Client::try_default()
                .await
                .context("connecting to the Kubernetes API (in-cluster or kubeconfig)")?;
            // Every governed service is in the first batch: without this, each policy's first
            // reconcile would fetch its service alone (10,000 lone fetches at start).
            source.register(governed(&client, &args).await?);
            serve(args, source).await
        })
}

/// The services of the policies this replica governs (its shard), as the batch names them.
async fn governed(client: &kube::Client, args: &Args) -> Result<Vec<ServiceKey>> {
    let api: Api<AdaptivePolicy> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut lp = ListParams::default();
    if let Some(sel) = &args.label_selector {
        lp = lp.labels(sel);
    }
    let list = api
        .list(&lp)
        .await
        .context("listing AdaptivePolicies to batch their telemetry")?;
    Ok(list
        .items
        .iter()
        .filter_map(|p| {
            Some(ServiceKey {
                namespace: p.namespace()?,
                service: p.spec.0.target.service.clone(),
            })
        })
        .collect())
}

/// Runs the controller with `source` until a termination signal.
pub async fn serve<S: ObservationSource>(args: Args, source: S) -> Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster or kubeconfig)")?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let leading = if args.leader_election {
        let ns = args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("homeostat-{}", std::process::id()));
        let (flag, _follower) = leader::elect(client.clone(), &ns, &identity)
            .await
            .context("starting leader election")?;
        flag
    } else {
        Arc::new(AtomicBool::new(true))
    };
    let ctx = Arc::new(Context::new(
        client,
        source,
        metrics.clone(),
        reconcile::system_clock(),
        leading,
    ));
    let router = http::router(metrics, ready.clone());
    let server = tokio::spawn(http::serve(args.metrics_addr, router, shutdown_signal()));
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let shard = Shard {
        namespace: args.namespace,
        label_selector: args.label_selector,
    };
    reconcile::run(ctx, shard, shutdown_signal()).await;
    server.abort();
    Ok(())
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
