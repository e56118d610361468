//! Idempotent-producer state of one partition: for each producer id its
//! epoch and the last [`MAX_BATCHES_PER_PRODUCER`] batches' sequences and
//! offsets, Kafka's `ProducerStateManager` / `ProducerAppendInfo` rules.
//!
//! The table ([`ProducerStateTable`]) is a pure structure: an append is
//! checked with [`ProducerStateTable::check`], which decides without changing
//! anything and hands back either the original offsets of a duplicate or the
//! update to [`ProducerStateTable::commit`] once the batches are written. The
//! partition log does both under its writer lock, so a check and its update
//! are atomic with the append.
//!
//! Invariants (Kafka's, decided the way `ProducerAppendInfo.checkSequence`
//! decides them):
//! - A batch is idempotent when its header carries `producer_id >= 0` and
//!   `base_sequence >= 0`; other batches are neither checked nor recorded.
//! - A retry of one of the last 5 batches of a producer (same epoch, same
//!   first and last sequence) is a duplicate: nothing of the record set is
//!   appended and the append answers with the original offsets.
//! - An epoch older than the producer's current one is refused
//!   ([`StorageError::InvalidProducerEpoch`]). A newer epoch replaces the
//!   producer's state and must start at sequence 0, unless the producer is
//!   unknown. Within an epoch the next first sequence is the last one + 1,
//!   wrapping from `i32::MAX` to 0; anything else is
//!   [`StorageError::OutOfOrderSequence`]. An unknown producer (never seen,
//!   expired, or its batches deleted) may start at any sequence.
//! - A record set is checked whole before any of it is written: one refused
//!   batch refuses the set.
//!
//! Durability: [`write_snapshot`] writes the table as `<offset>.snapshot`
//! (checksummed, atomic: temp file, fdatasync, rename) at segment rolls and
//! at clean close; the state then covers every batch below `offset`. On open
//! the newest believable snapshot at or below the log end is loaded and the
//! batches from its offset on are replayed from the segments' headers
//! ([`ProducerStateTable::replay`]), so a kill -9 at any instant loses
//! nothing that is in the log: a crash mid-snapshot leaves a `.tmp` that
//! recovery removes and the previous snapshot, and the batches past that
//! are replayed. A snapshot is only a cache of what the log says.
//!
//! Transactions (Kafka's ongoing-transaction tracking): the first batch of a
//! transactional producer after its last marker opens its transaction at
//! that batch's offset; a control batch (commit or abort marker, written by
//! the transaction coordinator through [`ProducerStateTable::check_marker`]
//! and [`ProducerStateTable::complete_txn`]) closes it, and an abort yields
//! the [`AbortedTxn`] entry for the partition's `.txnindex`. The smallest
//! open first offset is the partition's first unstable offset, which bounds
//! its last stable offset. Open transactions are part of the snapshot, so a
//! replay from it reopens them. A client may not write control batches, and
//! a transactional batch must be idempotent ([`StorageError::InvalidRecord`]).
//! A producer with an open transaction never expires.
//!
//! Expiry uses the broker's clock at append (never record timestamps, which
//! a client controls): a producer idle `producer_id_expiration_ms` is
//! forgotten, so its next batch is accepted at any sequence, as in Kafka.
//! Producers replayed from the log at open count as active at the open.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::storage::batch::{BatchHeader, BatchIter};
use crate::storage::checkpoint::{read_checksummed, write_checksummed};
use crate::storage::encode::TxnMarker;
use crate::storage::txn_index::AbortedTxn;

/// Batches remembered per producer for duplicate detection (Kafka's
/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`, the most in-flight requests an
/// idempotent producer may have).
pub const MAX_BATCHES_PER_PRODUCER: usize = 5;

/// File extension of producer-state snapshots.
pub const SNAPSHOT_EXT: &str = "snapshot";

/// First line of a snapshot's payload.
const SNAPSHOT_MAGIC: &str = "sediment-producer-state-v2";
/// First line of a snapshot written before transactions (no `txn` lines).
const SNAPSHOT_MAGIC_V1: &str = "sediment-producer-state-v1";

/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
const NO_EPOCH: i16 = -1;

/// What was stored of one idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// Sequence of the batch's first record.
    pub first_seq: i32,
    /// Sequence of the batch's last record.
    pub last_seq: i32,
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of the batch's last record.
    pub last_offset: i64,
    /// The batch's max timestamp as stored (the broker's clock on a
    /// LogAppendTime topic): a duplicate's `log_append_time_ms`.
    pub timestamp: i64,
}

/// One producer's state in the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Current epoch.
    pub epoch: i16,
    /// The last batches of `epoch`, oldest first, at most
    /// [`MAX_BATCHES_PER_PRODUCER`].
    pub batches: VecDeque<BatchMeta>,
    /// Broker clock (ms) at the producer's last append: expiry runs on it.
    pub last_append_ms: i64,
}

impl ProducerEntry {
    fn last_seq(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_seq)
    }

    /// Records a batch: a new epoch forgets the old epoch's batches.
    fn push(&mut self, epoch: i16, meta: BatchMeta, now_ms: i64) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        self.batches.push_back(meta);
        while self.batches.len() > MAX_BATCHES_PER_PRODUCER {
            self.batches.pop_front();
        }
        self.last_append_ms = self.last_append_ms.max(now_ms);
    }
}

/// The idempotence fields of a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Idempotent {
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
}

impl Idempotent {
    fn of(header: &BatchHeader<'_>) -> Option<Self> {
        let (producer_id, first_seq) = (header.producer_id(), header.base_sequence());
        (producer_id >= 0 && first_seq >= 0).then(|| Self {
            producer_id,
            epoch: header.producer_epoch(),
            first_seq,
            last_seq: increment_sequence(first_seq, header.last_offset_delta()),
        })
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from
/// `i32::MAX` to 0.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Kafka's `ProducerAppendInfo.inSequence`.
fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    i64::from(next_seq) == i64::from(last_seq) + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// What [`ProducerStateTable::check`] decided for a record set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Append the set, then [`ProducerStateTable::commit`] this update.
    Append(ProducerUpdate),
    /// The set retries a batch already stored: append nothing and answer
    /// with these offsets.
    Duplicate(BatchMeta),
}

/// The entries an append replaces once its batches are written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerUpdate {
    entries: BTreeMap<i64, ProducerEntry>,
    /// Transactions the append opens: producer id → first offset.
    opened: BTreeMap<i64, i64>,
}

/// The producer state of one partition. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerStateTable {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Open transactions: producer id → offset of its first batch.
    open_txns: BTreeMap<i64, i64>,
}

impl ProducerStateTable {
    /// Producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The state of `producer_id`, if known.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// The first offset of the oldest open transaction: nothing at or past
    /// it is stable.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open_txns.values().min().copied()
    }

    /// Open transactions: producer id → first offset.
    pub fn open_txns(&self) -> &BTreeMap<i64, i64> {
        &self.open_txns
    }

    /// Checks that the coordinator may end `marker.producer_id`'s
    /// transaction: its epoch must not be older than the producer's.
    pub fn check_marker(&self, marker: &TxnMarker) -> Result<(), StorageError> {
        match self.producers.get(&marker.producer_id) {
            Some(entry) if marker.producer_epoch < entry.epoch => {
                Err(StorageError::InvalidProducerEpoch {
                    position: 0,
                    producer_id: marker.producer_id,
                    epoch: marker.producer_epoch,
                    current_epoch: entry.epoch,
                })
            }
            _ => Ok(()),
        }
    }

    /// Applies a marker written at `offset`: the producer moves to the
    /// marker's epoch and its open transaction (if any) closes. Returns the
    /// aborted-transaction entry when an open transaction was aborted.
    pub fn complete_txn(
        &mut self,
        marker: &TxnMarker,
        offset: i64,
        now_ms: i64,
    ) -> Option<AbortedTxn> {
        let entry = self
            .producers
            .entry(marker.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: marker.producer_epoch,
                batches: VecDeque::new(),
                last_append_ms: now_ms,
            });
        if marker.producer_epoch > entry.epoch {
            entry.epoch = marker.producer_epoch;
            entry.batches.clear();
        }
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        let first_offset = self.open_txns.remove(&marker.producer_id)?;
        (!marker.commit).then(|| AbortedTxn {
            producer_id: marker.producer_id,
            first_offset,
            last_offset: offset,
            last_stable_offset: self.first_unstable_offset().unwrap_or(offset + 1),
        })
    }

    /// Checks a validated record set that would be appended at
    /// `base_offset`, without changing the table. `stamp_ms` is the time a
    /// LogAppendTime append stamps on its batches (`None` on CreateTime), and
    /// `now_ms` the broker clock.
    pub fn check(
        &self,
        batches: &[BatchHeader<'_>],
        base_offset: i64,
        stamp_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Checked, StorageError> {
        let mut update = ProducerUpdate::default();
        let mut offset = base_offset;
        let mut position = 0;
        for batch in batches {
            let batch_base = offset;
            offset += i64::from(batch.last_offset_delta()) + 1;
            let at = position;
            position += batch.total_len();
            if batch.is_control() {
                return Err(StorageError::InvalidRecord {
                    position: at,
                    reason: "a client may not write control batches (transaction markers)".into(),
                });
            }
            let Some(id) = Idempotent::of(batch) else {
                if batch.is_transactional() {
                    return Err(StorageError::InvalidRecord {
                        position: at,
                        reason: "a transactional batch needs a producer id and sequence".into(),
                    });
                }
                continue;
            };
            let current = self.producers.get(&id.producer_id);
            // Kafka looks for a duplicate in the stored state before
            // anything else, and answers the whole set with it.
            if let Some(original) = current.and_then(|entry| {
                (entry.epoch == id.epoch).then_some(())?;
                entry
                    .batches
                    .iter()
                    .find(|b| b.first_seq == id.first_seq && b.last_seq == id.last_seq)
            }) {
                return Ok(Checked::Duplicate(*original));
            }
            let current_epoch = current.map_or(NO_EPOCH, |entry| entry.epoch);
            let updated = update.entries.entry(id.producer_id).or_insert_with(|| {
                current.cloned().unwrap_or(ProducerEntry {
                    epoch: NO_EPOCH,
                    batches: VecDeque::new(),
                    last_append_ms: now_ms,
                })
            });
            if id.epoch < updated.epoch {
                return Err(StorageError::InvalidProducerEpoch {
                    position: at,
                    producer_id: id.producer_id,
                    epoch: id.epoch,
                    current_epoch: updated.epoch,
                });
            }
            if id.epoch != updated.epoch {
                if id.first_seq != 0 && updated.epoch != NO_EPOCH {
                    return Err(StorageError::OutOfOrderSequence {
                        position: at,
                        producer_id: id.producer_id,
                        epoch: id.epoch,
                        first_seq: id.first_seq,
                        last_seq: -1,
                    });
                }
            } else {
                // If there is no current epoch (the producer is unknown:
                // never seen, expired or deleted) any sequence is accepted.
                let last_seq = updated.last_seq();
                if current_epoch != NO_EPOCH && !in_sequence(last_seq, id.first_seq) {
                    return Err(StorageError::OutOfOrderSequence {
                        position: at,
                        producer_id: id.producer_id,
                        epoch: id.epoch,
                        first_seq: id.first_seq,
                        last_seq,
                    });
                }
            }
            let meta = BatchMeta {
                first_seq: id.first_seq,
                last_seq: id.last_seq,
                base_offset: batch_base,
                last_offset: offset - 1,
                timestamp: stamp_ms.unwrap_or_else(|| batch.max_timestamp()),
            };
            if !batch.is_transactional() && self.open_txns.contains_key(&id.producer_id) {
                return Err(StorageError::InvalidTxnState {
                    position: at,
                    producer_id: id.producer_id,
                });
            }
            updated.push(id.epoch, meta, now_ms);
            if batch.is_transactional() && !self.open_txns.contains_key(&id.producer_id) {
                update.opened.entry(id.producer_id).or_insert(batch_base);
            }
        }
        Ok(Checked::Append(update))
    }

    /// Applies what [`ProducerStateTable::check`] decided, once the batches
    /// are written.
    pub fn commit(&mut self, update: ProducerUpdate) {
        self.producers.extend(update.entries);
        self.open_txns.extend(update.opened);
    }

    /// Records a batch read back from the log (after a snapshot, on open),
    /// without checks: what is in the log was accepted when it was written.
    /// Returns the aborted-transaction entry an abort marker yields.
    pub fn replay(&mut self, batch: &BatchHeader<'_>, now_ms: i64) -> Option<AbortedTxn> {
        if batch.is_control() {
            let commit = batch.marker_commits()?;
            let marker = TxnMarker {
                producer_id: batch.producer_id(),
                producer_epoch: batch.producer_epoch(),
                commit,
                coordinator_epoch: 0,
            };
            return self.complete_txn(&marker, batch.base_offset(), now_ms);
        }
        let id = Idempotent::of(batch)?;
        if batch.is_transactional() {
            self.open_txns
                .entry(id.producer_id)
                .or_insert(batch.base_offset());
        }
        let entry = self
            .producers
            .entry(id.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: id.epoch,
                batches: VecDeque::new(),
                last_append_ms: now_ms,
            });
        // An older epoch in the log would be a zombie's batch accepted
        // before the fence was known here; it does not roll the epoch back.
        if id.epoch < entry.epoch {
            return None;
        }
        entry.push(
            id.epoch,
            BatchMeta {
                first_seq: id.first_seq,
                last_seq: id.last_seq,
                base_offset: batch.base_offset(),
                last_offset: batch.last_offset(),
                timestamp: batch.max_timestamp(),
            },
            now_ms,
        );
        None
    }

    /// Forgets producers idle for `expiration_ms` or longer at `now_ms`
    /// (Kafka's `removeExpiredProducers`). Returns how many were removed.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        let open = &self.open_txns;
        self.producers.retain(|id, entry| {
            open.contains_key(id) || now_ms.saturating_sub(entry.last_append_ms) < expiration_ms
        });
        before - self.producers.len()
    }

    /// The snapshot payload: a magic line, then one line per producer:
    /// `id epoch last_append_ms first:last:base:last_offset:timestamp ...`,
    /// then one line per open transaction: `txn producer_id first_offset`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{SNAPSHOT_MAGIC}\n");
        for (id, entry) in &self.producers {
            out.push_str(&format!("{id} {} {}", entry.epoch, entry.last_append_ms));
            for b in &entry.batches {
                out.push_str(&format!(
                    " {}:{}:{}:{}:{}",
                    b.first_seq, b.last_seq, b.base_offset, b.last_offset, b.timestamp
                ));
            }
            out.push('\n');
        }
        for (id, first) in &self.open_txns {
            out.push_str(&format!("txn {id} {first}\n"));
        }
        out.into_bytes()
    }

    /// Parses [`ProducerStateTable::encode`]'s payload; `None` if it is not one.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut lines = text.lines();
        let magic = lines.next()?;
        if magic != SNAPSHOT_MAGIC && magic != SNAPSHOT_MAGIC_V1 {
            return None;
        }
        let mut table = Self::default();
        for line in lines.filter(|l| !l.is_empty()) {
            if let Some(txn) = line.strip_prefix("txn ") {
                let (id, first) = txn.split_once(' ')?;
                let (id, first) = (id.parse::<i64>().ok()?, first.parse::<i64>().ok()?);
                if id < 0 || first < 0 {
                    return None;
                }
                table.open_txns.insert(id, first);
                continue;
            }
            let mut words = line.split(' ');
            let id: i64 = words.next()?.parse().ok()?;
            let epoch: i16 = words.next()?.parse().ok()?;
            let last_append_ms: i64 = words.next()?.parse().ok()?;
            let mut batches = VecDeque::new();
            for word in words {
                let mut parts = word.split(':');
                let mut next = || parts.next().and_then(|p| p.parse::<i64>().ok());
                let (first, last, base, last_offset, timestamp) =
                    (next()?, next()?, next()?, next()?, next()?);
                batches.push_back(BatchMeta {
                    first_seq: i32::try_from(first).ok()?,
                    last_seq: i32::try_from(last).ok()?,
                    base_offset: base,
                    last_offset,
                    timestamp,
                });
            }
            if id < 0 || batches.len() > MAX_BATCHES_PER_PRODUCER {
                return None;
            }
            table.producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_append_ms,
                },
            );
        }
        Some(table)
    }
}

/// The snapshot file for state covering every batch below `offset`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{SNAPSHOT_EXT}"))
}

/// The snapshots in `dir`, by offset, oldest first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))? {
        let path = entry.map_err(|e| StorageError::io("list", dir, e))?.path();
        let offset = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(&format!(".{SNAPSHOT_EXT}")))
            .and_then(|stem| stem.parse::<i64>().ok());
        if let Some(offset) = offset {
            found.push((offset, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Writes `table` as the snapshot at `offset` (atomically, checksummed).
pub fn write_snapshot(
    dir: &Path,
    offset: i64,
    table: &ProducerStateTable,
) -> Result<(), StorageError> {
    let path = snapshot_path(dir, offset);
    write_checksummed(&path, &table.encode()).map_err(|e| StorageError::io("write", &path, e))
}

/// Deletes the snapshots outside `[keep_from, keep_to]`: those below the
/// oldest segment kept are of no use (the batches after them are gone), and
/// those past the log end describe batches recovery cut. Returns how many
/// were deleted. The caller syncs the directory if it needs the deletions durable.
pub fn delete_snapshots_outside(
    dir: &Path,
    keep_from: i64,
    keep_to: i64,
) -> Result<usize, StorageError> {
    let mut deleted = 0;
    for (offset, path) in list_snapshots(dir)? {
        if offset < keep_from || offset > keep_to {
            match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("remove", &path, e)),
            }
        }
    }
    Ok(deleted)
}

/// Rebuilds a partition's producer state on open: the newest believable
/// snapshot at or below `log_end` (a damaged one is logged and the next
/// older tried), then every batch from its offset to `log_end` read from
/// `segments` (`(base_offset, .log path)`, oldest first), with the aborted
/// transactions whose markers that replay met. Reading batch headers (and
/// a marker's one record) is enough; the log was validated by recovery.
pub fn rebuild(
    partition: &str,
    dir: &Path,
    segments: &[(i64, PathBuf)],
    log_end: i64,
    now_ms: i64,
) -> Result<(ProducerStateTable, Vec<AbortedTxn>), StorageError> {
    let mut aborted = Vec::new();
    let first_base = segments.first().map_or(0, |(base, _)| *base);
    let mut table = ProducerStateTable::default();
    let mut from = first_base;
    for (offset, path) in list_snapshots(dir)?.into_iter().rev() {
        if offset > log_end || offset < first_base {
            continue;
        }
        let loaded = match read_checksummed(&path) {
            Ok(Some(payload)) => ProducerStateTable::decode(&payload)
                .ok_or_else(|| "not a producer-state snapshot".to_string()),
            Ok(None) => Err("vanished".to_string()),
            Err(error) => Err(error.to_string()),
        };
        match loaded {
            Ok(loaded) => {
                table = loaded;
                from = offset;
                break;
            }
            Err(reason) => {
                tracing::warn!(partition, snapshot = %path.display(), %reason, "ignoring a producer-state snapshot: an older one and the log rebuild the state");
            }
        }
    }
    for (i, (base, path)) in segments.iter().enumerate() {
        let next_base = segments.get(i + 1).map_or(i64::MAX, |(b, _)| *b);
        if next_base <= from || *base >= log_end {
            continue;
        }
        let Some(map) = crate::storage::recovery::map_read_only(path)? else {
            continue;
        };
        for item in BatchIter::headers(&map) {
            // Recovery validated the log; a header it did not accept (a
            // zero-filled tail) ends the segment.
            let Ok((_, header)) = item else {
                break;
            };
            if header.base_offset() >= log_end {
                break;
            }
            if header.last_offset() >= from {
                aborted.extend(table.replay(&header, now_ms));
            }
        }
    }
    Ok((table, aborted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_from_max_to_zero() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 4), 9);
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
    }

    #[test]
    fn a_snapshot_payload_round_trips_and_garbage_is_refused() {
        let mut table = ProducerStateTable::default();
        let mut entry = ProducerEntry {
            epoch: 3,
            batches: VecDeque::new(),
            last_append_ms: 42,
        };
        for i in 0..7 {
            entry.push(
                3,
                BatchMeta {
                    first_seq: i * 2,
                    last_seq: i * 2 + 1,
                    base_offset: i64::from(i) * 2,
                    last_offset: i64::from(i) * 2 + 1,
                    timestamp: -1,
                },
                42,
            );
        }
        assert_eq!(entry.batches.len(), MAX_BATCHES_PER_PRODUCER);
        table.producers.insert(9, entry);
        let decoded = ProducerStateTable::decode(&table.encode());
        assert_eq!(decoded, Some(table));
        assert_eq!(ProducerStateTable::decode(b"nonsense\n1 2 3"), None);
        assert_eq!(
            ProducerStateTable::decode(format!("{SNAPSHOT_MAGIC}\n1 x 3\n").as_bytes()),
            None
        );
    }

    #[test]
    fn idle_producers_expire_and_active_ones_stay() {
        let mut table = ProducerStateTable::default();
        for (id, at) in [(1, 100), (2, 1_000)] {
            table.producers.insert(
                id,
                ProducerEntry {
                    epoch: 0,
                    batches: VecDeque::new(),
                    last_append_ms: at,
                },
            );
        }
        assert_eq!(table.expire(1_100, 1_000), 1);
        assert!(table.get(1).is_none());
        assert!(table.get(2).is_some());
    }
}
