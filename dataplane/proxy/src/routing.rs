//! Request → route: virtual host by `Host` / `:authority`, then the first route whose path
//! prefix matches; the route's weighted clusters are a dataplane [`WeightedSplit`], the very
//! split the simulator draws from.
//!
//! Virtual-host selection follows Envoy's order: an exact domain, then the longest `*.suffix`
//! wildcard, then the longest `prefix.*` wildcard, then `*`. The port in the host is ignored.

use crate::config::{Route, RouteConfig};
use crate::upstream::Upstream;
use homeostat_dataplane::config::RetryPolicy;
use homeostat_dataplane::split::WeightedSplit;
use homeostat_dataplane::time::Nanos;
use std::collections::HashMap;
use std::sync::Arc;

/// A route, resolved against the clusters in force.
#[derive(Debug)]
pub struct CompiledRoute {
    pub prefix: String,
    pub split: WeightedSplit,
    /// In split order.
    pub clusters: Vec<Arc<Upstream>>,
    /// 0 = no route timeout.
    pub timeout: Nanos,
    pub retries: RetryPolicy,
}

impl CompiledRoute {
    /// The cluster for a uniform random `draw`.
    pub fn pick_cluster(&self, draw: u64) -> &Arc<Upstream> {
        &self.clusters[self.split.pick(draw)]
    }
}

#[derive(Debug)]
enum Domain {
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
    /// `example.*` stored as `example.`.
    Prefix(String),
    Any,
}

#[derive(Debug)]
struct CompiledVirtualHost {
    domains: Vec<Domain>,
    routes: Vec<Arc<CompiledRoute>>,
}

/// One route configuration, ready to match requests.
#[derive(Debug, Default)]
pub struct RouteTable {
    virtual_hosts: Vec<CompiledVirtualHost>,
}

/// Why a route configuration cannot be compiled (it references a cluster that is not there).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RouteError {
    pub field: String,
    pub message: String,
}

impl RouteTable {
    /// Compiles `rc` against `clusters` (by name).
    pub fn compile(
        rc: &RouteConfig,
        clusters: &HashMap<String, Arc<Upstream>>,
    ) -> Result<RouteTable, RouteError> {
        let mut virtual_hosts = Vec::with_capacity(rc.virtual_hosts.len());
        for (v, vh) in rc.virtual_hosts.iter().enumerate() {
            let domains = vh
                .domains
                .iter()
                .map(|d| {
                    let d = d.to_ascii_lowercase();
                    if d == "*" {
                        Domain::Any
                    } else if let Some(rest) = d.strip_prefix('*') {
                        Domain::Suffix(rest.to_owned())
                    } else if let Some(rest) = d.strip_suffix('*') {
                        Domain::Prefix(rest.to_owned())
                    } else {
                        Domain::Exact(d)
                    }
                })
                .collect();
            let routes = vh
                .routes
                .iter()
                .enumerate()
                .map(|(r, route)| {
                    compile_route(route, clusters)
                        .map(Arc::new)
                        .map_err(|mut e| {
                            e.field = format!("virtualHosts[{v}].routes[{r}].{}", e.field);
                            e
                        })
                })
                .collect::<Result<_, _>>()?;
            virtual_hosts.push(CompiledVirtualHost { domains, routes });
        }
        Ok(RouteTable { virtual_hosts })
    }

    /// The route for `host` (port and case ignored) and `path`, if any.
    pub fn find(&self, host: &str, path: &str) -> Option<&Arc<CompiledRoute>> {
        let host = strip_port(host).to_ascii_lowercase();
        let vh = self.virtual_host(&host)?;
        vh.routes.iter().find(|r| path.starts_with(&r.prefix))
    }

    fn virtual_host(&self, host: &str) -> Option<&CompiledVirtualHost> {
        // (rank, length): exact beats suffix beats prefix beats any; longer wildcards win.
        let mut best: Option<((u8, usize), &CompiledVirtualHost)> = None;
        for vh in &self.virtual_hosts {
            for d in &vh.domains {
                let score = match d {
                    Domain::Exact(e) if e == host => (3, e.len()),
                    Domain::Suffix(s) if host.ends_with(s.as_str()) && host.len() > s.len() => {
                        (2, s.len())
                    }
                    Domain::Prefix(p) if host.starts_with(p.as_str()) && host.len() > p.len() => {
                        (1, p.len())
                    }
                    Domain::Any => (0, 0),
                    _ => continue,
                };
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, vh));
                }
            }
        }
        best.map(|(_, vh)| vh)
    }
}

fn compile_route(
    route: &Route,
    clusters: &HashMap<String, Arc<Upstream>>,
) -> Result<CompiledRoute, RouteError> {
    let weights: Vec<u32> = route.weighted_clusters.iter().map(|w| w.weight).collect();
    let split = WeightedSplit::new(&weights).map_err(|e| RouteError {
        field: "weightedClusters".into(),
        message: e.to_string(),
    })?;
    let resolved = route
        .weighted_clusters
        .iter()
        .enumerate()
        .map(|(w, wc)| {
            clusters
                .get(&wc.cluster)
                .cloned()
                .ok_or_else(|| RouteError {
                    field: format!("weightedClusters[{w}].cluster"),
                    message: format!("no cluster named {:?}", wc.cluster),
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(CompiledRoute {
        prefix: route.prefix.clone(),
        split,
        clusters: resolved,
        timeout: route.timeout,
        retries: route.retries.clone(),
    })
}

/// `host:port` → `host`; `[::1]:80` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rfind(':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::{ClusterConfig, VirtualHost, WeightedCluster};

    fn cluster(name: &str) -> Arc<Upstream> {
        let cfg: ClusterConfig =
            serde_yaml::from_str(&format!("name: {name}\nendpoints: []")).expect("cluster");
        Arc::new(Upstream::new(&cfg, Clock::start()))
    }

    fn route(prefix: &str, cluster: &str) -> Route {
        serde_yaml::from_str(&format!(
            "prefix: {prefix}\nweightedClusters: [{{ cluster: {cluster} }}]"
        ))
        .expect("route")
    }

    fn table() -> RouteTable {
        let clusters: HashMap<String, Arc<Upstream>> = ["exact", "suffix", "prefix", "any", "api"]
            .into_iter()
            .map(|n| (n.to_owned(), cluster(n)))
            .collect();
        let vh = |name: &str, domains: &[&str], routes: Vec<Route>| VirtualHost {
            name: name.into(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            routes,
        };
        let rc = RouteConfig {
            name: "main".into(),
            virtual_hosts: vec![
                vh("any", &["*"], vec![route("/", "any")]),
                vh("prefix", &["reviews.*"], vec![route("/", "prefix")]),
                vh(
                    "suffix",
                    &["*.svc.cluster.local"],
                    vec![route("/", "suffix")],
                ),
                vh(
                    "exact",
                    &["reviews.default.svc.cluster.local"],
                    vec![route("/api/", "api"), route("/", "exact")],
                ),
            ],
        };
        RouteTable::compile(&rc, &clusters).expect("compiles")
    }

    fn target(t: &RouteTable, host: &str, path: &str) -> Option<String> {
        t.find(host, path).map(|r| r.clusters[0].name.clone())
    }

    #[test]
    fn envoy_virtual_host_precedence_and_first_prefix_wins() {
        let t = table();
        let host = "reviews.default.svc.cluster.local";
        assert_eq!(target(&t, host, "/api/v1").as_deref(), Some("api"));
        assert_eq!(target(&t, host, "/apix").as_deref(), Some("exact"));
        // Port and case are ignored.
        assert_eq!(
            target(&t, "Reviews.Default.svc.cluster.local:9080", "/").as_deref(),
            Some("exact")
        );
        assert_eq!(
            target(&t, "ratings.default.svc.cluster.local", "/").as_deref(),
            Some("suffix")
        );
        assert_eq!(target(&t, "reviews.other", "/").as_deref(), Some("prefix"));
        assert_eq!(target(&t, "127.0.0.1:8080", "/").as_deref(), Some("any"));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn no_route_without_a_matching_prefix_and_unknown_clusters_are_errors() {
        let clusters: HashMap<String, Arc<Upstream>> =
            [("a".to_owned(), cluster("a"))].into_iter().collect();
        let rc = RouteConfig {
            name: "r".into(),
            virtual_hosts: vec![VirtualHost {
                name: "v".into(),
                domains: vec!["*".into()],
                routes: vec![route("/only/", "a")],
            }],
        };
        let t = RouteTable::compile(&rc, &clusters).expect("compiles");
        assert!(t.find("x", "/other").is_none());
        assert!(t.find("x", "/only/this").is_some());
        let mut bad = rc.clone();
        bad.virtual_hosts[0].routes[0].weighted_clusters = vec![WeightedCluster {
            cluster: "b".into(),
            weight: 1,
        }];
        let e = RouteTable::compile(&bad, &clusters).expect_err("unknown cluster");
        assert_eq!(
            e.to_string(),
            "virtualHosts[0].routes[0].weightedClusters[0].cluster: no cluster named \"b\""
        );
    }
}
