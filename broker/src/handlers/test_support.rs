//! What the handlers' unit tests share: a broker in a temporary directory
//! with `User:admin` as super user, and sessions for any principal.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::broker::Broker;
use crate::config::{BrokerConfig, HttpListen};
use crate::security_config::SecurityConfig;
use crate::session::{ListenerKind, Session};

/// The super user of [`broker`].
pub const ADMIN: &str = "User:admin";

/// A broker on `dir` without HTTP, enforcing ACLs when `authorizer` is set,
/// with [`ADMIN`] as super user.
pub fn broker(dir: &Path, authorizer: bool) -> Arc<Broker> {
    let config = BrokerConfig {
        data_dir: dir.to_path_buf(),
        http: HttpListen::Off,
        security: SecurityConfig {
            authorizer,
            super_users: vec![ADMIN.to_string()],
            ..SecurityConfig::default()
        },
        ..BrokerConfig::default()
    };
    Arc::new(Broker::open(config).expect("open a broker in a temp dir"))
}

/// A plaintext-listener session of `principal` from 127.0.0.1.
pub fn session(principal: &str) -> Session {
    let peer = SocketAddr::from(([127, 0, 0, 1], 50_000));
    Session::new(principal, peer, ListenerKind::Plain)
}
