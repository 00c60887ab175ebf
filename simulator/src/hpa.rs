//! The Kubernetes HorizontalPodAutoscaler (`autoscaling/v2`) as a pure state machine: the
//! `hpa` baseline.
//!
//! Follows the documented algorithm (kubernetes.io, "Horizontal Pod Autoscaling", Algorithm
//! details and Configurable scaling behavior) and the controller's order of operations:
//!
//! 1. **Replica calculation** on resource utilisation. Pods are split into *ready with a metric*,
//!    *unready* (not Ready yet — the engine keeps a new pod unready during its start-up /
//!    readiness delay, 30 s by default, the controller's `initial-readiness-delay`; the 5-minute
//!    CPU initialisation period is not modelled separately) and *missing* (ready, no metric).
//!    `ratio = mean(ready utilisation) / target`. With no unready/missing pods to account for:
//!    no change when `|ratio − 1| ≤ tolerance` (0.1), else `desired = ⌈ratio · ready⌉`.
//!    Otherwise, as documented: on a scale-down missing pods count as using 100 % of the target,
//!    on a scale-up missing pods count as 0 %; unready pods count as 0 % and only on a scale-up
//!    (they are ignored otherwise). The ratio is recomputed over all those pods; if it is now
//!    within tolerance or reverses the direction, nothing changes, else
//!    `desired = ⌈new ratio · pods counted⌉`, and a result that would move against the new
//!    ratio's direction is dropped.
//! 2. **Stabilisation**: every raw recommendation is remembered with its time. The result is
//!    bounded below by the *min* of recommendations inside the scale-up window (default 0 s: just
//!    this one) and above by the *max* inside the scale-down window (default 300 s), starting
//!    from the current count.
//! 3. **Rate limits** (`behavior` policies, `selectPolicy: Max`): scale-up may add at most
//!    `max(4 pods, 100 %)` per 15 s, scale-down may remove 100 % per 15 s, each measured from the
//!    replica count at the start of the policy's period (current − pods added + pods removed
//!    inside the period); percentages round up when scaling up and are truncated when scaling
//!    down, as in the controller; then clamped to `[min_replicas, max_replicas]`. (The API
//!    reference's comment says 60 s periods; the documented and implemented default is 15 s.)
//!
//! A current count outside `[min, max]` is brought back to the bound directly, as the
//! controller does. The sync period (15 s) is the caller's cadence; [`Hpa::next_sync_s`] says
//! when the next sync is due.

use std::collections::VecDeque;

/// A `behavior` scaling policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalingPolicy {
    /// At most this many pods per `period_s`.
    Pods { value: u32, period_s: f64 },
    /// At most this percentage of the count at the period's start per `period_s`.
    Percent { value: u32, period_s: f64 },
}

impl ScalingPolicy {
    fn period_s(&self) -> f64 {
        match *self {
            ScalingPolicy::Pods { period_s, .. } | ScalingPolicy::Percent { period_s, .. } => {
                period_s
            }
        }
    }
}

/// The HPA spec's knobs, with Kubernetes' defaults in [`HpaConfig::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct HpaConfig {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Target average utilisation as a fraction of the request (0.6 = 60 %).
    pub target_utilisation: f64,
    pub tolerance: f64,
    pub sync_period_s: f64,
    pub scale_up_stabilisation_s: f64,
    pub scale_down_stabilisation_s: f64,
    pub scale_up_policies: Vec<ScalingPolicy>,
    pub scale_down_policies: Vec<ScalingPolicy>,
}

impl HpaConfig {
    /// Kubernetes defaults around the given bounds and target.
    pub fn new(min_replicas: u32, max_replicas: u32, target_utilisation: f64) -> Self {
        Self {
            min_replicas,
            max_replicas,
            target_utilisation,
            tolerance: 0.1,
            sync_period_s: 15.0,
            scale_up_stabilisation_s: 0.0,
            scale_down_stabilisation_s: 300.0,
            scale_up_policies: vec![
                ScalingPolicy::Pods {
                    value: 4,
                    period_s: 15.0,
                },
                ScalingPolicy::Percent {
                    value: 100,
                    period_s: 15.0,
                },
            ],
            scale_down_policies: vec![ScalingPolicy::Percent {
                value: 100,
                period_s: 15.0,
            }],
        }
    }
}

/// One pod as the metrics pipeline sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodMetric {
    /// Ready (past its start-up / readiness delay).
    pub ready: bool,
    /// Utilisation as a fraction of the request; `None` when the metric is missing.
    pub utilisation: Option<f64>,
}

/// The HPA controller's memory for one target.
#[derive(Debug, Clone)]
pub struct Hpa {
    cfg: HpaConfig,
    /// `(time, raw recommendation)`.
    recommendations: VecDeque<(f64, u32)>,
    /// `(time, signed replica change)` of applied scalings.
    events: VecDeque<(f64, i64)>,
    last_sync_s: Option<f64>,
}

impl Hpa {
    pub fn new(cfg: HpaConfig) -> Self {
        Self {
            cfg,
            recommendations: VecDeque::new(),
            events: VecDeque::new(),
            last_sync_s: None,
        }
    }

    pub fn config(&self) -> &HpaConfig {
        &self.cfg
    }

    /// Replaces the spec (the HPA object was edited: target, bounds, behaviour) and keeps the
    /// controller's memory — recommendations (the stabilisation windows), applied scalings (the
    /// rate limits) and the sync clock — as the Kubernetes controller does: it keys that memory
    /// by the HPA's name, not by its spec, so an edit does not reopen a scale-down.
    pub fn set_config(&mut self, cfg: HpaConfig) {
        self.cfg = cfg;
    }

    /// When the next sync is due (immediately before the first one).
    pub fn next_sync_s(&self) -> f64 {
        self.last_sync_s.map_or(0.0, |t| t + self.cfg.sync_period_s)
    }

    /// One sync with every pod ready and reporting `average` utilisation.
    pub fn sync_average(&mut self, now_s: f64, current: u32, average: f64) -> u32 {
        let pods = vec![
            PodMetric {
                ready: true,
                utilisation: Some(average),
            };
            current as usize
        ];
        self.sync(now_s, current, &pods)
    }

    /// One sync: returns the desired replica count (== `current` when nothing changes).
    pub fn sync(&mut self, now_s: f64, current: u32, pods: &[PodMetric]) -> u32 {
        self.last_sync_s = Some(now_s);
        let (lo, hi) = (
            self.cfg.min_replicas,
            self.cfg.max_replicas.max(self.cfg.min_replicas),
        );
        let desired = if current == 0 {
            // Scaling to/from zero is disabled in the stock HPA.
            0
        } else if current > hi {
            hi
        } else if current < lo {
            lo
        } else {
            let raw = self.calculate(current, pods);
            self.normalise(now_s, current, raw)
        };
        if desired != current {
            self.events
                .push_back((now_s, i64::from(desired) - i64::from(current)));
        }
        desired
    }

    /// Step 1: the replica calculator.
    fn calculate(&self, current: u32, pods: &[PodMetric]) -> u32 {
        let target = self.cfg.target_utilisation;
        if target <= 0.0 || !target.is_finite() {
            return current;
        }
        let ready: Vec<f64> = pods
            .iter()
            .filter(|p| p.ready)
            .filter_map(|p| p.utilisation.filter(|u| u.is_finite()))
            .collect();
        let unready = pods.iter().filter(|p| !p.ready).count();
        let missing = pods
            .iter()
            .filter(|p| p.ready && !p.utilisation.is_some_and(f64::is_finite))
            .count();
        if ready.is_empty() {
            // No metrics at all: the controller reports an error and keeps the count.
            return current;
        }
        let ratio = ready.iter().sum::<f64>() / ready.len() as f64 / target;
        let scale_up_with_unready = unready > 0 && ratio > 1.0;
        if !scale_up_with_unready && missing == 0 {
            if (ratio - 1.0).abs() <= self.cfg.tolerance {
                return current;
            }
            return (ratio * ready.len() as f64).ceil() as u32;
        }
        let mut sum: f64 = ready.iter().sum();
        let mut n = ready.len();
        if missing > 0 {
            if ratio < 1.0 {
                sum += missing as f64 * target;
            }
            n += missing;
        }
        if scale_up_with_unready {
            n += unready;
        }
        let new_ratio = sum / n as f64 / target;
        if (new_ratio - 1.0).abs() <= self.cfg.tolerance
            || (ratio < 1.0 && new_ratio > 1.0)
            || (ratio > 1.0 && new_ratio < 1.0)
        {
            return current;
        }
        let proposed = (new_ratio * n as f64).ceil() as u32;
        if (new_ratio < 1.0 && proposed > current) || (new_ratio > 1.0 && proposed < current) {
            return current;
        }
        proposed
    }

    /// Steps 2 and 3: stabilisation windows, then rate limits and bounds.
    fn normalise(&mut self, now_s: f64, current: u32, raw: u32) -> u32 {
        let keep = self
            .cfg
            .scale_down_stabilisation_s
            .max(self.cfg.scale_up_stabilisation_s);
        while self
            .recommendations
            .front()
            .is_some_and(|&(t, _)| t <= now_s - keep)
        {
            self.recommendations.pop_front();
        }
        let (mut up, mut down) = (raw, raw);
        for &(t, r) in &self.recommendations {
            if t > now_s - self.cfg.scale_up_stabilisation_s {
                up = up.min(r);
            }
            if t > now_s - self.cfg.scale_down_stabilisation_s {
                down = down.max(r);
            }
        }
        self.recommendations.push_back((now_s, raw));
        let stabilised = current.max(up).min(down);

        let longest = self
            .cfg
            .scale_up_policies
            .iter()
            .chain(&self.cfg.scale_down_policies)
            .map(ScalingPolicy::period_s)
            .fold(0.0, f64::max);
        while self
            .events
            .front()
            .is_some_and(|&(t, _)| t <= now_s - longest)
        {
            self.events.pop_front();
        }
        let (lo, hi) = (
            self.cfg.min_replicas,
            self.cfg.max_replicas.max(self.cfg.min_replicas),
        );
        if stabilised > current {
            let limit = self.scale_up_limit(now_s, current);
            stabilised.min(limit).min(hi).max(lo)
        } else if stabilised < current {
            let limit = self.scale_down_limit(now_s, current);
            stabilised.max(limit).max(lo).min(hi)
        } else {
            stabilised.clamp(lo, hi)
        }
    }

    /// The replica count at the start of a policy period: current − added + removed within
    /// `period_s` before `now_s` (both directions count, as in the controller).
    fn period_start(&self, now_s: f64, period_s: f64, current: u32) -> i64 {
        let changed: i64 = self
            .events
            .iter()
            .filter(|&&(t, _)| t > now_s - period_s)
            .map(|&(_, d)| d)
            .sum();
        i64::from(current) - changed
    }

    /// The most pods any scale-up policy allows (`selectPolicy: Max`).
    fn scale_up_limit(&self, now_s: f64, current: u32) -> u32 {
        let mut best: Option<i64> = None;
        for p in &self.cfg.scale_up_policies {
            let start = self.period_start(now_s, p.period_s(), current);
            let proposed = match *p {
                ScalingPolicy::Pods { value, .. } => start + i64::from(value),
                ScalingPolicy::Percent { value, .. } => {
                    (start as f64 * (1.0 + f64::from(value) / 100.0)).ceil() as i64
                }
            };
            best = Some(best.map_or(proposed, |b| b.max(proposed)));
        }
        // No policy: unlimited (scaling disabled would be `selectPolicy: Disabled`, not modelled).
        best.map_or(u32::MAX, |b| b.clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// The fewest pods any scale-down policy allows (`selectPolicy: Max` = most change).
    fn scale_down_limit(&self, now_s: f64, current: u32) -> u32 {
        let mut best: Option<i64> = None;
        for p in &self.cfg.scale_down_policies {
            let start = self.period_start(now_s, p.period_s(), current);
            let proposed = match *p {
                ScalingPolicy::Pods { value, .. } => start - i64::from(value),
                // Truncated, as the controller does (scale-up rounds up instead).
                ScalingPolicy::Percent { value, .. } => {
                    (start as f64 * (1.0 - f64::from(value) / 100.0)).floor() as i64
                }
            };
            best = Some(best.map_or(proposed, |b| b.min(proposed)));
        }
        best.map_or(0, |b| b.clamp(0, i64::from(u32::MAX)) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(min: u32, max: u32, target: f64) -> Hpa {
        Hpa::new(HpaConfig::new(min, max, target))
    }

    #[test]
    fn documented_ratio_example() {
        // 4 pods at 90 % with a 60 % target: ⌈4 · 0.9/0.6⌉ = ⌈6.0⌉ = 6.
        assert_eq!(hpa(1, 10, 0.6).sync_average(0.0, 4, 0.9), 6);
        // Docs: 200m used, 100m target → ratio 2 → double.
        assert_eq!(hpa(1, 10, 1.0).sync_average(0.0, 3, 2.0), 6);
    }

    #[test]
    fn within_tolerance_nothing_changes() {
        // 0.57/0.6 = 0.95 → |0.95 − 1| = 0.05 ≤ 0.1 → stays at 20 (⌈20 · 0.95⌉ = 19 otherwise).
        assert_eq!(hpa(1, 50, 0.6).sync_average(0.0, 20, 0.57), 20);
        // 1.09 ratio: still inside; 1.2 is outside: ⌈20 · 1.2⌉ = 24.
        assert_eq!(hpa(1, 50, 1.0).sync_average(0.0, 20, 1.09), 20);
        assert_eq!(hpa(1, 50, 1.0).sync_average(0.0, 20, 1.2), 24);
    }

    #[test]
    fn short_dip_does_not_scale_down_within_five_minutes() {
        let mut h = hpa(1, 20, 0.5);
        // At 50 % with 10 pods: ratio 1 → recommendation 10.
        assert_eq!(h.sync_average(0.0, 10, 0.5), 10);
        // A dip to 25 % recommends ⌈10 · 0.5⌉ = 5, but the max over the last 300 s is 10.
        for k in 1..=10 {
            assert_eq!(h.sync_average(15.0 * k as f64, 10, 0.25), 10, "sync {k}");
        }
        // The 10 recorded at t = 0 leaves the window once t − 0 ≥ 300 s (cut-off is exclusive):
        // from t = 300 s every remembered recommendation is 5 → scale down to 5.
        for k in 11..20 {
            assert_eq!(h.sync_average(15.0 * k as f64, 10, 0.25), 10, "sync {k}");
        }
        assert_eq!(h.sync_average(300.0, 10, 0.25), 5);
    }

    #[test]
    fn a_target_change_keeps_the_scale_down_window() {
        let mut h = hpa(1, 20, 0.5);
        // At 50 % with 10 pods and a 50 % target: recommendation 10, kept at t = 0.
        assert_eq!(h.sync_average(0.0, 10, 0.5), 10);
        // The target moves to 80 % and the bounds to [2, 30] at t = 60 s.
        h.set_config(HpaConfig::new(2, 30, 0.8));
        assert_eq!(h.config().target_utilisation, 0.8);
        // A dip to 20 % now recommends ⌈10 · 0.2/0.8⌉ = ⌈2.5⌉ = 3, but the 10 from t = 0 is
        // still inside the 300 s window (t − 0 < 300) → stays at 10 (a fresh HPA would give 3).
        for k in 4..20 {
            assert_eq!(h.sync_average(15.0 * k as f64, 10, 0.2), 10, "sync {k}");
        }
        assert_eq!(hpa(2, 30, 0.8).sync_average(60.0, 10, 0.2), 3);
        // At t = 300 s the 10 has left the window; every remembered recommendation is 3.
        assert_eq!(h.sync_average(300.0, 10, 0.2), 3);
        // The sync clock survived the edit too: next due one period after the last sync.
        assert_eq!(h.next_sync_s(), 315.0);
    }

    #[test]
    fn a_target_change_keeps_the_scale_up_rate_limit() {
        // 2 → 6 at t = 0 (limit max(2 + 4, 2 · 2) = 6). After an edit at t = 5 s a second
        // scale-up in the same 15 s period still counts from the period's start (2 pods): 6.
        let mut cfg = HpaConfig::new(1, 100, 0.1);
        cfg.sync_period_s = 5.0;
        let mut h = Hpa::new(cfg.clone());
        assert_eq!(h.sync_average(0.0, 2, 1.0), 6);
        cfg.target_utilisation = 0.05;
        h.set_config(cfg);
        // Wants ⌈6 · 1.0/0.05⌉ = 120 → capped at 6 (a fresh HPA would allow max(10, 12) = 12).
        assert_eq!(h.sync_average(5.0, 6, 1.0), 6);
    }

    #[test]
    fn scale_up_is_capped_at_max_of_double_and_plus_four() {
        // 2 pods at 10× the target want 20; limit = max(2 + 4, 2 · 2) = 6.
        let mut h = hpa(1, 100, 0.1);
        assert_eq!(h.sync_average(0.0, 2, 1.0), 6);
        // 15 s later the period has rolled over: from 6, max(6 + 4, 12) = 12 (wants 60).
        assert_eq!(h.sync_average(15.0, 6, 1.0), 12);
        // 10 pods want 100: max(14, 20) = 20; and max_replicas caps the next step.
        let mut h = Hpa::new(HpaConfig::new(1, 25, 0.1));
        assert_eq!(h.sync_average(0.0, 10, 1.0), 20);
        assert_eq!(h.sync_average(15.0, 20, 1.0), 25);
    }

    #[test]
    fn second_scale_up_inside_one_period_counts_from_the_period_start() {
        // Sync period shorter than the policy period: at t = 0, 2 → 6 (+4); at t = 5 s the
        // period began with 6 − 4 = 2 pods, so the limit is still max(2 + 4, 4) = 6.
        let mut cfg = HpaConfig::new(1, 100, 0.1);
        cfg.sync_period_s = 5.0;
        let mut h = Hpa::new(cfg);
        assert_eq!(h.sync_average(0.0, 2, 1.0), 6);
        assert_eq!(h.sync_average(5.0, 6, 1.0), 6);
    }

    #[test]
    fn bounds_and_scale_down_policy() {
        // Wants ⌈10 · 0.1⌉ = 1 but min is 3; stabilisation window 0 for this test.
        let mut cfg = HpaConfig::new(3, 10, 1.0);
        cfg.scale_down_stabilisation_s = 0.0;
        assert_eq!(Hpa::new(cfg.clone()).sync_average(0.0, 10, 0.1), 3);
        // A 50 % per 15 s policy: from 10 at most down to ⌈10 · 0.5⌉ = 5.
        cfg.min_replicas = 1;
        cfg.scale_down_policies = vec![ScalingPolicy::Percent {
            value: 50,
            period_s: 15.0,
        }];
        assert_eq!(Hpa::new(cfg.clone()).sync_average(0.0, 10, 0.1), 5);
        // From 3: ⌊3 · 0.5⌋ = ⌊1.5⌋ = 1 (truncated, not rounded up).
        assert_eq!(Hpa::new(cfg).sync_average(0.0, 3, 0.01), 1);
        // Out of bounds is corrected directly.
        assert_eq!(hpa(2, 5, 0.5).sync_average(0.0, 8, 0.5), 5);
        assert_eq!(hpa(2, 5, 0.5).sync_average(0.0, 1, 0.5), 2);
    }

    #[test]
    fn unready_pods_count_as_zero_on_scale_up() {
        let ready = |u| PodMetric {
            ready: true,
            utilisation: Some(u),
        };
        let starting = PodMetric {
            ready: false,
            utilisation: None,
        };
        // 2 ready at 100 % + 2 starting, target 50 %: ratio 2 → scale up with unready.
        // New ratio = (1 + 1 + 0 + 0) / 4 / 0.5 = 1.0 → within tolerance → keep 4.
        let pods = [ready(1.0), ready(1.0), starting, starting];
        assert_eq!(hpa(1, 20, 0.5).sync(0.0, 4, &pods), 4);
        // 2 ready at 150 % + 2 starting: ratio 3; new ratio (3/4)/0.5 = 1.5 → ⌈1.5 · 4⌉ = 6.
        let pods = [ready(1.5), ready(1.5), starting, starting];
        assert_eq!(hpa(1, 20, 0.5).sync(0.0, 4, &pods), 6);
        // On a scale-down unready pods are ignored: 2 ready at 10 % (ratio 0.2) → ⌈0.2 · 2⌉ = 1.
        let mut cfg = HpaConfig::new(1, 20, 0.5);
        cfg.scale_down_stabilisation_s = 0.0;
        let pods = [ready(0.1), ready(0.1), starting, starting];
        assert_eq!(Hpa::new(cfg).sync(0.0, 4, &pods), 1);
    }

    #[test]
    fn missing_metrics_damp_the_move() {
        let mut cfg = HpaConfig::new(1, 20, 0.5);
        cfg.scale_down_stabilisation_s = 0.0;
        let ready = |u| PodMetric {
            ready: true,
            utilisation: Some(u),
        };
        let missing = PodMetric {
            ready: true,
            utilisation: None,
        };
        // Scale-down: 3 at 10 % + 1 missing counted at the 50 % target:
        // (0.3 + 0.5) / 4 / 0.5 = 0.4 → ⌈0.4 · 4⌉ = 2 (without the missing pod: ⌈0.2 · 3⌉ = 1).
        let pods = [ready(0.1), ready(0.1), ready(0.1), missing];
        assert_eq!(Hpa::new(cfg.clone()).sync(0.0, 4, &pods), 2);
        // Scale-up: 3 at 60 % + 1 missing at 0 %: ratio 1.2 → new (1.8/4)/0.5 = 0.9 reverses
        // direction → no change.
        let pods = [ready(0.6), ready(0.6), ready(0.6), missing];
        assert_eq!(Hpa::new(cfg).sync(0.0, 4, &pods), 4);
    }

    #[test]
    fn next_sync_follows_the_period() {
        let mut h = hpa(1, 5, 0.5);
        assert_eq!(h.next_sync_s(), 0.0);
        h.sync_average(30.0, 2, 0.5);
        assert_eq!(h.next_sync_s(), 45.0);
    }
}
