//! One client-side proxy cluster (caller → one subset of a service): endpoint choice, passive
//! health checking and the retry budget. The engine talks only to this adapter, so the data
//! plane's state machines plug in here.

use homeostat_dataplane::config::{OutlierConfig, RetryLimit};
use rand::Rng;

/// Per-endpoint state of one cluster.
#[derive(Debug, Clone, Default)]
struct Host {
    pod: u32,
    active: u32,
    consecutive_5xx: u32,
    ejected_at: Option<u64>,
    multiplier: u32,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    hosts: Vec<Host>,
    outlier: OutlierConfig,
    limit: RetryLimit,
    pub active_requests: u32,
    pub active_retries: u32,
    last_sweep: u64,
}

impl Cluster {
    pub fn new(outlier: OutlierConfig, limit: RetryLimit) -> Cluster {
        Cluster {
            hosts: Vec::new(),
            outlier,
            limit,
            active_requests: 0,
            active_retries: 0,
            last_sweep: 0,
        }
    }

    pub fn set_outlier(&mut self, cfg: OutlierConfig) {
        self.outlier = cfg;
    }
    pub fn set_limit(&mut self, limit: RetryLimit) {
        self.limit = limit;
    }

    /// Replaces the endpoint set (EDS update), keeping state of endpoints that stay.
    pub fn set_endpoints(&mut self, pods: &[u32]) {
        let old = std::mem::take(&mut self.hosts);
        self.hosts = pods
            .iter()
            .map(|&p| {
                old.iter()
                    .find(|h| h.pod == p)
                    .cloned()
                    .unwrap_or(Host {
                        pod: p,
                        ..Host::default()
                    })
            })
            .collect();
    }

    /// Least request, power of two choices among non-ejected hosts.
    #[inline]
    pub fn pick<R: Rng>(&mut self, rng: &mut R, avoid: Option<u32>) -> Option<u32> {
        let n = self.hosts.len();
        if n == 0 {
            return None;
        }
        let mut best: Option<usize> = None;
        for _ in 0..2 {
            let i = rng.random_range(0..n);
            let h = &self.hosts[i];
            if h.ejected_at.is_some() || (n > 1 && Some(h.pod) == avoid) {
                continue;
            }
            best = match best {
                Some(b) if self.hosts[b].active <= h.active => Some(b),
                _ => Some(i),
            };
        }
        let i = match best {
            Some(i) => i,
            None => (0..n).find(|&i| self.hosts[i].ejected_at.is_none())?,
        };
        self.hosts[i].active += 1;
        Some(self.hosts[i].pod)
    }

    /// A try's result; returns true when it caused an ejection.
    pub fn on_result(&mut self, now: u64, pod: u32, failed: bool) -> bool {
        let total = self.hosts.len();
        let ejected = self.hosts.iter().filter(|h| h.ejected_at.is_some()).count();
        let Some(h) = self.hosts.iter_mut().find(|h| h.pod == pod) else {
            return false;
        };
        h.active = h.active.saturating_sub(1);
        if !failed {
            h.consecutive_5xx = 0;
            return false;
        }
        h.consecutive_5xx += 1;
        let k = self.outlier.consecutive_5xx;
        if k == 0 || h.consecutive_5xx != k || h.ejected_at.is_some() {
            return false;
        }
        h.consecutive_5xx = 0;
        if 100 * (ejected + 1) > self.outlier.max_ejection_percent as usize * total {
            return false;
        }
        h.ejected_at = Some(now);
        h.multiplier += 1;
        true
    }

    /// Interval sweep: un-ejects hosts whose time is up.
    pub fn sweep(&mut self, now: u64) {
        if now < self.last_sweep + self.outlier.interval {
            return;
        }
        self.last_sweep = now;
        let (base, max) = (
            self.outlier.base_ejection_time,
            self.outlier.max_ejection_time,
        );
        for h in &mut self.hosts {
            if let Some(at) = h.ejected_at {
                if (base * h.multiplier as u64).min(max) <= now - at {
                    h.ejected_at = None;
                    h.consecutive_5xx = 0;
                }
            } else if h.multiplier > 0 {
                h.multiplier -= 1;
            }
        }
    }

    pub fn ejected(&self) -> usize {
        self.hosts.iter().filter(|h| h.ejected_at.is_some()).count()
    }

    /// Whether one more concurrent retry fits the retry limit.
    pub fn retry_allowed(&self) -> bool {
        match &self.limit {
            RetryLimit::Budget(b) => {
                let cap = ((b.budget_percent / 100.0) * self.active_requests as f64)
                    .max(b.min_retry_concurrency as f64);
                (self.active_retries as f64) < cap
            }
            RetryLimit::MaxRetries(m) => self.active_retries < *m,
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
