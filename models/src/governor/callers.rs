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
    /// Their slowest recent p99 (seconds), if reported.
    pub(super) p99: Option<f64>,
}

/// What the callers see, where it meets both objectives: the success rate at or above its
/// objective and the recent p99 (the median of the points', see the header) within the latency
/// objective (retries add their back-off and the failed try's time to a call, which the
/// server's p99 does not show). `None` when it does not, or when that side is not reported; a
/// p99 not reported, or from points of too few calls, leaves the success rate to decide.
pub(super) fn objectives_met(ctx: &Ctx<'_>) -> Option<Met> {
    let objectives = &ctx.spec.objectives;
    let callers = &ctx.obs.callers;
    let (e, _) = window::error_rate(callers, RECENT, ctx.obs.step_seconds)?;
    let p99 = window::comparable_p99(callers, RECENT, ctx.obs.step_seconds);
    let seen = Met {
        success: 1.0 - e,
        p99,
    };
    let p99_met = p99.is_none_or(|p| p <= objectives.latency_p99.as_secs_f64());
    (seen.success >= objectives.success_rate && p99_met).then_some(seen)
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
        format!(
            "the callers see {:.3}% success, within the {:.3}% objective, {latency}",
            self.success * 100.0,
            objectives.success_rate * 100.0,
        )
    }

    /// The evidence a finding built on it carries.
    pub(super) fn evidence(&self) -> [super::plan::Evidence; 2] {
        [
            super::plan::Evidence::new("caller_success_rate", self.success),
            super::plan::Evidence::new("caller_p99_seconds", self.p99.unwrap_or(f64::NAN)),
        ]
    }
}
