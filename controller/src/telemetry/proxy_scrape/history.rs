//! Successive scrapes of the proxies' stats pages → per-step windows, the way Prometheus'
//! `rate()` and `histogram_quantile()` read the same counters.
//!
//! A grid point at time `t` with step `s` is the change of every counter between the newest
//! scrape at or before `t − s` and the newest at or before `t`, of each target (one target is
//! one pod's proxy). Per series, as Prometheus does:
//!
//! * the increase is `now − before`; a value that went down is a counter reset (the proxy
//!   restarted) and the increase is `now`, counted from zero;
//! * a series absent from the earlier scrape of a target that was scraped then did not exist
//!   yet: it counts from zero too. (Prometheus, holding one sample of it in the window, skips
//!   it — and loses the first requests of every new response code; the direct path does not.)
//!
//! Rates divide by the time between the two scrapes. The increases are summed per service,
//! subset (`destination_version`) and pod, into the simulator's [`Counters`], whose
//! `quantile_ms` is Prometheus' `histogram_quantile` on Istio's buckets — one implementation
//! for the simulator and this adapter. The windows are handed to [`Batch::build`] as answers
//! labelled like Prometheus' own, so filing and the Observation's shape are the Prometheus
//! adapter's code, not a copy of it.
//!
//! [`Batch::build`]: crate::telemetry::fanout::Batch::build

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use homeostat_simulator::telemetry::{Counters, ISTIO_BUCKETS_MS, NBUCKETS};

use super::super::TelemetryError;
use super::super::fanout::{Answer, Series, ServiceKey};
use super::super::grid::Grid;
use super::super::promql::{Level, SERVICE_NAME, SERVICE_NAMESPACE, Signal, VERSION};
use super::text::Sample;

/// (namespace, service name, version) of a series.
type Group = (String, String, String);

/// What one counter series counts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// `istio_requests_total`; `true` for a 5xx response code.
    Requests { error: bool },
    /// `istio_request_duration_milliseconds_bucket` at the bound of index `i` (cumulative).
    Bucket(usize),
}

/// One scrape of one target: every relevant series by its identity.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    series: HashMap<String, (Group, Kind, f64)>,
}

impl Scrape {
    /// Keeps the destination-side request counts and duration buckets of `samples` (what the
    /// Prometheus adapter's queries select); `what` names the target in errors.
    pub fn of(samples: &[Sample], what: &str) -> Result<Scrape, TelemetryError> {
        let mut series = HashMap::new();
        for s in samples {
            if s.label("reporter") != Some("destination") {
                continue;
            }
            let kind = match s.name.as_str() {
                "istio_requests_total" => Kind::Requests {
                    error: s.label("response_code").is_some_and(|c| c.starts_with('5')),
                },
                "istio_request_duration_milliseconds_bucket" => {
                    let le = s.label("le").unwrap_or("");
                    let i = if le == "+Inf" {
                        ISTIO_BUCKETS_MS.len()
                    } else {
                        le.parse::<f64>()
                            .ok()
                            .and_then(|b| ISTIO_BUCKETS_MS.iter().position(|&x| x == b))
                            .ok_or_else(|| {
                                TelemetryError::Malformed(format!(
                                    "{what}: istio_request_duration_milliseconds_bucket le={le:?} \
                                     is not one of Istio's default buckets"
                                ))
                            })?
                    };
                    Kind::Bucket(i)
                }
                _ => continue,
            };
            if !(s.value.is_finite() && s.value >= 0.0) {
                return Err(TelemetryError::Malformed(format!(
                    "{what}: {} has value {}, not a count",
                    s.name, s.value
                )));
            }
            let (Some(ns), Some(name)) = (s.label(SERVICE_NAMESPACE), s.label(SERVICE_NAME)) else {
                continue;
            };
            let group = (
                ns.to_owned(),
                name.to_owned(),
                s.label(VERSION).unwrap_or("unknown").to_owned(),
            );
            let mut id = s.name.clone();
            for (k, v) in &s.labels {
                id.push('\u{1f}');
                id.push_str(k);
                id.push('=');
                id.push_str(v);
            }
            if series.insert(id, (group, kind, s.value)).is_some() {
                return Err(TelemetryError::Malformed(format!(
                    "{what}: {} appears twice with the same labels",
                    s.name
                )));
            }
        }
        Ok(Scrape { series })
    }

    /// Increases since `before`, summed per group.
    fn since(&self, before: &Scrape) -> BTreeMap<Group, Increase> {
        let mut out: BTreeMap<Group, Increase> = BTreeMap::new();
        for (id, (group, kind, now)) in &self.series {
            let then = before.series.get(id).map_or(0.0, |(_, _, v)| *v);
            // A counter that went down was reset: it counts again from zero.
            let inc = if *now >= then { now - then } else { *now };
            let e = out.entry(group.clone()).or_default();
            match kind {
                Kind::Requests { error } => {
                    e.requests += inc;
                    if *error {
                        e.errors += inc;
                    }
                }
                Kind::Bucket(i) => e.cumulative[*i] += inc,
            }
        }
        out
    }
}

/// Increases of one group over one step (floating: counters are exposed as floats), and the
/// request rate they make (summed over pods, each over its own scrape spacing).
#[derive(Debug, Clone, Default)]
struct Increase {
    requests: f64,
    errors: f64,
    /// Cumulative per `le`, as exposed.
    cumulative: [f64; NBUCKETS],
    /// Requests per second.
    rate: f64,
}

impl Increase {
    fn add(&mut self, o: &Increase) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.rate += o.rate;
        for (a, b) in self.cumulative.iter_mut().zip(o.cumulative.iter()) {
            *a += b;
        }
    }

    /// Per-bucket counts, as the simulator's `Counters` hold them. Rounding is exact: the
    /// proxies count whole requests.
    fn counters(&self) -> Counters {
        let mut c = Counters {
            requests: self.requests.round() as u64,
            errors: self.errors.round() as u64,
            ..Counters::default()
        };
        let mut below = 0.0;
        for (i, &cum) in self.cumulative.iter().enumerate() {
            // A bucket below its predecessor is a torn read; it holds nothing.
            c.buckets[i] = (cum - below).max(0.0).round() as u64;
            below = cum.max(below);
        }
        c
    }

    /// One point of `signal`.
    fn value(&self, signal: Signal) -> f64 {
        let q = |q: f64| {
            self.counters()
                .quantile_ms(q)
                .map_or(f64::NAN, |ms| ms / 1e3)
        };
        match signal {
            Signal::RequestRate => self.rate,
            // 0/0 (no requests in the step) is NaN, as in PromQL.
            Signal::SuccessRate if self.requests > 0.0 => 1.0 - self.errors / self.requests,
            Signal::SuccessRate => f64::NAN,
            Signal::LatencyP50 => q(0.5),
            Signal::LatencyP90 => q(0.9),
            Signal::LatencyP99 => q(0.99),
            Signal::CpuUsage | Signal::CpuRequests | Signal::LatencyBuckets => f64::NAN,
        }
    }
}

/// The scrapes of every target over the retention.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Per target (pod name): (unix seconds, scrape), oldest first.
    targets: BTreeMap<String, VecDeque<(f64, Scrape)>>,
}

impl History {
    /// Records a scrape of `pod` taken at `t` (unix seconds), forgetting what is older than
    /// `retain_seconds` before it (one scrape older is kept: a window's start needs it).
    pub fn push(&mut self, pod: &str, t: f64, scrape: Scrape, retain_seconds: f64) {
        let q = self.targets.entry(pod.to_owned()).or_default();
        if q.back().is_some_and(|(last, _)| *last >= t) {
            return; // out of order: the clock went back; keep the older view
        }
        q.push_back((t, scrape));
        while q.len() > 2 && q[1].0 < t - retain_seconds {
            q.pop_front();
        }
    }

    /// The windows of the services in `asked` on `grid`, as answers of the Prometheus
    /// adapter's queries (`Signal::ISTIO` × `Level::ALL`), pods labelled `pod_label`.
    pub fn answers(
        &self,
        grid: &Grid,
        asked: &BTreeSet<ServiceKey>,
        pod_label: &str,
    ) -> Vec<Answer> {
        // Per point: the increases per (group, pod).
        let mut per_point: Vec<BTreeMap<(Group, String), Increase>> =
            vec![BTreeMap::new(); grid.points];
        for (pod, scrapes) in &self.targets {
            for (k, point) in per_point.iter_mut().enumerate() {
                let t = (grid.start() + k as i64 * grid.step) as f64;
                let (Some(now), Some(before)) = (at(scrapes, t), at(scrapes, t - grid.step as f64))
                else {
                    continue;
                };
                if now.0 <= before.0 {
                    continue; // one scrape in the step: no rate, as in Prometheus
                }
                let secs = now.0 - before.0;
                for (group, mut inc) in now.1.since(&before.1) {
                    inc.rate = inc.requests / secs;
                    let key = ServiceKey {
                        namespace: group.0.clone(),
                        service: group.1.clone(),
                    };
                    if asked.contains(&key) {
                        point.insert((group, pod.clone()), inc);
                    }
                }
            }
        }
        let mut answers = Vec::new();
        for level in Level::ALL {
            // Per series (its labels at this level): the summed increase of every point.
            let mut series: BTreeMap<Vec<(String, String)>, Vec<Option<Increase>>> =
                BTreeMap::new();
            for (k, point) in per_point.iter().enumerate() {
                for ((group, pod), inc) in point {
                    let mut labels = vec![
                        (SERVICE_NAMESPACE.to_owned(), group.0.clone()),
                        (SERVICE_NAME.to_owned(), group.1.clone()),
                    ];
                    if level != Level::Service {
                        labels.push((VERSION.to_owned(), group.2.clone()));
                    }
                    if level == Level::Pod {
                        labels.push((pod_label.to_owned(), pod.clone()));
                    }
                    series
                        .entry(labels)
                        .or_insert_with(|| vec![None; grid.points])[k]
                        .get_or_insert_with(Increase::default)
                        .add(inc);
                }
            }
            for signal in Signal::ISTIO {
                let out = series
                    .iter()
                    .map(|(labels, points)| Series {
                        labels: labels.iter().cloned().collect(),
                        samples: points
                            .iter()
                            .enumerate()
                            .filter_map(|(k, p)| {
                                let t = (grid.start() + k as i64 * grid.step) as f64;
                                p.as_ref().map(|inc| (t, inc.value(signal)))
                            })
                            .collect(),
                    })
                    .collect();
                answers.push(Answer {
                    signal,
                    level,
                    query: format!("proxy stats: {} by {}", signal.name(), level.name()),
                    series: out,
                });
            }
        }
        answers
    }
}

/// The newest scrape at or before `t`.
fn at(scrapes: &VecDeque<(f64, Scrape)>, t: f64) -> Option<&(f64, Scrape)> {
    let i = scrapes.partition_point(|(ts, _)| *ts <= t);
    i.checked_sub(1).map(|i| &scrapes[i])
}
