//! The scenario's topology compiled for the hot path: services and subsets by index, call edges
//! resolved, service-time distributions ready to sample in nanoseconds.

use rand::Rng;
use rand_distr::{Distribution, Gamma, LogNormal};

use crate::duration::Nanos;
use crate::scenario::{Scenario, ServiceTimeSpec};

/// Draws one pod's own work time, in nanoseconds.
#[derive(Debug, Clone)]
pub enum ServiceTime {
    Lognormal(LogNormal<f64>),
    Gamma(Gamma<f64>),
    Empirical(Vec<u64>),
}

impl ServiceTime {
    pub fn compile(spec: &ServiceTimeSpec, notes: &mut Vec<String>) -> Result<ServiceTime, String> {
        Ok(match spec {
            ServiceTimeSpec::Lognormal { median, sigma } => ServiceTime::Lognormal(
                // The lognormal's median is e^mu.
                LogNormal::new((median.nanos() as f64).ln(), *sigma).map_err(|e| e.to_string())?,
            ),
            ServiceTimeSpec::Gamma { mean, shape } => ServiceTime::Gamma(
                // mean = shape · scale.
                Gamma::new(*shape, mean.nanos() as f64 / shape).map_err(|e| e.to_string())?,
            ),
            ServiceTimeSpec::Empirical { samples } => {
                ServiceTime::Empirical(samples.iter().map(|d| d.nanos()).collect())
            }
            ServiceTimeSpec::Spans {
                file,
                service,
                fallback,
            } => match crate::traces_adapter::span_durations(file, service) {
                Ok(v) if !v.is_empty() => ServiceTime::Empirical(v),
                Ok(_) => {
                    notes.push(format!(
                        "{}: no spans of {service:?}; using the fallback distribution",
                        file.display()
                    ));
                    ServiceTime::compile(fallback, notes)?
                }
                Err(e) => {
                    notes.push(format!(
                        "{e}; using the fallback distribution for {service:?}"
                    ));
                    ServiceTime::compile(fallback, notes)?
                }
            },
        })
    }

    #[inline]
    pub fn sample<R: Rng>(&self, rng: &mut R) -> u64 {
        match self {
            ServiceTime::Lognormal(d) => d.sample(rng) as u64,
            ServiceTime::Gamma(d) => d.sample(rng) as u64,
            ServiceTime::Empirical(v) => v[rng.random_range(0..v.len())],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// Global subset indices of this service.
    pub subsets: Vec<usize>,
    pub concurrency: u32,
    pub queue: u32,
    pub service_time: ServiceTime,
    pub timeout: u64,
    /// (callee service, probability).
    pub calls: Vec<(usize, f64)>,
    pub parallel: bool,
}

#[derive(Debug, Clone)]
pub struct Subset {
    pub service: usize,
    pub name: String,
    /// "service/subset", the label used in reports.
    pub label: String,
    pub initial_pods: u32,
    pub initial_weight: f64,
    pub min_pods: u32,
    pub max_pods: u32,
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub services: Vec<Service>,
    pub subsets: Vec<Subset>,
    pub nodes: u32,
    /// (entry service, cumulative share in 0..1].
    pub entries: Vec<(usize, f64)>,
    /// Things worth telling the user (fallbacks taken).
    pub notes: Vec<String>,
}

impl Topology {
    pub fn compile(s: &Scenario) -> Result<Topology, String> {
        let index = |name: &str| s.topology.services.iter().position(|x| x.name == name);
        let mut services = Vec::new();
        let mut subsets = Vec::new();
        let mut notes = Vec::new();
        for (si, spec) in s.topology.services.iter().enumerate() {
            let mut ids = Vec::new();
            for sub in &spec.subsets {
                ids.push(subsets.len());
                subsets.push(Subset {
                    service: si,
                    name: sub.name.clone(),
                    label: format!("{}/{}", spec.name, sub.name),
                    initial_pods: sub.pods,
                    initial_weight: sub.weight as f64,
                    min_pods: sub.min_pods.unwrap_or(sub.pods.max(1)),
                    max_pods: sub.max_pods.unwrap_or((sub.pods * 10).max(10)),
                });
            }
            let calls = spec
                .calls
                .iter()
                .map(|c| {
                    index(&c.service)
                        .map(|j| (j, c.probability))
                        .ok_or_else(|| format!("unknown service {:?}", c.service))
                })
                .collect::<Result<Vec<_>, _>>()?;
            services.push(Service {
                name: spec.name.clone(),
                subsets: ids,
                concurrency: spec.concurrency,
                queue: spec.queue,
                service_time: ServiceTime::compile(&spec.service_time, &mut notes)?,
                timeout: spec.timeout.nanos(),
                calls,
                parallel: spec.parallel,
            });
        }
        let total: f64 = s.traffic.entries.iter().map(|e| e.share).sum();
        let mut acc = 0.0;
        let mut entries = Vec::new();
        for e in &s.traffic.entries {
            acc += e.share / total;
            let i = index(&e.service).ok_or_else(|| format!("unknown service {:?}", e.service))?;
            entries.push((i, acc));
        }
        if let Some(last) = entries.last_mut() {
            last.1 = 1.0;
        }
        Ok(Topology {
            services,
            subsets,
            nodes: s.topology.nodes,
            entries,
            notes,
        })
    }

    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    pub fn subset_index(&self, service: usize, name: &str) -> Option<usize> {
        self.services[service]
            .subsets
            .iter()
            .copied()
            .find(|&i| self.subsets[i].name == name)
    }
}
