//! A discrete-event simulator of a service mesh.
//!
//! # Layout
//!
//! * [`scenario`] — the scenario file (serde + JSON schema) and its validation.
//! * [`policy_doc`] — an AdaptivePolicy document inside a scenario (the CRD's `PolicySpec`).
//! * [`duration`] — the policy's Go-style durations, as integer nanoseconds.
//! * [`topology`] — the topology compiled for the hot path; service-time distributions.
//! * [`traffic`] — open-loop arrivals (Poisson profiles, replayed arrivals and rate series).
//! * [`traces_adapter`] — scenario data references → the [`traces`] loaders.
//! * [`faults`] — the fault timeline compiled into per-pod effects.
//! * [`proxy`] — one caller→subset proxy cluster (balancer, outlier ejection, retry budget).
//! * [`telemetry`] — Prometheus' view: counters, Istio histograms, scrapes, windows.
//! * [`engine`] — the event loop: calls, tries, pods, timeouts, retries, faults, changes.
//! * [`slab`] — the generation-tagged arena holding calls and tries.
//! * [`suite`] — the built-in scenarios, embedded, with their data looked up beside the repo.
//! * [`observe`] — scraped telemetry → the Governor's `Observation`.
//! * [`openmetrics`] — the scrapes as OpenMetrics text (Istio, cAdvisor, kube-state-metrics
//!   series) for backfilling a real Prometheus with a simulated incident.
//! * [`autoscale`] — HorizontalPodAutoscalers of the simulated cluster (the HPA algorithm on
//!   scraped CPU).
//! * [`baseline`] — the stock HPA controller (the `hpa-N` runs, and `tuned`'s autoscaling).
//! * [`tuned`] — the `tuned` baseline's DestinationRule/VirtualService, each value sourced.
//! * [`flagger`] — the `flagger` baseline: Flagger's canary analysis as a state machine.
//! * [`governed`] — the `homeostat` run: `Governor::step` each interval, plans applied.
//! * [`runs`] — the run kinds (istio, tuned, hpa-N, flagger, homeostat) and one scenario
//!   under one of them, fed to the recorder.
//! * [`hpa`] — the Kubernetes HPA algorithm as a pure state machine (the `hpa` baseline).
//! * [`record`] — ground-truth accounting of a run (what users saw) and its metrics: SLO minutes,
//!   error budget, p50/p99, replica-hours, time to detect / mitigate each fault.
//! * [`corpus`] — a labelled NAB-format anomaly corpus from simulated incidents (variants, series
//!   at the scrape interval, label windows from the ground truth).
//! * [`compare`] — homeostat against the best baseline and the HPA sweep's cost/SLO frontier.
//! * [`report`] — the self-contained `report.html` (inline SVG) and per-run CSV series.
//! * [`traces`] — loaders for real traces: Azure LLM arrivals, NAB request-rate series,
//!   DeathStarBench spans (call probabilities, empirical durations).
#![forbid(unsafe_code)]

pub mod autoscale;
pub mod baseline;
pub mod compare;
pub mod corpus;
pub mod duration;
pub mod engine;
pub mod faults;
pub mod flagger;
pub mod governed;
pub mod observe;
pub mod openmetrics;
pub mod policy_doc;
pub mod proxy;
pub mod runs;
pub mod scenario;
pub mod slab;
pub mod suite;
pub mod telemetry;
pub mod topology;
pub mod traces_adapter;
pub mod traffic;
pub mod tuned;

// Ground truth, baselines, trace loaders and the report (helper "simreport").
pub mod hpa;
pub mod record;
pub mod report;
pub mod traces;
