//! Topic metadata: names, ids, partition counts and per-topic config
//! overrides, persisted in `DATA/meta/topics.json` (checksummed, written
//! atomically) so topics survive restarts.
//!
//! Per-topic configs follow Kafka's names. Only what Sediment implements is
//! accepted; anything else is refused with a message, never silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::basics::{read_lock, write_lock};
use crate::config::LogConfig;
use crate::group::offsets::OFFSETS_TOPIC;
use crate::storage::checkpoint::{read_checksummed, write_checksummed};
use crate::storage::log_manager::META_DIR;
use crate::txn::log::TXN_TOPIC;

/// The broker's own internal topics: their partitions are written only by
/// the coordinators, so clients may neither create nor produce to them (as
/// Kafka refuses appends to internal topics).
pub const INTERNAL_TOPICS: [&str; 2] = [OFFSETS_TOPIC, TXN_TOPIC];

/// File under `DATA/meta` holding topic metadata.
pub const TOPICS_FILE: &str = "topics.json";

/// `retention.ms`
pub const RETENTION_MS: &str = "retention.ms";
/// `retention.bytes`
pub const RETENTION_BYTES: &str = "retention.bytes";
/// `segment.bytes`
pub const SEGMENT_BYTES: &str = "segment.bytes";
/// `segment.ms`
pub const SEGMENT_MS: &str = "segment.ms";
/// `cleanup.policy`
pub const CLEANUP_POLICY: &str = "cleanup.policy";
/// `max.message.bytes`
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
/// `message.timestamp.type`: `CreateTime` (default) or `LogAppendTime`.
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
/// `message.timestamp.before.max.ms`: how far behind the broker's clock a CreateTime timestamp may be.
pub const MESSAGE_TIMESTAMP_BEFORE_MAX_MS: &str = "message.timestamp.before.max.ms";
/// `message.timestamp.after.max.ms`: how far ahead of the broker's clock a CreateTime timestamp may be.
pub const MESSAGE_TIMESTAMP_AFTER_MAX_MS: &str = "message.timestamp.after.max.ms";

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Topic name.
    pub name: String,
    /// Topic id (a random UUID, as Kafka assigns), as 16 bytes.
    pub id: [u8; 16],
    /// Number of partitions.
    pub partitions: i32,
    /// Config overrides set at creation (`retention.ms` → `3600000`, …).
    pub configs: BTreeMap<String, String>,
}

/// Errors of topic metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The metadata file could not be read or written.
    #[error("topic metadata {path}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A topic config is unknown or has a bad value.
    #[error("invalid config {key}={value}: {reason}")]
    InvalidConfig {
        /// Config name.
        key: String,
        /// Given value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The name is not a valid Kafka topic name.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Checks a topic name as Kafka does: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let invalid = |reason: &str| TopicError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() || name.len() > 249 {
        return Err(invalid("must be 1 to 249 characters"));
    }
    if name == "." || name == ".." {
        return Err(invalid("cannot be '.' or '..'"));
    }
    if INTERNAL_TOPICS.contains(&name) {
        return Err(invalid("is an internal topic of the broker"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(invalid(
            "may only contain ASCII letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

/// Applies topic config overrides to the broker's log defaults, refusing
/// unknown keys and bad values (the table is `crate::topic_config`).
/// `max.message.bytes` is checked here but enforced by the produce path.
pub fn topic_log_config(
    base: &LogConfig,
    configs: &BTreeMap<String, String>,
) -> Result<LogConfig, TopicError> {
    crate::topic_config::apply_topic_configs(base, configs).map_err(|invalid| {
        TopicError::InvalidConfig {
            key: invalid.key,
            value: invalid.value,
            reason: invalid.reason,
        }
    })
}

/// The topics of a data directory.
pub struct TopicRegistry {
    path: PathBuf,
    topics: RwLock<BTreeMap<String, TopicMeta>>,
}

impl TopicRegistry {
    /// Loads `DATA/meta/topics.json` (none yet is an empty registry).
    pub fn load(data_dir: &Path) -> Result<Self, TopicError> {
        let path = data_dir.join(META_DIR).join(TOPICS_FILE);
        let metadata_error = |reason: String| TopicError::Metadata {
            path: path.clone(),
            reason,
        };
        let topics = match read_checksummed(&path).map_err(|e| metadata_error(e.to_string()))? {
            None => BTreeMap::new(),
            Some(bytes) => {
                let list: Vec<TopicMeta> = serde_json::from_slice(&bytes)
                    .map_err(|e| metadata_error(format!("not valid topic metadata: {e}")))?;
                list.into_iter().map(|t| (t.name.clone(), t)).collect()
            }
        };
        Ok(Self {
            path,
            topics: RwLock::new(topics),
        })
    }

    /// One topic.
    pub fn get(&self, name: &str) -> Option<TopicMeta> {
        read_lock(&self.topics).get(name).cloned()
    }

    /// What `read` takes from one topic, without copying the topic (the
    /// produce path's lookup).
    pub fn lookup<R>(&self, name: &str, read: impl FnOnce(&TopicMeta) -> R) -> Option<R> {
        read_lock(&self.topics).get(name).map(read)
    }

    /// All topics, by name.
    pub fn list(&self) -> Vec<TopicMeta> {
        read_lock(&self.topics).values().cloned().collect()
    }

    /// Adds a topic and persists the registry. Returns false (and changes
    /// nothing) if the name exists.
    pub fn insert(&self, topic: TopicMeta) -> Result<bool, TopicError> {
        let mut topics = write_lock(&self.topics);
        if topics.contains_key(&topic.name) {
            return Ok(false);
        }
        topics.insert(topic.name.clone(), topic);
        self.persist(&topics)?;
        Ok(true)
    }

    /// Removes a topic and persists the registry.
    pub fn remove(&self, name: &str) -> Result<Option<TopicMeta>, TopicError> {
        let mut topics = write_lock(&self.topics);
        let removed = topics.remove(name);
        if removed.is_some() {
            self.persist(&topics)?;
        }
        Ok(removed)
    }

    fn persist(&self, topics: &BTreeMap<String, TopicMeta>) -> Result<(), TopicError> {
        let list: Vec<&TopicMeta> = topics.values().collect();
        let json = serde_json::to_vec_pretty(&list).map_err(|e| TopicError::Metadata {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        write_checksummed(&self.path, &json).map_err(|e| TopicError::Metadata {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// Raises a topic's partition count to `count` and persists the
    /// registry (CreatePartitions). A count at or below the current one
    /// changes nothing, so concurrent growers never shrink a topic. Returns
    /// the topic as it is afterwards, or `None` if it does not exist.
    pub fn grow_partitions(&self, name: &str, count: i32) -> Result<Option<TopicMeta>, TopicError> {
        let mut topics = write_lock(&self.topics);
        let Some(topic) = topics.get(name) else {
            return Ok(None);
        };
        if count <= topic.partitions {
            return Ok(Some(topic.clone()));
        }
        let before = topic.clone();
        let mut grown = before.clone();
        grown.partitions = count;
        topics.insert(name.to_string(), grown.clone());
        if let Err(error) = self.persist(&topics) {
            // Not on disk: keep the old count in memory too.
            topics.insert(name.to_string(), before);
            return Err(error);
        }
        Ok(Some(grown))
    }

    /// Replaces a topic's config overrides and persists the registry
    /// (AlterConfigs, IncrementalAlterConfigs). Returns the topic as it is
    /// afterwards, or `None` if it does not exist. The caller validated them.
    pub fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<Option<TopicMeta>, TopicError> {
        let mut topics = write_lock(&self.topics);
        let Some(before) = topics.get(name).cloned() else {
            return Ok(None);
        };
        let mut altered = before.clone();
        altered.configs = configs;
        topics.insert(name.to_string(), altered.clone());
        if let Err(error) = self.persist(&topics) {
            // Not on disk: keep the old configs in memory too.
            topics.insert(name.to_string(), before);
            return Err(error);
        }
        Ok(Some(altered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimestampType;
    use std::time::Duration;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn given_known_configs_then_applied_to_log_config() {
        let config = topic_log_config(
            &LogConfig::default(),
            &configs(&[
                (RETENTION_MS, "3600000"),
                (SEGMENT_BYTES, "1048576"),
                (RETENTION_BYTES, "-1"),
            ]),
        )
        .unwrap();
        assert_eq!(config.retention_ms, Some(Duration::from_secs(3600)));
        assert_eq!(config.segment_bytes, 1 << 20);
        assert_eq!(config.retention_bytes, None);
    }

    #[test]
    fn given_compaction_or_unknown_key_then_compaction_applied_and_unknown_refused_with_reason() {
        let config = topic_log_config(
            &LogConfig::default(),
            &configs(&[(CLEANUP_POLICY, "compact,delete")]),
        )
        .unwrap();
        assert!(config.cleanup_policy.compact && config.cleanup_policy.delete);
        assert!(topic_log_config(&LogConfig::default(), &configs(&[("flush.mss", "1")])).is_err());
        assert!(
            topic_log_config(&LogConfig::default(), &configs(&[(RETENTION_MS, "soon")])).is_err()
        );
    }

    #[test]
    fn given_timestamp_configs_when_valid_then_applied_and_defaults_are_kafka_4s() {
        let defaults = topic_log_config(&LogConfig::default(), &BTreeMap::new()).unwrap();
        assert_eq!(defaults.timestamp_type, TimestampType::CreateTime);
        assert_eq!(defaults.timestamp_before_max_ms, i64::MAX);
        assert_eq!(defaults.timestamp_after_max_ms, 3_600_000);
        let config = topic_log_config(
            &LogConfig::default(),
            &configs(&[
                (MESSAGE_TIMESTAMP_TYPE, "LogAppendTime"),
                (MESSAGE_TIMESTAMP_BEFORE_MAX_MS, "86400000"),
                (MESSAGE_TIMESTAMP_AFTER_MAX_MS, "0"),
            ]),
        )
        .unwrap();
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.timestamp_before_max_ms, 86_400_000);
        assert_eq!(config.timestamp_after_max_ms, 0);
    }

    #[test]
    fn given_bad_timestamp_configs_then_refused_naming_key_and_allowed_values() {
        let refused = |key: &str, value: &str| {
            topic_log_config(&LogConfig::default(), &configs(&[(key, value)]))
                .unwrap_err()
                .to_string()
        };
        let err = refused(MESSAGE_TIMESTAMP_TYPE, "createtime");
        assert!(err.contains("message.timestamp.type=createtime"), "{err}");
        assert!(err.contains("CreateTime or LogAppendTime"), "{err}");
        for key in [
            MESSAGE_TIMESTAMP_BEFORE_MAX_MS,
            MESSAGE_TIMESTAMP_AFTER_MAX_MS,
        ] {
            for value in ["-1", "soon", "9223372036854775808"] {
                let err = refused(key, value);
                assert!(err.contains(&format!("{key}={value}")), "{err}");
                assert!(err.contains("0 to 9223372036854775807"), "{err}");
            }
        }
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_EU-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("__transaction_state").is_err());
        assert!(validate_topic_name("__consumer_offsets").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn given_registry_when_reloaded_then_topics_survive() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(META_DIR)).unwrap();
        let registry = TopicRegistry::load(dir.path()).unwrap();
        let topic = TopicMeta {
            name: "orders".into(),
            id: [7; 16],
            partitions: 3,
            configs: configs(&[(RETENTION_MS, "1000")]),
        };
        assert!(registry.insert(topic.clone()).unwrap());
        assert!(!registry.insert(topic.clone()).unwrap());
        let reloaded = TopicRegistry::load(dir.path()).unwrap();
        assert_eq!(reloaded.get("orders"), Some(topic));
        assert!(reloaded.remove("orders").unwrap().is_some());
        assert!(TopicRegistry::load(dir.path()).unwrap().list().is_empty());
    }
}
