//! Passive health checking: Envoy's consecutive-error and success-rate outlier detection, as a
//! plain state machine on virtual time.
//!
//! # Semantics (Envoy `source/common/upstream/outlier_detection_impl.cc`, arch overview
//! "Outlier detection → Ejection algorithm", Istio `DestinationRule.OutlierDetection`)
//!
//! * **Inline detection.** Every result updates per-host counters. A 5xx, or a local-origin
//!   failure (connect failure, reset, timeout — Envoy maps these to 503/504 when errors are not
//!   split), increments `consecutive_5xx`; a 502/503/504 or a local-origin failure also
//!   increments `consecutive_gateway`; anything else resets both. Ejection is considered the
//!   moment a counter *reaches* its threshold (Envoy tests `++counter == threshold`), not at the
//!   next interval. The counter is then reset whether or not the host was actually ejected, so
//!   another full run of N errors is needed. A host already ejected is not re-ejected (and its
//!   counter is not reset; in-flight results keep counting until un-ejection resets them).
//! * **Max ejection percent.** An ejection is allowed iff
//!   `100 × (ejected + 1) / hosts ≤ maxEjectionPercent` (integer-exact here). With the default
//!   10 % that is 1 host of 10..=19, 2 of 20..=29, and **none with fewer than 10 hosts**. Envoy
//!   ≤ 1.30 documented "at least one host can be ejected regardless"; that was removed and
//!   re-added as the opt-in `always_eject_one_host` (Envoy 1.31), which we implement: when set,
//!   the first ejection is always allowed.
//! * **Enforcement.** `enforcing_*` is the percent chance a detected outlier is ejected; a draw
//!   from the detector's seeded RNG decides (only drawn when the value is below 100, so default
//!   runs consume no randomness).
//! * **Ejection time.** Each host has an ejection multiplier, incremented on every ejection while
//!   `multiplier × base < max + base`. The host is un-ejected at the first interval sweep at
//!   which `min(base × multiplier, max) + jitter ≤ sweep_time − ejected_at`. So with the
//!   defaults, repeated ejections last 30 s, 60 s, 90 s … capped at 300 s.
//! * **Un-ejection only at sweeps.** Hosts return at interval sweeps (every `interval`, 10 s),
//!   not at the exact expiry. An ejection at t = 3 s with 30 s ends at the sweep at t = 40 s.
//! * **Multiplier decay.** At each sweep, every host that is not ejected and was un-ejected at
//!   least one interval ago has its multiplier decremented (down to 0). Envoy does not check
//!   for errors during that interval: "healthy" means "not ejected".
//! * **Counters reset on un-ejection**, so a returning host needs a full fresh run of errors.
//! * **Success rate** (only with [`SuccessRateConfig`] given; Istio never enables it). Every
//!   result also counts in the host's interval bucket (requests, successes; a failure is what
//!   the consecutive-5xx detector counts). At each sweep, after un-ejections and multiplier
//!   decay, every host not ejected with at least `requestVolume` requests in the interval just
//!   ended is *valid*, with success rate `100 × successes / requests`. With at least
//!   `minimumHosts` valid hosts, the threshold is `mean − stdevFactor/1000 × stdev` over the
//!   valid hosts (population standard deviation, Envoy `successRateEjectionThreshold`), and
//!   each valid host strictly below it is ejected through the same path as the consecutive
//!   detectors (max ejection percent, `enforcing`, multiplier), in endpoint order. Buckets
//!   restart empty at every sweep. Envoy's worked example: rates {50, 100, 100, 100, 100} →
//!   mean 90, variance 400, stdev 20, threshold 90 − 1.9 × 20 = 52 → the host at 50 goes.
//!
//! Not modelled: the failure-percentage detector, split local/external errors, active health
//! checks. [`OutlierDetector::set_config`] keeps the detector's state, like an
//! Envoy runtime override; a real CDS update that changes `outlier_detection` rebuilds the
//! cluster's detector from scratch.
//!
//! # Driving it
//!
//! Call [`OutlierDetector::tick`] before feeding results at a later time (the discrete-event
//! loop can schedule it at [`OutlierDetector::next_sweep_at`]); feed every finished attempt to
//! [`OutlierDetector::on_result`] / [`OutlierDetector::on_outcome`], and mirror ejections and
//! un-ejections into the balancer's health.

use crate::config::OutlierConfig;
use crate::time::Nanos;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How an attempt on an endpoint ended, as far as outlier detection cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Any non-5xx response.
    Success,
    /// A 5xx other than 502/503/504.
    ServerError,
    /// 502, 503 or 504.
    GatewayError,
    /// Connect failure, reset or timeout: counts as a gateway error (Envoy maps it to 503/504).
    LocalOriginFailure,
}

impl Outcome {
    /// Classifies an HTTP status code.
    pub fn from_status(code: u16) -> Outcome {
        match code {
            502..=504 => Outcome::GatewayError,
            500..=599 => Outcome::ServerError,
            _ => Outcome::Success,
        }
    }

    fn counts_as_5xx(self) -> bool {
        self != Outcome::Success
    }

    fn counts_as_gateway(self) -> bool {
        matches!(self, Outcome::GatewayError | Outcome::LocalOriginFailure)
    }
}

/// Which detector triggered an ejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectionKind {
    /// `consecutive5xxErrors` reached.
    Consecutive5xx,
    /// `consecutiveGatewayErrors` reached.
    ConsecutiveGatewayFailure,
    /// Success rate below the cluster's threshold at an interval sweep.
    SuccessRate,
}

/// What an interval sweep did to one endpoint, in the order it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepEvent {
    /// The endpoint's ejection ran out: back in service.
    Returned(usize),
    /// The success-rate detector ejected it.
    Ejected(Ejection),
}

/// An ejection that just happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// The ejected endpoint's index.
    pub endpoint: usize,
    /// Which detector fired.
    pub kind: EjectionKind,
    /// When it was ejected.
    pub at: Nanos,
    /// `min(base × multiplier, max) + jitter` at ejection time. The host returns at the first
    /// sweep at or after `at + duration`.
    pub duration: Nanos,
    /// How many times this endpoint has been ejected, this one included.
    pub times_ejected: u32,
}

/// Counters for telemetry (Envoy's `outlier_detection.*` stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutlierStats {
    /// Ejections that took effect (`ejections_enforced_total`).
    pub ejections_enforced: u64,
    /// Detections refused by `maxEjectionPercent` (`ejections_overflow`).
    pub ejections_overflow: u64,
    /// Detections not enforced because the `enforcing_*` draw said no.
    pub ejections_not_enforced: u64,
    /// Hosts returned to service.
    pub unejections: u64,
    /// Success-rate outliers detected (`ejections_detected_success_rate`), enforced or not.
    pub success_rate_detected: u64,
}

#[derive(Debug, Clone, Default)]
struct HostState {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    ejected: bool,
    times_ejected: u32,
    multiplier: u32,
    jitter: Nanos,
    ejected_at: Nanos,
    unejected_at: Option<Nanos>,
    /// Results in the current interval (the success-rate detector's bucket).
    interval_requests: u64,
    /// Of which successes.
    interval_successes: u64,
}

/// Envoy's consecutive-error outlier detector for one cluster (see the module docs).
#[derive(Debug, Clone)]
pub struct OutlierDetector {
    cfg: OutlierConfig,
    hosts: Vec<HostState>,
    ejected: usize,
    next_sweep: Nanos,
    rng: ChaCha8Rng,
    stats: OutlierStats,
}

impl OutlierDetector {
    /// A detector for `n_endpoints` hosts whose first sweep is one interval after t = 0.
    pub fn new(cfg: OutlierConfig, n_endpoints: usize) -> Self {
        Self::new_at(cfg, n_endpoints, 0)
    }

    /// A detector created at `start`: the first sweep is at `start + interval`.
    pub fn new_at(cfg: OutlierConfig, n_endpoints: usize, start: Nanos) -> Self {
        let next_sweep = start.saturating_add(cfg.interval.max(1));
        OutlierDetector {
            cfg,
            hosts: vec![HostState::default(); n_endpoints],
            ejected: 0,
            next_sweep,
            rng: ChaCha8Rng::seed_from_u64(0),
            stats: OutlierStats::default(),
        }
    }

    /// Seeds the RNG used for `enforcing_*` < 100 and ejection jitter.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self
    }

    /// The current configuration.
    pub fn config(&self) -> &OutlierConfig {
        &self.cfg
    }

    /// Replaces the configuration, keeping counters, ejections and multipliers. New thresholds
    /// apply to the next result; a new interval applies after the already scheduled sweep.
    pub fn set_config(&mut self, cfg: OutlierConfig) {
        self.cfg = cfg;
    }

    /// Number of endpoints tracked.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether no endpoints are tracked.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Adds an endpoint (a new pod) at the end; returns its index.
    pub fn add_endpoint(&mut self) -> usize {
        self.hosts.push(HostState::default());
        self.hosts.len() - 1
    }

    /// Removes endpoint `idx`; later indices shift down by one, as with `Vec::remove`.
    /// Out-of-range indices are ignored.
    pub fn remove_endpoint(&mut self, idx: usize) {
        if idx < self.hosts.len() {
            if self.hosts[idx].ejected {
                self.ejected -= 1;
            }
            self.hosts.remove(idx);
        }
    }

    /// Replaces the endpoint set (an EDS update): new endpoint `i` keeps the counters,
    /// ejection and multiplier of old endpoint `sources[i]` (Envoy keeps the host monitors of
    /// hosts that stay), or starts fresh when that is `None` or out of range.
    pub fn remap(&mut self, sources: &[Option<usize>]) {
        let old = std::mem::take(&mut self.hosts);
        self.hosts = sources
            .iter()
            .map(|src| src.and_then(|s| old.get(s)).cloned().unwrap_or_default())
            .collect();
        self.ejected = self.hosts.iter().filter(|h| h.ejected).count();
    }

    /// Whether `idx` is currently ejected (false for out-of-range indices).
    #[inline]
    pub fn is_ejected(&self, idx: usize) -> bool {
        self.hosts.get(idx).is_some_and(|h| h.ejected)
    }

    /// Number of endpoints currently ejected.
    #[inline]
    pub fn ejected_count(&self) -> usize {
        self.ejected
    }

    /// The ejection multiplier of `idx` (0 for a host never ejected or fully decayed).
    pub fn ejection_multiplier(&self, idx: usize) -> u32 {
        self.hosts.get(idx).map_or(0, |h| h.multiplier)
    }

    /// Telemetry counters.
    pub fn stats(&self) -> OutlierStats {
        self.stats
    }

    /// When the next interval sweep runs.
    pub fn next_sweep_at(&self) -> Nanos {
        self.next_sweep
    }

    /// Records a finished attempt as success / 5xx (the brief's boolean form; a failure counts
    /// as a non-gateway 5xx, so it feeds `consecutive5xxErrors` only).
    pub fn on_result(&mut self, now: Nanos, endpoint: usize, success: bool) -> Option<Ejection> {
        let outcome = if success {
            Outcome::Success
        } else {
            Outcome::ServerError
        };
        self.on_outcome(now, endpoint, outcome)
    }

    /// Records a finished attempt; returns the ejection it caused, if any.
    pub fn on_outcome(
        &mut self,
        now: Nanos,
        endpoint: usize,
        outcome: Outcome,
    ) -> Option<Ejection> {
        let cfg_5xx = self.cfg.consecutive_5xx;
        let cfg_gw = self.cfg.consecutive_gateway_errors;
        let host = self.hosts.get_mut(endpoint)?;
        host.interval_requests = host.interval_requests.saturating_add(1);
        if !outcome.counts_as_5xx() {
            host.interval_successes = host.interval_successes.saturating_add(1);
            host.consecutive_5xx = 0;
            host.consecutive_gateway = 0;
            return None;
        }
        let mut gateway_hit = false;
        if outcome.counts_as_gateway() {
            host.consecutive_gateway += 1;
            gateway_hit = host.consecutive_gateway == cfg_gw;
        } else {
            host.consecutive_gateway = 0;
        }
        host.consecutive_5xx += 1;
        let five_xx_hit = host.consecutive_5xx == cfg_5xx;
        // Envoy posts the gateway detection first; if it ejects, the 5xx detection that follows
        // finds the host ejected and does nothing.
        let mut ejection = None;
        if gateway_hit {
            ejection = self.detected(now, endpoint, EjectionKind::ConsecutiveGatewayFailure);
        }
        if five_xx_hit && ejection.is_none() {
            ejection = self.detected(now, endpoint, EjectionKind::Consecutive5xx);
        }
        ejection
    }

    fn detected(&mut self, now: Nanos, idx: usize, kind: EjectionKind) -> Option<Ejection> {
        if self.hosts[idx].ejected {
            return None;
        }
        let ejection = self.try_eject(now, idx, kind);
        let host = &mut self.hosts[idx];
        match kind {
            EjectionKind::Consecutive5xx => host.consecutive_5xx = 0,
            EjectionKind::ConsecutiveGatewayFailure => host.consecutive_gateway = 0,
            // Detected only at sweeps, never through this inline path.
            EjectionKind::SuccessRate => {}
        }
        ejection
    }

    fn ejection_allowed(&self) -> bool {
        let n = self.hosts.len() as u64;
        // 100·(ejected+1)/n ≤ max%  ⇔  100·(ejected+1) ≤ max%·n, without rounding.
        let within =
            100 * (self.ejected as u64 + 1) <= u64::from(self.cfg.max_ejection_percent) * n;
        within || (self.cfg.always_eject_one_host && self.ejected == 0)
    }

    fn enforced(&mut self, kind: EjectionKind) -> bool {
        let percent = match kind {
            EjectionKind::Consecutive5xx => self.cfg.enforcing_consecutive_5xx,
            EjectionKind::ConsecutiveGatewayFailure => {
                self.cfg.enforcing_consecutive_gateway_errors
            }
            EjectionKind::SuccessRate => self.cfg.success_rate.as_ref().map_or(0, |s| s.enforcing),
        };
        if percent >= 100 {
            return true;
        }
        // Envoy's runtime `featureEnabled(key, percent)`: random % 100 < percent.
        self.rng.next_u64() % 100 < u64::from(percent)
    }

    fn try_eject(&mut self, now: Nanos, idx: usize, kind: EjectionKind) -> Option<Ejection> {
        if !self.ejection_allowed() {
            self.stats.ejections_overflow += 1;
            return None;
        }
        if !self.enforced(kind) {
            self.stats.ejections_not_enforced += 1;
            return None;
        }
        let jitter = match self.cfg.max_ejection_time_jitter {
            0 => 0,
            j => self.rng.next_u64() % (j + 1),
        };
        let base = self.cfg.base_ejection_time;
        let max = self.cfg.max_ejection_time;
        let host = &mut self.hosts[idx];
        host.ejected = true;
        host.times_ejected += 1;
        host.ejected_at = now;
        host.jitter = jitter;
        if u64::from(host.multiplier).saturating_mul(base) < max.saturating_add(base) {
            host.multiplier += 1;
        }
        let duration = ejection_time(base, max, host.multiplier).saturating_add(jitter);
        let times_ejected = host.times_ejected;
        self.ejected += 1;
        self.stats.ejections_enforced += 1;
        Some(Ejection {
            endpoint: idx,
            kind,
            at: now,
            duration,
            times_ejected,
        })
    }

    /// Runs every interval sweep due at or before `now`; returns the endpoints un-ejected, in
    /// index order per sweep. Calling it again at the same `now` does nothing.
    ///
    /// With the success-rate detector on, sweeps also eject, and this form does not say whom:
    /// a caller mirroring health into a balancer uses [`OutlierDetector::sweep_until`] (as
    /// [`crate::cluster::Cluster`] does).
    pub fn tick(&mut self, now: Nanos) -> Vec<usize> {
        self.sweep_until(now)
            .into_iter()
            .filter_map(|e| match e {
                SweepEvent::Returned(idx) => Some(idx),
                SweepEvent::Ejected(_) => None,
            })
            .collect()
    }

    /// Runs every interval sweep due at or before `now`; returns what they did, in order
    /// (per sweep: un-ejections in index order, then success-rate ejections in index order).
    /// Calling it again at the same `now` does nothing.
    pub fn sweep_until(&mut self, now: Nanos) -> Vec<SweepEvent> {
        let mut events = Vec::new();
        while self.next_sweep <= now {
            let at = self.next_sweep;
            self.sweep(at, &mut events);
            self.next_sweep = at.saturating_add(self.cfg.interval.max(1));
        }
        events
    }

    fn sweep(&mut self, at: Nanos, events: &mut Vec<SweepEvent>) {
        let base = self.cfg.base_ejection_time;
        let max = self.cfg.max_ejection_time;
        let interval = self.cfg.interval;
        for (idx, host) in self.hosts.iter_mut().enumerate() {
            if host.ejected {
                let due = ejection_time(base, max, host.multiplier).saturating_add(host.jitter);
                if due <= at.saturating_sub(host.ejected_at) {
                    host.ejected = false;
                    host.consecutive_5xx = 0;
                    host.consecutive_gateway = 0;
                    host.unejected_at = Some(at);
                    self.ejected -= 1;
                    self.stats.unejections += 1;
                    events.push(SweepEvent::Returned(idx));
                }
            }
        }
        for host in self.hosts.iter_mut().filter(|h| !h.ejected) {
            if let Some(u) = host.unejected_at
                && at.saturating_sub(u) >= interval
                && host.multiplier > 0
            {
                host.multiplier -= 1;
            }
        }
        self.success_rate_sweep(at, events);
    }

    /// The success-rate half of a sweep (see the module docs). Envoy's order: un-ejection and
    /// decay first, then success rate, so a host returned at this sweep can be judged on
    /// results that arrived while it was out (in-flight attempts).
    fn success_rate_sweep(&mut self, at: Nanos, events: &mut Vec<SweepEvent>) {
        // The interval's buckets are emptied whether or not the detector is on, so turning it
        // on later judges one fresh interval, never stale counts.
        let sr = self.cfg.success_rate.clone();
        // Envoy skips hosts with no requests whatever the configured volume.
        let volume = sr
            .as_ref()
            .map_or(u64::MAX, |s| u64::from(s.request_volume).max(1));
        let mut valid: Vec<(usize, f64)> = Vec::new();
        for (idx, h) in self.hosts.iter_mut().enumerate() {
            let requests = std::mem::take(&mut h.interval_requests);
            let successes = std::mem::take(&mut h.interval_successes);
            if !h.ejected && requests >= volume {
                valid.push((idx, successes as f64 * 100.0 / requests as f64));
            }
        }
        let Some(sr) = sr else {
            return;
        };
        if valid.is_empty() || valid.len() < sr.minimum_hosts as usize {
            return;
        }
        let rates: Vec<f64> = valid.iter().map(|&(_, r)| r).collect();
        let threshold = success_rate_threshold(&rates, sr.stdev_factor);
        for (idx, rate) in valid {
            if rate < threshold {
                self.stats.success_rate_detected += 1;
                if let Some(e) = self.try_eject(at, idx, EjectionKind::SuccessRate) {
                    events.push(SweepEvent::Ejected(e));
                }
            }
        }
    }
}

/// Envoy's success-rate ejection threshold (`DetectorImpl::successRateEjectionThreshold`):
/// `mean − stdev_factor/1000 × stdev` of `rates` (percentages), with the population standard
/// deviation (variance divided by the number of hosts, not n − 1). `NaN` for no rates.
pub fn success_rate_threshold(rates: &[f64], stdev_factor: u32) -> f64 {
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let variance = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    mean - f64::from(stdev_factor) / 1000.0 * variance.sqrt()
}

fn ejection_time(base: Nanos, max: Nanos, multiplier: u32) -> Nanos {
    base.saturating_mul(u64::from(multiplier)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SuccessRateConfig;
    use crate::time::SECOND;

    fn fail_n(d: &mut OutlierDetector, now: Nanos, idx: usize, n: u32) -> Option<Ejection> {
        let mut last = None;
        for _ in 0..n {
            if let Some(e) = d.on_result(now, idx, false) {
                last = Some(e);
            }
        }
        last
    }

    #[test]
    fn ejects_on_exactly_the_nth_consecutive_5xx() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 10);
        // Four 5xx: below the threshold of 5, nothing happens.
        assert_eq!(fail_n(&mut d, 0, 3, 4), None);
        assert!(!d.is_ejected(3));
        // The fifth, at t = 1 s, ejects immediately (inline, not at the 10 s sweep).
        let e = d
            .on_result(SECOND, 3, false)
            .expect("5th consecutive 5xx ejects");
        assert_eq!(e.endpoint, 3);
        assert_eq!(e.kind, EjectionKind::Consecutive5xx);
        assert_eq!(e.at, SECOND);
        // First ejection: multiplier 1 → 1 × 30 s.
        assert_eq!(e.duration, 30 * SECOND);
        assert_eq!(e.times_ejected, 1);
        assert!(d.is_ejected(3));
        assert_eq!(d.ejected_count(), 1);
    }

    #[test]
    fn a_success_resets_the_run() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 10);
        // 4 failures, a success, 4 failures: the longest run is 4 < 5.
        assert_eq!(fail_n(&mut d, 0, 0, 4), None);
        assert_eq!(d.on_result(0, 0, true), None);
        assert_eq!(fail_n(&mut d, 0, 0, 4), None);
        assert!(!d.is_ejected(0));
        // One more makes a run of 5.
        assert!(d.on_result(0, 0, false).is_some());
    }

    #[test]
    fn max_ejection_percent_caps_ejections() {
        // 10 hosts, 10 %: first ejection 100·1/10 = 10 ≤ 10 ok; second 100·2/10 = 20 > 10 refused.
        let mut d = OutlierDetector::new(OutlierConfig::default(), 10);
        assert!(fail_n(&mut d, 0, 0, 5).is_some());
        assert_eq!(fail_n(&mut d, 0, 1, 5), None);
        assert_eq!(d.ejected_count(), 1);
        assert_eq!(d.stats().ejections_overflow, 1);
        // The refused detection reset host 1's run: 4 more errors do not eject even though the
        // lone ejected host is still out.
        assert_eq!(fail_n(&mut d, 0, 1, 4), None);

        // 20 hosts, 10 %: 100·2/20 = 10 ≤ 10 → two ejections; the third (15 %) is refused.
        let mut d = OutlierDetector::new(OutlierConfig::default(), 20);
        for h in 0..3 {
            fail_n(&mut d, 0, h, 5);
        }
        assert_eq!(d.ejected_count(), 2);
    }

    #[test]
    fn fewer_than_ten_hosts_eject_nothing_at_ten_percent_unless_always_eject_one() {
        // 5 hosts: 100·1/5 = 20 > 10 → even the first ejection is refused (Envoy ≥ 1.31).
        let mut d = OutlierDetector::new(OutlierConfig::default(), 5);
        assert_eq!(fail_n(&mut d, 0, 2, 5), None);
        assert_eq!(d.ejected_count(), 0);

        let cfg = OutlierConfig {
            always_eject_one_host: true,
            ..OutlierConfig::default()
        };
        let mut d = OutlierDetector::new(cfg, 5);
        assert!(
            fail_n(&mut d, 0, 2, 5).is_some(),
            "first ejection always allowed"
        );
        assert_eq!(fail_n(&mut d, 0, 3, 5), None, "second is over the cap");
        assert_eq!(d.ejected_count(), 1);
    }

    #[test]
    fn ejection_time_grows_30_60_90_and_unejection_happens_at_sweeps() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 10);
        // Sweeps run at 10 s, 20 s, 30 s, … Eject at t = 0 for 30 s.
        let e = fail_n(&mut d, 0, 0, 5).expect("first ejection");
        assert_eq!(e.duration, 30 * SECOND);
        assert_eq!(
            d.tick(20 * SECOND),
            Vec::<usize>::new(),
            "20 s < 30 s: still out"
        );
        assert_eq!(
            d.tick(30 * SECOND),
            vec![0],
            "30 ≤ 30 − 0: back at the 30 s sweep"
        );
        assert!(!d.is_ejected(0));
        // Fails again right away (before the 40 s sweep could decay the multiplier):
        // multiplier 2 → 60 s; back at the sweep at 30 + 60 = 90 s.
        let e = fail_n(&mut d, 30 * SECOND, 0, 5).expect("second ejection");
        assert_eq!(e.duration, 60 * SECOND);
        assert_eq!(e.times_ejected, 2);
        assert!(d.tick(80 * SECOND).is_empty());
        assert_eq!(d.tick(90 * SECOND), vec![0]);
        // Third: 90 s; back at 90 + 90 = 180 s.
        let e = fail_n(&mut d, 90 * SECOND, 0, 5).expect("third ejection");
        assert_eq!(e.duration, 90 * SECOND);
        assert!(d.tick(170 * SECOND).is_empty());
        assert_eq!(d.tick(180 * SECOND), vec![0]);
    }

    #[test]
    fn ejection_time_is_capped_at_max_ejection_time() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 10);
        // Eject repeatedly, each time right after the sweep that returns the host. The
        // multiplier grows while m·30 < 300 + 30, i.e. up to 11; time = min(m·30, 300).
        let expected = [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300];
        let mut now = 0;
        for (i, secs) in expected.iter().enumerate() {
            let e = fail_n(&mut d, now, 0, 5).expect("re-ejection");
            assert_eq!(e.duration, secs * SECOND, "ejection #{}", i + 1);
            // Ejections start on sweep boundaries, so the host is back exactly at expiry.
            now += secs * SECOND;
            assert_eq!(d.tick(now), vec![0]);
        }
        assert_eq!(d.ejection_multiplier(0), 11);
    }

    #[test]
    fn unejection_waits_for_the_next_sweep_after_expiry() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 10);
        // Ejected at 3 s for 30 s: expires at 33 s, but sweeps are at 30 s and 40 s.
        fail_n(&mut d, 3 * SECOND, 0, 5).expect("ejection");
        assert!(
            d.tick(39 * SECOND).is_empty(),
            "30 s sweep: 27 s elapsed < 30 s"
        );
        assert_eq!(
            d.tick(40 * SECOND),
            vec![0],
            "40 s sweep: 37 s elapsed ≥ 30 s"
        );
    }

    #[test]
    fn multiplier_decays_by_one_per_healthy_interval() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 10);
        fail_n(&mut d, 0, 0, 5).expect("first");
        d.tick(30 * SECOND);
        fail_n(&mut d, 30 * SECOND, 0, 5).expect("second");
        d.tick(90 * SECOND); // back at 90 s with multiplier 2
        assert_eq!(d.ejection_multiplier(0), 2);
        // 90 s sweep: 0 s since un-ejection, no decay. 100 s: 10 s ≥ 10 s → 1. 110 s → 0.
        d.tick(100 * SECOND);
        assert_eq!(d.ejection_multiplier(0), 1);
        d.tick(110 * SECOND);
        assert_eq!(d.ejection_multiplier(0), 0);
        d.tick(200 * SECOND);
        assert_eq!(d.ejection_multiplier(0), 0, "never below zero");
        // Fully decayed: the next ejection is back to the base 30 s.
        let e = fail_n(&mut d, 200 * SECOND, 0, 5).expect("third");
        assert_eq!(e.duration, 30 * SECOND);
    }

    #[test]
    fn counters_reset_on_unejection_and_ejected_hosts_are_not_reejected() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 10);
        fail_n(&mut d, 0, 0, 5).expect("ejection");
        // In-flight failures while ejected: no second ejection.
        assert_eq!(fail_n(&mut d, SECOND, 0, 10), None);
        assert_eq!(d.stats().ejections_enforced, 1);
        d.tick(30 * SECOND);
        // Back in service with fresh counters: 4 errors are not enough.
        assert_eq!(fail_n(&mut d, 30 * SECOND, 0, 4), None);
        assert!(d.on_result(30 * SECOND, 0, false).is_some());
    }

    #[test]
    fn gateway_errors_eject_when_enabled() {
        let cfg = OutlierConfig {
            consecutive_gateway_errors: 3,
            ..OutlierConfig::default()
        };
        let mut d = OutlierDetector::new(cfg, 10);
        assert_eq!(d.on_outcome(0, 1, Outcome::from_status(503)), None);
        assert_eq!(d.on_outcome(0, 1, Outcome::LocalOriginFailure), None);
        let e = d
            .on_outcome(0, 1, Outcome::GatewayError)
            .expect("third gateway error");
        assert_eq!(e.kind, EjectionKind::ConsecutiveGatewayFailure);
        // A 500 breaks a gateway run but continues a 5xx run.
        let mut d = OutlierDetector::new(
            OutlierConfig {
                consecutive_gateway_errors: 3,
                ..OutlierConfig::default()
            },
            10,
        );
        d.on_outcome(0, 1, Outcome::GatewayError);
        d.on_outcome(0, 1, Outcome::GatewayError);
        d.on_outcome(0, 1, Outcome::from_status(500));
        assert_eq!(d.on_outcome(0, 1, Outcome::GatewayError), None);
        // 5xx run is now 4; the 5th 5xx of any kind ejects via consecutive 5xx.
        let e = d.on_outcome(0, 1, Outcome::ServerError).expect("5th 5xx");
        assert_eq!(e.kind, EjectionKind::Consecutive5xx);
    }

    #[test]
    fn zero_thresholds_disable_detection_and_enforcing_zero_never_ejects() {
        let cfg = OutlierConfig {
            consecutive_5xx: 0,
            ..OutlierConfig::default()
        };
        let mut d = OutlierDetector::new(cfg, 10);
        assert_eq!(fail_n(&mut d, 0, 0, 100), None);

        let cfg = OutlierConfig {
            enforcing_consecutive_5xx: 0,
            ..OutlierConfig::default()
        };
        let mut d = OutlierDetector::new(cfg, 10).with_seed(7);
        assert_eq!(fail_n(&mut d, 0, 0, 50), None);
        // 50 failures = 10 detections, none enforced.
        assert_eq!(d.stats().ejections_not_enforced, 10);
    }

    #[test]
    fn jitter_extends_ejection_within_bounds_and_is_seeded() {
        let cfg = OutlierConfig {
            max_ejection_time_jitter: 5 * SECOND,
            ..OutlierConfig::default()
        };
        let run = |seed| {
            let mut d = OutlierDetector::new(cfg.clone(), 10).with_seed(seed);
            fail_n(&mut d, 0, 0, 5).expect("ejection").duration
        };
        let a = run(1);
        assert!((30 * SECOND..=35 * SECOND).contains(&a), "{a}");
        assert_eq!(a, run(1), "same seed, same jitter");
    }

    fn success_rate_on(max_ejection_percent: u32) -> OutlierConfig {
        OutlierConfig {
            max_ejection_percent,
            success_rate: Some(SuccessRateConfig::default()),
            ..OutlierConfig::default()
        }
    }

    /// `n` results on `idx` at `now`, `ok` of them successes, interleaved (success first) so
    /// that no run of failures is longer than the gaps allow: with `ok ≥ n − ok` no two
    /// failures are adjacent and the consecutive-5xx detector (5) never fires.
    fn results(d: &mut OutlierDetector, now: Nanos, idx: usize, n: u64, ok: u64) {
        let fail = n - ok;
        for k in 0..n {
            let success = k >= 2 * fail || k % 2 == 0;
            assert!(d.on_result(now, idx, success).is_none());
        }
    }

    /// One interval's traffic: host `i` answers `ok[i]` of 100 requests (see [`results`]).
    fn interval(d: &mut OutlierDetector, now: Nanos, ok: &[u64]) {
        for (idx, &ok) in ok.iter().enumerate() {
            results(d, now, idx, 100, ok);
        }
    }

    #[test]
    fn success_rate_threshold_is_envoys_worked_example() {
        // Envoy's comment in successRateEjectionThreshold: {50, 100, 100, 100, 100} → sum 450,
        // mean 90, variance (40² + 4·10²)/5 = 400, stdev 20, threshold 90 − 1.9·20 = 52.
        let t = success_rate_threshold(&[50.0, 100.0, 100.0, 100.0, 100.0], 1900);
        assert!((t - 52.0).abs() < 1e-9, "{t}");
        // Factor 1000 (one stdev): 90 − 20 = 70.
        let t = success_rate_threshold(&[50.0, 100.0, 100.0, 100.0, 100.0], 1000);
        assert!((t - 70.0).abs() < 1e-9, "{t}");
        // All equal: stdev 0, threshold = mean, nobody is strictly below it.
        assert_eq!(success_rate_threshold(&[97.0; 6], 1900), 97.0);
    }

    #[test]
    fn success_rate_ejects_the_host_below_mean_minus_1_9_stdev_at_the_sweep() {
        let mut d = OutlierDetector::new(success_rate_on(100), 5);
        // Interval [0, 10 s): hosts 0..3 answer 100 of 100, host 4 50 of 100 (alternating, so
        // consecutive 5xx never reaches 5). Rates {100, 100, 100, 100, 50} → threshold 52
        // (Envoy's example above): host 4 is an outlier.
        interval(&mut d, SECOND, &[100, 100, 100, 100, 50]);
        assert!(!d.is_ejected(4), "nothing happens between sweeps");
        let events = d.sweep_until(10 * SECOND);
        assert_eq!(
            events,
            vec![SweepEvent::Ejected(Ejection {
                endpoint: 4,
                kind: EjectionKind::SuccessRate,
                at: 10 * SECOND,
                // First ejection: multiplier 1 × 30 s.
                duration: 30 * SECOND,
                times_ejected: 1,
            })]
        );
        assert!(d.is_ejected(4));
        assert_eq!(d.stats().success_rate_detected, 1);
        assert_eq!(d.stats().ejections_enforced, 1);
        // Back at the 40 s sweep (10 + 30); the intervals in between had no traffic, so no
        // host is valid and nothing else happens.
        assert!(d.sweep_until(30 * SECOND).is_empty());
        assert_eq!(d.sweep_until(40 * SECOND), vec![SweepEvent::Returned(4)]);
    }

    #[test]
    fn a_single_outlier_among_five_is_always_below_the_threshold() {
        // Four hosts at 100 %, one at 100 − d: mean 100 − d/5, variance
        // ((4d/5)² + 4(d/5)²)/5 = 4d²/25, stdev 2d/5, threshold 100 − d/5 − 1.9·2d/5
        // = 100 − 0.96·d > 100 − d. So even 99 of 100 (d = 1, threshold 99.04) is ejected.
        let mut d = OutlierDetector::new(success_rate_on(100), 5);
        interval(&mut d, 0, &[100, 100, 100, 100, 99]);
        let events = d.sweep_until(10 * SECOND);
        assert!(
            matches!(
                events[..],
                [SweepEvent::Ejected(Ejection { endpoint: 4, .. })]
            ),
            "{events:?}"
        );
    }

    #[test]
    fn two_equal_outliers_hide_each_other() {
        // Rates {100, 100, 100, 90, 90}: mean 96, deviations 4, 4, 4, −6, −6, variance
        // (3·16 + 2·36)/5 = 24, stdev √24 ≈ 4.899, threshold 96 − 1.9·4.899 ≈ 86.69 < 90.
        let mut d = OutlierDetector::new(success_rate_on(100), 5);
        interval(&mut d, 0, &[100, 100, 100, 90, 90]);
        assert!(d.sweep_until(10 * SECOND).is_empty());
        assert_eq!(d.stats().success_rate_detected, 0);
    }

    #[test]
    fn too_little_volume_or_too_few_hosts_judges_nobody() {
        let mut d = OutlierDetector::new(success_rate_on(100), 5);
        // Host 0 has 99 requests < the volume of 100: only 4 valid hosts < the minimum of 5,
        // so host 4 at 50 % is not judged although it would be an outlier among the four.
        results(&mut d, 0, 0, 99, 99);
        for idx in 1..4 {
            results(&mut d, 0, idx, 100, 100);
        }
        results(&mut d, 0, 4, 100, 50);
        assert!(d.sweep_until(10 * SECOND).is_empty());
        // Buckets restart at every sweep: the next interval with 1 more request on host 0 is
        // still 1 < 100, not 100.
        results(&mut d, 11 * SECOND, 0, 1, 1);
        for idx in 1..4 {
            results(&mut d, 11 * SECOND, idx, 100, 100);
        }
        results(&mut d, 11 * SECOND, 4, 100, 50);
        assert!(d.sweep_until(20 * SECOND).is_empty());
        // Without the detector configured the buckets are kept empty too.
        let mut d = OutlierDetector::new(OutlierConfig::default(), 5);
        interval(&mut d, 0, &[100, 100, 100, 100, 50]);
        assert!(d.sweep_until(10 * SECOND).is_empty());
        // Turned on after that sweep: the old interval is forgotten, the empty one judges nobody.
        d.set_config(success_rate_on(100));
        assert!(d.sweep_until(20 * SECOND).is_empty());
    }

    #[test]
    fn success_rate_ejection_obeys_max_ejection_percent_and_enforcing() {
        // Default 10 % of 5 hosts: 100·1/5 = 20 > 10 → detected, refused as overflow.
        let mut d = OutlierDetector::new(success_rate_on(10), 5);
        interval(&mut d, 0, &[100, 100, 100, 100, 50]);
        assert!(d.sweep_until(10 * SECOND).is_empty());
        assert_eq!(d.stats().success_rate_detected, 1);
        assert_eq!(d.stats().ejections_overflow, 1);
        assert_eq!(d.ejected_count(), 0);
        // enforcing 0: detected, never ejected.
        let mut cfg = success_rate_on(100);
        cfg.success_rate = Some(SuccessRateConfig {
            enforcing: 0,
            ..SuccessRateConfig::default()
        });
        assert!(!cfg.is_off(), "consecutive 5xx is still on");
        let mut d = OutlierDetector::new(cfg, 5);
        interval(&mut d, 0, &[100, 100, 100, 100, 50]);
        assert!(d.sweep_until(10 * SECOND).is_empty());
        assert_eq!(d.stats().ejections_not_enforced, 1);
    }

    #[test]
    fn hosts_already_ejected_are_left_out_of_the_mean() {
        // Six hosts, max 100 %. Host 5 is ejected by consecutive 5xx at 1 s (5 failures); its
        // results are not judged. Hosts 0..3 at 100 %, host 4 at 50 %: the five valid hosts
        // give the worked example's threshold 52, so host 4 goes too. Had host 5's 0 % counted,
        // rates {100 ×4, 50, 0} → mean 75, variance (4·625 + 625 + 5625)/6 = 1458.3,
        // stdev 38.19, threshold 75 − 72.56 = 2.44: host 4 would have stayed.
        let mut d = OutlierDetector::new(success_rate_on(100), 6);
        assert!(fail_n(&mut d, SECOND, 5, 5).is_some());
        fail_n(&mut d, SECOND, 5, 95);
        interval(&mut d, SECOND, &[100, 100, 100, 100, 50]);
        let events = d.sweep_until(10 * SECOND);
        assert!(
            matches!(
                events[..],
                [SweepEvent::Ejected(Ejection {
                    endpoint: 4,
                    kind: EjectionKind::SuccessRate,
                    ..
                })]
            ),
            "{events:?}"
        );
    }

    #[test]
    fn endpoints_can_be_added_and_removed() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 9);
        // 9 hosts at 10 %: nothing can be ejected (100/9 ≈ 11 > 10).
        assert_eq!(fail_n(&mut d, 0, 0, 5), None);
        assert_eq!(d.add_endpoint(), 9);
        // 10 hosts: one ejection allowed.
        assert!(fail_n(&mut d, 0, 4, 5).is_some());
        d.remove_endpoint(4);
        assert_eq!(d.ejected_count(), 0);
        assert_eq!(d.len(), 9);
        assert!(!d.is_ejected(4));
        d.remove_endpoint(100); // ignored
        assert_eq!(d.on_result(0, 100, false), None, "out of range is ignored");
    }
}
