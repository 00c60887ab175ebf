//! The translation: a validated payload in, one `Governor::on_alert` call per matching policy,
//! the decision handed to the sink. Nothing is decided here.
//!
//! ```text
//!  alert ─► policies whose target the alert's service / namespace labels name
//!        ─► matching_actions(spec, alert) empty? ── yes ──► Unmatched
//!        ─► firing:   occurrence handled before? ── yes ──► Duplicate
//!                     config in force + telemetry ─► Governor::on_alert ─► sink.hand_over
//!                     ─► Governor::applied for each change the sink applied
//!        ─► resolved: sink.resolved (the Governor's loop relaxes; see below)
//! ```
//!
//! Idempotency: one occurrence (fingerprint + startsAt) acts once per policy. The check and the
//! hand-over happen under one lock, so two deliveries racing in this process cannot both act;
//! the record itself lives in the sink (the policy's status), so it survives a restart and is
//! shared by replicas.
//!
//! Resolve: the occurrence is recorded as resolved (the sink keeps the knobs it changed as
//! pending a revert). Whether and when to give them back is `Governor::on_resolved`'s decision
//! (after the cooldown, unless the value changed since or the objectives are still missed),
//! taken by the controller's revert pass (`remediation::revert`), not here. A `freeze` runs its
//! `freezeDuration`.

use std::collections::BTreeMap;
use std::sync::Arc;

use homeostat_models::governor::{Alert, Decision, Governor, Observation, matching_actions};
use homeostat_models::policy::Mode;
use serde::Serialize;
use tokio::sync::Mutex;

use super::governors::Governors;

use super::SeamError;
use super::directory::{KnownPolicy, PolicyDirectory, PolicyKey};
use super::payload::{AlertStatus, Payload, PayloadAlert};
use super::sink::{AlertKey, Remediation, RemediationSink};
use crate::telemetry::{ObservationSource, ObserveRequest};

/// Unix seconds now; injectable so tests can move time past a cooldown.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp())
}

/// What became of one alert, for one policy (or for none).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "outcome"
)]
pub enum Outcome {
    /// The Governor decided and the sink took the decision.
    Remediated {
        policy: PolicyKey,
        alertname: String,
        fingerprint: String,
        mode: Mode,
        /// Changes the sink applied (always 0 in DryRun).
        applied: usize,
        /// Changes the sink failed to apply.
        failed: usize,
        decision: Decision,
        #[serde(skip_serializing_if = "Option::is_none")]
        telemetry_error: Option<String>,
    },
    /// This occurrence was handled before: nothing done.
    Duplicate {
        policy: PolicyKey,
        alertname: String,
        fingerprint: String,
    },
    /// A handled occurrence resolved: recorded.
    Resolved {
        policy: PolicyKey,
        alertname: String,
        fingerprint: String,
    },
    /// No policy targets the alert's service / namespace with a matching remediation entry (or
    /// a resolve for an occurrence never acted on).
    Unmatched {
        alertname: String,
        fingerprint: String,
    },
}

/// The webhook's core, without HTTP.
pub struct Remediator<D, O, S, G = Arc<Mutex<Governor>>> {
    directory: D,
    telemetry: O,
    sink: S,
    /// Shared with the reconciler's loop: the same guardrail memory for both paths.
    governor: G,
    clock: Clock,
    /// One alert at a time: makes "handled? then hand over" atomic in this process.
    serial: Mutex<()>,
}

impl<D: PolicyDirectory, O: ObservationSource, S: RemediationSink, G: Governors>
    Remediator<D, O, S, G>
{
    pub fn new(directory: D, telemetry: O, sink: S, governor: G, clock: Clock) -> Self {
        Self {
            directory,
            telemetry,
            sink,
            governor,
            clock,
            serial: Mutex::new(()),
        }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Handles every alert of the payload. An error leaves what was already handed over
    /// recorded, so a redelivery after it acts only on what is left.
    pub async fn handle(&self, payload: &Payload) -> Result<Vec<Outcome>, SeamError> {
        let policies = self.directory.policies().await?;
        let mut out = Vec::new();
        for a in &payload.alerts {
            let before = out.len();
            let alert = Alert {
                alertname: a.alertname().to_string(),
                labels: a.labels.clone(),
            };
            for p in policies.iter().filter(|p| targets(&a.labels, p)) {
                if matching_actions(&p.spec, &alert).is_empty() {
                    continue;
                }
                if let Some(o) = self.handle_one(a, &alert, p).await? {
                    out.push(o);
                }
            }
            if out.len() == before {
                out.push(Outcome::Unmatched {
                    alertname: alert.alertname.clone(),
                    fingerprint: a.fingerprint.clone(),
                });
            }
        }
        Ok(out)
    }

    async fn handle_one(
        &self,
        a: &PayloadAlert,
        alert: &Alert,
        p: &KnownPolicy,
    ) -> Result<Option<Outcome>, SeamError> {
        let key = AlertKey {
            fingerprint: a.fingerprint.clone(),
            starts_at: a.starts_at_unix(),
        };
        let _one_at_a_time = self.serial.lock().await;
        let handled = self.sink.handled(&p.key, &key).await?;
        if a.status == AlertStatus::Resolved {
            if !handled {
                return Ok(None);
            }
            self.sink.resolved(&p.key, &key, (self.clock)()).await?;
            return Ok(Some(Outcome::Resolved {
                policy: p.key.clone(),
                alertname: alert.alertname.clone(),
                fingerprint: key.fingerprint,
            }));
        }
        if handled {
            return Ok(Some(Outcome::Duplicate {
                policy: p.key.clone(),
                alertname: alert.alertname.clone(),
                fingerprint: key.fingerprint,
            }));
        }
        let config = self.directory.mesh_config(p).await?;
        let now = (self.clock)();
        let req = ObserveRequest {
            namespace: p.key.namespace.clone(),
            spec: p.spec.clone(),
            end: now,
            config: config.clone(),
        };
        // Remediation must not wait for the telemetry an incident may have broken: without it
        // the Governor sees the configuration alone (empty windows mean "not collected"), and
        // the actions that need telemetry say so in their findings.
        let (obs, telemetry_error) = match self.telemetry.observe(&req).await {
            Ok(obs) => (obs, None),
            Err(e) => (
                Observation {
                    service: p.spec.target.service.clone(),
                    end: now,
                    step_seconds: p.spec.telemetry.interval.as_secs_ceil().max(1),
                    service_signals: Default::default(),
                    callers: Default::default(),
                    subsets: Vec::new(),
                    endpoints: Vec::new(),
                    config,
                    pod_startup: None,
                },
                Some(e.to_string()),
            ),
        };
        // The decision and the report of what was applied are two steps on the loop's
        // Governor; between them the loop may run once for this policy (its changes then meet
        // this decision's in the guardrails of the next run, not of this one).
        let decision = self
            .governor
            .with(p, |g| g.on_alert(now, alert, &obs, &p.spec))
            .await;
        let remediation = Remediation {
            policy: p.key.clone(),
            mode: p.spec.mode,
            alert: key,
            alertname: alert.alertname.clone(),
            labels: alert.labels.clone(),
            decision,
            telemetry_error,
        };
        let handed = self.sink.hand_over(&remediation).await?;
        let service = obs.service.clone();
        let applied = handed.applied.clone();
        self.governor
            .with(p, move |g| {
                for c in &applied {
                    g.applied(now, &service, c);
                }
            })
            .await;
        Ok(Some(Outcome::Remediated {
            policy: remediation.policy,
            alertname: remediation.alertname,
            fingerprint: remediation.alert.fingerprint,
            mode: remediation.mode,
            applied: handed.applied.len(),
            failed: handed.failed.len(),
            decision: remediation.decision,
            telemetry_error: remediation.telemetry_error,
        }))
    }
}

/// Whether the alert is about this policy's target: its `service` and `namespace` labels, when
/// present, must name the policy's target service and namespace. An alert without them (e.g.
/// `HomeostatDown`) is for every policy whose remediation entries match it.
pub fn targets(labels: &BTreeMap<String, String>, p: &KnownPolicy) -> bool {
    labels
        .get("namespace")
        .is_none_or(|ns| *ns == p.key.namespace)
        && labels
            .get("service")
            .is_none_or(|s| *s == p.spec.target.service)
}
