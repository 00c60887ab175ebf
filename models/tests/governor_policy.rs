//! The AdaptivePolicy spec: parsing the design's example, defaults, every validation error with
//! its path, and the JSON schema the CRD is generated from.

use homeostat_models::policy::{Duration, Mesh, Mode, PolicySpec, RemediationAction};

/// The spec of the design sketch (shared/design/adaptivepolicy.example.yaml), as users write it.
const EXAMPLE: &str = r#"
mode: DryRun
target:
  service: checkout
  mesh: istio
  subsets: [stable, canary]
  horizontalPodAutoscaler: checkout
telemetry:
  prometheus: http://prometheus.monitoring:9090
  interval: 15s
  lookback: 1h
objectives:
  successRate: 0.999
  latencyP99: 300ms
controls:
  loadBalancing:    { enabled: true, maxStepPercent: 20, minWeightPercent: 0 }
  outlierDetection: { enabled: true, falseEjectionsPerHour: 0.1,
                      maxEjectionPercent: { min: 10, max: 50 } }
  retries:          { enabled: true, maxAttempts: 4, budgetPercent: 20 }
  autoscaling:      { enabled: true, targetUtilization: { min: 40, max: 85 },
                      minReplicas: 2, maxReplicas: 50, forecastHorizon: 10m }
remediation:
  - onAlert: { alertname: CheckoutHighErrorRate }
    actions: [ejectOutliers, shiftToStable, scaleUp]
guardrails:
  cooldown: 2m
  maxChangesPerHour: 12
  rollbackOnRegression: true
"#;

#[test]
fn the_design_example_parses_and_validates() {
    let spec: PolicySpec = serde_yaml::from_str(EXAMPLE).unwrap();
    assert_eq!(spec.mode, Mode::DryRun);
    assert_eq!(spec.target.service, "checkout");
    assert_eq!(spec.target.mesh, Mesh::Istio);
    assert_eq!(spec.target.subsets, vec!["stable", "canary"]);
    assert_eq!(spec.telemetry.interval, Duration::from_secs(15));
    assert_eq!(spec.telemetry.lookback, Duration::from_secs(3600));
    assert_eq!(spec.objectives.success_rate, 0.999);
    assert_eq!(spec.objectives.latency_p99, Duration::from_millis(300));
    assert_eq!(spec.controls.load_balancing.max_step_percent, 20);
    assert_eq!(spec.controls.outlier_detection.max_ejection_percent.max, 50);
    assert_eq!(spec.controls.retries.max_attempts, Some(4));
    assert_eq!(spec.controls.autoscaling.max_replicas, Some(50));
    assert_eq!(
        spec.controls.autoscaling.forecast_horizon,
        Duration::from_secs(600)
    );
    assert_eq!(
        spec.remediation[0].actions,
        vec![
            RemediationAction::EjectOutliers,
            RemediationAction::ShiftToStable,
            RemediationAction::ScaleUp
        ]
    );
    assert_eq!(spec.guardrails.cooldown, Duration::from_secs(120));
    assert_eq!(spec.guardrails.max_changes_per_hour, 12);
    assert_eq!(spec.validate(), Ok(()));
    assert_eq!(spec.stable_subset(), Some("stable"));
}

#[test]
fn a_minimal_policy_gets_working_defaults() {
    let spec: PolicySpec =
        serde_yaml::from_str("target: {service: checkout, subsets: [v1, v2]}\n").unwrap();
    assert_eq!(spec.mode, Mode::DryRun);
    assert!(spec.controls.retries.enabled);
    assert_eq!(spec.guardrails.cooldown, Duration::from_secs(120));
    assert_eq!(spec.validate(), Ok(()));
    // JSON round trip keeps everything (durations as Go strings).
    let json = serde_json::to_string(&spec).unwrap();
    assert!(json.contains(r#""cooldown":"2m""#), "{json}");
    assert_eq!(PolicySpec::from_json(&json), Ok(spec));
}

#[test]
fn validation_returns_every_problem_with_its_path() {
    let spec: PolicySpec = serde_yaml::from_str(
        r#"
target: {service: "", subsets: [a, a]}
telemetry: {interval: 1m, lookback: 30s}
objectives: {successRate: 1.5}
controls:
  loadBalancing: {maxStepPercent: 0, stableSubset: z}
  outlierDetection: {falseEjectionsPerHour: 0, maxEjectionPercent: {min: 60, max: 50}}
  retries: {maxAttempts: 11, budgetPercent: 0}
  autoscaling: {minReplicas: 5, maxReplicas: 3, targetUtilization: {min: 0, max: 101}}
remediation:
  - onAlert: {alertname: ""}
    actions: []
guardrails: {maxChangesPerHour: 0, minDataCoverage: 0}
"#,
    )
    .unwrap();
    let errors: Vec<String> = spec
        .validate()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    let expected = [
        "spec.target.service: must name the service to govern",
        "spec.target.subsets[1]: subset \"a\" is listed twice",
        "spec.telemetry.lookback: must be at least the interval (1m), got 30s",
        "spec.objectives.successRate: must be a ratio in (0, 1], got 1.5",
        "spec.controls.loadBalancing.maxStepPercent: must be between 1 and 100, got 0",
        "spec.controls.loadBalancing.stableSubset: \"z\" is not one of spec.target.subsets",
        "spec.controls.outlierDetection.falseEjectionsPerHour: must be a positive number, got 0",
        "spec.controls.outlierDetection.maxEjectionPercent: min (60) must not exceed max (50)",
        "spec.controls.retries.maxAttempts: must be between 1 and 10, got 11",
        "spec.controls.retries.budgetPercent: must be in (0, 100], got 0",
        "spec.controls.autoscaling.targetUtilization.min: must be between 1 and 100, got 0",
        "spec.controls.autoscaling.targetUtilization.max: must be between 1 and 100, got 101",
        "spec.controls.autoscaling.maxReplicas: must be at least minReplicas (5), got 3",
        "spec.remediation[0].onAlert.alertname: must not be empty",
        "spec.remediation[0].actions: must list at least one action",
        "spec.guardrails.maxChangesPerHour: must be at least 1 (use freeze to stop changes), got 0",
        "spec.guardrails.minDataCoverage: must be a ratio in (0, 1], got 0",
    ];
    assert_eq!(errors, expected);
}

#[test]
fn load_balancing_needs_two_subsets_and_bad_durations_name_the_field() {
    let spec: PolicySpec = serde_yaml::from_str("target: {service: s}\n").unwrap();
    let errors = spec.validate().unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "spec.target.subsets: must list at least two subsets when loadBalancing is enabled, got 0"
    );
    let err = PolicySpec::from_json(
        r#"{"target":{"service":"s"},"guardrails":{"cooldown":"2 minutes"}}"#,
    )
    .unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err[0].message.contains("2 minutes"), "{}", err[0]);
    assert!(err[0].message.contains("line 1"), "{}", err[0]);
}

#[test]
fn the_schema_documents_fields_and_checks_durations() {
    let schema = serde_json::to_value(schemars::schema_for!(PolicySpec)).unwrap();
    let text = schema.to_string();
    // Doc comments become descriptions; durations are patterned strings.
    assert!(text.contains("Least time between two changes of the same knob"));
    assert!(text.contains("\"pattern\""));
    assert!(text.contains("falseEjectionsPerHour"));
    assert!(text.contains("DryRun") && text.contains("Enforce"));
}
