//! The proxy's configuration as a bootstrap file writes it (YAML, camelCase), in Envoy's shape —
//! listeners → route configuration → virtual hosts → routes → weighted clusters → endpoints — so
//! that an xDS update and a file describe the same thing. The state-machine blocks (`balancer`,
//! `outlierDetection`, `retries`, `retryLimit`) are the dataplane crate's own types, so a file,
//! a scenario and the simulator read them identically.
//!
//! [`Bootstrap::load`] reads and validates a file; every error names the file and the field
//! (`routeConfigs[0].virtualHosts[0].routes[1].weightedClusters[0].cluster`), because a proxy
//! that starts with half a configuration is worse than one that refuses to start.

use homeostat_dataplane::config::{BalancerConfig, OutlierConfig, RetryLimit, RetryPolicy};
use homeostat_dataplane::time::Nanos;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
}

/// The whole bootstrap file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bootstrap {
    /// Who this proxy is: the `source_*` labels of its telemetry.
    #[serde(default)]
    pub node: Node,
    /// The admin / stats listener.
    #[serde(default)]
    pub admin: Admin,
    /// Limits that protect the proxy from bad clients and bad upstreams.
    #[serde(default)]
    pub limits: Limits,
    /// The control plane: when set, clusters, endpoints and routes come from ADS (and the
    /// file's own `routeConfigs` / `clusters` are only the configuration until ADS answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ads: Option<Ads>,
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub route_configs: Vec<RouteConfig>,
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
}

/// An aggregated discovery service to take configuration from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ads {
    /// `http://host:port` of the ADS (gRPC) server.
    pub address: String,
}

/// The proxy's identity (Istio's `source_*` labels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Node {
    /// xDS node id.
    pub id: String,
    /// `source_workload` (the Deployment's name in Istio).
    pub workload: String,
    /// `source_workload_namespace`.
    pub namespace: String,
    /// `source_app` / `source_canonical_service`.
    pub app: String,
    /// `source_version` / `source_canonical_revision`.
    pub version: String,
    /// `source_cluster` (the Kubernetes cluster; Istio's default is `Kubernetes`).
    pub cluster: String,
    /// `reporter`: `source` for a client-side proxy, `destination` for a server-side one.
    pub reporter: Reporter,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            id: "homeostat-proxy".into(),
            workload: "unknown".into(),
            namespace: "unknown".into(),
            app: "unknown".into(),
            version: "unknown".into(),
            cluster: "Kubernetes".into(),
            reporter: Reporter::Source,
        }
    }
}

/// Istio's `reporter` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reporter {
    Source,
    Destination,
}

impl Reporter {
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }
}

/// The admin listener: `/stats/prometheus`, `/ready`, `/config_dump`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Admin {
    /// Istio's sidecars serve merged Prometheus stats on 15090.
    pub address: SocketAddr,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: SocketAddr::from(([127, 0, 0, 1], 15090)),
        }
    }
}

/// Bounds on what one client or one upstream can make the proxy hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Limits {
    /// Largest HTTP/1 request head (request line + headers); more gets 431. HTTP/2 header lists
    /// are capped at the same size. Envoy's default `max_request_headers_kb` is 60 KiB.
    pub max_header_bytes: usize,
    /// Time a client has to send a complete HTTP/1 request head (slowloris guard); the
    /// connection is closed when it runs out.
    #[serde(with = "homeostat_dataplane::time::duration")]
    pub header_read_timeout: Nanos,
    /// Largest request body; more gets 413. Bodies are buffered so that a retry can resend them
    /// (Envoy buffers for retries too); this bounds that buffer.
    pub max_request_body_bytes: usize,
    /// Time a client has to send its whole request body; a slower one gets 408.
    #[serde(with = "homeostat_dataplane::time::duration")]
    pub request_body_timeout: Nanos,
    /// Downstream connections held at once; further connections wait in the kernel's backlog.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per downstream connection.
    pub max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 60 * 1024,
            header_read_timeout: 10 * homeostat_dataplane::time::SECOND,
            max_request_body_bytes: 1024 * 1024,
            request_body_timeout: 30 * homeostat_dataplane::time::SECOND,
            max_connections: 10_000,
            max_concurrent_streams: 1024,
        }
    }
}

/// One listening socket and the route configuration it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    /// Name of an entry of `routeConfigs` (Envoy RDS `route_config_name`).
    pub route_config: String,
}

/// Envoy `RouteConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
}

/// Envoy `VirtualHost`: routes for a set of `Host` / `:authority` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualHost {
    pub name: String,
    /// `"reviews.default.svc"` (exact), `"*.default.svc"` (suffix), `"reviews.*"` (prefix) or
    /// `"*"` (any). The port of the request's host is ignored, as Envoy does by default.
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
}

/// Envoy `Route` with a prefix match and a `weighted_clusters` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    /// Path prefix; the first route whose prefix matches wins (Envoy order semantics).
    #[serde(default = "slash")]
    pub prefix: String,
    /// Istio `VirtualService.http[].route[]`: one entry means all traffic.
    pub weighted_clusters: Vec<WeightedCluster>,
    /// Whole-request timeout until the response headers, retries included. Envoy's default
    /// route timeout is 15 s; `0` turns it off.
    #[serde(
        default = "fifteen_seconds",
        with = "homeostat_dataplane::time::duration"
    )]
    pub timeout: Nanos,
    /// Retry policy; Istio's default (2 retries on connect-failure, refused-stream, 503) when
    /// absent.
    #[serde(default)]
    pub retries: RetryPolicy,
}

fn slash() -> String {
    "/".into()
}

fn fifteen_seconds() -> Nanos {
    15 * homeostat_dataplane::time::SECOND
}

/// One destination of a route split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedCluster {
    pub cluster: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// Envoy `Cluster` (one subset of a service) with its endpoints (EDS inline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    /// Telemetry labels of this destination.
    #[serde(default)]
    pub destination: Destination,
    #[serde(default)]
    pub balancer: BalancerConfig,
    /// Outlier detection; absent means none (a stock Istio mesh without a `DestinationRule`).
    #[serde(default)]
    pub outlier_detection: Option<OutlierConfig>,
    /// Retry budget / `maxRetries` circuit breaker.
    #[serde(default)]
    pub retry_limit: RetryLimit,
    /// TCP connect timeout. Istio's default `connectTimeout` is 10 s.
    #[serde(default = "ten_seconds", with = "homeostat_dataplane::time::duration")]
    pub connect_timeout: Nanos,
    /// Speak HTTP/2 (prior knowledge, h2c) to the endpoints instead of HTTP/1.1.
    #[serde(default)]
    pub http2: bool,
    pub endpoints: Vec<EndpointConfig>,
}

fn ten_seconds() -> Nanos {
    10 * homeostat_dataplane::time::SECOND
}

/// Istio's `destination_*` labels for a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Destination {
    /// `destination_service`: the service's host name (`reviews.default.svc.cluster.local`).
    pub service: String,
    /// `destination_workload`.
    pub workload: String,
    /// `destination_workload_namespace` / `destination_service_namespace`.
    pub namespace: String,
    /// `destination_app` / `destination_canonical_service`.
    pub app: String,
    /// `destination_version` / `destination_canonical_revision`.
    pub version: String,
}

impl Default for Destination {
    fn default() -> Self {
        Destination {
            service: "unknown".into(),
            workload: "unknown".into(),
            namespace: "unknown".into(),
            app: "unknown".into(),
            version: "unknown".into(),
        }
    }
}

/// One endpoint (a pod) of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointConfig {
    pub address: SocketAddr,
    #[serde(default = "one")]
    pub weight: u32,
}

impl Bootstrap {
    /// Reads, parses and validates a bootstrap file.
    pub fn load(path: &Path) -> Result<Bootstrap, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Bootstrap::parse(&file, &text)
    }

    /// Parses and validates bootstrap YAML; `file` names the source in errors.
    pub fn parse(file: &str, text: &str) -> Result<Bootstrap, ConfigError> {
        let b: Bootstrap = serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        b.validate()
            .map_err(|(field, message)| ConfigError::Invalid {
                file: file.to_owned(),
                field,
                message,
            })?;
        Ok(b)
    }

    /// Checks what serde cannot: references between sections, duplicate names, values the
    /// state machines would reject. Returns the offending field path and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let l = &self.limits;
        if l.max_header_bytes < 8192 {
            // hyper's HTTP/1 buffer cannot be smaller than 8 KiB.
            return Err((
                "limits.maxHeaderBytes".into(),
                "must be at least 8192".into(),
            ));
        }
        if l.max_connections == 0 {
            return Err(("limits.maxConnections".into(), "must be at least 1".into()));
        }
        if l.header_read_timeout == 0 || l.request_body_timeout == 0 {
            return Err((
                "limits".into(),
                "headerReadTimeout and requestBodyTimeout must be greater than zero".into(),
            ));
        }
        if let Some(ads) = &self.ads
            && !(ads.address.starts_with("http://") || ads.address.starts_with("https://"))
        {
            return Err((
                "ads.address".into(),
                format!("{:?}: expected http://host:port", ads.address),
            ));
        }
        unique(self.clusters.iter().map(|c| c.name.as_str()), "clusters")?;
        unique(
            self.route_configs.iter().map(|r| r.name.as_str()),
            "routeConfigs",
        )?;
        unique(self.listeners.iter().map(|l| l.name.as_str()), "listeners")?;
        let clusters: HashSet<&str> = self.clusters.iter().map(|c| c.name.as_str()).collect();
        let routes: HashSet<&str> = self.route_configs.iter().map(|r| r.name.as_str()).collect();
        for (i, listener) in self.listeners.iter().enumerate() {
            // With ADS the route configuration may arrive later, over RDS.
            if self.ads.is_none() && !routes.contains(listener.route_config.as_str()) {
                return Err((
                    format!("listeners[{i}].routeConfig"),
                    format!("no routeConfigs entry named {:?}", listener.route_config),
                ));
            }
        }
        for (r, rc) in self.route_configs.iter().enumerate() {
            validate_route_config(rc, &clusters)
                .map_err(|(f, m)| (format!("routeConfigs[{r}].{f}"), m))?;
        }
        for (c, cluster) in self.clusters.iter().enumerate() {
            validate_cluster(cluster).map_err(|(f, m)| (format!("clusters[{c}].{f}"), m))?;
        }
        Ok(())
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, section: &str) -> Result<(), (String, String)> {
    let mut seen = HashSet::new();
    for (i, n) in names.enumerate() {
        if n.is_empty() {
            return Err((format!("{section}[{i}].name"), "must not be empty".into()));
        }
        if !seen.insert(n) {
            return Err((
                format!("{section}[{i}].name"),
                format!("duplicate name {n:?}"),
            ));
        }
    }
    Ok(())
}

/// Validates one route configuration against the set of known cluster names; the field path
/// returned is relative to the route configuration. Shared by the bootstrap and xDS.
pub fn validate_route_config(
    rc: &RouteConfig,
    clusters: &HashSet<&str>,
) -> Result<(), (String, String)> {
    for (v, vh) in rc.virtual_hosts.iter().enumerate() {
        if vh.domains.is_empty() {
            return Err((
                format!("virtualHosts[{v}].domains"),
                "at least one domain (\"*\" for any) is required".into(),
            ));
        }
        for (d, domain) in vh.domains.iter().enumerate() {
            let stars = domain.matches('*').count();
            let wildcard_ok =
                stars == 0 || (stars == 1 && (domain.starts_with('*') || domain.ends_with('*')));
            if domain.is_empty() || !wildcard_ok {
                return Err((
                    format!("virtualHosts[{v}].domains[{d}]"),
                    format!("{domain:?}: use an exact host, \"*.suffix\", \"prefix.*\" or \"*\""),
                ));
            }
        }
        for (r, route) in vh.routes.iter().enumerate() {
            let at = |f: &str| format!("virtualHosts[{v}].routes[{r}].{f}");
            if !route.prefix.starts_with('/') {
                return Err((
                    at("prefix"),
                    format!("{:?} must start with '/'", route.prefix),
                ));
            }
            let weights: Vec<u32> = route.weighted_clusters.iter().map(|w| w.weight).collect();
            if let Err(e) = homeostat_dataplane::split::WeightedSplit::new(&weights) {
                return Err((at("weightedClusters"), e.to_string()));
            }
            for (w, wc) in route.weighted_clusters.iter().enumerate() {
                if !clusters.contains(wc.cluster.as_str()) {
                    return Err((
                        at(&format!("weightedClusters[{w}].cluster")),
                        format!("no cluster named {:?}", wc.cluster),
                    ));
                }
            }
            if let Err(e) = route.retries.validate() {
                return Err((at(&format!("retries.{}", e.field)), e.message));
            }
        }
    }
    Ok(())
}

/// Validates one cluster; the field path returned is relative to the cluster.
pub fn validate_cluster(c: &ClusterConfig) -> Result<(), (String, String)> {
    if let Err(e) = c.balancer.validate() {
        return Err((format!("balancer.{}", e.field), e.message));
    }
    if let Some(o) = &c.outlier_detection
        && let Err(e) = o.validate()
    {
        return Err((format!("outlierDetection.{}", e.field), e.message));
    }
    if let Err(e) = c.retry_limit.validate() {
        return Err((format!("retryLimit.budget.{}", e.field), e.message));
    }
    if c.connect_timeout == 0 {
        return Err(("connectTimeout".into(), "must be greater than zero".into()));
    }
    let mut seen = HashSet::new();
    for (e, ep) in c.endpoints.iter().enumerate() {
        if !seen.insert(ep.address) {
            return Err((
                format!("endpoints[{e}].address"),
                format!("duplicate endpoint {}", ep.address),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
node: { workload: productpage-v1, namespace: default }
listeners:
  - { name: http, address: "127.0.0.1:15001", routeConfig: main }
routeConfigs:
  - name: main
    virtualHosts:
      - name: reviews
        domains: ["reviews", "reviews.default.svc.cluster.local"]
        routes:
          - prefix: /
            timeout: 2s
            retries: { attempts: 3, retryOn: "5xx", perTryTimeout: 500ms }
            weightedClusters:
              - { cluster: reviews-v1, weight: 90 }
              - { cluster: reviews-v2, weight: 10 }
clusters:
  - name: reviews-v1
    destination: { service: reviews.default.svc.cluster.local, workload: reviews-v1, version: v1 }
    outlierDetection: { consecutive5xxErrors: 3 }
    endpoints: [{ address: "127.0.0.1:9001" }, { address: "127.0.0.1:9002", weight: 3 }]
  - name: reviews-v2
    balancer: { kind: ROUND_ROBIN }
    endpoints: [{ address: "127.0.0.1:9003" }]
"#;

    #[test]
    fn a_complete_file_parses_with_envoy_and_istio_defaults() {
        let b = Bootstrap::parse("good.yaml", GOOD).expect("valid bootstrap");
        assert_eq!(b.admin.address.port(), 15090);
        assert_eq!(b.node.reporter, Reporter::Source);
        let route = &b.route_configs[0].virtual_hosts[0].routes[0];
        assert_eq!(route.timeout, 2 * homeostat_dataplane::time::SECOND);
        assert_eq!(route.retries.attempts, 3);
        assert_eq!(b.clusters[0].endpoints[1].weight, 3);
        assert_eq!(b.clusters[0].endpoints[0].weight, 1);
        assert_eq!(
            b.clusters[0]
                .outlier_detection
                .as_ref()
                .map(|o| o.consecutive_5xx),
            Some(3)
        );
        // Istio's connectTimeout default.
        assert_eq!(
            b.clusters[1].connect_timeout,
            10 * homeostat_dataplane::time::SECOND
        );
        assert_eq!(b.clusters[1].outlier_detection, None);
    }

    fn error_of(text: &str) -> String {
        Bootstrap::parse("bad.yaml", text)
            .expect_err("must be rejected")
            .to_string()
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let unknown_cluster = GOOD.replace("cluster: reviews-v2, weight", "cluster: nope, weight");
        assert_eq!(
            error_of(&unknown_cluster),
            "bad.yaml: routeConfigs[0].virtualHosts[0].routes[0].weightedClusters[1].cluster: \
             no cluster named \"nope\""
        );
        let zero = GOOD
            .replace("weight: 90", "weight: 0")
            .replace("weight: 10", "weight: 0");
        assert!(
            error_of(&zero).starts_with(
                "bad.yaml: routeConfigs[0].virtualHosts[0].routes[0].weightedClusters: "
            ),
            "{}",
            error_of(&zero)
        );
        let bad_retry = GOOD.replace("retryOn: \"5xx\"", "retryOn: \"sometimes\"");
        let e = error_of(&bad_retry);
        assert!(
            e.starts_with("bad.yaml: ") && e.contains("unknown condition `sometimes`"),
            "{e}"
        );
        let bad_outlier = GOOD.replace("consecutive5xxErrors: 3", "maxEjectionPercent: 300");
        assert_eq!(
            error_of(&bad_outlier),
            "bad.yaml: clusters[0].outlierDetection.maxEjectionPercent: 300 is not a percentage (0..=100)"
        );
        let typo = GOOD.replace("routeConfig: main", "routeConfig: mian");
        assert_eq!(
            error_of(&typo),
            "bad.yaml: listeners[0].routeConfig: no routeConfigs entry named \"mian\""
        );
        let dup = GOOD.replace("address: \"127.0.0.1:9002\"", "address: \"127.0.0.1:9001\"");
        assert_eq!(
            error_of(&dup),
            "bad.yaml: clusters[0].endpoints[1].address: duplicate endpoint 127.0.0.1:9001"
        );
        let unknown_field = GOOD.replace("prefix: /", "prefx: /");
        let e = error_of(&unknown_field);
        assert!(e.contains("unknown field `prefx`"), "{e}");
        let bad_duration = GOOD.replace("timeout: 2s", "timeout: 2");
        let e = error_of(&bad_duration);
        assert!(e.contains("missing unit"), "{e}");
    }
}
