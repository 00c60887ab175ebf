//! Every run of every built-in scenario as JSON lines — the run's metrics, the engine's tally
//! and its per-minute windows — for checking that a change to the engine's speed did not change
//! what it simulates: run it before and after and `diff` the outputs (docs/benchmarks-sim.md).
//!
//! ```sh
//! cargo run --release -p homeostat-simulator --example replay_fingerprint > after.jsonl
//! cargo run --release -p homeostat-simulator --example replay_fingerprint bad-canary  # one scenario
//! ```
//!
//! Run it from inside the repository: scenarios replaying real data find it beside the repo
//! (`../shared/data`) and are listed as skipped, with the reason, when it is absent.
#![forbid(unsafe_code)]

use homeostat_simulator::runs::{self, RunKind};
use homeostat_simulator::suite;

fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut kinds = RunKind::default_baselines();
    kinds.push(RunKind::Homeostat);
    for s in suite::builtin() {
        let s = match s {
            Ok(s) => s,
            Err(skip) => {
                eprintln!("skipped {}: {}", skip.name, skip.reason);
                continue;
            }
        };
        if !only.is_empty() && !only.iter().any(|o| s.name.contains(o.as_str())) {
            continue;
        }
        for &kind in &kinds {
            if kind.not_applicable(&s).is_some() {
                continue;
            }
            let line = match runs::run(&s, kind) {
                Ok(r) => serde_json::json!({
                    "scenario": s.name,
                    "result": r,
                    "minutes": r.record.minutes,
                }),
                Err(e) => serde_json::json!({ "scenario": s.name, "kind": kind, "error": e }),
            };
            println!("{line}");
        }
    }
}
