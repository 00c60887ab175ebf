//! The runs compared on every scenario, all on the same arrivals (see [`crate::engine`]):
//!
//! * `istio` — Istio's defaults as the scenario's `mesh` block leaves them (no outlier
//!   detection, least request, 2 retries on connect-failure/refused-stream/unavailable/
//!   cancelled/503, no per-try timeout, no retry budget), fixed replicas;
//! * `tuned` — a careful SRE's static DestinationRule/VirtualService ([`crate::tuned`]), stock
//!   HPA where the scenario has one;
//! * `hpa-N` — Istio's defaults plus the Kubernetes HPA at an N % CPU target (70 is the
//!   default; the sweep draws the cost/SLO frontier), where the scenario has an HPA;
//! * `flagger` — Istio's defaults plus Flagger's canary analysis ([`crate::flagger`]), where a
//!   service has a canary subset, stock HPA where the scenario has one;
//! * `homeostat` — the Governor in the loop ([`crate::governed`]), starting from the same
//!   Istio defaults.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{Change, End, Engine, Observer, Tally, View};
use crate::record::{
    Objectives, Outcome, Recorder, RecorderConfig, RunMetrics, RunRecord, SampleState,
};
use crate::scenario::Scenario;

/// The stock HPA target (Kubernetes' HPA walkthrough; `controlPlane.hpaTargetUtilization`).
pub const HPA_DEFAULT_TARGET: u32 = 70;
/// Targets of the HPA sweep: 40–90 % in steps of 10, the range HPA targets are set in.
pub const HPA_SWEEP: [u32; 6] = [40, 50, 60, 70, 80, 90];

/// Which controller drives the mesh during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunKind {
    Istio,
    Tuned,
    /// The Kubernetes HPA at this CPU target (percent).
    Hpa(u32),
    Flagger,
    Homeostat,
}

impl Serialize for RunKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl RunKind {
    /// The baselines run when none are named: all of them, the HPA with its sweep.
    pub fn default_baselines() -> Vec<RunKind> {
        let mut v = vec![RunKind::Istio, RunKind::Tuned, RunKind::Flagger];
        v.extend(HPA_SWEEP.iter().map(|&t| RunKind::Hpa(t)));
        v.sort();
        v
    }

    pub fn name(self) -> String {
        match self {
            RunKind::Istio => "istio".into(),
            RunKind::Tuned => "tuned".into(),
            RunKind::Hpa(t) => format!("hpa-{t}"),
            RunKind::Flagger => "flagger".into(),
            RunKind::Homeostat => "homeostat".into(),
        }
    }

    /// One `--baseline` item: `istio`, `tuned`, `flagger`, `homeostat`, `hpa` (the default
    /// target and the sweep) or `hpa-N` (one target, 1..=100).
    pub fn parse(s: &str) -> Result<Vec<RunKind>, String> {
        let s = s.trim();
        let one = match s {
            "istio" => RunKind::Istio,
            "tuned" => RunKind::Tuned,
            "flagger" => RunKind::Flagger,
            "homeostat" => RunKind::Homeostat,
            "hpa" => return Ok(HPA_SWEEP.iter().map(|&t| RunKind::Hpa(t)).collect()),
            _ => match s.strip_prefix("hpa-").map(str::parse::<u32>) {
                Some(Ok(t)) if (1..=100).contains(&t) => RunKind::Hpa(t),
                _ => {
                    return Err(format!(
                        "unknown run {s:?}: use istio, tuned, hpa, hpa-N (N in 1..=100), flagger"
                    ));
                }
            },
        };
        Ok(vec![one])
    }

    /// Why this run does not apply to the scenario (None: it does).
    pub fn not_applicable(self, s: &Scenario) -> Option<String> {
        let has_hpa = s
            .policies
            .iter()
            .any(|p| p.spec.target.horizontal_pod_autoscaler.is_some());
        match self {
            RunKind::Hpa(_) if !has_hpa => Some("no HorizontalPodAutoscaler".into()),
            RunKind::Flagger if !s.topology.services.iter().any(|x| x.subsets.len() > 1) => {
                Some("no service with a canary subset".into())
            }
            _ => None,
        }
    }

    /// The scenario as this run configures the mesh.
    pub fn scenario(self, s: &Scenario) -> Scenario {
        match self {
            RunKind::Tuned => crate::tuned::apply(s),
            RunKind::Hpa(t) => {
                let mut s = s.clone();
                s.control_plane.hpa_target_utilization = t;
                s
            }
            _ => s.clone(),
        }
    }
}

/// What one run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub kind: RunKind,
    pub metrics: RunMetrics,
    pub tally: Tally,
    /// What the user should know about this run (fallbacks, data shorter than the run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip)]
    pub record: RunRecord,
}

/// One decision of a controller, for the mesh and for the record.
#[derive(Debug, Clone)]
pub struct Action {
    /// What the simulated mesh applies (None: applied outside the mesh, e.g. an HPA edit).
    pub change: Option<Change>,
    pub knob: String,
    pub summary: String,
    pub reason: String,
}

/// What a controller says at one tick.
#[derive(Debug, Clone, Default)]
pub struct TickOutput {
    pub actions: Vec<Action>,
    /// Anomalies it saw (count as detection for time-to-detect).
    pub findings: Vec<String>,
}

/// Decides changes at each telemetry tick (HPA or the Governor).
pub trait Controller {
    fn tick(&mut self, view: &View<'_>) -> TickOutput;
}

struct Probe<'a> {
    recorder: Recorder,
    controller: Option<Box<dyn Controller + 'a>>,
    entry_subsets: Vec<usize>,
    multi_subset: Vec<usize>,
}

impl Observer for Probe<'_> {
    #[inline]
    fn request_done(&mut self, t: u64, latency: u64, end: End, entry_subset: usize) {
        let outcome = match end {
            End::Success => Outcome::Success,
            End::Failure => Outcome::Failure,
            End::Timeout => Outcome::Timeout,
        };
        let idx = self
            .entry_subsets
            .iter()
            .position(|&s| s == entry_subset)
            .unwrap_or(usize::MAX);
        self.recorder.on_request_done(t, latency, outcome, idx);
    }
    fn retry(&mut self, t: u64) {
        self.recorder.on_retry(t);
    }
    fn ejection(&mut self, t: u64, pod: &str) {
        self.recorder.on_ejection(t, pod);
    }
    /// The ground truth is sampled when Prometheus scrapes (from t = 0), not when the scrape
    /// becomes visible to controllers a telemetry lag later: what a run pays for starts at 0.
    fn scrape(&mut self, t: u64, view: &View<'_>) {
        let replicas = (0..view.topology.subsets.len())
            .map(|s| view.replicas(s))
            .sum();
        let mut weights = BTreeMap::new();
        for &svc in &self.multi_subset {
            let w = &view.config[svc].weights;
            let total: f64 = w.iter().sum();
            for (i, &sub) in view.topology.services[svc].subsets.iter().enumerate() {
                let share = if total > 0.0 {
                    100.0 * w[i] / total
                } else {
                    0.0
                };
                weights.insert(view.topology.subsets[sub].label.clone(), share);
            }
        }
        self.recorder
            .on_sample(t, SampleState { replicas, weights });
    }
    fn tick(&mut self, t: u64, view: &View<'_>) -> Vec<Change> {
        let Some(c) = self.controller.as_mut() else {
            return Vec::new();
        };
        let out = c.tick(view);
        for f in &out.findings {
            self.recorder.on_finding(t, f);
        }
        out.actions
            .into_iter()
            .filter_map(|a| {
                self.recorder.on_action(t, &a.knob, &a.summary, &a.reason);
                a.change
            })
            .collect()
    }
}

/// The SLO the scenario is judged by: the objectives of the policy on the first entry service,
/// else of the first policy, else 99.9 % / 300 ms (the CRD's example).
pub fn objectives(s: &Scenario) -> Objectives {
    let entry = s.traffic.entries.first().map(|e| e.service.as_str());
    let policy = s
        .policies
        .iter()
        .find(|p| p.target_service() == entry)
        .or(s.policies.first());
    let (sr, p99) = policy.map(|p| p.objectives()).unwrap_or((0.999, 300.0));
    Objectives::new(sr, p99)
}

/// Runs one scenario under one controller.
pub fn run(s: &Scenario, kind: RunKind) -> Result<RunResult, String> {
    let configured = kind.scenario(s);
    let s = &configured;
    let mut engine = Engine::new(s)?;
    if kind == RunKind::Tuned {
        crate::tuned::configure_routes(&mut engine);
    }
    let mut notes = engine.notes().to_vec();
    let controller: Option<Box<dyn Controller>> = match kind {
        RunKind::Istio => None,
        RunKind::Tuned | RunKind::Hpa(_) => Some(Box::new(crate::baseline::HpaController::new(
            s,
            &engine.topo,
        ))),
        RunKind::Flagger => Some(Box::new(crate::flagger::FlaggerController::new(
            s,
            &engine.topo,
        ))),
        RunKind::Homeostat => {
            let governed = crate::governed::GovernorController::new(s, &engine.topo)?;
            notes.extend(governed.notes().iter().cloned());
            Some(Box::new(governed))
        }
    };
    let entry_subsets: Vec<usize> = {
        let mut v: Vec<usize> = engine
            .topo
            .entries
            .iter()
            .flat_map(|&(svc, _)| engine.topo.services[svc].subsets.clone())
            .collect();
        v.dedup();
        v
    };
    let multi_subset = (0..engine.topo.services.len())
        .filter(|&i| engine.topo.services[i].subsets.len() > 1)
        .collect();
    let mut probe = Probe {
        recorder: Recorder::new(RecorderConfig {
            step_s: 10,
            subsets: entry_subsets
                .iter()
                .map(|&i| engine.topo.subsets[i].label.clone())
                .collect(),
        })
        // Requests draining after the end count in the last window.
        .with_end(engine.end_time()),
        controller,
        entry_subsets,
        multi_subset,
    };
    for f in &engine.faults {
        probe.recorder.on_fault(f.start, f.end, &f.label);
    }
    engine.run(&mut probe);
    // Requests still in flight at the end drain (at most one timeout long) and are counted.
    let record = probe.recorder.into_record(engine.end_time());
    let metrics = record.finish(&objectives(s));
    Ok(RunResult {
        kind,
        metrics,
        tally: engine.tally,
        notes,
        record,
    })
}
