//! One pod as the queueing model sees it, measured from a window of signals, and the load at
//! which a group of such pods still keeps the latency objective.
//!
//! 1. Capacity: a pod at 100 % utilisation serves μ = λ_ok / (c·u) requests/s (λ_ok the
//!    requests served, not rejected; c pods; u their mean utilisation).
//! 2. Slots, by Little's law: at full utilisation a pod holds μ·S requests at once, S the
//!    service time (the lowest clean median latency of the window: queueing only ever adds to
//!    it). So c pods are an M/M/(c·slots) queue whose servers each serve μ/slots requests/s.
//! 3. p99 at arrival rate λ: the low-load p99 (the lowest p99 of the window) plus the Erlang-C
//!    p99 wait (`queueing`). The objective holds while that stays under it.
//! 4. How far a move may load them (`Latency::max_utilization`): the model, or the model
//!    anchored on the p99 they show now where that is worse.
//!
//! The autoscaling planner sizes replicas with 1–3; the weights planner's capacity check
//! (`capacity::limit`) asks 4 how much load a destination takes before its p99 passes the
//! objective.
//!
//! Worked example: one pod serving 10 req/s at 50 % CPU, median 50 ms, p99 100 ms at low load
//! and 200 ms now, objective 300 ms. μ = 10 / 0.5 = 20 req/s, slots = round(20 · 0.05) = 1:
//! an M/M/1 queue, whose p99 wait is W(ρ) = ln(100ρ) / (20 (1 − ρ)); W(0.5) = ln 50 / 10 =
//! 391 ms. The model alone puts the p99 at 100 + W(ρ) ms, under 300 ms while
//! ln(100ρ) ≤ 4 (1 − ρ): up to ρ = 0.223, so the pod, at 0.5, is past it (anchored on the
//! 200 ms it shows, 200 − 391 + W(ρ), it would be full only at 0.586: the model says this pod
//! should be queueing more than it shows, and the more cautious reading holds).

use super::observation::Signals;
use super::queueing;
use homeostat_dataplane::histogram::bucket_floor_ms;

/// Below this mean CPU utilisation λ/(c·u) says little about a pod's capacity: the pod's idle
/// CPU (runtime, probes, metrics: commonly a few percent of its request) and the CPU metric's
/// noise are a large share of what is measured. 5 % is the floor the autoscaling planner has
/// used since it was written, not a value chosen by a score.
pub const MIN_MEASURABLE_UTILIZATION: f64 = 0.05;
/// Capped so that absurd telemetry (a median latency of hours) cannot make the Erlang
/// recursion run for ever; 1,000 concurrent requests per pod is beyond any real one.
const MAX_SLOTS: f64 = 1000.0;
/// The share of requests slower than a p99: 1 %, by definition of the quantile.
pub const P99_TAIL: f64 = 0.01;
/// Bisection steps for the highest rate that keeps the objective: 2⁻⁴⁰ of the pods' capacity.
const BISECTION_STEPS: u32 = 40;

/// What one pod can do: its capacity (requests/s at 100 % CPU), concurrent slots, and when they
/// were measured (unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct PodModel {
    pub capacity: f64,
    pub slots: u64,
    pub measured_at: i64,
}

impl PodModel {
    /// The pod that `pods` pods at mean utilisation `utilization`, serving `served` requests/s
    /// with service time `service_time` seconds, are; `None` where that cannot be told (too
    /// idle to measure, no pods, no traffic, values that are not numbers).
    pub fn measure(
        served: f64,
        pods: u32,
        utilization: f64,
        service_time: f64,
        at: i64,
    ) -> Option<Self> {
        let usable = |v: f64| v.is_finite() && v > 0.0;
        if pods == 0
            || !usable(served)
            || !usable(service_time)
            || !utilization.is_finite()
            || utilization < MIN_MEASURABLE_UTILIZATION
        {
            return None;
        }
        let capacity = served / (f64::from(pods) * utilization);
        Some(Self {
            capacity,
            slots: (capacity * service_time).round().clamp(1.0, MAX_SLOTS) as u64,
            measured_at: at,
        })
    }

    /// Each of a pod's slots serves its share of the measured pod capacity, so that the
    /// model's pod serves exactly what the real one does. 1/S instead credits a pod with
    /// slots/S, which rounding the slots and any error in S inflate: with S dragged to 4 ms
    /// and 1 slot, 250 req/s per pod against the 92 measured, and "2 pods" at 750 req/s.
    pub fn server_rate(&self) -> f64 {
        self.capacity / self.slots as f64
    }
}

/// The service time: the lowest median latency of the window's points within the success
/// objective `clean`. Requests rejected by a full queue answer in no time and drag the median
/// towards zero (surge-5x: 4 slots became 1), so points that fail more are left out; a window
/// with no clean point (a long incident) takes the lowest median of any point.
pub fn service_time(s: &Signals, clean: f64) -> Option<f64> {
    let lowest = |ok: &dyn Fn(f64) -> bool| {
        s.latency_p50
            .iter()
            .zip(s.success_rate.iter().chain(std::iter::repeat(&f64::NAN)))
            .filter(|(p, r)| p.is_finite() && **p > 0.0 && ok(**r))
            .map(|(p, _)| *p)
            .fold(f64::INFINITY, f64::min)
    };
    let clean_points = lowest(&|r| r.is_finite() && r >= clean);
    let t = if clean_points.is_finite() {
        clean_points
    } else {
        lowest(&|_| true)
    };
    t.is_finite().then_some(t)
}

/// The low-load p99: the lowest p99 of the window.
pub fn low_load_p99(s: &Signals) -> Option<f64> {
    let v = s
        .latency_p99
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    v.is_finite().then_some(v)
}

/// Pods of one kind against the latency objective.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub pod: PodModel,
    /// The p99 at low load (seconds).
    pub base_p99: f64,
    /// The p99 objective (seconds).
    pub objective: f64,
}

impl Latency {
    /// Whether `c` pods keep p99 under the objective at `lambda` requests/s: the low-load p99
    /// plus the M/M/(c·slots) p99 wait.
    pub fn meets(&self, c: u32, lambda: f64) -> bool {
        self.base_p99 + self.wait(c, lambda) <= self.objective
    }

    /// Whether the objective is out of every replica count's reach: the low-load p99 alone is
    /// over it, and replicas only ever take away the wait.
    pub fn out_of_reach(&self) -> bool {
        self.base_p99 > self.objective
    }

    /// Whether the low-load p99 is over the objective only as far as Istio's histogram blurs
    /// it, so that the objective may well be in reach: the objective lies above the lower edge
    /// of the bucket that holds the p99 (`bucket_floor_ms`). Inside a bucket
    /// `histogram_quantile` interpolates as if the requests were spread evenly over it, and
    /// the p99 it returns may be anywhere above that edge: 34 ms requests, every one in the
    /// (25, 50] ms bucket, read as a p99 of 49.75 ms, and a 34 ms objective on them is met.
    /// An objective at or below the edge is surely out of reach: a p99 read at 320 ms is over
    /// 250 ms, whatever the spread inside (250, 500], so over an objective of 250 ms too (an
    /// objective on a bucket bound is common; the relative 10⁻⁹ only keeps a bound computed
    /// from seconds, such as 0.25 × 10³, on the bound).
    pub fn out_of_reach_unresolved(&self) -> bool {
        self.out_of_reach()
            && self.objective * 1e3 > bucket_floor_ms(self.base_p99 * 1e3) * (1.0 + 1e-9)
    }

    /// Whether `c` pods at `lambda` requests/s keep fewer than 1 % of the requests waiting (the
    /// M/M/(c·slots) p99 wait is zero): more pods could not lower the p99.
    pub fn no_wait(&self, c: u32, lambda: f64) -> bool {
        self.wait(c, lambda) <= 0.0
    }

    /// The p99 wait of `c` pods at `lambda` requests/s (M/M/(c·slots)).
    fn wait(&self, c: u32, lambda: f64) -> f64 {
        let servers = u64::from(c).saturating_mul(self.pod.slots);
        queueing::wait_quantile(servers, lambda, self.pod.server_rate(), 1.0 - P99_TAIL)
    }

    /// The highest utilisation at which `c` pods, now serving `lambda_now` requests/s at a p99
    /// of `p99_now` seconds, keep p99 under the objective; the arrival rate they then serve
    /// over their capacity.
    ///
    /// The p99 at λ is L + W(λ), W the M/M/(c·slots) p99 wait and L the larger of two levels:
    /// the low-load p99 (the model alone, as autoscaling sizes pods) and p99_now − W(λ_now)
    /// (the model anchored on what the pods show now). Where the two disagree the more
    /// cautious holds: pods that queue more than Poisson arrivals explain (bursts within a
    /// telemetry step) show it in their p99 now; pods with steadier service than the model's
    /// exponential one are still judged by the model, which is what the autoscaling planner
    /// provisions them by (seen: a one-slot pod serving a 56 ms request, at about half its CPU
    /// under a 39 s traffic cycle; anchored alone, the model let three small moves onto it
    /// that added up to 25 SLO minutes; the model alone held them, 5).
    ///
    /// `None` where the model cannot tell: the low-load p99 is over the objective already, so
    /// load is not what decides whether it is met, or the numbers are not usable.
    pub fn max_utilization(&self, c: u32, lambda_now: f64, p99_now: f64) -> Option<f64> {
        let full = f64::from(c) * self.pod.capacity;
        if c == 0
            || !full.is_finite()
            || full <= 0.0
            || !lambda_now.is_finite()
            || lambda_now < 0.0
            || !p99_now.is_finite()
            || self.base_p99 > self.objective
        {
            return None;
        }
        let level = self.level(c, lambda_now, p99_now);
        let meets = |lambda: f64| level + self.wait(c, lambda) <= self.objective;
        if !meets(0.0) {
            return Some(0.0);
        }
        // The wait only grows with λ, so bisect on [0, c·μ).
        let (mut lo, mut hi) = (0.0, full);
        for _ in 0..BISECTION_STEPS {
            let mid = 0.5 * (lo + hi);
            if meets(mid) { lo = mid } else { hi = mid }
        }
        Some(lo / full)
    }

    /// The level L of `max_utilization`: the low-load p99, or the p99 `c` pods show now at
    /// `lambda_now` requests/s less the model's wait there, whichever is larger.
    fn level(&self, c: u32, lambda_now: f64, p99_now: f64) -> f64 {
        let full = f64::from(c) * self.pod.capacity;
        // Past the pods' capacity the wait now is infinite, the anchored level −∞: the model's holds.
        self.base_p99
            .max(p99_now - self.wait(c, lambda_now.min(full)))
    }

    /// The share of tries that `c` pods, now serving `lambda_now` requests/s at a p99 of
    /// `p99_now` seconds, would answer in more than `t` seconds at `lambda` requests/s: the
    /// 1 % past the level L (L is a p99) plus the share that waits more than t − L (a union
    /// bound, so at most what it says), capped at 1; all of them where t is not above L.
    /// `None` where the numbers are not usable.
    ///
    /// Worked example: one pod of one slot serving 10 req/s at 50 % CPU (μ = 20 req/s), its
    /// p99 100 ms at low load and now, t = 300 ms, after a move to 15 req/s: the wait now is
    /// ln(50) / 10 = 391 ms, so L = max(100, 100 − 391) = 100 ms; at 15 req/s an arrival waits
    /// with chance ρ = 0.75 and P(W > 200 ms) = 0.75·e^{−5 · 0.2} = 27.6 %: 28.6 % of tries past
    /// 300 ms.
    pub fn share_past(
        &self,
        c: u32,
        lambda_now: f64,
        p99_now: f64,
        lambda: f64,
        t: f64,
    ) -> Option<f64> {
        let usable = |v: f64| v.is_finite() && v >= 0.0;
        if c == 0 || !usable(lambda_now) || !usable(p99_now) || !usable(lambda) || !usable(t) {
            return None;
        }
        let level = self.level(c, lambda_now, p99_now);
        if t <= level {
            return Some(1.0);
        }
        let servers = u64::from(c).saturating_mul(self.pod.slots);
        let waits = queueing::wait_tail(servers, lambda, self.pod.server_rate(), t - level);
        Some((P99_TAIL + waits).min(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(p50: &[f64], p99: &[f64], ok: &[f64]) -> Signals {
        Signals {
            latency_p50: p50.to_vec(),
            latency_p99: p99.to_vec(),
            success_rate: ok.to_vec(),
            ..Signals::default()
        }
    }

    #[test]
    fn only_an_objective_above_the_p99s_bucket_edge_is_unresolved() {
        let pod = PodModel::measure(10.0, 1, 0.5, 0.05, 0).unwrap();
        let q = |base_p99: f64, objective: f64| Latency {
            pod,
            base_p99,
            objective,
        };
        // A p99 read at 320 ms lies in (250, 500]: over 250 ms whatever the spread inside.
        assert!(q(0.32, 0.3).out_of_reach_unresolved());
        assert!(!q(0.32, 0.25).out_of_reach_unresolved());
        assert!(!q(0.32, 0.2).out_of_reach_unresolved());
        assert!(q(0.32, 0.25).out_of_reach() && q(0.32, 0.2).out_of_reach());
        // 49.75 ms in (25, 50] against 34 ms: unresolved; under the objective: in reach.
        assert!(q(0.04975, 0.034).out_of_reach_unresolved());
        assert!(!q(0.2, 0.3).out_of_reach_unresolved());
    }

    #[test]
    fn share_past_matches_its_worked_example() {
        let pod = PodModel::measure(10.0, 1, 0.5, 0.05, 0).unwrap();
        let q = Latency {
            pod,
            base_p99: 0.1,
            objective: 0.3,
        };
        let share = q.share_past(1, 10.0, 0.1, 15.0, 0.3).unwrap();
        assert!(
            (share - (0.01 + 0.75 * (-1.0f64).exp())).abs() < 1e-12,
            "{share}"
        );
        // At the load now the same pod spills 0.01 + 0.5·e^{−10 · 0.2} = 7.8 %.
        let now = q.share_past(1, 10.0, 0.1, 10.0, 0.3).unwrap();
        assert!(
            (now - (0.01 + 0.5 * (-2.0f64).exp())).abs() < 1e-12,
            "{now}"
        );
        // A timeout at or under the level: every try may pass it; past capacity: all wait.
        assert_eq!(q.share_past(1, 10.0, 0.1, 10.0, 0.1), Some(1.0));
        assert_eq!(q.share_past(1, 10.0, 0.1, 25.0, 0.3), Some(1.0));
        assert_eq!(q.share_past(1, 10.0, f64::NAN, 10.0, 0.3), None);
    }

    #[test]
    fn measures_the_worked_example() {
        let pod = PodModel::measure(10.0, 1, 0.5, 0.05, 0).unwrap();
        assert_eq!(pod.capacity, 20.0);
        assert_eq!(pod.slots, 1);
        let q = Latency {
            pod,
            base_p99: 0.1,
            objective: 0.3,
        };
        // Unanchored (autoscaling): 100 ms + W. At 10 req/s W = 391 ms: missed; at 4 req/s
        // (ρ = 0.2) W = ln 20 / 16 = 187 ms: met.
        assert!(!q.meets(1, 10.0));
        assert!(q.meets(1, 4.0));
        // Anchored on 200 ms now at 10 req/s the level would be 200 − 391 < 100 ms: the model
        // alone holds, ln(100ρ) = 4 (1 − ρ) at ρ = 0.2234 (ln 22.34 = 3.106, 4 · 0.7766 = 3.106).
        let u = q.max_utilization(1, 10.0, 0.2).unwrap();
        assert!((u - 0.2234).abs() < 1e-3, "{u}");
        // Ten such pods (M/M/10 at a = 5: Erlang C 0.0361, W = ln 3.61 / 100 = 12.8 ms): now
        // the anchored level, 200 − 12.8 = 187.2 ms, is the higher, and the objective is
        // reached at 82.9 % (Erlang C 0.476 there, W = 112.8 ms).
        let u10 = q.max_utilization(10, 100.0, 0.2).unwrap();
        assert!((u10 - 0.8288).abs() < 1e-3, "{u10}");
        // Already over the objective at the load now: the limit is below it.
        assert!(q.max_utilization(10, 100.0, 0.32).unwrap() < 0.5);
        // Past capacity now the anchor's wait is infinite and says nothing: the model alone,
        // far below the load now.
        let past = q.max_utilization(1, 25.0, 0.2).unwrap();
        assert!((past - 0.2234).abs() < 1e-3, "{past}");
    }

    #[test]
    fn too_idle_or_broken_input_is_not_a_pod() {
        assert!(PodModel::measure(10.0, 2, 0.04, 0.05, 0).is_none());
        assert!(PodModel::measure(10.0, 0, 0.5, 0.05, 0).is_none());
        assert!(PodModel::measure(0.0, 2, 0.5, 0.05, 0).is_none());
        assert!(PodModel::measure(10.0, 2, f64::NAN, 0.05, 0).is_none());
        assert!(PodModel::measure(10.0, 2, 0.5, f64::INFINITY, 0).is_none());
        // Slots capped: a median of an hour is not 10⁵ concurrent requests.
        assert_eq!(
            PodModel::measure(100.0, 1, 0.5, 3600.0, 0).unwrap().slots,
            1000
        );
    }

    #[test]
    fn an_objective_missed_at_low_load_sets_no_limit() {
        let q = Latency {
            pod: PodModel::measure(10.0, 1, 0.5, 0.05, 0).unwrap(),
            base_p99: 0.6,
            objective: 0.5,
        };
        assert_eq!(q.max_utilization(3, 10.0, 0.7), None);
        // No pods, or no p99 now: nothing to tell.
        let q = Latency { base_p99: 0.1, ..q };
        assert_eq!(q.max_utilization(0, 10.0, 0.2), None);
        assert_eq!(q.max_utilization(1, 10.0, f64::NAN), None);
    }

    #[test]
    fn service_time_skips_points_that_failed() {
        // The 4 ms point failed 40 % (rejections answer fast): the clean 20 ms is the service time.
        let s = signals(
            &[0.030, 0.004, 0.020],
            &[0.1, 0.2, 0.3],
            &[1.0, 0.6, 0.9995],
        );
        assert_eq!(service_time(&s, 0.999), Some(0.020));
        // No clean point: the lowest of any.
        let s = signals(&[0.030, 0.004], &[0.1, 0.2], &[0.5, 0.6]);
        assert_eq!(service_time(&s, 0.999), Some(0.004));
        assert_eq!(service_time(&Signals::default(), 0.999), None);
        assert_eq!(low_load_p99(&s), Some(0.1));
        assert_eq!(low_load_p99(&Signals::default()), None);
    }
}
