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
//! * [`config`] — serde configuration with Envoy/Istio defaults: `OutlierConfig`, `RetryPolicy`,
//!   `RetryLimit` / `RetryBudgetConfig`, `BalancerConfig` / `BalancerKind`.
//! * [`balancer`] — endpoint selection: EDF weighted round robin, least request (P2C / weighted
//!   EDF), Linkerd peak EWMA; health filtering and Envoy's panic threshold.
//! * [`retry`] — retry conditions, jittered exponential back-off, and the retry budget /
//!   `max_retries` circuit breaker.
//! * [`split`] — route-level weighted split across subsets (RDS `weighted_clusters`).
//! * [`outlier`] — Envoy consecutive-5xx / gateway-error outlier detection: inline ejection,
//!   max ejection percent, growing ejection time, un-ejection at interval sweeps.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod balancer;
pub mod config;
pub mod outlier;
pub mod retry;
pub mod split;
pub mod time;
