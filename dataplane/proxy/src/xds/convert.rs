//! Envoy v3 resources → the proxy's configuration types, rejecting what the proxy cannot
//! honour with a reason (the reason becomes the NACK's `error_detail`). The mapping follows
//! what Istio programs: `Cluster` (lb policy, outlier detection, panic threshold, connect
//! timeout, HTTP/2), `ClusterLoadAssignment` (IP endpoints with weights) and
//! `RouteConfiguration` (virtual hosts, prefix routes, `cluster` / `weighted_clusters`,
//! timeout, retry policy). Defaults are Envoy's where a field is absent, since an xDS server
//! speaks Envoy's defaults, not Istio's.

use crate::config::{
    ClusterConfig, Destination, EndpointConfig, Route, RouteConfig, VirtualHost, WeightedCluster,
    validate_cluster,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{address, socket_address::PortSpecifier};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, lb_endpoint::HostIdentifier,
};
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier,
};
use envoy_types::pb::google::protobuf::Duration;
use homeostat_dataplane::config::{
    BalancerConfig, BalancerKind, OutlierConfig, RetryLimit, RetryOn, RetryPolicy,
    SuccessRateConfig,
};
use homeostat_dataplane::time::{MILLISECOND, Nanos, SECOND};
use std::net::{IpAddr, SocketAddr};

/// Type URLs of the three resource types the client subscribes to.
pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINTS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const ROUTES: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

fn nanos(d: &Duration, field: &str) -> Result<Nanos, String> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(format!("{field}: negative duration"));
    }
    let s = u64::try_from(d.seconds).map_err(|_| format!("{field}: out of range"))?;
    s.checked_mul(SECOND)
        .and_then(|n| n.checked_add(d.nanos.unsigned_abs().into()))
        .ok_or_else(|| format!("{field}: out of range"))
}

fn opt_nanos(d: Option<&Duration>, field: &str, default: Nanos) -> Result<Nanos, String> {
    d.map_or(Ok(default), |d| nanos(d, field))
}

/// Istio names clusters `outbound|9080|v1|reviews.default.svc.cluster.local`: the telemetry
/// labels come from there when nothing better is known.
fn destination(name: &str) -> Destination {
    let parts: Vec<&str> = name.split('|').collect();
    match parts.as_slice() {
        [_, _, subset, host] => Destination {
            service: (*host).to_owned(),
            app: host.split('.').next().unwrap_or("unknown").to_owned(),
            namespace: host.split('.').nth(1).unwrap_or("unknown").to_owned(),
            version: if subset.is_empty() {
                "unknown".into()
            } else {
                (*subset).to_owned()
            },
            workload: "unknown".into(),
        },
        _ => Destination {
            service: name.to_owned(),
            ..Destination::default()
        },
    }
}

/// A CDS `Cluster`. Endpoints come from its inline `load_assignment`, or later from EDS.
pub fn cluster(c: &Cluster) -> Result<ClusterConfig, String> {
    let at = |m: String| format!("cluster {:?}: {m}", c.name);
    if c.name.is_empty() {
        return Err("cluster: empty name".into());
    }
    let kind = match c.lb_policy {
        0 => BalancerKind::RoundRobin,
        1 => BalancerKind::LeastRequest,
        other => {
            return Err(at(format!(
                "lb_policy {other} is not supported (ROUND_ROBIN or LEAST_REQUEST)"
            )));
        }
    };
    let panic = c
        .common_lb_config
        .as_ref()
        .and_then(|l| l.healthy_panic_threshold.as_ref())
        .map_or(50.0, |p| p.value);
    if !(0.0..=100.0).contains(&panic) {
        return Err(at(format!(
            "healthy_panic_threshold {panic} is not a percentage"
        )));
    }
    let outlier_detection = match &c.outlier_detection {
        None => None,
        Some(o) => {
            let v = |x: Option<&envoy_types::pb::google::protobuf::UInt32Value>, d: u32| {
                x.map_or(d, |x| x.value)
            };
            let enforce_gateway = v(o.enforcing_consecutive_gateway_failure.as_ref(), 0);
            Some(OutlierConfig {
                consecutive_5xx: v(o.consecutive_5xx.as_ref(), 5),
                consecutive_gateway_errors: if enforce_gateway == 0 {
                    0
                } else {
                    v(o.consecutive_gateway_failure.as_ref(), 5)
                },
                interval: opt_nanos(
                    o.interval.as_ref(),
                    "outlier_detection.interval",
                    10 * SECOND,
                )
                .map_err(at)?,
                base_ejection_time: opt_nanos(
                    o.base_ejection_time.as_ref(),
                    "outlier_detection.base_ejection_time",
                    30 * SECOND,
                )
                .map_err(at)?,
                max_ejection_time: opt_nanos(
                    o.max_ejection_time.as_ref(),
                    "outlier_detection.max_ejection_time",
                    300 * SECOND,
                )
                .map_err(at)?,
                max_ejection_time_jitter: opt_nanos(
                    o.max_ejection_time_jitter.as_ref(),
                    "outlier_detection.max_ejection_time_jitter",
                    0,
                )
                .map_err(at)?,
                max_ejection_percent: v(o.max_ejection_percent.as_ref(), 10),
                always_eject_one_host: o.always_eject_one_host.as_ref().is_some_and(|b| b.value),
                enforcing_consecutive_5xx: v(o.enforcing_consecutive_5xx.as_ref(), 100),
                enforcing_consecutive_gateway_errors: enforce_gateway.clamp(1, 100),
                // Truncation is Envoy's: the threshold is compared as a whole percentage.
                min_health_percent: panic as u32,
                // Envoy's proto defaults: an absent `enforcing_success_rate` is 100, so the
                // detector is on unless the control plane says 0 (Istio always does).
                success_rate: match v(o.enforcing_success_rate.as_ref(), 100) {
                    0 => None,
                    enforcing => Some(SuccessRateConfig {
                        minimum_hosts: v(o.success_rate_minimum_hosts.as_ref(), 5),
                        request_volume: v(o.success_rate_request_volume.as_ref(), 100),
                        stdev_factor: v(o.success_rate_stdev_factor.as_ref(), 1900),
                        enforcing,
                    }),
                },
            })
        }
    };
    let mut cfg = ClusterConfig {
        name: c.name.clone(),
        destination: destination(&c.name),
        balancer: BalancerConfig {
            kind,
            panic_threshold_percent: panic,
            ..BalancerConfig::default()
        },
        outlier_detection,
        retry_limit: RetryLimit::default(),
        connect_timeout: opt_nanos(c.connect_timeout.as_ref(), "connect_timeout", 5 * SECOND)
            .map_err(at)?,
        // The deprecated field is what older control planes send; the typed
        // `HttpProtocolOptions` extension is not read yet.
        #[allow(deprecated)]
        http2: c.http2_protocol_options.is_some(),
        endpoints: Vec::new(),
    };
    if let Some(la) = &c.load_assignment {
        cfg.endpoints = endpoints(la)?.1;
    }
    validate_cluster(&cfg).map_err(|(f, m)| at(format!("{f}: {m}")))?;
    Ok(cfg)
}

/// An EDS `ClusterLoadAssignment`: the cluster's name and its endpoints.
pub fn endpoints(la: &ClusterLoadAssignment) -> Result<(String, Vec<EndpointConfig>), String> {
    let at = |m: String| format!("endpoints of {:?}: {m}", la.cluster_name);
    let mut out = Vec::new();
    for locality in &la.endpoints {
        for lb in &locality.lb_endpoints {
            let Some(HostIdentifier::Endpoint(ep)) = &lb.host_identifier else {
                return Err(at("an lb_endpoint without an endpoint".into()));
            };
            let Some(address::Address::SocketAddress(sa)) =
                ep.address.as_ref().and_then(|a| a.address.as_ref())
            else {
                return Err(at("only socket addresses are supported".into()));
            };
            let ip: IpAddr = sa.address.parse().map_err(|_| {
                at(format!(
                    "{:?} is not an IP address (no DNS resolution)",
                    sa.address
                ))
            })?;
            let Some(PortSpecifier::PortValue(port)) = sa.port_specifier else {
                return Err(at(format!("{ip}: a numeric port_value is required")));
            };
            let port = u16::try_from(port).map_err(|_| at(format!("port {port} out of range")))?;
            let weight = lb.load_balancing_weight.as_ref().map_or(1, |w| w.value);
            if weight == 0 {
                return Err(at(format!(
                    "{ip}:{port}: load_balancing_weight must be at least 1"
                )));
            }
            out.push(EndpointConfig {
                address: SocketAddr::new(ip, port),
                weight,
            });
        }
    }
    Ok((la.cluster_name.clone(), out))
}

/// An RDS `RouteConfiguration`.
pub fn route_config(rc: &RouteConfiguration) -> Result<RouteConfig, String> {
    let at = |m: String| format!("route configuration {:?}: {m}", rc.name);
    let mut virtual_hosts = Vec::with_capacity(rc.virtual_hosts.len());
    for vh in &rc.virtual_hosts {
        let mut routes = Vec::with_capacity(vh.routes.len());
        for (i, r) in vh.routes.iter().enumerate() {
            let here = |m: &str| at(format!("virtual host {:?} route {i}: {m}", vh.name));
            let prefix = match r.r#match.as_ref().and_then(|m| m.path_specifier.as_ref()) {
                Some(PathSpecifier::Prefix(p)) if p.is_empty() => "/".to_owned(),
                Some(PathSpecifier::Prefix(p)) => p.clone(),
                _ => return Err(here("only prefix matches are supported")),
            };
            let Some(Action::Route(action)) = &r.action else {
                return Err(here("only route actions are supported"));
            };
            let weighted_clusters = match &action.cluster_specifier {
                Some(ClusterSpecifier::Cluster(name)) => vec![WeightedCluster {
                    cluster: name.clone(),
                    weight: 1,
                }],
                Some(ClusterSpecifier::WeightedClusters(w)) => w
                    .clusters
                    .iter()
                    .map(|c| WeightedCluster {
                        cluster: c.name.clone(),
                        weight: c.weight.as_ref().map_or(0, |w| w.value),
                    })
                    .collect(),
                _ => return Err(here("a cluster or weighted_clusters is required")),
            };
            let retries = match &action.retry_policy {
                // Envoy without a retry policy does not retry.
                None => RetryPolicy {
                    attempts: 0,
                    ..RetryPolicy::default()
                },
                Some(p) => {
                    let mut on = p.retry_on.clone();
                    for code in &p.retriable_status_codes {
                        on.push_str(&format!(",{code}"));
                    }
                    let back_off = p.retry_back_off.as_ref();
                    RetryPolicy {
                        attempts: p.num_retries.as_ref().map_or(1, |n| n.value),
                        per_try_timeout: p
                            .per_try_timeout
                            .as_ref()
                            .map(|d| nanos(d, "per_try_timeout"))
                            .transpose()
                            .map_err(|e| here(&e))?,
                        retry_on: RetryOn::parse(&on).map_err(|e| here(&e))?,
                        backoff_base_interval: opt_nanos(
                            back_off.and_then(|b| b.base_interval.as_ref()),
                            "retry_back_off.base_interval",
                            25 * MILLISECOND,
                        )
                        .map_err(|e| here(&e))?,
                        backoff_max_interval: back_off
                            .and_then(|b| b.max_interval.as_ref())
                            .map(|d| nanos(d, "retry_back_off.max_interval"))
                            .transpose()
                            .map_err(|e| here(&e))?,
                        avoid_previous_hosts: !p.retry_host_predicate.is_empty(),
                        host_selection_retry_max_attempts: u32::try_from(
                            p.host_selection_retry_max_attempts.max(1),
                        )
                        .unwrap_or(u32::MAX),
                    }
                }
            };
            routes.push(Route {
                prefix,
                weighted_clusters,
                timeout: opt_nanos(action.timeout.as_ref(), "timeout", 15 * SECOND)
                    .map_err(|e| here(&e))?,
                retries,
            });
        }
        virtual_hosts.push(VirtualHost {
            name: vh.name.clone(),
            domains: vh.domains.clone(),
            routes,
        });
    }
    Ok(RouteConfig {
        name: rc.name.clone(),
        virtual_hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::cluster::v3::OutlierDetection;
    use envoy_types::pb::envoy::config::route::v3::{
        RetryPolicy as PbRetry, Route as PbRoute, RouteAction, RouteMatch,
        VirtualHost as PbVirtualHost,
    };
    use envoy_types::pb::google::protobuf::UInt32Value;

    fn secs(s: i64) -> Option<Duration> {
        Some(Duration {
            seconds: s,
            nanos: 0,
        })
    }

    #[test]
    fn clusters_map_envoy_fields_and_defaults_and_reject_what_cannot_be_honoured() {
        let c = Cluster {
            name: "outbound|9080|v2|reviews.default.svc.cluster.local".into(),
            lb_policy: 1,
            outlier_detection: Some(OutlierDetection {
                consecutive_5xx: Some(UInt32Value { value: 3 }),
                base_ejection_time: secs(1),
                ..OutlierDetection::default()
            }),
            ..Cluster::default()
        };
        let cfg = cluster(&c).expect("valid cluster");
        let o = cfg.outlier_detection.expect("outlier detection");
        // Given: 3 and 1 s. Envoy defaults: interval 10 s, max 10 %, gateway detector not
        // enforced, panic threshold 50 %, connect timeout 5 s.
        assert_eq!((o.consecutive_5xx, o.base_ejection_time), (3, SECOND));
        assert_eq!(
            (
                o.interval,
                o.max_ejection_percent,
                o.consecutive_gateway_errors
            ),
            (10 * SECOND, 10, 0)
        );
        assert_eq!(
            (o.min_health_percent, cfg.connect_timeout),
            (50, 5 * SECOND)
        );
        // Envoy's success-rate defaults apply when the control plane leaves them out: on,
        // minimum hosts 5, volume 100, factor 1900, enforcing 100.
        assert_eq!(o.success_rate, Some(SuccessRateConfig::default()));
        assert_eq!(cfg.balancer.kind, BalancerKind::LeastRequest);
        // What Istio sends (`enforcing_success_rate: 0`) turns it off; other values map 1:1.
        let mut istio = c.clone();
        if let Some(od) = istio.outlier_detection.as_mut() {
            od.enforcing_success_rate = Some(UInt32Value { value: 0 });
        }
        let off = cluster(&istio).expect("istio cluster");
        assert_eq!(off.outlier_detection.and_then(|o| o.success_rate), None);
        let mut tuned = c.clone();
        if let Some(od) = tuned.outlier_detection.as_mut() {
            od.enforcing_success_rate = Some(UInt32Value { value: 50 });
            od.success_rate_minimum_hosts = Some(UInt32Value { value: 3 });
            od.success_rate_request_volume = Some(UInt32Value { value: 20 });
            od.success_rate_stdev_factor = Some(UInt32Value { value: 1000 });
        }
        let sr = cluster(&tuned)
            .expect("tuned cluster")
            .outlier_detection
            .and_then(|o| o.success_rate);
        assert_eq!(
            sr,
            Some(SuccessRateConfig {
                minimum_hosts: 3,
                request_volume: 20,
                stdev_factor: 1000,
                enforcing: 50,
            })
        );
        let mut bad = c.clone();
        if let Some(od) = bad.outlier_detection.as_mut() {
            od.enforcing_success_rate = Some(UInt32Value { value: 101 });
        }
        assert!(
            cluster(&bad)
                .expect_err("101 %")
                .contains("successRate.enforcing"),
        );
        assert_eq!(
            (
                cfg.destination.service.as_str(),
                cfg.destination.version.as_str()
            ),
            ("reviews.default.svc.cluster.local", "v2")
        );

        let ring = Cluster {
            lb_policy: 2,
            ..c.clone()
        };
        assert!(
            cluster(&ring)
                .expect_err("ring hash")
                .contains("lb_policy 2 is not supported")
        );
        let negative = Cluster {
            connect_timeout: secs(-1),
            ..c
        };
        assert!(
            cluster(&negative)
                .expect_err("negative")
                .contains("connect_timeout: negative duration")
        );
    }

    #[test]
    fn routes_take_envoy_retry_defaults_and_reject_bad_retry_conditions() {
        let rc = |retry: Option<PbRetry>| RouteConfiguration {
            name: "main".into(),
            virtual_hosts: vec![PbVirtualHost {
                name: "all".into(),
                domains: vec!["*".into()],
                routes: vec![PbRoute {
                    r#match: Some(RouteMatch {
                        path_specifier: Some(PathSpecifier::Prefix(String::new())),
                        ..RouteMatch::default()
                    }),
                    action: Some(Action::Route(RouteAction {
                        cluster_specifier: Some(ClusterSpecifier::Cluster("c".into())),
                        retry_policy: retry,
                        ..RouteAction::default()
                    })),
                    ..PbRoute::default()
                }],
                ..PbVirtualHost::default()
            }],
            ..RouteConfiguration::default()
        };
        let none = route_config(&rc(None)).expect("valid");
        let r = &none.virtual_hosts[0].routes[0];
        // No retry policy: Envoy does not retry; empty prefix is "/"; timeout 15 s.
        assert_eq!(
            (r.retries.attempts, r.prefix.as_str(), r.timeout),
            (0, "/", 15 * SECOND)
        );
        let some = route_config(&rc(Some(PbRetry {
            retry_on: "gateway-error".into(),
            retriable_status_codes: vec![409],
            ..PbRetry::default()
        })))
        .expect("valid");
        let p = &some.virtual_hosts[0].routes[0].retries;
        // num_retries absent: Envoy's 1; 409 joins the retriable codes.
        assert_eq!((p.attempts, p.retry_on.status_codes()), (1, &[409u16][..]));
        let bad = route_config(&rc(Some(PbRetry {
            retry_on: "sometimes".into(),
            ..PbRetry::default()
        })))
        .expect_err("bad retry_on");
        assert!(bad.contains("unknown condition `sometimes`"), "{bad}");
    }
}
