//! Configuration of the log: every field with its unit, default and reason.
//!
//! `LogConfig` is what one partition log needs; topic-level overrides
//! (`retention.ms`, `segment.bytes`, …) are applied on top of the broker's
//! defaults before a partition is opened.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// When appended bytes are made durable with `fdatasync`, and therefore when a
/// produce is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// Acknowledge only after an `fdatasync` covering the batch completed; one
    /// sync covers every batch appended while the previous one ran (group
    /// commit). The high watermark is the durable end of the log. Default.
    #[default]
    Always,
    /// Acknowledge on append and sync every interval. A machine crash can take
    /// back up to one interval of acknowledged data (a process crash cannot:
    /// the bytes are in the page cache).
    Interval(Duration),
}

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Interval(every) => write!(f, "interval:{}", every.as_millis()),
        }
    }
}

impl FromStr for FlushPolicy {
    type Err = String;

    /// Parses `always` or `interval:MS` (MS ≥ 1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "always" {
            return Ok(Self::Always);
        }
        let ms = s
            .strip_prefix("interval:")
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .ok_or_else(|| {
                format!("flush policy must be `always` or `interval:MS` with MS > 0, got `{s}`")
            })?;
        Ok(Self::Interval(Duration::from_millis(ms)))
    }
}

/// Settings of one partition log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment once the active one would exceed this many bytes.
    /// Default 1 GiB (Kafka's `segment.bytes`).
    pub segment_bytes: u64,
    /// Roll once the active segment is this old, if set (Kafka's `segment.ms`).
    pub segment_ms: Option<Duration>,
    /// Delete sealed segments whose newest record is older than this (`retention.ms`).
    /// Default 7 days; `None` keeps data forever.
    pub retention_ms: Option<Duration>,
    /// Delete the oldest sealed segments while the log is larger than this (`retention.bytes`).
    /// Default unlimited.
    pub retention_bytes: Option<u64>,
    /// When appends become durable. Default [`FlushPolicy::Always`].
    pub flush: FlushPolicy,
    /// Bytes of log between two sparse index entries. Default 4 KiB (Kafka's
    /// `index.interval.bytes`): a lookup scans at most this many bytes of headers.
    pub index_interval_bytes: u64,
    /// Capacity of each segment's offset index file; the segment rolls when it is
    /// full. Default 10 MiB (Kafka's `segment.index.bytes`).
    pub index_max_bytes: u64,
    /// Segment space is reserved with `fallocate` in steps of this many bytes,
    /// so a full disk is an error on append, never a SIGBUS. Default 16 MiB.
    pub preallocate_bytes: u64,
    /// Leader epoch stamped on appended batches. Sediment is one broker, so
    /// this is 0 unless a caller says otherwise.
    pub leader_epoch: i32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: None,
            retention_ms: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_bytes: None,
            flush: FlushPolicy::Always,
            index_interval_bytes: 4096,
            index_max_bytes: 10 << 20,
            preallocate_bytes: 16 << 20,
            leader_epoch: 0,
        }
    }
}

impl LogConfig {
    /// Rejects settings the log cannot work with.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_bytes < 1024 {
            return Err(format!(
                "segment.bytes must be at least 1024, got {}",
                self.segment_bytes
            ));
        }
        if self.segment_bytes > u32::MAX as u64 {
            return Err(format!(
                "segment.bytes must fit the index's 32-bit positions (at most {}), got {}",
                u32::MAX,
                self.segment_bytes
            ));
        }
        if self.index_max_bytes < 64 {
            return Err(format!(
                "index max bytes must be at least 64, got {}",
                self.index_max_bytes
            ));
        }
        if self.index_interval_bytes == 0 {
            return Err("index interval bytes must be positive".to_string());
        }
        if self.preallocate_bytes == 0 {
            return Err("preallocate bytes must be positive".to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_policy_parses_and_prints_round_trip() {
        assert_eq!("always".parse::<FlushPolicy>(), Ok(FlushPolicy::Always));
        let interval: FlushPolicy = "interval:1000".parse().unwrap();
        assert_eq!(interval, FlushPolicy::Interval(Duration::from_millis(1000)));
        assert_eq!(interval.to_string(), "interval:1000");
        assert!("interval:0".parse::<FlushPolicy>().is_err());
        assert!("sometimes".parse::<FlushPolicy>().is_err());
    }

    #[test]
    fn default_config_is_valid_and_tiny_segments_are_not() {
        assert!(LogConfig::default().validate().is_ok());
        let tiny = LogConfig {
            segment_bytes: 10,
            ..LogConfig::default()
        };
        assert!(tiny.validate().is_err());
    }
}
