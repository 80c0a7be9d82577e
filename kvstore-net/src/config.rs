//! [`ServerConfig`]: everything a server needs, validated before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kvstore_core::SyncPolicy;

use crate::error::{Error, Result};
use crate::parse::Limits;

/// Default port, as in the seed CLI.
pub const DEFAULT_PORT: u16 = 5555;

/// Default connection limit (Redis's `maxclients`). One more connection gets
/// `-ERR max number of clients reached` and is closed.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;

/// Default largest reply of a command that gathers many values (`MGET`, `RANGE`): 128 MiB,
/// like the largest request ([`crate::parse::MAX_REQUEST_BYTES`]). A single `GET` is bounded
/// by the engine's largest value instead.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 128 << 20;

/// How long a synchronous write waits for its quorum by default.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(1);

/// How writes wait for replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationMode {
    /// A write returns once durable on the master; replicas follow.
    Async,
    /// A write returns once `quorum` replicas applied it, or fails after `timeout` with the
    /// write still durable on the master.
    Sync {
        /// Replicas that must acknowledge.
        quorum: usize,
        /// Longest wait for them.
        timeout: Duration,
    },
}

/// Configuration of a [`crate::Server`]; a consuming builder whose setters document their
/// defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub(crate) data_dir: PathBuf,
    pub(crate) bind: SocketAddr,
    pub(crate) requirepass: Option<String>,
    pub(crate) max_clients: usize,
    pub(crate) limits: Limits,
    pub(crate) sync_policy: SyncPolicy,
    pub(crate) replicas: Vec<String>,
    pub(crate) start_as_replica: bool,
    pub(crate) mode: ReplicationMode,
    pub(crate) min_replicas_to_write: usize,
    pub(crate) node_id: Option<String>,
    pub(crate) max_reply_bytes: usize,
    pub(crate) io_threads: usize,
}

impl ServerConfig {
    /// A server storing its data in `data_dir`, bound to `127.0.0.1:5555`, no password,
    /// `SyncPolicy::Always`, no replicas, a master.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            data_dir: data_dir.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            requirepass: None,
            max_clients: DEFAULT_MAX_CLIENTS,
            limits: Limits::default(),
            sync_policy: SyncPolicy::Always,
            replicas: Vec::new(),
            start_as_replica: false,
            mode: ReplicationMode::Async,
            min_replicas_to_write: 0,
            node_id: None,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            io_threads: crate::event_loop::DEFAULT_IO_THREADS,
        }
    }

    /// Address to listen on. Default `127.0.0.1:5555`; port 0 picks a free port (see
    /// [`crate::ServerHandle::local_addr`]).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Password clients and replication links must send with `AUTH`. Default: none.
    pub fn requirepass(mut self, password: Option<String>) -> Self {
        self.requirepass = password;
        self
    }

    /// Most simultaneous connections. Default [`DEFAULT_MAX_CLIENTS`].
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = n;
        self
    }

    /// Protocol limits. Default [`Limits::default`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Durability of acknowledged writes. Default `SyncPolicy::Always`.
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Self {
        self.sync_policy = policy;
        self
    }

    /// Replicas (`host:port`) this node streams to while it is a master. Default: none.
    pub fn replicas(mut self, replicas: Vec<String>) -> Self {
        self.replicas = replicas;
        self
    }

    /// Start as a replica: refuse client writes, accept `REPLICATE` from a master.
    /// Default: false (a master).
    pub fn replica(mut self, replica: bool) -> Self {
        self.start_as_replica = replica;
        self
    }

    /// Whether writes wait for replicas. Default [`ReplicationMode::Async`].
    pub fn replication_mode(mut self, mode: ReplicationMode) -> Self {
        self.mode = mode;
        self
    }

    /// Refuse writes with `-NOREPLICAS` while fewer replicas are healthy. Default 0.
    pub fn min_replicas_to_write(mut self, n: usize) -> Self {
        self.min_replicas_to_write = n;
        self
    }

    /// Name this node gives itself as a master (in `REPLICATE HELLO`). Default: its
    /// listening address.
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(id.into());
        self
    }

    /// Largest reply, in key and value bytes, that `MGET` or `RANGE` may build; a request
    /// for more gets `-ERR reply exceeds …` and nothing more is read. Default
    /// [`DEFAULT_MAX_REPLY_BYTES`].
    pub fn max_reply_bytes(mut self, bytes: usize) -> Self {
        self.max_reply_bytes = bytes;
        self
    }

    /// Event-loop threads serving connections (each owns a share of them). Default
    /// [`DEFAULT_IO_THREADS`](crate::event_loop::DEFAULT_IO_THREADS).
    pub fn io_threads(mut self, threads: usize) -> Self {
        self.io_threads = threads;
        self
    }

    /// Checks the values against each other; called by [`crate::Server::start`].
    pub fn validate(&self) -> Result<()> {
        if self.io_threads == 0 {
            return Err(Error::Config("io threads must be at least 1".into()));
        }
        if self.max_clients == 0 {
            return Err(Error::Config("max clients must be at least 1".into()));
        }
        if let ReplicationMode::Sync { quorum, timeout } = self.mode {
            if quorum == 0 || quorum > self.replicas.len() {
                return Err(Error::Config(format!(
                    "write quorum must be between 1 and the number of replicas ({}), got {quorum}",
                    self.replicas.len()
                )));
            }
            if timeout.is_zero() {
                return Err(Error::Config("sync timeout must be positive".into()));
            }
        }
        if self.min_replicas_to_write > self.replicas.len() {
            return Err(Error::Config(format!(
                "min replicas to write ({}) exceeds the number of replicas ({})",
                self.min_replicas_to_write,
                self.replicas.len()
            )));
        }
        if let Some(pass) = &self.requirepass {
            if pass.is_empty() || pass.contains(['\r', '\n']) {
                return Err(Error::Config(
                    "requirepass must be non-empty and hold no CR or LF".into(),
                ));
            }
        }
        for replica in &self.replicas {
            crate::client::split_host_port(replica).map_err(Error::Config)?;
        }
        Ok(())
    }
}

/// Whether the `--replicas` entry `replica` (`host:port`) names the node listening on
/// `listen` itself: the same address once resolved, or a loopback address on its port when
/// it listens on every interface. One list may serve every node of a cluster (so that any
/// of them can be promoted), and a node is not its own replica. An entry that does not
/// resolve names another node.
pub fn names_this_node(replica: &str, listen: SocketAddr) -> bool {
    use std::net::ToSocketAddrs;
    if replica == listen.to_string() {
        return true;
    }
    let Ok(resolved) = replica.to_socket_addrs() else {
        return false;
    };
    resolved.into_iter().any(|addr| {
        addr == listen
            || (listen.ip().is_unspecified()
                && addr.port() == listen.port()
                && addr.ip().is_loopback())
    })
}
