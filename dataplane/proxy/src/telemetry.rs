//! Request telemetry under Istio's standard metric names and labels, so the PromQL written for
//! an Istio mesh (`sum(rate(istio_requests_total{reporter="source",
//! destination_service="…",response_code=~"5.."}[1m]))`) reads the bundled mesh unchanged,
//! plus the proxy's own per-endpoint upstream and outlier-ejection counters.
//!
//! * `istio_requests_total` — counter.
//! * `istio_request_duration_milliseconds`, `istio_request_bytes`, `istio_response_bytes` —
//!   histograms on Envoy's default buckets (0.5 … 3 600 000), which is what Istio's
//!   stats filter exports.
//! * Labels: Istio's standard set (`reporter`, `source_*`, `destination_*`, `request_protocol`,
//!   `response_code`, `grpc_response_status`, `response_flags`,
//!   `connection_security_policy`); what the proxy cannot know (principals, mTLS) is
//!   `unknown`, as Istio writes it.
//!
//! Series are keyed by (destination cluster, protocol, response code, response flags), so
//! their number is bounded by the configuration, not by traffic.

use crate::config::{Destination, Node};
use crate::upstream::UpstreamStats;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Envoy's default histogram buckets (`HistogramStatisticsImpl::supportedBuckets`), which
/// Istio's sidecars export.
pub use homeostat_dataplane::histogram::ISTIO_DURATION_BUCKETS_MS as BUCKETS;

/// Istio's `response_flags` values the proxy sets.
pub mod flags {
    /// No flag.
    pub const NONE: &str = "-";
    /// No route matched.
    pub const NO_ROUTE: &str = "NR";
    /// No healthy upstream host.
    pub const NO_HEALTHY_UPSTREAM: &str = "UH";
    /// Upstream connection failure.
    pub const UPSTREAM_CONNECT_FAILURE: &str = "UF";
    /// Upstream connection terminated (reset before a response).
    pub const UPSTREAM_RESET: &str = "UC";
    /// Upstream request timeout.
    pub const UPSTREAM_TIMEOUT: &str = "UT";
    /// Retries used up and the last try still failed.
    pub const RETRY_LIMIT: &str = "URX";
    /// The downstream terminated the request.
    pub const DOWNSTREAM_TERMINATED: &str = "DC";
    /// The proxy refused the request (body too large, too slow).
    pub const DOWNSTREAM_PROTOCOL_ERROR: &str = "DPE";
}

/// One finished request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// `None` when no route matched (destination labels `unknown`).
    pub destination: Option<Arc<DestinationLabels>>,
    pub protocol: &'static str,
    pub response_code: u16,
    pub response_flags: &'static str,
    pub duration_ms: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

/// A cluster's `destination_*` labels, rendered once.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DestinationLabels {
    rendered: String,
}

impl DestinationLabels {
    pub fn new(d: &Destination) -> DestinationLabels {
        let service_name = d.service.split('.').next().unwrap_or("unknown");
        let pairs = [
            ("destination_workload", d.workload.as_str()),
            ("destination_workload_namespace", d.namespace.as_str()),
            ("destination_principal", "unknown"),
            ("destination_app", d.app.as_str()),
            ("destination_version", d.version.as_str()),
            ("destination_service", d.service.as_str()),
            ("destination_canonical_service", d.app.as_str()),
            ("destination_canonical_revision", d.version.as_str()),
            ("destination_service_name", service_name),
            ("destination_service_namespace", d.namespace.as_str()),
            ("destination_cluster", "unknown"),
        ];
        DestinationLabels {
            rendered: render_labels(&pairs),
        }
    }

    fn unknown() -> DestinationLabels {
        DestinationLabels::new(&Destination::default())
    }
}

#[derive(Debug, Clone)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS.len() + 1],
            sum: 0.0,
        }
    }
}

impl Series {
    fn merge(&mut self, o: &Series) {
        self.requests += o.requests;
        self.duration.merge(&o.duration);
        self.request_bytes.merge(&o.request_bytes);
        self.response_bytes.merge(&o.response_bytes);
    }
}

impl Histogram {
    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.sum += o.sum;
    }

    fn observe(&mut self, v: f64) {
        let i = BUCKETS
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += v;
    }
}

#[derive(Debug, Clone, Default)]
struct Series {
    requests: u64,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

#[derive(Debug, Clone)]
struct Key {
    destination: Arc<DestinationLabels>,
    protocol: &'static str,
    code: u16,
    flags: &'static str,
}

// The hot path hashes the labels' address, not the ~500-byte label string; a cluster replaced
// by an update gets a new address, and `render` merges series whose labels read the same.
impl PartialEq for Key {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.destination, &o.destination)
            && self.protocol == o.protocol
            && self.code == o.code
            && self.flags == o.flags
    }
}
impl Eq for Key {}
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        Arc::as_ptr(&self.destination).hash(h);
        self.protocol.hash(h);
        self.code.hash(h);
        self.flags.hash(h);
    }
}

/// The proxy's request metrics (see the module docs).
#[derive(Debug)]
pub struct Telemetry {
    source: String,
    unknown: Arc<DestinationLabels>,
    series: Mutex<HashMap<Key, Series>>,
}

impl Telemetry {
    pub fn new(node: &Node) -> Telemetry {
        let pairs = [
            ("reporter", node.reporter.as_str()),
            ("source_workload", node.workload.as_str()),
            ("source_workload_namespace", node.namespace.as_str()),
            ("source_principal", "unknown"),
            ("source_app", node.app.as_str()),
            ("source_version", node.version.as_str()),
            ("source_canonical_service", node.app.as_str()),
            ("source_canonical_revision", node.version.as_str()),
            ("source_cluster", node.cluster.as_str()),
        ];
        Telemetry {
            source: render_labels(&pairs),
            unknown: Arc::new(DestinationLabels::unknown()),
            series: Mutex::new(HashMap::new()),
        }
    }

    /// Records one finished request.
    pub fn record(&self, r: &RequestRecord) {
        let key = Key {
            destination: r
                .destination
                .clone()
                .unwrap_or_else(|| self.unknown.clone()),
            protocol: r.protocol,
            code: r.response_code,
            flags: r.response_flags,
        };
        let mut map = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = map.entry(key).or_default();
        s.requests += 1;
        s.duration.observe(r.duration_ms);
        s.request_bytes.observe(r.request_bytes as f64);
        s.response_bytes.observe(r.response_bytes as f64);
    }

    /// The Prometheus text exposition (format 0.0.4) of the request metrics and of `upstreams`.
    pub fn render(&self, upstreams: &[UpstreamStats]) -> String {
        let mut series: Vec<(Key, Series)> = Vec::new();
        {
            let map = self
                .series
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (k, v) in map.iter() {
                let same = series.iter_mut().find(|(s, _)| {
                    s.destination.rendered == k.destination.rendered
                        && (s.protocol, s.code, s.flags) == (k.protocol, k.code, k.flags)
                });
                match same {
                    Some((_, acc)) => acc.merge(v),
                    None => series.push((k.clone(), v.clone())),
                }
            }
        }
        // Stable output: by destination, then code, then flags.
        series.sort_by(|a, b| {
            (&a.0.destination.rendered, a.0.protocol, a.0.code, a.0.flags).cmp(&(
                &b.0.destination.rendered,
                b.0.protocol,
                b.0.code,
                b.0.flags,
            ))
        });
        let mut out = String::with_capacity(4096 + series.len() * 8192);
        let labels = |k: &Key| {
            format!(
                "{},{},request_protocol=\"{}\",response_code=\"{}\",grpc_response_status=\"\",response_flags=\"{}\",connection_security_policy=\"unknown\"",
                self.source, k.destination.rendered, k.protocol, k.code, k.flags
            )
        };
        header(
            &mut out,
            "istio_requests_total",
            "counter",
            "Requests, by source, destination, response code and flags (Istio standard metric).",
        );
        for (k, s) in &series {
            let _ = writeln!(out, "istio_requests_total{{{}}} {}", labels(k), s.requests);
        }
        for (name, help, pick) in [
            (
                "istio_request_duration_milliseconds",
                "Request duration to the last response byte, milliseconds (Istio standard metric).",
                (|s: &Series| &s.duration) as fn(&Series) -> &Histogram,
            ),
            (
                "istio_request_bytes",
                "Request body size, bytes (Istio standard metric).",
                |s: &Series| &s.request_bytes,
            ),
            (
                "istio_response_bytes",
                "Response body size, bytes (Istio standard metric).",
                |s: &Series| &s.response_bytes,
            ),
        ] {
            header(&mut out, name, "histogram", help);
            for (k, s) in &series {
                let l = labels(k);
                let h = pick(s);
                let mut cumulative = 0;
                for (i, b) in BUCKETS.iter().enumerate() {
                    cumulative += h.counts[i];
                    let _ = writeln!(out, "{name}_bucket{{{l},le=\"{b}\"}} {cumulative}");
                }
                cumulative += h.counts[BUCKETS.len()];
                let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {cumulative}");
                let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{l}}} {cumulative}");
            }
        }
        render_upstreams(&mut out, upstreams);
        out
    }
}

fn render_upstreams(out: &mut String, upstreams: &[UpstreamStats]) {
    header(
        out,
        "homeostat_upstream_rq_total",
        "counter",
        "Attempts per endpoint, by result (2xx, 3xx, 4xx, 5xx, connect_failure, reset, timeout, cancelled).",
    );
    for u in upstreams {
        for e in &u.endpoints {
            let c = &e.counters;
            for (result, n) in [
                ("2xx", c.rq_2xx),
                ("3xx", c.rq_3xx),
                ("4xx", c.rq_4xx),
                ("5xx", c.rq_5xx),
                ("connect_failure", c.connect_failures),
                ("reset", c.resets),
                ("timeout", c.timeouts),
                ("cancelled", c.cancelled),
            ] {
                let _ = writeln!(
                    out,
                    "homeostat_upstream_rq_total{{cluster_name=\"{}\",endpoint=\"{}\",result=\"{result}\"}} {n}",
                    escape(&u.name),
                    e.address
                );
            }
        }
    }
    header(
        out,
        "homeostat_upstream_ejections_total",
        "counter",
        "Outlier ejections enforced, per endpoint.",
    );
    for u in upstreams {
        for e in &u.endpoints {
            let _ = writeln!(
                out,
                "homeostat_upstream_ejections_total{{cluster_name=\"{}\",endpoint=\"{}\"}} {}",
                escape(&u.name),
                e.address,
                e.counters.ejections
            );
        }
    }
    header(
        out,
        "homeostat_upstream_ejected",
        "gauge",
        "1 while the endpoint is ejected by outlier detection.",
    );
    for u in upstreams {
        for e in &u.endpoints {
            let _ = writeln!(
                out,
                "homeostat_upstream_ejected{{cluster_name=\"{}\",endpoint=\"{}\"}} {}",
                escape(&u.name),
                e.address,
                u8::from(e.ejected)
            );
        }
    }
    let per_cluster: [ClusterGauge; 7] = [
        (
            "homeostat_upstream_rq_active",
            "gauge",
            "Attempts in flight.",
            |u| u.active_requests,
        ),
        (
            "homeostat_upstream_rq_retry_active",
            "gauge",
            "Retries granted and not finished.",
            |u| u.active_retries,
        ),
        (
            "homeostat_upstream_rq_retry_total",
            "counter",
            "Retries granted by the retry budget.",
            |u| u.retries,
        ),
        (
            "homeostat_upstream_rq_retry_overflow_total",
            "counter",
            "Retries refused by the retry budget.",
            |u| u.retry_overflow,
        ),
        (
            "homeostat_upstream_no_healthy_total",
            "counter",
            "Picks that found no healthy endpoint (local 503, flag UH).",
            |u| u.no_healthy_upstream,
        ),
        (
            "homeostat_outlier_ejections_overflow_total",
            "counter",
            "Ejections refused by maxEjectionPercent.",
            |u| u.outlier.ejections_overflow,
        ),
        (
            "homeostat_upstream_panic",
            "gauge",
            "1 while the balancer is in panic mode.",
            |u| u64::from(u.in_panic),
        ),
    ];
    for (name, kind, help, get) in per_cluster {
        header(out, name, kind, help);
        for u in upstreams {
            let _ = writeln!(
                out,
                "{name}{{cluster_name=\"{}\"}} {}",
                escape(&u.name),
                get(u)
            );
        }
    }
}

/// A per-cluster series: name, Prometheus type, help, and how to read it.
type ClusterGauge = (
    &'static str,
    &'static str,
    &'static str,
    fn(&UpstreamStats) -> u64,
);

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render_labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"{}\"", escape(v));
    }
    s
}

/// Prometheus label-value escaping: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(dest: &Arc<DestinationLabels>, code: u16, ms: f64) -> RequestRecord {
        RequestRecord {
            destination: Some(dest.clone()),
            protocol: "http",
            response_code: code,
            response_flags: flags::NONE,
            duration_ms: ms,
            request_bytes: 0,
            response_bytes: 120,
        }
    }

    #[test]
    fn counts_and_cumulative_buckets_are_istio_shaped() {
        let t = Telemetry::new(&Node {
            workload: "productpage-v1".into(),
            ..Node::default()
        });
        let d = Arc::new(DestinationLabels::new(&Destination {
            service: "reviews.default.svc.cluster.local".into(),
            workload: "reviews-v2".into(),
            namespace: "default".into(),
            app: "reviews".into(),
            version: "v2".into(),
        }));
        // 3 × 200 at 0.3, 4 and 7 ms; 1 × 503 at 12 ms.
        for ms in [0.3, 4.0, 7.0] {
            t.record(&record(&d, 200, ms));
        }
        t.record(&record(&d, 503, 12.0));
        let text = t.render(&[]);
        let ok = "reporter=\"source\",source_workload=\"productpage-v1\"";
        let line = |prefix: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with(prefix) && l.contains(ok) && l.contains("response_code=\"200\"")
                })
                .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
        };
        assert_eq!(line("istio_requests_total{").as_deref(), Some("3"));
        // Buckets are cumulative: ≤0.5 → 1, ≤1 → 1, ≤5 → 2, ≤10 → 3, +Inf → 3.
        let bucket = |le: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("istio_request_duration_milliseconds_bucket{")
                        && l.contains("response_code=\"200\"")
                        && l.contains(&format!("le=\"{le}\""))
                })
                .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
        };
        assert_eq!(bucket("0.5").as_deref(), Some("1"));
        assert_eq!(bucket("1").as_deref(), Some("1"));
        assert_eq!(bucket("5").as_deref(), Some("2"));
        assert_eq!(bucket("10").as_deref(), Some("3"));
        assert_eq!(bucket("+Inf").as_deref(), Some("3"));
        assert_eq!(
            line("istio_request_duration_milliseconds_sum{").as_deref(),
            Some("11.3")
        );
        assert!(text.contains("destination_service_name=\"reviews\""));
        assert!(text.contains("destination_version=\"v2\""));
        assert_eq!(
            text.matches("istio_requests_total{").count(),
            2,
            "one series per code"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
