//! Simulator throughput, as a bench binary (`cargo bench -p homeostat-simulator --bench engine`).
//!
//! 1. `single-hop`: one service, 4 pods, Poisson arrivals at 2,000 req/s for 1 simulated hour
//!    (7.2 M entry requests, one hop each), `istio` run: simulated requests per second of wall
//!    time on one core (the engine is single-threaded).
//! 2. `mesh-20`: 24 simulated hours at 1,000 req/s across 20 services (an entry service fanning
//!    out to 4 mid-tier services, each calling 3–4 of 15 leaf services with probability 0.3),
//!    `istio` run: wall time for the day, entry requests and hops per second.
//!
//! Pass `quick` to run 1/10 of each timeline, or a fraction (`0.01`) to run that share of it;
//! `mesh` runs only `mesh-20`.
#![forbid(unsafe_code)]

use std::time::Instant;

use homeostat_simulator::runs::{self, RunKind};
use homeostat_simulator::scenario::Scenario;

fn single_hop(hours: f64) -> Scenario {
    let yaml = format!(
        "name: single-hop
duration: {}s
topology:
  services:
    - name: api
      subsets: [{{ name: v1, pods: 4 }}]
      concurrency: 64
      serviceTime: {{ lognormal: {{ median: 5ms, sigma: 0.5 }} }}
traffic:
  entries: [{{ service: api }}]
  profile: {{ constant: {{ rate: 2000 }} }}
",
        (hours * 3600.0) as u64
    );
    Scenario::parse("single-hop", &yaml).expect("bench scenario parses")
}

fn mesh_20(hours: f64) -> Scenario {
    let mut services = String::new();
    services.push_str(
        "    - name: s0
      subsets: [{ name: v1, pods: 6 }]
      concurrency: 64
      parallel: true
      serviceTime: { lognormal: { median: 2ms, sigma: 0.5 } }
      calls: [{ service: s1 }, { service: s2 }, { service: s3 }, { service: s4 }]
",
    );
    for mid in 1..=4 {
        let leaves: Vec<usize> = (5..20).filter(|l| l % 4 == mid % 4).collect();
        let calls: Vec<String> = leaves
            .iter()
            .map(|l| format!("{{ service: s{l}, probability: 0.3 }}"))
            .collect();
        services.push_str(&format!(
            "    - name: s{mid}
      subsets: [{{ name: v1, pods: 4 }}]
      concurrency: 64
      serviceTime: {{ lognormal: {{ median: 3ms, sigma: 0.5 }} }}
      calls: [{}]
",
            calls.join(", ")
        ));
    }
    for leaf in 5..20 {
        services.push_str(&format!(
            "    - name: s{leaf}
      subsets: [{{ name: v1, pods: 3 }}]
      concurrency: 64
      serviceTime: {{ lognormal: {{ median: 1ms, sigma: 0.5 }} }}
"
        ));
    }
    let yaml = format!(
        "name: mesh-20
duration: {}s
topology:
  services:
{services}traffic:
  entries: [{{ service: s0 }}]
  profile: {{ constant: {{ rate: 1000 }} }}
",
        (hours * 3600.0) as u64
    );
    Scenario::parse("mesh-20", &yaml).expect("bench scenario parses")
}

fn measure(s: &Scenario) {
    let t0 = Instant::now();
    let r = runs::run(s, RunKind::Istio).expect("bench run");
    let secs = t0.elapsed().as_secs_f64();
    let t = r.tally;
    let hops = t.started + t.calls;
    println!(
        "{:<10} simulated {:>7.0} s: {:>11} entry requests, {:>11} hops, {:>11} events in {:>7.2} s wall \
         = {:>6.2} M entry req/s, {:>6.2} M hops/s, {:>6.2} M events/s",
        s.name,
        s.duration.as_secs_f64(),
        t.started,
        hops,
        t.events,
        secs,
        t.started as f64 / secs / 1e6,
        hops as f64 / secs / 1e6,
        t.events as f64 / secs / 1e6,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let f = args
        .iter()
        .find_map(|a| match a.as_str() {
            "quick" => Some(0.1),
            a => a.parse::<f64>().ok().filter(|f| *f > 0.0 && *f <= 1.0),
        })
        .unwrap_or(1.0);
    if !args.iter().any(|a| a == "mesh") {
        measure(&single_hop(f));
    }
    measure(&mesh_20(24.0 * f));
}
