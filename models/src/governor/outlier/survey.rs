//! Which endpoints are outliers: the incident the outlier planner (the parent module) answers.
//!
//! An incident is errors *concentrated* on some endpoints, never "the service is over its error
//! budget" alone. An endpoint is an outlier when (1) its recent errors would happen by chance
//! at most `ALPHA_OUTLIER` of the time at p₀ = max(the other endpoints' rate, the budget)
//! (binomial) and, since the others' rate is measured too, as rarely given each point's
//! requests and errors in all, drawn by the endpoint's share of the requests (hypergeometric,
//! `peers`), and (2) the endpoints that are not outliers, pooled, are not significantly over
//! the budget (`concentrated`): ejecting the outliers would bring the service back within its
//! objective. "The other endpoints" are those of its Envoy cluster — its subset
//! (`clusters`): Envoy ejects a host within its cluster and sends the ejected host's traffic to
//! that cluster's others, so those are the peers that must be healthy and have the room for its
//! traffic (`capacity`). And they are
//! compared at the same moments (`compared`): the peers' rate at each recent point, weighted
//! by the endpoint's own requests there, so that a pod that served through a surge is not an
//! outlier against pods started after it. In an overload every endpoint fails alike (full
//! queues answer 503 everywhere), so (2) fails and nothing is tightened: a lower
//! `consecutive5xxErrors` would eject healthy but busy pods, and each ejection moves its load
//! onto the rest — less capacity in an overload, a cascade.
//!
//! (3) The callers must see the errors. Every other signal here is the server's count of
//! tries; a retry goes to another host, so behind retries an endpoint failing 44 % of its
//! tries may fail almost no call. Where the callers' proxies report both objectives met
//! (`Observation::callers`: success rate, and p99 of the whole call, retries' back-off
//! included; `callers`), ejecting could not make them better met and would move the endpoint's
//! successful traffic onto its peers, and the endpoints are left alone with a note (seen on a
//! random mesh: one pod of two, failing 44 % with 503 behind Istio's default retries, was
//! ejected onto its peer, whose queue then overflowed: 24 SLO minutes against Istio's 0).
//! Where that side is not reported, (1) and (2) decide alone.
//!
//! This is Envoy's own notion. Its success-rate ejection is relative to the peers: a host is
//! ejected when its success rate is below mean − f·stdev over the hosts (f =
//! `success_rate_stdev_factor` / 1000, default 1.9; at least `success_rate_minimum_hosts` = 5
//! hosts with `success_rate_request_volume` = 100 requests each), so hosts degrading together
//! (a small stdev around a falling mean) are not outliers, however low the mean. Its exact form
//! is not used here, for two reasons worked out from it. With one host d below n − 1 identical
//! peers, mean = peers − d/n and stdev = d·√(n−1)/n, so the host sits √(n−1) stdevs below the
//! mean whatever d is: f = 1.9 cannot eject anything below 5 hosts (√3 = 1.73; hence Envoy's
//! minimum of 5), and services of 2–4 pods are common. And several bad hosts mask each other:
//! 3 of 8 at 40% success and 5 at 100% give mean 77.5%, stdev 29.05% (over the hosts, as Envoy
//! computes it), threshold 77.5 − 1.9·29.05 = 22.3%, and none
//! is ejected. The leave-one-out binomial test (1) judges each host against its peers at any n,
//! and (2) keeps Envoy's "relative to the peers" meaning: the peers must be healthy.

use std::collections::BTreeMap;

use crate::governor::Ctx;
use crate::governor::callers;
use crate::governor::capacity;
use crate::governor::clusters;
use crate::governor::window::{self, RECENT};

use super::peers::compared;

/// An endpoint is an outlier when its recent errors would happen by chance at most this often
/// at p₀ = max(the other endpoints' rate, the error budget).
const ALPHA_OUTLIER: f64 = 1e-6;

/// What the survey finds: the outliers, the endpoints held back and why, and the healthy
/// endpoints' base rate the setting is derived from.
pub(super) struct Endpoints {
    pub(super) count: usize,
    pub(super) outliers: Vec<String>,
    /// Endpoints significantly worse than the rest of their cluster that were not counted as
    /// outliers because that rest fails too (`concentrated`), with the rest's recent error
    /// rate (pooled over the clusters where this held).
    pub(super) spread: Option<(Vec<String>, f64)>,
    /// Endpoints that would be outliers but whose errors the callers do not see (their
    /// retries absorb them), with what the callers see.
    pub(super) hidden: Option<(Vec<String>, callers::Met)>,
    /// Per cluster, endpoints that would be outliers but whose ejection would put the rest of
    /// their cluster past the capacity ceiling (`capacity`).
    pub(super) no_room: Vec<NoRoom>,
    pub(super) base_rate: f64,
    /// Errors the base rate was measured from (rate × step summed, so fractional).
    pub(super) base_errors: f64,
    pub(super) rate_per_endpoint: f64,
}

/// Outliers left in place because the rest of their cluster could not carry what they serve.
#[derive(Debug)]
pub(super) struct NoRoom {
    pub(super) endpoints: Vec<String>,
    /// Whether load may explain their errors (they are at least as busy as the rest).
    pub(super) busy: bool,
    /// Requests per second the rest would take on.
    pub(super) moved_rps: f64,
    /// The rest's projected CPU utilisation with them.
    pub(super) after: f64,
}

/// One endpoint's recent data, as the survey judges it.
struct Ep<'a> {
    name: &'a str,
    /// Its cluster (`clusters::key`): the peers it is judged against and whose load its
    /// ejection would raise.
    cluster: Option<&'a str>,
    /// Errors and requests at each of the `RECENT` newest points (`window::error_counts`).
    points: Vec<Option<(f64, f64)>>,
    /// Those points pooled: (error rate, requests).
    recent: (f64, f64),
    whole: (f64, f64),
    rps: f64,
    utilization: Option<f64>,
}

/// Each endpoint is judged within its cluster (`clusters`): against its peers there, and it is
/// those peers that must be healthy and have the room to take its traffic. Judged over the whole
/// service, a subset's one pod refusing a surge its 2 slots could not take was an outlier
/// against another subset's idle pods, though ejecting it could only have sent its traffic to
/// its own subset's other pod, failing too (`h112-two-faults-ejected-in-a-surge`).
pub(super) fn survey(ctx: &Ctx<'_>) -> Option<Endpoints> {
    let obs = ctx.obs;
    let budget = 1.0 - ctx.spec.objectives.success_rate;
    let data: Vec<Ep<'_>> = obs
        .endpoints
        .iter()
        .filter_map(|e| {
            let points = window::error_counts(&e.signals, RECENT, obs.step_seconds);
            let recent = window::pooled(&points)?;
            let whole = window::error_rate(&e.signals, usize::MAX, obs.step_seconds)?;
            let rps = window::recent_mean(&e.signals.request_rate, RECENT)?;
            Some(Ep {
                name: e.name.as_str(),
                cluster: clusters::key(e),
                points,
                recent,
                whole,
                rps,
                utilization: window::recent_mean(&e.signals.utilization, RECENT),
            })
        })
        .collect();
    if data.len() < 2 {
        return None;
    }
    // Errors and requests per cluster at each recent point, for each endpoint's leave-one-out
    // comparison at the same moments (`compared`).
    let mut totals: BTreeMap<Option<&str>, Vec<(f64, f64)>> = BTreeMap::new();
    for d in &data {
        let t = totals
            .entry(d.cluster)
            .or_insert_with(|| vec![(0.0, 0.0); RECENT]);
        for (sum, point) in t.iter_mut().zip(&d.points) {
            if let Some((e, n)) = point {
                *sum = (sum.0 + e, sum.1 + n);
            }
        }
    }
    let mut outlier = vec![false; data.len()];
    for (d, is) in data.iter().zip(outlier.iter_mut()) {
        let Some(t) = totals.get(&d.cluster) else {
            continue;
        };
        let Some(c) = compared(&d.points, t) else {
            continue;
        };
        let p0 = window::smoothed_rate(c.peer_rate, c.peer_requests).max(budget);
        // The cheap test first: the conditional one convolves a hypergeometric per point.
        *is = c.errors > budget * c.requests
            && window::binomial_tail(c.errors, c.requests, p0) <= ALPHA_OUTLIER
            && c.tail_given_totals() <= ALPHA_OUTLIER;
    }
    let names = |flags: &[bool], cluster: Option<Option<&str>>| -> Vec<String> {
        data.iter()
            .zip(flags)
            .filter(|(d, is)| **is && cluster.is_none_or(|c| d.cluster == c))
            .map(|(d, _)| d.name.to_string())
            .collect()
    };
    let with_outliers = |flags: &[bool]| -> Vec<Option<&str>> {
        let mut keys: Vec<Option<&str>> = data
            .iter()
            .zip(flags)
            .filter(|(_, is)| **is)
            .map(|(d, _)| d.cluster)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    // Concentration, per cluster: an outlier is worse than its peers *and* its peers meet the
    // objective.
    let mut spread_names = Vec::new();
    let (mut spread_err, mut spread_n) = (0.0, 0.0);
    for cluster in with_outliers(&outlier) {
        let rest: Vec<(f64, f64)> = data
            .iter()
            .zip(&outlier)
            .filter(|(d, is)| d.cluster == cluster && !**is)
            .map(|(d, _)| d.recent)
            .collect();
        if concentrated(&rest, budget) {
            continue;
        }
        spread_names.extend(names(&outlier, Some(cluster)));
        for (r, c) in rest {
            (spread_err, spread_n) = (spread_err + r * c, spread_n + c);
        }
        for (d, is) in data.iter().zip(outlier.iter_mut()) {
            *is &= d.cluster != cluster;
        }
    }
    let spread = (!spread_names.is_empty()).then(|| {
        let rate = if spread_n > 0.0 {
            spread_err / spread_n
        } else {
            1.0
        };
        (spread_names, rate)
    });
    // What the callers see: where their proxies report both objectives met, the outliers'
    // errors are absorbed already (a retry goes to another host) and ejecting could not make
    // the callers' objectives better met, only move traffic onto the rest (see the header).
    let mut hidden = None;
    if outlier.contains(&true)
        && let Some(success) = callers::objectives_met(ctx)
    {
        hidden = Some((names(&outlier, None), success));
        outlier.fill(false);
    }
    // Capacity, per cluster: ejecting the outliers moves onto the rest of their cluster the
    // requests they serve now. Where load may explain their errors (they are at least as busy
    // as the rest), all of their traffic moves: the errors are the overload's. Otherwise at
    // least their successes move: a request they fail is retried on the rest already (an Envoy
    // retry goes to another host of the cluster) or, if not retried, becomes one more request
    // for the rest. Where even that would put the rest past the ceiling, ejecting would
    // overload the rest (`capacity`).
    let mut no_room = Vec::new();
    // The CPU ceiling only, not the latency limit of weights moves (`capacity`).
    let limit = capacity::cpu_limit(ctx);
    for cluster in with_outliers(&outlier) {
        let members = |outliers: bool| -> Vec<&Ep<'_>> {
            data.iter()
                .zip(&outlier)
                .filter(|(d, is)| d.cluster == cluster && **is == outliers)
                .map(|(d, _)| d)
                .collect()
        };
        let (out, rest) = (members(true), members(false));
        let mean = |eps: &[&Ep<'_>]| {
            let u: Vec<f64> = eps.iter().filter_map(|d| d.utilization).collect();
            (!u.is_empty()).then(|| u.iter().sum::<f64>() / u.len() as f64)
        };
        let (u_out, u_rest) = (mean(&out), mean(&rest));
        let busy = capacity::load_may_explain(u_out, u_rest);
        let moved_rps: f64 = out
            .iter()
            .map(|d| d.rps * capacity::load_per_point(busy, d.recent.0))
            .sum();
        let rest_rps: f64 = rest.iter().map(|d| d.rps).sum();
        if let Some(after) = capacity::overload_after(limit, u_rest, rest_rps, moved_rps) {
            no_room.push(NoRoom {
                endpoints: names(&outlier, Some(cluster)),
                busy,
                moved_rps,
                after,
            });
            for (d, is) in data.iter().zip(outlier.iter_mut()) {
                *is &= d.cluster != cluster;
            }
        }
    }
    // The base rate is a baseline: estimated over the whole window and only from endpoints that
    // are not outliers, so one bad pod does not make every healthy pod look error-prone.
    let healthy: Vec<&Ep<'_>> = data
        .iter()
        .zip(&outlier)
        .filter(|(_, is)| !**is)
        .map(|(d, _)| d)
        .collect();
    let (h_err, h_n) = healthy.iter().fold((0.0, 0.0), |(e, n), d| {
        (e + d.whole.0 * d.whole.1, n + d.whole.1)
    });
    let rates: Vec<f64> = healthy.iter().map(|d| d.rps).collect();
    Some(Endpoints {
        count: data.len(),
        outliers: names(&outlier, None),
        spread,
        hidden,
        no_room,
        base_rate: window::smoothed_rate(if h_n > 0.0 { h_err / h_n } else { 0.0 }, h_n),
        base_errors: h_err,
        rate_per_endpoint: crate::stats::median(&rates).unwrap_or(0.0),
    })
}

/// Whether errors are concentrated on the endpoints left out of `rest`: the remaining
/// endpoints, pooled — `(recent error rate, requests)` each — are not significantly over the
/// error budget (the same binomial test at `OVER_BUDGET_ALPHA` that judges the service), so
/// that ejecting the others would bring the service back within its objective. Without any
/// remaining endpoint, nothing is concentrated: there is no healthy peer to send traffic to.
pub fn concentrated(rest: &[(f64, f64)], budget: f64) -> bool {
    let (errors, requests) = rest
        .iter()
        .filter(|(r, n)| r.is_finite() && n.is_finite() && *n > 0.0)
        .fold((0.0, 0.0), |(e, n), (r, c)| {
            (e + r.clamp(0.0, 1.0) * c, n + c)
        });
    if requests <= 0.0 {
        return false;
    }
    errors / requests <= budget
        || window::binomial_tail(errors, requests, budget) > window::OVER_BUDGET_ALPHA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_concentrated_only_when_the_rest_meet_the_objective() {
        let budget = 0.001;
        // Healthy rest: 36,000 requests at 0.05% = 18 errors, under the 0.1% budget.
        assert!(concentrated(
            &[(0.0005, 18_000.0), (0.0005, 18_000.0)],
            budget
        ));
        // A noisy rest: 3,000 requests at 0.13% = 3.9 ≈ 4 errors against 3 expected at the
        // budget; P(X ≥ 4 | n = 3000, p = 0.001) ≈ 0.35 > 10⁻³: not significantly over.
        assert!(concentrated(&[(0.0013, 3_000.0)], budget));
        // Rest over budget: 36,000 requests at 0.2% = 72 errors against 36 expected, 6
        // standard deviations over (σ = √36 = 6): the tail is ~10⁻⁸ ≤ 10⁻³.
        assert!(!concentrated(&[(0.002, 36_000.0)], budget));
        // An overload: the rest fail 40% of 32,400 requests.
        assert!(!concentrated(&[(0.4, 10_800.0); 3], budget));
        // No rest at all, or only points without traffic: no healthy peer, not concentrated.
        assert!(!concentrated(&[], budget));
        assert!(!concentrated(&[(0.0, 0.0), (f64::NAN, 5.0)], budget));
    }
}
