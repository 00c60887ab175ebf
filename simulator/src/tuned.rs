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
//! | `retries.perTryTimeout` | route timeout ÷ (attempts + 1), per service | the route timeout bounds all tries together (Istio's timeouts and retries docs), so each of the 4 tries gets an equal share of it; a fixed value (the reference example's 2 s) would cut every try of a service whose requests take longer — LLM inference in `azure-trace` |
//! | `retries.retryOn` | `5xx,gateway-error,connect-failure,refused-stream` | Envoy router `x-envoy-retry-on` conditions for server errors plus Istio's connection conditions |
//! | retry budget | 20 %, at least 3 concurrent | Envoy `RetryBudget` defaults (Istio needs an EnvoyFilter for it) |
//! | balancer | `LEAST_REQUEST` | Istio's default, kept |
//! | HPA target | 70 % | the scenario's (Kubernetes walkthrough default) |

use homeostat_dataplane::config::{OutlierConfig, RetryLimit, RetryOn, RetryPolicy};
use homeostat_dataplane::time::SECOND;

use crate::engine::Engine;
use crate::scenario::Scenario;

/// The outlier detection of the tuned DestinationRule (see the module docs).
pub fn outlier() -> OutlierConfig {
    OutlierConfig {
        max_ejection_percent: 50,
        ..OutlierConfig::default()
    }
}

/// The retry policy of the tuned VirtualService for a route with this timeout (ns; see the
/// module docs).
pub fn retries(route_timeout: u64) -> RetryPolicy {
    const ATTEMPTS: u32 = 3;
    RetryPolicy {
        attempts: ATTEMPTS,
        per_try_timeout: Some((route_timeout / u64::from(ATTEMPTS + 1)).max(1)),
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
    s.mesh.retries = retries(15 * SECOND);
    s.mesh.retry_limit = RetryLimit::envoy_budget();
    s
}

/// Each service's route gets the tuned retry policy sized to its own timeout.
pub fn configure_routes(engine: &mut Engine) {
    for (i, svc) in engine.topo.services.iter().enumerate() {
        engine.config[i].retries = retries(svc.timeout);
    }
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
        let r = retries(15 * SECOND);
        assert_eq!((r.attempts, r.per_try_timeout), (3, Some(3_750_000_000)));
        // A plain 500 is retried (5xx), unlike Istio's default.
        assert!(r.retry_on.contains(RetryCondition::FiveXx));
        assert!(r.validate().is_ok());
        let b = RetryLimit::envoy_budget().budget.expect("a budget");
        assert_eq!((b.budget_percent, b.min_retry_concurrency), (20.0, 3));
    }
}
