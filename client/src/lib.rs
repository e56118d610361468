//! sediment-client: the async producer, consumer and admin client.
//!
//! Not built yet: this crate is reserved in the workspace so that the layout of
//! DESIGN.md §2 holds from the first commit. Its work is issue 4.
