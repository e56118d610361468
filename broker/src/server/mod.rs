//! The TCP server: the accept loop and the per-connection request pipeline.

pub mod connection;
pub mod listener;

pub use listener::Server;
