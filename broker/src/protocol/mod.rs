//! The Kafka wire protocol, sans-IO: framing, the advertised versions, and
//! header/response glue over the `kafka-protocol` codec.

pub mod codec;
pub mod frame;
pub mod versions;
