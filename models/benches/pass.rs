//! One full detect + forecast pass over 10,000 targets × 3 signals × 240 points, the shape of
//! one controller tick over a large mesh (4 h of 1-minute history per signal).
//!
//! Each signal gets a fresh default detector (`detect::NAMES[0]`) and a fresh `auto` forecaster
//! (step 60 s) — what ships — fed all 240 points, then one 1-hour (60-step) forecast. Work is
//! split over 2 threads (the target machine's 2 cores). Data are synthetic and seeded
//! (rand_chacha), generated before timing.
//!
//! `cargo bench -p homeostat-models --bench pass`; `PASS_ONCE=all` runs the pass once outside
//! criterion (for `/usr/bin/time -v`, to read the peak resident memory); `PASS_ONCE=detect` or
//! `PASS_ONCE=forecast` runs only that half; `PASS_ONCE=stream` times the controller's real
//! per-tick cost: 30,000 default detectors (`PASS_DETECTOR=<name>` for another), each warmed on
//! its 240 points (`PASS_WARM=5000` for a detector whose windows are all full), then one new
//! point each (the median of 21 such steps is printed);
//! `PASS_ONCE=memory` measures what a detector holds once its windows are full, which 240 points
//! never reach: 1,000 detectors (`PASS_DETECTOR=<name>` for another) fed 5,000 points each, the
//! growth of the process's resident memory divided by 1,000 (Linux, `/proc/self/status`).
#![forbid(unsafe_code)]

use criterion::{Criterion, criterion_group};
use homeostat_models::{detect, forecast};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

const TARGETS: usize = 10_000;
const SIGNALS: usize = 3;
const POINTS: usize = 240;
const THREADS: usize = 2;

/// Request rate (a slow wave with noise), error ratio (low, with bursts) and p99 latency
/// (skewed noise with a level shift in some targets), all targets × signals in one flat block.
fn corpus() -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut out = Vec::with_capacity(TARGETS * SIGNALS * POINTS);
    for target in 0..TARGETS {
        let base = rng.random_range(10.0..1000.0);
        let shift_at = if target % 10 == 0 { 180 } else { usize::MAX };
        for t in 0..POINTS {
            let wave = (t as f64 * std::f64::consts::TAU / 120.0).sin();
            out.push(base * (1.0 + 0.2 * wave) + rng.random_range(-0.05..0.05) * base);
        }
        for t in 0..POINTS {
            let burst = if t % 97 == 13 { 0.2 } else { 0.0 };
            out.push(0.001 + burst + rng.random_range(0.0..0.002));
        }
        for t in 0..POINTS {
            let level = if t >= shift_at { 0.4 } else { 0.2 };
            let u: f64 = rng.random_range(0.0001..1.0);
            out.push(level * (1.0 - 0.3 * u.ln()));
        }
    }
    out
}

/// Runs the pass; returns a checksum so nothing is optimised away.
fn pass(data: &[f64]) -> f64 {
    pass_with(data, true, true)
}

/// The pass with either half switched off (`PASS_ONCE=detect|forecast`), to see where time goes.
fn pass_with(data: &[f64], detecting: bool, forecasting: bool) -> f64 {
    let detector = if detecting {
        detect::NAMES.first().copied().unwrap_or("none")
    } else {
        "none"
    };
    let chosen = std::env::var("PASS_FORECASTER").unwrap_or_else(|_| "auto".into());
    let forecaster = if forecasting { chosen.as_str() } else { "none" };
    let chunk = data.len().div_ceil(THREADS * POINTS) * POINTS;
    std::thread::scope(|scope| {
        let handles: Vec<_> = data
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut sum = 0.0;
                    for signal in part.chunks(POINTS) {
                        let mut d = detect::by_name(detector);
                        let mut f = forecast::by_name(forecaster, 60);
                        for &v in signal {
                            if let Some(d) = d.as_mut() {
                                sum += d.update(v);
                            }
                            if let Some(f) = f.as_mut() {
                                f.update(v);
                            }
                        }
                        if let Some(f) = f.as_ref() {
                            sum += f.predict(60, 0.8).map_or(0.0, |p| p.mean);
                        }
                    }
                    sum
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    })
}

/// Criterion times the forecast half always and the full pass only with `PASS_FULL=1` (the
/// forecast half alone takes about a second, and criterion needs ten samples).
fn bench(c: &mut Criterion) {
    let data = corpus();
    let mut group = c.benchmark_group("pass");
    group.sample_size(10);
    group.bench_function(
        "forecast (auto) 10k targets x 3 signals x 240 points",
        |b| b.iter(|| black_box(pass_with(black_box(&data), false, true))),
    );
    if std::env::var_os("PASS_FULL").is_some() {
        group.bench_function(
            "detect+forecast 10k targets x 3 signals x 240 points",
            |b| b.iter(|| black_box(pass(black_box(&data)))),
        );
    }
    group.finish();
}

/// `PASS_DETECTOR=conformal` (any of `detect::NAMES`) names another detector than the default.
/// An unknown name exits with the list: it would time zero detectors and print a meaningless
/// figure.
fn chosen_detector() -> String {
    let chosen = std::env::var("PASS_DETECTOR").ok();
    let name = chosen
        .as_deref()
        .or(detect::NAMES.first().copied())
        .unwrap_or("none");
    if detect::by_name(name).is_none() {
        eprintln!(
            "PASS_DETECTOR={name:?} is not a detector; one of {}",
            detect::NAMES.join(", ")
        );
        std::process::exit(2);
    }
    name.to_string()
}

/// One streaming step over every target and signal: detectors kept between ticks, one point
/// each. Single-threaded, as the bound (10 ms) is meant to hold without the second core.
fn stream_step() {
    let name = chosen_detector();
    let name = name.as_str();
    let data = corpus();
    // `PASS_WARM=n` warms each detector on n points (its signal over and over) instead of 240:
    // at 5,000 every window the default keeps is full, as in a controller that has run for days.
    let warm = match std::env::var("PASS_WARM") {
        Err(_) => POINTS,
        Ok(w) => w.parse::<usize>().unwrap_or_else(|_| {
            eprintln!("PASS_WARM={w:?} is not a number of points");
            std::process::exit(2);
        }),
    };
    let signals: Vec<&[f64]> = data.chunks(POINTS).collect();
    let mut detectors: Vec<Box<dyn detect::Detector>> = Vec::with_capacity(signals.len());
    std::thread::scope(|scope| {
        let workers: Vec<_> = signals
            .chunks(signals.len().div_ceil(THREADS))
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|signal| {
                            let mut d = detect::by_name(name)?;
                            for i in 0..warm {
                                d.update(signal[i % POINTS]);
                            }
                            Some(d)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A warm-up that panicked would leave the detectors out of step with their signals.
        for w in workers {
            match w.join() {
                Ok(part) => detectors.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let mut times = Vec::new();
    let mut sum = 0.0;
    for step in 0..21 {
        let start = std::time::Instant::now();
        for (d, signal) in detectors.iter_mut().zip(data.chunks(POINTS)) {
            sum += d.update(signal[(warm + step) % POINTS]);
        }
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    eprintln!(
        "streaming step, {} detectors ({name}, warmed on {warm} points) x 1 point: median {:.2} ms, max {:.2} ms of 21 steps (checksum {sum:.3})",
        detectors.len(),
        times[10],
        times[20]
    );
}

/// Criterion: the detect half with the default detector, one streaming step of it.
fn bench_detect(c: &mut Criterion) {
    let data = corpus();
    let mut group = c.benchmark_group("detect");
    group.sample_size(10);
    group.bench_function(
        "default detector 10k targets x 3 signals x 240 points",
        |b| b.iter(|| black_box(pass_with(black_box(&data), true, false))),
    );
    group.finish();
}

criterion_group!(benches, bench, bench_detect);

/// Resident memory of this process, KB (`VmRSS` of `/proc/self/status`). Exits with a message
/// where there is none (not Linux): a growth of "0 KB" would be a figure nobody measured.
fn resident_kb() -> u64 {
    let kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        });
    kb.unwrap_or_else(|| {
        eprintln!("PASS_ONCE=memory reads VmRSS from /proc/self/status, which this system lacks");
        std::process::exit(2);
    })
}

/// Steady-state memory per detector: 1,000 detectors, 5,000 seeded points each (past every
/// window the default keeps: 4,000 for its calibration, 1,000 for its kNN memory).
fn steady_memory() {
    const DETECTORS: usize = 1_000;
    const STEPS: usize = 5_000;
    let name = chosen_detector();
    let before = resident_kb();
    let mut detectors: Vec<Box<dyn detect::Detector>> = (0..DETECTORS)
        .filter_map(|_| detect::by_name(&name))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut sum = 0.0;
    for _ in 0..STEPS {
        for d in &mut detectors {
            sum += d.update(rng.random_range(0.0..100.0));
        }
    }
    let grown = resident_kb().saturating_sub(before);
    eprintln!(
        "{DETECTORS} detectors ({name}) after {STEPS} points each: resident memory +{grown} KB = {:.1} KB per detector (checksum {sum:.3})",
        grown as f64 / DETECTORS as f64
    );
}

fn main() {
    if std::env::var_os("PASS_ONCE").is_some_and(|w| w == "memory") {
        steady_memory();
        return;
    }
    if std::env::var_os("PASS_ONCE").is_some_and(|w| w == "stream") {
        stream_step();
        return;
    }
    if let Some(which) = std::env::var_os("PASS_ONCE") {
        let data = corpus();
        let start = std::time::Instant::now();
        let sum = pass_with(&data, which != "forecast", which != "detect");
        eprintln!(
            "one pass ({which:?}): {:.1} ms (detector {:?}, checksum {sum:.3})",
            start.elapsed().as_secs_f64() * 1e3,
            detect::NAMES.first()
        );
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
