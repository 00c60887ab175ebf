//! The simulated mesh's scrapes written as OpenMetrics text, for
//! `promtool tsdb create-blocks-from openmetrics`: a real Prometheus can then be asked the
//! controller's PromQL about a simulated incident.
//!
//! [`Exporter`] is an engine [`Observer`] that copies each pod's cumulative counters at every
//! scrape (the same counters [`crate::telemetry::Scrapes`] keeps), stamped with the scrape's
//! own time — as Prometheus stores a sample at the instant it scraped it, however late a
//! controller then reads it (the telemetry lag) — and writes them as the series
//! an Istio sidecar, cAdvisor and kube-state-metrics would expose:
//!
//! * `istio_requests_total{reporter="destination", destination_service_namespace,
//!   destination_service_name, destination_version, pod, response_code}` — `200` for successes,
//!   `500` for the 5xx the simulator counts as errors;
//! * `istio_requests_total{reporter="source", destination_service_namespace,
//!   destination_service_name, response_code}` — the calls to each service as its callers'
//!   proxies count them (one per call, the final response), summed over the callers: the
//!   simulator does not keep them per calling pod;
//! * `istio_request_duration_milliseconds_bucket{..., le}` with Istio's default bounds
//!   ([`crate::telemetry::ISTIO_BUCKETS_MS`]) and its `_count`, on both sides;
//! * `container_cpu_usage_seconds_total{namespace, pod, container="app"}` — the pod's busy time;
//! * `kube_pod_container_resource_requests{namespace, pod, container="app", resource="cpu"}` —
//!   `concurrency` cores, only while the pod is ready (the simulator's utilisation divides by
//!   the ready pods' worth of workers).
//!
//! Pods are named as the simulator's Observation names its endpoints (`service/subset-index`),
//! so the two Observations can be compared endpoint by endpoint. It can also record the
//! simulator's own Observation of one service each time a scrape becomes visible to the
//! controllers ([`Exporter::observing`]): the Observation a controller makes then, whose `end`
//! is the newest visible scrape.

use std::fmt::Write as _;

use homeostat_models::governor::Observation;

use crate::engine::{Change, Observer, PodState, View};
use crate::telemetry::{Counters, ISTIO_BUCKETS_MS, NBUCKETS};

/// One pod's counters at one scrape.
#[derive(Debug, Clone)]
struct Row {
    pod: u32,
    counters: Counters,
    ready: bool,
}

/// Names and requests of a pod (fixed for the run).
#[derive(Debug, Clone)]
pub struct PodMeta {
    pub service: String,
    pub version: String,
    pub name: String,
    pub cpu_cores: u32,
}

/// Records scrapes while the engine runs, then writes them as OpenMetrics.
pub struct Exporter {
    base_unix: i64,
    namespace: String,
    pods: Vec<Option<PodMeta>>,
    scrapes: Vec<(i64, Vec<Row>)>,
    /// Per scrape (aligned with `scrapes`), each service's callers' counters; empty for
    /// [`Exporter::record`]ed scrapes.
    callers: Vec<Vec<Counters>>,
    services: Vec<String>,
    observe: Option<usize>,
    observations: Vec<Observation>,
    /// Scrapes at or after this engine time (ns) are not kept.
    before: u64,
}

impl Exporter {
    /// Virtual time 0 is unix second `base_unix`; every series carries `namespace`.
    pub fn new(base_unix: i64, namespace: &str) -> Exporter {
        Exporter {
            base_unix,
            namespace: namespace.to_string(),
            pods: Vec::new(),
            scrapes: Vec::new(),
            callers: Vec::new(),
            services: Vec::new(),
            observe: None,
            observations: Vec::new(),
            before: u64::MAX,
        }
    }

    /// Keep only the scrapes taken before engine time `t_ns`: what Prometheus holds of an
    /// incident cut at `t_ns` while the run goes on long enough (one telemetry lag) for the
    /// controllers to see the last of those scrapes.
    pub fn scraped_before(mut self, t_ns: u64) -> Exporter {
        self.before = t_ns;
        self
    }

    /// Also keep the simulator's own Observation of service index `service` at every scrape.
    pub fn observing(mut self, service: usize) -> Exporter {
        self.observe = Some(service);
        self
    }

    /// The simulator's Observations (with `end` in unix seconds on this exporter's clock).
    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    /// Records one scrape of pods not driven by the engine (synthetic load for benchmarks):
    /// `(pod id, labels, cumulative counters, ready)`, ids increasing.
    pub fn record(&mut self, unix: i64, pods: Vec<(u32, PodMeta, Counters, bool)>) {
        let mut rows = Vec::with_capacity(pods.len());
        for (id, meta, counters, ready) in pods {
            let i = id as usize;
            if self.pods.len() <= i {
                self.pods.resize(i + 1, None);
            }
            self.pods[i].get_or_insert(meta);
            rows.push(Row {
                pod: id,
                counters,
                ready,
            });
        }
        self.scrapes.push((unix, rows));
        self.callers.push(Vec::new());
    }

    /// Unix seconds of the newest scrape.
    pub fn last_scrape(&self) -> Option<i64> {
        self.scrapes.last().map(|(t, _)| *t)
    }

    /// The OpenMetrics exposition of every scrape: each family once, each series' samples in
    /// time order, `# EOF` at the end.
    pub fn write(&self) -> String {
        let mut out = String::new();
        let ns = &self.namespace;
        let istio = |m: &PodMeta| {
            format!(
                "reporter=\"destination\",destination_service_namespace=\"{ns}\",\
                 destination_service_name=\"{}\",destination_version=\"{}\",pod=\"{}\"",
                m.service, m.version, m.name
            )
        };
        // The callers' side of a service, summed over the callers.
        let source = |service: &str| {
            format!(
                "reporter=\"source\",destination_service_namespace=\"{ns}\",\
                 destination_service_name=\"{service}\""
            )
        };
        let metas: Vec<(u32, &PodMeta)> = self
            .pods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|m| (i as u32, m)))
            .collect();
        let series = |pod: u32| {
            self.scrapes
                .iter()
                // Rows are in pod order (engine order, or `record`'s increasing ids).
                .filter_map(move |(t, rows)| {
                    rows.binary_search_by_key(&pod, |r| r.pod)
                        .ok()
                        .map(|i| (*t, &rows[i]))
                })
        };

        out.push_str("# TYPE istio_requests counter\n");
        for &(pod, m) in &metas {
            let labels = istio(m);
            for (code, pick) in [("200", false), ("500", true)] {
                for (t, r) in series(pod) {
                    let c = &r.counters;
                    let v = if pick {
                        c.errors
                    } else {
                        c.requests - c.errors
                    };
                    let _ = writeln!(
                        out,
                        "istio_requests_total{{{labels},response_code=\"{code}\"}} {v} {t}"
                    );
                }
            }
        }

        for (s, name) in self.services.iter().enumerate() {
            let labels = source(name);
            for (code, pick) in [("200", false), ("500", true)] {
                for ((t, _), callers) in self.scrapes.iter().zip(&self.callers) {
                    let Some(c) = callers.get(s) else { continue };
                    let v = if pick {
                        c.errors
                    } else {
                        c.requests - c.errors
                    };
                    let _ = writeln!(
                        out,
                        "istio_requests_total{{{labels},response_code=\"{code}\"}} {v} {t}"
                    );
                }
            }
        }

        out.push_str("# TYPE istio_request_duration_milliseconds histogram\n");
        // One histogram sample: cumulative buckets and the count.
        let histogram = |out: &mut String, labels: &str, t: i64, c: &Counters| {
            let mut cum = 0u64;
            for i in 0..NBUCKETS {
                cum += c.buckets[i];
                let le = ISTIO_BUCKETS_MS
                    .get(i)
                    .map_or("+Inf".to_string(), |b| format!("{b}"));
                let _ = writeln!(
                    out,
                    "istio_request_duration_milliseconds_bucket{{{labels},le=\"{le}\"}} {cum} {t}"
                );
            }
            let _ = writeln!(
                out,
                "istio_request_duration_milliseconds_count{{{labels}}} {cum} {t}"
            );
        };
        for &(pod, m) in &metas {
            let labels = istio(m);
            for (t, r) in series(pod) {
                histogram(&mut out, &labels, t, &r.counters);
            }
        }
        for (s, name) in self.services.iter().enumerate() {
            let labels = source(name);
            for ((t, _), callers) in self.scrapes.iter().zip(&self.callers) {
                if let Some(c) = callers.get(s) {
                    histogram(&mut out, &labels, *t, c);
                }
            }
        }

        out.push_str("# TYPE container_cpu_usage_seconds counter\n");
        for &(pod, m) in &metas {
            for (t, r) in series(pod) {
                let _ = writeln!(
                    out,
                    "container_cpu_usage_seconds_total{{namespace=\"{ns}\",pod=\"{}\",container=\"app\"}} {} {t}",
                    m.name,
                    r.counters.busy_ns as f64 / 1e9
                );
            }
        }

        out.push_str("# TYPE kube_pod_container_resource_requests gauge\n");
        for &(pod, m) in &metas {
            for (t, _) in series(pod).filter(|(_, r)| r.ready) {
                let _ = writeln!(
                    out,
                    "kube_pod_container_resource_requests{{namespace=\"{ns}\",pod=\"{}\",container=\"app\",resource=\"cpu\",unit=\"core\"}} {} {t}",
                    m.name, m.cpu_cores
                );
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

impl Observer for Exporter {
    fn request_done(&mut self, _t: u64, _latency: u64, _end: crate::engine::End, _entry: usize) {}

    fn scrape(&mut self, t: u64, view: &View<'_>) {
        if t >= self.before {
            return;
        }
        let unix = self.base_unix + (t / 1_000_000_000) as i64;
        let topo = view.topology;
        let mut rows = Vec::new();
        for (i, p) in view.pods.iter().enumerate() {
            // What Prometheus can scrape: a pod that runs (a crashed one still answers its
            // sidecar's scrape; Down and Gone pods have no target).
            if matches!(p.state, PodState::Down | PodState::Gone) {
                continue;
            }
            if self.pods.len() <= i {
                self.pods.resize(i + 1, None);
            }
            let sub = &topo.subsets[p.subset as usize];
            let svc = &topo.services[sub.service];
            self.pods[i].get_or_insert_with(|| PodMeta {
                service: svc.name.clone(),
                version: sub.name.clone(),
                name: format!("{}-{}", sub.label, p.index),
                cpu_cores: svc.concurrency,
            });
            rows.push(Row {
                pod: i as u32,
                counters: p.counters,
                ready: p.state == PodState::Ready,
            });
        }
        self.scrapes.push((unix, rows));
        if self.services.is_empty() {
            self.services = topo.services.iter().map(|s| s.name.clone()).collect();
        }
        self.callers.push(view.caller_counters.to_vec());
    }

    fn tick(&mut self, _t: u64, view: &View<'_>) -> Vec<Change> {
        if let Some(svc) = self.observe {
            let mut o = crate::observe::observe(view, svc, None, 0);
            o.end += self.base_unix;
            self.observations.push(o);
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_once_series_in_time_order_and_eof() {
        let mut e = Exporter::new(1_000, "shop");
        e.pods = vec![Some(PodMeta {
            service: "api".into(),
            version: "v1".into(),
            name: "api/v1-0".into(),
            cpu_cores: 4,
        })];
        let mut c = Counters::default();
        c.observe(7_000_000, false); // 7 ms: the (5, 10] bucket
        c.observe(20_000_000, true); // 20 ms: the (10, 25] bucket, an error
        c.busy_ns = 1_500_000_000;
        e.scrapes.push((
            1_015,
            vec![Row {
                pod: 0,
                counters: c,
                ready: true,
            }],
        ));
        e.scrapes.push((
            1_030,
            vec![Row {
                pod: 0,
                counters: c,
                ready: false,
            }],
        ));
        let text = e.write();
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# TYPE istio_requests counter").count(), 1);
        // 2 requests, 1 error: 1 success, 1 error at each scrape.
        assert!(text.contains("pod=\"api/v1-0\",response_code=\"200\"} 1 1015\n"));
        assert!(text.contains("pod=\"api/v1-0\",response_code=\"500\"} 1 1030\n"));
        // Cumulative buckets: le=5 holds 0, le=10 holds 1, le=25 and +Inf hold 2.
        assert!(text.contains("le=\"5\"} 0 1015\n"));
        assert!(text.contains("le=\"10\"} 1 1015\n"));
        assert!(text.contains("le=\"25\"} 2 1015\n"));
        assert!(text.contains("le=\"+Inf\"} 2 1015\n"));
        assert!(text.contains("le=\"0.5\"} 0 1015\n"));
        assert!(text.contains("container=\"app\"} 1.5 1030\n"));
        // Requests only while ready: the second scrape has none.
        assert!(text.contains("unit=\"core\"} 4 1015\n"));
        assert!(!text.contains("unit=\"core\"} 4 1030\n"));
        // A series' samples are contiguous and in time order.
        let ok = text.find("response_code=\"200\"} 1 1015").unwrap();
        let ok2 = text.find("response_code=\"200\"} 1 1030").unwrap();
        let err = text.find("response_code=\"500\"} 1 1015").unwrap();
        assert!(ok < ok2 && ok2 < err);
    }
}
