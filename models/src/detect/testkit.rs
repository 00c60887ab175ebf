//! Shared test series for the detectors: deterministic noise with a known spike, a known level
//! shift, and a clean seasonal pattern.
//!
//! The noise is uniform on [-1, 1] (sd 1/√3 ≈ 0.577, MAD ≈ 1.4826 × 0.5 ≈ 0.74), so a clean point
//! is at most ≈ 1 / 0.577 ≈ 1.7 standard deviations out: P(|Z| ≥ 1.7) ≈ 0.09, i.e. a score near
//! -log10(0.09)/10 ≈ 0.1. A +30 spike is ≈ 50 standard deviations out: p underflows, score 1.

use super::Detector;

pub const LEN: usize = 3000;
pub const EVENT: usize = 2500;
/// Checks of "quiet before the event" start here, after every detector's warm-up.
pub const QUIET_FROM: usize = 1500;
/// Over 1000 clean points the smallest tail probability is ≈ 1/1000 by chance alone, so "quiet"
/// means every p > 1e-4, i.e. score < -log10(1e-4)/10 = 0.4.
pub const QUIET: f64 = 0.4;

/// Deterministic uniform noise on [-1, 1] (a 64-bit LCG, top bits).
pub fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

pub fn run(d: &mut dyn Detector, series: &[f64]) -> Vec<f64> {
    series.iter().map(|&v| d.update(v)).collect()
}

fn max_of(scores: &[f64]) -> f64 {
    scores.iter().copied().fold(0.0, f64::max)
}

/// 100 + noise with a +30 spike at [`EVENT`].
pub fn spike_series() -> Vec<f64> {
    let mut v: Vec<f64> = noise(LEN, 1).iter().map(|e| 100.0 + e).collect();
    v[EVENT] += 30.0;
    v
}

/// 100 + noise, then 110 + noise from [`EVENT`] on (a 10-unit ≈ 17 sd shift).
pub fn shift_series() -> Vec<f64> {
    noise(LEN, 2)
        .iter()
        .enumerate()
        .map(|(i, e)| if i >= EVENT { 110.0 } else { 100.0 } + e)
        .collect()
}

/// 100 + 10·sin(2πi/48) + noise: a strong, clean daily-like season of 48 steps.
pub fn seasonal_series() -> Vec<f64> {
    noise(LEN, 3)
        .iter()
        .enumerate()
        .map(|(i, e)| 100.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 48.0).sin() + e)
        .collect()
}

/// The spike scores ≥ 0.5 (p ≤ 1e-5); every clean point after warm-up scores < [`QUIET`].
pub fn scores_spike_high(d: &mut dyn Detector) {
    let s = run(d, &spike_series());
    assert!(s[EVENT] >= 0.5, "{}: spike scored {}", d.name(), s[EVENT]);
    let quiet = max_of(&s[QUIET_FROM..EVENT]);
    assert!(quiet < QUIET, "{}: clean part peaked at {quiet}", d.name());
}

/// One of the first 5 points after the shift scores ≥ 0.5; the clean part before stays < [`QUIET`].
pub fn flags_level_shift_onset(d: &mut dyn Detector) {
    let s = run(d, &shift_series());
    let onset = max_of(&s[EVENT..EVENT + 5]);
    assert!(onset >= 0.5, "{}: shift onset scored {onset}", d.name());
    let quiet = max_of(&s[QUIET_FROM..EVENT]);
    assert!(quiet < QUIET, "{}: clean part peaked at {quiet}", d.name());
}

/// No false alarm on the clean seasonal part after warm-up.
pub fn quiet_on_season(d: &mut dyn Detector) {
    let s = run(d, &seasonal_series());
    let quiet = max_of(&s[QUIET_FROM..]);
    assert!(
        quiet < QUIET,
        "{}: clean season peaked at {quiet}",
        d.name()
    );
}
