//! Telemetry as Prometheus sees it: cumulative counters and latency histograms per pod (Istio's
//! `istio_requests_total` and `istio_request_duration_milliseconds` with Istio's default bucket
//! boundaries, reporter=destination), scraped at an interval; rates over windows and
//! `histogram_quantile` computed from the scraped deltas, never from ground truth.

/// Istio's default `istio_request_duration_milliseconds` bucket upper bounds, in ms.
pub const ISTIO_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
/// One more for +Inf.
pub const NBUCKETS: usize = ISTIO_BUCKETS_MS.len() + 1;

/// The same bounds in nanoseconds, for an integer lookup on the hot path.
const ISTIO_BUCKETS_NS: [u64; 19] = [
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    300_000_000_000,
    600_000_000_000,
    1_800_000_000_000,
    3_600_000_000_000,
];

/// Cumulative counters of one pod.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub requests: u64,
    /// Responses with a 5xx (what `response_code=~"5.."` selects).
    pub errors: u64,
    /// Non-cumulative per-bucket counts (made cumulative only when a quantile is taken).
    pub buckets: [u64; NBUCKETS],
    /// Seconds of CPU the pod's own work used (what container_cpu_usage_seconds_total counts).
    pub busy_ns: u64,
}

impl Counters {
    #[inline]
    pub fn observe(&mut self, latency_ns: u64, error: bool) {
        self.requests += 1;
        self.errors += error as u64;
        // Prometheus buckets are `le` (less than or equal): the first bound >= the value.
        let i = ISTIO_BUCKETS_NS.partition_point(|&b| b < latency_ns);
        self.buckets[i] += 1;
    }

    pub fn add(&mut self, o: &Counters) {
        self.requests += o.requests;
        self.errors += o.errors;
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a += b;
        }
        self.busy_ns += o.busy_ns;
    }

    /// self − earlier (counters never go down while a pod lives).
    pub fn minus(&self, earlier: &Counters) -> Counters {
        let mut d = *self;
        d.requests = d.requests.saturating_sub(earlier.requests);
        d.errors = d.errors.saturating_sub(earlier.errors);
        for (a, b) in d.buckets.iter_mut().zip(earlier.buckets.iter()) {
            *a = a.saturating_sub(*b);
        }
        d.busy_ns = d.busy_ns.saturating_sub(earlier.busy_ns);
        d
    }

    /// Prometheus' `histogram_quantile(q, ...)` over these bucket counts, in ms: linear
    /// interpolation inside the bucket holding rank q·n; the +Inf bucket answers with the
    /// largest finite bound. None without observations.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut cum = 0u64;
        for (i, &c) in self.buckets.iter().enumerate() {
            let prev = cum;
            cum += c;
            if cum as f64 >= rank && c > 0 {
                if i == ISTIO_BUCKETS_MS.len() {
                    return Some(ISTIO_BUCKETS_MS[i - 1]);
                }
                let lo = if i == 0 { 0.0 } else { ISTIO_BUCKETS_MS[i - 1] };
                let hi = ISTIO_BUCKETS_MS[i];
                return Some(lo + (hi - lo) * (rank - prev as f64) / c as f64);
            }
        }
        Some(ISTIO_BUCKETS_MS[ISTIO_BUCKETS_MS.len() - 1])
    }
}

/// What a scrape saw for one pod.
#[derive(Debug, Clone, Copy)]
pub struct PodSample {
    pub pod: u32,
    pub subset: u32,
    pub counters: Counters,
}

/// A bounded history of scrapes (the TSDB), enough for the longest window asked of it.
#[derive(Debug, Clone)]
pub struct Scrapes {
    pub interval_ns: u64,
    keep: usize,
    history: std::collections::VecDeque<(u64, Vec<PodSample>)>,
}

impl Scrapes {
    pub fn new(interval_ns: u64, keep: usize) -> Scrapes {
        Scrapes {
            interval_ns,
            keep: keep.max(2),
            history: std::collections::VecDeque::new(),
        }
    }

    pub fn push(&mut self, t: u64, samples: Vec<PodSample>) {
        if self.history.len() == self.keep {
            self.history.pop_front();
        }
        self.history.push_back((t, samples));
    }

    /// Increase over the last `scrapes_back` intervals, summed over the pods `filter` accepts —
    /// `sum(increase(x[w]))`. A pod absent from the earlier scrape (new, restarted) counts from
    /// zero, as Prometheus' counter-reset handling does. Returns (window seconds, delta), or
    /// None when the history is too short.
    pub fn increase(
        &self,
        scrapes_back: usize,
        filter: impl Fn(&PodSample) -> bool,
    ) -> Option<(f64, Counters)> {
        let n = self.history.len();
        if n < 2 {
            return None;
        }
        let back = scrapes_back.min(n - 1);
        let (t1, now) = &self.history[n - 1];
        let (t0, then) = &self.history[n - 1 - back];
        let mut total = Counters::default();
        for s in now.iter().filter(|s| filter(s)) {
            let earlier = then.iter().find(|e| e.pod == s.pod);
            let d = match earlier {
                Some(e) if e.counters.requests <= s.counters.requests => {
                    s.counters.minus(&e.counters)
                }
                _ => s.counters,
            };
            total.add(&d);
        }
        Some(((t1 - t0) as f64 / 1e9, total))
    }
}

impl Scrapes {
    /// Per-interval increases of the last `n` intervals (oldest first), each summed over the
    /// pods `filter` accepts: (scrape time, seconds, increase). Shorter when the history is.
    pub fn points(
        &self,
        n: usize,
        filter: impl Fn(&PodSample) -> bool,
    ) -> Vec<(u64, f64, Counters)> {
        let len = self.history.len();
        let start = len.saturating_sub(n).max(1);
        (start..len)
            .map(|k| {
                let (t0, then) = &self.history[k - 1];
                let (t1, now) = &self.history[k];
                let mut total = Counters::default();
                for s in now.iter().filter(|s| filter(s)) {
                    // Samples are in pod order, so the earlier one is found by binary search.
                    let earlier = then
                        .binary_search_by_key(&s.pod, |e| e.pod)
                        .ok()
                        .map(|i| &then[i]);
                    let d = match earlier {
                        Some(e) if e.counters.requests <= s.counters.requests => {
                            s.counters.minus(&e.counters)
                        }
                        _ => s.counters,
                    };
                    total.add(&d);
                }
                (*t1, (t1 - t0) as f64 / 1e9, total)
            })
            .collect()
    }

    /// Newest scrape time.
    pub fn last_time(&self) -> Option<u64> {
        self.history.back().map(|(t, _)| *t)
    }
}

impl Scrapes {
    /// How many pods `filter` accepts at each of the last `n` scrapes (aligned with
    /// [`Scrapes::points`]).
    pub fn pods_per_point(&self, n: usize, filter: impl Fn(&PodSample) -> bool) -> Vec<usize> {
        let len = self.history.len();
        let start = len.saturating_sub(n).max(1);
        (start..len)
            .map(|k| self.history[k].1.iter().filter(|s| filter(s)).count())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_bounds_match_the_millisecond_ones() {
        for (ns, ms) in ISTIO_BUCKETS_NS.iter().zip(ISTIO_BUCKETS_MS.iter()) {
            assert_eq!(*ns as f64, ms * 1e6);
        }
        // A value exactly on a bound falls in that bucket (`le`).
        let mut c = Counters::default();
        c.observe(1_000_000, false);
        assert_eq!(c.buckets[1], 1);
    }

    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        // 100 observations: 50 in (5,10] ms, 50 in (10,25] ms.
        // p50: rank 50 reaches the end of the (5,10] bucket: 5 + 5·50/50 = 10 ms.
        // p99: rank 99 is 49 into the (10,25] bucket of 50: 10 + 15·49/50 = 24.7 ms.
        let mut c = Counters::default();
        for _ in 0..50 {
            c.observe(7_000_000, false);
            c.observe(20_000_000, true);
        }
        assert_eq!(c.requests, 100);
        assert_eq!(c.errors, 50);
        assert!((c.quantile_ms(0.5).unwrap() - 10.0).abs() < 1e-9);
        assert!((c.quantile_ms(0.99).unwrap() - 24.7).abs() < 1e-9);
        assert_eq!(Counters::default().quantile_ms(0.5), None);
    }

    #[test]
    fn increase_handles_new_pods_as_resets() {
        let mut s = Scrapes::new(15, 10);
        let a = Counters {
            requests: 10,
            ..Counters::default()
        };
        s.push(
            0,
            vec![PodSample {
                pod: 0,
                subset: 0,
                counters: a,
            }],
        );
        let mut a2 = a;
        a2.requests = 40;
        let b = Counters {
            requests: 5,
            ..Counters::default()
        };
        s.push(
            15_000_000_000,
            vec![
                PodSample {
                    pod: 0,
                    subset: 0,
                    counters: a2,
                },
                PodSample {
                    pod: 1,
                    subset: 0,
                    counters: b,
                },
            ],
        );
        // pod 0: 40 − 10 = 30; pod 1 is new, counts from 0: 5. Total 35 over 15 s.
        let (w, d) = s.increase(1, |_| true).unwrap();
        assert_eq!(w, 15.0);
        assert_eq!(d.requests, 35);
    }
}
