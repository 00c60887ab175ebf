//! The `tuned` baseline: the static DestinationRule and VirtualService a careful SRE writes from
//! Istio's and Envoy's documentation, applied to every service from the start, with the
//! scenario's HPAs (if any) at the stock 70 % target. Nothing moves during the run.
//!
//! Every value and where it comes from:
//!
//! | field | value | source |
//! |---|---|---|
//! | `outlierDetection.consecutive5xxErrors` | 5 | Istio/Envoy default (`consecutive_5xx`) |
//! | `outlierDetection.interval` | 10 s | Istio/Envoy default |
//! | `outlierDetection.baseEjectionTime` | 30 s | Istio/Envoy default |
//! | `outlierDetection.maxEjectionPercent` | 50 | raised from the 10 % default: with 10 %, a service of fewer than 10 pods can never eject one (Envoy rounds the cap down unless `always_eject_one_host`), which Istio's own circuit-breaking task shows by raising it; 50 keeps half the hosts whatever happens |
//! | `retries.attempts` | 3 | Istio VirtualService reference example (`HTTPRetry`) |
//! | `retries.perTryTimeout` | route timeout ÷ (attempts + 1), per service, but never below the service's unloaded p99 (then that p99; none if it is not below the route timeout) | the route timeout bounds all tries together (Istio's timeouts and retries docs), so each of the 4 tries gets an equal share of it; a fixed value (the reference example's 2 s) would cut every try of a service whose requests take longer — LLM inference in `azure-trace`. A try cut below the latency the service normally has fails for no fault of the pod (Envoy answers it 504 and retries into the same cut), so the SRE, who reads that p99 off the service's dashboard, never sets it lower ([`latency_floor`]) |
//! | `retries.retryOn` | `5xx,gateway-error,connect-failure,refused-stream` | Envoy router `x-envoy-retry-on` conditions for server errors plus Istio's connection conditions |
//! | retry budget | 20 %, at least 3 concurrent | Envoy `RetryBudget` defaults (Istio needs an EnvoyFilter for it) |
//! | balancer | `LEAST_REQUEST` | Istio's default, kept |
//! | HPA target | 70 % | the scenario's (Kubernetes walkthrough default) |

use homeostat_dataplane::config::{OutlierConfig, RetryLimit, RetryOn, RetryPolicy};
use homeostat_dataplane::time::SECOND;
use homeostat_models::stats::quantile;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::engine::Engine;
use crate::scenario::Scenario;
use crate::topology::Topology;

/// The outlier detection of the tuned DestinationRule (see the module docs).
pub fn outlier() -> OutlierConfig {
    OutlierConfig {
        max_ejection_percent: 50,
        ..OutlierConfig::default()
    }
}

/// The retry policy of the tuned VirtualService for a route with this timeout and a service
/// whose requests normally take up to `floor` (its unloaded p99; all in ns; see the module
/// docs): each try gets an equal share of the route timeout, or `floor` if the share is
/// shorter, and no per-try timeout at all if `floor` does not fit in the route timeout (the
/// route timeout alone then bounds the one try there is room for).
pub fn retries(route_timeout: u64, floor: u64) -> RetryPolicy {
    const ATTEMPTS: u32 = 3;
    let share = route_timeout / u64::from(ATTEMPTS + 1);
    let per_try = share.max(floor).max(1);
    RetryPolicy {
        attempts: ATTEMPTS,
        per_try_timeout: (per_try < route_timeout).then_some(per_try),
        retry_on: RetryOn::parse("5xx,gateway-error,connect-failure,refused-stream")
            .unwrap_or_default(),
        ..RetryPolicy::default()
    }
}

/// The scenario with the tuned DestinationRule in place of its own mesh block; the
/// VirtualService's per-route retries come from [`configure_routes`].
pub fn apply(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    s.mesh.outlier_detection = Some(outlier());
    s.mesh.retries = retries(15 * SECOND, 0);
    s.mesh.retry_limit = RetryLimit::envoy_budget();
    s
}

/// Each service's route gets the tuned retry policy sized to its own timeout and latency.
pub fn configure_routes(engine: &mut Engine) {
    let floors = latency_floor(&engine.topo);
    for (i, svc) in engine.topo.services.iter().enumerate() {
        engine.config[i].retries = retries(svc.timeout, floors[i]);
    }
}

/// Draws per service for the p99 of its own work: the 99th percentile's standard error is then
/// about √(0.99 · 0.01 / 10⁴) ≈ 0.1 percentage points of rank.
const FLOOR_SAMPLES: usize = 10_000;

/// Each service's p99 latency with no load (ns), as its dashboard shows it on a quiet day: the
/// p99 of its own work (from [`FLOOR_SAMPLES`] seeded draws of its service time) plus its
/// callees' — all of them in turn for a sequential handler, the slowest for a parallel one.
/// A sum of p99s is at least the p99 of the sum, so this errs long, which is the safe side for
/// a timeout; queueing is left out, as it is absent from a quiet day. The call graph is a DAG
/// (`Scenario::validate`); should a cycle reach here unvalidated, the service's own p99 stands
/// in for it on the way round, so the recursion ends all the same.
pub fn latency_floor(topo: &Topology) -> Vec<u64> {
    let own: Vec<u64> = topo
        .services
        .iter()
        .enumerate()
        .map(|(i, svc)| {
            let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
            let draws: Vec<f64> = (0..FLOOR_SAMPLES)
                .map(|_| svc.service_time.sample(&mut rng) as f64)
                .collect();
            quantile(&draws, 0.99).map_or(0, |p99| p99.round() as u64)
        })
        .collect();
    let mut memo: Vec<Option<u64>> = vec![None; topo.services.len()];
    (0..topo.services.len())
        .map(|i| end_to_end(topo, &own, &mut memo, i))
        .collect()
}

fn end_to_end(topo: &Topology, own: &[u64], memo: &mut [Option<u64>], i: usize) -> u64 {
    if let Some(v) = memo[i] {
        return v;
    }
    memo[i] = Some(own[i]);
    let svc = &topo.services[i];
    let below = svc
        .calls
        .iter()
        .map(|&(c, _)| end_to_end(topo, own, memo, c))
        .fold(0u64, |acc, v| {
            if svc.parallel {
                acc.max(v)
            } else {
                acc.saturating_add(v)
            }
        });
    let v = own[i].saturating_add(below);
    memo[i] = Some(v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use homeostat_dataplane::config::RetryCondition;

    #[test]
    fn the_tuned_mesh_is_what_the_table_says() {
        let o = outlier();
        assert_eq!(
            (o.consecutive_5xx, o.max_ejection_percent, o.interval),
            (5, 50, 10 * SECOND)
        );
        assert!(o.validate().is_ok());
        // A 15 s route: 4 tries of 15 / 4 = 3.75 s each.
        let r = retries(15 * SECOND, 0);
        assert_eq!((r.attempts, r.per_try_timeout), (3, Some(3_750_000_000)));
        // A plain 500 is retried (5xx), unlike Istio's default.
        assert!(r.retry_on.contains(RetryCondition::FiveXx));
        assert!(r.validate().is_ok());
        let b = RetryLimit::envoy_budget().budget.expect("a budget");
        assert_eq!((b.budget_percent, b.min_retry_concurrency), (20.0, 3));
    }

    #[test]
    fn a_try_is_never_cut_below_the_services_normal_latency() {
        const MS: u64 = 1_000_000;
        let per_try = |route, floor| retries(route, floor).per_try_timeout;
        // A 100 ms route: the share is 100 / 4 = 25 ms, kept when the service's p99 is 10 ms,
        // raised to its p99 when that is 30 ms.
        assert_eq!(per_try(100 * MS, 10 * MS), Some(25 * MS));
        assert_eq!(per_try(100 * MS, 30 * MS), Some(30 * MS));
        // A p99 as long as the route timeout leaves no room for a per-try timeout: none, the
        // route timeout bounds the try (the known-harm mesh h110: 18-20 ms requests, 20 ms
        // route, where ÷ 4 gave 5 ms tries and not one request succeeded).
        assert_eq!(per_try(20 * MS, 20 * MS), None);
        assert_eq!(per_try(20 * MS, 25 * MS), None);
        // The attempts and conditions stay what the table says.
        let r = retries(20 * MS, 20 * MS);
        assert_eq!(r.attempts, 3);
        assert!(r.retry_on.contains(RetryCondition::FiveXx));
        assert!(r.validate().is_ok());
    }

    fn topology(yaml_services: &str) -> Topology {
        let text = format!(
            "name: t\nduration: 60s\ntopology:\n  services:\n{yaml_services}\n\
             traffic:\n  entries: [{{ service: a }}]\n  profile: {{ constant: {{ rate: 1 }} }}\n"
        );
        let s = Scenario::parse("t.yaml", &text).expect("a valid scenario");
        Topology::compile(&s).expect("a valid topology")
    }

    #[test]
    fn the_latency_floor_adds_up_the_call_graph() {
        const MS: u64 = 1_000_000;
        // Constant service times make every p99 exact: a (5 ms) calls b (7 ms) then c (2 ms),
        // and b calls c: c = 2, b = 7 + 2 = 9, a = 5 + 9 + 2 = 16 ms in sequence; with a's
        // calls in parallel, a = 5 + max(9, 2) = 14 ms.
        let services = |parallel: bool| {
            format!(
                "    - {{ name: a, subsets: [{{ name: v1, pods: 1 }}], parallel: {parallel}, \
                 serviceTime: {{ empirical: {{ samples: [5ms] }} }}, \
                 calls: [{{ service: b }}, {{ service: c, probability: 0.5 }}] }}\n\
                 \x20   - {{ name: b, subsets: [{{ name: v1, pods: 1 }}], \
                 serviceTime: {{ empirical: {{ samples: [7ms] }} }}, calls: [{{ service: c }}] }}\n\
                 \x20   - {{ name: c, subsets: [{{ name: v1, pods: 1 }}], \
                 serviceTime: {{ empirical: {{ samples: [2ms] }} }} }}"
            )
        };
        assert_eq!(
            latency_floor(&topology(&services(false))),
            vec![16 * MS, 9 * MS, 2 * MS]
        );
        assert_eq!(
            latency_floor(&topology(&services(true))),
            vec![14 * MS, 9 * MS, 2 * MS]
        );
    }

    #[test]
    fn a_cycle_that_skipped_validation_still_ends() {
        const MS: u64 = 1_000_000;
        // a (5 ms) calls b (7 ms), which calls a: validation rejects it, but parsed without
        // it the recursion must still end. a is entered first and stands in for itself at
        // 5 ms on the way round: b = 7 + 5 = 12, a = 5 + 12 = 17 ms.
        let text = "name: t\nduration: 60s\ntopology:\n  services:\n\
            \x20   - { name: a, subsets: [{ name: v1, pods: 1 }], \
            serviceTime: { empirical: { samples: [5ms] } }, calls: [{ service: b }] }\n\
            \x20   - { name: b, subsets: [{ name: v1, pods: 1 }], \
            serviceTime: { empirical: { samples: [7ms] } }, calls: [{ service: a }] }\n\
            traffic:\n  entries: [{ service: a }]\n  profile: { constant: { rate: 1 } }\n";
        assert!(Scenario::parse("t.yaml", text).is_err());
        let s: Scenario = serde_yaml::from_str(text).expect("parses without validation");
        let t = Topology::compile(&s).expect("compiles");
        assert_eq!(latency_floor(&t), vec![17 * MS, 12 * MS]);
    }

    #[test]
    fn the_own_work_p99_is_the_distributions() {
        // Lognormal, median 10 ms, σ 0.5: p99 = 10 ms · e^(0.5 · 2.3263) = 32.01 ms. From 10⁴
        // draws the 99th percentile's standard error is √(0.99 · 0.01 / 10⁴) / f(p99), with the
        // density f(p99) = φ(2.3263) / (p99 · σ) = 0.02665 / 16.0 ms: 0.60 ms; within 4 of them.
        let t = topology(
            "    - { name: a, subsets: [{ name: v1, pods: 1 }], \
             serviceTime: { lognormal: { median: 10ms, sigma: 0.5 } } }",
        );
        let p99 = latency_floor(&t)[0] as f64 / 1e6;
        assert!((p99 - 32.01).abs() < 4.0 * 0.60, "{p99} ms");
    }
}
