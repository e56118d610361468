//! The broker's security settings: the TLS listener, the SASL mechanisms
//! every listener requires, and whether requests are authorized against
//! ACLs. Parsing and validation only; `server::tls`, `server::sasl` and
//! `security` act on them.
//!
//! Invariant after [`SecurityConfig::validate`]: a TLS listener has both a
//! certificate and a key, and super users are `Type:name` principals.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The SASL mechanisms the broker can require: the wire codec's, shared
/// with the client.
pub use sediment_protocol::sasl::SaslMechanism;

/// Parses `--sasl`: `off`, or mechanisms separated by commas.
pub fn parse_sasl_mechanisms(s: &str) -> Result<Vec<SaslMechanism>, String> {
    if s.trim() == "off" {
        return Ok(Vec::new());
    }
    let mut mechanisms = Vec::new();
    for name in s.split(',').filter(|n| !n.trim().is_empty()) {
        let mechanism = name.parse::<SaslMechanism>().map_err(|e| e.to_string())?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        return Err("--sasl needs at least one mechanism (or `off`)".to_string());
    }
    Ok(mechanisms)
}

/// Parses `--super-users`: `none`, or principals separated by commas.
pub fn parse_principals(s: &str) -> Result<Vec<String>, String> {
    if s.trim() == "none" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(p.to_string()),
            _ => Err(format!(
                "super user `{p}` is not a principal: write it as User:NAME"
            )),
        })
        .collect()
}

/// The TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListenerConfig {
    /// Address of the TLS listener; port 0 picks a free one.
    pub listen: SocketAddr,
    /// PEM certificate chain the broker presents.
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    pub key: PathBuf,
    /// PEM CA certificates for mutual TLS: when set, clients must present a
    /// certificate signed by one of them, and their principal is its
    /// subject (`User:CN=…`).
    pub client_ca: Option<PathBuf>,
}

/// Every security setting of the broker. The default is Kafka's: no TLS,
/// no SASL, no authorization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    /// The TLS listener, if any.
    pub tls: Option<TlsListenerConfig>,
    /// Mechanisms every listener requires; empty means no authentication
    /// (every client is `User:ANONYMOUS`, or its certificate's subject).
    pub sasl: Vec<SaslMechanism>,
    /// Whether requests are authorized against ACLs (deny unless allowed).
    pub authorizer: bool,
    /// Principals that bypass ACLs (`User:admin`).
    pub super_users: Vec<String>,
}

impl SecurityConfig {
    /// Rejects settings the broker cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        for user in &self.super_users {
            parse_principals(user)?;
        }
        Ok(())
    }
}

/// The pieces of the TLS listener as the flags give them, assembled once
/// every layer (file, flags) is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFlags {
    /// `--tls-listen`, `None` for off.
    pub listen: Option<SocketAddr>,
    /// `--tls-cert`.
    pub cert: Option<PathBuf>,
    /// `--tls-key`.
    pub key: Option<PathBuf>,
    /// `--tls-client-ca`.
    pub client_ca: Option<PathBuf>,
}

impl TlsFlags {
    /// The TLS listener, or an error naming the missing flag.
    pub fn assemble(self) -> Result<Option<TlsListenerConfig>, String> {
        match (self.listen, self.cert, self.key) {
            (None, None, None) if self.client_ca.is_none() => Ok(None),
            (Some(listen), Some(cert), Some(key)) => Ok(Some(TlsListenerConfig {
                listen,
                cert,
                key,
                client_ca: self.client_ca,
            })),
            (None, _, _) => Err(
                "--tls-cert, --tls-key and --tls-client-ca need --tls-listen HOST:PORT".to_string(),
            ),
            _ => {
                Err("--tls-listen needs both --tls-cert CERT.pem and --tls-key KEY.pem".to_string())
            }
        }
    }
}

/// Parses `--tls-listen` / `--listen`: `off` or `HOST:PORT`.
pub fn parse_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    if s.trim() == "off" {
        return Ok(None);
    }
    s.parse::<SocketAddr>()
        .map(Some)
        .map_err(|_| format!("expected HOST:PORT (an IP address and a port) or `off`, got `{s}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_mechanism_lists_then_parsed_deduplicated_or_refused_naming_the_choices() {
        assert_eq!(
            parse_sasl_mechanisms("SCRAM-SHA-512,scram-sha-256,PLAIN,PLAIN").unwrap(),
            vec![
                SaslMechanism::ScramSha512,
                SaslMechanism::ScramSha256,
                SaslMechanism::Plain
            ]
        );
        assert!(parse_sasl_mechanisms("off").unwrap().is_empty());
        let error = parse_sasl_mechanisms("GSSAPI").unwrap_err();
        assert!(
            error.contains("GSSAPI") && error.contains("SCRAM-SHA-512"),
            "{error}"
        );
        assert!(parse_sasl_mechanisms(",").is_err());
    }

    #[test]
    fn given_super_users_then_principals_or_a_clear_error() {
        assert_eq!(
            parse_principals("User:admin, User:ops").unwrap(),
            vec!["User:admin".to_string(), "User:ops".to_string()]
        );
        assert!(parse_principals("none").unwrap().is_empty());
        assert!(parse_principals("admin").unwrap_err().contains("User:NAME"));
    }

    #[test]
    fn given_partial_tls_flags_then_the_missing_one_is_named() {
        let full = TlsFlags {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            client_ca: None,
        };
        assert!(full.clone().assemble().unwrap().is_some());
        assert!(TlsFlags::default().assemble().unwrap().is_none());
        let no_key = TlsFlags {
            key: None,
            ..full.clone()
        };
        assert!(no_key.assemble().unwrap_err().contains("--tls-key"));
        let no_listen = TlsFlags {
            listen: None,
            ..full
        };
        assert!(no_listen.assemble().unwrap_err().contains("--tls-listen"));
        assert_eq!(parse_listen("off").unwrap(), None);
        assert!(parse_listen("nine").unwrap_err().contains("nine"));
    }
}
