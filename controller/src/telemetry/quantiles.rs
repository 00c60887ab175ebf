//! Latency quantiles from one answer of per-pod bucket rates.
//!
//! `promql.rs` asks Prometheus for `sum by (service, version, pod, le)
//! (rate(istio_request_duration_milliseconds_bucket[...]))` once, instead of nine
//! `histogram_quantile` queries (p50, p90, p99 × service, subset, pod). Each of those nine
//! selects every bucket series of every service again — twenty per pod and response code —
//! and that selection is what Prometheus spends its time on: on 10,000 one-pod services one
//! such query took 1.5–1.9 s for a single step, the bucket rates once 3.1 s
//! (docs/benchmarks-telemetry.md).
//!
//! The levels are sums of the pod-level rates — `sum by` is linear, so the service's bucket
//! rate is the sum of its pods' (series without a pod label count for their subset and
//! service, as in Prometheus' own grouping) — and each quantile is
//! [`histogram_quantile`], the one implementation the simulator and the proxy-stats path use,
//! in milliseconds and divided by 1000 as the PromQL did. The output is the nine answers the
//! queries would have given, so filing (`fanout.rs`) is unchanged. The callers' side
//! (`reporter="source"`) is one more bucket answer, grouped by service, whose three quantiles
//! are filed as the callers'.

use std::collections::BTreeMap;

use homeostat_simulator::telemetry::histogram_quantile;

use super::TelemetryError;
use super::fanout::{Answer, Series};
use super::grid::Grid;
use super::promql::{LE, Labels, Level, SERVICE_NAME, SERVICE_NAMESPACE, Signal, VERSION};

/// The quantiles filed at every level.
const QUANTILES: [(Signal, f64); 3] = [
    (Signal::LatencyP50, 0.5),
    (Signal::LatencyP90, 0.9),
    (Signal::LatencyP99, 0.99),
];

/// A group of series at one level: namespace, service, and the version and pod where the
/// level has them.
type Key<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

/// Per `le` bound: the summed rate at every grid point (NaN where no series of the group had a
/// value, as Prometheus' `sum` has no point there).
type Sums = BTreeMap<Bound, Vec<f64>>;

/// An `le` bound with a total order (parsed bounds are never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound(f64);
impl Eq for Bound {}
impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Adds `v` into `acc` point by point, a NaN of either side being "no value".
fn add(acc: &mut [f64], v: &[f64]) {
    for (a, x) in acc.iter_mut().zip(v) {
        if x.is_finite() {
            *a = if a.is_nan() { *x } else { *a + x };
        }
    }
}

/// The p50 / p90 / p99 answers at every level from `buckets` (a `LatencyBuckets` answer) on
/// `grid`. A series without an `le` label, with one that is not a number, or with a sample off
/// the grid is malformed.
pub fn answers(
    buckets: &Answer,
    labels: &Labels,
    grid: &Grid,
) -> Result<Vec<Answer>, TelemetryError> {
    let what = || format!("{} by {}", buckets.signal.name(), buckets.level.name());
    // Pod level first: the finest grouping the answer has.
    let mut pods: BTreeMap<Key<'_>, Sums> = BTreeMap::new();
    for s in &buckets.series {
        let le = match s.labels.get(LE).map(|v| v.parse::<f64>()) {
            Some(Ok(le)) if !le.is_nan() => Bound(le),
            other => {
                return Err(TelemetryError::Malformed(format!(
                    "{}: a series with {} (query: {})",
                    what(),
                    match other {
                        None => "no le label".to_string(),
                        Some(_) => format!("le={:?}, not a number", s.labels[LE]),
                    },
                    super::promql::abbreviated(&buckets.query)
                )));
            }
        };
        let get = |k: &str| s.labels.get(k).map(String::as_str);
        let (Some(ns), Some(name)) = (get(SERVICE_NAMESPACE), get(SERVICE_NAME)) else {
            continue;
        };
        let key = (ns, name, get(VERSION), get(&labels.pod));
        let v = grid.place(s.samples.iter().copied(), &what())?;
        let acc = pods
            .entry(key)
            .or_default()
            .entry(le)
            .or_insert_with(|| grid.empty());
        add(acc, &v);
    }
    // Coarser levels are sums of the finer (`sum by` is linear).
    let subsets = coarser(grid, &pods, |(ns, name, version, _)| {
        (ns, name, version, None)
    });
    let services = coarser(grid, &subsets, |(ns, name, _, _)| (ns, name, None, None));
    // The callers' side is asked per service only: its quantiles are that level's, filed as
    // the callers'.
    let levels = if buckets.level == Level::Callers {
        vec![(Level::Callers, &services)]
    } else {
        vec![
            (Level::Service, &services),
            (Level::Subset, &subsets),
            (Level::Pod, &pods),
        ]
    };
    let mut out = Vec::new();
    for (level, groups) in levels {
        let mut series: [Vec<Series>; 3] = Default::default();
        for (&(ns, name, version, pod), sums) in groups {
            // A subset needs its version and a pod its pod label (fanout files no others).
            if (level == Level::Subset && version.is_none())
                || (level == Level::Pod && pod.is_none())
            {
                continue;
            }
            let mut l = std::collections::HashMap::from([
                (SERVICE_NAMESPACE.to_string(), ns.to_string()),
                (SERVICE_NAME.to_string(), name.to_string()),
            ]);
            if matches!(level, Level::Subset | Level::Pod)
                && let Some(v) = version
            {
                l.insert(VERSION.to_string(), v.to_string());
            }
            if level == Level::Pod
                && let Some(p) = pod
            {
                l.insert(labels.pod.clone(), p.to_string());
            }
            let mut samples: [Vec<(f64, f64)>; 3] = Default::default();
            let mut b: Vec<(f64, f64)> = Vec::with_capacity(sums.len());
            for i in 0..grid.points {
                b.clear();
                b.extend(
                    sums.iter()
                        .filter(|(_, v)| v[i].is_finite())
                        .map(|(le, v)| (le.0, v[i])),
                );
                let t = (grid.start() + i as i64 * grid.step) as f64;
                for (k, (_, q)) in QUANTILES.iter().enumerate() {
                    if let Some(ms) = histogram_quantile(*q, &b) {
                        samples[k].push((t, ms / 1000.0));
                    }
                }
            }
            for (k, samples) in samples.into_iter().enumerate() {
                series[k].push(Series {
                    labels: l.clone(),
                    samples,
                });
            }
        }
        for ((signal, _), series) in QUANTILES.into_iter().zip(series) {
            out.push(Answer {
                signal,
                level,
                query: buckets.query.clone(),
                series,
            });
        }
    }
    Ok(out)
}

/// The groups of `of` merged by `to`, their sums added (`sum by` is linear).
fn coarser<'a>(
    grid: &Grid,
    of: &BTreeMap<Key<'a>, Sums>,
    to: fn(Key<'a>) -> Key<'a>,
) -> BTreeMap<Key<'a>, Sums> {
    let mut out: BTreeMap<Key<'a>, Sums> = BTreeMap::new();
    for (key, sums) in of {
        let into = out.entry(to(*key)).or_default();
        for (le, v) in sums {
            add(into.entry(*le).or_insert_with(|| grid.empty()), v);
        }
    }
    out
}

#[cfg(test)]
mod tests;
