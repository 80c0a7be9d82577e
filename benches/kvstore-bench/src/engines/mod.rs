//! One module per engine.

pub mod kvstore;
