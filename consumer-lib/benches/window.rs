//! In-process throughput of the windowing core (issue 6 target: ≥ 5 M events/s
//! on one core): a tumbling count over 10 M pre-generated events with 10,000
//! keys, slightly out of order, with a grace that admits most of the disorder.
//!
//! Run: `cargo bench -p sediment-stream --bench window`.

#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::expect_used)] // a benchmark that cannot set up should stop loudly

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use sediment_stream::{Event, Number, PartitionWindows, Window};

const EVENTS: usize = 10_000_000;
const KEYS: u64 = 10_000;

/// Seeded events: 10 per ms on average (so 100 k events per 10 s window, ~10 per
/// key and window), each up to 500 ms out of order, with values in -500..500.
fn events() -> Vec<Event> {
    let keys: Vec<String> = (0..KEYS).map(|k| format!("sensor-{k:05}")).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        // splitmix64: cheap, seeded, reproducible.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..EVENTS)
        .map(|i| {
            let r = next();
            let jitter = (r >> 32) % 500;
            Event {
                key: keys[(r % KEYS) as usize].clone(),
                ts: (i / 10) as i64 - jitter as i64,
                value: Number::Int(((r >> 16) % 1000) as i64 - 500),
            }
        })
        .collect()
}

fn tumbling_count(c: &mut Criterion) {
    let events = events();
    let window = Window::tumbling(10_000).expect("valid window");
    let mut group = c.benchmark_group("window");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("tumbling_count_10M_events_10k_keys", |b| {
        b.iter_batched(
            || PartitionWindows::new(window, 1_000),
            |mut state| {
                let mut emitted = 0usize;
                for event in &events {
                    emitted += state.process_ref(event).emitted.len();
                }
                black_box(emitted);
                // Returned so that dropping the state is not timed.
                state
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, tumbling_count);
criterion_main!(benches);
