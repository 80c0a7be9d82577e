//! The network layer's error type.

use std::io;

/// Result alias used across `kvstore-net`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the network layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket or file operation failed; `context` says what was being done.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done (the peer address when there is one).
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The peer sent bytes that are not valid RESP2, or exceeded a protocol limit.
    #[error("protocol error: {0}")]
    Protocol(#[from] crate::parse::ProtocolError),
    /// The server answered a command with an error reply (`-ERR …`, `-NOAUTH …`, …).
    #[error("server replied with an error: {0}")]
    Reply(String),
    /// The server answered with a reply of a type the caller did not expect.
    #[error("unexpected reply to {command}: {reply}")]
    UnexpectedReply {
        /// The command that was sent.
        command: String,
        /// The reply, rendered for humans.
        reply: String,
    },
    /// The peer closed the connection.
    #[error("connection closed by {peer}")]
    Closed {
        /// The peer's address.
        peer: String,
    },
    /// The storage engine failed.
    #[error(transparent)]
    Store(#[from] kvstore_core::Error),
    /// A configuration value was out of range (checked before anything starts).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
