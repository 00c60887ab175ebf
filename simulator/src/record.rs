//! Ground-truth accounting of one simulated run: what users experienced, not what telemetry
//! claimed.
//!
//! The engine feeds a [`Recorder`] on its hot path (`on_request_done` for every *entry* request,
//! i.e. the request a user sent, after retries) and at its slow cadence (samples, actions,
//! ejections, faults). [`Recorder::with_end`] folds completions that drain after the traffic's
//! end into the last window. [`Recorder::into_record`] closes the run into a [`RunRecord`];
//! [`RunRecord::finish`] evaluates it against the SLO [`Objectives`] into [`RunMetrics`].
//!
//! # Metric definitions
//!
//! * **Minute** `m` is `[m·60 s, (m+1)·60 s)` of simulated time, attributed by request *completion*
//!   time. A minute *violates the SLO* when it had at least one request and either its success
//!   rate (successes / requests; failures and timeouts are not successes) is below the success
//!   objective or its p99 latency exceeds the latency objective. Minutes without traffic never
//!   violate.
//! * **Error budget burned** = failed / allowed, where failed = failures + timeouts and
//!   allowed = (1 − success objective) · total requests. 1.0 means the whole budget of the run is
//!   spent; `None` when nothing is allowed (objective 1.0 or no traffic).
//! * **Availability** = successes / requests over the run.
//! * **p50/p99** over the run: nearest-rank quantile (the value of rank ⌈q·n⌉) of a log-linear
//!   histogram with 64 sub-buckets per power of two, reported at the bucket mid-point, so the
//!   relative error is at most 1/128 ≈ 0.8 % (latencies below 64 ns are exact).
//! * **Replica-hours** = ∫ replicas dt, with the replica count of each sample held until the next
//!   sample and the last one until the end of the run; time before the first sample is not
//!   counted (the engine samples at t = 0).
//! * **Time to detect** (TTD) of a fault starting at `s` and ending at `e` (or the end of the run)
//!   = `t − s` for the first *detection event* at `t ∈ [s, e]`. Detection events are: an action
//!   (any knob, any run — an HPA scale-up counts), a finding, or an outlier ejection. `None` when
//!   nothing happened in that interval.
//! * **Time to mitigate** (TTM) uses the ground-truth *windows* of `step` seconds (default 10 s,
//!   aligned to 0). A window violates by the same rule as a minute. Let `k₀` be the window that
//!   contains `s`. If no window from `k₀` to the end of the run violates, the fault had no
//!   user-visible impact and TTM = 0. Otherwise, after the first violating window, find the first
//!   window `k` that starts a run of [`Objectives::mitigation_windows`] consecutive
//!   non-violating windows (all inside the run); TTM = start of `k` − `s` (clamped at 0). `None`
//!   when that never happens. `mitigated_after_fault_end` says whether `k` starts at or after the
//!   fault's own end — then the fault went away rather than being mitigated.
//!
//! Memory is O(run length / step), not O(requests): each window keeps its own histogram only
//! while it is open; quantiles are computed when the window closes.

use std::collections::BTreeMap;

use serde::Serialize;

const NS_PER_S: f64 = 1e9;
const MINUTE_NS: u64 = 60_000_000_000;

/// How an entry request ended, as its user saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Timeout,
}

/// What the run looked like at one telemetry interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SampleState {
    /// Pods that exist (ready or starting): what the run pays for.
    pub replicas: u32,
    /// Traffic weight per subset (e.g. `reviews/v2`), as currently applied.
    pub weights: BTreeMap<String, f64>,
}

/// The SLO a run is judged against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objectives {
    /// Target fraction of successful requests, e.g. 0.999.
    pub success_rate: f64,
    /// Target p99 latency in milliseconds.
    pub p99_latency_ms: f64,
    /// Consecutive non-violating windows that count as "mitigated" (default 3 = 30 s at 10 s).
    pub mitigation_windows: usize,
}

impl Objectives {
    pub fn new(success_rate: f64, p99_latency_ms: f64) -> Self {
        Self {
            success_rate,
            p99_latency_ms,
            mitigation_windows: 3,
        }
    }

    /// Whether a window with these numbers violates; empty windows never do.
    fn violated(&self, requests: u64, successes: u64, p99_ms: f64) -> bool {
        if requests == 0 {
            return false;
        }
        let success = successes as f64 / requests as f64;
        success < self.success_rate || p99_ms > self.p99_latency_ms
    }
}

/// Recorder settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderConfig {
    /// Width of the chart/TTM windows in seconds (clamped to 1..=60; independent of minutes).
    pub step_s: u64,
    /// Subset names; `on_request_done`'s `subset` indexes into this list.
    pub subsets: Vec<String>,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            step_s: 10,
            subsets: Vec::new(),
        }
    }
}

/// Log-linear latency histogram: exact below 64 ns, then 64 sub-buckets per power of two.
#[derive(Clone)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = SUB + (64 - SUB_BITS as usize) * SUB;

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("total", &self.total)
            .finish()
    }
}

impl LatencyHistogram {
    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let sub = (v >> (e - SUB_BITS)) as usize & (SUB - 1);
        SUB + (e - SUB_BITS) as usize * SUB + sub
    }

    /// Mid-point of bucket `i`, the value reported for every sample in it.
    fn value(i: usize) -> f64 {
        if i < SUB {
            return i as f64;
        }
        let e = (i - SUB) / SUB + SUB_BITS as usize;
        let sub = (i - SUB) % SUB;
        let width = 2f64.powi((e - SUB_BITS as usize) as i32);
        2f64.powi(e as i32) + (sub as f64 + 0.5) * width
    }

    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Nearest-rank quantile in the recorded unit; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::value(i));
            }
        }
        None
    }

    fn merge_and_clear(&mut self, into: &mut LatencyHistogram) {
        if self.total == 0 {
            return;
        }
        for (a, b) in into.counts.iter_mut().zip(self.counts.iter_mut()) {
            *a += *b;
            *b = 0;
        }
        into.total += self.total;
        self.total = 0;
    }

    fn clear(&mut self) {
        if self.total != 0 {
            self.counts.iter_mut().for_each(|c| *c = 0);
            self.total = 0;
        }
    }
}

/// Closed statistics of one window (a minute or a step).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowStats {
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub timeouts: u64,
    /// `NaN` when the window had no requests.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Per subset (index as in [`RecorderConfig::subsets`], plus one "other" slot at the end):
    /// `[requests, successes]`.
    pub per_subset: Vec<[u64; 2]>,
}

/// The window currently being filled.
struct OpenWindow {
    index: u64,
    stats: WindowStats,
    hist: LatencyHistogram,
}

impl OpenWindow {
    fn new(subsets: usize) -> Self {
        Self {
            index: 0,
            stats: WindowStats {
                per_subset: vec![[0, 0]; subsets + 1],
                ..WindowStats::default()
            },
            hist: LatencyHistogram::default(),
        }
    }

    #[inline]
    fn add(&mut self, latency_ns: u64, outcome: Outcome, subset: usize) {
        let s = &mut self.stats;
        s.requests += 1;
        let slot = subset.min(s.per_subset.len() - 1);
        s.per_subset[slot][0] += 1;
        match outcome {
            Outcome::Success => {
                s.successes += 1;
                s.per_subset[slot][1] += 1;
            }
            Outcome::Failure => s.failures += 1,
            Outcome::Timeout => s.timeouts += 1,
        }
        self.hist.record(latency_ns);
    }

    /// Closes the window into `out` (filling skipped empty windows) and opens `next`.
    fn roll(
        &mut self,
        next: u64,
        out: &mut Vec<WindowStats>,
        total: Option<&mut LatencyHistogram>,
    ) {
        let subsets = self.stats.per_subset.len();
        let mut stats = std::mem::replace(
            &mut self.stats,
            WindowStats {
                per_subset: vec![[0, 0]; subsets],
                ..WindowStats::default()
            },
        );
        stats.p50_ms = self.hist.quantile(0.5).map_or(f64::NAN, |v| v / 1e6);
        stats.p99_ms = self.hist.quantile(0.99).map_or(f64::NAN, |v| v / 1e6);
        match total {
            Some(t) => self.hist.merge_and_clear(t),
            None => self.hist.clear(),
        }
        out.push(stats);
        while (out.len() as u64) < next {
            out.push(WindowStats {
                p50_ms: f64::NAN,
                p99_ms: f64::NAN,
                per_subset: vec![[0, 0]; subsets],
                ..WindowStats::default()
            });
        }
        self.index = next;
    }
}

/// A change the controller (or baseline) applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRecord {
    pub t_s: f64,
    pub knob: String,
    pub summary: String,
    pub reason: String,
}

/// An event that counts as detecting a fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionEvent {
    pub t_s: f64,
    /// `action`, `finding` or `ejection`.
    pub kind: &'static str,
    pub what: String,
}

/// An injected fault on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRecord {
    pub start_s: f64,
    /// `None`: lasts until the end of the run.
    pub end_s: Option<f64>,
    pub description: String,
}

/// Feeds on the engine's events; cheap and allocation-free per request.
pub struct Recorder {
    config: RecorderConfig,
    step_ns: u64,
    minute: OpenWindow,
    step: OpenWindow,
    minutes: Vec<WindowStats>,
    steps: Vec<WindowStats>,
    total: LatencyHistogram,
    retries: u64,
    ejections: Vec<DetectionEvent>,
    findings: Vec<DetectionEvent>,
    samples: Vec<(f64, SampleState)>,
    actions: Vec<ActionRecord>,
    faults: Vec<FaultRecord>,
    late: u64,
    clamp_ns: u64,
}

impl Recorder {
    pub fn new(config: RecorderConfig) -> Self {
        let step_s = config.step_s.clamp(1, 60);
        let subsets = config.subsets.len();
        Self {
            step_ns: step_s * 1_000_000_000,
            config: RecorderConfig { step_s, ..config },
            minute: OpenWindow::new(subsets),
            step: OpenWindow::new(subsets),
            minutes: Vec::new(),
            steps: Vec::new(),
            total: LatencyHistogram::default(),
            retries: 0,
            ejections: Vec::new(),
            findings: Vec::new(),
            samples: Vec::new(),
            actions: Vec::new(),
            faults: Vec::new(),
            late: 0,
            clamp_ns: u64::MAX,
        }
    }

    /// Completions at or after `end_ns` (requests draining after the run's traffic stopped)
    /// are counted in the last window before `end_ns` instead of opening windows of their own,
    /// so the run's tail is not a lone, nearly empty minute. Call with the traffic's end and
    /// pass the same value to [`Recorder::into_record`].
    pub fn with_end(mut self, end_ns: u64) -> Self {
        self.clamp_ns = end_ns.saturating_sub(1);
        self
    }

    /// An entry request completed at `t_ns` after `latency_ns` (including retries) with
    /// `outcome`; `subset` indexes [`RecorderConfig::subsets`] (out of range → "other").
    ///
    /// Completions are expected in non-decreasing time order (the engine's event order); a
    /// completion for an already closed window is counted in the open one and reported in
    /// [`RunRecord::late_completions`].
    #[inline]
    pub fn on_request_done(&mut self, t_ns: u64, latency_ns: u64, outcome: Outcome, subset: usize) {
        let t_ns = t_ns.min(self.clamp_ns);
        let m = t_ns / MINUTE_NS;
        if m > self.minute.index {
            self.minute
                .roll(m, &mut self.minutes, Some(&mut self.total));
        }
        let k = t_ns / self.step_ns;
        if k > self.step.index {
            self.step.roll(k, &mut self.steps, None);
        } else if k < self.step.index {
            self.late += 1;
        }
        self.minute.add(latency_ns, outcome, subset);
        self.step.add(latency_ns, outcome, subset);
    }

    /// A retry was sent (any hop).
    pub fn on_retry(&mut self, _t_ns: u64) {
        self.retries += 1;
    }

    /// An outlier detector ejected `pod`.
    pub fn on_ejection(&mut self, t_ns: u64, pod: &str) {
        self.ejections.push(DetectionEvent {
            t_s: t_ns as f64 / NS_PER_S,
            kind: "ejection",
            what: pod.to_string(),
        });
    }

    /// A detector reported a finding (no action needed to count as detection).
    pub fn on_finding(&mut self, t_ns: u64, summary: &str) {
        self.findings.push(DetectionEvent {
            t_s: t_ns as f64 / NS_PER_S,
            kind: "finding",
            what: summary.to_string(),
        });
    }

    /// The state at a telemetry interval.
    pub fn on_sample(&mut self, t_ns: u64, state: SampleState) {
        self.samples.push((t_ns as f64 / NS_PER_S, state));
    }

    /// A knob was changed (applied), with the reason the deciding code gave.
    pub fn on_action(&mut self, t_ns: u64, knob: &str, summary: &str, reason: &str) {
        self.actions.push(ActionRecord {
            t_s: t_ns as f64 / NS_PER_S,
            knob: knob.to_string(),
            summary: summary.to_string(),
            reason: reason.to_string(),
        });
    }

    /// A fault on the timeline; may be called before or during the run.
    pub fn on_fault(&mut self, start_ns: u64, end_ns: Option<u64>, description: &str) {
        self.faults.push(FaultRecord {
            start_s: start_ns as f64 / NS_PER_S,
            end_s: end_ns.map(|e| e as f64 / NS_PER_S),
            description: description.to_string(),
        });
    }

    /// Closes the run at `end_ns` (exclusive): the windows up to it are closed.
    pub fn into_record(mut self, end_ns: u64) -> RunRecord {
        let minutes_total = end_ns.div_ceil(MINUTE_NS).max(self.minute.index + 1);
        self.minute
            .roll(minutes_total, &mut self.minutes, Some(&mut self.total));
        self.minutes.truncate(minutes_total as usize);
        let steps_total = end_ns.div_ceil(self.step_ns).max(self.step.index + 1);
        self.step.roll(steps_total, &mut self.steps, None);
        self.steps.truncate(steps_total as usize);
        self.faults.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        RunRecord {
            end_s: end_ns as f64 / NS_PER_S,
            step_s: self.config.step_s as f64,
            subsets: self.config.subsets,
            minutes: self.minutes,
            steps: self.steps,
            total: self.total,
            retries: self.retries,
            ejections: self.ejections,
            findings: self.findings,
            samples: self.samples,
            actions: self.actions,
            faults: self.faults,
            late_completions: self.late,
        }
    }
}

/// Everything one run produced, closed.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub end_s: f64,
    pub step_s: f64,
    pub subsets: Vec<String>,
    pub minutes: Vec<WindowStats>,
    /// Windows of `step_s`, for charts and TTM.
    pub steps: Vec<WindowStats>,
    total: LatencyHistogram,
    pub retries: u64,
    pub ejections: Vec<DetectionEvent>,
    pub findings: Vec<DetectionEvent>,
    /// `(t_s, state)`, in the order the engine sampled.
    pub samples: Vec<(f64, SampleState)>,
    pub actions: Vec<ActionRecord>,
    /// Sorted by start.
    pub faults: Vec<FaultRecord>,
    /// Completions that arrived after their window closed (should be 0).
    pub late_completions: u64,
}

/// What happened to one injected fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultOutcome {
    pub description: String,
    pub start_s: f64,
    pub end_s: Option<f64>,
    pub ttd_s: Option<f64>,
    pub detected_by: Option<DetectionEvent>,
    /// Whether any window from the fault's start on violated the SLO.
    pub user_impact: bool,
    pub ttm_s: Option<f64>,
    pub mitigated_after_fault_end: bool,
}

/// The judged numbers of one run (see the module docs for definitions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunMetrics {
    /// Simulated duration of the run.
    pub duration_s: f64,
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub slo_violation_minutes: u64,
    pub minutes_with_traffic: u64,
    pub error_budget_burned: Option<f64>,
    pub availability: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub replica_hours: f64,
    pub retries: u64,
    pub ejections: u64,
    /// Actions per simulated day (actions ÷ duration in days).
    pub actions_per_day: f64,
    pub actions: Vec<ActionRecord>,
    pub faults: Vec<FaultOutcome>,
}

/// Per-step series for charts and CSV; samples forward-filled onto the step grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub t_s: Vec<f64>,
    pub request_rate: Vec<f64>,
    /// `NaN` where there was no traffic.
    pub success_rate: Vec<f64>,
    pub p50_ms: Vec<f64>,
    pub p99_ms: Vec<f64>,
    /// `NaN` before the first sample.
    pub replicas: Vec<f64>,
    /// Per subset name, `NaN` where unknown.
    pub weights: BTreeMap<String, Vec<f64>>,
}

impl RunRecord {
    /// Run-level quantile of entry-request latency in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.total.quantile(q).map(|v| v / 1e6)
    }

    /// ∫ replicas dt in hours (see module docs).
    pub fn replica_hours(&self) -> f64 {
        let mut seconds = 0.0;
        for (i, (t, s)) in self.samples.iter().enumerate() {
            let next = self.samples.get(i + 1).map_or(self.end_s, |n| n.0);
            let dt = (next.min(self.end_s) - t).max(0.0);
            seconds += f64::from(s.replicas) * dt;
        }
        seconds / 3600.0
    }

    fn step_violated(&self, o: &Objectives, k: usize) -> bool {
        let w = &self.steps[k];
        o.violated(w.requests, w.successes, w.p99_ms)
    }

    fn fault_outcome(&self, o: &Objectives, f: &FaultRecord) -> FaultOutcome {
        let until = f.end_s.unwrap_or(self.end_s);
        let detected_by = self
            .actions
            .iter()
            .map(|a| DetectionEvent {
                t_s: a.t_s,
                kind: "action",
                what: format!("{}: {}", a.knob, a.summary),
            })
            .chain(self.findings.iter().cloned())
            .chain(self.ejections.iter().cloned())
            .filter(|e| e.t_s >= f.start_s && e.t_s <= until)
            // Earliest first; ties broken by kind then text so the choice is deterministic.
            .min_by(|a, b| {
                a.t_s
                    .total_cmp(&b.t_s)
                    .then(a.kind.cmp(b.kind))
                    .then(a.what.cmp(&b.what))
            });
        let ttd_s = detected_by.as_ref().map(|e| e.t_s - f.start_s);

        let k0 = (f.start_s / self.step_s).floor().max(0.0) as usize;
        let n = self.steps.len();
        let first_bad = (k0..n).find(|&k| self.step_violated(o, k));
        let need = o.mitigation_windows.max(1);
        let (user_impact, ttm_s, after_end) = match first_bad {
            None => (false, Some(0.0), false),
            Some(b) => {
                let healthy = (b + 1..n)
                    .find(|&k| k + need <= n && (k..k + need).all(|j| !self.step_violated(o, j)));
                match healthy {
                    None => (true, None, false),
                    Some(k) => {
                        let t = k as f64 * self.step_s;
                        let after_end = f.end_s.is_some_and(|e| t >= e);
                        (true, Some((t - f.start_s).max(0.0)), after_end)
                    }
                }
            }
        };
        FaultOutcome {
            description: f.description.clone(),
            start_s: f.start_s,
            end_s: f.end_s,
            ttd_s,
            detected_by,
            user_impact,
            ttm_s,
            mitigated_after_fault_end: after_end,
        }
    }

    /// Judges the run against `objectives`.
    pub fn finish(&self, objectives: &Objectives) -> RunMetrics {
        let sum = |f: fn(&WindowStats) -> u64| self.minutes.iter().map(f).sum::<u64>();
        let requests = sum(|w| w.requests);
        let successes = sum(|w| w.successes);
        let failures = sum(|w| w.failures);
        let timeouts = sum(|w| w.timeouts);
        let slo_violation_minutes = self
            .minutes
            .iter()
            .filter(|w| objectives.violated(w.requests, w.successes, w.p99_ms))
            .count() as u64;
        let allowed = (1.0 - objectives.success_rate) * requests as f64;
        RunMetrics {
            duration_s: self.end_s,
            requests,
            successes,
            failures,
            timeouts,
            slo_violation_minutes,
            minutes_with_traffic: self.minutes.iter().filter(|w| w.requests > 0).count() as u64,
            error_budget_burned: (allowed > 0.0).then(|| (failures + timeouts) as f64 / allowed),
            availability: (requests > 0).then(|| successes as f64 / requests as f64),
            p50_ms: self.quantile_ms(0.5),
            p99_ms: self.quantile_ms(0.99),
            replica_hours: self.replica_hours(),
            retries: self.retries,
            ejections: self.ejections.len() as u64,
            actions_per_day: if self.end_s > 0.0 {
                self.actions.len() as f64 / (self.end_s / 86_400.0)
            } else {
                0.0
            },
            actions: self.actions.clone(),
            faults: self
                .faults
                .iter()
                .map(|f| self.fault_outcome(objectives, f))
                .collect(),
        }
    }

    /// Chart/CSV series on the step grid.
    pub fn series(&self) -> Series {
        let n = self.steps.len();
        let mut names: Vec<&String> = self
            .samples
            .iter()
            .flat_map(|(_, s)| s.weights.keys())
            .collect();
        names.sort();
        names.dedup();
        let mut out = Series {
            t_s: Vec::with_capacity(n),
            request_rate: Vec::with_capacity(n),
            success_rate: Vec::with_capacity(n),
            p50_ms: Vec::with_capacity(n),
            p99_ms: Vec::with_capacity(n),
            replicas: Vec::with_capacity(n),
            weights: names
                .iter()
                .map(|k| ((*k).clone(), Vec::with_capacity(n)))
                .collect(),
        };
        let mut next_sample = 0;
        let mut current: Option<&SampleState> = None;
        for (k, w) in self.steps.iter().enumerate() {
            let t = k as f64 * self.step_s;
            // The state in force at the end of the window is what the window's traffic saw most.
            while next_sample < self.samples.len() && self.samples[next_sample].0 < t + self.step_s
            {
                current = Some(&self.samples[next_sample].1);
                next_sample += 1;
            }
            out.t_s.push(t);
            out.request_rate.push(w.requests as f64 / self.step_s);
            out.success_rate.push(if w.requests > 0 {
                w.successes as f64 / w.requests as f64
            } else {
                f64::NAN
            });
            out.p50_ms.push(w.p50_ms);
            out.p99_ms.push(w.p99_ms);
            out.replicas
                .push(current.map_or(f64::NAN, |s| f64::from(s.replicas)));
            for (name, v) in out.weights.iter_mut() {
                v.push(
                    current
                        .and_then(|s| s.weights.get(name).copied())
                        .unwrap_or(f64::NAN),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn recorder() -> Recorder {
        Recorder::new(RecorderConfig::default())
    }

    /// `n` requests spread evenly over `[from_s, from_s + span_s)`.
    fn spread(r: &mut Recorder, from_s: u64, span_s: u64, n: u64, lat: u64, o: Outcome) {
        for i in 0..n {
            r.on_request_done(from_s * S + i * span_s * S / n, lat, o, 0);
        }
    }

    #[test]
    fn slo_minutes_budget_and_availability_on_a_hand_made_run() {
        let o = Objectives::new(0.99, 100.0);
        let mut r = recorder();
        // Minute 0: 100 successes at 10 ms → fine.
        spread(&mut r, 0, 60, 100, 10 * MS, Outcome::Success);
        // Minute 1: 98 successes + 1 failure + 1 timeout → 98 % < 99 % → violates.
        spread(&mut r, 60, 50, 98, 10 * MS, Outcome::Success);
        r.on_request_done(115 * S, 10 * MS, Outcome::Failure, 0);
        r.on_request_done(116 * S, 10 * MS, Outcome::Timeout, 0);
        // Minute 2: no traffic → does not violate.
        // Minute 3: 95 at 10 ms, 5 at 500 ms; p99 = rank ⌈0.99·100⌉ = 99 → 500 ms → violates.
        spread(&mut r, 180, 50, 95, 10 * MS, Outcome::Success);
        spread(&mut r, 230, 5, 5, 500 * MS, Outcome::Success);
        // Minute 4: 99 at 10 ms, 1 at 500 ms; rank 99 → 10 ms → fine.
        spread(&mut r, 240, 50, 99, 10 * MS, Outcome::Success);
        r.on_request_done(295 * S, 500 * MS, Outcome::Success, 0);
        let m = r.into_record(300 * S).finish(&o);
        assert_eq!(m.requests, 400);
        assert_eq!(m.successes + m.failures + m.timeouts, m.requests);
        assert_eq!((m.failures, m.timeouts), (1, 1));
        assert_eq!(m.slo_violation_minutes, 2);
        assert_eq!(m.minutes_with_traffic, 4);
        // allowed = 0.01 · 400 = 4 failures; 2 failed → half the budget.
        assert!((m.error_budget_burned.unwrap() - 0.5).abs() < 1e-9);
        // 398 / 400.
        assert!((m.availability.unwrap() - 0.995).abs() < 1e-12);
        // Overall: 394 of 400 at 10 ms, 6 at 500 ms; rank ⌈0.99·400⌉ = 396 > 394 → p99 is
        // 500 ms; p50 is 10 ms (each within the 0.8 % bucket error).
        assert!((m.p99_ms.unwrap() - 500.0).abs() / 500.0 < 0.008);
        assert!((m.p50_ms.unwrap() - 10.0).abs() / 10.0 < 0.008);
    }

    #[test]
    fn draining_completions_fold_into_the_last_window() {
        let o = Objectives::new(0.99, 100.0);
        let mut r = recorder().with_end(120 * S);
        // 1 req/s for 120 s, then 5 completions draining at 121–125 s (2 of them timeouts).
        spread(&mut r, 0, 120, 120, 10 * MS, Outcome::Success);
        spread(&mut r, 121, 3, 3, 10 * MS, Outcome::Success);
        spread(&mut r, 124, 2, 2, 10 * MS, Outcome::Timeout);
        let rec = r.into_record(120 * S);
        // Still 2 minutes and 12 windows; the last window holds 10 + 5 = 15 requests.
        assert_eq!(rec.minutes.len(), 2);
        assert_eq!(rec.steps.len(), 12);
        assert_eq!(rec.steps[11].requests, 15);
        // Minute 1: 60 + 5 requests, 2 timeouts → 63/65 = 96.9 % < 99 % → violates.
        assert_eq!(rec.finish(&o).slo_violation_minutes, 1);
    }

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut h = LatencyHistogram::default();
        // 1 µs .. 100 ms in 1 µs steps: the nearest-rank p50 is 50 000 µs, p99 99 000 µs.
        for us in 1..=100_000u64 {
            h.record(us * 1000);
        }
        for (q, want) in [
            (0.5, 50_000_000.0),
            (0.99, 99_000_000.0),
            (0.999, 99_900_000.0),
        ] {
            let got = h.quantile(q).unwrap();
            assert!((got - want).abs() / want < 0.01, "q{q}: {got} vs {want}");
        }
        // Tiny values are exact; the largest u64 does not overflow the index.
        let mut t = LatencyHistogram::default();
        t.record(7);
        t.record(u64::MAX);
        assert_eq!(t.quantile(0.5), Some(7.0));
        assert!(t.quantile(1.0).unwrap() > 1.8e19);
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }

    #[test]
    fn replica_hours_integrate_the_sampled_count() {
        let mut r = recorder();
        let state = |n| SampleState {
            replicas: n,
            ..SampleState::default()
        };
        // 2 pods for the first half hour, 4 for the second: 2·0.5 + 4·0.5 = 3 replica-hours.
        r.on_sample(0, state(2));
        r.on_sample(1800 * S, state(4));
        let rec = r.into_record(3600 * S);
        assert!((rec.replica_hours() - 3.0).abs() < 1e-12);
    }

    /// 1 req/s at 10 ms for 300 s, all failing in `[bad_from, bad_to)` seconds.
    fn steady_with_failures(r: &mut Recorder, bad_from: u64, bad_to: u64) {
        for s in 0..300 {
            let o = if (bad_from..bad_to).contains(&s) {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            r.on_request_done(s * S, 10 * MS, o, 0);
        }
    }

    #[test]
    fn time_to_detect_and_mitigate() {
        let o = Objectives::new(0.99, 100.0);
        let mut r = recorder();
        steady_with_failures(&mut r, 100, 140);
        r.on_fault(95 * S, Some(200 * S), "pod a returns 500s");
        r.on_action(90 * S, "weights", "before the fault", "unrelated");
        r.on_ejection(112 * S, "a");
        r.on_action(120 * S, "weights", "a → 0", "errors");
        let m = r.into_record(300 * S).finish(&o);
        let f = &m.faults[0];
        // The 90 s action predates the fault; the ejection at 112 s is first: 112 − 95 = 17 s.
        assert_eq!(f.ttd_s, Some(17.0));
        assert_eq!(f.detected_by.as_ref().unwrap().kind, "ejection");
        // Windows 10..=13 (100–140 s) violate; 14, 15, 16 are clean → 140 − 95 = 45 s.
        assert!(f.user_impact);
        assert_eq!(f.ttm_s, Some(45.0));
        assert!(!f.mitigated_after_fault_end);
        assert_eq!(m.actions.len(), 2);
        // 2 actions in 300 s = 2 / (300/86 400) = 576 per day.
        assert!((m.actions_per_day - 576.0).abs() < 1e-9);
    }

    #[test]
    fn fault_without_impact_and_fault_never_mitigated() {
        let o = Objectives::new(0.99, 100.0);
        let mut r = recorder();
        steady_with_failures(&mut r, 0, 0);
        r.on_fault(250 * S, None, "harmless");
        let f = &r.into_record(300 * S).finish(&o).faults[0];
        assert_eq!((f.user_impact, f.ttm_s, f.ttd_s), (false, Some(0.0), None));

        let mut r = recorder();
        // Failing from 270 s to the end: windows 27, 28, 29 violate, nothing clean follows.
        steady_with_failures(&mut r, 270, 300);
        r.on_fault(265 * S, None, "crash");
        let f = &r.into_record(300 * S).finish(&o).faults[0];
        assert_eq!((f.user_impact, f.ttm_s), (true, None));

        let mut r = recorder();
        // Fault 100–120 s, failures 100–130 s: clean from window 13 (130 s) ≥ the end 120 s.
        steady_with_failures(&mut r, 100, 130);
        r.on_fault(100 * S, Some(120 * S), "blip");
        let f = &r.into_record(300 * S).finish(&o).faults[0];
        assert_eq!(f.ttm_s, Some(30.0));
        assert!(f.mitigated_after_fault_end);
    }

    #[test]
    fn series_forward_fill_samples_and_mark_gaps() {
        let mut r = Recorder::new(RecorderConfig {
            step_s: 10,
            subsets: vec!["v1".into(), "v2".into()],
        });
        let mut w = BTreeMap::new();
        w.insert("v1".to_string(), 1.0);
        r.on_sample(
            0,
            SampleState {
                replicas: 3,
                weights: w.clone(),
            },
        );
        // 20 requests in window 0 (2 req/s), half failing on v2; nothing in window 1.
        for i in 0..20 {
            let o = if i % 2 == 0 {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            r.on_request_done(i * S / 2, 5 * MS, o, (i % 2) as usize);
        }
        w.insert("v2".to_string(), 0.5);
        r.on_sample(
            15 * S,
            SampleState {
                replicas: 5,
                weights: w,
            },
        );
        r.on_request_done(25 * S, 5 * MS, Outcome::Success, 9);
        let rec = r.into_record(30 * S);
        let s = rec.series();
        assert_eq!(s.t_s, vec![0.0, 10.0, 20.0]);
        assert_eq!(s.request_rate, vec![2.0, 0.0, 0.1]);
        assert_eq!(s.success_rate[0], 0.5);
        assert!(s.success_rate[1].is_nan());
        assert_eq!(s.replicas, vec![3.0, 5.0, 5.0]);
        assert!(s.weights["v2"][0].is_nan());
        assert_eq!(s.weights["v2"][1], 0.5);
        // Subset 1 (v2) got the 10 failures; index 9 is out of range → the "other" slot.
        assert_eq!(rec.steps[0].per_subset, vec![[10, 10], [10, 0], [0, 0]]);
        assert_eq!(rec.steps[2].per_subset[2], [1, 1]);
        assert_eq!(rec.late_completions, 0);
    }
}
