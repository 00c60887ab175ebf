//! Table-driven scenarios on synthetic observations: what the Governor does, and why.
//!
//! Layout: one file per concern, all in one test binary — [`weights`], [`retries`],
//! [`outlier`], [`latency`], [`autoscaling`] (one planner each), [`guardrails`] (what holds
//! every planner), and [`common`] (helpers several of them use). The observations are built
//! with `governor_support`, shared with the other Governor test binaries.

#[path = "../governor_support/mod.rs"]
mod governor_support;

mod autoscaling;
mod common;
mod guardrails;
mod latency;
mod outlier;
mod retries;
mod weights;
