//! Istio's request-duration histogram: the bucket bounds every sidecar exports
//! (`istio_request_duration_milliseconds`), which the bundled proxy exports too, the simulator
//! models, and the Governor reads back through `histogram_quantile`. One definition, because a
//! quantile read from the histogram is only as exact as its buckets, and the Governor reasons
//! about that (`bucket_floor_ms`).

/// Istio's default `istio_request_duration_milliseconds` bucket upper bounds, in ms (Envoy's
/// default histogram buckets, `HistogramStatisticsImpl::supportedBuckets`).
pub const ISTIO_DURATION_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// The largest bucket bound strictly below `ms` (0 when there is none): the lower edge of the
/// bucket a sample of `ms` falls into.
///
/// Why it matters: `histogram_quantile` interpolates inside a bucket, so a sample at `ms` can be
/// read back as anything above this edge, but never at or below it. A quantile `q` read at or
/// below `bucket_floor_ms(t)` therefore means at least `q` of the samples were below `t`.
/// Worked example: `t` = 1000 ms lies in the bucket (500, 1000]; a p99 of 480 ms says at most
/// 1 % of the requests took 1000 ms or more, a p99 of 600 ms says nothing about it.
pub fn bucket_floor_ms(ms: f64) -> f64 {
    ISTIO_DURATION_BUCKETS_MS
        .iter()
        .copied()
        .take_while(|&b| b < ms)
        .last()
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_lower_edge_of_the_bucket() {
        assert_eq!(bucket_floor_ms(1000.0), 500.0);
        assert_eq!(bucket_floor_ms(1000.5), 1000.0);
        assert_eq!(bucket_floor_ms(150.0), 100.0);
        assert_eq!(bucket_floor_ms(3000.0), 2500.0);
        assert_eq!(bucket_floor_ms(0.5), 0.0);
        assert_eq!(bucket_floor_ms(f64::NAN), 0.0);
        assert_eq!(bucket_floor_ms(f64::INFINITY), 3_600_000.0);
    }
}
