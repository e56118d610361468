//! The TCP server: the plaintext and TLS listeners, connection limits, the
//! accept loop, the SASL exchange and the per-connection request pipeline.

pub mod admission;
pub mod connection;
pub mod listener;
pub mod sasl;
pub mod tls;

pub use listener::Server;
