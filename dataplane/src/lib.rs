//! The data-plane state machines (balancing, outlier ejection, retry budget) shared by the
//! bundled proxy and the simulator, so the simulator runs the exact algorithms the proxy runs.
//!
//! Nothing here reads a clock, spawns a task or touches the network: time is passed in as
//! [`time::Nanos`], randomness as an `RngCore` or a caller-drawn `u64`, so a discrete-event loop
//! and a tokio proxy drive the same code, and the same inputs give the same outputs.
//!
//! # Layout
//!
//! * [`time`] — virtual time (`Nanos`) and the `"10s"` duration format of scenario files.
//! * [`config`] — serde configuration with Envoy/Istio defaults: `OutlierConfig` (with
//!   `SuccessRateConfig`), `RetryPolicy`,
//!   `RetryLimit` / `RetryBudgetConfig`, `BalancerConfig` / `BalancerKind`.
//! * [`balancer`] — endpoint selection: EDF weighted round robin, least request (P2C / weighted
//!   EDF), Linkerd peak EWMA; health filtering and Envoy's panic threshold.
//! * [`retry`] — retry conditions, jittered exponential back-off, and the retry budget /
//!   `max_retries` circuit breaker.
//! * [`cluster`] — one upstream cluster keyed by pod id: balancer + outlier detector + retry
//!   budget kept consistent (health mirroring, EDS updates, retry accounting).
//! * [`split`] — route-level weighted split across subsets (RDS `weighted_clusters`).
//! * [`histogram`] — Istio's request-duration bucket bounds, shared by the proxy that exports
//!   them, the simulator that models them and the Governor that reads quantiles from them.
//! * [`outlier`] — Envoy consecutive-5xx / gateway-error outlier detection (inline ejection)
//!   and success-rate detection (at interval sweeps): max ejection percent, growing ejection
//!   time, un-ejection at interval sweeps.
//!
//! # Wiring, per request
//!
//! ```
//! use homeostat_dataplane::balancer::Balancer;
//! use homeostat_dataplane::config::{BalancerConfig, OutlierConfig, RetryLimit, RetryPolicy};
//! use homeostat_dataplane::outlier::{OutlierDetector, Outcome};
//! use homeostat_dataplane::retry::{AttemptOutcome, RetryBudget, RetryState};
//! use homeostat_dataplane::time::MILLISECOND;
//! use rand::{RngCore, SeedableRng};
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let mut balancer = Balancer::new(BalancerConfig::default(), &[1, 1, 1]);
//! let mut outlier = OutlierDetector::new(OutlierConfig::default(), 3);
//! let policy = RetryPolicy::default();
//! let budget = RetryBudget::new(RetryLimit::default());
//!
//! let now = 5 * MILLISECOND;
//! // Interval sweeps first: hosts whose ejection expired come back.
//! for idx in outlier.tick(now) {
//!     balancer.set_healthy(idx, true);
//! }
//! let mut retry = RetryState::new();
//! let host = balancer.pick(now, &mut rng).expect("a healthy host");
//! balancer.on_request_start(host);
//! // ... the attempt runs; say it ends 20 ms later with a 503 ...
//! let end = now + 20 * MILLISECOND;
//! balancer.on_request_end(end, host, 20 * MILLISECOND);
//! if let Some(ejection) = outlier.on_outcome(end, host, Outcome::from_status(503)) {
//!     balancer.set_healthy(ejection.endpoint, false);
//! }
//! let outcome = AttemptOutcome::Response(503);
//! if retry.should_retry(&policy, outcome) && budget.try_acquire(1, 0) {
//!     let wait = retry.start_retry(&policy, rng.next_u64());
//!     assert!(wait < 25 * MILLISECOND); // first retry: [0, 25 ms)
//!     let _next = balancer.pick_avoiding(end + wait, &mut rng, &[host], 5);
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod balancer;
pub mod cluster;
pub mod config;
pub mod histogram;
pub mod outlier;
pub mod retry;
pub mod split;
pub mod time;
