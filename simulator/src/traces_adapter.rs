//! Thin adapter from the scenario's data references to the trace loaders (`traces.rs`).

use std::path::Path;

/// Arrival times in seconds (any origin) from an arrivals CSV.
pub fn arrival_seconds(file: &Path) -> Result<Vec<f64>, String> {
    Err(format!(
        "{}: trace loaders not available yet",
        file.display()
    ))
}

/// (step in seconds, values) of a timestamp,value request-count series.
pub fn rate_series(file: &Path) -> Result<(f64, Vec<f64>), String> {
    Err(format!(
        "{}: trace loaders not available yet",
        file.display()
    ))
}

/// Own durations (ns) of one microservice's spans.
pub fn span_durations(file: &Path, _service: &str) -> Result<Vec<u64>, String> {
    Err(format!(
        "{}: trace loaders not available yet",
        file.display()
    ))
}
