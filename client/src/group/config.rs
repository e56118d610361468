//! [`GroupConsumerConfig`]: the settings of a group consumer — its
//! consumer settings plus the group's id, timeouts, assignors and commit
//! policy — with Kafka's defaults and the check that catches mistakes early.
//! The connection settings are the [`Client`](crate::Client)'s.

use std::time::Duration;

use super::assignor::AssignorKind;
use crate::consumer::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
use crate::error::{ClientError, Result};

/// Group consumer settings.
///
/// Where reading starts in a partition the group has no committed offset
/// for is `consumer.auto_offset_reset` (default `Latest`, as in Kafka; see
/// [`GroupConsumerConfig::with_auto_offset_reset`]). Unlike a plain
/// [`ConsumerConfig`], a group consumer reads
/// [`IsolationLevel::ReadCommitted`] by default (as Kafka Streams does):
/// records of aborted transactions are never returned, and committed
/// offsets still pending in an open transaction are waited for. Building
/// the struct with `consumer: ConsumerConfig::default()` gets
/// `ReadUncommitted` instead; see [`GroupConsumerConfig::with_isolation_level`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConsumerConfig {
    /// Fetch, `auto_offset_reset` and isolation settings (isolation
    /// `ReadCommitted` in the default).
    pub consumer: ConsumerConfig,
    /// The group (`group.id`).
    pub group_id: String,
    /// How long the coordinator keeps this member without a heartbeat
    /// (`session.timeout.ms`, default 45 s). Brokers bound it (Kafka:
    /// 6 s–30 min by default).
    pub session_timeout: Duration,
    /// How long a rebalance waits for this member to rejoin, i.e. the
    /// longest the application may spend between two `poll()` calls while a
    /// rebalance is pending (`max.poll.interval.ms`, default 5 min).
    pub rebalance_timeout: Duration,
    /// Time between heartbeats (`heartbeat.interval.ms`, default 3 s); must
    /// be below `session_timeout`, usually a third of it or less. A
    /// rebalance is noticed within about this long.
    pub heartbeat_interval: Duration,
    /// The assignors offered, in order of preference; the coordinator picks
    /// the first one every member supports. Default: range, then round-robin.
    pub assignors: Vec<AssignorKind>,
    /// `Some(interval)`: commit automatically, at most once per interval,
    /// the positions of records the application has returned control for
    /// (see the [module documentation](crate::group#auto-commit) for exactly
    /// what). `None`: only explicit commits. Default: every 5 s.
    pub auto_commit: Option<Duration>,
}

impl Default for GroupConsumerConfig {
    fn default() -> Self {
        Self {
            consumer: ConsumerConfig {
                isolation_level: IsolationLevel::ReadCommitted,
                ..ConsumerConfig::default()
            },
            group_id: String::new(),
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            assignors: vec![AssignorKind::Range, AssignorKind::RoundRobin],
            auto_commit: Some(Duration::from_secs(5)),
        }
    }
}

impl GroupConsumerConfig {
    /// The defaults, for group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            ..Self::default()
        }
    }

    /// Sets where reading starts without a committed offset.
    pub fn with_auto_offset_reset(mut self, reset: AutoOffsetReset) -> Self {
        self.consumer.auto_offset_reset = reset;
        self
    }

    /// Sets which records of transactions are read (default `ReadCommitted`).
    pub fn with_isolation_level(mut self, isolation_level: IsolationLevel) -> Self {
        self.consumer.isolation_level = isolation_level;
        self
    }

    /// Sets the commit policy (`None` = manual commits only).
    pub fn with_auto_commit(mut self, interval: Option<Duration>) -> Self {
        self.auto_commit = interval;
        self
    }

    /// Rejects settings that could never work.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.group_id.is_empty() {
            return Err(ClientError::Config("group_id must not be empty".into()));
        }
        if self.assignors.is_empty() {
            return Err(ClientError::Config(
                "assignors must name at least one assignor".into(),
            ));
        }
        let mut names: Vec<&str> = self.assignors.iter().map(|a| a.protocol_name()).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() != self.assignors.len() {
            return Err(ClientError::Config(format!(
                "assignors {:?} name an assignor twice",
                self.assignors
            )));
        }
        if self.session_timeout.is_zero() || self.rebalance_timeout.is_zero() {
            return Err(ClientError::Config(
                "session_timeout and rebalance_timeout must be above 0".into(),
            ));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.session_timeout {
            return Err(ClientError::Config(format!(
                "heartbeat_interval {:?} must be above 0 and below session_timeout {:?}",
                self.heartbeat_interval, self.session_timeout
            )));
        }
        for (name, timeout) in [
            ("session_timeout", self.session_timeout),
            ("rebalance_timeout", self.rebalance_timeout),
        ] {
            if timeout.as_millis() > i32::MAX as u128 {
                return Err(ClientError::Config(format!(
                    "{name} {timeout:?} does not fit the protocol's i32 milliseconds"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_defaults_with_a_group_then_valid_with_kafka_defaults() {
        let config = GroupConsumerConfig::new("g");
        assert!(config.validate().is_ok());
        assert_eq!(config.session_timeout, Duration::from_secs(45));
        assert_eq!(config.auto_commit, Some(Duration::from_secs(5)));
        assert_eq!(config.consumer.auto_offset_reset, AutoOffsetReset::Latest);
        let config = config.with_auto_offset_reset(AutoOffsetReset::Earliest);
        assert_eq!(config.consumer.auto_offset_reset, AutoOffsetReset::Earliest);
        assert_eq!(
            config.consumer.isolation_level,
            IsolationLevel::ReadCommitted
        );
        assert_eq!(
            ConsumerConfig::default().isolation_level,
            IsolationLevel::ReadUncommitted,
            "a plain consumer reads uncommitted, as in Kafka"
        );
        let config = config.with_isolation_level(IsolationLevel::ReadUncommitted);
        assert_eq!(
            config.consumer.isolation_level,
            IsolationLevel::ReadUncommitted
        );
    }

    #[test]
    fn given_unusable_settings_then_config_errors() {
        let base = GroupConsumerConfig::new("g");
        let cases = [
            GroupConsumerConfig {
                group_id: String::new(),
                ..base.clone()
            },
            GroupConsumerConfig {
                assignors: vec![],
                ..base.clone()
            },
            GroupConsumerConfig {
                assignors: vec![AssignorKind::Range, AssignorKind::Range],
                ..base.clone()
            },
            GroupConsumerConfig {
                heartbeat_interval: Duration::from_secs(45),
                ..base.clone()
            },
            GroupConsumerConfig {
                session_timeout: Duration::ZERO,
                ..base.clone()
            },
            GroupConsumerConfig {
                rebalance_timeout: Duration::from_secs(u64::MAX / 4),
                ..base.clone()
            },
        ];
        for case in cases {
            assert!(
                matches!(case.validate(), Err(ClientError::Config(_))),
                "{case:?}"
            );
        }
    }
}
