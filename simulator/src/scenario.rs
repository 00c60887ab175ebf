//! The scenario file: topology, traffic, faults, mesh behaviour and policies, as YAML.
//!
//! Every struct denies unknown fields so a typo is an error, not a silently ignored knob. Errors
//! name the file, the line and column, and the field (serde_yaml's location, prefixed with the
//! file name). [`json_schema`] emits the JSON schema editors can validate against.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use homeostat_dataplane::config::{BalancerConfig, OutlierConfig, RetryLimit, RetryPolicy};

use crate::duration::{Duration, Nanos};

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    /// Short identifier used in reports.
    pub name: String,
    /// What the scenario tests, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Simulated time to run.
    pub duration: Duration,
    /// Seed of the ChaCha8 generator; same seed, same outputs.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How often telemetry is scraped and the control loop runs (Prometheus' default 15 s).
    #[serde(default = "default_interval")]
    pub telemetry_interval: Duration,
    pub topology: TopologySpec,
    pub traffic: TrafficSpec,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    #[serde(default)]
    pub mesh: MeshSpec,
    /// AdaptivePolicy documents, exactly as applied to a cluster.
    #[serde(default)]
    pub policies: Vec<crate::policy_doc::PolicyDocument>,
    /// Knobs of how the replay itself behaves (delays of the control plane).
    #[serde(default)]
    pub control_plane: ControlPlaneSpec,
}

fn default_seed() -> u64 {
    1
}
fn default_interval() -> Duration {
    Duration::from_secs(15)
}

/// Services, their subsets (versions) and pods, and who calls whom.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TopologySpec {
    pub services: Vec<ServiceSpec>,
    /// Number of nodes pods are spread over (pod i of every subset runs on node i mod nodes);
    /// a `nodeLoss` fault takes one node down.
    #[serde(default = "default_nodes")]
    pub nodes: u32,
}

fn default_nodes() -> u32 {
    3
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSpec {
    pub name: String,
    /// Versions of the service (DestinationRule subsets). Weights are the initial route weights.
    pub subsets: Vec<SubsetSpec>,
    /// Requests one pod serves at once (worker threads / connection limit).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Requests one pod queues beyond `concurrency` before it refuses with 503.
    #[serde(default = "default_queue")]
    pub queue: u32,
    /// Time a pod spends on its own work for one request (children calls come on top).
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    #[schemars(with = "ServiceTimeSpec")]
    pub service_time: ServiceTimeSpec,
    /// Route timeout callers apply to a call to this service, all retries included.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Downstream calls made while serving one request.
    #[serde(default)]
    pub calls: Vec<CallSpec>,
    /// Whether the calls fan out in parallel (true) or run one after another (false).
    #[serde(default)]
    pub parallel: bool,
}

fn default_concurrency() -> u32 {
    16
}
fn default_queue() -> u32 {
    64
}
fn default_timeout() -> Duration {
    Duration::from_secs(15)
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubsetSpec {
    pub name: String,
    /// Ready pods at the start.
    pub pods: u32,
    /// Initial route weight (relative; need not sum to 100).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Bounds the autoscaler keeps replicas within (HPA minReplicas / maxReplicas).
    #[serde(default)]
    pub min_pods: Option<u32>,
    #[serde(default)]
    pub max_pods: Option<u32>,
}

fn default_weight() -> u32 {
    100
}

/// Service-time distribution of one pod's own work.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServiceTimeSpec {
    /// Lognormal with the given median and shape sigma (log-space standard deviation).
    Lognormal { median: Duration, sigma: f64 },
    /// Gamma with the given mean and shape k (k = 1 is exponential).
    Gamma { mean: Duration, shape: f64 },
    /// Resample these observed durations uniformly.
    Empirical { samples: Vec<Duration> },
    /// Resample real span durations of one DeathStarBench microservice (child spans' own
    /// durations from the span CSV). Falls back to `fallback` when the file is absent.
    Spans {
        file: PathBuf,
        service: String,
        fallback: Box<ServiceTimeSpec>,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CallSpec {
    pub service: String,
    /// Chance this call is made for one request.
    #[serde(default = "one")]
    pub probability: f64,
}

fn one() -> f64 {
    1.0
}

/// Open-loop arrivals at the entry services.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficSpec {
    /// Entry services and the share of arrivals each receives.
    pub entries: Vec<EntrySpec>,
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    #[schemars(with = "ProfileSpec")]
    pub profile: ProfileSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntrySpec {
    pub service: String,
    #[serde(default = "one")]
    pub share: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ProfileSpec {
    /// Poisson arrivals at a fixed rate (requests per second).
    Constant { rate: f64 },
    /// Poisson arrivals whose rate follows a sinusoid: mean·(1 + amplitude·sin(2π(t−phase)/period)),
    /// with a trough at t = 0 when phase is 0 (a day that starts at midnight).
    Diurnal {
        mean: f64,
        amplitude: f64,
        #[serde(default = "default_day")]
        period: Duration,
    },
    /// Replay real arrival timestamps (the Azure LLM trace format,
    /// `TIMESTAMP,ContextTokens,GeneratedTokens`), `timeScale` times faster than recorded.
    Arrivals {
        file: PathBuf,
        #[serde(default = "one")]
        time_scale: f64,
    },
    /// Poisson arrivals following a request-count series (NAB `timestamp,value` CSV, linearly
    /// interpolated), replayed `timeScale` times faster than real time and rescaled so its mean
    /// is `meanRate` requests per second: the shape from the data, the level from the scenario.
    RateSeries {
        file: PathBuf,
        time_scale: f64,
        mean_rate: f64,
    },
}

fn default_day() -> Duration {
    Duration::from_secs(86_400)
}

/// One injected fault on the timeline. Effects combine; `until` ends them (recovery).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultSpec {
    /// Label in reports (defaults to a description of the effect).
    #[serde(default)]
    pub name: Option<String>,
    pub at: Duration,
    #[serde(default)]
    pub until: Option<Duration>,
    /// Service the fault hits (not needed for `surge` and `nodeLoss`).
    #[serde(default)]
    pub service: Option<String>,
    /// Restrict to one subset.
    #[serde(default)]
    pub subset: Option<String>,
    /// Restrict to one pod (index within the subset).
    #[serde(default)]
    pub pod: Option<u32>,
    /// Fraction of requests answered with a 5xx.
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Status code of those errors: 500 (an application bug; Istio does not retry it by
    /// default) or 503 (unavailable; retried). Default 500.
    #[serde(default)]
    pub error_code: Option<u16>,
    /// Service time multiplied by this factor.
    #[serde(default)]
    pub slowdown: Option<f64>,
    /// Ramp the error rate / slowdown linearly from nothing at `at` to full over this long
    /// (a creeping degradation).
    #[serde(default)]
    pub ramp: Option<Duration>,
    /// The targeted pods crash (in-flight requests fail; restart at `until`).
    #[serde(default)]
    pub crash: bool,
    /// All pods on this node crash.
    #[serde(default)]
    pub node_loss: Option<u32>,
    /// Arrival rate multiplied by this factor.
    #[serde(default)]
    pub surge: Option<f64>,
}

/// Proxy behaviour, in `homeostat-dataplane`'s own configuration types (the ones the bundled
/// proxy reads); an absent block keeps their Envoy/Istio defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshSpec {
    /// Endpoint selection (Istio default: least request, power of two choices).
    #[serde(default)]
    #[schemars(with = "serde_json::Value")]
    pub balancer: BalancerConfig,
    /// Passive health checking, as a DestinationRule's `trafficPolicy.outlierDetection`.
    /// Absent (Istio without a DestinationRule): no outlier detection at all. Present, its
    /// absent fields take Istio's defaults (5 consecutive 5xx, 10 s interval, 30 s base
    /// ejection, at most 10 % of hosts).
    #[serde(default)]
    #[schemars(with = "serde_json::Value")]
    pub outlier_detection: Option<OutlierConfig>,
    /// Route retry policy (Istio default: 2 retries on connect-failure, refused-stream,
    /// unavailable, cancelled and 503; no per-try timeout).
    #[serde(default)]
    #[schemars(with = "serde_json::Value")]
    pub retries: RetryPolicy,
    /// What limits concurrent retries in each sidecar (Istio default: no retry budget,
    /// `maxRetries` 2^32 − 1).
    #[serde(default)]
    #[schemars(with = "serde_json::Value")]
    pub retry_limit: RetryLimit,
}

impl MeshSpec {
    /// The outlier configuration the proxies run ([`OutlierConfig::off`] without one).
    pub fn outlier(&self) -> OutlierConfig {
        self.outlier_detection
            .clone()
            .unwrap_or_else(OutlierConfig::off)
    }
}

/// Delays of the control plane: how long before a decision takes effect.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlaneSpec {
    /// Config push latency: from a Plan to every proxy applying it (istiod → Envoy).
    #[serde(default = "default_push")]
    pub push_latency: Duration,
    /// From a pod being created to it passing readiness (image pull, start, probe).
    #[serde(default = "default_startup")]
    pub pod_startup: Duration,
    /// From a pod crashing to its endpoint leaving the load-balancing set (readiness probe
    /// failures × period, then EDS push).
    #[serde(default = "default_endpoint_removal")]
    pub endpoint_removal: Duration,
    /// Target CPU utilisation (percent) of every HorizontalPodAutoscaler at the start: the
    /// `hpa` baseline keeps it, homeostat may move it within its policy. A pod's CPU request
    /// is `concurrency` workers' worth.
    #[serde(default = "default_hpa_target")]
    pub hpa_target_utilization: u32,
    /// Age of the newest scrape when a controller reads it, from the scrape itself: Prometheus
    /// scrapes each target at its own fixed offset within the interval (a hash of the target),
    /// so relative to a controller's loop the newest sample is uniformly 0..interval old.
    /// Default: half the telemetry interval, the mean of that.
    #[serde(default)]
    pub scrape_offset: Option<Duration>,
    /// Further delay before a scrape can be queried through the rules the adapter reads: a
    /// recording rule evaluated every `evaluation_interval` is on average half of it behind.
    /// Default: half the telemetry interval (rules evaluated as often as targets are scraped,
    /// as kube-prometheus-stack configures both).
    #[serde(default)]
    pub rule_delay: Option<Duration>,
}

impl ControlPlaneSpec {
    /// How long after a scrape the controllers (the HPA and the policies alike) see it, in
    /// nanoseconds, for a telemetry interval of `interval` nanoseconds.
    pub fn telemetry_lag(&self, interval: u64) -> u64 {
        let half = interval / 2;
        let offset = self.scrape_offset.map_or(half, |d| d.nanos());
        let rule = self.rule_delay.map_or(half, |d| d.nanos());
        offset.saturating_add(rule)
    }
}

fn default_hpa_target() -> u32 {
    70
}

impl Default for ControlPlaneSpec {
    fn default() -> Self {
        ControlPlaneSpec {
            push_latency: default_push(),
            pod_startup: default_startup(),
            endpoint_removal: default_endpoint_removal(),
            hpa_target_utilization: default_hpa_target(),
            scrape_offset: None,
            rule_delay: None,
        }
    }
}

fn default_push() -> Duration {
    Duration::from_millis(1500)
}
fn default_startup() -> Duration {
    Duration::from_secs(30)
}
fn default_endpoint_removal() -> Duration {
    Duration::from_secs(10)
}

/// A scenario file could not be used. The message names the file, line and field.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
    #[error("{file}: {message}")]
    Io { file: String, message: String },
}

impl Scenario {
    /// Reads and validates a scenario file. Relative data paths resolve against its directory.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut scenario = Scenario::parse(&path.display().to_string(), &text)?;
        if let Some(dir) = path.parent() {
            scenario.resolve_paths(dir);
        }
        Ok(scenario)
    }

    /// Parses and validates YAML text; `file` only labels errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = serde_yaml::from_str(text).map_err(|e| ScenarioError::Parse {
            file: file.to_string(),
            // serde_yaml puts the path of the field and "at line L column C" in its message.
            message: e.to_string(),
        })?;
        scenario.validate(file)?;
        Ok(scenario)
    }

    /// The same scenario on a timeline compressed by `factor` (duration, faults, diurnal
    /// period): for quick looks and tests. Replayed traces keep their own clock and are cut.
    pub fn scaled(mut self, factor: f64) -> Scenario {
        let f = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() * factor);
        self.duration = f(self.duration);
        for x in &mut self.faults {
            x.at = f(x.at);
            x.until = x.until.map(f);
            x.ramp = x.ramp.map(f);
        }
        if let ProfileSpec::Diurnal { period, .. } = &mut self.traffic.profile {
            *period = f(*period);
        }
        self
    }

    /// Data files the scenario reads (traces, series, spans).
    pub fn data_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        match &self.traffic.profile {
            ProfileSpec::Arrivals { file, .. } | ProfileSpec::RateSeries { file, .. } => {
                out.push(file.clone())
            }
            _ => {}
        }
        for s in &self.topology.services {
            let mut st = &s.service_time;
            while let ServiceTimeSpec::Spans { file, fallback, .. } = st {
                if !out.contains(file) {
                    out.push(file.clone());
                }
                st = fallback;
            }
        }
        out
    }

    /// Points every reference to data file `from` at `to`.
    pub fn replace_data_path(&mut self, from: &Path, to: &Path) {
        let fix = |p: &mut PathBuf| {
            if p == from {
                *p = to.to_path_buf();
            }
        };
        match &mut self.traffic.profile {
            ProfileSpec::Arrivals { file, .. } | ProfileSpec::RateSeries { file, .. } => fix(file),
            _ => {}
        }
        for s in &mut self.topology.services {
            let mut st = &mut s.service_time;
            while let ServiceTimeSpec::Spans { file, fallback, .. } = st {
                fix(file);
                st = fallback;
            }
        }
    }

    /// Resolves relative data paths against `dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        match &mut self.traffic.profile {
            ProfileSpec::Arrivals { file, .. } | ProfileSpec::RateSeries { file, .. } => fix(file),
            _ => {}
        }
        for s in &mut self.topology.services {
            let mut st = &mut s.service_time;
            while let ServiceTimeSpec::Spans { file, fallback, .. } = st {
                fix(file);
                st = fallback;
            }
        }
    }

    /// Cross-field checks serde cannot express.
    pub fn validate(&self, file: &str) -> Result<(), ScenarioError> {
        let bad = |field: String, message: String| ScenarioError::Invalid {
            file: file.to_string(),
            field,
            message,
        };
        if self.duration.nanos() == 0 {
            return Err(bad("duration".into(), "must be positive".into()));
        }
        if self.telemetry_interval.nanos() == 0 {
            return Err(bad("telemetryInterval".into(), "must be positive".into()));
        }
        // A lag of a day or more is a typo (and would never let a controller see anything).
        let day = 86_400 * 1_000_000_000u64;
        for (field, d) in [
            (
                "controlPlane.scrapeOffset",
                self.control_plane.scrape_offset,
            ),
            ("controlPlane.ruleDelay", self.control_plane.rule_delay),
        ] {
            if let Some(d) = d
                && d.nanos() >= day
            {
                return Err(bad(field.into(), "must be shorter than a day".into()));
            }
        }
        if self.topology.services.is_empty() {
            return Err(bad(
                "topology.services".into(),
                "needs at least one service".into(),
            ));
        }
        if self.topology.nodes == 0 {
            return Err(bad("topology.nodes".into(), "must be at least 1".into()));
        }
        let names: Vec<&str> = self
            .topology
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        for (i, s) in self.topology.services.iter().enumerate() {
            let at = format!("topology.services[{i}]");
            if names.iter().filter(|n| **n == s.name).count() > 1 {
                return Err(bad(
                    format!("{at}.name"),
                    format!("service {:?} defined twice", s.name),
                ));
            }
            if s.subsets.is_empty() {
                return Err(bad(
                    format!("{at}.subsets"),
                    "needs at least one subset".into(),
                ));
            }
            if s.concurrency == 0 {
                return Err(bad(
                    format!("{at}.concurrency"),
                    "must be at least 1".into(),
                ));
            }
            for (j, sub) in s.subsets.iter().enumerate() {
                if sub.max_pods == Some(0) {
                    return Err(bad(
                        format!("{at}.subsets[{j}].maxPods"),
                        "must be at least 1".into(),
                    ));
                }
                // As a HorizontalPodAutoscaler's minReplicas: 0 needs Kubernetes' alpha
                // HPAScaleToZero gate, off by default, and the HPA algorithm cannot scale up
                // from zero pods (no utilisation to read).
                if sub.min_pods == Some(0) {
                    return Err(bad(
                        format!("{at}.subsets[{j}].minPods"),
                        "must be at least 1, as an HPA's minReplicas (scaling to zero needs \
                         Kubernetes' alpha HPAScaleToZero gate)"
                            .into(),
                    ));
                }
                if let (Some(lo), Some(hi)) = (sub.min_pods, sub.max_pods)
                    && lo > hi
                {
                    return Err(bad(
                        format!("{at}.subsets[{j}].minPods"),
                        format!("minPods {lo} exceeds maxPods {hi}"),
                    ));
                }
            }
            validate_service_time(&s.service_time, &format!("{at}.serviceTime"), &bad)?;
            for (j, c) in s.calls.iter().enumerate() {
                if !names.contains(&c.service.as_str()) {
                    return Err(bad(
                        format!("{at}.calls[{j}].service"),
                        format!("unknown service {:?}", c.service),
                    ));
                }
                if !(0.0..=1.0).contains(&c.probability) {
                    return Err(bad(
                        format!("{at}.calls[{j}].probability"),
                        format!("{} is not within 0..1", c.probability),
                    ));
                }
            }
        }
        if let Some(cycle) = find_cycle(&self.topology.services) {
            return Err(bad(
                "topology.services".into(),
                format!("the call graph has a cycle through {cycle:?}"),
            ));
        }
        if self.traffic.entries.is_empty() {
            return Err(bad(
                "traffic.entries".into(),
                "needs at least one entry".into(),
            ));
        }
        for (i, e) in self.traffic.entries.iter().enumerate() {
            if !names.contains(&e.service.as_str()) {
                return Err(bad(
                    format!("traffic.entries[{i}].service"),
                    format!("unknown service {:?}", e.service),
                ));
            }
            if !(e.share.is_finite() && e.share > 0.0) {
                return Err(bad(
                    format!("traffic.entries[{i}].share"),
                    "must be positive".into(),
                ));
            }
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        match &self.traffic.profile {
            ProfileSpec::Constant { rate } if !positive(*rate) => {
                return Err(bad(
                    "traffic.profile.constant.rate".into(),
                    "must be positive".into(),
                ));
            }
            ProfileSpec::Diurnal {
                mean, amplitude, ..
            } if !positive(*mean) || !(0.0..=1.0).contains(amplitude) => {
                return Err(bad(
                    "traffic.profile.diurnal".into(),
                    "mean must be positive and amplitude within 0..1".into(),
                ));
            }
            ProfileSpec::Arrivals { time_scale, .. } if !positive(*time_scale) => {
                return Err(bad(
                    "traffic.profile.arrivals.timeScale".into(),
                    "must be positive".into(),
                ));
            }
            ProfileSpec::RateSeries {
                time_scale,
                mean_rate,
                ..
            } if !positive(*time_scale) || !positive(*mean_rate) => {
                return Err(bad(
                    "traffic.profile.rateSeries".into(),
                    "timeScale and meanRate must be positive".into(),
                ));
            }
            _ => {}
        }
        for (i, f) in self.faults.iter().enumerate() {
            let at = format!("faults[{i}]");
            if let Some(s) = &f.service {
                let Some(svc) = self.topology.services.iter().find(|x| &x.name == s) else {
                    return Err(bad(
                        format!("{at}.service"),
                        format!("unknown service {s:?}"),
                    ));
                };
                if let Some(sub) = &f.subset
                    && !svc.subsets.iter().any(|x| &x.name == sub)
                {
                    return Err(bad(
                        format!("{at}.subset"),
                        format!("unknown subset {sub:?}"),
                    ));
                }
            } else if f.error_rate.is_some() || f.slowdown.is_some() || f.crash {
                return Err(bad(
                    format!("{at}.service"),
                    "errorRate, slowdown and crash need a target service".into(),
                ));
            }
            if let Some(r) = f.error_rate
                && !(0.0..=1.0).contains(&r)
            {
                return Err(bad(
                    format!("{at}.errorRate"),
                    format!("{r} is not within 0..1"),
                ));
            }
            if let Some(c) = f.error_code
                && !(500..=599).contains(&c)
            {
                return Err(bad(
                    format!("{at}.errorCode"),
                    format!("{c} is not a 5xx status"),
                ));
            }
            if let Some(s) = f.slowdown
                && !(s.is_finite() && s >= 1.0)
            {
                return Err(bad(format!("{at}.slowdown"), "must be at least 1".into()));
            }
            if let Some(s) = f.surge
                && !positive(s)
            {
                return Err(bad(format!("{at}.surge"), "must be positive".into()));
            }
            if let Some(n) = f.node_loss
                && n >= self.topology.nodes
            {
                return Err(bad(
                    format!("{at}.nodeLoss"),
                    format!("node {n} does not exist (nodes: {})", self.topology.nodes),
                ));
            }
            if let Some(u) = f.until
                && u <= f.at
            {
                return Err(bad(format!("{at}.until"), "must be after `at`".into()));
            }
        }
        let mesh = [
            self.mesh.balancer.validate(),
            self.mesh
                .outlier_detection
                .as_ref()
                .map_or(Ok(()), OutlierConfig::validate),
            self.mesh.retries.validate(),
            self.mesh.retry_limit.validate(),
        ];
        for (block, r) in ["balancer", "outlierDetection", "retries", "retryLimit"]
            .iter()
            .zip(mesh)
        {
            if let Err(e) = r {
                return Err(bad(format!("mesh.{block}.{}", e.field), e.message));
            }
        }
        for (i, p) in self.policies.iter().enumerate() {
            p.validate().map_err(|m| bad(format!("policies[{i}]"), m))?;
            let target = p.target_service().unwrap_or_default();
            if !names.contains(&target) {
                return Err(bad(
                    format!("policies[{i}].spec.target.service"),
                    format!("unknown service {target:?}"),
                ));
            }
        }
        Ok(())
    }
}

fn validate_service_time(
    st: &ServiceTimeSpec,
    at: &str,
    bad: &dyn Fn(String, String) -> ScenarioError,
) -> Result<(), ScenarioError> {
    match st {
        ServiceTimeSpec::Lognormal { median, sigma } => {
            if median.nanos() == 0 || !(sigma.is_finite() && *sigma >= 0.0) {
                return Err(bad(
                    format!("{at}.lognormal"),
                    "median must be positive and sigma non-negative".into(),
                ));
            }
        }
        ServiceTimeSpec::Gamma { mean, shape } => {
            if mean.nanos() == 0 || !(shape.is_finite() && *shape > 0.0) {
                return Err(bad(
                    format!("{at}.gamma"),
                    "mean and shape must be positive".into(),
                ));
            }
        }
        ServiceTimeSpec::Empirical { samples } => {
            if samples.is_empty() {
                return Err(bad(format!("{at}.empirical.samples"), "is empty".into()));
            }
        }
        ServiceTimeSpec::Spans { fallback, .. } => {
            validate_service_time(fallback, &format!("{at}.spans.fallback"), bad)?;
        }
    }
    Ok(())
}

/// Depth-first search for a cycle; requests must terminate, so the call graph is a DAG.
fn find_cycle(services: &[ServiceSpec]) -> Option<String> {
    fn visit(i: usize, services: &[ServiceSpec], state: &mut [u8]) -> Option<String> {
        state[i] = 1;
        for c in &services[i].calls {
            let j = services.iter().position(|s| s.name == c.service)?;
            match state[j] {
                1 => return Some(services[j].name.clone()),
                0 => {
                    if let Some(n) = visit(j, services, state) {
                        return Some(n);
                    }
                }
                _ => {}
            }
        }
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; services.len()];
    (0..services.len()).find_map(|i| {
        if state[i] == 0 {
            visit(i, services, &mut state)
        } else {
            None
        }
    })
}

/// The JSON schema of scenario files.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Scenario)).unwrap_or_default()
}
