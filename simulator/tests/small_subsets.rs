//! Subsets of one pod: full long before their CPU is, overflowing now and then at half of it, and
//! not scaled onto a faulty pod for an objective the histogram cannot resolve.
//!
//! Found by the random-mesh search (seed 83, `simulator/scenarios/known-harm/`): subset `v0`,
//! one pod with one slot and a 56 ms request, beside `v1`'s four pods, under a traffic cycle of
//! 39 s. A fault in `v1` made the Governor move traffic onto `v0`, within the 85 % CPU ceiling,
//! and `v0` queued past the 540 ms objective; the traffic then went back and forth (26, 9 and
//! 6 SLO minutes against Istio's defaults' 4, 5 and 3 under the three faults). Weights moves
//! now also stop where the destination's p99 would pass the objective
//! (`models/src/governor/capacity.rs`, `pod.rs`).

mod support;

use homeostat_simulator::runs::{self, RunKind};
use support::known_harm;

/// The governed run of a known-harm mesh, which must lose no more than a minute more than the
/// mesh left at Istio's defaults (the search's own test of harm).
fn no_worse_than_istio(file: &str) -> runs::RunResult {
    let s = known_harm(file);
    let alone = runs::run(&s, RunKind::Istio).expect("runs");
    let governed = runs::run(&s, RunKind::Homeostat).expect("runs");
    assert!(
        governed.metrics.slo_violation_minutes <= alone.metrics.slo_violation_minutes + 1,
        "{file}: {} SLO minutes against {}: {:#?}",
        governed.metrics.slo_violation_minutes,
        alone.metrics.slo_violation_minutes,
        governed.metrics.actions
    );
    governed
}

/// `v0` starts with 29 % of 32 req/s: 9.3 req/s on one slot of 56 ms, whose capacity is
/// 1 / 0.056 = 17.9 req/s, so ρ = 0.52. The queueing model puts its p99 at the low-load p99 plus
/// the M/M/1 p99 wait ln(100ρ) / (17.9 (1 − ρ)); even with the low-load p99 at the bare 56 ms
/// (the measured one is higher, which lowers the limit) the 540 ms objective leaves the wait
/// 484 ms, reached where ln(100ρ) = 8.66 (1 − ρ): ρ ≈ 0.54 (ln 54 = 3.99, 8.66 · 0.46 = 3.98).
/// So `v0` has at most a point of room over its starting share, and whatever the fault, no
/// move may give it more than 29 % + 1; and the governed mesh is no worse than Istio's.
#[test]
fn a_one_slot_subset_is_not_given_traffic_it_cannot_serve() {
    for file in [
        "h83-errpod-150.yaml",
        "h83-node-150.yaml",
        "h83-slowpod-150.yaml",
    ] {
        let governed = no_worse_than_istio(file);
        for a in governed
            .metrics
            .actions
            .iter()
            .filter(|a| a.knob == "weights")
        {
            let v0: u32 = a
                .summary
                .rsplit("→ v0 ")
                .next()
                .and_then(|w| w.split('%').next())
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("no v0 weight in {:?}", a.summary));
            assert!(v0 <= 30, "{file}: {:#?}", governed.metrics.actions);
        }
    }
}

/// A one-pod subset whose queue overflows now and then is not a bad one. Found by the same
/// search (seed 88): two one-pod subsets of two slots and a queue of 14, gamma-distributed
/// requests (shape 0.47: a coefficient of variation of 1.46) at about half their capacity, no
/// fault that anyone sees. A burst of long requests fills one queue now and then, 1–2 % of
/// its tries are rejected for a few seconds, and Istio's default retries hide most of it. Moving
/// 20 % of the traffic to the other pod put it at about 70 % of its capacity, where its queue
/// overflowed in turn (3, 2 and 21 SLO minutes against 0 left at Istio's defaults; in the last
/// the policy allows one change an hour, so nothing moved back). The weights planner now
/// reads errors that come with the subset's longest waits at a load steady within counting
/// noise as an overflowing queue (`LoadTrend::overflowing`): the governed mesh loses no more
/// than a minute more than the mesh left alone (the search's own test of harm).
#[test]
fn a_queue_that_overflows_now_and_then_keeps_its_traffic() {
    for file in [
        "h88-overflow.yaml",
        "h88-overflow-214.yaml",
        "h88-overflow-186.yaml",
    ] {
        no_worse_than_istio(file);
    }
}

/// A one-pod subset is not scaled onto a faulty pod for an objective Istio's histogram cannot
/// resolve. Found by the same search (seeds 90, and 88 with two faults): requests of a fixed
/// 34 ms (12 ms) under a 34 ms (12 ms) objective, which every point's p99 meets, and a fault on
/// the pod a scale-up adds (5.5× slower; failing 78 % with 500). Istio's (25, 50] ms bucket
/// ((10, 25] ms) holds every request, so `histogram_quantile` reads the p99 at 49.75 ms
/// (24.85 ms), "over" the objective; sizing the HPA for no queueing wait against an objective
/// thought out of reach scaled onto the faulty pod: 23 SLO minutes against `hpa-70`'s 2, and
/// 29 against 1. The objective lies inside the bucket that holds the p99, so the queueing
/// model now asks for nothing (`pod::Latency::out_of_reach_unresolved`): the Governor changes
/// no autoscaling setting, and the governed mesh is no worse than the HPA at its default
/// target alone.
#[test]
fn an_objective_inside_the_p99s_bucket_scales_nothing_onto_a_faulty_pod() {
    for file in [
        "h90-scaled-onto-slow-pod.yaml",
        "h88-two-faults-scaled-onto-broken-pod.yaml",
    ] {
        let s = known_harm(file);
        let hpa = runs::run(&s, RunKind::Hpa(70)).expect("runs");
        let governed = runs::run(&s, RunKind::Homeostat).expect("runs");
        assert!(
            governed
                .metrics
                .actions
                .iter()
                .all(|a| a.knob != "autoscaling"),
            "{file}: {:#?}",
            governed.metrics.actions
        );
        assert!(
            governed.metrics.slo_violation_minutes <= hpa.metrics.slo_violation_minutes + 1,
            "{file}: {} SLO minutes against {}",
            governed.metrics.slo_violation_minutes,
            hpa.metrics.slo_violation_minutes
        );
    }
}

/// A quiet service's hidden errors move no traffic onto a slow one-pod subset. Found by the same
/// search (seed 84, two faults a mesh): a pod of `v0` failing 89 % of its tries with 503, which
/// Istio's retries hide (the callers get 99.972 % and 99.982 %), beside `v1`, one pod 5.9×
/// slower, at 2 and 3 requests/s in all. One failed call among the few of the recent four 5 s
/// points (40 calls; 60) read as 97.5 % against a 99 % objective (98.3 % against 99.9 %), and the
/// weights planner moved traffic onto `v1`: 29 SLO minutes against Istio's defaults' 27, and
/// 30 against 28. The callers' success is now read over the 1 / budget calls that can show
/// the budget (100; 1,000), or over the 20-point trend with one failure let pass where even it
/// holds fewer (`models/src/governor/callers.rs`): over 100 calls the one failure is 99 %, and
/// the second mesh's callers fail about one call in the whole run (99.982 % of 5,421), so no
/// trend of 300 holds two: no weights move.
#[test]
fn a_quiet_services_hidden_errors_move_no_traffic_onto_a_slow_subset() {
    for file in [
        "h84-two-faults-slow-peer.yaml",
        "h84-two-faults-slow-peer-2.yaml",
    ] {
        let governed = no_worse_than_istio(file);
        assert!(
            governed.metrics.actions.iter().all(|a| a.knob != "weights"),
            "{file}: {:#?}",
            governed.metrics.actions
        );
    }
}

/// `s0`: subsets `v0` (2 pods) and `v1` (4 pods) of 2 slots and no queue each, under an HPA at
/// 22 %; a surge at 3 s, node 0 lost with a larger surge at 94 s
/// (`known-harm/h112-two-faults-ejected-in-a-surge.yaml`). The HPA's scaling is the remedy;
/// the Governor must add nothing to it (the `hpa-22` run: the same scale events, failures, SLO
/// minutes and no ejection). Before 2026-12-04 it turned outlier detection on at 150 s, twice
/// over: judged against the whole service, `v0`'s one pod left, refusing 47.6 % of a surge its
/// 2 slots could not take, was an outlier against `v1`'s idle pods, though Envoy ejects it
/// within `v0`, onto `v0`'s other pod (6 SLO minutes against `hpa-22`'s 4); and judged per
/// subset but pooled over the window, with `--seed 2` the two `v0` pods that had served the
/// surge's worst 30 s were outliers against two started after it (20 against 7).
#[test]
fn a_subsets_overflow_is_neither_judged_against_another_subset_nor_against_pods_started_after_it() {
    let mut s = known_harm("h112-two-faults-ejected-in-a-surge.yaml");
    for seed in [0, 2] {
        s.seed = seed;
        support::same_as(&s, RunKind::Hpa(22));
    }
}

/// Three pods of eight back from a node loss, failing every request for a minute, beside a
/// 2-pod subset `v0` whose 18–20 ms requests meet a 20 ms route timeout
/// (`known-harm/h110-two-faults-pair-ejected.yaml`). The Governor turns outlier detection on at
/// 135 s; the share it sets is counted over the service (⌈100 · 3/8⌉ = 38 %), which lets
/// Envoy eject no pod of a 2-pod subset (100 · 1 > 38 · 2). Counted per subset, as Envoy counts
/// it, 50 % let `v0` lose one pod after the other for the rest of the run, its one pod left
/// unable to serve the subset within the timeout: 27 SLO minutes against Istio's defaults' 1,
/// at each of eight seeds (`models/src/governor/clusters.rs`). The search's own test of harm:
/// no more than a minute more than Istio's defaults.
#[test]
fn a_two_pod_subset_does_not_lose_a_pod_its_peer_cannot_cover() {
    no_worse_than_istio("h110-two-faults-pair-ejected.yaml");
}
