//! A canary that fails modestly and for good: traffic moved off it stays off while the fault
//! lasts.
//!
//! `scenarios/extra/modest-canary.yaml`: the canary serves half of 200 req/s and fails 0.3 % of
//! its requests with HTTP 500 from minute 10, three times the 0.1 % budget. Once cut to 10 % it
//! serves 20 req/s, about 3.6 errors a minute, and a minute with at most one error — within
//! budget — comes one time in eight; judged on its recent minute alone it was given its traffic
//! back and cut again (50 → 30 → 10 → 30 → 10 %, an A → B → A). The weights planner now also
//! asks its errors since the cut (the newest 20 points at most) to be calm against the budget
//! (`models/src/governor/weights.rs`, module docs' worked example).

use homeostat_simulator::runs::{self, RunKind};
use homeostat_simulator::scenario::Scenario;

/// The canary's weight after a weights action (`… → canary N%, …`).
fn canary_after(summary: &str) -> u32 {
    summary
        .rsplit("→ canary ")
        .next()
        .and_then(|w| w.split('%').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no canary weight in {summary:?}"))
}

#[test]
fn a_canary_still_failing_is_not_given_its_traffic_back() {
    let path = format!(
        "{}/scenarios/extra/modest-canary.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let s = Scenario::load(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let alone = runs::run(&s, RunKind::Istio).expect("runs");
    let governed = runs::run(&s, RunKind::Homeostat).expect("runs");
    let weights: Vec<(f64, u32)> = governed
        .metrics
        .actions
        .iter()
        .filter(|a| a.knob == "weights")
        .map(|a| (a.t_s, canary_after(&a.summary)))
        .collect();
    // Cut at least once (the fault lasts 50 minutes), and never raised again after a cut.
    assert!(weights.first().is_some_and(|(_, w)| *w < 50), "{weights:?}");
    assert!(
        weights.windows(2).all(|p| p[1].1 <= p[0].1),
        "given back while still failing: {weights:?}"
    );
    // And the cut is worth it: fewer SLO-violation minutes than the mesh left alone.
    assert!(
        governed.metrics.slo_violation_minutes < alone.metrics.slo_violation_minutes,
        "{} against {}",
        governed.metrics.slo_violation_minutes,
        alone.metrics.slo_violation_minutes
    );
}

/// A canary at half of 200 req/s on one pod turns 5× slower at minute 10 (`slow-canary` of
/// `scenarios/extra/` with the split at 50/50): its 16 slots of 150 ms serve about 107 req/s,
/// so it runs at ρ ≈ 0.94 and its queue refuses 6–14 % of its requests in every point from
/// then on. Its errors and its p99 step up together, which over the 20-point trend correlates
/// as an overflowing queue's bursts do (r = 1.00 at the step's first point), and it was left its
/// traffic until the trend's median p99 passed the objective, 11 points (165 s) after the
/// step: cut at 765 s. A subset failing in every recent point is not overflowing now and then
/// (`window::fails_throughout`), so the cut comes once the recent four points all fail, before
/// the trend's median could: before 750 s (the step at 600 s plus 10 points of 15 s).
#[test]
fn a_canary_that_turns_slow_is_cut_before_its_trend_calls_it_slow() {
    let path = format!(
        "{}/scenarios/extra/slow-canary.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let yaml = yaml
        .replace("weight: 80 }", "weight: 50 }")
        .replace("weight: 20 }", "weight: 50 }");
    assert_eq!(
        yaml.matches("weight: 50 }").count(),
        2,
        "the split in {path} moved"
    );
    let s = Scenario::parse("slow-canary-50", &yaml).unwrap_or_else(|e| panic!("{path}: {e}"));
    let governed = runs::run(&s, RunKind::Homeostat).expect("runs");
    let first = governed
        .metrics
        .actions
        .iter()
        .find(|a| a.knob == "weights")
        .unwrap_or_else(|| panic!("never cut: {:#?}", governed.metrics.actions));
    assert!(
        first.t_s > 600.0 && first.t_s < 750.0,
        "first cut at {} s: {:#?}",
        first.t_s,
        governed.metrics.actions
    );
    assert!(first.summary.contains("→ canary 30%"), "{}", first.summary);
}
