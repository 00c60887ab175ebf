//! Seam: where a remediation goes once the Governor has decided it.
//!
//! The controller implements [`RemediationSink`] over its actuators and the AdaptivePolicy
//! status: in Enforce it applies `decision.plan.changes` through the same actuators as the
//! reconciler, in DryRun it records them as recommendations; either way it leaves an Event, a
//! status entry and a metric per change, and keeps the alert's [`AlertKey`] in status so that a
//! redelivery, a second replica or a restarted controller does not act again. [`InMemorySink`]
//! does the same in memory, for tests and `homeostat alert test`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use homeostat_models::governor::{Change, Decision, Knob};
use homeostat_models::policy::Mode;
use serde::Serialize;

use super::SeamError;
use super::directory::PolicyKey;

/// One occurrence of an alert: Alertmanager's fingerprint (its label set) and when it started.
/// The same alert firing again after it resolved is a new occurrence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertKey {
    pub fingerprint: String,
    /// `startsAt`, unix seconds.
    pub starts_at: i64,
}

/// What the webhook hands over for one policy and one firing alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Remediation {
    pub policy: PolicyKey,
    /// The policy's mode: Enforce applies `decision.plan.changes`, DryRun recommends them.
    pub mode: Mode,
    pub alert: AlertKey,
    pub alertname: String,
    pub labels: BTreeMap<String, String>,
    /// `Governor::on_alert`'s answer: `plan.changes` passed every guardrail, `plan.held` did not
    /// (shown, never applied).
    pub decision: Decision,
    /// Set when the telemetry could not be read: the Governor decided on the configuration in
    /// force alone (actions that need telemetry say so in the findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry_error: Option<String>,
}

/// What the sink did with a remediation's changes.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct HandOver {
    /// Applied (Enforce only); the webhook reports each to the Governor (cooldown, budget).
    pub applied: Vec<Change>,
    /// Could not be applied, with why (counted as `homeostat_remediations_total{outcome="failed"}`).
    pub failed: Vec<(Change, String)>,
}

/// Where remediations go.
pub trait RemediationSink: Send + Sync + 'static {
    /// Whether this occurrence of the alert was already handed over for the policy.
    fn handled(
        &self,
        policy: &PolicyKey,
        alert: &AlertKey,
    ) -> impl Future<Output = Result<bool, SeamError>> + Send;

    /// Applies (Enforce) or records (DryRun) the decision, and records the alert occurrence as
    /// handled, with an Event, a status entry and a metric for every change (held ones too).
    fn hand_over(
        &self,
        remediation: &Remediation,
    ) -> impl Future<Output = Result<HandOver, SeamError>> + Send;

    /// The alert occurrence resolved at `at` (unix seconds): record it, with the knobs it changed
    /// as pending a revert. The revert itself is decided later by `Governor::on_resolved` (after
    /// the cooldown, unless the loop says otherwise) — in the controller, by
    /// `remediation::run_reverts`.
    fn resolved(
        &self,
        policy: &PolicyKey,
        alert: &AlertKey,
        at: i64,
    ) -> impl Future<Output = Result<(), SeamError>> + Send;
}

/// The in-memory sink's record of everything handed to it.
#[derive(Debug, Clone, Default)]
pub struct SinkLog {
    pub remediations: Vec<Remediation>,
    /// Changes applied (Enforce), per policy, in order.
    pub applied: Vec<(PolicyKey, Change)>,
    /// Changes recommended (DryRun), per policy, in order.
    pub recommended: Vec<(PolicyKey, Change)>,
    pub failed: Vec<(PolicyKey, Change)>,
    /// Handled occurrences, with when they resolved (if they did).
    pub handled: BTreeMap<(PolicyKey, AlertKey), Option<i64>>,
    /// `homeostat_remediations_total` by outcome (applied, recommended, held, failed).
    pub remediations_total: BTreeMap<&'static str, u64>,
}

/// Applies nothing anywhere: "applying" records the change. Knobs in `failing` fail, to test
/// the failure path.
#[derive(Debug, Default)]
pub struct InMemorySink {
    log: Mutex<SinkLog>,
    failing: BTreeSet<Knob>,
}

impl InMemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink on which applying a change of any of `knobs` fails.
    pub fn failing(knobs: &[Knob]) -> Self {
        Self {
            log: Mutex::default(),
            failing: knobs.iter().copied().collect(),
        }
    }

    /// A copy of everything handed over so far.
    pub fn log(&self) -> SinkLog {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, SinkLog> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep using it.
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RemediationSink for InMemorySink {
    async fn handled(&self, policy: &PolicyKey, alert: &AlertKey) -> Result<bool, SeamError> {
        Ok(self
            .lock()
            .handled
            .contains_key(&(policy.clone(), alert.clone())))
    }

    async fn hand_over(&self, r: &Remediation) -> Result<HandOver, SeamError> {
        let mut log = self.lock();
        let mut out = HandOver::default();
        for c in &r.decision.plan.changes {
            let outcome = match r.mode {
                Mode::DryRun => {
                    log.recommended.push((r.policy.clone(), c.clone()));
                    "recommended"
                }
                Mode::Enforce if self.failing.contains(&c.knob) => {
                    log.failed.push((r.policy.clone(), c.clone()));
                    out.failed
                        .push((c.clone(), format!("applying {} failed (injected)", c.knob)));
                    "failed"
                }
                Mode::Enforce => {
                    log.applied.push((r.policy.clone(), c.clone()));
                    out.applied.push(c.clone());
                    "applied"
                }
            };
            *log.remediations_total.entry(outcome).or_default() += 1;
        }
        let held = r.decision.plan.held.len() as u64;
        *log.remediations_total.entry("held").or_default() += held;
        log.handled
            .insert((r.policy.clone(), r.alert.clone()), None);
        log.remediations.push(r.clone());
        Ok(out)
    }

    async fn resolved(
        &self,
        policy: &PolicyKey,
        alert: &AlertKey,
        at: i64,
    ) -> Result<(), SeamError> {
        self.lock()
            .handled
            .insert((policy.clone(), alert.clone()), Some(at));
        Ok(())
    }
}
