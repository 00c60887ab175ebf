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
//! * [`outlier`] — Envoy consecutive-5xx / gateway-error outlier detection: inline ejection,
//!   max ejection percent, growing ejection time, un-ejection at interval sweeps.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod config;
pub mod outlier;
pub mod time;
