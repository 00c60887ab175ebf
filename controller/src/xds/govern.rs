//! The control loop of a bundled mesh: policies from files, telemetry from a source (the
//! proxies scraped directly, or Prometheus), the Governor decides, and in Enforce mode each
//! change of its plan is written into the [`BundledMesh`] — which pushes it to every connected
//! proxy at once. No Kubernetes is involved: a bundled mesh runs on its bootstrap files.
//!
//! The same safety rules as the reconciler: failed telemetry or an unreadable description ends
//! the run before the Governor, with nothing applied; DryRun applies nothing; a change that
//! cannot be written stops the run's remaining changes (the Governor is told only of what was
//! applied); the applied description is on disk before it is pushed.

use std::sync::Arc;
use std::time::Duration;

use homeostat_models::governor::{Change, Decision, Governor};
use homeostat_models::policy::{Mode, PolicySpec};

use super::BundledMesh;
use crate::http::Metrics;
use crate::telemetry::{ObservationSource, ObserveRequest};

/// One governed policy.
#[derive(Debug, Clone)]
pub struct BundledPolicy {
    pub namespace: String,
    pub spec: PolicySpec,
}

/// What one run did.
#[derive(Debug)]
pub enum Outcome {
    /// No decision: telemetry failed or the description does not name the service.
    Skipped(String),
    /// The Governor's decision, and each change applied with the version that carries it.
    Decided {
        decision: Box<Decision>,
        applied: Vec<(Change, String)>,
        /// The change that could not be written, and why (the rest were not tried).
        failed: Option<Box<(Change, String)>>,
    },
}

/// One run of the loop for `p` at `now` (unix seconds).
pub async fn evaluate<S: ObservationSource>(
    g: &mut Governor,
    mesh: &BundledMesh,
    source: &S,
    p: &BundledPolicy,
    now: i64,
) -> Outcome {
    let svc = &p.spec.target.service;
    let config = match mesh.config(&p.namespace, svc) {
        Ok((config, _)) => config,
        Err(e) => return Outcome::Skipped(e.to_string()),
    };
    let req = ObserveRequest {
        namespace: p.namespace.clone(),
        spec: p.spec.clone(),
        end: now,
        config,
    };
    let obs = match source.observe(&req).await {
        Ok(o) => o,
        // Insufficient, unavailable or malformed: never an action.
        Err(e) => return Outcome::Skipped(e.to_string()),
    };
    let decision = g.step(now, &obs, &p.spec);
    let mut applied = Vec::new();
    let mut failed = None;
    if p.spec.mode == Mode::Enforce {
        for c in &decision.plan.changes {
            match mesh.apply(&p.namespace, svc, &c.proposed) {
                Ok(version) => {
                    g.applied(now, &obs.service, c);
                    applied.push((c.clone(), version));
                }
                Err(e) => {
                    failed = Some(Box::new((c.clone(), e.to_string())));
                    break;
                }
            }
        }
    }
    Outcome::Decided {
        decision: Box::new(decision),
        applied,
        failed,
    }
}

/// Runs every policy on its own interval until `shutdown` resolves.
pub async fn run<S: ObservationSource>(
    mesh: Arc<BundledMesh>,
    policies: Vec<BundledPolicy>,
    source: Arc<S>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for p in policies {
        let (mesh, source, metrics) = (mesh.clone(), source.clone(), metrics.clone());
        tasks.spawn(async move {
            let every = p.spec.telemetry.interval.as_std().max(Duration::from_secs(1));
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut g = Governor::new();
            let who = format!("{}/{}", p.namespace, p.spec.target.service);
            loop {
                tick.tick().await;
                let now = chrono::Utc::now().timestamp();
                metrics.reconciles.inc();
                match evaluate(&mut g, &mesh, source.as_ref(), &p, now).await {
                    Outcome::Skipped(why) => {
                        metrics.failure("skipped");
                        tracing::warn!(policy = %who, %why, "no decision");
                    }
                    Outcome::Decided {
                        decision,
                        applied,
                        failed,
                    } => {
                        metrics.decisions.inc();
                        for f in &decision.findings {
                            tracing::info!(policy = %who, subject = %f.subject, summary = %f.summary, "finding");
                        }
                        for c in &decision.plan.changes {
                            tracing::info!(policy = %who, knob = %c.knob, from = %c.current, to = %c.proposed, reason = %c.reason, mode = ?p.spec.mode, "change");
                        }
                        for (c, version) in &applied {
                            tracing::info!(policy = %who, knob = %c.knob, %version, "applied and pushed");
                        }
                        if let Some(f) = failed {
                            let (c, why) = *f;
                            metrics.failure("apply");
                            tracing::error!(policy = %who, knob = %c.knob, %why, "change not applied");
                        }
                    }
                }
            }
        });
    }
    shutdown.await;
    tasks.abort_all();
}

#[cfg(test)]
mod tests;
