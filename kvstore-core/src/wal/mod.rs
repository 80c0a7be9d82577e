//! The write-ahead log: record encoding, segment files, the group-commit writer, sequential
//! readers, hint files and recovery.

pub(crate) mod checksum;
pub(crate) mod compacted;
pub(crate) mod consumers;
pub(crate) mod hint;
pub(crate) mod iter;
pub(crate) mod reader;
pub(crate) mod record;
pub(crate) mod recovery;
pub(crate) mod segment;
pub(crate) mod sequencer;
pub(crate) mod swap;
pub(crate) mod varint;
pub(crate) mod writer;
