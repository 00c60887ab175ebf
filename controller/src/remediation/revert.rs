//! Resolve-then-revert: for each resolved occurrence with knobs still to give back, the
//! Governor's verdict (`Governor::on_resolved`: after the cooldown, unless the value changed
//! since or the objectives are still missed; through the guardrails) applied the way the sink
//! applies a remediation — status first, then the reconciler's actuators, an Event and a metric
//! per knob. The leader runs it every few seconds; a knob is finished when it is reverted or
//! kept, and asked about again otherwise. Missing telemetry or an unreadable target ends the
//! pass for the policy with nothing written.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use homeostat_models::governor::{RemediationRecord, RevertVerdict};
use kube::ResourceExt;
use kube::runtime::events::EventType;
use kube::runtime::reflector::Store;

use super::directory::known;
use super::record;
use super::sink::{actuate, fresh, unrecord_failed};
use super::status::{self, Carry};
use crate::crd::status::knob_name;
use crate::crd::{AdaptivePolicy, AppliedChange};
use crate::reconcile::Context;
use crate::reconcile::policy::{describe, event, knob_action, original, read_live};
use crate::telemetry::{ObservationSource, ObserveRequest};
use crate::webhook::{AlertKey, Governors, SeamError};

/// Runs one revert pass for `p`; the number of knobs finished (reverted or kept). At most one
/// occurrence acts per pass, so the next one is judged on the configuration it left.
pub async fn revert_due<S: ObservationSource, G: Governors>(
    ctx: &Context<S>,
    governors: &G,
    p: &AdaptivePolicy,
) -> Result<usize, SeamError> {
    let Some(kp) = known(p) else { return Ok(0) };
    let pending: Vec<_> = p
        .status
        .iter()
        .flat_map(|s| &s.alert_remediations)
        .filter(|r| r.resolved_at.is_some() && !r.pending_revert.is_empty())
        .cloned()
        .collect();
    if pending.is_empty() {
        return Ok(0);
    }
    let ns = kp.key.namespace.clone();
    let spec = &kp.spec;
    let Ok(Ok(mut live)) = read_live(spec, &ns, ctx).await else {
        return Ok(0);
    };
    let now = (ctx.clock)();
    let req = ObserveRequest {
        namespace: ns.clone(),
        spec: spec.clone(),
        end: now,
        config: live.found.mesh_config(),
    };
    let Ok(obs) = ctx.source.observe(&req).await else {
        return Ok(0);
    };
    for rec in pending {
        let resolved_at = rec.resolved_at.unwrap_or(now);
        let rr = RemediationRecord {
            alertname: rec.alertname.clone(),
            applied: rec
                .applied
                .iter()
                .filter(|a| rec.pending_revert.contains(&a.knob))
                .filter_map(|a| a.to_change().ok().map(|c| (a.at, c)))
                .collect(),
        };
        let (decision, verdicts) = governors
            .with(&kp, |g| g.on_resolved(now, &rr, resolved_at, &obs, spec))
            .await;
        let admitted = decision.plan.changes;
        let kept: Vec<(String, String)> = verdicts
            .iter()
            .filter_map(|(k, v)| match v {
                RevertVerdict::Keep { reason } => Some((knob_name(*k).to_string(), reason.clone())),
                _ => None,
            })
            .collect();
        // A pending knob without a readable change in the record cannot be given back.
        let unreadable: Vec<String> = rec
            .pending_revert
            .iter()
            .filter(|k| {
                !rr.applied
                    .iter()
                    .any(|(_, c)| knob_name(c.knob) == k.as_str())
            })
            .cloned()
            .collect();
        if admitted.is_empty() && kept.is_empty() && unreadable.is_empty() {
            continue;
        }
        let key = AlertKey {
            fingerprint: rec.fingerprint.clone(),
            starts_at: rec.starts_at,
        };
        let (api, current) = fresh(ctx, &kp.key).await?;
        let mut st = current.status.clone().unwrap_or_default();
        let ahead: Vec<AppliedChange> = admitted
            .iter()
            .map(|c| AppliedChange::new(now, c, original(&st.applied_changes, &live.found, c.knob)))
            .collect();
        st.applied_changes.extend(ahead.iter().cloned());
        let Some(stored) = record::find_mut(&mut st, &key) else {
            continue;
        };
        for c in &admitted {
            let knob = knob_name(c.knob);
            stored.pending_revert.retain(|k| k != knob);
            stored
                .reverts
                .push(format!("{knob} reverted at {now}: {}", c.reason));
        }
        for (knob, reason) in &kept {
            stored.pending_revert.retain(|k| k != knob);
            stored.reverts.push(format!("{knob} kept: {reason}"));
        }
        for knob in &unreadable {
            stored.pending_revert.retain(|k| k != knob);
            stored.reverts.push(format!(
                "{knob} kept: its change in the record is unreadable"
            ));
        }
        let carry = if ahead.is_empty() {
            Carry::Records
        } else {
            Carry::AppliedAt(now)
        };
        let written = status::write(&api, &current, &st, carry).await?;
        let (applied, failed) = actuate(ctx, &current, &ns, &mut live, &admitted).await;
        if !failed.is_empty() {
            let mut st = written.status.clone().unwrap_or_default();
            let mut list = std::mem::take(&mut st.applied_changes);
            if let Some(stored) = record::find_mut(&mut st, &key) {
                unrecord_failed(&mut list, stored, &failed, now);
                // Asked again on the next pass.
                for (c, _) in &failed {
                    stored.pending_revert.push(knob_name(c.knob).to_string());
                    stored.reverts.retain(|r| {
                        !r.starts_with(&format!("{} reverted at {now}", knob_name(c.knob)))
                    });
                }
            }
            st.applied_changes = list;
            status::write(&api, &written, &st, Carry::AppliedAt(now)).await?;
        }
        let service = obs.service.clone();
        let done = applied.clone();
        governors
            .with(&kp, move |g| {
                for c in &done {
                    g.applied(now, &service, c);
                }
            })
            .await;
        let metric = |outcome: &str| {
            ctx.metrics
                .remediation(&ns, &kp.key.name, &spec.target.service, outcome)
        };
        for c in &applied {
            metric("reverted");
            ctx.metrics.change(knob_name(c.knob), "applied");
            let note = format!("alert {} resolved: {}", rec.alertname, describe(c));
            let action = knob_action("Revert", c.knob);
            event(&current, ctx, EventType::Normal, "Reverted", &action, note).await;
        }
        for (c, why) in &failed {
            metric("failed");
            let note = format!("reverting {} failed: {why}", knob_name(c.knob));
            event(
                &current,
                ctx,
                EventType::Warning,
                "RevertFailed",
                &knob_action("Revert", c.knob),
                note,
            )
            .await;
        }
        let unreadable_kept = unreadable.iter().map(|k| {
            (
                k.clone(),
                "its change in the record is unreadable".to_string(),
            )
        });
        for (knob, reason) in kept.iter().cloned().chain(unreadable_kept) {
            metric("kept");
            let note = format!("alert {} resolved: {knob} kept: {reason}", rec.alertname);
            event(
                &current,
                ctx,
                EventType::Normal,
                "RevertKept",
                &format!("Revert {knob}"),
                note,
            )
            .await;
        }
        return Ok(applied.len() + kept.len() + unreadable.len());
    }
    Ok(0)
}

/// Every `every`, while this replica leads: a revert pass over the policies of `store`, until
/// `shutdown`.
pub async fn run_reverts<S: ObservationSource, G: Governors>(
    ctx: Arc<Context<S>>,
    governors: G,
    store: Store<AdaptivePolicy>,
    every: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        if !ctx.leader.load(Ordering::Relaxed) {
            continue;
        }
        for p in store.state() {
            if let Err(e) = revert_due(&ctx, &governors, &p).await {
                tracing::warn!(policy = %p.name_any(), error = %e, "revert pass failed");
            }
        }
    }
}
