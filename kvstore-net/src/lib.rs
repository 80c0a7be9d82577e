//! kvstore-net (work in progress).
