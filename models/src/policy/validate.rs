//! Validation of a [`PolicySpec`]: every problem, each with its field path, never just the first
//! (a user fixing a policy should not have to apply it ten times to learn ten mistakes).

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::{CountRange, Duration, DurationRange, PolicySpec};

/// One problem in a policy, e.g. `spec.controls.retries.maxAttempts: must be between 1 and 10`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's path in the resource, camelCase, starting at `spec`.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }

    fn between_u32(&mut self, path: &str, v: u32, lo: u32, hi: u32) {
        if v < lo || v > hi {
            self.push(path, format!("must be between {lo} and {hi}, got {v}"));
        }
    }

    fn ratio(&mut self, path: &str, v: f64) {
        if !(v.is_finite() && v > 0.0 && v <= 1.0) {
            self.push(path, format!("must be a ratio in (0, 1], got {v}"));
        }
    }

    fn positive(&mut self, path: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.push(path, format!("must be a positive number, got {v}"));
        }
    }

    fn nonzero(&mut self, path: &str, d: Duration) {
        if d == Duration::ZERO {
            self.push(path, "must be longer than 0s");
        }
    }

    fn count_range(&mut self, path: &str, r: CountRange, lo: u32, hi: u32) {
        self.between_u32(&format!("{path}.min"), r.min, lo, hi);
        self.between_u32(&format!("{path}.max"), r.max, lo, hi);
        if r.min > r.max {
            self.push(
                path,
                format!("min ({}) must not exceed max ({})", r.min, r.max),
            );
        }
    }

    fn duration_range(&mut self, path: &str, r: DurationRange) {
        self.nonzero(&format!("{path}.min"), r.min);
        if r.min > r.max {
            self.push(
                path,
                format!("min ({}) must not exceed max ({})", r.min, r.max),
            );
        }
    }
}

impl PolicySpec {
    /// Checks the spec; on failure returns every problem found, in field order.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut e = Errors(Vec::new());

        let t = &self.target;
        if t.service.trim().is_empty() {
            e.push("spec.target.service", "must name the service to govern");
        }
        let mut seen = BTreeSet::new();
        for (i, s) in t.subsets.iter().enumerate() {
            if s.trim().is_empty() {
                e.push(&format!("spec.target.subsets[{i}]"), "must not be empty");
            } else if !seen.insert(s.as_str()) {
                e.push(
                    &format!("spec.target.subsets[{i}]"),
                    format!("subset {s:?} is listed twice"),
                );
            }
        }

        e.nonzero("spec.telemetry.interval", self.telemetry.interval);
        if self.telemetry.lookback < self.telemetry.interval {
            e.push(
                "spec.telemetry.lookback",
                format!(
                    "must be at least the interval ({}), got {}",
                    self.telemetry.interval, self.telemetry.lookback
                ),
            );
        }

        e.ratio("spec.objectives.successRate", self.objectives.success_rate);
        e.nonzero("spec.objectives.latencyP99", self.objectives.latency_p99);

        let lb = &self.controls.load_balancing;
        let p = "spec.controls.loadBalancing";
        e.between_u32(&format!("{p}.maxStepPercent"), lb.max_step_percent, 1, 100);
        e.between_u32(
            &format!("{p}.minWeightPercent"),
            lb.min_weight_percent,
            0,
            99,
        );
        if lb.enabled && t.subsets.len() < 2 {
            e.push(
                "spec.target.subsets",
                format!(
                    "must list at least two subsets when loadBalancing is enabled, got {}",
                    t.subsets.len()
                ),
            );
        }
        if lb.enabled
            && t.subsets.len() >= 2
            && u64::from(lb.min_weight_percent) * t.subsets.len() as u64 > 100
        {
            e.push(
                &format!("{p}.minWeightPercent"),
                format!(
                    "{} subsets at {}% each exceed 100%",
                    t.subsets.len(),
                    lb.min_weight_percent
                ),
            );
        }
        if let Some(stable) = &lb.stable_subset
            && !t.subsets.contains(stable)
        {
            e.push(
                &format!("{p}.stableSubset"),
                format!("{stable:?} is not one of spec.target.subsets"),
            );
        }

        let od = &self.controls.outlier_detection;
        let p = "spec.controls.outlierDetection";
        e.positive(
            &format!("{p}.falseEjectionsPerHour"),
            od.false_ejections_per_hour,
        );
        e.count_range(
            &format!("{p}.consecutiveErrors"),
            od.consecutive_errors,
            1,
            1000,
        );
        e.count_range(
            &format!("{p}.maxEjectionPercent"),
            od.max_ejection_percent,
            0,
            100,
        );
        e.duration_range(&format!("{p}.interval"), od.interval);
        e.duration_range(&format!("{p}.baseEjectionTime"), od.base_ejection_time);

        let r = &self.controls.retries;
        let p = "spec.controls.retries";
        if let Some(n) = r.max_attempts {
            e.between_u32(&format!("{p}.maxAttempts"), n, 1, 10);
        }
        if !(r.budget_percent.is_finite() && r.budget_percent > 0.0 && r.budget_percent <= 100.0) {
            e.push(
                &format!("{p}.budgetPercent"),
                format!("must be in (0, 100], got {}", r.budget_percent),
            );
        }
        e.duration_range(&format!("{p}.perTryTimeout"), r.per_try_timeout);

        let a = &self.controls.autoscaling;
        let p = "spec.controls.autoscaling";
        if let Some(t) = a.target_utilization {
            e.count_range(&format!("{p}.targetUtilization"), t, 1, 100);
        }
        if a.min_replicas < 1 {
            e.push(&format!("{p}.minReplicas"), "must be at least 1, got 0");
        }
        if let Some(max) = a.max_replicas
            && max < a.min_replicas
        {
            e.push(
                &format!("{p}.maxReplicas"),
                format!(
                    "must be at least minReplicas ({}), got {max}",
                    a.min_replicas
                ),
            );
        }
        e.nonzero(&format!("{p}.forecastHorizon"), a.forecast_horizon);
        if !(a.forecast_coverage.is_finite()
            && a.forecast_coverage > 0.0
            && a.forecast_coverage < 1.0)
        {
            e.push(
                &format!("{p}.forecastCoverage"),
                format!("must be a ratio in (0, 1), got {}", a.forecast_coverage),
            );
        }

        for (i, rem) in self.remediation.iter().enumerate() {
            let p = format!("spec.remediation[{i}]");
            if rem.on_alert.alertname.trim().is_empty() {
                e.push(&format!("{p}.onAlert.alertname"), "must not be empty");
            }
            if rem.actions.is_empty() {
                e.push(&format!("{p}.actions"), "must list at least one action");
            }
        }

        let g = &self.guardrails;
        let p = "spec.guardrails";
        if g.max_changes_per_hour < 1 {
            e.push(
                &format!("{p}.maxChangesPerHour"),
                "must be at least 1 (use freeze to stop changes), got 0",
            );
        }
        e.nonzero(&format!("{p}.regressionWindow"), g.regression_window);
        e.nonzero(&format!("{p}.freezeDuration"), g.freeze_duration);
        e.between_u32(&format!("{p}.hysteresisRuns"), g.hysteresis_runs, 1, 100);
        if !(g.min_requests_per_second.is_finite() && g.min_requests_per_second >= 0.0) {
            e.push(
                &format!("{p}.minRequestsPerSecond"),
                format!("must be zero or more, got {}", g.min_requests_per_second),
            );
        }
        e.ratio(&format!("{p}.minDataCoverage"), g.min_data_coverage);

        if e.0.is_empty() { Ok(()) } else { Err(e.0) }
    }
}
