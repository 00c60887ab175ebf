//! The webhook as `homeostat run` serves it: the controller's seams behind `webhook::router`,
//! on its own port (plain HTTP, or TLS when a certificate is configured), following the leader
//! election (a replica that does not lead answers 503 and Alertmanager retries).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use futures::StreamExt;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::{KubeDirectory, KubeSink, LoopGovernors, LoopTelemetry};
use crate::crd::AdaptivePolicy;
use crate::reconcile::{Context, Shard};
use crate::telemetry::ObservationSource;
use crate::webhook::{
    BearerToken, Leadership, Remediator, TlsListener, Webhook, router, server_config,
};

/// Where and how the webhook listens.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub listen: SocketAddr,
    pub token_file: PathBuf,
    /// Certificate and key (PEM); plain HTTP without them.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_body_bytes: usize,
}

/// The webhook over the controller's seams.
pub type ControllerWebhook<S> =
    Webhook<KubeDirectory<S>, LoopTelemetry<S>, KubeSink<S>, LoopGovernors<S>>;

/// The webhook sharing the reconciler's context (client, Governors, telemetry, metrics, clock,
/// leadership) and reading policies from `store`.
pub fn build<S: ObservationSource>(
    ctx: Arc<Context<S>>,
    store: Store<AdaptivePolicy>,
    token: BearerToken,
    max_body_bytes: usize,
) -> Arc<ControllerWebhook<S>> {
    let remediator = Remediator::new(
        KubeDirectory::new(ctx.clone(), store.clone()),
        LoopTelemetry(ctx.clone()),
        KubeSink::new(ctx.clone()),
        LoopGovernors::new(ctx.clone(), store),
        ctx.clock.clone(),
    );
    Arc::new(Webhook {
        remediator,
        token,
        leadership: Leadership::following(ctx.leader.clone()),
        max_body_bytes,
    })
}

/// A watch cache of the shard's AdaptivePolicies for the webhook and the reverts (the
/// reconciler keeps its own inside kube-runtime's `Controller`).
pub fn watch_policies(
    client: Client,
    shard: &Shard,
) -> (Store<AdaptivePolicy>, tokio::task::JoinHandle<()>) {
    let api: Api<AdaptivePolicy> = match &shard.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut wc = watcher::Config::default();
    if let Some(sel) = &shard.label_selector {
        wc = wc.labels(sel);
    }
    let (store, writer) = reflector::store();
    let task = tokio::spawn(watcher(api, wc).default_backoff().reflect(writer).for_each(
        |e| async move {
            if let Err(e) = e {
                tracing::debug!(error = %e, "policy watch for the webhook");
            }
        },
    ));
    (store, task)
}

/// Serves `webhook` on `config.listen` until `shutdown`.
pub async fn serve<S: ObservationSource>(
    config: &WebhookConfig,
    webhook: Arc<ControllerWebhook<S>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("--webhook-listen {}", config.listen))?;
    let app = router(webhook);
    match &config.tls {
        Some((cert, key)) => {
            let tls = server_config(cert, key)?;
            let listener = TlsListener::new(tcp, tls).context("starting the webhook's TLS")?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        None => {
            axum::serve(tcp, app)
                .with_graceful_shutdown(shutdown)
                .await?
        }
    }
    Ok(())
}
