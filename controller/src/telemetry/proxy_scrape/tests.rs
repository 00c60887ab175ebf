//! The direct path on hand-written stats pages, with every expected number worked out below.

use homeostat_models::policy::{Duration as PolicyDuration, PolicySpec};

use super::*;

/// One `istio_requests_total` series and its duration buckets (cumulative counts per `le`, the
/// rest of the 20 bounds filled with the last value given).
struct Line<'a> {
    reporter: &'a str,
    service: &'a str,
    version: &'a str,
    code: u16,
    /// (le, cumulative) pairs in bound order; `count` is the +Inf total.
    buckets: &'a [(&'a str, u64)],
    count: u64,
}

const BOUNDS: [&str; 20] = [
    "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000",
    "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf",
];

fn page(lines: &[Line<'_>]) -> String {
    let mut out = String::from("# TYPE istio_requests_total counter\n");
    for l in lines {
        let labels = format!(
            "reporter=\"{}\",destination_service_name=\"{}\",destination_service_namespace=\"shop\",\
             destination_version=\"{}\",response_code=\"{}\"",
            l.reporter, l.service, l.version, l.code
        );
        out.push_str(&format!("istio_requests_total{{{labels}}} {}\n", l.count));
        let mut cum = 0;
        for b in BOUNDS {
            if let Some((_, c)) = l.buckets.iter().find(|(le, _)| *le == b) {
                cum = *c;
            }
            let v = if b == "+Inf" { l.count } else { cum };
            out.push_str(&format!(
                "istio_request_duration_milliseconds_bucket{{{labels},le=\"{b}\"}} {v}\n"
            ));
        }
    }
    out
}

fn request(end: i64) -> ObserveRequest {
    let mut spec = PolicySpec::for_service("checkout");
    spec.target.subsets = vec!["v1".into(), "v2".into()];
    spec.telemetry.interval = PolicyDuration::from_secs(10);
    spec.telemetry.lookback = PolicyDuration::from_secs(20);
    ObserveRequest::unconfigured("shop", spec, end)
}

fn scraper() -> ProxyScraper {
    ProxyScraper::new(ScrapeConfig::new(Vec::new()))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn rates_ratios_and_quantiles_from_two_scrapes_with_a_reset_and_a_new_series() {
    let s = scraper();
    // Pod a (v1) at t = 100: 100 × 200, all in the 5 ms bucket. Ignored: a source-side series
    // and another service.
    let a0 = page(&[
        Line {
            reporter: "destination",
            service: "checkout",
            version: "v1",
            code: 200,
            buckets: &[("5", 100)],
            count: 100,
        },
        Line {
            reporter: "source",
            service: "checkout",
            version: "v1",
            code: 200,
            buckets: &[("5", 999)],
            count: 999,
        },
        Line {
            reporter: "destination",
            service: "cart",
            version: "v1",
            code: 500,
            buckets: &[("5", 7)],
            count: 7,
        },
    ]);
    // t = 110: 90 more 200s (80 in ≤5 ms, 10 in (10, 25] ms) and a new 503 series of 10, all
    // in (0.5, 1] ms.
    let a1 = page(&[
        Line {
            reporter: "destination",
            service: "checkout",
            version: "v1",
            code: 200,
            buckets: &[("5", 180), ("25", 190)],
            count: 190,
        },
        Line {
            reporter: "destination",
            service: "checkout",
            version: "v1",
            code: 503,
            buckets: &[("1", 10)],
            count: 10,
        },
        Line {
            reporter: "source",
            service: "checkout",
            version: "v1",
            code: 200,
            buckets: &[("5", 5000)],
            count: 5000,
        },
    ]);
    // Pod b (v2) restarted between the scrapes: 500 → 30, the 30 all in (5, 10] ms.
    let b0 = page(&[Line {
        reporter: "destination",
        service: "checkout",
        version: "v2",
        code: 200,
        buckets: &[("5", 500)],
        count: 500,
    }]);
    let b1 = page(&[Line {
        reporter: "destination",
        service: "checkout",
        version: "v2",
        code: 200,
        buckets: &[("5", 0), ("10", 30)],
        count: 30,
    }]);
    for (pod, t, text) in [
        ("a", 100.0, &a0),
        ("b", 100.0, &b0),
        ("a", 110.0, &a1),
        ("b", 110.0, &b1),
    ] {
        s.record(pod, t, parse_page("test", text));
    }
    let obs = s.observation(&request(110)).expect("observation");
    // Grid: 20 s lookback at 10 s → points at 100 and 110. The point at 100 needs a scrape at
    // or before 90: none → NaN.
    assert_eq!((obs.end, obs.step_seconds), (110, 10));
    let svc = &obs.service_signals;
    assert!(svc.request_rate[0].is_nan());
    // Service at 110: a: 90 + 10 = 100 requests, b: 30 (reset: counts from zero) over 10 s →
    // 13 req/s; 10 errors of 130 → 1 − 10/130.
    assert!(close(svc.request_rate[1], 13.0), "{:?}", svc.request_rate);
    assert!(close(svc.success_rate[1], 1.0 - 10.0 / 130.0));
    // Buckets of the step: (0.5,1]: 10, (1,5]: 80, (5,10]: 30, (10,25]: 10; n = 130.
    // p50: rank 65, in (1,5] (10 below, 80 in it): 1 + 4·(65 − 10)/80 = 3.75 ms.
    assert!(close(svc.latency_p50[1], 0.00375), "{:?}", svc.latency_p50);
    // p99: rank 128.7, in (10,25] (120 below, 10 in it): 10 + 15·8.7/10 = 23.05 ms.
    assert!(close(svc.latency_p99[1], 0.02305), "{:?}", svc.latency_p99);
    // Utilisation is not in the proxies' stats.
    assert!(svc.utilization.iter().all(|u| u.is_nan()));

    let v1 = &obs.subsets[0];
    assert_eq!(v1.name, "v1");
    // v1 = pod a: 100 requests / 10 s; 1 − 10/100; buckets 10, 80, 0, 10 (n = 100):
    // p50 rank 50 → 1 + 4·40/80 = 3 ms; p90 rank 90 → 1 + 4·80/80 = 5 ms;
    // p99 rank 99 → 10 + 15·9/10 = 23.5 ms.
    assert!(close(v1.signals.request_rate[1], 10.0));
    assert!(close(v1.signals.success_rate[1], 0.9));
    assert!(close(v1.signals.latency_p50[1], 0.003));
    assert!(close(v1.signals.latency_p90[1], 0.005));
    assert!(close(v1.signals.latency_p99[1], 0.0235));
    // v2 = pod b: 30 / 10 s, no errors, p50 rank 15 in (5,10]: 5 + 5·15/30 = 7.5 ms.
    let v2 = &obs.subsets[1];
    assert!(close(v2.signals.request_rate[1], 3.0));
    assert!(close(v2.signals.success_rate[1], 1.0));
    assert!(close(v2.signals.latency_p50[1], 0.0075));

    // Pods: the targets' names, with their subsets.
    let pods: Vec<(&str, Option<&str>, f64)> = obs
        .endpoints
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.subset.as_deref(),
                e.signals.request_rate[1],
            )
        })
        .collect();
    assert_eq!(pods, vec![("a", Some("v1"), 10.0), ("b", Some("v2"), 3.0)]);
}

#[test]
fn no_series_for_the_service_is_insufficient() {
    let s = scraper();
    let other = page(&[Line {
        reporter: "destination",
        service: "cart",
        version: "v1",
        code: 200,
        buckets: &[("5", 1)],
        count: 1,
    }]);
    s.record("a", 100.0, parse_page("test", &other));
    s.record("a", 110.0, parse_page("test", &other));
    let e = s
        .observation(&request(110))
        .expect_err("no checkout series");
    assert!(
        matches!(&e, TelemetryError::Insufficient(m) if m.contains("shop/checkout")),
        "{e}"
    );
}

#[test]
fn a_malformed_page_is_an_error_naming_target_and_line_and_blocks_observations() {
    let s = scraper();
    let good = page(&[Line {
        reporter: "destination",
        service: "checkout",
        version: "v1",
        code: 200,
        buckets: &[("5", 10)],
        count: 10,
    }]);
    s.record(
        "a",
        100.0,
        parse_page("http://a:15090/stats/prometheus", &good),
    );
    s.record(
        "a",
        110.0,
        parse_page("http://a:15090/stats/prometheus", &good),
    );
    assert!(s.observation(&request(110)).is_ok());
    // A page cut off in the middle of a label set.
    let torn = format!("{}istio_requests_total{{reporter=\"dest", good);
    let e = parse_page("http://a:15090/stats/prometheus", &torn).expect_err("torn page");
    let TelemetryError::Malformed(m) = &e else {
        panic!("{e}")
    };
    // The torn line is the one after the whole good page (1 TYPE + 1 + 20 lines).
    assert!(
        m.starts_with("http://a:15090/stats/prometheus: not Prometheus text: line 23: "),
        "{m}"
    );
    s.record("a", 120.0, Err(e));
    // While the last scrape of a target failed, no Observation (so no action) at all.
    let e = s.observation(&request(120)).expect_err("blocked");
    assert!(matches!(e, TelemetryError::Malformed(_)), "{e}");
    // Impossible values and foreign buckets are malformed too.
    let negative = good.replacen("} 10\n", "} -3\n", 1);
    let e = parse_page("p", &negative).expect_err("negative count");
    assert!(e.to_string().contains("not a count"), "{e}");
    let foreign = good.replace("le=\"25\"", "le=\"20\"");
    let e = parse_page("p", &foreign).expect_err("custom buckets");
    assert!(e.to_string().contains("le=\"20\""), "{e}");
    // The next good scrape clears the block.
    s.record("a", 130.0, parse_page("p", &good));
    assert!(s.observation(&request(130)).is_ok());
}

#[test]
fn targets_parse_with_istio_defaults() {
    assert_eq!(
        Target::parse("checkout-v1-abc=10.0.0.7:15090").unwrap(),
        Target {
            pod: "checkout-v1-abc".into(),
            url: "http://10.0.0.7:15090/stats/prometheus".into()
        }
    );
    assert_eq!(
        Target::parse("p=http://h:1/metrics").unwrap().url,
        "http://h:1/metrics"
    );
    assert!(Target::parse("no-address").is_err());
    assert!(Target::parse("=h:1").is_err());
}
