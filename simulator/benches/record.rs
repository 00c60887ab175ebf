//! The recorder's per-request cost: `cargo bench -p homeostat-simulator --bench record`.
#![forbid(unsafe_code)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use homeostat_simulator::record::{Outcome, Recorder, RecorderConfig};

fn on_request_done(c: &mut Criterion) {
    const N: u64 = 100_000;
    let mut g = c.benchmark_group("recorder");
    g.throughput(Throughput::Elements(N));
    // 1,000 req/s for 100 s: 10 windows and 2 minutes roll over inside each iteration, so
    // the window-closing cost is included at its real rate.
    g.bench_function("on_request_done_x100k_1000rps", |b| {
        b.iter_batched_ref(
            || {
                Recorder::new(RecorderConfig {
                    step_s: 10,
                    subsets: vec!["v1".into(), "v2".into()],
                })
            },
            |r| {
                for i in 0..N {
                    let latency = 5_000_000 + (i * 7_919 % 20_000_000);
                    let outcome = if i % 97 == 0 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    };
                    r.on_request_done(black_box(i * 1_000_000), latency, outcome, (i & 1) as usize);
                }
            },
            criterion::BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, on_request_done);
criterion_main!(benches);
