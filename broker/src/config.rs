//! Configuration of the broker and of the log: every field with its unit,
//! default and reason.
//!
//! `LogConfig` is what one partition log needs; topic-level overrides
//! (`retention.ms`, `segment.bytes`, …) are applied on top of the broker's
//! defaults before a partition is opened.

use crate::security_config::SecurityConfig;
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

/// Which timestamp a topic's batches carry (Kafka's `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamps are stored as sent, provided they lie within
    /// `message.timestamp.before.max.ms` / `after.max.ms` of the broker's
    /// clock. Default.
    #[default]
    CreateTime,
    /// The broker stamps every batch with its clock at append (the batch's
    /// `maxTimestamp` and timestamp-type attribute; records are not rewritten).
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's name of the type, as `message.timestamp.type` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateTime => "CreateTime",
            Self::LogAppendTime => "LogAppendTime",
        }
    }
}

impl fmt::Display for TimestampType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimestampType {
    type Err = String;

    /// Parses `CreateTime` or `LogAppendTime` (case-sensitive, as Kafka).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CreateTime" => Ok(Self::CreateTime),
            "LogAppendTime" => Ok(Self::LogAppendTime),
            _ => Err(format!(
                "message.timestamp.type must be CreateTime or LogAppendTime, got `{s}`"
            )),
        }
    }
}

/// What happens to old data of a topic (Kafka's `cleanup.policy`): deleted by
/// time and size retention, compacted to the latest record per key, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Time and size retention delete whole sealed segments (`delete`).
    pub delete: bool,
    /// The cleaner keeps only the latest record of each key (`compact`).
    pub compact: bool,
}

impl CleanupPolicy {
    /// `cleanup.policy=delete`, the default.
    pub const DELETE: Self = Self {
        delete: true,
        compact: false,
    };
    /// `cleanup.policy=compact`.
    pub const COMPACT: Self = Self {
        delete: false,
        compact: true,
    };
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        Self::DELETE
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            (false, true) => "delete",
            (false, false) => "",
        })
    }
}

impl FromStr for CleanupPolicy {
    type Err = String;

    /// Parses Kafka's list: `delete`, `compact`, or both comma-separated in
    /// either order (spaces around items allowed). An empty list is refused:
    /// Kafka 4 deprecates it and it would mean "keep forever", which
    /// `retention.ms=-1` says plainly.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut policy = Self {
            delete: false,
            compact: false,
        };
        for item in s.split(',').map(str::trim) {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => {
                    return Err(format!(
                        "cleanup.policy must be delete, compact or compact,delete, got `{s}`"
                    ))
                }
            }
        }
        Ok(policy)
    }
}

/// Settings of one partition log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Roll to a new segment once the active one would exceed this many bytes.
    /// Default 1 GiB (Kafka's `segment.bytes`).
    pub segment_bytes: u64,
    /// Roll once the active segment is this old, if set (Kafka's `segment.ms`).
    pub segment_ms: Option<Duration>,
    /// Delete sealed segments whose last append, by the broker's clock, is
    /// older than this (`retention.ms`; see `storage::retention`). Default 7
    /// days; `None` keeps data forever.
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
    /// Largest step in which segment space is reserved with `fallocate` ahead
    /// of appends (so a full disk is an error on append, never a SIGBUS).
    /// Steps start at 64 KiB and double only while a partition writes fast;
    /// unused space is returned on roll, close, idleness and reopen. Default 16 MiB.
    pub preallocate_bytes: u64,
    /// Page-cache pages a partition's active segment keeps once they are
    /// durable, in bytes behind the durable end; older ones are dropped
    /// after each sync (`posix_fadvise(DONTNEED)`), so the next appends
    /// reuse pages just freed instead of taking fresh ones. `None` (the
    /// default) keeps everything the kernel keeps. Worth it where fresh
    /// pages are dear (a VM whose memory the host backs lazily); the price
    /// is that readers further behind read from disk.
    pub page_cache_window: Option<u64>,
    /// Leader epoch stamped on appended batches. Sediment is one broker, so
    /// this is 0 unless a caller says otherwise.
    pub leader_epoch: i32,
    /// Which timestamps batches carry (`message.timestamp.type`). Default
    /// [`TimestampType::CreateTime`].
    pub timestamp_type: TimestampType,
    /// How far, in ms, a CreateTime timestamp may lie behind the broker's
    /// clock (`message.timestamp.before.max.ms`). Default `i64::MAX`
    /// (unbounded), Kafka 4's.
    pub timestamp_before_max_ms: i64,
    /// How far, in ms, a CreateTime timestamp may lie ahead of the broker's
    /// clock (`message.timestamp.after.max.ms`). Default 3600000 (1 hour),
    /// Kafka 4's.
    pub timestamp_after_max_ms: i64,
    /// Sealed segments whose files are held open (mapped) at once, least
    /// recently read closed first. A `LogManager` shares one cache of its
    /// default config's size among all its partitions; a partition opened on
    /// its own gets a cache of its own. Only the active segment of each
    /// partition stays open besides these, so descriptors and mappings follow
    /// the partitions in use and the segments recently read, not the
    /// segments on disk (each open sealed segment costs up to three mappings
    /// and no descriptor). Default 1024.
    pub max_open_segments: usize,
    /// Deletion by retention, compaction, or both (`cleanup.policy`).
    /// Default [`CleanupPolicy::DELETE`].
    pub cleanup_policy: CleanupPolicy,
    /// How long a tombstone (a record with a key and a null value) is kept
    /// after the cleaner first reaches it, so consumers behind see the
    /// delete (`delete.retention.ms`). Default 1 day.
    pub delete_retention_ms: Duration,
    /// Dirty bytes over all sealed bytes from which a compacted partition is
    /// worth cleaning (`min.cleanable.dirty.ratio`). Default 0.5.
    pub min_cleanable_dirty_ratio: f64,
    /// A record stays uncompacted at least this long after it was appended
    /// (`min.compaction.lag.ms`). Default 0.
    pub min_compaction_lag_ms: Duration,
    /// A record is compacted at most this long after it was appended, even
    /// below the dirty ratio (`max.compaction.lag.ms`). Default unbounded.
    pub max_compaction_lag_ms: Option<Duration>,
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
            page_cache_window: None,
            leader_epoch: 0,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            max_open_segments: 1024,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: Duration::from_secs(24 * 3600),
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: Duration::ZERO,
            max_compaction_lag_ms: None,
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
        if self.max_open_segments == 0 {
            return Err("max open segments must be at least 1".to_string());
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return Err(format!(
                "min.cleanable.dirty.ratio must be between 0 and 1, got {}",
                self.min_cleanable_dirty_ratio
            ));
        }
        if self
            .max_compaction_lag_ms
            .is_some_and(|max| max < self.min_compaction_lag_ms)
        {
            return Err("max.compaction.lag.ms must be at least min.compaction.lag.ms".to_string());
        }
        if self.timestamp_before_max_ms < 0 || self.timestamp_after_max_ms < 0 {
            return Err(format!(
                "message.timestamp.before.max.ms and after.max.ms must be at least 0, got {} and {}",
                self.timestamp_before_max_ms, self.timestamp_after_max_ms
            ));
        }
        Ok(())
    }
}

/// Where the HTTP port (GET /metrics) listens, and what happens when it
/// cannot bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpListen {
    /// The built-in default address: if it is taken (a second broker on the
    /// machine, another exporter), the broker logs one warning and runs
    /// without HTTP, since nobody asked for that port.
    Default(std::net::SocketAddr),
    /// An address the operator chose: failing to bind it fails startup.
    Explicit(std::net::SocketAddr),
    /// No HTTP port.
    Off,
}

/// The default HTTP address, `127.0.0.1:9644` (Redpanda's admin port).
pub const DEFAULT_HTTP: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9644);

impl FromStr for HttpListen {
    type Err = String;

    /// Parses `off` or `HOST:PORT` (an IP address and a port; port 0 picks a
    /// free one). A parsed address is always [`HttpListen::Explicit`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "off" {
            return Ok(Self::Off);
        }
        s.parse::<std::net::SocketAddr>()
            .map(Self::Explicit)
            .map_err(|_| {
                format!("http must be HOST:PORT (an IP address and a port) or `off`, got `{s}`")
            })
    }
}

/// Settings of the broker process: network limits, topic defaults and the
/// log defaults every partition starts from. Each field says its unit,
/// default and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// Where partitions and metadata live. Default `./sediment-data`.
    pub data_dir: std::path::PathBuf,
    /// Address of the plaintext listener; port 0 picks a free port; `None`
    /// (`--listen off`) leaves only the TLS listener. Default `127.0.0.1:9092`.
    pub listen: Option<std::net::SocketAddr>,
    /// Host clients are told to connect to (Metadata); defaults to the listen address.
    pub advertised_host: Option<String>,
    /// This broker's id in Metadata (also the controller id). Default 0.
    pub broker_id: i32,
    /// Cluster id reported in Metadata. Default `sediment`.
    pub cluster_id: String,
    /// Defaults of every partition log; topics override some of them.
    pub log: LogConfig,
    /// Create topics on first Metadata or Produce. Default on (as Kafka).
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics asking for -1. Default 1.
    pub default_partitions: i32,
    /// Most partitions one topic may have: each costs open files and index
    /// space, so a single CreateTopics must not be able to exhaust either.
    /// Default 1000.
    pub max_partitions_per_topic: i32,
    /// Largest request frame accepted, in bytes; larger frames close the
    /// connection before anything is allocated. Default 100 MiB (Kafka's
    /// `socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Largest request frame of any API but Produce. Those requests carry no
    /// records, and decoding them builds structures many times their wire
    /// size, so they get a far smaller cap. Default 1 MiB.
    pub max_control_request_bytes: usize,
    /// Largest record batch accepted, in bytes (`message.max.bytes`); larger
    /// batches get MESSAGE_TOO_LARGE. Default 1 MiB.
    pub message_max_bytes: usize,
    /// Concurrent connections. At the cap, a new connection takes the slot of
    /// the oldest connection that has not yet sent a complete request (so a
    /// flood of silent sockets cannot lock real clients out); when every slot
    /// is in use by active clients, new ones wait in the accept queue.
    /// Default 1024.
    pub max_connections: usize,
    /// Concurrent connections from one IP address (Kafka's
    /// `max.connections.per.ip`); further ones are closed at once. Default
    /// 1024, the same as `max_connections`: lower it where clients on
    /// different hosts share the broker.
    pub max_connections_per_ip: usize,
    /// A new connection must deliver its first complete request within this
    /// long, or it is closed (silent sockets hold slots otherwise). Default 10 s.
    pub connection_setup_timeout: Duration,
    /// Time allowed to finish a frame once its first byte arrived (against
    /// slow-loris clients). Default 30 s.
    pub request_read_timeout: Duration,
    /// A connection with no request for this long is closed, and so is one
    /// whose client takes no byte of a pending response for this long.
    /// Default 10 min (Kafka's `connections.max.idle.ms`).
    pub idle_timeout: Duration,
    /// Response bytes a connection may have waiting to be written; once reached
    /// the connection reads no further request (a client that never reads
    /// cannot grow the broker's memory). Default 64 MiB.
    pub max_unsent_response_bytes: usize,
    /// Requests a connection may have in flight (pipelining). Default 64.
    pub max_in_flight_requests: usize,
    /// Upper bound on one Fetch response's record bytes, whatever the client
    /// asks. Default 50 MiB (Kafka's `fetch.max.bytes`).
    pub fetch_max_bytes: usize,
    /// How often the log cleaner looks for compacted partitions that are
    /// due (Kafka's `log.cleaner.backoff.ms`). One pass runs at a time,
    /// throttled so producers keep the disk. Default 15 s.
    pub log_cleaner_backoff: Duration,
    /// An idempotent producer that appended nothing to a partition for this
    /// long, in ms, is forgotten there (Kafka's
    /// `producer.id.expiration.ms`); its next batch is then accepted at any
    /// sequence. Default 86400000 (1 day, Kafka's default).
    pub producer_id_expiration_ms: i64,
    /// The longest `transaction.timeout.ms` a transactional producer may
    /// ask for, in ms (Kafka's `transaction.max.timeout.ms`); more is
    /// INVALID_TRANSACTION_TIMEOUT. Default 900000 (15 min, Kafka's default).
    pub transaction_max_timeout_ms: i32,
    /// How often the transaction coordinator aborts transactions open past
    /// their timeout and retries completions a storage error interrupted
    /// (Kafka's `transaction.abort.timed.out.transaction.cleanup.interval.ms`,
    /// 10 s there). Default 1 s.
    pub transaction_check_interval: Duration,
    /// Consumer-group coordinator settings.
    pub group: GroupConfig,
    /// The HTTP port serving GET /metrics (read-only). Default
    /// [`HttpListen::Default`] of [`DEFAULT_HTTP`].
    pub http: HttpListen,
    /// TLS, SASL and ACLs. Default none of them, as Kafka.
    pub security: SecurityConfig,
}

/// Settings of the consumer-group coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// How long a group leaving Empty waits for more members before its
    /// first generation, in ms, extended by the same again (within the
    /// rebalance timeout) while members keep arriving, so consumers started
    /// together land in one generation instead of one rebalance each.
    /// Kafka's `group.initial.rebalance.delay.ms` defaults to 3000; the
    /// default here is 100, which covers clients started by one script or
    /// orchestrator at once without making every first join slow.
    pub initial_rebalance_delay_ms: u64,
    /// Shortest session timeout a member may ask for, in ms. Kafka's
    /// `group.min.session.timeout.ms` defaults to 6000; 1000 here so tests and
    /// benchmarks can pace groups with short timeouts (a flapping consumer
    /// with a short timeout only hurts its own group).
    pub min_session_timeout_ms: i32,
    /// Longest session timeout a member may ask for, in ms. Default 30
    /// minutes (Kafka's `group.max.session.timeout.ms`).
    pub max_session_timeout_ms: i32,
    /// Most members (joined, or handed an id and expected) in one group;
    /// further joiners get GROUP_MAX_SIZE_REACHED. Each member holds its
    /// protocol metadata in memory, so the number is bounded. Default 1000.
    pub max_members: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 100,
            min_session_timeout_ms: 1000,
            max_session_timeout_ms: 30 * 60 * 1000,
            max_members: 1000,
        }
    }
}

impl GroupConfig {
    /// Rejects settings the coordinator cannot work with.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_session_timeout_ms < 1
            || self.min_session_timeout_ms > self.max_session_timeout_ms
        {
            return Err(format!(
                "group session timeout bounds must satisfy 1 <= min ({}) <= max ({})",
                self.min_session_timeout_ms, self.max_session_timeout_ms
            ));
        }
        if self.max_members == 0 {
            return Err("group max members must be positive".to_string());
        }
        Ok(())
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            data_dir: std::path::PathBuf::from("./sediment-data"),
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9092))),
            advertised_host: None,
            broker_id: 0,
            cluster_id: "sediment".to_string(),
            log: LogConfig::default(),
            auto_create_topics: true,
            default_partitions: 1,
            max_partitions_per_topic: 1000,
            max_request_bytes: 100 << 20,
            max_control_request_bytes: 1 << 20,
            message_max_bytes: 1 << 20,
            max_connections: 1024,
            max_connections_per_ip: 1024,
            connection_setup_timeout: Duration::from_secs(10),
            request_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            max_unsent_response_bytes: 64 << 20,
            max_in_flight_requests: 64,
            fetch_max_bytes: 50 << 20,
            log_cleaner_backoff: Duration::from_millis(15_000),
            producer_id_expiration_ms: 86_400_000,
            transaction_max_timeout_ms: 900_000,
            transaction_check_interval: Duration::from_millis(1_000),
            group: GroupConfig::default(),
            http: HttpListen::Default(DEFAULT_HTTP),
            security: SecurityConfig::default(),
        }
    }
}

impl BrokerConfig {
    /// Rejects settings the broker cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        self.log.validate()?;
        self.group.validate()?;
        self.security.validate()?;
        if self.listen.is_none() && self.security.tls.is_none() {
            return Err(
                "--listen off leaves no listener: give --tls-listen HOST:PORT with --tls-cert and --tls-key"
                    .to_string(),
            );
        }
        if self.producer_id_expiration_ms < 1 {
            return Err(format!(
                "producer id expiration must be at least 1 ms, got {}",
                self.producer_id_expiration_ms
            ));
        }
        if self.transaction_max_timeout_ms < 1 {
            return Err(format!(
                "transaction max timeout must be at least 1 ms, got {}",
                self.transaction_max_timeout_ms
            ));
        }
        if self.default_partitions < 1 {
            return Err(format!(
                "default partitions must be at least 1, got {}",
                self.default_partitions
            ));
        }
        if self.max_partitions_per_topic < self.default_partitions {
            return Err(format!(
                "max partitions per topic ({}) is below the default partitions ({})",
                self.max_partitions_per_topic, self.default_partitions
            ));
        }
        if self.max_control_request_bytes < 1024
            || self.max_control_request_bytes > self.max_request_bytes
        {
            return Err(format!(
                "max control request bytes must be between 1024 and max request bytes, got {}",
                self.max_control_request_bytes
            ));
        }
        if self.max_request_bytes < 1024 {
            return Err(format!(
                "max request bytes must be at least 1024, got {}",
                self.max_request_bytes
            ));
        }
        if self.message_max_bytes == 0 || self.message_max_bytes > self.max_request_bytes {
            return Err(format!(
                "message max bytes must be positive and at most max request bytes ({}), got {}",
                self.max_request_bytes, self.message_max_bytes
            ));
        }
        if self.max_connections == 0
            || self.max_connections_per_ip == 0
            || self.max_in_flight_requests == 0
        {
            return Err(
                "max connections (total and per IP) and max in-flight requests must be positive"
                    .to_string(),
            );
        }
        if self.connection_setup_timeout.is_zero() {
            return Err("the connection setup timeout must be positive".to_string());
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
    fn given_http_settings_then_off_and_addresses_parse_and_anything_else_is_refused() {
        assert_eq!("off".parse::<HttpListen>(), Ok(HttpListen::Off));
        assert_eq!(
            "127.0.0.1:0".parse::<HttpListen>(),
            Ok(HttpListen::Explicit("127.0.0.1:0".parse().unwrap()))
        );
        assert_eq!(
            "127.0.0.1:9644".parse::<HttpListen>(),
            Ok(HttpListen::Explicit(DEFAULT_HTTP))
        );
        let error = "localhost".parse::<HttpListen>().unwrap_err();
        assert!(error.contains("HOST:PORT"), "{error}");
        assert!("".parse::<HttpListen>().is_err());
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
