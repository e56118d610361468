//! The broker's shared state: configuration, partition logs and topics, and
//! the operations handlers share (find a partition, create or delete a topic,
//! hand out producer ids).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use crate::basics::now_ms;
use crate::basics::TopicPartition;
use crate::config::{BrokerConfig, LogConfig};
use crate::error::StorageError;
use crate::group::coordinator::Coordinator;
use crate::group::offsets::{OffsetStore, OFFSETS_TOPIC};
use crate::producer_ids::ProducerIds;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::gatekeeper::{Denied, Gatekeeper, GatekeeperError};
use crate::session::{ListenerKind, Session};
use crate::storage::log_manager::LogManager;
use crate::storage::PartitionLog;
use crate::telemetry::Telemetry;
use crate::topics::{
    topic_log_config, validate_topic_name, TopicError, TopicMeta, TopicRegistry, MAX_MESSAGE_BYTES,
};
use crate::txn::coordinator::TxnCoordinator;
use crate::txn::log::{TxnLog, TXN_TOPIC};

/// Errors that stop the broker from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The data directory could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Topic metadata could not be loaded.
    #[error(transparent)]
    Topics(#[from] TopicError),
    /// The users or ACL file could not be loaded.
    #[error(transparent)]
    Security(#[from] GatekeeperError),
}

/// Why a topic or partition operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicOpError {
    /// No such topic, or no such partition of it.
    #[error("{0}")]
    UnknownTopicOrPartition(String),
    /// The topic exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The name is not a valid topic name.
    #[error("{0}")]
    InvalidName(String),
    /// The partition count is out of range.
    #[error("{0}")]
    InvalidPartitions(String),
    /// A topic config is unknown or has a bad value.
    #[error("{0}")]
    InvalidConfig(String),
    /// A manual replica assignment is malformed (CreatePartitions).
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// Topic metadata could not be written.
    #[error("{0}")]
    Metadata(String),
    /// A partition's storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Shared broker state.
pub struct Broker {
    config: BrokerConfig,
    logs: LogManager,
    offsets: Arc<OffsetStore>,
    /// Started on the runtime by [`Broker::start_group_coordinator`] (the
    /// broker itself is opened outside any runtime).
    coordinator: OnceLock<Coordinator>,
    topics: TopicRegistry,
    security: Gatekeeper,
    /// Host and port of the plaintext and the TLS listener, once bound.
    advertised: [OnceLock<(String, i32)>; 2],
    producer_ids: ProducerIds,
    txn: TxnCoordinator,
    /// Request latencies and open connections, for the metrics endpoint.
    telemetry: Telemetry,
}

impl Broker {
    /// Asks the storage flusher for a sync of `log` covering everything
    /// appended to it so far (await [`PartitionLog::durable`] for it).
    pub fn request_flush(&self, log: &Arc<PartitionLog>) {
        self.logs.request_flush(log);
    }

    /// Opens the data directory: loads topics, recovers partitions with their
    /// topics' configs, and reconciles the two (partitions on disk without a
    /// topic are registered; topics missing a partition get an empty one).
    pub fn open(config: BrokerConfig) -> Result<Self, StartupError> {
        config.validate().map_err(StartupError::Config)?;
        let meta = config.data_dir.join(crate::storage::log_manager::META_DIR);
        std::fs::create_dir_all(&meta).map_err(|e| StorageError::io("create", &meta, e))?;
        let topics = TopicRegistry::load(&config.data_dir)?;
        let security = Gatekeeper::open(&config.data_dir, &config.security)?;
        let known: BTreeMap<String, TopicMeta> = topics
            .list()
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let logs = LogManager::open(&config.data_dir, config.log.clone(), |tp| {
            if tp.topic == OFFSETS_TOPIC {
                return OffsetStore::log_config(&config.log);
            }
            if tp.topic == TXN_TOPIC {
                return TxnLog::log_config(&config.log);
            }
            known
                .get(&tp.topic)
                .and_then(|t| topic_log_config(&config.log, &t.configs).ok())
                .unwrap_or_else(|| config.log.clone())
        })?;
        let offsets = Arc::new(OffsetStore::open(&logs, &config.log)?);
        let txn = TxnCoordinator::open(
            &logs,
            &config.log,
            Arc::clone(&offsets),
            config.transaction_max_timeout_ms,
        )?;
        let broker = Self {
            txn,
            offsets,
            coordinator: OnceLock::new(),
            // Never reused, even across restarts: see `producer_ids`.
            producer_ids: ProducerIds::open(&meta, now_ms())?,
            config,
            logs,
            topics,
            advertised: [OnceLock::new(), OnceLock::new()],
            telemetry: Telemetry::new(),
            security,
        };
        broker.reconcile()?;
        Ok(broker)
    }

    fn reconcile(&self) -> Result<(), StartupError> {
        let mut on_disk: BTreeMap<String, i32> = BTreeMap::new();
        let user_partitions = self
            .logs
            .partitions()
            .into_iter()
            .map(|(tp, _)| tp)
            .chain(self.logs.offline_partitions().into_iter().map(|(tp, _)| tp))
            .filter(|tp| tp.topic != OFFSETS_TOPIC && tp.topic != TXN_TOPIC);
        for tp in user_partitions {
            let count = on_disk.entry(tp.topic.clone()).or_default();
            *count = (*count).max(tp.partition + 1);
        }
        for (name, partitions) in on_disk {
            if self.topics.get(&name).is_none() && validate_topic_name(&name).is_ok() {
                tracing::warn!(topic = %name, partitions, "registering a topic found on disk without metadata");
                self.topics.insert(TopicMeta {
                    name,
                    id: *uuid::Uuid::new_v4().as_bytes(),
                    partitions,
                    configs: BTreeMap::new(),
                })?;
            }
        }
        for topic in self.topics.list() {
            let config = self.log_config(&topic);
            for partition in 0..topic.partitions {
                let tp = TopicPartition::new(topic.name.clone(), partition);
                if matches!(self.logs.get(&tp), Ok(None)) {
                    self.logs.get_or_create(&tp, config.clone())?;
                }
            }
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The partition logs.
    pub fn logs(&self) -> &LogManager {
        &self.logs
    }

    /// The counters the metrics endpoint reads (request latency per API,
    /// open connections).
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// The committed-offsets store.
    pub fn offsets(&self) -> &Arc<OffsetStore> {
        &self.offsets
    }

    /// Starts the group coordinator task on the current tokio runtime (once;
    /// later calls do nothing). Must be called from within a runtime.
    pub fn start_group_coordinator(&self) -> &Coordinator {
        self.coordinator.get_or_init(|| {
            Coordinator::start(Arc::clone(&self.offsets), self.config.group.clone())
        })
    }

    /// The group coordinator, started on first use if [`Broker::start`] did
    /// not start it (handlers run inside the runtime); `None` outside a
    /// runtime.
    pub fn group_coordinator(&self) -> Option<&Coordinator> {
        match self.coordinator.get() {
            Some(coordinator) => Some(coordinator),
            None => tokio::runtime::Handle::try_current()
                .ok()
                .map(|_| self.start_group_coordinator()),
        }
    }

    /// Stops the group coordinator, answering its parked requests so that
    /// connections can drain.
    pub async fn stop_group_coordinator(&self) {
        if let Some(coordinator) = self.coordinator.get() {
            coordinator.shutdown().await;
        }
    }

    /// The transaction coordinator.
    pub fn txn_coordinator(&self) -> &TxnCoordinator {
        &self.txn
    }

    /// Users, ACLs and failed authentications.
    pub fn security(&self) -> &Gatekeeper {
        &self.security
    }

    /// Whether `session` may do `operation` on the resource (always, unless
    /// `--authorizer` is on).
    pub fn allows(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.security
            .allows(session, operation, resource_type, name)
    }

    /// `Ok` if `session` may do `operation` on the resource, else the
    /// refusal to map to an error code.
    pub fn authorize(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<(), Denied> {
        self.security
            .authorize(session, operation, resource_type, name)
    }

    /// The topics.
    pub fn topics(&self) -> &TopicRegistry {
        &self.topics
    }

    /// Records the host and port clients of `listener` should connect to
    /// (after binding).
    pub fn set_advertised(&self, listener: ListenerKind, host: String, port: u16) {
        let _ = self.advertised[listener as usize].set((host, i32::from(port)));
    }

    /// The host and port in Metadata responses to clients of the plaintext
    /// listener (or of the TLS one, when it is the only one).
    pub fn advertised(&self) -> (String, i32) {
        let listener = if self.config.listen.is_some() {
            ListenerKind::Plain
        } else {
            ListenerKind::Tls
        };
        self.advertised_to(listener)
    }

    /// The host and port in Metadata responses to a client of `listener`:
    /// each listener advertises itself, so a TLS client is never sent to the
    /// plaintext port (Kafka's per-listener advertised addresses).
    pub fn advertised_to(&self, listener: ListenerKind) -> (String, i32) {
        self.advertised[listener as usize]
            .get()
            .cloned()
            .unwrap_or_else(|| {
                let listen = match listener {
                    ListenerKind::Plain => self.config.listen,
                    ListenerKind::Tls => self.config.security.tls.as_ref().map(|t| t.listen),
                }
                .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 9092)));
                (
                    self.config
                        .advertised_host
                        .clone()
                        .unwrap_or_else(|| listen.ip().to_string()),
                    i32::from(listen.port()),
                )
            })
    }

    /// The log configuration of a topic (broker defaults plus its overrides).
    pub fn log_config(&self, topic: &TopicMeta) -> LogConfig {
        topic_log_config(&self.config.log, &topic.configs)
            .unwrap_or_else(|_| self.config.log.clone())
    }

    /// Largest batch the topic accepts (`max.message.bytes`, else the broker's `message_max_bytes`).
    pub fn max_message_bytes(&self, topic: &TopicMeta) -> usize {
        topic
            .configs
            .get(MAX_MESSAGE_BYTES)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(self.config.message_max_bytes)
    }

    /// The topic, creating it with the defaults if auto-creation is on.
    pub fn topic_or_auto_create(&self, name: &str) -> Result<TopicMeta, TopicOpError> {
        if let Some(topic) = self.topics.get(name) {
            return Ok(topic);
        }
        if !self.config.auto_create_topics {
            return Err(TopicOpError::UnknownTopicOrPartition(format!(
                "topic {name} does not exist and auto-creation is off"
            )));
        }
        match self.create_topic(
            name,
            self.config.default_partitions,
            &BTreeMap::new(),
            false,
        ) {
            Ok(topic) => Ok(topic),
            // Another request created it meanwhile.
            Err(TopicOpError::AlreadyExists(_)) => self
                .topics
                .get(name)
                .ok_or_else(|| TopicOpError::UnknownTopicOrPartition(name.to_string())),
            Err(refusal) => Err(refusal),
        }
    }

    /// The log a Produce to `topic`-`partition` appends to and the topic's
    /// `max.message.bytes`, with one registry lookup and no copy of the
    /// topic (auto-creating it if that is on).
    pub fn produce_target(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<PartitionLog>, usize), TopicOpError> {
        let known = self.topics.lookup(topic, |meta| {
            (meta.partitions, self.max_message_bytes(meta))
        });
        let (partitions, max) = match known {
            Some(found) => found,
            None => {
                let meta = self.topic_or_auto_create(topic)?;
                (meta.partitions, self.max_message_bytes(&meta))
            }
        };
        let unknown = || {
            TopicOpError::UnknownTopicOrPartition(format!(
                "this broker does not host {topic}-{partition}"
            ))
        };
        if !(0..partitions).contains(&partition) {
            return Err(unknown());
        }
        let log = self
            .logs
            .get(&TopicPartition::new(topic, partition))
            .map_err(TopicOpError::Storage)?
            .ok_or_else(unknown)?;
        Ok((log, max))
    }

    /// The log of one partition of an existing topic.
    pub fn partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionLog>, TopicOpError> {
        let unknown = || {
            TopicOpError::UnknownTopicOrPartition(format!(
                "this broker does not host {topic}-{partition}"
            ))
        };
        let meta = self.topics.get(topic).ok_or_else(unknown)?;
        if partition < 0 || partition >= meta.partitions {
            return Err(unknown());
        }
        self.logs
            .get(&TopicPartition::new(topic, partition))
            .map_err(TopicOpError::Storage)?
            .ok_or_else(unknown)
    }

    /// Creates a topic with `partitions` partitions and config overrides.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, TopicOpError> {
        validate_topic_name(name).map_err(|e| TopicOpError::InvalidName(e.to_string()))?;
        let max = self.config.max_partitions_per_topic;
        if !(1..=max).contains(&partitions) {
            return Err(TopicOpError::InvalidPartitions(format!("number of partitions must be between 1 and {max} (max_partitions_per_topic), got {partitions}"),
            ));
        }
        let log_config = topic_log_config(&self.config.log, configs)
            .map_err(|e| TopicOpError::InvalidConfig(e.to_string()))?;
        if self.topics.get(name).is_some() {
            return Err(TopicOpError::AlreadyExists(format!(
                "topic {name} already exists"
            )));
        }
        let topic = TopicMeta {
            name: name.to_string(),
            id: *uuid::Uuid::new_v4().as_bytes(),
            partitions,
            configs: configs.clone(),
        };
        if validate_only {
            return Ok(topic);
        }
        for partition in 0..partitions {
            self.logs
                .get_or_create(&TopicPartition::new(name, partition), log_config.clone())
                .map_err(TopicOpError::Storage)?;
        }
        let inserted = self
            .topics
            .insert(topic.clone())
            .map_err(|e| TopicOpError::Metadata(e.to_string()))?;
        if !inserted {
            return Err(TopicOpError::AlreadyExists(format!(
                "topic {name} already exists"
            )));
        }
        tracing::info!(topic = %name, partitions, configs = ?configs, "topic created");
        Ok(topic)
    }

    /// Deletes a topic and its files.
    pub fn delete_topic(&self, name: &str) -> Result<TopicMeta, TopicOpError> {
        let topic = self
            .topics
            .remove(name)
            .map_err(|e| TopicOpError::Metadata(e.to_string()))?
            .ok_or_else(|| {
                TopicOpError::UnknownTopicOrPartition(format!("topic {name} does not exist"))
            })?;
        for partition in 0..topic.partitions {
            if let Err(error) = self
                .logs
                .delete_partition(&TopicPartition::new(name, partition))
            {
                tracing::error!(topic = %name, partition, error = %error, "cannot delete partition files");
            }
        }
        tracing::info!(topic = %name, "topic deleted");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions (CreatePartitions): creates the
    /// new partitions' logs, then records the count, so a partition is
    /// never advertised before its log exists. A crash in between leaves
    /// empty partition directories the next grow reuses. With
    /// `validate_only` nothing changes. Returns the topic as it ends up.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<TopicMeta, TopicOpError> {
        let topic = self.topics.get(name).ok_or_else(|| {
            TopicOpError::UnknownTopicOrPartition(format!("topic {name} does not exist"))
        })?;
        let current = topic.partitions;
        if count <= current {
            return Err(TopicOpError::InvalidPartitions(format!(
                "topic {name} has {current} partitions; the count can only grow, got {count}"
            )));
        }
        let max = self.config.max_partitions_per_topic;
        if count > max {
            return Err(TopicOpError::InvalidPartitions(format!(
                "number of partitions must be at most {max} (max_partitions_per_topic), got {count}"
            )));
        }
        if validate_only {
            return Ok(TopicMeta {
                partitions: count,
                ..topic
            });
        }
        let config = self.log_config(&topic);
        for partition in current..count {
            self.logs
                .get_or_create(&TopicPartition::new(name, partition), config.clone())
                .map_err(TopicOpError::Storage)?;
        }
        let grown = self
            .topics
            .grow_partitions(name, count)
            .map_err(|e| TopicOpError::Metadata(e.to_string()))?
            .ok_or_else(|| {
                TopicOpError::UnknownTopicOrPartition(format!("topic {name} was deleted meanwhile"))
            })?;
        if grown.partitions != count {
            return Err(TopicOpError::InvalidPartitions(format!(
                "topic {name} has {} partitions now (grown concurrently); got {count}",
                grown.partitions
            )));
        }
        tracing::info!(topic = %name, from = current, to = count, "partitions added");
        Ok(grown)
    }

    /// Deletes the records of one partition below `offset` (DeleteRecords;
    /// -1 is the high watermark) and returns the new log start offset.
    /// Blocking (it syncs files): call it off the async runtime.
    pub fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, TopicOpError> {
        let log = self.partition(topic, partition)?;
        log.delete_records_before(offset)
            .map_err(TopicOpError::Storage)
    }

    /// Replaces a topic's config overrides with `configs` (AlterConfigs and
    /// IncrementalAlterConfigs compute the new set), after checking every
    /// key and value against the topic config table. The change is persisted
    /// and applied to the topic's open partitions at once. With
    /// `validate_only` nothing changes. Returns the topic as it ends up.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, TopicOpError> {
        let topic = self.topics.get(name).ok_or_else(|| {
            TopicOpError::UnknownTopicOrPartition(format!("topic {name} does not exist"))
        })?;
        let log_config = topic_log_config(&self.config.log, &configs)
            .map_err(|e| TopicOpError::InvalidConfig(e.to_string()))?;
        if validate_only {
            return Ok(TopicMeta { configs, ..topic });
        }
        let altered = self
            .topics
            .set_configs(name, configs)
            .map_err(|e| TopicOpError::Metadata(e.to_string()))?
            .ok_or_else(|| {
                TopicOpError::UnknownTopicOrPartition(format!("topic {name} was deleted meanwhile"))
            })?;
        for partition in 0..altered.partitions {
            if let Ok(Some(log)) = self.logs.get(&TopicPartition::new(name, partition)) {
                log.reconfigure(log_config.clone());
            }
        }
        tracing::info!(topic = %name, configs = ?altered.configs, "topic configs altered");
        Ok(altered)
    }

    /// A fresh producer id for InitProducerId, never handed out before,
    /// in this run or an earlier one (see `producer_ids`).
    pub fn next_producer_id(&self) -> Result<i64, StorageError> {
        self.producer_ids.next()
    }

    /// Clean shutdown of the storage (see [`LogManager::shutdown`]).
    pub fn shutdown(&self) -> Result<(), StorageError> {
        self.logs.shutdown()
    }
}
