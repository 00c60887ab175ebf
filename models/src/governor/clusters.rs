//! Which endpoints share an Envoy cluster: in Istio, each subset of a DestinationRule is a
//! cluster of its own (`outbound|port|subset|host`), and a service without subsets is one.
//!
//! What happens to an endpoint's traffic follows the cluster, not the service: outlier
//! detection ejects a host within its cluster and counts `maxEjectionPercent` over that
//! cluster's hosts; the ejected host's requests go to the cluster's other hosts; a retry stays
//! in the cluster of its first try. The route's weights are the only thing that moves traffic
//! between subsets. So a pod is an outlier against the pods of its own subset, and the pods
//! that would take its traffic are those too.
//!
//! Worked example: subsets `v0` of 2 pods and `v1` of 4. Ejecting one `v0` pod needs
//! `maxEjectionPercent` ≥ ⌈100·1/2⌉ = 50 (Envoy allows an ejection while
//! `100·(ejected + 1) ≤ maxEjectionPercent·hosts`, hosts = 2), not ⌈100·1/6⌉ = 17 as over the
//! service's 6; and the `v0` pod's requests move onto the other `v0` pod alone.

use super::observation::EndpointObservation;

/// The cluster an endpoint is in: its subset, or the service's one cluster without one.
pub fn key(endpoint: &EndpointObservation) -> Option<&str> {
    endpoint.subset.as_deref()
}

/// The smallest `maxEjectionPercent` that lets Envoy eject every endpoint named in `names` at
/// once: over each cluster, ⌈100 × named / hosts⌉, the largest of them. Names not among
/// `endpoints` count for nothing.
pub fn ejection_percent_needed(endpoints: &[EndpointObservation], names: &[String]) -> u32 {
    let mut needed = 0;
    for e in endpoints.iter().filter(|e| names.contains(&e.name)) {
        let hosts = endpoints.iter().filter(|o| key(o) == key(e)).count();
        let named = endpoints
            .iter()
            .filter(|o| key(o) == key(e) && names.contains(&o.name))
            .count();
        let pct = (100 * named).div_ceil(hosts.max(1));
        needed = needed.max(u32::try_from(pct).unwrap_or(u32::MAX));
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governor::Signals;

    fn ep(name: &str, subset: Option<&str>) -> EndpointObservation {
        EndpointObservation {
            name: name.into(),
            subset: subset.map(str::to_string),
            signals: Signals::default(),
        }
    }

    #[test]
    fn the_share_needed_is_counted_within_each_subset() {
        // The worked example: v0 of 2 pods, v1 of 4.
        let mut eps = vec![ep("v0-0", Some("v0")), ep("v0-1", Some("v0"))];
        eps.extend((0..4).map(|i| ep(&format!("v1-{i}"), Some("v1"))));
        assert_eq!(ejection_percent_needed(&eps, &["v0-1".into()]), 50);
        // One of v1's 4: 25; with v0's one as well, v0 decides: 50.
        assert_eq!(ejection_percent_needed(&eps, &["v1-2".into()]), 25);
        assert_eq!(
            ejection_percent_needed(&eps, &["v1-2".into(), "v0-0".into()]),
            50
        );
        // Three of v1's 4: ⌈75⌉ = 75; a name not among the endpoints counts for nothing.
        let three: Vec<String> = ["v1-0", "v1-1", "v1-3", "gone"].map(String::from).into();
        assert_eq!(ejection_percent_needed(&eps, &three), 75);
        assert_eq!(ejection_percent_needed(&eps, &[]), 0);
    }

    #[test]
    fn without_subsets_the_service_is_one_cluster() {
        // One of 3: ⌈33.3⌉ = 34 (33 % would let Envoy eject none: 100·1 > 33·3).
        let eps: Vec<_> = (0..3).map(|i| ep(&format!("p{i}"), None)).collect();
        assert_eq!(ejection_percent_needed(&eps, &["p1".into()]), 34);
        assert_eq!(
            ejection_percent_needed(&eps, &["p0".into(), "p2".into()]),
            67
        );
    }
}
