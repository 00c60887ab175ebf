//! Bad scenario files are errors naming the file, the line and the field; nothing panics.

use homeostat_simulator::duration::Nanos;
use homeostat_simulator::scenario::{Scenario, json_schema};

const GOOD: &str = "name: x
duration: 1m
topology:
  services:
    - name: api
      subsets: [{ name: v1, pods: 2 }]
      serviceTime: { lognormal: { median: 10ms, sigma: 0.5 } }
traffic:
  entries: [{ service: api }]
  profile: { constant: { rate: 10 } }
";

fn err(text: &str) -> String {
    Scenario::parse("bad.yaml", text)
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn the_good_file_parses() {
    let s = Scenario::parse("good.yaml", GOOD).expect("parses");
    assert_eq!(s.telemetry_interval.nanos(), 15_000_000_000);
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let e = err(&GOOD.replace("      subsets:", "      replicas: 3\n      subsets:"));
    assert!(e.starts_with("bad.yaml: "), "{e}");
    assert!(e.contains("replicas"), "{e}");
    // `replicas` is on line 6.
    assert!(e.contains("line 6"), "{e}");
}

#[test]
fn bad_duration_names_the_field() {
    let e = err(&GOOD.replace("median: 10ms", "median: 10 parsecs"));
    assert!(e.contains("median") || e.contains("serviceTime"), "{e}");
    assert!(e.contains("parsecs"), "{e}");
    assert!(e.contains("line 7"), "{e}");
}

#[test]
fn unknown_callee_names_the_field_path() {
    let e = err(&GOOD.replace(
        "      serviceTime:",
        "      calls: [{ service: nowhere }]\n      serviceTime:",
    ));
    assert!(e.contains("topology.services[0].calls[0].service"), "{e}");
    assert!(e.contains("nowhere"), "{e}");
}

#[test]
fn call_cycles_are_rejected() {
    let e = err(&GOOD.replace(
        "      serviceTime:",
        "      calls: [{ service: api }]\n      serviceTime:",
    ));
    assert!(e.contains("cycle"), "{e}");
}

#[test]
fn fault_on_unknown_subset_and_bad_policy_are_rejected() {
    let e = err(&format!(
        "{GOOD}faults:\n  - {{ at: 10s, service: api, subset: canary, errorRate: 0.5 }}\n"
    ));
    assert!(e.contains("faults[0].subset"), "{e}");
    let e = err(&format!(
        "{GOOD}policies:\n  - metadata: {{ name: p }}\n    spec:\n      target: {{ service: api }}\n      objectives: {{ successRate: 1.5 }}\n"
    ));
    assert!(e.contains("policies[0]"), "{e}");
    assert!(e.contains("successRate"), "{e}");
}

#[test]
fn mesh_blocks_use_the_dataplane_types() {
    let e = err(&format!(
        "{GOOD}mesh:\n  outlierDetection: {{ consecutiveErrors: 3 }}\n"
    ));
    assert!(e.contains("consecutiveErrors"), "{e}");
    let s = Scenario::parse(
        "m.yaml",
        &format!("{GOOD}mesh:\n  outlierDetection: {{ maxEjectionPercent: 50 }}\n"),
    )
    .expect("parses");
    let od = s.mesh.outlier_detection.as_ref().expect("block present");
    assert_eq!(od.max_ejection_percent, 50);
    // Unset fields keep Istio's defaults.
    assert_eq!(od.consecutive_5xx, 5);
    assert_eq!(s.mesh.retries.attempts, 2);
    // Without the block: no outlier detection (Istio without a DestinationRule), and the
    // retry limit is Istio's (no budget, maxRetries unlimited).
    let s = Scenario::parse("m.yaml", GOOD).expect("parses");
    assert!(s.mesh.outlier_detection.is_none() && s.mesh.outlier().is_off());
    assert_eq!(s.mesh.retry_limit.budget, None);
    assert_eq!(s.mesh.retry_limit.max_retries, u32::MAX);
}

#[test]
fn telemetry_lag_defaults_to_one_interval_and_bad_values_name_the_field() {
    // Defaults: half of the 15 s interval for the scrape offset + half for the rule delay.
    let s = Scenario::parse("m.yaml", GOOD).expect("parses");
    assert_eq!(
        s.control_plane.telemetry_lag(15_000_000_000),
        15_000_000_000
    );
    let s = Scenario::parse(
        "m.yaml",
        &format!("{GOOD}controlPlane: {{ scrapeOffset: 2s, ruleDelay: 30s }}\n"),
    )
    .expect("parses");
    assert_eq!(
        s.control_plane.telemetry_lag(15_000_000_000),
        32_000_000_000
    );
    let e = err(&format!("{GOOD}controlPlane: {{ ruleDelay: 48h }}\n"));
    assert!(e.contains("controlPlane.ruleDelay"), "{e}");
}

#[test]
fn a_json_schema_is_emitted() {
    let schema = json_schema();
    let text = schema.to_string();
    assert!(text.contains("topology"), "{text}");
    assert!(text.contains("telemetryInterval"), "{text}");
}

#[test]
fn min_pods_zero_is_refused_as_an_hpa_would_be() {
    let e = err(&GOOD.replace("pods: 2 }", "pods: 2, minPods: 0 }"));
    assert!(e.contains("topology.services[0].subsets[0].minPods"), "{e}");
    assert!(e.contains("at least 1"), "{e}");
}
