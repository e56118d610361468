//! The broker's SCRAM users: per user and mechanism the salt, iteration
//! count, StoredKey and ServerKey (RFC 5802 §3), persisted in
//! `DATA/meta/users.json`.
//!
//! Invariants:
//! - no password, and nothing a password can be recovered from without a
//!   dictionary attack, is ever held or written: only what
//!   [`ScramCredential`] carries (SASL/PLAIN logins are checked against it);
//! - the file is written through [`write_checksummed`] (temp file, fsync,
//!   rename, directory fsync): after a crash it holds the old or the new
//!   set of users, never a mix, and damage at rest is detected on open and
//!   refused, never silently read as "no users";
//! - a change is on disk before it is visible: [`CredentialStore::upsert`]
//!   and the deletes persist the new set first and only then swap it in,
//!   so if the write fails memory and file both keep the old set (the
//!   rename is atomic, so no half-written state needs poisoning);
//! - writers serialize on the lock, so the file's order of changes is the
//!   order they became visible;
//! - every stored user name passes [`validate_user_name`] and every
//!   credential [`ScramCredential::validate`] for its mechanism, on the
//!   way in and again on load.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sediment_protocol::sasl::{ScramCredential, ScramError, ScramMechanism};
use serde::{Deserialize, Serialize};

use crate::basics::{read_lock, write_lock};
use crate::storage::checkpoint::{read_checksummed, write_checksummed, ChecksummedFileError};
use crate::storage::log_manager::META_DIR;

/// File under `DATA/meta` holding the SCRAM users.
pub const USERS_FILE: &str = "users.json";

/// The longest user name, in bytes.
pub const MAX_USER_NAME_BYTES: usize = 255;

/// The file format this build writes and reads.
const FORMAT_VERSION: u32 = 1;

/// What to tell an operator whose users file cannot be believed.
const RECOVERY_HINT: &str = "restore the file from a backup, or move it aside and recreate \
     the SCRAM users (AlterUserScramCredentials, e.g. kafka-configs.sh --alter --add-config \
     'SCRAM-SHA-512=[password=...]' --entity-type users --entity-name NAME); the broker does \
     not start until then, so that no user is silently dropped";

/// Why the users could not be read, changed or persisted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// A user name that is empty, too long or has control characters.
    #[error("invalid user name: {reason}")]
    InvalidUserName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A credential that does not fit its mechanism (iterations, salt or key lengths).
    #[error("invalid {mechanism} credential: {source}")]
    InvalidCredential {
        /// The mechanism it was given for.
        mechanism: ScramMechanism,
        /// What is wrong with it.
        source: ScramError,
    },
    /// The users file exists but could not be read.
    #[error("cannot read the SCRAM users file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The users file is damaged or its contents are not valid users.
    #[error("the SCRAM users file {path} is damaged ({reason}): {RECOVERY_HINT}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What did not check out.
        reason: String,
    },
    /// The users file was written by a newer Sediment.
    #[error("the SCRAM users file {path} has format version {version}, this broker reads {FORMAT_VERSION}: run a newer broker, or {RECOVERY_HINT}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        version: u32,
    },
    /// The new set of users could not be written; nothing changed.
    #[error("cannot write the SCRAM users file {path} (nothing was changed): {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// A user and the mechanisms it has credentials for (what
/// DescribeUserScramCredentials reports; no salts or keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// Each mechanism with its iteration count, SHA-256 first.
    pub mechanisms: Vec<(ScramMechanism, u32)>,
}

/// Checks a SCRAM user name: non-empty, at most [`MAX_USER_NAME_BYTES`],
/// no control characters (they would forge log lines and principals).
pub fn validate_user_name(name: &str) -> Result<(), CredentialError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_USER_NAME_BYTES {
        "it is longer than 255 bytes"
    } else if name.chars().any(char::is_control) {
        "it has control characters"
    } else {
        return Ok(());
    };
    Err(CredentialError::InvalidUserName { reason })
}

/// Users by name, then credentials by mechanism.
type Users = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// `users.json`.
#[derive(Serialize, Deserialize)]
struct UsersFile {
    version: u32,
    users: Vec<UserEntry>,
}

#[derive(Serialize, Deserialize)]
struct UserEntry {
    name: String,
    credentials: Vec<CredentialEntry>,
}

/// One credential; binary fields in standard base64.
#[derive(Serialize, Deserialize)]
struct CredentialEntry {
    mechanism: String,
    salt: String,
    iterations: u32,
    stored_key: String,
    server_key: String,
}

/// The SCRAM users of a data directory. Thread-safe: reads share a lock,
/// changes hold it for the write of the file.
pub struct CredentialStore {
    path: PathBuf,
    users: RwLock<Users>,
}

impl CredentialStore {
    /// Loads `DATA/meta/users.json`. No file yet is no users; a damaged or
    /// invalid one is refused with an error naming the file and what to do.
    pub fn open(data_dir: &Path) -> Result<Self, CredentialError> {
        let path = data_dir.join(META_DIR).join(USERS_FILE);
        let users = match read_checksummed(&path) {
            Ok(None) => Users::new(),
            Ok(Some(payload)) => decode(&path, &payload)?,
            Err(ChecksummedFileError::Io { path, source }) => {
                return Err(CredentialError::Read { path, source })
            }
            Err(e) => {
                return Err(CredentialError::Corrupt {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        Ok(Self {
            path,
            users: RwLock::new(users),
        })
    }

    /// The file the users are kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `user`'s credential for `mechanism`.
    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        read_lock(&self.users).get(user)?.get(&mechanism).cloned()
    }

    /// One of `user`'s credentials, SCRAM-SHA-512 if it has one (SASL/PLAIN
    /// checks a password against it).
    pub fn any(&self, user: &str) -> Option<(ScramMechanism, ScramCredential)> {
        let users = read_lock(&self.users);
        let credentials = users.get(user)?;
        [ScramMechanism::Sha512, ScramMechanism::Sha256]
            .into_iter()
            .find_map(|m| credentials.get(&m).map(|c| (m, c.clone())))
    }

    /// Sets `user`'s credential for `mechanism` (creating the user),
    /// persisted before this returns. On error nothing changed.
    pub fn upsert(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<(), CredentialError> {
        validate_user_name(user)?;
        credential
            .validate(mechanism)
            .map_err(|source| CredentialError::InvalidCredential { mechanism, source })?;
        self.change(|users| {
            users
                .entry(user.to_owned())
                .or_default()
                .insert(mechanism, credential);
            true
        })?;
        Ok(())
    }

    /// Removes `user`'s credential for `mechanism` (and the user with its
    /// last one), persisted before this returns. False if there was none.
    pub fn delete(&self, user: &str, mechanism: ScramMechanism) -> Result<bool, CredentialError> {
        self.change(|users| {
            let Some(credentials) = users.get_mut(user) else {
                return false;
            };
            let removed = credentials.remove(&mechanism).is_some();
            if credentials.is_empty() {
                users.remove(user);
            }
            removed
        })
    }

    /// Removes `user` with all its credentials, persisted before this
    /// returns. False if there was no such user.
    pub fn delete_user(&self, user: &str) -> Result<bool, CredentialError> {
        self.change(|users| users.remove(user).is_some())
    }

    /// Every user with its mechanisms, by name.
    pub fn list(&self) -> Vec<UserInfo> {
        read_lock(&self.users)
            .iter()
            .map(|(name, credentials)| user_info(name, credentials))
            .collect()
    }

    /// One user with its mechanisms.
    pub fn describe(&self, user: &str) -> Option<UserInfo> {
        read_lock(&self.users)
            .get(user)
            .map(|credentials| user_info(user, credentials))
    }

    /// Applies `apply` to a copy of the users; if it reports a change, the
    /// copy is written and then swapped in. Returns what `apply` reported.
    /// The copy costs little (users are few and changes rare) and makes
    /// "on error nothing changed" hold without undo logic.
    fn change(&self, apply: impl FnOnce(&mut Users) -> bool) -> Result<bool, CredentialError> {
        let mut users = write_lock(&self.users);
        let mut next = users.clone();
        if !apply(&mut next) {
            return Ok(false);
        }
        self.persist(&next)?;
        *users = next;
        Ok(true)
    }

    fn persist(&self, users: &Users) -> Result<(), CredentialError> {
        let write_error = |source| CredentialError::Write {
            path: self.path.clone(),
            source,
        };
        let file = UsersFile {
            version: FORMAT_VERSION,
            users: users
                .iter()
                .map(|(name, credentials)| UserEntry {
                    name: name.clone(),
                    credentials: credentials
                        .iter()
                        .map(|(mechanism, credential)| CredentialEntry {
                            mechanism: mechanism.name().to_owned(),
                            salt: BASE64.encode(&credential.salt),
                            iterations: credential.iterations,
                            stored_key: BASE64.encode(&credential.stored_key),
                            server_key: BASE64.encode(&credential.server_key),
                        })
                        .collect(),
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| write_error(e.into()))?;
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(write_error)?;
        }
        write_checksummed(&self.path, &json).map_err(write_error)
    }
}

fn user_info(name: &str, credentials: &BTreeMap<ScramMechanism, ScramCredential>) -> UserInfo {
    UserInfo {
        name: name.to_owned(),
        mechanisms: credentials
            .iter()
            .map(|(mechanism, credential)| (*mechanism, credential.iterations))
            .collect(),
    }
}

/// The users in a checksummed payload, every name and credential checked.
fn decode(path: &Path, payload: &[u8]) -> Result<Users, CredentialError> {
    let corrupt = |reason: String| CredentialError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file: UsersFile = serde_json::from_slice(payload)
        .map_err(|e| corrupt(format!("not a valid users file: {e}")))?;
    if file.version > FORMAT_VERSION {
        return Err(CredentialError::UnsupportedVersion {
            path: path.to_path_buf(),
            version: file.version,
        });
    }
    let mut users = Users::new();
    for entry in file.users {
        validate_user_name(&entry.name)
            .map_err(|e| corrupt(format!("a user name is invalid: {e}")))?;
        let mut credentials = BTreeMap::new();
        for stored in entry.credentials {
            let mechanism: ScramMechanism = stored
                .mechanism
                .parse()
                .map_err(|e| corrupt(format!("user {:?}: {e}", entry.name)))?;
            let bytes = |field: &str, value: &str| {
                BASE64.decode(value).map_err(|_| {
                    corrupt(format!(
                        "user {:?}, {mechanism}: {field} is not base64",
                        entry.name
                    ))
                })
            };
            let credential = ScramCredential {
                salt: bytes("salt", &stored.salt)?,
                iterations: stored.iterations,
                stored_key: bytes("stored_key", &stored.stored_key)?,
                server_key: bytes("server_key", &stored.server_key)?,
            };
            credential
                .validate(mechanism)
                .map_err(|e| corrupt(format!("user {:?}, {mechanism}: {e}", entry.name)))?;
            if credentials.insert(mechanism, credential).is_some() {
                return Err(corrupt(format!(
                    "user {:?} has two {mechanism} credentials",
                    entry.name
                )));
            }
        }
        if credentials.is_empty() {
            // Never written (the last delete removes the user); nothing to keep.
            continue;
        }
        if users.insert(entry.name.clone(), credentials).is_some() {
            return Err(corrupt(format!("user {:?} appears twice", entry.name)));
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, OnceLock};

    const PASSWORD: &[u8] = b"correct horse battery staple";

    /// Credentials for [`PASSWORD`], derived once per mechanism (PBKDF2 is
    /// slow in debug builds).
    fn credential(mechanism: ScramMechanism) -> ScramCredential {
        static CREDENTIALS: OnceLock<[ScramCredential; 2]> = OnceLock::new();
        let [sha256, sha512] = CREDENTIALS.get_or_init(|| {
            ScramMechanism::ALL
                .map(|m| ScramCredential::derive(m, PASSWORD, b"pepper and salt", 4096).unwrap())
        });
        match mechanism {
            ScramMechanism::Sha256 => sha256.clone(),
            ScramMechanism::Sha512 => sha512.clone(),
        }
    }

    fn users_path(dir: &Path) -> PathBuf {
        dir.join(META_DIR).join(USERS_FILE)
    }

    #[test]
    fn given_no_file_when_opened_then_no_users() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        assert!(store.list().is_empty());
        assert!(store.any("alice").is_none());
        assert!(!users_path(dir.path()).exists());
    }

    #[test]
    fn given_users_when_reopened_then_credentials_survive() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        let (sha256, sha512) = (ScramMechanism::Sha256, ScramMechanism::Sha512);
        store.upsert("alice", sha256, credential(sha256)).unwrap();
        store.upsert("alice", sha512, credential(sha512)).unwrap();
        store.upsert("bob", sha256, credential(sha256)).unwrap();

        let reloaded = CredentialStore::open(dir.path()).unwrap();
        assert_eq!(reloaded.get("alice", sha256), Some(credential(sha256)));
        assert_eq!(reloaded.get("alice", sha512), Some(credential(sha512)));
        assert_eq!(reloaded.get("bob", sha512), None);
        assert_eq!(
            reloaded.list(),
            vec![
                UserInfo {
                    name: "alice".into(),
                    mechanisms: vec![(sha256, 4096), (sha512, 4096)],
                },
                UserInfo {
                    name: "bob".into(),
                    mechanisms: vec![(sha256, 4096)],
                },
            ]
        );
        let (mechanism, any) = reloaded.any("alice").unwrap();
        assert_eq!(mechanism, sha512);
        assert!(any.verify_password(mechanism, PASSWORD));
        assert_eq!(reloaded.any("bob").map(|(m, _)| m), Some(sha256));
    }

    #[test]
    fn given_deletes_when_reopened_then_gone_and_last_mechanism_removes_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        let (sha256, sha512) = (ScramMechanism::Sha256, ScramMechanism::Sha512);
        store.upsert("alice", sha256, credential(sha256)).unwrap();
        store.upsert("alice", sha512, credential(sha512)).unwrap();
        store.upsert("bob", sha256, credential(sha256)).unwrap();

        assert!(store.delete("alice", sha256).unwrap());
        assert!(!store.delete("alice", sha256).unwrap());
        assert!(!store.delete("nobody", sha256).unwrap());
        assert_eq!(
            store.describe("alice").unwrap().mechanisms,
            vec![(sha512, 4096)]
        );
        assert!(store.delete("alice", sha512).unwrap());
        assert!(store.describe("alice").is_none());
        assert!(store.delete_user("bob").unwrap());
        assert!(!store.delete_user("bob").unwrap());

        assert!(CredentialStore::open(dir.path()).unwrap().list().is_empty());
    }

    #[test]
    fn given_damaged_file_when_opened_then_refused_naming_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        let m = ScramMechanism::Sha256;
        store.upsert("alice", m, credential(m)).unwrap();
        let path = users_path(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();

        let error = CredentialStore::open(dir.path()).err().unwrap();
        assert!(matches!(error, CredentialError::Corrupt { .. }), "{error}");
        let shown = error.to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(shown.contains("restore the file from a backup"), "{shown}");
    }

    #[test]
    fn given_checksummed_but_invalid_contents_when_opened_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(META_DIR)).unwrap();
        let path = users_path(dir.path());
        let entry = |mechanism: &str, salt: &str, iterations: u32, key: &str| {
            format!(
                r#"{{"version":1,"users":[{{"name":"alice","credentials":[{{"mechanism":"{mechanism}","salt":"{salt}","iterations":{iterations},"stored_key":"{key}","server_key":"{key}"}}]}}]}}"#
            )
        };
        let key32 = BASE64.encode([7u8; 32]);
        for contents in [
            "not json".to_string(),
            entry("SCRAM-SHA-1", "c2FsdA==", 4096, &key32),
            entry("SCRAM-SHA-256", "!!", 4096, &key32),
            entry("SCRAM-SHA-256", "c2FsdA==", 10, &key32),
            entry("SCRAM-SHA-512", "c2FsdA==", 4096, &key32),
        ] {
            write_checksummed(&path, contents.as_bytes()).unwrap();
            let error = CredentialStore::open(dir.path()).err().unwrap();
            assert!(
                matches!(error, CredentialError::Corrupt { .. }),
                "{contents}: {error}"
            );
        }
        write_checksummed(&path, br#"{"version":2,"users":[]}"#).unwrap();
        assert!(matches!(
            CredentialStore::open(dir.path()),
            Err(CredentialError::UnsupportedVersion { version: 2, .. })
        ));
        // And the valid form of the same entry loads.
        write_checksummed(
            &path,
            entry("SCRAM-SHA-256", "c2FsdA==", 4096, &key32).as_bytes(),
        )
        .unwrap();
        assert!(CredentialStore::open(dir.path())
            .unwrap()
            .get("alice", ScramMechanism::Sha256)
            .is_some());
    }

    #[test]
    fn given_password_when_stored_then_file_holds_no_password_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        for m in ScramMechanism::ALL {
            store.upsert("alice", m, credential(m)).unwrap();
        }
        let file = fs::read(users_path(dir.path())).unwrap();
        let contains = |needle: &[u8]| file.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(PASSWORD));
        assert!(!contains(BASE64.encode(PASSWORD).as_bytes()));
        let hex: String = PASSWORD.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!contains(hex.as_bytes()));
        assert!(!contains(b"horse"));
        assert!(!contains(b"password"));
        // What is there: the keys, as base64.
        let stored = BASE64.encode(credential(ScramMechanism::Sha512).stored_key);
        assert!(contains(stored.as_bytes()));
    }

    #[test]
    fn given_write_failure_when_changing_then_error_and_nothing_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        let m = ScramMechanism::Sha256;
        store.upsert("alice", m, credential(m)).unwrap();
        // A directory where the temp file must go makes every write fail.
        let blocker = dir.path().join(META_DIR).join("users.json.tmp");
        fs::create_dir_all(&blocker).unwrap();

        let error = store.upsert("bob", m, credential(m)).unwrap_err();
        assert!(matches!(error, CredentialError::Write { .. }), "{error}");
        assert!(store.get("bob", m).is_none());
        assert!(matches!(
            store.delete_user("alice"),
            Err(CredentialError::Write { .. })
        ));
        assert!(matches!(
            store.delete("alice", m),
            Err(CredentialError::Write { .. })
        ));
        assert!(store.get("alice", m).is_some());

        fs::remove_dir(&blocker).unwrap();
        let names: Vec<String> = CredentialStore::open(dir.path())
            .unwrap()
            .list()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, vec!["alice".to_string()]);
    }

    #[test]
    fn given_invalid_user_name_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        let m = ScramMechanism::Sha256;
        for name in ["", "a\nb", "tab\there", "\u{7f}", &"x".repeat(256)] {
            assert!(
                matches!(
                    store.upsert(name, m, credential(m)),
                    Err(CredentialError::InvalidUserName { .. })
                ),
                "{name:?}"
            );
        }
        assert!(store.list().is_empty());
        let longest = "é".repeat(127);
        store.upsert(&longest, m, credential(m)).unwrap();
        store
            .upsert("user with spaces, =", m, credential(m))
            .unwrap();
    }

    #[test]
    fn given_credential_not_fitting_mechanism_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        let sha256 = credential(ScramMechanism::Sha256);
        assert!(matches!(
            store.upsert("alice", ScramMechanism::Sha512, sha256.clone()),
            Err(CredentialError::InvalidCredential {
                mechanism: ScramMechanism::Sha512,
                ..
            })
        ));
        let weak = ScramCredential {
            iterations: 1000,
            ..sha256
        };
        assert!(matches!(
            store.upsert("alice", ScramMechanism::Sha256, weak),
            Err(CredentialError::InvalidCredential { .. })
        ));
        assert!(store.list().is_empty());
    }

    #[test]
    fn given_concurrent_upserts_when_reopened_then_all_present() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(CredentialStore::open(dir.path()).unwrap());
        let m = ScramMechanism::Sha256;
        let cred = credential(m);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = Arc::clone(&store);
                let cred = cred.clone();
                std::thread::spawn(move || {
                    for i in 0..5 {
                        store
                            .upsert(&format!("user-{t}-{i}"), m, cred.clone())
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(CredentialStore::open(dir.path()).unwrap().list().len(), 20);
    }
}
