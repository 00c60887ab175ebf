//! The OpenMetrics exporter stamps each sample with the instant it was scraped, whatever the
//! telemetry lag, and its Observations are those a controller makes once a scrape is visible.

use homeostat_simulator::engine::{Change, End, Engine, Observer, View};
use homeostat_simulator::openmetrics::Exporter;
use homeostat_simulator::scenario::Scenario;

const S: u64 = 1_000_000_000;

/// One pod at 20 req/s; the telemetry interval (15 s) and lag (scrape offset 7.5 s + rule
/// delay 7.5 s = 15 s) are the defaults.
fn scenario(duration_s: u64) -> Scenario {
    let yaml = format!(
        r#"
name: lagged
duration: {duration_s}s
seed: 3
topology:
  services:
    - name: api
      subsets: [{{ name: v1, pods: 1 }}]
      concurrency: 8
      serviceTime: {{ lognormal: {{ median: 5ms, sigma: 0.5 }} }}
traffic:
  entries: [{{ service: api }}]
  profile: {{ constant: {{ rate: 20 }} }}
"#
    );
    Scenario::parse("lagged.yaml", &yaml).expect("scenario parses")
}

/// The exporter, plus the ground truth it must reproduce: the pod's successful requests at each
/// scrape instant, and when each tick ran.
struct Probe {
    exporter: Exporter,
    truth: Vec<(u64, u64)>,
    ticks: Vec<u64>,
}

impl Observer for Probe {
    fn request_done(&mut self, _t: u64, _latency: u64, _end: End, _entry: usize) {}
    fn scrape(&mut self, t: u64, view: &View<'_>) {
        let c = view.pods[0].counters;
        self.truth.push((t / S, c.requests - c.errors));
        self.exporter.scrape(t, view);
    }
    fn tick(&mut self, t: u64, view: &View<'_>) -> Vec<Change> {
        self.ticks.push(t / S);
        self.exporter.tick(t, view)
    }
}

fn run(duration_s: u64, exporter: Exporter) -> Probe {
    let s = scenario(duration_s);
    let mut e = Engine::new(&s).expect("engine builds");
    let mut p = Probe {
        exporter,
        truth: Vec::new(),
        ticks: Vec::new(),
    };
    e.run(&mut p);
    p
}

/// `(timestamp, value)` of every `istio_requests_total{reporter="destination", ...,
/// response_code="200"}` sample (the pods' own counts).
fn successes(text: &str) -> Vec<(u64, u64)> {
    side_successes(text, "destination")
}

/// The same for one `reporter` side.
fn side_successes(text: &str, reporter: &str) -> Vec<(u64, u64)> {
    let side = format!("istio_requests_total{{reporter=\"{reporter}\"");
    text.lines()
        .filter(|l| l.starts_with(&side) && l.contains("response_code=\"200\""))
        .map(|l| {
            let mut it = l.rsplit(' ');
            let t = it.next().unwrap().parse().unwrap();
            let v = it.next().unwrap().parse().unwrap();
            (t, v)
        })
        .collect()
}

#[test]
fn samples_carry_their_scrape_time_not_the_time_a_controller_reads_them() {
    // 120 s run: scrapes at 0, 15, …, 105 s (8; the one at 120 s is past the end). Each
    // becomes visible 15 s later, so ticks run at 15, …, 105 s (7; 120 s is past the end) and
    // the tick at t sees the scrape of t − 15 s.
    let p = run(120, Exporter::new(0, "ns").observing(0));
    let want_scrapes: Vec<u64> = (0..8).map(|i| 15 * i).collect();
    assert_eq!(
        p.truth.iter().map(|x| x.0).collect::<Vec<_>>(),
        want_scrapes
    );
    assert_eq!(p.ticks, (1..8).map(|i| 15 * i).collect::<Vec<_>>());
    // Every exported sample is the counter at its own scrape instant, stamped with that
    // instant. (Stamped at the reading tick instead, the sample of 15 s would say 30 s and
    // hold ~300 more requests: 20 req/s × 15 s.)
    let text = p.exporter.write();
    let exported = successes(&text);
    assert_eq!(exported, p.truth);
    // The callers' side is scraped at the same instants, one series for the one service.
    let callers = side_successes(&text, "source");
    assert_eq!(
        callers.iter().map(|x| x.0).collect::<Vec<_>>(),
        want_scrapes
    );
    assert!(callers[7].1 > callers[6].1 && callers[6].1 > 0);
    // Traffic flows, so the counters the lag would have shifted really differ.
    assert!(p.truth[7].1 > p.truth[6].1 && p.truth[6].1 > 0);
    assert_eq!(p.exporter.last_scrape(), Some(105));
    // A controller's Observation at tick t ends at the newest visible scrape, t − 15 s.
    let ends: Vec<i64> = p.exporter.observations().iter().map(|o| o.end).collect();
    assert_eq!(ends, (0..7).map(|i| 15 * i).collect::<Vec<i64>>());
}

#[test]
fn an_incident_cut_keeps_its_scrapes_and_is_observed_up_to_the_last_one() {
    // Cut at 120 s, run one lag (15 s) longer: the scrape at 120 s is taken but not kept, and
    // the tick at 120 s sees the scrape of 105 s — the last kept one.
    let p = run(
        135,
        Exporter::new(1_000, "ns")
            .observing(0)
            .scraped_before(120 * S),
    );
    assert_eq!(p.exporter.last_scrape(), Some(1_000 + 105));
    let exported = successes(&p.exporter.write());
    assert_eq!(exported.len(), 8);
    assert_eq!(exported.last().unwrap().0, 1_000 + 105);
    let last = p.exporter.observations().last().unwrap();
    assert_eq!(last.end, 1_000 + 105);
}
