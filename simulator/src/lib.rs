//! A discrete-event simulator of a service mesh.
//!
//! # Layout
//! (filled as the modules arrive)
//! * [`hpa`] — the Kubernetes HPA algorithm as a pure state machine (the `hpa` baseline).
//! * [`record`] — ground-truth accounting of a run (what users saw) and its metrics: SLO minutes,
//!   error budget, p50/p99, replica-hours, time to detect / mitigate each fault.
//! * [`report`] — the self-contained `report.html` (inline SVG) and per-run CSV series.
//! * [`traces`] — loaders for real traces: Azure LLM arrivals, NAB request-rate series,
//!   DeathStarBench spans (call probabilities, empirical durations).
#![forbid(unsafe_code)]

// Ground truth, baselines, trace loaders and the report (helper "simreport").
pub mod hpa;
pub mod record;
pub mod report;
pub mod traces;
