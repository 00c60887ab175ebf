//! How much a weights move may carry: whole percents moved one at a time in bounded steps
//! ([`move_units`]), and how much each receiver can take before its utilisation passes its
//! limit (`capacity::limit`), read only on the points after the last move ([`receivers`]).

use std::collections::BTreeMap;

use super::{note, subset_signals};
use crate::governor::Ctx;
use crate::governor::capacity;
use crate::governor::plan::Finding;
use crate::governor::window::{self, RECENT};

/// Moves whole percents from `from` subsets to `to` subsets: each giver loses at most `step`
/// and stops at `floor` (a giver already at or below the floor gives nothing), each receiver
/// gains at most its own limit (`receivers`). Units move one at a time, so the total stays
/// what it was.
pub(super) fn move_units(
    current: &BTreeMap<String, u32>,
    from: &[&str],
    to: &[(&str, u32)],
    step: u32,
    floor: u32,
) -> BTreeMap<String, u32> {
    let mut out = current.clone();
    // Each receiver takes at most its own limit (the step, or less where its capacity ends).
    let limit: BTreeMap<&str, u32> = to.iter().map(|(n, most)| (*n, *most)).collect();
    let mut received: BTreeMap<&str, u32> = to.iter().map(|(n, _)| (*n, 0)).collect();
    for giver in from {
        let w = current.get(*giver).copied().unwrap_or(0);
        let can_give = w.saturating_sub(floor).min(step);
        for _ in 0..can_give {
            // The receiver that got least so far (ties: first by name) takes the unit.
            let Some(r) = received
                .iter()
                .filter(|(n, got)| **got < limit.get(*n).copied().unwrap_or(0))
                .min_by_key(|(n, got)| (**got, **n))
                .map(|(n, _)| *n)
            else {
                break;
            };
            *received.entry(r).or_insert(0) += 1;
            *out.entry(r.to_string()).or_insert(0) += 1;
            *out.entry(giver.to_string()).or_insert(0) -= 1;
        }
    }
    out
}

/// The most each of `names` may receive in one move: the step, or less where the receiver's
/// projected utilisation would pass its limit (`capacity::limit`: the CPU ceiling, or lower
/// where its p99 would pass the latency objective first). A point moved away from
/// `failing` subsets loads the receiver as a point of its own traffic where load may explain
/// their errors (the busiest of them is at least as busy as the receiver), else as their
/// successes, `1 − e` of a point at the smallest error rate `e` among them; traffic given back
/// after a recovery (`None`) loads it as a whole point.
///
/// Utilisation is read only from points after the last move (`moved_at`,
/// `window::after_change`): points from before it show the load of other weights. With a 15 s
/// cooldown a broken canary at 1,400 req/s was moved 50 → 30 → 10 → 0 % in 30 s, each move
/// judged on four points mostly from before the last, until `stable` took all the traffic
/// (`simulator/tests/broken_pods.rs`). A receiver that reports utilisation, but none yet after
/// the move, has no room until it does (`settling`).
pub(super) fn receivers<'a>(
    ctx: &Ctx<'_>,
    moved_at: Option<i64>,
    failing: Option<&[&str]>,
    names: &[&'a str],
) -> Vec<(&'a str, u32)> {
    let step = ctx.spec.controls.load_balancing.max_step_percent;
    let weights = &ctx.obs.config.weights;
    let signals = |n: &str| subset_signals(ctx, n);
    let utilization = |n: &str| settled_utilization(ctx, moved_at, n);
    let busiest = failing.map(|f| {
        f.iter()
            .filter_map(|n| utilization(n))
            .max_by(f64::total_cmp)
    });
    // The most a point of a failing subset's traffic can bring in successes (the least failing
    // one's); a subset with no recent error rate counts as a whole point.
    let successes = failing.map_or(1.0, |f| {
        f.iter()
            .map(|n| {
                signals(n)
                    .and_then(|s| window::error_rate(s, RECENT, ctx.obs.step_seconds))
                    .map_or(1.0, |(e, _)| capacity::load_per_point(false, e))
            })
            .reduce(f64::max)
            .unwrap_or(1.0)
    });
    names
        .iter()
        .map(|n| {
            if settling(ctx, moved_at, n) {
                return (*n, 0);
            }
            let u = utilization(n);
            let per_point = match busiest {
                Some(busiest) if !capacity::load_may_explain(busiest, u) => successes,
                _ => 1.0,
            };
            let weight = weights.get(*n).copied().unwrap_or(0);
            let ceiling = limit(ctx, moved_at, n).utilization;
            let room = capacity::room_percent(u, weight, ceiling, per_point);
            (*n, room.map_or(step, |r| r.min(step)))
        })
        .collect()
}

/// Subset `name`'s mean utilisation over the recent points after the last move.
fn settled_utilization(ctx: &Ctx<'_>, moved_at: Option<i64>, name: &str) -> Option<f64> {
    subset_signals(ctx, name)
        .and_then(|s| window::recent_mean(settled(ctx, moved_at, &s.utilization), RECENT))
}

/// How far a move may load subset `name` (`capacity::limit`), from its recent points after
/// the last move and its pods (the endpoints reported in it).
fn limit(ctx: &Ctx<'_>, moved_at: Option<i64>, name: &str) -> capacity::Limit {
    let Some(s) = subset_signals(ctx, name) else {
        return capacity::cpu_limit(ctx);
    };
    let pods = ctx
        .obs
        .endpoints
        .iter()
        .filter(|e| e.subset.as_deref() == Some(name))
        .count();
    let served =
        window::recent_mean(settled(ctx, moved_at, &s.request_rate), RECENT).map_or(0.0, |rate| {
            let e = window::error_rate(s, RECENT, ctx.obs.step_seconds).map_or(0.0, |(e, _)| e);
            rate * (1.0 - e.clamp(0.0, 1.0))
        });
    let pods = u32::try_from(pods).unwrap_or(u32::MAX);
    let p99_now = window::recent_mean(settled(ctx, moved_at, &s.latency_p99), RECENT);
    capacity::limit(
        ctx,
        s,
        pods,
        served,
        settled_utilization(ctx, moved_at, name),
        p99_now,
    )
}

/// The newest points of `values` after the last move (see [`receivers`]).
fn settled<'v>(ctx: &Ctx<'_>, moved_at: Option<i64>, values: &'v [f64]) -> &'v [f64] {
    window::after_change(values, ctx.obs.end, ctx.obs.step_seconds, moved_at)
}

/// Whether subset `name` reports utilisation recently but not yet after the last move: its room
/// is unknown until a point shows the load the move left it.
fn settling(ctx: &Ctx<'_>, moved_at: Option<i64>, name: &str) -> bool {
    subset_signals(ctx, name).is_some_and(|s| {
        window::recent_mean(&s.utilization, RECENT).is_some()
            && window::recent_mean(settled(ctx, moved_at, &s.utilization), RECENT).is_none()
    })
}

/// The note for a move that capacity stops: every destination is already as busy as its limit
/// allows (the CPU ceiling, or the load at which its p99 would pass the objective), or has not
/// yet shown the load the last move left it.
pub(super) fn no_room(ctx: &Ctx<'_>, moved_at: Option<i64>, to: &[&str]) -> Finding {
    if let (Some(at), true) = (moved_at, to.iter().all(|n| settling(ctx, moved_at, n))) {
        return note(format!(
            "{} has not yet reported utilisation after the last weights move (at {at}): how much more it can take is unknown until it does, weights stay",
            to.join(", ")
        ));
    }
    let why: Vec<String> = to
        .iter()
        .map(|n| {
            format!(
                "{n} would run over {}",
                limit(ctx, moved_at, n).describe(ctx)
            )
        })
        .collect();
    note(format!(
        "{} with more traffic: moving traffic there would move the overload, weights stay",
        why.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn moves_are_bounded_and_keep_the_sum() {
        // canary 30 → loses at most 20 → 10; stable gains 20 → 90.
        let out = move_units(
            &w(&[("stable", 70), ("canary", 30)]),
            &["canary"],
            &[("stable", 20)],
            20,
            0,
        );
        assert_eq!(out, w(&[("stable", 90), ("canary", 10)]));
        // Floor 5: canary 8 gives only 3.
        let out = move_units(
            &w(&[("stable", 92), ("canary", 8)]),
            &["canary"],
            &[("stable", 20)],
            20,
            5,
        );
        assert_eq!(out, w(&[("stable", 95), ("canary", 5)]));
        // Two receivers split the units: 20 → 10 + 10.
        let out = move_units(
            &w(&[("a", 40), ("b", 30), ("c", 30)]),
            &["a"],
            &[("b", 20), ("c", 20)],
            20,
            0,
        );
        assert_eq!(out, w(&[("a", 20), ("b", 40), ("c", 40)]));
        // A receiver with room for 3 takes 3; the other takes its full 20 (a gives 20 at most).
        let out = move_units(
            &w(&[("a", 40), ("b", 30), ("c", 30)]),
            &["a"],
            &[("b", 3), ("c", 20)],
            20,
            0,
        );
        assert_eq!(out, w(&[("a", 20), ("b", 33), ("c", 47)]));
    }
}
