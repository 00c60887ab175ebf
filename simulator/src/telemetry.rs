//! Telemetry as Prometheus sees it: cumulative counters and latency histograms per pod (Istio's
//! `istio_requests_total` and `istio_request_duration_milliseconds` with Istio's default bucket
//! boundaries, reporter=destination), scraped at an interval; rates over windows and
//! `histogram_quantile` computed from the scraped deltas, never from ground truth.

/// Istio's default `istio_request_duration_milliseconds` bucket upper bounds, in ms.
pub use homeostat_dataplane::histogram::ISTIO_DURATION_BUCKETS_MS as ISTIO_BUCKETS_MS;
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

    /// Prometheus' `histogram_quantile(q, ...)` over these bucket counts, in ms (see
    /// [`histogram_quantile`]). None without observations.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let mut cum = 0u64;
        let mut buckets = [(0.0, 0.0); NBUCKETS];
        for (i, (b, &c)) in buckets.iter_mut().zip(self.buckets.iter()).enumerate() {
            cum += c;
            let le = ISTIO_BUCKETS_MS.get(i).copied().unwrap_or(f64::INFINITY);
            *b = (le, cum as f64);
        }
        histogram_quantile(q, &buckets)
    }
}

/// Prometheus' `histogram_quantile(q, ...)` over classic buckets: `(upper bound, cumulative
/// count)` sorted by bound, the last one `+Inf`. The rank `q·total` is found in the first
/// bucket whose cumulative count reaches it and interpolated linearly inside it (from 0 for the
/// first bucket); a rank in the `+Inf` bucket answers the largest finite bound. A count below
/// its predecessor (float noise of summed rates) is raised to it, as Prometheus' monotonicity
/// fix does. None without observations, without a `+Inf` bucket, or with fewer than two
/// buckets — where Prometheus answers NaN.
///
/// One implementation for the simulator's scrapes, the proxies' stats and the bucket rates the
/// controller reads from Prometheus.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let (&(last_le, total), finite) = buckets.split_last()?;
    // `total` NaN or 0 (no observations) is unknown.
    if finite.is_empty()
        || last_le != f64::INFINITY
        || total.is_nan()
        || total <= 0.0
        || !q.is_finite()
    {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut prev = 0.0;
    for (i, &(hi, c)) in finite.iter().enumerate() {
        let cum = c.max(prev);
        if cum >= rank && cum > prev {
            if i == 0 && hi <= 0.0 {
                return Some(hi);
            }
            let lo = if i == 0 { 0.0 } else { finite[i - 1].0 };
            return Some(lo + (hi - lo) * (rank - prev) / (cum - prev));
        }
        prev = cum;
    }
    Some(finite[finite.len() - 1].0)
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
    fn bucket_rates_follow_prometheus_rules() {
        // Cumulative rates 2, 6, 8 over le 10, 20, +Inf (total 8 per second).
        // p50: rank 4 lies in (10, 20] holding 4: 10 + 10·(4 − 2)/4 = 15.
        // p25: rank 2 ends the first bucket, interpolated from 0: 0 + 10·2/2 = 10.
        // p99: rank 7.92 is past 6, in +Inf: the largest finite bound, 20.
        let b = [(10.0, 2.0), (20.0, 6.0), (f64::INFINITY, 8.0)];
        assert_eq!(histogram_quantile(0.5, &b), Some(15.0));
        assert_eq!(histogram_quantile(0.25, &b), Some(10.0));
        assert_eq!(histogram_quantile(0.99, &b), Some(20.0));
        // Float noise: 6 then 5.9999 (below it) counts as 6, so p75 (rank 6) stays in (10, 20]
        // and equals its upper bound 20, instead of landing in a negative-width bucket.
        let noisy = [
            (10.0, 2.0),
            (20.0, 6.0),
            (30.0, 5.9999),
            (f64::INFINITY, 8.0),
        ];
        assert_eq!(histogram_quantile(0.75, &noisy), Some(20.0));
        // No traffic, no +Inf bucket, a lone bucket: unknown (Prometheus' NaN).
        assert_eq!(
            histogram_quantile(0.5, &[(10.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(histogram_quantile(0.5, &[(10.0, 1.0), (20.0, 2.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(f64::INFINITY, 2.0)]), None);
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
