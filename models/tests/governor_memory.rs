//! A Governor restored from its exported memory decides exactly as the one that never stopped.
//!
//! The memory carries what telemetry cannot give back; the streaming models (detectors,
//! forecaster) are warmed from the restored Governor's first observation. So that the two
//! Governors' streaming models see the same points, every observation here reaches back to the
//! start of the run (each window is one point longer than the last): the never-stopped Governor
//! feeds each point once as it arrives, the restored one feeds them all at its first step — the
//! same sequence. What differs between them is then only what the memory must carry, and any
//! piece it forgets (a streak, a cooldown, a freeze, a baseline, a pre-change snapshot) shows as
//! a different decision.

mod governor_support;

use governor_support::*;
use homeostat_models::governor::{
    Alert, Decision, EndpointObservation, Governor, GovernorMemory, Hold, Knob, MeshConfig,
    Observation, SubsetObservation,
};
use homeostat_models::policy::{AlertMatch, Duration, PolicySpec, Remediation, RemediationAction};
use proptest::prelude::*;

const T0: i64 = 1_700_000_000;

/// One step's new point for the service's two subsets and its pods.
#[derive(Debug, Clone)]
struct Tick {
    subsets: [Point; 2],
    pods: Vec<Point>,
    /// An alert arrives after this step's run.
    alert: Option<&'static str>,
}

fn point() -> impl Strategy<Value = Point> {
    (
        5.0..200.0f64,
        prop_oneof![3 => Just(0.0005), 2 => 0.0..0.5f64],
        prop_oneof![3 => 0.05..0.25f64, 1 => 0.3..2.0f64],
        0.1..1.2f64,
    )
        .prop_map(|(rps, err, p99, util)| Point {
            rps,
            success: 1.0 - err,
            p50: p99 / 3.0,
            p99,
            util,
        })
}

fn tick() -> impl Strategy<Value = Tick> {
    (
        [point(), point()],
        prop::collection::vec(point(), 0..4),
        prop_oneof![
            8 => Just(None),
            1 => Just(Some("CheckoutHighErrorRate")),
            1 => Just(Some("CheckoutFreeze")),
        ],
    )
        .prop_map(|(subsets, pods, alert)| Tick {
            subsets,
            pods,
            alert,
        })
}

fn spec_strategy() -> impl Strategy<Value = PolicySpec> {
    (0u64..240, 1u32..8, 1u32..4, 60u64..600).prop_map(|(cool, mcph, hyst, lookback)| {
        let mut s = policy();
        s.guardrails.cooldown = Duration::from_secs(cool);
        s.guardrails.max_changes_per_hour = mcph;
        s.guardrails.hysteresis_runs = hyst;
        s.guardrails.freeze_duration = Duration::from_secs(90);
        // A short lookback, so the warm-up ends inside some runs.
        s.telemetry.lookback = Duration::from_secs(lookback);
        s.remediation.push(Remediation {
            on_alert: AlertMatch {
                alertname: "CheckoutFreeze".into(),
                labels: Default::default(),
            },
            actions: vec![RemediationAction::TightenRetries, RemediationAction::Freeze],
        });
        s
    })
}

/// The observation after `ticks` (the first `initial` of them are the history before the first
/// run), ending at `end`, reaching back to the first tick.
fn observe(end: i64, ticks: &[Tick], config: &MeshConfig) -> Observation {
    let sub = |i: usize| -> Vec<Point> { ticks.iter().map(|t| t.subsets[i]).collect() };
    let (stable, canary) = (sub(0), sub(1));
    let service = merge(&[&stable, &canary]);
    let mut obs = ObsBuilder::new(end, &service, config.clone()).build();
    obs.subsets = vec![
        SubsetObservation {
            name: "stable".into(),
            signals: signals(&stable),
        },
        SubsetObservation {
            name: "canary".into(),
            signals: signals(&canary),
        },
    ];
    // A pod reports from the tick it first appears in; before that its points are missing.
    let pods = ticks.iter().map(|t| t.pods.len()).max().unwrap_or(0);
    for p in 0..pods {
        let pts: Vec<Point> = ticks
            .iter()
            .map(|t| t.pods.get(p).copied().unwrap_or_else(Point::missing))
            .collect();
        obs.endpoints.push(EndpointObservation {
            name: format!("pod-{p}"),
            subset: None,
            signals: signals(&pts),
        });
    }
    obs
}

fn start_config() -> MeshConfig {
    let mut c = config(weights(&[("stable", 50), ("canary", 50)]));
    c.hpa = Some(hpa(2, 50, 70, 4));
    c
}

/// One run and the alert after it, applying everything admitted (Enforce), as an adapter does.
fn run(
    g: &mut Governor,
    now: i64,
    obs: &Observation,
    spec: &PolicySpec,
    alert: Option<&str>,
    cfg: &mut MeshConfig,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut act = |g: &mut Governor, d: Decision, cfg: &mut MeshConfig| {
        for c in &d.plan.changes {
            apply(cfg, c);
            g.applied(now, "checkout", c);
        }
        // NaN evidence is null in JSON: equal decisions give equal text.
        out.push(serde_json::to_string(&d).expect("decision serialises"));
    };
    let d = g.step(now, obs, spec);
    act(g, d, cfg);
    if let Some(name) = alert {
        let alert = Alert {
            alertname: name.into(),
            labels: Default::default(),
        };
        let mut seen = obs.clone();
        seen.config = cfg.clone();
        let d = g.on_alert(now, &alert, &seen, spec);
        act(g, d, cfg);
    }
    out
}

fn scenario() -> impl Strategy<Value = (PolicySpec, usize, Vec<Tick>, usize)> {
    (
        spec_strategy(),
        2usize..20,
        prop::collection::vec(tick(), 2..24),
    )
        .prop_flat_map(|(spec, initial, runs)| {
            let n = runs.len();
            (Just(spec), Just(initial), Just(runs), 1..n)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_restored_governor_decides_as_the_one_that_never_stopped(
        (spec, initial, runs, restart) in scenario()
    ) {
        // History before the first run: the first run's tick repeated.
        let mut ticks: Vec<Tick> = vec![runs[0].clone(); initial];
        let mut never = Governor::new();
        let mut cfg = start_config();
        let mut restored: Option<(Governor, MeshConfig)> = None;
        for (i, t) in runs.iter().enumerate() {
            ticks.push(t.clone());
            let now = T0 + i as i64 * STEP;
            if i == restart {
                // The controller stops here; its successor reads the memory from status text.
                let text = never.export_memory().to_json();
                let mut g = Governor::new();
                g.import_memory(GovernorMemory::from_json(&text).expect("reads its own memory"))
                    .expect("imports its own memory");
                restored = Some((g, cfg.clone()));
            }
            let obs = observe(now, &ticks, &cfg);
            let expected = run(&mut never, now, &obs, &spec, t.alert, &mut cfg);
            if let Some((g, rcfg)) = restored.as_mut() {
                let obs = observe(now, &ticks, rcfg);
                let got = run(g, now, &obs, &spec, t.alert, rcfg);
                prop_assert_eq!(&got, &expected, "run {} after a restart before run {}", i, restart);
            }
        }
        // And they end remembering the same things, readings included.
        let (g, _) = restored.expect("restart is inside the run");
        prop_assert_eq!(g.export_memory(), never.export_memory());
    }
}

/// The canary fails: 10% errors against a 0.1% budget; stable is clean.
fn bad_canary(end: i64, cfg: &MeshConfig) -> Observation {
    let stable = vec![Point::healthy(100.0); LEN];
    let canary = vec![
        Point {
            success: 0.9,
            ..Point::healthy(100.0)
        };
        LEN
    ];
    let service = merge(&[&stable, &canary]);
    ObsBuilder::new(end, &service, cfg.clone())
        .subset("stable", &stable)
        .subset("canary", &canary)
        .build()
}

#[test]
fn a_restart_between_two_cuts_keeps_the_cooldown() {
    let spec = policy(); // cooldown 2m, maxStepPercent 20
    let mut cfg = config(weights(&[("stable", 50), ("canary", 50)]));
    let mut g = Governor::new();
    let d = g.step(T0, &bad_canary(T0, &cfg), &spec);
    // The canary loses one step of 20 points: 50/50 → 70/30.
    let cut = d
        .plan
        .changes
        .iter()
        .find(|c| c.knob == Knob::Weights)
        .expect("the bad canary is cut")
        .clone();
    assert_eq!(
        cut.proposed,
        homeostat_models::governor::KnobValue::Weights(weights(&[("stable", 70), ("canary", 30)]))
    );
    apply(&mut cfg, &cut);
    g.applied(T0, "checkout", &cut);

    let text = g.export_memory().to_json();
    // Two steps on, the first point whose rate window follows the cut (the weights planner
    // judges a move's room only on such points, `window::after_change`).
    let now = T0 + 2 * STEP;
    // A successor that forgot: it cuts again at once (30 → 10), a second change 30 s after the
    // first.
    let mut forgetful = Governor::new();
    let d = forgetful.step(now, &bad_canary(now, &cfg), &spec);
    assert!(
        d.plan.changes.iter().any(|c| c.knob == Knob::Weights),
        "{d:?}"
    );
    // The restored successor holds the cut for the rest of the cooldown: 120 − 30 = 90 s.
    let mut restored = Governor::new();
    restored
        .import_memory(GovernorMemory::from_json(&text).unwrap())
        .unwrap();
    let d = restored.step(now, &bad_canary(now, &cfg), &spec);
    assert!(
        !d.plan.changes.iter().any(|c| c.knob == Knob::Weights),
        "{d:?}"
    );
    let held = d
        .plan
        .held
        .iter()
        .find(|c| c.knob == Knob::Weights)
        .expect("held");
    assert_eq!(
        held.held_by,
        Some(Hold::Cooldown {
            remaining_seconds: 90
        })
    );
}
