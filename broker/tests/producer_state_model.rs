//! Model test of the producer state of one partition (issue 12): random
//! record sets of idempotent and transactional producers (next sequences,
//! retries of recent batches, gaps, restarts at 0, negative sequences,
//! sequences wrapping at `i32::MAX`, old and new epochs), transaction
//! markers, acknowledgements, rolls, clean reopens and crashes, run against
//! a real [`PartitionLog`] in a temporary directory and against a small
//! reference implementation of Kafka's rules written here
//! (`ProducerStateManager` / `ProducerAppendInfo`).
//!
//! After every step the two must agree on: the outcome of the append
//! (the offsets it got, the original offsets of a duplicate, or the error
//! code of a refusal with nothing appended), the log end, every stored
//! batch, the producers known, the open transactions, the last stable
//! offset and the aborted-transaction index.
//!
//! A crash drops the log without `close()` and cuts what no fdatasync
//! covered at a random point (and sometimes loses the newest producer
//! snapshot too); the model goes back to its state at the end of what
//! survived, since everything a partition knows of its producers is a
//! function of its log.
//!
//! Where Sediment's documented rules differ from Kafka's they are modelled
//! as Sediment documents them (`storage::producer_state`): a batch with a
//! producer id and a negative sequence is appended as non-idempotent (Kafka's
//! `LogValidator` refuses it as INVALID_RECORD), and transactional producers
//! here never send non-transactional batches (Kafka refuses those while a
//! transaction is open with INVALID_TXN_STATE; Sediment has no such check).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;
use support::{as_stored, read_all};

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use proptest::prelude::*;
use sediment_broker::protocol::errors::ToErrorCode;
use sediment_broker::storage::batch::BatchHeader;
use sediment_broker::storage::encode::TxnMarker;
use sediment_broker::storage::producer_state::list_snapshots;
use sediment_broker::storage::test_batches::{idempotent_batch, transactional_batch};
use sediment_broker::storage::txn_index::AbortedTxn;
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::LogConfig;

/// Producers that only send idempotent batches.
const IDEMPOTENT: [i64; 2] = [11, 12];
/// Producers that only send transactional batches.
const TRANSACTIONAL: [i64; 2] = [21, 22];
/// Markers also go to a producer that never wrote here.
const MARKER_PRODUCERS: [i64; 3] = [21, 22, 31];
/// Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`.
const RETAINED: usize = 5;
const NO_EPOCH: i16 = -1;
const OUT_OF_ORDER_SEQUENCE: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_RECORD: i16 = 87;

fn config() -> LogConfig {
    LogConfig {
        // A few batches per segment: rolls (and their snapshots) are frequent.
        segment_bytes: 2 * 1024,
        index_interval_bytes: 256,
        preallocate_bytes: 2 * 1024,
        ..LogConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The reference model.

/// Kafka's `DefaultRecordBatch.incrementSequence`.
fn wrap_add(sequence: i32, by: i32) -> i32 {
    ((i64::from(sequence) + i64::from(by)) % (i64::from(i32::MAX) + 1)) as i32
}

/// Kafka's `ProducerAppendInfo.inSequence`.
fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    first_seq: i32,
    last_seq: i32,
    base: i64,
    last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    epoch: i16,
    /// The last [`RETAINED`] batches of `epoch`, oldest first.
    batches: VecDeque<Meta>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    Data { base: i64, bytes: Vec<u8> },
    Marker { base: i64, marker: TxnMarker },
}

impl Stored {
    fn base(&self) -> i64 {
        match self {
            Stored::Data { base, .. } | Stored::Marker { base, .. } => *base,
        }
    }
}

/// One batch of a record set, as sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    count: usize,
    transactional: bool,
    seed: u64,
}

impl Sent {
    fn bytes(&self) -> Vec<u8> {
        let build = if self.transactional {
            transactional_batch
        } else {
            idempotent_batch
        };
        build(
            self.count,
            self.producer_id,
            self.epoch,
            self.first_seq,
            self.seed,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Appended { base: i64, last: i64 },
    Duplicate { base: i64, last: i64 },
    Refused(i16),
}

/// What a partition knows, as Kafka's rules make it.
#[derive(Debug, Clone, Default)]
struct Model {
    producers: BTreeMap<i64, Entry>,
    /// Open transactions: producer → first offset.
    open: BTreeMap<i64, i64>,
    aborted: Vec<AbortedTxn>,
    /// Ended transactions: (marker offset, first offset). One whose marker
    /// is not below the high watermark still holds the last stable offset.
    ended: Vec<(i64, i64)>,
    log: Vec<Stored>,
    end: i64,
}

impl Model {
    /// Checks a record set whole, as Kafka's `analyzeAndValidateProducerState`
    /// does, and applies it if it is appended.
    fn append(&mut self, set: &[Sent]) -> Outcome {
        let mut staged: BTreeMap<i64, Entry> = BTreeMap::new();
        let mut opened: BTreeMap<i64, i64> = BTreeMap::new();
        let mut offset = self.end;
        for sent in set {
            let base = offset;
            offset += sent.count as i64;
            if sent.producer_id < 0 || sent.first_seq < 0 {
                if sent.transactional {
                    return Outcome::Refused(INVALID_RECORD);
                }
                continue;
            }
            let last_seq = wrap_add(sent.first_seq, sent.count as i32 - 1);
            let stored = self.producers.get(&sent.producer_id);
            // A retry of a stored batch answers the whole set with it.
            if let Some(original) = stored.filter(|e| e.epoch == sent.epoch).and_then(|e| {
                e.batches
                    .iter()
                    .find(|m| m.first_seq == sent.first_seq && m.last_seq == last_seq)
            }) {
                return Outcome::Duplicate {
                    base: original.base,
                    last: original.last_offset,
                };
            }
            let stored_epoch = stored.map_or(NO_EPOCH, |e| e.epoch);
            let entry = staged.entry(sent.producer_id).or_insert_with(|| {
                stored.cloned().unwrap_or(Entry {
                    epoch: NO_EPOCH,
                    batches: VecDeque::new(),
                })
            });
            if sent.epoch < entry.epoch {
                return Outcome::Refused(INVALID_PRODUCER_EPOCH);
            }
            if sent.epoch != entry.epoch {
                if sent.first_seq != 0 && entry.epoch != NO_EPOCH {
                    return Outcome::Refused(OUT_OF_ORDER_SEQUENCE);
                }
                entry.epoch = sent.epoch;
                entry.batches.clear();
            } else {
                let last = entry.batches.back().map_or(-1, |m| m.last_seq);
                // An unknown producer may start anywhere.
                if stored_epoch != NO_EPOCH && !in_sequence(last, sent.first_seq) {
                    return Outcome::Refused(OUT_OF_ORDER_SEQUENCE);
                }
            }
            entry.batches.push_back(Meta {
                first_seq: sent.first_seq,
                last_seq,
                base,
                last_offset: offset - 1,
            });
            if entry.batches.len() > RETAINED {
                entry.batches.pop_front();
            }
            if sent.transactional && !self.open.contains_key(&sent.producer_id) {
                opened.entry(sent.producer_id).or_insert(base);
            }
        }
        let base = self.end;
        self.producers.extend(staged);
        self.open.extend(opened);
        let mut at = base;
        for sent in set {
            self.log.push(Stored::Data {
                base: at,
                bytes: as_stored(&sent.bytes(), at),
            });
            at += sent.count as i64;
        }
        self.end = offset;
        Outcome::Appended {
            base,
            last: offset - 1,
        }
    }

    /// A marker from the coordinator, as Kafka's `appendEndTxnMarker` takes it.
    fn marker(&mut self, marker: TxnMarker) -> Result<i64, i16> {
        if let Some(entry) = self.producers.get(&marker.producer_id) {
            if marker.producer_epoch < entry.epoch {
                return Err(INVALID_PRODUCER_EPOCH);
            }
        }
        let offset = self.end;
        self.end += 1;
        let entry = self
            .producers
            .entry(marker.producer_id)
            .or_insert_with(|| Entry {
                epoch: marker.producer_epoch,
                batches: VecDeque::new(),
            });
        if marker.producer_epoch > entry.epoch {
            entry.epoch = marker.producer_epoch;
            entry.batches.clear();
        }
        if let Some(first_offset) = self.open.remove(&marker.producer_id) {
            self.ended.push((offset, first_offset));
            if !marker.commit {
                self.aborted.push(AbortedTxn {
                    producer_id: marker.producer_id,
                    first_offset,
                    last_offset: offset,
                    last_stable_offset: self.first_unstable().unwrap_or(offset + 1),
                });
            }
        }
        self.log.push(Stored::Marker {
            base: offset,
            marker,
        });
        Ok(offset)
    }

    fn first_unstable(&self) -> Option<i64> {
        self.open.values().min().copied()
    }

    /// Kafka's last stable offset at high watermark `hw`: before the first
    /// offset of every open transaction and of every ended one whose marker
    /// is not yet below `hw`.
    fn last_stable_offset(&self, hw: i64) -> i64 {
        self.open
            .values()
            .copied()
            .chain(
                self.ended
                    .iter()
                    .filter(|&&(marker, _)| marker >= hw)
                    .map(|&(_, first)| first),
            )
            .fold(hw, i64::min)
    }
}

// ---------------------------------------------------------------------------
// Operations.

#[derive(Debug, Clone, Copy)]
enum Who {
    /// No producer id: never checked.
    Plain,
    Idempotent(usize),
    Transactional(usize),
}

#[derive(Debug, Clone, Copy)]
enum EpochChoice {
    Current,
    Older,
    Newer,
}

#[derive(Debug, Clone, Copy)]
enum SeqChoice {
    /// The producer's next sequence.
    Next,
    /// A retry of one of its stored batches (same epoch, sequences, count).
    Retry(usize),
    /// The next sequence plus 1..=3.
    Gap(i32),
    /// 0 (a new epoch's first batch, or an out-of-order one).
    Zero,
    /// -1..=-3: not idempotent.
    Negative(i32),
    /// `i32::MAX - k`: the batch may wrap to 0.
    NearMax(i32),
    /// Anything.
    Random(i32),
}

#[derive(Debug, Clone, Copy)]
struct Spec {
    who: Who,
    epoch: EpochChoice,
    seq: SeqChoice,
    count: usize,
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        set: Vec<Spec>,
        acked: bool,
    },
    Marker {
        producer: usize,
        epoch: EpochChoice,
        commit: bool,
        acked: bool,
    },
    /// `make_durable` of the log end.
    Ack,
    Roll,
    CleanReopen,
    /// Cut the unsynced bytes at this fraction; maybe lose the newest snapshot.
    Crash {
        cut: f64,
        lose_snapshot: bool,
    },
}

fn epoch_choice() -> impl Strategy<Value = EpochChoice> {
    prop_oneof![
        8 => Just(EpochChoice::Current),
        1 => Just(EpochChoice::Older),
        1 => Just(EpochChoice::Newer),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let who = prop_oneof![
        1 => Just(Who::Plain),
        4 => (0..IDEMPOTENT.len()).prop_map(Who::Idempotent),
        4 => (0..TRANSACTIONAL.len()).prop_map(Who::Transactional),
    ];
    let seq = prop_oneof![
        10 => Just(SeqChoice::Next),
        4 => (0usize..RETAINED + 1).prop_map(SeqChoice::Retry),
        1 => (1i32..=3).prop_map(SeqChoice::Gap),
        1 => Just(SeqChoice::Zero),
        1 => (1i32..=3).prop_map(SeqChoice::Negative),
        1 => (0i32..=3).prop_map(SeqChoice::NearMax),
        1 => (0i32..=i32::MAX).prop_map(SeqChoice::Random),
    ];
    (who, epoch_choice(), seq, 1usize..=5).prop_map(|(who, epoch, seq, count)| Spec {
        who,
        epoch,
        seq,
        count,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (proptest::collection::vec(spec(), 1..=2), proptest::bool::weighted(0.8))
            .prop_map(|(set, acked)| Op::Append { set, acked }),
        3 => (0..MARKER_PRODUCERS.len(), epoch_choice(), any::<bool>(), proptest::bool::weighted(0.8))
            .prop_map(|(producer, epoch, commit, acked)| Op::Marker { producer, epoch, commit, acked }),
        1 => Just(Op::Ack),
        1 => Just(Op::Roll),
        1 => Just(Op::CleanReopen),
        1 => (0.0f64..1.0, proptest::bool::weighted(0.3))
            .prop_map(|(cut, lose_snapshot)| Op::Crash { cut, lose_snapshot }),
    ]
}

/// The epoch `choice` names for a producer whose current epoch is `current`
/// (0 for a producer not known yet).
fn pick_epoch(choice: EpochChoice, current: i16) -> i16 {
    match choice {
        EpochChoice::Current => current,
        EpochChoice::Older => (current - 1).max(0),
        EpochChoice::Newer => current + 1,
    }
}

// ---------------------------------------------------------------------------
// The harness.

struct Harness {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    log: Option<PartitionLog>,
    model: Model,
    /// The model after every step, to go back to after a crash.
    history: Vec<Model>,
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
            model: Model::default(),
            history: vec![Model::default()],
            seed: 0,
        }
    }

    fn log(&self) -> &PartitionLog {
        self.log.as_ref().unwrap()
    }

    /// Turns specs into batches against the model's state; a set's later
    /// batches follow its earlier ones (`next` per producer).
    fn resolve(&mut self, set: &[Spec]) -> Vec<Sent> {
        let mut next: BTreeMap<i64, (i16, i32)> = BTreeMap::new();
        set.iter()
            .map(|spec| {
                self.seed += 1;
                let (producer_id, transactional) = match spec.who {
                    Who::Plain => {
                        return Sent {
                            producer_id: -1,
                            epoch: NO_EPOCH,
                            first_seq: -1,
                            count: spec.count,
                            transactional: false,
                            seed: self.seed,
                        }
                    }
                    Who::Idempotent(i) => (IDEMPOTENT[i], false),
                    Who::Transactional(i) => (TRANSACTIONAL[i], true),
                };
                let entry = self.model.producers.get(&producer_id);
                let (current, next_seq) = next.get(&producer_id).copied().unwrap_or_else(|| {
                    entry.map_or((0, 0), |e| {
                        let epoch = e.epoch.max(0);
                        (
                            epoch,
                            e.batches.back().map_or(0, |m| wrap_add(m.last_seq, 1)),
                        )
                    })
                });
                let mut epoch = pick_epoch(spec.epoch, current);
                let mut count = spec.count;
                let first_seq = match spec.seq {
                    SeqChoice::Next => next_seq,
                    SeqChoice::Retry(i) => match entry.filter(|e| !e.batches.is_empty()) {
                        Some(e) => {
                            let original = e.batches[i % e.batches.len()];
                            epoch = e.epoch;
                            // Records from first to last sequence, across a wrap.
                            let span = (i64::from(original.last_seq)
                                - i64::from(original.first_seq))
                            .rem_euclid(i64::from(i32::MAX) + 1);
                            count = span as usize + 1;
                            original.first_seq
                        }
                        None => next_seq,
                    },
                    SeqChoice::Gap(g) => wrap_add(next_seq, g),
                    SeqChoice::Zero => 0,
                    SeqChoice::Negative(n) => -n,
                    SeqChoice::NearMax(k) => i32::MAX - k,
                    SeqChoice::Random(r) => r,
                };
                if first_seq >= 0 {
                    next.insert(producer_id, (epoch, wrap_add(first_seq, count as i32)));
                }
                Sent {
                    producer_id,
                    epoch,
                    first_seq,
                    count,
                    transactional,
                    seed: self.seed,
                }
            })
            .collect()
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append { set, acked } => {
                let sent = self.resolve(set);
                self.append(&sent, *acked);
            }
            Op::Marker {
                producer,
                epoch,
                commit,
                acked,
            } => {
                let producer_id = MARKER_PRODUCERS[*producer];
                let current = self
                    .model
                    .producers
                    .get(&producer_id)
                    .map_or(0, |e| e.epoch.max(0));
                let marker = TxnMarker {
                    producer_id,
                    producer_epoch: pick_epoch(*epoch, current),
                    commit: *commit,
                    coordinator_epoch: 0,
                };
                self.marker(marker, *acked);
            }
            Op::Ack => {
                let end = self.log().log_end_offset();
                self.log().make_durable(end).unwrap();
                assert_eq!(self.log().high_watermark(), end);
            }
            Op::Roll => self.log().roll_now().unwrap(),
            Op::CleanReopen => {
                let log = self.log.take().unwrap();
                let end = log.close().unwrap();
                drop(log);
                self.log = Some(
                    PartitionLog::open(&self.dir, config(), RecoveryHint::clean(end)).unwrap(),
                );
            }
            Op::Crash { cut, lose_snapshot } => self.crash(*cut, *lose_snapshot),
        }
        self.history.push(self.model.clone());
        self.check();
    }

    fn append(&mut self, sent: &[Sent], acked: bool) {
        let bytes: Vec<u8> = sent.iter().flat_map(|s| s.bytes()).collect();
        let end = self.log().log_end_offset();
        let before = self.model.clone();
        let expected = self.model.append(sent);
        if matches!(expected, Outcome::Appended { .. }) {
            // A crash may keep a prefix of an unacknowledged record set:
            // each prefix of an accepted set is accepted the same way.
            for k in 1..sent.len() {
                let mut prefix = before.clone();
                prefix.append(&sent[..k]);
                self.history.push(prefix);
            }
        }
        let got = match self.log().append(&bytes) {
            Ok(outcome) if self.log().log_end_offset() == end => Outcome::Duplicate {
                base: outcome.base_offset,
                last: outcome.last_offset,
            },
            Ok(outcome) => {
                if acked {
                    self.log().make_durable(outcome.next_offset).unwrap();
                }
                Outcome::Appended {
                    base: outcome.base_offset,
                    last: outcome.last_offset,
                }
            }
            Err(error) => {
                assert_eq!(
                    self.log().log_end_offset(),
                    end,
                    "a refusal appends nothing"
                );
                Outcome::Refused(error.kafka_error_code())
            }
        };
        assert_eq!(got, expected, "append of {sent:?}");
    }

    fn marker(&mut self, marker: TxnMarker, acked: bool) {
        let expected = self.model.marker(marker);
        let got = match self.log().append_marker(marker) {
            Ok(outcome) => {
                if acked {
                    self.log().make_durable(outcome.next_offset).unwrap();
                }
                Ok(outcome.base_offset)
            }
            Err(error) => Err(error.kafka_error_code()),
        };
        assert_eq!(got, expected, "marker {marker:?}");
    }

    fn crash(&mut self, cut: f64, lose_snapshot: bool) {
        let log = self.log.take().unwrap();
        let durable = log.durable_position();
        drop(log);
        let len = std::fs::metadata(&durable.file).unwrap().len();
        let at = durable.len + ((len - durable.len) as f64 * cut) as u64;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&durable.file)
            .unwrap()
            .set_len(at)
            .unwrap();
        if lose_snapshot {
            if let Some((_, newest)) = list_snapshots(&self.dir).unwrap().pop() {
                std::fs::remove_file(newest).unwrap();
            }
        }
        let log = PartitionLog::open(&self.dir, config(), RecoveryHint::full_scan()).unwrap();
        let survived = log.log_end_offset();
        assert!(survived >= durable.offset, "the durable part survives");
        // The latest step of this run's lineage that ended there; the steps
        // after it are undone (and forgotten, so a later crash cannot go
        // back into them).
        let step = self
            .history
            .iter()
            .rposition(|m| m.end == survived)
            .unwrap_or_else(|| panic!("no step of the run ended at {survived}"));
        self.history.truncate(step + 1);
        self.model = self.history[step].clone();
        self.log = Some(log);
    }

    fn check(&self) {
        let log = self.log();
        let model = &self.model;
        assert_eq!(log.log_end_offset(), model.end);
        assert_eq!(log.open_txns(), model.open, "open transactions");
        assert_eq!(log.aborted_txns(), model.aborted, "aborted transactions");
        assert_eq!(
            log.producer_count(),
            model.producers.len(),
            "producers known"
        );
        let hw = log.high_watermark();
        assert_eq!(
            log.last_stable_offset(),
            model.last_stable_offset(hw),
            "last stable offset"
        );
        let stored = read_all(log, 0);
        let expected: Vec<&Stored> = model.log.iter().filter(|s| s.base() < hw).collect();
        assert_eq!(stored.len(), expected.len(), "batches below the hw {hw}");
        for ((base, bytes), want) in stored.iter().zip(expected) {
            match want {
                Stored::Data {
                    base: want_base,
                    bytes: want_bytes,
                } => {
                    assert_eq!(base, want_base);
                    assert_eq!(bytes, want_bytes, "batch at {base}");
                }
                Stored::Marker {
                    base: want_base,
                    marker,
                } => {
                    let header = BatchHeader::parse(bytes).unwrap();
                    assert_eq!(base, want_base);
                    assert!(header.is_control() && header.is_transactional());
                    assert_eq!(
                        (
                            header.producer_id(),
                            header.producer_epoch(),
                            header.marker_commits()
                        ),
                        (
                            marker.producer_id,
                            marker.producer_epoch,
                            Some(marker.commit)
                        ),
                        "marker at {base}"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        max_shrink_iters: 300,
        ..ProptestConfig::default()
    })]

    #[test]
    fn given_random_producer_batches_markers_reopens_and_crashes_when_run_on_a_partition_log_then_it_agrees_with_kafkas_rules(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
        }
        // Finally everything is acknowledged and survives a clean reopen.
        harness.apply(&Op::Ack);
        harness.apply(&Op::CleanReopen);
    }
}
