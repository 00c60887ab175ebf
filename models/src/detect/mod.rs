//! Streaming anomaly detectors.
//!
//! A [`Detector`] sees one point at a time and answers with an anomaly score in [0, 1] computed
//! from that point and the past only (causal): the controller runs them live, so a detector that
//! peeks ahead would score well offline and be useless in production.

/// A causal, streaming anomaly detector over a regular series.
pub trait Detector: Send {
    /// Feeds the next point and returns its anomaly score in [0, 1] (1 = surely anomalous).
    /// A missing point (NaN) returns 0 and must not disturb the detector's state.
    fn update(&mut self, value: f64) -> f64;

    /// A short stable name, as used on the command line (`--detector NAME`).
    fn name(&self) -> &'static str;
}

/// The names `--detector` accepts, the default first.
pub const NAMES: &[&str] = &[];

/// A fresh detector by name, with the one setting used for every series (no per-series tuning).
pub fn by_name(name: &str) -> Option<Box<dyn Detector>> {
    let _ = name;
    None
}
