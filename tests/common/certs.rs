//! Test certificates for the TLS tests, made with `rcgen` and written as PEM
//! files into a temporary directory (removed when [`TestCerts`] drops):
//! - a CA (`ca.pem`), and a broker certificate it signed for IP 127.0.0.1
//!   and DNS `localhost` (`broker.pem`, `broker.key`);
//! - client certificates it signed, subject `CN=<name>` only, for mutual
//!   TLS (`client-<name>.pem`, `.key`): the broker's principal for them is
//!   `User:CN=<name>`;
//! - a self-signed broker certificate for the same names that no trusted CA
//!   signed, and an expired broker certificate the CA did sign (valid only
//!   in 2000), which every client must refuse;
//! - a client certificate signed by another CA the broker does not trust.
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM, which rustls, OpenSSL (librdkafka)
//! and the JDK all read.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    pub key: PathBuf,
}

/// A CA that can sign more certificates after [`TestCerts::generate`].
struct Issuer {
    cert: Certificate,
    key: KeyPair,
}

/// Every certificate the TLS tests use, in one temporary directory.
pub struct TestCerts {
    dir: tempfile::TempDir,
    ca: Issuer,
    /// The CA certificate clients trust and the broker checks client
    /// certificates against.
    pub ca_pem: PathBuf,
    /// The broker's certificate (127.0.0.1, localhost), signed by the CA.
    pub broker: CertFiles,
    /// A broker certificate for the same names, self-signed (no CA).
    pub self_signed: CertFiles,
    /// A broker certificate signed by the CA that expired in 2001.
    pub expired: CertFiles,
    /// A client certificate `CN=mallory` signed by a CA the broker does not trust.
    pub untrusted_client: CertFiles,
}

/// The subject alternative names of every broker certificate.
const BROKER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

fn subject(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_named(cn: &str) -> Issuer {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name = subject(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-sign the CA");
    Issuer { cert, key }
}

fn server_params(cn: &str) -> CertificateParams {
    let names: Vec<String> = BROKER_NAMES.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("broker params");
    params.distinguished_name = subject(cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

fn client_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    params.distinguished_name = subject(cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

fn save(dir: &Path, stem: &str, cert: &Certificate, key: &KeyPair) -> CertFiles {
    CertFiles {
        cert: write(dir, &format!("{stem}.pem"), &cert.pem()),
        key: write(dir, &format!("{stem}.key"), &key.serialize_pem()),
    }
}

fn signed(dir: &Path, stem: &str, params: CertificateParams, issuer: &Issuer) -> CertFiles {
    let key = KeyPair::generate().expect("key");
    let cert = params
        .signed_by(&key, &issuer.cert, &issuer.key)
        .expect("sign");
    save(dir, stem, &cert, &key)
}

impl TestCerts {
    /// Generates every certificate into a fresh temporary directory.
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let path = dir.path().to_path_buf();
        let ca = ca_named("Sediment Test CA");
        let ca_pem = write(&path, "ca.pem", &ca.cert.pem());
        let broker = signed(&path, "broker", server_params("localhost"), &ca);

        let self_signed_key = KeyPair::generate().expect("key");
        let self_signed_cert = server_params("localhost")
            .self_signed(&self_signed_key)
            .expect("self-sign");
        let self_signed = save(&path, "self-signed", &self_signed_cert, &self_signed_key);

        let mut expired_params = server_params("localhost");
        expired_params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        expired_params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let expired = signed(&path, "expired", expired_params, &ca);

        let other_ca = ca_named("Some Other CA");
        let untrusted_client = signed(&path, "client-mallory", client_params("mallory"), &other_ca);

        Self {
            dir,
            ca,
            ca_pem,
            broker,
            self_signed,
            expired,
            untrusted_client,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client certificate with subject `CN=<cn>` signed by the CA, for
    /// mutual TLS; the broker's principal for it is `User:CN=<cn>`.
    pub fn client(&self, cn: &str) -> CertFiles {
        signed(
            self.dir.path(),
            &format!("client-{cn}"),
            client_params(cn),
            &self.ca,
        )
    }

    /// `sediment serve` flags for a TLS listener on 127.0.0.1:0 with the
    /// broker certificate in `which`.
    pub fn serve_args(&self, which: &CertFiles) -> Vec<String> {
        vec![
            "--tls-listen".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            path_string(&which.cert),
            "--tls-key".into(),
            path_string(&which.key),
        ]
    }
}

/// A path as a `String` argument (temporary paths are UTF-8).
pub fn path_string(path: &Path) -> String {
    path.to_str().expect("temp paths are UTF-8").to_string()
}
