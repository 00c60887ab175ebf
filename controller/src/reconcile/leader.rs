//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager): several replicas
//! may run for availability, only the Lease holder reconciles. Leadership is published as an
//! `AtomicBool` the reconciler reads on every run; losing the Lease stops writes at the next
//! reconcile, and a new leader warms its models from the first observation's lookback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;

/// The Lease every replica competes for.
pub const LEASE_NAME: &str = "homeostat-leader";

/// Starts competing for the Lease in `namespace` as `identity`; the returned flag follows the
/// leadership until the process ends (dropping the watch releases the Lease).
pub async fn elect(
    client: Client,
    namespace: &str,
    identity: &str,
) -> Result<(Arc<AtomicBool>, tokio::task::JoinHandle<()>), kube_lease_manager::LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_field_manager(super::FIELD_MANAGER)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await?;
    let (mut rx, _task) = manager.watch().await;
    let flag = Arc::new(AtomicBool::new(*rx.borrow()));
    let out = flag.clone();
    let follower = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let leading = *rx.borrow_and_update();
            tracing::info!(leading, "leadership changed");
            flag.store(leading, Ordering::Relaxed);
        }
        flag.store(false, Ordering::Relaxed);
    });
    Ok((out, follower))
}
