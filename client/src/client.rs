//! [`ClientBuilder`] and [`Client`]: the one way into the cluster. A
//! `Client` owns the cluster state — the metadata cache and the connection
//! pool (`cluster`) — and hands out the roles that use it: producers,
//! consumers, group consumers and the admin.
//!
//! Invariants:
//! - The settings are checked, and the cluster answered a Metadata request,
//!   before a `Client` exists: a role handed out never fails to connect
//!   for a reason `build` could have seen.
//! - Every role handed out by one `Client` (or its clones) shares the same
//!   `Cluster`: what one learns about leaders and brokers, all see. Roles
//!   keep the cluster alive on their own; dropping the `Client` closes
//!   nothing they use.

use std::fmt;
use std::time::Duration;

use crate::admin::Admin;
use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::consumer::{Consumer, ConsumerConfig};
use crate::error::Result;
use crate::group::{GroupConsumer, GroupConsumerConfig};
use crate::producer::{Producer, ProducerConfig};
use crate::security::SecurityConfig;

/// Settings shared by everything a [`Client`] hands out; `build` connects.
///
/// ```no_run
/// # async fn demo() -> sediment_client::Result<()> {
/// use std::time::Duration;
/// use sediment_client::ClientBuilder;
///
/// let client = ClientBuilder::new("127.0.0.1:9092")
///     .client_id("billing")
///     .request_timeout(Duration::from_secs(10))
///     .build()
///     .await?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBuilder {
    config: ClientConfig,
}

impl ClientBuilder {
    /// Starts from the defaults, for the cluster at `bootstrap`: a
    /// comma-separated `host:port` list (`bootstrap.servers`) of which only
    /// one needs to answer.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            config: ClientConfig::new(bootstrap),
        }
    }

    /// Sent in every request header (`client.id`, default `sediment-client`);
    /// shows up in broker logs and in group member descriptions.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.config.client_id = client_id.into();
        self
    }

    /// How long to wait for one response before the request fails and its
    /// connection is closed (`request.timeout.ms`, default 30 s). Fetches
    /// get their long-poll wait on top. Also bounds a connection attempt,
    /// and the retries of group commits and joins.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Wait before the first reconnect to a broker (`reconnect.backoff.ms`,
    /// default 50 ms); doubles on each further failure. Also the base of the
    /// back-off between retries of failed requests and metadata lookups.
    pub fn reconnect_backoff(mut self, backoff: Duration) -> Self {
        self.config.reconnect_backoff = backoff;
        self
    }

    /// Cap of the reconnect back-off (`reconnect.backoff.max.ms`, default 1 s).
    pub fn reconnect_backoff_max(mut self, max: Duration) -> Self {
        self.config.reconnect_backoff_max = max;
        self
    }

    /// How connections are secured: TLS, SASL or both (default plain
    /// TCP). Every connection of the client, reconnects included,
    /// negotiates TLS and authenticates before its first other request.
    /// `build` reads the CA file (or the system trust store) and fails with
    /// [`ClientError::Config`](crate::ClientError::Config) when it is
    /// unusable or the settings do not fit together; refused credentials
    /// fail with [`ClientError::Authentication`](crate::ClientError::Authentication)
    /// and an untrusted certificate with [`ClientError::Tls`](crate::ClientError::Tls).
    ///
    /// ```no_run
    /// # async fn demo() -> sediment_client::Result<()> {
    /// use sediment_client::{ClientBuilder, SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol};
    ///
    /// let password = std::env::var("KAFKA_PASSWORD").unwrap_or_default();
    /// let client = ClientBuilder::new("broker.example.com:9093")
    ///     .security(
    ///         SecurityConfig::new(SecurityProtocol::SaslSsl)
    ///             .ca_file("ca.pem")
    ///             .sasl(SaslConfig::new(SaslMechanism::ScramSha512, "alice", password)),
    ///     )
    ///     .build()
    ///     .await?;
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub fn security(mut self, security: SecurityConfig) -> Self {
        self.config.security = security;
        self.config.tls = None;
        self
    }

    /// Checks the settings, connects to a bootstrap broker and loads the
    /// broker list. Must run inside a Tokio runtime. Fails with
    /// [`ClientError::Config`](crate::ClientError::Config) for unusable
    /// settings and [`ClientError::NoBrokerAvailable`](crate::ClientError::NoBrokerAvailable)
    /// when no bootstrap broker answers.
    pub async fn build(self) -> Result<Client> {
        Ok(Client {
            cluster: Cluster::connect(self.config).await?,
        })
    }
}

/// A connection to one cluster: one metadata cache and one connection pool,
/// shared by every producer, consumer and admin it hands out. Cheap to
/// clone; clones share everything.
///
/// ```no_run
/// # async fn demo() -> sediment_client::Result<()> {
/// use sediment_client::{ClientBuilder, ConsumerConfig, ProducerConfig};
///
/// let client = ClientBuilder::new("127.0.0.1:9092").build().await?;
/// let admin = client.admin();
/// let producer = client.producer(ProducerConfig::default())?;
/// let consumer = client.consumer(ConsumerConfig::default())?;
/// # let _ = (admin, producer, consumer);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    cluster: Cluster,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.cluster.config();
        f.debug_struct("Client")
            .field("bootstrap", &config.bootstrap)
            .field("client_id", &config.client_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A topic and group administration client.
    pub fn admin(&self) -> Admin {
        Admin::new(self.cluster.clone())
    }

    /// A producer with its own buffer, batches and background tasks,
    /// sending over the client's shared connections. Fails with
    /// [`ClientError::Config`](crate::ClientError::Config) for unusable
    /// settings.
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer> {
        Producer::new(self.cluster.clone(), config)
    }

    /// A consumer of manually assigned partitions, fetching over
    /// connections of its own (so that its long polls hold up no other
    /// role's requests). Fails with
    /// [`ClientError::Config`](crate::ClientError::Config) for unusable
    /// settings.
    pub fn consumer(&self, config: ConsumerConfig) -> Result<Consumer> {
        Consumer::new(self.cluster.clone(), config)
    }

    /// A member of consumer group `config.group_id`, with its own fetch and
    /// group coordinator connections and heartbeat task. The group is
    /// joined by the first `poll()` after
    /// [`GroupConsumer::subscribe`]. Fails with
    /// [`ClientError::Config`](crate::ClientError::Config) for unusable
    /// settings.
    pub fn group_consumer(&self, config: GroupConsumerConfig) -> Result<GroupConsumer> {
        GroupConsumer::new(self.cluster.clone(), config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientError;

    #[test]
    fn given_builder_methods_then_they_set_the_shared_settings() {
        let builder = ClientBuilder::new("a:1,b:2")
            .client_id("billing")
            .request_timeout(Duration::from_secs(7))
            .reconnect_backoff(Duration::from_millis(20))
            .reconnect_backoff_max(Duration::from_millis(400));
        let expected = ClientConfig {
            bootstrap: "a:1,b:2".into(),
            client_id: "billing".into(),
            request_timeout: Duration::from_secs(7),
            reconnect_backoff: Duration::from_millis(20),
            reconnect_backoff_max: Duration::from_millis(400),
            security: SecurityConfig::default(),
            tls: None,
        };
        assert_eq!(builder.config, expected);
        assert_eq!(
            ClientBuilder::new("h:1").config,
            ClientConfig::new("h:1"),
            "defaults"
        );
    }

    #[tokio::test]
    async fn given_unusable_settings_then_build_fails_before_connecting() {
        let cases = [
            ClientBuilder::new(" , "),
            ClientBuilder::new("127.0.0.1:1").request_timeout(Duration::ZERO),
            ClientBuilder::new("127.0.0.1:1")
                .reconnect_backoff(Duration::from_secs(2))
                .reconnect_backoff_max(Duration::from_secs(1)),
        ];
        for builder in cases {
            let result = builder.clone().build().await;
            assert!(
                matches!(result, Err(ClientError::Config(_))),
                "{builder:?}: {result:?}"
            );
        }
    }
}
