//! homeostat's pure decision core.
//!
//! Everything that decides lives here, so the controller, the simulator and alert-triggered
//! remediation run the very same code. The crate is synchronous and deterministic: no tokio, no
//! network, no filesystem. Adapters (controller, simulator) translate the world into these types
//! and translate plans back out.
//!
//! # Layout
//!
//! * [`series`] — regular time series with explicit gaps (NaN), and sliding windows.
//! * [`stats`] — robust statistics (median, MAD, quantiles) that skip missing values.
//! * [`season`] — automatic period detection (autocorrelation), shared by detectors and
//!   forecasters.
//! * [`detect`] — the streaming [`detect::Detector`] trait and the detectors: robust z-score,
//!   EWMA control chart, seasonal residual, Bayesian online changepoint, the calibrated ensemble,
//!   and cross-sectional peer comparison.
//! * [`forecast`] — the [`forecast::Forecaster`] trait, our forecasters, automatic model choice by
//!   rolling-origin backtest, and faithful PromQL baselines (`predict_linear`,
//!   `double_exponential_smoothing`).
//! * [`backtest`] — rolling-origin backtest of a forecaster: MASE and interval coverage.
//! * [`policy`] — the `AdaptivePolicy` spec (serde + schemars) and its validation.
//! * [`governor`] — `Governor::step`: observations in, an explained, guarded `Plan` out.
//! * [`nab`] — the Numenta Anomaly Benchmark scoring rules, used by `homeostat evaluate nab`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod backtest;
pub mod detect;
pub mod forecast;
pub mod governor;
pub mod nab;
pub mod policy;
pub mod season;
pub mod series;
pub mod stats;
