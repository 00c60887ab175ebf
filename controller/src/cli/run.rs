//! `homeostat run`: the controller. Watches AdaptivePolicies (all namespaces, or one shard),
//! serves `/metrics`, `/healthz` and `/readyz`, competes for the leader Lease when asked, and
//! stops gracefully on SIGTERM / Ctrl-C (in-flight reconciles finish, the Lease is released).
//!
//! With `--bundled-mesh` it governs a bundled mesh instead, without Kubernetes: it serves the
//! mesh's description over ADS (`--xds-addr`), reads telemetry from the proxies' stats pages
//! (`--scrape`) or Prometheus, and runs the `--policy` files (`mesh: bundled`) through
//! `xds::govern` (docs/proxy.md, "Governed by homeostat").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, Result};

use crate::http::{self, Metrics};
use crate::reconcile::{self, Context, Shard, leader};
use crate::telemetry::ObservationSource;
use crate::telemetry::prometheus::{Prometheus, PrometheusConfig};
use crate::telemetry::proxy_scrape::{ProxyScraper, ScrapeConfig, Target};
use crate::telemetry::source::PrometheusSource;
use crate::xds::govern::{self, BundledPolicy};
use crate::xds::{AdsServer, BundledMesh};

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
    /// Required, except for a bundled mesh whose proxies are scraped directly (`--scrape`).
    #[arg(long, env = "HOMEOSTAT_PROMETHEUS")]
    pub prometheus: Option<String>,
    /// A bundled mesh's description (the proxy bootstrap's `routeConfigs` and `clusters`):
    /// serve it over ADS and govern the `--policy` files against it, without Kubernetes.
    #[arg(long)]
    pub bundled_mesh: Option<PathBuf>,
    /// Where the ADS server listens (istiod's plaintext xDS port).
    #[arg(long, default_value = "0.0.0.0:15010")]
    pub xds_addr: SocketAddr,
    /// Where applied changes to the bundled mesh are kept, so that a restart serves them
    /// (default: the description's path with `.applied.yaml`).
    #[arg(long, requires = "bundled_mesh")]
    pub bundled_state: Option<PathBuf>,
    /// AdaptivePolicy files governing the bundled mesh (`target.mesh: bundled`).
    #[arg(short = 'f', long = "policy", requires = "bundled_mesh")]
    pub policies: Vec<PathBuf>,
    /// A proxy's stats page to scrape directly, `pod=host:port` (`/stats/prometheus` is added)
    /// or `pod=http://host:port/path`; repeat per pod. The fast path instead of Prometheus.
    #[arg(long = "scrape", requires = "bundled_mesh")]
    pub scrape: Vec<String>,
    /// How often the proxies are scraped, e.g. `5s`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub scrape_every: std::time::Duration,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    homeostat_models::policy::Duration::parse(s)
        .map(|d| d.as_std())
        .map_err(|e| e.to_string())
}

/// `homeostat run`: the reconciler over the Prometheus adapter (one query set per policy and
/// interval; the batched source is not wired in yet).
pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if args.bundled_mesh.is_some() {
        return rt.block_on(serve_bundled(args));
    }
    let Some(url) = &args.prometheus else {
        anyhow::bail!("--prometheus (or HOMEOSTAT_PROMETHEUS) is required");
    };
    let prom = Prometheus::new(PrometheusConfig::new(url))
        .map_err(|e| anyhow::anyhow!("--prometheus: {e}"))?;
    rt.block_on(serve(args, PrometheusSource::new(prom)))
}

/// A bundled mesh: ADS server, direct scrapes (or Prometheus), the policies' loops.
pub async fn serve_bundled(args: Args) -> Result<()> {
    let file = args.bundled_mesh.clone().context("--bundled-mesh")?;
    let state = args
        .bundled_state
        .clone()
        .unwrap_or_else(|| file.with_extension("applied.yaml"));
    let mut policies = Vec::new();
    for path in &args.policies {
        let (spec, ns) = crate::cli::recommend::read_policy(path)?;
        if spec.target.mesh != homeostat_models::policy::Mesh::Bundled {
            anyhow::bail!(
                "{}: spec.target.mesh: must be `bundled` to govern --bundled-mesh",
                path.display()
            );
        }
        policies.push(BundledPolicy {
            namespace: ns.unwrap_or_else(|| "default".into()),
            spec,
        });
    }
    let (mesh, snapshots) =
        BundledMesh::open(&file, Some(state)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ads = AdsServer::new(snapshots)
        .spawn(args.xds_addr)
        .await
        .with_context(|| format!("--xds-addr {}", args.xds_addr))?;
    tracing::info!(%ads, "serving ADS for the bundled mesh");
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(true));
    let server = tokio::spawn(http::serve(
        args.metrics_addr,
        http::router(metrics.clone(), ready),
        shutdown_signal(),
    ));
    let mesh = Arc::new(mesh);
    if let Some(url) = &args.prometheus {
        let prom = Prometheus::new(PrometheusConfig::new(url))
            .map_err(|e| anyhow::anyhow!("--prometheus: {e}"))?;
        let source = Arc::new(PrometheusSource::new(prom));
        govern::run(mesh, policies, source, metrics, shutdown_signal()).await;
    } else {
        if args.scrape.is_empty() && !policies.is_empty() {
            anyhow::bail!("--scrape pod=host:port (or --prometheus) is needed for telemetry");
        }
        let targets = args
            .scrape
            .iter()
            .map(|s| Target::parse(s).map_err(|e| anyhow::anyhow!("--scrape {e}")))
            .collect::<Result<Vec<_>>>()?;
        let mut cfg = ScrapeConfig::new(targets);
        let longest = policies
            .iter()
            .map(|p| p.spec.telemetry.lookback.as_std() + p.spec.telemetry.interval.as_std())
            .max()
            .unwrap_or_default();
        cfg.retain = cfg.retain.max(longest);
        let scraper = ProxyScraper::new(cfg);
        let scraping = scraper.spawn(args.scrape_every);
        govern::run(
            mesh,
            policies,
            Arc::new(scraper),
            metrics,
            shutdown_signal(),
        )
        .await;
        scraping.abort();
    }
    server.abort();
    Ok(())
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
