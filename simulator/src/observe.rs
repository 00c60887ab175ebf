//! Turns scraped telemetry into the Governor's [`Observation`], the way the controller's
//! Prometheus adapter does: per-interval `increase()`s, ratios and `histogram_quantile`s, with
//! NaN (never zero) where a window had no traffic.

use std::collections::BTreeMap;

use homeostat_models::governor::{
    EndpointObservation, HpaConfig, MeshConfig, Observation, OutlierConfig, RetryConfig, Signals,
    SubsetObservation,
};
use homeostat_models::policy::Duration as PolicyDuration;

use crate::engine::{PodState, ServiceConfig, View};
use crate::telemetry::{Counters, PodSample};

/// Points of history sent with every observation (10 minutes at 15 s); the Governor feeds its
/// models each point once and keeps its own longer memory.
pub const WINDOW_POINTS: usize = 40;

/// Windows of one set of pods.
pub fn signals(view: &View<'_>, concurrency: u32, filter: &dyn Fn(&PodSample) -> bool) -> Signals {
    let pts = view.scrapes.points(WINDOW_POINTS, filter);
    let mut s = Signals::default();
    for (_, secs, c) in &pts {
        push_point(&mut s, *secs, c);
    }
    s.utilization = utilization(view, concurrency, filter);
    s
}

fn push_point(s: &mut Signals, secs: f64, c: &Counters) {
    s.request_rate.push(c.requests as f64 / secs);
    s.success_rate.push(if c.requests > 0 {
        1.0 - c.errors as f64 / c.requests as f64
    } else {
        f64::NAN
    });
    let q = |q: f64| c.quantile_ms(q).map_or(f64::NAN, |ms| ms / 1e3);
    s.latency_p50.push(q(0.5));
    s.latency_p90.push(q(0.9));
    s.latency_p99.push(q(0.99));
}

/// The callers' side of `service` (`reporter="source"`): the calls' rates and latency
/// quantiles; no utilisation (a caller's CPU is not the service's).
fn caller_signals(view: &View<'_>, service: usize) -> Signals {
    let mut s = Signals::default();
    for (_, secs, c) in view
        .callers
        .points(WINDOW_POINTS, |s| s.pod as usize == service)
    {
        push_point(&mut s, secs, &c);
    }
    s
}

/// Utilisation window of a set of pods: CPU seconds of own work per second, divided by the
/// pods' CPU requests — a pod's request is `concurrency` workers' worth.
fn utilization(view: &View<'_>, concurrency: u32, filter: &dyn Fn(&PodSample) -> bool) -> Vec<f64> {
    let ready = |s: &PodSample| filter(s) && view.pods[s.pod as usize].state == PodState::Ready;
    let pts = view.scrapes.points(WINDOW_POINTS, ready);
    let pods_per_point = view.scrapes.pods_per_point(WINDOW_POINTS, ready);
    pts.iter()
        .zip(pods_per_point)
        .map(|((_, secs, c), pods)| {
            if pods == 0 {
                f64::NAN
            } else {
                c.busy_ns as f64 / 1e9 / secs / (concurrency as f64 * pods as f64)
            }
        })
        .collect()
}

/// Percent weights summing to 100 (largest remainder), keyed by subset name.
pub fn percent_weights(view: &View<'_>, service: usize) -> BTreeMap<String, u32> {
    let w = &view.config[service].weights;
    let subs = &view.topology.services[service].subsets;
    let total: f64 = w.iter().sum();
    let mut out = BTreeMap::new();
    if subs.len() < 2 || total <= 0.0 {
        return out;
    }
    let raw: Vec<f64> = w.iter().map(|x| 100.0 * x / total).collect();
    let mut floor: Vec<u32> = raw.iter().map(|x| x.floor() as u32).collect();
    let mut left = 100 - floor.iter().sum::<u32>();
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by(|&a, &b| {
        (raw[b] - raw[b].floor())
            .total_cmp(&(raw[a] - raw[a].floor()))
            .then(a.cmp(&b))
    });
    for &i in &order {
        if left == 0 {
            break;
        }
        floor[i] += 1;
        left -= 1;
    }
    for (i, &sub) in subs.iter().enumerate() {
        out.insert(view.topology.subsets[sub].name.clone(), floor[i]);
    }
    out
}

pub fn mesh_config(cfg: &ServiceConfig, route_timeout: u64, hpa: Option<HpaConfig>) -> MeshConfig {
    let o = &cfg.outlier;
    MeshConfig {
        // The route's timeout; 0 is Istio's "none".
        route_timeout: (route_timeout > 0).then(|| PolicyDuration::from_nanos(route_timeout)),
        weights: BTreeMap::new(),
        outlier_detection: OutlierConfig {
            consecutive_5xx_errors: o.consecutive_5xx,
            interval: PolicyDuration::from_nanos(o.interval),
            base_ejection_time: PolicyDuration::from_nanos(o.base_ejection_time),
            max_ejection_percent: o.max_ejection_percent,
            max_ejection_time: PolicyDuration::from_nanos(o.max_ejection_time),
        },
        retries: RetryConfig {
            attempts: cfg.retries.attempts,
            per_try_timeout: cfg.retries.per_try_timeout.map(PolicyDuration::from_nanos),
            retry_on: cfg.retries.retry_on.clone(),
        },
        hpa,
    }
}

/// The observation of one governed service.
pub fn observe(
    view: &View<'_>,
    service: usize,
    hpa: Option<HpaConfig>,
    pod_startup_ns: u64,
) -> Observation {
    let topo = view.topology;
    let svc = &topo.services[service];
    let conc = svc.concurrency;
    let in_service = |s: &PodSample| topo.subsets[s.subset as usize].service == service;
    let service_signals = signals(view, conc, &in_service);
    let callers = caller_signals(view, service);
    let subsets = if svc.subsets.len() > 1 {
        svc.subsets
            .iter()
            .map(|&sub| {
                let sig = signals(view, conc, &|s: &PodSample| s.subset as usize == sub);
                SubsetObservation {
                    name: topo.subsets[sub].name.clone(),
                    signals: sig,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut endpoints = Vec::new();
    for (i, p) in view.pods.iter().enumerate() {
        if p.service as usize != service || !matches!(p.state, PodState::Ready | PodState::Crashed)
        {
            continue;
        }
        let sig = signals(view, conc, &|s: &PodSample| s.pod as usize == i);
        endpoints.push(EndpointObservation {
            name: format!("{}-{}", topo.subsets[p.subset as usize].label, p.index),
            subset: Some(topo.subsets[p.subset as usize].name.clone()),
            signals: sig,
        });
    }
    let mut config = mesh_config(&view.config[service], svc.timeout, hpa);
    config.weights = percent_weights(view, service);
    let end = view.scrapes.last_time().unwrap_or(view.now);
    Observation {
        service: svc.name.clone(),
        end: (end / 1_000_000_000) as i64,
        step_seconds: ((view.scrapes.interval_ns / 1_000_000_000) as i64).max(1),
        service_signals,
        callers,
        subsets,
        endpoints,
        config,
        pod_startup: Some(PolicyDuration::from_nanos(pod_startup_ns)),
    }
}
