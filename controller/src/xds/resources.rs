//! The bundled mesh's description (the proxy's own configuration types) → Envoy v3 resources:
//! the exact inverse of the proxy's `xds::convert`, so a cluster or route sent over ADS is
//! what the file says. Clusters go out without endpoints (EDS type) and their endpoints as
//! `ClusterLoadAssignment`s, so an endpoint-weight change is an EDS push only.
//!
//! Translation only. What Envoy's protos cannot say is an error naming the resource, not a
//! silent approximation: the `PEAK_EWMA` balancer (no Envoy `lb_policy`), and an outlier
//! `minHealthPercent` different from the cluster's panic threshold (over xDS both are Envoy's
//! one `healthy_panic_threshold`).

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, CommonLbConfig, DiscoveryType, EdsClusterConfig,
};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, OutlierDetection};
use envoy_types::pb::envoy::config::core::v3::{
    Address, Http2ProtocolOptions, SocketAddress, address, socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};
use envoy_types::pb::envoy::config::route::v3::retry_policy::{RetryBackOff, RetryHostPredicate};
use envoy_types::pb::envoy::config::route::v3::{
    RetryPolicy as PbRetry, Route as PbRoute, RouteAction, RouteConfiguration, RouteMatch,
    VirtualHost as PbVirtualHost, WeightedCluster as PbWeighted, route::Action,
    route_action::ClusterSpecifier, route_match::PathSpecifier, weighted_cluster::ClusterWeight,
};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::{BoolValue, Duration, UInt32Value};
use homeostat_dataplane::config::{BalancerKind, OutlierConfig, RetryPolicy};
use homeostat_dataplane::time::Nanos;
use homeostat_proxy::config::{ClusterConfig, Route, RouteConfig};

/// Envoy's name for the `previous_hosts` retry host predicate (what Istio installs).
pub const PREVIOUS_HOSTS: &str = "envoy.retry_host_predicates.previous_hosts";

fn duration(n: Nanos) -> Option<Duration> {
    Some(Duration {
        seconds: i64::try_from(n / 1_000_000_000).unwrap_or(i64::MAX),
        // < 10⁹: fits.
        nanos: (n % 1_000_000_000) as i32,
    })
}

fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

/// A cluster without its endpoints (they go by EDS).
pub fn cluster(c: &ClusterConfig) -> Result<Cluster, String> {
    let at = |m: String| format!("cluster {:?}: {m}", c.name);
    let lb_policy = match c.balancer.kind {
        BalancerKind::RoundRobin => 0,
        BalancerKind::LeastRequest => 1,
        other => {
            return Err(at(format!(
                "balancer {other:?} has no Envoy lb_policy (ROUND_ROBIN or LEAST_REQUEST over xDS)"
            )));
        }
    };
    let panic = c.balancer.panic_threshold_percent;
    let outlier_detection = c
        .outlier_detection
        .as_ref()
        .map(|o| outlier(o, panic))
        .transpose()
        .map_err(at)?;
    Ok(Cluster {
        name: c.name.clone(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig::default()),
        lb_policy,
        common_lb_config: Some(CommonLbConfig {
            healthy_panic_threshold: Some(Percent { value: panic }),
            ..CommonLbConfig::default()
        }),
        outlier_detection,
        connect_timeout: duration(c.connect_timeout),
        // The field the proxy reads (the typed extension is not read yet).
        #[allow(deprecated)]
        http2_protocol_options: c.http2.then(Http2ProtocolOptions::default),
        ..Cluster::default()
    })
}

fn outlier(o: &OutlierConfig, panic: f64) -> Result<OutlierDetection, String> {
    // The proxy reads the panic threshold as the outlier detector's minimum health, truncated.
    if o.min_health_percent != panic as u32 {
        return Err(format!(
            "outlierDetection.minHealthPercent {} differs from balancer.panicThresholdPercent {panic}: \
             over xDS both are Envoy's healthy_panic_threshold",
            o.min_health_percent
        ));
    }
    Ok(OutlierDetection {
        consecutive_5xx: u32v(o.consecutive_5xx),
        consecutive_gateway_failure: u32v(o.consecutive_gateway_errors),
        // Istio's rule, which the proxy follows: gateway errors are enforced when counted.
        enforcing_consecutive_gateway_failure: u32v(if o.consecutive_gateway_errors == 0 {
            0
        } else {
            o.enforcing_consecutive_gateway_errors
        }),
        enforcing_consecutive_5xx: u32v(o.enforcing_consecutive_5xx),
        interval: duration(o.interval),
        base_ejection_time: duration(o.base_ejection_time),
        max_ejection_time: duration(o.max_ejection_time),
        max_ejection_time_jitter: duration(o.max_ejection_time_jitter),
        max_ejection_percent: u32v(o.max_ejection_percent),
        always_eject_one_host: Some(BoolValue {
            value: o.always_eject_one_host,
        }),
        // Envoy's proto default for an absent `enforcing_success_rate` is 100 (detection on), so
        // "off" must be said: 0, as Istio always sends.
        enforcing_success_rate: u32v(o.success_rate.as_ref().map_or(0, |sr| sr.enforcing)),
        success_rate_minimum_hosts: o
            .success_rate
            .as_ref()
            .and_then(|sr| u32v(sr.minimum_hosts)),
        success_rate_request_volume: o
            .success_rate
            .as_ref()
            .and_then(|sr| u32v(sr.request_volume)),
        success_rate_stdev_factor: o.success_rate.as_ref().and_then(|sr| u32v(sr.stdev_factor)),
        ..OutlierDetection::default()
    })
}

/// The endpoints of a cluster, with their weights.
pub fn assignment(c: &ClusterConfig) -> ClusterLoadAssignment {
    let lb_endpoints = c
        .endpoints
        .iter()
        .map(|e| LbEndpoint {
            host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: e.address.ip().to_string(),
                        port_specifier: Some(PortSpecifier::PortValue(u32::from(e.address.port()))),
                        ..SocketAddress::default()
                    })),
                }),
                ..Endpoint::default()
            })),
            load_balancing_weight: u32v(e.weight),
            ..LbEndpoint::default()
        })
        .collect();
    ClusterLoadAssignment {
        cluster_name: c.name.clone(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints,
            ..LocalityLbEndpoints::default()
        }],
        ..ClusterLoadAssignment::default()
    }
}

/// A route configuration.
pub fn route_config(rc: &RouteConfig) -> RouteConfiguration {
    RouteConfiguration {
        name: rc.name.clone(),
        virtual_hosts: rc
            .virtual_hosts
            .iter()
            .map(|vh| PbVirtualHost {
                name: vh.name.clone(),
                domains: vh.domains.clone(),
                routes: vh.routes.iter().map(route).collect(),
                ..PbVirtualHost::default()
            })
            .collect(),
        ..RouteConfiguration::default()
    }
}

fn route(r: &Route) -> PbRoute {
    let cluster_specifier = match r.weighted_clusters.as_slice() {
        [one] => ClusterSpecifier::Cluster(one.cluster.clone()),
        many => ClusterSpecifier::WeightedClusters(PbWeighted {
            clusters: many
                .iter()
                .map(|w| ClusterWeight {
                    name: w.cluster.clone(),
                    weight: u32v(w.weight),
                    ..ClusterWeight::default()
                })
                .collect(),
            ..PbWeighted::default()
        }),
    };
    PbRoute {
        r#match: Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix(r.prefix.clone())),
            ..RouteMatch::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(cluster_specifier),
            timeout: duration(r.timeout),
            retry_policy: retry(&r.retries),
            ..RouteAction::default()
        })),
        ..PbRoute::default()
    }
}

/// No retries is no policy: Envoy without a retry policy does not retry.
fn retry(p: &RetryPolicy) -> Option<PbRetry> {
    if p.attempts == 0 {
        return None;
    }
    Some(PbRetry {
        retry_on: p.retry_on.to_string(),
        num_retries: u32v(p.attempts),
        per_try_timeout: p.per_try_timeout.and_then(duration),
        retry_back_off: Some(RetryBackOff {
            base_interval: duration(p.backoff_base_interval),
            max_interval: p.backoff_max_interval.and_then(duration),
        }),
        retry_host_predicate: if p.avoid_previous_hosts {
            vec![RetryHostPredicate {
                name: PREVIOUS_HOSTS.into(),
                config_type: None,
            }]
        } else {
            Vec::new()
        },
        host_selection_retry_max_attempts: i64::from(p.host_selection_retry_max_attempts),
        ..PbRetry::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use homeostat_proxy::config::Bootstrap;
    use homeostat_proxy::xds::convert;

    const MESH: &str = r#"
listeners: []
routeConfigs:
  - name: main
    virtualHosts:
      - name: reviews
        domains: ["reviews"]
        routes:
          - prefix: /api
            timeout: 2s
            retries: { attempts: 3, retryOn: "5xx,503", perTryTimeout: 500ms }
            weightedClusters:
              - { cluster: "outbound|9080|v1|reviews.shop.svc.cluster.local", weight: 90 }
              - { cluster: "outbound|9080|v2|reviews.shop.svc.cluster.local", weight: 10 }
          - prefix: /
            retries: { attempts: 0 }
            weightedClusters:
              - { cluster: "outbound|9080|v1|reviews.shop.svc.cluster.local" }
clusters:
  - name: "outbound|9080|v1|reviews.shop.svc.cluster.local"
    balancer: { kind: ROUND_ROBIN, panicThresholdPercent: 40 }
    outlierDetection: { consecutive5xxErrors: 3, consecutiveGatewayErrors: 2, baseEjectionTime: 1500ms, minHealthPercent: 40 }
    connectTimeout: 250ms
    http2: true
    endpoints: [{ address: "10.0.0.1:9080", weight: 3 }, { address: "[::1]:9081" }]
  - name: "outbound|9080|v2|reviews.shop.svc.cluster.local"
    outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 4, successRate: { minimumHosts: 3, requestVolume: 50, stdevFactor: 1500, enforcing: 80 } }
    endpoints: [{ address: "10.0.0.2:9080" }]
"#;

    /// Sent over xDS and read back by the proxy's own converter, every field is what the file
    /// says: the translation loses nothing the proxy honours.
    #[test]
    fn the_proxy_reads_back_exactly_the_description() {
        let b = Bootstrap::parse("mesh.yaml", MESH).expect("valid");
        for c in &b.clusters {
            let mut back = convert::cluster(&cluster(c).expect("expressible")).expect("valid");
            back.endpoints = convert::endpoints(&assignment(c)).expect("valid").1;
            // The proxy takes the destination labels from Istio's cluster name.
            back.destination = c.destination.clone();
            let mut want = c.clone();
            want.destination = back.destination.clone();
            assert_eq!(back, want, "{}", c.name);
        }
        // Success-rate detection crosses only when configured: the v1 cluster has none, and
        // must say so (Envoy turns an absent `enforcing_success_rate` into 100).
        let od = |i: usize| cluster(&b.clusters[i]).unwrap().outlier_detection.unwrap();
        assert_eq!(od(0).enforcing_success_rate, Some(UInt32Value { value: 0 }));
        assert_eq!(
            od(1).enforcing_success_rate,
            Some(UInt32Value { value: 80 })
        );
        assert_eq!(
            od(1).success_rate_stdev_factor,
            Some(UInt32Value { value: 1500 })
        );
        let rc = &b.route_configs[0];
        let back = convert::route_config(&route_config(rc)).expect("valid");
        assert_eq!(&back, rc);
    }

    #[test]
    fn what_envoy_cannot_say_is_refused_with_the_reason() {
        let b = Bootstrap::parse("mesh.yaml", MESH).expect("valid");
        let mut c = b.clusters[0].clone();
        c.balancer.kind = BalancerKind::PeakEwma;
        assert!(cluster(&c).unwrap_err().contains("PeakEwma"));
        let mut c = b.clusters[0].clone();
        if let Some(o) = c.outlier_detection.as_mut() {
            o.min_health_percent = 0;
        }
        assert!(cluster(&c).unwrap_err().contains("minHealthPercent 0"));
    }
}
