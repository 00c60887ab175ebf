//! A labelled anomaly corpus in our own domain: simulated incidents, exported as the series the
//! Governor reads (request rate, error ratio, p99 at the telemetry interval) with NAB-style label
//! windows taken from the simulator's ground truth rather than from anyone's judgement.
//!
//! * **Variants** ([`variants`]): every built-in scenario that has a fault is re-run for several
//!   seeds, stretched to [`RUN_HOURS`] so detectors have history before the incident, with the
//!   fault moved to a random time in the last part of the run, the traffic level scaled and, on
//!   every other seed, a sinusoidal (seasonal) traffic profile; every other seed also gets a
//!   clean twin with no fault at all, so false alarms on quiet days cost something.
//! * **Series** ([`simulate`]): the run is played under stock Istio (no controller, so nothing
//!   mitigates the incident and the label is the fault's own), and each time a scrape becomes
//!   visible the last interval of each exported service (its policy's target and the entry
//!   services) is read through [`crate::observe::signals`], the same translation the Governor
//!   gets, and stamped with the scrape's own time (as Prometheus stores it).
//! * **Labels** ([`fault_labels`], [`nab_windows`]): a fault is an anomaly where users saw it —
//!   the first 10 s ground-truth window from the fault's start (before its end) that violates the
//!   SLO. It labels a series when the series can show it: the error ratio if a window of the
//!   impact violates the success objective, the p99 if one violates the latency objective, the
//!   request rate if the fault is a traffic surge; and only on services the fault reaches (the
//!   faulted service and, transitively, its callers; every service for untargeted faults). Faults
//!   without user-visible impact label nothing. Windows follow NAB's rule: 10 % of the file's
//!   rows divided by its number of anomalies, centred on the anomaly's row, clipped to the file.

use std::collections::BTreeSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::duration::Duration;
use crate::engine::{End, Engine, Observer, View};
use crate::faults::Fault;
use crate::record::{Objectives, Outcome, Recorder, RecorderConfig, RunRecord};
use crate::scenario::{ProfileSpec, Scenario};
use crate::telemetry::PodSample;
use crate::topology::Topology;

/// NAB's window size: 10 % of a file's length, shared among its anomalies (Lavin & Ahmad 2015,
/// "Evaluating Real-time Anomaly Detection Algorithms — the Numenta Anomaly Benchmark", §4).
pub const WINDOW_FRACTION: f64 = 0.10;

/// Length of every simulated run. At the default 15 s scrape that is 718 rows (the first scrape
/// only opens an interval; the last is not yet visible at the end): NAB's probation
/// (15 % = 107 rows, 27 minutes) and a detector's warm-up fit well before the earliest fault.
pub const RUN_HOURS: f64 = 3.0;

/// The fault starts at a uniformly drawn share of the run in this range: after probation and
/// warm-up, and early enough that the incident and its window lie inside the file.
pub const FAULT_START: (f64, f64) = (0.45, 0.8);

/// Width of the ground-truth windows the labels are taken from, seconds (the recorder's TTM
/// windows, `record` module docs).
const TRUTH_STEP_S: u64 = 10;

/// The three signals exported per service, in file-name order.
pub const SIGNALS: [&str; 3] = ["request_rate", "error_ratio", "p99_seconds"];

/// One scenario run to export.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Category of its files: the base scenario's name.
    pub category: String,
    /// File-name stem, unique within the category (`seed3`, `seed3-clean`).
    pub stem: String,
    pub scenario: Scenario,
}

/// NAB's window length in rows for a file of `rows` rows with `anomalies` anomalies:
/// ⌊0.1 · rows / anomalies⌋.
pub fn window_rows(rows: usize, anomalies: usize) -> usize {
    if anomalies == 0 {
        return 0;
    }
    (WINDOW_FRACTION * rows as f64 / anomalies as f64).floor() as usize
}

/// Inclusive row ranges of NAB windows centred on each anomaly row (sorted, clipped to the file;
/// windows that would overlap are merged, as our scorer — like NAB's — needs disjoint windows).
pub fn nab_windows(rows: usize, anomaly_rows: &[usize]) -> Vec<(usize, usize)> {
    let mut at: Vec<usize> = anomaly_rows.iter().copied().filter(|&r| r < rows).collect();
    at.sort_unstable();
    at.dedup();
    let half = window_rows(rows, at.len()) / 2;
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(at.len());
    for r in at {
        let (s, e) = (r.saturating_sub(half), (r + half).min(rows - 1));
        match out.last_mut() {
            Some(last) if s <= last.1 + 1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Which signals a fault labels, and from when (seconds), by the ground truth of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impact {
    /// Start of the first SLO-violating window after the fault started.
    pub onset_s: f64,
    pub errors: bool,
    pub latency: bool,
}

/// The user-visible impact of a fault from `start_s` to `end_s` (None: the run's end) in the
/// run's ground-truth windows, or `None` when no window in that span violates the SLO.
pub fn impact(
    record: &RunRecord,
    o: &Objectives,
    start_s: f64,
    end_s: Option<f64>,
) -> Option<Impact> {
    let step = record.step_s.max(1e-9);
    let until = end_s.unwrap_or(record.end_s);
    let k0 = (start_s / step).floor().max(0.0) as usize;
    let k1 = ((until / step).ceil().max(0.0) as usize).min(record.steps.len());
    // Split of the recorder's violation rule (record::Objectives): the success part and the
    // latency part, since each labels a different series.
    let bad_success = |w: &crate::record::WindowStats| {
        w.requests > 0 && (w.successes as f64 / w.requests as f64) < o.success_rate
    };
    let bad_latency =
        |w: &crate::record::WindowStats| w.requests > 0 && w.p99_ms > o.p99_latency_ms;
    let mut onset = None;
    let (mut errors, mut latency) = (false, false);
    for k in k0..k1 {
        let w = &record.steps[k];
        let (e, l) = (bad_success(w), bad_latency(w));
        if (e || l) && onset.is_none() {
            onset = Some(k as f64 * step);
        }
        errors |= e;
        latency |= l;
    }
    onset.map(|onset_s| Impact {
        onset_s,
        errors,
        latency,
    })
}

/// Services a fault on `target` reaches: the target and everything that calls it, transitively.
pub fn reached_by(topo: &Topology, target: usize) -> BTreeSet<usize> {
    let mut reached = BTreeSet::from([target]);
    loop {
        let before = reached.len();
        for (i, s) in topo.services.iter().enumerate() {
            if s.calls.iter().any(|(callee, _)| reached.contains(callee)) {
                reached.insert(i);
            }
        }
        if reached.len() == before {
            return reached;
        }
    }
}

/// For one exported service: per signal ([`SIGNALS`] order), the anomaly times (seconds) the
/// faults of the run label.
pub fn fault_labels(
    topo: &Topology,
    faults: &[Fault],
    record: &RunRecord,
    o: &Objectives,
    service: usize,
) -> [Vec<f64>; 3] {
    let mut out: [Vec<f64>; 3] = Default::default();
    for f in faults {
        let reaches = f
            .service
            .is_none_or(|t| reached_by(topo, t).contains(&service));
        if !reaches {
            continue;
        }
        let ns = 1e9;
        let Some(hit) = impact(record, o, f.start as f64 / ns, f.end.map(|e| e as f64 / ns)) else {
            continue;
        };
        if f.surge.is_some() {
            out[0].push(hit.onset_s);
        }
        if hit.errors {
            out[1].push(hit.onset_s);
        }
        if hit.latency {
            out[2].push(hit.onset_s);
        }
    }
    out
}

/// One exported series.
#[derive(Debug, Clone)]
pub struct Series {
    pub category: String,
    /// `<stem>-<service>-<signal>.csv`.
    pub file: String,
    /// Scrape times, seconds from the run's start.
    pub t_s: Vec<u64>,
    pub values: Vec<f64>,
    /// Inclusive row ranges of the label windows.
    pub windows: Vec<(usize, usize)>,
}

/// The runs of the corpus: `seeds` seeds of every scenario in `bases` that has a fault (a clean
/// twin for every other seed). Deterministic in its inputs.
pub fn variants(bases: &[Scenario], seeds: u64) -> Vec<Variant> {
    let mut out = Vec::new();
    for base in bases.iter().filter(|b| !b.faults.is_empty()) {
        for k in 0..seeds {
            // One stream per (base, seed) so adding scenarios does not reshuffle the others.
            let mut rng = ChaCha8Rng::seed_from_u64(base.seed.wrapping_mul(1000).wrapping_add(k));
            let mut s = base.clone();
            s.seed = base.seed.wrapping_mul(1000).wrapping_add(k);
            let run = RUN_HOURS * 3600.0;
            s.duration = Duration::from_secs_f64(run);
            let start = rng.random_range(FAULT_START.0..FAULT_START.1) * run;
            let first = s
                .faults
                .iter()
                .map(|f| f.at.as_secs_f64())
                .fold(f64::INFINITY, f64::min);
            for f in &mut s.faults {
                // Keep the faults' spacing and lengths; move the group.
                let shift = start - first;
                let at = f.at.as_secs_f64() + shift;
                f.until = f
                    .until
                    .map(|u| Duration::from_secs_f64((u.as_secs_f64() + shift).min(run)));
                f.at = Duration::from_secs_f64(at.min(run));
            }
            let level = rng.random_range(0.4..1.0);
            let seasonal = k % 2 == 1;
            let amplitude = rng.random_range(0.2..0.5);
            if let ProfileSpec::Constant { rate } = s.traffic.profile {
                s.traffic.profile = if seasonal {
                    // Three cycles per run: enough for a seasonal model to see the period twice
                    // before the incident.
                    ProfileSpec::Diurnal {
                        mean: rate * level,
                        amplitude,
                        period: Duration::from_secs_f64(run / 3.0),
                    }
                } else {
                    ProfileSpec::Constant { rate: rate * level }
                };
            }
            let stem = format!("seed{k}");
            if k % 2 == 0 {
                let mut clean = s.clone();
                clean.faults.clear();
                out.push(Variant {
                    category: base.name.clone(),
                    stem: format!("{stem}-clean"),
                    scenario: clean,
                });
            }
            out.push(Variant {
                category: base.name.clone(),
                stem,
                scenario: s,
            });
        }
    }
    out
}

/// Collects the ground truth and, at every scrape, each exported service's last interval.
struct Probe {
    recorder: Recorder,
    services: Vec<usize>,
    subset_service: Vec<usize>,
    t_s: Vec<u64>,
    /// Per exported service, per signal.
    values: Vec<[Vec<f64>; 3]>,
}

impl Observer for Probe {
    fn request_done(&mut self, t: u64, latency: u64, end: End, _entry_subset: usize) {
        let outcome = match end {
            End::Success => Outcome::Success,
            End::Failure => Outcome::Failure,
            End::Timeout => Outcome::Timeout,
        };
        self.recorder.on_request_done(t, latency, outcome, 0);
    }

    fn tick(&mut self, _t: u64, view: &View<'_>) -> Vec<crate::engine::Change> {
        // Each row is stamped with its scrape's own time, as Prometheus stores a sample (not the
        // later instant the controller reads it, one telemetry lag on): the anomaly row is then
        // the first interval that ends at or after the impact's onset, not the last one before.
        let Some(&(scraped, _, _)) = view.scrapes.points(1, |_| true).last() else {
            return Vec::new();
        };
        self.t_s.push(scraped / 1_000_000_000);
        for (k, &svc) in self.services.iter().enumerate() {
            let map = &self.subset_service;
            let filter = |p: &PodSample| map.get(p.subset as usize) == Some(&svc);
            let s = crate::observe::signals(view, 1, &filter);
            let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
            self.values[k][0].push(last(&s.request_rate));
            self.values[k][1].push(1.0 - last(&s.success_rate));
            self.values[k][2].push(last(&s.latency_p99));
        }
        Vec::new()
    }
}

/// Runs one variant under stock Istio and returns its labelled series.
pub fn simulate(v: &Variant) -> Result<Vec<Series>, String> {
    let s = &v.scenario;
    let mut engine = Engine::new(s)?;
    let topo = engine.topo.clone();
    let mut services: Vec<usize> = s
        .policies
        .iter()
        .filter_map(|p| p.target_service().and_then(|n| topo.service_index(n)))
        .chain(topo.entries.iter().map(|&(svc, _)| svc))
        .collect();
    services.sort_unstable();
    services.dedup();
    let mut probe = Probe {
        recorder: Recorder::new(RecorderConfig {
            step_s: TRUTH_STEP_S,
            subsets: Vec::new(),
        })
        .with_end(engine.end_time()),
        services: services.clone(),
        subset_service: topo.subsets.iter().map(|x| x.service).collect(),
        t_s: Vec::new(),
        values: vec![Default::default(); services.len()],
    };
    engine.run(&mut probe);
    let record = probe.recorder.into_record(engine.end_time());
    let objectives = crate::runs::objectives(s);
    let rows = probe.t_s.len();
    let mut out = Vec::new();
    for (k, &svc) in services.iter().enumerate() {
        let labels = fault_labels(&topo, &engine.faults, &record, &objectives, svc);
        for (j, signal) in SIGNALS.iter().enumerate() {
            // The anomaly's row: the first scrape at or after the impact's onset.
            let anomaly_rows: Vec<usize> = labels[j]
                .iter()
                .map(|&t| probe.t_s.partition_point(|&x| (x as f64) < t))
                .collect();
            out.push(Series {
                category: v.category.clone(),
                file: format!("{}-{}-{signal}.csv", v.stem, topo.services[svc].name),
                t_s: probe.t_s.clone(),
                values: std::mem::take(&mut probe.values[k][j]),
                windows: nab_windows(rows, &anomaly_rows),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nab_window_rule_by_hand() {
        // 200 rows, one anomaly at row 100: length ⌊0.1·200/1⌋ = 20, half 10 → rows 90..=110.
        assert_eq!(nab_windows(200, &[100]), vec![(90, 110)]);
        // Two anomalies: ⌊0.1·200/2⌋ = 10, half 5 → 35..=45 and 145..=155.
        assert_eq!(nab_windows(200, &[40, 150]), vec![(35, 45), (145, 155)]);
        // Near the edges the window is clipped: row 3 → 0..=13; row 198 → 188..=199.
        assert_eq!(nab_windows(200, &[3]), vec![(0, 13)]);
        assert_eq!(nab_windows(200, &[198]), vec![(188, 199)]);
        // Two close anomalies: half 5 each → 45..=55 and 48..=58 overlap → merged 45..=58.
        assert_eq!(nab_windows(200, &[50, 53]), vec![(45, 58)]);
        // No anomaly, no window; an anomaly row past the end is ignored.
        assert!(nab_windows(200, &[]).is_empty());
        assert!(nab_windows(200, &[500]).is_empty());
        assert_eq!(window_rows(99, 1), 9);
    }
}
