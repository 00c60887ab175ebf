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

use serde::{Deserialize, Serialize};

use crate::policy::Duration;

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
    /// The whole service, as seen by its callers.
    pub service_signals: Signals,
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

/// The knobs as they are now, with Istio/Envoy semantics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfig {
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
}

/// Retries as Istio's VirtualService carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    /// Retries per request after the first attempt (Istio `attempts`; 0 = no retries).
    pub attempts: u32,
    /// Timeout of each attempt.
    pub per_try_timeout: Duration,
    /// Envoy retry conditions, e.g. `5xx,reset,connect-failure`.
    pub retry_on: String,
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
}

impl Default for OutlierConfig {
    /// Istio's defaults.
    fn default() -> Self {
        Self {
            consecutive_5xx_errors: 5,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
        }
    }
}

impl Default for RetryConfig {
    /// Istio's defaults (2 retries, no per-try timeout: here the route timeout is unknown, so
    /// 25 s stands for "none").
    fn default() -> Self {
        Self {
            attempts: 2,
            per_try_timeout: Duration::from_secs(25),
            retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
                .to_string(),
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
