//! End-to-end on virtual time: a round-robin balancer and the outlier detector wired together
//! the way the simulator and the proxy wire them, against one pod that always answers 503.
//! Every expected number is worked out by hand in the comments.

use homeostat_dataplane::balancer::Balancer;
use homeostat_dataplane::config::{BalancerConfig, BalancerKind, OutlierConfig};
use homeostat_dataplane::outlier::{Ejection, Outcome, OutlierDetector};
use homeostat_dataplane::time::{MILLISECOND, Nanos, SECOND};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

struct Run {
    ejections: Vec<Ejection>,
    returns: Vec<(usize, Nanos)>,
    failures: u32,
    requests: u32,
}

/// `pods` equal-weight pods, pod 3 always fails with 503; one request every 10 ms (100 req/s)
/// for `seconds`.
fn run(pods: usize, outlier: OutlierConfig, seconds: u64) -> Run {
    let cfg = BalancerConfig {
        kind: BalancerKind::RoundRobin,
        ..BalancerConfig::default()
    };
    let mut balancer = Balancer::new(cfg, &vec![1; pods]);
    let mut detector = OutlierDetector::new(outlier, pods);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut out = Run {
        ejections: Vec::new(),
        returns: Vec::new(),
        failures: 0,
        requests: 0,
    };
    for k in 1..=seconds * 100 {
        let now = k * 10 * MILLISECOND;
        for idx in detector.tick(now) {
            balancer.set_healthy(idx, true);
            out.returns.push((idx, now));
        }
        let ep = balancer.pick(now, &mut rng).expect("a healthy pod");
        out.requests += 1;
        let outcome = if ep == 3 {
            out.failures += 1;
            Outcome::from_status(503)
        } else {
            Outcome::Success
        };
        if let Some(e) = detector.on_outcome(now, ep, outcome) {
            balancer.set_healthy(e.endpoint, false);
            out.ejections.push(e);
        }
    }
    out
}

#[test]
fn one_bad_pod_of_ten_is_ejected_for_30_then_60_seconds() {
    let r = run(10, OutlierConfig::default(), 120);
    // RR from pod 0: request k goes to pod (k−1) mod 10, so pod 3 gets k = 4, 14, 24, 34, 44.
    // The 5th consecutive 503 is request 44 at t = 440 ms → ejected for 1 × 30 s.
    assert_eq!(r.ejections.len(), 3, "{:?}", r.ejections);
    assert_eq!(r.ejections[0].endpoint, 3);
    assert_eq!(r.ejections[0].at, 440 * MILLISECOND);
    assert_eq!(r.ejections[0].duration, 30 * SECOND);
    // Sweeps every 10 s: at 30 s only 29.56 s have passed; at 40 s 39.56 ≥ 30 → back at 40 s.
    assert_eq!(r.returns[0], (3, 40 * SECOND));
    // The schedule restarts on the health change: k = 4000 (t = 40 s) → pod 0, so pod 3 gets
    // k = 4003, …, 4043: 5th failure at t = 40.43 s. The multiplier did not decay (no sweep
    // found pod 3 healthy for a full interval) → 2 × 30 = 60 s.
    assert_eq!(r.ejections[1].at, 40_430 * MILLISECOND);
    assert_eq!(r.ejections[1].duration, 60 * SECOND);
    // First sweep at or after 40.43 + 60 = 100.43 s is 110 s.
    assert_eq!(r.returns[1], (3, 110 * SECOND));
    // Same pattern: 5th failure at 110.43 s, 3 × 30 = 90 s.
    assert_eq!(r.ejections[2].at, 110_430 * MILLISECOND);
    assert_eq!(r.ejections[2].duration, 90 * SECOND);
    // 3 bouts of 5 failures out of 12,000 requests.
    assert_eq!(r.failures, 15);
    assert_eq!(r.requests, 12_000);
}

#[test]
fn one_bad_pod_of_five_is_never_ejected_at_ten_percent() {
    // 5 pods: an ejection would make 100·1/5 = 20 % > 10 % → refused every time.
    let r = run(5, OutlierConfig::default(), 10);
    assert!(r.ejections.is_empty());
    // RR sends pod 3 one request in 5: 1,000 requests → 200 failures.
    assert_eq!(r.failures, 200);

    // With Envoy's always_eject_one_host the first ejection is allowed: pod 3 gets k = 4, 9,
    // 14, 19, 24 → ejected at 240 ms; back at the 40 s sweep — after the 10 s run ends.
    let cfg = OutlierConfig {
        always_eject_one_host: true,
        ..OutlierConfig::default()
    };
    let r = run(5, cfg, 10);
    assert_eq!(r.ejections.len(), 1);
    assert_eq!(r.ejections[0].at, 240 * MILLISECOND);
    assert_eq!(r.failures, 5);
}
