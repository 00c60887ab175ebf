//! Two policies on one service: neither acts, in the simulator as in the controller.
//!
//! `known-harm/h84-errpod-52.yaml` (found by the random-mesh search, seed 84) has two
//! policies on service `s0`: `p0` moves weights and may retry idempotent requests 4 times,
//! `p1` says the requests are not idempotent and allows 2 attempts. In a cluster both would
//! rewrite `s0`'s DestinationRule and VirtualService, each from its own Governor; the
//! controller sets neither to act (`Degraded`, reason `AmbiguousTarget`, the way Kubernetes
//! stops HorizontalPodAutoscalers whose targets overlap), and so does the simulator.

use homeostat_simulator::runs::{self, RunKind};
use homeostat_simulator::scenario::Scenario;

/// The governed run is the mesh left alone: no action, and the same requests, failures and
/// SLO minutes as the `istio` run (the scenario has no HPA, and every run draws the same
/// arrivals from its own random streams); each policy's note says what it shares with which.
#[test]
fn two_policies_on_one_service_leave_it_alone_and_say_why() {
    let path = format!(
        "{}/scenarios/known-harm/h84-errpod-52.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let s = Scenario::parse("h84-errpod-52.yaml", &yaml).expect("parses");
    let alone = runs::run(&s, RunKind::Istio).expect("runs");
    let governed = runs::run(&s, RunKind::Homeostat).expect("runs");
    assert!(
        governed.metrics.actions.is_empty(),
        "{:#?}",
        governed.metrics.actions
    );
    assert_eq!(governed.metrics.requests, alone.metrics.requests);
    assert_eq!(governed.metrics.failures, alone.metrics.failures);
    assert_eq!(
        governed.metrics.slo_violation_minutes,
        alone.metrics.slo_violation_minutes
    );
    for (this, other) in [("p0", "p1"), ("p1", "p0")] {
        let note = format!(
            "policy {this}: service s0 is also governed by policy {other}: two policies would each rewrite it, so neither acts"
        );
        assert!(
            governed.notes.iter().any(|n| n.starts_with(&note)),
            "no {note:?} in {:#?}",
            governed.notes
        );
    }
}
