//! Authentication and authorization: who a connection is and what it may do.

pub mod acl;
pub mod acl_store;
pub mod credentials;
pub mod gatekeeper;
