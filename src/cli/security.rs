//! The client security options every client command shares (DESIGN §7):
//! `--security-protocol`, `--ca`, `--client-cert`, `--client-key`,
//! `--sasl-mechanism`, `--sasl-username`, `--sasl-password-file`, and
//! `--client-config FILE`, a Kafka-style properties file
//! (`security.protocol`, `ssl.ca.location`, `ssl.certificate.location`,
//! `ssl.key.location`, `sasl.mechanism`, `sasl.username`, `sasl.password`,
//! or the Java client's `sasl.jaas.config`), turned into the client's
//! [`SecurityConfig`].
//!
//! Precedence, highest first: a flag, its environment variable
//! (`SEDIMENT_SASL_USERNAME`, `SEDIMENT_SASL_PASSWORD`), the properties
//! file, the default (plaintext).
//!
//! Invariants:
//! - A password is never a command-line argument (only a file, the
//!   environment or the properties file hold it) and is held in a
//!   [`Password`], which never prints.
//! - A setting that cannot work (SASL without a user, a SASL flag with a
//!   protocol that has no SASL, a TLS flag without TLS, a client
//!   certificate without its key or the other way round) is one error line
//!   saying what to set, before anything connects.
//! - The client certificate and key come as a pair from one place: both
//!   flags, or else both properties of the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Args, ValueEnum};
use sediment_client::{
    ClientCertificate, Password, SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol,
};

/// The environment variable holding the SASL user name.
pub const USERNAME_ENV: &str = "SEDIMENT_SASL_USERNAME";
/// The environment variable holding the SASL password.
pub const PASSWORD_ENV: &str = "SEDIMENT_SASL_PASSWORD";

/// Client security flags (global: valid after any client command).
///
/// Field names carry a `client_` prefix so that no subcommand's argument
/// id (for instance `serve`'s own TLS options) can collide with them; the
/// client certificate flags are `--client-cert`/`--client-key`, apart from
/// `serve`'s `--tls-cert`/`--tls-key` for the broker's own certificate.
#[derive(Debug, Clone, Default, Args)]
pub struct SecurityArgs {
    /// How client commands connect to the broker [default: plaintext].
    #[arg(
        long = "security-protocol",
        global = true,
        value_enum,
        ignore_case = true,
        value_name = "PROTOCOL"
    )]
    pub client_security_protocol: Option<ProtocolArg>,
    /// PEM file of the CA certificate(s) that signed the broker's
    /// certificate [default: the system trust store].
    #[arg(long = "ca", global = true, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS, with ssl or sasl_ssl
    /// (needs --client-key).
    #[arg(long = "client-cert", global = true, value_name = "FILE")]
    pub client_tls_cert: Option<PathBuf>,
    /// PEM private key of the client certificate for mutual TLS
    /// (needs --client-cert).
    #[arg(long = "client-key", global = true, value_name = "FILE")]
    pub client_tls_key: Option<PathBuf>,
    /// SASL mechanism, with sasl_plaintext or sasl_ssl.
    #[arg(
        long = "sasl-mechanism",
        global = true,
        value_enum,
        ignore_case = true,
        value_name = "MECHANISM"
    )]
    pub client_sasl_mechanism: Option<MechanismArg>,
    /// SASL user name [env: SEDIMENT_SASL_USERNAME].
    #[arg(long = "sasl-username", global = true, value_name = "USER")]
    pub client_sasl_username: Option<String>,
    /// File holding the SASL password (one trailing newline is dropped);
    /// or set SEDIMENT_SASL_PASSWORD. Never given as an argument.
    #[arg(long = "sasl-password-file", global = true, value_name = "FILE")]
    pub client_sasl_password_file: Option<PathBuf>,
    /// Kafka-style properties file (security.protocol, ssl.ca.location,
    /// ssl.certificate.location, ssl.key.location, sasl.mechanism,
    /// sasl.username, sasl.password); flags override it.
    #[arg(long = "client-config", global = true, value_name = "FILE")]
    pub client_config: Option<PathBuf>,
}

/// `--security-protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// Plain TCP, no authentication.
    #[value(name = "plaintext")]
    Plaintext,
    /// TLS.
    #[value(name = "ssl")]
    Ssl,
    /// SASL over plain TCP.
    #[value(name = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL over TLS.
    #[value(name = "sasl_ssl")]
    SaslSsl,
}

impl From<ProtocolArg> for SecurityProtocol {
    fn from(arg: ProtocolArg) -> Self {
        match arg {
            ProtocolArg::Plaintext => SecurityProtocol::Plaintext,
            ProtocolArg::Ssl => SecurityProtocol::Ssl,
            ProtocolArg::SaslPlaintext => SecurityProtocol::SaslPlaintext,
            ProtocolArg::SaslSsl => SecurityProtocol::SaslSsl,
        }
    }
}

/// `--sasl-mechanism` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MechanismArg {
    /// The password itself goes to the broker: use it over TLS.
    #[value(name = "PLAIN")]
    Plain,
    /// Challenge-response; the password never crosses the network.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// Challenge-response with SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl From<MechanismArg> for SaslMechanism {
    fn from(arg: MechanismArg) -> Self {
        match arg {
            MechanismArg::Plain => SaslMechanism::Plain,
            MechanismArg::ScramSha256 => SaslMechanism::ScramSha256,
            MechanismArg::ScramSha512 => SaslMechanism::ScramSha512,
        }
    }
}

/// The flags, the environment (through `env`, so tests need not touch the
/// process's) and the properties file, as the client's settings.
pub fn resolve(
    args: &SecurityArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<SecurityConfig> {
    let file = match &args.client_config {
        Some(path) => ClientProperties::load(path)?,
        None => ClientProperties::default(),
    };
    let protocol = match (args.client_security_protocol, file.protocol()?) {
        (Some(flag), _) => flag.into(),
        (None, Some(from_file)) => from_file,
        (None, None) => SecurityProtocol::Plaintext,
    };
    let shown = protocol.name().to_ascii_lowercase();
    let tls_flag = [
        (args.client_ca.is_some(), "--ca"),
        (args.client_tls_cert.is_some(), "--client-cert"),
        (args.client_tls_key.is_some(), "--client-key"),
    ]
    .into_iter()
    .find_map(|(given, flag)| given.then_some(flag));
    if let (false, Some(flag)) = (protocol.uses_tls(), tls_flag) {
        bail!("{flag} is used only with TLS: add --security-protocol ssl or sasl_ssl");
    }
    let mut security = SecurityConfig::new(protocol);
    if protocol.uses_tls() {
        security.ca_file = args.client_ca.clone().or(file.ca_location()?);
        security.client_cert = match (&args.client_tls_cert, &args.client_tls_key) {
            (Some(cert), Some(key)) => Some(ClientCertificate::new(cert, key)),
            (Some(_), None) => {
                bail!("--client-cert needs --client-key: give the client certificate's private key too")
            }
            (None, Some(_)) => bail!(
                "--client-key needs --client-cert: give the client certificate that goes with the key"
            ),
            (None, None) => file.client_certificate()?,
        };
    }
    if !protocol.uses_sasl() {
        let sasl_flag = [
            (args.client_sasl_mechanism.is_some(), "--sasl-mechanism"),
            (args.client_sasl_username.is_some(), "--sasl-username"),
            (
                args.client_sasl_password_file.is_some(),
                "--sasl-password-file",
            ),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag));
        if let Some(flag) = sasl_flag {
            bail!(
                "{flag} is used only with SASL, and the security protocol is {shown}: \
                 add --security-protocol sasl_ssl (or sasl_plaintext)"
            );
        }
        return Ok(security);
    }
    let mechanism = match (args.client_sasl_mechanism, file.mechanism()?) {
        (Some(flag), _) => flag.into(),
        (None, Some(from_file)) => from_file,
        (None, None) => bail!(
            "--security-protocol {shown} needs a SASL mechanism: set --sasl-mechanism \
             PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (or sasl.mechanism in --client-config)"
        ),
    };
    let username = args
        .client_sasl_username
        .clone()
        .or_else(|| env(USERNAME_ENV))
        .or_else(|| file.username())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "--security-protocol {shown} needs a user name: set --sasl-username or \
                 {USERNAME_ENV} (or sasl.username in --client-config)"
            )
        })?;
    let password = match &args.client_sasl_password_file {
        Some(path) => Some(read_password_file(path)?),
        None => env(PASSWORD_ENV).or_else(|| file.password()),
    }
    .ok_or_else(|| {
        anyhow!(
            "--security-protocol {shown} needs a password: set --sasl-password-file FILE or \
             {PASSWORD_ENV} (or sasl.password in --client-config); it is never an argument"
        )
    })?;
    Ok(security.sasl(SaslConfig::new(
        mechanism,
        username,
        Password::new(password),
    )))
}

/// The password in `path`, without the line end an editor or `echo` adds.
fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the SASL password file {}", path.display()))?;
    let password = text
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&text);
    if password.is_empty() {
        bail!("the SASL password file {} is empty", path.display());
    }
    Ok(password.to_string())
}

/// The security settings of a Kafka-style client properties file.
#[derive(Debug, Default)]
struct ClientProperties {
    path: PathBuf,
    values: HashMap<String, String>,
}

impl ClientProperties {
    fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the client config {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            values: parse_properties(&text),
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `key` parsed with `FromStr`, the error naming the file and key.
    fn parsed<T>(&self, key: &str) -> anyhow::Result<Option<T>>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| anyhow!("{} ({key}): {e}", self.path.display()))
            })
            .transpose()
    }

    fn protocol(&self) -> anyhow::Result<Option<SecurityProtocol>> {
        self.parsed("security.protocol")
    }

    /// `sasl.mechanism` (Java), or `sasl.mechanisms` (librdkafka).
    fn mechanism(&self) -> anyhow::Result<Option<SaslMechanism>> {
        match self.parsed("sasl.mechanism")? {
            Some(m) => Ok(Some(m)),
            None => self.parsed("sasl.mechanisms"),
        }
    }

    /// `ssl.ca.location` (librdkafka), or a PEM truststore (Java's
    /// `ssl.truststore.type=PEM`); JKS and PKCS12 stores cannot be read.
    fn ca_location(&self) -> anyhow::Result<Option<PathBuf>> {
        if let Some(ca) = self.get("ssl.ca.location") {
            return Ok(Some(PathBuf::from(ca)));
        }
        match (
            self.get("ssl.truststore.location"),
            self.get("ssl.truststore.type"),
        ) {
            (Some(store), Some(kind)) if kind.eq_ignore_ascii_case("PEM") => {
                Ok(Some(PathBuf::from(store)))
            }
            (Some(_), _) => bail!(
                "{}: ssl.truststore.location is read only as PEM (ssl.truststore.type=PEM); \
                 export the CA certificate as PEM and set ssl.ca.location",
                self.path.display()
            ),
            (None, _) => Ok(None),
        }
    }

    /// `ssl.certificate.location` and `ssl.key.location` (librdkafka's
    /// names for PEM files), both or neither.
    fn client_certificate(&self) -> anyhow::Result<Option<ClientCertificate>> {
        match (
            self.get("ssl.certificate.location"),
            self.get("ssl.key.location"),
        ) {
            (Some(cert), Some(key)) => Ok(Some(ClientCertificate::new(cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => bail!(
                "{}: ssl.certificate.location needs ssl.key.location (the client \
                 certificate's private key)",
                self.path.display()
            ),
            (None, Some(_)) => bail!(
                "{}: ssl.key.location needs ssl.certificate.location (the client \
                 certificate that goes with the key)",
                self.path.display()
            ),
        }
    }

    fn username(&self) -> Option<String> {
        self.get("sasl.username")
            .map(str::to_string)
            .or_else(|| self.jaas("username"))
    }

    fn password(&self) -> Option<String> {
        self.get("sasl.password")
            .map(str::to_string)
            .or_else(|| self.jaas("password"))
    }

    /// `name="value"` from the Java client's `sasl.jaas.config`
    /// (`…ScramLoginModule required username="alice" password="…";`).
    fn jaas(&self, name: &str) -> Option<String> {
        let config = self.get("sasl.jaas.config")?;
        let mut rest = config;
        while let Some(at) = rest.find(name) {
            let before_ok = at == 0 || rest[..at].ends_with(|c: char| c.is_whitespace());
            let after = rest[at + name.len()..].trim_start();
            if let (true, Some(value)) = (before_ok, after.strip_prefix('=')) {
                let value = value.trim_start().strip_prefix('"')?;
                return quoted_value(value);
            }
            rest = &rest[at + name.len()..];
        }
        None
    }
}

/// The text up to the closing quote, with `\"` and `\\` unescaped.
fn quoted_value(text: &str) -> Option<String> {
    let mut value = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => value.push(chars.next()?),
            c => value.push(c),
        }
    }
    None
}

/// Java `.properties` syntax: `key=value`, `key: value` or `key value`;
/// `#` and `!` comment lines; a line ending in a backslash continues on
/// the next; `\t`, `\n`, `\uXXXX` and `\<char>` escapes. A later key wins.
fn parse_properties(text: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let mut line = first.trim_start().to_string();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        while ends_with_continuation(&line) {
            line.pop();
            match lines.next() {
                Some(next) => line.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_entry(&line);
        values.insert(unescape(key), unescape(value));
    }
    values
}

/// True when `line` ends in an odd number of backslashes.
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// The raw key and value of one logical line.
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (&line[..i], line[i + 1..].trim_start()),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix(['=', ':'])
                    .map(str::trim_start)
                    .unwrap_or(rest);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn sasl_ssl(mechanism: MechanismArg) -> SecurityArgs {
        SecurityArgs {
            client_security_protocol: Some(ProtocolArg::SaslSsl),
            client_sasl_mechanism: Some(mechanism),
            ..SecurityArgs::default()
        }
    }

    #[test]
    fn given_no_options_then_plaintext_without_credentials() {
        let security = resolve(&SecurityArgs::default(), &no_env).unwrap();
        assert_eq!(security, SecurityConfig::default());
        // The environment's credentials are for SASL runs only: ignored here.
        let env = |k: &str| (k == USERNAME_ENV).then(|| "alice".to_string());
        assert_eq!(
            resolve(&SecurityArgs::default(), &env).unwrap(),
            SecurityConfig::default()
        );
    }

    #[test]
    fn given_java_properties_syntax_then_keys_and_values_parse() {
        let text = "# comment\n! also a comment\n\n  security.protocol = SASL_SSL\n\
                    sasl.mechanism:SCRAM-SHA-512\nsasl.username alice\n\
                    sasl.password=pa\\=ss\\u0021 \nlong=one\\\n    two\nempty=\n";
        let values = parse_properties(text);
        assert_eq!(values["security.protocol"], "SASL_SSL");
        assert_eq!(values["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(values["sasl.username"], "alice");
        assert_eq!(values["sasl.password"], "pa=ss!");
        assert_eq!(values["long"], "onetwo");
        assert_eq!(values["empty"], "");
        assert_eq!(values.len(), 6);
    }

    #[test]
    fn given_a_client_config_then_it_fills_what_flags_leave_out() {
        let dir = tempfile::tempdir().unwrap();
        let config = file(
            &dir,
            "client.properties",
            "security.protocol=SASL_SSL\nssl.ca.location=/etc/ca.pem\n\
             sasl.mechanism=SCRAM-SHA-256\nsasl.username=bob\nsasl.password=from-file\n\
             bootstrap.servers=ignored:9092\n",
        );
        let args = SecurityArgs {
            client_config: Some(config.clone()),
            ..SecurityArgs::default()
        };
        let security = resolve(&args, &no_env).unwrap();
        let expected = SecurityConfig::new(SecurityProtocol::SaslSsl)
            .ca_file("/etc/ca.pem")
            .sasl(SaslConfig::new(
                SaslMechanism::ScramSha256,
                "bob",
                "from-file",
            ));
        assert_eq!(security, expected);

        // Flags, then the environment, override the file.
        let password = file(&dir, "password", "from-flag\n");
        let args = SecurityArgs {
            client_security_protocol: Some(ProtocolArg::SaslPlaintext),
            client_sasl_mechanism: Some(MechanismArg::Plain),
            client_sasl_password_file: Some(password),
            client_config: Some(config),
            ..SecurityArgs::default()
        };
        let env = |k: &str| (k == USERNAME_ENV).then(|| "carol".to_string());
        let security = resolve(&args, &env).unwrap();
        let expected = SecurityConfig::new(SecurityProtocol::SaslPlaintext).sasl(SaslConfig::new(
            SaslMechanism::Plain,
            "carol",
            "from-flag",
        ));
        assert_eq!(security, expected);
    }

    #[test]
    fn given_a_java_jaas_config_then_user_and_password_come_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = file(
            &dir,
            "java.properties",
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
             required username=\"dave\" password=\"p\\\\\\\"w\";\n",
        );
        let args = SecurityArgs {
            client_config: Some(config),
            ..SecurityArgs::default()
        };
        let sasl = resolve(&args, &no_env).unwrap().sasl.unwrap();
        assert_eq!(sasl.username, "dave");
        assert_eq!(sasl.password.expose(), "p\"w");
    }

    #[test]
    fn given_sasl_without_user_password_or_mechanism_then_the_error_says_what_to_set() {
        let only_user = |k: &str| (k == USERNAME_ENV).then(|| "alice".to_string());
        type Env<'a> = &'a dyn Fn(&str) -> Option<String>;
        let cases: [(SecurityArgs, Env<'_>, &str); 3] = [
            (
                sasl_ssl(MechanismArg::ScramSha512),
                &no_env,
                "--sasl-username",
            ),
            (
                sasl_ssl(MechanismArg::ScramSha512),
                &only_user,
                "--sasl-password-file",
            ),
            (
                SecurityArgs {
                    client_security_protocol: Some(ProtocolArg::SaslSsl),
                    ..SecurityArgs::default()
                },
                &only_user,
                "--sasl-mechanism",
            ),
        ];
        for (args, env, needle) in cases {
            let message = resolve(&args, env).unwrap_err().to_string();
            assert!(message.contains(needle), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn given_sasl_or_ca_flags_without_such_a_protocol_then_an_error_names_the_fix() {
        let args = SecurityArgs {
            client_sasl_username: Some("alice".into()),
            ..SecurityArgs::default()
        };
        let message = resolve(&args, &no_env).unwrap_err().to_string();
        assert!(message.contains("sasl_ssl"), "{message}");
        let args = SecurityArgs {
            client_ca: Some("ca.pem".into()),
            ..SecurityArgs::default()
        };
        let message = resolve(&args, &no_env).unwrap_err().to_string();
        assert!(message.contains("--security-protocol ssl"), "{message}");
    }

    #[test]
    fn given_password_sources_then_the_file_drops_one_line_end_and_none_is_printed() {
        let dir = tempfile::tempdir().unwrap();
        let password = file(&dir, "password", "s3cret\r\n");
        let mut args = sasl_ssl(MechanismArg::Plain);
        args.client_sasl_username = Some("alice".into());
        args.client_sasl_password_file = Some(password);
        let security = resolve(&args, &no_env).unwrap();
        let sasl = security.sasl.as_ref().unwrap();
        assert_eq!(sasl.password.expose(), "s3cret");
        assert!(!format!("{security:?}").contains("s3cret"));

        args.client_sasl_password_file = None;
        let env = |k: &str| (k == PASSWORD_ENV).then(|| "from-env".to_string());
        let sasl = resolve(&args, &env).unwrap().sasl.unwrap();
        assert_eq!(sasl.password.expose(), "from-env");

        args.client_sasl_password_file = Some(file(&dir, "empty", "\n"));
        let message = resolve(&args, &env).unwrap_err().to_string();
        assert!(message.contains("is empty"), "{message}");
    }

    #[test]
    fn given_a_jks_truststore_then_the_error_asks_for_pem() {
        let dir = tempfile::tempdir().unwrap();
        let config = file(
            &dir,
            "c.properties",
            "security.protocol=SSL\nssl.truststore.location=/x.jks\n",
        );
        let args = SecurityArgs {
            client_config: Some(config),
            ..SecurityArgs::default()
        };
        let message = resolve(&args, &no_env).unwrap_err().to_string();
        assert!(message.contains("ssl.ca.location"), "{message}");
    }

    #[test]
    fn given_a_client_certificate_from_flags_or_the_file_then_flags_win_and_it_needs_tls() {
        let dir = tempfile::tempdir().unwrap();
        let config = file(
            &dir,
            "ssl.properties",
            "security.protocol=SSL\nssl.ca.location=/etc/ca.pem\n\
             ssl.certificate.location=/etc/file.pem\nssl.key.location=/etc/file.key\n",
        );
        let from_file = SecurityArgs {
            client_config: Some(config.clone()),
            ..SecurityArgs::default()
        };
        assert_eq!(
            resolve(&from_file, &no_env).unwrap(),
            SecurityConfig::new(SecurityProtocol::Ssl)
                .ca_file("/etc/ca.pem")
                .client_certificate("/etc/file.pem", "/etc/file.key")
        );
        let from_flags = SecurityArgs {
            client_tls_cert: Some("flag.pem".into()),
            client_tls_key: Some("flag.key".into()),
            ..from_file
        };
        assert_eq!(
            resolve(&from_flags, &no_env).unwrap().client_cert,
            Some(ClientCertificate::new("flag.pem", "flag.key"))
        );
        let plaintext = SecurityArgs {
            client_security_protocol: Some(ProtocolArg::SaslPlaintext),
            ..from_flags
        };
        let message = resolve(&plaintext, &no_env).unwrap_err().to_string();
        assert!(
            message.contains("--client-cert") && message.contains("--security-protocol ssl"),
            "{message}"
        );
    }

    #[test]
    fn given_a_client_certificate_without_its_key_or_the_other_way_round_then_one_usage_line() {
        let dir = tempfile::tempdir().unwrap();
        let ssl = |cert: Option<&str>, key: Option<&str>, config: Option<PathBuf>| SecurityArgs {
            client_security_protocol: Some(ProtocolArg::Ssl),
            client_tls_cert: cert.map(PathBuf::from),
            client_tls_key: key.map(PathBuf::from),
            client_config: config,
            ..SecurityArgs::default()
        };
        let only_cert = file(&dir, "cert.properties", "ssl.certificate.location=/c.pem\n");
        let only_key = file(&dir, "key.properties", "ssl.key.location=/c.key\n");
        let cases = [
            (ssl(Some("c.pem"), None, None), "--client-key"),
            (ssl(None, Some("c.key"), None), "--client-cert"),
            (ssl(None, None, Some(only_cert)), "ssl.key.location"),
            (ssl(None, None, Some(only_key)), "ssl.certificate.location"),
        ];
        for (args, needle) in cases {
            let message = resolve(&args, &no_env).unwrap_err().to_string();
            assert!(message.contains(needle), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn given_client_cert_flags_then_clients_take_them_and_serve_keeps_its_tls_cert() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "sediment",
            "produce",
            "orders",
            "--security-protocol",
            "ssl",
            "--client-cert",
            "client.pem",
            "--client-key",
            "client.key",
        ])
        .unwrap();
        assert_eq!(
            cli.security.client_tls_cert.as_deref(),
            Some(Path::new("client.pem"))
        );
        assert_eq!(
            cli.security.client_tls_key.as_deref(),
            Some(Path::new("client.key"))
        );
        let cli = crate::cli::Cli::try_parse_from([
            "sediment",
            "serve",
            "--tls-cert",
            "broker.pem",
            "--tls-key",
            "broker.key",
        ])
        .unwrap();
        let crate::cli::Command::Serve(serve) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(
            serve.settings.tls_cert.as_deref(),
            Some(Path::new("broker.pem"))
        );
        assert_eq!(
            serve.settings.tls_key.as_deref(),
            Some(Path::new("broker.key"))
        );
    }

    #[test]
    fn given_the_cli_then_security_flags_are_global_and_parse() {
        use clap::{CommandFactory, Parser};
        crate::cli::Cli::command().debug_assert();
        let cli = crate::cli::Cli::try_parse_from([
            "sediment",
            "topic",
            "list",
            "--security-protocol",
            "SASL_SSL",
            "--sasl-mechanism",
            "scram-sha-512",
            "--ca",
            "ca.pem",
        ])
        .unwrap();
        assert_eq!(
            cli.security.client_security_protocol,
            Some(ProtocolArg::SaslSsl)
        );
        assert_eq!(
            cli.security.client_sasl_mechanism,
            Some(MechanismArg::ScramSha512)
        );
        assert!(crate::cli::Cli::try_parse_from([
            "sediment",
            "topic",
            "list",
            "--sasl-password",
            "x"
        ])
        .is_err());
    }
}
