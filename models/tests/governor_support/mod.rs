//! Synthetic observations for the Governor's scenario and property tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use homeostat_models::governor::{
    Change, EndpointObservation, HpaConfig, KnobValue, MeshConfig, Observation, OutlierConfig,
    RetryConfig, Signals, SubsetObservation,
};
use homeostat_models::policy::{Duration, PolicySpec};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

pub const STEP: i64 = 15;
/// Points per window: 10 minutes at 15 s.
pub const LEN: usize = 40;

/// The design example's policy (shared/design/adaptivepolicy.example.yaml).
pub fn policy() -> PolicySpec {
    let yaml = r#"
target: {service: checkout, subsets: [stable, canary], horizontalPodAutoscaler: checkout}
objectives: {successRate: 0.999, latencyP99: 300ms}
controls:
  loadBalancing:    { maxStepPercent: 20, minWeightPercent: 0 }
  outlierDetection: { falseEjectionsPerHour: 0.1, maxEjectionPercent: { min: 10, max: 50 } }
  retries:          { maxAttempts: 4, budgetPercent: 20 }
  autoscaling:      { targetUtilization: { min: 40, max: 85 }, minReplicas: 2, maxReplicas: 50, forecastHorizon: 10m }
remediation:
  - onAlert: { alertname: CheckoutHighErrorRate }
    actions: [ejectOutliers, shiftToStable, scaleUp]
guardrails: {cooldown: 2m, maxChangesPerHour: 12, rollbackOnRegression: true}
"#;
    let spec: PolicySpec = serde_yaml::from_str(yaml).expect("policy");
    spec.validate().expect("valid policy");
    spec
}

/// One point of a service, subset or endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub rps: f64,
    pub success: f64,
    pub p50: f64,
    pub p99: f64,
    pub util: f64,
}

impl Point {
    pub fn healthy(rps: f64) -> Self {
        Self {
            rps,
            success: 0.9995,
            p50: 0.05,
            p99: 0.1,
            util: 0.5,
        }
    }

    pub fn missing() -> Self {
        Self {
            rps: f64::NAN,
            success: f64::NAN,
            p50: f64::NAN,
            p99: f64::NAN,
            util: f64::NAN,
        }
    }
}

pub fn signals(points: &[Point]) -> Signals {
    Signals {
        request_rate: points.iter().map(|p| p.rps).collect(),
        success_rate: points.iter().map(|p| p.success).collect(),
        latency_p50: points.iter().map(|p| p.p50).collect(),
        latency_p90: points.iter().map(|p| (p.p50 + p.p99) / 2.0).collect(),
        latency_p99: points.iter().map(|p| p.p99).collect(),
        utilization: points.iter().map(|p| p.util).collect(),
    }
}

/// Merges per-part points into the service view: rates add, success and latency are
/// request-weighted, utilisation averages.
pub fn merge(parts: &[&[Point]]) -> Vec<Point> {
    let len = parts.iter().map(|p| p.len()).min().unwrap_or(0);
    (0..len)
        .map(|i| {
            let pts: Vec<Point> = parts.iter().map(|p| p[p.len() - len + i]).collect();
            let rps: f64 = pts.iter().map(|p| p.rps).sum();
            let w = |f: fn(&Point) -> f64| pts.iter().map(|p| p.rps * f(p)).sum::<f64>() / rps;
            Point {
                rps,
                success: w(|p| p.success),
                p50: w(|p| p.p50),
                p99: pts.iter().map(|p| p.p99).fold(f64::NAN, f64::max),
                util: pts.iter().map(|p| p.util).sum::<f64>() / pts.len() as f64,
            }
        })
        .collect()
}

pub fn weights(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(n, w)| (n.to_string(), *w)).collect()
}

pub fn config(weights: BTreeMap<String, u32>) -> MeshConfig {
    MeshConfig {
        route_timeout: None,
        weights,
        outlier_detection: OutlierConfig::default(),
        retries: RetryConfig::default(),
        hpa: None,
    }
}

pub fn hpa(min: u32, max: u32, target: u32, current: u32) -> HpaConfig {
    HpaConfig {
        min_replicas: min,
        max_replicas: max,
        target_utilization_percent: target,
        current_replicas: current,
        replica_cap: None,
    }
}

pub struct ObsBuilder {
    pub obs: Observation,
}

impl ObsBuilder {
    pub fn new(end: i64, service: &[Point], config: MeshConfig) -> Self {
        Self {
            obs: Observation {
                service: "checkout".into(),
                end,
                step_seconds: STEP,
                service_signals: signals(service),
                callers: Default::default(),
                subsets: Vec::new(),
                endpoints: Vec::new(),
                config,
                pod_startup: Some(Duration::from_secs(120)),
            },
        }
    }

    pub fn subset(mut self, name: &str, points: &[Point]) -> Self {
        self.obs.subsets.push(SubsetObservation {
            name: name.into(),
            signals: signals(points),
        });
        self
    }

    pub fn endpoint(mut self, name: &str, points: &[Point]) -> Self {
        self.obs.endpoints.push(EndpointObservation {
            name: name.into(),
            subset: None,
            signals: signals(points),
        });
        self
    }

    /// An endpoint of subset `subset`.
    pub fn endpoint_in(mut self, name: &str, subset: &str, points: &[Point]) -> Self {
        self.obs.endpoints.push(EndpointObservation {
            name: name.into(),
            subset: Some(subset.into()),
            signals: signals(points),
        });
        self
    }

    /// One endpoint per series of `pods`, named `pod-0`, `pod-1`, …
    pub fn pods(self, pods: &[Vec<Point>]) -> Self {
        pods.iter()
            .enumerate()
            .fold(self, |b, (i, p)| b.endpoint(&format!("pod-{i}"), p))
    }

    pub fn build(self) -> Observation {
        self.obs
    }
}

/// The observation at `end` of a service whose endpoints are `pods` (`pod-0`, …) and whose
/// own series is theirs merged.
pub fn pods_observation(end: i64, pods: &[Vec<Point>], config: MeshConfig) -> Observation {
    let parts: Vec<&[Point]> = pods.iter().map(|p| p.as_slice()).collect();
    ObsBuilder::new(end, &merge(&parts), config)
        .pods(pods)
        .build()
}

/// What an adapter in Enforce mode does with a change: write it into the config in force.
pub fn apply(config: &mut MeshConfig, change: &Change) {
    match &change.proposed {
        KnobValue::Weights(w) => config.weights = w.clone(),
        KnobValue::OutlierDetection(o) => config.outlier_detection = o.clone(),
        KnobValue::Retries(r) => config.retries = r.clone(),
        KnobValue::Autoscaling(h) => config.hpa = Some(h.clone()),
    }
}

/// A seeded ChaCha generator (proptest's, so no extra dependency).
pub fn rng(seed: u8) -> TestRng {
    TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32])
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut TestRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Observed success rate of `requests` requests at true error rate `p`: errors drawn from the
/// normal approximation of the Poisson count (variance = mean), never negative.
pub fn noisy_success(rng: &mut TestRng, requests: f64, p: f64) -> f64 {
    let mean = requests * p;
    let errors = (mean + mean.sqrt() * normal(rng)).round().max(0.0);
    1.0 - errors / requests
}
