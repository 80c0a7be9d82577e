//! A node's replication role and its transitions: start as master or replica, `REPLICAOF
//! host port` (become a replica), `REPLICAOF NO ONE` (promote: a master with a higher epoch).
//!
//! Replication is pushed: a master's [`Replicator`] holds one [`TcpTransport`] per address in
//! `--replicas` and streams its WAL to them; a replica serves `REPLICATE …` through its
//! [`ReplicaEndpoint`]. So a promoted replica streams to the `--replicas` it was started with
//! (its own address excluded), and the other replicas accept it because its epoch is higher.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use kvstore_replication::{epoch, timeline, ReplicaEndpoint, Replicator};
use parking_lot::Mutex;

use crate::config::ReplicationMode;
use crate::error::{Error, Result};
use crate::node::Node;
use crate::tcp_transport::TcpTransport;

/// What a node is now.
pub(crate) enum Role {
    /// Takes client writes; streams them to its replicas if it has any.
    Master(MasterRole),
    /// Refuses client writes; applies what its master sends.
    Replica(ReplicaRole),
}

/// A master's replication state.
pub(crate) struct MasterRole {
    pub epoch: u64,
    /// `None` when no replicas are configured.
    pub replicator: Option<Arc<Replicator>>,
}

impl MasterRole {
    /// A master that has not started replicating yet (the moment before [`start`]).
    pub(crate) fn idle() -> Self {
        MasterRole {
            epoch: 0,
            replicator: None,
        }
    }
}

/// Who opened the current replication session, for `INFO` and `ROLE`.
#[derive(Debug, Clone)]
pub(crate) struct MasterLink {
    pub master_id: String,
    pub peer: SocketAddr,
}

/// A replica's state.
pub(crate) struct ReplicaRole {
    pub endpoint: ReplicaEndpoint,
    /// The master named by `REPLICAOF host port`, if any.
    pub master_addr: Option<(String, u16)>,
    pub link: Mutex<Option<MasterLink>>,
    /// Replication connections open now (a master reconnecting briefly has two), each
    /// counted once by the [`LinkGuard`] its session holds.
    open_links: Arc<AtomicUsize>,
    since: Instant,
    last_contact_ms: AtomicU64,
}

impl ReplicaRole {
    fn new(endpoint: ReplicaEndpoint, master_addr: Option<(String, u16)>) -> Self {
        ReplicaRole {
            endpoint,
            master_addr,
            link: Mutex::new(None),
            open_links: Arc::new(AtomicUsize::new(0)),
            since: Instant::now(),
            last_contact_ms: AtomicU64::new(u64::MAX),
        }
    }

    /// Notes traffic from the master.
    pub(crate) fn touch(&self) {
        let ms = self.since.elapsed().as_millis() as u64;
        self.last_contact_ms.store(ms, Ordering::Relaxed);
    }

    /// A `REPLICATE HELLO` was accepted on a connection from `peer`: the link counts as
    /// open while the connection keeps the returned guard (a second HELLO on it replaces
    /// the guard, so a connection counts once; one that outlives this role uncounts itself
    /// from this role's links, not from its successor's).
    pub(crate) fn session_opened(&self, master_id: String, peer: SocketAddr) -> LinkGuard {
        *self.link.lock() = Some(MasterLink { master_id, peer });
        self.open_links.fetch_add(1, Ordering::Relaxed);
        self.touch();
        LinkGuard(self.open_links.clone())
    }

    /// Whether a master holds a session open now.
    pub(crate) fn link_up(&self) -> bool {
        self.open_links.load(Ordering::Relaxed) > 0
    }

    /// Seconds since the master last sent anything (`None`: never).
    pub(crate) fn last_io_seconds(&self) -> Option<u64> {
        match self.last_contact_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some((self.since.elapsed().as_millis() as u64).saturating_sub(ms) / 1000),
        }
    }
}

/// One replication connection counted in its replica role's open links until dropped.
#[derive(Debug)]
pub(crate) struct LinkGuard(Arc<AtomicUsize>);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Role {
    /// Whether client writes are refused.
    pub(crate) fn is_replica(&self) -> bool {
        matches!(self, Role::Replica(_))
    }

    /// `master` or `slave`, as Redis names them in `INFO` and `ROLE`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Role::Master(_) => "master",
            Role::Replica(_) => "slave",
        }
    }
}

fn replication_err(err: kvstore_replication::Error) -> Error {
    Error::Config(format!("replication: {err}"))
}

/// Sets the role the configuration asks for; called once by the server before accepting.
pub(crate) fn start(node: &Node) -> Result<()> {
    let role = if node.config.start_as_replica {
        // WAL kept for the replicas of an earlier life as a master would pin this log.
        kvstore_replication::release_replica_retention(&node.store);
        replica_role(node, None)?
    } else {
        Role::Master(master_role(node, false)?)
    };
    *node.role.write() = role;
    Ok(())
}

/// Stops replication (on shutdown): the replicator drains what it can and joins its workers.
pub(crate) fn stop(node: &Node) {
    let _transition = node.transitions.lock();
    release_waiters(node);
    let replicator = match &mut *node.role.write() {
        Role::Master(master) => master.replicator.take(),
        Role::Replica(_) => None,
    };
    retire(replicator);
}

/// Ends the quorum waits of this master's replicator, if it has one, before the role is
/// taken for writing: a sync-mode write holds the role while it waits (for as long as the
/// sync timeout), and the role change would wait behind it.
fn release_waiters(node: &Node) {
    let replicator = match &*node.role.read_recursive() {
        Role::Master(master) => master.replicator.clone(),
        Role::Replica(_) => None,
    };
    if let Some(replicator) = replicator {
        replicator.release_waiters();
    }
}

/// Stops a replicator taken out of the role: waits until no `WAIT` still holds it (each
/// lets go within one slice once it sees the role changed), then drops it here, which
/// detaches its commit hook and joins its workers. Dropping only our `Arc` would leave it
/// streaming for as long as a `WAIT … 0` blocks, and its eventual drop would detach
/// whatever commit hook the store has by then: a newer replicator's.
fn retire(replicator: Option<Arc<Replicator>>) {
    let Some(mut replicator) = replicator else {
        return;
    };
    loop {
        match Arc::try_unwrap(replicator) {
            Ok(last) => {
                drop(last);
                return;
            }
            Err(shared) => {
                replicator = shared;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
}

/// Makes this node a replica (of `master`, if named). A master's replicator is stopped first.
pub(crate) fn become_replica(node: &Node, master: Option<(String, u16)>) -> Result<()> {
    let _transition = node.transitions.lock();
    // Read first: a master's role may be held for long by writes waiting for their quorum,
    // which `release_waiters` ends before the role is taken for writing.
    if node.role.read_recursive().is_replica() {
        if let Role::Replica(replica) = &mut *node.role.write() {
            replica.master_addr = master;
        }
        return Ok(());
    }
    // Role changes hold `transitions`: this node is still a master.
    let new_role = replica_role(node, master.clone())?;
    release_waiters(node);
    let old = std::mem::replace(&mut *node.role.write(), new_role);
    // Stopping the replicator joins its workers; done outside the role lock.
    if let Role::Master(old) = old {
        retire(old.replicator);
        kvstore_replication::release_replica_retention(&node.store);
    }
    tracing::info!(?master, "now a replica");
    Ok(())
}

/// Promotes this replica to master with an epoch above any it has seen (no-op on a master).
pub(crate) fn promote(node: &Node) -> Result<u64> {
    let _transition = node.transitions.lock();
    let mut role = node.role.write();
    let endpoint = match &*role {
        Role::Master(master) => return Ok(master.epoch),
        Role::Replica(replica) => replica.endpoint.clone(),
    };
    // Nothing of the old master may land once the new incarnation has begun.
    endpoint.set_open(false);
    let master = master_role(node, true).inspect_err(|_| endpoint.set_open(true))?;
    let epoch = master.epoch;
    *role = Role::Master(master);
    tracing::info!(epoch, "promoted to master");
    Ok(epoch)
}

fn replica_role(node: &Node, master: Option<(String, u16)>) -> Result<Role> {
    let endpoint = ReplicaEndpoint::open(node.store.clone()).map_err(replication_err)?;
    Ok(Role::Replica(ReplicaRole::new(endpoint, master)))
}

fn master_role(node: &Node, promote: bool) -> Result<MasterRole> {
    let own = node.listen_addr;
    let replicas: Vec<&String> = node
        .config
        .replicas
        .iter()
        .filter(|r| !crate::config::names_this_node(r, own))
        .collect();
    // The list may name this node too (one list for every node of a cluster, so that any of
    // them can be promoted), so the replicas are known only now: a quorum larger than what is
    // left is refused, never lowered to fit, which would break the promise it stands for.
    // Checked before the epoch is raised: a refused promotion must leave it as it was.
    let too_many = |what: &str, wanted: usize| {
        Error::Config(format!(
            "{what} is {wanted}, but this node streams to {} replica(s): --replicas names it \
             too ({own}), and a node is not its own replica",
            replicas.len()
        ))
    };
    let mode = match node.config.mode {
        ReplicationMode::Async => kvstore_replication::ReplicationMode::Async,
        ReplicationMode::Sync { quorum, .. } if quorum > replicas.len() => {
            return Err(too_many("the write quorum", quorum));
        }
        ReplicationMode::Sync { quorum, timeout } => {
            kvstore_replication::ReplicationMode::Sync { quorum, timeout }
        }
    };
    let min_replicas = node.config.min_replicas_to_write;
    if min_replicas > replicas.len() {
        return Err(too_many("min-replicas-to-write", min_replicas));
    }
    let dir = node.store.path();
    let epoch = if promote {
        epoch::promote(dir)
    } else {
        epoch::master_epoch(dir, None)
    }
    .map_err(replication_err)?;
    if replicas.is_empty() {
        // No replicator begins this incarnation: record it here, so that a replica attached
        // after a later restart can tell this incarnation's writes apart (see
        // `kvstore_replication::timeline`).
        timeline::begin_incarnation(&node.store, epoch).map_err(replication_err)?;
        // Nor releases the WAL kept for replicas no longer configured (`attach` does).
        kvstore_replication::release_replica_retention(&node.store);
        return Ok(MasterRole {
            epoch,
            replicator: None,
        });
    }
    let mut builder = Replicator::builder()
        .master_id(node.node_id())
        .mode(mode)
        .min_replicas_to_write(min_replicas)
        .epoch(epoch);
    for addr in replicas {
        builder = builder.replica(TcpTransport::new(
            addr.clone(),
            node.config.requirepass.clone(),
        ));
    }
    let replicator = builder.attach(&node.store).map_err(replication_err)?;
    Ok(MasterRole {
        epoch,
        replicator: Some(Arc::new(replicator)),
    })
}
