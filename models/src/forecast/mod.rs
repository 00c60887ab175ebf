//! Forecasters: update with points, predict h steps ahead with a mean and a prediction interval.
//!
//! Ours ([`auto`] and the models it chooses among) carry intervals from their own one-step
//! residual variance, widened for the horizon as the model's error propagation implies. The
//! PromQL baselines ([`promql`]) reproduce what a user would type into Prometheus instead; PromQL
//! has no prediction intervals, so their `lower`/`upper` are NaN ("no interval").

pub mod auto;
pub mod holt;
pub mod holt_winters;
pub mod interval;
pub mod linear_trend;
pub mod period;
pub mod promql;
pub mod seasonal_naive;

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
pub const NAMES: &[&str] = &[
    auto::NAME,
    holt_winters::NAME,
    holt::NAME,
    linear_trend::NAME,
    seasonal_naive::NAME,
    promql::PREDICT_LINEAR,
    promql::DOUBLE_EXPONENTIAL_SMOOTHING,
];

/// Whether `name` is one of the PromQL baselines rather than one of ours.
pub fn is_baseline(name: &str) -> bool {
    name == promql::PREDICT_LINEAR || name == promql::DOUBLE_EXPONENTIAL_SMOOTHING
}

/// A fresh forecaster by name, for a series whose step is `step_seconds` (non-positive steps are
/// treated as 1 s). Every forecaster picks its own parameters; none is tuned per series.
pub fn by_name(name: &str, step_seconds: i64) -> Option<Box<dyn Forecaster>> {
    let step = step_seconds.max(1);
    Some(match name {
        auto::NAME => Box::new(auto::Auto::new(step)),
        holt_winters::NAME => Box::new(holt_winters::HoltWinters::new()),
        holt::NAME => Box::new(holt::Holt::new()),
        linear_trend::NAME => Box::new(linear_trend::LinearTrend::new(step)),
        seasonal_naive::NAME => Box::new(seasonal_naive::SeasonalNaive::new()),
        promql::PREDICT_LINEAR => Box::new(promql::PredictLinear::new(step)),
        promql::DOUBLE_EXPONENTIAL_SMOOTHING => {
            Box::new(promql::DoubleExponentialSmoothing::new(step))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_and_reports_its_name() {
        for &name in NAMES {
            let f = by_name(name, 60).expect(name);
            assert_eq!(f.name(), name);
        }
        assert!(by_name("prophet", 60).is_none());
        assert!(is_baseline("predict_linear") && !is_baseline("auto"));
    }
}
