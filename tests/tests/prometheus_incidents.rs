//! Simulated incidents backfilled into a real Prometheus, read back through homeostat's
//! Prometheus adapter and judged by `homeostat recommend`.

use homeostat::cli::recommend::{Args, Output, Recommendation, recommend};
use homeostat_e2e::incident::{BASE_UNIX, simulate};
use homeostat_e2e::server::PrometheusServer;
use homeostat_e2e::tools::prometheus_tools;

fn args(
    url: &str,
    policy: &std::path::Path,
    current: Option<&std::path::Path>,
    at: i64,
    ns: &str,
) -> Args {
    Args {
        prometheus: url.to_string(),
        policy: policy.to_path_buf(),
        current: current.map(|p| p.to_path_buf()),
        at: Some(at.to_string()),
        namespace: Some(ns.to_string()),
        scrape_interval: 15,
        timeout: 10,
        output: Output::Json,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn explore_bad_canary() {
    let Some(tools) = prometheus_tools("explore_bad_canary") else {
        return;
    };
    let t0 = std::time::Instant::now();
    let inc = simulate("bad-canary.yaml", 25, "shop").unwrap();
    eprintln!("simulated in {:?}", t0.elapsed());
    let om = inc.exporter.write();
    eprintln!("openmetrics {} bytes", om.len());
    let server = PrometheusServer::backfilled(&tools, &om).unwrap();
    eprintln!("prometheus up at {} after {:?}", server.url, t0.elapsed());
    let dir = server.dir.path();
    let policy = dir.join("policy.yaml");
    let doc = serde_yaml::to_string(&inc.scenario.policies[0]).unwrap();
    std::fs::write(&policy, doc).unwrap();
    let current = dir.join("current.yaml");
    std::fs::write(
        &current,
        "weights: {stable: 90, canary: 10}\noutlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 10}\nretries: {attempts: 2, perTryTimeout: 25s, retryOn: \"connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes\"}\n",
    )
    .unwrap();
    let at = inc.exporter.last_scrape().unwrap();
    eprintln!("at {} ({} s after base)", at, at - BASE_UNIX);
    let rec: Recommendation = rt()
        .block_on(recommend(&args(
            &server.url,
            &policy,
            Some(&current),
            at,
            "shop",
        )))
        .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&rec).unwrap());
}
