//! Autoscaling: provision now for the demand the forecast says may arrive before a new pod is
//! ready, sized by queueing so the latency objective holds at the forecast's upper bound.
//!
//! 1. One pod, measured from what is observed now (`pod`): its capacity μ = λ_ok / (c·u) and
//!    its slots by Little's law, so the service is an M/M/(c·slots) queue.
//! 2. The low-load p99 plus the Erlang-C p99 wait is the p99 at a given demand (`pod::Latency`).
//! 3. Demand ahead: the forecast's upper bound over the horizon (pod start-up time plus one loop
//!    interval, or `forecastHorizon` when start-up is unknown).
//! 4. Replicas needed: the fewest c for which the low-load p99 plus the Erlang-C p99 wait stays
//!    under the objective at that upper bound.
//! 5. The HPA gives c = λ/(μ·T) replicas for target T, so T = λ_now/(μ·c_needed) makes it scale to
//!    c_needed now, ahead of the demand. When T would fall below the policy's lower bound,
//!    `minReplicas` rises instead ("when warranted").
//!
//! Only a shortfall (the HPA would give fewer replicas than needed at the upper bound) protects,
//! aiming one pod beyond the need. Relaxing gives back only what the Governor added, towards the
//! setting it found, as far as keeps the worst need of the last 10 minutes covered with a pod to
//! spare (the HPA's own scale-down
//! stabilisation idea), so a noisy forecast cannot make it flap; and only after a calm at least
//! twice as long as the longest calm after which a shortfall has come back, so that recurring
//! surges do not make the target toggle at every surge (nab-elb: 40% ↔ 70% every 20–60 min).
//!
//! Service time: the lowest median latency of the window, not the newest. Under saturation the
//! median response time is mostly queueing (surge-5x: 40 ms of work behind a 32-deep queue),
//! and taking it as the service time multiplies the per-pod concurrency estimate μ·S by the
//! queueing factor: the model then sees a pod with dozens of slow slots instead of 4 fast ones,
//! whose M/M/c wait is far lower, and so under-sizes exactly when sizing matters.

use statrs::distribution::{ContinuousCDF, Normal};

use super::Ctx;
use super::observation::HpaConfig;
use super::plan::{Change, Evidence, Finding, FindingKind, Knob, KnobValue, Origin, Posture};
use super::pod::{self, PodModel};
use super::window::{self, RECENT};
use crate::forecast::Forecaster;

/// Points of demand the fallback forecaster fits (5 minutes at 15 s): short, so that a line
/// through a regime change (flat, then a surge) follows the surge instead of averaging it away.
const HISTORY: usize = 20;
const MAX_HORIZON_SECONDS: f64 = 3600.0;

/// Runs whose worst need a relaxation must still cover (10 minutes at 15 s), as the HPA's own
/// scale-down stabilisation window does.
const STABILISATION_RUNS: usize = 40;

/// The HPA's default tolerance: no scaling while utilisation is within 10% of the target.
const HPA_TOLERANCE: f64 = 0.1;
/// Calm needed before the target is raised (an hour): a raise only saves pods, so it can wait
/// until the demand has shown it has no surge the forecast cannot see coming (surge-5x: a
/// raise 10 minutes in met a 5× step 5 minutes later, and was rolled back into the surge).
const SETTLE_SECONDS: i64 = 3600;
/// The smallest raise of the target worth a change, in percentage points.
const MIN_RAISE: u32 = 5;
/// Between two raises of the target, a day: a raise is checked against the demand growth of
/// the last hour, so the setting it made must go through a whole daily cycle of demand, its
/// peak included, before the next builds on it. Without it, each hour's narrower forecast
/// "held" a few more points (seen on a calm 4 h mesh with a one-pod floor: 70 → 76 % at
/// 4,455 s, 76 → 81 % at 13,650 s, the second freeing no pod), against issue 7's rule of at
/// most one action per simulated day on a clean mesh.
const RAISE_INTERVAL_SECONDS: i64 = 86_400;

#[derive(Default)]
pub struct AutoscalingState {
    forecaster: Option<Box<dyn Forecaster>>,
    tried_registry: bool,
    history: std::collections::VecDeque<f64>,
    /// The HPA setting before the Governor first added headroom: what relaxing returns to.
    pub(super) baseline: Option<HpaConfig>,
    /// Pods needed per request/s over the recent runs, for the stabilisation window.
    pub(super) need_per_rps: std::collections::VecDeque<f64>,
    /// Forecast upper bound over demand now, over the same runs: how fast demand may rise
    /// before a new pod is ready.
    pub(super) growth: std::collections::VecDeque<f64>,
    /// When the last shortfall was seen (unix seconds), and the longest calm between two
    /// shortfall episodes so far: how often surges come back.
    pub(super) last_shortfall: Option<i64>,
    pub(super) longest_calm: i64,
    /// Since when demand has been served without a shortfall or an incident (unix seconds):
    /// the target is raised only after `SETTLE_SECONDS` of it.
    pub(super) calm_since: Option<i64>,
    /// When the owner's target was last raised (unix seconds): the next raise waits
    /// `RAISE_INTERVAL_SECONDS`.
    pub(super) last_raise: Option<i64>,
    /// One pod as last measured busy enough to tell (`pod::MIN_MEASURABLE_UTILIZATION`).
    /// Kept because headroom the Governor adds can leave the pods too idle to measure, and
    /// without the last measurement it could never give that headroom back (seen: a 5× surge
    /// on 2 pods, `minReplicas` raised to 30, then 30 pods at 4 % CPU for the rest of the
    /// run). A pod's capacity is a property of its code and its CPU request, not of the load
    /// it happens to get.
    pod: Option<PodModel>,
}

impl AutoscalingState {
    /// The adapter applied `change` at `now`. A relaxation (a raised target, or headroom given
    /// back) restarts the calm it needs: the next one must be earned under the setting now in
    /// force, as calm-time outlier tuning must (one per lookback). Otherwise the noise in each
    /// hour's forecast walks the target up in small steps, each "holding" at the time (seen:
    /// 10 → 69 → 74 % 38 minutes apart on a calm mesh).
    pub fn applied(&mut self, now: i64, change: &Change) {
        if change.knob == Knob::Autoscaling && change.posture == Posture::Relax {
            self.calm_since = Some(now);
            // Headroom is given back only while `baseline` holds the setting the Governor
            // found; a relaxation without one is a raise of that setting's target.
            if self.baseline.is_none() {
                self.last_raise = Some(now);
            }
        }
    }

    /// Records a shortfall seen at `now`. Shortfalls closer than the stabilisation window belong
    /// to the same episode; the gap between episodes is the calm a surge came back after.
    fn shortfall(&mut self, now: i64, window_s: i64) {
        if let Some(last) = self.last_shortfall {
            let gap = now.saturating_sub(last);
            if gap > window_s {
                self.longest_calm = self.longest_calm.max(gap);
            }
        }
        self.last_shortfall = Some(now);
    }

    /// Whether the calm since the last shortfall is long enough to give headroom back: at least
    /// the stabilisation window, and twice the longest calm after which a surge has come back,
    /// so that recurring surges (an hourly batch, a spiky request series) keep their headroom
    /// instead of the target toggling at every surge.
    fn calm_enough(&self, now: i64, window_s: i64) -> bool {
        self.last_shortfall.is_none_or(|last| {
            now.saturating_sub(last) >= window_s.max(self.longest_calm.saturating_mul(2))
        })
    }
}

impl AutoscalingState {
    /// Feeds one demand point (requests/s; NaN = missing).
    pub fn feed(&mut self, v: f64, step_seconds: i64) {
        if !self.tried_registry {
            self.tried_registry = true;
            self.forecaster = crate::forecast::by_name("auto", step_seconds);
        }
        if let Some(f) = self.forecaster.as_mut() {
            f.update(v);
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(v);
    }

    /// The highest upper bound of the demand forecast over the next `h` steps, and the name of
    /// the model that made it.
    fn upper(&self, h: usize, coverage: f64) -> Option<(f64, f64, &'static str)> {
        if let Some(f) = &self.forecaster {
            let mut best: Option<(f64, f64)> = None;
            // The peak of the upper bound over the horizon, sampled at up to 8 evenly spaced
            // steps (always including the last): enough to catch a seasonal rise inside the
            // horizon without predicting every step.
            let h = h.max(1);
            let stride = h.div_ceil(8);
            for k in (1..=h).rev().step_by(stride) {
                if let Some(fc) = f.predict(k, coverage)
                    && fc.upper.is_finite()
                    && best.is_none_or(|(u, _)| fc.upper > u)
                {
                    best = Some((fc.upper, fc.mean));
                }
            }
            if let Some((u, m)) = best {
                return Some((u, m, f.name()));
            }
        }
        linear_upper(&self.history, h, coverage).map(|(u, m)| (u, m, "linear-trend"))
    }
}

/// Fallback forecast while no registered forecaster is available: an ordinary least-squares
/// line through the recent history with its prediction interval,
/// upper = ŷ + z·σ·√(1 + 1/n + (x₀ − x̄)²/Sxx). Returns (upper, mean) at `h` steps ahead.
fn linear_upper(
    history: &std::collections::VecDeque<f64>,
    h: usize,
    coverage: f64,
) -> Option<(f64, f64)> {
    let pts: Vec<(f64, f64)> = history
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (i as f64, *v))
        .collect();
    if pts.len() < 8 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let sse: f64 = pts
        .iter()
        .map(|p| (p.1 - (my + slope * (p.0 - mx))).powi(2))
        .sum();
    let sigma = (sse / (n - 2.0)).sqrt();
    let x0 = (history.len() - 1 + h) as f64;
    let mean = my + slope * (x0 - mx);
    let z = Normal::standard().inverse_cdf(0.5 + coverage / 2.0);
    let se = sigma * (1.0 + 1.0 / n + (x0 - mx).powi(2) / sxx.max(1e-12)).sqrt();
    Some((mean + z * se, mean))
}

struct Sizing {
    /// The pod as measured now, or as last measured when the pods are too idle to tell,
    /// against the latency objective.
    queue: pod::Latency,
    demand_now: f64,
    demand_upper: f64,
    model: &'static str,
    /// Replicas needed: what the queueing model asks for at the forecast's upper bound, or the
    /// policy's `minReplicas` where that is more.
    needed: u32,
    /// What the queueing model alone asks for, when the policy's `minReplicas` is more: the
    /// need is then the owner's bound, and the reason says so.
    below_policy_floor: Option<u32>,
    reachable: bool,
}

impl Sizing {
    /// The fewest replicas, up to `max`, that meet the objective at `lambda` (`max` when none
    /// does): the p99 wait only falls as c grows, so bisect. Where the objective is out of every
    /// count's reach (`pod::Latency::out_of_reach`: the low-load p99 alone is over it), the
    /// fewest past which more would not lower the p99: those whose p99 wait is zero. Sizing for
    /// an objective no count meets would otherwise ask for the cap at any demand (seen on a
    /// random mesh: a 34 ms objective on 34 ms requests, whose p99 Istio's 25–50 ms bucket puts
    /// at 49.75 ms, took an HPA from 1 to its cap of 10 pods 15 s into the run).
    ///
    /// Where the low-load p99 is over the objective only within the blur of the histogram bucket
    /// that holds it (`pod::Latency::out_of_reach_unresolved`), the model cannot tell whether the
    /// objective is met at all, and asks for nothing: 1 (the policy's `minReplicas` may still
    /// ask for more). Sizing for "no queueing wait" there scaled a one-pod subset onto a broken
    /// pod on random meshes whose objective equalled their requests' fixed service time.
    fn fewest(&self, lambda: f64, max: u32) -> u32 {
        if self.queue.out_of_reach_unresolved() {
            return 1;
        }
        let enough = |c: u32| {
            if self.queue.out_of_reach() {
                self.queue.no_wait(c, lambda)
            } else {
                self.queue.meets(c, lambda)
            }
        };
        let (mut lo, mut hi) = (1u32, max);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if enough(mid) { hi = mid } else { lo = mid + 1 }
        }
        lo
    }
}

fn size(ctx: &Ctx<'_>, state: &AutoscalingState, hpa: &HpaConfig) -> Result<Sizing, String> {
    let s = &ctx.obs.service_signals;
    let a = &ctx.spec.controls.autoscaling;
    let demand_now =
        window::recent_mean(&s.request_rate, RECENT).ok_or("no recent request rate")?;
    let util = window::recent_mean(&s.utilization, RECENT).ok_or("no recent utilisation")?;
    let service_time =
        pod::service_time(s, ctx.spec.objectives.success_rate).ok_or("no median latency")?;
    let base_p99 = pod::low_load_p99(s).ok_or("no p99 latency")?;
    let cannot = || {
        format!(
            "cannot size pods from {} replicas at {:.0}% utilisation and {demand_now:.1} req/s",
            hpa.current_replicas,
            util * 100.0
        )
    };
    if hpa.current_replicas == 0 || demand_now <= 0.0 {
        return Err(cannot());
    }
    // Capacity from the work the pods did: requests rejected by a full queue (or failed fast)
    // are counted in the request rate but cost no service time, so at saturation λ/(c·u) on
    // all requests credits each pod with the rejections too (surge-5x at 750 req/s with half
    // of them rejected: twice the real capacity, and too few pods "needed").
    let served = window::error_rate(s, RECENT, ctx.obs.step_seconds)
        .map_or(demand_now, |(e, _)| demand_now * (1.0 - e.clamp(0.0, 1.0)));
    let pod = pod::PodModel::measure(
        served,
        hpa.current_replicas,
        util,
        service_time,
        ctx.obs.end,
    )
    .or(state.pod)
    .ok_or_else(cannot)?;
    let step = ctx.obs.step_seconds.max(1) as f64;
    let horizon = ctx
        .obs
        .pod_startup
        .map_or(a.forecast_horizon.as_secs_f64(), |p| {
            p.as_secs_f64() + ctx.spec.telemetry.interval.as_secs_f64()
        });
    // Capped at an hour: no pod takes longer to start, and a forecaster's cost may grow with
    // the horizon (absurd telemetry must not stall the loop).
    let h = (horizon.min(MAX_HORIZON_SECONDS) / step).ceil().max(1.0) as usize;
    let (upper, _mean, model) = state
        .upper(h, a.forecast_coverage)
        .ok_or("too little demand history to forecast")?;
    let demand_upper = upper.max(demand_now);
    let objective = ctx.spec.objectives.latency_p99.as_secs_f64();
    let mut z = Sizing {
        queue: pod::Latency {
            pod,
            base_p99,
            objective,
        },
        demand_now,
        demand_upper,
        model,
        needed: 0,
        below_policy_floor: None,
        reachable: false,
    };
    // The cluster's cap: more pods than it will run are not capacity.
    let max = a
        .replica_ceiling(hpa.max_replicas)
        .min(hpa.replica_cap.unwrap_or(u32::MAX))
        .max(1);
    z.reachable = z.queue.meets(max, demand_upper);
    let by_model = z.fewest(demand_upper, max);
    z.needed = by_model.max(a.min_replicas);
    z.below_policy_floor = (by_model < a.min_replicas).then_some(by_model);
    Ok(z)
}

fn evidence(z: &Sizing, hpa: &HpaConfig) -> Vec<Evidence> {
    vec![
        Evidence::new("demand_now_rps", z.demand_now),
        Evidence::new("demand_forecast_upper_rps", z.demand_upper),
        Evidence::new("pod_capacity_rps", z.queue.pod.capacity),
        Evidence::new("pod_concurrency", z.queue.pod.slots as f64),
        Evidence::new("pod_capacity_measured_at", z.queue.pod.measured_at as f64),
        Evidence::new("low_load_p99_s", z.queue.base_p99),
        Evidence::new("replicas_now", f64::from(hpa.current_replicas)),
        Evidence::new("replicas_needed", f64::from(z.needed)),
    ]
}

/// Replicas the HPA would settle on at demand `lambda` with this config.
fn hpa_replicas(lambda: f64, pod_capacity: f64, cfg: &HpaConfig) -> u32 {
    let t = f64::from(cfg.target_utilization_percent.max(1)) / 100.0;
    let raw = (lambda / (pod_capacity * t)).ceil();
    (raw.min(f64::from(u32::MAX)) as u32)
        .clamp(cfg.min_replicas, cfg.max_replicas.max(cfg.min_replicas))
}

/// Replicas the HPA runs at demand `lambda` when it lets utilisation sit just under its 10%
/// tolerance above the target (it does not scale up below target·1.1).
fn hpa_replicas_tolerant(lambda: f64, pod_capacity: f64, cfg: &HpaConfig) -> u32 {
    let t = f64::from(cfg.target_utilization_percent.max(1)) / 100.0 * (1.0 + HPA_TOLERANCE);
    let raw = (lambda / (pod_capacity * t)).ceil();
    (raw.min(f64::from(u32::MAX)) as u32)
        .clamp(cfg.min_replicas, cfg.max_replicas.max(cfg.min_replicas))
}

/// The highest target within the policy's bounds at which every pod count the HPA may run
/// keeps p99 under the objective, when that is a real raise over the target in force.
///
/// The check does not depend on today's demand, so a target raised at the night's trough still
/// holds at noon's peak: the HPA runs c pods up to the demand at which they sit at target·1.1
/// (its 10% tolerance), and that demand, grown by the largest forecast rise over the pod
/// start-up horizon seen in the stabilisation window (upper bound / demand now), must still be
/// served by c pods within the objective, for every c from the floor up (the floor binds; see
/// the body). Never
/// while the objectives are missed now (an incident), while shortfalls are recent (a surge may
/// come back), within `SETTLE_SECONDS` of the first run, the last shortfall, incident or run
/// without the data to size pods, within `RAISE_INTERVAL_SECONDS` of the last raise, nor for a
/// raise under `MIN_RAISE` points (no dithering by a point at each run).
fn raised_target(
    ctx: &Ctx<'_>,
    state: &mut AutoscalingState,
    z: &Sizing,
    hpa: &HpaConfig,
) -> Option<u32> {
    let a = &ctx.spec.controls.autoscaling;
    let s = &ctx.obs.service_signals;
    let window_s = (STABILISATION_RUNS as i64).saturating_mul(ctx.obs.step_seconds.max(1));
    if state.need_per_rps.len() < STABILISATION_RUNS
        || state.last_shortfall.is_some() && !state.calm_enough(ctx.obs.end, window_s)
        || !z.reachable
        || state
            .last_raise
            .is_some_and(|t| ctx.obs.end.saturating_sub(t) < RAISE_INTERVAL_SECONDS)
    {
        return None;
    }
    // An incident: errors over the objective's budget, or p99 over the objective, now; no
    // measure of either is no evidence of calm.
    let calm = window::error_rate(s, RECENT, ctx.obs.step_seconds)
        .zip(window::recent_mean(&s.latency_p99, RECENT))
        .is_some_and(|((err, _), p99)| {
            err <= 1.0 - ctx.spec.objectives.success_rate && p99 <= z.queue.objective
        });
    if !calm {
        state.calm_since = Some(ctx.obs.end);
        return None;
    }
    if state
        .calm_since
        .is_none_or(|since| ctx.obs.end.saturating_sub(since) < SETTLE_SECONDS)
    {
        return None;
    }
    let growth = state.growth.iter().fold(1.0f64, |m, g| m.max(*g));
    // Only pod counts the policy allows are judged: an HPA whose minReplicas is above the
    // policy's maxReplicas (bad input) must not make the M/M/c model run over billions of
    // servers (Erlang C is O(c)), which stalled the loop on such input.
    let most = a.replica_ceiling(hpa.max_replicas);
    let floor = hpa.min_replicas.max(a.min_replicas).max(1).min(most.max(1));
    // Every pod count from the floor up runs at the same load per server (the HPA adds pods in
    // step with demand), and at a fixed utilisation ρ an M/M/c queue waits less the more
    // servers it has (Erlang C falls with c at fixed ρ, and the drain rate cμ(1 − ρ) grows), so
    // the floor is the pod count that binds: if it meets the objective, every larger one does.
    // Checking only it also keeps the cost independent of the HPA's maxReplicas, which is now
    // the ceiling wherever the policy names none.
    let holds = |t: u32| {
        let per_pod = z.queue.pod.capacity * f64::from(t) / 100.0 * (1.0 + HPA_TOLERANCE) * growth;
        z.queue.meets(floor, f64::from(floor) * per_pod)
    };
    let range = a.target_range(hpa.target_utilization_percent);
    let current = range.clamp(hpa.target_utilization_percent);
    let best = (current..=range.max).rev().find(|&t| holds(t))?;
    (best >= current.saturating_add(MIN_RAISE)).then_some(best)
}

/// The autoscaling planner (one run of the control loop).
pub fn plan(
    ctx: &Ctx<'_>,
    state: &mut AutoscalingState,
    findings: &mut Vec<Finding>,
) -> Option<Change> {
    let hpa = ctx.obs.config.hpa.as_ref()?;
    let a = &ctx.spec.controls.autoscaling;
    // The most replicas the Governor may ask for: the policy's cap, or the HPA's own; the
    // targets it may set: the policy's, or the default range taking in the HPA's own.
    let most = a.replica_ceiling(hpa.max_replicas);
    let range = a.target_range(hpa.target_utilization_percent);
    let z = match size(ctx, state, hpa) {
        Ok(z) => z,
        Err(why) => {
            state.calm_since = Some(ctx.obs.end);
            findings.push(Finding {
                kind: FindingKind::InsufficientData,
                subject: "autoscaling".into(),
                summary: format!("autoscaling left alone: {why}"),
                evidence: Vec::new(),
            });
            return None;
        }
    };
    state.calm_since.get_or_insert(ctx.obs.end);
    state.pod = Some(z.queue.pod);
    findings.push(Finding {
        kind: FindingKind::Forecast,
        subject: "demand".into(),
        summary: format!(
            "demand {:.1} req/s now, up to {:.1} req/s before a new pod is ready ({}); {} replicas {}",
            z.demand_now,
            z.demand_upper,
            z.model,
            z.needed,
            if z.queue.out_of_reach_unresolved() {
                format!(
                    "are all the policy asks for: the low-load p99 reads {:.1} ms against a {:.0} ms objective, inside the Istio histogram bucket above {:.0} ms, where it cannot tell whether the objective is met, so the queueing model sizes nothing",
                    z.queue.base_p99 * 1e3,
                    z.queue.objective * 1e3,
                    homeostat_dataplane::histogram::bucket_floor_ms(z.queue.base_p99 * 1e3)
                )
            } else if z.queue.out_of_reach() {
                "add no queueing wait (the objective is out of reach: the low-load p99 alone is over it)".to_string()
            } else {
                "keep p99 under the objective".to_string()
            }
        ),
        evidence: evidence(&z, hpa),
    });
    if !z.reachable && !z.queue.out_of_reach_unresolved() {
        findings.push(Finding {
            kind: FindingKind::Anomaly,
            subject: "autoscaling".into(),
            summary: format!(
                "even {most} replicas cannot keep p99 under the objective at {:.1} req/s",
                z.demand_upper
            ),
            evidence: evidence(&z, hpa),
        });
    }
    if state.need_per_rps.len() == STABILISATION_RUNS {
        state.need_per_rps.pop_front();
    }
    state
        .need_per_rps
        .push_back(f64::from(z.needed) / z.demand_now);
    if state.growth.len() == STABILISATION_RUNS {
        state.growth.pop_front();
    }
    state.growth.push_back(z.demand_upper / z.demand_now);
    let worst_need = state
        .need_per_rps
        .iter()
        .fold(0.0f64, |m, r| m.max(*r * z.demand_now))
        .ceil() as u32;
    let implied_now = hpa_replicas(z.demand_now, z.queue.pod.capacity, hpa);
    // The target at which the HPA runs `pods` pods at today's demand.
    let target_for = |pods: u32| -> u32 {
        let t = 100.0 * z.demand_now / (z.queue.pod.capacity * f64::from(pods.max(1)));
        (t.floor().clamp(1.0, 100.0)) as u32
    };
    let window_s = (STABILISATION_RUNS as i64).saturating_mul(ctx.obs.step_seconds.max(1));
    // A shortfall is counted against the setting the Governor found, not the one in force: a
    // surge that the added headroom covers is still a surge that a give-back would have missed.
    let found = state.baseline.as_ref().unwrap_or(hpa);
    if hpa_replicas(z.demand_now, z.queue.pod.capacity, found) < z.needed {
        state.shortfall(ctx.obs.end, window_s);
        state.calm_since = Some(ctx.obs.end);
    }
    let mut next = hpa.clone();
    let posture;
    // A shortfall is a prediction twice over: of the demand (the forecast's upper bound) and of
    // the pods the autoscaler will settle on. What is measured now may be fine; if it is not,
    // the guardrails let it through at once, and if it is, it waits for the models to have a
    // lookback of history (the warm-up). Everything else here is the planner's own judgement.
    let shortfall = implied_now < z.needed;
    let origin = if shortfall {
        Origin::Forecast
    } else {
        Origin::Planner
    };
    if shortfall {
        // Shortfall at the forecast's upper bound. Aim one pod beyond the need, so that noise in
        // the next forecast does not bring the next run straight back here; never raise the
        // target while protecting; if the target's lower bound is not enough, raise the floor.
        let goal = (z.needed + 1).min(most);
        next.target_utilization_percent = range
            .clamp(target_for(goal))
            .min(range.clamp(hpa.target_utilization_percent));
        if hpa_replicas(z.demand_now, z.queue.pod.capacity, &next) < z.needed {
            next.min_replicas = z.needed.clamp(a.min_replicas, most.max(a.min_replicas));
        }
        if state.baseline.is_none() {
            state.baseline = Some(hpa.clone());
        }
        posture = Posture::Protect;
    } else if let Some(base) = state.baseline.clone() {
        // Give back only what the Governor added, towards the setting it found, and only if the
        // worst need of the stabilisation window is still covered with a pod to spare.
        if base.target_utilization_percent <= hpa.target_utilization_percent
            && base.min_replicas >= hpa.min_replicas
        {
            state.baseline = None;
            return None;
        }
        if !state.calm_enough(ctx.obs.end, window_s) {
            return None;
        }
        // The highest target up to the one found that still covers the worst recent need.
        let mut relaxed = hpa.clone();
        relaxed.min_replicas = base.min_replicas.max(worst_need + 1).min(hpa.min_replicas);
        relaxed.target_utilization_percent = (hpa.target_utilization_percent
            ..=base
                .target_utilization_percent
                .max(hpa.target_utilization_percent))
            .rev()
            .find(|&t| {
                let mut c = relaxed.clone();
                c.target_utilization_percent = t;
                hpa_replicas(z.demand_now, z.queue.pod.capacity, &c) > worst_need
            })
            .unwrap_or(hpa.target_utilization_percent);
        // A give-back that frees no pod at today's demand and keeps the floor is a change for
        // nothing (azure-trace: target 40% → 41%, then back to 40% at the next surge).
        if relaxed == *hpa
            || (relaxed.min_replicas == hpa.min_replicas
                && hpa_replicas(z.demand_now, z.queue.pod.capacity, &relaxed)
                    >= hpa_replicas(z.demand_now, z.queue.pod.capacity, hpa))
        {
            return None;
        }
        next = relaxed;
        posture = Posture::Relax;
    } else if let Some(t) = raised_target(ctx, state, &z, hpa) {
        // Headroom the queueing model says is not needed: the forecast's upper bound is still
        // served within the objective at a higher target, so fewer pods run for the same p99.
        next.target_utilization_percent = t;
        posture = Posture::Relax;
    } else {
        // The user's setting, untouched by the Governor: only the policy's bounds move it.
        posture = Posture::Protect;
    }
    // Whatever the reason, the proposal stays within the policy's bounds.
    next.target_utilization_percent = range.clamp(next.target_utilization_percent);
    replicas_within(&mut next, a.min_replicas, most, hpa);
    if next == *hpa {
        return None;
    }
    let reason = match posture {
        Posture::Protect if implied_now < z.needed => format!(
            "demand may reach {:.1} req/s within the pod start-up horizon (now {:.1}); at target {}% the autoscaler would run {} pods but {} are needed {}, so scale ahead now",
            z.demand_upper,
            z.demand_now,
            hpa.target_utilization_percent,
            implied_now,
            z.needed,
            if let Some(by_model) = z.below_policy_floor {
                format!(
                    "by the policy's minReplicas (the queueing model alone asks for {by_model})"
                )
            } else if z.queue.out_of_reach() {
                "to add no queueing wait (the p99 objective is out of every count's reach)"
                    .to_string()
            } else {
                format!("for p99 under {}", ctx.spec.objectives.latency_p99)
            }
        ),
        Posture::Protect => "the autoscaler settings are outside the policy's bounds".to_string(),
        Posture::Relax if state.baseline.is_none() => format!(
            "demand may reach {:.1} req/s within the pod start-up horizon; at target {}% the autoscaler would run {} pods there even at its 10% tolerance, and {} keep p99 under {}: raising the target from {}%",
            z.demand_upper,
            next.target_utilization_percent,
            hpa_replicas_tolerant(z.demand_upper, z.queue.pod.capacity, &next),
            z.needed,
            ctx.spec.objectives.latency_p99,
            hpa.target_utilization_percent
        ),
        Posture::Relax => format!(
            "demand stays under {:.1} req/s and the last 10 minutes needed at most {worst_need} pods: giving back headroom, target {}% and at least {} pods",
            z.demand_upper, next.target_utilization_percent, next.min_replicas
        ),
    };
    Some(Change {
        knob: Knob::Autoscaling,
        current: KnobValue::Autoscaling(hpa.clone()),
        proposed: KnobValue::Autoscaling(next.clone()),
        posture,
        origin,
        reason,
        evidence: evidence(&z, hpa),
        confidence: ctx.spec.controls.autoscaling.forecast_coverage,
        expected_effect: format!(
            "the autoscaler runs about {} pods at today's demand (now {})",
            hpa_replicas(z.demand_now, z.queue.pod.capacity, &next),
            hpa.current_replicas
        ),
        held_by: None,
    })
}

/// Keeps a proposal's replica bounds within the policy's (`least`..=`most`, the floor winning
/// where they cross) and the cluster's cap.
fn replicas_within(next: &mut HpaConfig, least: u32, most: u32, found: &HpaConfig) {
    next.min_replicas = next.min_replicas.clamp(least, most.max(least));
    next.max_replicas = next
        .max_replicas
        .clamp(next.min_replicas, most.max(next.min_replicas));
    cap_replicas(next, found);
}

/// Keeps a proposal within the cluster's replica cap, so that what is proposed is what the HPA
/// can do: no bound is raised above the cap (a bound the user already set above it is left
/// alone — lowering it is not the Governor's to decide, and changes nothing the HPA can reach).
fn cap_replicas(next: &mut HpaConfig, found: &HpaConfig) {
    let Some(cap) = found.replica_cap else {
        return;
    };
    next.min_replicas = next.min_replicas.min(cap.max(found.min_replicas));
    next.max_replicas = next
        .max_replicas
        .min(cap.max(found.max_replicas))
        .max(next.min_replicas);
}

/// `scaleUp`: raise `minReplicas` to half again the pods running now (at least one more).
pub fn scale_up(ctx: &Ctx<'_>, findings: &mut Vec<Finding>) -> Option<Change> {
    let a = &ctx.spec.controls.autoscaling;
    let Some(hpa) = ctx.obs.config.hpa.as_ref() else {
        findings.push(Finding {
            kind: FindingKind::Note,
            subject: "autoscaling".into(),
            summary: "scaleUp: the service has no HorizontalPodAutoscaler".into(),
            evidence: Vec::new(),
        });
        return None;
    };
    let want = hpa
        .current_replicas
        .saturating_add(1)
        .max(hpa.current_replicas.saturating_mul(3) / 2);
    let mut next = hpa.clone();
    next.min_replicas = want.max(hpa.min_replicas);
    replicas_within(
        &mut next,
        a.min_replicas,
        a.replica_ceiling(hpa.max_replicas),
        hpa,
    );
    (next != *hpa).then(|| Change {
        knob: Knob::Autoscaling,
        current: KnobValue::Autoscaling(hpa.clone()),
        proposed: KnobValue::Autoscaling(next.clone()),
        posture: Posture::Protect,
        origin: Origin::Planner,
        reason: format!(
            "alert remediation: at least {} pods (now {})",
            next.min_replicas, hpa.current_replicas
        ),
        evidence: vec![Evidence::new(
            "replicas_now",
            f64::from(hpa.current_replicas),
        )],
        confidence: 0.7,
        expected_effect: format!("{} or more pods", next.min_replicas),
        held_by: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_fallback_follows_a_ramp() {
        // y = 10 + 2x for x = 0..19: exact line, σ = 0 ⇒ upper = mean = 10 + 2·(19 + 5) = 58.
        let h: std::collections::VecDeque<f64> = (0..20).map(|x| 10.0 + 2.0 * x as f64).collect();
        let (u, m) = linear_upper(&h, 5, 0.9).unwrap();
        assert!((m - 58.0).abs() < 1e-9);
        assert!((u - 58.0).abs() < 1e-6);
    }

    #[test]
    fn hpa_replicas_follow_the_target() {
        // 300 req/s, 10 req/s per pod at 100%: at 50% each pod takes 5 ⇒ 60 pods, capped at 50.
        let cfg = HpaConfig {
            min_replicas: 2,
            max_replicas: 50,
            target_utilization_percent: 50,
            current_replicas: 10,
            replica_cap: None,
        };
        assert_eq!(hpa_replicas(300.0, 10.0, &cfg), 50);
        assert_eq!(hpa_replicas(100.0, 10.0, &cfg), 20);
    }
}
