//! The configuration in force as the data path uses it: compiled route tables and live
//! clusters, swapped whole. A request takes the snapshot current when it arrives and keeps it
//! (an `Arc`) to the end, so an update never changes a request halfway; clusters that stay are
//! updated in place, so their balancer, ejections and retry budget carry over, and attempts in
//! flight finish against the same state they started on.

use crate::clock::Clock;
use crate::config::{Bootstrap, ClusterConfig, RouteConfig};
use crate::routing::RouteTable;
use crate::upstream::Upstream;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// One consistent configuration (see the module docs).
#[derive(Debug)]
pub struct Snapshot {
    /// Clusters by name.
    pub clusters: HashMap<String, Arc<Upstream>>,
    /// Route tables by route-configuration name.
    pub routes: HashMap<String, Arc<RouteTable>>,
    /// The route configurations as given (for `/config_dump`).
    pub route_configs: Vec<RouteConfig>,
}

impl Snapshot {
    /// The clusters' configurations, sorted by name.
    pub fn cluster_configs(&self) -> Vec<ClusterConfig> {
        let mut v: Vec<ClusterConfig> = self.clusters.values().map(|c| c.config()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// Holds the current snapshot and publishes new ones.
#[derive(Debug)]
pub struct SnapshotStore {
    tx: watch::Sender<Arc<Snapshot>>,
    clock: Clock,
}

impl SnapshotStore {
    /// A store whose first snapshot is `bootstrap`'s (already validated).
    pub fn new(bootstrap: &Bootstrap, clock: Clock) -> Result<SnapshotStore, String> {
        let empty = Arc::new(Snapshot {
            clusters: HashMap::new(),
            routes: HashMap::new(),
            route_configs: Vec::new(),
        });
        let store = SnapshotStore {
            tx: watch::channel(empty).0,
            clock,
        };
        store.apply(&bootstrap.clusters, &bootstrap.route_configs)?;
        Ok(store)
    }

    /// The snapshot in force.
    pub fn current(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every published snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// Replaces clusters and routes. The caller validates first (`Bootstrap::validate` or the
    /// xDS checks): clusters are updated in place before the new snapshot is published, so a
    /// route table that fails to compile here would leave them changed under the old routes.
    pub fn apply(
        &self,
        clusters: &[ClusterConfig],
        route_configs: &[RouteConfig],
    ) -> Result<(), String> {
        let previous = self.current();
        let mut next = HashMap::with_capacity(clusters.len());
        for cfg in clusters {
            let upstream = match previous.clusters.get(&cfg.name) {
                Some(old) if old.can_update_to(cfg) => {
                    old.update(cfg);
                    old.clone()
                }
                _ => Arc::new(Upstream::new(cfg, self.clock)),
            };
            next.insert(cfg.name.clone(), upstream);
        }
        let mut routes = HashMap::with_capacity(route_configs.len());
        for rc in route_configs {
            let table = RouteTable::compile(rc, &next)
                .map_err(|e| format!("routeConfigs {:?}: {e}", rc.name))?;
            routes.insert(rc.name.clone(), Arc::new(table));
        }
        self.tx.send_replace(Arc::new(Snapshot {
            clusters: next,
            routes,
            route_configs: route_configs.to_vec(),
        }));
        Ok(())
    }
}
