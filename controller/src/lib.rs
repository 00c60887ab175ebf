//! The `homeostat` controller and CLI: adapters around the pure decision core in
//! `homeostat-models`. Adapters translate; they never decide.
//!
//! # Layout
//!
//! * [`cli`] — the command line (clap): one file per subcommand.
//! * [`crd`] — the `AdaptivePolicy` custom resource: spec (`models`' `PolicySpec`) and status
//!   (conditions, findings, recommendations, applied changes = guardrail memory).
//! * [`mesh`] — Istio DestinationRule / VirtualService and `autoscaling/v2` HPA ⇄ the models'
//!   types: read the config in force, build server-side-apply bodies of owned fields only, and a
//!   strict structural-schema checker.
//! * [`reconcile`] — the kube-runtime controller: thin `reconcile` wiring, the per-policy logic
//!   (`policy`), conditions, leader election.
//! * [`remediation`] — the webhook's seams over the cluster (policies, the loop's Governors,
//!   status-first actuation, Events, metrics), the reverts after a resolve, and serving it.
//! * [`http`] — `/metrics`, `/healthz`, `/readyz` (axum, prometheus-client).
//! * [`corpus`] — reads a NAB-format corpus (CSV series, label windows, cost profiles) from disk,
//!   with errors that name the file and line.
//! * [`rules`] — the Prometheus rules of `rules/` embedded in the binary, wrapped as the
//!   Operator's `PrometheusRule` (one source for both).
//! * [`telemetry`] — telemetry adapters (Prometheus, proxies) → the Governor's Observation.
//! * [`webhook`] — `POST /alertmanager`: Alertmanager alerts → `Governor::on_alert` → the
//!   policy's remediation, behind the seams the controller implements.
//! * [`xds`] — the ADS server (state-of-the-world CDS / EDS / RDS with ACK / NACK) that feeds
//!   the bundled proxies.
//! * `parallel` — runs per-file work on 2 threads with a progress bar, output in input order.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod cli;
pub mod corpus;
pub mod crd;
pub mod http;
pub mod mesh;
mod parallel;
pub mod reconcile;
pub mod remediation;
pub mod rules;
pub mod telemetry;
pub mod webhook;
pub mod xds;
