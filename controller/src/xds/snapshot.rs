//! One configuration version: the Envoy v3 resources of each type, encoded once.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;

/// Type URLs served.
pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINTS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const ROUTES: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

/// The resources of one version, as `(name, Any)` per type.
#[derive(Debug, Clone, Default)]
pub struct XdsSnapshot {
    pub version: String,
    clusters: Vec<(String, Any)>,
    endpoints: Vec<(String, Any)>,
    routes: Vec<(String, Any)>,
}

impl XdsSnapshot {
    /// A snapshot of `version` with these resources.
    pub fn new(
        version: impl Into<String>,
        clusters: Vec<Cluster>,
        endpoints: Vec<ClusterLoadAssignment>,
        routes: Vec<RouteConfiguration>,
    ) -> XdsSnapshot {
        XdsSnapshot {
            version: version.into(),
            clusters: clusters
                .into_iter()
                .map(|c| (c.name.clone(), pack_any(c)))
                .collect(),
            endpoints: endpoints
                .into_iter()
                .map(|e| (e.cluster_name.clone(), pack_any(e)))
                .collect(),
            routes: routes
                .into_iter()
                .map(|r| (r.name.clone(), pack_any(r)))
                .collect(),
        }
    }

    /// The resources of `type_url` named in `names` (all of them when `names` is empty, the
    /// wildcard subscription CDS uses); `None` for a type this server does not serve.
    pub fn resources(&self, type_url: &str, names: &[String]) -> Option<Vec<Any>> {
        let all = match type_url {
            CLUSTER => &self.clusters,
            ENDPOINTS => &self.endpoints,
            ROUTES => &self.routes,
            _ => return None,
        };
        Some(
            all.iter()
                .filter(|(n, _)| names.is_empty() || names.contains(n))
                .map(|(_, a)| a.clone())
                .collect(),
        )
    }
}
