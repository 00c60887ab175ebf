//! Thin adapter from the scenario's data references to the trace loaders in [`crate::traces`].

use std::path::Path;

use crate::traces;

/// Arrival offsets in seconds from the first request.
pub fn arrival_seconds(file: &Path) -> Result<Vec<f64>, String> {
    traces::load_azure_llm(file)
        .map(|t| t.offsets_s)
        .map_err(|e| e.to_string())
}

/// A request-count series, `speedup` times faster than real time.
pub fn rate_series(file: &Path, speedup: f64) -> Result<traces::RateSeries, String> {
    traces::load_rate_series(file, speedup).map_err(|e| e.to_string())
}

/// Own (self) durations in ns of one microservice's invocations in a span file.
pub fn span_durations(file: &Path, service: &str) -> Result<Vec<u64>, String> {
    let graph = traces::load_spans(file).map_err(|e| e.to_string())?;
    Ok(graph
        .self_time_ms
        .get(service)
        .map(|v| v.iter().map(|ms| (ms * 1e6).max(1.0) as u64).collect())
        .unwrap_or_default())
}
