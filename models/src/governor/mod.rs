//! The Governor: observations in, an explained and guarded [`Plan`] out.
//!
//! ```text
//!  Observation ─► valid? ── no ──► InsufficientData finding naming the field, empty plan
//!              ─► feed models (detectors, forecaster; each point once)
//!              ─► enough data? ── no ──► InsufficientData finding, empty plan
//!              ─► rollbacks (objectives worse after an applied change?)
//!              ─► planners: weights · outlier · retries · autoscaling (each proposes ≤ 1 change)
//!              ─► slow endpoints: a per-try timeout that turns a slow pod's answers into
//!                 retried 504s, which outlier detection then ejects (when retries proposed
//!                 nothing this run)
//!              ─► guardrails::admit ─► Plan { changes, held }
//! ```
//!
//! The Governor never looks at `spec.mode`: DryRun and Enforce get the same decision and only
//! the adapter differs (it applies `plan.changes` and reports each with [`Governor::applied`]).
//! Every proposal is exactly what is to be applied: within the policy's bounds, the replica cap,
//! the route timeout and what Envoy accepts (`maxEjectionTime ≥ baseEjectionTime`, weights
//! summing to 100), so an adapter translates it and decides nothing.
//! State is per service in a `BTreeMap`, so one Governor serves many services deterministically.

mod alert;
mod autoscaling;
mod callers;
mod capacity;
mod clusters;
mod guardrails;
mod latency;
mod memory;
mod observation;
mod outlier;
mod plan;
mod pod;
mod queueing;
mod retries;
mod weights;
mod window;

use std::collections::BTreeMap;

pub use alert::{Alert, RemediationRecord, RevertVerdict, matching_actions, revert_verdicts};
pub use guardrails::Snapshot;
/// The typed `retryOn` of [`RetryConfig`], from the one home of Envoy's semantics.
pub use homeostat_dataplane::config::RetryOn;
pub use memory::{GovernorMemory, MemoryError, Readings, ServiceMemory};
pub use observation::{
    EndpointObservation, HpaConfig, MeshConfig, Observation, OutlierConfig, RetryConfig, Signals,
    SubsetObservation,
};
pub use plan::{
    Change, Decision, Evidence, Finding, FindingKind, Hold, Knob, KnobValue, Origin, Plan, Posture,
};
pub use queueing::{erlang_c, wait_quantile};

use crate::policy::{PolicySpec, RemediationAction};

/// What one planner call sees.
pub(crate) struct Ctx<'a> {
    pub obs: &'a Observation,
    pub spec: &'a PolicySpec,
}

/// Per-service model state.
#[derive(Default)]
struct ServiceState {
    /// Newest timestamp already fed to the streaming models.
    fed_until: Option<i64>,
    guard: guardrails::GuardState,
    weights: weights::WeightsState,
    retries: retries::RetriesState,
    outlier: outlier::OutlierState,
    slow: latency::SlowState,
    autoscaling: autoscaling::AutoscalingState,
}

/// The decision core. One value serves any number of services.
#[derive(Default)]
pub struct Governor {
    services: BTreeMap<String, ServiceState>,
}

impl Governor {
    pub fn new() -> Self {
        Self::default()
    }

    /// One run of the control loop for `obs.service` at `now` (unix seconds).
    pub fn step(&mut self, now: i64, obs: &Observation, spec: &PolicySpec) -> Decision {
        let state = self.services.entry(obs.service.clone()).or_default();
        if let Err(e) = obs.validate(spec) {
            return invalid(state, now, obs, spec, &e);
        }
        let ctx = Ctx { obs, spec };
        feed(state, &ctx);
        let mut findings = Vec::new();
        if let Err(f) = guardrails::data_sufficiency(obs, spec) {
            findings.push(f);
            // A run without data still breaks a relaxing streak: hysteresis counts runs in a row.
            let plan = state.guard.admit(now, spec, Vec::new(), true, None);
            return Decision {
                service: obs.service.clone(),
                at: now,
                findings,
                plan,
            };
        }
        state.guard.observe(now, obs, spec);
        let mut proposals = state.guard.rollbacks(now, spec, obs, &mut findings);
        let weights_moved = state.guard.last_applied(Knob::Weights);
        let retry_change = retries::plan(&ctx, &mut state.retries, &mut findings);
        let slow = latency::plan(&ctx, &mut state.slow, &mut findings);
        // The slow-endpoint timeout chosen below, and it needs outlier detection raised to eject
        // the slow pods: if that change is held, so is the timeout (`latency::SlowPlan`).
        let needs = (retry_change.is_none() && slow.change.is_some() && slow.needs_ejection_raise)
            .then_some((Knob::Retries, Knob::OutlierDetection));
        let planned = [
            weights::plan(&ctx, &mut state.weights, weights_moved, &mut findings),
            outlier::plan(&ctx, &mut state.outlier, &slow.endpoints, &mut findings),
            // One retries change a run: the retries planner's (failures, overload) first; the
            // slow-endpoint timeout waits for a run where retries have nothing to say.
            retry_change.or(slow.change),
            autoscaling::plan(&ctx, &mut state.autoscaling, &mut findings),
        ];
        for change in planned.into_iter().flatten() {
            // A rollback of the knob wins over a fresh proposal for it in the same run.
            if !proposals.iter().any(|p| p.knob == change.knob) {
                proposals.push(change);
            }
        }
        let plan = state.guard.admit(now, spec, proposals, true, needs);
        Decision {
            service: obs.service.clone(),
            at: now,
            findings,
            plan,
        }
    }

    /// The plan for the policy's remediation actions matching `alert`, through the same
    /// guardrails as [`Governor::step`]. A `freeze` action freezes this service for
    /// `guardrails.freezeDuration` after the other actions are planned (and held).
    pub fn on_alert(
        &mut self,
        now: i64,
        alert: &Alert,
        obs: &Observation,
        spec: &PolicySpec,
    ) -> Decision {
        let state = self.services.entry(obs.service.clone()).or_default();
        if let Err(e) = obs.validate(spec) {
            return invalid(state, now, obs, spec, &e);
        }
        let ctx = Ctx { obs, spec };
        feed(state, &ctx);
        let actions = matching_actions(spec, alert);
        let mut findings = vec![Finding {
            kind: FindingKind::Note,
            subject: format!("alert {}", alert.alertname),
            summary: if actions.is_empty() {
                format!(
                    "no remediation in the policy matches alert {}",
                    alert.alertname
                )
            } else {
                format!(
                    "alert {} matches remediation actions {:?}",
                    alert.alertname, actions
                )
            },
            evidence: Vec::new(),
        }];
        let origin = plan::Origin::Alert(alert.alertname.clone());
        let mut proposals: Vec<Change> = Vec::new();
        for action in &actions {
            let change = match action {
                RemediationAction::ShiftToStable => weights::shift_to_stable(
                    &ctx,
                    state.guard.last_applied(Knob::Weights),
                    &mut findings,
                ),
                RemediationAction::EjectOutliers => outlier::eject_outliers(&ctx, &mut findings),
                RemediationAction::ScaleUp => autoscaling::scale_up(&ctx, &mut findings),
                RemediationAction::TightenRetries => retries::tighten(&ctx, &mut findings),
                RemediationAction::DisableRetries => retries::disable(&ctx),
                RemediationAction::Freeze => None,
            };
            if let Some(mut c) = change {
                c.origin = origin.clone();
                // disableRetries and tightenRetries both touch retries: the stronger, later one wins.
                proposals.retain(|p| p.knob != c.knob);
                proposals.push(c);
            }
        }
        let plan = state.guard.admit(now, spec, proposals, false, None);
        if actions.contains(&RemediationAction::Freeze) {
            let until = now.saturating_add(spec.guardrails.freeze_duration.as_secs_ceil());
            state.guard.freeze_until(until);
            findings.push(Finding {
                kind: FindingKind::Note,
                subject: "service".into(),
                summary: format!(
                    "changes frozen for {} by alert {}",
                    spec.guardrails.freeze_duration, alert.alertname
                ),
                evidence: vec![Evidence::new("frozen_until", until as f64)],
            });
        }
        Decision {
            service: obs.service.clone(),
            at: now,
            findings,
            plan,
        }
    }

    /// The adapter applied `change` to `service` at `now`: cooldowns, the hourly budget and
    /// rollback count from here, and planners learn their new baseline.
    pub fn applied(&mut self, now: i64, service: &str, change: &Change) {
        let state = self.services.entry(service.to_string()).or_default();
        state.guard.applied(now, change);
        // Only a cut of retries is something the retries planner restores after the overload;
        // a protective per-try timeout (slow endpoints) is withdrawn by its own planner, and a
        // rollback's "before" is the value judged harmful, not one to restore (restoring it
        // was the 2 → 3 → 2 → 3 retries flapping on a pod failing on and off).
        if let (KnobValue::Retries(before), KnobValue::Retries(after)) =
            (&change.current, &change.proposed)
            && change.posture == Posture::Protect
            && change.origin != Origin::Rollback
            && after.attempts < before.attempts
        {
            state.retries.remember_before_cut(before);
        }
        state.weights.applied(now, change);
        state.outlier.applied(now, change);
        state.autoscaling.applied(now, change);
    }

    /// Number of services with state.
    pub fn services(&self) -> usize {
        self.services.len()
    }
}

/// The answer to an observation the Governor cannot use: a finding naming the field, no change.
/// Like a run without data, it breaks a relaxing streak.
fn invalid(
    state: &mut ServiceState,
    now: i64,
    obs: &Observation,
    spec: &PolicySpec,
    e: &crate::policy::FieldError,
) -> Decision {
    let plan = state.guard.admit(now, spec, Vec::new(), true, None);
    Decision {
        service: obs.service.clone(),
        at: now,
        findings: vec![Finding {
            kind: FindingKind::InsufficientData,
            subject: "observation".into(),
            summary: format!("unusable observation, holding every knob: {e}"),
            evidence: Vec::new(),
        }],
        plan,
    }
}

/// Feeds the points newer than what the models have seen, oldest first.
fn feed(state: &mut ServiceState, ctx: &Ctx<'_>) {
    let obs = ctx.obs;
    let step = obs.step_seconds.max(1);
    let len = obs.service_signals.request_rate.len();
    if state.fed_until.is_some_and(|t| t >= obs.end) {
        return;
    }
    let from = window::first_unseen(obs.end, step, len, state.fed_until);
    for i in from..len {
        let v = obs.service_signals.request_rate[i];
        state.autoscaling.feed(v, step);
    }
    weights::feed(&mut state.weights, obs, state.fed_until);
    state.fed_until = Some(obs.end);
}
