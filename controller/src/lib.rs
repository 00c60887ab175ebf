//! The `homeostat` controller and CLI: adapters around the pure decision core in
//! `homeostat-models`. Adapters translate; they never decide.
//!
//! # Layout
//!
//! * [`cli`] — the command line (clap): one file per subcommand.
//! * [`corpus`] — reads a NAB-format corpus (CSV series, label windows, cost profiles) from disk,
//!   with errors that name the file and line.
//! * [`telemetry`] — telemetry adapters (Prometheus, proxies) → the Governor's Observation.
//! * `parallel` — runs per-file work on 2 threads with a progress bar, output in input order.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod cli;
pub mod corpus;
mod parallel;
pub mod telemetry;
