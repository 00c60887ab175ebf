//! One subset's health, as the weights planner reads it (the parent module's docs give the
//! rules and a worked example): `Bad` when its errors are significantly over its peers' and
//! the budget, or anomalous against its own history while over the budget, or its p99 is over
//! the objective and an outlier against its peers'; `Busy` when load may explain its errors;
//! `Healthy` only when within budget and unremarkable against its peers; `Unknown` without
//! recent data or peers to compare with; else `Watch`.

use super::{WeightsState, subset_signals};
use crate::governor::Ctx;
use crate::governor::observation::Signals;
use crate::governor::plan::Evidence;
use crate::governor::window::{self, RECENT};

const ALPHA_BAD: f64 = 1e-6;
const ALPHA_RECOVERED: f64 = 0.01;
/// A cut subset's errors since the last weights move must be calm against the budget before it
/// gets traffic back: binomial tail > 0.1, the conventional "not even suggestive" level (the
/// detectors' end-of-incident rule, `detect::ensemble`'s `CALM_SCORE`), where merely
/// "unremarkable" (> `ALPHA_RECOVERED`) leaves a subset still failing a good chance to pass
/// (the parent module's docs, worked example).
const ALPHA_CALM_SINCE_CUT: f64 = 0.1;
const HISTORY_BAD: f64 = 0.99;
/// Peer score (detect::peer, on p99) above which a subset over the latency objective is slow.
const LATENCY_PEER_BAD: f64 = 0.99;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
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

pub(super) struct Judged {
    pub(super) health: Health,
    /// Its p99 is over the objective and an outlier against its peers', whatever decided
    /// `health`: slowness no retry absorbs (see [`super::plan`]).
    pub(super) slow: bool,
    pub(super) evidence: Vec<Evidence>,
    pub(super) why: String,
    pub(super) confidence: f64,
}

/// Each reported subset's p99 for comparing peers (`window::comparable_p99`), in report order,
/// computed once per run for every judgement.
pub(super) type SubsetP99s<'a> = Vec<(&'a str, Option<f64>)>;

pub(super) fn judge(
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
    let signals = |n: &str| subset_signals(ctx, n).unwrap_or(&empty);
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
/// (the parent module's docs, worked example; seen on a canary failing 0.3 % at half the traffic: cut
/// 50 → 30 → 10 %, given back to 30 % at 1,890 s on a recent minute within budget, cut again at
/// 2,280 s). Since the move, not over a fixed trend: what it did at the weight it had before
/// is what the cut answered, and a subset that failed only because of the load the cut took
/// away (a one-slot subset whose queue overflowed, `known-harm/h83-slowpod-150` at `--seed 2`)
/// must get its traffic back on what it does now — held back by its errors from before the
/// cut, it lost it for good and that mesh 19 SLO minutes against 3. With no settled point yet
/// nothing is known, and nothing goes back. A receiver of traffic is judged on the recent
/// points alone: a move waits for nothing.
pub(super) fn calm_since_the_move(ctx: &Ctx<'_>, moved_at: Option<i64>, name: &str) -> bool {
    let budget = 1.0 - ctx.spec.objectives.success_rate;
    let step = ctx.obs.step_seconds;
    let Some(s) = subset_signals(ctx, name) else {
        return false;
    };
    let settled = window::after_change(&s.success_rate, ctx.obs.end, step, moved_at)
        .len()
        .min(window::TREND);
    settled > 0
        && window::error_rate(s, settled, step)
            .is_none_or(|(e, n)| window::binomial_tail(e * n, n, budget) > ALPHA_CALM_SINCE_CUT)
}
