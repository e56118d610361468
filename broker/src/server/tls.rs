//! The TLS listener's configuration: the broker's certificate and key, the
//! client CAs for mutual TLS, reloading them on SIGHUP, and the principal a
//! client certificate stands for.
//!
//! Invariants: a reload that fails (a missing file, a key that does not
//! match) keeps the configuration in use and says why in the log, so a
//! typo never takes the listener down; handshakes already under way finish
//! with the configuration they started with.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::security_config::TlsListenerConfig;

/// Why the TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A PEM file could not be read or held nothing usable.
    #[error("cannot read {what} from {path}: {detail}")]
    Pem {
        /// Which file it was (certificate, key, client CA).
        what: &'static str,
        /// The file.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// rustls refused the certificate, key or CA set.
    #[error("TLS configuration refused: {0} (check that --tls-key is the key of --tls-cert)")]
    Rustls(String),
}

/// The TLS acceptor in use, replaceable on SIGHUP.
pub struct TlsContext {
    settings: TlsListenerConfig,
    current: RwLock<TlsAcceptor>,
}

impl TlsContext {
    /// Loads the certificate, key and client CAs named by `settings`.
    pub fn load(settings: TlsListenerConfig) -> Result<Self, TlsConfigError> {
        let acceptor = build_acceptor(&settings)?;
        Ok(Self {
            settings,
            current: RwLock::new(acceptor),
        })
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        crate::basics::read_lock(&self.current).clone()
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.settings.client_ca.is_some()
    }

    /// Reads the files again; on failure the old configuration stays.
    pub fn reload(&self) -> Result<(), TlsConfigError> {
        let acceptor = build_acceptor(&self.settings)?;
        *crate::basics::write_lock(&self.current) = acceptor;
        Ok(())
    }
}

fn build_acceptor(settings: &TlsListenerConfig) -> Result<TlsAcceptor, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&settings.cert, "the certificate (--tls-cert)")?;
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| TlsConfigError::Pem {
        what: "the private key (--tls-key)",
        path: settings.key.display().to_string(),
        detail: e.to_string(),
    })?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
    let builder = match &settings.client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(path, "the client CA (--tls-client-ca)")? {
                roots
                    .add(cert)
                    .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem_error = |detail: String| TlsConfigError::Pem {
        what,
        path: path.display().to_string(),
        detail,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error("no CERTIFICATE block".to_string()));
    }
    Ok(certs)
}

/// The principal of a client certificate: `User:` and its subject's
/// distinguished name in RFC 2253 order and form (`CN=alice,O=Example`), as
/// Kafka's default principal builder names TLS clients. `None` when the
/// certificate cannot be parsed (the handshake verified it, so this is not
/// expected).
pub fn certificate_principal(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let mut parts = Vec::new();
    // RFC 2253 writes the most specific RDN first: the reverse of the
    // certificate's order.
    for rdn in parsed
        .subject()
        .iter()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let oid = attribute.attr_type();
                let name =
                    x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
                        .map(str::to_string)
                        .unwrap_or_else(|_| oid.to_id_string());
                let value = attribute.as_str().map(str::to_string).unwrap_or_default();
                format!("{name}={}", escape_rfc2253(&value))
            })
            .collect();
        parts.push(attributes.join("+"));
    }
    Some(format!("User:{}", parts.join(",")))
}

/// Escapes a distinguished-name value the way RFC 2253 asks.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let leading = i == 0 && (c == ' ' || c == '#');
        let trailing = i == last && c == ' ';
        if leading || trailing || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_special_characters_in_a_name_then_escaped_as_rfc_2253_asks() {
        assert_eq!(escape_rfc2253("alice"), "alice");
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253(" x "), "\\ x\\ ");
    }

    #[test]
    fn given_missing_files_then_the_error_names_the_flag_and_the_path() {
        let settings = TlsListenerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
            client_ca: None,
        };
        let error = TlsContext::load(settings).err().unwrap().to_string();
        assert!(
            error.contains("--tls-cert") && error.contains("/nonexistent/cert.pem"),
            "{error}"
        );
    }
}
