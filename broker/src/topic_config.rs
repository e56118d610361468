//! Every Kafka topic config, in one validated table: its type, default,
//! documentation, how a value is checked, and what it does here.
//!
//! A config is either *applied* (it changes the partition's [`LogConfig`],
//! or the produce path reads it) or *accepted with no effect* because it
//! means nothing on a single node (replication, tiered storage, throttles)
//! or because Sediment achieves its purpose another way; each such entry's
//! documentation says which. Unknown names and bad values are refused with
//! a message naming the key and the allowed values, so a typo never passes
//! silently. CreateTopics, AlterConfigs, IncrementalAlterConfigs and
//! DescribeConfigs all go through this table.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{BrokerConfig, LogConfig, TimestampType};

/// Kafka's config data types, as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` or `false`.
    Boolean,
    /// Free text or one of a set of names.
    String,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// Floating point.
    Double,
    /// Comma-separated list.
    List,
}

impl ConfigType {
    /// The code DescribeConfigs uses for the type.
    pub const fn code(self) -> i8 {
        match self {
            Self::Boolean => 1,
            Self::String => 2,
            Self::Int => 3,
            Self::Long => 5,
            Self::Double => 6,
            Self::List => 7,
        }
    }
}

/// What setting a config does on Sediment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The value is enforced.
    Applied,
    /// Accepted and reported, but changes nothing; the text says why.
    NoEffect(&'static str),
}

/// One topic config.
pub struct TopicConfigDef {
    /// Kafka's name.
    pub name: &'static str,
    /// Its data type.
    pub config_type: ConfigType,
    /// What it means (DescribeConfigs documentation).
    pub doc: &'static str,
    /// Whether Sediment enforces it.
    pub effect: Effect,
    /// The value a topic without an override gets.
    default: fn(&BrokerConfig) -> String,
    /// Checks a value and applies it to the log config (`Err` says what is allowed).
    apply: fn(&str, &mut LogConfig) -> Result<(), String>,
}

impl TopicConfigDef {
    /// The default, as DescribeConfigs reports it.
    pub fn default_value(&self, broker: &BrokerConfig) -> String {
        (self.default)(broker)
    }

    /// The documentation with, for a config without effect, why.
    pub fn documentation(&self) -> String {
        match self.effect {
            Effect::Applied => self.doc.to_string(),
            Effect::NoEffect(why) => format!("{} No effect on Sediment: {why}", self.doc),
        }
    }
}

/// A refused topic config: the key, the value and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config {key}={value}: {reason}")]
pub struct InvalidTopicConfig {
    /// The config's name.
    pub key: String,
    /// The refused value.
    pub value: String,
    /// What is wrong and what is allowed.
    pub reason: String,
}

const NO_REPLICATION: &str = "Sediment is one node with one replica per partition.";
const NO_TIERED_STORAGE: &str = "Sediment keeps every segment on its local disk.";

fn long_at_least(min: i64) -> impl Fn(&str) -> Result<i64, String> {
    move |value| match value.trim().parse::<i64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("must be an integer from {min} to {}", i64::MAX)),
    }
}

fn int_in(min: i64, max: i64) -> impl Fn(&str) -> Result<i64, String> {
    move |value| match value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be an integer from {min} to {max}")),
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".to_string()),
    }
}

fn ms(n: i64) -> Duration {
    Duration::from_millis(n.max(0) as u64)
}

/// -1 means "none" for the retention limits.
fn forever_or_at_least_zero(value: &str) -> Result<Option<i64>, String> {
    match value.trim().parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err("must be -1 (no limit) or an integer from 0".to_string()),
    }
}

/// Every topic config Kafka 4 defines, in the order DescribeConfigs lists them.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        config_type: ConfigType::List,
        doc: "What happens to old segments: `delete` removes them by retention.ms and retention.bytes, `compact` keeps the latest record of each key, `compact,delete` does both.",
        effect: Effect::Applied,
        default: |b| b.log.cleanup_policy.to_string(),
        apply: |v, c| {
            c.cleanup_policy = v.parse()?;
            Ok(())
        },
    },
    TopicConfigDef {
        name: "compression.type",
        config_type: ConfigType::String,
        doc: "Codec of stored batches: `producer` keeps what producers send.",
        effect: Effect::Applied,
        default: |_| "producer".to_string(),
        apply: |v, _| match v.trim() {
            "producer" => Ok(()),
            "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => Err(
                "only producer is accepted: Sediment stores batches as producers compress them"
                    .to_string(),
            ),
            _ => Err("must be producer, uncompressed, gzip, snappy, lz4 or zstd".to_string()),
        },
    },
    TopicConfigDef {
        name: "compression.gzip.level",
        config_type: ConfigType::Int,
        doc: "Gzip level when the broker compresses.",
        effect: Effect::NoEffect("the broker never recompresses batches (compression.type=producer)."),
        default: |_| "-1".to_string(),
        apply: |v, _| match int_in(-1, 9)(v)? {
            0 => Err("must be -1 (the codec's default) or from 1 to 9".to_string()),
            _ => Ok(()),
        },
    },
    TopicConfigDef {
        name: "compression.lz4.level",
        config_type: ConfigType::Int,
        doc: "LZ4 level when the broker compresses.",
        effect: Effect::NoEffect("the broker never recompresses batches (compression.type=producer)."),
        default: |_| "9".to_string(),
        apply: |v, _| int_in(1, 17)(v).map(drop),
    },
    TopicConfigDef {
        name: "compression.zstd.level",
        config_type: ConfigType::Int,
        doc: "Zstandard level when the broker compresses.",
        effect: Effect::NoEffect("the broker never recompresses batches (compression.type=producer)."),
        default: |_| "3".to_string(),
        apply: |v, _| int_in(-131_072, 22)(v).map(drop),
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        config_type: ConfigType::Long,
        doc: "How long a tombstone of a compacted topic stays readable, so consumers behind see the delete.",
        effect: Effect::Applied,
        default: |b| b.log.delete_retention_ms.as_millis().to_string(),
        apply: |v, c| {
            c.delete_retention_ms = ms(long_at_least(0)(v)?);
            Ok(())
        },
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        config_type: ConfigType::Long,
        doc: "How long a deleted segment's files linger.",
        effect: Effect::NoEffect("files are unlinked at once; readers in flight keep their mappings."),
        default: |_| "60000".to_string(),
        apply: |v, _| long_at_least(0)(v).map(drop),
    },
    TopicConfigDef {
        name: "flush.messages",
        config_type: ConfigType::Long,
        doc: "Messages between forced fsyncs.",
        effect: Effect::NoEffect("durability follows the broker's --flush policy (default: every acknowledged batch is fsynced)."),
        default: |_| i64::MAX.to_string(),
        apply: |v, _| long_at_least(1)(v).map(drop),
    },
    TopicConfigDef {
        name: "flush.ms",
        config_type: ConfigType::Long,
        doc: "Time between forced fsyncs.",
        effect: Effect::NoEffect("durability follows the broker's --flush policy (default: every acknowledged batch is fsynced)."),
        default: |_| i64::MAX.to_string(),
        apply: |v, _| long_at_least(0)(v).map(drop),
    },
    TopicConfigDef {
        name: "follower.replication.throttled.replicas",
        config_type: ConfigType::List,
        doc: "Replicas whose follower traffic is throttled.",
        effect: Effect::NoEffect(NO_REPLICATION),
        default: |_| String::new(),
        apply: |_, _| Ok(()),
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        config_type: ConfigType::Int,
        doc: "Bytes of log between two offset index entries.",
        effect: Effect::Applied,
        default: |b| b.log.index_interval_bytes.to_string(),
        apply: |v, c| {
            c.index_interval_bytes = int_in(1, i64::from(i32::MAX))(v)? as u64;
            Ok(())
        },
    },
    TopicConfigDef {
        name: "leader.replication.throttled.replicas",
        config_type: ConfigType::List,
        doc: "Replicas whose leader traffic is throttled.",
        effect: Effect::NoEffect(NO_REPLICATION),
        default: |_| String::new(),
        apply: |_, _| Ok(()),
    },
    TopicConfigDef {
        name: "local.retention.bytes",
        config_type: ConfigType::Long,
        doc: "Local bytes kept when tiered storage is on.",
        effect: Effect::NoEffect(NO_TIERED_STORAGE),
        default: |_| "-2".to_string(),
        apply: |v, _| long_at_least(-2)(v).map(drop),
    },
    TopicConfigDef {
        name: "local.retention.ms",
        config_type: ConfigType::Long,
        doc: "Local time kept when tiered storage is on.",
        effect: Effect::NoEffect(NO_TIERED_STORAGE),
        default: |_| "-2".to_string(),
        apply: |v, _| long_at_least(-2)(v).map(drop),
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        config_type: ConfigType::Long,
        doc: "Longest a record stays uncompacted, even below min.cleanable.dirty.ratio.",
        effect: Effect::Applied,
        default: |b| {
            b.log
                .max_compaction_lag_ms
                .map_or(i64::MAX.to_string(), |d| d.as_millis().to_string())
        },
        apply: |v, c| {
            let n = long_at_least(1)(v)?;
            c.max_compaction_lag_ms = (n != i64::MAX).then(|| ms(n));
            Ok(())
        },
    },
    TopicConfigDef {
        name: "max.message.bytes",
        config_type: ConfigType::Int,
        doc: "Largest record batch the topic accepts (MESSAGE_TOO_LARGE above it).",
        effect: Effect::Applied,
        default: |b| b.message_max_bytes.to_string(),
        apply: |v, _| int_in(0, i64::from(i32::MAX))(v).map(drop),
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        config_type: ConfigType::Long,
        doc: "How far ahead of the broker's clock a CreateTime timestamp may be (INVALID_TIMESTAMP beyond).",
        effect: Effect::Applied,
        default: |b| b.log.timestamp_after_max_ms.to_string(),
        apply: |v, c| {
            c.timestamp_after_max_ms = long_at_least(0)(v)?;
            Ok(())
        },
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        config_type: ConfigType::Long,
        doc: "How far behind the broker's clock a CreateTime timestamp may be (INVALID_TIMESTAMP beyond).",
        effect: Effect::Applied,
        default: |b| b.log.timestamp_before_max_ms.to_string(),
        apply: |v, c| {
            c.timestamp_before_max_ms = long_at_least(0)(v)?;
            Ok(())
        },
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        doc: "CreateTime stores the producer's timestamps; LogAppendTime stamps batches with the broker's clock at append.",
        effect: Effect::Applied,
        default: |b| b.log.timestamp_type.to_string(),
        apply: |v, c| {
            c.timestamp_type = v
                .trim()
                .parse::<TimestampType>()
                .map_err(|_| "must be CreateTime or LogAppendTime".to_string())?;
            Ok(())
        },
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        config_type: ConfigType::Double,
        doc: "Share of a compacted log not yet cleaned from which the cleaner cleans it.",
        effect: Effect::Applied,
        default: |b| b.log.min_cleanable_dirty_ratio.to_string(),
        apply: |v, c| match v.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => {
                c.min_cleanable_dirty_ratio = r;
                Ok(())
            }
            _ => Err("must be a number from 0 to 1".to_string()),
        },
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        config_type: ConfigType::Long,
        doc: "Shortest time a record stays uncompacted after it was appended.",
        effect: Effect::Applied,
        default: |b| b.log.min_compaction_lag_ms.as_millis().to_string(),
        apply: |v, c| {
            c.min_compaction_lag_ms = ms(long_at_least(0)(v)?);
            Ok(())
        },
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        config_type: ConfigType::Int,
        doc: "Replicas that must hold a write acknowledged with acks=all.",
        effect: Effect::NoEffect(NO_REPLICATION),
        default: |_| "1".to_string(),
        apply: |v, _| int_in(1, i64::from(i32::MAX))(v).map(drop),
    },
    TopicConfigDef {
        name: "preallocate",
        config_type: ConfigType::Boolean,
        doc: "Whether a new segment's file is allocated in full at creation.",
        effect: Effect::NoEffect("space is always reserved ahead of appends, in steps that follow the write rate."),
        default: |_| "false".to_string(),
        apply: |v, _| boolean(v).map(drop),
    },
    TopicConfigDef {
        name: "remote.log.copy.disable",
        config_type: ConfigType::Boolean,
        doc: "Stops copying segments to tiered storage.",
        effect: Effect::NoEffect(NO_TIERED_STORAGE),
        default: |_| "false".to_string(),
        apply: |v, _| boolean(v).map(drop),
    },
    TopicConfigDef {
        name: "remote.log.delete.on.disable",
        config_type: ConfigType::Boolean,
        doc: "Deletes tiered segments when tiered storage is turned off.",
        effect: Effect::NoEffect(NO_TIERED_STORAGE),
        default: |_| "false".to_string(),
        apply: |v, _| boolean(v).map(drop),
    },
    TopicConfigDef {
        name: "remote.storage.enable",
        config_type: ConfigType::Boolean,
        doc: "Turns tiered storage on.",
        effect: Effect::Applied,
        default: |_| "false".to_string(),
        apply: |v, _| match boolean(v)? {
            false => Ok(()),
            true => Err("only false is accepted: Sediment has no tiered storage".to_string()),
        },
    },
    TopicConfigDef {
        name: "retention.bytes",
        config_type: ConfigType::Long,
        doc: "Largest size of a partition's log before its oldest segments are deleted; -1 for no limit.",
        effect: Effect::Applied,
        default: |b| optional(b.log.retention_bytes),
        apply: |v, c| {
            c.retention_bytes = forever_or_at_least_zero(v)?.map(|n| n as u64);
            Ok(())
        },
    },
    TopicConfigDef {
        name: "retention.ms",
        config_type: ConfigType::Long,
        doc: "Age (since its last append, by the broker's clock) after which a sealed segment is deleted; -1 keeps data forever.",
        effect: Effect::Applied,
        default: |b| optional(b.log.retention_ms.map(|d| d.as_millis())),
        apply: |v, c| {
            c.retention_ms = forever_or_at_least_zero(v)?.map(ms);
            Ok(())
        },
    },
    TopicConfigDef {
        name: "segment.bytes",
        config_type: ConfigType::Int,
        doc: "Size at which the active segment is sealed and a new one started.",
        effect: Effect::Applied,
        default: |b| b.log.segment_bytes.to_string(),
        apply: |v, c| {
            c.segment_bytes = int_in(1 << 20, i64::from(i32::MAX))(v)? as u64;
            Ok(())
        },
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        config_type: ConfigType::Int,
        doc: "Largest size of a segment's offset index; a full index seals the segment.",
        effect: Effect::Applied,
        default: |b| b.log.index_max_bytes.to_string(),
        apply: |v, c| {
            c.index_max_bytes = int_in(64, i64::from(i32::MAX))(v)? as u64;
            Ok(())
        },
    },
    TopicConfigDef {
        name: "segment.jitter.ms",
        config_type: ConfigType::Long,
        doc: "Random time subtracted from segment.ms so partitions do not all roll at once.",
        effect: Effect::NoEffect("segments roll at segment.ms exactly."),
        default: |_| "0".to_string(),
        apply: |v, _| long_at_least(0)(v).map(drop),
    },
    TopicConfigDef {
        name: "segment.ms",
        config_type: ConfigType::Long,
        doc: "Age (since it was opened, by the broker's clock) at which the active segment is sealed.",
        effect: Effect::Applied,
        default: |b| {
            b.log
                .segment_ms
                .map_or(i64::MAX.to_string(), |d| d.as_millis().to_string())
        },
        apply: |v, c| {
            let n = long_at_least(1)(v)?;
            c.segment_ms = (n != i64::MAX).then(|| ms(n));
            Ok(())
        },
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        config_type: ConfigType::Boolean,
        doc: "Whether an out-of-sync replica may become leader.",
        effect: Effect::NoEffect(NO_REPLICATION),
        default: |_| "false".to_string(),
        apply: |v, _| boolean(v).map(drop),
    },
];

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-1".to_string(), |v| v.to_string())
}

/// The definition of `name`, if Kafka has such a topic config.
pub fn find(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Checks one `key=value`, refusing unknown keys and bad values.
pub fn check(key: &str, value: &str) -> Result<(), InvalidTopicConfig> {
    apply_one(key, value, &mut LogConfig::default())
}

fn apply_one(key: &str, value: &str, config: &mut LogConfig) -> Result<(), InvalidTopicConfig> {
    let invalid = |reason: String| InvalidTopicConfig {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };
    let def = find(key).ok_or_else(|| invalid("unknown topic config".to_string()))?;
    (def.apply)(value, config).map_err(invalid)
}

/// The log config of a topic: the broker's defaults with `configs` applied,
/// each checked, and the combination validated.
pub fn apply_topic_configs(
    base: &LogConfig,
    configs: &BTreeMap<String, String>,
) -> Result<LogConfig, InvalidTopicConfig> {
    let mut config = base.clone();
    for (key, value) in configs {
        apply_one(key, value, &mut config)?;
    }
    config.validate().map_err(|reason| InvalidTopicConfig {
        key: configs.keys().cloned().collect::<Vec<_>>().join(","),
        value: String::new(),
        reason,
    })?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn given_every_config_when_set_to_its_default_then_accepted_and_nothing_changes() {
        let broker = BrokerConfig::default();
        for def in TOPIC_CONFIGS {
            let default = def.default_value(&broker);
            if def.name == "cleanup.policy" || def.name == "max.message.bytes" {
                // Checked below / enforced by the produce path.
                check(def.name, &default).unwrap();
                continue;
            }
            if def.config_type == ConfigType::List && default.is_empty() {
                check(def.name, &default).unwrap();
                continue;
            }
            let applied = apply_topic_configs(&broker.log, &configs(&[(def.name, &default)]))
                .unwrap_or_else(|e| panic!("{}: default {default} refused: {e}", def.name));
            assert_eq!(
                applied, broker.log,
                "{} at its default changed the log",
                def.name
            );
        }
    }

    #[test]
    fn given_kafka_streams_topic_configs_then_accepted() {
        let repartition = configs(&[
            ("cleanup.policy", "delete"),
            ("message.timestamp.type", "CreateTime"),
            ("retention.ms", "-1"),
            ("segment.bytes", "52428800"),
        ]);
        let config = apply_topic_configs(&LogConfig::default(), &repartition).unwrap();
        assert_eq!(config.retention_ms, None);
        assert_eq!(config.segment_bytes, 52_428_800);
    }

    #[test]
    fn given_hostile_values_then_refused_naming_key_and_allowed_values() {
        for (key, value, says) in [
            ("segment.bytes", "1", "1048576"),
            ("min.cleanable.dirty.ratio", "7", "from 0 to 1"),
            (
                "cleanup.policy",
                "shred",
                "delete, compact or compact,delete",
            ),
            ("retention.ms", "-5", "-1"),
            (
                "message.timestamp.type",
                "createtime",
                "CreateTime or LogAppendTime",
            ),
            ("min.insync.replicas", "0", "from 1"),
            ("remote.storage.enable", "true", "no tiered storage"),
            ("no.such.config", "1", "unknown topic config"),
        ] {
            let err = check(key, value).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.to_string().contains(says), "{key}={value}: {err}");
        }
    }

    #[test]
    fn given_applied_configs_then_the_log_config_follows() {
        let config = apply_topic_configs(
            &LogConfig::default(),
            &configs(&[
                ("retention.bytes", "1000"),
                ("segment.ms", "60000"),
                ("index.interval.bytes", "128"),
                ("delete.retention.ms", "5"),
                ("min.compaction.lag.ms", "7"),
                ("max.compaction.lag.ms", "9"),
                ("min.cleanable.dirty.ratio", "0.25"),
            ]),
        )
        .unwrap();
        assert_eq!(config.retention_bytes, Some(1000));
        assert_eq!(config.segment_ms, Some(Duration::from_secs(60)));
        assert_eq!(config.index_interval_bytes, 128);
        assert_eq!(config.delete_retention_ms, Duration::from_millis(5));
        assert_eq!(config.min_compaction_lag_ms, Duration::from_millis(7));
        assert_eq!(config.max_compaction_lag_ms, Some(Duration::from_millis(9)));
        assert_eq!(config.min_cleanable_dirty_ratio, 0.25);
        let err = apply_topic_configs(
            &LogConfig::default(),
            &configs(&[
                ("min.compaction.lag.ms", "10"),
                ("max.compaction.lag.ms", "9"),
            ]),
        )
        .unwrap_err();
        assert!(err.reason.contains("max.compaction.lag.ms"), "{err}");
    }

    #[test]
    fn given_no_effect_configs_then_their_documentation_says_why() {
        for def in TOPIC_CONFIGS {
            if let Effect::NoEffect(why) = def.effect {
                assert!(def.documentation().contains(why), "{}", def.name);
            }
            assert!(!def.doc.is_empty(), "{}", def.name);
        }
    }
}
