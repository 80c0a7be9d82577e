//! `WAIT numreplicas timeout-ms`: blocks until `numreplicas` replicas have applied every
//! write committed so far, or the timeout passes (0: wait without limit); replies with how
//! many have. On a master without replicas: `:0` at once.
//!
//! The wait is cut into short slices, and between slices the command lets go of the
//! replicator and looks again: if the node stopped being this master (`REPLICAOF`), it
//! answers `-UNBLOCKED …` as Redis does; if the server is shutting down, it answers with the
//! count so far. So a blocked `WAIT` never keeps a demoted node's replicator streaming, nor
//! holds up shutdown. And if the client hung up, it ends too, freeing its thread and its
//! place under the connection limit.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use kvstore_replication::Replicator;

use super::{Args, Ctx};
use crate::frame::Frame;
use crate::node::Node;
use crate::role::Role;
use crate::stats::ServerStats;

/// What `WAIT … 0` ("no timeout") waits at most, so a thread is never parked for ever.
const UNLIMITED_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Longest stretch a `WAIT` holds the replicator before looking at the role again.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// The master's replicator now: `Err` on a replica, `Ok(None)` without replicas.
fn current_replicator(node: &Node) -> Result<Option<Arc<Replicator>>, Frame> {
    // Clone the handle out: waiting under the role lock would stall every writer behind a
    // pending REPLICAOF.
    match &*node.role.read_recursive() {
        // Redis's text, word for word (its second sentence is about writable replicas).
        Role::Replica(_) => Err(Frame::error(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis \
             4.0 if a replica is configured to be writable (which is not the default) writes to \
             replicas are just local and are not propagated.",
        )),
        Role::Master(master) => Ok(master.replicator.clone()),
    }
}

/// Counts a client in `INFO clients`' `blocked_clients` while it exists.
struct Blocked<'a>(&'a Node);

impl<'a> Blocked<'a> {
    fn new(node: &'a Node) -> Self {
        ServerStats::add(&node.stats.blocked_clients, 1);
        Blocked(node)
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0
            .stats
            .blocked_clients
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn unblocked() -> Frame {
    Frame::error(
        "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
    )
}

/// `WAIT`'s arguments: the replicas required (a negative count is met at once, by however
/// many replicas have the writes, as in Redis) and the timeout.
fn parse(args: &mut Args) -> Result<(usize, Duration), Frame> {
    let replicas = args.next_int()?;
    let timeout_ms = args
        .next_int()
        .map_err(|_| Frame::error("ERR timeout is not an integer or out of range"))?;
    args.finish()?;
    if timeout_ms < 0 {
        return Err(Frame::error("ERR timeout is negative"));
    }
    let timeout = match timeout_ms {
        0 => UNLIMITED_WAIT,
        ms => Duration::from_millis(ms as u64),
    };
    Ok((
        usize::try_from(replicas.max(0)).unwrap_or(usize::MAX),
        timeout,
    ))
}

/// `WAIT` queued in a transaction: as in Redis, it does not block inside `EXEC`; it answers
/// how many replicas have every write committed before the transaction.
pub(super) fn in_transaction(args: &mut Args, node: &Node) -> Result<Frame, Frame> {
    parse(args)?;
    let lsn = node.store.last_lsn();
    Ok(Frame::Integer(match current_replicator(node)? {
        Some(replicator) => replicator.wait_for(lsn, usize::MAX, Duration::ZERO) as i64,
        None => 0,
    }))
}

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let (required, timeout) = parse(args)?;
    let deadline = Instant::now() + timeout;
    let lsn = ctx.node.store.last_lsn();
    let Some(replicator) = current_replicator(ctx.node)? else {
        return Ok(Frame::Integer(0));
    };
    // A weak handle keeps the allocation (so the identity check below is sound) but not the
    // replicator itself.
    let waited_on: Weak<Replicator> = Arc::downgrade(&replicator);
    let mut replicator = Some(replicator);
    let _blocked = Blocked::new(ctx.node);
    loop {
        let Some(current) = replicator.take() else {
            return Err(unblocked());
        };
        let slice = deadline
            .saturating_duration_since(Instant::now())
            .min(WAIT_SLICE);
        let acked = current.wait_for(lsn, required, slice);
        drop(current);
        let stopping = ctx.node.stopping.load(std::sync::atomic::Ordering::Acquire);
        // A client that hung up waits for nothing: its thread and its place under the
        // connection limit are freed now, not when the wait would have ended (a day, for 0).
        if acked >= required || Instant::now() >= deadline || stopping || ctx.session.client_gone()
        {
            return Ok(Frame::Integer(acked as i64));
        }
        replicator = match current_replicator(ctx.node) {
            Ok(Some(now)) if std::ptr::eq(Arc::as_ptr(&now), waited_on.as_ptr()) => Some(now),
            // Shut down (the replicator was taken away) while still a master.
            Ok(None) if ctx.node.stopping.load(std::sync::atomic::Ordering::Acquire) => {
                return Ok(Frame::Integer(acked as i64));
            }
            _ => None,
        };
    }
}
