//! Forecasters: update with points, predict h steps ahead with a mean and a prediction interval.

/// A point forecast with a central prediction interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
    /// The coverage the interval was asked for, in (0, 1).
    pub coverage: f64,
}

/// A streaming forecaster over a regular series.
pub trait Forecaster: Send {
    /// Feeds the next point; NaN (missing) must not corrupt the state.
    fn update(&mut self, value: f64);

    /// Predicts `h >= 1` steps past the last point, with a central interval of the given
    /// coverage in (0, 1). `None` while the forecaster has too little data to say anything.
    fn predict(&self, h: usize, coverage: f64) -> Option<Forecast>;

    /// A short stable name, as printed by `homeostat evaluate forecast`.
    fn name(&self) -> &'static str;
}

/// The names of every forecaster, ours first then the PromQL baselines.
pub const NAMES: &[&str] = &[];

/// A fresh forecaster by name, for a series whose step is `step_seconds`.
pub fn by_name(name: &str, step_seconds: i64) -> Option<Box<dyn Forecaster>> {
    let _ = (name, step_seconds);
    None
}
