//! The bundled mesh as homeostat governs it: its description (a YAML file in the proxy's own
//! bootstrap shape — `routeConfigs` and `clusters`), the configuration in force that the
//! Governor reads from it, each applied `Change` written into it, and the xDS snapshot that
//! the ADS server pushes to every connected proxy.
//!
//! Objects are located by Istio's conventions, as for an Istio mesh: a governed service's
//! clusters are named `outbound|<port>|<subset>|<service>.<namespace>.svc.cluster.local` (the
//! proxy takes its telemetry labels from that name), and its routes are those that send all
//! their traffic to those clusters. Translation only: the value written is the Change's
//! `proposed` value as given; nothing here decides.
//!
//! An applied description is written to the state file (atomically) before it is published,
//! so a restarted controller serves what was applied, never the file's older state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use homeostat_dataplane::config::OutlierConfig as ProxyOutlier;
use homeostat_models::governor::{KnobValue, MeshConfig, OutlierConfig, RetryConfig};
use homeostat_models::policy::Duration;
use homeostat_proxy::config::{Bootstrap, ClusterConfig, RouteConfig, WeightedCluster};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::XdsSnapshot;
use super::resources;
use crate::mesh::istio::names_service;
use crate::mesh::{Found, MeshError};

/// The description file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshFile {
    #[serde(default)]
    pub route_configs: Vec<RouteConfig>,
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
}

impl MeshFile {
    /// Parses and validates a description; errors name the file and the field.
    pub fn parse(file: &str, text: &str) -> Result<MeshFile, MeshError> {
        let m: MeshFile =
            serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
                .map_err(|e| MeshError::new(file, e.path().to_string(), e.inner().to_string()))?;
        m.snapshot().map_err(|(path, message)| MeshError {
            object: file.to_owned(),
            path,
            message,
        })?;
        Ok(m)
    }

    /// Reads and validates a description file.
    pub fn load(path: &Path) -> Result<MeshFile, MeshError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| MeshError::new(&file, "", format!("cannot read: {e}")))?;
        MeshFile::parse(&file, &text)
    }

    /// The xDS resources of this description, versioned by their content (the same
    /// description is the same version, across restarts too). Validated as the proxy would:
    /// `Err((field, reason))`.
    pub fn snapshot(&self) -> Result<XdsSnapshot, (String, String)> {
        let b = Bootstrap {
            node: Default::default(),
            admin: Default::default(),
            limits: Default::default(),
            ads: None,
            listeners: Vec::new(),
            route_configs: self.route_configs.clone(),
            clusters: self.clusters.clone(),
        };
        b.validate()?;
        let mut clusters = Vec::with_capacity(self.clusters.len());
        for (i, c) in self.clusters.iter().enumerate() {
            clusters.push(resources::cluster(c).map_err(|m| (format!("clusters[{i}]"), m))?);
        }
        let endpoints = self.clusters.iter().map(resources::assignment).collect();
        let routes = self
            .route_configs
            .iter()
            .map(resources::route_config)
            .collect();
        let text = serde_json::to_string(self).unwrap_or_default();
        Ok(XdsSnapshot::new(
            content_version(&text),
            clusters,
            endpoints,
            routes,
        ))
    }

    /// Indices of `service`'s clusters, with their subsets.
    fn clusters_of(&self, ns: &str, service: &str) -> Vec<(usize, String)> {
        self.clusters
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let parts: Vec<&str> = c.name.split('|').collect();
                match parts.as_slice() {
                    ["outbound", _, subset, host] if names_service(host, service, ns) => {
                        Some((i, (*subset).to_owned()))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// (route config, virtual host, route) of every route sending all its traffic to `service`.
    fn routes_of(&self, ns: &str, service: &str) -> Vec<(usize, usize, usize)> {
        let mine: Vec<&str> = self
            .clusters_of(ns, service)
            .into_iter()
            .map(|(i, _)| self.clusters[i].name.as_str())
            .collect();
        let mut out = Vec::new();
        for (r, rc) in self.route_configs.iter().enumerate() {
            for (v, vh) in rc.virtual_hosts.iter().enumerate() {
                for (k, route) in vh.routes.iter().enumerate() {
                    if !route.weighted_clusters.is_empty()
                        && route
                            .weighted_clusters
                            .iter()
                            .all(|w| mine.contains(&w.cluster.as_str()))
                    {
                        out.push((r, v, k));
                    }
                }
            }
        }
        out
    }

    fn subset_of(&self, cluster: &str) -> String {
        cluster.split('|').nth(2).unwrap_or_default().to_owned()
    }

    /// The governed fields of `service` as found (None where the description leaves Istio's
    /// default in force).
    pub fn found(&self, ns: &str, service: &str) -> Result<Found, MeshError> {
        let object = format!("bundled mesh service {service}.{ns}");
        let clusters = self.clusters_of(ns, service);
        let Some(&(first, _)) = clusters.first() else {
            return Err(MeshError::new(
                &object,
                "clusters",
                format!(
                    "no cluster named outbound|<port>|<subset>|{service}.{ns}.svc.cluster.local"
                ),
            ));
        };
        let Some(&(r, v, k)) = self.routes_of(ns, service).first() else {
            return Err(MeshError::new(
                &object,
                "routeConfigs",
                format!("no route sends all its traffic to service {service}"),
            ));
        };
        let route = &self.route_configs[r].virtual_hosts[v].routes[k];
        let path = format!("routeConfigs[{r}].virtualHosts[{v}].routes[{k}].weightedClusters");
        let mut weights = BTreeMap::new();
        for w in &route.weighted_clusters {
            *weights.entry(self.subset_of(&w.cluster)).or_insert(0) += w.weight;
        }
        if weights.len() == 1 {
            // A lone destination takes all the traffic, as in Istio.
            weights.values_mut().for_each(|w| *w = 100);
        } else if weights.values().sum::<u32>() != 100 {
            return Err(MeshError::new(
                &object,
                path,
                "a governed route's weights are percentages and must sum to 100",
            ));
        }
        let outlier = self.clusters[first]
            .outlier_detection
            .as_ref()
            .map(|o| OutlierConfig {
                consecutive_5xx_errors: o.consecutive_5xx,
                interval: Duration::from_nanos(o.interval),
                base_ejection_time: Duration::from_nanos(o.base_ejection_time),
                max_ejection_percent: o.max_ejection_percent,
                max_ejection_time: Duration::from_nanos(o.max_ejection_time),
            });
        let retries = (route.retries.attempts > 0).then(|| RetryConfig {
            attempts: route.retries.attempts,
            per_try_timeout: route.retries.per_try_timeout.map(Duration::from_nanos),
            retry_on: route.retries.retry_on.clone(),
        });
        Ok(Found {
            weights,
            outlier,
            retries,
            route_timeout: (route.timeout > 0).then(|| Duration::from_nanos(route.timeout)),
            hpa: None,
        })
    }

    /// The description with `value` written for `service`: weights on every route of the
    /// service, outlier detection on every cluster of it, retries on every route of it.
    pub fn with(&self, ns: &str, service: &str, value: &KnobValue) -> Result<MeshFile, MeshError> {
        let object = format!("bundled mesh service {service}.{ns}");
        let mut m = self.clone();
        let clusters = self.clusters_of(ns, service);
        let routes = self.routes_of(ns, service);
        if clusters.is_empty() || routes.is_empty() {
            self.found(ns, service)?;
        }
        match value {
            KnobValue::Weights(w) => {
                for (subset, _) in w.iter().filter(|(_, w)| **w > 0) {
                    if !clusters.iter().any(|(_, s)| s == subset) {
                        return Err(MeshError::new(
                            &object,
                            "clusters",
                            format!("no cluster of subset {subset}"),
                        ));
                    }
                }
                for &(r, v, k) in &routes {
                    let route = &mut m.route_configs[r].virtual_hosts[v].routes[k];
                    // One destination per subset, in the description's cluster order.
                    route.weighted_clusters = clusters
                        .iter()
                        .filter(|(_, s)| w.contains_key(s))
                        .map(|(i, s)| WeightedCluster {
                            cluster: self.clusters[*i].name.clone(),
                            weight: w[s],
                        })
                        .collect();
                }
            }
            KnobValue::OutlierDetection(o) => {
                for &(i, _) in &clusters {
                    let c = &mut m.clusters[i];
                    let mut d = c.outlier_detection.clone().unwrap_or_else(|| ProxyOutlier {
                        // Over xDS the detector's floor is the cluster's panic threshold.
                        min_health_percent: c.balancer.panic_threshold_percent as u32,
                        ..ProxyOutlier::default()
                    });
                    d.consecutive_5xx = o.consecutive_5xx_errors;
                    d.interval = o.interval.as_nanos();
                    d.base_ejection_time = o.base_ejection_time.as_nanos();
                    d.max_ejection_time = o.max_ejection_time.as_nanos();
                    d.max_ejection_percent = o.max_ejection_percent;
                    c.outlier_detection = Some(d);
                }
            }
            KnobValue::Retries(r) => {
                for &(ri, v, k) in &routes {
                    let p = &mut m.route_configs[ri].virtual_hosts[v].routes[k].retries;
                    p.attempts = r.attempts;
                    p.per_try_timeout = r.per_try_timeout.map(|d| d.as_nanos());
                    p.retry_on = r.retry_on.clone();
                }
            }
            KnobValue::Autoscaling(_) => {
                return Err(MeshError::new(
                    &object,
                    "autoscaling",
                    "the bundled mesh has no HorizontalPodAutoscaler to write",
                ));
            }
        }
        m.snapshot()
            .map_err(|(path, message)| MeshError::new(&object, path, message))?;
        Ok(m)
    }
}

/// A 64-bit FNV-1a of the description: a version that is the same for the same content.
fn content_version(text: &str) -> String {
    // FNV-1a offset basis and prime (Fowler, Noll, Vo; IETF draft-eastlake-fnv).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The bundled mesh in force: read it, change it, and every change is pushed to the proxies.
pub struct BundledMesh {
    current: Mutex<MeshFile>,
    publish: watch::Sender<Arc<XdsSnapshot>>,
    state: Option<PathBuf>,
}

impl BundledMesh {
    /// Serves `file`'s description — or, when `state` holds an applied one from an earlier
    /// run, that one. The receiver feeds an [`AdsServer`](super::AdsServer).
    pub fn open(
        file: &Path,
        state: Option<PathBuf>,
    ) -> Result<(BundledMesh, watch::Receiver<Arc<XdsSnapshot>>), MeshError> {
        let m = match &state {
            Some(s) if s.exists() => MeshFile::load(s)?,
            _ => MeshFile::load(file)?,
        };
        Ok(BundledMesh::new(m, state))
    }

    /// Serves `m`, writing applied descriptions to `state` when given.
    pub fn new(
        m: MeshFile,
        state: Option<PathBuf>,
    ) -> (BundledMesh, watch::Receiver<Arc<XdsSnapshot>>) {
        let snap = m.snapshot().unwrap_or_default();
        let (publish, rx) = watch::channel(Arc::new(snap));
        (
            BundledMesh {
                current: Mutex::new(m),
                publish,
                state,
            },
            rx,
        )
    }

    /// The configuration in force for `service` (Istio's defaults where the description sets
    /// none), and the fields as found.
    pub fn config(&self, ns: &str, service: &str) -> Result<(MeshConfig, Found), MeshError> {
        let found = self.lock().found(ns, service)?;
        Ok((found.mesh_config(), found))
    }

    /// Writes `value` for `service` and pushes it; returns the new version. On error nothing
    /// changed.
    pub fn apply(&self, ns: &str, service: &str, value: &KnobValue) -> Result<String, MeshError> {
        let mut cur = self.lock();
        let next = cur.with(ns, service, value)?;
        let snap = next
            .snapshot()
            .map_err(|(path, message)| MeshError::new("bundled mesh", path, message))?;
        if let Some(path) = &self.state {
            write_state(path, &next)?;
        }
        let version = snap.version.clone();
        *cur = next;
        self.publish.send_replace(Arc::new(snap));
        Ok(version)
    }

    /// The description in force.
    pub fn current(&self) -> MeshFile {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MeshFile> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes the description beside its final name and renames it over, so a crash leaves the
/// old state or the new one, never half of one.
fn write_state(path: &Path, m: &MeshFile) -> Result<(), MeshError> {
    let file = path.display().to_string();
    let text = serde_yaml::to_string(m).map_err(|e| MeshError::new(&file, "", e.to_string()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| MeshError::new(&file, "", format!("cannot write the applied state: {e}")))
}

#[cfg(test)]
mod tests;
