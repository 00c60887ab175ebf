//! Two policies on one service: neither acts, in the simulator as in the controller.
//!
//! `known-harm/h84-errpod-52.yaml` (found by the random-mesh search, seed 84) has two
//! policies on service `s0`: `p0` moves weights and may retry idempotent requests 4 times,
//! `p1` says the requests are not idempotent and allows 2 attempts. In a cluster both would
//! rewrite `s0`'s DestinationRule and VirtualService, each from its own Governor; the
//! controller sets neither to act (`Degraded`, reason `AmbiguousTarget`, the way Kubernetes
//! stops HorizontalPodAutoscalers whose targets overlap), and so does the simulator.

mod support;

/// The governed run is the mesh left alone: no action, and the same requests, failures and
/// SLO minutes as the `istio` run (the scenario has no HPA, and every run draws the same
/// arrivals from its own random streams); each policy's note says what it shares with which.
#[test]
fn two_policies_on_one_service_leave_it_alone_and_say_why() {
    let governed = support::left_alone(&support::known_harm("h84-errpod-52.yaml"));
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
