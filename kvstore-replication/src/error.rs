//! The replication layer's error type.

use std::path::PathBuf;

use kvstore_core::Lsn;

/// Result alias used across `kvstore-replication`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while replicating.
///
/// Transports map their failures onto these variants so that the worker can tell a
/// retryable hiccup ([`Error::Transport`]) from a refusal that retrying cannot fix
/// ([`Error::StaleEpoch`], [`Error::Diverged`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The replica refused the session because it already follows a master of a higher epoch.
    #[error(
        "STALEEPOCH replica follows epoch {replica_epoch}, refusing master epoch {master_epoch}"
    )]
    StaleEpoch {
        /// The epoch the master offered.
        master_epoch: u64,
        /// The epoch the replica has durably accepted.
        replica_epoch: u64,
    },
    /// The replica holds records the master does not have: its applied LSN is beyond the
    /// master's last LSN, or beyond the point where the two logs' timelines part (see
    /// [`crate::timeline`]). It is left untouched until an operator forces a resync.
    #[error("DIVERGED replica applied up to LSN {replica_lsn} but its log agrees with the master's only up to LSN {master_lsn}")]
    Diverged {
        /// The replica's applied LSN.
        replica_lsn: Lsn,
        /// The last LSN up to which the replica's log is known to hold the master's records.
        master_lsn: Lsn,
    },
    /// Records or snapshot chunks arrived without a HELLO having opened a session, or on a
    /// session that a later HELLO ended.
    #[error("NOSESSION no replication session: send HELLO first")]
    NoSession,
    /// The connection failed, timed out or was cut; retrying later may succeed.
    #[error("transport to {replica} failed: {reason}")]
    Transport {
        /// Which replica (transport description).
        replica: String,
        /// What failed.
        reason: String,
    },
    /// The peer sent something that does not follow the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The replication configuration is invalid; nothing was started.
    #[error("invalid replication config: {0}")]
    InvalidConfig(String),
    /// Reading or writing the durable epoch file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The storage engine failed (master or replica side).
    #[error(transparent)]
    Core(#[from] kvstore_core::Error),
}

impl Error {
    /// Builds a [`Error::Transport`].
    pub fn transport(replica: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Transport {
            replica: replica.into(),
            reason: reason.into(),
        }
    }

    /// Whether retrying the same request later can succeed (network trouble), as opposed to a
    /// refusal that needs a different request or an operator.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Transport { .. } | Error::NoSession)
            || matches!(self, Error::Core(kvstore_core::Error::Io { .. }))
    }
}
