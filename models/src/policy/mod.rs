//! The `AdaptivePolicy` spec: the single source of truth for the CRD, the simulator's scenario
//! files and the CLI.
//!
//! Every field carries a doc comment because schemars turns them into the CRD's OpenAPI
//! descriptions (what `kubectl explain` prints). Every field has a default except the governed
//! service, so a minimal policy is just `target: {service: checkout}`. Ratios are in [0, 1],
//! percentages in [0, 100], durations Go-style strings.

mod duration;
mod validate;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use duration::{DURATION_PATTERN, Duration, DurationError};
pub use validate::FieldError;

/// The desired state of an `AdaptivePolicy`: which service to govern, the objectives it defends,
/// which knobs the Governor may turn and within which bounds, and the guardrails on changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// DryRun recommends only (status, Events, metrics); Enforce applies changes. The decision
    /// itself is the same in both modes.
    #[serde(default)]
    pub mode: Mode,
    /// The service being governed and the mesh objects that carry its knobs.
    pub target: Target,
    /// Where telemetry comes from and how often the control loop runs.
    #[serde(default)]
    pub telemetry: Telemetry,
    /// The service level objectives the policy defends.
    #[serde(default)]
    pub objectives: Objectives,
    /// The knobs the Governor may turn, each with its bounds.
    #[serde(default)]
    pub controls: Controls,
    /// Actions to take immediately when a matching alert fires (Alertmanager webhook).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remediation: Vec<Remediation>,
    /// Limits on how often and when changes may be made, and automatic rollback.
    #[serde(default)]
    pub guardrails: Guardrails,
}

/// Whether changes are applied or only recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    /// Recommend only: the plan is published in status, Events and metrics, never applied.
    #[default]
    DryRun,
    /// Apply the plan through the mesh's control plane, within the guardrails.
    Enforce,
}

/// Which mesh carries the knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mesh {
    /// Istio: VirtualService, DestinationRule and HorizontalPodAutoscaler objects.
    #[default]
    Istio,
    /// homeostat's bundled proxy, configured over xDS.
    Bundled,
}

/// The governed service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The Kubernetes Service / mesh host being governed, e.g. `checkout`.
    pub service: String,
    /// The mesh whose control plane applies the changes: `istio` or `bundled`.
    #[serde(default)]
    pub mesh: Mesh,
    /// DestinationRule subsets (versions) whose traffic weights may move, e.g. `[stable, canary]`.
    /// The first one is the stable subset unless `controls.loadBalancing.stableSubset` says
    /// otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<String>,
    /// Name of the HorizontalPodAutoscaler scaling the service, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler: Option<String>,
}

/// Telemetry source and loop timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Telemetry {
    /// Base URL of the Prometheus-compatible query API; empty means the adapter's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
    /// How often the control loop runs, e.g. `15s`.
    #[serde(default = "defaults::interval")]
    pub interval: Duration,
    /// How much history the models see on each run, e.g. `1h`.
    #[serde(default = "defaults::lookback")]
    pub lookback: Duration,
}

/// The service level objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Objectives {
    /// Target share of successful (non-5xx) requests, a ratio in (0, 1], e.g. `0.999`.
    #[serde(default = "defaults::success_rate")]
    pub success_rate: f64,
    /// Target 99th percentile latency, e.g. `300ms`.
    #[serde(default = "defaults::latency_p99")]
    pub latency_p99: Duration,
}

/// The four knobs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Controls {
    /// Traffic weights between subsets (VirtualService route weights).
    #[serde(default)]
    pub load_balancing: LoadBalancing,
    /// Outlier detection thresholds (DestinationRule `trafficPolicy.outlierDetection`).
    #[serde(default)]
    pub outlier_detection: OutlierDetection,
    /// Retry policy (VirtualService `retries`).
    #[serde(default)]
    pub retries: Retries,
    /// HorizontalPodAutoscaler target utilisation and replica bounds.
    #[serde(default)]
    pub autoscaling: Autoscaling,
}

/// Bounds on subset weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancing {
    /// Whether the Governor may move traffic weights.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Largest change of any subset's weight in one step, in percentage points (1..=100).
    #[serde(default = "defaults::max_step_percent")]
    pub max_step_percent: u32,
    /// No subset is cut below this weight, in percent (0..100); subsets already below it are
    /// left alone.
    #[serde(default)]
    pub min_weight_percent: u32,
    /// The subset that `shiftToStable` sends traffic to; defaults to the first of
    /// `target.subsets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_subset: Option<String>,
}

/// Bounds for outlier detection, derived from the observed error base rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Whether the Governor may change outlier detection.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Budget of ejections of healthy endpoints by chance, per endpoint per hour (> 0). The
    /// consecutive-error threshold is the smallest that keeps chance ejections under it.
    #[serde(default = "defaults::false_ejections_per_hour")]
    pub false_ejections_per_hour: f64,
    /// Bounds on `consecutive5xxErrors` (1..=1000).
    #[serde(default = "defaults::consecutive_errors")]
    pub consecutive_errors: CountRange,
    /// Bounds on `maxEjectionPercent`, the share of endpoints that may be ejected at once
    /// (0..=100).
    #[serde(default = "defaults::max_ejection_percent")]
    pub max_ejection_percent: CountRange,
    /// Bounds on the ejection sweep `interval`.
    #[serde(default = "defaults::outlier_interval")]
    pub interval: DurationRange,
    /// Bounds on `baseEjectionTime` (an endpoint ejected n times stays out n times this long).
    #[serde(default = "defaults::base_ejection_time")]
    pub base_ejection_time: DurationRange,
}

/// Bounds for the retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retries {
    /// Whether the Governor may change retries.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Largest number of retries per request (Istio's `attempts`) the Governor may set,
    /// 1..=10. Absent: 3, or the route's own `attempts` where it has more (see
    /// [`Retries::attempts_ceiling`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Retry budget: retries may add at most this percentage of load (0..=100]. With
    /// independent failures at rate p, n retries cost about (1−p^(n+1))/(1−p) − 1 extra load.
    #[serde(default = "defaults::budget_percent")]
    pub budget_percent: f64,
    /// Bounds on the per-try timeout.
    #[serde(default = "defaults::per_try_timeout")]
    pub per_try_timeout: DurationRange,
    /// The owner's word that every request to this service is safe to send twice (reads, or
    /// writes made idempotent by a request key), so the Governor may add `5xx` to `retryOn`
    /// when failures independent of load exceed the error budget. Off by default: whether a
    /// 500 may be retried is the application's business, and the telemetry cannot tell.
    #[serde(default)]
    pub idempotent: bool,
}

/// Bounds for the HorizontalPodAutoscaler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    /// Whether the Governor may change the HorizontalPodAutoscaler.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Bounds on the target CPU utilisation the Governor may set, in percent (1..=100).
    /// Absent: 40..=85 %, widened to take in the HPA's own target (see
    /// [`Autoscaling::target_range`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_utilization: Option<CountRange>,
    /// Smallest `minReplicas` the Governor may set (>= 1).
    #[serde(default = "defaults::min_replicas")]
    pub min_replicas: u32,
    /// Largest replica count the Governor may ask for (>= minReplicas). Absent: the
    /// HorizontalPodAutoscaler's own `maxReplicas`, the cap its owner already set. (A default
    /// of its own would be enforced on every HPA above it: a service running 30 pods under an
    /// HPA capped at 50 would be cut to the default at the first loop, with no evidence.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u32>,
    /// How far ahead demand is forecast when pod start-up time is unknown, e.g. `10m`.
    #[serde(default = "defaults::forecast_horizon")]
    pub forecast_horizon: Duration,
    /// Coverage of the forecast interval whose upper bound capacity is planned for, in (0, 1).
    #[serde(default = "defaults::forecast_coverage")]
    pub forecast_coverage: f64,
}

/// An inclusive range of whole numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CountRange {
    /// Smallest allowed value.
    pub min: u32,
    /// Largest allowed value.
    pub max: u32,
}

impl CountRange {
    pub fn clamp(&self, v: u32) -> u32 {
        v.max(self.min).min(self.max.max(self.min))
    }
}

/// An inclusive range of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DurationRange {
    /// Shortest allowed value.
    pub min: Duration,
    /// Longest allowed value.
    pub max: Duration,
}

impl DurationRange {
    pub fn clamp(&self, v: Duration) -> Duration {
        v.max(self.min).min(self.max.max(self.min))
    }
}

/// One alert-triggered remediation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Remediation {
    /// Which alerts trigger it.
    pub on_alert: AlertMatch,
    /// What to do, in order, through the same guardrails as the control loop.
    pub actions: Vec<RemediationAction>,
}

/// Matches an alert by name and, optionally, labels (all must be equal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertMatch {
    /// The alert's `alertname` label.
    pub alertname: String,
    /// Other labels the alert must carry, with these exact values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// An action a remediation can take.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum RemediationAction {
    /// Tighten outlier detection to its incident setting so bad endpoints leave quickly.
    EjectOutliers,
    /// Move weight to the stable subset, by at most `maxStepPercent`.
    ShiftToStable,
    /// Raise `minReplicas` ahead of the autoscaler.
    ScaleUp,
    /// Reduce retries to what independent failures justify.
    TightenRetries,
    /// Set retries to zero (stop a retry storm).
    DisableRetries,
    /// Stop all changes for `guardrails.freezeDuration`.
    Freeze,
}

/// Limits on changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Guardrails {
    /// Least time between two changes of the same knob, e.g. `2m`.
    #[serde(default = "defaults::cooldown")]
    pub cooldown: Duration,
    /// Most changes (all knobs together) in any sliding hour (>= 1).
    #[serde(default = "defaults::max_changes_per_hour")]
    pub max_changes_per_hour: u32,
    /// Propose reverting an applied change when the objectives got worse after it.
    #[serde(default = "defaults::yes")]
    pub rollback_on_regression: bool,
    /// How long after a change a regression is blamed on it, e.g. `5m`.
    #[serde(default = "defaults::regression_window")]
    pub regression_window: Duration,
    /// Stop all changes (plans are still computed and shown as held).
    #[serde(default)]
    pub freeze: bool,
    /// How long a `freeze` remediation action stops changes, e.g. `30m`.
    #[serde(default = "defaults::freeze_duration")]
    pub freeze_duration: Duration,
    /// Relaxing a knob after protecting it needs this many consecutive runs asking for it
    /// (>= 1), so a signal hovering at a threshold cannot make it flap.
    #[serde(default = "defaults::hysteresis_runs")]
    pub hysteresis_runs: u32,
    /// Below this request rate (requests/s) there is too little traffic to judge: hold and say
    /// so.
    #[serde(default = "defaults::min_requests_per_second")]
    pub min_requests_per_second: f64,
    /// Least share of recent telemetry points that must be present to act, a ratio in (0, 1].
    #[serde(default = "defaults::min_data_coverage")]
    pub min_data_coverage: f64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            prometheus: None,
            interval: defaults::interval(),
            lookback: defaults::lookback(),
        }
    }
}

impl Default for Objectives {
    fn default() -> Self {
        Self {
            success_rate: defaults::success_rate(),
            latency_p99: defaults::latency_p99(),
        }
    }
}

impl Default for LoadBalancing {
    fn default() -> Self {
        Self {
            enabled: true,
            max_step_percent: defaults::max_step_percent(),
            min_weight_percent: 0,
            stable_subset: None,
        }
    }
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            enabled: true,
            false_ejections_per_hour: defaults::false_ejections_per_hour(),
            consecutive_errors: defaults::consecutive_errors(),
            max_ejection_percent: defaults::max_ejection_percent(),
            interval: defaults::outlier_interval(),
            base_ejection_time: defaults::base_ejection_time(),
        }
    }
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: None,
            budget_percent: defaults::budget_percent(),
            per_try_timeout: defaults::per_try_timeout(),
            idempotent: false,
        }
    }
}

impl Retries {
    /// The most retries per request the Governor may set on a route whose `attempts` are
    /// `in_force`: the policy's `maxAttempts`, or where it states none the default 3 or
    /// `in_force`, whichever is more. A stated bound is the owner's instruction and cuts a
    /// route above it at once; a default they never wrote does not (enforced, it cut a route's
    /// 5 retries to 3 at the first loop, in a mesh with nothing wrong).
    pub fn attempts_ceiling(&self, in_force: u32) -> u32 {
        self.max_attempts
            .unwrap_or_else(|| defaults::max_attempts().max(in_force))
    }
}

impl Autoscaling {
    /// The most replicas the Governor may ask for of an HPA whose own `maxReplicas` is
    /// `hpa_max`: the policy's `maxReplicas`, or the HPA's where the policy names none.
    pub fn replica_ceiling(&self, hpa_max: u32) -> u32 {
        self.max_replicas.unwrap_or(hpa_max)
    }

    /// The targets the Governor may set on an HPA whose target is `hpa_target` %: the policy's
    /// bounds, or where it states none the default 40..=85 % widened to take in `hpa_target`.
    /// A stated bound is the owner's instruction and is enforced at once; a default they never
    /// wrote only bounds the Governor's own proposals. Enforced, the default would move an HPA
    /// at 30 % to 40 % at the first loop, a quarter of its pods gone on no evidence (and one at
    /// 90 % to 85 %), in a mesh with nothing wrong.
    pub fn target_range(&self, hpa_target: u32) -> CountRange {
        self.target_utilization.unwrap_or_else(|| {
            let d = defaults::target_utilization();
            CountRange {
                min: d.min.min(hpa_target.max(1)),
                max: d.max.max(hpa_target),
            }
        })
    }
}

impl Default for Autoscaling {
    fn default() -> Self {
        Self {
            enabled: true,
            target_utilization: None,
            min_replicas: defaults::min_replicas(),
            max_replicas: None,
            forecast_horizon: defaults::forecast_horizon(),
            forecast_coverage: defaults::forecast_coverage(),
        }
    }
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            cooldown: defaults::cooldown(),
            max_changes_per_hour: defaults::max_changes_per_hour(),
            rollback_on_regression: true,
            regression_window: defaults::regression_window(),
            freeze: false,
            freeze_duration: defaults::freeze_duration(),
            hysteresis_runs: defaults::hysteresis_runs(),
            min_requests_per_second: defaults::min_requests_per_second(),
            min_data_coverage: defaults::min_data_coverage(),
        }
    }
}

impl PolicySpec {
    /// A policy with every default, governing `service`.
    pub fn for_service(service: &str) -> Self {
        Self {
            mode: Mode::default(),
            target: Target {
                service: service.to_string(),
                mesh: Mesh::default(),
                subsets: Vec::new(),
                horizontal_pod_autoscaler: None,
            },
            telemetry: Telemetry::default(),
            objectives: Objectives::default(),
            controls: Controls::default(),
            remediation: Vec::new(),
            guardrails: Guardrails::default(),
        }
    }

    /// What the two policies (of one namespace) both govern, if anything: the same service
    /// (its DestinationRule and VirtualService are named after it) or the same HPA. Two
    /// policies on one object each rewrite it from their own Governor, and it goes whichever
    /// way the last one wrote: so neither may act, and both say why. Kubernetes does the same
    /// with HorizontalPodAutoscalers whose targets overlap: it stops all of them and sets
    /// `ScalingActive=False` with reason `AmbiguousSelector` (kubernetes/kubernetes#112011).
    pub fn shared_target(&self, other: &PolicySpec) -> Option<String> {
        if self.target.service == other.target.service {
            return Some(format!("service {}", self.target.service));
        }
        match (
            &self.target.horizontal_pod_autoscaler,
            &other.target.horizontal_pod_autoscaler,
        ) {
            (Some(a), Some(b)) if a == b => Some(format!("HorizontalPodAutoscaler {a}")),
            _ => None,
        }
    }

    /// The subset `shiftToStable` moves traffic to.
    pub fn stable_subset(&self) -> Option<&str> {
        self.controls
            .load_balancing
            .stable_subset
            .as_deref()
            .or(self.target.subsets.first().map(String::as_str))
    }

    /// Parses a spec from JSON (the CRD's wire format; YAML adapters convert first) and
    /// validates it: on failure, every problem with its field path.
    pub fn from_json(text: &str) -> Result<Self, Vec<FieldError>> {
        let spec: Self = serde_json::from_str(text).map_err(|e| {
            vec![FieldError::new(
                "spec",
                format!("line {} column {}: {e}", e.line(), e.column()),
            )]
        })?;
        spec.validate()?;
        Ok(spec)
    }
}

/// A policy among the others an adapter knows of, as the one-policy-per-target rule reads it.
#[derive(Debug, Clone, Copy)]
pub struct Neighbour<'a> {
    pub namespace: &'a str,
    pub spec: &'a PolicySpec,
}

/// The one-policy-per-target rule over the policies an adapter knows of: the others of
/// `all[i]`'s namespace that govern what it governs (`PolicySpec::shared_target`), by index,
/// each with what they share. While any is there, `all[i]` does not act. The reconciler (its
/// store), the alert webhook, the bundled mesh (its policy files) and the simulator (a
/// scenario's policies) all ask this, so they cannot disagree on who stands aside.
pub fn sharing_target(all: &[Neighbour<'_>], i: usize) -> Vec<(usize, String)> {
    let Some(me) = all.get(i) else {
        return Vec::new();
    };
    all.iter()
        .enumerate()
        .filter(|(j, o)| *j != i && o.namespace == me.namespace)
        .filter_map(|(j, o)| me.spec.shared_target(o.spec).map(|what| (j, what)))
        .collect()
}

mod defaults {
    use super::{CountRange, Duration, DurationRange};

    pub fn yes() -> bool {
        true
    }
    pub fn interval() -> Duration {
        Duration::from_secs(15)
    }
    pub fn lookback() -> Duration {
        Duration::from_secs(3600)
    }
    pub fn success_rate() -> f64 {
        0.999
    }
    pub fn latency_p99() -> Duration {
        Duration::from_millis(300)
    }
    pub fn max_step_percent() -> u32 {
        20
    }
    pub fn false_ejections_per_hour() -> f64 {
        0.1
    }
    pub fn consecutive_errors() -> CountRange {
        CountRange { min: 2, max: 20 }
    }
    pub fn max_ejection_percent() -> CountRange {
        CountRange { min: 10, max: 50 }
    }
    pub fn outlier_interval() -> DurationRange {
        DurationRange {
            min: Duration::from_secs(5),
            max: Duration::from_secs(30),
        }
    }
    pub fn base_ejection_time() -> DurationRange {
        DurationRange {
            min: Duration::from_secs(30),
            max: Duration::from_secs(300),
        }
    }
    pub fn max_attempts() -> u32 {
        3
    }
    pub fn budget_percent() -> f64 {
        20.0
    }
    pub fn per_try_timeout() -> DurationRange {
        DurationRange {
            min: Duration::from_millis(50),
            max: Duration::from_secs(10),
        }
    }
    pub fn target_utilization() -> CountRange {
        CountRange { min: 40, max: 85 }
    }
    pub fn min_replicas() -> u32 {
        1
    }
    pub fn forecast_horizon() -> Duration {
        Duration::from_secs(600)
    }
    pub fn forecast_coverage() -> f64 {
        0.95
    }
    pub fn cooldown() -> Duration {
        Duration::from_secs(120)
    }
    pub fn max_changes_per_hour() -> u32 {
        12
    }
    pub fn regression_window() -> Duration {
        Duration::from_secs(300)
    }
    pub fn freeze_duration() -> Duration {
        Duration::from_secs(1800)
    }
    pub fn hysteresis_runs() -> u32 {
        3
    }
    pub fn min_requests_per_second() -> f64 {
        1.0
    }
    pub fn min_data_coverage() -> f64 {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_target_range_takes_in_the_hpas_own_target() {
        let mut a = Autoscaling::default();
        let range = |a: &Autoscaling, t| {
            let r = a.target_range(t);
            (r.min, r.max)
        };
        // Unstated: 40..=85, widened to the HPA's target on whichever side it lies.
        assert_eq!(range(&a, 70), (40, 85));
        assert_eq!(range(&a, 30), (30, 85));
        assert_eq!(range(&a, 90), (40, 90));
        assert_eq!(range(&a, 150), (40, 150));
        // A target of 0 (not a valid HPA) widens no further than 1 %.
        assert_eq!(range(&a, 0), (1, 85));
        // Stated: the owner's bounds, whatever the HPA says.
        a.target_utilization = Some(CountRange { min: 50, max: 60 });
        assert_eq!(range(&a, 30), (50, 60));
        assert_eq!(range(&a, 90), (50, 60));
    }

    /// Two policies share a target when they govern the same service (whatever their subsets
    /// or knobs: the same DestinationRule and VirtualService) or name the same HPA; different
    /// services with different HPAs, or with none, share nothing.
    #[test]
    fn policies_on_one_service_or_one_hpa_share_their_target() {
        let with_hpa = |service: &str, hpa: Option<&str>, subsets: &[&str]| {
            let mut p = PolicySpec::for_service(service);
            p.target.horizontal_pod_autoscaler = hpa.map(str::to_string);
            p.target.subsets = subsets.iter().map(|s| s.to_string()).collect();
            p
        };
        let lb = with_hpa("checkout", None, &["stable", "canary"]);
        let scaling = with_hpa("checkout", Some("checkout"), &[]);
        assert_eq!(
            lb.shared_target(&scaling).as_deref(),
            Some("service checkout")
        );
        let cart = with_hpa("cart", Some("shop"), &[]);
        let orders = with_hpa("orders", Some("shop"), &[]);
        assert_eq!(
            cart.shared_target(&orders).as_deref(),
            Some("HorizontalPodAutoscaler shop")
        );
        assert_eq!(cart.shared_target(&scaling), None);
        assert_eq!(lb.shared_target(&with_hpa("orders", None, &[])), None);
    }

    /// Of four policies, two on `checkout` in `shop` and one on `checkout` in `staging`, and one
    /// on `cart` in `shop`: each of the first two names the other (not itself, not the one in
    /// another namespace); the others share nothing; an index past the end, nothing.
    #[test]
    fn each_policy_is_told_which_neighbours_share_its_target() {
        let checkout = PolicySpec::for_service("checkout");
        let cart = PolicySpec::for_service("cart");
        let at = |namespace, spec| Neighbour { namespace, spec };
        let all = [
            at("shop", &checkout),
            at("staging", &checkout),
            at("shop", &cart),
            at("shop", &checkout),
        ];
        let service = || "service checkout".to_string();
        assert_eq!(sharing_target(&all, 0), vec![(3, service())]);
        assert_eq!(sharing_target(&all, 3), vec![(0, service())]);
        assert_eq!(sharing_target(&all, 1), vec![]);
        assert_eq!(sharing_target(&all, 2), vec![]);
        assert_eq!(sharing_target(&all, 4), vec![]);
    }
}
