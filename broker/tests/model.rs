//! Model test of one partition log: random appends, acknowledgements, reads,
//! rolls, clean reopens and crashes, checked against a `Vec` of what was
//! appended.
//!
//! A crash drops the log without `close()` and then damages what no
//! completed fdatasync covered (the active segment past its durable length):
//! either cut at a random byte or overwritten with garbage. After every reopen
//! the log must hold:
//! - every batch below the high watermark at the time of the crash (so every
//!   acknowledged batch), byte-identical at its offset;
//! - nothing else but a prefix of the unacknowledged batches, each
//!   byte-identical to what was appended at that offset;
//! - a high watermark at least one past the last acknowledged offset, and the
//!   next append gets exactly the high watermark: no offset is reused.

// Tests may unwrap (house style); the helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::{as_stored, read_all};

use std::fs;
use std::path::PathBuf;

use proptest::prelude::*;
use sediment_broker::storage::batch::BatchHeader;
use sediment_broker::storage::recovery::list_partition_dir;
use sediment_broker::storage::test_batches::batch_of_size;
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::LogConfig;

fn config() -> LogConfig {
    LogConfig {
        // Small enough that a run of appends rolls several times.
        segment_bytes: 256 * 1024,
        index_interval_bytes: 1024,
        // 16 offset entries: runs of small batches also roll on a full index.
        index_max_bytes: 128,
        preallocate_bytes: 64 * 1024,
        ..LogConfig::default()
    }
}

/// Offset after the last record of a stored batch.
fn end_of(stored: &[u8]) -> i64 {
    BatchHeader::parse(stored).unwrap().last_offset() + 1
}

/// A deterministic byte stream (xorshift64*) for garbage.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// What a crash does to the bytes no completed fdatasync covered.
#[derive(Debug, Clone)]
enum Crash {
    /// They are cut at this fraction of their length (a torn write).
    Cut(f64),
    /// They are overwritten with garbage (pages written back half-way).
    Garbage(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        bytes: usize,
    },
    /// `make_durable` of the log end: everything appended so far is acknowledged.
    Ack,
    /// Read from `log_start + at % (hw - log_start + 1)`.
    Read {
        at: u64,
        max_bytes: usize,
    },
    Roll,
    CleanReopen,
    Crash(Crash),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..=500, 10usize..=65536)
            .prop_map(|(records, bytes)| Op::Append { records, bytes }),
        3 => Just(Op::Ack),
        3 => (any::<u64>(), 1usize..=300_000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => Just(Op::Roll),
        1 => Just(Op::CleanReopen),
        2 => prop_oneof![
            (0.0f64..1.0).prop_map(Crash::Cut),
            any::<u64>().prop_map(Crash::Garbage),
        ]
        .prop_map(Op::Crash),
    ]
}

/// The log under test and what it must hold.
struct Harness {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    log: Option<PartitionLog>,
    /// Every batch appended and not taken back by a crash, as stored, in offset order.
    batches: Vec<(i64, Vec<u8>)>,
    /// Offset after the last acknowledged record.
    acked_end: i64,
    /// Seed (and timestamp) of the next appended batch.
    seed: u64,
}

impl Harness {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("model-0");
        let log = PartitionLog::open(&dir, config(), RecoveryHint::full_scan()).unwrap();
        Self {
            _tmp: tmp,
            dir,
            log: Some(log),
            batches: Vec::new(),
            acked_end: 0,
            seed: 0,
        }
    }

    fn log(&self) -> &PartitionLog {
        self.log.as_ref().unwrap()
    }

    /// Offset after the last batch the model holds.
    fn model_end(&self) -> i64 {
        self.batches.last().map_or(0, |(_, stored)| end_of(stored))
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append { records, bytes } => {
                self.append(records, bytes);
            }
            Op::Ack => {
                let end = self.log().log_end_offset();
                self.log().make_durable(end).unwrap();
                self.acked_end = end;
                assert_eq!(self.log().high_watermark(), end, "acked means readable");
            }
            Op::Read { at, max_bytes } => self.read(at, max_bytes),
            Op::Roll => {
                self.log().roll_now().unwrap();
                assert_eq!(
                    self.log().high_watermark(),
                    self.model_end(),
                    "a sealed segment is durable, so readable"
                );
            }
            Op::CleanReopen => self.clean_reopen(),
            Op::Crash(ref crash) => self.crash(crash),
        }
        assert!(self.log().high_watermark() >= self.acked_end);
        assert_eq!(self.log().log_end_offset(), self.model_end());
    }

    /// Appends a batch and checks it got the offset after everything in the
    /// log, which is past every acknowledged offset.
    fn append(&mut self, records: usize, bytes: usize) -> i64 {
        self.seed += 1;
        let batch = batch_of_size(records, bytes, 1000 * self.seed as i64, self.seed);
        let outcome = self.log().append(&batch).unwrap();
        assert_eq!(
            outcome.base_offset,
            self.model_end(),
            "offsets are contiguous"
        );
        assert!(outcome.base_offset >= self.acked_end, "no offset reused");
        self.batches
            .push((outcome.base_offset, as_stored(&batch, outcome.base_offset)));
        outcome.base_offset
    }

    /// A read returns whole batches, starting with the one holding the
    /// offset, exactly as the model has them, never past the high watermark.
    fn read(&self, at: u64, max_bytes: usize) {
        let log = self.log();
        let hw = log.high_watermark();
        let start = log.log_start_offset();
        let offset = start + (at % (hw - start + 1) as u64) as i64;
        let read = log.read(offset, max_bytes).unwrap();
        assert_eq!(read.high_watermark, hw);
        if offset == hw {
            assert!(read.bytes.is_empty(), "nothing at the high watermark");
            assert_eq!(read.next_offset, offset);
            return;
        }
        let first = self
            .batches
            .iter()
            .position(|(base, stored)| *base <= offset && offset < end_of(stored))
            .unwrap();
        let mut rest = &read.bytes[..];
        let mut returned = 0;
        for (base, stored) in &self.batches[first..] {
            if rest.is_empty() {
                break;
            }
            assert!(
                rest.starts_with(stored),
                "read at {offset}: batch {base} differs from what was appended"
            );
            rest = &rest[stored.len()..];
            returned += 1;
        }
        assert!(
            rest.is_empty(),
            "read at {offset} returned bytes past the model"
        );
        assert!(
            returned >= 1,
            "a read below the high watermark returns a batch"
        );
        let last = &self.batches[first + returned - 1].1;
        assert_eq!(read.next_offset, end_of(last));
        assert!(read.next_offset <= hw, "never past the high watermark");
        assert!(
            returned == 1 || read.bytes.len() <= max_bytes,
            "more than max_bytes only for a single batch"
        );
    }

    fn clean_reopen(&mut self) {
        let log = self.log.take().unwrap();
        let end = log.close().unwrap();
        assert_eq!(end, self.model_end(), "close returns the log end");
        drop(log);
        self.log = Some(PartitionLog::open(&self.dir, config(), RecoveryHint::clean(end)).unwrap());
        // close() synced everything, so everything is acknowledged.
        self.acked_end = end;
        assert_eq!(read_all(self.log(), 0), self.batches);
        self.assert_ends_agree();
    }

    fn crash(&mut self, crash: &Crash) {
        let log = self.log.take().unwrap();
        let hw = log.high_watermark();
        let durable = log.durable_position();
        assert_eq!(
            durable.offset, hw,
            "under flush always the hw is the durable end"
        );
        let active = list_partition_dir(&self.dir)
            .unwrap()
            .segments
            .pop()
            .unwrap();
        assert_eq!(
            durable.file, active.log,
            "durable position is in the active segment"
        );
        drop(log);

        let len = fs::metadata(&durable.file).unwrap().len();
        assert!(durable.len <= len);
        let unsynced = len - durable.len;
        match *crash {
            Crash::Cut(fraction) => {
                let at = durable.len + (unsynced as f64 * fraction) as u64;
                fs::OpenOptions::new()
                    .write(true)
                    .open(&durable.file)
                    .unwrap()
                    .set_len(at)
                    .unwrap();
            }
            Crash::Garbage(seed) => {
                let mut bytes = fs::read(&durable.file).unwrap();
                bytes.truncate(durable.len as usize);
                bytes.extend(garbage(seed, unsynced as usize));
                fs::write(&durable.file, bytes).unwrap();
            }
        }

        let log = PartitionLog::open(&self.dir, config(), RecoveryHint::full_scan()).unwrap();
        let survivors = read_all(&log, 0);
        assert!(survivors.len() <= self.batches.len());
        for (survivor, appended) in survivors.iter().zip(&self.batches) {
            assert_eq!(
                survivor, appended,
                "a batch that survived is byte-identical to what was appended at its offset"
            );
        }
        let survived_end = survivors.last().map_or(0, |(_, stored)| end_of(stored));
        assert!(
            survived_end >= hw,
            "everything below the pre-crash high watermark {hw} survives, got {survived_end}"
        );
        assert!(
            survived_end >= self.acked_end,
            "every acknowledged batch survives"
        );
        if matches!(crash, Crash::Garbage(_)) {
            assert_eq!(survived_end, hw, "garbage never passes for a batch");
        }
        self.batches.truncate(survivors.len());
        self.log = Some(log);
        // Recovery made what survived durable: it is all readable now.
        self.acked_end = survived_end;
        self.assert_ends_agree();
    }

    fn assert_ends_agree(&self) {
        let log = self.log();
        assert_eq!(log.log_start_offset(), 0);
        assert_eq!(log.high_watermark(), self.model_end());
        assert_eq!(log.log_end_offset(), self.model_end());
        assert!(log.high_watermark() >= self.acked_end);
    }

    /// After the run: once everything is acknowledged, one more append lands
    /// at the high watermark, and the whole log reads back as the model.
    fn finish(&mut self) {
        self.apply(&Op::Ack);
        let hw = self.log().high_watermark();
        let base = self.append(3, 500);
        assert_eq!(base, hw, "the next append gets the high watermark");
        self.apply(&Op::Ack);
        assert_eq!(read_all(self.log(), 0), self.batches);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn given_random_appends_acks_rolls_reopens_and_crashes_then_log_matches_model(
        ops in proptest::collection::vec(op(), 1..64)
    ) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
        }
        harness.finish();
    }
}
