//! `homeostat-proxy --bootstrap proxy.yaml`: runs the bundled proxy from a static bootstrap
//! file (format: docs/proxy.md) until SIGINT/SIGTERM, then drains.
#![forbid(unsafe_code)]

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "homeostat-proxy", about = "homeostat's bundled L7 proxy")]
struct Args {
    /// The bootstrap file (YAML).
    #[arg(long, short)]
    bootstrap: PathBuf,
    /// Overrides the admin / stats address (default from the file, else 127.0.0.1:15090).
    #[arg(long)]
    admin: Option<std::net::SocketAddr>,
    /// Worker threads (default: one per core; 1 runs a single event loop).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "homeostat_proxy=info".into()),
        )
        .init();
    let args = Args::parse();
    let mut bootstrap = match homeostat_proxy::config::Bootstrap::load(&args.bootstrap) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("homeostat-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(a) = args.admin {
        bootstrap.admin.address = a;
    }
    // One thread: tokio's current-thread scheduler, an event loop like one nginx worker
    // process, without the work-stealing scheduler's cross-thread queues and wake-ups.
    let mut rt = match args.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    rt.enable_all();
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("homeostat-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let mut running = match homeostat_proxy::start(bootstrap).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("homeostat-proxy: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(listeners = ?running.listeners, admin = %running.admin, "serving");
        let stop = running.stopper();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("draining");
            let _ = stop.send(true);
        });
        running.wait().await;
        ExitCode::SUCCESS
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
