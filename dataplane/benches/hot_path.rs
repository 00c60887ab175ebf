//! The simulator's per-request hot path: route split, balancer pick, request start/end, outlier
//! result, retry-budget check. One iteration = one simulated request on a 10-endpoint subset.
#![forbid(unsafe_code)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use homeostat_dataplane::balancer::Balancer;
use homeostat_dataplane::cluster::Cluster;
use homeostat_dataplane::config::{
    BalancerConfig, BalancerKind, OutlierConfig, RetryLimit, RetryPolicy,
};
use homeostat_dataplane::outlier::{Outcome, OutlierDetector};
use homeostat_dataplane::retry::RetryBudget;
use homeostat_dataplane::split::WeightedSplit;
use homeostat_dataplane::time::MILLISECOND;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::time::Duration;

const ENDPOINTS: usize = 10;
/// One request per simulated millisecond: 1,000 req/s, so outlier sweeps run every 10,000.
const STEP: u64 = MILLISECOND;

fn request_cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_cycle");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for kind in [
        BalancerKind::RoundRobin,
        BalancerKind::LeastRequest,
        BalancerKind::PeakEwma,
    ] {
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{kind:?}")),
            &kind,
            |bench, &kind| {
                let cfg = BalancerConfig {
                    kind,
                    ..BalancerConfig::default()
                };
                let mut balancer = Balancer::new(cfg, &[1; ENDPOINTS]);
                let mut outlier = OutlierDetector::new(OutlierConfig::default(), ENDPOINTS);
                let budget = RetryBudget::new(RetryLimit::envoy_budget());
                let split = WeightedSplit::new(&[90, 10]).expect("valid split");
                let mut rng = ChaCha8Rng::seed_from_u64(42);
                let mut now = 0u64;
                bench.iter(|| {
                    now += STEP;
                    for idx in outlier.tick(now) {
                        balancer.set_healthy(idx, true);
                    }
                    let subset = split.pick(rng.next_u64());
                    let Some(ep) = balancer.pick(now, &mut rng) else {
                        return black_box(subset);
                    };
                    balancer.on_request_start(ep);
                    // 1 % of requests fail with a 503, host 3 fails them all.
                    let draw = rng.next_u64();
                    let failed = ep == 3 || draw % 100 == 0;
                    let outcome = if failed {
                        Outcome::GatewayError
                    } else {
                        Outcome::Success
                    };
                    balancer.on_request_end(now, ep, 20 * MILLISECOND + draw % (5 * MILLISECOND));
                    if let Some(e) = outlier.on_outcome(now, ep, outcome) {
                        balancer.set_healthy(e.endpoint, false);
                    }
                    black_box(budget.try_acquire(u64::from(balancer.active(ep)) + 50, 2));
                    black_box(subset + ep)
                });
            },
        );
    }
    group.finish();
}

/// The same request through [`Cluster`], the pod-id-keyed wrapper the simulator uses: adds the
/// id lookups and retry accounting.
fn cluster_cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("cluster_cycle");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for kind in [BalancerKind::RoundRobin, BalancerKind::LeastRequest] {
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{kind:?}")),
            &kind,
            |bench, &kind| {
                let cfg = BalancerConfig {
                    kind,
                    ..BalancerConfig::default()
                };
                let mut cluster = Cluster::new(
                    0,
                    cfg,
                    Some(OutlierConfig::default()),
                    RetryLimit::envoy_budget(),
                );
                let pods: Vec<(u32, u32)> = (100..100 + ENDPOINTS as u32).map(|p| (p, 1)).collect();
                cluster.set_endpoints(0, &pods);
                let policy = RetryPolicy::default();
                let mut rng = ChaCha8Rng::seed_from_u64(42);
                let mut now = 0u64;
                bench.iter(|| {
                    now += STEP;
                    cluster.tick(now);
                    let Some(pod) = cluster.pick(now, &mut rng) else {
                        return black_box(0);
                    };
                    let draw = rng.next_u64();
                    let outcome = if pod == 103 || draw % 100 == 0 {
                        Outcome::GatewayError
                    } else {
                        Outcome::Success
                    };
                    let rtt = 20 * MILLISECOND + draw % (5 * MILLISECOND);
                    black_box(cluster.end_attempt(now, pod, rtt, outcome, false));
                    // Failed tries are retried once on another pod, which succeeds.
                    if outcome != Outcome::Success
                        && cluster.try_begin_retry()
                        && let Some(p2) = cluster.pick_retry(now, &mut rng, &[pod], &policy)
                    {
                        black_box(cluster.end_attempt(now, p2, rtt, Outcome::Success, true));
                    }
                    black_box(pod)
                });
            },
        );
    }
    group.finish();
}

fn pick_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for kind in [
        BalancerKind::RoundRobin,
        BalancerKind::LeastRequest,
        BalancerKind::PeakEwma,
    ] {
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{kind:?}")),
            &kind,
            |bench, &kind| {
                let cfg = BalancerConfig {
                    kind,
                    ..BalancerConfig::default()
                };
                let mut balancer = Balancer::new(cfg, &[1; ENDPOINTS]);
                let mut rng = ChaCha8Rng::seed_from_u64(42);
                let mut now = 0u64;
                bench.iter(|| {
                    now += STEP;
                    black_box(balancer.pick(now, &mut rng))
                });
            },
        );
    }
    // Unequal weights take the EDF heap path (round robin) and the weighted EDF (least request).
    let weights: Vec<u32> = (1..=ENDPOINTS as u32).collect();
    for kind in [BalancerKind::RoundRobin, BalancerKind::LeastRequest] {
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{kind:?}Weighted")),
            &kind,
            |bench, &kind| {
                let cfg = BalancerConfig {
                    kind,
                    ..BalancerConfig::default()
                };
                let mut balancer = Balancer::new(cfg, &weights);
                let mut rng = ChaCha8Rng::seed_from_u64(42);
                bench.iter(|| black_box(balancer.pick(0, &mut rng)));
            },
        );
    }
    group.finish();
}

fn outlier_on_result(c: &mut Criterion) {
    let mut group = c.benchmark_group("outlier");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("on_outcome", |bench| {
        let mut outlier = OutlierDetector::new(OutlierConfig::default(), ENDPOINTS);
        let mut i = 0usize;
        bench.iter(|| {
            i = i.wrapping_add(1);
            let outcome = if i.is_multiple_of(7) {
                Outcome::ServerError
            } else {
                Outcome::Success
            };
            black_box(outlier.on_outcome(0, i % ENDPOINTS, outcome))
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    request_cycle,
    cluster_cycle,
    pick_only,
    outlier_on_result
);
criterion_main!(benches);
