//! Fan-out on recorded Prometheus answers (the `data` member of `/api/v1/query_range` JSON, as
//! Prometheus 2.42 writes it: values as strings, NaN as "NaN").

use homeostat_models::policy::PolicySpec;

use super::*;
use crate::telemetry::promql::Labels;

// Grid: 3 points ending at 1_700_000_030, 15 s apart → 1_700_000_000, _015, _030.
const GRID: Grid = Grid {
    end: 1_700_000_030,
    step: 15,
    points: 3,
};

fn answer(signal: Signal, level: Level, json: &str) -> Answer {
    let data: Data = serde_json::from_str(json).expect("recorded answer parses");
    Answer::from_data(signal, level, format!("<{}>", signal.name()), data).unwrap()
}

fn key(ns: &str, svc: &str) -> ServiceKey {
    ServiceKey {
        namespace: ns.into(),
        service: svc.into(),
    }
}

fn request(ns: &str, svc: &str, subsets: &[&str]) -> ObserveRequest {
    let mut spec = PolicySpec::for_service(svc);
    spec.target.subsets = subsets.iter().map(|s| s.to_string()).collect();
    ObserveRequest::unconfigured(ns, spec, GRID.end)
}

/// Same-length windows, NaN-aware equality.
fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-12)
}

const NAN: f64 = f64::NAN;

const SERVICE_RATE: &str = r#"{"resultType":"matrix","result":[
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout"},
   "values":[[1700000000,"10"],[1700000015,"12.5"],[1700000030,"0"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"cart"},
   "values":[[1700000015,"3"]]},
  {"metric":{"destination_service_namespace":"other","destination_service_name":"checkout"},
   "values":[[1700000000,"99"]]}
]}"#;

#[test]
fn one_query_fans_out_to_each_asked_service() {
    let asked = BTreeSet::from([key("shop", "checkout"), key("shop", "cart")]);
    let b = Batch::build(
        GRID,
        asked,
        &[answer(Signal::RequestRate, Level::Service, SERVICE_RATE)],
        &Labels::default(),
    )
    .unwrap();
    // other/checkout matched the name set but was not asked for: dropped.
    assert_eq!(
        b.services().cloned().collect::<Vec<_>>(),
        vec![key("shop", "cart"), key("shop", "checkout")]
    );
    let checkout = b.observation(&request("shop", "checkout", &[])).unwrap();
    assert_eq!(checkout.service, "checkout");
    assert_eq!(checkout.end, 1_700_000_030);
    assert_eq!(checkout.step_seconds, 15);
    // A real 0 stays 0; signals no query answered are NaN at full length.
    assert!(same(
        &checkout.service_signals.request_rate,
        &[10.0, 12.5, 0.0]
    ));
    assert!(same(
        &checkout.service_signals.latency_p99,
        &[NAN, NAN, NAN]
    ));
    let cart = b.observation(&request("shop", "cart", &[])).unwrap();
    // Only the middle point came back: the others are unknown, not zero.
    assert!(same(&cart.service_signals.request_rate, &[NAN, 3.0, NAN]));
    assert!(cart.subsets.is_empty() && cart.endpoints.is_empty());
}

#[test]
fn a_service_without_series_is_insufficient_not_unavailable() {
    let asked = BTreeSet::from([key("shop", "checkout"), key("shop", "idle")]);
    let b = Batch::build(
        GRID,
        asked,
        &[answer(Signal::RequestRate, Level::Service, SERVICE_RATE)],
        &Labels::default(),
    )
    .unwrap();
    let e = b.observation(&request("shop", "idle", &[])).unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Insufficient(m) if m.contains("shop/idle")),
        "{e}"
    );
}

/// The callers' side (`reporter="source"`, grouped by service): checkout's callers at 99.99 %
/// and 100 %, with a point missing; `ghost` has callers in the mesh but no server-side series.
const CALLERS_SUCCESS: &str = r#"{"resultType":"matrix","result":[
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout"},
   "values":[[1700000000,"0.9999"],[1700000030,"1"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"ghost"},
   "values":[[1700000000,"0.5"]]}
]}"#;

#[test]
fn the_callers_side_is_filed_apart_and_never_stands_for_the_server() {
    let asked = BTreeSet::from([
        key("shop", "checkout"),
        key("shop", "cart"),
        key("shop", "ghost"),
    ]);
    let b = Batch::build(
        GRID,
        asked,
        &[
            answer(Signal::RequestRate, Level::Service, SERVICE_RATE),
            answer(Signal::SuccessRate, Level::Callers, CALLERS_SUCCESS),
        ],
        &Labels::default(),
    )
    .unwrap();
    let checkout = b.observation(&request("shop", "checkout", &[])).unwrap();
    assert!(same(&checkout.callers.success_rate, &[0.9999, NAN, 1.0]));
    // The server's own windows are untouched by it.
    assert!(same(
        &checkout.service_signals.success_rate,
        &[NAN, NAN, NAN]
    ));
    assert!(same(
        &checkout.service_signals.request_rate,
        &[10.0, 12.5, 0.0]
    ));
    // No caller in the mesh: the side is not collected (empty), not "unknown" (NaN).
    let cart = b.observation(&request("shop", "cart", &[])).unwrap();
    assert!(cart.callers.is_empty());
    // Callers alone, no server-side series: no data on the service, as before.
    let e = b.observation(&request("shop", "ghost", &[])).unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Insufficient(m) if m.contains("shop/ghost")),
        "{e}"
    );
}

const SUBSET_SUCCESS: &str = r#"{"resultType":"matrix","result":[
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable"},
   "values":[[1700000000,"1"],[1700000015,"0.999"],[1700000030,"1"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"canary"},
   "values":[[1700000000,"NaN"],[1700000015,"0.5"],[1700000030,"0.48"]]}
]}"#;

const POD_P99: &str = r#"{"resultType":"matrix","result":[
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable","pod":"checkout-stable-a"},
   "values":[[1700000000,"0.04"],[1700000015,"0.05"],[1700000030,"0.045"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"canary","pod":"checkout-canary-c"},
   "values":[[1700000030,"0.2"]]}
]}"#;

#[test]
fn subsets_follow_the_policy_and_pods_keep_their_subset() {
    let asked = BTreeSet::from([key("shop", "checkout")]);
    let b = Batch::build(
        GRID,
        asked,
        &[
            answer(Signal::RequestRate, Level::Service, SERVICE_RATE),
            answer(Signal::SuccessRate, Level::Subset, SUBSET_SUCCESS),
            answer(Signal::LatencyP99, Level::Pod, POD_P99),
        ],
        &Labels::default(),
    )
    .unwrap();
    let o = b
        .observation(&request("shop", "checkout", &["canary", "stable", "v3"]))
        .unwrap();
    let names: Vec<&str> = o.subsets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["canary", "stable", "v3"]);
    // Prometheus' "NaN" (0/0: no requests) arrives as NaN.
    assert!(same(&o.subsets[0].signals.success_rate, &[NAN, 0.5, 0.48]));
    assert!(same(&o.subsets[1].signals.success_rate, &[1.0, 0.999, 1.0]));
    // v3 is in the policy but had no series: a NaN window, not an invented 100 %.
    assert!(same(&o.subsets[2].signals.success_rate, &[NAN, NAN, NAN]));
    assert_eq!(o.endpoints.len(), 2);
    let c = &o.endpoints[0];
    assert_eq!(c.name, "checkout-canary-c");
    assert_eq!(c.subset.as_deref(), Some("canary"));
    assert!(same(&c.signals.latency_p99, &[NAN, NAN, 0.2]));
    assert_eq!(o.endpoints[1].subset.as_deref(), Some("stable"));
}

const CPU_USAGE: &str = r#"{"resultType":"matrix","result":[
  {"metric":{"namespace":"shop","pod":"checkout-stable-a"},"values":[[1700000030,"0.5"]]},
  {"metric":{"namespace":"shop","pod":"checkout-stable-b"},"values":[[1700000030,"0.3"]]},
  {"metric":{"namespace":"shop","pod":"checkout-canary-c"},"values":[[1700000030,"0.9"]]},
  {"metric":{"namespace":"shop","pod":"unrelated-0"},"values":[[1700000030,"8"]]}
]}"#;

const CPU_REQUESTS: &str = r#"{"resultType":"matrix","result":[
  {"metric":{"namespace":"shop","pod":"checkout-stable-a"},"values":[[1700000015,"1"],[1700000030,"1"]]},
  {"metric":{"namespace":"shop","pod":"checkout-stable-b"},"values":[[1700000030,"1"]]},
  {"metric":{"namespace":"shop","pod":"checkout-canary-c"},"values":[[1700000030,"0.5"]]},
  {"metric":{"namespace":"shop","pod":"unrelated-0"},"values":[[1700000030,"1"]]}
]}"#;

const POD_RATE: &str = r#"{"resultType":"matrix","result":[
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable","pod":"checkout-stable-a"},"values":[[1700000030,"5"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"stable","pod":"checkout-stable-b"},"values":[[1700000030,"5"]]},
  {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout","destination_version":"canary","pod":"checkout-canary-c"},"values":[[1700000030,"2"]]}
]}"#;

#[test]
fn utilisation_sums_usage_over_requests_like_the_hpa() {
    let asked = BTreeSet::from([key("shop", "checkout")]);
    let b = Batch::build(
        GRID,
        asked,
        &[
            answer(Signal::RequestRate, Level::Service, SERVICE_RATE),
            answer(Signal::RequestRate, Level::Pod, POD_RATE),
            answer(Signal::CpuUsage, Level::Pod, CPU_USAGE),
            answer(Signal::CpuRequests, Level::Pod, CPU_REQUESTS),
        ],
        &Labels::default(),
    )
    .unwrap();
    let o = b
        .observation(&request("shop", "checkout", &["stable", "canary"]))
        .unwrap();
    // Newest point: service (0.5 + 0.3 + 0.9) / (1 + 1 + 0.5) = 1.7 / 2.5 = 0.68 — the
    // unrelated pod (8 cores) is not one of checkout's pods and is left out.
    // At 1_700_000_015 pod a has requests but no usage: no pod has both → NaN.
    assert!(same(&o.service_signals.utilization, &[NAN, NAN, 0.68]));
    // stable: 0.8 / 2 = 0.4; canary: 0.9 / 0.5 = 1.8 (bursting over its request).
    assert!(same(&o.subsets[0].signals.utilization, &[NAN, NAN, 0.4]));
    assert!(same(&o.subsets[1].signals.utilization, &[NAN, NAN, 1.8]));
    let a = o
        .endpoints
        .iter()
        .find(|e| e.name == "checkout-stable-a")
        .unwrap();
    assert!(same(&a.signals.utilization, &[NAN, NAN, 0.5]));
}

#[test]
fn non_matrix_and_off_grid_answers_are_malformed_and_name_the_query() {
    let data: Data = serde_json::from_str(r#"{"resultType":"vector","result":[]}"#).unwrap();
    let e = Answer::from_data(Signal::LatencyP90, Level::Subset, "q90".into(), data).unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Malformed(m) if m.contains("latency p90 by subset") && m.contains("a vector") && m.contains("q90")),
        "{e}"
    );
    let off = r#"{"resultType":"matrix","result":[
      {"metric":{"destination_service_namespace":"shop","destination_service_name":"checkout"},
       "values":[[1700000007,"1"]]}]}"#;
    let e = Batch::build(
        GRID,
        BTreeSet::from([key("shop", "checkout")]),
        &[answer(Signal::RequestRate, Level::Service, off)],
        &Labels::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, TelemetryError::Malformed(m) if m.contains("request rate by service") && m.contains("1700000007")),
        "{e}"
    );
    // A value that is not a number inside the string is rejected by the parser, not read as 0.
    let bad = r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"fast"]]}]}"#;
    assert!(serde_json::from_str::<Data>(bad).is_err());
}

fn rate_answer(level: Level, rows: &[(&str, &[(i64, f64)])]) -> Answer {
    Answer {
        signal: Signal::RequestRate,
        level,
        query: "<rate>".into(),
        series: rows
            .iter()
            .map(|(pod, pts)| Series {
                labels: HashMap::from([
                    (SERVICE_NAMESPACE.to_string(), "shop".to_string()),
                    (SERVICE_NAME.to_string(), "checkout".to_string()),
                    ("pod".to_string(), pod.to_string()),
                ]),
                samples: pts.iter().map(|(t, v)| (*t as f64, *v)).collect(),
            })
            .collect(),
    }
}

#[test]
fn advancing_a_batch_shifts_every_window_and_forgets_what_left() {
    let asked = BTreeSet::from([key("shop", "checkout")]);
    let labels = Labels::default();
    // Grid 0, 15, 30 (3 points ending at 30).
    let g = Grid {
        end: 30,
        step: 15,
        points: 3,
    };
    let svc = |pts: &[(i64, f64)]| rate_answer(Level::Service, &[("", pts)]);
    let mut b = Batch::build(
        g,
        asked.clone(),
        &[
            svc(&[(0, 1.0), (15, 2.0), (30, 3.0)]),
            rate_answer(Level::Pod, &[("p", &[(15, 5.0), (30, 6.0)])]),
            rate_answer(Level::Callers, &[("", &[(0, 0.5), (30, 1.5)])]),
        ],
        &labels,
    )
    .unwrap();
    // One new step at 45: the service has 4, pod p is gone, pod q appears with 7.
    let step = |end: i64, rows: &[(&str, &[(i64, f64)])], rate: f64| {
        Batch::build(
            Grid {
                end,
                step: 15,
                points: 1,
            },
            asked.clone(),
            &[svc(&[(end, rate)]), rate_answer(Level::Pod, rows)],
            &labels,
        )
        .unwrap()
    };
    b.advance(&step(45, &[("q", &[(45, 7.0)])], 4.0)).unwrap();
    let req = ObserveRequest {
        end: 45,
        ..request("shop", "checkout", &[])
    };
    let o = b.observation(&req).unwrap();
    assert_eq!(o.end, 45);
    // [1, 2, 3] drops 1 and takes 4.
    assert!(same(&o.service_signals.request_rate, &[2.0, 3.0, 4.0]));
    // The callers' [0.5, NaN, 1.5] shifts too; the step brought none: NaN.
    assert!(same(&o.callers.request_rate, &[NAN, 1.5, NAN]));
    let pods: Vec<&str> = o.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(pods, ["p", "q"]);
    // p: [NaN, 5, 6] → [5, 6, NaN]; q is new: [NaN, NaN, 7].
    assert!(same(&o.endpoints[0].signals.request_rate, &[5.0, 6.0, NAN]));
    assert!(same(&o.endpoints[1].signals.request_rate, &[NAN, NAN, 7.0]));
    // Two more steps without p: its 5 and 6 leave the window and so does p.
    b.advance(&step(60, &[("q", &[(60, 8.0)])], 5.0)).unwrap();
    b.advance(&step(75, &[("q", &[(75, 9.0)])], 6.0)).unwrap();
    let o = b
        .observation(&ObserveRequest {
            end: 75,
            ..request("shop", "checkout", &[])
        })
        .unwrap();
    assert_eq!(o.endpoints.len(), 1);
    assert!(same(&o.endpoints[0].signals.request_rate, &[7.0, 8.0, 9.0]));
    // A batch that does not end a whole number of steps later cannot be appended.
    let odd = Batch::build(
        Grid {
            end: 80,
            step: 15,
            points: 1,
        },
        asked.clone(),
        &[],
        &labels,
    )
    .unwrap();
    assert!(matches!(b.advance(&odd), Err(TelemetryError::Malformed(_))));
}

/// `answer` restricted to the samples on `grid` (what a range query over that grid returns).
fn within(a: &Answer, grid: Grid) -> Answer {
    let on = |t: f64| t >= grid.start() as f64 && t <= grid.end as f64;
    Answer {
        series: a
            .series
            .iter()
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s.samples.iter().copied().filter(|(t, _)| on(*t)).collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect(),
        ..a.clone()
    }
}

#[test]
fn chunks_advanced_into_an_empty_batch_equal_one_fetch_of_the_whole_grid() {
    // The Prometheus client's path for a long lookback over many services: an empty batch
    // ending one step before the grid, advanced by a 1-point then a 2-point chunk.
    let asked = BTreeSet::from([key("shop", "checkout"), key("shop", "cart")]);
    let answers = [
        answer(Signal::RequestRate, Level::Service, SERVICE_RATE),
        answer(Signal::SuccessRate, Level::Subset, SUBSET_SUCCESS),
        answer(Signal::LatencyP99, Level::Pod, POD_P99),
    ];
    let whole = Batch::build(GRID, asked.clone(), &answers, &Labels::default()).unwrap();
    let first = Grid {
        end: 1_700_000_000,
        step: 15,
        points: 1,
    };
    let second = Grid {
        end: 1_700_000_030,
        step: 15,
        points: 2,
    };
    let mut chunked = Batch::empty(
        Grid {
            end: 1_699_999_985,
            ..GRID
        },
        asked.clone(),
    );
    for part in [first, second] {
        let part_answers: Vec<Answer> = answers.iter().map(|a| within(a, part)).collect();
        let b = Batch::build(part, asked.clone(), &part_answers, &Labels::default()).unwrap();
        chunked.advance(&b).unwrap();
    }
    assert_eq!(chunked.grid, GRID);
    for (svc, subsets) in [("checkout", &["canary", "stable"][..]), ("cart", &[][..])] {
        let w = whole.observation(&request("shop", svc, subsets)).unwrap();
        let c = chunked.observation(&request("shop", svc, subsets)).unwrap();
        // Observation's PartialEq treats NaN as unequal: compare through serde (NaN → null).
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::to_value(&c).unwrap(),
            "{svc}"
        );
    }
    // And the windows are the recorded values, not two equal wrong ones.
    let c = chunked
        .observation(&request("shop", "checkout", &["canary", "stable"]))
        .unwrap();
    assert!(same(&c.service_signals.request_rate, &[10.0, 12.5, 0.0]));
    assert!(same(&c.subsets[0].signals.success_rate, &[NAN, 0.5, 0.48]));
}
