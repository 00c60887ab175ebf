//! Retries: a storm is cut only where its tries may time out and is remembered for a lookback;
//! retries are added only for independent failures they reach.

use super::common::*;
use super::governor_support::*;
use homeostat_models::governor::{Governor, Knob, KnobValue};
use homeostat_models::policy::Duration;

/// A retry storm: over 5 minutes load climbs 100 → 195 req/s (retries feeding it), errors
/// 0.1 % → 20 % and p99 0.1 → 2 s together.
fn storm_points() -> Vec<Point> {
    (0..LEN)
        .map(|i| {
            let x = i.saturating_sub(LEN - 20) as f64 / 19.0;
            Point {
                rps: 100.0 + 95.0 * x,
                success: 1.0 - (0.001 + 0.199 * x * x),
                p50: 0.05 + 0.5 * x,
                p99: 0.1 + 1.9 * x,
                util: 0.6 + 0.38 * x,
            }
        })
        .collect()
}

/// A retry storm is remembered. Cutting retries hides it — the errors fall at once — so a
/// restore at the next calm run brings it back (seen on a random mesh: 2 → 0 → 2 → 0 → 2
/// retries every two minutes for ten). The storm of
/// `a_retry_storm_cuts_retries_and_independent_failures_add_them` cuts 3 retries to 0 at run 0;
/// every run after it is calm (100 req/s, 0.05 % errors). The 3 retries return only once no
/// storm has been seen for the policy's lookback (1 h by default, 240 runs of 15 s) — asked for
/// from run 240, admitted at run 242, the third ask in a row (`hysteresisRuns` 3) — and until
/// then a note says why.
#[test]
fn a_retry_storm_is_remembered_for_a_lookback() {
    let spec = policy();
    let storm = storm_points();
    let mut cfg = config(Default::default());
    cfg.retries.attempts = 3;
    let mut gov = Governor::new();
    let d = gov.step(T0, &ObsBuilder::new(T0, &storm, cfg.clone()).build(), &spec);
    let cut = d
        .plan
        .changes
        .iter()
        .find(|c| c.knob == Knob::Retries)
        .expect("the storm cuts retries");
    apply(&mut cfg, cut);
    gov.applied(T0, "checkout", cut);
    assert_eq!(cfg.retries.attempts, 0);
    let calm = vec![Point::healthy(100.0); LEN];
    let mut restored = None;
    for run in 1..=300 {
        let t = T0 + run * STEP;
        let d = gov.step(t, &ObsBuilder::new(t, &calm, cfg.clone()).build(), &spec);
        if let Some(c) = d.plan.changes.iter().find(|c| c.knob == Knob::Retries) {
            apply(&mut cfg, c);
            gov.applied(t, "checkout", c);
            restored = Some(run);
            break;
        }
        if run == 100 {
            assert_note(
                &d,
                "retries stay cut: the last retry storm was seen 1500s ago",
            );
        }
    }
    assert_eq!(restored, Some(242));
    assert_eq!(cfg.retries.attempts, 3);
}

/// Retries that cost little are not a retry storm. The service's load climbs 100 → 150 req/s
/// over 5 minutes, its errors 0.05 % → 3 % and p99 0.1 → 0.8 s with it (each an affine
/// function of the same ramp: r = 1, an overload). The last minute (x = 16/19 … 19/19,
/// request-weighted) fails 2.77 % of tries; with 2 retries a request costs 1 + p + p² = 1.0285
/// attempts: 2.8 % more load, inside the policy's 20 % retry budget. Cutting them would free 3 % of capacity and turn the failures they answer into
/// users' failures: retries stay, and a note says why. (The storm in
/// `a_retry_storm_cuts_retries_and_independent_failures_add_them`, 20 % failing with 3 retries,
/// costs 1.248 attempts per request and is cut.)
#[test]
fn cheap_retries_are_not_cut_in_an_overload() {
    let surge: Vec<Point> = (0..LEN)
        .map(|i| {
            let x = i.saturating_sub(LEN - 20) as f64 / 19.0;
            Point {
                rps: 100.0 + 50.0 * x,
                success: 1.0 - (0.0005 + 0.0295 * x),
                p50: 0.05 + 0.2 * x,
                p99: 0.1 + 0.7 * x,
                util: 0.6 + 0.2 * x,
            }
        })
        .collect();
    let mut cfg = config(Default::default());
    cfg.retries.attempts = 2;
    let d = Governor::new().step(T0, &ObsBuilder::new(T0, &surge, cfg).build(), &policy());
    assert_untouched(&d, Knob::Retries, "cheap retries in an overload");
    assert_note(
        &d,
        "the 2 retries add only 2.8% load, within the 20% retry budget",
    );
}

/// Retries of failures that end before the timeout are not a storm; of failures that may be
/// timeouts, they are. The storm of `a_retry_storm_cuts_retries_and_independent_failures_add_them`
/// (3 retries; over the last 4 points 17.1 % of tries fail, request-weighted, so a request
/// costs (1 − 0.171⁴) / 0.829 = 1.205 attempts, past the 20 % retry budget), once with a 5 s
/// route timeout and once with 2 s. Its last 4 points' p99 run 1.70 … 2.00 s, p90 (the support's
/// midpoint of p50 and p99) 1.09 … 1.28 s, p50 0.47 … 0.55 s.
///
/// * 5 s lies in Istio's bucket (2.5 s, 5 s]: every p99 ≤ 2.5 s, so at most 1 % of tries
///   reached the timeout; wasted work 1 + 0.01 + … = 1.0101 attempts, no storm: retries stay.
/// * 2 s lies in (1 s, 2.5 s]: p99 and p90 exceed 1 s, p50 does not, so up to 50 % may have
///   timed out; the 17.1 % failing all count: 1.205 > 1.2, a storm: retries are cut to 0.
#[test]
fn only_retries_of_tries_that_may_time_out_make_a_storm() {
    let storm = storm_points();
    let mut cfg = config(Default::default());
    cfg.retries.attempts = 3;
    cfg.route_timeout = Some(Duration::from_secs(5));
    let d = Governor::new().step(
        T0,
        &ObsBuilder::new(T0, &storm, cfg.clone()).build(),
        &policy(),
    );
    assert_untouched(&d, Knob::Retries, "failures end before the timeout");
    assert_note(
        &d,
        "at most 1% of tries can have reached the 5s timeout (p99 at most 2000 ms in each of the last 4 points)",
    );

    cfg.route_timeout = Some(Duration::from_secs(2));
    let d = Governor::new().step(T0, &ObsBuilder::new(T0, &storm, cfg).build(), &policy());
    let c = d
        .plan
        .changes
        .iter()
        .find(|c| c.knob == Knob::Retries)
        .expect("the storm cuts retries");
    let KnobValue::Retries(next) = &c.proposed else {
        panic!("not retries: {:?}", c.proposed)
    };
    assert_eq!(next.attempts, 0);
    assert!(c.reason.contains("retry storm"), "{}", c.reason);
}

#[test]
fn a_retry_storm_cuts_retries_and_independent_failures_add_them() {
    let spec = policy();
    let storm = storm_points();
    let mut cfg = config(Default::default());
    cfg.retries.attempts = 3;
    let obs = ObsBuilder::new(T0, &storm, cfg).build();
    let d = Governor::new().step(T0, &obs, &spec);
    let c = d
        .plan
        .changes
        .iter()
        .find(|c| c.knob == Knob::Retries)
        .expect("retry change");
    let KnobValue::Retries(next) = &c.proposed else {
        panic!()
    };
    assert_eq!(next.attempts, 0);
    assert!(c.reason.contains("retry storm"), "{}", c.reason);

    // Independent failures: a flat 2% error rate at flat load (no correlation to find).
    // Hand-worked: aim 0.01%; 1 retry leaves 0.04%, 2 retries 0.0008% at 1.0204 attempts per
    // request ⇒ 2 retries. Raising retries relaxes, so it needs 3 runs in a row.
    let flat: Vec<Point> = (0..LEN)
        .map(|_| Point {
            success: 0.98,
            ..Point::healthy(100.0)
        })
        .collect();
    let mut cfg = config(Default::default());
    cfg.retries.attempts = 0;
    // Failures the retries reach: retryOn retries every 5xx (Istio's default retries 503 only,
    // and the success signal does not say which 5xx these are).
    cfg.retries.retry_on = homeostat_models::governor::RetryOn::parse("5xx").unwrap();
    let mut gov = Governor::new();
    for run in 0..3 {
        let t = T0 + run * STEP;
        let d = gov.step(t, &ObsBuilder::new(t, &flat, cfg.clone()).build(), &spec);
        let all: Vec<_> = d
            .plan
            .changes
            .iter()
            .chain(&d.plan.held)
            .filter(|c| c.knob == Knob::Retries)
            .collect();
        assert_eq!(all.len(), 1);
        let KnobValue::Retries(next) = &all[0].proposed else {
            panic!()
        };
        assert_eq!(next.attempts, 2);
        assert_eq!(all[0].held_by.is_some(), run < 2);
    }
}

/// Independent failures (flat, not rising with load): retries are raised only for failures that
/// `retryOn` retries, and sized on the per-try rate behind what the retries in force leave.
#[test]
fn retries_are_raised_only_for_failures_they_reach_and_on_the_per_try_rate() {
    use homeostat_models::governor::RetryOn;
    use homeostat_models::policy::Duration;
    let spec = policy();
    // 400 req/s: 24,000 requests in the recent minute, so that 0.25% (60 failures against the
    // budget's 24) is significantly over budget (binomial tail ≤ 10⁻³).
    let obs = |errors: f64, attempts: u32, retry_on: &str| {
        let points = vec![
            Point {
                success: 1.0 - errors,
                ..Point::healthy(400.0)
            };
            LEN
        ];
        let mut cfg = config(weights(&[]));
        cfg.retries.attempts = attempts;
        cfg.retries.retry_on = RetryOn::parse(retry_on).unwrap();
        ObsBuilder::new(T0, &points, cfg).build()
    };
    let retries = |d: &homeostat_models::governor::Decision| {
        d.plan
            .changes
            .iter()
            .chain(&d.plan.held)
            .find(|c| c.knob == Knob::Retries)
            .map(|c| match &c.proposed {
                KnobValue::Retries(r) => r.clone(),
                other => panic!("{other:?}"),
            })
    };
    // Istio's default retryOn (503 and connection failures), 1 retry, 2% failing: the failures
    // may be 500s no retry touches, so no change, and a note says what would.
    let d = Governor::new().step(
        T0,
        &obs(
            0.02,
            1,
            "connect-failure,refused-stream,unavailable,cancelled,503",
        ),
        &spec,
    );
    assert_eq!(retries(&d), None, "{:#?}", d.plan);
    assert_note(&d, "does not retry every 5xx");
    // The same, with the owner's word that the requests are idempotent: `5xx` joins retryOn.
    // The failures were tried once (retryOn did not cover them), so 2% is the per-try rate:
    // 2%² = 0.04% is over the 0.01% aim and 2%³ = 0.0008% under, so 2 retries, per-try timeout
    // twice the 100 ms p99.
    let mut idempotent = policy();
    idempotent.controls.retries.idempotent = true;
    let d = Governor::new().step(
        T0,
        &obs(
            0.02,
            1,
            "connect-failure,refused-stream,unavailable,cancelled,503",
        ),
        &idempotent,
    );
    let r = retries(&d).unwrap_or_else(|| panic!("5xx added: {:#?} {:#?}", d.plan, d.findings));
    assert_eq!(
        r.retry_on.to_string(),
        "5xx,connect-failure,refused-stream,cancelled,unavailable,503"
    );
    assert_eq!(r.attempts, 2);
    assert_eq!(r.per_try_timeout, Some(Duration::from_millis(200)));
    // Already retrying more than that: only retryOn changes, the 3 retries stay.
    let d = Governor::new().step(T0, &obs(0.02, 3, "503"), &idempotent);
    let r = retries(&d).expect("5xx added");
    assert_eq!(
        (r.retry_on.to_string().as_str(), r.attempts),
        ("5xx,503", 3)
    );
    // Within budget (0.05% against 0.1%): nothing to answer, idempotent or not.
    let d = Governor::new().step(T0, &obs(0.0005, 1, "503"), &idempotent);
    assert_eq!(retries(&d), None, "{:#?}", d.plan);
    // retryOn 5xx, no retries, 2% failing: the module's worked example, 2 retries (2%³ =
    // 0.0008% ≤ a tenth of the 0.1% budget; 2%² = 0.04% is not), per-try timeout twice the
    // 100 ms p99.
    let r = retries(&Governor::new().step(T0, &obs(0.02, 0, "5xx"), &spec)).expect("2 retries");
    assert_eq!(r.attempts, 2);
    assert_eq!(r.per_try_timeout, Some(Duration::from_millis(200)));
    // retryOn 5xx, 1 retry in force, the callers seeing 0.25% of their calls fail: that is
    // what 1 retry leaves of a 5% per-try rate (√0.25% = 5%; the server counts the 5% of its
    // tries). 5%² = 0.25% and 5%³ = 0.0125% are over the 0.01% aim, 5%⁴ = 0.0006% is under,
    // at (1 − 5%⁴)/0.95 = 1.053 attempts per request: 3 retries. (Sized on 0.25% as if it were
    // the per-try rate, 1 retry would look enough: 0.25%² = 0.0006%.)
    let with_callers = |server: f64, callers: f64| {
        let mut o = obs(server, 1, "5xx");
        o.callers = signals(&vec![
            Point {
                success: 1.0 - callers,
                ..Point::healthy(400.0)
            };
            LEN
        ]);
        o
    };
    let d = Governor::new().step(T0, &with_callers(0.05, 0.0025), &spec);
    let r = retries(&d).unwrap_or_else(|| panic!("3 retries: {:#?} {:#?}", d.plan, d.findings));
    assert_eq!(r.attempts, 3);
    // The evidence gives the per-try rate and what 3 retries cost at it.
    let evidence = |name: &str| {
        d.plan
            .changes
            .iter()
            .chain(&d.plan.held)
            .flat_map(|c| &c.evidence)
            .find(|e| e.name == name)
            .map(|e| e.value)
            .unwrap_or_else(|| panic!("{name}: {:#?}", d.plan))
    };
    assert!((evidence("per_try_failure_rate") - 0.05).abs() < 1e-9);
    assert!((evidence("attempts_per_request") - (1.0 - 0.05f64.powi(4)) / 0.95).abs() < 1e-9);
    // Without the callers' side, 0.25% is the server's count of tries, the per-try rate
    // itself: the 1 retry in force leaves 0.25%² = 0.0006% of calls failing, under the aim,
    // so nothing changes (until 2026-12-03 its root was taken too, and 3 retries asked for).
    let d = Governor::new().step(T0, &obs(0.0025, 1, "5xx"), &spec);
    assert_eq!(retries(&d), None, "{:#?}", d.plan);
    // The callers within the budget (0.05% of calls failing) while the server counts 5% of
    // tries failing: the retries in force already keep the objective, none are added.
    let d = Governor::new().step(T0, &with_callers(0.05, 0.0005), &spec);
    assert_eq!(retries(&d), None, "{:#?}", d.plan);
}

/// Failures the server does not see. The server answers every try (0 % errors; p50 50 ms, p99
/// 100 ms at 400 req/s) while the callers' proxies report every call failing: with a 10 ms
/// per-try timeout, under the server's 50 ms median, the callers abandon most tries the server
/// completes. The timeout goes to twice the p99, 200 ms, at once (it answers failing calls).
/// At 60 ms, over the median, most tries finish in time and the timeout is not what fails the
/// calls: nothing is changed on that ground.
#[test]
fn a_per_try_timeout_under_the_servers_median_is_raised_when_the_callers_fail() {
    use homeostat_models::governor::Posture;
    let spec = policy();
    let obs = |per_try_ms: u64| {
        let mut cfg = config(weights(&[]));
        cfg.retries.per_try_timeout = Some(Duration::from_millis(per_try_ms));
        let mut o = ObsBuilder::new(T0, &vec![Point::healthy(400.0); LEN], cfg).build();
        o.callers = signals(&vec![
            Point {
                success: 0.0,
                ..Point::healthy(400.0)
            };
            LEN
        ]);
        o
    };
    let d = Governor::new().step(T0, &obs(10), &spec);
    let c = d
        .plan
        .changes
        .iter()
        .find(|c| c.knob == Knob::Retries)
        .unwrap_or_else(|| panic!("a retries change: {:#?}", d.plan));
    let KnobValue::Retries(next) = &c.proposed else {
        panic!()
    };
    assert_eq!(next.per_try_timeout, Some(Duration::from_millis(200)));
    assert_eq!(next.attempts, obs(10).config.retries.attempts);
    assert_eq!(c.posture, Posture::Protect);
    assert!(c.reason.contains("abandon most tries"), "{}", c.reason);
    let d = Governor::new().step(T0, &obs(60), &spec);
    assert!(
        !d.plan
            .changes
            .iter()
            .chain(&d.plan.held)
            .any(|c| c.reason.contains("abandon")),
        "{:#?}",
        d.plan
    );
}
