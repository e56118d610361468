//! How the client secures its connections: [`SecurityConfig`] (Kafka's
//! `security.protocol`, `ssl.ca.location`, `ssl.certificate.location`,
//! `ssl.key.location`, `sasl.mechanism`, `sasl.username`, `sasl.password`),
//! and the TLS client configuration built from it once per
//! [`Client`](crate::Client).
//!
//! Invariants:
//! - Certificates are always verified: against the PEM CA file when one is
//!   given, else against the system trust store. There is no "insecure"
//!   switch; an expired certificate, a self-signed one or one whose CA is
//!   not trusted fails the connection with [`ClientError::Tls`].
//! - The server name checked against the certificate is the host of the
//!   address dialled (bootstrap entry or the broker's advertised host); an
//!   IP address is checked against the certificate's IP SANs.
//! - A client certificate ([`ClientCertificate`], for mutual TLS) is
//!   presented only over TLS: with a protocol without TLS it is a
//!   configuration error, not silently dropped. Its files are read once,
//!   when the TLS configuration is built, like the CA file.
//! - A password is held in a [`Password`], whose `Debug` prints `***`: a
//!   configuration can be logged or printed without leaking it.
//!
//! Why the system store (rustls-native-certs) and not a bundled Mozilla
//! list (webpki-roots) when no CA file is given: librdkafka (kcat,
//! confluent-kafka) and the Java client trust the system store, so a broker
//! whose certificate comes from a company CA installed there works with
//! every client alike; a bundled list would refuse it and go stale with the
//! binary.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::RootCertStore;

use crate::error::{ClientError, Result};

/// Kafka's `security.protocol`: whether connections use TLS, SASL, both or
/// neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecurityProtocol {
    /// Plain TCP, no authentication (`PLAINTEXT`, the default).
    #[default]
    Plaintext,
    /// TLS, no SASL (`SSL`).
    Ssl,
    /// SASL over plain TCP (`SASL_PLAINTEXT`): the PLAIN mechanism then
    /// sends the password readable on the network.
    SaslPlaintext,
    /// SASL over TLS (`SASL_SSL`).
    SaslSsl,
}

impl SecurityProtocol {
    /// True for `SSL` and `SASL_SSL`.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// True for `SASL_PLAINTEXT` and `SASL_SSL`.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// The name Kafka configuration uses (`SASL_SSL`).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SecurityProtocol {
    type Err = ClientError;

    /// Kafka's names, in any case (`SASL_SSL`, `sasl_ssl`).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(ClientError::Config(format!(
                "unknown security protocol `{s}`: use plaintext, ssl, sasl_plaintext or sasl_ssl"
            ))),
        }
    }
}

/// Kafka's `sasl.mechanism`: the wire codec's, shared with the broker.
/// Its `FromStr` error converts into [`ClientError::Config`].
pub use sediment_protocol::sasl::SaslMechanism;

/// A secret that never prints: `Debug` shows `***` and there is no
/// `Display`, so a configuration holding one can be logged safely. The
/// value is read only through [`Password::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the authentication exchange (and nothing that
    /// prints it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Password {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl From<&str> for Password {
    fn from(secret: &str) -> Self {
        Self(secret.to_string())
    }
}

/// The SASL credentials (`sasl.mechanism`, `sasl.username`, `sasl.password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// How to authenticate.
    pub mechanism: SaslMechanism,
    /// The user the broker knows.
    pub username: String,
    /// The user's password; `Debug` prints `***`.
    pub password: Password,
}

impl SaslConfig {
    /// Credentials for `mechanism`.
    pub fn new(
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<Password>,
    ) -> Self {
        Self {
            mechanism,
            username: username.into(),
            password: password.into(),
        }
    }
}

/// A client certificate for mutual TLS (`ssl.certificate.location`,
/// `ssl.key.location`): the broker checks it against its client CA and
/// names the client after its subject (`User:CN=alice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// PEM file of the certificate, optionally followed by the
    /// intermediate CA certificates of its chain.
    pub cert: PathBuf,
    /// PEM file of its private key (PKCS#8, PKCS#1 or SEC1). Only the path
    /// is held here, so `Debug` never shows the key.
    pub key: PathBuf,
}

impl ClientCertificate {
    /// The certificate (chain) in `cert` and its private key in `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
        }
    }
}

/// How every connection of a [`Client`](crate::Client) is secured; set
/// with [`ClientBuilder::security`](crate::ClientBuilder::security).
///
/// ```
/// use sediment_client::{SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol};
///
/// let security = SecurityConfig::new(SecurityProtocol::SaslSsl)
///     .ca_file("/etc/sediment/ca.pem")
///     .sasl(SaslConfig::new(SaslMechanism::ScramSha512, "alice", "s3cret"));
/// assert!(!format!("{security:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityConfig {
    /// Plain TCP, TLS, SASL, or SASL over TLS (default plaintext).
    pub protocol: SecurityProtocol,
    /// PEM file of the CA certificate(s) that signed the brokers'
    /// certificates (`ssl.ca.location`); `None` = the system trust store.
    /// Used only with TLS.
    pub ca_file: Option<PathBuf>,
    /// The certificate to present for mutual TLS; `None` = none. Valid
    /// only with TLS (SSL, SASL_SSL).
    pub client_cert: Option<ClientCertificate>,
    /// Credentials; required with the SASL protocols, refused without them.
    pub sasl: Option<SaslConfig>,
}

impl SecurityConfig {
    /// `protocol` with no CA file, no client certificate and no credentials yet.
    pub fn new(protocol: SecurityProtocol) -> Self {
        Self {
            protocol,
            ..Self::default()
        }
    }

    /// Trusts the CA certificate(s) in the PEM file at `path` instead of
    /// the system store.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents the certificate (chain) in the PEM file `cert`, with the
    /// private key in the PEM file `key`, when the broker asks for one
    /// (mutual TLS). Needs the SSL or SASL_SSL protocol.
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(ClientCertificate::new(cert, key));
        self
    }

    /// Authenticates with `sasl`.
    pub fn sasl(mut self, sasl: SaslConfig) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// Checks that the settings fit together (a client certificate only
    /// with TLS, SASL credentials exactly when the protocol uses SASL, a
    /// user name).
    pub(crate) fn validate(&self) -> Result<()> {
        if self.client_cert.is_some() && !self.protocol.uses_tls() {
            return Err(ClientError::Config(format!(
                "a client certificate is set but security protocol {} does not use TLS: \
                 use SSL or SASL_SSL",
                self.protocol
            )));
        }
        match (&self.sasl, self.protocol.uses_sasl()) {
            (None, true) => Err(ClientError::Config(format!(
                "security protocol {} needs SASL credentials (mechanism, username, password)",
                self.protocol
            ))),
            (Some(_), false) => Err(ClientError::Config(format!(
                "SASL credentials are set but security protocol {} does not use SASL: \
                 use SASL_PLAINTEXT or SASL_SSL",
                self.protocol
            ))),
            (Some(sasl), true) if sasl.username.is_empty() => Err(ClientError::Config(
                "the SASL username is empty".to_string(),
            )),
            _ => Ok(()),
        }
    }
}

/// The TLS client configuration of one client, built once from the
/// [`SecurityConfig`] (reading the CA file or the system store) and shared
/// by all its connections.
#[derive(Clone)]
pub(crate) struct TlsSetup(pub(crate) Arc<rustls::ClientConfig>);

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsSetup")
    }
}

impl PartialEq for TlsSetup {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsSetup {}

impl TlsSetup {
    /// Loads the trust roots and the client certificate, if any, and
    /// builds the rustls configuration (ring provider, TLS 1.2 and 1.3).
    pub(crate) fn build(security: &SecurityConfig) -> Result<Self> {
        let roots = match &security.ca_file {
            Some(path) => roots_from_pem(path)?,
            None => system_roots()?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Config(format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
        let config = match &security.client_cert {
            None => builder.with_no_client_auth(),
            Some(identity) => {
                let chain = chain_from_pem(&identity.cert)?;
                let key = key_from_pem(&identity.key)?;
                // rustls checks here that the key is one it can sign with
                // and that it belongs to the certificate.
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    ClientError::Config(format!(
                        "client certificate {} with key {}: {e}",
                        identity.cert.display(),
                        identity.key.display()
                    ))
                })?
            }
        };
        Ok(Self(Arc::new(config)))
    }
}

/// The client certificate chain of a PEM file (leaf first; other PEM
/// sections are skipped).
fn chain_from_pem(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| {
        ClientError::Config(format!("cannot read client certificate file {shown}: {e}"))
    })?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            ClientError::Config(format!(
                "client certificate file {shown} is not valid PEM: {e}"
            ))
        })?;
    if chain.is_empty() {
        return Err(ClientError::Config(format!(
            "client certificate file {shown} holds no PEM certificate \
             (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(chain)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn key_from_pem(path: &std::path::Path) -> Result<PrivateKeyDer<'static>> {
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| ClientError::Config(format!("cannot read client key file {shown}: {e}")))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => ClientError::Config(format!(
            "client key file {shown} holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
        )),
        e => ClientError::Config(format!("client key file {shown} is not valid PEM: {e}")),
    })
}

/// The CA certificates of a PEM file (other PEM sections are skipped).
fn roots_from_pem(path: &std::path::Path) -> Result<RootCertStore> {
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| ClientError::Config(format!("cannot read CA file {shown}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert
            .map_err(|e| ClientError::Config(format!("CA file {shown} is not valid PEM: {e}")))?;
        roots.add(cert).map_err(|e| {
            ClientError::Config(format!(
                "CA file {shown} holds an unusable certificate: {e}"
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(ClientError::Config(format!(
            "CA file {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(roots)
}

/// The system trust store.
fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    for error in &found.errors {
        tracing::debug!(%error, "skipped part of the system trust store");
    }
    if added == 0 {
        return Err(ClientError::Config(
            "no CA certificate found in the system trust store: give the CA file that \
             signed the broker's certificate (ssl.ca.location / --ca)"
                .to_string(),
        ));
    }
    Ok(roots)
}

/// The name to check the broker's certificate against: the host part of
/// `host:port` (`[v6]:port` included); an IP address becomes an IP name.
pub(crate) fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => addr,
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_string()).map_err(|e| {
        ClientError::Config(format!(
            "broker address {addr}: `{host}` is not a host name TLS can verify: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kafka_names_in_any_case_then_protocols_and_mechanisms_parse() {
        let protocols = [
            ("plaintext", SecurityProtocol::Plaintext),
            ("SSL", SecurityProtocol::Ssl),
            ("sasl_plaintext", SecurityProtocol::SaslPlaintext),
            ("SASL_SSL", SecurityProtocol::SaslSsl),
        ];
        for (name, protocol) in protocols {
            assert_eq!(name.parse::<SecurityProtocol>().ok(), Some(protocol));
            assert_eq!(
                protocol.name().parse::<SecurityProtocol>().ok(),
                Some(protocol)
            );
        }
        assert!("tls".parse::<SecurityProtocol>().is_err());
        let mechanisms = [
            ("PLAIN", SaslMechanism::Plain),
            ("scram-sha-256", SaslMechanism::ScramSha256),
            ("SCRAM-SHA-512", SaslMechanism::ScramSha512),
        ];
        for (name, mechanism) in mechanisms {
            assert_eq!(name.parse::<SaslMechanism>().ok(), Some(mechanism));
            assert_eq!(
                mechanism.to_string().parse::<SaslMechanism>().ok(),
                Some(mechanism)
            );
        }
        assert!(matches!(
            "GSSAPI".parse::<SaslMechanism>().map_err(ClientError::from),
            Err(ClientError::Config(message)) if message.contains("GSSAPI")
        ));
    }

    #[test]
    fn given_a_password_then_debug_never_shows_it() {
        let security = SecurityConfig::new(SecurityProtocol::SaslSsl).sasl(SaslConfig::new(
            SaslMechanism::Plain,
            "alice",
            "hunter2",
        ));
        let shown = format!("{security:?} {security:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***") && shown.contains("alice"), "{shown}");
        assert_eq!(
            security.sasl.as_ref().map(|s| s.password.expose()),
            Some("hunter2")
        );
    }

    #[test]
    fn given_sasl_and_protocol_mismatch_then_validate_says_what_to_set() {
        let creds = SaslConfig::new(SaslMechanism::ScramSha256, "u", "p");
        assert!(SecurityConfig::default().validate().is_ok());
        assert!(SecurityConfig::new(SecurityProtocol::Ssl)
            .validate()
            .is_ok());
        let missing = SecurityConfig::new(SecurityProtocol::SaslSsl).validate();
        assert!(
            matches!(&missing, Err(ClientError::Config(m)) if m.contains("needs SASL credentials")),
            "{missing:?}"
        );
        let unused = SecurityConfig::new(SecurityProtocol::Ssl)
            .sasl(creds.clone())
            .validate();
        assert!(
            matches!(&unused, Err(ClientError::Config(m)) if m.contains("SASL_SSL")),
            "{unused:?}"
        );
        let empty_user = SecurityConfig::new(SecurityProtocol::SaslPlaintext)
            .sasl(SaslConfig::new(SaslMechanism::Plain, "", "p"))
            .validate();
        assert!(empty_user.is_err());
        assert!(SecurityConfig::new(SecurityProtocol::SaslPlaintext)
            .sasl(creds)
            .validate()
            .is_ok());
    }

    #[test]
    fn given_addresses_then_server_name_is_the_host() {
        let name = |a: &str| server_name(a).map(|n| n.to_str().into_owned()).ok();
        assert_eq!(
            name("broker.example.com:9093").as_deref(),
            Some("broker.example.com")
        );
        assert_eq!(name("127.0.0.1:9093").as_deref(), Some("127.0.0.1"));
        assert_eq!(name("[::1]:9093").as_deref(), Some("::1"));
        assert!(matches!(
            server_name("127.0.0.1:9093"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name("bad host:1").is_err());
    }

    #[test]
    fn given_ca_files_then_missing_empty_and_garbage_are_config_errors() {
        let dir = std::env::temp_dir().join(format!("sediment-client-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let garbage = dir.join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for (path, needle) in [
            (&missing, "cannot read CA file"),
            (&empty, "holds no PEM certificate"),
            (&garbage, "CA file"),
        ] {
            let result = TlsSetup::build(&SecurityConfig::new(SecurityProtocol::Ssl).ca_file(path));
            assert!(
                matches!(&result, Err(ClientError::Config(m)) if m.contains(needle)),
                "{path:?}: {:?}",
                result.err()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn given_a_client_certificate_without_tls_then_validate_asks_for_ssl() {
        let with_cert = |protocol| {
            SecurityConfig::new(protocol)
                .client_certificate("client.pem", "client.key")
                .validate()
        };
        for protocol in [SecurityProtocol::Plaintext, SecurityProtocol::SaslPlaintext] {
            let result = with_cert(protocol);
            assert!(
                matches!(&result, Err(ClientError::Config(m)) if m.contains("SSL or SASL_SSL")),
                "{protocol}: {result:?}"
            );
        }
        assert!(with_cert(SecurityProtocol::Ssl).is_ok());
    }

    #[test]
    fn given_client_certificate_files_then_missing_garbage_and_mismatched_are_config_errors_naming_the_file(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(path("ca.pem"), ca.pem()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        std::fs::write(path("client.pem"), cert.pem()).unwrap();
        std::fs::write(path("client.key"), key.serialize_pem()).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(path("other.key"), other.serialize_pem()).unwrap();
        std::fs::write(path("empty.pem"), "no pem here\n").unwrap();
        std::fs::write(
            path("garbage.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            path("garbage.key"),
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let build = |cert: &str, key: &str| {
            TlsSetup::build(
                &SecurityConfig::new(SecurityProtocol::Ssl)
                    .ca_file(path("ca.pem"))
                    .client_certificate(path(cert), path(key)),
            )
        };
        assert!(build("client.pem", "client.key").is_ok());
        for (cert, key, needle, names) in [
            (
                "missing.pem",
                "client.key",
                "cannot read client certificate file",
                "missing.pem",
            ),
            (
                "client.pem",
                "missing.key",
                "cannot read client key file",
                "missing.key",
            ),
            (
                "empty.pem",
                "client.key",
                "holds no PEM certificate",
                "empty.pem",
            ),
            (
                "client.pem",
                "empty.pem",
                "holds no PEM private key",
                "empty.pem",
            ),
            (
                "client.pem",
                "garbage.key",
                "client key file",
                "garbage.key",
            ),
            (
                "garbage.pem",
                "client.key",
                "client certificate",
                "garbage.pem",
            ),
            ("client.pem", "other.key", "client certificate", "other.key"),
        ] {
            let result = build(cert, key);
            assert!(
                matches!(&result, Err(ClientError::Config(m)) if m.contains(needle) && m.contains(names)),
                "{cert} {key}: {:?}",
                result.err()
            );
        }
    }
}
