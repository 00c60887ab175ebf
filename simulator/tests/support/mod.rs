//! What several integration tests share: the meshes of `scenarios/known-harm/`, and the check
//! that a governed run is the mesh left alone.

// Each test crate that declares `mod support;` uses its own part of this module.
#![allow(dead_code)]

use homeostat_simulator::runs::{self, RunKind, RunResult};
use homeostat_simulator::scenario::Scenario;

/// A mesh of `scenarios/known-harm/` (its README says where each came from).
pub fn known_harm(file: &str) -> Scenario {
    let path = format!("{}/scenarios/known-harm/{file}", env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Scenario::parse(file, &yaml).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The governed run of a mesh the Governor must leave alone: no action, so it is the `istio`
/// run — every run draws the same arrivals and faults from its own random streams — with the
/// same requests, failures, ejections and SLO-violation minutes. Returns the governed run for
/// what a test asks further (its notes).
pub fn left_alone(s: &Scenario) -> RunResult {
    let governed = same_as(s, RunKind::Istio);
    assert!(
        governed.metrics.actions.is_empty(),
        "{}: {:#?}",
        s.name,
        governed.metrics.actions
    );
    governed
}

/// The governed run of a mesh where the Governor must add nothing to `baseline`'s own
/// actions (an HPA's scaling, where the mesh has one): the same actions, requests, failures,
/// ejections and SLO-violation minutes.
pub fn same_as(s: &Scenario, baseline: RunKind) -> RunResult {
    let alone = runs::run(s, baseline).expect("runs");
    let governed = runs::run(s, RunKind::Homeostat).expect("runs");
    let m = (&governed.metrics, &alone.metrics);
    assert_eq!(m.0.actions, m.1.actions, "{}", s.name);
    assert_eq!(m.0.requests, m.1.requests, "{}", s.name);
    assert_eq!(m.0.failures, m.1.failures, "{}", s.name);
    assert_eq!(m.0.ejections, m.1.ejections, "{}", s.name);
    assert_eq!(
        m.0.slo_violation_minutes, m.1.slo_violation_minutes,
        "{}",
        s.name
    );
    governed
}
