//! When a reconcile writes status: when something in it changed, or at a slow heartbeat.
//!
//! At 10,000 policies and a 15 s interval, a status write per policy per run is 667 writes a
//! second to the API server, each also a watch event for every watcher — a denial of service
//! of the control plane homeostat relies on. Most runs change nothing a person or a restarted
//! controller needs: the same phase, the same findings, the same plan held by the same
//! guardrails; only the numbers quoted in them move. So a write happens when the status differs
//! from the one stored in anything but those numbers, and otherwise once per
//! [`HEARTBEAT_SECONDS`] to refresh them.
//!
//! What counts as "changed" is everything except: `lastEvaluated`, condition messages, the
//! words and numbers of findings and recommendations (their kind, subject, knob, values,
//! posture, origin, applied and held-or-not still count), and the per-run readings of the
//! Governor's memory (`GovernorMemory::durable` still counts — every applied change, streak,
//! freeze and baseline is written the run it happens, so a restart never repeats a change nor
//! breaks the hourly limit). `alertRemediations` is not compared at all: the webhook writes it
//! under its own field manager and the reconciler never sends it, so it would otherwise differ
//! on every run of a policy with an alert record. Fields added to status later count in full
//! unless listed here.

use homeostat_models::governor::GovernorMemory;

use crate::crd::AdaptivePolicyStatus;

/// The slow heartbeat, in seconds: the kubelet's `nodeStatusReportFrequency` default (5 m),
/// Kubernetes' own answer to the same problem — a node reports its status when it changed, and
/// otherwise every five minutes (KEP-589, "Efficient Node Heartbeats").
pub const HEARTBEAT_SECONDS: i64 = 300;

/// Whether `next` must be written, given the `stored` status and the time `now`.
pub fn must_write(
    stored: Option<&AdaptivePolicyStatus>,
    next: &AdaptivePolicyStatus,
    now: i64,
) -> bool {
    let Some(stored) = stored else {
        return true;
    };
    let due = stored
        .last_evaluated
        .as_ref()
        .is_none_or(|t| now.saturating_sub(t.0.as_second()) >= HEARTBEAT_SECONDS);
    due || material(stored) != material(next)
}

/// The status with the numbers that move every run taken out.
fn material(s: &AdaptivePolicyStatus) -> AdaptivePolicyStatus {
    let mut m = s.clone();
    m.last_evaluated = None;
    m.alert_remediations.clear();
    for c in &mut m.conditions {
        c.message = String::new();
    }
    for f in &mut m.findings {
        f.summary = String::new();
        f.evidence.clear();
    }
    for r in &mut m.recommendations {
        r.reason = String::new();
        r.evidence.clear();
        r.confidence = 0.0;
        r.expected_effect = String::new();
        // Held or not counts; the seconds left of a cooldown do not.
        r.held_by = r.held_by.as_ref().map(|_| String::new());
    }
    m.governor_memory =
        m.governor_memory
            .as_deref()
            .map(|text| match GovernorMemory::from_json(text) {
                Ok(memory) => memory.durable().to_json(),
                // Unreadable: compared as text, so a repair is written.
                Err(_) => text.to_string(),
            });
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Recommendation, StatusFinding};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const T: i64 = 1_700_000_000;

    fn at(t: i64) -> Option<Time> {
        Some(Time(jiff::Timestamp::from_second(t).unwrap()))
    }

    fn status(summary: &str, held: &str, memory: &str) -> AdaptivePolicyStatus {
        AdaptivePolicyStatus {
            phase: Some("Ready".into()),
            last_evaluated: at(T),
            findings: vec![StatusFinding {
                kind: "note".into(),
                subject: "service".into(),
                summary: summary.into(),
                evidence: [("rps".to_string(), Some(summary.len() as f64))].into(),
            }],
            recommendations: vec![Recommendation {
                knob: "weights".into(),
                current: Default::default(),
                proposed: Default::default(),
                reason: summary.into(),
                evidence: Default::default(),
                confidence: 0.5,
                expected_effect: String::new(),
                posture: "relax".into(),
                origin: "planner".into(),
                held_by: Some(held.into()),
                applied: false,
            }],
            governor_memory: Some(memory.into()),
            ..Default::default()
        }
    }

    const QUIET: &str = r#"{"version":1,"services":{"checkout":{"dataSince":1699999000,"calm":true,"readings":{"needPerRps":["0.1"]}}}}"#;
    /// QUIET one run later: only a reading moved.
    const QUIET_LATER: &str = r#"{"version":1,"services":{"checkout":{"dataSince":1699999000,"calm":true,"readings":{"needPerRps":["0.1","0.2"]}}}}"#;
    /// A relaxing streak began: durable memory changed.
    const STREAK: &str = r#"{"version":1,"services":{"checkout":{"relaxStreak":{"weights":1},"dataSince":1699999000,"calm":true}}}"#;

    #[test]
    fn the_first_status_is_always_written() {
        assert!(must_write(None, &status("a", "cooldown: 90s", QUIET), T));
    }

    #[test]
    fn moving_numbers_alone_wait_for_the_heartbeat() {
        let stored = status("traffic 10.0 rps", "cooldown: 90s left", QUIET);
        let mut next = status("traffic 12.5 rps", "cooldown: 75s left", QUIET_LATER);
        next.last_evaluated = at(T + 15);
        assert!(!must_write(Some(&stored), &next, T + 15));
        // 299 s after the last write: still quiet; at 300 s the heartbeat writes.
        assert!(!must_write(Some(&stored), &next, T + 299));
        assert!(must_write(Some(&stored), &next, T + HEARTBEAT_SECONDS));
    }

    #[test]
    fn a_change_of_phase_plan_or_durable_memory_is_written_at_once() {
        let stored = status("a", "cooldown: 90s left", QUIET);
        let mut phase = stored.clone();
        phase.phase = Some("Degraded".into());
        assert!(must_write(Some(&stored), &phase, T + 15));
        let mut released = stored.clone();
        released.recommendations[0].held_by = None;
        assert!(must_write(Some(&stored), &released, T + 15));
        assert!(must_write(
            Some(&stored),
            &status("a", "cooldown: 90s left", STREAK),
            T + 15
        ));
        let mut finding = stored.clone();
        finding.findings[0].kind = "anomaly".into();
        assert!(must_write(Some(&stored), &finding, T + 15));
    }

    #[test]
    fn the_webhooks_alert_records_do_not_make_a_write() {
        // The stored status has a record the webhook wrote; the reconciler's next status never
        // carries it (not its field): without the exception every run would write.
        let mut stored = status("a", "h", QUIET);
        stored.alert_remediations = serde_json::from_value(serde_json::json!([{
            "alertname": "ErrorBudgetBurn", "fingerprint": "c0ffee", "startsAt": T - 60,
            "handledAt": T - 55, "mode": "Enforce"
        }]))
        .unwrap();
        assert!(!must_write(Some(&stored), &status("a", "h", QUIET), T + 15));
    }

    #[test]
    fn unreadable_memory_is_compared_as_text() {
        let stored = status("a", "h", "not json");
        assert!(must_write(Some(&stored), &status("a", "h", QUIET), T + 15));
        assert!(!must_write(
            Some(&stored),
            &status("a", "h", "not json"),
            T + 15
        ));
    }
}
