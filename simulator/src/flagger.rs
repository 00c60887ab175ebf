//! The `flagger` baseline: Flagger's canary analysis (fluxcd/flagger, Istio provider) on every
//! service with two or more subsets — the first subset is the primary, the second the canary.
//! It is what a team that runs canaries runs instead of a fixed split.
//!
//! The algorithm, as Flagger's docs ("Canary analysis", "Deployment strategies") describe it, run
//! every analysis `interval` on the canary's own telemetry:
//!
//! 1. If the failed-check count has reached `threshold`: **roll back** — all traffic to the
//!    primary, the canary scaled to zero (weight 0 here), the canary marked failed. Done.
//! 2. Run the metric checks over the last metric interval: `request-success-rate` (non-5xx share
//!    of the canary's requests, in percent) must be ≥ its `min`; `request-duration` (the
//!    canary's p99, ms) must be ≤ its `max`. A metric with no data fails its check (Flagger:
//!    "no values found"). Any failed check: failed checks + 1, weight unchanged.
//! 3. All checks pass and the canary weight is below `maxWeight`: weight + `stepWeight` (capped).
//! 4. All checks pass at `maxWeight`: **promote** — the primary takes the canary's version and
//!    all the traffic. (Flagger copies the spec, waits for the primary's rollout, then routes;
//!    the simulator does it in one config push.)
//!
//! Values (none is a hard-coded default in Flagger's CRD; these are the ones every Flagger
//! tutorial and the Canary CRD reference use): `interval` 1 m, `threshold` 5, `maxWeight` 50,
//! `stepWeight` 10, `request-success-rate` min 99 % over 1 m, `request-duration` max 500 ms over
//! 1 m. The canary starts at the scenario's route weight, as if the rollout had reached it.
//! The scenario's HPA, if any, keeps running at its stock target (Flagger's `autoscalerRef`).

use crate::baseline::HpaController;
use crate::engine::{Change, View};
use crate::runs::{Action, Controller, TickOutput};
use crate::scenario::Scenario;
use crate::telemetry::PodSample;
use crate::topology::Topology;

const SECOND: u64 = 1_000_000_000;

/// A Canary's analysis settings (see the module docs for the values and their source).
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub interval: u64,
    pub threshold: u32,
    pub max_weight: u32,
    pub step_weight: u32,
    pub min_success_percent: f64,
    pub max_p99_ms: f64,
    pub metric_interval: u64,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            interval: 60 * SECOND,
            threshold: 5,
            max_weight: 50,
            step_weight: 10,
            min_success_percent: 99.0,
            max_p99_ms: 500.0,
            metric_interval: 60 * SECOND,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Progressing,
    Promoted,
    Failed,
}

/// What one analysis run decided (pure, for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to route differently (a failed check, or a finished canary).
    Hold,
    /// New canary weight in percent.
    Weight(u32),
    Promote,
    Rollback,
}

/// One Canary's state machine.
#[derive(Debug, Clone)]
pub struct Canary {
    pub analysis: Analysis,
    pub weight: u32,
    pub failed_checks: u32,
    pub phase: Phase,
}

impl Canary {
    pub fn new(analysis: Analysis, weight: u32) -> Canary {
        Canary {
            analysis,
            weight,
            failed_checks: 0,
            phase: Phase::Progressing,
        }
    }

    /// One analysis run given the canary's success rate (percent) and p99 (ms) over the metric
    /// interval; `None` means no data.
    pub fn advance(&mut self, success_percent: Option<f64>, p99_ms: Option<f64>) -> Step {
        if self.phase != Phase::Progressing {
            return Step::Hold;
        }
        let a = &self.analysis;
        if self.failed_checks >= a.threshold {
            self.phase = Phase::Failed;
            self.weight = 0;
            return Step::Rollback;
        }
        let ok = success_percent.is_some_and(|s| s >= a.min_success_percent)
            && p99_ms.is_some_and(|p| p <= a.max_p99_ms);
        if !ok {
            self.failed_checks += 1;
            return Step::Hold;
        }
        if self.weight < a.max_weight {
            self.weight = (self.weight + a.step_weight).min(a.max_weight);
            return Step::Weight(self.weight);
        }
        self.phase = Phase::Promoted;
        self.weight = 0;
        Step::Promote
    }
}

struct Target {
    service: usize,
    primary: usize,
    canary: usize,
    state: Canary,
    next_check: u64,
}

/// Flagger on every multi-subset service, with the scenario's HPAs at their stock target.
pub struct FlaggerController {
    targets: Vec<Target>,
    hpa: HpaController,
}

/// Whether Flagger has anything to do in this topology (a service with a canary subset).
pub fn applies(topo: &Topology) -> bool {
    topo.services.iter().any(|s| s.subsets.len() > 1)
}

impl FlaggerController {
    pub fn new(s: &Scenario, topo: &Topology) -> FlaggerController {
        let analysis = Analysis::default();
        let targets = topo
            .services
            .iter()
            .enumerate()
            .filter(|(_, svc)| svc.subsets.len() > 1)
            .map(|(service, svc)| {
                let total: f64 = svc
                    .subsets
                    .iter()
                    .map(|&i| topo.subsets[i].initial_weight)
                    .sum();
                let w = topo.subsets[svc.subsets[1]].initial_weight;
                let percent = if total > 0.0 {
                    (100.0 * w / total).round() as u32
                } else {
                    0
                };
                Target {
                    service,
                    primary: svc.subsets[0],
                    canary: svc.subsets[1],
                    state: Canary::new(analysis.clone(), percent),
                    next_check: analysis.interval,
                }
            })
            .collect();
        FlaggerController {
            targets,
            hpa: HpaController::new(s, topo),
        }
    }
}

impl Controller for FlaggerController {
    fn tick(&mut self, view: &View<'_>) -> TickOutput {
        let mut out = self.hpa.tick(view);
        for t in &mut self.targets {
            if view.now < t.next_check {
                continue;
            }
            t.next_check = view.now + t.state.analysis.interval;
            let back =
                (t.state.analysis.metric_interval / view.scrapes.interval_ns).max(1) as usize;
            let canary = t.canary as u32;
            let (success, p99) = match view
                .scrapes
                .increase(back, |s: &PodSample| s.subset == canary)
            {
                Some((_, c)) if c.requests > 0 => (
                    Some(100.0 * (1.0 - c.errors as f64 / c.requests as f64)),
                    c.quantile_ms(0.99),
                ),
                _ => (None, None),
            };
            let before = t.state.failed_checks;
            let step = t.state.advance(success, p99);
            let label = &view.topology.subsets[t.canary].label;
            let fmt = |v: Option<f64>| v.map_or("no data".to_string(), |x| format!("{x:.2}"));
            if t.state.failed_checks > before {
                out.findings.push(format!(
                    "{label}: canary check failed ({}/{}): success {} %, p99 {} ms",
                    t.state.failed_checks,
                    t.state.analysis.threshold,
                    fmt(success),
                    fmt(p99)
                ));
            }
            let subsets = &view.topology.services[t.service].subsets;
            let split = |canary_w: u32| -> Vec<f64> {
                subsets
                    .iter()
                    .map(|&s| {
                        if s == t.primary {
                            f64::from(100 - canary_w)
                        } else if s == t.canary {
                            f64::from(canary_w)
                        } else {
                            0.0
                        }
                    })
                    .collect()
            };
            let (change, summary, reason) = match step {
                Step::Hold => continue,
                Step::Weight(w) => (
                    Change::Weights {
                        service: t.service,
                        weights: split(w),
                    },
                    format!("{label}: canary weight → {w}%"),
                    "Flagger: all metric checks passed".to_string(),
                ),
                Step::Rollback => (
                    Change::Weights {
                        service: t.service,
                        weights: split(0),
                    },
                    format!("{label}: rolled back, all traffic to the primary"),
                    format!(
                        "Flagger: {} failed checks reached the threshold",
                        t.state.failed_checks
                    ),
                ),
                Step::Promote => (
                    Change::Promote {
                        service: t.service,
                        from: t.canary,
                        to: t.primary,
                    },
                    format!("{label}: promoted to primary"),
                    "Flagger: checks passed at maxWeight".to_string(),
                ),
            };
            out.actions.push(Action {
                change: Some(change),
                knob: "canary".to_string(),
                summary,
                reason,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_checks_step_to_max_weight_then_promote() {
        // Start at 10 %: passes take it to 20, 30, 40, 50 (maxWeight), and the next promotes.
        let mut c = Canary::new(Analysis::default(), 10);
        let good = (Some(99.9), Some(120.0));
        let steps: Vec<Step> = (0..5).map(|_| c.advance(good.0, good.1)).collect();
        assert_eq!(
            steps,
            vec![
                Step::Weight(20),
                Step::Weight(30),
                Step::Weight(40),
                Step::Weight(50),
                Step::Promote
            ]
        );
        assert_eq!(c.phase, Phase::Promoted);
        assert_eq!(c.advance(Some(0.0), None), Step::Hold);
    }

    #[test]
    fn five_failed_checks_then_rollback_at_the_next_interval() {
        // Success 98.9 % < 99 % fails; so does p99 501 ms > 500 ms, and no data. Five failures
        // (threshold 5) hold the weight; the sixth run rolls back.
        let mut c = Canary::new(Analysis::default(), 10);
        let runs = [
            (Some(98.9), Some(10.0)),
            (Some(100.0), Some(501.0)),
            (None, None),
            (Some(50.0), Some(10.0)),
            (Some(50.0), Some(10.0)),
        ];
        for (i, (s, p)) in runs.into_iter().enumerate() {
            assert_eq!(c.advance(s, p), Step::Hold);
            assert_eq!(c.failed_checks, i as u32 + 1);
        }
        assert_eq!(c.weight, 10);
        assert_eq!(c.advance(Some(100.0), Some(1.0)), Step::Rollback);
        assert_eq!((c.phase, c.weight), (Phase::Failed, 0));
    }

    #[test]
    fn a_failed_check_does_not_reset_on_a_pass() {
        // Flagger counts failed checks over the whole analysis: 1 failure, 1 pass (10 → 20),
        // 4 failures = 5, then rollback.
        let mut c = Canary::new(Analysis::default(), 10);
        assert_eq!(c.advance(Some(90.0), Some(1.0)), Step::Hold);
        assert_eq!(c.advance(Some(100.0), Some(1.0)), Step::Weight(20));
        for _ in 0..4 {
            assert_eq!(c.advance(Some(90.0), Some(1.0)), Step::Hold);
        }
        assert_eq!(c.advance(Some(100.0), Some(1.0)), Step::Rollback);
    }
}
