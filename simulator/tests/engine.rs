//! Whole-engine behaviour on small hand-worked scenarios, determinism and conservation.

use homeostat_simulator::engine::{End, Engine, Observer};
use homeostat_simulator::runs::{self, RunKind};
use homeostat_simulator::scenario::Scenario;
use homeostat_simulator::suite;

/// Counts entry-request endings and checks none ends twice (by count: started = ended).
#[derive(Default)]
struct Count {
    success: u64,
    failure: u64,
    timeout: u64,
}

impl Observer for Count {
    fn request_done(&mut self, _t: u64, _latency: u64, end: End, _entry_subset: usize) {
        match end {
            End::Success => self.success += 1,
            End::Failure => self.failure += 1,
            End::Timeout => self.timeout += 1,
        }
    }
}

fn one_service(extra_fault: &str, service_time: &str, timeout: &str) -> Scenario {
    let yaml = format!(
        r#"
name: tiny
duration: 10m
seed: 5
topology:
  services:
    - name: api
      subsets: [{{ name: v1, pods: 1 }}]
      concurrency: 4
      queue: 100
      timeout: {timeout}
      serviceTime: {service_time}
traffic:
  entries: [{{ service: api }}]
  profile: {{ constant: {{ rate: 1 }} }}
faults:
{extra_fault}
"#
    );
    Scenario::parse("tiny.yaml", &yaml).expect("tiny scenario parses")
}

fn run_engine(s: &Scenario) -> (Engine, Count) {
    let mut e = Engine::new(s).expect("engine builds");
    let mut c = Count::default();
    e.run(&mut c);
    (e, c)
}

#[test]
fn a_run_of_more_than_ten_billion_requests_is_refused_as_a_typo() {
    let at_rate = |rate: &str| {
        let yaml = format!(
            r#"
name: typo
duration: 10m
topology:
  services:
    - name: api
      subsets: [{{ name: v1, pods: 1 }}]
      serviceTime: {{ lognormal: {{ median: 10ms, sigma: 0.3 }} }}
traffic:
  entries: [{{ service: api }}]
  profile: {{ constant: {{ rate: {rate} }} }}
"#
        );
        Scenario::parse("typo.yaml", &yaml).expect("a huge rate is still a valid number")
    };
    // 1e15 req/s for 10 minutes is 6e17 requests: refused before a single event, naming the
    // traffic and the estimate.
    let err = Engine::new(&at_rate("1e15")).err().expect("refused");
    assert!(
        err.starts_with("traffic: about 6.000e17 entry requests in the 600 s run"),
        "{err}"
    );
    // 16,000 req/s for the same 10 minutes is 9.6 M, far under the limit: it builds.
    assert!(Engine::new(&at_rate("16000")).is_ok());
}

#[test]
fn every_503_is_tried_three_times_under_istio_defaults() {
    // One pod answering 503 to everything: Istio's default policy retries 503 twice, so every
    // request costs 1 + 2 tries and fails; at 1 req/s and 10 ms per try, at most one retry is
    // ever active, far under the budget's floor of 3. One host of one: max ejection 10 % of 1
    // rounds to no ejection, so every retry reaches the same pod.
    let s = one_service(
        "  - { at: 0s, service: api, errorRate: 1.0, errorCode: 503 }",
        "{ empirical: { samples: [10ms] } }",
        "15s",
    );
    let (e, c) = run_engine(&s);
    let n = e.tally.started;
    assert!(
        n > 500 && n < 700,
        "about 600 arrivals in 10 minutes at 1/s, got {n}"
    );
    assert_eq!(c.failure, n);
    assert_eq!(c.success + c.timeout, 0);
    assert_eq!(e.tally.retries, 2 * n);
    assert_eq!(e.tally.ejections, 0);
    assert_eq!(e.in_flight(), 0);
}

/// The callers' side (`reporter="source"`) counts calls, the server's side tries. One pod
/// answering 30 % of its tries with 503, retried twice by Istio's defaults: a call fails only
/// when all three tries do, 0.3³ = 2.7 % of them. At every scrape the callers' counters of
/// `api` equal the entry requests that have ended so far (`api` has no other caller), their
/// errors the ones that failed; the pod's own errors count each failed try, at least three per
/// failed call.
#[test]
fn the_callers_count_calls_and_the_server_counts_tries() {
    #[derive(Default)]
    struct Sides {
        ended: Count,
        scrapes: u32,
    }
    impl Observer for Sides {
        fn request_done(&mut self, t: u64, latency: u64, end: End, entry_subset: usize) {
            self.ended.request_done(t, latency, end, entry_subset);
        }
        fn scrape(&mut self, _t: u64, view: &homeostat_simulator::engine::View<'_>) {
            let c = &self.ended;
            let callers = view.caller_counters[0];
            assert_eq!(callers.requests, c.success + c.failure + c.timeout);
            assert_eq!(callers.errors, c.failure + c.timeout);
            self.scrapes += 1;
        }
    }
    let s = one_service(
        "  - { at: 0s, service: api, errorRate: 0.3, errorCode: 503 }",
        "{ empirical: { samples: [10ms] } }",
        "15s",
    );
    let mut e = Engine::new(&s).expect("engine builds");
    let mut sides = Sides::default();
    e.run(&mut sides);
    // 10 minutes of 15 s scrapes.
    assert!(sides.scrapes >= 39, "{} scrapes", sides.scrapes);
    let failed = sides.ended.failure;
    let n = e.tally.started;
    // About 2.7 % of ~600 calls: 16 expected; binomial sd ≈ 4.
    assert!((4..=32).contains(&failed), "{failed} of {n} calls failed");
    let server = e.pods[0].counters;
    assert_eq!(server.requests, n + e.tally.retries);
    assert!(
        server.errors >= 3 * failed,
        "{} failed tries",
        server.errors
    );
}

#[test]
fn a_plain_500_is_not_retried_by_default() {
    let s = one_service(
        "  - { at: 0s, service: api, errorRate: 1.0, errorCode: 500 }",
        "{ empirical: { samples: [10ms] } }",
        "15s",
    );
    let (e, c) = run_engine(&s);
    assert_eq!(c.failure, e.tally.started);
    assert_eq!(e.tally.retries, 0);
}

#[test]
fn requests_slower_than_the_route_timeout_all_time_out() {
    // 2 s of work against a 1 s route timeout: every request ends as a timeout at exactly 1 s.
    let s = one_service("  []", "{ empirical: { samples: [2s] } }", "1s");
    let (e, c) = run_engine(&s);
    assert_eq!(c.timeout, e.tally.started);
    assert_eq!(c.success + c.failure, 0);
}

const MESSY: &str = r#"
name: messy
duration: 20m
seed: 9
topology:
  nodes: 2
  services:
    - name: front
      subsets: [{ name: v1, pods: 2 }]
      concurrency: 8
      queue: 4
      timeout: 120ms
      serviceTime: { lognormal: { median: 5ms, sigma: 1.0 } }
      calls: [{ service: mid }, { service: leaf, probability: 0.5 }]
    - name: mid
      subsets: [{ name: a, pods: 2, weight: 70 }, { name: b, pods: 1, weight: 30 }]
      concurrency: 2
      queue: 2
      timeout: 300ms
      parallel: true
      serviceTime: { gamma: { mean: 20ms, shape: 1.0 } }
      calls: [{ service: leaf }, { service: leaf, probability: 0.3 }]
    - name: leaf
      subsets: [{ name: v1, pods: 3 }]
      concurrency: 2
      queue: 1
      timeout: 100ms
      serviceTime: { lognormal: { median: 8ms, sigma: 1.2 } }
traffic:
  entries: [{ service: front }]
  profile: { constant: { rate: 40 } }
mesh:
  retries: { attempts: 3, perTryTimeout: 40ms, retryOn: "5xx,reset,connect-failure" }
faults:
  - { at: 2m, until: 6m, service: leaf, pod: 1, crash: true }
  - { at: 4m, until: 9m, nodeLoss: 1 }
  - { at: 5m, until: 12m, service: mid, subset: b, errorRate: 0.4, errorCode: 503, slowdown: 3 }
  - { at: 10m, until: 14m, surge: 3 }
policies:
  - metadata: { name: mid }
    spec:
      target: { service: mid, subsets: [a, b] }
"#;

#[test]
fn every_request_ends_exactly_once_under_crashes_timeouts_and_retries() {
    let s = Scenario::parse("messy.yaml", MESSY).expect("messy scenario parses");
    let (e, c) = run_engine(&s);
    let t = e.tally;
    assert!(t.started > 40_000, "{t:?}");
    // Conservation: each started entry request was reported exactly once.
    assert_eq!(c.success + c.failure + c.timeout, t.started, "{t:?}");
    assert_eq!(
        (t.success, t.failure, t.timeout),
        (c.success, c.failure, c.timeout)
    );
    assert_eq!(e.in_flight(), 0);
    // The scenario is messy enough to exercise every ending and retries.
    assert!(c.success > 0 && c.failure > 0 && c.timeout > 0, "{t:?}");
    assert!(t.retries > 0);
}

#[test]
fn conservation_holds_for_every_run_kind() {
    let s = Scenario::parse("messy.yaml", MESSY).expect("parses");
    for kind in [
        RunKind::Istio,
        RunKind::Tuned,
        RunKind::Hpa(70),
        RunKind::Flagger,
        RunKind::Homeostat,
    ] {
        let r = runs::run(&s, kind).expect("runs");
        let t = r.tally;
        assert_eq!(t.success + t.failure + t.timeout, t.started, "{kind:?}");
        // The recorder saw the same requests as the engine.
        assert_eq!(r.metrics.requests, t.started, "{kind:?}");
    }
}

#[test]
fn every_run_is_measured_over_the_scenario_duration_not_its_drain() {
    // One pod, 4 slots, requests of 3 s at 1 req/s: about 3 in flight at any time, so when the
    // traffic stops at 600 s requests are still draining (the engine runs them to the end). The
    // run is measured over the scenario's 10 minutes all the same: one pod for 600 s is
    // 600 / 3600 = 1/6 replica-hour, whatever the drain (a run whose retries end later must
    // not be charged for more pods).
    let s = one_service("  []", "{ empirical: { samples: [3s] } }", "30s");
    let r = runs::run(&s, RunKind::Istio).expect("runs");
    assert_eq!(r.metrics.duration_s, 600.0);
    assert!(
        (r.metrics.replica_hours - 1.0 / 6.0).abs() < 1e-12,
        "{}",
        r.metrics.replica_hours
    );
    // Every request started is still counted (the drain lands in the last window).
    assert_eq!(r.metrics.requests, r.tally.started);
    assert_eq!(r.tally.success, r.tally.started);
}

#[test]
fn same_seed_gives_identical_json_and_another_seed_does_not() {
    let s = Scenario::parse("messy.yaml", MESSY).expect("parses");
    let a = runs::run(&s, RunKind::Homeostat).expect("runs");
    let b = runs::run(&s, RunKind::Homeostat).expect("runs");
    let ja = serde_json::to_string(&a).expect("json");
    let jb = serde_json::to_string(&b).expect("json");
    assert_eq!(ja, jb);
    let mut s2 = s.clone();
    s2.seed += 1;
    let c = runs::run(&s2, RunKind::Homeostat).expect("runs");
    assert_ne!(ja, serde_json::to_string(&c).expect("json"));
}

#[test]
fn every_builtin_scenario_runs_under_every_run_kind() {
    for b in suite::builtin() {
        let s = match b {
            Ok(s) => s,
            // Only data-driven scenarios may be skipped, and only for missing data.
            Err(skip) => {
                assert!(
                    skip.reason.contains("not found"),
                    "{}: {}",
                    skip.name,
                    skip.reason
                );
                continue;
            }
        };
        // A twentieth of the timeline (a 1 h scenario in 3 simulated minutes).
        let s = s.scaled(0.05);
        for kind in [
            RunKind::Istio,
            RunKind::Tuned,
            RunKind::Hpa(70),
            RunKind::Flagger,
            RunKind::Homeostat,
        ] {
            let r = runs::run(&s, kind).unwrap_or_else(|e| panic!("{} {kind:?}: {e}", s.name));
            let t = r.tally;
            assert!(t.started > 0, "{} {kind:?}", s.name);
            assert_eq!(
                t.success + t.failure + t.timeout,
                t.started,
                "{} {kind:?}",
                s.name
            );
        }
    }
}

/// `homeostat replay simulator/scenarios/X.yaml` must replay what the embedded X does: the
/// file's data paths, resolved against the file's own directory, name the same files the
/// embedded copy finds from the working directory. (They once named `../shared/data` relative
/// to the repository root: as files, the trace scenarios were skipped and social-network ran on
/// fallback service times.) Under CI the shared data must be there.
#[test]
fn a_builtin_scenario_file_reads_the_same_data_as_its_embedded_copy() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let ci = std::env::var_os("CI").is_some_and(|v| v == "true");
    let mut compared = 0;
    for ((file, _), embedded) in suite::BUILTIN.iter().zip(suite::builtin()) {
        let from_file = Scenario::load(&dir.join(file)).expect("the file parses");
        let wanted: Vec<_> = from_file.data_files();
        let Ok(embedded) = embedded else {
            assert!(!ci, "{file}: the shared data is missing under CI");
            continue;
        };
        let canonical = |paths: Vec<std::path::PathBuf>| -> Vec<std::path::PathBuf> {
            paths
                .iter()
                .map(|p| {
                    p.canonicalize()
                        .unwrap_or_else(|e| panic!("{file}: {}: {e}", p.display()))
                })
                .collect()
        };
        if wanted.is_empty() {
            assert!(embedded.data_files().is_empty(), "{file}");
            continue;
        }
        // Span files are optional (services fall back to their stated distributions).
        if !ci && embedded.data_files().iter().any(|p| !p.exists()) {
            continue;
        }
        assert_eq!(
            canonical(wanted),
            canonical(embedded.data_files()),
            "{file}"
        );
        compared += 1;
    }
    // nab-elb, azure-trace and social-network read shared data.
    if ci {
        assert_eq!(compared, 3);
    }
}

/// The scenarios beyond the suite (`scenarios/extra/`, replayed in docs/replay-results-sim.md)
/// stay valid as the schema moves: each loads, and runs a twentieth of its timeline under
/// homeostat with every request accounted for.
#[test]
fn every_extra_scenario_loads_and_runs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/extra");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/extra")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 7, "{files:?}");
    for f in files {
        let s = Scenario::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let r = runs::run(&s.scaled(0.05), RunKind::Homeostat)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let t = r.tally;
        assert!(t.started > 0, "{}", f.display());
        assert_eq!(
            t.success + t.failure + t.timeout,
            t.started,
            "{}",
            f.display()
        );
    }
}

#[test]
fn a_route_timeout_during_back_off_cancels_the_retry() {
    // One pod answering 503 to everything after exactly 10 ms; one retry allowed, with a
    // back-off drawn uniformly from [0, 2 s) (base = cap = 2 s); route timeout 1 s. The retry
    // budget's floor is raised to 1000 so every request's first 503 gets its retry granted.
    // Per request, with back-off b:
    //   b ≥ 990 ms: the 1 s timeout fires during the back-off → the retry is cancelled, never
    //              sent (P = 1010/2000 = 0.505);
    //   b < 990 ms: the retry goes out at 10 ms + b and fails at 20 ms + b — a failure if that is
    //              before 1 s (b < 980 ms), else a timeout with the retry in flight (P = 0.005).
    // So: grants = started = sent + cancelled; the pod sees started + sent tries (a cancelled
    // retry reaches no pod); no success; and nothing is left counted in the budget at the end.
    let yaml = r#"
name: backoff-timeout
duration: 20m
seed: 11
topology:
  services:
    - name: api
      subsets: [{ name: v1, pods: 1 }]
      concurrency: 50
      queue: 100
      timeout: 1s
      serviceTime: { empirical: { samples: [10ms] } }
traffic:
  entries: [{ service: api }]
  profile: { constant: { rate: 1 } }
mesh:
  retries: { attempts: 1, retryOn: "503", backoffBaseInterval: 2s, backoffMaxInterval: 2s }
  retryLimit: { budget: { budgetPercent: 20, minRetryConcurrency: 1000 } }
faults:
  - { at: 0s, service: api, errorRate: 1.0, errorCode: 503 }
"#;
    let s = Scenario::parse("backoff-timeout.yaml", yaml).expect("scenario parses");
    let (e, c) = run_engine(&s);
    let t = e.tally;
    let n = t.started;
    assert!(n > 1000 && n < 1400, "about 1200 arrivals, got {n}");
    assert_eq!(c.success, 0, "{t:?}");
    assert_eq!(c.failure + c.timeout, n, "conservation: {t:?}");
    assert_eq!(
        t.retries + t.retries_cancelled,
        n,
        "one grant per request: {t:?}"
    );
    // Cancelled ≈ 0.505 n (binomial sd ≈ √(1200 · 0.25) ≈ 17): 0.42 n .. 0.59 n is ±5 sd.
    let share = t.retries_cancelled as f64 / n as f64;
    assert!(
        (0.42..0.59).contains(&share),
        "cancelled share {share}: {t:?}"
    );
    // Every cancelled request ended as a timeout; at most a few more timed out mid-retry
    // (P = 0.005 → about 6; 30 is generous).
    assert!(c.timeout >= t.retries_cancelled, "{t:?}");
    assert!(c.timeout - t.retries_cancelled < 30, "{t:?}");
    // Tries that reached the pod: n first tries + the retries actually sent, none for the
    // cancelled ones (the old behaviour sent every granted retry: n + n).
    assert_eq!(e.pods[0].counters.requests, n + t.retries, "{t:?}");
    assert_eq!(e.active_retries(), 0, "budget slots all released: {t:?}");
    assert_eq!(e.in_flight(), 0);
}

/// Records arrivals and, when `meddle` is set, pushes a config change at every telemetry tick.
struct Recorder {
    arrivals: Vec<(u64, usize)>,
    meddle: bool,
    ticks: Vec<(u64, Option<u64>)>,
}

impl Observer for Recorder {
    fn request_done(&mut self, _t: u64, _latency: u64, _end: End, _entry_subset: usize) {}
    fn arrival(&mut self, t: u64, service: usize) {
        self.arrivals.push((t, service));
    }
    fn tick(
        &mut self,
        t: u64,
        view: &homeostat_simulator::engine::View<'_>,
    ) -> Vec<homeostat_simulator::engine::Change> {
        use homeostat_dataplane::config::OutlierConfig;
        use homeostat_simulator::engine::Change;
        self.ticks.push((t, view.scrapes.last_time()));
        if !self.meddle {
            return Vec::new();
        }
        // Flip the split and toggle outlier detection every tick: a controller that moves a lot.
        let n = self.ticks.len();
        vec![
            Change::Weights {
                service: 1,
                weights: if n.is_multiple_of(2) {
                    vec![10.0, 90.0]
                } else {
                    vec![90.0, 10.0]
                },
            },
            Change::Outlier {
                service: 1,
                config: OutlierConfig {
                    consecutive_5xx: (n % 3) as u32,
                    max_ejection_percent: 100,
                    ..OutlierConfig::default()
                },
            },
        ]
    }
}

fn two_entries() -> Scenario {
    Scenario::parse(
        "two.yaml",
        r#"
name: two
duration: 5m
seed: 9
topology:
  services:
    - name: web
      subsets: [{ name: v1, pods: 2 }]
      serviceTime: { lognormal: { median: 2ms, sigma: 0.3 } }
      calls: [{ service: api, probability: 0.7 }]
    - name: api
      subsets: [{ name: a, pods: 2 }, { name: b, pods: 2, weight: 50 }]
      serviceTime: { gamma: { mean: 10ms, shape: 2 } }
    - name: admin
      subsets: [{ name: v1, pods: 1 }]
      serviceTime: { lognormal: { median: 2ms, sigma: 0.3 } }
traffic:
  entries: [{ service: web, share: 3 }, { service: admin }]
  profile: { constant: { rate: 50 } }
faults:
  - { at: 1m, service: api, subset: b, pod: 0, errorRate: 0.5, errorCode: 503 }
"#,
    )
    .expect("two-entry scenario parses")
}

#[test]
fn arrivals_do_not_depend_on_what_the_controller_does() {
    let s = two_entries();
    let run = |meddle| {
        let mut e = Engine::new(&s).expect("engine builds");
        let mut r = Recorder {
            arrivals: Vec::new(),
            meddle,
            ticks: Vec::new(),
        };
        e.run(&mut r);
        (r.arrivals, e.tally)
    };
    let (quiet, quiet_tally) = run(false);
    let (busy, busy_tally) = run(true);
    // 50 req/s for 300 s: about 15,000 arrivals (Poisson: ± 3σ ≈ ± 370).
    assert!((14_600..=15_400).contains(&quiet.len()), "{}", quiet.len());
    // Both entries get arrivals (shares 3 : 1).
    let admin = quiet.iter().filter(|a| a.1 == 2).count();
    assert!(
        admin > quiet.len() / 5 && admin < quiet.len() / 3,
        "{admin}"
    );
    // The meddling controller changed what happened to requests (routing, ejections, hence
    // retries and events) ...
    assert_ne!(quiet_tally.events, busy_tally.events);
    // ... but not one arrival time or entry service.
    assert_eq!(quiet, busy);
}

#[test]
fn controllers_see_each_scrape_one_telemetry_lag_late() {
    // Defaults: 15 s scrapes, lag = 7.5 s scrape offset + 7.5 s rule delay = 15 s. The scrape
    // taken at 0 becomes visible at 15 s; at that instant the scrape of 15 s is taken but is
    // not yet visible. So controllers run at 15, 30, ... and always see the scrape of t − 15 s.
    let s = two_entries();
    let mut e = Engine::new(&s).expect("engine builds");
    let mut r = Recorder {
        arrivals: Vec::new(),
        meddle: false,
        ticks: Vec::new(),
    };
    e.run(&mut r);
    const S: u64 = 1_000_000_000;
    assert_eq!(r.ticks[0], (15 * S, Some(0)));
    assert_eq!(r.ticks[1], (30 * S, Some(15 * S)));
    // 300 s: scrapes at 0..=285 s visible at 15..=285 s (a publish at 300 s is the end).
    assert_eq!(r.ticks.len(), 19);
    assert!(r.ticks.iter().all(|&(t, last)| last == Some(t - 15 * S)));
}

fn retry_cap(frontend_pods: u32) -> u64 {
    let yaml = format!(
        r#"
name: cap
duration: 1m
seed: 3
topology:
  services:
    - name: front
      subsets: [{{ name: v1, pods: {frontend_pods} }}]
      concurrency: 1000
      queue: 0
      serviceTime: {{ empirical: {{ samples: [1ms] }} }}
      calls: [{{ service: api }}]
    - name: api
      subsets: [{{ name: v1, pods: 1 }}]
      concurrency: 1000
      queue: 0
      serviceTime: {{ empirical: {{ samples: [1s] }} }}
traffic:
  entries: [{{ service: front }}]
  profile: {{ constant: {{ rate: 20 }} }}
faults:
  - {{ at: 0s, service: api, errorRate: 1.0, errorCode: 503 }}
mesh:
  retryLimit: {{ maxRetries: 1 }}
"#
    );
    let s = Scenario::parse("cap.yaml", &yaml).expect("cap scenario parses");
    run_engine(&s).0.tally.retries
}

#[test]
fn each_sidecar_has_its_own_retry_limit() {
    // api answers every try with 503 after exactly 1 s, and 20 first tries a second fail: a
    // retry slot is re-granted as soon as it frees. maxRetries 1 holds one retry in flight per
    // calling proxy, from its grant (back-off < 250 ms) to the end of its 1 s attempt, so one
    // front sidecar sends at most 60 s / 1 s + 1 = 61 retries in a minute and about 60 / 1.01
    // ≈ 59 (mean first back-off 12.5 ms). Two front pods have two sidecars, hence twice the
    // retries; a limit shared by the service would keep them at one sidecar's.
    let one = retry_cap(1);
    let two = retry_cap(2);
    assert!((50..=61).contains(&one), "one sidecar: {one}");
    assert!((100..=122).contains(&two), "two sidecars: {two}");
}

fn canary(fault_at: &str) -> Scenario {
    let yaml = format!(
        r#"
name: canary
duration: 12m
seed: 4
topology:
  services:
    - name: shop
      subsets: [{{ name: stable, pods: 3, weight: 90 }}, {{ name: canary, pods: 1, weight: 10 }}]
      serviceTime: {{ lognormal: {{ median: 10ms, sigma: 0.3 }} }}
traffic:
  entries: [{{ service: shop }}]
  profile: {{ constant: {{ rate: 100 }} }}
faults:
  - {{ at: {fault_at}, service: shop, subset: canary, errorRate: 0.5, errorCode: 500 }}
"#
    );
    Scenario::parse("canary.yaml", &yaml).expect("canary scenario parses")
}

#[test]
fn flagger_rolls_back_a_canary_failing_from_the_start() {
    // The canary fails half its requests from t = 0: success ≈ 50 % < 99 %. Analysis runs at
    // 60, 120, ..., 300 s (5 failed checks = threshold, weight held at 10 %) and rolls back at
    // 360 s. With the 15 s telemetry lag the check at t sees data up to t − 15 s, still failing.
    let r = runs::run(&canary("0s"), RunKind::Flagger).expect("runs");
    let acts: Vec<_> = r
        .metrics
        .actions
        .iter()
        .filter(|a| a.knob == "canary")
        .collect();
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!(acts[0].t_s, 360.0);
    assert!(acts[0].summary.contains("rolled back"), "{acts:?}");
    // Istio keeps sending 10 % to the canary all along: about 100·0.1·0.5 = 5 failures a
    // second for 720 s ≈ 3600; Flagger stops them at 361.5 s (after the push): about half.
    let istio = runs::run(&canary("0s"), RunKind::Istio).expect("runs");
    let (f, i) = (r.metrics.failures, istio.metrics.failures);
    assert!((3_200..=4_000).contains(&i), "istio {i}");
    assert!(f * 10 < i * 6 && f * 10 > i * 4, "flagger {f} vs istio {i}");
}

#[test]
fn flagger_promotes_a_healthy_canary_and_its_later_fault_hits_the_primary() {
    // Healthy until 10 m: passes at 60..240 s take 10 % → 50 %, the pass at 300 s promotes.
    // From 10 m every pod runs the canary's version, so its fault hits all the traffic: about
    // 100·0.5 = 50 failures a second for 120 s ≈ 6000 — Flagger's analysis is over by then.
    let r = runs::run(&canary("10m"), RunKind::Flagger).expect("runs");
    let times: Vec<f64> = r
        .metrics
        .actions
        .iter()
        .filter(|a| a.knob == "canary")
        .map(|a| a.t_s)
        .collect();
    assert_eq!(times, vec![60.0, 120.0, 180.0, 240.0, 300.0]);
    let f = r.metrics.failures;
    assert!((5_500..=6_500).contains(&f), "flagger {f}");
}
