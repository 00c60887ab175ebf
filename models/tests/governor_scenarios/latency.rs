//! Slow endpoints: a per-try timeout derived from the peers' latency, only with room on the
//! peers, a fast pod in the subset, enough requests behind the p99 and the ejection it needs.

use super::common::*;
use super::governor_support::*;
use homeostat_models::governor::{
    Change, FindingKind, Governor, Hold, Knob, KnobValue, Observation, Origin, Posture,
};
use homeostat_models::policy::{Duration, PolicySpec};

/// Four pods: `pod-1` behaving as `slow`, the other three as `peers`; the service is their sum.
fn one_slow_pod(
    end: i64,
    peers: &[Point],
    slow: &[Point],
    cfg: homeostat_models::governor::MeshConfig,
) -> Observation {
    let service = merge(&[peers, slow, peers, peers]);
    ObsBuilder::new(end, &service, cfg)
        .endpoint("pod-0", peers)
        .endpoint("pod-1", slow)
        .endpoint("pod-2", peers)
        .endpoint("pod-3", peers)
        .build()
}

/// `points` answering slowly: p50 200 ms and p99 450 ms (against `Point::healthy`'s 50 and 100
/// ms), the same requests and errors.
fn slowed(points: &[Point]) -> Vec<Point> {
    points
        .iter()
        .map(|p| Point {
            p50: 0.2,
            p99: 0.45,
            ..*p
        })
        .collect()
}

/// The per-try timeout of the retries change a decision admits, if any.
fn proposed_per_try(
    d: &homeostat_models::governor::Decision,
) -> Option<homeostat_models::policy::Duration> {
    d.plan.changes.iter().find_map(|c| match &c.proposed {
        KnobValue::Retries(r) => r.per_try_timeout,
        _ => None,
    })
}

/// The design example's policy, declaring the requests idempotent: a per-try timeout's retry
/// may send a request the slow pod still completes a second time, which only the owner can
/// allow (`latency.rs`).
fn slow_policy() -> PolicySpec {
    let mut spec = policy();
    spec.controls.retries.idempotent = true;
    spec
}

/// `Point::healthy` at 25 req/s but at 30 % CPU: peers with the room a slow pod's per-try
/// timeout needs. The timeout moves the slow pod's 25 req/s onto three of them, 8.3 req/s
/// each; the queueing model (`latency::healthy_spill`) reads each as 83.3 req/s of capacity in
/// round(83.3 · 50 ms) = 4 slots, at ρ = 33.3 / 83.3 = 0.4 after the move: Erlang C 0.091,
/// and 0.091 · e^{−(83.3 − 33.3) · (137 − 100) ms} = 1.4 % of their tries wait past the 37 ms
/// between their 100 ms p99 and the 137 ms timeout — 2.4 % of their tries past it with the
/// 1 % past their p99, within the 20 % retry budget. At `Point::healthy`'s 50 % CPU they are
/// 2 slots at ρ = 0.67, 29.8 %: no timeout (`a_slow_pods_peers_must_have_room_for_its_requests`).
fn roomy() -> Point {
    Point {
        util: 0.3,
        ..Point::healthy(25.0)
    }
}

/// Latency creep: one of four pods answers slowly (p99 450 ms against its peers' 100 ms and a
/// 300 ms objective) and never errors. No knob of the policy can remove it (outlier detection
/// ejects on 5xx only; there is one subset), so the Governor reports it with the numbers:
/// 450 / 100 = 4.5× its peers' median p99, over 300 ms.
#[test]
fn a_slow_pod_without_errors_is_reported_with_its_numbers() {
    let spec = policy();
    let mut gov = Governor::new();
    let healthy = vec![Point::healthy(25.0); LEN];
    let mut slow = healthy.clone();
    for p in slow.iter_mut() {
        p.p50 = 0.2;
        p.p99 = 0.45;
    }
    let service = merge(&[&healthy, &healthy, &healthy, &slow]);
    let build = |slow_pod: &[Point]| {
        ObsBuilder::new(T0, &service, config(weights(&[])))
            .endpoint("pod-0", &healthy)
            .endpoint("pod-1", slow_pod)
            .endpoint("pod-2", &healthy)
            .endpoint("pod-3", &healthy)
            .build()
    };
    let d = gov.step(T0, &build(&slow), &spec);
    let f = d
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Anomaly && f.subject == "endpoint pod-1")
        .expect("the slow pod is reported");
    let ev = |name: &str| f.evidence.iter().find(|e| e.name == name).unwrap().value;
    assert!((ev("latency_p99_s") - 0.45).abs() < 1e-9);
    assert!((ev("peer_latency_p99_s") - 0.1).abs() < 1e-9);
    assert!(f.summary.contains("4.5×"), "{}", f.summary);
    // No other endpoint is reported, and no knob claims to fix it.
    assert_eq!(
        d.findings
            .iter()
            .filter(|f| f.subject.starts_with("endpoint"))
            .count(),
        1
    );
    // Equal pods: nothing to report.
    let mut gov = Governor::new();
    let d = gov.step(T0, &build(&healthy), &spec);
    assert!(!d.findings.iter().any(|f| f.subject.starts_with("endpoint")));
}

/// A slow pod (p99 450 ms against its peers' 100 ms, objective 300 ms, no errors) gets a per-try
/// timeout that retries its answers on a healthy pod, and outlier detection made able to eject
/// it; with peers too slow for any such timeout, only the finding and a note.
#[test]
fn a_slow_pod_gets_a_per_try_timeout_derived_from_its_peers() {
    let spec = slow_policy();
    let healthy = vec![roomy(); LEN];
    let mut slow = healthy.clone();
    for p in slow.iter_mut() {
        p.p50 = 0.2;
        p.p99 = 0.45;
    }
    let build = |peers: &[Point], slow_pod: &[Point]| {
        one_slow_pod(T0, peers, slow_pod, config(weights(&[])))
    };
    let mut gov = Governor::new();
    let first = build(&healthy, &slow);
    let d = gov.step(T0, &first, &spec);
    let retries = d
        .plan
        .changes
        .iter()
        .find(|c| c.knob == Knob::Retries)
        .expect("a per-try timeout");
    assert_eq!(retries.posture, Posture::Protect);
    let KnobValue::Retries(r) = &retries.proposed else {
        panic!()
    };
    // The timeouts that work: over the peers' 100 ms and at most objective − Envoy's 25 ms
    // back-off base − peer p99 = 300 − 25 − 100 = 175 ms. The centre, (300 − 25)/2 = 137.5 ms,
    // in whole milliseconds rounded down.
    assert_eq!(
        r.per_try_timeout,
        Some(homeostat_models::policy::Duration::from_millis(137))
    );
    // Istio's default retryOn retries no per-try timeout: gateway-error is added; 2 retries kept.
    assert_eq!(
        r.retry_on.to_string(),
        "gateway-error,connect-failure,refused-stream,cancelled,unavailable,503"
    );
    assert_eq!(r.attempts, 2);
    // Outlier detection: the slow pod is in the incident, so 1 of 4 endpoints needs 25%
    // ejectable (Istio's 10% would eject none of 4).
    let od = d
        .plan
        .changes
        .iter()
        .find(|c| c.knob == Knob::OutlierDetection)
        .unwrap_or_else(|| panic!("outlier detection able to eject it: {:#?}", d.plan));
    let KnobValue::OutlierDetection(o) = &od.proposed else {
        panic!()
    };
    assert_eq!(o.max_ejection_percent, 25);
    assert_eq!(od.posture, Posture::Protect);
    // Applied, the timeout stays while the pod is slow: the retries planner does not "restore"
    // it as if it were an overload cut (seen in latency-creep: timeout, restore, timeout …).
    let mut cfg = first.config.clone();
    for c in &d.plan.changes {
        apply(&mut cfg, c);
        gov.applied(T0, "checkout", c);
    }
    for run in 1..=12 {
        let t = T0 + run * STEP;
        let mut obs = build(&healthy, &slow);
        obs.end = t;
        obs.config = cfg.clone();
        let d = gov.step(t, &obs, &spec);
        assert_untouched(&d, Knob::Retries, &format!("run {run}"));
    }
    // Peers at 150 ms: T = 300 − 25 − 150 = 125 ms < 150 ms, no timeout spares them.
    let slower: Vec<Point> = healthy.iter().map(|p| Point { p99: 0.15, ..*p }).collect();
    let d = Governor::new().step(T0, &build(&slower, &slow), &spec);
    assert!(d.plan.changes.iter().all(|c| c.knob != Knob::Retries));
    assert_note(&d, "no per-try timeout");
    // Requests the policy does not declare idempotent: a try the timeout cuts short may still
    // complete on the slow pod, and its retry would send the request twice. No timeout, and a
    // note says why.
    let plain = policy();
    let d = Governor::new().step(T0, &first, &plain);
    assert!(d.plan.changes.iter().all(|c| c.knob != Knob::Retries));
    assert_note(&d, "does not declare the requests idempotent");
    // Unless the owner already retries timed-out tries (a per-try timeout of 400 ms on
    // gateway-error): then only the value changes, to the 137 ms that works.
    let mut owners = first.clone();
    owners.config.retries.per_try_timeout =
        Some(homeostat_models::policy::Duration::from_millis(400));
    owners.config.retries.retry_on = owners
        .config
        .retries
        .retry_on
        .clone()
        .with(homeostat_dataplane::config::RetryCondition::GatewayError);
    let d = Governor::new().step(T0, &owners, &plain);
    assert_eq!(
        proposed_per_try(&d),
        Some(homeostat_models::policy::Duration::from_millis(137)),
        "{:#?}",
        d.findings
    );
}

/// Outlier detection removes a slow pod only through the 504s a timeout turns its slow tries
/// into (Envoy counts them as 5xx). The slow pod of
/// `a_slow_pod_gets_a_per_try_timeout_derived_from_its_peers` (p99 450 ms against 100 ms, no
/// errors), under a policy that does not declare its requests idempotent, so no per-try
/// timeout is proposed:
///
/// * no timeout in force: its answers are all 2xx, tightening outlier detection could not
///   eject it — no outlier-detection change (before: 25 % ejectable and a lower k, which only
///   ejected pods sooner for their ordinary errors);
/// * a 1 s route timeout: above its 450 ms p99, the same;
/// * a 400 ms route timeout: under its p99, so more than 1 % of its tries end in a 504 — it is
///   in the incident, and 1 of 4 endpoints needs 25 % ejectable (Istio's default allows 10 %).
#[test]
fn a_slow_pod_no_timeout_cuts_short_does_not_tighten_outlier_detection() {
    let spec = policy();
    let healthy = vec![Point::healthy(25.0); LEN];
    let slow = slowed(&healthy);
    let ms = homeostat_models::policy::Duration::from_millis;
    let run = |route: Option<homeostat_models::policy::Duration>| {
        let mut obs = one_slow_pod(T0, &healthy, &slow, config(weights(&[])));
        obs.config.route_timeout = route;
        let d = Governor::new().step(T0, &obs, &spec);
        assert_note(&d, "does not declare the requests idempotent");
        d.plan.changes.iter().find_map(|c| match &c.proposed {
            KnobValue::OutlierDetection(o) => Some(o.max_ejection_percent),
            _ => None,
        })
    };
    assert_eq!(run(None), None);
    assert_eq!(run(Some(ms(1000))), None);
    assert_eq!(run(Some(ms(400))), Some(25));
}

/// The slow pod of `a_slow_pod_gets_a_per_try_timeout_derived_from_its_peers` (p99 450 ms
/// against 100 ms, 25 req/s each, objective 300 ms), where the pods left must take its 25 req/s
/// (the timeout retries its answers on them, then outlier detection ejects it):
///
/// * one peer at 30 % CPU: 0.3 · 50 / 25 = 60 % after, under the 85 % ceiling: the 137 ms
///   timeout, and 50 % ejectable (1 of 2 endpoints; the policy allows up to 50). Before,
///   two endpoints were never compared;
/// * one peer at 50 %: 0.5 · 50 / 25 = 100 % after: no timeout, a note with the figure;
/// * one peer reporting no CPU: the one pod left would take everything unseen: no timeout;
/// * three peers at 80 %: 0.8 · 100 / 75 = 107 % after: no timeout (before: the timeout);
///   at 50 %, 67 % after, under the CPU ceiling, but their own tries would outlive the
///   137 ms timeout: each 25 · (1 − 0.0005) / 0.5 = 49.98 req/s of capacity in
///   round(49.98 · 50 ms) = 2 slots, at 33.3 req/s after the move Erlang C 0.53, and
///   0.53 · e^{−(49.98 − 33.3) · 37 ms} + 1 % = 29.8 % of their tries past 137 ms, over the
///   20 % retry budget: no timeout (`latency::healthy_spill`; before: the timeout, at 60 %
///   too); at 30 %, 2.4 % (`roomy`), the timeout.
#[test]
fn a_slow_pods_peers_must_have_room_for_its_requests() {
    let spec = slow_policy();
    let with = |p: &Point, util: f64| Point { util, ..*p };
    let healthy = vec![Point::healthy(25.0); LEN];
    let slow: Vec<Point> = healthy
        .iter()
        .map(|p| Point {
            p50: 0.2,
            p99: 0.45,
            util: 0.5,
            ..*p
        })
        .collect();
    let peers = |util: f64| -> Vec<Point> { healthy.iter().map(|p| with(p, util)).collect() };
    let two = |util: f64| {
        let peer = peers(util);
        let service = merge(&[&peer, &slow]);
        ObsBuilder::new(T0, &service, config(weights(&[])))
            .endpoint("pod-0", &peer)
            .endpoint("pod-1", &slow)
            .build()
    };
    let timeout = proposed_per_try;
    let ms = homeostat_models::policy::Duration::from_millis;

    let d = Governor::new().step(T0, &two(0.3), &spec);
    assert_eq!(timeout(&d), Some(ms(137)), "{:#?}", d.findings);
    let od = d
        .plan
        .changes
        .iter()
        .find_map(|c| match &c.proposed {
            KnobValue::OutlierDetection(o) => Some(o.max_ejection_percent),
            _ => None,
        })
        .unwrap_or_else(|| panic!("outlier detection able to eject it: {:#?}", d.plan));
    assert_eq!(od, 50);

    let d = Governor::new().step(T0, &two(0.5), &spec);
    assert_eq!(timeout(&d), None, "{:#?}", d.plan);
    assert_note(
        &d,
        "pod-1: slow, but the rest would run at 100% CPU utilisation with its 25.0 req/s",
    );

    let d = Governor::new().step(T0, &two(f64::NAN), &spec);
    assert_eq!(timeout(&d), None, "{:#?}", d.plan);
    assert_note(&d, "the other endpoint reports no utilisation");

    for (util, want) in [(0.8, None), (0.5, None), (0.3, Some(ms(137)))] {
        let d = Governor::new().step(
            T0,
            &one_slow_pod(T0, &peers(util), &slow, config(weights(&[]))),
            &spec,
        );
        assert_eq!(timeout(&d), want, "peers at {util}: {:#?}", d.findings);
        if util == 0.5 {
            assert_note(
                &d,
                "29.8% of the healthy pods' tries once they take its requests",
            );
        }
    }
}

/// The slow pod of `a_slow_pod_gets_a_per_try_timeout_derived_from_its_peers` (1 of 4 pods) needs
/// outlier detection able to eject 25 % of the endpoints; Istio's 10 % ejects none of 4. Until
/// the raise applies, every answer of the slow pod is a retry, so the timeout goes with it.
/// Outlier detection changed 60 s ago: the 2 min cooldown holds the raise (60 s left), and the
/// timeout is held with it, waiting for outlier detection. With 25 % in force the timeout needs
/// nothing else and is admitted at once, the same cooldown notwithstanding.
#[test]
fn a_slow_pods_timeout_waits_for_the_ejection_it_needs() {
    let spec = slow_policy();
    let healthy = vec![roomy(); LEN];
    let slow = slowed(&healthy);
    let decide = |max_ejection_percent: u32| {
        let mut obs = one_slow_pod(T0, &healthy, &slow, config(weights(&[])));
        obs.config.outlier_detection.max_ejection_percent = max_ejection_percent;
        let od = KnobValue::OutlierDetection(obs.config.outlier_detection.clone());
        let mut gov = Governor::new();
        gov.applied(
            T0 - 60,
            "checkout",
            &Change {
                knob: Knob::OutlierDetection,
                current: od.clone(),
                proposed: od,
                posture: Posture::Protect,
                origin: Origin::Planner,
                reason: String::new(),
                evidence: Vec::new(),
                confidence: 1.0,
                expected_effect: String::new(),
                held_by: None,
            },
        );
        gov.step(T0, &obs, &spec)
    };
    let held = |d: &homeostat_models::governor::Decision, knob: Knob| {
        d.plan
            .held
            .iter()
            .find(|c| c.knob == knob)
            .and_then(|c| c.held_by.clone())
    };
    let d = decide(10);
    assert!(d.plan.changes.is_empty(), "{:#?}", d.plan);
    assert_eq!(
        held(&d, Knob::OutlierDetection),
        Some(Hold::Cooldown {
            remaining_seconds: 60
        })
    );
    assert_eq!(
        held(&d, Knob::Retries),
        Some(Hold::WaitsFor {
            knob: Knob::OutlierDetection
        })
    );
    let d = decide(25);
    assert!(
        d.plan.changes.iter().any(|c| c.knob == Knob::Retries),
        "{:#?}",
        d.plan
    );
}

/// The slow pod of `a_slow_pod_gets_a_per_try_timeout_derived_from_its_peers`, now with the
/// pods in subsets. A retry stays in its subset's cluster (Istio makes one per subset), so the
/// timeout helps only if the slow pod has a fast pod in its own subset: `pod-1` and `pod-2` in
/// `canary` — the same 137 ms timeout as there; `pod-1` alone in `canary` — a timed-out try
/// would be retried on `pod-1` itself and fail: no timeout, and a note says why. The pods run
/// at 30 % CPU, so that `pod-2` alone has the room for `pod-1`'s requests (0.3 · 50 / 25 =
/// 60 %; `a_slow_pods_room_is_in_its_own_subset`).
#[test]
fn a_per_try_timeout_needs_a_fast_pod_in_the_slow_pods_subset() {
    let healthy = vec![
        Point {
            util: 0.3,
            ..Point::healthy(25.0)
        };
        LEN
    ];
    let slow = slowed(&healthy);
    for (canary, timeout) in [(&["pod-1", "pod-2"][..], Some(137)), (&["pod-1"][..], None)] {
        let mut obs = one_slow_pod(T0, &healthy, &slow, config(weights(&[])));
        for e in &mut obs.endpoints {
            let sub = if canary.contains(&e.name.as_str()) {
                "canary"
            } else {
                "stable"
            };
            e.subset = Some(sub.into());
        }
        let d = Governor::new().step(T0, &obs, &slow_policy());
        let got = d
            .plan
            .changes
            .iter()
            .find(|c| c.knob == Knob::Retries)
            .and_then(|c| match &c.proposed {
                KnobValue::Retries(r) => r.per_try_timeout,
                _ => None,
            });
        assert_eq!(
            got,
            timeout.map(homeostat_models::policy::Duration::from_millis),
            "canary {canary:?}"
        );
        if timeout.is_none() {
            assert_note(&d, "no pod of their subset is fast");
        }
    }
}

/// The room is in the slow pod's own subset: its timed-out tries are retried there and its
/// ejection sends its traffic there (Istio makes a cluster of each subset). `pod-0` and the
/// slow `pod-1` in `stable`, `pod-2` and `pod-3` in `canary`, all at 25 req/s. With `pod-0`
/// at 50 % CPU it would run at 0.5 · 50 / 25 = 100 % with `pod-1`'s requests: no timeout,
/// however idle `canary` is (at 10 %, the service's other pods averaged 23 % and would have
/// been at 0.233 · 100 / 75 = 31 %, and the timeout was set until 2026-12-04). With `pod-0` at
/// 30 %: 60 %, the 137 ms timeout.
#[test]
fn a_slow_pods_room_is_in_its_own_subset() {
    let healthy = vec![Point::healthy(25.0); LEN];
    let slow = slowed(&healthy);
    let at = |util: f64| -> Vec<Point> { healthy.iter().map(|p| Point { util, ..*p }).collect() };
    for (stable_util, want) in [(0.5, None), (0.3, Some(137))] {
        let (stable, canary) = (at(stable_util), at(0.1));
        let service = merge(&[&stable, &slow, &canary, &canary]);
        let obs = ObsBuilder::new(T0, &service, config(weights(&[])))
            .endpoint_in("pod-0", "stable", &stable)
            .endpoint_in("pod-1", "stable", &slow)
            .endpoint_in("pod-2", "canary", &canary)
            .endpoint_in("pod-3", "canary", &canary)
            .build();
        let d = Governor::new().step(T0, &obs, &slow_policy());
        assert_eq!(
            proposed_per_try(&d),
            want.map(homeostat_models::policy::Duration::from_millis),
            "stable at {stable_util}: {:#?}",
            d.findings
        );
        if want.is_none() {
            assert_note(
                &d,
                "pod-1: slow, but the rest would run at 100% CPU utilisation with its 25.0 req/s",
            );
        }
    }
}

/// The same slow pod (p99 450 ms, 25 req/s) beside peers that see little traffic: at 6 req/s a
/// peer's 15 s point holds 6 × 15 = 90 requests, fewer than the 100 a p99 needs (1/(1 − 0.99);
/// below that the "p99" is the slowest request, and a busier pod's slowest request is slower
/// for the same latency), so the peers take no part; with one endpoint left there is no
/// comparison, and nothing is slow. At 7 req/s (105 requests a point) they count again and the
/// pod is slow, as above. The peers are at 10 % CPU, so they have room for its 25 req/s
/// (0.1 · 46 / 21 = 22 % after).
#[test]
fn a_p99_needs_a_hundred_requests_before_a_pod_is_called_slow() {
    let spec = slow_policy();
    let slow_pod: Vec<Point> = vec![
        Point {
            p50: 0.2,
            p99: 0.45,
            ..Point::healthy(25.0)
        };
        LEN
    ];
    let decide = |peer_rps: f64| {
        let peers = vec![
            Point {
                util: 0.1,
                ..Point::healthy(peer_rps)
            };
            LEN
        ];
        let obs = one_slow_pod(T0, &peers, &slow_pod, config(weights(&[])));
        Governor::new().step(T0, &obs, &spec)
    };
    let quiet = decide(6.0);
    assert_untouched(&quiet, Knob::Retries, "peers at 6 req/s");
    assert!(
        quiet.findings.iter().all(|f| f.subject != "endpoint pod-1"),
        "{:#?}",
        quiet.findings
    );
    let busy = decide(7.0);
    assert!(
        busy.plan.changes.iter().any(|c| c.knob == Knob::Retries),
        "{:#?}",
        busy.plan
    );
}

/// Slow *without errors*: the slow pod of the tests above (p99 450 ms against its peers'
/// 100 ms, 25 req/s) gets the 137 ms per-try timeout while it answers every try; failing 10 %
/// of them as well (4 points × 15 s × 25 req/s = 1,500 tries, 150 errors where the 0.1 %
/// budget expects 1.5) it is a failing pod, outlier detection's, and no per-try timeout is
/// proposed (its p99 is that of the tries it did serve, and a timeout would cut those short).
#[test]
fn a_failing_pod_is_not_a_slow_one() {
    let healthy = vec![roomy(); LEN];
    let per_try = |success: f64| {
        let slow: Vec<Point> = healthy
            .iter()
            .map(|p| Point {
                p50: 0.2,
                p99: 0.45,
                success,
                ..*p
            })
            .collect();
        let obs = one_slow_pod(T0, &healthy, &slow, config(weights(&[])));
        let d = Governor::new().step(T0, &obs, &slow_policy());
        d.plan.changes.iter().find_map(|c| match &c.proposed {
            KnobValue::Retries(r) => r.per_try_timeout,
            _ => None,
        })
    };
    assert_eq!(per_try(1.0), Some(Duration::from_millis(137)));
    assert_eq!(per_try(0.9), None);
}

/// A per-try timeout in force stays while it is inside the interval that works (over the
/// peers' p99, at most `objective − back-off − peer p99`): the peers' p99 moving does not
/// rewrite the route every cooldown. One outside it is replaced by the interval's centre.
#[test]
fn a_per_try_timeout_in_force_stays_while_it_still_fits() {
    use homeostat_models::governor::MeshConfig;
    use homeostat_models::policy::Duration;
    let spec = slow_policy();
    let peers_at = |p99: f64| vec![Point { p99, ..roomy() }; LEN];
    let mut slow = vec![Point::healthy(25.0); LEN];
    for p in slow.iter_mut() {
        p.p50 = 0.2;
        p.p99 = 0.45;
    }
    let build =
        |end: i64, peers: &[Point], cfg: &MeshConfig| one_slow_pod(end, peers, &slow, cfg.clone());
    // Peers at 100 ms: the centre of (100, 175] ms, 137 ms, applied.
    let mut gov = Governor::new();
    let mut cfg = config(weights(&[]));
    let d = gov.step(T0, &build(T0, &peers_at(0.1), &cfg), &spec);
    for c in &d.plan.changes {
        apply(&mut cfg, c);
        gov.applied(T0, "checkout", c);
    }
    assert_eq!(
        cfg.retries.per_try_timeout,
        Some(Duration::from_millis(137))
    );
    // Peers at 60, 90, 120 and 130 ms, ten runs each (10 minutes, two cooldowns): the
    // intervals (60, 215], (90, 185], (120, 155] and (130, 145] all hold 137 ms.
    for run in 1..=40 {
        let t = T0 + run * STEP;
        let peer = [0.06, 0.09, 0.12, 0.13][(run as usize - 1) / 10];
        let d = gov.step(t, &build(t, &peers_at(peer), &cfg), &spec);
        assert_untouched(&d, Knob::Retries, &format!("run {run}"));
    }
    // What a fresh Governor proposes for retries when the user has set a per-try timeout of
    // `ms`, with peers at 100 ms (the interval that works is (100, 175] ms).
    let proposed = |ms: u64| {
        let mut user = config(weights(&[]));
        user.retries.per_try_timeout = Some(Duration::from_millis(ms));
        let d = Governor::new().step(T0, &build(T0, &peers_at(0.1), &user), &spec);
        match d.plan.changes.iter().find(|c| c.knob == Knob::Retries) {
            Some(Change {
                proposed: KnobValue::Retries(r),
                ..
            }) => r.clone(),
            other => panic!("a retries change for {ms} ms: {other:#?} in {:#?}", d.plan),
        }
    };
    // 250 ms is over the top, so a request that met the slow pod could miss the objective:
    // replaced by 137 ms.
    assert_eq!(
        proposed(250).per_try_timeout,
        Some(Duration::from_millis(137))
    );
    // 160 ms is inside: it stays, only retryOn gains gateway-error so that its timeouts are
    // retried.
    let r = proposed(160);
    assert_eq!(r.per_try_timeout, Some(Duration::from_millis(160)));
    assert!(
        r.retry_on.to_string().starts_with("gateway-error,"),
        "{}",
        r.retry_on
    );
}
