//! The Kafka wire protocol, sans-IO: framing, the advertised versions,
//! header/response glue over the `sediment-protocol` codec, and the one
//! mapping of domain errors to Kafka error codes.

pub mod codec;
pub mod errors;
pub mod frame;
pub mod versions;
