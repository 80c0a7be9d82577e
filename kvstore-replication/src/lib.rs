//! kvstore-replication (work in progress).
