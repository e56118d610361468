//! TLS and SASL of `BrokerConnection::connect` against an in-process fake
//! broker: certificates made here with rcgen, the broker's side of the
//! exchange scripted byte for byte. Mutual TLS: a fake broker that requires
//! a client certificate its CA signed.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use sediment_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::security::{SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol};

/// A CA, its key, and its certificate as a PEM file.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: tempfile::TempDir,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "sediment test CA");
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        Self { cert, key, dir }
    }

    fn pem_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for `names`, signed by this CA (or by itself),
    /// valid now (or expired in 2001).
    fn leaf(
        &self,
        names: &[&str],
        signed: bool,
        expired: bool,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params
            .distinguished_name
            .push(DnType::CommonName, "sediment test broker");
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = if signed {
            params.signed_by(&key, &self.cert, &self.key).unwrap()
        } else {
            params.self_signed(&key).unwrap()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    }

    /// A client certificate with subject `CN=<cn>` signed by this CA, as
    /// PEM files (certificate, PKCS#8 key) in the CA's directory.
    fn client_files(&self, cn: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let cert_path = self.dir.path().join(format!("client-{cn}.pem"));
        let key_path = self.dir.path().join(format!("client-{cn}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

fn acceptor(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// A TLS acceptor for 127.0.0.1 that requires a client certificate signed
/// by `ca` (mutual TLS), as `sediment serve --tls-client-ca` does.
fn mutual_acceptor(ca: &Ca) -> TlsAcceptor {
    let (cert, key) = ca.leaf(&["127.0.0.1"], true, false);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// ApiVersions advertising SaslHandshake 0–1 and SaslAuthenticate 0–`auth_max`.
fn sasl_api_versions(auth_max: i16) -> ApiVersionsResponse {
    let mut response = api_versions();
    response.api_keys.extend([
        ApiVersion::default()
            .with_api_key(ApiKey::SaslHandshake as i16)
            .with_max_version(1),
        ApiVersion::default()
            .with_api_key(ApiKey::SaslAuthenticate as i16)
            .with_max_version(auth_max),
    ]);
    response
}

fn secured(addr: &str, security: SecurityConfig) -> ClientConfig {
    let mut config = config(addr);
    config.security = security;
    config
}

fn plain(user: &str, password: &str) -> SaslConfig {
    SaslConfig::new(SaslMechanism::Plain, user, password)
}

/// Answers ApiVersions, then runs `script` on the (TLS or TCP) stream.
async fn answer_api_versions<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, auth_max: i16) {
    let hello = read_request(stream).await.unwrap();
    assert_eq!(hello.header.request_api_key, ApiKey::ApiVersions as i16);
    respond(stream, &hello, &sasl_api_versions(auth_max)).await;
}

/// Reads a SaslHandshake, checks the mechanism, accepts it.
async fn accept_handshake<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, mechanism: &str) {
    let handshake = read_request(stream).await.unwrap();
    assert_eq!(
        handshake.header.request_api_key,
        ApiKey::SaslHandshake as i16,
        "the first request after ApiVersions is the SASL handshake"
    );
    assert_eq!(handshake.header.request_api_version, 1);
    let request = SaslHandshakeRequest::from_bytes(handshake.body.clone(), 1).unwrap();
    assert_eq!(request.mechanism, mechanism);
    let response = SaslHandshakeResponse::default().with_mechanisms(vec![mechanism.to_string()]);
    respond(stream, &handshake, &response).await;
}

#[tokio::test]
async fn given_a_certificate_from_the_given_ca_then_sasl_ssl_connects_and_authenticates() {
    let ca = Ca::new();
    let (cert, key) = ca.leaf(&["127.0.0.1"], true, false);
    let acceptor = acceptor(cert, key);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut stream = acceptor.accept(tcp).await.unwrap();
        answer_api_versions(&mut stream, 2).await;
        accept_handshake(&mut stream, "PLAIN").await;
        let auth = read_request(&mut stream).await.unwrap();
        assert_eq!(auth.header.request_api_key, ApiKey::SaslAuthenticate as i16);
        assert_eq!(auth.header.request_api_version, 2, "the highest advertised");
        let request = SaslAuthenticateRequest::from_bytes(auth.body.clone(), 2).unwrap();
        assert_eq!(request.auth_bytes.as_ref(), b"\0alice\0s3cret");
        respond(&mut stream, &auth, &SaslAuthenticateResponse::default()).await;
    });
    let security = SecurityConfig::new(SecurityProtocol::SaslSsl)
        .ca_file(ca.pem_file())
        .sasl(plain("alice", "s3cret"));
    let connection = BrokerConnection::connect(&addr, &secured(&addr, security))
        .await
        .unwrap();
    assert_eq!(connection.version(ApiKey::Produce).ok(), Some(9));
    broker.await.unwrap();
}

/// Connects with `security` to a TLS listener presenting `cert`; returns
/// the client's error.
async fn tls_failure(
    cert: (CertificateDer<'static>, PrivateKeyDer<'static>),
    ca: &Ca,
) -> ClientError {
    let acceptor = acceptor(cert.0, cert.1);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // The client aborts the handshake; nothing more to do.
        let _ = acceptor.accept(tcp).await;
    });
    let security = SecurityConfig::new(SecurityProtocol::Ssl).ca_file(ca.pem_file());
    let result = BrokerConnection::connect(&addr, &secured(&addr, security)).await;
    broker.await.unwrap();
    match result {
        Ok(_) => panic!("an untrusted certificate was accepted"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn given_a_self_signed_certificate_outside_the_ca_then_connect_fails_with_a_tls_error() {
    let ca = Ca::new();
    let error = tls_failure(ca.leaf(&["127.0.0.1"], false, false), &ca).await;
    assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
    assert!(!error.is_retriable());
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn given_an_expired_certificate_then_connect_fails_with_a_tls_error() {
    let ca = Ca::new();
    let error = tls_failure(ca.leaf(&["127.0.0.1"], true, true), &ca).await;
    assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
    assert!(
        error.to_string().to_lowercase().contains("expired"),
        "{error}"
    );
}

#[tokio::test]
async fn given_a_certificate_for_another_name_then_connect_fails_with_a_tls_error() {
    let ca = Ca::new();
    let error = tls_failure(ca.leaf(&["broker.example.com"], true, false), &ca).await;
    assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
}

#[tokio::test]
async fn given_a_plaintext_listener_then_a_tls_client_fails_with_a_tls_error() {
    let ca = Ca::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        // What a plaintext broker does with a ClientHello: reads a frame
        // size far above its limit and hangs up.
        let _ = tcp.read_i32().await;
    });
    let security = SecurityConfig::new(SecurityProtocol::Ssl).ca_file(ca.pem_file());
    let result = BrokerConnection::connect(&addr, &secured(&addr, security)).await;
    broker.await.unwrap();
    assert!(
        matches!(result, Err(ClientError::Tls { .. })),
        "{:?}",
        result.err()
    );
}

#[tokio::test]
async fn given_a_client_certificate_from_the_brokers_client_ca_then_mutual_tls_connects_and_requests_work(
) {
    let ca = Ca::new();
    let acceptor = mutual_acceptor(&ca);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut stream = acceptor.accept(tcp).await.unwrap();
        let presented = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(<[CertificateDer<'_>]>::len);
        assert_eq!(presented, Some(1), "the client presented its certificate");
        // ApiVersions on connect, then one request of the test's.
        for _ in 0..2 {
            let request = read_request(&mut stream).await.unwrap();
            assert_eq!(request.header.request_api_key, ApiKey::ApiVersions as i16);
            respond(&mut stream, &request, &api_versions()).await;
        }
    });
    let (cert, key) = ca.client_files("carol");
    let security = SecurityConfig::new(SecurityProtocol::Ssl)
        .ca_file(ca.pem_file())
        .client_certificate(cert, key);
    let connection = BrokerConnection::connect(&addr, &secured(&addr, security))
        .await
        .unwrap();
    let answer = connection
        .send(&ApiVersionsRequest::default(), 3)
        .await
        .unwrap();
    assert_eq!(answer.error_code, 0);
    assert_eq!(connection.version(ApiKey::Produce).ok(), Some(9));
    broker.await.unwrap();
}

#[tokio::test]
async fn given_no_client_certificate_when_the_broker_requires_one_then_connect_fails_with_a_tls_error(
) {
    let ca = Ca::new();
    let acceptor = mutual_acceptor(&ca);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // Refuses the handshake (with an alert) and hangs up.
        acceptor.accept(tcp).await.err()
    });
    let security = SecurityConfig::new(SecurityProtocol::Ssl).ca_file(ca.pem_file());
    let result = BrokerConnection::connect(&addr, &secured(&addr, security)).await;
    let refused = broker.await.unwrap();
    assert!(
        refused.is_some(),
        "the broker accepted a client without a certificate"
    );
    let error = match result {
        Ok(_) => panic!("a connection without the required client certificate was accepted"),
        Err(e) => e,
    };
    assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
    assert!(!error.is_retriable());
    // TLS 1.3: the broker's alert is the answer to the first request.
    assert!(error.to_string().contains("CertificateRequired"), "{error}");
}

/// Runs a SASL_PLAINTEXT PLAIN connect against a broker that accepts the
/// handshake and answers the authentication with `error_code` and `message`.
async fn plain_refused(error_code: i16, message: Option<&str>) -> ClientError {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let message = message.map(str::to_string);
    let broker = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        answer_api_versions(&mut stream, 1).await;
        accept_handshake(&mut stream, "PLAIN").await;
        let auth = read_request(&mut stream).await.unwrap();
        assert_eq!(auth.header.request_api_version, 1);
        let response = SaslAuthenticateResponse::default()
            .with_error_code(error_code)
            .with_error_message(message);
        respond(&mut stream, &auth, &response).await;
    });
    let security =
        SecurityConfig::new(SecurityProtocol::SaslPlaintext).sasl(plain("alice", "wrong"));
    let result = BrokerConnection::connect(&addr, &secured(&addr, security)).await;
    broker.await.unwrap();
    match result {
        Ok(_) => panic!("a refused authentication succeeded"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn given_refused_credentials_then_an_authentication_error_carries_the_brokers_message() {
    let error = plain_refused(58, Some("Invalid username or password")).await;
    let ClientError::Authentication { ref message, .. } = error else {
        panic!("{error:?}");
    };
    assert!(
        message.contains("Invalid username or password"),
        "{message}"
    );
    assert!(
        message.contains("alice") && message.contains("PLAIN"),
        "{message}"
    );
    assert!(
        !message.contains("wrong"),
        "no password in errors: {message}"
    );
    assert!(!error.is_retriable());
}

#[tokio::test]
async fn given_a_mechanism_the_broker_does_not_enable_then_the_error_lists_what_it_offers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        answer_api_versions(&mut stream, 2).await;
        let handshake = read_request(&mut stream).await.unwrap();
        let response = SaslHandshakeResponse::default()
            .with_error_code(33)
            .with_mechanisms(vec!["SCRAM-SHA-512".into(), "SCRAM-SHA-256".into()]);
        respond(&mut stream, &handshake, &response).await;
    });
    let security = SecurityConfig::new(SecurityProtocol::SaslPlaintext).sasl(plain("alice", "pw"));
    let result = BrokerConnection::connect(&addr, &secured(&addr, security)).await;
    broker.await.unwrap();
    let Err(ClientError::Authentication { message, .. }) = result else {
        panic!("{:?}", result.err());
    };
    assert!(
        message.contains("SCRAM-SHA-512, SCRAM-SHA-256"),
        "{message}"
    );
}

#[tokio::test]
async fn given_a_broker_without_sasl_then_the_error_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let hello = read_request(&mut stream).await.unwrap();
        respond(&mut stream, &hello, &api_versions()).await;
    });
    let security = SecurityConfig::new(SecurityProtocol::SaslPlaintext).sasl(plain("alice", "pw"));
    let result = BrokerConnection::connect(&addr, &secured(&addr, security)).await;
    broker.await.unwrap();
    let Err(ClientError::Authentication { message, .. }) = result else {
        panic!("{:?}", result.err());
    };
    assert!(message.contains("SaslHandshake"), "{message}");
}

/// A broker side of SCRAM-SHA-512 for user `alice` with password
/// `right`: the protocol crate's server, fed what the client sends. With
/// `forge_final` it answers the client's proof with a made-up signature.
async fn scram_broker<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, forge_final: bool) {
    use sediment_protocol::sasl::{ScramCredential, ScramMechanism, ScramServer};
    answer_api_versions(stream, 2).await;
    accept_handshake(stream, "SCRAM-SHA-512").await;
    let credential =
        ScramCredential::derive(ScramMechanism::Sha512, b"right", b"0123456789abcdef", 4096)
            .unwrap();
    let mut server = ScramServer::new(ScramMechanism::Sha512);
    let first = read_request(stream).await.unwrap();
    let request = SaslAuthenticateRequest::from_bytes(first.body.clone(), 2).unwrap();
    let server_first = server
        .client_first(&request.auth_bytes, |user| {
            (user == "alice").then(|| credential.clone())
        })
        .unwrap();
    let response = SaslAuthenticateResponse::default().with_auth_bytes(server_first.into());
    respond(stream, &first, &response).await;
    let last = read_request(stream).await.unwrap();
    let request = SaslAuthenticateRequest::from_bytes(last.body.clone(), 2).unwrap();
    let response = match server.client_final(&request.auth_bytes) {
        Ok((server_final, user)) => {
            assert_eq!(user, "alice");
            let server_final = if forge_final {
                b"v=Zm9yZ2VkIHNpZ25hdHVyZQ==".to_vec()
            } else {
                server_final
            };
            SaslAuthenticateResponse::default().with_auth_bytes(server_final.into())
        }
        Err(e) => SaslAuthenticateResponse::default()
            .with_error_code(58)
            .with_error_message(Some(format!("Authentication failed: {e}"))),
    };
    respond(stream, &last, &response).await;
}

async fn scram_connect(password: &str, forge_final: bool) -> Result<BrokerConnection> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        scram_broker(&mut stream, forge_final).await;
    });
    let sasl = SaslConfig::new(SaslMechanism::ScramSha512, "alice", password);
    let security = SecurityConfig::new(SecurityProtocol::SaslPlaintext).sasl(sasl);
    let result = BrokerConnection::connect(&addr, &secured(&addr, security)).await;
    broker.await.unwrap();
    result
}

#[tokio::test]
async fn given_the_right_password_then_scram_sha_512_authenticates_in_two_rounds() {
    // Ok only once the broker's server-final signature was checked.
    let connection = scram_connect("right", false).await.unwrap();
    assert_eq!(connection.version(ApiKey::SaslAuthenticate).ok(), Some(2));
}

#[tokio::test]
async fn given_a_wrong_password_then_scram_fails_with_an_authentication_error() {
    let error = scram_connect("wrong", false).await.err().unwrap();
    let ClientError::Authentication { ref message, .. } = error else {
        panic!("{error:?}");
    };
    assert!(message.contains("SaslAuthenticationFailed"), "{message}");
    assert!(!error.is_retriable());
}

#[tokio::test]
async fn given_a_broker_that_cannot_prove_the_password_then_scram_fails() {
    let error = scram_connect("right", true).await.err().unwrap();
    assert!(
        matches!(error, ClientError::Authentication { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn given_a_session_lifetime_then_the_connection_retires_before_it_ends() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (done, hold) = oneshot::channel::<()>();
    let broker = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        answer_api_versions(&mut stream, 1).await;
        accept_handshake(&mut stream, "PLAIN").await;
        let auth = read_request(&mut stream).await.unwrap();
        let response = SaslAuthenticateResponse::default().with_session_lifetime_ms(10_000);
        respond(&mut stream, &auth, &response).await;
        // Keep the connection open until the test has looked.
        let _ = hold.await;
    });
    let security = SecurityConfig::new(SecurityProtocol::SaslPlaintext).sasl(plain("alice", "pw"));
    let connection = BrokerConnection::connect(&addr, &secured(&addr, security))
        .await
        .unwrap();
    assert!(!connection.is_closed());
    // Only now: with time paused from the start, the connect's request
    // timeouts would fire while the real sockets work.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(8_000)).await;
    assert!(!connection.is_closed(), "80 % of the lifetime");
    tokio::time::advance(Duration::from_millis(600)).await;
    assert!(connection.is_closed(), "86 % of the lifetime: reconnect");
    let _ = done.send(());
    broker.await.unwrap();
}
