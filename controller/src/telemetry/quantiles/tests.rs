//! Quantiles from bucket rates, on a recorded Prometheus answer of
//! `sum by (destination_service_namespace, destination_service_name, destination_version, pod,
//! le) (rate(istio_request_duration_milliseconds_bucket[...]))`, worked by hand.

use std::collections::BTreeSet;

use homeostat_models::policy::PolicySpec;
use prometheus_http_query::response::Data;

use super::*;
use crate::telemetry::ObserveRequest;
use crate::telemetry::fanout::{Batch, ServiceKey};
use crate::telemetry::grid::Grid;

// Two points: 1_700_000_000 and _015.
const GRID: Grid = Grid {
    end: 1_700_000_015,
    step: 15,
    points: 2,
};

/// Cumulative rates per second at t = …000 (le 10 ms, 20 ms, +Inf):
/// * pod a (stable): 2, 6, 8;
/// * pod c (canary): 0, 1, 2;
/// * a stable series without a pod label (a scrape config without the pod relabelling): 2, 2, 2.
///
/// At t = …015 only pod a answers, with no requests (0, 0, 0).
const BUCKETS: &str = r#"{"resultType":"matrix","result":[
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable","pod":"a","le":"10"},"values":[[1700000000,"2"],[1700000015,"0"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable","pod":"a","le":"20"},"values":[[1700000000,"6"],[1700000015,"0"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable","pod":"a","le":"+Inf"},"values":[[1700000000,"8"],[1700000015,"0"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"canary","pod":"c","le":"10"},"values":[[1700000000,"0"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"canary","pod":"c","le":"20"},"values":[[1700000000,"1"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"canary","pod":"c","le":"+Inf"},"values":[[1700000000,"2"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable","le":"10"},"values":[[1700000000,"2"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable","le":"20"},"values":[[1700000000,"2"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable","le":"+Inf"},"values":[[1700000000,"2"]]}
]}"#;

fn buckets(json: &str) -> Answer {
    let data: Data = serde_json::from_str(json).expect("recorded answer parses");
    Answer::from_data(Signal::LatencyBuckets, Level::Pod, "<buckets>".into(), data).unwrap()
}

fn request(subsets: &[&str]) -> ObserveRequest {
    let mut spec = PolicySpec::for_service("checkout");
    spec.target.subsets = subsets.iter().map(|s| s.to_string()).collect();
    ObserveRequest::unconfigured("shop", spec, GRID.end)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn every_level_is_a_sum_of_the_pods_buckets() {
    let b = Batch::build(
        GRID,
        BTreeSet::from([ServiceKey {
            namespace: "shop".into(),
            service: "checkout".into(),
        }]),
        &[buckets(BUCKETS)],
        &Labels::default(),
    )
    .unwrap();
    let o = b.observation(&request(&["canary", "stable"])).unwrap();

    // Pod a, p50: rank 0.5·8 = 4 lies in (10, 20] holding 6 − 2 = 4: 10 + 10·(4 − 2)/4 = 15 ms.
    let a = o.endpoints.iter().find(|e| e.name == "a").unwrap();
    assert_eq!(a.subset.as_deref(), Some("stable"));
    assert!(close(a.signals.latency_p50[0], 0.015), "{:?}", a.signals);
    // No requests at …015 (0/0): unknown, not 0.
    assert!(a.signals.latency_p50[1].is_nan());
    // Pod c, p50: rank 1 is the whole of (10, 20]: 10 + 10·1/1 = 20 ms.
    let c = o.endpoints.iter().find(|e| e.name == "c").unwrap();
    assert!(close(c.signals.latency_p50[0], 0.020));
    // The series without a pod label is no endpoint.
    assert_eq!(o.endpoints.len(), 2);

    // Subset stable = pod a + the pod-less series: 4, 8, 10. p50: rank 5 in (10, 20] holding 4:
    // 10 + 10·(5 − 4)/4 = 12.5 ms.
    let stable = &o.subsets[1];
    assert_eq!(stable.name, "stable");
    assert!(close(stable.signals.latency_p50[0], 0.0125));
    assert!(close(o.subsets[0].signals.latency_p50[0], 0.020));

    // Service = everything: 4, 9, 12. p50: rank 6 in (10, 20] holding 5: 10 + 10·2/5 = 14 ms.
    // p90 (rank 10.8) and p99 (rank 11.88) are past 9, in +Inf: the largest finite bound, 20 ms.
    let s = &o.service_signals;
    assert!(close(s.latency_p50[0], 0.014), "{s:?}");
    assert!(close(s.latency_p90[0], 0.020));
    assert!(close(s.latency_p99[0], 0.020));
    assert!(s.latency_p99[1].is_nan());
}

#[test]
fn a_bucket_without_a_numeric_le_is_malformed() {
    let bad = r#"{"resultType":"matrix","result":[
      {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","le":"ten"},"values":[[1700000000,"2"]]}
    ]}"#;
    let e = answers(&buckets(bad), &Labels::default(), &GRID).unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Malformed(m) if m.contains("le=\"ten\"") && m.contains("latency buckets")),
        "{e}"
    );
    let none = r#"{"resultType":"matrix","result":[
      {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout"},"values":[[1700000000,"2"]]}
    ]}"#;
    let e = answers(&buckets(none), &Labels::default(), &GRID).unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Malformed(m) if m.contains("no le label")),
        "{e}"
    );
}
