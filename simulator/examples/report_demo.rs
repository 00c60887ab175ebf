//! Writes a report from hand-made synthetic runs, to look at the report's layout without the
//! engine: `cargo run -p homeostat-simulator --example report_demo -- /tmp/report-demo`.
//! The numbers are invented by this file, not simulated.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use homeostat_simulator::record::{Objectives, Outcome, Recorder, RecorderConfig, SampleState};
use homeostat_simulator::report::{RunResult, ScenarioResult, write_report};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const S: u64 = 1_000_000_000;

/// `mode`: 0 = static, 1 = hpa-like replicas, 2 = weights shifted away from the bad subset.
fn run(name: &str, mode: u8, objectives: &Objectives) -> RunResult {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut r = Recorder::new(RecorderConfig {
        step_s: 10,
        subsets: vec!["v1".into(), "v2".into()],
    });
    let (fault_start, fault_end) = (2400u64, 3000u64);
    r.on_fault(
        fault_start * S,
        Some(fault_end * S),
        "demo: v2 returns 30 % errors",
    );
    let mut weight_v2 = 0.2;
    let mut replicas = 6u32;
    let end = 7200u64;
    let mut t_ns = 0u64;
    let mut next_sample = 0u64;
    while t_ns < end * S {
        let t = t_ns as f64 / 1e9;
        if t_ns >= next_sample {
            if mode == 1 {
                replicas = (4.0 + 3.0 * (t / 7200.0 * std::f64::consts::PI).sin()).round() as u32;
            }
            if mode == 2 && t >= (fault_start + 20) as f64 && t < fault_end as f64 + 120.0 {
                if weight_v2 > 0.0 {
                    r.on_action(
                        t_ns,
                        "weights",
                        "v2 20 % → 0 %",
                        "v2 error rate 30 % vs peers 0 %",
                    );
                }
                weight_v2 = 0.0;
            } else if mode == 2 && weight_v2 == 0.0 {
                r.on_action(t_ns, "weights", "v2 0 % → 20 %", "v2 healthy for 2 min");
                weight_v2 = 0.2;
            }
            let mut w = BTreeMap::new();
            w.insert("v1".to_string(), 1.0 - weight_v2);
            w.insert("v2".to_string(), weight_v2);
            r.on_sample(
                t_ns,
                SampleState {
                    replicas,
                    weights: w,
                },
            );
            next_sample += 15 * S;
        }
        let rate = 40.0 + 25.0 * (t / 7200.0 * std::f64::consts::PI).sin();
        let gap = -rng.random::<f64>().max(1e-12).ln() / rate;
        t_ns += (gap * 1e9) as u64;
        if t_ns >= end * S {
            break;
        }
        let subset = usize::from(rng.random::<f64>() < weight_v2);
        let load = rate / (f64::from(replicas) * 12.0);
        let mut latency = 20e6 * (1.0 + load * load) * (-rng.random::<f64>().max(1e-12).ln());
        let faulty = subset == 1 && (fault_start as f64..fault_end as f64).contains(&t);
        let outcome = if faulty && rng.random::<f64>() < 0.3 {
            latency *= 0.2;
            Outcome::Failure
        } else {
            Outcome::Success
        };
        r.on_request_done(t_ns, latency as u64, outcome, subset);
        if faulty && outcome == Outcome::Failure && mode == 0 && rng.random::<f64>() < 0.001 {
            r.on_ejection(t_ns, "v2-pod-0");
        }
    }
    RunResult::new(name, r.into_record(end * S), objectives)
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("report-demo"), PathBuf::from);
    let objectives = Objectives::new(0.99, 250.0);
    let scenario = ScenarioResult {
        name: "demo bad subset".into(),
        description: "Synthetic demo data invented by examples/report_demo.rs to show the layout."
            .into(),
        runs: ["static", "hpa", "homeostat"]
            .iter()
            .enumerate()
            .map(|(i, n)| run(n, i as u8, &objectives))
            .collect(),
        objectives,
    };
    match write_report(
        &dir,
        &[
            scenario.clone(),
            ScenarioResult {
                name: "demo copy".into(),
                ..scenario
            },
        ],
    ) {
        Ok(p) => println!("{}", p.display()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
