//! `Governor::step` over 10,000 services, each with two subsets (stable/canary), ten endpoints
//! and an HPA, 10-minute windows at 15 s (40 points per signal). One in fifty services has a
//! failing canary, one in fifty a bad pod, so the planners' slow paths run too. Each iteration is
//! one control-loop run: every service's window end advances by one step, so the streaming
//! models see one new point per service, as in production.
//!
//! Run: `cargo bench -p homeostat-models --bench governor`
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use homeostat_models::governor::{
    EndpointObservation, Governor, HpaConfig, MeshConfig, Observation, OutlierConfig, RetryConfig,
    Signals, SubsetObservation,
};
use homeostat_models::policy::PolicySpec;

const SERVICES: usize = 10_000;
const LEN: usize = 40;
const STEP: i64 = 15;
const T0: i64 = 1_700_000_000;

fn signals(rps: f64, success: f64, wiggle: f64) -> Signals {
    let f = |base: f64, k: usize| base * (1.0 + wiggle * ((k as f64) * 0.7).sin());
    Signals {
        request_rate: (0..LEN).map(|k| f(rps, k)).collect(),
        success_rate: (0..LEN).map(|_| success).collect(),
        latency_p50: (0..LEN).map(|k| f(0.05, k)).collect(),
        latency_p90: (0..LEN).map(|k| f(0.08, k)).collect(),
        latency_p99: (0..LEN).map(|k| f(0.1, k)).collect(),
        utilization: (0..LEN).map(|k| f(0.5, k)).collect(),
    }
}

fn observation(i: usize) -> Observation {
    let rps = 50.0 + (i % 97) as f64;
    let bad_canary = i % 50 == 7;
    let bad_pod = i % 50 == 13;
    let weights: BTreeMap<String, u32> = [("stable".to_string(), 80), ("canary".to_string(), 20)]
        .into_iter()
        .collect();
    Observation {
        service: format!("svc-{i:05}"),
        end: T0,
        step_seconds: STEP,
        service_signals: signals(rps, 0.9995, 0.05),
        callers: Default::default(),
        subsets: vec![
            SubsetObservation {
                name: "stable".into(),
                signals: signals(0.8 * rps, 0.9995, 0.05),
            },
            SubsetObservation {
                name: "canary".into(),
                signals: signals(0.2 * rps, if bad_canary { 0.9 } else { 0.9995 }, 0.05),
            },
        ],
        endpoints: (0..10)
            .map(|e| EndpointObservation {
                name: format!("pod-{e}"),
                subset: None,
                signals: signals(
                    rps / 10.0,
                    if bad_pod && e == 3 { 0.5 } else { 0.9995 },
                    0.05,
                ),
            })
            .collect(),
        config: MeshConfig {
            route_timeout: None,
            weights,
            outlier_detection: OutlierConfig::default(),
            retries: RetryConfig::default(),
            hpa: Some(HpaConfig {
                min_replicas: 2,
                max_replicas: 50,
                target_utilization_percent: 50,
                current_replicas: ((rps / 10.0).ceil() as u32).max(2),
                replica_cap: None,
            }),
        },
        pod_startup: None,
    }
}

fn bench(c: &mut Criterion) {
    let mut spec = PolicySpec::for_service("svc");
    spec.target.subsets = vec!["stable".into(), "canary".into()];
    spec.controls.autoscaling.max_replicas = Some(50);
    let mut observations: Vec<Observation> = (0..SERVICES).map(observation).collect();
    let mut gov = Governor::new();
    let mut now = T0;
    // Warm-up run: every service gets its state.
    for obs in &observations {
        black_box(gov.step(now, obs, &spec));
    }
    let mut group = c.benchmark_group("governor");
    group.sample_size(10);
    group.bench_function("step_10000_services", |b| {
        b.iter(|| {
            now += STEP;
            let mut changes = 0usize;
            for obs in observations.iter_mut() {
                obs.end = now;
                changes += gov.step(now, obs, &spec).plan.changes.len();
            }
            black_box(changes)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
