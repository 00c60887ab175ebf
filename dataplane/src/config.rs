//! Configuration of the data-plane state machines, in the shape scenario files and `Plan`s write
//! it (serde, camelCase, Istio field names where Istio has one), with Envoy/Istio defaults in the
//! `Default` impls so that an empty block means "what a stock Istio mesh does".
//!
//! Sources for every default are cited on the field. Where Envoy's and Istio's defaults differ the
//! Istio one wins, because the simulator's `istio` baseline models a stock Istio mesh.
//!
//! What a stock Istio mesh has *without* a DestinationRule is not always what an empty block of
//! the same name means: with no `outlierDetection` in any DestinationRule, Istio programs no
//! outlier detection at all (see [`OutlierConfig::off`]); an empty `outlierDetection: {}` turns
//! it on with the defaults below.

use crate::time::{Nanos, SECOND};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A configuration value that cannot be used, naming the offending field as written in YAML.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The camelCase field name, as in the scenario file.
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            field,
            message: message.into(),
        }
    }
}

fn check_percent(field: &'static str, value: u32) -> Result<(), ConfigError> {
    if value > 100 {
        return Err(ConfigError::new(
            field,
            format!("{value} is not a percentage (0..=100)"),
        ));
    }
    Ok(())
}

fn check_percent_f64(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if !(0.0..=100.0).contains(&value) {
        return Err(ConfigError::new(
            field,
            format!("{value} is not a percentage (0..=100)"),
        ));
    }
    Ok(())
}

/// Passive health checking: Envoy `config.cluster.v3.OutlierDetection` as Istio's
/// `DestinationRule.trafficPolicy.outlierDetection` exposes it, plus Envoy's success-rate
/// detector (off unless `successRate` is given; Istio never turns it on). The
/// failure-percentage detector is not modelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct OutlierConfig {
    /// Consecutive 5xx (and, un-split, local-origin failures) before ejection; 0 disables.
    /// Istio `consecutive5xxErrors`, default 5 (Envoy `consecutive_5xx`, default 5).
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx: u32,
    /// Consecutive 502/503/504 (and local-origin failures) before ejection; 0 disables.
    /// Istio `consecutiveGatewayErrors`, default 0 = off. (Envoy counts them by default but
    /// enforces 0 %; Istio enforces 100 % when the field is set, which is what we do.)
    pub consecutive_gateway_errors: u32,
    /// Time between ejection-analysis sweeps; un-ejection and multiplier decay happen only at a
    /// sweep. Istio/Envoy `interval`, default 10 s.
    #[serde(with = "crate::time::duration")]
    #[schemars(schema_with = "crate::time::duration_schema")]
    pub interval: Nanos,
    /// Ejection time is `baseEjectionTime × multiplier`, the multiplier growing by one per
    /// ejection. Istio/Envoy `baseEjectionTime`, default 30 s.
    #[serde(with = "crate::time::duration")]
    #[schemars(schema_with = "crate::time::duration_schema")]
    pub base_ejection_time: Nanos,
    /// Cap on the ejection time. Envoy `max_ejection_time`, default 300 s (Istio does not expose
    /// it, so Envoy's default applies in Istio meshes).
    #[serde(with = "crate::time::duration")]
    #[schemars(schema_with = "crate::time::duration_schema")]
    pub max_ejection_time: Nanos,
    /// Random extra ejection time in `[0, jitter]`, so hosts do not return all at once.
    /// Envoy `max_ejection_time_jitter`, default 0.
    #[serde(with = "crate::time::duration")]
    #[schemars(schema_with = "crate::time::duration_schema")]
    pub max_ejection_time_jitter: Nanos,
    /// Most hosts that may be ejected, in percent of all hosts; an ejection that would take the
    /// ejected share above it is refused. Istio/Envoy `maxEjectionPercent`, default 10.
    pub max_ejection_percent: u32,
    /// Allow one ejection even when `maxEjectionPercent` would round it away (small clusters).
    /// Envoy `always_eject_one_host` (v1.31+), default false; Istio does not expose it.
    pub always_eject_one_host: bool,
    /// Percent chance that a detected consecutive-5xx outlier is actually ejected.
    /// Envoy `enforcing_consecutive_5xx`, default 100.
    pub enforcing_consecutive_5xx: u32,
    /// Percent chance that a detected consecutive-gateway-error outlier is actually ejected.
    /// Istio sets 100 when `consecutiveGatewayErrors` is given (Envoy's own default is 0).
    pub enforcing_consecutive_gateway_errors: u32,
    /// Below this percentage of healthy hosts the balancer ignores health ("panic mode").
    /// Istio `minHealthPercent`, default 0 = panic mode off (Envoy's own default is 50).
    /// The detector does not use it; it is handed to the balancer.
    pub min_health_percent: u32,
    /// Envoy's success-rate detector; absent = off. Absent is what an Istio mesh runs: Istio's
    /// DestinationRule translation (pilot `applyOutlierDetection`) always sets
    /// `enforcing_success_rate: 0` ("SuccessRate based outlier detection should be
    /// disabled"), so Envoy's own default of 100 never applies there. `successRate: {}` turns
    /// it on with Envoy's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<SuccessRateConfig>,
}

/// Envoy's success-rate outlier detector (`outlier_detection.success_rate_minimum_hosts`,
/// `success_rate_request_volume`, `success_rate_stdev_factor`, `enforcing_success_rate`), with
/// Envoy's defaults (`config/cluster/v3/outlier_detection.proto`). At every interval sweep the
/// hosts that saw at least `requestVolume` requests in the interval are compared; see
/// [`crate::outlier`] for the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SuccessRateConfig {
    /// Hosts with enough volume needed before anyone is judged. Envoy
    /// `success_rate_minimum_hosts`, default 5.
    pub minimum_hosts: u32,
    /// Requests a host needs in one interval to be judged (and to count towards the mean).
    /// Envoy `success_rate_request_volume`, default 100.
    pub request_volume: u32,
    /// Thousandths of a standard deviation: a host is an outlier below
    /// `mean − stdevFactor/1000 × stdev`. Envoy `success_rate_stdev_factor`, default 1900
    /// (1.9 standard deviations).
    pub stdev_factor: u32,
    /// Percent chance that a detected success-rate outlier is ejected. Envoy
    /// `enforcing_success_rate`, default 100.
    pub enforcing: u32,
}

impl Default for SuccessRateConfig {
    fn default() -> Self {
        SuccessRateConfig {
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1900,
            enforcing: 100,
        }
    }
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_5xx: 5,
            consecutive_gateway_errors: 0,
            interval: 10 * SECOND,
            base_ejection_time: 30 * SECOND,
            max_ejection_time: 300 * SECOND,
            max_ejection_time_jitter: 0,
            max_ejection_percent: 10,
            always_eject_one_host: false,
            enforcing_consecutive_5xx: 100,
            enforcing_consecutive_gateway_errors: 100,
            min_health_percent: 0,
            success_rate: None,
        }
    }
}

impl OutlierConfig {
    /// No outlier detection: what Istio programs when no DestinationRule sets
    /// `trafficPolicy.outlierDetection` (Istio's DestinationRule reference: outlier detection is
    /// only configured when the block is present). Both consecutive-error detectors are off, so
    /// nothing is ever ejected; the other fields keep their defaults so that turning one
    /// detector on later (`consecutive5xxErrors: N`) gives Istio's values for the rest.
    pub fn off() -> Self {
        OutlierConfig {
            consecutive_5xx: 0,
            consecutive_gateway_errors: 0,
            ..OutlierConfig::default()
        }
    }

    /// Whether no detector can eject anything (both consecutive-error counts are 0 and the
    /// success-rate detector is absent or never enforced).
    pub fn is_off(&self) -> bool {
        self.consecutive_5xx == 0
            && self.consecutive_gateway_errors == 0
            && self.success_rate.as_ref().is_none_or(|s| s.enforcing == 0)
    }

    /// Rejects values Envoy would reject (zero interval, `maxEjectionTime < baseEjectionTime`,
    /// percentages above 100).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval == 0 {
            return Err(ConfigError::new("interval", "must be at least 1ms"));
        }
        if self.base_ejection_time == 0 {
            return Err(ConfigError::new("baseEjectionTime", "must be at least 1ms"));
        }
        if self.max_ejection_time < self.base_ejection_time {
            return Err(ConfigError::new(
                "maxEjectionTime",
                "cannot be smaller than baseEjectionTime (Envoy rejects this)",
            ));
        }
        check_percent("maxEjectionPercent", self.max_ejection_percent)?;
        check_percent("enforcingConsecutive5xx", self.enforcing_consecutive_5xx)?;
        check_percent(
            "enforcingConsecutiveGatewayErrors",
            self.enforcing_consecutive_gateway_errors,
        )?;
        if let Some(sr) = &self.success_rate {
            check_percent("successRate.enforcing", sr.enforcing)?;
        }
        check_percent("minHealthPercent", self.min_health_percent)
    }
}

/// One condition of Envoy's `retry_on` (`x-envoy-retry-on` / `x-envoy-retry-grpc-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum RetryCondition {
    /// Any 5xx, a reset, a connect failure, a refused stream or a per-try timeout.
    FiveXx = 1 << 0,
    /// 502, 503, 504, a reset, a connect failure or a per-try timeout.
    GatewayError = 1 << 1,
    /// The upstream did not answer at all (disconnect, reset, per-try timeout).
    Reset = 1 << 2,
    /// The connection to the upstream could not be established.
    ConnectFailure = 1 << 3,
    /// The upstream reset the stream with REFUSED_STREAM.
    RefusedStream = 1 << 4,
    /// 409 Conflict.
    Retriable4xx = 1 << 5,
    /// Any status listed in the policy's retriable status codes.
    RetriableStatusCodes = 1 << 6,
    /// gRPC `cancelled` (no effect on the plain-HTTP outcomes modelled here).
    Cancelled = 1 << 7,
    /// gRPC `deadline-exceeded` (no effect on plain-HTTP outcomes).
    DeadlineExceeded = 1 << 8,
    /// gRPC `internal` (no effect on plain-HTTP outcomes).
    Internal = 1 << 9,
    /// gRPC `resource-exhausted` (no effect on plain-HTTP outcomes).
    ResourceExhausted = 1 << 10,
    /// gRPC `unavailable` (no effect on plain-HTTP outcomes).
    Unavailable = 1 << 11,
}

const RETRY_TOKENS: [(&str, RetryCondition); 12] = [
    ("5xx", RetryCondition::FiveXx),
    ("gateway-error", RetryCondition::GatewayError),
    ("reset", RetryCondition::Reset),
    ("connect-failure", RetryCondition::ConnectFailure),
    ("refused-stream", RetryCondition::RefusedStream),
    ("retriable-4xx", RetryCondition::Retriable4xx),
    (
        "retriable-status-codes",
        RetryCondition::RetriableStatusCodes,
    ),
    ("cancelled", RetryCondition::Cancelled),
    ("deadline-exceeded", RetryCondition::DeadlineExceeded),
    ("internal", RetryCondition::Internal),
    ("resource-exhausted", RetryCondition::ResourceExhausted),
    ("unavailable", RetryCondition::Unavailable),
];

/// The set of retry conditions, written as Istio's `retryOn` string
/// (`"connect-failure,refused-stream,503"`): a bare status code adds it to the retriable status
/// codes and turns on `retriable-status-codes`, exactly as Istio translates it for Envoy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RetryOn {
    flags: u16,
    status_codes: Vec<u16>,
}

impl RetryOn {
    /// Whether `condition` is in the set.
    #[inline]
    pub fn contains(&self, condition: RetryCondition) -> bool {
        self.flags & condition as u16 != 0
    }

    /// The same set with `condition` added.
    pub fn with(mut self, condition: RetryCondition) -> Self {
        self.flags |= condition as u16;
        self
    }

    /// The status codes retried under `retriable-status-codes`.
    pub fn status_codes(&self) -> &[u16] {
        &self.status_codes
    }

    /// Parses Istio's comma-separated `retryOn`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = RetryOn::default();
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if let Ok(code) = token.parse::<u16>() {
                if !(100..=599).contains(&code) {
                    return Err(format!("retryOn: `{code}` is not an HTTP status code"));
                }
                out.flags |= RetryCondition::RetriableStatusCodes as u16;
                if !out.status_codes.contains(&code) {
                    out.status_codes.push(code);
                }
                continue;
            }
            match RETRY_TOKENS.iter().find(|(name, _)| *name == token) {
                Some((_, c)) => out.flags |= *c as u16,
                None => {
                    let known: Vec<&str> = RETRY_TOKENS.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "retryOn: unknown condition `{token}`; known: {} or a status code",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(out)
    }
}

impl JsonSchema for RetryOn {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RetryOn".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Istio retryOn: comma-separated Envoy retry conditions (5xx, gateway-error, reset, connect-failure, refused-stream, retriable-4xx, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable) and/or HTTP status codes, e.g. \"connect-failure,refused-stream,503\".",
            "type": "string"
        })
    }
}

impl TryFrom<String> for RetryOn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RetryOn::parse(&s)
    }
}

impl fmt::Display for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = RETRY_TOKENS
            .iter()
            .filter(|(_, c)| {
                // A bare code list already implies `retriable-status-codes`.
                self.contains(*c)
                    && (*c != RetryCondition::RetriableStatusCodes || self.status_codes.is_empty())
            })
            .map(|(n, _)| (*n).to_owned())
            .collect();
        parts.extend(self.status_codes.iter().map(u16::to_string));
        f.write_str(&parts.join(","))
    }
}

impl From<RetryOn> for String {
    fn from(r: RetryOn) -> String {
        r.to_string()
    }
}

/// Per-route retry policy: Istio `VirtualService.http[].retries` → Envoy `RetryPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Number of *retries* after the first try (Envoy `num_retries`), so `2` means up to 3 tries.
    /// Istio's default policy (no `retries` block) is 2.
    pub attempts: u32,
    /// Timeout of each try, retries included. Istio `perTryTimeout`; none by default.
    #[serde(
        with = "crate::time::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::time::opt_duration_schema")]
    pub per_try_timeout: Option<Nanos>,
    /// Conditions that trigger a retry. Istio's default:
    /// `connect-failure,refused-stream,unavailable,cancelled,503` — so a plain 500 is *not*
    /// retried by a stock Istio mesh.
    pub retry_on: RetryOn,
    /// Back-off base interval. Envoy `retry_back_off.base_interval`, default 25 ms (Istio does
    /// not expose it).
    #[serde(with = "crate::time::duration")]
    #[schemars(schema_with = "crate::time::duration_schema")]
    pub backoff_base_interval: Nanos,
    /// Back-off cap. Envoy `retry_back_off.max_interval`, default 10 × base interval.
    #[serde(
        with = "crate::time::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::time::opt_duration_schema")]
    pub backoff_max_interval: Option<Nanos>,
    /// Re-pick the host of a retry if it was already tried (Envoy `previous_hosts` retry host
    /// predicate, which Istio installs by default).
    pub avoid_previous_hosts: bool,
    /// How many picks the `previous_hosts` predicate may reject before the last pick is used.
    /// Istio sets Envoy's `host_selection_retry_max_attempts` to 5.
    pub host_selection_retry_max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            retry_on: RetryOn::parse("connect-failure,refused-stream,unavailable,cancelled,503")
                .unwrap_or_default(),
            backoff_base_interval: 25 * crate::time::MILLISECOND,
            backoff_max_interval: None,
            avoid_previous_hosts: true,
            host_selection_retry_max_attempts: 5,
        }
    }
}

impl RetryPolicy {
    /// The effective back-off cap (10 × base when unset, as Envoy does).
    pub fn max_interval(&self) -> Nanos {
        self.backoff_max_interval
            .unwrap_or(self.backoff_base_interval.saturating_mul(10))
    }

    /// Rejects a zero back-off base or a cap below the base (Envoy rejects both).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.backoff_base_interval == 0 {
            return Err(ConfigError::new(
                "backoffBaseInterval",
                "must be greater than zero",
            ));
        }
        if self.max_interval() < self.backoff_base_interval {
            return Err(ConfigError::new(
                "backoffMaxInterval",
                "must be at least backoffBaseInterval",
            ));
        }
        if self.per_try_timeout == Some(0) {
            return Err(ConfigError::new(
                "perTryTimeout",
                "must be greater than zero (leave it out for none)",
            ));
        }
        Ok(())
    }
}

/// Envoy `CircuitBreakers.Thresholds.RetryBudget`: concurrent retries are limited to a share of
/// the cluster's active requests, with a floor. Opt-in: Envoy applies a budget only when the
/// cluster's circuit-breaker thresholds contain a `retry_budget` message, and Istio never sets
/// one (its `DestinationRule` has no field for it); the values below are Envoy's defaults for
/// the fields *of* a budget message that leaves them unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// Share of active (+ pending) requests that may be retries at once. Envoy default (when a
    /// budget is configured without `budget_percent`) 20 %.
    pub budget_percent: f64,
    /// The limit never goes below this many concurrent retries. Envoy default (when a budget is
    /// configured without `min_retry_concurrency`) 3.
    pub min_retry_concurrency: u32,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig {
            budget_percent: 20.0,
            min_retry_concurrency: 3,
        }
    }
}

/// What limits concurrent retries across one proxy's cluster: Envoy's
/// `CircuitBreakers.Thresholds` `retry_budget` and `max_retries`. When a budget is present it is
/// used and `maxRetries` is ignored, as in Envoy. Each sidecar holds its own (circuit breakers
/// are per Envoy, per cluster).
///
/// The default is Istio's: no budget, `maxRetries` 2^32 − 1 (unlimited). Plain Envoy differs:
/// without a budget its `max_retries` threshold defaults to 3 ([`RetryLimit::envoy`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RetryLimit {
    /// The retry budget, opt-in as in Envoy (Istio exposes none): absent or `null` means no
    /// budget, and `maxRetries` limits concurrent retries.
    pub budget: Option<RetryBudgetConfig>,
    /// The classic circuit-breaker cap on concurrent retries. Istio programs
    /// `connectionPool.http.maxRetries`, whose default is 2^32 − 1 (unlimited; Istio's
    /// DestinationRule reference), which is the default here. Envoy's own default is 3.
    pub max_retries: u32,
}

impl Default for RetryLimit {
    fn default() -> Self {
        RetryLimit {
            budget: None,
            max_retries: u32::MAX,
        }
    }
}

impl RetryLimit {
    /// Plain Envoy's default circuit breaker: no budget, at most 3 concurrent retries
    /// (`envoy.config.cluster.v3.CircuitBreakers.Thresholds.max_retries`, default 3).
    pub fn envoy() -> Self {
        RetryLimit {
            budget: None,
            max_retries: 3,
        }
    }

    /// A retry budget with Envoy's defaults for its fields (20 %, at least 3 concurrent).
    pub fn envoy_budget() -> Self {
        RetryLimit {
            budget: Some(RetryBudgetConfig::default()),
            max_retries: u32::MAX,
        }
    }

    /// Rejects a budget percentage outside 0..=100.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.budget {
            Some(b) => check_percent_f64("budgetPercent", b.budget_percent),
            None => Ok(()),
        }
    }
}

/// Endpoint-selection algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BalancerKind {
    /// Weighted round robin on an earliest-deadline-first schedule (Envoy `ROUND_ROBIN`).
    #[serde(alias = "ROUND_ROBIN")]
    RoundRobin,
    /// Least request: power of `choiceCount` choices when weights are equal, EDF on
    /// `weight / (active + 1)^bias` otherwise (Envoy `LEAST_REQUEST`, Istio's default).
    #[serde(alias = "LEAST_REQUEST")]
    LeastRequest,
    /// Power of two choices on Linkerd's peak-EWMA cost `rtt × (pending + 1)`.
    #[serde(alias = "PEAK_EWMA")]
    PeakEwma,
}

/// Balancer configuration; defaults are Istio's (least request, panic mode off) and Linkerd's
/// (peak-EWMA default RTT 30 ms, decay 10 s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BalancerConfig {
    /// The algorithm. Istio's default `simple` policy is `LEAST_REQUEST` (Istio release note
    /// `new_lb_algorithm_default`; it was `ROUND_ROBIN` before).
    pub kind: BalancerKind,
    /// Below this healthy share (percent of hosts) balance across all hosts. Envoy default 50;
    /// Istio sets it from `minHealthPercent`, default 0 (never panic).
    pub panic_threshold_percent: f64,
    /// Hosts sampled per least-request pick. Envoy `choice_count`, default 2.
    pub choice_count: u32,
    /// Exponent on `active + 1` when weights differ. Envoy `active_request_bias`, default 1.0.
    pub active_request_bias: f64,
    /// RTT assumed for an endpoint never measured. Linkerd default 30 ms.
    #[serde(with = "crate::time::duration")]
    #[schemars(schema_with = "crate::time::duration_schema")]
    pub ewma_default_rtt: Nanos,
    /// Time constant of the EWMA decay. Linkerd default 10 s.
    #[serde(with = "crate::time::duration")]
    #[schemars(schema_with = "crate::time::duration_schema")]
    pub ewma_decay: Nanos,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            kind: BalancerKind::LeastRequest,
            panic_threshold_percent: 0.0,
            choice_count: 2,
            active_request_bias: 1.0,
            ewma_default_rtt: 30 * crate::time::MILLISECOND,
            ewma_decay: 10 * SECOND,
        }
    }
}

impl BalancerConfig {
    /// Rejects a zero choice count, a negative bias, a zero decay or a bad panic percentage.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_percent_f64("panicThresholdPercent", self.panic_threshold_percent)?;
        if self.choice_count == 0 {
            return Err(ConfigError::new("choiceCount", "must be at least 1"));
        }
        if !(self.active_request_bias.is_finite() && self.active_request_bias >= 0.0) {
            return Err(ConfigError::new(
                "activeRequestBias",
                "must be a finite number >= 0",
            ));
        }
        if self.ewma_decay == 0 {
            return Err(ConfigError::new("ewmaDecay", "must be greater than zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MILLISECOND;

    #[test]
    fn empty_yaml_gives_istio_defaults() {
        let o: OutlierConfig = serde_yaml::from_str("{}").expect("empty outlier block");
        assert_eq!(o, OutlierConfig::default());
        assert_eq!(o.consecutive_5xx, 5);
        assert_eq!(o.interval, 10 * SECOND);
        assert_eq!(o.base_ejection_time, 30 * SECOND);
        assert_eq!(o.max_ejection_time, 300 * SECOND);
        assert_eq!(o.max_ejection_percent, 10);
        assert_eq!(o.min_health_percent, 0);

        let r: RetryPolicy = serde_yaml::from_str("{}").expect("empty retry block");
        assert_eq!(r.attempts, 2);
        assert_eq!(r.backoff_base_interval, 25 * MILLISECOND);
        // Envoy: max interval defaults to 10 × base = 250 ms.
        assert_eq!(r.max_interval(), 250 * MILLISECOND);
        assert_eq!(r.retry_on.status_codes(), &[503]);
        assert!(r.retry_on.contains(RetryCondition::ConnectFailure));
        assert!(!r.retry_on.contains(RetryCondition::FiveXx));

        // Istio: no retry budget, maxRetries 2^32 − 1.
        let l: RetryLimit = serde_yaml::from_str("{}").expect("empty retry limit");
        assert_eq!(l.budget, None);
        assert_eq!(l.max_retries, u32::MAX);
        // No DestinationRule: nothing can be ejected, other fields as an empty block's.
        let off = OutlierConfig::off();
        assert!(off.is_off() && !o.is_off());
        assert_eq!(off.max_ejection_percent, 10);

        let b: BalancerConfig = serde_yaml::from_str("{}").expect("empty balancer block");
        assert_eq!(b.kind, BalancerKind::LeastRequest);
        assert_eq!(b.panic_threshold_percent, 0.0);
    }

    #[test]
    fn istio_field_names_parse() {
        let yaml = "consecutive5xxErrors: 3\ninterval: 5s\nbaseEjectionTime: 1m\n\
                    maxEjectionPercent: 50\nminHealthPercent: 40\n";
        let o: OutlierConfig = serde_yaml::from_str(yaml).expect("istio outlier block");
        assert_eq!(o.consecutive_5xx, 3);
        assert_eq!(o.interval, 5 * SECOND);
        assert_eq!(o.base_ejection_time, 60 * SECOND);
        assert_eq!(o.max_ejection_percent, 50);
        assert_eq!(o.min_health_percent, 40);

        let r: RetryPolicy =
            serde_yaml::from_str("attempts: 3\nperTryTimeout: 2s\nretryOn: 5xx,reset,409\n")
                .expect("istio retry block");
        assert_eq!(r.attempts, 3);
        assert_eq!(r.per_try_timeout, Some(2 * SECOND));
        assert!(r.retry_on.contains(RetryCondition::FiveXx));
        assert!(r.retry_on.contains(RetryCondition::Reset));
        assert!(r.retry_on.contains(RetryCondition::RetriableStatusCodes));
        assert_eq!(r.retry_on.status_codes(), &[409]);

        let k: BalancerKind = serde_yaml::from_str("ROUND_ROBIN").expect("istio enum spelling");
        assert_eq!(k, BalancerKind::RoundRobin);
        let k: BalancerKind = serde_yaml::from_str("peakEwma").expect("camelCase spelling");
        assert_eq!(k, BalancerKind::PeakEwma);

        let l: RetryLimit =
            serde_yaml::from_str("budget: null\nmaxRetries: 3").expect("max retries");
        assert_eq!(l.budget, None);
        assert_eq!(l.max_retries, 3);
        let l: RetryLimit =
            serde_yaml::from_str("budget: {budgetPercent: 25}").expect("budget block");
        assert_eq!(
            l.budget,
            Some(RetryBudgetConfig {
                budget_percent: 25.0,
                min_retry_concurrency: 3
            })
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let err = serde_yaml::from_str::<OutlierConfig>("consecutiveErrors: 3")
            .expect_err("unknown field must be rejected");
        assert!(err.to_string().contains("consecutiveErrors"), "{err}");
        let err = serde_yaml::from_str::<OutlierConfig>("interval: 10")
            .expect_err("unitless duration must be rejected");
        assert!(err.to_string().contains("missing unit"), "{err}");
        let err = serde_yaml::from_str::<RetryPolicy>("retryOn: 5xx,bogus")
            .expect_err("unknown retry condition");
        assert!(err.to_string().contains("bogus"), "{err}");

        let o = OutlierConfig {
            max_ejection_time: 10 * SECOND,
            ..OutlierConfig::default()
        };
        assert_eq!(
            o.validate().map_err(|e| e.field),
            Err("maxEjectionTime"),
            "max < base must be rejected"
        );
        let o = OutlierConfig {
            max_ejection_percent: 101,
            ..OutlierConfig::default()
        };
        assert_eq!(o.validate().map_err(|e| e.field), Err("maxEjectionPercent"));
        assert!(OutlierConfig::default().validate().is_ok());
        assert!(RetryPolicy::default().validate().is_ok());
        assert!(BalancerConfig::default().validate().is_ok());
        assert!(RetryLimit::default().validate().is_ok());
    }

    #[test]
    fn json_schema_documents_fields_and_durations() {
        let schema = serde_json::to_value(schemars::schema_for!(OutlierConfig)).expect("json");
        let props = &schema["properties"];
        assert!(props["consecutive5xxErrors"].is_object(), "{schema}");
        assert_eq!(props["interval"]["type"], "string");
        assert!(props["interval"]["pattern"].is_string());
        let schema = serde_json::to_value(schemars::schema_for!(RetryPolicy)).expect("json");
        assert_eq!(schema["properties"]["perTryTimeout"]["type"][1], "null");
        assert!(schema["$defs"]["RetryOn"].is_object(), "{schema}");
    }

    #[test]
    fn retry_on_round_trips_through_yaml() {
        let r = RetryPolicy::default();
        let text = serde_yaml::to_string(&r).expect("serialize");
        let back: RetryPolicy = serde_yaml::from_str(&text).expect("deserialize");
        assert_eq!(back, r);
        assert_eq!(
            r.retry_on.to_string(),
            "connect-failure,refused-stream,cancelled,unavailable,503"
        );
    }
}
