//! `MULTI`, `EXEC`, `DISCARD`: Redis transactions, which redis-py's default `pipeline()` and
//! other clients wrap their commands in.
//!
//! After `MULTI` a connection's commands are checked as Redis checks them (known, allowed,
//! authenticated, arity) and queued (`+QUEUED`); one that fails the check gets its error and
//! makes `EXEC` answer `-EXECABORT`. A queued command whose arguments turn out wrong when it
//! runs (`INCRBY k x`) answers its error inside `EXEC`'s reply, and the others still run, as
//! in Redis. `EXEC` runs the queue in isolation (see [`isolated`](super::isolated)): it holds the node's write gate
//! exclusively, so no other write (a client's, or a record a replica applies) lands between
//! its reads and its commit; reads see the transaction's own earlier writes; all its writes
//! are one batch, committed atomically (one record, all or nothing after a crash) before the
//! replies go out. If that commit fails, `EXEC` answers the error instead of the replies, as a
//! lone write would: refused up front (a key too large, too few replicas), nothing was
//! applied; a quorum not reached in sync mode leaves the batch durable on the master and on
//! its way to the replicas, as for any write (no fake rollback).
//!
//! Served inside a transaction: `PING`, `ECHO`, `TIME`, `GET`/`READ`, `MGET`, `EXISTS`,
//! `TYPE`, `STRLEN`, `TTL`, `PTTL`, `DBSIZE`, `SET`/`PUT`, `MSET`/`BATCHPUT`,
//! `DEL`/`DELETE`/`UNLINK`, `INCR`/`DECR`/`INCRBY`/`DECRBY`, `SETNX`, `MSETNX`, `GETSET`, `GETDEL`, `APPEND`, and
//! `WAIT`, which as in Redis does not block inside `EXEC` (it answers how many replicas have
//! the writes committed before the transaction); anything else gets `-ERR Command not allowed
//! inside a transaction` (and aborts it).
//! `UNWATCH` is queued and answers `+OK`; `WATCH` inside a transaction is refused without
//! aborting it. A transaction whose `WATCH`ed keys changed
//! (see [`watch`](super::watch)) answers `EXEC` with a null array and writes nothing.

use super::watch::Watched;
use super::{isolated, readonly, Args, Ctx, Spec};
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::Request;
use crate::stats::ServerStats;

/// Most commands one transaction may queue.
pub(crate) const MAX_QUEUED_COMMANDS: usize = 1 << 16;

/// A transaction being queued on a connection.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    queued: Vec<Request>,
    /// Bytes queued (arguments and their offsets), bounded by the server's request limit.
    bytes: usize,
    /// A queued command was refused: `EXEC` discards the transaction.
    aborted: bool,
}

impl Transaction {
    /// A command was refused while queueing: `EXEC` will discard the transaction.
    pub(crate) fn abort(&mut self) {
        self.aborted = true;
    }
}

/// Whether `request` is an `EXEC` on a session with a transaction to run.
pub(crate) fn is_exec(request: &Request, session: &super::Session) -> bool {
    session.transaction.is_some() && names_exec(request)
}

/// Whether `request` is an `EXEC`, well formed or not.
pub(crate) fn names_exec(request: &Request) -> bool {
    request
        .get(0)
        .is_some_and(|n| n.eq_ignore_ascii_case(b"EXEC"))
}

/// Ends the session's transaction (if any) and its watches for an `EXEC` refused before it
/// could run (a wrong argument count, a write queued on a node demoted to replica since):
/// `-EXECABORT Transaction discarded because of: <why>`, as Redis answers.
pub(crate) fn abort_exec(refusal: &Frame, session: &mut super::Session) -> Frame {
    session.transaction = None;
    session.watched = Watched::default();
    let why = match refusal {
        Frame::Error(message) => message.strip_prefix("ERR ").unwrap_or(message),
        _ => "an internal error",
    };
    Frame::error(format!("EXECABORT Transaction discarded because of: {why}"))
}

/// The commands a transaction may hold.
const ALLOWED: &[&str] = &[
    "ping", "echo", "time", "get", "read", "mget", "exists", "type", "strlen", "ttl", "pttl",
    "dbsize", "set", "put", "mset", "batchput", "del", "delete", "unlink", "unwatch", "incr",
    "decr", "incrby", "decrby", "setnx", "msetnx", "getset", "getdel", "append", "wait",
];

/// Whether `spec` ends or nests a transaction rather than joining its queue.
pub(crate) fn controls_transaction(spec: &Spec) -> bool {
    matches!(spec.name, "multi" | "exec" | "discard" | "quit" | "watch")
}

/// `MULTI`.
pub(super) fn run_multi(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    args.finish()?;
    if ctx.session.transaction.is_some() {
        return Err(Frame::error("ERR MULTI calls can not be nested"));
    }
    ctx.session.transaction = Some(Transaction::default());
    Ok(Frame::ok())
}

/// `DISCARD`.
pub(super) fn run_discard(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    args.finish()?;
    match ctx.session.transaction.take() {
        Some(_) => {
            ctx.session.watched = Watched::default();
            Ok(Frame::ok())
        }
        None => Err(Frame::error("ERR DISCARD without MULTI")),
    }
}

/// Queues `request` (already resolved to `spec`) on the session's transaction, or refuses
/// it and marks the transaction aborted.
pub(super) fn queue(spec: &Spec, request: &Request, ctx: &mut Ctx<'_>) -> Frame {
    let limit = ctx.node.config.limits.max_request_bytes;
    let Some(transaction) = ctx.session.transaction.as_mut() else {
        return Frame::error("ERR internal: no transaction to queue on");
    };
    let refusal = if !ALLOWED.contains(&spec.name) {
        Some(Frame::error("ERR Command not allowed inside a transaction"))
    } else if spec.flags.contains(&"write") && ctx.node.is_replica() {
        Some(readonly())
    } else if transaction.queued.len() == MAX_QUEUED_COMMANDS
        || transaction.bytes + queued_bytes(request) > limit
    {
        Some(Frame::error(format!(
            "ERR a transaction holds at most {MAX_QUEUED_COMMANDS} commands and {limit} bytes"
        )))
    } else {
        // Only the name, authentication and arity are checked now (by the caller), as Redis
        // checks them: a command whose arguments are wrong (`INCRBY k x`) is queued, and its
        // error is its reply inside EXEC's, while the others run.
        None
    };
    match refusal {
        Some(reply) => {
            transaction.aborted = true;
            reply
        }
        None => {
            transaction.bytes += queued_bytes(request);
            transaction.queued.push(request.clone());
            Frame::Simple("QUEUED".into())
        }
    }
}

/// What a queued request costs against the limit: its argument bytes and, per argument, the
/// offset it is kept with (empty arguments are not free).
fn queued_bytes(request: &Request) -> usize {
    request.arg_bytes() + request.len() * std::mem::size_of::<usize>()
}

/// `EXEC`.
pub(super) fn run_exec(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    args.finish()?;
    let Some(transaction) = ctx.session.transaction.take() else {
        return Err(Frame::error("ERR EXEC without MULTI"));
    };
    let watched = std::mem::take(&mut ctx.session.watched);
    if transaction.aborted {
        return Err(Frame::error(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let node: &Node = ctx.node;
    // The role first, then the gate: the order every writer takes them in.
    let role = node.role.read_recursive();
    if role.is_replica() && transaction.queued.iter().any(is_write) {
        // Demoted since the writes were queued: nothing runs, as in Redis.
        return Err(abort_exec(&readonly(), ctx.session));
    }
    let (replies, replicating) = {
        let _isolated = node.write_gate.write();
        if watched.changed(&node.store) {
            return Ok(Frame::NullArray);
        }
        isolated::run_queue(&transaction.queued, role.is_replica(), node, ctx.session)?
    };
    isolated::wait_replicated(replicating)?;
    // Redis counts each error inside an EXEC's reply as an error reply.
    let errors = replies
        .iter()
        .filter(|r| matches!(r, Frame::Error(_)))
        .count();
    ServerStats::add(&node.stats.error_replies, errors as u64);
    Ok(Frame::Array(replies))
}

/// Whether a queued request writes.
fn is_write(request: &Request) -> bool {
    request
        .get(0)
        .and_then(super::lookup)
        .is_some_and(|spec| spec.flags.contains(&"write"))
}
