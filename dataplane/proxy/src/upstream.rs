//! One upstream cluster on the wall clock: the dataplane [`Cluster`] (balancer + outlier
//! detector + retry budget, the code the simulator runs) behind a mutex, the endpoints'
//! addresses, an HTTP client, and per-endpoint counters for the stats page.
//!
//! The mutex is a `std` one on purpose: every critical section is a few arithmetic steps of a
//! state machine and never spans an `.await`, so an async mutex would only add overhead.
//! Outlier sweeps run lazily: every pick first runs the sweeps due by now (the order the
//! dataplane's docs prescribe), and so does reading the stats.

use crate::body::ProxyBody;
use crate::clock::{Clock, duration};
use crate::config::{ClusterConfig, Destination};
use crate::pool::Pool;
use crate::telemetry::DestinationLabels;
use homeostat_dataplane::cluster::{Cluster, EndpointId};
use homeostat_dataplane::config::RetryPolicy;
use homeostat_dataplane::outlier::{Ejection, Outcome, OutlierStats, SweepEvent};
use homeostat_dataplane::time::Nanos;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The HTTP client to one cluster's endpoints.
pub type HttpClient = Client<HttpConnector, ProxyBody>;

/// How an attempt ended, as the per-endpoint counters classify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Status(u16),
    ConnectFailure,
    Reset,
    Timeout,
    /// The downstream went away mid-attempt; not the endpoint's fault.
    Cancelled,
}

impl AttemptResult {
    /// The outlier detector's view; `None` for a cancelled attempt, which is abandoned
    /// (`Cluster::abandon_attempt`): a client hanging up says nothing about the endpoint, and
    /// Envoy does not report it either. Timeouts do count, as Envoy reports them
    /// (local-origin timeout).
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            AttemptResult::Status(code) => Some(Outcome::from_status(code)),
            AttemptResult::ConnectFailure | AttemptResult::Reset | AttemptResult::Timeout => {
                Some(Outcome::LocalOriginFailure)
            }
            AttemptResult::Cancelled => None,
        }
    }
}

/// Counters of one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointCounters {
    pub rq_2xx: u64,
    pub rq_3xx: u64,
    pub rq_4xx: u64,
    pub rq_5xx: u64,
    pub connect_failures: u64,
    pub resets: u64,
    pub timeouts: u64,
    pub cancelled: u64,
    pub ejections: u64,
}

/// What the stats page shows for one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    pub address: SocketAddr,
    pub weight: u32,
    pub ejected: bool,
    pub counters: EndpointCounters,
}

/// What the stats page shows for one cluster.
#[derive(Debug, Clone)]
pub struct UpstreamStats {
    pub name: String,
    pub endpoints: Vec<EndpointStats>,
    pub outlier: OutlierStats,
    pub active_requests: u64,
    pub active_retries: u64,
    pub retries: u64,
    pub retry_overflow: u64,
    pub no_healthy_upstream: u64,
    pub in_panic: bool,
}

#[derive(Debug)]
struct Endpoint {
    address: SocketAddr,
    weight: u32,
    counters: EndpointCounters,
}

#[derive(Debug)]
struct State {
    cluster: Cluster,
    endpoints: HashMap<EndpointId, Endpoint>,
    ids: HashMap<SocketAddr, EndpointId>,
    next_id: EndpointId,
    retries: u64,
    retry_overflow: u64,
    no_healthy_upstream: u64,
}

/// One upstream cluster (see the module docs).
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    pub destination: Destination,
    /// `destination_*` labels of this cluster's telemetry, rendered once.
    pub labels: Arc<DestinationLabels>,
    /// The configuration in force (for `/config_dump` and to tell what an update changes).
    config: Mutex<ClusterConfig>,
    /// HTTP/2 endpoints: hyper-util's client, one multiplexed connection per endpoint.
    client: HttpClient,
    /// HTTP/1.1 endpoints: the proxy's own connection stacks (see [`crate::pool`]).
    pool: Pool,
    http2: bool,
    clock: Clock,
    state: Mutex<State>,
}

fn client(cfg: &ClusterConfig) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(duration(cfg.connect_timeout)));
    connector.set_nodelay(true);
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(std::time::Duration::from_secs(60));
    if cfg.http2 {
        builder.http2_only(true);
    }
    builder.build(connector)
}

impl Upstream {
    /// A cluster built from its configuration.
    pub fn new(cfg: &ClusterConfig, clock: Clock) -> Upstream {
        let now = clock.now();
        let cluster = Cluster::new(
            now,
            cfg.balancer.clone(),
            cfg.outlier_detection.clone(),
            cfg.retry_limit.clone(),
        )
        .with_seed(rand::random());
        let mut state = State {
            cluster,
            endpoints: HashMap::new(),
            ids: HashMap::new(),
            next_id: 0,
            retries: 0,
            retry_overflow: 0,
            no_healthy_upstream: 0,
        };
        state.set_endpoints(now, cfg);
        Upstream {
            name: cfg.name.clone(),
            destination: cfg.destination.clone(),
            labels: Arc::new(DestinationLabels::new(&cfg.destination)),
            config: Mutex::new(cfg.clone()),
            client: client(cfg),
            pool: Pool::new(cfg.connect_timeout),
            http2: cfg.http2,
            clock,
            state: Mutex::new(state),
        }
    }

    /// Whether `cfg` can be applied in place (same name, labels and connection settings);
    /// otherwise a new `Upstream` must replace this one.
    pub fn can_update_to(&self, cfg: &ClusterConfig) -> bool {
        let cur = lock(&self.config);
        cur.name == cfg.name
            && cur.destination == cfg.destination
            && cur.connect_timeout == cfg.connect_timeout
            && cur.http2 == cfg.http2
    }

    /// Applies a CDS/EDS update in place: endpoint state (ejections, active requests, latency
    /// estimates) survives for endpoints that stay.
    pub fn update(&self, cfg: &ClusterConfig) {
        let now = self.clock.now();
        let mut cur = lock(&self.config);
        let mut s = lock(&self.state);
        if cur.balancer != cfg.balancer {
            s.cluster.set_balancer_config(cfg.balancer.clone());
        }
        if cur.outlier_detection != cfg.outlier_detection {
            s.cluster
                .set_outlier_config(now, cfg.outlier_detection.clone());
        }
        if cur.retry_limit != cfg.retry_limit {
            s.cluster.set_retry_limit(cfg.retry_limit.clone());
        }
        s.set_endpoints(now, cfg);
        self.pool.retain(|a| s.ids.contains_key(a));
        *cur = cfg.clone();
    }

    /// The configuration in force.
    pub fn config(&self) -> ClusterConfig {
        lock(&self.config).clone()
    }

    /// The HTTP version to speak to the endpoints.
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// The client to send attempts with to HTTP/2 endpoints.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// The connections to HTTP/1.1 endpoints.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Now on this cluster's clock.
    pub fn now(&self) -> Nanos {
        self.clock.now()
    }

    /// Picks an endpoint for a first try (`None`: no healthy upstream).
    pub fn pick(&self) -> Option<(EndpointId, SocketAddr)> {
        let now = self.clock.now();
        let mut s = lock(&self.state);
        s.sweep(&self.name, now);
        match s.cluster.pick(now, &mut rand::rng()) {
            Some(id) => Some((id, s.endpoints[&id].address)),
            None => {
                s.no_healthy_upstream += 1;
                None
            }
        }
    }

    /// Asks the retry budget for a retry; `false` is counted as a retry overflow.
    pub fn try_begin_retry(&self) -> bool {
        let mut s = lock(&self.state);
        let ok = s.cluster.try_begin_retry();
        if ok {
            s.retries += 1;
        } else {
            s.retry_overflow += 1;
        }
        ok
    }

    /// Picks the endpoint of a granted retry (`None` releases the retry).
    pub fn pick_retry(
        &self,
        tried: &[EndpointId],
        policy: &RetryPolicy,
    ) -> Option<(EndpointId, SocketAddr)> {
        let now = self.clock.now();
        let mut s = lock(&self.state);
        s.sweep(&self.name, now);
        let id = s.cluster.pick_retry(now, &mut rand::rng(), tried, policy)?;
        Some((id, s.endpoints[&id].address))
    }

    /// Releases a granted retry that will not be sent.
    pub fn cancel_retry(&self) {
        lock(&self.state).cluster.cancel_retry();
    }

    /// An attempt on `id` that started at `started` ended with `result`.
    pub fn end_attempt(
        &self,
        id: EndpointId,
        started: Nanos,
        result: AttemptResult,
        was_retry: bool,
    ) {
        let now = self.clock.now();
        let mut s = lock(&self.state);
        let ejection = match result.outcome() {
            Some(outcome) => {
                s.cluster
                    .end_attempt(now, id, now.saturating_sub(started), outcome, was_retry)
            }
            None => {
                s.cluster.abandon_attempt(id, was_retry);
                None
            }
        };
        if let Some(ep) = s.endpoints.get_mut(&id) {
            let c = &mut ep.counters;
            match result {
                AttemptResult::Status(code) => match code {
                    200..=299 => c.rq_2xx += 1,
                    300..=399 => c.rq_3xx += 1,
                    400..=499 => c.rq_4xx += 1,
                    _ => c.rq_5xx += 1,
                },
                AttemptResult::ConnectFailure => c.connect_failures += 1,
                AttemptResult::Reset => c.resets += 1,
                AttemptResult::Timeout => c.timeouts += 1,
                AttemptResult::Cancelled => c.cancelled += 1,
            }
        }
        if let Some((ejected, e)) = ejection {
            s.count_ejection(&self.name, ejected, &e);
        }
    }

    /// A snapshot of the counters (runs the outlier sweeps due first, so un-ejections show).
    pub fn stats(&self) -> UpstreamStats {
        let now = self.clock.now();
        let mut s = lock(&self.state);
        s.sweep(&self.name, now);
        let mut endpoints: Vec<EndpointStats> = s
            .endpoints
            .iter()
            .map(|(&id, ep)| EndpointStats {
                address: ep.address,
                weight: ep.weight,
                ejected: s.cluster.is_ejected(id),
                counters: ep.counters.clone(),
            })
            .collect();
        endpoints.sort_by_key(|e| e.address);
        UpstreamStats {
            name: self.name.clone(),
            endpoints,
            outlier: s.cluster.outlier_stats(),
            active_requests: s.cluster.active_requests(),
            active_retries: s.cluster.active_retries(),
            retries: s.retries,
            retry_overflow: s.retry_overflow,
            no_healthy_upstream: s.no_healthy_upstream,
            in_panic: s.cluster.in_panic(),
        }
    }
}

impl State {
    /// Runs the outlier sweeps due by `now`; success-rate ejections happen there and are
    /// counted like the inline ones.
    fn sweep(&mut self, cluster: &str, now: Nanos) {
        if self.cluster.next_sweep_at().is_none_or(|at| at > now) {
            return;
        }
        for (id, event) in self.cluster.sweep(now) {
            if let SweepEvent::Ejected(e) = event {
                self.count_ejection(cluster, id, &e);
            }
        }
    }

    fn count_ejection(&mut self, cluster: &str, id: EndpointId, e: &Ejection) {
        if let Some(ep) = self.endpoints.get_mut(&id) {
            ep.counters.ejections += 1;
            tracing::info!(
                cluster, endpoint = %ep.address, kind = ?e.kind,
                seconds = e.duration as f64 / 1e9, "outlier ejected"
            );
        }
    }

    /// EDS: endpoints are identified by address; an address keeps its id (and so its state in
    /// the dataplane cluster) for as long as it stays in the set.
    fn set_endpoints(&mut self, now: Nanos, cfg: &ClusterConfig) {
        let mut set = Vec::with_capacity(cfg.endpoints.len());
        let mut keep = HashMap::with_capacity(cfg.endpoints.len());
        for ep in &cfg.endpoints {
            let id = match self.ids.get(&ep.address) {
                Some(&id) => id,
                None => {
                    let id = self.next_id;
                    self.next_id = self.next_id.wrapping_add(1);
                    id
                }
            };
            let counters = self
                .endpoints
                .remove(&id)
                .map(|e| e.counters)
                .unwrap_or_default();
            keep.insert(
                id,
                Endpoint {
                    address: ep.address,
                    weight: ep.weight,
                    counters,
                },
            );
            set.push((id, ep.weight));
        }
        self.ids = keep.iter().map(|(&id, e)| (e.address, id)).collect();
        self.endpoints = keep;
        self.cluster.set_endpoints(now, &set);
    }
}

/// Locks, recovering from poisoning: a panic elsewhere must not take the data path down, and
/// the state machines keep no invariant that a half-finished call could break.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use homeostat_dataplane::time::SECOND;

    fn cfg(yaml: &str) -> ClusterConfig {
        serde_yaml::from_str(yaml).expect("cluster yaml")
    }

    #[tokio::test(start_paused = true)]
    async fn five_gateway_errors_eject_and_the_sweep_after_base_time_returns_the_endpoint() {
        let c = Upstream::new(
            &cfg(
                "name: c\noutlierDetection: { maxEjectionPercent: 50 }\nbalancer: { kind: ROUND_ROBIN }\n\
                  endpoints: [{address: '127.0.0.1:1'}, {address: '127.0.0.1:2'}]",
            ),
            Clock::start(),
        );
        let bad: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        // Round robin alternates; fail every attempt on :1, five times (Istio default 5).
        let mut failures = 0;
        while failures < 5 {
            let (id, addr) = c.pick().expect("an endpoint");
            let result = if addr == bad {
                failures += 1;
                AttemptResult::Status(503)
            } else {
                AttemptResult::Status(200)
            };
            c.end_attempt(id, c.now(), result, false);
        }
        let s = c.stats();
        assert_eq!(s.endpoints[0].counters.rq_5xx, 5);
        assert_eq!(s.endpoints[0].counters.ejections, 1);
        assert!(s.endpoints[0].ejected);
        for _ in 0..4 {
            let (id, addr) = c.pick().expect("the healthy endpoint");
            assert_ne!(addr, bad);
            c.end_attempt(id, c.now(), AttemptResult::Status(200), false);
        }
        // Ejected at t=0 for 30 s; the sweeps run every 10 s, so it is back at the 30 s sweep.
        tokio::time::advance(duration(29 * SECOND)).await;
        assert!(c.stats().endpoints[0].ejected);
        tokio::time::advance(duration(SECOND)).await;
        assert!(!c.stats().endpoints[0].ejected);
    }

    #[tokio::test(start_paused = true)]
    async fn success_rate_ejection_happens_at_the_sweep_and_is_counted() {
        let c = Upstream::new(
            &cfg("name: c\nbalancer: { kind: ROUND_ROBIN }\n\
                  outlierDetection: { maxEjectionPercent: 100, successRate: {} }\n\
                  endpoints: [{address: '127.0.0.1:1'}, {address: '127.0.0.1:2'}, \
                  {address: '127.0.0.1:3'}, {address: '127.0.0.1:4'}, {address: '127.0.0.1:5'}]"),
            Clock::start(),
        );
        // 500 round-robin attempts in the first interval: 100 per endpoint. :5 answers 503 to
        // every other one of its 100 (50 %, never two in a row, so consecutive 5xx stays
        // quiet); the rest answer 200. Rates {100, 100, 100, 100, 50}: mean 90, stdev 20,
        // threshold 90 − 1.9 × 20 = 52 → :5 is ejected at the 10 s sweep, not before.
        let mut on5 = 0;
        for _ in 0..500 {
            let (id, addr) = c.pick().expect("an endpoint");
            let mut status = 200;
            if addr.port() == 5 {
                on5 += 1;
                if on5 % 2 == 0 {
                    status = 503;
                }
            }
            c.end_attempt(id, c.now(), AttemptResult::Status(status), false);
        }
        assert_eq!(on5, 100);
        assert!(!c.stats().endpoints[4].ejected);
        tokio::time::advance(duration(10 * SECOND)).await;
        let s = c.stats();
        assert!(s.endpoints[4].ejected);
        assert_eq!(s.endpoints[4].counters.ejections, 1);
        assert_eq!(s.outlier.success_rate_detected, 1);
        for _ in 0..8 {
            assert_ne!(c.pick().map(|p| p.1.port()), Some(5));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_eds_update_keeps_the_ejection_of_an_endpoint_that_stays() {
        let c = Upstream::new(
            &cfg(
                "name: c\noutlierDetection: { maxEjectionPercent: 100, consecutive5xxErrors: 1 }\n\
                  endpoints: [{address: '127.0.0.1:1'}]",
            ),
            Clock::start(),
        );
        let (id, _) = c.pick().expect("endpoint");
        c.end_attempt(id, 0, AttemptResult::ConnectFailure, false);
        assert!(
            c.pick().is_none(),
            "the only endpoint is ejected, panic threshold 0"
        );
        c.update(&cfg(
            "name: c\noutlierDetection: { maxEjectionPercent: 100, consecutive5xxErrors: 1 }\n\
             endpoints: [{address: '127.0.0.1:1'}, {address: '127.0.0.1:2', weight: 4}]",
        ));
        let s = c.stats();
        assert_eq!(s.no_healthy_upstream, 1);
        assert!(s.endpoints[0].ejected && !s.endpoints[1].ejected);
        assert_eq!(s.endpoints[0].counters.connect_failures, 1);
        assert_eq!(c.pick().map(|p| p.1.port()), Some(2));
    }
}
