//! One module per engine; the peers are compiled only with their features (`peers`, `rocksdb`).

#[cfg(feature = "peers")]
pub mod fjall;
pub mod kvstore;
#[cfg(feature = "peers")]
pub mod redb;
#[cfg(feature = "rocksdb")]
pub mod rocksdb;
#[cfg(feature = "peers")]
pub mod sled;
