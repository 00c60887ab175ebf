//! The `homeostat` run: every telemetry interval, the real `Governor::step` (the code the
//! controller runs) on an Observation built from scraped telemetry, for each of the scenario's
//! policies; in Enforce mode each Change of its Plan is translated into the simulated mesh
//! (after the config push latency) and recorded with its reason, in DryRun mode nothing is
//! applied. The cluster's HPAs keep running the Kubernetes algorithm; homeostat moves their
//! targets and bounds.
//!
//! Translation only: the Governor's plan is already exactly what is to be applied (bounds,
//! replica cap, route timeout, Envoy's constraints), so nothing here decides.

use homeostat_models::governor::{
    Change as GovChange, FindingKind, Governor, HpaConfig, KnobValue,
};
use homeostat_models::policy::{Mode, Neighbour, PolicySpec, sharing_target};

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
    notes: Vec<String>,
}

impl GovernorController {
    /// The scenario's policies, less those that share a target with another
    /// (`policy::sharing_target`): as in a cluster, neither acts, and a note says why.
    pub fn new(s: &Scenario, topo: &Topology) -> Result<GovernorController, String> {
        let mut policies = Vec::new();
        let mut notes = Vec::new();
        // A scenario is one namespace.
        let neighbours: Vec<Neighbour<'_>> = s
            .policies
            .iter()
            .map(|p| Neighbour {
                namespace: "",
                spec: &p.spec,
            })
            .collect();
        for (i, p) in s.policies.iter().enumerate() {
            let service = topo
                .service_index(&p.spec.target.service)
                .ok_or_else(|| format!("policy {:?}: unknown service", p.metadata.name))?;
            let shared: Vec<String> = sharing_target(&neighbours, i)
                .into_iter()
                .map(|(j, what)| {
                    format!(
                        "{what} is also governed by policy {}",
                        s.policies[j].metadata.name
                    )
                })
                .collect();
            if shared.is_empty() {
                policies.push((service, p.spec.clone()));
            } else {
                notes.push(format!(
                    "policy {}: {}: two policies would each rewrite it, so neither acts (as the controller does)",
                    p.metadata.name,
                    shared.join("; ")
                ));
            }
        }
        Ok(GovernorController {
            governor: Governor::new(),
            policies,
            autoscalers: Autoscaler::from_scenario(s, topo),
            pod_startup: s.control_plane.pod_startup.nanos(),
            notes,
        })
    }

    /// What the user should know about the run: the policies that do not act, and why.
    pub fn notes(&self) -> &[String] {
        &self.notes
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
                replica_cap: Some(view.topology.subsets[a.subset].max_pods),
            });
            let obs = observe::observe(view, service, hpa, self.pod_startup);
            let decision = self.governor.step(now_s, &obs, spec);
            for f in &decision.findings {
                if matches!(f.kind, FindingKind::Anomaly | FindingKind::Regression) {
                    out.findings
                        .push(format!("{} {}: {}", obs.service, f.subject, f.summary));
                }
            }
            if spec.mode != Mode::Enforce {
                continue;
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
                .map(|&sub| f64::from(*map.get(&topo.subsets[sub].name).unwrap_or(&0)))
                .collect();
            Some(Change::Weights { service, weights })
        }
        KnobValue::OutlierDetection(o) => {
            let mut config = view.config[service].outlier.clone();
            config.consecutive_5xx = o.consecutive_5xx_errors;
            config.interval = o.interval.as_nanos();
            config.base_ejection_time = o.base_ejection_time.as_nanos();
            config.max_ejection_time = o.max_ejection_time.as_nanos();
            config.max_ejection_percent = o.max_ejection_percent;
            Some(Change::Outlier { service, config })
        }
        KnobValue::Retries(r) => {
            let mut policy = view.config[service].retries.clone();
            policy.attempts = r.attempts;
            policy.per_try_timeout = r.per_try_timeout.map(|t| t.as_nanos());
            policy.retry_on = r.retry_on.clone();
            Some(Change::Retries {
                service,
                policy,
                limit: view.config[service].retry_limit.clone(),
            })
        }
        KnobValue::Autoscaling(h) => {
            let scaler = scaler?;
            scaler.reconfigure(h.min_replicas, h.max_replicas, h.target_utilization_percent);
            None
        }
    };
    Some(Action {
        change,
        knob: ch.knob.to_string(),
        summary: format!("{}: {} → {}", svc.name, ch.current, ch.proposed),
        reason: ch.reason.clone(),
    })
}
