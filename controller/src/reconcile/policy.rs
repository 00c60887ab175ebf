//! One policy's reconcile: validate → read the mesh → observe → the Governor decides → apply
//! (Enforce) or recommend (DryRun) → status; and, on deletion, revert what homeostat changed.
//!
//! Safety rules this file keeps: an invalid spec, a missing target or failed telemetry ends the
//! run before the Governor with a condition and no write to the mesh; DryRun never writes to
//! the mesh; every write is a server-side apply as `homeostat` of owned fields only; the
//! changes applied and the Governor's memory are recorded in status (and restored into a fresh
//! Governor after a restart or a change of leader) so that a restarted controller decides as
//! the one that never stopped; status is written only when it changed, or at the heartbeat.

use std::time::Duration as StdDuration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::api::{Api, DynamicObject, Patch, PatchParams, ResourceExt};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use serde_json::{Value, json};

use homeostat_models::governor::{
    Change, Decision, FindingKind, Governor, GovernorMemory, Knob, KnobValue, Observation, Origin,
};
use homeostat_models::policy::{Mode, PolicySpec};

use super::conditions::{Outcome, conditions};
use super::heartbeat::must_write;
use super::{Context, Error, FIELD_MANAGER};
use crate::crd::status::{StatusFinding, knob_name};
use crate::crd::{
    AdaptivePolicy, AdaptivePolicyStatus, AppliedChange, KnobSetting, Recommendation,
};
use crate::mesh::istio::{self, RouteEdit};
use crate::mesh::{Found, MeshError, hpa};
use crate::telemetry::{ObservationSource, ObserveRequest, TelemetryError};

/// How long applied changes are kept in status: what cooldowns, the hourly limit and rollback
/// judging can still need (the Governor keeps two hours too).
const MEMORY_SECONDS: i64 = 2 * 3600;

fn ssa() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

pub(crate) fn time(unix: i64) -> Time {
    Time(jiff::Timestamp::from_second(unix).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

/// The governed objects as read.
pub(crate) struct Live {
    pub(crate) vs: Value,
    pub(crate) hpa: Option<HorizontalPodAutoscaler>,
    pub(crate) found: Found,
}

fn as_value(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

/// Reads the DestinationRule, VirtualService and HPA. `Err(outcome)` names what is missing or
/// unreadable (a condition, not a failure: retrying will not help until someone fixes it).
pub(crate) async fn read_live<S>(
    spec: &PolicySpec,
    ns: &str,
    ctx: &Context<S>,
) -> Result<Result<Live, Outcome>, Error> {
    let svc = &spec.target.service;
    let not_found = |kind: &str, name: &str| Outcome::Degraded {
        reason: "TargetNotFound".into(),
        message: format!(
            "{kind} {ns}/{name} not found (homeostat governs the {kind} named after spec.target.service, or spec.target.horizontalPodAutoscaler)"
        ),
    };
    let unreadable = |e: MeshError| Outcome::Degraded {
        reason: "TargetUnreadable".into(),
        message: e.to_string(),
    };
    let drs: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &istio::destination_rule());
    let vss: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &istio::virtual_service());
    let Some(dr) = drs.get_opt(svc).await? else {
        return Ok(Err(not_found("DestinationRule", svc)));
    };
    let Some(vs) = vss.get_opt(svc).await? else {
        return Ok(Err(not_found("VirtualService", svc)));
    };
    let (dr, vs) = (as_value(&dr), as_value(&vs));
    let mut hpa_obj = None;
    if let Some(name) = &spec.target.horizontal_pod_autoscaler {
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), ns);
        let Some(h) = hpas.get_opt(name).await? else {
            return Ok(Err(not_found("HorizontalPodAutoscaler", name)));
        };
        hpa_obj = Some(h);
    }
    let found = match Found::read(svc, ns, Some(&dr), Some(&vs), hpa_obj.as_ref()) {
        Ok(found) => found,
        Err((_, e)) => return Ok(Err(unreadable(e))),
    };
    Ok(Ok(Live {
        vs,
        hpa: hpa_obj,
        found,
    }))
}

/// Restores a fresh Governor after a restart or a change of leader: from the Governor memory
/// in status when it is there and readable, else (a status written before the memory existed,
/// or a memory of another version) by replaying the applied changes.
fn restore(g: &mut Governor, service: &str, status: &AdaptivePolicyStatus, now: i64) {
    if let Some(text) = &status.governor_memory {
        match GovernorMemory::from_json(text).and_then(|m| g.import_memory(m)) {
            Ok(()) => return,
            Err(e) => tracing::warn!(
                error = %e,
                "status.governorMemory unusable; restoring cooldowns from status.appliedChanges"
            ),
        }
    }
    replay(g, service, &status.applied_changes, now);
}

/// Replays the applied changes of the last two hours into a fresh Governor, oldest first, so
/// its cooldowns, hourly budget and retry memory are what they were before a restart.
pub(crate) fn replay(g: &mut Governor, service: &str, applied: &[AppliedChange], now: i64) {
    for a in applied.iter().filter(|a| a.at > now - MEMORY_SECONDS) {
        match a.to_change() {
            Ok(c) => g.applied(a.at, service, &c),
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable applied change"),
        }
    }
}

/// Keeps the last two hours, and the newest entry of every knob (it carries the original value
/// a deletion restores).
fn prune(applied: &mut Vec<AppliedChange>, now: i64) {
    let newest: Vec<usize> = Knob::ALL
        .iter()
        .filter_map(|k| applied.iter().rposition(|a| a.knob == knob_name(*k)))
        .collect();
    let mut i = 0;
    applied.retain(|a| {
        let keep = a.at > now - MEMORY_SECONDS || newest.contains(&i);
        i += 1;
        keep
    });
}

/// Writes one change as a server-side apply of the owned fields; `live` is updated so a second
/// change to the same object in this run builds on the first.
pub(crate) async fn write_change<S>(
    c: &Change,
    live: &mut Live,
    spec: &PolicySpec,
    ns: &str,
    ctx: &Context<S>,
) -> Result<(), Error> {
    let svc = &spec.target.service;
    match &c.proposed {
        KnobValue::Weights(w) => {
            let body = istio::route_apply_body(&live.vs, svc, ns, &RouteEdit::Weights(w))?;
            patch_vs(&body, svc, ns, ctx).await?;
            live.vs["spec"]["http"] = body["spec"]["http"].clone();
        }
        KnobValue::Retries(r) => {
            let body = istio::route_apply_body(&live.vs, svc, ns, &RouteEdit::Retries(r))?;
            patch_vs(&body, svc, ns, ctx).await?;
            live.vs["spec"]["http"] = body["spec"]["http"].clone();
        }
        KnobValue::OutlierDetection(o) => {
            let body = istio::outlier_apply_body(svc, Some(o));
            let api: Api<DynamicObject> =
                Api::namespaced_with(ctx.client.clone(), ns, &istio::destination_rule());
            api.patch(svc, &ssa(), &Patch::Apply(&body)).await?;
        }
        KnobValue::Autoscaling(h) => {
            let obj = live
                .hpa
                .as_ref()
                .ok_or(Error::Missing("HorizontalPodAutoscaler"))?;
            let body = hpa::apply_body(obj, h)?;
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), ns);
            api.patch(&obj.name_any(), &ssa(), &Patch::Apply(&body))
                .await?;
        }
    }
    Ok(())
}

async fn patch_vs<S>(body: &Value, name: &str, ns: &str, ctx: &Context<S>) -> Result<(), Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &istio::virtual_service());
    api.patch(name, &ssa(), &Patch::Apply(body)).await?;
    Ok(())
}

/// The knob as found before homeostat first changed it: carried over from its newest applied
/// change, else as read now.
pub(crate) fn original(applied: &[AppliedChange], found: &Found, knob: Knob) -> KnobSetting {
    applied
        .iter()
        .rev()
        .find(|a| a.knob == knob_name(knob))
        .map(|a| a.original.clone())
        .unwrap_or_else(|| found.original().only(knob))
}

pub(crate) fn describe(c: &Change) -> String {
    let show = |v: &KnobValue| serde_json::to_string(&KnobSetting::of(v)).unwrap_or_default();
    format!(
        "{}: {} → {}: {}",
        knob_name(c.knob),
        show(&c.current),
        show(&c.proposed),
        c.reason
    )
}

/// An Event's `action` for a change to one knob, e.g. `Apply weights`. kube's Recorder folds
/// Events with the same type, reason, action and object into one series (a PATCH of the first
/// Event, whose note it keeps), so two knobs changed in one run need two actions to leave two
/// Events with their own notes.
pub(crate) fn knob_action(verb: &str, knob: Knob) -> String {
    format!("{verb} {}", knob_name(knob))
}

pub(crate) async fn event<S>(
    p: &AdaptivePolicy,
    ctx: &Context<S>,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        // The Events API caps notes at 1 kB.
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    // An Event that cannot be published must not stop the reconcile: status has the same facts.
    if let Err(e) = ctx.recorder.publish(&ev, &p.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing an event");
    }
}

/// Writes status when it changed or the heartbeat is due (`heartbeat.rs`); the Governor's
/// memory, when the policy has a Governor, goes with it.
async fn write_status<S>(
    p: &AdaptivePolicy,
    ctx: &Context<S>,
    outcome: &Outcome,
    mut status: AdaptivePolicyStatus,
    now: i64,
) -> Result<(), Error> {
    let t = time(now);
    status.observed_generation = p.metadata.generation;
    status.phase = Some(outcome.phase().into());
    status.conditions = conditions(outcome, p.status.as_ref(), p.metadata.generation, &t);
    status.last_evaluated = Some(t);
    let ns = p.namespace().ok_or(Error::Missing("namespace"))?;
    if let Some(memory) = ctx.memory(&format!("{ns}/{}", p.name_any())) {
        status.governor_memory = Some(memory);
    }
    if !must_write(p.status.as_ref(), &status, now) {
        return Ok(());
    }
    let api: Api<AdaptivePolicy> = Api::namespaced(ctx.client.clone(), &ns);
    match api
        .patch_status(
            &p.name_any(),
            &ssa(),
            &Patch::Apply(status_body(p, &status)),
        )
        .await
    {
        Ok(_) => Ok(()),
        // `appliedChanges` is written by the webhook too (the changes an alert made): a write
        // from the policy as read would replace its entries. The resourceVersion makes such a
        // write fail instead; read again, keep theirs, add this run's, and write once more.
        Err(kube::Error::Api(s)) if s.is_conflict() => {
            let fresh = api.get(&p.name_any()).await?;
            let theirs = fresh.status.clone().unwrap_or_default();
            let before = p
                .status
                .as_ref()
                .map(|s| &s.applied_changes[..])
                .unwrap_or(&[]);
            let mut applied = theirs.applied_changes;
            applied.extend(
                status
                    .applied_changes
                    .iter()
                    .filter(|c| !before.contains(c))
                    .cloned(),
            );
            status.applied_changes = applied;
            status.last_change = theirs.last_change.max(status.last_change);
            api.patch_status(
                &p.name_any(),
                &ssa(),
                &Patch::Apply(status_body(&fresh, &status)),
            )
            .await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The server-side apply body of `status`, with the resourceVersion `p` was read at (when
/// known), so that the write fails rather than overwrite a status written since.
fn status_body(p: &AdaptivePolicy, status: &AdaptivePolicyStatus) -> Value {
    let mut body = json!({
        "apiVersion": "homeostat.dev/v1alpha1",
        "kind": "AdaptivePolicy",
        "status": status,
    });
    if let Some(rv) = p.resource_version() {
        body["metadata"] = json!({ "name": p.name_any(), "resourceVersion": rv });
    }
    body
}

/// The status fields that carry over from the previous status (guardrail memory).
fn carried(p: &AdaptivePolicy) -> AdaptivePolicyStatus {
    let prev = p.status.clone().unwrap_or_default();
    AdaptivePolicyStatus {
        applied_changes: prev.applied_changes,
        last_change: prev.last_change,
        governor_memory: prev.governor_memory,
        ..Default::default()
    }
}

/// Apply: one run of the control loop for this policy, at most once per interval per
/// generation (a failed run is retried sooner by `error_policy`).
pub async fn apply<S: ObservationSource>(
    p: &AdaptivePolicy,
    ctx: &Context<S>,
) -> Result<Action, Error> {
    let ns = p.namespace().ok_or(Error::Missing("namespace"))?;
    let now = (ctx.clock)();
    let key = format!("{ns}/{}", p.name_any());
    let interval = p.spec.0.telemetry.interval.as_secs_ceil().max(1);
    if let Some(left) = ctx.not_due(&key, now, p.metadata.generation, interval) {
        return Ok(Action::requeue(StdDuration::from_secs(left.unsigned_abs())));
    }
    let action = evaluate(p, ctx, &ns, &key, now).await?;
    ctx.ran(&key, now, p.metadata.generation);
    Ok(action)
}

async fn evaluate<S: ObservationSource>(
    p: &AdaptivePolicy,
    ctx: &Context<S>,
    ns: &str,
    key: &str,
    now: i64,
) -> Result<Action, Error> {
    let ns = ns.to_string();
    let spec = &p.spec.0;
    let requeue = Action::requeue(
        spec.telemetry
            .interval
            .as_std()
            .max(StdDuration::from_secs(1)),
    );
    let mut status = carried(p);

    if let Err(errors) = spec.validate() {
        let message = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        event(
            p,
            ctx,
            EventType::Warning,
            "InvalidPolicy",
            "Validate",
            message.clone(),
        )
        .await;
        write_status(p, ctx, &Outcome::Invalid { message }, status, now).await?;
        // Only an edit of the spec can fix it.
        return Ok(Action::await_change());
    }

    // Two policies governing one object would each rewrite it: neither acts (nor reads
    // telemetry) until one is removed or retargeted, and each says why.
    let shared = ctx.sharing_target(p);
    if !shared.is_empty() {
        let message = format!(
            "{}: two policies would each rewrite it, so neither acts until one of them is removed or retargeted",
            shared
                .iter()
                .map(|(name, what)| format!("{what} is also governed by policy {name}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        event(
            p,
            ctx,
            EventType::Warning,
            "AmbiguousTarget",
            "Validate",
            message.clone(),
        )
        .await;
        let outcome = Outcome::Degraded {
            reason: "AmbiguousTarget".into(),
            message,
        };
        write_status(p, ctx, &outcome, status, now).await?;
        return Ok(requeue);
    }

    let mut live = match read_live(spec, &ns, ctx).await? {
        Ok(live) => live,
        Err(outcome) => {
            write_status(p, ctx, &outcome, status, now).await?;
            return Ok(requeue);
        }
    };

    let req = ObserveRequest {
        namespace: ns.clone(),
        spec: spec.clone(),
        end: now,
        config: live.found.mesh_config(),
    };
    let started = std::time::Instant::now();
    let observed = ctx.source.observe(&req).await;
    ctx.metrics
        .telemetry_seconds
        .observe(started.elapsed().as_secs_f64());
    let obs: Observation = match observed {
        Ok(o) => o,
        Err(e) => {
            let outcome = match &e {
                TelemetryError::Insufficient(_) => Outcome::InsufficientData {
                    message: e.to_string(),
                },
                TelemetryError::Unavailable(_) | TelemetryError::Malformed(_) => {
                    Outcome::TelemetryUnavailable {
                        message: e.to_string(),
                    }
                }
            };
            write_status(p, ctx, &outcome, status, now).await?;
            return Ok(requeue);
        }
    };

    let decision: Decision = ctx.with_governor(
        key,
        |g| restore(g, &obs.service, &status, now),
        |g| g.step(now, &obs, spec),
    );
    ctx.metrics.decisions.inc();
    let enforce = spec.mode == Mode::Enforce;
    let mut failure = None;
    let mut applied = 0;
    for c in &decision.plan.changes {
        if !enforce {
            ctx.metrics.change(knob_name(c.knob), "recommended");
            event(
                p,
                ctx,
                EventType::Normal,
                "Recommended",
                &knob_action("Recommend", c.knob),
                describe(c),
            )
            .await;
            continue;
        }
        let original = original(&status.applied_changes, &live.found, c.knob);
        if let Err(e) = write_change(c, &mut live, spec, &ns, ctx).await {
            // Record what was applied before the failure, then fail the run.
            failure = Some(e);
            break;
        }
        ctx.with_governor(key, |_| {}, |g| g.applied(now, &obs.service, c));
        status
            .applied_changes
            .push(AppliedChange::new(now, c, original));
        status.last_change = Some(time(now));
        applied += 1;
        let outcome = if c.origin == Origin::Rollback {
            "rolled_back"
        } else {
            "applied"
        };
        ctx.metrics.change(knob_name(c.knob), outcome);
        event(
            p,
            ctx,
            EventType::Normal,
            "Applied",
            &knob_action("Apply", c.knob),
            describe(c),
        )
        .await;
    }
    prune(&mut status.applied_changes, now);
    status.findings = decision.findings.iter().map(StatusFinding::of).collect();
    status.recommendations = decision
        .plan
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| Recommendation::of(c, enforce && i < applied))
        .chain(
            decision
                .plan
                .held
                .iter()
                .map(|c| Recommendation::of(c, false)),
        )
        .collect();
    let outcome = match decision
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::InsufficientData)
    {
        Some(f) => Outcome::InsufficientData {
            message: f.summary.clone(),
        },
        None => Outcome::Evaluated { dry_run: !enforce },
    };
    write_status(p, ctx, &outcome, status, now).await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(requeue),
    }
}

/// Cleanup: on deletion, return every knob homeostat changed to the value found before it first
/// changed it. A field that was not set is removed (a server-side apply that no longer carries a
/// field homeostat alone owns deletes it). A knob whose value in force is no longer the one
/// homeostat last set was changed since by someone else: it is left as it is.
pub async fn cleanup<S: ObservationSource>(
    p: &AdaptivePolicy,
    ctx: &Context<S>,
) -> Result<Action, Error> {
    let ns = p.namespace().ok_or(Error::Missing("namespace"))?;
    let spec = &p.spec.0;
    let svc = &spec.target.service;
    let applied = p
        .status
        .as_ref()
        .map(|s| s.applied_changes.clone())
        .unwrap_or_default();
    let last = |k: Knob| applied.iter().rev().find(|a| a.knob == knob_name(k));
    // Whether `now` (the knob as read, `None` if unreadable) is still what homeostat set.
    let ours = |k: Knob, now: Option<KnobSetting>| {
        last(k).is_some_and(|a| now.as_ref() == Some(&a.after.only(k)))
    };
    let mut reverted = Vec::new();
    let mut kept = Vec::new();

    if let Some(a) = last(Knob::OutlierDetection) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &ns, &istio::destination_rule());
        if let Some(dr) = api.get_opt(svc).await? {
            let now = istio::read_outlier(&as_value(&dr))
                .ok()
                .map(|o| KnobSetting {
                    outlier_detection: o.and_then(|o| {
                        KnobSetting::of(&KnobValue::OutlierDetection(o)).outlier_detection
                    }),
                    ..Default::default()
                });
            if ours(Knob::OutlierDetection, now) {
                let value = match a.original.value(Knob::OutlierDetection) {
                    Some(KnobValue::OutlierDetection(c)) => Some(c),
                    _ => None,
                };
                let body = istio::outlier_apply_body(svc, value.as_ref());
                api.patch(svc, &ssa(), &Patch::Apply(&body)).await?;
                reverted.push("outlierDetection");
            } else {
                kept.push("outlierDetection");
            }
        }
    }
    let (weights, retries) = (last(Knob::Weights), last(Knob::Retries));
    if weights.is_some() || retries.is_some() {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &ns, &istio::virtual_service());
        if let Some(vs) = api.get_opt(svc).await? {
            let mut vs = as_value(&vs);
            let route = istio::read_route(&vs, svc, &ns).ok();
            let mut edits = Vec::new();
            if let Some(a) = weights {
                let now = route.as_ref().map(|r| KnobSetting {
                    weights: Some(r.weights.clone()),
                    ..Default::default()
                });
                match (&a.original.weights, ours(Knob::Weights, now)) {
                    (Some(w), true) => {
                        edits.push(RouteEdit::Weights(w));
                        reverted.push("weights");
                    }
                    (None, true) => {}
                    (_, false) => kept.push("weights"),
                }
            }
            let original_retries = retries.and_then(|a| match a.original.value(Knob::Retries) {
                Some(KnobValue::Retries(r)) => Some(r),
                _ => None,
            });
            if retries.is_some() {
                let now = route.as_ref().map(|r| KnobSetting {
                    retries: r
                        .retries
                        .clone()
                        .and_then(|r| KnobSetting::of(&KnobValue::Retries(r)).retries),
                    ..Default::default()
                });
                if ours(Knob::Retries, now) {
                    edits.push(match &original_retries {
                        Some(r) => RouteEdit::Retries(r),
                        None => RouteEdit::RemoveRetries,
                    });
                    reverted.push("retries");
                } else {
                    kept.push("retries");
                }
            }
            if !edits.is_empty() {
                for edit in &edits {
                    let body = istio::route_apply_body(&vs, svc, &ns, edit)?;
                    vs["spec"]["http"] = body["spec"]["http"].clone();
                }
                // One write for both knobs: the route list is applied whole.
                let body = json!({
                    "apiVersion": format!("{}/{}", istio::GROUP, istio::VERSION),
                    "kind": "VirtualService",
                    "metadata": { "name": svc },
                    "spec": { "http": vs["spec"]["http"] },
                });
                api.patch(svc, &ssa(), &Patch::Apply(&body)).await?;
            }
        }
    }
    if let (Some(a), Some(name)) = (
        last(Knob::Autoscaling),
        &spec.target.horizontal_pod_autoscaler,
    ) {
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
        if let Some(h) = api.get_opt(name).await? {
            let now = hpa::read(&h)
                .ok()
                .map(|c| KnobSetting::of(&KnobValue::Autoscaling(c)));
            match (
                a.original.value(Knob::Autoscaling),
                ours(Knob::Autoscaling, now),
            ) {
                (Some(KnobValue::Autoscaling(v)), true) => {
                    api.patch(name, &ssa(), &Patch::Apply(&hpa::apply_body(&h, &v)?))
                        .await?;
                    reverted.push("autoscaling");
                }
                (_, true) => {}
                (_, false) => kept.push("autoscaling"),
            }
        }
    }
    ctx.forget(&format!("{ns}/{}", p.name_any()));
    ctx.source.release(&crate::telemetry::ServiceKey {
        namespace: ns.clone(),
        service: svc.clone(),
    });
    if !reverted.is_empty() || !kept.is_empty() {
        let mut note = String::from("policy deleted:");
        if !reverted.is_empty() {
            note.push_str(&format!(
                " {} returned to the values found before homeostat changed them;",
                reverted.join(", ")
            ));
        }
        if !kept.is_empty() {
            note.push_str(&format!(
                " {} left as found (changed by someone else since homeostat set it);",
                kept.join(", ")
            ));
        }
        event(p, ctx, EventType::Normal, "Reverted", "Revert", note).await;
    }
    Ok(Action::await_change())
}
