//! Seam: the Governor a policy's alerts are decided by. It must be the loop's own — the same
//! cooldowns, hourly budget, freezes and hysteresis for both paths — so the controller
//! implements it over the reconciler's per-policy Governors; a single shared Governor serves
//! tests and `homeostat alert test`.

use std::future::Future;
use std::sync::Arc;

use homeostat_models::governor::Governor;
use tokio::sync::Mutex;

use super::directory::KnownPolicy;

/// Runs a synchronous step on the Governor of a policy.
pub trait Governors: Send + Sync + 'static {
    fn with<T: Send>(
        &self,
        policy: &KnownPolicy,
        f: impl FnOnce(&mut Governor) -> T + Send,
    ) -> impl Future<Output = T> + Send;
}

/// One Governor for every policy (its state is per service inside).
impl Governors for Arc<Mutex<Governor>> {
    async fn with<T: Send>(
        &self,
        _policy: &KnownPolicy,
        f: impl FnOnce(&mut Governor) -> T + Send,
    ) -> T {
        f(&mut *self.lock().await)
    }
}
