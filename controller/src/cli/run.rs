//! `homeostat run`: the controller. Watches AdaptivePolicies (all namespaces, or one shard),
//! serves `/metrics`, `/healthz` and `/readyz`, serves the Alertmanager webhook when
//! `--webhook-listen` is given (with the reverts after a resolve), competes for the leader Lease
//! when asked, and stops gracefully on SIGTERM / Ctrl-C (in-flight reconciles finish, the Lease
//! is released).
//!
//! With `--bundled-mesh` it governs a bundled mesh instead, without Kubernetes: it serves the
//! mesh's description over ADS (`--xds-addr`), reads telemetry from the proxies' stats pages
//! (`--scrape`) or Prometheus, and runs the `--policy` files (`mesh: bundled`) through
//! `xds::govern` (docs/proxy.md, "Governed by homeostat").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::http::{self, Metrics};
use crate::reconcile::{self, Context, Shard, leader};
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use crate::crd::AdaptivePolicy;
use crate::remediation::{self, WebhookConfig};
use crate::telemetry::prometheus::{Prometheus, PrometheusConfig};
use crate::telemetry::proxy_scrape::{ProxyScraper, ScrapeConfig, Target};
use crate::telemetry::source::PrometheusSource;
use crate::telemetry::{BatchedSource, ObservationSource, ServiceKey};
use crate::webhook::{BearerToken, DEFAULT_MAX_BODY_BYTES};
use crate::xds::govern::{self, BundledPolicy};
use crate::xds::{AdsServer, BundledMesh};
use homeostat_models::policy::{Neighbour, sharing_target};

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
    /// Serve Alertmanager's webhook (`POST /alertmanager`) on this address; not served without.
    #[arg(long, requires = "webhook_token_file")]
    pub webhook_listen: Option<SocketAddr>,
    /// File holding the bearer token Alertmanager sends (a mounted Secret's key).
    #[arg(long, env = "HOMEOSTAT_WEBHOOK_TOKEN_FILE")]
    pub webhook_token_file: Option<PathBuf>,
    /// Certificate (PEM) to serve the webhook over TLS; needs --webhook-tls-key.
    #[arg(long, requires = "webhook_tls_key")]
    pub webhook_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --webhook-tls-cert.
    #[arg(long, requires = "webhook_tls_cert")]
    pub webhook_tls_key: Option<PathBuf>,
    /// Largest webhook body accepted (413 above).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub webhook_max_body_bytes: usize,
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

impl Args {
    /// The webhook's configuration, if it is to be served.
    fn webhook(&self) -> Option<WebhookConfig> {
        Some(WebhookConfig {
            listen: self.webhook_listen?,
            token_file: self.webhook_token_file.clone()?,
            tls: self
                .webhook_tls_cert
                .clone()
                .zip(self.webhook_tls_key.clone()),
            max_body_bytes: self.webhook_max_body_bytes,
        })
    }
}

/// How often the leader looks for resolved alerts whose changes may be given back: a few
/// times within the default 2-minute cooldown, so a revert lands within seconds of being due.
const REVERT_EVERY: Duration = Duration::from_secs(15);

/// `homeostat run`: the reconciler over one batched Prometheus source — one range query per
/// signal and level per interval for every policy (they share the Prometheus of `--prometheus`),
/// fanned out to the policies by Istio's service labels (`telemetry/source.rs`).
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
    rt.block_on(async {
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
    one_policy_per_target(&args.policies, &policies)?;
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
    let shard = Shard {
        namespace: args.namespace.clone(),
        label_selector: args.label_selector.clone(),
    };
    let mut background = Vec::new();
    if let Some(config) = args.webhook() {
        // Read before anything is served: a bad token file or certificate stops the start.
        let token = BearerToken::from_file(&config.token_file)?;
        if let Some((cert, key)) = &config.tls {
            crate::webhook::server_config(cert, key)?;
        }
        let (store, watch) = remediation::watch_policies(ctx.client.clone(), &shard);
        let hook = remediation::build(ctx.clone(), store.clone(), token, config.max_body_bytes);
        background.push(watch);
        background.push(tokio::spawn(async move {
            if let Err(e) = remediation::serve(&config, hook, shutdown_signal()).await {
                tracing::error!(error = %e, "the webhook stopped");
            }
        }));
        let governors = remediation::LoopGovernors::new(ctx.clone(), store.clone());
        background.push(tokio::spawn(remediation::run_reverts(
            ctx.clone(),
            governors,
            store,
            REVERT_EVERY,
            shutdown_signal(),
        )));
    }
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    reconcile::run(ctx, shard, shutdown_signal()).await;
    server.abort();
    for task in background {
        task.abort();
    }
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

/// Two policy files of one namespace that govern the same target would each rewrite it (the
/// reconciler's rule, `policy::sharing_target`): refused at start, naming both files.
fn one_policy_per_target(paths: &[std::path::PathBuf], policies: &[BundledPolicy]) -> Result<()> {
    let neighbours: Vec<Neighbour<'_>> = policies
        .iter()
        .map(|p| Neighbour {
            namespace: &p.namespace,
            spec: &p.spec,
        })
        .collect();
    let file = |k: usize| {
        paths
            .get(k)
            .map_or_else(String::new, |p| p.display().to_string())
    };
    for j in 0..policies.len() {
        // The later file is refused for the earlier one it repeats.
        if let Some((i, what)) = sharing_target(&neighbours, j)
            .into_iter()
            .find(|(i, _)| *i < j)
        {
            anyhow::bail!(
                "{}: spec.target: {what} is also governed by {}: two policies would each rewrite it; keep one",
                file(j),
                file(i),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use homeostat_models::policy::PolicySpec;

    /// The second of two files on `checkout` in one namespace is refused, naming both; the
    /// same service in another namespace, or another service, is not.
    #[test]
    fn two_policy_files_on_one_target_are_refused() {
        let p = |ns: &str, service: &str| BundledPolicy {
            namespace: ns.into(),
            spec: PolicySpec::for_service(service),
        };
        let paths: Vec<std::path::PathBuf> = ["a.yaml", "b.yaml", "c.yaml"]
            .iter()
            .map(Into::into)
            .collect();
        let err = one_policy_per_target(
            &paths,
            &[
                p("shop", "checkout"),
                p("shop", "cart"),
                p("shop", "checkout"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "c.yaml: spec.target: service checkout is also governed by a.yaml: two policies would each rewrite it; keep one"
        );
        assert!(
            one_policy_per_target(
                &paths,
                &[
                    p("shop", "checkout"),
                    p("shop", "cart"),
                    p("web", "checkout")
                ]
            )
            .is_ok()
        );
    }
}
