//! A simulated incident: a built-in scenario run (with no controller: the mesh as it is) up to
//! a point in time, its scrapes kept as OpenMetrics and the simulator's own Observations.

use anyhow::{Context, Result, anyhow};
use homeostat_models::policy::{Duration, PolicySpec};
use homeostat_simulator::duration::Nanos;
use homeostat_simulator::engine::Engine;
use homeostat_simulator::openmetrics::Exporter;
use homeostat_simulator::scenario::Scenario;
use homeostat_simulator::suite;

/// Virtual time 0 of every incident: 2026-01-01T00:00:00Z.
pub const BASE_UNIX: i64 = 1_767_225_600;

pub struct Incident {
    pub scenario: Scenario,
    /// The scenario's (first) policy.
    pub spec: PolicySpec,
    pub exporter: Exporter,
}

/// Runs built-in scenario `file` (e.g. `bad-canary.yaml`) for its first `minutes`, observing
/// the service its first policy governs, with every series in namespace `namespace`.
pub fn simulate(file: &str, minutes: u64, namespace: &str) -> Result<Incident> {
    let (_, text) = suite::BUILTIN
        .iter()
        .find(|(f, _)| *f == file)
        .ok_or_else(|| anyhow!("no built-in scenario {file}"))?;
    let mut scenario = Scenario::parse(file, text).map_err(|e| anyhow!("parsing {file}: {e}"))?;
    // Prometheus stores each sample at the instant it scraped it; controllers see a scrape
    // one telemetry lag later. The incident is the scrapes taken in its first `minutes`, and
    // the run goes on for one lag more so that the simulator's last Observation is the one
    // a controller makes once the last of those scrapes is visible.
    let cut = Duration::from_secs(minutes * 60);
    let lag = scenario
        .control_plane
        .telemetry_lag(scenario.telemetry_interval.nanos());
    scenario.duration = Duration::from_nanos(cut.nanos().saturating_add(lag));
    let spec = scenario
        .policies
        .first()
        .map(|p| p.spec.clone())
        .ok_or_else(|| anyhow!("{file} has no policy"))?;
    let service = scenario
        .topology
        .services
        .iter()
        .position(|s| s.name == spec.target.service)
        .with_context(|| {
            format!(
                "{file}: policy target {} not in topology",
                spec.target.service
            )
        })?;
    let mut engine = Engine::new(&scenario).map_err(|e| anyhow!("{file}: {e}"))?;
    let mut exporter = Exporter::new(BASE_UNIX, namespace)
        .observing(service)
        .scraped_before(cut.nanos());
    engine.run(&mut exporter);
    Ok(Incident {
        scenario,
        spec,
        exporter,
    })
}
