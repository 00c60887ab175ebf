//! Helpers more than one concern's scenarios use.

use super::governor_support::*;
use homeostat_models::governor::{FindingKind, Knob, KnobValue, Observation};

pub(crate) const T0: i64 = 1_700_000_000;

pub(crate) fn weights_of(v: &KnobValue) -> std::collections::BTreeMap<String, u32> {
    match v {
        KnobValue::Weights(w) => w.clone(),
        other => panic!("not weights: {other:?}"),
    }
}

/// Stable at 80 req/s and 0.05% errors; canary at 20 req/s, bad (10% errors) in the newest
/// `bad_points` points.
pub(crate) fn canary_obs(end: i64, canary_weight: u32, bad_points: usize) -> Observation {
    let stable = vec![Point::healthy(80.0); LEN];
    let mut canary = vec![Point::healthy(20.0); LEN];
    for p in canary.iter_mut().rev().take(bad_points) {
        p.success = 0.90;
    }
    let service = merge(&[&stable, &canary]);
    ObsBuilder::new(
        end,
        &service,
        config(weights(&[
            ("stable", 100 - canary_weight),
            ("canary", canary_weight),
        ])),
    )
    .subset("stable", &stable)
    .subset("canary", &canary)
    .build()
}

/// The decision has a `Note` finding whose summary contains `text`.
pub(crate) fn assert_note(d: &homeostat_models::governor::Decision, text: &str) {
    assert!(
        d.findings
            .iter()
            .any(|f| f.kind == FindingKind::Note && f.summary.contains(text)),
        "no note with {text:?}: {:#?}",
        d.findings
    );
}

/// Whether the decision proposes or holds a change of `knob`.
pub(crate) fn touches(d: &homeostat_models::governor::Decision, knob: Knob) -> bool {
    d.plan
        .changes
        .iter()
        .chain(&d.plan.held)
        .any(|c| c.knob == knob)
}

/// The decision neither proposes nor holds a change of `knob` (`case` names it on failure).
pub(crate) fn assert_untouched(d: &homeostat_models::governor::Decision, knob: Knob, case: &str) {
    assert!(
        d.plan
            .changes
            .iter()
            .chain(&d.plan.held)
            .all(|c| c.knob != knob),
        "{case}: {knob:?} touched: {:#?}",
        d.plan
    );
}
