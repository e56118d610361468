//! The committed-offsets store: committed offsets (the next offset to read)
//! and group records (generation, protocol) kept in an internal partitioned
//! log, `__consumer_offsets`, as Kafka does.
//!
//! Invariants and why:
//! - A commit is appended and fdatasync'ed before [`OffsetStore::commit`]
//!   returns, whatever the broker's flush policy: an acknowledged commit
//!   survives any crash, so a consumer never skips what it did not process.
//! - Appends and the in-memory view change together under one lock, so the
//!   view always equals a replay of the log in order.
//! - The log stays bounded by log compaction, as Kafka's does: the internal
//!   partitions are `cleanup.policy=compact`, every record has a key (the
//!   group, or the group, topic and partition), a deleted offset or group is
//!   a tombstone, and the broker's log cleaner keeps only the latest record
//!   of each key in sealed segments. Replaying a cleaned log gives the same
//!   view as replaying the whole history, because a later record of a key
//!   always replaces an earlier one.
//! - Each group lives in one partition (a hash of its name), so its records
//!   are ordered.
//!
//! - Offsets committed inside a transaction (TxnOffsetCommit) are written
//!   at once under their own keys (`txn-offset`: producer id, group, topic,
//!   partition), durable but invisible to [`OffsetStore::fetch`]. When the
//!   transaction coordinator ends the transaction
//!   ([`OffsetStore::complete_txn`], after its prepare record is durable), one
//!   batch turns them into committed offsets (commit) and tombstones their
//!   staging keys (commit or abort). A crash between the two replays the
//!   staged offsets, and the coordinator's recovery completes the
//!   transaction again; completing twice writes nothing the second time.
//!
//! Records are Kafka record batches whose keys and values are small JSON
//! documents, readable with `sediment log dump` and `kcat`
//! (`storage::internal_log`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::basics::TopicPartition;
use crate::basics::{lock, read_lock, write_lock};
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::storage::internal_log::{
    encode_json_records, internal_log_config, make_durable, replay_json,
};
use crate::storage::log_manager::LogManager;
use crate::storage::PartitionLog;

/// Name of the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Partitions of the internal topic; groups hash onto them.
pub const OFFSETS_PARTITIONS: i32 = 8;
/// Largest segment of an internal partition: small enough that a quiet
/// group's history becomes cleanable soon (Kafka uses 100 MiB).
const SEGMENT_BYTES: u64 = 16 << 20;

/// A committed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    /// The next offset to read.
    pub offset: i64,
    /// Leader epoch the consumer saw, -1 if unknown.
    pub leader_epoch: i32,
    /// Free-form metadata from the consumer.
    pub metadata: Option<String>,
    /// When the commit arrived (ms since the epoch).
    pub commit_timestamp: i64,
}

/// What the store keeps about a group itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Last generation handed out: never goes backwards, even across restarts.
    pub generation: i32,
    /// `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// The chosen assignor, if the group has one.
    pub protocol: Option<String>,
}

/// Record key (JSON): an offset of a group's partition, or the group itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "k")]
enum Key {
    #[serde(rename = "offset")]
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    #[serde(rename = "group")]
    Group { group: String },
    #[serde(rename = "txn-offset")]
    TxnOffset {
        producer_id: i64,
        group: String,
        topic: String,
        partition: i32,
    },
}

impl Key {
    fn group(&self) -> &str {
        match self {
            Key::Offset { group, .. } | Key::Group { group } | Key::TxnOffset { group, .. } => {
                group
            }
        }
    }
}

/// Record value (JSON); a null value is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Value {
    Offset(CommittedOffset),
    Group(GroupRecord),
}

/// The live state: every key's latest value, per group.
#[derive(Debug, Default)]
struct View {
    entries: BTreeMap<Key, Value>,
    /// Staged transactional offsets per (group, topic, partition), derived
    /// from the `TxnOffset` keys of `entries` (OffsetFetch `require_stable`
    /// asks for every partition it reads).
    staged: BTreeMap<(String, String, i32), usize>,
}

/// The committed-offsets store.
pub struct OffsetStore {
    partitions: Vec<Arc<PartitionLog>>,
    view: RwLock<View>,
    /// Serialises appends with their application to the view.
    writer: Mutex<()>,
}

impl OffsetStore {
    /// The log configuration of the internal partitions: compacted by the
    /// log cleaner, no time or size retention, segments of at most
    /// [`SEGMENT_BYTES`] (fewer if the broker's are smaller).
    pub fn log_config(base: &LogConfig) -> LogConfig {
        internal_log_config(base, SEGMENT_BYTES)
    }

    /// Opens (creating if needed) the internal partitions and replays them.
    pub fn open(logs: &LogManager, base: &LogConfig) -> Result<Self, StorageError> {
        let config = Self::log_config(base);
        let mut partitions = Vec::with_capacity(OFFSETS_PARTITIONS as usize);
        for partition in 0..OFFSETS_PARTITIONS {
            let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
            partitions.push(logs.get_or_create(&tp, config.clone())?);
        }
        let mut view = View::default();
        for log in &partitions {
            replay_json(log, "committed-offsets", |key, value| {
                view.apply(key, value)
            })?;
        }
        tracing::info!(
            groups = view.groups().len(),
            keys = view.entries.len(),
            "committed offsets loaded"
        );
        Ok(Self {
            partitions,
            view: RwLock::new(view),
            writer: Mutex::new(()),
        })
    }

    /// Commits offsets for `group`; durable when it returns.
    pub async fn commit(
        &self,
        group: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), StorageError> {
        let records = offsets
            .into_iter()
            .map(|(topic, partition, offset)| {
                (
                    Key::Offset {
                        group: group.to_string(),
                        topic,
                        partition,
                    },
                    Some(Value::Offset(offset)),
                )
            })
            .collect();
        self.write(group, records).await
    }

    /// The committed offset of one partition.
    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        let key = Key::Offset {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        };
        match read_lock(&self.view).entries.get(&key) {
            Some(Value::Offset(offset)) => Some(offset.clone()),
            _ => None,
        }
    }

    /// Every committed offset of a group.
    pub fn group_offsets(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        read_lock(&self.view)
            .entries
            .iter()
            .filter_map(|(key, value)| match (key, value) {
                (
                    Key::Offset {
                        group: g,
                        topic,
                        partition,
                    },
                    Value::Offset(offset),
                ) if g == group => Some((topic.clone(), *partition, offset.clone())),
                _ => None,
            })
            .collect()
    }

    /// Every committed offset of every group, as `(group, topic, partition,
    /// offset)`, under one read of the view (the metrics endpoint's lag).
    pub fn all_offsets(&self) -> Vec<(String, String, i32, i64)> {
        read_lock(&self.view)
            .entries
            .iter()
            .filter_map(|(key, value)| match (key, value) {
                (
                    Key::Offset {
                        group,
                        topic,
                        partition,
                    },
                    Value::Offset(offset),
                ) => Some((group.clone(), topic.clone(), *partition, offset.offset)),
                _ => None,
            })
            .collect()
    }

    /// Records a group's generation and protocol; durable when it returns.
    pub async fn save_group(&self, group: &str, record: GroupRecord) -> Result<(), StorageError> {
        let key = Key::Group {
            group: group.to_string(),
        };
        self.write(group, vec![(key, Some(Value::Group(record)))])
            .await
    }

    /// What is recorded about a group.
    pub fn group(&self, group: &str) -> Option<GroupRecord> {
        let key = Key::Group {
            group: group.to_string(),
        };
        match read_lock(&self.view).entries.get(&key) {
            Some(Value::Group(record)) => Some(record.clone()),
            _ => None,
        }
    }

    /// Every group with a record or committed offsets.
    pub fn groups(&self) -> Vec<String> {
        read_lock(&self.view).groups()
    }

    /// Forgets a group: tombstones for its record and every offset; durable.
    pub async fn delete_group(&self, group: &str) -> Result<(), StorageError> {
        let keys: Vec<Key> = read_lock(&self.view)
            .entries
            .keys()
            .filter(|k| k.group() == group)
            .cloned()
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.write(group, keys.into_iter().map(|k| (k, None)).collect())
            .await
    }

    /// Forgets some of a group's committed offsets (OffsetDelete): a
    /// tombstone for each of `partitions` that has one; durable when it
    /// returns. Partitions without a committed offset need nothing written.
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), StorageError> {
        let keys: Vec<Key> = {
            let view = read_lock(&self.view);
            partitions
                .iter()
                .map(|(topic, partition)| Key::Offset {
                    group: group.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                })
                .filter(|key| view.entries.contains_key(key))
                .collect::<BTreeSet<Key>>()
                .into_iter()
                .collect()
        };
        self.write(group, keys.into_iter().map(|k| (k, None)).collect())
            .await
    }

    /// Stages offsets committed inside producer `producer_id`'s transaction
    /// (TxnOffsetCommit): durable when it returns, visible to
    /// [`OffsetStore::fetch`] only once [`OffsetStore::complete_txn`] commits.
    pub async fn stage_txn_offsets(
        &self,
        producer_id: i64,
        group: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), StorageError> {
        let records = offsets
            .into_iter()
            .map(|(topic, partition, offset)| {
                (
                    Key::TxnOffset {
                        producer_id,
                        group: group.to_string(),
                        topic,
                        partition,
                    },
                    Some(Value::Offset(offset)),
                )
            })
            .collect();
        self.write(group, records).await
    }

    /// Whether a transaction holds uncommitted offsets for this partition
    /// of `group` (OffsetFetch with `require_stable` answers
    /// UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        read_lock(&self.view).staged.contains_key(&(
            group.to_string(),
            topic.to_string(),
            partition,
        ))
    }

    /// Ends producer `producer_id`'s transaction for `group`: on commit its
    /// staged offsets become committed offsets; either way the staging keys
    /// are tombstoned. Durable when it returns; nothing is written when
    /// nothing is staged (a second completion).
    pub async fn complete_txn(
        &self,
        producer_id: i64,
        group: &str,
        commit: bool,
    ) -> Result<(), StorageError> {
        // Staging keys sort by producer id, then group: one range holds them.
        let first = Key::TxnOffset {
            producer_id,
            group: group.to_string(),
            topic: String::new(),
            partition: i32::MIN,
        };
        let staged: Vec<(Key, Value)> = read_lock(&self.view)
            .entries
            .range(first..)
            .take_while(|(key, _)| {
                matches!(key, Key::TxnOffset { producer_id: id, group: g, .. }
                    if *id == producer_id && g == group)
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let mut records = Vec::with_capacity(staged.len() * 2);
        for (key, value) in staged {
            if let (
                true,
                Key::TxnOffset {
                    group,
                    topic,
                    partition,
                    ..
                },
            ) = (commit, &key)
            {
                let committed = Key::Offset {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                records.push((committed, Some(value)));
            }
            records.push((key, None));
        }
        self.write(group, records).await
    }

    /// Bytes held by the internal log (for tests and operators).
    pub fn log_size_bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.size_bytes()).sum()
    }

    /// Appends records for one group, applies them, and waits for durability.
    async fn write(
        &self,
        group: &str,
        records: Vec<(Key, Option<Value>)>,
    ) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let index = self.partition_index(group);
        let log = Arc::clone(&self.partitions[index]);
        let next_offset = {
            let _writer = lock(&self.writer);
            let batch = encode_json_records(OFFSETS_TOPIC, &records)?;
            let outcome = log.append(&batch)?;
            let mut view = write_lock(&self.view);
            for (key, value) in records {
                view.apply(key, value);
            }
            outcome.next_offset
        };
        make_durable(&log, next_offset).await
    }

    /// The partition a group's records live in.
    fn partition_index(&self, group: &str) -> usize {
        crc32fast::hash(group.as_bytes()) as usize % self.partitions.len()
    }
}

impl View {
    fn apply(&mut self, key: Key, value: Option<Value>) {
        let staged_at = match &key {
            Key::TxnOffset {
                group,
                topic,
                partition,
                ..
            } => Some((group.clone(), topic.clone(), *partition)),
            _ => None,
        };
        let present = value.is_some();
        let was_present = match value {
            Some(value) => self.entries.insert(key, value).is_some(),
            None => self.entries.remove(&key).is_some(),
        };
        let Some(at) = staged_at else { return };
        if present && !was_present {
            *self.staged.entry(at).or_default() += 1;
        } else if !present && was_present {
            if let Some(count) = self.staged.get_mut(&at) {
                *count -= 1;
                if *count == 0 {
                    self.staged.remove(&at);
                }
            }
        }
    }

    fn groups(&self) -> Vec<String> {
        // Keys of one group are not adjacent across key kinds: a set, not dedup.
        self.entries
            .keys()
            .map(|k| k.group().to_string())
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp: 1,
        }
    }

    fn open(dir: &std::path::Path) -> (LogManager, OffsetStore) {
        let logs = LogManager::open(dir, LogConfig::default(), |_| {
            OffsetStore::log_config(&LogConfig::default())
        })
        .unwrap();
        let store = OffsetStore::open(&logs, &LogConfig::default()).unwrap();
        (logs, store)
    }

    #[tokio::test]
    async fn given_staged_transactional_offsets_when_completed_or_reopened_then_visible_only_after_commit(
    ) {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_logs, store) = open(dir.path());
            store
                .commit("g", vec![("t".into(), 0, committed(1))])
                .await
                .unwrap();
            store
                .stage_txn_offsets(7, "g", vec![("t".into(), 0, committed(5))])
                .await
                .unwrap();
            store
                .stage_txn_offsets(8, "g", vec![("t".into(), 1, committed(6))])
                .await
                .unwrap();
            assert_eq!(
                store.groups(),
                vec!["g".to_string()],
                "one group, listed once"
            );
            assert!(store.has_pending_txn_offset("g", "t", 0));
            assert_eq!(store.fetch("g", "t", 0).unwrap().offset, 1);
            store.complete_txn(7, "g", true).await.unwrap();
            assert!(!store.has_pending_txn_offset("g", "t", 0));
            assert_eq!(store.fetch("g", "t", 0).unwrap().offset, 5);
        }
        // Producer 8's staged offset survives a restart, and its abort drops it.
        let (_logs, store) = open(dir.path());
        assert!(store.has_pending_txn_offset("g", "t", 1));
        store.complete_txn(8, "g", false).await.unwrap();
        assert!(!store.has_pending_txn_offset("g", "t", 1));
        assert_eq!(store.fetch("g", "t", 1), None);
        assert_eq!(store.fetch("g", "t", 0).unwrap().offset, 5);
    }

    #[tokio::test]
    async fn given_commits_when_reopened_then_latest_offsets_and_generations_replay_exactly() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_logs, store) = open(dir.path());
            store
                .commit(
                    "g1",
                    vec![("t".into(), 0, committed(5)), ("t".into(), 1, committed(7))],
                )
                .await
                .unwrap();
            store
                .commit("g1", vec![("t".into(), 0, committed(9))])
                .await
                .unwrap();
            store
                .commit("g2", vec![("t".into(), 0, committed(3))])
                .await
                .unwrap();
            store
                .save_group(
                    "g1",
                    GroupRecord {
                        generation: 4,
                        protocol_type: "consumer".into(),
                        protocol: Some("range".into()),
                    },
                )
                .await
                .unwrap();
            store.delete_group("g2").await.unwrap();
        }
        let (_logs, store) = open(dir.path());
        assert_eq!(store.fetch("g1", "t", 0).map(|c| c.offset), Some(9));
        assert_eq!(store.fetch("g1", "t", 1).map(|c| c.offset), Some(7));
        assert_eq!(store.fetch("g2", "t", 0), None);
        assert_eq!(store.group("g1").map(|g| g.generation), Some(4));
        assert_eq!(store.groups(), vec!["g1".to_string()]);
        assert_eq!(store.group_offsets("g1").len(), 2);
    }

    #[tokio::test]
    async fn given_deleted_offsets_when_reopened_then_only_the_others_remain() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_logs, store) = open(dir.path());
            store
                .commit(
                    "g",
                    vec![
                        ("t".into(), 0, committed(5)),
                        ("t".into(), 1, committed(7)),
                        ("u".into(), 0, committed(9)),
                    ],
                )
                .await
                .unwrap();
            store
                .delete_offsets("g", &[("t".into(), 0), ("t".into(), 0), ("t".into(), 9)])
                .await
                .unwrap();
            assert_eq!(store.fetch("g", "t", 0), None);
        }
        let (_logs, store) = open(dir.path());
        assert_eq!(store.fetch("g", "t", 0), None);
        assert_eq!(store.fetch("g", "t", 1).map(|c| c.offset), Some(7));
        assert_eq!(store.fetch("g", "u", 0).map(|c| c.offset), Some(9));
    }

    #[tokio::test]
    async fn given_endless_commits_then_the_cleaner_keeps_the_log_bounded_and_it_replays_the_last()
    {
        // A group committing 40 partitions every 100 ms writes 864,000 commits
        // a day. With 256 KiB segments, 1,000 of them (40,000 records, ~6 MB)
        // seal many segments; the cleaner keeps the latest commit per
        // partition, which is what keeps a day bounded too.
        let dir = tempfile::tempdir().unwrap();
        let commits = 1000;
        let small = LogConfig {
            segment_bytes: 256 << 10,
            ..LogConfig::default()
        };
        {
            let logs = LogManager::open(dir.path(), small.clone(), |_| {
                OffsetStore::log_config(&small)
            })
            .unwrap();
            let store = OffsetStore::open(&logs, &small).unwrap();
            for i in 0..commits {
                store
                    .commit(
                        "busy",
                        (0..40)
                            .map(|p| ("orders".to_string(), p, committed(i64::from(i))))
                            .collect(),
                    )
                    .await
                    .unwrap();
            }
            let written = store.log_size_bytes();
            assert!(
                written > 2 << 20,
                "{written} bytes: the test writes enough to clean"
            );
            let cleaned = logs.clean_due_partitions(crate::basics::now_ms());
            assert!(!cleaned.is_empty(), "the busy partition was due");
            assert!(
                store.log_size_bytes() < 512 << 10,
                "{} bytes after {commits} commits",
                store.log_size_bytes()
            );
        }
        let (_logs, store) = open(dir.path());
        for p in 0..40 {
            assert_eq!(
                store.fetch("busy", "orders", p).map(|c| c.offset),
                Some(i64::from(commits - 1))
            );
        }
    }
}
