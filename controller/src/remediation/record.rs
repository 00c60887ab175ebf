//! The idempotency record: one `status.alertRemediations` entry per alert occurrence acted on
//! (Alertmanager's fingerprint + `startsAt`). It lives in status, so a restarted controller or
//! another replica sees it; it is bounded, so status stays small.

use crate::crd::{AdaptivePolicyStatus, AlertRemediation};
use crate::webhook::AlertKey;

/// How long a finished record (resolved, nothing left to give back) is kept: Alertmanager
/// sends a resolve once (`send_resolved`) and retries a failed notification within its
/// notifier's timeout, minutes at most; a day is well past any redelivery.
pub const FINISHED_KEEP_SECONDS: i64 = 24 * 3600;

/// Most records kept per policy, newest first. Alertmanager's `repeat_interval` (4 h by default)
/// resends an alert still firing with the same `startsAt`, so an unresolved record must stay:
/// 100 open incidents on one service is far past anything a person could follow, and keeps the
/// status (each record under 2 kB) well inside the API server's 1.5 MB object limit.
pub const MAX_RECORDS: usize = 100;

/// The record of an occurrence, if it was acted on.
pub fn find<'a>(status: &'a AdaptivePolicyStatus, key: &AlertKey) -> Option<&'a AlertRemediation> {
    status
        .alert_remediations
        .iter()
        .find(|r| r.fingerprint == key.fingerprint && r.starts_at == key.starts_at)
}

/// The record of an occurrence, to update.
pub fn find_mut<'a>(
    status: &'a mut AdaptivePolicyStatus,
    key: &AlertKey,
) -> Option<&'a mut AlertRemediation> {
    status
        .alert_remediations
        .iter_mut()
        .find(|r| r.fingerprint == key.fingerprint && r.starts_at == key.starts_at)
}

/// Drops finished records older than [`FINISHED_KEEP_SECONDS`], then all but the newest
/// [`MAX_RECORDS`] (by when they were handled; order otherwise kept).
pub fn prune(records: &mut Vec<AlertRemediation>, now: i64) {
    records.retain(|r| {
        let finished = r.resolved_at.is_some() && r.pending_revert.is_empty();
        !(finished && r.resolved_at.unwrap_or(now) < now.saturating_sub(FINISHED_KEEP_SECONDS))
    });
    if records.len() > MAX_RECORDS {
        let mut times: Vec<i64> = records.iter().map(|r| r.handled_at).collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        let cutoff = times[MAX_RECORDS - 1];
        let mut kept = 0;
        records.retain(|r| {
            let keep = r.handled_at >= cutoff && kept < MAX_RECORDS;
            kept += usize::from(keep);
            keep
        });
    }
}

/// The knobs a record applied, each once, in order: what a resolve puts on `pendingRevert`.
pub fn applied_knobs(r: &AlertRemediation) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in &r.applied {
        if !out.contains(&a.knob) {
            out.push(a.knob.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        fp: &str,
        handled_at: i64,
        resolved_at: Option<i64>,
        pending: &[&str],
    ) -> AlertRemediation {
        AlertRemediation {
            alertname: "A".into(),
            fingerprint: fp.into(),
            starts_at: 0,
            handled_at,
            mode: "Enforce".into(),
            recommendations: Vec::new(),
            applied: Vec::new(),
            failed: Vec::new(),
            resolved_at,
            pending_revert: pending.iter().map(|s| s.to_string()).collect(),
            reverts: Vec::new(),
        }
    }

    #[test]
    fn finished_records_go_after_a_day_open_ones_stay() {
        let now = 200_000;
        let mut v = vec![
            // resolved 86 401 s ago, nothing pending: past the day, dropped
            rec("old-done", 0, Some(now - 86_401), &[]),
            // resolved as long ago but a revert still pending: kept
            rec("old-pending", 0, Some(now - 86_401), &["weights"]),
            // never resolved: kept however old (repeat_interval resends it)
            rec("open", 0, None, &[]),
            // resolved 86 399 s ago: inside the day
            rec("recent-done", 1, Some(now - 86_399), &[]),
        ];
        prune(&mut v, now);
        let left: Vec<&str> = v.iter().map(|r| r.fingerprint.as_str()).collect();
        assert_eq!(left, ["old-pending", "open", "recent-done"]);
    }

    #[test]
    fn at_most_the_newest_hundred_are_kept() {
        // 105 open records handled at 0..105: the newest 100 are those handled at 5..105.
        let mut v: Vec<_> = (0..105)
            .map(|i| rec(&i.to_string(), i, None, &[]))
            .collect();
        prune(&mut v, 1000);
        assert_eq!(v.len(), 100);
        assert_eq!(v[0].handled_at, 5);
        assert_eq!(v[99].handled_at, 104);
    }
}
