//! Benchmark: one `BatchedSource` governing N services on a real Prometheus.
//!
//! ```sh
//! cargo run --release -p homeostat-e2e --bin bench-telemetry -- [services] [minutes]
//! ```
//!
//! Generates N services × 1 pod of Istio series (requests by code, the 20 duration buckets and
//! their count, CPU usage and requests: 25 series a pod) scraped every 15 s for `minutes` + ½
//! minute, backfills them with promtool, starts Prometheus, then, as a reconciler would at two
//! consecutive 15 s intervals, asks an Observation for every service: the first interval fetches
//! the whole lookback (`minutes`), the second only the new step. Prints wall time of the
//! batched queries, CPU and wall time to build the N Observations, and peak memory of this
//! process and of Prometheus. Finally builds N Observations of a 1 h lookback (240 points)
//! in memory, without Prometheus, to time the fan-out at the default lookback.
#![forbid(unsafe_code)]

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use homeostat::telemetry::fanout::{Answer, Batch, Series};
use homeostat::telemetry::grid::Grid;
use homeostat::telemetry::promql::{
    LE, Labels, Level, SERVICE_NAME, SERVICE_NAMESPACE, Signal, VERSION,
};
use homeostat::telemetry::{
    BatchedSource, ObservationSource, ObserveRequest, Prometheus, PrometheusConfig, ServiceKey,
};
use homeostat_e2e::incident::BASE_UNIX;
use homeostat_e2e::server::PrometheusServer;
use homeostat_e2e::tools::prometheus_tools;
use homeostat_models::policy::{Duration, PolicySpec};
use homeostat_simulator::openmetrics::{Exporter, PodMeta};
use homeostat_simulator::telemetry::{Counters, ISTIO_BUCKETS_MS, NBUCKETS};

/// Cumulative share of requests at or under each Istio bound (0.5, 1, 5, 10, 25, 50, 100, 250,
/// 500 ms, ... +Inf): a service with a ~25 ms median.
const CUM: [f64; NBUCKETS] = [
    0.0, 0.0, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
    1.0, 1.0,
];

fn counters(service: usize, scrape: u64) -> Counters {
    let rate = 5 + (service % 20) as u64;
    let requests = rate * 15 * scrape;
    let mut c = Counters {
        requests,
        errors: requests / 1000,
        busy_ns: scrape * 15 * 200_000_000,
        ..Counters::default()
    };
    let mut below = 0u64;
    for (i, f) in CUM.iter().enumerate() {
        let cum = (requests as f64 * f).floor() as u64;
        c.buckets[i] = cum - below;
        below = cum;
    }
    c
}

fn cpu_seconds() -> f64 {
    // utime + stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn status_kb(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn request(i: usize, end: i64, lookback_s: u64) -> ObserveRequest {
    let mut spec = PolicySpec::for_service(&format!("svc{i}"));
    spec.telemetry.lookback = Duration::from_secs(lookback_s);
    ObserveRequest::unconfigured("bench", spec, end)
}

/// Asks every service's Observation at `end`; (seconds of the first call, which fetches the
/// batch; wall and CPU seconds of the other calls, which build from it).
fn interval(
    rt: &tokio::runtime::Runtime,
    src: &BatchedSource,
    n: usize,
    end: i64,
    lookback_s: u64,
) -> Result<(f64, f64, f64)> {
    let t = Instant::now();
    rt.block_on(src.observe(&request(0, end, lookback_s)))
        .map_err(|e| anyhow!("{e}"))?;
    let fetch = t.elapsed().as_secs_f64();
    let (t, cpu) = (Instant::now(), cpu_seconds());
    for i in 1..n {
        rt.block_on(src.observe(&request(i, end, lookback_s)))
            .map_err(|e| anyhow!("svc{i}: {e}"))?;
    }
    Ok((fetch, t.elapsed().as_secs_f64(), cpu_seconds() - cpu))
}

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let n: usize = argv
        .next()
        .map_or(Ok(10_000), |a| a.parse())
        .context("services")?;
    let minutes: u64 = argv
        .next()
        .map_or(Ok(3), |a| a.parse())
        .context("minutes")?;
    let tools = prometheus_tools("bench-telemetry").ok_or_else(|| anyhow!("no prometheus"))?;

    // Scrapes at 0, 15, …, minutes·60 + 15 s.
    let scrapes = minutes * 4 + 2;
    let t = Instant::now();
    let mut ex = Exporter::new(BASE_UNIX, "bench");
    for j in 0..scrapes {
        let pods = (0..n)
            .map(|i| {
                let meta = PodMeta {
                    service: format!("svc{i}"),
                    version: "v1".into(),
                    name: format!("svc{i}-0"),
                    cpu_cores: 1,
                };
                (i as u32, meta, counters(i, j), true)
            })
            .collect();
        ex.record(BASE_UNIX + 15 * j as i64, pods);
    }
    let dir = tempfile::tempdir()?;
    let om = dir.path().join("bench.om");
    let text = ex.write();
    std::fs::write(&om, &text)?;
    println!(
        "generated {n} services × 25 series × {scrapes} scrapes ({:.0} MB) in {:.1} s",
        text.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    drop(text);
    drop(ex);
    let t = Instant::now();
    let server = PrometheusServer::backfilled_files(&tools, dir, &[om])?;
    println!(
        "backfilled and started Prometheus in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut cfg = PrometheusConfig::new(&server.url);
    cfg.timeout = std::time::Duration::from_secs(120);
    let src = BatchedSource::new(Prometheus::new(cfg).map_err(|e| anyhow!("{e}"))?);
    let lookback_s = minutes * 60;
    src.register((0..n).map(|i| ServiceKey::of(&request(i, 0, lookback_s))));
    let end1 = BASE_UNIX + 15 * (scrapes as i64 - 2);
    let (fetch, wall, cpu) = interval(&rt, &src, n, end1, lookback_s)?;
    println!(
        "interval 1 (whole {minutes} min lookback, {} points): batch fetch {fetch:.2} s; \
         {} more Observations built in {wall:.2} s wall, {cpu:.2} s CPU",
        lookback_s / 15,
        n - 1
    );
    let (fetch, wall, cpu) = interval(&rt, &src, n, end1 + 15, lookback_s)?;
    println!(
        "interval 2 (one new step): batch fetch {fetch:.2} s; {} more Observations built in \
         {wall:.2} s wall, {cpu:.2} s CPU",
        n - 1
    );
    let prom_pid = server.pid().map(|p| p.to_string()).unwrap_or_default();
    println!(
        "peak RSS: this process {} MB, Prometheus {} MB",
        status_kb("self", "VmHWM:") / 1024,
        status_kb(&prom_pid, "VmHWM:") / 1024
    );
    drop(server);

    // In memory: N services × (service, subset, pod) × 5 Istio signals + CPU, 240 points.
    let grid = Grid::ending(BASE_UNIX + 3600, 15, 3600);
    let pts: Vec<(f64, f64)> = (0..grid.points)
        .map(|k| ((grid.start() + 15 * k as i64) as f64, 1.0))
        .collect();
    let labels = |i: usize, level: Level| {
        let mut m = HashMap::from([
            (SERVICE_NAMESPACE.to_string(), "bench".to_string()),
            (SERVICE_NAME.to_string(), format!("svc{i}")),
        ]);
        if level != Level::Service {
            m.insert(VERSION.to_string(), "v1".into());
        }
        if level == Level::Pod {
            m.insert("pod".into(), format!("svc{i}-0"));
        }
        m
    };
    // The answers as the Prometheus adapter receives them: the two rates at every level, the
    // duration buckets per pod (20 series a pod: Istio's 19 bounds and +Inf).
    let mut answers = Vec::new();
    for level in Level::ALL {
        for signal in [Signal::RequestRate, Signal::SuccessRate] {
            answers.push(Answer {
                signal,
                level,
                query: String::new(),
                series: (0..n)
                    .map(|i| Series {
                        labels: labels(i, level),
                        samples: pts.clone(),
                    })
                    .collect(),
            });
        }
    }
    let bounds = ISTIO_BUCKETS_MS
        .iter()
        .map(|b| b.to_string())
        .chain(std::iter::once("+Inf".to_string()));
    answers.push(Answer {
        signal: Signal::LatencyBuckets,
        level: Level::Pod,
        query: String::new(),
        series: bounds
            .enumerate()
            .flat_map(|(k, le)| {
                let pts = &pts;
                (0..n).map(move |i| {
                    let mut l = labels(i, Level::Pod);
                    l.insert(LE.to_string(), le.clone());
                    Series {
                        labels: l,
                        // Cumulative: bucket k holds k + 1 requests per second.
                        samples: pts.iter().map(|(t, _)| (*t, (k + 1) as f64)).collect(),
                    }
                })
            })
            .collect(),
    });
    for signal in [Signal::CpuUsage, Signal::CpuRequests] {
        answers.push(Answer {
            signal,
            level: Level::Pod,
            query: String::new(),
            series: (0..n)
                .map(|i| Series {
                    labels: HashMap::from([
                        ("namespace".to_string(), "bench".to_string()),
                        ("pod".to_string(), format!("svc{i}-0")),
                    ]),
                    samples: pts.clone(),
                })
                .collect(),
        });
    }
    let keys: BTreeSet<ServiceKey> = (0..n)
        .map(|i| ServiceKey::of(&request(i, 0, 3600)))
        .collect();
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let batch =
        Batch::build(grid, keys, &answers, &Labels::default()).map_err(|e| anyhow!("{e}"))?;
    let (build_wall, build_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    drop(answers);
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let mut points = 0usize;
    for i in 0..n {
        let o = batch
            .observation(&request(i, grid.end, 3600))
            .map_err(|e| anyhow!("{e}"))?;
        points += o.service_signals.request_rate.len();
    }
    println!(
        "in memory, 1 h lookback ({} points): filing the batch {build_wall:.2} s wall / \
         {build_cpu:.2} s CPU; {n} Observations {:.2} s wall / {:.2} s CPU ({points} service points)",
        grid.points,
        t.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );
    println!(
        "peak RSS of this process: {} MB",
        status_kb("self", "VmHWM:") / 1024
    );
    Ok(())
}
