//! The state one server shares between its connections: the store, the configuration, the
//! replication role, counters and SCAN cursors.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use kvstore_core::KvStore;
use parking_lot::{Mutex, RwLock};

use crate::config::ServerConfig;
use crate::role::Role;
use crate::scan_cursors::ScanCursors;
use crate::shutdown::ShutdownRequest;
use crate::stats::ServerStats;

/// Shared by every connection of a server (behind an `Arc`).
pub(crate) struct Node {
    pub store: KvStore,
    pub config: ServerConfig,
    /// The address the server listens on (the bound one, so port 0 is resolved).
    pub listen_addr: std::net::SocketAddr,
    pub stats: ServerStats,
    /// Read with `read_recursive` everywhere: a role change (`write`) queued behind a
    /// command that holds the role for long (a sync-mode write waiting for its quorum) must
    /// not park the event loop's next reader behind it, as a fair `read` would.
    pub role: RwLock<Role>,
    pub cursors: Mutex<ScanCursors>,
    pub started: Instant,
    /// A random 40-hex-digit id of this server process, as Redis's `run_id`.
    pub run_id: String,
    /// Set when shutdown begins: the accept loop stops and blocked `WAIT`s return.
    pub stopping: AtomicBool,
    /// Held for a whole role change (`REPLICAOF`, promotion, shutdown), including the old
    /// replicator's retirement, so a new replicator is never attached while an old one is
    /// still being torn down (its teardown detaches the store's commit hook).
    pub transitions: Mutex<()>,
    /// The id the last connection got (`CLIENT ID`, `HELLO`'s `id`).
    last_client_id: AtomicU64,
    /// Held shared by every write to the store (a commit group, a thread's write, a record
    /// or snapshot chunk a replica applies) and exclusively by `EXEC`, so that nothing lands
    /// between a transaction's reads and its commit. Taken after `role`, never before.
    pub write_gate: RwLock<()>,
    /// Where `SHUTDOWN` asks the program running this server to stop it.
    pub shutdown: Arc<ShutdownRequest>,
}

impl Node {
    /// A node serving `store` with `config` at `listen_addr`, a master that does not
    /// replicate yet (the role is set by `role::start`).
    pub fn new(store: KvStore, config: ServerConfig, listen_addr: std::net::SocketAddr) -> Node {
        Node {
            store,
            listen_addr,
            stats: ServerStats::default(),
            role: RwLock::new(Role::Master(crate::role::MasterRole::idle())),
            cursors: Mutex::default(),
            started: Instant::now(),
            run_id: random_run_id(),
            stopping: AtomicBool::new(false),
            transitions: Mutex::new(()),
            last_client_id: AtomicU64::new(0),
            write_gate: RwLock::new(()),
            shutdown: Arc::default(),
            config,
        }
    }

    /// Whether this node refuses client writes (it is a replica).
    pub fn is_replica(&self) -> bool {
        self.role.read_recursive().is_replica()
    }

    /// A new connection's id: 1, 2, 3, … as Redis numbers its clients.
    pub fn next_client_id(&self) -> u64 {
        self.last_client_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The name this node uses as a master in `REPLICATE HELLO`.
    pub fn node_id(&self) -> String {
        self.config
            .node_id
            .clone()
            .unwrap_or_else(|| self.listen_addr.to_string())
    }
}

/// A random 40-hex-digit identifier.
pub(crate) fn random_run_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..40)
        .map(|_| char::from_digit(rng.random_range(0..16u32), 16).unwrap_or('0'))
        .collect()
}
