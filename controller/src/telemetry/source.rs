//! The two [`ObservationSource`]s over Prometheus.
//!
//! * [`PrometheusSource`] asks for one policy at a time (its own 12 queries); `recommend` and
//!   small installations use it.
//! * [`BatchedSource`] serves many policies sharing one Prometheus: the first policy asking for
//!   an interval fetches one batch for every registered service (12 queries in all, grouped by
//!   service / subset / pod), later ones read their windows from it. It aligns `end` down to a
//!   multiple of the step so that every policy reconciled during one interval shares the batch
//!   (the Observation's own `end` tells the Governor where its grid is). A failed batch is
//!   remembered for its interval too, so an unreachable Prometheus costs one timeout per
//!   interval, not one per policy.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use homeostat_models::governor::Observation;

use super::fanout::{Batch, ServiceKey};
use super::grid::Grid;
use super::prometheus::Prometheus;
use super::{ObservationSource, ObserveRequest, TelemetryError};

/// The grid of a request: the policy's interval as step, its lookback as length.
pub fn grid_of(req: &ObserveRequest, end: i64) -> Grid {
    Grid::ending(
        end,
        req.spec.telemetry.interval.as_secs_ceil().max(1),
        req.spec.telemetry.lookback.as_secs_ceil(),
    )
}

/// One policy, one batch of queries.
#[derive(Clone)]
pub struct PrometheusSource {
    prom: Prometheus,
}

impl PrometheusSource {
    pub fn new(prom: Prometheus) -> Self {
        Self { prom }
    }
}

impl ObservationSource for PrometheusSource {
    async fn observe(&self, req: &ObserveRequest) -> Result<Observation, TelemetryError> {
        let grid = grid_of(req, req.end);
        let batch = self
            .prom
            .fetch(BTreeSet::from([ServiceKey::of(req)]), grid)
            .await?;
        batch.observation(req)
    }
}

type Shared = Result<Arc<Batch>, TelemetryError>;

/// (step seconds, points): policies with the same interval and lookback share batches.
type GridShape = (i64, usize);

/// What a batched source remembers for one (step, points).
#[derive(Default)]
struct Slot {
    /// The interval last answered, and its answer (shared by every policy of the interval).
    current: Option<(Grid, Shared)>,
    /// The newest good batch, moved forward a step at a time.
    good: Option<Arc<Batch>>,
}

/// Many policies, one batch per interval and grid.
pub struct BatchedSource {
    prom: Prometheus,
    registered: Mutex<BTreeSet<ServiceKey>>,
    /// One async lock per grid, so concurrent callers of the same interval wait for one fetch
    /// instead of starting their own.
    slots: Mutex<HashMap<GridShape, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl BatchedSource {
    pub fn new(prom: Prometheus) -> Self {
        Self {
            prom,
            registered: Mutex::new(BTreeSet::new()),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Declares the services to fetch in every batch (the reconciler registers each policy it
    /// governs). A service asked for without being registered is fetched on its own once and
    /// registered for the next interval.
    pub fn register(&self, keys: impl IntoIterator<Item = ServiceKey>) {
        let mut r = self.registered.lock().unwrap_or_else(|p| p.into_inner());
        r.extend(keys);
    }

    /// Stops fetching a service (its policy was deleted).
    pub fn unregister(&self, key: &ServiceKey) {
        let mut r = self.registered.lock().unwrap_or_else(|p| p.into_inner());
        r.remove(key);
    }

    fn registered(&self) -> BTreeSet<ServiceKey> {
        self.registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The batch for `grid`. The first interval fetches the whole lookback (warming every
    /// policy's models); later intervals fetch only the steps since the newest good batch and
    /// move it forward; services registered since are fetched whole, on their own.
    async fn batch(&self, grid: Grid) -> Shared {
        let slot = {
            let mut b = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            b.entry((grid.step, grid.points)).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some((g, b)) = &slot.current
            && *g == grid
        {
            return b.clone();
        }
        // Let go of the previous interval's answer so the good batch can be moved, not copied.
        slot.current = None;
        let registered = self.registered();
        let result = match slot.good.take() {
            Some(good)
                if grid.end > good.grid.end
                    && (grid.end - good.grid.end) % grid.step == 0
                    && ((grid.end - good.grid.end) / grid.step) < grid.points as i64 =>
            {
                let steps = ((grid.end - good.grid.end) / grid.step) as usize;
                let mut batch = Arc::try_unwrap(good).unwrap_or_else(|a| (*a).clone());
                let newcomers: BTreeSet<ServiceKey> =
                    registered.difference(&batch.asked).cloned().collect();
                // Deleted policies' services leave the batch here.
                batch.keep(&registered);
                let known: BTreeSet<ServiceKey> = batch.asked.clone();
                let recent = Grid {
                    end: grid.end,
                    step: grid.step,
                    points: steps,
                };
                let step = async {
                    let newer = self.prom.fetch(known, recent).await?;
                    batch.advance(&newer)?;
                    if !newcomers.is_empty() {
                        let whole = self.prom.fetch(newcomers, grid).await?;
                        batch.absorb(whole);
                    }
                    Ok::<_, TelemetryError>(())
                }
                .await;
                match step {
                    Ok(()) => Ok(Arc::new(batch)),
                    Err(e) => {
                        // Keep the good batch: the next interval fetches the missed steps too.
                        slot.good = Some(Arc::new(batch));
                        Err(e)
                    }
                }
            }
            _ => self.prom.fetch(registered, grid).await.map(Arc::new),
        };
        if let Ok(b) = &result {
            slot.good = Some(b.clone());
        }
        slot.current = Some((grid, result.clone()));
        result
    }
}

impl ObservationSource for BatchedSource {
    fn release(&self, key: &ServiceKey) {
        self.unregister(key);
    }

    async fn observe(&self, req: &ObserveRequest) -> Result<Observation, TelemetryError> {
        let step = req.spec.telemetry.interval.as_secs_ceil().max(1);
        let grid = grid_of(req, req.end - req.end.rem_euclid(step));
        let key = ServiceKey::of(req);
        let batch = self.batch(grid).await;
        match &batch {
            Err(e) => Err(e.clone()),
            Ok(b) if b.asked.contains(&key) => b.observation(req),
            Ok(_) => {
                // Not registered when the batch was fetched: fetch it alone this once.
                self.register([key.clone()]);
                self.prom
                    .fetch(BTreeSet::from([key]), grid)
                    .await?
                    .observation(req)
            }
        }
    }
}
