//! Slow endpoints: one pod whose latency drifts away from its peers' (a leak, GC pressure, a
//! noisy neighbour) while it never returns an error.
//!
//! No knob the policy controls removes such a pod: outlier detection ejects on 5xx only (Istio's
//! `outlierDetection` has no latency trigger), weights move traffic between subsets, not between
//! the pods of one, and a per-try timeout under the usual `retryOn` (no `5xx`/`gateway-error`/
//! `reset`) turns a slow answer into a failed one instead of a retried one. So the Governor
//! detects and says so, with the numbers, for a human (or a remediation alert) to drain or
//! restart the pod; it does not pretend a knob fixes it.
//!
//! Test per endpoint, on the mean of its recent p99s: an outlier against the other endpoints
//! (`detect::peer::compare`, leave-one-out robust z, score ≥ 0.99) *and* at least twice their
//! median p99 (a pod twice as slow as its peers matters whatever the spread) *and* over the p99
//! objective, so that a fast service with one slightly slower pod is not reported.
//!
//! Worked example: peers at 90, 95, 100 ms, pod 1 at 450 ms, objective 400 ms: median 95 ms,
//! 450/95 = 4.7 ≥ 2, over 400 ms, robust z far beyond the score threshold ⇒ reported.

use super::Ctx;
use super::plan::{Evidence, Finding, FindingKind};
use super::window::{self, RECENT};

const PEER_SCORE: f64 = 0.99;
const RATIO: f64 = 2.0;

/// Findings for endpoints much slower than their peers (none when fewer than 3 report latency:
/// with two, which one is "the slow one" is a matter of opinion).
pub fn slow_endpoints(ctx: &Ctx<'_>, findings: &mut Vec<Finding>) {
    let obs = ctx.obs;
    let objective = ctx.spec.objectives.latency_p99.as_secs_f64();
    let p99s: Vec<f64> = obs
        .endpoints
        .iter()
        .map(|e| window::recent_mean(&e.signals.latency_p99, RECENT).unwrap_or(f64::NAN))
        .collect();
    // A finding needs an endpoint over the objective, so without one the peer comparison (a
    // 2-means fit per call) is skipped: it would only be discarded.
    if p99s.iter().filter(|p| p.is_finite()).count() < 3 || !p99s.iter().any(|&p| p > objective) {
        return;
    }
    let features: Vec<Vec<f64>> = p99s.iter().map(|p| vec![*p]).collect();
    for f in crate::detect::peer::compare(&features) {
        let Some((ep, &p99)) = obs.endpoints.get(f.index).zip(p99s.get(f.index)) else {
            continue;
        };
        let others: Vec<f64> = p99s
            .iter()
            .enumerate()
            .filter(|(i, p)| *i != f.index && p.is_finite())
            .map(|(_, p)| *p)
            .collect();
        let Some(peer) = crate::stats::median(&others) else {
            continue;
        };
        // Written positively so that a NaN p99 is never "slow".
        let slow = f.score >= PEER_SCORE && p99 >= RATIO * peer && p99 > objective;
        if !slow {
            continue;
        }
        findings.push(Finding {
            kind: FindingKind::Anomaly,
            subject: format!("endpoint {}", ep.name),
            summary: format!(
                "endpoint {}: p99 {:.0} ms, {:.1}× its peers' {:.0} ms and over the {:.0} ms objective, without errors; outlier detection ejects on 5xx only and weights act per subset, so no knob in this policy removes it: drain or restart the pod",
                ep.name,
                p99 * 1e3,
                p99 / peer,
                peer * 1e3,
                objective * 1e3
            ),
            evidence: vec![
                Evidence::new("latency_p99_s", p99),
                Evidence::new("peer_latency_p99_s", peer),
                Evidence::new("latency_peer_score", f.score),
                Evidence::new("objective_p99_s", objective),
            ],
        });
    }
}
