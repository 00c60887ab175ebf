//! One client-side proxy cluster (caller → one subset of a service): endpoint choice, passive
//! health checking and the retry budget. The engine talks only to this adapter, so the data
//! plane's state machines plug in here.

use homeostat_dataplane::config::{OutlierConfig, RetryLimit};
use homeostat_dataplane::outlier::{Outcome, OutlierDetector};
use rand::Rng;

#[derive(Debug, Clone, Copy)]
struct Host {
    pod: u32,
    active: u32,
}

/// Client-side state of one caller → subset cluster. Host `i` is endpoint `i` of the outlier
/// detector.
#[derive(Debug, Clone)]
pub struct Cluster {
    hosts: Vec<Host>,
    outlier: OutlierDetector,
    limit: RetryLimit,
    pub active_requests: u32,
    pub active_retries: u32,
}

impl Cluster {
    pub fn new(outlier: OutlierConfig, limit: RetryLimit, seed: u64) -> Cluster {
        Cluster {
            hosts: Vec::new(),
            outlier: OutlierDetector::new(outlier, 0).with_seed(seed),
            limit,
            active_requests: 0,
            active_retries: 0,
        }
    }

    pub fn set_outlier(&mut self, cfg: OutlierConfig) {
        self.outlier.set_config(cfg);
    }
    pub fn set_limit(&mut self, limit: RetryLimit) {
        self.limit = limit;
    }

    /// Replaces the endpoint set (EDS update), keeping the state of endpoints that stay.
    pub fn set_endpoints(&mut self, pods: &[u32]) {
        for i in (0..self.hosts.len()).rev() {
            if !pods.contains(&self.hosts[i].pod) {
                self.hosts.remove(i);
                self.outlier.remove_endpoint(i);
            }
        }
        for &p in pods {
            if !self.hosts.iter().any(|h| h.pod == p) {
                self.hosts.push(Host { pod: p, active: 0 });
                self.outlier.add_endpoint();
            }
        }
    }

    /// Least request, power of two choices among hosts not ejected (Istio's default balancer;
    /// Istio's panic threshold 0 % means an all-ejected cluster still only uses healthy hosts,
    /// i.e. none).
    #[inline]
    pub fn pick<R: Rng>(&mut self, rng: &mut R, avoid: Option<u32>) -> Option<u32> {
        let n = self.hosts.len();
        if n == 0 {
            return None;
        }
        let mut best: Option<usize> = None;
        for _ in 0..2 {
            let i = rng.random_range(0..n);
            if self.outlier.is_ejected(i) || (n > 1 && Some(self.hosts[i].pod) == avoid) {
                continue;
            }
            best = match best {
                Some(b) if self.hosts[b].active <= self.hosts[i].active => Some(b),
                _ => Some(i),
            };
        }
        let i = match best {
            Some(i) => i,
            None => (0..n).find(|&i| !self.outlier.is_ejected(i))?,
        };
        self.hosts[i].active += 1;
        Some(self.hosts[i].pod)
    }

    /// A try's result; returns true when it caused an ejection.
    pub fn on_result(&mut self, now: u64, pod: u32, fail: Option<Fail>) -> bool {
        let Some(i) = self.hosts.iter().position(|h| h.pod == pod) else {
            return false;
        };
        self.hosts[i].active = self.hosts[i].active.saturating_sub(1);
        let outcome = match fail {
            None => Outcome::Success,
            Some(Fail::Status(code)) => Outcome::from_status(code),
            Some(_) => Outcome::LocalOriginFailure,
        };
        self.outlier.on_outcome(now, i, outcome).is_some()
    }

    /// Interval sweeps due by `now` (un-ejections).
    pub fn sweep(&mut self, now: u64) {
        self.outlier.tick(now);
    }

    pub fn next_sweep_at(&self) -> u64 {
        self.outlier.next_sweep_at()
    }

    pub fn ejected(&self) -> usize {
        self.outlier.ejected_count()
    }

    /// Whether one more concurrent retry fits the retry limit.
    pub fn retry_allowed(&self) -> bool {
        match &self.limit.budget {
            Some(b) => {
                let cap = ((b.budget_percent / 100.0) * self.active_requests as f64)
                    .max(b.min_retry_concurrency as f64);
                (self.active_retries as f64) < cap
            }
            None => self.active_retries < self.limit.max_retries,
        }
    }
}

/// Why a try failed, as the caller's proxy tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// The upstream answered with this 5xx.
    Status(u16),
    /// The connection was refused (pod down).
    ConnectFailure,
    /// The upstream reset the stream mid-request (pod crashed).
    Reset,
    /// The per-try timeout fired.
    PerTryTimeout,
    /// No endpoint to send to: a local 503 that is never retried.
    NoHealthyUpstream,
}

/// Envoy's `retry_on` semantics for the failures the simulator produces.
pub fn retryable(on: &homeostat_dataplane::config::RetryOn, f: Fail) -> bool {
    use homeostat_dataplane::config::RetryCondition as C;
    let any = |cs: &[C]| cs.iter().any(|&c| on.contains(c));
    match f {
        Fail::Status(code) => {
            (code >= 500 && on.contains(C::FiveXx))
                || ((502..=504).contains(&code) && on.contains(C::GatewayError))
                || (on.contains(C::RetriableStatusCodes) && on.status_codes().contains(&code))
        }
        Fail::ConnectFailure => any(&[C::ConnectFailure, C::FiveXx, C::GatewayError]),
        Fail::Reset => any(&[C::Reset, C::FiveXx, C::GatewayError]),
        Fail::PerTryTimeout => any(&[C::FiveXx, C::GatewayError, C::Reset]),
        Fail::NoHealthyUpstream => false,
    }
}
