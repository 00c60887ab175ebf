//! Endpoint selection within one cluster (one subset of a service): weighted round robin, least
//! request and peak EWMA, with Envoy's health filtering and panic threshold.
//!
//! # Semantics and sources
//!
//! * **Which hosts are candidates** (Envoy arch overview "Load balancing → Panic threshold",
//!   `LoadBalancerBase::isHostSetInPanic`): normally only healthy hosts (not ejected). If the
//!   healthy share `100 × healthy / hosts` drops *below* the panic threshold the balancer ignores
//!   health and uses all hosts. Envoy's default threshold is 50 %; Istio derives it from
//!   `minHealthPercent`, default 0 %, which means never panic: with every host ejected a pick
//!   returns `None` (Envoy answers 503 "no healthy upstream"). A weight of 0 means "drained":
//!   such a host is never picked, even in panic mode, and does not count in the shares.
//! * **Round robin** ([`BalancerKind::RoundRobin`], Envoy `ROUND_ROBIN`): Envoy's
//!   earliest-deadline-first schedule. Each host's k-th turn has deadline `k / weight`; the
//!   smallest deadline goes next, ties to the entry scheduled earliest. Deadlines are compared
//!   as exact fractions (cross-multiplied), so the sequence is exact: weights 3:1 give
//!   `A A B A` repeating. The schedule restarts when health or weights change, as Envoy rebuilds
//!   it on host-set changes. (Envoy also pre-picks a random number of times on each rebuild so
//!   that many proxies do not start in step; not modelled.)
//! * **Least request** ([`BalancerKind::LeastRequest`], Envoy `LEAST_REQUEST`, Istio's default):
//!   when all candidate weights are equal, power of `choice_count` (default 2) random choices,
//!   drawn with replacement, keeping the one with fewest active requests (first drawn wins a
//!   tie). When weights differ, the EDF schedule with each host re-inserted at
//!   `weight / (active + 1)^active_request_bias` when picked (Envoy's weighted least request).
//! * **Peak EWMA** ([`BalancerKind::PeakEwma`], Linkerd's balancer = tower `p2c` over
//!   `PeakEwma`): two distinct random candidates, the lower cost wins (first on a tie), where
//!   `cost = rtt_estimate × (pending + 1)`. The estimate starts at the default RTT (30 ms); a
//!   response slower than the estimate replaces it outright (the "peak"); a faster one is
//!   blended in as `est·e^(−Δt/τ) + rtt·(1 − e^(−Δt/τ))` with τ = decay (10 s); and reading the
//!   cost decays the estimate towards 0 the same way, so an idle slow host is tried again
//!   later. Linkerd has no endpoint weights; here candidates are sampled in proportion to
//!   weight when weights differ (our extension).
//!
//! The caller reports request starts and ends ([`Balancer::on_request_start`],
//! [`Balancer::on_request_end`]) so active counts and latency estimates are up to date, and
//! mirrors outlier ejections into [`Balancer::set_healthy`].

use crate::config::{BalancerConfig, BalancerKind};
use crate::time::Nanos;
use rand::RngCore;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Debug, Clone)]
struct Endpoint {
    weight: u32,
    healthy: bool,
    active: u32,
    rtt_ns: f64,
    rtt_updated_at: Nanos,
}

/// A deadline on the EDF schedule.
trait Deadline: Copy + std::fmt::Debug {
    fn cmp_deadline(&self, other: &Self) -> Ordering;
}

/// `turn / weight`, compared exactly.
#[derive(Debug, Clone, Copy)]
struct Fraction {
    turn: u64,
    weight: u32,
}

impl Deadline for Fraction {
    fn cmp_deadline(&self, other: &Self) -> Ordering {
        let a = u128::from(self.turn) * u128::from(other.weight);
        let b = u128::from(other.turn) * u128::from(self.weight);
        a.cmp(&b)
    }
}

#[derive(Debug, Clone, Copy)]
struct Float(f64);

impl Deadline for Float {
    fn cmp_deadline(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug, Clone)]
struct EdfEntry<D> {
    deadline: D,
    seq: u64,
    idx: usize,
}

impl<D: Deadline> PartialEq for EdfEntry<D> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<D: Deadline> Eq for EdfEntry<D> {}
impl<D: Deadline> PartialOrd for EdfEntry<D> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<D: Deadline> Ord for EdfEntry<D> {
    // Reversed so that `BinaryHeap` (a max-heap) pops the earliest deadline, then the earliest
    // scheduled entry.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .deadline
            .cmp_deadline(&self.deadline)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// An earliest-deadline-first schedule.
#[derive(Debug, Clone)]
struct Edf<D> {
    heap: BinaryHeap<EdfEntry<D>>,
    seq: u64,
}

impl<D: Deadline> Edf<D> {
    fn new() -> Self {
        Edf {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    fn clear(&mut self) {
        self.heap.clear();
        self.seq = 0;
    }

    fn push(&mut self, idx: usize, deadline: D) {
        self.heap.push(EdfEntry {
            deadline,
            seq: self.seq,
            idx,
        });
        self.seq += 1;
    }

    /// Takes the earliest entry and re-schedules it at `next(its deadline, its host)`, with a
    /// single sift instead of a pop and a push.
    fn pick_and_reschedule(&mut self, next: impl FnOnce(D, usize) -> D) -> Option<usize> {
        let mut top = self.heap.peek_mut()?;
        let idx = top.idx;
        top.deadline = next(top.deadline, idx);
        top.seq = self.seq;
        self.seq += 1;
        Some(idx)
    }
}

/// Endpoint selection for one cluster (see the module docs for the algorithms).
#[derive(Debug, Clone)]
pub struct Balancer {
    cfg: BalancerConfig,
    endpoints: Vec<Endpoint>,
    /// Hosts a pick may return (healthy, or all in panic; weight > 0), ascending.
    candidates: Vec<usize>,
    /// Running sum of candidate weights, for weighted sampling.
    cumulative: Vec<u64>,
    equal_weights: bool,
    panic: bool,
    exact: Edf<Fraction>,
    float: Edf<Float>,
    /// Next position in `candidates` for equal-weight round robin.
    rr_next: usize,
}

impl Balancer {
    /// A balancer over endpoints with the given weights, all healthy, created at t = 0.
    pub fn new(cfg: BalancerConfig, weights: &[u32]) -> Self {
        let endpoints = weights.iter().map(|&w| Self::fresh(&cfg, w, 0)).collect();
        let mut b = Balancer {
            cfg,
            endpoints,
            candidates: Vec::new(),
            cumulative: Vec::new(),
            equal_weights: true,
            panic: false,
            exact: Edf::new(),
            float: Edf::new(),
            rr_next: 0,
        };
        b.rebuild();
        b
    }

    fn fresh(cfg: &BalancerConfig, weight: u32, now: Nanos) -> Endpoint {
        Endpoint {
            weight,
            healthy: true,
            active: 0,
            rtt_ns: cfg.ewma_default_rtt as f64,
            rtt_updated_at: now,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &BalancerConfig {
        &self.cfg
    }

    /// Replaces the configuration (algorithm, panic threshold, …); active counts and latency
    /// estimates are kept, the schedule restarts.
    pub fn set_config(&mut self, cfg: BalancerConfig) {
        self.cfg = cfg;
        self.rebuild();
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether there are no endpoints.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Adds an endpoint (a new pod) at the end; returns its index.
    pub fn add_endpoint(&mut self, now: Nanos, weight: u32) -> usize {
        self.endpoints.push(Self::fresh(&self.cfg, weight, now));
        self.rebuild();
        self.endpoints.len() - 1
    }

    /// Removes endpoint `idx`; later indices shift down by one, as with `Vec::remove`.
    /// Out-of-range indices are ignored.
    pub fn remove_endpoint(&mut self, idx: usize) {
        if idx < self.endpoints.len() {
            self.endpoints.remove(idx);
            self.rebuild();
        }
    }

    /// Replaces the endpoint set (an EDS update): new endpoint `i` keeps the state (health,
    /// active requests, latency estimate) of old endpoint `sources[i]`, or starts fresh when
    /// that is `None` or out of range; its weight is `weights[i]` (1 if missing).
    pub fn remap(&mut self, now: Nanos, sources: &[Option<usize>], weights: &[u32]) {
        let old = std::mem::take(&mut self.endpoints);
        self.endpoints = sources
            .iter()
            .enumerate()
            .map(|(i, src)| {
                let weight = weights.get(i).copied().unwrap_or(1);
                match src.and_then(|s| old.get(s)) {
                    Some(e) => Endpoint {
                        weight,
                        ..e.clone()
                    },
                    None => Self::fresh(&self.cfg, weight, now),
                }
            })
            .collect();
        self.rebuild();
    }

    /// Sets the load-balancing weight of `idx` (EDS `load_balancing_weight`; 0 = drained).
    pub fn set_weight(&mut self, idx: usize, weight: u32) {
        if let Some(e) = self.endpoints.get_mut(idx)
            && e.weight != weight
        {
            e.weight = weight;
            self.rebuild();
        }
    }

    /// Marks `idx` healthy or not (outlier ejection / un-ejection).
    pub fn set_healthy(&mut self, idx: usize, healthy: bool) {
        if let Some(e) = self.endpoints.get_mut(idx)
            && e.healthy != healthy
        {
            e.healthy = healthy;
            self.rebuild();
        }
    }

    /// The weight of `idx` (0 if out of range).
    pub fn weight(&self, idx: usize) -> u32 {
        self.endpoints.get(idx).map_or(0, |e| e.weight)
    }

    /// Whether `idx` is healthy (false if out of range).
    pub fn is_healthy(&self, idx: usize) -> bool {
        self.endpoints.get(idx).is_some_and(|e| e.healthy)
    }

    /// Requests in flight on `idx` (0 if out of range).
    pub fn active(&self, idx: usize) -> u32 {
        self.endpoints.get(idx).map_or(0, |e| e.active)
    }

    /// Whether the healthy share is below the panic threshold, so health is ignored.
    pub fn in_panic(&self) -> bool {
        self.panic
    }

    /// The current peak-EWMA latency estimate of `idx` in nanoseconds, without decaying it.
    pub fn rtt_estimate(&self, idx: usize) -> Option<f64> {
        self.endpoints.get(idx).map(|e| e.rtt_ns)
    }

    /// A request was sent to `idx`.
    #[inline]
    pub fn on_request_start(&mut self, idx: usize) {
        if let Some(e) = self.endpoints.get_mut(idx) {
            e.active += 1;
        }
    }

    /// A request to `idx` finished at `now` after `rtt` (success or failure alike, as in tower).
    /// Latency estimates are only maintained under [`BalancerKind::PeakEwma`] (an `exp` per
    /// request is the costliest step of the hot path); switching to it later starts from the
    /// estimates as they were.
    #[inline]
    pub fn on_request_end(&mut self, now: Nanos, idx: usize, rtt: Nanos) {
        let ewma = self.cfg.kind == BalancerKind::PeakEwma;
        let decay = self.cfg.ewma_decay as f64;
        if let Some(e) = self.endpoints.get_mut(idx) {
            e.active = e.active.saturating_sub(1);
            if ewma {
                observe_rtt(e, now, rtt as f64, decay);
            }
        }
    }

    /// A request to `idx` was abandoned (the caller went away): its active count is released
    /// but no latency is observed. The time it ran is only a lower bound of the endpoint's
    /// latency (the answer never came), so feeding it to peak EWMA would pull a slow
    /// endpoint's estimate down whenever clients give up on it. (tower's `PeakEwma` records
    /// the elapsed time when its handle drops; we do not.)
    #[inline]
    pub fn on_request_abandoned(&mut self, idx: usize) {
        if let Some(e) = self.endpoints.get_mut(idx) {
            e.active = e.active.saturating_sub(1);
        }
    }

    fn rebuild(&mut self) {
        let live = self.endpoints.iter().filter(|e| e.weight > 0).count();
        let healthy = self
            .endpoints
            .iter()
            .filter(|e| e.weight > 0 && e.healthy)
            .count();
        self.panic =
            live > 0 && (100.0 * healthy as f64 / live as f64) < self.cfg.panic_threshold_percent;
        let panic = self.panic;
        self.candidates.clear();
        self.candidates.extend(
            self.endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| e.weight > 0 && (e.healthy || panic))
                .map(|(i, _)| i),
        );
        self.cumulative.clear();
        let mut sum = 0u64;
        for &i in &self.candidates {
            sum += u64::from(self.endpoints[i].weight);
            self.cumulative.push(sum);
        }
        let first = self.candidates.first().map(|&i| self.endpoints[i].weight);
        self.equal_weights = self
            .candidates
            .iter()
            .all(|&i| Some(self.endpoints[i].weight) == first);

        self.exact.clear();
        self.float.clear();
        self.rr_next = 0;
        match self.cfg.kind {
            BalancerKind::RoundRobin if !self.equal_weights => {
                for &i in &self.candidates {
                    let weight = self.endpoints[i].weight;
                    self.exact.push(i, Fraction { turn: 1, weight });
                }
            }
            BalancerKind::LeastRequest if !self.equal_weights => {
                let bias = self.cfg.active_request_bias;
                for &i in &self.candidates {
                    let w = effective_weight(&self.endpoints[i], bias);
                    self.float.push(i, Float(1.0 / w));
                }
            }
            _ => {}
        }
    }

    /// Picks an endpoint, or `None` when no host may be used (none healthy and not in panic,
    /// or every weight 0).
    pub fn pick(&mut self, now: Nanos, rng: &mut impl RngCore) -> Option<usize> {
        if self.candidates.is_empty() {
            return None;
        }
        match self.cfg.kind {
            BalancerKind::RoundRobin if self.equal_weights => {
                // Equal weights: EDF degenerates to plain rotation, which Envoy also
                // special-cases; same sequence, no heap.
                let idx = self.candidates[self.rr_next];
                self.rr_next = (self.rr_next + 1) % self.candidates.len();
                Some(idx)
            }
            BalancerKind::RoundRobin => self.pick_round_robin(),
            BalancerKind::LeastRequest if self.equal_weights => self.pick_least_request(rng),
            BalancerKind::LeastRequest => self.pick_weighted_least_request(),
            BalancerKind::PeakEwma => self.pick_peak_ewma(now, rng),
        }
    }

    /// Picks a host for a retry, re-picking up to `max_attempts` more times while the pick is
    /// in `avoid` (Envoy's `previous_hosts` predicate with `host_selection_retry_max_attempts`);
    /// if every pick was a previous host, the last one is used.
    pub fn pick_avoiding(
        &mut self,
        now: Nanos,
        rng: &mut impl RngCore,
        avoid: &[usize],
        max_attempts: u32,
    ) -> Option<usize> {
        let mut host = self.pick(now, rng)?;
        for _ in 0..max_attempts {
            if !avoid.contains(&host) {
                break;
            }
            host = self.pick(now, rng)?;
        }
        Some(host)
    }

    fn pick_round_robin(&mut self) -> Option<usize> {
        self.exact.pick_and_reschedule(|d, _| Fraction {
            turn: d.turn + 1,
            weight: d.weight,
        })
    }

    fn uniform_candidate(&self, rng: &mut impl RngCore) -> usize {
        self.candidates[below(rng.next_u64(), self.candidates.len() as u64) as usize]
    }

    fn pick_least_request(&mut self, rng: &mut impl RngCore) -> Option<usize> {
        let mut best = self.uniform_candidate(rng);
        for _ in 1..self.cfg.choice_count {
            let c = self.uniform_candidate(rng);
            if self.endpoints[c].active < self.endpoints[best].active {
                best = c;
            }
        }
        Some(best)
    }

    fn pick_weighted_least_request(&mut self) -> Option<usize> {
        let endpoints = &self.endpoints;
        let bias = self.cfg.active_request_bias;
        self.float.pick_and_reschedule(|Float(deadline), idx| {
            Float(deadline + 1.0 / effective_weight(&endpoints[idx], bias))
        })
    }

    fn weighted_candidate(&self, rng: &mut impl RngCore) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        if self.equal_weights || total == 0 {
            return self.uniform_candidate(rng);
        }
        let r = below(rng.next_u64(), total);
        let pos = self.cumulative.partition_point(|&c| c <= r);
        self.candidates[pos.min(self.candidates.len() - 1)]
    }

    fn pick_peak_ewma(&mut self, now: Nanos, rng: &mut impl RngCore) -> Option<usize> {
        let n = self.candidates.len();
        if n == 1 {
            return Some(self.candidates[0]);
        }
        let a = self.weighted_candidate(rng);
        let mut b = self.weighted_candidate(rng);
        // Two distinct candidates, as tower's p2c; with skewed weights a few redraws may be
        // needed, and a bounded number keeps the pick O(1).
        for _ in 0..8 {
            if b != a {
                break;
            }
            b = self.weighted_candidate(rng);
        }
        if b == a {
            let pos = self.candidates.partition_point(|&c| c < a);
            b = self.candidates[(pos + 1) % n];
        }
        let decay = self.cfg.ewma_decay as f64;
        let cost_a = ewma_cost(&mut self.endpoints[a], now, decay);
        let cost_b = ewma_cost(&mut self.endpoints[b], now, decay);
        Some(if cost_a <= cost_b { a } else { b })
    }
}

/// Envoy's weighted least-request weight: `weight / (active + 1)^bias`.
fn effective_weight(e: &Endpoint, bias: f64) -> f64 {
    let w = f64::from(e.weight);
    if bias == 0.0 {
        return w;
    }
    let load = f64::from(e.active) + 1.0;
    if bias == 1.0 {
        w / load
    } else {
        w / load.powf(bias)
    }
}

/// Maps a uniform `u64` onto `0..n` by multiply-shift (Lemire), avoiding a division on the hot
/// path; the bias is below n / 2^64.
#[inline]
fn below(draw: u64, n: u64) -> u64 {
    ((u128::from(draw) * u128::from(n)) >> 64) as u64
}

/// Linkerd/tower peak-EWMA update with a new RTT sample observed at `now`.
fn observe_rtt(e: &mut Endpoint, now: Nanos, rtt: f64, decay_ns: f64) {
    // With Δt = 0 the blend weight is e^0 = 1 and the estimate is unchanged: skip the `exp`.
    if e.rtt_ns < rtt {
        e.rtt_ns = rtt;
    } else if now > e.rtt_updated_at {
        let elapsed = now.saturating_sub(e.rtt_updated_at) as f64;
        let w = (-elapsed / decay_ns).exp();
        e.rtt_ns = e.rtt_ns * w + rtt * (1.0 - w);
    }
    e.rtt_updated_at = now.max(e.rtt_updated_at);
}

/// Cost of an endpoint; reading it decays the estimate towards 0, as tower does.
fn ewma_cost(e: &mut Endpoint, now: Nanos, decay_ns: f64) -> f64 {
    observe_rtt(e, now, 0.0, decay_ns);
    e.rtt_ns * (f64::from(e.active) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{MILLISECOND, SECOND};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn cfg(kind: BalancerKind) -> BalancerConfig {
        BalancerConfig {
            kind,
            ..BalancerConfig::default()
        }
    }

    fn picks(b: &mut Balancer, n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
        (0..n).map(|_| b.pick(0, rng).expect("a host")).collect()
    }

    #[test]
    fn weighted_round_robin_follows_the_edf_sequence() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut b = Balancer::new(cfg(BalancerKind::RoundRobin), &[3, 1]);
        // Deadlines: A at 1/3, 2/3, 3/3, 4/3 …; B at 1/1, 2/1 …
        // 1/3 A, 2/3 A, then A(3/3) ties B(1/1): B was scheduled first → B, then A(3/3).
        assert_eq!(picks(&mut b, 8, &mut rng), vec![0, 0, 1, 0, 0, 0, 1, 0]);
        // Over any whole cycle of 4 the split is exactly 3:1.
        let mut b = Balancer::new(cfg(BalancerKind::RoundRobin), &[5, 3, 2]);
        let p = picks(&mut b, 100, &mut rng);
        let counts: Vec<usize> = (0..3)
            .map(|i| p.iter().filter(|&&x| x == i).count())
            .collect();
        // 100 picks = 10 cycles of 10 → 50, 30, 20.
        assert_eq!(counts, vec![50, 30, 20]);
    }

    #[test]
    fn equal_weight_round_robin_cycles_in_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut b = Balancer::new(cfg(BalancerKind::RoundRobin), &[1, 1, 1]);
        assert_eq!(picks(&mut b, 6, &mut rng), vec![0, 1, 2, 0, 1, 2]);
        b.set_healthy(1, false);
        // Schedule rebuilt without host 1 (panic threshold 0 → no panic).
        assert_eq!(picks(&mut b, 4, &mut rng), vec![0, 2, 0, 2]);
    }

    #[test]
    fn least_request_prefers_the_less_loaded() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut b = Balancer::new(cfg(BalancerKind::LeastRequest), &[1, 1]);
        for _ in 0..10 {
            b.on_request_start(0);
        }
        // With two hosts, P2C draws {0,0} with probability 1/4 and must then return 0; any draw
        // containing host 1 returns 1 (0 active < 10). Expect ≈ 75 % to host 1.
        let p = picks(&mut b, 4000, &mut rng);
        let to_1 = p.iter().filter(|&&x| x == 1).count() as f64 / 4000.0;
        assert!((to_1 - 0.75).abs() < 0.03, "{to_1}");
        // With 3 choices the idle host wins unless all three draws are host 0: 1 − 1/8.
        let mut b3 = Balancer::new(
            BalancerConfig {
                choice_count: 3,
                ..cfg(BalancerKind::LeastRequest)
            },
            &[1, 1],
        );
        for _ in 0..10 {
            b3.on_request_start(0);
        }
        let p = picks(&mut b3, 4000, &mut rng);
        let to_1 = p.iter().filter(|&&x| x == 1).count() as f64 / 4000.0;
        assert!((to_1 - 0.875).abs() < 0.03, "{to_1}");
    }

    #[test]
    fn weighted_least_request_divides_weight_by_load() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        // Weights 2:1, idle: effective weights 2/1 and 1/1 → EDF like WRR 2:1.
        let mut b = Balancer::new(cfg(BalancerKind::LeastRequest), &[2, 1]);
        // Deadlines A 0.5, B 1.0 → A (next 1.0; tie with B, B older) → B → A …
        assert_eq!(picks(&mut b, 3, &mut rng), vec![0, 1, 0]);
        // Load host 0 with 3 requests: effective weight 2/4 = 0.5 < host 1's 1.0, so after the
        // rebuild host 1 is picked twice for each pick of host 0.
        for _ in 0..3 {
            b.on_request_start(0);
        }
        b.set_weight(1, 2);
        b.set_weight(1, 1); // force a schedule rebuild with the new loads
        let p = picks(&mut b, 30, &mut rng);
        let to_1 = p.iter().filter(|&&x| x == 1).count();
        assert_eq!(to_1, 20, "{p:?}");
    }

    #[test]
    fn peak_ewma_avoids_a_slow_endpoint_then_retries_it_after_decay() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut b = Balancer::new(cfg(BalancerKind::PeakEwma), &[1, 1]);
        // Host 0 answers in 500 ms (peak replaces the 30 ms default), host 1 in 10 ms.
        b.on_request_start(0);
        b.on_request_end(SECOND, 0, 500 * MILLISECOND);
        b.on_request_start(1);
        b.on_request_end(SECOND, 1, 10 * MILLISECOND);
        assert_eq!(b.rtt_estimate(0), Some(500e6));
        // Host 1: 30 ms default blended with 10 ms after Δt = 1 s, τ = 10 s:
        // 30·e^−0.1 + 10·(1 − e^−0.1) = 27.145 + 0.952 = 28.097 ms.
        let est1 = b.rtt_estimate(1).expect("host 1");
        assert!((est1 / 1e6 - 28.097).abs() < 0.01, "{est1}");
        // Two hosts, two distinct candidates: the cheaper (host 1) always wins.
        for _ in 0..50 {
            assert_eq!(b.pick(SECOND, &mut rng), Some(1));
        }
        // Host 1 gets 20 requests in flight: cost 28·21 ≈ 590 ms > host 0's 500 ms·1.
        for _ in 0..20 {
            b.on_request_start(1);
        }
        assert_eq!(b.pick(SECOND, &mut rng), Some(0));
    }

    #[test]
    fn idle_cost_decays_from_the_default_rtt() {
        let cfg = BalancerConfig::default(); // default RTT 30 ms, τ = 10 s
        let mut e = Balancer::fresh(&cfg, 1, 0);
        let tau = cfg.ewma_decay as f64;
        // Reading at t = 0: no time elapsed, cost = 30 ms × (0 + 1).
        assert_eq!(ewma_cost(&mut e, 0, tau), 30e6);
        // t = 1 s: 30·e^(−0.1) = 27.145 ms.
        let c1 = ewma_cost(&mut e, SECOND, tau);
        assert!((c1 / 1e6 - 27.145).abs() < 0.001, "{c1}");
        // t = 11 s: a further 10 s → 27.145·e^(−1) = 9.986 ms (= 30·e^(−1.1)).
        let c2 = ewma_cost(&mut e, 11 * SECOND, tau);
        assert!((c2 / 1e6 - 9.986).abs() < 0.001, "{c2}");
        // Two requests in flight triple the cost.
        e.active = 2;
        assert!((ewma_cost(&mut e, 11 * SECOND, tau) - 3.0 * c2).abs() < 1e-6);
    }

    #[test]
    fn panic_threshold_balances_across_all_hosts() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let panic_50 = BalancerConfig {
            kind: BalancerKind::RoundRobin,
            panic_threshold_percent: 50.0,
            ..BalancerConfig::default()
        };
        let mut b = Balancer::new(panic_50, &[1, 1, 1, 1]);
        b.set_healthy(0, false);
        b.set_healthy(1, false);
        // 2 of 4 healthy = 50 %, not below 50 → no panic, healthy hosts only.
        assert!(!b.in_panic());
        assert_eq!(picks(&mut b, 4, &mut rng), vec![2, 3, 2, 3]);
        b.set_healthy(2, false);
        // 25 % < 50 % → panic: all four hosts again.
        assert!(b.in_panic());
        assert_eq!(picks(&mut b, 4, &mut rng), vec![0, 1, 2, 3]);

        // Istio's 0 %: never panic; with every host ejected there is no host at all.
        let mut b = Balancer::new(cfg(BalancerKind::RoundRobin), &[1, 1]);
        b.set_healthy(0, false);
        b.set_healthy(1, false);
        assert!(!b.in_panic());
        assert_eq!(b.pick(0, &mut rng), None);
    }

    #[test]
    fn pick_avoiding_skips_previous_hosts() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut b = Balancer::new(cfg(BalancerKind::RoundRobin), &[1, 1, 1]);
        // RR would give 0 first; 0 is avoided → re-pick gives 1.
        assert_eq!(b.pick_avoiding(0, &mut rng, &[0], 5), Some(1));
        // Only one host, already tried: after the attempts the last pick is used anyway.
        let mut one = Balancer::new(cfg(BalancerKind::RoundRobin), &[1]);
        assert_eq!(one.pick_avoiding(0, &mut rng, &[0], 5), Some(0));
    }

    #[test]
    fn endpoints_can_be_added_and_removed() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut b = Balancer::new(cfg(BalancerKind::RoundRobin), &[1, 1]);
        assert_eq!(b.add_endpoint(0, 1), 2);
        assert_eq!(picks(&mut b, 3, &mut rng), vec![0, 1, 2]);
        b.remove_endpoint(0);
        assert_eq!(b.len(), 2);
        assert_eq!(picks(&mut b, 2, &mut rng), vec![0, 1]);
        b.remove_endpoint(7); // ignored
        b.set_weight(0, 0);
        assert_eq!(picks(&mut b, 2, &mut rng), vec![1, 1]);
    }

    fn kind_strategy() -> impl Strategy<Value = BalancerKind> {
        prop_oneof![
            Just(BalancerKind::RoundRobin),
            Just(BalancerKind::LeastRequest),
            Just(BalancerKind::PeakEwma),
        ]
    }

    proptest! {
        #[test]
        fn picks_respect_health_weight_and_range(
            kind in kind_strategy(),
            hosts in prop::collection::vec((0u32..4, any::<bool>()), 1..12),
            panic_threshold in prop_oneof![Just(0.0), Just(50.0), Just(100.0)],
            seed in any::<u64>(),
            ops in prop::collection::vec((0usize..12, 0u64..2_000_000_000), 0..60),
        ) {
            let weights: Vec<u32> = hosts.iter().map(|h| h.0).collect();
            let config = BalancerConfig {
                kind,
                panic_threshold_percent: panic_threshold,
                ..BalancerConfig::default()
            };
            let mut b = Balancer::new(config, &weights);
            for (i, h) in hosts.iter().enumerate() {
                b.set_healthy(i, h.1);
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut now = 0;
            for (i, latency) in ops {
                now += latency / 100;
                let picked = b.pick(now, &mut rng);
                let any_healthy = hosts.iter().any(|h| h.0 > 0 && h.1);
                match picked {
                    Some(p) => {
                        prop_assert!(p < hosts.len(), "index in range");
                        prop_assert!(hosts[p].0 > 0, "weight 0 never chosen");
                        prop_assert!(hosts[p].1 || b.in_panic(), "unhealthy only in panic");
                        b.on_request_start(p);
                        if i % 2 == 0 {
                            b.on_request_end(now, p, latency);
                        }
                    }
                    None => prop_assert!(!any_healthy && !b.in_panic() || weights.iter().all(|&w| w == 0)),
                }
            }
        }
    }
}
