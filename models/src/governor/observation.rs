//! What the Governor sees of one service at one time: telemetry windows and the configuration in
//! force.
//!
//! Windows are plain `Vec<f64>` on the observation's grid: `values[i]` is the value at
//! `end - (len - 1 - i) * step_seconds`, so the last point is the newest. A missing scrape is
//! `NaN` (JSON `null`), never zero: zero requests and "we do not know" lead to very different
//! decisions. The Governor remembers the newest timestamp it has fed its models, so an adapter
//! may send the whole lookback every time (the controller) or only the newest points (the
//! simulator) and the models see each point once.

use std::collections::BTreeMap;

use homeostat_dataplane::config::RetryOn;
use serde::{Deserialize, Serialize};

use crate::policy::{Duration, FieldError, PolicySpec};

/// One governed service at time `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// The governed service (the key of the Governor's per-service state).
    pub service: String,
    /// Unix seconds of the newest point of every window.
    pub end: i64,
    /// Seconds between two points of a window.
    pub step_seconds: i64,
    /// The whole service, as its own pods' proxies count it (`reporter="destination"`: every
    /// try, retries included).
    pub service_signals: Signals,
    /// The service as its callers' proxies report it (Istio's `reporter="source"`): one request
    /// per call, however many tries it took, with the response the caller finally got and the
    /// call's whole time (back-offs included). `utilization` is not filled (a caller's CPU is
    /// not the service's). Retries make the two sides differ: a pod
    /// failing 44 % of its tries behind Istio's default retries costs the callers almost
    /// nothing, and only this side shows it. Empty when not collected (callers outside the
    /// mesh have no source proxy; the bundled proxies' direct scrape is server-side).
    #[serde(default, skip_serializing_if = "Signals::is_empty")]
    pub callers: Signals,
    /// Per subset (version); empty when the service has no subsets.
    #[serde(default)]
    pub subsets: Vec<SubsetObservation>,
    /// Per endpoint (pod); empty when not available.
    #[serde(default)]
    pub endpoints: Vec<EndpointObservation>,
    /// The configuration currently in force.
    pub config: MeshConfig,
    /// How long a new pod takes to become ready, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_startup: Option<Duration>,
}

impl Observation {
    /// Checks what the Governor's arithmetic relies on, naming the offending field (JSON path):
    /// `end` is unix seconds (not before 1970, so differences of two `end`s never overflow),
    /// and `stepSeconds` lies between 1 s and the policy's `telemetry.lookback` (a window must
    /// hold at least one step of the history the policy says the models judge on; bounded, so
    /// that `points × step` cannot overflow).
    pub fn validate(&self, spec: &PolicySpec) -> Result<(), FieldError> {
        if self.end < 0 {
            return Err(FieldError::new(
                "observation.end",
                format!("must be unix seconds (>= 0), got {}", self.end),
            ));
        }
        let lookback = spec.telemetry.lookback.as_secs_ceil().max(1);
        if !(1..=lookback).contains(&self.step_seconds) {
            return Err(FieldError::new(
                "observation.stepSeconds",
                format!(
                    "must be between 1 and the policy's lookback ({lookback} s), got {}",
                    self.step_seconds
                ),
            ));
        }
        Ok(())
    }
}

/// Telemetry windows, aligned on the observation's grid. A window may be shorter than the
/// others or empty when that signal is not collected; missing points are NaN.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signals {
    /// Requests per second (all attempts, retries included, as the server counts them).
    #[serde(default, with = "nan_as_null")]
    pub request_rate: Vec<f64>,
    /// Share of non-5xx responses, in [0, 1].
    #[serde(default, with = "nan_as_null")]
    pub success_rate: Vec<f64>,
    /// Median latency, seconds.
    #[serde(default, with = "nan_as_null")]
    pub latency_p50: Vec<f64>,
    /// 90th percentile latency, seconds.
    #[serde(default, with = "nan_as_null")]
    pub latency_p90: Vec<f64>,
    /// 99th percentile latency, seconds.
    #[serde(default, with = "nan_as_null")]
    pub latency_p99: Vec<f64>,
    /// Mean CPU utilisation of the pods relative to their requests, in [0, 1] (may exceed 1
    /// when pods burst over their requests).
    #[serde(default, with = "nan_as_null")]
    pub utilization: Vec<f64>,
}

impl Signals {
    /// No window holds a point: the signals were not collected.
    pub fn is_empty(&self) -> bool {
        self.request_rate.is_empty()
            && self.success_rate.is_empty()
            && self.latency_p50.is_empty()
            && self.latency_p90.is_empty()
            && self.latency_p99.is_empty()
            && self.utilization.is_empty()
    }
}

/// One subset (version) of the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubsetObservation {
    pub name: String,
    pub signals: Signals,
}

/// One endpoint (pod) of the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointObservation {
    /// Pod name or address.
    pub name: String,
    /// The subset the endpoint belongs to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    pub signals: Signals,
}

/// The knobs as they are now, with Istio/Envoy semantics. `Default` is a mesh where nothing is
/// set: no route timeout, no weights, Istio's outlier-detection and retry defaults, no HPA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfig {
    /// The route's overall timeout (VirtualService `http[].timeout`, Envoy `route.timeout`),
    /// retries included; absent (`null`) when the route has none, which is Istio's default. The
    /// Governor never proposes a per-try timeout at or above it (that try would never time out
    /// before the request does, so no retry could follow). Filled from the VirtualService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_timeout: Option<Duration>,
    /// Route weight per subset, percent, summing to 100 (empty without subsets).
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    /// DestinationRule `trafficPolicy.outlierDetection`.
    pub outlier_detection: OutlierConfig,
    /// VirtualService `retries`.
    pub retries: RetryConfig,
    /// The HorizontalPodAutoscaler, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaConfig>,
}

/// Outlier detection as Istio's DestinationRule carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierConfig {
    /// Consecutive 5xx responses that eject an endpoint.
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: u32,
    /// Time between ejection sweeps.
    pub interval: Duration,
    /// Minimum ejection time; the n-th ejection of an endpoint lasts n times this.
    pub base_ejection_time: Duration,
    /// Most endpoints that may be ejected at once, percent.
    pub max_ejection_percent: u32,
    /// Cap on one ejection (Envoy `max_ejection_time`; Istio does not expose it, so Envoy's
    /// default of 300 s applies there and is this field's default). Envoy rejects a config whose
    /// cap is below `baseEjectionTime`, so every proposal keeps it at or above that.
    #[serde(default = "default_max_ejection_time")]
    pub max_ejection_time: Duration,
}

/// Envoy's `max_ejection_time` default, from the one home of Envoy's defaults.
fn default_max_ejection_time() -> Duration {
    Duration::from_nanos(homeostat_dataplane::config::OutlierConfig::default().max_ejection_time)
}

/// Retries as Istio's VirtualService carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    /// Retries per request after the first attempt (Istio `attempts`; 0 = no retries).
    pub attempts: u32,
    /// Timeout of each attempt (Istio `perTryTimeout`); absent (`null`) when there is none,
    /// Istio's default: each try may then use the whole route timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    /// Envoy retry conditions as Istio's `retryOn` writes them, e.g. `5xx,reset,503`; parsed,
    /// so an unknown condition is an error naming `retryOn` when the observation is read, not
    /// a setting silently dropped when a plan is applied.
    pub retry_on: RetryOn,
}

/// An `autoscaling/v2` HorizontalPodAutoscaler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaConfig {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Target average CPU utilisation, percent.
    pub target_utilization_percent: u32,
    /// Replicas running now (status, not spec; never proposed).
    pub current_replicas: u32,
    /// Most pods the cluster will actually run for this workload, if it is capped below the
    /// HPA's own bounds (a namespace ResourceQuota's `pods` limit less the other workloads'
    /// pods, or the simulator's `maxPods`); absent when unknown. No proposal asks for
    /// `minReplicas` or `maxReplicas` above it: the HPA could not reach them, and a plan must
    /// be exactly what gets applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_cap: Option<u32>,
}

impl Default for OutlierConfig {
    /// Istio's defaults.
    fn default() -> Self {
        Self {
            consecutive_5xx_errors: 5,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
            max_ejection_time: default_max_ejection_time(),
        }
    }
}

impl Default for RetryConfig {
    /// Istio's defaults, from the one home of Istio's and Envoy's defaults (2 retries, no
    /// per-try timeout, `connect-failure,refused-stream,unavailable,cancelled,503`).
    fn default() -> Self {
        let d = homeostat_dataplane::config::RetryPolicy::default();
        Self {
            attempts: d.attempts,
            per_try_timeout: d.per_try_timeout.map(Duration::from_nanos),
            retry_on: d.retry_on,
        }
    }
}

/// JSON has no NaN: missing points travel as `null` and come back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let opts: Vec<Option<f64>> = v
            .iter()
            .map(|x| if x.is_finite() { Some(*x) } else { None })
            .collect();
        opts.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let opts = Vec::<Option<f64>>::deserialize(d)?;
        Ok(opts.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}
