//! Fan-out: the answers of one batch of grouped queries → one set of windows per service.
//!
//! A batch asks each query once for many services (see `promql.rs`); every series it gets back
//! names its service by `destination_service_namespace` / `destination_service_name`, its
//! subset by `destination_version` and its pod by the pod label. This module files each series
//! under its service and builds a policy's [`Observation`] from what was filed. It translates
//! only: no threshold, no judgement — except saying that a service with no series at all has
//! no data ([`TelemetryError::Insufficient`]), which the seam asks of every source.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use homeostat_models::governor::{EndpointObservation, Observation, Signals, SubsetObservation};
use prometheus_http_query::response::Data;

use super::grid::Grid;
use super::promql::{Labels, Level, SERVICE_NAME, SERVICE_NAMESPACE, Signal, VERSION};
use super::{ObserveRequest, TelemetryError};

/// A governed service, as Istio's labels name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub namespace: String,
    pub service: String,
}

impl ServiceKey {
    pub fn of(req: &ObserveRequest) -> ServiceKey {
        ServiceKey {
            namespace: req.namespace.clone(),
            service: req.spec.target.service.clone(),
        }
    }
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service)
    }
}

/// One series of a range-query answer.
#[derive(Debug, Clone)]
pub struct Series {
    pub labels: HashMap<String, String>,
    /// (unix seconds, value).
    pub samples: Vec<(f64, f64)>,
}

/// The answer to one query of a batch.
#[derive(Debug, Clone)]
pub struct Answer {
    pub signal: Signal,
    pub level: Level,
    /// The PromQL sent, for error messages.
    pub query: String,
    pub series: Vec<Series>,
}

impl Answer {
    /// A range query must answer a matrix; anything else is malformed.
    pub fn from_data(
        signal: Signal,
        level: Level,
        query: String,
        data: Data,
    ) -> Result<Answer, TelemetryError> {
        let Data::Matrix(vectors) = data else {
            return Err(TelemetryError::Malformed(format!(
                "{} by {}: expected a matrix from a range query, got {} (query: {})",
                signal.name(),
                level.name(),
                match data {
                    Data::Vector(_) => "a vector",
                    Data::Scalar(_) => "a scalar",
                    Data::Matrix(_) => "a matrix",
                },
                super::promql::abbreviated(&query)
            )));
        };
        let series = vectors
            .into_iter()
            .map(|rv| {
                let (labels, samples) = rv.into_inner();
                Series {
                    labels,
                    samples: samples.iter().map(|s| (s.timestamp(), s.value())).collect(),
                }
            })
            .collect();
        Ok(Answer {
            signal,
            level,
            query,
            series,
        })
    }

    fn what(&self) -> String {
        format!(
            "{} by {} (query: {})",
            self.signal.name(),
            self.level.name(),
            super::promql::abbreviated(&self.query)
        )
    }
}

#[derive(Debug, Clone, Default)]
struct PodWindows {
    subset: Option<String>,
    signals: Signals,
}

#[derive(Debug, Clone, Default)]
struct ServiceWindows {
    service: Signals,
    /// As the callers report it (`Level::Callers`).
    callers: Signals,
    subsets: BTreeMap<String, Signals>,
    pods: BTreeMap<String, PodWindows>,
}

/// CPU halves of one pod, before they are summed per service and subset.
#[derive(Debug, Clone)]
struct Cpu {
    usage: Vec<f64>,
    requests: Vec<f64>,
}

/// The windows of every service one batch covered, on one grid.
#[derive(Debug, Clone)]
pub struct Batch {
    pub grid: Grid,
    /// The services the batch was asked for (absent from `services` when no series came back).
    pub asked: BTreeSet<ServiceKey>,
    services: BTreeMap<ServiceKey, ServiceWindows>,
}

impl Batch {
    /// Files every series of `answers` under the service of `asked` it belongs to; series of
    /// other services (a namespace × name set matches a little more than asked) are dropped.
    pub fn build(
        grid: Grid,
        asked: BTreeSet<ServiceKey>,
        answers: &[Answer],
        labels: &Labels,
    ) -> Result<Batch, TelemetryError> {
        let mut services: BTreeMap<ServiceKey, ServiceWindows> = BTreeMap::new();
        let mut cpu: HashMap<(String, String), Cpu> = HashMap::new();
        // Bucket rates become the quantile answers the levels are filed from.
        let mut quantiles = Vec::new();
        for a in answers
            .iter()
            .filter(|a| a.signal == Signal::LatencyBuckets)
        {
            quantiles.extend(super::quantiles::answers(a, labels, &grid)?);
        }
        let filed = answers
            .iter()
            .filter(|a| a.signal != Signal::LatencyBuckets);
        for a in filed.chain(&quantiles) {
            for s in &a.series {
                if matches!(a.signal, Signal::CpuUsage | Signal::CpuRequests) {
                    let (Some(ns), Some(pod)) =
                        (s.labels.get(&labels.namespace), s.labels.get(&labels.pod))
                    else {
                        continue;
                    };
                    let v = grid.place(s.samples.iter().copied(), &a.what())?;
                    let c = cpu.entry((ns.clone(), pod.clone())).or_insert_with(|| Cpu {
                        usage: grid.empty(),
                        requests: grid.empty(),
                    });
                    if a.signal == Signal::CpuUsage {
                        c.usage = v;
                    } else {
                        c.requests = v;
                    }
                    continue;
                }
                let (Some(ns), Some(name)) =
                    (s.labels.get(SERVICE_NAMESPACE), s.labels.get(SERVICE_NAME))
                else {
                    continue;
                };
                let key = ServiceKey {
                    namespace: ns.clone(),
                    service: name.clone(),
                };
                if !asked.contains(&key) {
                    continue;
                }
                let v = grid.place(s.samples.iter().copied(), &a.what())?;
                let w = services.entry(key).or_default();
                let version = s.labels.get(VERSION);
                let signals = match a.level {
                    Level::Service => &mut w.service,
                    Level::Callers => &mut w.callers,
                    Level::Subset => match version {
                        Some(v) => w.subsets.entry(v.clone()).or_default(),
                        None => continue,
                    },
                    Level::Pod => match s.labels.get(&labels.pod) {
                        Some(p) => {
                            let pw = w.pods.entry(p.clone()).or_default();
                            pw.subset = version.cloned();
                            &mut pw.signals
                        }
                        None => continue,
                    },
                };
                if let Some(slot) = slot(signals, a.signal) {
                    *slot = v;
                }
            }
        }
        for (key, w) in services.iter_mut() {
            utilisation(&grid, key, w, &cpu);
        }
        Ok(Batch {
            grid,
            asked,
            services,
        })
    }

    /// Keys with at least one series.
    pub fn services(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services.keys()
    }

    /// The Observation of `req`'s service: the service, the policy's subsets (in the policy's
    /// order; NaN windows for a subset that had no series) and every pod seen in the window.
    pub fn observation(&self, req: &ObserveRequest) -> Result<Observation, TelemetryError> {
        let key = ServiceKey::of(req);
        let Some(w) = self
            .services
            .get(&key)
            .filter(|w| known(&w.service) || !w.subsets.is_empty() || !w.pods.is_empty())
        else {
            return Err(TelemetryError::Insufficient(format!(
                "no istio_requests_total series (reporter=\"destination\") for service {key} \
                 between {} and {}: no traffic, or not in the mesh",
                self.grid.start(),
                self.grid.end
            )));
        };
        let filled = |s: &Signals| self.fill(s);
        let subsets = req
            .spec
            .target
            .subsets
            .iter()
            .map(|name| SubsetObservation {
                name: name.clone(),
                signals: w
                    .subsets
                    .get(name)
                    .map_or_else(|| self.fill(&Signals::default()), filled),
            })
            .collect();
        let endpoints = w
            .pods
            .iter()
            .map(|(name, p)| EndpointObservation {
                name: name.clone(),
                subset: p.subset.clone(),
                signals: self.fill(&p.signals),
            })
            .collect();
        Ok(Observation {
            service: req.spec.target.service.clone(),
            end: self.grid.end,
            step_seconds: self.grid.step,
            service_signals: self.fill(&w.service),
            // Not reported at all (no caller in the mesh): left empty, not NaN, so that the
            // Observation says "not collected".
            callers: if known(&w.callers) {
                self.fill(&w.callers)
            } else {
                Signals::default()
            },
            subsets,
            endpoints,
            config: req.config.clone(),
            pod_startup: None,
        })
    }

    /// Every window at full length: a signal no query answered is NaN throughout.
    fn fill(&self, s: &Signals) -> Signals {
        let f = |v: &Vec<f64>| {
            if v.len() == self.grid.points {
                v.clone()
            } else {
                self.grid.empty()
            }
        };
        Signals {
            request_rate: f(&s.request_rate),
            success_rate: f(&s.success_rate),
            latency_p50: f(&s.latency_p50),
            latency_p90: f(&s.latency_p90),
            latency_p99: f(&s.latency_p99),
            utilization: f(&s.utilization),
        }
    }
}

impl Batch {
    /// A batch over `grid` that knows nothing yet about the services `asked`.
    pub fn empty(grid: Grid, asked: BTreeSet<ServiceKey>) -> Batch {
        Batch {
            grid,
            asked,
            services: BTreeMap::new(),
        }
    }

    /// Takes `other`'s services (fetched whole, on this batch's grid) into this batch.
    pub fn absorb(&mut self, other: Batch) {
        self.asked.extend(other.asked);
        self.services.extend(other.services);
    }

    /// Forgets every service not in `keys`.
    pub fn keep(&mut self, keys: &BTreeSet<ServiceKey>) {
        self.asked.retain(|k| keys.contains(k));
        self.services.retain(|k, _| keys.contains(k));
    }

    /// Moves this batch forward to `newer`'s end: every window drops its oldest
    /// `newer.grid.points` points and takes `newer`'s (NaN for a service, subset or pod `newer`
    /// has no series for). Entities with nothing known left in the window are dropped. Services
    /// `newer` was asked for and this batch was not are taken whole from `newer` (their older
    /// points NaN). This is how a batched source fetches one step per interval instead of the
    /// whole lookback. `newer` must end a whole number of steps (fewer than the window) later.
    pub fn advance(&mut self, newer: &Batch) -> Result<(), TelemetryError> {
        let k = newer.grid.points;
        let later = newer.grid.end - self.grid.end;
        if newer.grid.step != self.grid.step
            || later != k as i64 * self.grid.step
            || k >= self.grid.points
        {
            return Err(TelemetryError::Malformed(format!(
                "cannot advance a batch ending at {} by {} points ending at {} (step {} vs {})",
                self.grid.end, k, newer.grid.end, self.grid.step, newer.grid.step
            )));
        }
        let n = self.grid.points;
        let empty = ServiceWindows::default();
        let keys: BTreeSet<ServiceKey> = self
            .services
            .keys()
            .chain(newer.services.keys())
            .cloned()
            .collect();
        for key in keys {
            let new = newer.services.get(&key).unwrap_or(&empty);
            let w = self.services.entry(key).or_default();
            shift(&mut w.service, Some(&new.service), k, n);
            shift(&mut w.callers, Some(&new.callers), k, n);
            let names: BTreeSet<String> = w
                .subsets
                .keys()
                .chain(new.subsets.keys())
                .cloned()
                .collect();
            for name in names {
                shift(
                    w.subsets.entry(name.clone()).or_default(),
                    new.subsets.get(&name),
                    k,
                    n,
                );
            }
            let pods: BTreeSet<String> = w.pods.keys().chain(new.pods.keys()).cloned().collect();
            for pod in pods {
                let np = new.pods.get(&pod);
                let p = w.pods.entry(pod).or_default();
                if let Some(np) = np {
                    p.subset = np.subset.clone();
                }
                shift(&mut p.signals, np.map(|x| &x.signals), k, n);
            }
            w.subsets.retain(|_, s| known(s));
            w.pods.retain(|_, p| known(&p.signals));
        }
        self.services
            .retain(|_, w| known(&w.service) || !w.pods.is_empty());
        self.asked.extend(newer.asked.iter().cloned());
        self.grid.end = newer.grid.end;
        Ok(())
    }
}

/// Drops the oldest `k` points of every window of `old` (a missing window counts as NaN) and
/// appends `new`'s `k` points (NaN when absent), keeping `n` points.
fn shift(old: &mut Signals, new: Option<&Signals>, k: usize, n: usize) {
    let nan = vec![f64::NAN; k];
    let pick = |f: fn(&Signals) -> &Vec<f64>| -> &[f64] {
        match new.map(f) {
            Some(v) if v.len() == k => v,
            _ => &nan,
        }
    };
    let news = [
        pick(|s| &s.request_rate).to_vec(),
        pick(|s| &s.success_rate).to_vec(),
        pick(|s| &s.latency_p50).to_vec(),
        pick(|s| &s.latency_p90).to_vec(),
        pick(|s| &s.latency_p99).to_vec(),
        pick(|s| &s.utilization).to_vec(),
    ];
    let olds = [
        &mut old.request_rate,
        &mut old.success_rate,
        &mut old.latency_p50,
        &mut old.latency_p90,
        &mut old.latency_p99,
        &mut old.utilization,
    ];
    for (o, add) in olds.into_iter().zip(news) {
        if o.len() != n {
            *o = vec![f64::NAN; n];
        }
        o.drain(..k);
        o.extend(add);
    }
}

/// Whether any point of any window is known.
fn known(s: &Signals) -> bool {
    [
        &s.request_rate,
        &s.success_rate,
        &s.latency_p50,
        &s.latency_p90,
        &s.latency_p99,
        &s.utilization,
    ]
    .iter()
    .any(|v| v.iter().any(|x| x.is_finite()))
}

/// Where a filed signal goes; None for the bucket rates, which are never filed themselves.
fn slot(s: &mut Signals, signal: Signal) -> Option<&mut Vec<f64>> {
    Some(match signal {
        Signal::RequestRate => &mut s.request_rate,
        Signal::SuccessRate => &mut s.success_rate,
        Signal::LatencyP50 => &mut s.latency_p50,
        Signal::LatencyP90 => &mut s.latency_p90,
        Signal::LatencyP99 => &mut s.latency_p99,
        Signal::CpuUsage | Signal::CpuRequests => &mut s.utilization,
        Signal::LatencyBuckets => return None,
    })
}

/// Utilisation as the HPA computes it: summed usage over summed requests of the pods (of the
/// service, of a subset, or one pod) that have both at that point; NaN where none has.
fn utilisation(
    grid: &Grid,
    key: &ServiceKey,
    w: &mut ServiceWindows,
    cpu: &HashMap<(String, String), Cpu>,
) {
    let ratio = |pods: &mut dyn Iterator<Item = &Cpu>| -> Vec<f64> {
        let mut used = vec![0.0; grid.points];
        let mut req = vec![0.0; grid.points];
        for c in pods {
            for i in 0..grid.points {
                if c.usage[i].is_finite() && c.requests[i].is_finite() {
                    used[i] += c.usage[i];
                    req[i] += c.requests[i];
                }
            }
        }
        used.iter()
            .zip(&req)
            .map(|(u, r)| if *r > 0.0 { u / r } else { f64::NAN })
            .collect()
    };
    let of = |pod: &String| cpu.get(&(key.namespace.clone(), pod.clone()));
    if !w.pods.keys().any(|p| of(p).is_some()) {
        return;
    }
    w.service.utilization = ratio(&mut w.pods.keys().filter_map(of));
    // A subset known only through its pods still gets its utilisation.
    let named: Vec<String> = w.pods.values().filter_map(|p| p.subset.clone()).collect();
    for name in named {
        w.subsets.entry(name).or_default();
    }
    for (name, sig) in w.subsets.iter_mut() {
        sig.utilization = ratio(
            &mut w
                .pods
                .iter()
                .filter(|(_, p)| p.subset.as_ref() == Some(name))
                .filter_map(|(pod, _)| of(pod)),
        );
    }
    let pods: Vec<String> = w.pods.keys().cloned().collect();
    for pod in pods {
        if let Some(c) = of(&pod) {
            let u = ratio(&mut std::iter::once(c));
            if let Some(p) = w.pods.get_mut(&pod) {
                p.signals.utilization = u;
            }
        }
    }
}

#[cfg(test)]
mod tests;
