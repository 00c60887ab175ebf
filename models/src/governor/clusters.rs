//! Which endpoints share an Envoy cluster: in Istio, each subset of a DestinationRule is a
//! cluster of its own (`outbound|port|subset|host`), and a service without subsets is one.
//!
//! What happens to an endpoint's traffic follows the cluster, not the service: outlier
//! detection ejects a host within its cluster, and the ejected host's requests go to the
//! cluster's other hosts; a retry stays in the cluster of its first try. The route's weights
//! are the only thing that moves traffic between subsets. So a pod is an outlier against the
//! pods of its own subset (`outlier::survey`), and the pods that would take its traffic — an
//! ejected pod's, or a slow pod's timed-out tries (`latency::room`) — are those too.
//!
//! Envoy also counts `maxEjectionPercent` over the cluster's hosts: ejecting one pod of a
//! 2-pod subset needs 50 %, not the ⌈100/6⌉ = 17 % it is over a service of 6 pods. The
//! Governor still counts the share it sets over the service, deliberately. Counted per subset
//! (tried 2026-12-04), the incident setting let Envoy eject one pod of a 2-pod subset whose
//! other pod could not carry the subset alone, and the setting outlasts the incident: on the
//! two-fault search's mesh `known-harm/h110-two-faults-pair-ejected` (a 20 ms route timeout on
//! 18–20 ms requests, three pods back from a node loss failing every request), 27 SLO minutes
//! against Istio's defaults' 1 at each of eight seeds, against 1 counted over the service,
//! where the 38 % set for 3 failing pods of 8 ejects no pod of a 2-pod subset. Counting it per
//! subset needs a capacity check of the setting itself (may the rest of each subset lose the
//! share it allows, for as long as the setting lasts?), not only of the ejection in sight.

use super::observation::EndpointObservation;

/// The cluster an endpoint is in: its subset, or the service's one cluster without one.
pub fn key(endpoint: &EndpointObservation) -> Option<&str> {
    endpoint.subset.as_deref()
}
