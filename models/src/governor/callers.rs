//! What the callers see, and whether it meets the policy's objectives.
//!
//! Every planner's first signals are the server's: it counts tries. The objectives are about
//! calls — one request per call as the callers' proxies report it (`Observation::callers`,
//! `reporter="source"`), retries folded in, its latency the call's whole time. Behind retries
//! the two differ: an endpoint failing 44 % of its tries with 503 behind Istio's two default
//! retries to other hosts fails almost no call.
//!
//! Where the callers see both objectives met — their recent success rate at or above its
//! objective and their recent p99 within the latency objective — moving traffic (ejecting an
//! endpoint, shifting a subset's weight) away from errors cannot make the objectives better
//! met; it can only put that traffic on the rest, whose queues may not have the room the
//! Governor's queueing model believes (it has no finite queue). The outlier and weights
//! planners then leave the errors alone with a note. Where the callers' side is not reported
//! (no caller inside the mesh, or the bundled proxies' direct path, which reads the servers
//! only), this says nothing and the planners go by the server's side alone.
//!
//! The success objective is a rate, and a rate needs calls enough to show it: `1 / budget` are
//! the fewest in which a single failure is no more than the budget (1,000 at 99.9 %). The
//! success rate is read over the recent points, or, where they hold fewer calls than that, over
//! as many of the trend's points as it takes (`window::error_rate_resolving`); where even the
//! trend holds fewer, a single failed call is what the objective allows over the calls it
//! needs, and is read as met. Seen on two random meshes of the no-harm search, both with a
//! subset failing behind Istio's retries and a peer subset five to six times slower: at 2
//! calls/s one failed call among the 40 of the recent four 5 s points read as 97.5 % against a
//! 99 % objective (`simulator/scenarios/known-harm/h84-two-faults-slow-peer.yaml`), and at 3
//! calls/s one among 300 as 99.67 % against 99.9 % (`h84-two-faults-slow-peer-2.yaml`), while the
//! callers got 99.97 % and 99.98 % over the runs; traffic was moved onto the slow subset each
//! time, costing SLO minutes Istio's defaults did not lose.
//!
//! The p99 is read as every window's p99 is read for a comparison (`window::comparable_p99`):
//! the median of the recent points' p99s, from points of at least 100 calls. Not the slowest
//! point's: a 5 s point of about 1,000 calls has its p99 in its ten slowest, and one queue
//! overflow among them put one point's p99 at 184 ms beside three of 82–85 ms against a 118 ms
//! objective (`simulator/scenarios/known-harm/h88-overflow.yaml`).

use super::Ctx;
use super::window::{self, RECENT};

/// What the callers see when it meets the objectives.
#[derive(Debug, Clone, Copy)]
pub(super) struct Met {
    /// Their recent success rate.
    pub(super) success: f64,
    /// The calls it was read over: fewer than `1 / budget` where one failure was let pass.
    pub(super) calls: f64,
    /// Their recent p99 (seconds; the median of the recent points'), if reported.
    pub(super) p99: Option<f64>,
}

/// Failed calls that count as one: the counts are rates × step, so one failure can come back
/// as 1.0000000000000002.
const ONE_CALL: f64 = 1.0 + 1e-6;

/// What the callers see, where it meets both objectives: the success rate at or above its
/// objective and the recent p99 (the median of the points', see the header) within the latency
/// objective (retries add their back-off and the failed try's time to a call, which the
/// server's p99 does not show). `None` when it does not, or when that side is not reported; a
/// p99 not reported, or from points of too few calls, leaves the success rate to decide.
pub(super) fn objectives_met(ctx: &Ctx<'_>) -> Option<Met> {
    let objectives = &ctx.spec.objectives;
    let callers = &ctx.obs.callers;
    let budget = 1.0 - objectives.success_rate;
    let (e, calls) = window::error_rate_resolving(callers, ctx.obs.step_seconds, budget)?;
    let p99 = window::comparable_p99(callers, RECENT, ctx.obs.step_seconds);
    let seen = Met {
        success: 1.0 - e,
        calls,
        p99,
    };
    let success_met = if resolves(budget, calls) {
        seen.success >= objectives.success_rate
    } else {
        e * calls <= ONE_CALL
    };
    let p99_met = p99.is_none_or(|p| p <= objectives.latency_p99.as_secs_f64());
    (success_met && p99_met).then_some(seen)
}

/// Whether `calls` are enough to tell a rate from the error `budget`: at least `1 / budget`
/// (no count tells a budget of zero, an objective of 100 %, so every failure counts there).
fn resolves(budget: f64, calls: f64) -> bool {
    budget <= 0.0 || calls * budget >= 1.0
}

impl Met {
    /// For people: "the callers see 99.995% success, within the 99.900% objective, and a 75 ms
    /// p99, within 118 ms".
    pub(super) fn describe(&self, ctx: &Ctx<'_>) -> String {
        let objectives = &ctx.spec.objectives;
        let latency = match self.p99 {
            Some(p) => format!(
                "and a {:.0} ms p99, within {:.0} ms",
                p * 1e3,
                objectives.latency_p99.as_secs_f64() * 1e3
            ),
            None => "their p99 not reported or from too few calls a point to be one".to_string(),
        };
        let budget = 1.0 - objectives.success_rate;
        if resolves(budget, self.calls) {
            format!(
                "the callers see {:.3}% success, within the {:.3}% objective, {latency}",
                self.success * 100.0,
                objectives.success_rate * 100.0,
            )
        } else {
            format!(
                "the callers see {:.0} failed of {:.0} calls, no more than the one failure the {:.3}% objective allows in the {:.0} calls it takes to tell, {latency}",
                (1.0 - self.success) * self.calls,
                self.calls,
                objectives.success_rate * 100.0,
                (1.0 / budget).ceil()
            )
        }
    }

    /// The evidence a finding built on it carries.
    pub(super) fn evidence(&self) -> [super::plan::Evidence; 2] {
        [
            super::plan::Evidence::new("caller_success_rate", self.success),
            super::plan::Evidence::new("caller_p99_seconds", self.p99.unwrap_or(f64::NAN)),
        ]
    }
}
