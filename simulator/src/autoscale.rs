//! HorizontalPodAutoscalers in the simulated cluster: the Kubernetes algorithm of
//! [`crate::hpa`] run every sync period on the pods' scraped CPU utilisation. Both the `hpa`
//! baseline and the `homeostat` run use it; homeostat only moves its target and bounds.

use crate::engine::{Change, PodState, View};
use crate::hpa::{Hpa, HpaConfig, PodMetric};
use crate::runs::Action;
use crate::scenario::Scenario;
use crate::telemetry::PodSample;
use crate::topology::Topology;

/// One HPA scaling one subset (Deployment).
pub struct Autoscaler {
    pub service: usize,
    pub subset: usize,
    pub hpa: Hpa,
    pub target_percent: u32,
}

impl Autoscaler {
    /// One HPA per policy that names one, scaling its service's first (stable) subset.
    pub fn from_scenario(s: &Scenario, topo: &Topology) -> Vec<Autoscaler> {
        let mut out: Vec<Autoscaler> = Vec::new();
        for p in &s.policies {
            if p.spec.target.horizontal_pod_autoscaler.is_none() {
                continue;
            }
            let Some(service) = topo.service_index(&p.spec.target.service) else {
                continue;
            };
            let subset = topo.services[service].subsets[0];
            if out.iter().any(|a| a.subset == subset) {
                continue;
            }
            let sub = &topo.subsets[subset];
            let target = s.control_plane.hpa_target_utilization;
            out.push(Autoscaler {
                service,
                subset,
                hpa: Hpa::new(HpaConfig::new(
                    sub.min_pods,
                    sub.max_pods,
                    target as f64 / 100.0,
                )),
                target_percent: target,
            });
        }
        out
    }

    /// Replaces target and bounds (the HPA object was edited); the controller's memory
    /// (stabilisation windows, rate limits, sync clock) carries over, as in Kubernetes.
    pub fn reconfigure(&mut self, min: u32, max: u32, target_percent: u32) {
        let mut cfg = self.hpa.config().clone();
        cfg.min_replicas = min;
        cfg.max_replicas = max;
        cfg.target_utilisation = target_percent as f64 / 100.0;
        self.hpa.set_config(cfg);
        self.target_percent = target_percent;
    }

    /// One sync at `now` if due: the replica change, if any, with its explanation.
    pub fn sync(&mut self, view: &View<'_>) -> Option<Action> {
        let now_s = view.now as f64 / 1e9;
        if now_s + 1e-9 < self.hpa.next_sync_s() {
            return None;
        }
        let conc = view.topology.services[self.service].concurrency as f64;
        let mut pods = Vec::new();
        for (i, p) in view.pods.iter().enumerate() {
            if p.subset as usize != self.subset
                || !matches!(p.state, PodState::Ready | PodState::Starting)
            {
                continue;
            }
            let ready = p.state == PodState::Ready;
            let util = view
                .scrapes
                .points(1, |s: &PodSample| s.pod as usize == i)
                .first()
                .filter(|(_, secs, _)| *secs > 0.0)
                .map(|(_, secs, c)| c.busy_ns as f64 / 1e9 / secs / conc);
            pods.push(PodMetric {
                ready,
                utilisation: if ready { util } else { None },
            });
        }
        let current = pods.len() as u32;
        let desired = self.hpa.sync(now_s, current, &pods);
        if desired == current {
            return None;
        }
        let measured: Vec<f64> = pods.iter().filter_map(|p| p.utilisation).collect();
        let mean = if measured.is_empty() {
            f64::NAN
        } else {
            measured.iter().sum::<f64>() / measured.len() as f64
        };
        Some(Action {
            change: Some(Change::Replicas {
                subset: self.subset,
                replicas: desired,
            }),
            knob: "replicas".to_string(),
            summary: format!(
                "{}: {current} → {desired} replicas",
                view.topology.subsets[self.subset].label
            ),
            reason: format!(
                "HPA: mean CPU utilisation {:.0}% vs target {}%",
                mean * 100.0,
                self.target_percent
            ),
        })
    }
}
