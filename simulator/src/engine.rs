//! The discrete-event engine: one event per thing that happens to a request, in (time, seq)
//! order from a priority queue, so the same scenario and seed give byte-identical results.
//! (`seq` makes the order total, so any correct priority queue pops the same sequence; the
//! queue is a 4-ary heap because popping is a fifth of the engine's time and a 4-ary heap is
//! half as deep as a binary one — docs/benchmarks-sim.md.)
//!
//! Randomness comes from four ChaCha8 streams of the scenario's seed, one per concern, so what
//! the *world* does cannot depend on what the *mesh or its controller* does:
//!
//! * `arrivals` — arrival times and the entry service of each arrival;
//! * `work` — each try's own service time and which optional child calls it makes;
//! * `faults` — whether a try on a faulty pod fails;
//! * `mesh` — the proxies' choices (route split, balancer picks, retry back-off jitter).
//!
//! Every run of a scenario therefore sees the same arrivals whatever its controller does (a
//! retry or an extra pick cannot shift them), and the k-th service time and the k-th fault draw
//! are the same numbers in every run. (Which try gets the k-th draw still depends on routing.)
//!
//! ```text
//!  arrival ─► Call(ingress → service) ─► pick subset by route weight ─► cluster(proxy, subset)
//!               ▲  retry after back-off        │ pick pod (balancer, ejections)
//!               │                              ▼
//!          result ◄── Try at pod: queue ─► own work ─► child Calls (sequential | parallel)
//! ```
//!
//! A *call* is what a caller's proxy sees (route timeout, retries); a *try* is one attempt on one
//! pod. Every calling pod has its own sidecar, so its own clusters (balancer, outlier detector,
//! retry limit) — per-proxy state, as in Envoy; the ingress gateway is one proxy. A call that times out abandons its try, which keeps the pod busy until it finishes —
//! wasted work, as in a real mesh. Every entry request ends exactly once (success, failure or
//! timeout); after the last arrival the engine drains until none is in flight.

use std::cmp::Ordering;
use std::collections::VecDeque;

use dary_heap::QuaternaryHeap;

use homeostat_dataplane::config::{BalancerConfig, OutlierConfig, RetryLimit, RetryPolicy};
use homeostat_dataplane::split::WeightedSplit;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::duration::Nanos;
use crate::faults::{self, Fault};
use homeostat_dataplane::retry::RetryState;
use rand::RngCore;

use crate::proxy::{self, Cluster, Fail};
use crate::scenario::Scenario;
use crate::slab::{Key, Slab};
use crate::telemetry::{Counters, PodSample, Scrapes};
use crate::topology::Topology;
use crate::traffic::{Arrivals, Surge};

const MS: u64 = 1_000_000;
const NO_CALL: Key = (u32::MAX, 0);

/// How an entry request (or a call) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Success,
    Failure,
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Arrival,
    WorkDone(Key),
    CallTimeouts(u32),
    PerTryTimeout(Key),
    Retry(Key),
    /// Prometheus scrapes every pod.
    Tick,
    /// The oldest scrape not yet visible becomes visible to controllers, which then run.
    Publish,
    Sweep,
    FaultStart(u32),
    FaultEnd(u32),
    PodReady(u32),
    EndpointGone(u32),
    Apply(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    t: u64,
    seq: u64,
    ev: Ev,
}
impl Event {
    /// (t, seq) as one number, ordered as the pair is: one comparison without a branch
    /// where the pair took two and a branch, in the heap's hottest loop.
    fn key(&self) -> u128 {
        (u128::from(self.t) << 64) | u128::from(self.seq)
    }
}
impl Ord for Event {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: the heap is a max-heap and we want the earliest first.
        o.key().cmp(&self.key())
    }
}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    Starting,
    Ready,
    /// Crashed: refuses connections; still listed by EDS until `endpoint_removal` passes.
    Crashed,
    /// Crashed and out of EDS, waiting for its restart.
    Down,
    /// Scaled down: no new requests, finishes what it has.
    Terminating,
    Gone,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub subset: u32,
    pub service: u32,
    /// Index within its subset (what faults target), and its node.
    pub index: u32,
    pub node: u32,
    pub state: PodState,
    busy: u32,
    queue: VecDeque<Key>,
    pub counters: Counters,
}

#[derive(Debug, Clone, Copy)]
enum Parent {
    Root { entry_subset: u32 },
    Try(Key),
}

/// Pods a call already tried, for Envoy's previous-hosts retry predicate.
const MAX_TRIED: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Call {
    parent: Parent,
    service: u32,
    /// The calling proxy's cluster for the chosen subset.
    cluster: u32,
    started: u64,
    /// The try in flight (NO_CALL while backing off).
    current: Key,
    retry: RetryState,
    tried: [u32; MAX_TRIED],
    ntried: u8,
    /// A granted retry is waiting out its back-off; if the call ends first (route timeout)
    /// the retry is cancelled and its budget slot released, never sent.
    backing_off: bool,
}

#[derive(Debug, Clone, Copy)]
struct Try {
    call: Key,
    pod: u32,
    cluster: u32,
    /// The attempt is still open in the cluster's accounting (not yet ended by a timeout).
    open: bool,
    was_retry: bool,
    arrived: u64,
    /// Own-work time of this try, for the pod's CPU counter.
    work: u64,
    /// Status of an injected error (0: none).
    error: u16,
    in_service: bool,
    pending: u32,
    failed_child: bool,
    next_edge: u32,
}

/// Mesh configuration of one destination service, as its callers' proxies hold it.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Route weight per subset (indexed like `Topology::services[s].subsets`).
    pub weights: Vec<f64>,
    pub retries: RetryPolicy,
    pub retry_limit: RetryLimit,
    pub outlier: OutlierConfig,
}

/// A change a controller asks for; applied after the control plane's delay.
#[derive(Debug, Clone)]
pub enum Change {
    Replicas {
        subset: usize,
        replicas: u32,
    },
    Weights {
        service: usize,
        weights: Vec<f64>,
    },
    Outlier {
        service: usize,
        config: OutlierConfig,
    },
    Retries {
        service: usize,
        policy: RetryPolicy,
        limit: RetryLimit,
    },
    /// A canary promotion (Flagger): the primary subset `to` now runs the version of `from`
    /// (faults aimed at `from`'s version hit it too), and takes all the traffic.
    Promote {
        service: usize,
        from: usize,
        to: usize,
    },
}

/// Ground-truth tallies, kept by the engine itself to check conservation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub started: u64,
    pub success: u64,
    pub failure: u64,
    pub timeout: u64,
    /// Retries sent (granted and dispatched after their back-off).
    pub retries: u64,
    /// Retries granted but cancelled because their call ended during the back-off.
    pub retries_cancelled: u64,
    pub ejections: u64,
    pub events: u64,
    /// Calls between services (hops), retries excluded.
    pub calls: u64,
}

/// What the engine reports outward as it runs; the recorder and controllers sit behind it.
pub trait Observer {
    /// An entry request ended.
    fn request_done(&mut self, t: u64, latency: u64, end: End, entry_subset: usize);
    fn retry(&mut self, _t: u64) {}
    fn ejection(&mut self, _t: u64, _pod: &str) {}
    /// An entry request arrived at `service` (for tests of the arrival stream).
    fn arrival(&mut self, _t: u64, _service: usize) {}
    /// Prometheus scrapes every pod at `t`: the mesh as that scrape sees it, at the instant it
    /// sees it (before the telemetry lag; `view.scrapes` holds only what is already visible).
    fn scrape(&mut self, _t: u64, _view: &View<'_>) {}
    /// Every telemetry interval, once a scrape has become visible (after the telemetry lag):
    /// return changes to make.
    fn tick(&mut self, _t: u64, _view: &View<'_>) -> Vec<Change> {
        Vec::new()
    }
}

/// Pods of a subset that exist (ready or starting): what a run pays for.
fn live_replicas(pods: &[Pod], subset: usize) -> u32 {
    pods.iter()
        .filter(|p| {
            p.subset as usize == subset && matches!(p.state, PodState::Ready | PodState::Starting)
        })
        .count() as u32
}

/// Read-only view of the mesh for controllers: topology, config, pods, scraped telemetry.
pub struct View<'a> {
    pub topology: &'a Topology,
    pub config: &'a [ServiceConfig],
    pub pods: &'a [Pod],
    pub scrapes: &'a Scrapes,
    /// What the callers' proxies report per destination service (`reporter="source"`): one
    /// sample per service, `pod` holding the service's index.
    pub callers: &'a Scrapes,
    /// The callers' cumulative counters now, per destination service (what a scrape of the
    /// callers' proxies reads; `callers` holds the visible scrapes of them).
    pub caller_counters: &'a [Counters],
    /// Desired replicas per subset (ready + starting).
    pub desired: &'a [u32],
    pub now: u64,
}

/// Route weights as Envoy holds them (integers); the config carries them as `f64` for its
/// readers. Negative or non-finite weights count as 0.
fn integer_weights(weights: &[f64]) -> Vec<u32> {
    weights
        .iter()
        .map(|&w| {
            if w.is_finite() && w > 0.0 {
                w.round().min(f64::from(u32::MAX)) as u32
            } else {
                0
            }
        })
        .collect()
}

impl View<'_> {
    /// Pods of a subset that exist (ready or starting) — what the run pays for.
    pub fn replicas(&self, subset: usize) -> u32 {
        live_replicas(self.pods, subset)
    }
    pub fn ready(&self, subset: usize) -> u32 {
        self.pods
            .iter()
            .filter(|p| p.subset as usize == subset && p.state == PodState::Ready)
            .count() as u32
    }
}

struct TimerQueue {
    delay: u64,
    q: VecDeque<(u64, Key)>,
}

/// Stream numbers of the scenario seed's ChaCha8 generator (see the module docs).
const STREAM_MESH: u64 = 0;
const STREAM_ARRIVALS: u64 = 1;
const STREAM_WORK: u64 = 2;
const STREAM_FAULTS: u64 = 3;

fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(n);
    r
}

pub struct Engine {
    pub now: u64,
    seq: u64,
    end: u64,
    heap: QuaternaryHeap<Event>,
    /// The proxies' random choices (route split, balancer, back-off jitter).
    rng: ChaCha8Rng,
    arrival_rng: ChaCha8Rng,
    work_rng: ChaCha8Rng,
    fault_rng: ChaCha8Rng,
    seed: u64,
    pub topo: Topology,
    pub pods: Vec<Pod>,
    /// Ready pods per subset (the EDS endpoint set).
    endpoints: Vec<Vec<u32>>,
    pub desired: Vec<u32>,
    pub config: Vec<ServiceConfig>,
    /// The route split per service, in Envoy's integer semantics.
    splits: Vec<WeightedSplit>,
    /// The version each subset's pods run (a subset index): itself, until a promotion.
    version_of: Vec<usize>,
    balancer: BalancerConfig,
    clusters: Vec<Cluster>,
    /// Cluster index by calling proxy (0 = the ingress gateway, 1 + p = pod p's sidecar) ×
    /// subset; u32::MAX where that proxy never calls that subset.
    cluster_of: Vec<u32>,
    /// Subsets each service calls (the subsets of its callees), for building a new pod's proxy.
    callee_subsets: Vec<Vec<usize>>,
    /// Scrapes taken and not yet visible to controllers (telemetry lag): the pods', then the
    /// callers'.
    unpublished: VecDeque<(u64, Vec<PodSample>, Vec<PodSample>)>,
    /// Per destination service, the calls to it as its callers' proxies count them: one per
    /// call, retries folded in, an error when the caller finally got a 5xx or timed out
    /// (Envoy answers a route timeout with 504), its latency the call's whole time. No CPU.
    caller_counters: Vec<Counters>,
    telemetry_lag: u64,
    calls: Slab<Call>,
    tries: Slab<Try>,
    timers: Vec<TimerQueue>,
    arrivals: Arrivals,
    surges: Vec<Surge>,
    pub faults: Vec<Fault>,
    active_faults: Vec<u32>,
    pub scrapes: Scrapes,
    pub caller_scrapes: Scrapes,
    interval: u64,
    push_latency: u64,
    pod_startup: u64,
    endpoint_removal: u64,
    pending_changes: Vec<Option<Change>>,
    pub tally: Tally,
    roots_in_flight: u64,
}

/// The most entry requests one run may simulate. At the engine's measured 0.5 M entry
/// requests/s on the 20-service mesh and 4.9 M on a single hop (docs/benchmarks-sim.md), 10¹⁰
/// is between about half an hour and five and a half hours of one core: a run beyond it is a
/// typo in a rate or a duration (`1e15` for `1e5`), which would otherwise run for years
/// without a word.
pub const MAX_ENTRY_REQUESTS: f64 = 1e10;

impl Engine {
    pub fn new(s: &Scenario) -> Result<Engine, String> {
        let mut topo = Topology::compile(s)?;
        let mut notes = std::mem::take(&mut topo.notes);
        let arrivals = Arrivals::compile(s, &mut notes)?;
        topo.notes = notes;
        let faults = faults::compile(s, &topo);
        let surges = faults::surges(&faults);
        let expected = arrivals.expected(&surges, s.duration.nanos());
        if expected > MAX_ENTRY_REQUESTS {
            return Err(format!(
                "traffic: about {expected:.3e} entry requests in the {:.0} s run (the mean rate over \
                 the run, surges included), more than the {MAX_ENTRY_REQUESTS:.0e} one run may \
                 simulate; is a rate or the duration a typo? (`replay --scale` shortens a run)",
                s.duration.as_secs_f64()
            ));
        }
        let outlier = s.mesh.outlier();
        let config: Vec<ServiceConfig> = topo
            .services
            .iter()
            .map(|svc| ServiceConfig {
                weights: svc
                    .subsets
                    .iter()
                    .map(|&i| topo.subsets[i].initial_weight)
                    .collect(),
                retries: s.mesh.retries.clone(),
                retry_limit: s.mesh.retry_limit.clone(),
                outlier: outlier.clone(),
            })
            .collect();
        let splits = config
            .iter()
            .enumerate()
            .map(|(i, c)| {
                WeightedSplit::new(&integer_weights(&c.weights))
                    .map_err(|e| format!("service {:?}: {e}", topo.services[i].name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let nsub = topo.subsets.len();
        let callee_subsets: Vec<Vec<usize>> = topo
            .services
            .iter()
            .map(|svc| {
                let mut v: Vec<usize> = svc
                    .calls
                    .iter()
                    .flat_map(|&(c, _)| topo.services[c].subsets.iter().copied())
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        let interval = s.telemetry_interval.nanos();
        let telemetry_lag = s.control_plane.telemetry_lag(interval);
        let mut e = Engine {
            now: 0,
            seq: 0,
            end: s.duration.nanos(),
            heap: QuaternaryHeap::new(),
            rng: stream(s.seed, STREAM_MESH),
            arrival_rng: stream(s.seed, STREAM_ARRIVALS),
            work_rng: stream(s.seed, STREAM_WORK),
            fault_rng: stream(s.seed, STREAM_FAULTS),
            seed: s.seed,
            pods: Vec::new(),
            endpoints: vec![Vec::new(); nsub],
            desired: topo.subsets.iter().map(|x| x.initial_pods).collect(),
            config,
            splits,
            version_of: (0..nsub).collect(),
            balancer: s.mesh.balancer.clone(),
            clusters: Vec::new(),
            cluster_of: vec![u32::MAX; nsub],
            callee_subsets,
            unpublished: VecDeque::new(),
            telemetry_lag,
            calls: Slab::default(),
            tries: Slab::default(),
            timers: Vec::new(),
            arrivals,
            surges,
            faults,
            active_faults: Vec::new(),
            // 1 h of 15 s scrapes at most: the longest window controllers look at.
            scrapes: Scrapes::new(interval, (3_600_000_000_000 / interval) as usize + 2),
            caller_scrapes: Scrapes::new(interval, (3_600_000_000_000 / interval) as usize + 2),
            caller_counters: vec![Counters::default(); topo.services.len()],
            interval,
            push_latency: s.control_plane.push_latency.nanos(),
            pod_startup: s.control_plane.pod_startup.nanos(),
            endpoint_removal: s.control_plane.endpoint_removal.nanos(),
            pending_changes: Vec::new(),
            tally: Tally::default(),
            roots_in_flight: 0,
            topo,
        };
        // The ingress gateway (proxy 0) calls the entry services.
        let entry_subsets: Vec<usize> = e
            .topo
            .entries
            .iter()
            .flat_map(|&(svc, _)| e.topo.services[svc].subsets.clone())
            .collect();
        for sub in entry_subsets {
            if e.cluster_of[sub] == u32::MAX {
                e.cluster_of[sub] = e.new_cluster(sub);
            }
        }
        for svc in &e.topo.services {
            if !e.timers.iter().any(|t| t.delay == svc.timeout) {
                e.timers.push(TimerQueue {
                    delay: svc.timeout,
                    q: VecDeque::new(),
                });
            }
        }
        for sub in 0..nsub {
            for _ in 0..e.topo.subsets[sub].initial_pods {
                let p = e.new_pod(sub);
                e.pods[p as usize].state = PodState::Ready;
            }
        }
        for sub in 0..nsub {
            e.refresh_endpoints(sub);
        }
        for i in 0..e.faults.len() {
            let (start, end) = (e.faults[i].start, e.faults[i].end);
            e.schedule(start, Ev::FaultStart(i as u32));
            if let Some(end) = end {
                e.schedule(end, Ev::FaultEnd(i as u32));
            }
        }
        e.schedule(0, Ev::Tick);
        e.schedule(0, Ev::Sweep);
        e.next_arrival();
        Ok(e)
    }

    /// A fresh cluster for a calling proxy towards `subset`, with its service's current
    /// configuration and endpoints. Its outlier detector's RNG (used only when enforcement is
    /// below 100 % or with jitter) is seeded from the scenario seed and the cluster's index.
    fn new_cluster(&mut self, subset: usize) -> u32 {
        let svc = self.topo.subsets[subset].service;
        let cfg = &self.config[svc];
        let idx = self.clusters.len() as u32;
        let mut c = Cluster::new(
            self.now,
            self.balancer.clone(),
            (!cfg.outlier.is_off()).then(|| cfg.outlier.clone()),
            cfg.retry_limit.clone(),
        )
        .with_seed(self.seed ^ (u64::from(idx) + 1));
        let weighted: Vec<(u32, u32)> = self.endpoints[subset].iter().map(|&p| (p, 1)).collect();
        c.set_endpoints(self.now, &weighted);
        self.clusters.push(c);
        idx
    }

    pub fn notes(&self) -> &[String] {
        &self.topo.notes
    }

    pub fn end_time(&self) -> u64 {
        self.end
    }

    #[inline]
    fn schedule(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Event {
            t,
            seq: self.seq,
            ev,
        });
    }

    fn new_pod(&mut self, subset: usize) -> u32 {
        let index = self
            .pods
            .iter()
            .filter(|p| p.subset as usize == subset)
            .count() as u32;
        self.pods.push(Pod {
            subset: subset as u32,
            service: self.topo.subsets[subset].service as u32,
            index,
            node: index % self.topo.nodes,
            state: PodState::Starting,
            busy: 0,
            queue: VecDeque::new(),
            counters: Counters::default(),
        });
        let p = (self.pods.len() - 1) as u32;
        // The pod's sidecar: one cluster per subset its service calls.
        let nsub = self.topo.subsets.len();
        self.cluster_of
            .resize(self.cluster_of.len() + nsub, u32::MAX);
        let service = self.topo.subsets[subset].service;
        for callee in self.callee_subsets[service].clone() {
            let c = self.new_cluster(callee);
            self.cluster_of[(1 + p as usize) * nsub + callee] = c;
        }
        p
    }

    /// The clusters (over every calling proxy) towards `subset`.
    fn clusters_to(&self, subset: usize) -> impl Iterator<Item = usize> + '_ {
        let nsub = self.topo.subsets.len();
        self.cluster_of
            .iter()
            .skip(subset)
            .step_by(nsub)
            .filter(|&&c| c != u32::MAX)
            .map(|&c| c as usize)
    }

    /// EDS: the endpoint set of a subset is its ready and crashed-but-not-yet-removed pods.
    fn refresh_endpoints(&mut self, subset: usize) {
        let eps: Vec<u32> = (0..self.pods.len() as u32)
            .filter(|&p| {
                let pod = &self.pods[p as usize];
                pod.subset as usize == subset
                    && matches!(pod.state, PodState::Ready | PodState::Crashed)
            })
            .collect();
        let weighted: Vec<(u32, u32)> = eps.iter().map(|&p| (p, 1)).collect();
        let targets: Vec<usize> = self.clusters_to(subset).collect();
        for c in targets {
            self.clusters[c].set_endpoints(self.now, &weighted);
        }
        self.endpoints[subset] = eps;
    }

    /// Runs to the end of the scenario and drains in-flight requests.
    pub fn run(&mut self, obs: &mut dyn Observer) {
        while self.step(obs) {}
    }

    /// Processes one event; false when nothing is left.
    pub fn step(&mut self, obs: &mut dyn Observer) -> bool {
        let Some(Event { t, ev, .. }) = self.heap.pop() else {
            return false;
        };
        // After the end only in-flight work drains: no ticks, no faults.
        if t >= self.end
            && matches!(
                ev,
                Ev::Tick | Ev::Publish | Ev::Sweep | Ev::FaultStart(_) | Ev::Apply(_)
            )
        {
            return !self.heap.is_empty();
        }
        self.now = t;
        self.tally.events += 1;
        match ev {
            Ev::Arrival => self.on_arrival(obs),
            Ev::WorkDone(k) => self.on_work_done(k, obs),
            Ev::CallTimeouts(q) => self.on_call_timeouts(q as usize, obs),
            Ev::PerTryTimeout(tr) => self.on_per_try_timeout(tr, obs),
            Ev::Retry(call) => self.send_try(call, obs),
            Ev::Tick => self.on_scrape(obs),
            Ev::Publish => self.on_publish(obs),
            Ev::Sweep => {
                for c in &mut self.clusters {
                    c.tick(t);
                }
                let every = self
                    .config
                    .iter()
                    .map(|c| c.outlier.interval)
                    .min()
                    .unwrap_or(0);
                self.schedule(t + every.max(MS), Ev::Sweep);
            }
            Ev::FaultStart(i) => self.on_fault(i as usize, true, obs),
            Ev::FaultEnd(i) => self.on_fault(i as usize, false, obs),
            Ev::PodReady(p) => {
                let pod = &mut self.pods[p as usize];
                if pod.state == PodState::Starting {
                    pod.state = PodState::Ready;
                    let sub = pod.subset as usize;
                    self.refresh_endpoints(sub);
                }
            }
            Ev::EndpointGone(p) => {
                if self.pods[p as usize].state == PodState::Crashed {
                    self.pods[p as usize].state = PodState::Down;
                    let sub = self.pods[p as usize].subset as usize;
                    self.refresh_endpoints(sub);
                }
            }
            Ev::Apply(i) => {
                if let Some(c) = self
                    .pending_changes
                    .get_mut(i as usize)
                    .and_then(Option::take)
                {
                    self.apply(c);
                }
            }
        }
        true
    }

    fn next_arrival(&mut self) {
        if let Some(t) = self
            .arrivals
            .next(&mut self.arrival_rng, &self.surges, self.end)
        {
            self.schedule(t, Ev::Arrival);
        }
    }

    fn on_arrival(&mut self, obs: &mut dyn Observer) {
        self.next_arrival();
        let service = if self.topo.entries.len() == 1 {
            self.topo.entries[0].0
        } else {
            let u: f64 = self.arrival_rng.random();
            self.topo
                .entries
                .iter()
                .find(|e| u < e.1)
                .map_or(self.topo.entries[self.topo.entries.len() - 1].0, |e| e.0)
        };
        obs.arrival(self.now, service);
        self.tally.started += 1;
        self.roots_in_flight += 1;
        self.start_call(
            Parent::Root {
                entry_subset: u32::MAX,
            },
            0,
            service,
            obs,
        );
    }

    /// Picks a subset by route weight and opens a call to it from the calling proxy `caller`
    /// (0 = the ingress gateway, 1 + p = pod p's sidecar).
    fn start_call(
        &mut self,
        parent: Parent,
        caller: usize,
        service: usize,
        obs: &mut dyn Observer,
    ) {
        let subs = &self.topo.services[service].subsets;
        let pick = if subs.len() == 1 {
            0
        } else {
            self.splits[service].pick(self.rng.next_u64())
        };
        let subset = subs[pick];
        let parent = match parent {
            Parent::Root { .. } => Parent::Root {
                entry_subset: subset as u32,
            },
            p => p,
        };
        let nsub = self.topo.subsets.len();
        let cluster = self.cluster_of[caller * nsub + subset];
        let key = self.calls.insert(Call {
            parent,
            service: service as u32,
            cluster,
            started: self.now,
            current: NO_CALL,
            retry: RetryState::new(),
            tried: [u32::MAX; MAX_TRIED],
            ntried: 0,
            backing_off: false,
        });
        if caller != 0 {
            self.tally.calls += 1;
        }
        let timeout = self.topo.services[service].timeout;
        let q = self
            .timers
            .iter()
            .position(|t| t.delay == timeout)
            .unwrap_or(0);
        let was_empty = self.timers[q].q.is_empty();
        self.timers[q].q.push_back((self.now + timeout, key));
        if was_empty {
            self.schedule(self.now + timeout, Ev::CallTimeouts(q as u32));
        }
        self.send_try(key, obs);
    }

    /// Sends a try of a call (first or retry) to a pod the cluster's balancer picks.
    fn send_try(&mut self, call_key: Key, obs: &mut dyn Observer) {
        let Some(call) = self.calls.get(call_key).copied() else {
            return;
        };
        let cluster = call.cluster as usize;
        let was_retry = call.retry.retries_used() > 0;
        if was_retry {
            self.tally.retries += 1;
            obs.retry(self.now);
        }
        let picked = if was_retry {
            let policy = &self.config[call.service as usize].retries;
            self.clusters[cluster].pick_retry(
                self.now,
                &mut self.rng,
                &call.tried[..call.ntried as usize],
                policy,
            )
        } else {
            self.clusters[cluster].pick(self.now, &mut self.rng)
        };
        let Some(pod) = picked else {
            // Envoy's local 503 "no healthy upstream" (a granted retry is released by the
            // cluster itself).
            if let Some(c) = self.calls.get_mut(call_key) {
                c.backing_off = false;
            }
            self.call_result(call_key, Some(Fail::NoHealthyUpstream), obs);
            return;
        };
        let tk = self.tries.insert(Try {
            call: call_key,
            pod,
            cluster: call.cluster,
            open: true,
            was_retry,
            arrived: self.now,
            work: 0,
            error: 0,
            in_service: false,
            pending: 0,
            failed_child: false,
            next_edge: 0,
        });
        let per_try = self.config[call.service as usize].retries.per_try_timeout;
        if let Some(c) = self.calls.get_mut(call_key) {
            c.current = tk;
            c.backing_off = false;
            if (c.ntried as usize) < MAX_TRIED {
                c.tried[c.ntried as usize] = pod;
                c.ntried += 1;
            }
            if let Some(d) = per_try {
                self.schedule(self.now + d, Ev::PerTryTimeout(tk));
            }
        }
        let p = &mut self.pods[pod as usize];
        match p.state {
            PodState::Ready => {
                let conc = self.topo.services[p.service as usize].concurrency;
                let qcap = self.topo.services[p.service as usize].queue as usize;
                if p.busy < conc {
                    self.start_work(tk);
                } else if p.queue.len() < qcap {
                    p.queue.push_back(tk);
                } else {
                    // Overflow: the pod refuses with 503 at once.
                    self.finish_try(tk, Some(Fail::Status(503)), obs);
                }
            }
            _ => self.finish_try(tk, Some(Fail::ConnectFailure), obs),
        }
    }

    fn start_work(&mut self, tk: Key) {
        let Some(tr) = self.tries.get(tk) else {
            return;
        };
        let pod = tr.pod as usize;
        let (service, subset, index) = {
            let p = &self.pods[pod];
            (p.service as usize, p.subset as usize, p.index)
        };
        let mut work = self.topo.services[service]
            .service_time
            .sample(&mut self.work_rng);
        let mut error = 0u16;
        // A promoted primary runs the canary's version: faults of that version hit it.
        let version = self.version_of[subset];
        for &f in &self.active_faults {
            let f = &self.faults[f as usize];
            if f.hits(service, version, index) {
                let (err, slow) = f.effect(self.now);
                work = (work as f64 * slow) as u64;
                if err > 0.0 && self.fault_rng.random::<f64>() < err {
                    error = f.error_code;
                }
            }
        }
        self.pods[pod].busy += 1;
        if let Some(tr) = self.tries.get_mut(tk) {
            tr.in_service = true;
            tr.work = work;
            tr.error = error;
        }
        self.schedule(self.now + work.max(1), Ev::WorkDone(tk));
    }

    fn on_work_done(&mut self, tk: Key, obs: &mut dyn Observer) {
        let Some(tr) = self.tries.get(tk) else {
            return;
        };
        let pod = tr.pod as usize;
        self.pods[pod].counters.busy_ns += tr.work;
        if tr.error != 0 {
            let code = tr.error;
            self.finish_try(tk, Some(Fail::Status(code)), obs);
            return;
        }
        let service = self.pods[pod].service as usize;
        if self.topo.services[service].parallel {
            let n = self.topo.services[service].calls.len();
            let mut issued = 0;
            for i in 0..n {
                let (callee, prob) = self.topo.services[service].calls[i];
                if prob >= 1.0 || self.work_rng.random::<f64>() < prob {
                    issued += 1;
                    if let Some(tr) = self.tries.get_mut(tk) {
                        tr.pending += 1;
                    }
                    self.start_call(Parent::Try(tk), 1 + pod, callee, obs);
                    if self.tries.get(tk).is_none() {
                        return;
                    }
                }
            }
            if issued == 0 {
                self.finish_try(tk, None, obs);
            }
        } else {
            self.next_child(tk, obs);
        }
    }

    /// Sequential fan-out: issues the next sampled child call, or finishes the try.
    fn next_child(&mut self, tk: Key, obs: &mut dyn Observer) {
        let Some(tr) = self.tries.get(tk) else {
            return;
        };
        let pod = tr.pod as usize;
        let service = self.pods[pod].service as usize;
        let mut i = tr.next_edge as usize;
        let n = self.topo.services[service].calls.len();
        while i < n {
            let (callee, prob) = self.topo.services[service].calls[i];
            i += 1;
            if prob >= 1.0 || self.work_rng.random::<f64>() < prob {
                if let Some(tr) = self.tries.get_mut(tk) {
                    tr.next_edge = i as u32;
                    tr.pending = 1;
                }
                self.start_call(Parent::Try(tk), 1 + pod, callee, obs);
                return;
            }
        }
        self.finish_try(tk, None, obs);
    }

    fn child_done(&mut self, tk: Key, ok: bool, obs: &mut dyn Observer) {
        let Some(tr) = self.tries.get_mut(tk) else {
            return;
        };
        tr.pending = tr.pending.saturating_sub(1);
        tr.failed_child |= !ok;
        let service = self.pods[tr.pod as usize].service as usize;
        if self.topo.services[service].parallel {
            if tr.pending == 0 {
                let fail = tr.failed_child.then_some(Fail::Status(500));
                self.finish_try(tk, fail, obs);
            }
        } else if !ok {
            // The handler gives up at the first failed dependency and answers 500.
            self.finish_try(tk, Some(Fail::Status(500)), obs);
        } else {
            self.next_child(tk, obs);
        }
    }

    /// The pod answers a try (or refuses it): frees the slot, records telemetry, closes the
    /// attempt in the caller's cluster and tells the call.
    fn finish_try(&mut self, tk: Key, fail: Option<Fail>, obs: &mut dyn Observer) {
        let Some(tr) = self.tries.remove(tk) else {
            return;
        };
        let pod = tr.pod as usize;
        let p = &mut self.pods[pod];
        p.counters.observe(self.now - tr.arrived, fail.is_some());
        if tr.in_service {
            p.busy -= 1;
            let mut next = None;
            if p.state == PodState::Ready || p.state == PodState::Terminating {
                next = p.queue.pop_front();
                if next.is_none() && p.state == PodState::Terminating && p.busy == 0 {
                    p.state = PodState::Gone;
                }
            }
            if let Some(next) = next {
                self.start_work(next);
            }
        }
        if tr.open {
            self.end_attempt(&tr, fail, obs);
        }
        if tr.call != NO_CALL {
            self.call_result(tr.call, fail, obs);
        }
    }

    /// Closes an attempt in its cluster (balancer load, outlier detection, retry budget).
    fn end_attempt(&mut self, tr: &Try, fail: Option<Fail>, obs: &mut dyn Observer) {
        let outcome = proxy::outlier_outcome(fail);
        let rtt = self.now - tr.arrived;
        if let Some((pod, _)) = self.clusters[tr.cluster as usize].end_attempt(
            self.now,
            tr.pod,
            rtt,
            outcome,
            tr.was_retry,
        ) {
            self.tally.ejections += 1;
            let p = &self.pods[pod as usize];
            let name = format!("{}-{}", self.topo.subsets[p.subset as usize].label, p.index);
            obs.ejection(self.now, &name);
        }
    }

    /// A try of the call ended: success ends the call; a failure is retried if the route's
    /// policy and the cluster's retry budget allow, else ends the call.
    fn call_result(&mut self, call_key: Key, fail: Option<Fail>, obs: &mut dyn Observer) {
        let Some(call) = self.calls.get_mut(call_key) else {
            return;
        };
        call.current = NO_CALL;
        let Some(fail) = fail else {
            self.end_call(call_key, End::Success, obs);
            return;
        };
        let policy = &self.config[call.service as usize].retries;
        if call.retry.should_retry(policy, fail.attempt())
            && self.clusters[call.cluster as usize].try_begin_retry()
        {
            let delay = call.retry.start_retry(policy, self.rng.next_u64());
            call.backing_off = true;
            self.schedule(self.now + delay.max(1), Ev::Retry(call_key));
        } else {
            self.end_call(call_key, End::Failure, obs);
        }
    }

    fn end_call(&mut self, call_key: Key, end: End, obs: &mut dyn Observer) {
        let Some(call) = self.calls.remove(call_key) else {
            return;
        };
        if call.backing_off {
            // The retry will never be sent: give its slot back to the budget. Its pending
            // `Ev::Retry` finds the call gone (the slab's generation tag) and does nothing.
            self.clusters[call.cluster as usize].cancel_retry();
            self.tally.retries_cancelled += 1;
        }
        self.caller_counters[call.service as usize]
            .observe(self.now - call.started, end != End::Success);
        match call.parent {
            Parent::Root { entry_subset } => {
                self.roots_in_flight -= 1;
                match end {
                    End::Success => self.tally.success += 1,
                    End::Failure => self.tally.failure += 1,
                    End::Timeout => self.tally.timeout += 1,
                }
                obs.request_done(
                    self.now,
                    self.now - call.started,
                    end,
                    entry_subset as usize,
                );
            }
            Parent::Try(tk) => self.child_done(tk, end == End::Success, obs),
        }
    }

    fn on_call_timeouts(&mut self, q: usize, obs: &mut dyn Observer) {
        while let Some(&(deadline, key)) = self.timers[q].q.front() {
            let Some(call) = self.calls.get(key).copied() else {
                // Calls that already ended are dropped whatever their deadline, so the next
                // wake-up is the first *live* deadline: about one event per timeout period
                // rather than one per call.
                self.timers[q].q.pop_front();
                continue;
            };
            if deadline > self.now {
                self.schedule(deadline, Ev::CallTimeouts(q as u32));
                return;
            }
            self.timers[q].q.pop_front();
            // The route timeout resets the try in flight: the attempt ends for the caller's
            // proxy (a local-origin failure), while the pod keeps working on it for nothing.
            self.abandon_try(call.current, obs);
            self.end_call(key, End::Timeout, obs);
        }
    }

    /// Detaches a try from its call and closes its attempt as timed out.
    fn abandon_try(&mut self, tk: Key, obs: &mut dyn Observer) {
        let Some(tr) = self.tries.get_mut(tk) else {
            return;
        };
        tr.call = NO_CALL;
        let was_open = std::mem::replace(&mut tr.open, false);
        let tr = *tr;
        if was_open {
            self.end_attempt(&tr, Some(Fail::Timeout), obs);
        }
    }

    fn on_per_try_timeout(&mut self, tk: Key, obs: &mut dyn Observer) {
        let Some(call_key) = self.tries.get(tk).map(|t| t.call) else {
            return;
        };
        match self.calls.get(call_key) {
            Some(c) if c.current == tk => {}
            _ => return,
        }
        self.abandon_try(tk, obs);
        self.call_result(call_key, Some(Fail::Timeout), obs);
    }

    fn on_fault(&mut self, i: usize, start: bool, obs: &mut dyn Observer) {
        if start {
            self.active_faults.push(i as u32);
        } else {
            self.active_faults.retain(|&f| f as usize != i);
        }
        let f = self.faults[i].clone();
        if !(f.crash || f.node_loss.is_some()) {
            return;
        }
        let victims: Vec<u32> = (0..self.pods.len() as u32)
            .filter(|&p| {
                let pod = &self.pods[p as usize];
                if let Some(n) = f.node_loss {
                    pod.node == n
                } else {
                    f.hits(pod.service as usize, pod.subset as usize, pod.index)
                }
            })
            .collect();
        for p in victims {
            if start {
                self.crash(p, obs);
            } else if matches!(
                self.pods[p as usize].state,
                PodState::Crashed | PodState::Down
            ) {
                // Restarted: ready after the start-up delay.
                self.pods[p as usize].state = PodState::Starting;
                self.schedule(self.now + self.pod_startup, Ev::PodReady(p));
            }
        }
    }

    fn crash(&mut self, p: u32, obs: &mut dyn Observer) {
        let pod = &mut self.pods[p as usize];
        if !matches!(pod.state, PodState::Ready | PodState::Starting) {
            return;
        }
        pod.state = PodState::Crashed;
        pod.queue.clear();
        // Crashes are rare: find the pod's tries by scanning rather than indexing every try.
        let victims = self.tries.keys_where(|t| t.pod == p);
        for tk in victims {
            if let Some(tr) = self.tries.get_mut(tk) {
                tr.in_service = false;
            }
            self.finish_try(tk, Some(Fail::Reset), obs);
        }
        self.pods[p as usize].busy = 0;
        self.schedule(self.now + self.endpoint_removal, Ev::EndpointGone(p));
    }

    /// Prometheus scrapes every pod; the scrape becomes visible to controllers only after the
    /// telemetry lag (scrape offset + rule/query delay), at [`Ev::Publish`].
    fn on_scrape(&mut self, obs: &mut dyn Observer) {
        obs.scrape(
            self.now,
            &View {
                topology: &self.topo,
                config: &self.config,
                pods: &self.pods,
                scrapes: &self.scrapes,
                callers: &self.caller_scrapes,
                caller_counters: &self.caller_counters,
                desired: &self.desired,
                now: self.now,
            },
        );
        let samples: Vec<PodSample> = self
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state != PodState::Gone || p.counters.requests > 0)
            .map(|(i, p)| PodSample {
                pod: i as u32,
                subset: p.subset,
                counters: p.counters,
            })
            .collect();
        let callers = self
            .caller_counters
            .iter()
            .enumerate()
            .map(|(i, c)| PodSample {
                pod: i as u32,
                subset: u32::MAX,
                counters: *c,
            })
            .collect();
        self.unpublished.push_back((self.now, samples, callers));
        self.schedule(self.now + self.telemetry_lag, Ev::Publish);
        let next = self.now + self.interval;
        self.schedule(next, Ev::Tick);
    }

    /// The oldest pending scrape becomes queryable; the controllers run on what they can see.
    fn on_publish(&mut self, obs: &mut dyn Observer) {
        let Some((t, samples, callers)) = self.unpublished.pop_front() else {
            return;
        };
        self.scrapes.push(t, samples);
        self.caller_scrapes.push(t, callers);
        let changes = {
            let view = View {
                topology: &self.topo,
                config: &self.config,
                pods: &self.pods,
                scrapes: &self.scrapes,
                callers: &self.caller_scrapes,
                caller_counters: &self.caller_counters,
                desired: &self.desired,
                now: self.now,
            };
            obs.tick(self.now, &view)
        };
        for c in changes {
            match c {
                // The HPA writes the Deployment's scale directly: pods are created at once and
                // become ready after the start-up delay.
                Change::Replicas { .. } => self.apply(c),
                other => {
                    self.pending_changes.push(Some(other));
                    let idx = (self.pending_changes.len() - 1) as u32;
                    self.schedule(self.now + self.push_latency, Ev::Apply(idx));
                }
            }
        }
    }

    fn apply(&mut self, c: Change) {
        match c {
            Change::Replicas { subset, replicas } => {
                let s = &self.topo.subsets[subset];
                // The HPA keeps within its own bounds; the subset's maxPods is the cluster's
                // hard limit (quota), never exceeded.
                let replicas = replicas.min(s.max_pods.max(1));
                self.desired[subset] = replicas;
                let live: Vec<u32> = (0..self.pods.len() as u32)
                    .filter(|&p| {
                        let pod = &self.pods[p as usize];
                        pod.subset as usize == subset
                            && matches!(pod.state, PodState::Ready | PodState::Starting)
                    })
                    .collect();
                let n = live.len() as u32;
                if replicas > n {
                    for _ in n..replicas {
                        let p = self.new_pod(subset);
                        self.schedule(self.now + self.pod_startup, Ev::PodReady(p));
                    }
                } else {
                    // Kubernetes removes starting pods first, then the newest.
                    let mut order = live.clone();
                    order.sort_by_key(|&p| {
                        (
                            self.pods[p as usize].state == PodState::Ready,
                            std::cmp::Reverse(p),
                        )
                    });
                    for &p in order.iter().take((n - replicas) as usize) {
                        let pod = &mut self.pods[p as usize];
                        pod.state = if pod.busy == 0 && pod.queue.is_empty() {
                            PodState::Gone
                        } else {
                            PodState::Terminating
                        };
                    }
                    self.refresh_endpoints(subset);
                }
            }
            Change::Weights { service, weights } => {
                // Istio's validation rejects a route whose weights cannot be used (wrong count,
                // all zero); the proxies keep the route they have.
                if weights.len() == self.config[service].weights.len()
                    && let Ok(split) = WeightedSplit::new(&integer_weights(&weights))
                {
                    self.config[service].weights = weights;
                    self.splits[service] = split;
                }
            }
            Change::Outlier { service, config } => {
                let limit = self.config[service].retry_limit.clone();
                self.update_clusters(service, config, limit);
            }
            Change::Retries {
                service,
                policy,
                limit,
            } => {
                // The route's retry policy is RDS (VirtualService): no cluster is touched. The
                // retry limit is the cluster's circuit breaker (DestinationRule → CDS).
                self.config[service].retries = policy;
                let outlier = self.config[service].outlier.clone();
                self.update_clusters(service, outlier, limit);
            }
            Change::Promote { service, from, to } => {
                let subs = &self.topo.services[service].subsets;
                let (Some(_), Some(to_i)) = (
                    subs.iter().position(|&x| x == from),
                    subs.iter().position(|&x| x == to),
                ) else {
                    return;
                };
                self.version_of[to] = self.version_of[from];
                let weights: Vec<f64> = (0..subs.len())
                    .map(|i| if i == to_i { 100.0 } else { 0.0 })
                    .collect();
                self.apply(Change::Weights { service, weights });
            }
        }
    }

    /// A DestinationRule change reaches the proxies as a CDS update of every cluster of the
    /// service. Envoy does not patch a cluster in place: an updated cluster is a new cluster,
    /// warmed and swapped in (Envoy's xDS protocol notes: "Clusters are warmed when
    /// adding/removing/updating clusters", envoyproxy/envoy#4040), so its outlier detector
    /// starts empty and every host is healthy again — ejections are lost. An update whose
    /// config is unchanged is skipped by Envoy (the cluster's hash is equal: "add/update
    /// cluster ... skipped" in its CDS log), and so here.
    fn update_clusters(&mut self, service: usize, outlier: OutlierConfig, limit: RetryLimit) {
        let cfg = &self.config[service];
        if cfg.outlier == outlier && cfg.retry_limit == limit {
            return;
        }
        self.config[service].outlier = outlier.clone();
        self.config[service].retry_limit = limit.clone();
        let detector = (!outlier.is_off()).then_some(outlier);
        for sub in self.topo.services[service].subsets.clone() {
            let targets: Vec<usize> = self.clusters_to(sub).collect();
            for c in targets {
                self.clusters[c].rebuild(self.now, detector.clone(), limit.clone());
            }
        }
    }

    /// Entry requests not yet ended.
    pub fn in_flight(&self) -> u64 {
        self.roots_in_flight
    }

    /// Retries the proxies' budgets count as active, over all clusters (0 once drained, if
    /// every granted retry was either sent and ended or cancelled).
    pub fn active_retries(&self) -> u64 {
        self.clusters.iter().map(Cluster::active_retries).sum()
    }

    /// Pods that exist (ready or starting) per subset.
    pub fn replicas(&self, subset: usize) -> u32 {
        live_replicas(&self.pods, subset)
    }
}
