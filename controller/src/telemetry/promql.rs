//! Every PromQL query homeostat sends, in one place.
//!
//! The queries read Istio's standard metrics and the Kubernetes CPU metrics, and use only PromQL
//! that Thanos and Mimir also evaluate (`rate`, `sum by`, `histogram_quantile` over classic
//! buckets, arithmetic between vectors; no subqueries, no `@` modifier, no native histograms).
//!
//! ## Which side reports
//!
//! Istio's sidecars report every request twice: `reporter="source"` (the caller's proxy) and
//! `reporter="destination"` (the server's proxy). homeostat reads `reporter="destination"`:
//!
//! * it is the server's own count of every attempt it received, retries included, which is what
//!   the Observation's `requestRate` means ("as the server counts them") and what the simulator
//!   scrapes (`simulator/src/telemetry.rs` counts at the pod);
//! * each series is scraped from the serving pod, so its `pod` label (added by Prometheus'
//!   `kubernetes-pods` relabelling, `__meta_kubernetes_pod_name` → `pod`, as in Istio's sample
//!   Prometheus) names the endpoint — per-pod signals need nothing more. Source-side series
//!   carry the *caller's* pod. Operators whose scrape config names it differently (the Prometheus
//!   Operator's `PodMonitor` examples use `pod_name`) set [`Labels::pod`];
//! * callers outside the mesh (ingress from plain clients) have no source proxy, so the source
//!   side misses their traffic.
//!
//! The cost: failures the server never sees (connect failures, the caller's own timeouts) are
//! missing. Outlier detection reacts to exactly those only on the caller side; the Governor's
//! planners work from 5xx and latency, which the server reports.
//!
//! One question only the callers' side answers: what the callers finally got, after their
//! retries. So request and success rates and the duration buckets are also read with
//! `reporter="source"`, per service ([`Level::Callers`], the Observation's `callers`): a pod failing 44 % of its tries behind
//! Istio's default retries fails almost no call, and the outlier planner leaves alone what the
//! callers do not see (`models/src/governor/outlier/survey.rs`). Callers outside the mesh are missing
//! from it; a service with none in the mesh has no such series, and the planner then goes by
//! the server's side alone, as before.
//!
//! ## Grouping
//!
//! Each signal is read at three levels, one query each, grouped by the labels that identify it:
//! the service (`destination_service_namespace`, `destination_service_name`), the subset (plus
//! `destination_version`, the DestinationRule subset's `version` label) and the pod (plus the
//! pod label). A query covers every service of a batch at once; the results are fanned out to
//! the policies by those labels (see `fanout.rs`).
//!
//! ## Windows
//!
//! Point `i` of a window is the rate over the last `window` seconds before its evaluation time.
//! [`rate_window`] picks `step + scrape/2`: with scrapes every `scrape` seconds it holds exactly
//! the scrapes of the last step plus the one before, so `rate()`'s extrapolation reaches exactly
//! back to the previous step and the point equals `increase over the step / step` — the same
//! per-interval number the simulator computes — whether the range is left-closed (Prometheus 2)
//! or left-open (Prometheus 3), and half a scrape of jitter still leaves two samples.
//!
//! Latency is read as bucket rates: one query, `sum by (service, version, pod, le)
//! (rate(istio_request_duration_milliseconds_bucket[...]))` (Istio's default buckets), from
//! which `quantiles.rs` computes p50 / p90 / p99 at every level exactly as
//! `histogram_quantile(q, sum by (<level>, le) (...)) / 1000` would — nine queries, each
//! selecting every bucket series again, cost Prometheus several times more (see there). A window
//! without requests yields NaN (Prometheus answers 0/0 = NaN for the ratio and no bucket for the
//! quantile), never 0.

//! ## CPU utilisation (for the HPA)
//!
//! The HPA's `Resource` CPU metric divides the pods' summed usage by their summed requests, over
//! all containers. homeostat asks for the two halves per pod —
//! `container_cpu_usage_seconds_total` (cAdvisor via the kubelet) and
//! `kube_pod_container_resource_requests{resource="cpu"}` (kube-state-metrics v2) — and sums them
//! over the pods the Istio series place in each service and subset: neither metric carries the
//! service, and a PromQL join on pod labels would need label allow-lists in kube-state-metrics.

use std::fmt::Write as _;

/// A time series homeostat reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// Requests per second.
    RequestRate,
    /// Share of non-5xx responses.
    SuccessRate,
    /// `histogram_quantile(0.5, ...)`, seconds.
    LatencyP50,
    /// `histogram_quantile(0.9, ...)`, seconds.
    LatencyP90,
    /// `histogram_quantile(0.99, ...)`, seconds.
    LatencyP99,
    /// Per-pod rates of the duration buckets, by `le`: fetched, never filed — `quantiles.rs`
    /// turns them into the three latency signals at every level.
    LatencyBuckets,
    /// CPU seconds per second used by a pod's containers (numerator of utilisation).
    CpuUsage,
    /// CPU cores requested by a pod's containers (denominator of utilisation).
    CpuRequests,
}

impl Signal {
    /// The signals read from Istio's metrics, at every level.
    pub const ISTIO: [Signal; 5] = [
        Signal::RequestRate,
        Signal::SuccessRate,
        Signal::LatencyP50,
        Signal::LatencyP90,
        Signal::LatencyP99,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::RequestRate => "request rate",
            Signal::SuccessRate => "success rate",
            Signal::LatencyP50 => "latency p50",
            Signal::LatencyP90 => "latency p90",
            Signal::LatencyP99 => "latency p99",
            Signal::LatencyBuckets => "latency buckets",
            Signal::CpuUsage => "cpu usage",
            Signal::CpuRequests => "cpu requests",
        }
    }
}

/// Which grouping of the Istio series a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Service,
    Subset,
    Pod,
    /// The whole service as its callers' proxies report it (`reporter="source"`; see the
    /// module docs): rates and duration buckets, per service.
    Callers,
}

impl Level {
    /// The levels of the server's side, where every signal is read.
    pub const ALL: [Level; 3] = [Level::Service, Level::Subset, Level::Pod];

    pub fn name(self) -> &'static str {
        match self {
            Level::Service => "service",
            Level::Subset => "subset",
            Level::Pod => "pod",
            Level::Callers => "callers",
        }
    }
}

/// Label names that depend on the scrape configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// The label naming the pod a series was scraped from (`pod` in Istio's sample Prometheus).
    pub pod: String,
    /// The namespace label of the Kubernetes CPU metrics (`namespace` for cAdvisor and
    /// kube-state-metrics).
    pub namespace: String,
}

impl Default for Labels {
    fn default() -> Self {
        Self {
            pod: "pod".to_string(),
            namespace: "namespace".to_string(),
        }
    }
}

pub const SERVICE_NAMESPACE: &str = "destination_service_namespace";
pub const SERVICE_NAME: &str = "destination_service_name";
pub const VERSION: &str = "destination_version";
/// A classic histogram bucket's upper bound.
pub const LE: &str = "le";

/// Which services a query covers: namespaces and service names, matched as sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub namespaces: Vec<String>,
    pub services: Vec<String>,
}

/// The window of `rate()`: one step plus half a scrape interval (see the module docs).
pub fn rate_window(step_seconds: i64, scrape_seconds: i64) -> String {
    // Milliseconds keep half an odd scrape interval exact.
    let ms = step_seconds.max(1) * 1000 + scrape_seconds.max(1) * 500;
    format!("{ms}ms")
}

/// The PromQL for `signal` at `level` over the selected services.
pub fn query(
    signal: Signal,
    level: Level,
    sel: &Selection,
    labels: &Labels,
    window: &str,
) -> String {
    let by = group_by(level, labels);
    let istio = istio_matchers(sel, level);
    let requests = |extra: &str| {
        format!("sum by ({by}) (rate(istio_requests_total{{{istio}{extra}}}[{window}]))")
    };
    let quantile = |q: &str| {
        format!(
            "histogram_quantile({q}, sum by ({by}, le) \
             (rate(istio_request_duration_milliseconds_bucket{{{istio}}}[{window}]))) / 1000"
        )
    };
    match signal {
        Signal::RequestRate => requests(""),
        // 0/0 (no requests in the window) is NaN: "unknown", which is what we want.
        Signal::SuccessRate => {
            format!("{} / {}", requests(",response_code!~\"5..\""), requests(""))
        }
        Signal::LatencyP50 => quantile("0.5"),
        Signal::LatencyP90 => quantile("0.9"),
        Signal::LatencyP99 => quantile("0.99"),
        Signal::LatencyBuckets => format!(
            "sum by ({by}, {LE}) \
             (rate(istio_request_duration_milliseconds_bucket{{{istio}}}[{window}]))"
        ),
        Signal::CpuUsage => format!(
            "sum by ({ns}, {pod}) (rate(container_cpu_usage_seconds_total{{{m}}}[{window}]))",
            ns = labels.namespace,
            pod = labels.pod,
            // container="" is the cgroup total of the pod and "POD" the pause container:
            // both would double count.
            m = cpu_matchers(sel, labels, "container!=\"\",container!=\"POD\""),
        ),
        Signal::CpuRequests => format!(
            "sum by ({ns}, {pod}) (kube_pod_container_resource_requests{{{m}}})",
            ns = labels.namespace,
            pod = labels.pod,
            m = cpu_matchers(sel, labels, "resource=\"cpu\""),
        ),
    }
}

fn group_by(level: Level, labels: &Labels) -> String {
    let mut by = format!("{SERVICE_NAMESPACE}, {SERVICE_NAME}");
    match level {
        Level::Service | Level::Callers => {}
        Level::Subset => {
            let _ = write!(by, ", {VERSION}");
        }
        Level::Pod => {
            let _ = write!(by, ", {VERSION}, {}", labels.pod);
        }
    }
    by
}

fn istio_matchers(sel: &Selection, level: Level) -> String {
    let mut m = match level {
        Level::Callers => "reporter=\"source\"",
        _ => "reporter=\"destination\"",
    }
    .to_string();
    push_set(&mut m, SERVICE_NAMESPACE, &sel.namespaces);
    push_set(&mut m, SERVICE_NAME, &sel.services);
    m
}

fn cpu_matchers(sel: &Selection, labels: &Labels, extra: &str) -> String {
    let mut m = extra.to_string();
    push_set(&mut m, &labels.namespace, &sel.namespaces);
    m
}

/// `,label="v"` for one value, `,label=~"a|b"` for several (Prometheus turns an alternation of
/// literals into a set lookup), nothing for none (all).
fn push_set(m: &mut String, label: &str, values: &[String]) {
    match values {
        [] => {}
        [one] => {
            let _ = write!(m, ",{label}=\"{}\"", escape_string(one));
        }
        many => {
            let alts: Vec<String> = many.iter().map(|v| escape_regex(v)).collect();
            let _ = write!(m, ",{label}=~\"{}\"", escape_string(&alts.join("|")));
        }
    }
}

/// A query for an error message: a batch's set of 10,000 service names would drown the reason.
pub fn abbreviated(query: &str) -> String {
    const KEEP: usize = 300;
    match query.char_indices().nth(KEEP) {
        Some((i, _)) => format!("{}… ({} bytes)", &query[..i], query.len()),
        None => query.to_string(),
    }
}

/// A PromQL double-quoted string literal's body.
fn escape_string(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A literal inside an RE2 alternation.
fn escape_regex(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> Selection {
        Selection {
            namespaces: vec!["shop".into()],
            services: vec!["checkout".into()],
        }
    }

    #[test]
    fn long_queries_are_abbreviated_in_errors() {
        assert_eq!(abbreviated("up"), "up");
        // 1000 × "a" keeps 300 characters and says how long it was.
        let long = "a".repeat(1000);
        assert_eq!(
            abbreviated(&long),
            format!("{}… (1000 bytes)", "a".repeat(300))
        );
    }

    #[test]
    fn window_is_a_step_and_half_a_scrape() {
        // 15 s step, 15 s scrapes: 15 000 + 7 500 ms.
        assert_eq!(rate_window(15, 15), "22500ms");
        // 60 s step, 15 s scrapes: 60 000 + 7 500 ms.
        assert_eq!(rate_window(60, 15), "67500ms");
    }

    #[test]
    fn request_rate_per_subset_reads_the_destination_side() {
        let q = query(
            Signal::RequestRate,
            Level::Subset,
            &one(),
            &Labels::default(),
            "22500ms",
        );
        assert_eq!(
            q,
            "sum by (destination_service_namespace, destination_service_name, destination_version) \
             (rate(istio_requests_total{reporter=\"destination\",destination_service_namespace=\"shop\",\
             destination_service_name=\"checkout\"}[22500ms]))"
        );
    }

    #[test]
    fn success_rate_is_non_5xx_over_all() {
        let q = query(
            Signal::SuccessRate,
            Level::Service,
            &Selection::default(),
            &Labels::default(),
            "1m",
        );
        assert_eq!(
            q,
            "sum by (destination_service_namespace, destination_service_name) \
             (rate(istio_requests_total{reporter=\"destination\",response_code!~\"5..\"}[1m])) / \
             sum by (destination_service_namespace, destination_service_name) \
             (rate(istio_requests_total{reporter=\"destination\"}[1m]))"
        );
    }

    #[test]
    fn the_callers_success_rate_reads_the_source_side_per_service() {
        let q = query(
            Signal::SuccessRate,
            Level::Callers,
            &one(),
            &Labels::default(),
            "1m",
        );
        assert_eq!(
            q,
            "sum by (destination_service_namespace, destination_service_name) \
             (rate(istio_requests_total{reporter=\"source\",destination_service_namespace=\"shop\",\
             destination_service_name=\"checkout\",response_code!~\"5..\"}[1m])) / \
             sum by (destination_service_namespace, destination_service_name) \
             (rate(istio_requests_total{reporter=\"source\",destination_service_namespace=\"shop\",\
             destination_service_name=\"checkout\"}[1m]))"
        );
    }

    #[test]
    fn quantiles_keep_le_and_convert_to_seconds() {
        let labels = Labels {
            pod: "pod_name".into(),
            ..Labels::default()
        };
        let q = query(Signal::LatencyP99, Level::Pod, &one(), &labels, "1m");
        assert!(q.starts_with("histogram_quantile(0.99, sum by (destination_service_namespace, destination_service_name, destination_version, pod_name, le)"), "{q}");
        assert!(q.ends_with("[1m]))) / 1000"), "{q}");
    }

    #[test]
    fn bucket_rates_are_per_pod_and_keep_le() {
        let labels = Labels {
            pod: "pod_name".into(),
            ..Labels::default()
        };
        let q = query(Signal::LatencyBuckets, Level::Pod, &one(), &labels, "1m");
        assert_eq!(
            q,
            "sum by (destination_service_namespace, destination_service_name, \
             destination_version, pod_name, le) \
             (rate(istio_request_duration_milliseconds_bucket{reporter=\"destination\",\
             destination_service_namespace=\"shop\",destination_service_name=\"checkout\"}[1m]))"
        );
    }

    #[test]
    fn batches_match_service_sets_and_escape_them() {
        let sel = Selection {
            namespaces: vec!["a".into(), "b".into()],
            services: vec!["x.y".into(), "z".into()],
        };
        let q = query(
            Signal::RequestRate,
            Level::Service,
            &sel,
            &Labels::default(),
            "1m",
        );
        // The dot is a regex metacharacter: escaped for RE2 (\.), then for the string (\\.).
        assert!(
            q.contains(
                "destination_service_namespace=~\"a|b\",destination_service_name=~\"x\\\\.y|z\""
            ),
            "{q}"
        );
    }

    #[test]
    fn cpu_queries_group_by_pod_and_skip_pause_and_cgroup_totals() {
        let q = query(
            Signal::CpuUsage,
            Level::Pod,
            &one(),
            &Labels::default(),
            "1m",
        );
        assert_eq!(
            q,
            "sum by (namespace, pod) (rate(container_cpu_usage_seconds_total\
             {container!=\"\",container!=\"POD\",namespace=\"shop\"}[1m]))"
        );
        let q = query(
            Signal::CpuRequests,
            Level::Pod,
            &one(),
            &Labels::default(),
            "1m",
        );
        assert_eq!(
            q,
            "sum by (namespace, pod) (kube_pod_container_resource_requests\
             {resource=\"cpu\",namespace=\"shop\"})"
        );
    }
}
