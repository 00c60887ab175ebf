//! Load-balancing weights: move traffic away from a subset that is worse than its peers, in
//! bounded steps, and back once it recovers.
//!
//! Peer test: a subset's errors over the recent window against p₀ = the larger of its peers'
//! pooled error rate and the objective's error budget, as an exact binomial tail on request
//! counts: P(X ≥ errors | requests, p₀). Counts, not rates, so that a canary with 3 requests and
//! 1 error is "not enough data" instead of "33% errors"; and against the budget too, because
//! being slightly worse than a near-perfect peer is not worth moving traffic. A subset is bad
//! when that tail is ≤ 10⁻⁶ (at a 15 s loop, about one false alarm per 190 days of runs), or when
//! its p99 (from points of at least 100 requests, `window::comparable_p99`) is over the objective
//! and an outlier against its peers' p99 (`detect::peer::compare`,
//! leave-one-out robust z, score ≥ 0.99). It counts as recovered only when it is
//! within budget and unremarkable against its peers (tail > 0.01): two thresholds, so a subset
//! hovering at the edge does not flap. Traffic goes back to a cut subset only when its errors
//! since the last weights move (the newest `window::TREND` points at most) are also calm
//! against the budget (tail > 0.1), not over the recent points alone.
//!
//! Worked example: canary 20 req/s for the last minute (1,200 requests), peers at 0.05%, budget
//! 0.1% ⇒ p₀ = 0.1%, 1.2 errors expected. 8 errors: tail ≈ 4·10⁻⁵, not bad yet; 120 errors (10%)
//! is bad by a margin no noise can reach. Giving back: a canary cut to those 20 req/s and still
//! failing 0.3 % expects 3.6 errors a minute, and at most one (0.083 %, within budget) comes
//! with chance e^−3.6 (1 + 3.6) = 0.126: one minute in eight it looks recovered. Over 20
//! points since the cut (15 s each, 6,000 requests; 6 errors expected at the budget, 18 at
//! 0.3 %) the tail is 0.153 at 9 errors and 0.084 at 10, so it must show at most 9: chance
//! 0.015, and a new chance comes every five minutes where the recent minute gives one every
//! minute. (Merely unremarkable, tail > 0.01, would pass at up to 12 errors: chance 0.091.)
//!
//! Own history: each subset's error rate feeds the default streaming detector
//! (`crate::detect::NAMES[0]`); a score ≥ 0.99 marks the subset bad only when its errors are
//! also significantly over the budget (binomial tail ≤ 10⁻³): a detector alone, on a noisy
//! 0.14% against a 0.1% budget, fired 14 times in a simulated clean day.
//!
//! Only errors concentrated on the bad subsets move traffic: the subsets that are not bad,
//! pooled, must not be significantly over the budget themselves (`outlier::concentrated`),
//! else every subset is failing (an overload, a shared fault) and a move only moves the load.
//! Nor is traffic moved for errors while the callers see both objectives met (`callers`):
//! behind retries the bad subset's errors do not reach them, and a move could only put its
//! traffic on the rest. A slow subset is still cut: no retry absorbs slowness.
//! Nor do errors that rise with the requests the subset serves and with its p99
//! (`window::LoadTrend::of_served`): that subset is busy, not bad (`Health::Busy`); nor, at a
//! load steady within counting noise, errors that come with its longest waits, the sign of a
//! queue that overflows now and then (`LoadTrend::overflowing`: two one-pod subsets, each
//! overflowing at random, lost 2 SLO minutes against Istio's 0 as 20 % of the traffic went from
//! one to the other and back; a subset slow for most of the trend is still cut); and until
//! the subset has the 4 points of history that trend needs, nobody can tell (a surge's first
//! minute looks exactly like a fault), so nothing moves. And a
//! destination takes no more than its capacity allows where load may explain the errors
//! (`capacity`).
//!
//! Moves: each bad subset loses at most `maxStepPercent` (never below `minWeightPercent`), which
//! goes to the healthy subsets, each gaining at most `maxStepPercent`. If no subset is healthy
//! nothing moves (never all away from the healthy set). Weights are whole percents summing to
//! 100 before and after, by construction (units move one at a time). Traffic goes back to a
//! recovered subset in the same bounded steps, but not for a lookback to one found bad again
//! within a lookback of being given traffic back: the same incident (see [`plan`]).
//!
//! # Layout
//!
//! * this file — the planner: [`plan`] (cut the bad subsets, give traffic back to the
//!   recovered ones), [`shift_to_stable`] (the alert remediation) and the state they keep.
//! * `weights/judge.rs` — one subset's health: the peer test, its own history, its p99 against its
//!   peers', and the load rules that call a failing subset busy rather than bad.
//! * `weights/room.rs` — how much a move may carry: bounded whole-percent steps (`move_units`) and
//!   each receiver's room by `capacity::limit`, read on the points after the last move.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::Ctx;
use super::callers;
use super::observation::{Observation, Signals};
use super::plan::{Change, Evidence, Finding, FindingKind, KnobValue, Origin, Posture};
use super::window::{self, RECENT};
use crate::detect::Detector;

mod judge;
mod room;

use judge::{Health, Judged, SubsetP99s, calm_since_the_move, judge};
use room::{move_units, no_room, receivers};

#[derive(Default)]
pub struct WeightsState {
    /// The weights in force before the Governor first moved traffic, to return to.
    pub(super) baseline: Option<BTreeMap<String, u32>>,
    history: BTreeMap<String, Box<dyn Detector>>,
    pub(super) history_score: BTreeMap<String, f64>,
    /// When each subset was last given traffic back (unix seconds), kept for one lookback.
    pub(super) given_back: BTreeMap<String, i64>,
    /// When a subset given traffic back within the lookback was found bad again and lost it
    /// (unix seconds): the same incident, so its traffic stays away for one lookback (see
    /// [`plan`]).
    pub(super) recurred: BTreeMap<String, i64>,
}

impl WeightsState {
    /// The adapter applied `change` at `now`: remember which subsets were given traffic back,
    /// and which of those lost traffic again while that is remembered (the same incident, see
    /// [`plan`]). Applied, not proposed: a give-back the guardrails hold moved nothing, and a
    /// cut after it is no recurrence (counted at proposal, a held give-back and the cut that
    /// followed kept a recovering subset's traffic away on a random mesh).
    pub fn applied(&mut self, now: i64, change: &Change) {
        let (KnobValue::Weights(before), KnobValue::Weights(after)) =
            (&change.current, &change.proposed)
        else {
            return;
        };
        for (n, w) in after {
            let was = before.get(n).copied().unwrap_or(0);
            if *w > was && change.posture == Posture::Relax {
                self.given_back.insert(n.clone(), now);
            } else if *w < was && self.given_back.contains_key(n) {
                self.recurred.insert(n.clone(), now);
            }
        }
    }
}

/// Feeds each subset's per-point error rate, newer than `fed_until`, to its own detector, and
/// keeps the score of the newest point fed.
pub fn feed(state: &mut WeightsState, obs: &Observation, fed_until: Option<i64>) {
    let Some(name) = crate::detect::NAMES.first() else {
        return;
    };
    if fed_until.is_some_and(|t| t >= obs.end) {
        return;
    }
    let step = obs.step_seconds.max(1);
    for sub in &obs.subsets {
        let s = &sub.signals;
        let from = window::first_unseen(obs.end, step, s.success_rate.len(), fed_until);
        if from >= s.success_rate.len() {
            continue;
        }
        let det = match state.history.entry(sub.name.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => match crate::detect::by_name(name) {
                Some(d) => e.insert(d),
                None => return,
            },
        };
        let mut score = 0.0;
        for &ok in &s.success_rate[from..] {
            score = det.update(if ok.is_finite() { 1.0 - ok } else { f64::NAN });
        }
        state.history_score.insert(sub.name.clone(), score);
    }
}

/// The weights planner (one run of the control loop). `moved_at`: when the weights were last
/// changed (guardrails' record), so that a move's room is judged on points after it.
pub fn plan(
    ctx: &Ctx<'_>,
    state: &mut WeightsState,
    moved_at: Option<i64>,
    findings: &mut Vec<Finding>,
) -> Option<Change> {
    // What is older than the lookback is no longer the same incident.
    let lookback = ctx.spec.telemetry.lookback.as_secs_ceil();
    let recent = |t: &mut i64| ctx.obs.end.saturating_sub(*t) < lookback;
    state.given_back.retain(|_, t| recent(t));
    state.recurred.retain(|_, t| recent(t));
    let current = &ctx.obs.config.weights;
    if current.len() < 2 || !sums_to_100(current) {
        if !current.is_empty() {
            findings.push(note(format!(
                "weights {current:?} do not sum to 100; not moving traffic"
            )));
        }
        return None;
    }
    // Latency against the peers: detect's leave-one-out robust comparison, p99 as the one
    // feature (higher = worse).
    let p99s: SubsetP99s<'_> = ctx
        .obs
        .subsets
        .iter()
        .map(|s| {
            let p = window::comparable_p99(&s.signals, RECENT, ctx.obs.step_seconds);
            (s.name.as_str(), p)
        })
        .collect();
    let features: Vec<Vec<f64>> = current
        .keys()
        .map(|n| {
            let p = p99s.iter().find(|(s, _)| s == n).and_then(|(_, p)| *p);
            vec![p.unwrap_or(f64::NAN)]
        })
        .collect();
    let peer_scores = crate::detect::peer::compare(&features);
    let judged: BTreeMap<&str, Judged> = current
        .keys()
        .enumerate()
        .map(|(i, n)| {
            let score = peer_scores
                .iter()
                .find(|f| f.index == i)
                .map_or(0.0, |f| f.score);
            (n.as_str(), judge(ctx, state, n, &p99s, score))
        })
        .collect();
    for (name, j) in &judged {
        match j.health {
            Health::Bad => findings.push(Finding {
                kind: FindingKind::Anomaly,
                subject: format!("subset {name}"),
                summary: format!("subset {name}: {}", j.why),
                evidence: j.evidence.clone(),
            }),
            Health::Busy => findings.push(note(format!("subset {name}: {}", j.why))),
            Health::Unknown => findings.push(Finding {
                kind: FindingKind::InsufficientData,
                subject: format!("subset {name}"),
                summary: format!("subset {name}: {}; its weight is left alone", j.why),
                evidence: j.evidence.clone(),
            }),
            _ => {}
        }
    }
    let bad: Vec<&str> = judged
        .iter()
        .filter(|(_, j)| j.health == Health::Bad)
        .map(|(n, _)| *n)
        .collect();
    let healthy: Vec<&str> = judged
        .iter()
        .filter(|(_, j)| j.health == Health::Healthy)
        .map(|(n, _)| *n)
        .collect();
    let lb = &ctx.spec.controls.load_balancing;
    if !bad.is_empty() {
        // Only errors concentrated on the bad subsets are a reason to move traffic: the rest,
        // pooled, must not be significantly over the error budget themselves (the outlier
        // planner's rule, `outlier::concentrated`). Otherwise every subset is failing — an
        // overload, or a fault they share — and the most loaded one fails most; moving its
        // traffic moves the overload, and the next run finds another subset "failing" (seen on
        // a random overloaded mesh: 41/29/30 → 61/9/30 → 41/29/30 → 21/49/30 → 41/29/30 % in
        // 11 minutes, nine moves in 19).
        let budget = 1.0 - ctx.spec.objectives.success_rate;
        let rest: Vec<(f64, f64)> = ctx
            .obs
            .subsets
            .iter()
            .filter(|s| !bad.contains(&s.name.as_str()))
            .filter_map(|s| window::error_rate(&s.signals, RECENT, ctx.obs.step_seconds))
            .collect();
        if !super::outlier::concentrated(&rest, budget) {
            findings.push(note(format!(
                "subset {} fails more than the rest, but the rest are over the error budget too: errors spread over every subset are an overload or a shared fault, and moving traffic would only move the load; weights stay",
                bad.join(", ")
            )));
            return None;
        }
        // What the callers see (`callers`): where it meets both objectives, the bad subsets'
        // errors are absorbed by retries, and a move could only put their traffic on the rest
        // (seen on a random mesh: a one-pod subset whose queue overflowed now and then, 0.73 %
        // of its tries, hidden by Istio's default retries, lost 20 % of the traffic to its
        // one-pod peer, which then overflowed in turn). Errors only: no retry absorbs a slow
        // subset's slowness, every request it serves waits, and the service's p99 being within
        // the objective is then only the luck of its share (seen on a random mesh with one pod
        // 1.9× slower: a cut held back that way cost 5 SLO minutes against 0).
        if bad.iter().all(|n| !judged[n].slow)
            && let Some(seen) = callers::objectives_met(ctx)
        {
            findings.push(Finding {
                kind: FindingKind::Note,
                subject: format!("subset {}", bad.join(", ")),
                summary: format!(
                    "subset {} fails more than its peers or its history, but {}: their retries absorb the errors, moving traffic could not make the callers' objectives better met and would put it on the rest; weights stay",
                    bad.join(", "),
                    seen.describe(ctx)
                ),
                evidence: seen.evidence().to_vec(),
            });
            return None;
        }
        if healthy.is_empty() {
            let others: Vec<String> = judged
                .iter()
                .filter(|(n, _)| !bad.contains(n))
                .map(|(n, j)| format!("{n}: {}", j.why))
                .collect();
            findings.push(note(format!(
                "no subset is healthy ({}): there is nowhere safe to move traffic, weights stay",
                others.join("; ")
            )));
            return None;
        }
        let to = receivers(ctx, moved_at, Some(&bad), &healthy);
        if to.iter().all(|(_, most)| *most == 0) {
            findings.push(no_room(ctx, moved_at, &healthy));
            return None;
        }
        let proposed = move_units(
            current,
            &bad,
            &to,
            lb.max_step_percent,
            lb.min_weight_percent,
        );
        if &proposed == current {
            return None;
        }
        if state.baseline.is_none() {
            state.baseline = Some(current.clone());
        }
        let worst = bad
            .iter()
            .map(|n| &judged[n])
            .max_by(|a, b| a.confidence.total_cmp(&b.confidence))?;
        let names = bad.join(", ");
        // What this step moves, which capacity or the minimum weight may keep under the step.
        let moved: u32 = bad
            .iter()
            .map(|n| {
                let before = current.get(*n).copied().unwrap_or(0);
                before.saturating_sub(proposed.get(*n).copied().unwrap_or(0))
            })
            .sum();
        return Some(Change {
            knob: super::plan::Knob::Weights,
            current: KnobValue::Weights(current.clone()),
            proposed: KnobValue::Weights(proposed.clone()),
            posture: Posture::Protect,
            origin: Origin::Planner,
            reason: format!(
                "subset {names} is failing: {}; moving {moved}% of traffic (at most {}% a step) to {}",
                worst.why,
                lb.max_step_percent,
                healthy.join(", ")
            ),
            evidence: worst.evidence.clone(),
            confidence: worst.confidence,
            expected_effect: format!(
                "{names} gets {}% of traffic instead of {}%, so fewer users hit it",
                bad.iter().map(|n| proposed[*n]).sum::<u32>(),
                bad.iter().map(|n| current[*n]).sum::<u32>()
            ),
            held_by: None,
        });
    }
    // No bad subset: return traffic to the baseline, one bounded step at a time, but only to
    // subsets that are fully healthy again.
    let baseline = state.baseline.clone()?;
    if baseline.keys().ne(current.keys()) || &baseline == current {
        state.baseline = None;
        return None;
    }
    // A subset found bad again within a lookback of being given traffic back is the same
    // incident: it looks healthy between its bad spells only because it serves less (a slow
    // subset at 4 % of the traffic has too few requests a point for a p99, and its errors are
    // in budget), so its traffic stays away for the policy's lookback after it recurred, as
    // the outlier planner keeps an incident's setting (`outlier::incident_memory_seconds`).
    // Seen on a random mesh: a subset 11× slower went 24 → 4 → 24 → 4 % every two minutes,
    // twelve moves in 23 minutes, each give-back two minutes of a p99 over the objective.
    let recurring = |n: &str| state.recurred.contains_key(n);
    let below: Vec<&str> = current
        .iter()
        .filter(|(n, w)| {
            **w < baseline[*n]
                && judged[n.as_str()].health == Health::Healthy
                && calm_since_the_move(ctx, moved_at, n)
        })
        .map(|(n, _)| n.as_str())
        .collect();
    for n in below.iter().filter(|n| recurring(n)) {
        findings.push(note(format!(
            "subset {n} was bad again after traffic was given back to it: the same incident, so its traffic stays away until {}s after that (the policy's lookback)",
            lookback
        )));
    }
    let below: Vec<&str> = below.into_iter().filter(|n| !recurring(n)).collect();
    if below.is_empty() {
        return None;
    }
    let mut proposed = current.clone();
    let mut given: BTreeMap<String, u32> = BTreeMap::new();
    for (to, most) in receivers(ctx, moved_at, None, &below) {
        let want = (baseline[to] - current[to]).min(most);
        for _ in 0..want {
            // Take each unit from the subset furthest above its baseline that has not yet given
            // a full step and is above the policy's floor (ties: first by name).
            let donor = proposed
                .iter()
                .filter(|(n, w)| {
                    **w > baseline[n.as_str()]
                        && **w > lb.min_weight_percent
                        && given.get(n.as_str()).copied().unwrap_or(0) < lb.max_step_percent
                })
                .max_by_key(|(n, w)| (**w - baseline[n.as_str()], std::cmp::Reverse(*n)))
                .map(|(n, _)| n.clone());
            let Some(donor) = donor else { break };
            *given.entry(donor.clone()).or_insert(0) += 1;
            *proposed.entry(donor).or_insert(0) -= 1;
            *proposed.entry(to.to_string()).or_insert(0) += 1;
        }
    }
    if &proposed == current {
        return None;
    }
    findings.push(Finding {
        kind: FindingKind::Recovered,
        subject: format!("subset {}", below.join(", ")),
        summary: format!(
            "subset {} is healthy again: returning traffic towards {:?}",
            below.join(", "),
            baseline
        ),
        evidence: below
            .iter()
            .flat_map(|n| judged[n].evidence.clone())
            .collect(),
    });
    Some(Change {
        knob: super::plan::Knob::Weights,
        current: KnobValue::Weights(current.clone()),
        proposed: KnobValue::Weights(proposed),
        posture: Posture::Relax,
        origin: Origin::Planner,
        reason: format!(
            "subset {} has recovered (within the error budget and in line with its peers); giving traffic back by at most {}%",
            below.join(", "),
            lb.max_step_percent
        ),
        evidence: below
            .iter()
            .flat_map(|n| judged[n].evidence.clone())
            .collect(),
        confidence: 0.8,
        expected_effect: format!("weights move back towards {baseline:?}"),
        held_by: None,
    })
}

/// `shiftToStable`: move up to `maxStepPercent` from every other subset to the stable one
/// (`moved_at` as for [`plan`]).
pub fn shift_to_stable(
    ctx: &Ctx<'_>,
    moved_at: Option<i64>,
    findings: &mut Vec<Finding>,
) -> Option<Change> {
    let current = &ctx.obs.config.weights;
    let lb = &ctx.spec.controls.load_balancing;
    let Some(stable) = ctx.spec.stable_subset() else {
        findings.push(note("shiftToStable: the policy names no subsets".into()));
        return None;
    };
    if !current.contains_key(stable) || !sums_to_100(current) {
        findings.push(note(format!(
            "shiftToStable: subset {stable} is not among the weights in force {current:?}"
        )));
        return None;
    }
    let others: Vec<&str> = current
        .keys()
        .map(String::as_str)
        .filter(|n| *n != stable)
        .collect();
    let to = receivers(ctx, moved_at, Some(&others), &[stable]);
    if to.iter().all(|(_, most)| *most == 0) {
        findings.push(no_room(ctx, moved_at, &[stable]));
        return None;
    }
    let proposed = move_units(
        current,
        &others,
        &to,
        lb.max_step_percent,
        lb.min_weight_percent,
    );
    if &proposed == current {
        return None;
    }
    Some(Change {
        knob: super::plan::Knob::Weights,
        current: KnobValue::Weights(current.clone()),
        proposed: KnobValue::Weights(proposed.clone()),
        posture: Posture::Protect,
        origin: Origin::Planner,
        reason: format!(
            "alert remediation: shifting up to {}% of traffic to the stable subset {stable}",
            lb.max_step_percent
        ),
        evidence: vec![Evidence::new(
            "stable_weight_now",
            f64::from(current[stable]),
        )],
        confidence: 0.7,
        expected_effect: format!("{stable} carries {}% of traffic", proposed[stable]),
        held_by: None,
    })
}
/// Subset `name`'s signals, if it reports any.
fn subset_signals<'o>(ctx: &Ctx<'o>, name: &str) -> Option<&'o Signals> {
    ctx.obs
        .subsets
        .iter()
        .find(|s| s.name == name)
        .map(|s| &s.signals)
}

/// Whole percents summing to 100 (in u64: arbitrary input must not overflow).
fn sums_to_100(w: &BTreeMap<String, u32>) -> bool {
    w.values().map(|v| u64::from(*v)).sum::<u64>() == 100
}

fn note(summary: String) -> Finding {
    Finding {
        kind: FindingKind::Note,
        subject: "weights".into(),
        summary,
        evidence: Vec::new(),
    }
}
