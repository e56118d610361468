//! The `sediment` binary.
fn main() {}
