//! `sediment user create|list|delete`: SCRAM users, either through a
//! running broker (AlterUserScramCredentials and
//! DescribeUserScramCredentials, so any Kafka-compatible broker; the
//! global `--bootstrap` and client security flags apply), or offline with
//! `--data-dir`, straight in the broker's users file
//! ([`CredentialStore`]) — how the first (super) user is made before a
//! broker that requires SASL is started.
//!
//! Invariants:
//! - a password is read from stdin only (`--password-stdin`, first line,
//!   its line ending dropped), never from an argument, never from a
//!   terminal (which would echo it), and never printed or logged; it is
//!   held in a [`Password`] (whose `Debug` prints `***`). Online, only the
//!   salt, iterations and salted password leave the process.
//! - an offline change holds the broker's exclusive lock on the data
//!   directory (`DATA/.lock`, which a running broker holds for its whole
//!   life) while it reads and writes the users file: a running broker reads
//!   the file only at start and rewrites it whole on every online change,
//!   so it would not see an offline change and could overwrite it. While a
//!   broker runs, the offline change is refused, and the broker cannot
//!   start in the middle of one. `list --data-dir` only reads the file
//!   (which is replaced atomically) and needs no lock.

use std::fs::File;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use sediment_broker::security::credentials::{CredentialStore, UserInfo};
use sediment_broker::storage::log_manager::{try_lock_data_dir, LOCK_FILE, META_DIR};
use sediment_client::{
    Admin, ClientError, ErrorCode, Password, ScramDeletion, ScramMechanism, ScramUpsertion,
};
use sediment_protocol::sasl::ScramCredential;

use super::acl::refusal;
use super::{OutputFormat, Target};

/// The iteration count when none is given (Kafka's tools use it too).
const DEFAULT_ITERATIONS: u32 = 4096;

/// The longest password line read from stdin, in bytes.
const MAX_PASSWORD_BYTES: u64 = 1024;

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a SCRAM user, or set a new password for one of its mechanisms.
    Create {
        /// User name (the principal is then User:NAME).
        name: String,
        /// SCRAM mechanism of the credential.
        #[arg(long, value_enum, ignore_case = true)]
        mechanism: MechanismArg,
        /// Read the password from the first line of stdin (required: a
        /// password is never an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// PBKDF2 iterations of the credential (4096..=16384).
        #[arg(long, default_value_t = DEFAULT_ITERATIONS,
              value_parser = clap::value_parser!(u32).range(4096..=16384))]
        iterations: u32,
        /// Write the broker's users file in this data directory instead of
        /// asking a running broker; the broker must be stopped.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// List SCRAM users with their mechanisms and iteration counts.
    List {
        /// Read the users file of this data directory instead of asking a running broker.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Delete a SCRAM user (all its mechanisms, or one).
    Delete {
        /// User name.
        name: String,
        /// Delete only this mechanism's credential.
        #[arg(long, value_enum, ignore_case = true)]
        mechanism: Option<MechanismArg>,
        /// Write the broker's users file in this data directory instead of
        /// asking a running broker; the broker must be stopped.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// `--mechanism` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MechanismArg {
    /// SCRAM-SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
    /// SCRAM-SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
}

impl From<MechanismArg> for ScramMechanism {
    fn from(arg: MechanismArg) -> Self {
        match arg {
            MechanismArg::ScramSha512 => ScramMechanism::Sha512,
            MechanismArg::ScramSha256 => ScramMechanism::Sha256,
        }
    }
}

/// Runs a user command.
pub async fn run(
    command: UserCommand,
    target: impl FnOnce() -> anyhow::Result<Target>,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Create {
            name,
            mechanism,
            password_stdin: _,
            iterations,
            data_dir,
        } => {
            let mechanism = ScramMechanism::from(mechanism);
            let password = read_password_from_stdin()?;
            match data_dir {
                Some(dir) => create_offline(&dir, &name, mechanism, &password, iterations)?,
                None => {
                    // Salted before connecting: a bad setting fails first.
                    let upsertion =
                        ScramUpsertion::new(&name, mechanism, password.expose(), iterations)?;
                    drop(password);
                    let target = target()?;
                    let admin = target.connect().await?.admin();
                    admin
                        .alter_user_scram_credentials(&[upsertion], &[])
                        .await
                        .map_err(|e| {
                            refusal(&target, e, &format!("create user {name}"), "ALTER")
                        })?;
                }
            }
            match output {
                OutputFormat::Table => {
                    outln!("created user {name} ({mechanism}, {iterations} iterations)")
                }
                OutputFormat::Json => outln!(
                    "{}",
                    json!({ "user": name, "mechanism": mechanism.name(), "iterations": iterations, "created": true })
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::List { data_dir } => {
            let users = match data_dir {
                Some(dir) => open_store(&dir)?.list(),
                None => {
                    let target = target()?;
                    let admin = target.connect().await?.admin();
                    list_online(&admin)
                        .await
                        .map_err(|e| refusal(&target, e, "list users", "DESCRIBE"))?
                }
            };
            print_users(&users, output);
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Delete {
            name,
            mechanism,
            data_dir,
        } => {
            let mechanism = mechanism.map(ScramMechanism::from);
            match data_dir {
                Some(dir) => delete_offline(&dir, &name, mechanism)?,
                None => {
                    let target = target()?;
                    let admin = target.connect().await?.admin();
                    delete_online(&target, &admin, &name, mechanism).await?;
                }
            }
            match (output, mechanism) {
                (OutputFormat::Table, None) => outln!("deleted user {name}"),
                (OutputFormat::Table, Some(m)) => {
                    outln!("deleted the {m} credential of user {name}")
                }
                (OutputFormat::Json, m) => outln!(
                    "{}",
                    json!({ "user": name, "mechanism": m.map(ScramMechanism::name), "deleted": true })
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The password on stdin; refused when stdin is a terminal, where typing
/// it would echo it.
fn read_password_from_stdin() -> anyhow::Result<Password> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!(
            "--password-stdin reads the password from a pipe or file, not a terminal \
             (it would echo): e.g. `sediment user create NAME --mechanism SCRAM-SHA-512 \
             --password-stdin < password-file`"
        );
    }
    read_password(stdin.lock())
}

/// The first line of `input` without its line ending (`\n` or `\r\n`).
fn read_password(input: impl BufRead) -> anyhow::Result<Password> {
    let mut line = Vec::new();
    input
        .take(MAX_PASSWORD_BYTES + 2)
        .read_until(b'\n', &mut line)
        .context("cannot read the password from stdin")?;
    let password = line
        .strip_suffix(b"\n")
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or(&line);
    if password.len() as u64 > MAX_PASSWORD_BYTES {
        bail!("the password on stdin is longer than {MAX_PASSWORD_BYTES} bytes");
    }
    if password.is_empty() {
        bail!("no password on stdin: --password-stdin reads it from the first line");
    }
    let Ok(password) = std::str::from_utf8(password) else {
        bail!("the password on stdin is not UTF-8 text");
    };
    Ok(Password::new(password))
}

/// The users file of `dir`, read without the lock (reads are safe: the
/// file is replaced atomically).
fn open_store(dir: &Path) -> anyhow::Result<CredentialStore> {
    if !dir.is_dir() {
        bail!("data directory {} does not exist", dir.display());
    }
    CredentialStore::open(dir).map_err(|e| anyhow!(e))
}

/// The broker's lock on `dir`, held while the users file changes (see the
/// module's invariants). Creates the directory, so that the first user can
/// be made before the broker first starts.
fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    let meta = dir.join(META_DIR);
    std::fs::create_dir_all(&meta)
        .with_context(|| format!("cannot create data directory {}", meta.display()))?;
    let path = dir.join(LOCK_FILE);
    match try_lock_data_dir(dir).with_context(|| format!("cannot lock {}", path.display()))? {
        Some(file) => Ok(file),
        None => bail!(
            "a broker is running on {} (it holds {}): stop it first, or leave out --data-dir \
             to change users through the running broker (--bootstrap)",
            dir.display(),
            path.display()
        ),
    }
}

fn create_offline(
    dir: &Path,
    name: &str,
    mechanism: ScramMechanism,
    password: &Password,
    iterations: u32,
) -> anyhow::Result<()> {
    let _lock = lock_data_dir(dir)?;
    let store = CredentialStore::open(dir).map_err(|e| anyhow!(e))?;
    let credential = ScramCredential::generate(mechanism, password.expose().as_bytes(), iterations)
        .map_err(|e| anyhow!("cannot make the {mechanism} credential of user {name}: {e}"))?;
    store
        .upsert(name, mechanism, credential)
        .map_err(|e| anyhow!("cannot create user {name}: {e}"))
}

fn delete_offline(dir: &Path, name: &str, mechanism: Option<ScramMechanism>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("data directory {} does not exist", dir.display());
    }
    let _lock = lock_data_dir(dir)?;
    let store = CredentialStore::open(dir).map_err(|e| anyhow!(e))?;
    let deleted = match mechanism {
        Some(m) => store.delete(name, m),
        None => store.delete_user(name),
    }
    .map_err(|e| anyhow!("cannot delete user {name}: {e}"))?;
    if !deleted {
        bail!(
            "{} (see `sediment user list --data-dir {}`)",
            missing(name, mechanism),
            dir.display()
        );
    }
    Ok(())
}

/// What a delete found nothing of.
fn missing(name: &str, mechanism: Option<ScramMechanism>) -> String {
    match mechanism {
        Some(m) => format!("user {name} has no {m} credential"),
        None => format!("no user {name}"),
    }
}

async fn list_online(admin: &Admin) -> Result<Vec<UserInfo>, ClientError> {
    let users = admin.describe_user_scram_credentials(None).await?;
    let mut users: Vec<UserInfo> = users
        .into_iter()
        .map(|u| {
            let mut mechanisms: Vec<(ScramMechanism, u32)> = u
                .credentials
                .iter()
                .map(|c| (c.mechanism, u32::try_from(c.iterations).unwrap_or(0)))
                .collect();
            mechanisms.sort();
            UserInfo {
                name: u.user,
                mechanisms,
            }
        })
        .collect();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(users)
}

/// Deletes one credential, or every credential of the user: one request
/// per mechanism, since Kafka refuses a request naming a user twice.
async fn delete_online(
    target: &Target,
    admin: &Admin,
    name: &str,
    mechanism: Option<ScramMechanism>,
) -> anyhow::Result<()> {
    let action = format!("delete user {name}");
    let not_found = |e: &ClientError| e.kafka_error() == Some(ErrorCode::ResourceNotFound);
    let mechanisms = match mechanism {
        Some(m) => vec![m],
        None => match admin
            .describe_user_scram_credentials(Some(vec![name.to_string()]))
            .await
        {
            Ok(users) => users
                .into_iter()
                .filter(|u| u.user == name)
                .flat_map(|u| u.credentials.into_iter().map(|c| c.mechanism))
                .collect(),
            Err(e) if not_found(&e) => Vec::new(),
            Err(e) => return Err(refusal(target, e, &action, "DESCRIBE")),
        },
    };
    if mechanisms.is_empty() {
        bail!("{} (see `sediment user list`)", missing(name, mechanism));
    }
    for m in mechanisms {
        match admin
            .alter_user_scram_credentials(&[], &[ScramDeletion::new(name, m)])
            .await
        {
            Ok(()) => {}
            Err(e) if not_found(&e) => {
                bail!("{} (see `sediment user list`)", missing(name, mechanism))
            }
            Err(e) => return Err(refusal(target, e, &action, "ALTER")),
        }
    }
    Ok(())
}

/// `SCRAM-SHA-256 (4096), SCRAM-SHA-512 (8192)`.
fn mechanisms_text(user: &UserInfo) -> String {
    user.mechanisms
        .iter()
        .map(|(m, iterations)| format!("{m} ({iterations})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_users(users: &[UserInfo], output: OutputFormat) {
    match output {
        OutputFormat::Table => {
            outln!("{:<32} MECHANISMS (ITERATIONS)", "USER");
            for user in users {
                outln!("{:<32} {}", user.name, mechanisms_text(user));
            }
        }
        OutputFormat::Json => {
            let list: Vec<_> = users
                .iter()
                .map(|u| {
                    let mechanisms: Vec<_> = u
                        .mechanisms
                        .iter()
                        .map(|(m, i)| json!({ "mechanism": m.name(), "iterations": i }))
                        .collect();
                    json!({ "user": u.name, "mechanisms": mechanisms })
                })
                .collect();
            outln!("{}", serde_json::Value::Array(list));
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn password(input: &[u8]) -> anyhow::Result<String> {
        read_password(input).map(|p| p.expose().to_string())
    }

    #[test]
    fn given_password_line_when_read_then_line_ending_stripped_and_rest_ignored(
    ) -> anyhow::Result<()> {
        assert_eq!(password(b"s3cret\n")?, "s3cret");
        assert_eq!(password(b"s3cret\r\n")?, "s3cret");
        assert_eq!(password(b"s3cret")?, "s3cret");
        assert_eq!(password(b"with spaces \n second line\n")?, "with spaces ");
        Ok(())
    }

    #[test]
    fn given_empty_or_overlong_stdin_when_read_then_refused_without_echoing() {
        for input in [&b""[..], b"\n", b"\r\n"] {
            let err = password(input).err().map(|e| e.to_string());
            assert!(err.is_some_and(|e| e.contains("no password")), "{input:?}");
        }
        let long = vec![b'x'; 5000];
        let err = password(&long)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("longer than 1024"), "{err}");
        assert!(!err.contains("xxx"));
        let mut exact = vec![b'y'; 1024];
        exact.push(b'\n');
        assert_eq!(password(&exact).map(|p| p.len()).ok(), Some(1024));
        let err = password(b"\xff\xfe\n").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("not UTF-8")));
    }

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(subcommand)]
        command: UserCommand,
    }

    fn parse(args: &[&str]) -> Result<UserCommand, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("user").chain(args.iter().copied()))
            .map(|w| w.command)
    }

    #[test]
    fn given_create_then_mechanism_any_case_default_iterations_and_password_stdin_required() {
        match parse(&[
            "create",
            "alice",
            "--mechanism",
            "scram-sha-256",
            "--password-stdin",
        ]) {
            Ok(UserCommand::Create {
                name,
                mechanism,
                iterations,
                data_dir,
                ..
            }) => {
                assert_eq!(name, "alice");
                assert_eq!(ScramMechanism::from(mechanism), ScramMechanism::Sha256);
                assert_eq!(iterations, 4096);
                assert!(data_dir.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["create", "alice", "--mechanism", "SCRAM-SHA-512"]).is_err());
        assert!(parse(&[
            "create",
            "alice",
            "--mechanism",
            "PLAIN",
            "--password-stdin"
        ])
        .is_err());
        assert!(parse(&[
            "create",
            "alice",
            "--mechanism",
            "SCRAM-SHA-512",
            "--password-stdin",
            "--iterations",
            "100"
        ])
        .is_err());
        assert!(parse(&["create", "alice", "--password", "x"]).is_err());
    }

    #[test]
    fn given_data_dir_when_created_listed_and_deleted_offline_then_users_file_follows(
    ) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let pw = Password::new("pencil");
        create_offline(&data, "alice", ScramMechanism::Sha512, &pw, 8192)?;
        create_offline(&data, "alice", ScramMechanism::Sha256, &pw, 4096)?;
        let users = open_store(&data)?.list();
        assert_eq!(users.len(), 1);
        assert_eq!(
            mechanisms_text(&users[0]),
            "SCRAM-SHA-256 (4096), SCRAM-SHA-512 (8192)"
        );
        let stored = open_store(&data)?
            .get("alice", ScramMechanism::Sha512)
            .ok_or_else(|| anyhow!("no credential"))?;
        assert!(stored.verify_password(ScramMechanism::Sha512, b"pencil"));
        delete_offline(&data, "alice", Some(ScramMechanism::Sha256))?;
        let err = delete_offline(&data, "alice", Some(ScramMechanism::Sha256))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("has no SCRAM-SHA-256 credential"), "{err}");
        delete_offline(&data, "alice", None)?;
        assert!(open_store(&data)?.list().is_empty());
        Ok(())
    }

    #[test]
    fn given_data_dir_locked_by_a_broker_when_changed_offline_then_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let held = lock_data_dir(dir.path())?;
        let err = create_offline(
            dir.path(),
            "alice",
            ScramMechanism::Sha512,
            &Password::new("pw"),
            4096,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("a broker is running on"), "{err}");
        drop(held);
        create_offline(
            dir.path(),
            "alice",
            ScramMechanism::Sha512,
            &Password::new("pw"),
            4096,
        )?;
        Ok(())
    }
}
