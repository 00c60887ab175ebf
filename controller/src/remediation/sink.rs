//! `RemediationSink` over the cluster. For each firing occurrence, in this order:
//!
//! 1. read the policy fresh (not the cache): an occurrence already in
//!    `status.alertRemediations` is not acted on again — a redelivery, a restarted controller,
//!    another replica;
//! 2. Enforce: read the governed objects (the reconciler's reader);
//! 3. write status first: the record and, in Enforce, the changes about to be applied on
//!    `appliedChanges` (a write-ahead record: if the controller dies before or during the mesh
//!    writes, the restarted one neither acts on the occurrence again nor forgets the cooldown —
//!    at most a change is recorded that never landed, which only makes the guardrails stricter);
//! 4. Enforce: each change through the reconciler's actuator (server-side apply of the owned
//!    fields, field manager `homeostat`); a change that fails is taken off `appliedChanges` again
//!    and listed in the record's `failed`;
//! 5. an Event and a metric per change: applied, recommended (DryRun), held (by a guardrail),
//!    failed.
//!
//! DryRun writes the record (status) and nothing else: no mesh object is read or written.

use std::sync::Arc;

use homeostat_models::governor::Change;
use homeostat_models::policy::Mode;
use kube::api::Api;
use kube::runtime::events::EventType;

use super::directory::outcome_message;
use super::record::{self, applied_knobs};
use super::status::{self, Carry};
use crate::crd::status::knob_name;
use crate::crd::{AdaptivePolicy, AlertRemediation, AppliedChange, Recommendation};
use crate::reconcile::Context;
use crate::reconcile::policy::{
    Live, describe, event, knob_action, original, read_live, write_change,
};
use crate::telemetry::ObservationSource;
use crate::webhook::{AlertKey, HandOver, PolicyKey, Remediation, RemediationSink, SeamError};

pub struct KubeSink<S> {
    ctx: Arc<Context<S>>,
}

impl<S> KubeSink<S> {
    pub fn new(ctx: Arc<Context<S>>) -> Self {
        Self { ctx }
    }
}

/// The policy as the API server has it now.
pub(crate) async fn fresh<S>(
    ctx: &Context<S>,
    key: &PolicyKey,
) -> Result<(Api<AdaptivePolicy>, AdaptivePolicy), SeamError> {
    let api: Api<AdaptivePolicy> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let p = api
        .get(&key.name)
        .await
        .map_err(|e| SeamError(format!("reading AdaptivePolicy {key}: {e}")))?;
    Ok((api, p))
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "Enforce",
        Mode::DryRun => "DryRun",
    }
}

/// Applies `changes` after status recorded them: the reconciler's actuator for each. Returns
/// those applied and those that failed (with why).
pub(crate) async fn actuate<S>(
    ctx: &Context<S>,
    p: &AdaptivePolicy,
    ns: &str,
    live: &mut Live,
    changes: &[Change],
) -> (Vec<Change>, Vec<(Change, String)>) {
    let mut applied = Vec::new();
    let mut failed = Vec::new();
    for c in changes {
        match write_change(c, live, &p.spec.0, ns, ctx).await {
            Ok(()) => applied.push(c.clone()),
            Err(e) => failed.push((c.clone(), e.to_string())),
        }
    }
    (applied, failed)
}

/// Takes the changes that failed back off `appliedChanges` and the record (they were written
/// ahead), and lists them in the record's `failed`.
pub(crate) fn unrecord_failed(
    status_applied: &mut Vec<AppliedChange>,
    rec: &mut AlertRemediation,
    failed: &[(Change, String)],
    at: i64,
) {
    for (c, why) in failed {
        let knob = knob_name(c.knob);
        status_applied.retain(|a| !(a.at == at && a.knob == knob));
        rec.applied.retain(|a| !(a.at == at && a.knob == knob));
        for r in rec.recommendations.iter_mut().filter(|r| r.knob == knob) {
            r.applied = false;
        }
        rec.failed.push(format!("{knob}: {why}"));
    }
}

impl<S: ObservationSource> RemediationSink for KubeSink<S> {
    async fn handled(&self, policy: &PolicyKey, alert: &AlertKey) -> Result<bool, SeamError> {
        let (_, p) = fresh(&self.ctx, policy).await?;
        Ok(p.status
            .as_ref()
            .is_some_and(|s| record::find(s, alert).is_some()))
    }

    async fn hand_over(&self, r: &Remediation) -> Result<HandOver, SeamError> {
        let ctx = &*self.ctx;
        let (api, p) = fresh(ctx, &r.policy).await?;
        let mut status = p.status.clone().unwrap_or_default();
        if record::find(&status, &r.alert).is_some() {
            return Ok(HandOver::default());
        }
        let ns = r.policy.namespace.as_str();
        let now = (ctx.clock)();
        let enforce = r.mode == Mode::Enforce;
        let changes = &r.decision.plan.changes;
        let mut failed_all = None;
        let mut live = None;
        if enforce && !changes.is_empty() {
            match read_live(&p.spec.0, ns, ctx).await {
                Ok(Ok(l)) => live = Some(l),
                Ok(Err(o)) => failed_all = Some(outcome_message(&o)),
                Err(e) => failed_all = Some(e.to_string()),
            }
        }
        let ahead: Vec<AppliedChange> = match &live {
            Some(l) => changes
                .iter()
                .map(|c| {
                    let orig = original(&status.applied_changes, &l.found, c.knob);
                    AppliedChange::new(now, c, orig)
                })
                .collect(),
            None => Vec::new(),
        };
        let mut rec = AlertRemediation {
            alertname: r.alertname.clone(),
            fingerprint: r.alert.fingerprint.clone(),
            starts_at: r.alert.starts_at,
            handled_at: now,
            mode: mode_name(r.mode).into(),
            recommendations: Recommendation::of_decision(&r.decision, live.is_some()),
            applied: ahead.clone(),
            failed: Vec::new(),
            resolved_at: None,
            pending_revert: Vec::new(),
            reverts: Vec::new(),
        };
        if let Some(why) = &failed_all {
            rec.failed = changes
                .iter()
                .map(|c| format!("{}: {why}", knob_name(c.knob)))
                .collect();
        }
        status.applied_changes.extend(ahead.iter().cloned());
        status.alert_remediations.push(rec.clone());
        record::prune(&mut status.alert_remediations, now);
        let carry = if ahead.is_empty() {
            Carry::Records
        } else {
            Carry::AppliedAt(now)
        };
        let written = status::write(&api, &p, &status, carry).await?;

        let mut out = HandOver::default();
        if let Some(mut l) = live {
            let (applied, failed) = actuate(ctx, &p, ns, &mut l, changes).await;
            if !failed.is_empty() {
                let mut status = written.status.clone().unwrap_or_default();
                let mut applied_list = std::mem::take(&mut status.applied_changes);
                if let Some(stored) = record::find_mut(&mut status, &r.alert) {
                    unrecord_failed(&mut applied_list, stored, &failed, now);
                }
                status.applied_changes = applied_list;
                status::write(&api, &written, &status, Carry::AppliedAt(now)).await?;
            }
            out.applied = applied;
            out.failed = failed;
        } else if let Some(why) = failed_all {
            out.failed = changes.iter().map(|c| (c.clone(), why.clone())).collect();
        }
        let labels = |outcome: &str| {
            ctx.metrics
                .remediation(ns, &r.policy.name, &p.spec.0.target.service, outcome)
        };
        let alert = &r.alertname;
        for c in &out.applied {
            labels("applied");
            ctx.metrics.change(knob_name(c.knob), "applied");
            let note = format!("alert {alert}: {}", describe(c));
            let action = knob_action("Remediate", c.knob);
            event(&p, ctx, EventType::Normal, "Remediated", &action, note).await;
        }
        for (c, why) in &out.failed {
            labels("failed");
            let note = format!("alert {alert}: {} failed: {why}", describe(c));
            event(
                &p,
                ctx,
                EventType::Warning,
                "RemediationFailed",
                &knob_action("Remediate", c.knob),
                note,
            )
            .await;
        }
        if !enforce {
            for c in changes {
                labels("recommended");
                ctx.metrics.change(knob_name(c.knob), "recommended");
                let note = format!("alert {alert} (DryRun): {}", describe(c));
                event(
                    &p,
                    ctx,
                    EventType::Normal,
                    "RemediationRecommended",
                    &knob_action("Recommend", c.knob),
                    note,
                )
                .await;
            }
        }
        for c in &r.decision.plan.held {
            labels("held");
            let by = c
                .held_by
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let note = format!("alert {alert}: {} held by {by}", describe(c));
            event(
                &p,
                ctx,
                EventType::Normal,
                "RemediationHeld",
                &knob_action("Remediate", c.knob),
                note,
            )
            .await;
        }
        Ok(out)
    }

    async fn resolved(
        &self,
        policy: &PolicyKey,
        alert: &AlertKey,
        at: i64,
    ) -> Result<(), SeamError> {
        let ctx = &*self.ctx;
        let (api, p) = fresh(ctx, policy).await?;
        let mut status = p.status.clone().unwrap_or_default();
        let Some(rec) = record::find_mut(&mut status, alert) else {
            return Ok(());
        };
        if rec.resolved_at.is_some() {
            return Ok(());
        }
        rec.resolved_at = Some(at);
        rec.pending_revert = applied_knobs(rec);
        let note = match rec.pending_revert.is_empty() {
            true => format!("alert {} resolved; it changed nothing", rec.alertname),
            false => format!(
                "alert {} resolved: {} given back after the cooldown unless the Governor's loop says otherwise",
                rec.alertname,
                rec.pending_revert.join(", ")
            ),
        };
        status::write(&api, &p, &status, Carry::Records).await?;
        event(&p, ctx, EventType::Normal, "AlertResolved", "Resolve", note).await;
        Ok(())
    }
}
