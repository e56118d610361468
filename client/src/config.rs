//! `ClientConfig`: the settings every role of a [`Client`](crate::Client)
//! (admin, producer, consumers) shares — where the cluster is, who we are,
//! how patient to be, and how connections are secured. Set through
//! [`ClientBuilder`](crate::ClientBuilder); checked once, by `validate`,
//! and prepared once (trust roots loaded), by `prepare`, before the client
//! connects.

use std::time::Duration;

use crate::error::{ClientError, Result};
use crate::security::{SecurityConfig, TlsSetup};

/// Connection settings shared by everything one [`Client`](crate::Client)
/// hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientConfig {
    /// Comma-separated `host:port` list used to discover the cluster
    /// (`bootstrap.servers`). Only one needs to answer.
    pub bootstrap: String,
    /// Sent in every request header (`client.id`); shows up in broker logs.
    pub client_id: String,
    /// How long to wait for one response before the request fails and the
    /// connection is closed (`request.timeout.ms`, default 30 s). Fetches get
    /// their long-poll wait on top.
    pub request_timeout: Duration,
    /// Wait before the first reconnect to a broker (`reconnect.backoff.ms`,
    /// default 50 ms); doubles on each failure.
    pub reconnect_backoff: Duration,
    /// Cap of the reconnect back-off (`reconnect.backoff.max.ms`, default 1 s).
    pub reconnect_backoff_max: Duration,
    /// TLS and SASL (`security.protocol`, …; default plaintext).
    pub security: SecurityConfig,
    /// The TLS configuration built from `security` by `prepare` (once per
    /// client, so the CA file is read once); `None` without TLS, or before
    /// `prepare`, in which case each connection builds its own.
    pub tls: Option<TlsSetup>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            bootstrap: "127.0.0.1:9092".to_string(),
            client_id: "sediment-client".to_string(),
            request_timeout: Duration::from_secs(30),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            security: SecurityConfig::default(),
            tls: None,
        }
    }
}

impl ClientConfig {
    /// The default settings with `bootstrap` set.
    pub(crate) fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            ..Self::default()
        }
    }

    /// The bootstrap addresses, trimmed, empty entries dropped.
    pub(crate) fn bootstrap_addrs(&self) -> Result<Vec<String>> {
        let addrs: Vec<String> = self
            .bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if addrs.is_empty() {
            return Err(ClientError::Config(format!(
                "bootstrap `{}` names no host:port",
                self.bootstrap
            )));
        }
        Ok(addrs)
    }

    /// Checks the settings that would otherwise fail later and obscurely.
    pub(crate) fn validate(&self) -> Result<()> {
        self.bootstrap_addrs()?;
        if self.request_timeout.is_zero() {
            return Err(ClientError::Config(
                "request_timeout must be above 0".into(),
            ));
        }
        if self.reconnect_backoff > self.reconnect_backoff_max {
            return Err(ClientError::Config(format!(
                "reconnect_backoff {:?} is above reconnect_backoff_max {:?}",
                self.reconnect_backoff, self.reconnect_backoff_max
            )));
        }
        self.security.validate()
    }

    /// Validates, then builds what every connection shares (the TLS
    /// configuration and its trust roots), so that a missing CA file fails
    /// `build` rather than each connection.
    pub(crate) fn prepare(&mut self) -> Result<()> {
        self.validate()?;
        if self.security.protocol.uses_tls() && self.tls.is_none() {
            self.tls = Some(TlsSetup::build(&self.security)?);
        }
        Ok(())
    }

    /// The TLS configuration for a new connection: the prepared one, or one
    /// built now for a configuration that was not prepared.
    pub(crate) fn tls_setup(&self) -> Result<TlsSetup> {
        match &self.tls {
            Some(tls) => Ok(tls.clone()),
            None => TlsSetup::build(&self.security),
        }
    }

    /// The reconnect delay after `failures` consecutive failed attempts:
    /// `reconnect_backoff · 2^(failures-1)`, capped.
    pub(crate) fn backoff_after(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.reconnect_backoff
            .saturating_mul(factor)
            .min(self.reconnect_backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_list_with_spaces_then_bootstrap_addrs_are_trimmed() {
        let config = ClientConfig::new(" a:1, b:2 ,,");
        assert_eq!(
            config.bootstrap_addrs().ok(),
            Some(vec!["a:1".to_string(), "b:2".to_string()])
        );
        assert!(ClientConfig::new(" , ").validate().is_err());
    }

    #[test]
    fn given_failures_then_backoff_doubles_up_to_cap() {
        let config = ClientConfig::default();
        assert_eq!(config.backoff_after(0), Duration::ZERO);
        assert_eq!(config.backoff_after(1), Duration::from_millis(50));
        assert_eq!(config.backoff_after(2), Duration::from_millis(100));
        assert_eq!(config.backoff_after(40), Duration::from_secs(1));
    }
}
