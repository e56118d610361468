//! Storage benchmarks: append throughput under each flush policy, sequential
//! read throughput, and the two ways of writing into a reserved segment
//! (pwrite vs. a store through a writable mapping) that the design asks to
//! compare.
//!
//! Run: `cargo bench --bench storage` (data goes to a temp dir under
//! `$TMPDIR`; point it at the disk you want to measure).
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::expect_used)] // a benchmark that cannot set up should stop loudly

use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sediment_broker::storage::test_batches::batch_of_size;
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::{FlushPolicy, LogConfig};

/// 16 KiB batches of 100-byte records, as the storage issue specifies.
const BATCH_BYTES: usize = 16 * 1024;
const RECORDS_PER_BATCH: usize = 140;

fn batch() -> Vec<u8> {
    batch_of_size(RECORDS_PER_BATCH, BATCH_BYTES, 0, 7)
}

fn open_logs(
    dir: &std::path::Path,
    partitions: usize,
    flush: FlushPolicy,
) -> Vec<Arc<PartitionLog>> {
    let config = LogConfig {
        flush,
        segment_bytes: 256 << 20,
        retention_ms: None,
        ..LogConfig::default()
    };
    (0..partitions)
        .map(|p| {
            let log = PartitionLog::open(
                &dir.join(format!("bench-{p}")),
                config.clone(),
                RecoveryHint::full_scan(),
            )
            .expect("open log");
            Arc::new(log)
        })
        .collect()
}

/// Appends without waiting for fsync: `--flush interval:MS`'s hot path.
fn append_no_fsync(c: &mut Criterion) {
    let batch = batch();
    let mut group = c.benchmark_group("append_flush_interval");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for partitions in [1usize, 8] {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = open_logs(
            dir.path(),
            partitions,
            FlushPolicy::Interval(Duration::from_secs(3600)),
        );
        let mut next = 0usize;
        group.bench_function(BenchmarkId::new("partitions", partitions), |b| {
            b.iter(|| {
                let log = &logs[next % partitions];
                next += 1;
                black_box(log.append(&batch).expect("append"));
            })
        });
    }
    group.finish();
}

/// Appends acknowledged after fdatasync with K concurrent appenders spread
/// over P partitions: the group commit path.
fn append_fsync(c: &mut Criterion) {
    let batch = Arc::new(batch());
    let mut group = c.benchmark_group("append_flush_always");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (appenders, partitions) in [(1usize, 1usize), (8, 1), (8, 8)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = open_logs(dir.path(), partitions, FlushPolicy::Always);
        let id = format!("appenders_{appenders}/partitions_{partitions}");
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let per_thread = (iters as usize).div_ceil(appenders);
                let barrier = Arc::new(Barrier::new(appenders + 1));
                let threads: Vec<_> = (0..appenders)
                    .map(|t| {
                        let log = Arc::clone(&logs[t % partitions]);
                        let batch = Arc::clone(&batch);
                        let barrier = Arc::clone(&barrier);
                        std::thread::spawn(move || {
                            barrier.wait();
                            for _ in 0..per_thread {
                                let outcome = log.append(&batch).expect("append");
                                log.make_durable(outcome.next_offset).expect("durable");
                            }
                        })
                    })
                    .collect();
                barrier.wait();
                let start = Instant::now();
                for thread in threads {
                    thread.join().expect("appender");
                }
                // Work done may exceed `iters` by rounding; scale to the count asked for.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_thread * appenders) as f64)
            })
        });
    }
    group.finish();
}

/// Sequential read of 1 GiB through `PartitionLog::read` in 1 MiB fetches:
/// once handing out the zero-copy slices only, once also touching every byte.
fn sequential_read(c: &mut Criterion) {
    const TOTAL: usize = 1 << 30;
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = open_logs(
        dir.path(),
        1,
        FlushPolicy::Interval(Duration::from_secs(3600)),
    );
    let log = &logs[0];
    let batch = batch();
    while (log.size_bytes() as usize) < TOTAL {
        log.append(&batch).expect("append");
    }
    log.flush().expect("flush");
    let end = log.high_watermark();
    let bytes = log.size_bytes();

    let mut group = c.benchmark_group("sequential_read_1GiB");
    group.throughput(Throughput::Bytes(bytes));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("slices", |b| {
        b.iter(|| {
            let mut offset = 0;
            let mut total = 0usize;
            while offset < end {
                let read = log.read(offset, 1 << 20).expect("read");
                total += read.bytes.len();
                offset = read.next_offset;
            }
            black_box(total)
        })
    });
    group.bench_function("touch_every_byte", |b| {
        b.iter(|| {
            let mut offset = 0;
            let mut fold = 0u64;
            while offset < end {
                let read = log.read(offset, 1 << 20).expect("read");
                for chunk in read.bytes.chunks_exact(8) {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    fold ^= u64::from_ne_bytes(word);
                }
                offset = read.next_offset;
            }
            black_box(fold)
        })
    });
    group.finish();
}

/// pwrite vs. memcpy through a writable mapping, 16 KiB at a time into a
/// fresh file reserved with fallocate: the two ways to append.
#[allow(unsafe_code)]
fn pwrite_vs_mmap(c: &mut Criterion) {
    const FILE_BYTES: usize = 64 << 20;
    let chunk = vec![0x5au8; BATCH_BYTES];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("write_64MiB_fresh_file");
    group.throughput(Throughput::Bytes(FILE_BYTES as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let fresh = |n: &mut u64| {
        *n += 1;
        let path = dir.path().join(format!("f{n}"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create");
        (path, file)
    };
    let mut n = 0u64;
    group.bench_function("pwrite_keep_size_reservation", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let (path, file) = fresh(&mut n);
                rustix::fs::fallocate(
                    &file,
                    rustix::fs::FallocateFlags::KEEP_SIZE,
                    0,
                    FILE_BYTES as u64,
                )
                .expect("fallocate");
                let start = Instant::now();
                for i in 0..FILE_BYTES / BATCH_BYTES {
                    file.write_all_at(&chunk, (i * BATCH_BYTES) as u64)
                        .expect("pwrite");
                }
                spent += start.elapsed();
                drop(file);
                std::fs::remove_file(path).expect("remove");
            }
            spent
        })
    });
    group.bench_function("mmap_store_allocated_file", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let (path, file) = fresh(&mut n);
                rustix::fs::fallocate(
                    &file,
                    rustix::fs::FallocateFlags::empty(),
                    0,
                    FILE_BYTES as u64,
                )
                .expect("fallocate");
                // SAFETY: the file is private to this benchmark and fully allocated.
                let mut map = unsafe { memmap2::MmapMut::map_mut(&file).expect("map") };
                let start = Instant::now();
                for i in 0..FILE_BYTES / BATCH_BYTES {
                    (&mut map[i * BATCH_BYTES..(i + 1) * BATCH_BYTES])
                        .write_all(&chunk)
                        .expect("store");
                }
                spent += start.elapsed();
                drop(map);
                drop(file);
                std::fs::remove_file(path).expect("remove");
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    pwrite_vs_mmap,
    append_no_fsync,
    append_fsync,
    sequential_read
);
criterion_main!(benches);
