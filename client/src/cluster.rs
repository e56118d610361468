//! [`Cluster`]: the client's view of the cluster — bootstrap, the metadata
//! cache, and the connection pool with reconnect back-off. One per
//! [`Client`](crate::Client): its admin, producers and consumers all share it.
//!
//! Invariants:
//! - One shared connection per broker carries metadata, admin, produce and
//!   offset-lookup requests of every role. Fetches do not: each consumer
//!   fetches over its own [`Connections`] (one per broker), because brokers
//!   answer a connection's requests in order and a long-poll Fetch would
//!   hold every request behind it (a produce acknowledgement, another
//!   consumer's fetch) for up to its `fetch_max_wait`. Group coordinator
//!   traffic has its own connection too (see `group::coordinator`).
//! - At most one connection attempt per broker and pool at a time (a
//!   per-broker async lock); after `n` consecutive failures the next attempt
//!   waits `reconnect_backoff · 2^(n-1)`, capped at `reconnect_backoff_max`.
//! - A closed connection is replaced on the next use, never reused.
//! - The metadata cache is refreshed on demand: by callers that saw
//!   NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE
//!   or a lost connection (see [`ClientError::needs_metadata_refresh`]).
//!   Every role sees what any role's refresh learned.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sediment_protocol::messages::metadata::MetadataRequestTopic;
use sediment_protocol::messages::{MetadataRequest, MetadataResponse};
use sediment_protocol::{ApiKey, ErrorCode};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::config::ClientConfig;
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};
use crate::metadata::{Metadata, TopicMeta, TopicOutcome};

/// How many times [`Cluster::retry`] tries a retriable operation.
const MAX_ATTEMPTS: u32 = 10;

/// Shared handle to the cluster view; clones share everything.
#[derive(Clone)]
pub(crate) struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    bootstrap: Vec<String>,
    metadata: RwLock<Metadata>,
    /// The connections every role shares (everything but fetches).
    shared: Connections,
    /// The runtime the client was built on: background tasks started
    /// outside any runtime run there.
    runtime: Handle,
}

/// A pool of connections, at most one per broker (or bootstrap address),
/// each with its own reconnect back-off. Dropping the pool closes its
/// connections once no request holds them.
#[derive(Default)]
pub(crate) struct Connections {
    slots: Mutex<HashMap<SlotKey, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl Connections {
    fn slot(&self, key: SlotKey) -> Arc<tokio::sync::Mutex<Slot>> {
        Arc::clone(
            self.slots
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_default(),
        )
    }

    /// An open connection of this pool, if any is idle enough to look at.
    fn any_open(&self) -> Option<BrokerConnection> {
        let slots: Vec<Arc<tokio::sync::Mutex<Slot>>> = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for slot in slots {
            if let Ok(slot) = slot.try_lock() {
                if let Some(c) = slot.connection.as_ref().filter(|c| !c.is_closed()) {
                    return Some(c.clone());
                }
            }
        }
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SlotKey {
    Broker(i32),
    Bootstrap(String),
}

#[derive(Default)]
struct Slot {
    connection: Option<BrokerConnection>,
    failures: u32,
    retry_at: Option<tokio::time::Instant>,
}

impl Cluster {
    /// Validates `config` and loads the broker list from the bootstrap servers.
    pub(crate) async fn connect(mut config: ClientConfig) -> Result<Self> {
        config.prepare()?;
        let bootstrap = config.bootstrap_addrs()?;
        let runtime = Handle::try_current().map_err(|_| {
            ClientError::Config("the client must be built inside a Tokio runtime".into())
        })?;
        let cluster = Self {
            inner: Arc::new(Inner {
                config,
                bootstrap,
                metadata: RwLock::new(Metadata::default()),
                shared: Connections::default(),
                runtime,
            }),
        };
        cluster.fetch_metadata(Some(&[]), false).await?;
        Ok(cluster)
    }

    /// The settings this cluster was opened with.
    pub(crate) fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Starts a background task: on the caller's runtime when there is one
    /// (as if the caller had spawned it), else on the client's.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match Handle::try_current() {
            Ok(current) => current.spawn(task),
            Err(_) => self.inner.runtime.spawn(task),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Metadata> {
        // Writers replace whole entries; a panic mid-write leaves a usable map.
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Cached description of `topic`.
    pub(crate) fn cached_topic(&self, topic: &str) -> Option<TopicMeta> {
        self.read().topics.get(topic).cloned()
    }

    /// Cached leader of `topic`/`partition`.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.read().leader(topic, partition)
    }

    /// Asks any broker for metadata of `topics` (`None` = all topics) and
    /// folds the answer into the cache.
    pub(crate) async fn fetch_metadata(
        &self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<(MetadataResponse, HashMap<String, TopicOutcome>)> {
        let connection = self.any_connection().await?;
        let version = connection.version(ApiKey::Metadata)?;
        let mut request = MetadataRequest::default().with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(n.clone())))
                .collect()
        }));
        // Before v4 the field does not exist and brokers auto-create by default.
        if version >= 4 {
            request.allow_auto_topic_creation = auto_create;
        }
        let response = connection.send(&request, version).await?;
        let outcomes = self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apply(&response);
        Ok((response, outcomes))
    }

    /// Refreshes `topics`, ignoring failures (the caller retries anyway and
    /// will see the real error on its next attempt).
    pub(crate) async fn refresh_quietly(&self, topics: &[String]) {
        if let Err(e) = self.fetch_metadata(Some(topics), false).await {
            tracing::debug!(error = %e, "metadata refresh failed");
        }
    }

    /// The description of `topic`, from the cache or the cluster. Waits (up
    /// to the request timeout) for every partition to have a leader, as a
    /// freshly (auto-)created topic may not yet.
    pub(crate) async fn topic(&self, topic: &str, auto_create: bool) -> Result<TopicMeta> {
        if let Some(meta) = self.cached_topic(topic).filter(TopicMeta::all_led) {
            return Ok(meta);
        }
        let deadline = Instant::now() + self.inner.config.request_timeout;
        let names = [topic.to_string()];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = match self.fetch_metadata(Some(&names), auto_create).await {
                Ok((_, outcomes)) => outcomes.get(topic).cloned(),
                Err(e) if e.is_retriable() && Instant::now() < deadline => None,
                Err(e) => return Err(e),
            };
            match (outcome, self.cached_topic(topic)) {
                (_, Some(meta)) if meta.all_led() => return Ok(meta),
                (Some(TopicOutcome::Unknown), _) if !auto_create => {
                    return Err(ClientError::UnknownTopic {
                        topic: topic.to_string(),
                    })
                }
                (Some(TopicOutcome::Error(code)), _) if !is_transient_topic_error(code) => {
                    return Err(ClientError::from_code(
                        code,
                        || format!("metadata of topic `{topic}`"),
                        None,
                    )
                    .unwrap_or(ClientError::UnknownTopic {
                        topic: topic.to_string(),
                    }));
                }
                (outcome, cached) if Instant::now() >= deadline => {
                    return match (outcome, cached) {
                        (_, Some(meta)) => Ok(meta),
                        _ => Err(ClientError::UnknownTopic {
                            topic: topic.to_string(),
                        }),
                    };
                }
                _ => tokio::time::sleep(self.inner.config.backoff_after(attempt)).await,
            }
        }
    }

    /// The shared live connection to broker `id`, reconnecting (with
    /// back-off) if needed.
    pub(crate) async fn connection(&self, id: i32) -> Result<BrokerConnection> {
        self.connection_in(&self.inner.shared, id).await
    }

    /// The live connection to broker `id` of `pool` (a consumer's fetch
    /// connections), reconnecting (with back-off) if needed.
    pub(crate) async fn connection_in(
        &self,
        pool: &Connections,
        id: i32,
    ) -> Result<BrokerConnection> {
        let mut addr = self.read().brokers.get(&id).cloned();
        if addr.is_none() {
            self.fetch_metadata(Some(&[]), false).await?;
            addr = self.read().brokers.get(&id).cloned();
        }
        let addr = addr.ok_or_else(|| ClientError::NoBrokerAvailable {
            bootstrap: self.inner.config.bootstrap.clone(),
            last_error: format!("broker {id} is not in the cluster metadata"),
        })?;
        self.slot_connection(pool, SlotKey::Broker(id), &addr).await
    }

    /// A connection to the controller (for topic administration), or to
    /// any broker when the controller is unknown.
    pub(crate) async fn controller_connection(&self) -> Result<BrokerConnection> {
        // Some brokers report a controller id that is not among the brokers
        // they list (librdkafka's mock cluster says 0, its brokers are 1..n).
        let controller = {
            let metadata = self.read();
            metadata
                .controller
                .filter(|id| metadata.brokers.contains_key(id))
        };
        match controller {
            Some(id) => self.connection(id).await,
            None => self.any_connection().await,
        }
    }

    /// A live connection to some broker: an open one if there is one, else
    /// the known brokers, else the bootstrap list.
    pub(crate) async fn any_connection(&self) -> Result<BrokerConnection> {
        if let Some(open) = self.inner.shared.any_open() {
            return Ok(open);
        }
        let mut candidates: Vec<(SlotKey, String)> = {
            let metadata = self.read();
            let mut brokers: Vec<_> = metadata.brokers.iter().collect();
            brokers.sort();
            brokers
                .into_iter()
                .map(|(id, addr)| (SlotKey::Broker(*id), addr.clone()))
                .collect()
        };
        candidates.extend(
            self.inner
                .bootstrap
                .iter()
                .map(|a| (SlotKey::Bootstrap(a.clone()), a.clone())),
        );
        let mut last_error = String::from("no broker to try");
        for (key, addr) in candidates {
            match self.slot_connection(&self.inner.shared, key, &addr).await {
                Ok(c) => return Ok(c),
                // Refused credentials or an untrusted certificate: every
                // broker of the cluster would say the same, and the caller
                // must see this error, not a retriable "no broker".
                Err(e @ (ClientError::Authentication { .. } | ClientError::Tls { .. })) => {
                    return Err(e)
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(ClientError::NoBrokerAvailable {
            bootstrap: self.inner.config.bootstrap.clone(),
            last_error,
        })
    }

    async fn slot_connection(
        &self,
        pool: &Connections,
        key: SlotKey,
        addr: &str,
    ) -> Result<BrokerConnection> {
        let slot = pool.slot(key);
        let mut slot = slot.lock().await;
        if let Some(c) = slot.connection.as_ref() {
            if !c.is_closed() && c.addr() == addr {
                return Ok(c.clone());
            }
        }
        slot.connection = None;
        if let Some(at) = slot.retry_at {
            tokio::time::sleep_until(at).await;
        }
        match BrokerConnection::connect(addr, &self.inner.config).await {
            Ok(c) => {
                slot.failures = 0;
                slot.retry_at = None;
                slot.connection = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                slot.failures = slot.failures.saturating_add(1);
                let wait = self.inner.config.backoff_after(slot.failures);
                slot.retry_at = Some(tokio::time::Instant::now() + wait);
                tracing::debug!(broker = addr, error = %e, ?wait, "connect failed");
                Err(e)
            }
        }
    }

    /// Runs `op` until it succeeds, fails with a non-retriable error, or
    /// has been tried [`MAX_ATTEMPTS`] times; refreshes the metadata of
    /// `topics` between attempts when the error says it is stale.
    pub(crate) async fn retry<T, F, Fut>(&self, topics: &[String], mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op().await {
                Ok(value) => return Ok(value),
                Err(e) if e.is_retriable() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "retrying");
                    tokio::time::sleep(self.retry_backoff(attempt)).await;
                    if e.needs_metadata_refresh() {
                        self.refresh_quietly(topics).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Back-off before retry `attempt` of a request (not a reconnect).
    pub(crate) fn retry_backoff(&self, attempt: u32) -> Duration {
        self.inner
            .config
            .backoff_after(attempt)
            .max(Duration::from_millis(10))
    }
}

/// Topic-level metadata codes worth waiting out.
fn is_transient_topic_error(code: i16) -> bool {
    ErrorCode::try_from_code(code).is_some_and(|e| e.is_retriable())
}
