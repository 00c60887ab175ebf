//! End-to-end tests of homeostat against real components; this library is their harness.
//!
//! # Layout
//!
//! * [`tools`] — finds `promtool` and `prometheus`; a missing tool fails under `CI=true` and
//!   skips (with the reason printed) otherwise.
//! * [`incident`] — runs a built-in simulator scenario and keeps its scrapes as OpenMetrics
//!   text and the simulator's own Observations.
//! * [`fake_api`] — a stateful mock Kubernetes API server (kube's tower_test mock) that applies
//!   writes and logs them, for tests whose request order a real component decides.
//! * [`server`] — a TSDB backfilled with `promtool tsdb create-blocks-from openmetrics` and a
//!   Prometheus serving it on a free loopback port, killed when dropped (even on panic).
//!
//! The tests themselves are in `tests/`: `prometheus_incidents.rs`, `alert_e2e.rs`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod fake_api;
pub mod incident;
pub mod server;
pub mod tools;
