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

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::Ctx;
use super::callers;
use super::capacity;
use super::observation::{Observation, Signals};
use super::plan::{Change, Evidence, Finding, FindingKind, KnobValue, Origin, Posture};
use super::window::{self, RECENT};
use crate::detect::Detector;

const ALPHA_BAD: f64 = 1e-6;
const ALPHA_RECOVERED: f64 = 0.01;
/// A cut subset's errors since the last weights move must be calm against the budget before it
/// gets traffic back: binomial tail > 0.1, the conventional "not even suggestive" level (the
/// detectors' end-of-incident rule, `detect::ensemble`'s `CALM_SCORE`), where merely
/// "unremarkable" (> `ALPHA_RECOVERED`) leaves a subset still failing a good chance to pass
/// (module docs, worked example).
const ALPHA_CALM_SINCE_CUT: f64 = 0.1;
const HISTORY_BAD: f64 = 0.99;
/// Peer score (detect::peer, on p99) above which a subset over the latency objective is slow.
const LATENCY_PEER_BAD: f64 = 0.99;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Bad,
    Healthy,
    /// Between the thresholds: neither cut nor given traffic back.
    Watch,
    /// Failing, but load may explain it: its errors rise with its own load and latency (an
    /// overloaded subset, not a bad one), or its history is too short to tell. Treated as
    /// `Watch` (a move would only move the load), and said so.
    Busy,
    /// No data: never acted on.
    Unknown,
}

struct Judged {
    health: Health,
    /// Its p99 is over the objective and an outlier against its peers', whatever decided
    /// `health`: slowness no retry absorbs (see [`plan`]).
    slow: bool,
    evidence: Vec<Evidence>,
    why: String,
    confidence: f64,
}

/// Each reported subset's p99 for comparing peers (`window::comparable_p99`), in report order,
/// computed once per run for every judgement.
type SubsetP99s<'a> = Vec<(&'a str, Option<f64>)>;

fn judge(
    ctx: &Ctx<'_>,
    state: &WeightsState,
    name: &str,
    p99s: &SubsetP99s<'_>,
    latency_peer_score: f64,
) -> Judged {
    let obs = ctx.obs;
    let budget = 1.0 - ctx.spec.objectives.success_rate;
    let p99_obj = ctx.spec.objectives.latency_p99.as_secs_f64();
    let empty = Signals::default();
    let signals = |n: &str| {
        obs.subsets
            .iter()
            .find(|s| s.name == n)
            .map_or(&empty, |s| &s.signals)
    };
    let unknown = |why: &str| Judged {
        health: Health::Unknown,
        slow: false,
        evidence: Vec::new(),
        why: why.to_string(),
        confidence: 0.0,
    };
    let Some((e_i, n_i)) = window::error_rate(signals(name), RECENT, obs.step_seconds) else {
        return unknown("no recent traffic or success-rate data");
    };
    // Pool the peers.
    let (mut err_rest, mut n_rest) = (0.0, 0.0);
    for sub in obs.subsets.iter().filter(|s| s.name != name) {
        if let Some((e, n)) = window::error_rate(&sub.signals, RECENT, obs.step_seconds) {
            err_rest += e * n;
            n_rest += n;
        }
    }
    let p99_peers: Vec<f64> = p99s
        .iter()
        .filter(|(n, _)| *n != name)
        .filter_map(|(_, p)| *p)
        .collect();
    if n_rest <= 0.0 {
        return unknown("no peer has recent data to compare with");
    }
    let e_rest = err_rest / n_rest;
    let p_peers = window::smoothed_rate(e_rest, n_rest);
    let tail_bad = window::binomial_tail(e_i * n_i, n_i, p_peers.max(budget));
    let tail_peers = window::binomial_tail(e_i * n_i, n_i, p_peers);
    let p99_i = p99s.iter().find(|(n, _)| *n == name).and_then(|(_, p)| *p);
    let p99_rest = crate::stats::median(&p99_peers);
    let slow = p99_i.is_some_and(|a| a > p99_obj) && latency_peer_score >= LATENCY_PEER_BAD;
    let history = state.history_score.get(name).copied().unwrap_or(0.0);
    let evidence = vec![
        Evidence::new("error_rate", e_i),
        Evidence::new("peer_error_rate", e_rest),
        Evidence::new("requests", n_i),
        Evidence::new("p_value_vs_peers_and_budget", tail_bad),
        Evidence::new("error_budget", budget),
        Evidence::new("latency_p99_s", p99_i.unwrap_or(f64::NAN)),
        Evidence::new("peer_latency_p99_s", p99_rest.unwrap_or(f64::NAN)),
        Evidence::new("latency_peer_score", latency_peer_score),
        Evidence::new("history_score", history),
    ];
    let over_budget = e_i > budget;
    // The two verdicts that say "its errors": against its peers, and against its own history.
    let worse_than_peers = over_budget && tail_bad <= ALPHA_BAD;
    let worse_than_itself = history >= HISTORY_BAD
        && window::binomial_tail(e_i * n_i, n_i, budget) <= window::OVER_BUDGET_ALPHA;
    let failing = worse_than_peers || worse_than_itself;
    // Only a failing subset's trend is read below: the rest are spared its correlations and
    // its dispersion test (a χ² tail) on every run.
    let trend = if failing {
        window::LoadTrend::of_served(signals(name), obs.step_seconds)
    } else {
        window::LoadTrend::default()
    };
    let (health, why, confidence) = if failing && !trend.known() {
        (
            Health::Busy,
            format!(
                "{:.2}% of its {n_i:.0} recent requests fail, but {} points of history cannot tell an overload from a fault ({} needed): waiting",
                e_i * 100.0,
                trend.points,
                window::MIN_CORRELATION_POINTS
            ),
            0.5,
        )
    } else if failing
        && !slow_all_along(signals(name), p99_obj, obs.step_seconds)
        && !window::fails_throughout(signals(name), RECENT, obs.step_seconds, budget)
        && trend.overflowing()
    {
        (
            Health::Busy,
            format!(
                "{:.2}% of its {n_i:.0} recent requests fail, but at a steady load its errors come with its longest waits (r = {:.2}): a queue that overflows now and then, not a bad subset, and moving its traffic would make its peers' queues overflow instead",
                e_i * 100.0,
                trend.with_latency.unwrap_or(f64::NAN)
            ),
            0.5,
        )
    } else if failing && trend.load_driven() {
        (
            Health::Busy,
            format!(
                "{:.2}% of its {n_i:.0} recent requests fail, but its errors rise with the requests it serves (r = {:.2}) and its latency (r = {:.2}): an overloaded subset, not a bad one, and moving its traffic would move the load",
                e_i * 100.0,
                trend.with_load.unwrap_or(f64::NAN),
                trend.with_latency.unwrap_or(f64::NAN)
            ),
            0.5,
        )
    } else if worse_than_peers {
        (
            Health::Bad,
            format!(
                "{:.2}% of its {n_i:.0} recent requests fail against {:.2}% for its peers and a {:.2}% budget (chance {tail_bad:.1e})",
                e_i * 100.0,
                e_rest * 100.0,
                budget * 100.0
            ),
            1.0 - tail_bad,
        )
    } else if slow {
        (
            Health::Bad,
            format!(
                "its p99 latency is {:.0} ms, over the {:.0} ms objective and an outlier against its peers' {:.0} ms",
                p99_i.unwrap_or(0.0) * 1000.0,
                p99_obj * 1000.0,
                p99_rest.unwrap_or(0.0) * 1000.0
            ),
            latency_peer_score,
        )
    } else if worse_than_itself {
        (
            Health::Bad,
            format!(
                "its error rate {:.2}% is anomalous against its own history (score {history:.2})",
                e_i * 100.0
            ),
            history,
        )
    } else if tail_peers > ALPHA_RECOVERED && !over_budget {
        (
            Health::Healthy,
            "within budget and in line with its peers".into(),
            tail_peers,
        )
    } else {
        (Health::Watch, "borderline: watching".into(), 0.5)
    };
    Judged {
        health,
        slow,
        evidence,
        why,
        confidence,
    }
}

/// Whether a subset's p99 has been over the objective for most of the trend (its p99 read for
/// a comparison, `window::comparable_p99`, over the last `window::TREND` points rather than the
/// recent ones): a slow subset, whose errors may well come with its waits
/// (requests that time out are its slowest), is not an overflowing queue. An overflowing one is
/// slow only in its bursts: the recent points' p99 may pass the objective in a burst (seen on
/// a random mesh: a one-pod subset whose queue overflowed, its median p99 over the last 4
/// points 203 ms against a 143 ms objective, lost 20 % of the traffic to its one-pod peer,
/// which then overflowed for the rest of the run: 21 SLO minutes against Istio's 0).
fn slow_all_along(s: &Signals, objective: f64, step_seconds: i64) -> bool {
    window::comparable_p99(s, window::TREND, step_seconds).is_some_and(|m| m > objective)
}

/// Whether a subset's errors since the last weights move (its settled points, the newest
/// `window::TREND` of them at most), not its recent points alone, are calm against the budget
/// (binomial tail > `ALPHA_CALM_SINCE_CUT`): what giving a cut subset its traffic back asks besides
/// `Health::Healthy`. A cut subset serves less, so its recent points hold fewer requests than
/// the window that found it bad, and a subset still failing shows no more errors than the
/// budget allows in a short window often enough to be given its traffic back and cut again
/// (module docs, worked example; seen on a canary failing 0.3 % at half the traffic: cut
/// 50 → 30 → 10 %, given back to 30 % at 1,890 s on a recent minute within budget, cut again at
/// 2,280 s). Since the move, not over a fixed trend: what it did at the weight it had before
/// is what the cut answered, and a subset that failed only because of the load the cut took
/// away (a one-slot subset whose queue overflowed, `known-harm/h83-slowpod-150` at `--seed 2`)
/// must get its traffic back on what it does now — held back by its errors from before the
/// cut, it lost it for good and that mesh 19 SLO minutes against 3. With no settled point yet
/// nothing is known, and nothing goes back. A receiver of traffic is judged on the recent
/// points alone: a move waits for nothing.
fn calm_since_the_move(ctx: &Ctx<'_>, moved_at: Option<i64>, name: &str) -> bool {
    let budget = 1.0 - ctx.spec.objectives.success_rate;
    let step = ctx.obs.step_seconds;
    let Some(s) = ctx.obs.subsets.iter().find(|s| s.name == name) else {
        return false;
    };
    let settled = window::after_change(&s.signals.success_rate, ctx.obs.end, step, moved_at)
        .len()
        .min(window::TREND);
    settled > 0
        && window::error_rate(&s.signals, settled, step)
            .is_none_or(|(e, n)| window::binomial_tail(e * n, n, budget) > ALPHA_CALM_SINCE_CUT)
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

/// Moves whole percents from `from` subsets to `to` subsets: each giver loses at most `step`
/// and stops at `floor` (a giver already at or below the floor gives nothing), each receiver
/// gains at most its own limit (`receivers`). Units move one at a time, so the total stays
/// what it was.
fn move_units(
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
fn receivers<'a>(
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

fn subset_signals<'o>(ctx: &Ctx<'o>, name: &str) -> Option<&'o Signals> {
    ctx.obs
        .subsets
        .iter()
        .find(|s| s.name == name)
        .map(|s| &s.signals)
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
    ctx.obs
        .subsets
        .iter()
        .find(|s| s.name == name)
        .is_some_and(|s| {
            window::recent_mean(&s.signals.utilization, RECENT).is_some()
                && window::recent_mean(settled(ctx, moved_at, &s.signals.utilization), RECENT)
                    .is_none()
        })
}

/// The note for a move that capacity stops: every destination is already as busy as its limit
/// allows (the CPU ceiling, or the load at which its p99 would pass the objective), or has not
/// yet shown the load the last move left it.
fn no_room(ctx: &Ctx<'_>, moved_at: Option<i64>, to: &[&str]) -> Finding {
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
