//! One upstream cluster as a client-side proxy sees it (a caller → one subset of a service):
//! the [`Balancer`], the [`OutlierDetector`] and the [`RetryBudget`] kept consistent, keyed by
//! endpoint id (a pod). Both the simulator and the bundled proxy need exactly this wiring;
//! keeping it here means there is one copy of it.
//!
//! What it keeps consistent:
//!
//! * **Health.** Ejections and un-ejections are mirrored into the balancer. With outlier
//!   detection configured, the balancer's panic threshold is Istio's `minHealthPercent`
//!   (default 0 = never panic), because that is what Istio programs into Envoy's
//!   `healthy_panic_threshold`. Without outlier detection (a stock Istio mesh without a
//!   `DestinationRule`), nothing is ever ejected.
//! * **Endpoint set.** [`Cluster::set_endpoints`] is an EDS update: pods that stay keep their
//!   counters, ejection, multiplier, active requests and latency estimate; new pods start
//!   fresh; removed pods are forgotten (their in-flight results only release counters).
//! * **Retry accounting** (Envoy `ResourceManagerImpl`): every attempt in flight counts in
//!   `active_requests`; a retry counts in `active_retries` from the moment the budget grants it
//!   ([`Cluster::try_begin_retry`]) until that retry's attempt ends, or until it is given up
//!   before being sent ([`Cluster::cancel_retry`]: the request ended during the back-off; in
//!   Envoy the request's `RetryStateImpl` is destroyed with its back-off timer armed and
//!   `resetRetry` returns the retry to the resource manager).
//! * **Abandoned attempts** ([`Cluster::abandon_attempt`]): an attempt cut short for a reason
//!   that says nothing about the endpoint — the downstream went away — releases what it holds
//!   (active request, retry, the balancer's active count) and is reported to no detector, as
//!   Envoy's router resets its upstream requests on a downstream reset without a
//!   `putResult`. Timeouts are not abandonment: Envoy reports a per-try or route timeout to
//!   outlier detection as a local-origin timeout, and so does the caller here
//!   ([`Outcome::LocalOriginFailure`]).

use crate::balancer::Balancer;
use crate::config::{BalancerConfig, OutlierConfig, RetryLimit, RetryPolicy};
use crate::outlier::{Ejection, Outcome, OutlierDetector, OutlierStats, SweepEvent};
use crate::retry::RetryBudget;
use crate::time::Nanos;
use rand::RngCore;

/// Identifies an endpoint (a pod) across endpoint-set updates.
pub type EndpointId = u32;

/// One cluster's data-plane state (see the module docs).
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Endpoint ids, ascending; index `i` here is index `i` in the balancer and detector.
    ids: Vec<EndpointId>,
    balancer_cfg: BalancerConfig,
    balancer: Balancer,
    outlier: Option<OutlierDetector>,
    /// Seed of the outlier detector's RNG, kept for a detector rebuilt by a CDS update.
    seed: Option<u64>,
    budget: RetryBudget,
    active_requests: u64,
    active_retries: u64,
}

fn effective_balancer(cfg: &BalancerConfig, outlier: Option<&OutlierConfig>) -> BalancerConfig {
    let mut cfg = cfg.clone();
    if let Some(o) = outlier {
        cfg.panic_threshold_percent = f64::from(o.min_health_percent);
    }
    cfg
}

impl Cluster {
    /// An empty cluster created at `now`; add endpoints with [`Cluster::set_endpoints`].
    /// `outlier: None` turns outlier detection off.
    pub fn new(
        now: Nanos,
        balancer: BalancerConfig,
        outlier: Option<OutlierConfig>,
        limit: RetryLimit,
    ) -> Self {
        let effective = effective_balancer(&balancer, outlier.as_ref());
        Cluster {
            ids: Vec::new(),
            balancer_cfg: balancer,
            balancer: Balancer::new(effective, &[]),
            outlier: outlier.map(|cfg| OutlierDetector::new_at(cfg, 0, now)),
            seed: None,
            budget: RetryBudget::new(limit),
            active_requests: 0,
            active_retries: 0,
        }
    }

    /// Seeds the outlier detector's RNG (used only for `enforcing_*` < 100 and jitter).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.outlier = self.outlier.map(|o| o.with_seed(seed));
        self.seed = Some(seed);
        self
    }

    /// Replaces the endpoint set with `(id, weight)` pairs (an EDS update; see the module
    /// docs). Duplicate ids keep the last weight given.
    pub fn set_endpoints(&mut self, now: Nanos, endpoints: &[(EndpointId, u32)]) {
        let mut next: Vec<(EndpointId, u32)> = Vec::with_capacity(endpoints.len());
        for &(id, w) in endpoints {
            match next.iter_mut().find(|(i, _)| *i == id) {
                Some(slot) => slot.1 = w,
                None => next.push((id, w)),
            }
        }
        next.sort_unstable_by_key(|&(id, _)| id);
        let sources: Vec<Option<usize>> = next
            .iter()
            .map(|(id, _)| self.ids.binary_search(id).ok())
            .collect();
        let weights: Vec<u32> = next.iter().map(|&(_, w)| w).collect();
        self.ids = next.into_iter().map(|(id, _)| id).collect();
        self.balancer.remap(now, &sources, &weights);
        if let Some(o) = &mut self.outlier {
            o.remap(&sources);
        }
    }

    /// The endpoint ids, ascending.
    pub fn endpoint_ids(&self) -> &[EndpointId] {
        &self.ids
    }

    fn index(&self, id: EndpointId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// Sets one endpoint's weight (ignored for unknown ids).
    pub fn set_weight(&mut self, id: EndpointId, weight: u32) {
        if let Some(i) = self.index(id) {
            self.balancer.set_weight(i, weight);
        }
    }

    /// Replaces the balancer configuration (keeps endpoint state).
    pub fn set_balancer_config(&mut self, cfg: BalancerConfig) {
        let effective = effective_balancer(&cfg, self.outlier.as_ref().map(|o| o.config()));
        self.balancer_cfg = cfg;
        self.balancer.set_config(effective);
    }

    /// Replaces the outlier configuration. Turning detection off returns every endpoint to
    /// service; turning it on starts a fresh detector whose first sweep is at
    /// `now + interval`.
    pub fn set_outlier_config(&mut self, now: Nanos, cfg: Option<OutlierConfig>) {
        match (&mut self.outlier, cfg) {
            (Some(o), Some(c)) => o.set_config(c),
            (slot @ None, Some(c)) => *slot = Some(OutlierDetector::new_at(c, self.ids.len(), now)),
            (slot, None) => {
                *slot = None;
                self.all_healthy();
            }
        }
        self.apply_balancer_config();
    }

    /// Every endpoint back in the balancer's healthy set.
    fn all_healthy(&mut self) {
        for i in 0..self.ids.len() {
            self.balancer.set_healthy(i, true);
        }
    }

    /// The balancer's configuration with the panic threshold the outlier config implies.
    fn apply_balancer_config(&mut self) {
        let effective = effective_balancer(
            &self.balancer_cfg,
            self.outlier.as_ref().map(|o| o.config()),
        );
        self.balancer.set_config(effective);
    }

    /// A CDS update of this cluster (a DestinationRule change): Envoy builds a new cluster and
    /// swaps it in, so the outlier detector starts empty — every endpoint healthy, no ejection
    /// multiplier, first sweep at `now + interval` — and the new circuit-breaker limit applies.
    /// (Unlike [`Cluster::set_outlier_config`], which keeps ejection state.) Endpoints, their
    /// balancer state and the counts of attempts and retries in flight carry over: requests
    /// already sent finish and release what they hold.
    pub fn rebuild(&mut self, now: Nanos, outlier: Option<OutlierConfig>, limit: RetryLimit) {
        self.outlier = outlier.map(|cfg| {
            let d = OutlierDetector::new_at(cfg, self.ids.len(), now);
            match self.seed {
                Some(seed) => d.with_seed(seed),
                None => d,
            }
        });
        self.all_healthy();
        self.apply_balancer_config();
        self.budget.set_limit(limit);
    }

    /// Replaces the retry limit (budget or `maxRetries`).
    pub fn set_retry_limit(&mut self, limit: RetryLimit) {
        self.budget.set_limit(limit);
    }

    /// Runs the outlier sweeps due by `now` (mirroring success-rate ejections into the
    /// balancer too); returns the endpoints returned to service.
    pub fn tick(&mut self, now: Nanos) -> Vec<EndpointId> {
        self.sweep(now)
            .into_iter()
            .filter_map(|(id, e)| matches!(e, SweepEvent::Returned(_)).then_some(id))
            .collect()
    }

    /// Runs the outlier sweeps due by `now`, mirrors what they did into the balancer, and
    /// returns it in order with the endpoint ids (the `usize` inside each event is the
    /// detector's index, which callers can ignore).
    pub fn sweep(&mut self, now: Nanos) -> Vec<(EndpointId, SweepEvent)> {
        let Some(o) = &mut self.outlier else {
            return Vec::new();
        };
        let events = o.sweep_until(now);
        events
            .into_iter()
            .map(|e| {
                let i = match e {
                    SweepEvent::Returned(i) => {
                        self.balancer.set_healthy(i, true);
                        i
                    }
                    SweepEvent::Ejected(ej) => {
                        self.balancer.set_healthy(ej.endpoint, false);
                        ej.endpoint
                    }
                };
                (self.ids[i], e)
            })
            .collect()
    }

    /// When the next outlier sweep is due (`None` without outlier detection).
    pub fn next_sweep_at(&self) -> Option<Nanos> {
        self.outlier.as_ref().map(OutlierDetector::next_sweep_at)
    }

    /// Picks an endpoint for a first try and counts the attempt as started. `None` means no
    /// endpoint may be used (Envoy's local 503 "no healthy upstream").
    pub fn pick(&mut self, now: Nanos, rng: &mut impl RngCore) -> Option<EndpointId> {
        let i = self.balancer.pick(now, rng)?;
        Some(self.start(i))
    }

    fn start(&mut self, i: usize) -> EndpointId {
        self.balancer.on_request_start(i);
        self.active_requests += 1;
        self.ids[i]
    }

    /// Asks the retry budget for a retry; if granted the retry counts as active until its
    /// attempt ends (or [`Cluster::pick_retry`] finds no endpoint, or it is cancelled).
    pub fn try_begin_retry(&mut self) -> bool {
        let ok = self
            .budget
            .try_acquire(self.active_requests, self.active_retries);
        if ok {
            self.active_retries += 1;
        }
        ok
    }

    /// Picks the endpoint for a granted retry, avoiding endpoints in `tried` when the policy
    /// asks for it, and counts the attempt as started. On `None` the retry is released.
    pub fn pick_retry(
        &mut self,
        now: Nanos,
        rng: &mut impl RngCore,
        tried: &[EndpointId],
        policy: &RetryPolicy,
    ) -> Option<EndpointId> {
        let picked = if policy.avoid_previous_hosts {
            let avoid: Vec<usize> = tried.iter().filter_map(|&id| self.index(id)).collect();
            self.balancer
                .pick_avoiding(now, rng, &avoid, policy.host_selection_retry_max_attempts)
        } else {
            self.balancer.pick(now, rng)
        };
        match picked {
            Some(i) => Some(self.start(i)),
            None => {
                self.cancel_retry();
                None
            }
        }
    }

    /// Releases a granted retry that will never be sent (its request ended while the retry
    /// waited out its back-off). Without this the budget would keep counting it as active.
    pub fn cancel_retry(&mut self) {
        self.active_retries = self.active_retries.saturating_sub(1);
    }

    /// An attempt on `id` ended at `now` after `rtt` with `outcome`; `was_retry` releases the
    /// retry it held. Returns the ejection it caused, if any. Results from endpoints no longer
    /// in the set only release counters.
    pub fn end_attempt(
        &mut self,
        now: Nanos,
        id: EndpointId,
        rtt: Nanos,
        outcome: Outcome,
        was_retry: bool,
    ) -> Option<(EndpointId, Ejection)> {
        self.active_requests = self.active_requests.saturating_sub(1);
        if was_retry {
            self.active_retries = self.active_retries.saturating_sub(1);
        }
        let i = self.index(id)?;
        self.balancer.on_request_end(now, i, rtt);
        let ejection = self.outlier.as_mut()?.on_outcome(now, i, outcome)?;
        self.balancer.set_healthy(i, false);
        Some((id, ejection))
    }

    /// An attempt on `id` was abandoned (see the module docs): it releases its active request,
    /// its retry when `was_retry`, and the balancer's active count, and counts as neither a
    /// success nor a failure. Unknown ids (removed pods) only release the cluster's counters.
    pub fn abandon_attempt(&mut self, id: EndpointId, was_retry: bool) {
        self.active_requests = self.active_requests.saturating_sub(1);
        if was_retry {
            self.active_retries = self.active_retries.saturating_sub(1);
        }
        if let Some(i) = self.index(id) {
            self.balancer.on_request_abandoned(i);
        }
    }

    /// Whether `id` is ejected (false for unknown ids or without outlier detection).
    pub fn is_ejected(&self, id: EndpointId) -> bool {
        match (self.index(id), &self.outlier) {
            (Some(i), Some(o)) => o.is_ejected(i),
            _ => false,
        }
    }

    /// Endpoints currently ejected.
    pub fn ejected_count(&self) -> usize {
        self.outlier
            .as_ref()
            .map_or(0, OutlierDetector::ejected_count)
    }

    /// Outlier-detection counters (zero without outlier detection).
    pub fn outlier_stats(&self) -> OutlierStats {
        self.outlier
            .as_ref()
            .map_or_else(OutlierStats::default, OutlierDetector::stats)
    }

    /// Whether the balancer is in panic mode.
    pub fn in_panic(&self) -> bool {
        self.balancer.in_panic()
    }

    /// Attempts in flight.
    pub fn active_requests(&self) -> u64 {
        self.active_requests
    }

    /// Retries granted and not yet finished.
    pub fn active_retries(&self) -> u64 {
        self.active_retries
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the cluster has no endpoints.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BalancerKind, SuccessRateConfig};
    use crate::outlier::EjectionKind;
    use crate::time::{HOUR, MILLISECOND, SECOND};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rr() -> BalancerConfig {
        BalancerConfig {
            kind: BalancerKind::RoundRobin,
            ..BalancerConfig::default()
        }
    }

    fn pods(ids: impl IntoIterator<Item = u32>) -> Vec<(EndpointId, u32)> {
        ids.into_iter().map(|id| (id, 1)).collect()
    }

    fn fail(c: &mut Cluster, now: Nanos, id: EndpointId, n: u32) -> Option<(EndpointId, Ejection)> {
        let mut last = None;
        for _ in 0..n {
            c.active_requests += 1;
            if let Some(e) = c.end_attempt(now, id, MILLISECOND, Outcome::GatewayError, false) {
                last = Some(e);
            }
        }
        last
    }

    #[test]
    fn ejection_is_mirrored_and_survives_an_endpoint_update() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut c = Cluster::new(
            0,
            rr(),
            Some(OutlierConfig::default()),
            RetryLimit::envoy_budget(),
        );
        c.set_endpoints(0, &pods(10..20));
        let (id, e) = fail(&mut c, 0, 13, 5).expect("5th 503 ejects pod 13");
        assert_eq!((id, e.duration), (13, 30 * SECOND));
        // Pod 13 is index 3: RR over the other nine never returns it.
        for _ in 0..18 {
            assert_ne!(c.pick(0, &mut rng), Some(13));
        }
        // Scale event: pod 10 goes, pod 20 arrives. Pod 13 stays ejected.
        c.set_endpoints(SECOND, &pods((11..20).chain([20])));
        assert_eq!(c.len(), 10);
        assert!(c.is_ejected(13));
        assert_eq!(c.ejected_count(), 1);
        assert!(!c.is_ejected(20));
        // Back at the 30 s sweep (ejected at 0, 30 s).
        assert_eq!(c.tick(30 * SECOND), vec![13]);
        assert!(!c.is_ejected(13));
    }

    #[test]
    fn a_cds_update_forgets_ejections_but_keeps_endpoints_and_counters() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cfg = OutlierConfig {
            max_ejection_percent: 50,
            ..OutlierConfig::default()
        };
        let mut c = Cluster::new(0, rr(), Some(cfg.clone()), RetryLimit::envoy_budget());
        c.set_endpoints(0, &pods(0..4));
        // 5 consecutive 503s eject pod 2 (1 of 4 = 25 % ≤ 50 %) for 30 s.
        assert!(fail(&mut c, 0, 2, 5).is_some());
        let p = c.pick(0, &mut rng).expect("pod");
        assert_eq!(c.active_requests(), 1);
        // The update at 1 s: pod 2 is healthy again at once, though its 30 s had not run out.
        let tighter = OutlierConfig {
            consecutive_5xx: 2,
            ..cfg
        };
        c.rebuild(SECOND, Some(tighter), RetryLimit::envoy());
        assert!(!c.is_ejected(2));
        assert_eq!((c.ejected_count(), c.len()), (0, 4));
        // Round robin over 4 healthy pods reaches pod 2 within 4 picks.
        let picks: Vec<_> = (0..4)
            .map(|_| c.pick(SECOND, &mut rng).expect("pod"))
            .collect();
        assert!(picks.contains(&2), "{picks:?}");
        // The in-flight attempt from before still ends against the new cluster's counters.
        assert_eq!(c.active_requests(), 5);
        c.end_attempt(SECOND, p, MILLISECOND, Outcome::Success, false);
        assert_eq!(c.active_requests(), 4);
        // The new detector counts afresh with the new threshold: 2 failures eject pod 1.
        assert!(fail(&mut c, SECOND, 1, 2).is_some());
        // Envoy's plain circuit breaker now: 3 concurrent retries, whatever the load.
        for _ in 0..3 {
            assert!(c.try_begin_retry());
        }
        assert!(!c.try_begin_retry());
    }

    #[test]
    fn retries_are_counted_from_grant_to_end() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut c = Cluster::new(
            0,
            rr(),
            Some(OutlierConfig::default()),
            RetryLimit::envoy_budget(),
        );
        c.set_endpoints(0, &pods(0..3));
        let policy = RetryPolicy::default();
        // 3 first tries in flight: ⌊0.2·3⌋ = 0 < 3 → the floor of 3 concurrent retries applies.
        let first: Vec<_> = (0..3).map(|_| c.pick(0, &mut rng).expect("pod")).collect();
        assert_eq!(first, vec![0, 1, 2]);
        assert_eq!(c.active_requests(), 3);
        assert!(c.try_begin_retry());
        assert!(c.try_begin_retry());
        assert!(c.try_begin_retry());
        assert!(
            !c.try_begin_retry(),
            "a 4th concurrent retry exceeds max(0, 3)"
        );
        assert_eq!(c.active_retries(), 3);
        // The first try on pod 0 failed; its retry avoids pod 0 (RR would give pod 0 next).
        c.end_attempt(MILLISECOND, 0, MILLISECOND, Outcome::GatewayError, false);
        let r = c.pick_retry(MILLISECOND, &mut rng, &[0], &policy);
        assert_eq!(r, Some(1));
        // The retry attempt ends: one retry released.
        c.end_attempt(2 * MILLISECOND, 1, MILLISECOND, Outcome::Success, true);
        assert_eq!(c.active_retries(), 2);
        assert!(c.try_begin_retry());
    }

    #[test]
    fn a_retry_with_no_endpoint_is_released() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut c = Cluster::new(0, rr(), None, RetryLimit::envoy_budget());
        assert!(c.try_begin_retry());
        assert_eq!(
            c.pick_retry(0, &mut rng, &[], &RetryPolicy::default()),
            None
        );
        assert_eq!(c.active_retries(), 0);
    }

    #[test]
    fn a_cancelled_retry_frees_its_budget_slot() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut c = Cluster::new(0, rr(), None, RetryLimit::envoy_budget());
        c.set_endpoints(0, &pods(0..2));
        let policy = RetryPolicy::default();
        // No requests in flight: ⌊0.2·0⌋ = 0 → the floor of 3 concurrent retries applies.
        for _ in 0..3 {
            assert!(c.try_begin_retry());
        }
        assert!(!c.try_begin_retry(), "3 granted = max(0, 3)");
        // One request ends during its back-off: its retry is cancelled, never sent.
        c.cancel_retry();
        assert_eq!((c.active_retries(), c.active_requests()), (2, 0));
        // The freed slot can be granted again (2 < 3), and then the budget is full again.
        assert!(c.try_begin_retry());
        assert!(!c.try_begin_retry());
        // The three granted retries are sent and end: 3 − 3 = 0 active, no attempt left open.
        for _ in 0..3 {
            let p = c.pick_retry(0, &mut rng, &[], &policy).expect("pod");
            c.end_attempt(MILLISECOND, p, MILLISECOND, Outcome::Success, true);
        }
        assert_eq!((c.active_retries(), c.active_requests()), (0, 0));
    }

    #[test]
    fn an_abandoned_attempt_releases_everything_and_judges_nothing() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let lr = BalancerConfig {
            kind: BalancerKind::LeastRequest,
            ..BalancerConfig::default()
        };
        let outlier = OutlierConfig {
            max_ejection_percent: 100,
            ..OutlierConfig::default()
        };
        let mut c = Cluster::new(0, lr, Some(outlier), RetryLimit::envoy_budget());
        c.set_endpoints(0, &pods([7]));
        // Four 503s on pod 7: one short of the consecutive-5xx threshold of 5.
        for _ in 0..4 {
            let p = c.pick(0, &mut rng).expect("pod");
            assert!(
                c.end_attempt(0, p, MILLISECOND, Outcome::GatewayError, false)
                    .is_none()
            );
        }
        // A first try and a granted retry in flight; both abandoned (the client hung up).
        let p = c.pick(0, &mut rng).expect("pod");
        assert!(c.try_begin_retry());
        let r = c
            .pick_retry(0, &mut rng, &[], &RetryPolicy::default())
            .expect("pod");
        assert_eq!((c.active_requests(), c.active_retries()), (2, 1));
        assert_eq!(c.balancer.active(0), 2);
        c.abandon_attempt(p, false);
        c.abandon_attempt(r, true);
        assert_eq!((c.active_requests(), c.active_retries()), (0, 0));
        assert_eq!(c.balancer.active(0), 0, "the balancer's count is released");
        // Neither abandonment was a success (which would have reset the streak of 4): the
        // next 503 is the 5th in a row and ejects.
        let p = c.pick(0, &mut rng).expect("pod");
        let (id, e) = c
            .end_attempt(0, p, MILLISECOND, Outcome::GatewayError, false)
            .expect("5th consecutive 503");
        assert_eq!((id, e.kind), (7, EjectionKind::Consecutive5xx));
        // An abandoned attempt on a pod that left the set only releases the cluster's count.
        c.set_endpoints(0, &pods([8]));
        let p = c.pick(0, &mut rng).expect("pod 8");
        c.set_endpoints(0, &pods([9]));
        c.abandon_attempt(p, false);
        assert_eq!(c.active_requests(), 0);
    }

    #[test]
    fn success_rate_ejections_are_mirrored_into_the_balancer() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let outlier = OutlierConfig {
            max_ejection_percent: 100,
            success_rate: Some(SuccessRateConfig::default()),
            ..OutlierConfig::default()
        };
        let mut c = Cluster::new(0, rr(), Some(outlier), RetryLimit::envoy_budget());
        c.set_endpoints(0, &pods(10..15));
        // 500 round-robin picks in [0, 10 s): 100 per pod. Pod 14 fails every other time it is
        // picked (50 of 100, never twice in a row); the others always succeed. Rates
        // {100, 100, 100, 100, 50} → threshold 52 (Envoy's worked example): pod 14 goes.
        let mut seen14 = 0;
        for _ in 0..500 {
            let p = c.pick(SECOND, &mut rng).expect("pod");
            let outcome = if p == 14 {
                seen14 += 1;
                if seen14 % 2 == 0 {
                    Outcome::ServerError
                } else {
                    Outcome::Success
                }
            } else {
                Outcome::Success
            };
            assert!(
                c.end_attempt(SECOND, p, MILLISECOND, outcome, false)
                    .is_none()
            );
        }
        assert_eq!(seen14, 100);
        let events = c.sweep(10 * SECOND);
        assert!(
            matches!(
                events[..],
                [(
                    14,
                    SweepEvent::Ejected(Ejection {
                        kind: EjectionKind::SuccessRate,
                        ..
                    })
                )]
            ),
            "{events:?}"
        );
        assert!(c.is_ejected(14));
        for _ in 0..8 {
            assert_ne!(c.pick(10 * SECOND, &mut rng), Some(14));
        }
        // `tick` mirrors the same way: back at the 40 s sweep, with no traffic meanwhile.
        assert_eq!(c.tick(40 * SECOND), vec![14]);
        assert!(!c.is_ejected(14));
    }

    #[test]
    fn without_outlier_detection_nothing_is_ejected() {
        let mut c = Cluster::new(0, rr(), None, RetryLimit::envoy_budget());
        c.set_endpoints(0, &pods(0..10));
        assert_eq!(fail(&mut c, 0, 3, 50), None);
        assert_eq!(c.ejected_count(), 0);
        assert_eq!(c.next_sweep_at(), None);
        assert!(c.tick(HOUR).is_empty());
    }

    #[test]
    fn min_health_percent_is_the_panic_threshold() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let outlier = OutlierConfig {
            max_ejection_percent: 50,
            min_health_percent: 60,
            ..OutlierConfig::default()
        };
        let mut c = Cluster::new(0, rr(), Some(outlier), RetryLimit::envoy_budget());
        c.set_endpoints(0, &pods([7, 8]));
        // 100·1/2 = 50 ≤ 50 → pod 7 may be ejected; then 1 of 2 healthy = 50 % < 60 % → panic.
        assert!(fail(&mut c, 0, 7, 5).is_some());
        assert!(c.in_panic());
        let picked: Vec<_> = (0..4).map(|_| c.pick(0, &mut rng).expect("pod")).collect();
        assert!(
            picked.contains(&7),
            "panic balances across all pods: {picked:?}"
        );
        // Turning outlier detection off returns pod 7 and leaves panic.
        c.set_outlier_config(0, None);
        assert!(!c.in_panic());
        assert!(!c.is_ejected(7));
    }

    #[test]
    fn results_from_removed_pods_only_release_counters() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut c = Cluster::new(
            0,
            rr(),
            Some(OutlierConfig::default()),
            RetryLimit::envoy_budget(),
        );
        c.set_endpoints(0, &pods(0..10));
        let p = c.pick(0, &mut rng).expect("pod");
        c.set_endpoints(0, &pods(1..10));
        assert_eq!(
            c.end_attempt(SECOND, p, SECOND, Outcome::GatewayError, false),
            None
        );
        assert_eq!(c.active_requests(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Pick,
        End {
            slot: usize,
            fail: bool,
        },
        Retry {
            slot: usize,
        },
        /// A retry is granted and then cancelled during its back-off.
        Cancel,
        /// An attempt in flight is abandoned (its client went away).
        Abandon {
            slot: usize,
        },
        Scale {
            pods: u32,
        },
        Advance {
            secs: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Pick),
            4 => (any::<usize>(), prop::bool::weighted(0.6)).prop_map(|(slot, fail)| Op::End { slot, fail }),
            1 => any::<usize>().prop_map(|slot| Op::Retry { slot }),
            1 => Just(Op::Cancel),
            1 => any::<usize>().prop_map(|slot| Op::Abandon { slot }),
            1 => (1u32..25).prop_map(|pods| Op::Scale { pods }),
            1 => (1u64..40).prop_map(|secs| Op::Advance { secs }),
        ]
    }

    proptest! {
        #[test]
        fn counters_are_conserved_and_the_ejection_cap_holds(
            kind in prop_oneof![Just(BalancerKind::RoundRobin), Just(BalancerKind::LeastRequest), Just(BalancerKind::PeakEwma)],
            max_pct in 0u32..=100,
            seed in any::<u64>(),
            ops in prop::collection::vec(op(), 1..300),
        ) {
            let outlier = OutlierConfig { max_ejection_percent: max_pct, ..OutlierConfig::default() };
            let bal = BalancerConfig { kind, ..BalancerConfig::default() };
            let mut c = Cluster::new(0, bal, Some(outlier), RetryLimit::envoy_budget());
            c.set_endpoints(0, &pods(0..10));
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let policy = RetryPolicy::default();
            // Attempts in flight: (pod, is_retry).
            let mut flying: Vec<(EndpointId, bool)> = Vec::new();
            let mut retries_granted = 0u64;
            let mut now = 0;
            for op in ops {
                match op {
                    Op::Pick => {
                        if let Some(p) = c.pick(now, &mut rng) {
                            prop_assert!(!c.is_ejected(p), "panic threshold 0: never an ejected pod");
                            flying.push((p, false));
                        }
                    }
                    Op::End { slot, fail } => {
                        if !flying.is_empty() {
                            let (p, retry) = flying.swap_remove(slot % flying.len());
                            let outcome = if fail { Outcome::GatewayError } else { Outcome::Success };
                            if c.end_attempt(now, p, MILLISECOND, outcome, retry).is_some() {
                                // Right after an ejection: 100·ejected ≤ max%·hosts exactly.
                                prop_assert!(100 * c.ejected_count() as u64 <= u64::from(max_pct) * c.len() as u64);
                            }
                            if retry { retries_granted -= 1; }
                        }
                    }
                    Op::Retry { slot } => {
                        if c.try_begin_retry() {
                            retries_granted += 1;
                            let tried: Vec<EndpointId> = flying.get(slot % (flying.len() + 1)).map(|f| f.0).into_iter().collect();
                            match c.pick_retry(now, &mut rng, &tried, &policy) {
                                Some(p) => flying.push((p, true)),
                                None => retries_granted -= 1,
                            }
                        }
                    }
                    Op::Cancel => {
                        if c.try_begin_retry() {
                            c.cancel_retry();
                        }
                    }
                    Op::Abandon { slot } => {
                        if !flying.is_empty() {
                            let (p, retry) = flying.swap_remove(slot % flying.len());
                            c.abandon_attempt(p, retry);
                            if retry { retries_granted -= 1; }
                        }
                    }
                    Op::Scale { pods: n } => c.set_endpoints(now, &pods(0..n)),
                    Op::Advance { secs } => {
                        now += secs * SECOND;
                        c.tick(now);
                    }
                }
                prop_assert_eq!(c.active_requests(), flying.len() as u64);
                prop_assert_eq!(c.active_retries(), retries_granted);
                // A later scale-down can leave more than the cap ejected (as in Envoy: the cap is
                // checked at ejection time), so between ejections only the largest cluster
                // bounds it: 100·ejected ≤ max%·25.
                prop_assert!(100 * c.ejected_count() as u64 <= u64::from(max_pct) * 25);
            }
        }
    }
}
