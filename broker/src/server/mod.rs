//! The TCP server: connection limits, the accept loop and the per-connection
//! request pipeline.

pub mod admission;
pub mod connection;
pub mod listener;

pub use listener::Server;
