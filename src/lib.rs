//! kvstore: an embeddable, replicated key-value store.
//!
//! This facade re-exports the engine ([`core`]), the replication layer ([`replication`]) and
//! the network layer ([`net`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use kvstore_core as core;
pub use kvstore_core::*;
pub use kvstore_net as net;
pub use kvstore_replication as replication;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
