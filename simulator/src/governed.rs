//! The `homeostat` run: every telemetry interval, the real `Governor::step` (the code the
//! controller runs) on an Observation built from scraped telemetry, for each of the scenario's
//! policies in Enforce mode; each Change of its Plan is translated into the simulated mesh
//! (after the config push latency) and recorded with its reason. The cluster's HPAs keep running
//! the Kubernetes algorithm; homeostat moves their targets and bounds.

use homeostat_dataplane::config::RetryOn;
use homeostat_models::governor::{
    Change as GovChange, FindingKind, Governor, HpaConfig, KnobValue,
};
use homeostat_models::policy::{Mode, PolicySpec};

use crate::autoscale::Autoscaler;
use crate::duration::Nanos;
use crate::engine::{Change, View};
use crate::observe;
use crate::runs::{Action, Controller, TickOutput};
use crate::scenario::Scenario;
use crate::topology::Topology;

pub struct GovernorController {
    governor: Governor,
    policies: Vec<(usize, PolicySpec)>,
    autoscalers: Vec<Autoscaler>,
    pod_startup: u64,
}

impl GovernorController {
    pub fn new(s: &Scenario, topo: &Topology) -> Result<GovernorController, String> {
        let mut policies = Vec::new();
        for p in &s.policies {
            let service = topo
                .service_index(&p.spec.target.service)
                .ok_or_else(|| format!("policy {:?}: unknown service", p.metadata.name))?;
            let mut spec = p.spec.clone();
            spec.mode = Mode::Enforce;
            policies.push((service, spec));
        }
        Ok(GovernorController {
            governor: Governor::new(),
            policies,
            autoscalers: Autoscaler::from_scenario(s, topo),
            pod_startup: s.control_plane.pod_startup.nanos(),
        })
    }
}

impl Controller for GovernorController {
    fn tick(&mut self, view: &View<'_>) -> TickOutput {
        let mut out = TickOutput::default();
        for a in &mut self.autoscalers {
            if let Some(action) = a.sync(view) {
                out.actions.push(action);
            }
        }
        let now_s = (view.now / 1_000_000_000) as i64;
        for (service, spec) in &self.policies {
            let service = *service;
            let scaler = self.autoscalers.iter_mut().find(|a| a.service == service);
            let hpa = scaler.as_ref().map(|a| HpaConfig {
                min_replicas: a.hpa.config().min_replicas,
                max_replicas: a.hpa.config().max_replicas,
                target_utilization_percent: a.target_percent,
                current_replicas: view.replicas(a.subset),
            });
            let obs = observe::observe(view, service, hpa, self.pod_startup);
            let decision = self.governor.step(now_s, &obs, spec);
            for f in &decision.findings {
                if matches!(f.kind, FindingKind::Anomaly | FindingKind::Regression) {
                    out.findings
                        .push(format!("{} {}: {}", obs.service, f.subject, f.summary));
                }
            }
            let mut scaler = scaler;
            for ch in &decision.plan.changes {
                if let Some(action) = translate(view, service, ch, scaler.as_deref_mut()) {
                    out.actions.push(action);
                    self.governor.applied(now_s, &obs.service, ch);
                }
            }
        }
        out
    }
}

/// One Governor change as the simulated mesh applies it.
fn translate(
    view: &View<'_>,
    service: usize,
    ch: &GovChange,
    scaler: Option<&mut Autoscaler>,
) -> Option<Action> {
    let topo = view.topology;
    let svc = &topo.services[service];
    let change = match &ch.proposed {
        KnobValue::Weights(map) => {
            let weights: Vec<f64> = svc
                .subsets
                .iter()
                .map(|&sub| *map.get(&topo.subsets[sub].name).unwrap_or(&0) as f64)
                .collect();
            if weights.iter().sum::<f64>() <= 0.0 {
                return None;
            }
            Some(Change::Weights { service, weights })
        }
        KnobValue::OutlierDetection(o) => {
            let mut config = view.config[service].outlier.clone();
            config.consecutive_5xx = o.consecutive_5xx_errors;
            config.interval = (o.interval.as_secs_f64() * 1e9) as u64;
            config.base_ejection_time = (o.base_ejection_time.as_secs_f64() * 1e9) as u64;
            config.max_ejection_time = config.max_ejection_time.max(config.base_ejection_time);
            config.max_ejection_percent = o.max_ejection_percent;
            Some(Change::Outlier { service, config })
        }
        KnobValue::Retries(r) => {
            let mut policy = view.config[service].retries.clone();
            policy.attempts = r.attempts;
            let per_try = (r.per_try_timeout.as_secs_f64() * 1e9) as u64;
            policy.per_try_timeout = (per_try > 0 && per_try < svc.timeout).then_some(per_try);
            if let Ok(on) = RetryOn::parse(&r.retry_on) {
                policy.retry_on = on;
            }
            Some(Change::Retries {
                service,
                policy,
                limit: view.config[service].retry_limit.clone(),
            })
        }
        KnobValue::Autoscaling(h) => {
            let scaler = scaler?;
            let cap = topo.subsets[scaler.subset].max_pods;
            scaler.reconfigure(
                h.min_replicas.min(cap),
                h.max_replicas.min(cap).max(h.min_replicas.min(cap)),
                h.target_utilization_percent,
            );
            None
        }
    };
    Some(Action {
        change,
        knob: ch.knob.to_string(),
        summary: format!(
            "{}: {} → {}",
            svc.name,
            describe(&ch.current),
            describe(&ch.proposed)
        ),
        reason: ch.reason.clone(),
    })
}

fn describe(v: &KnobValue) -> String {
    match v {
        KnobValue::Weights(m) => m
            .iter()
            .map(|(k, w)| format!("{k} {w}%"))
            .collect::<Vec<_>>()
            .join(", "),
        KnobValue::OutlierDetection(o) => format!(
            "eject after {} 5xx, max {}%, base {}s",
            o.consecutive_5xx_errors,
            o.max_ejection_percent,
            o.base_ejection_time.as_secs_f64()
        ),
        KnobValue::Retries(r) => format!(
            "{} retries, per-try {}s",
            r.attempts,
            r.per_try_timeout.as_secs_f64()
        ),
        KnobValue::Autoscaling(h) => format!(
            "HPA target {}%, {}..{} replicas",
            h.target_utilization_percent, h.min_replicas, h.max_replicas
        ),
    }
}
