//! `MULTI`, `EXEC`, `DISCARD`: Redis transactions, which redis-py's default `pipeline()` and
//! other clients wrap their commands in.
//!
//! After `MULTI` a connection's commands are checked (known, authenticated, arity, arguments)
//! and queued (`+QUEUED`); one that fails the check gets its error and makes `EXEC` answer
//! `-EXECABORT`. `EXEC` runs the queue in isolation: it holds the node's write gate
//! exclusively, so no other write (a client's, or a record a replica applies) lands between
//! its reads and its commit; reads see the transaction's own earlier writes; all its writes
//! are one batch, committed atomically (one record, all or nothing after a crash) before the
//! replies go out. If that commit fails, `EXEC` answers the error instead of the replies, as a
//! lone write would: refused up front (a key too large, too few replicas), nothing was
//! applied; a quorum not reached in sync mode leaves the batch durable on the master and on
//! its way to the replicas, as for any write (no fake rollback).
//!
//! Served inside a transaction: `PING`, `ECHO`, `TIME`, `GET`/`READ`, `MGET`, `EXISTS`,
//! `TYPE`, `STRLEN`, `TTL`, `PTTL`, `DBSIZE`, `SET`/`PUT`, `MSET`/`BATCHPUT`, `DEL`/`DELETE`;
//! anything else gets `-ERR Command not allowed inside a transaction` (and aborts it). `UNWATCH` is queued and answers `+OK`; `WATCH` inside a
//! transaction is refused without aborting it. A transaction whose `WATCH`ed keys changed
//! (see [`watch`](super::watch)) answers `EXEC` with a null array and writes nothing.

use std::collections::{BTreeMap, HashSet};

use kvstore_core::{KvStore, Op, WriteBatch};

use super::watch::Watched;
use super::{del, mset, readonly, reply_budget, resolve, set, store_error, Args, Ctx, Spec};
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
    "dbsize", "set", "put", "mset", "batchput", "del", "delete", "unwatch",
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

/// Queues `request` (already resolved to `spec`, with `args` after its name) on the
/// session's transaction, or refuses it and marks the transaction aborted.
pub(super) fn queue(spec: &Spec, args: &mut Args, request: &Request, ctx: &mut Ctx<'_>) -> Frame {
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
        // Checked now, as Redis checks arity when queueing, so that EXEC cannot meet a
        // malformed command halfway.
        check_arguments(spec, args).err()
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

/// Parses a queued command's arguments the way running it would.
fn check_arguments(spec: &Spec, args: &mut Args) -> Result<(), Frame> {
    match spec.name {
        "set" => set::parse_set(args).map(drop),
        "put" => set::parse_put_batch(args).map(drop),
        "mset" | "batchput" => mset::parse_batch(args).map(drop),
        "get" | "read" | "echo" | "type" | "strlen" | "ttl" | "pttl" => {
            args.next_bytes().and_then(|_| args.finish())
        }
        "ping" => {
            args.next_opt();
            args.finish()
        }
        "dbsize" | "unwatch" | "time" => args.finish(),
        _ => del::parse_keys(args).map(drop),
    }
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
    let _isolated = node.write_gate.write();
    if watched.changed(&node.store) {
        return Ok(Frame::NullArray);
    }
    let mut view = View::new(&node.store, role.is_replica());
    let mut replies = Vec::with_capacity(transaction.queued.len());
    for request in &transaction.queued {
        let reply = match resolve(request, ctx.session) {
            Ok((spec, mut args)) => view.run(spec, &mut args, node).unwrap_or_else(|e| e),
            Err(reply) => reply,
        };
        replies.push(reply);
    }
    if !view.batch.is_empty() {
        node.store.write_batch(view.batch).map_err(store_error)?;
    }
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

/// The store as a transaction sees it: with its own writes so far.
struct View<'a> {
    store: &'a KvStore,
    /// Keys the transaction wrote: their new value, or `None` once deleted.
    written: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// How many keys the transaction's writes add (or, negative, remove) so far: `DBSIZE`
    /// must not cost a lookup per key written.
    added_keys: i64,
    batch: WriteBatch,
    replica: bool,
    reply_bytes: usize,
}

impl<'a> View<'a> {
    fn new(store: &'a KvStore, replica: bool) -> Self {
        View {
            store,
            written: BTreeMap::new(),
            added_keys: 0,
            batch: WriteBatch::new(),
            replica,
            reply_bytes: 0,
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Frame> {
        match self.written.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.store.get(key).map_err(store_error),
        }
    }

    fn contains(&self, key: &[u8]) -> Result<bool, Frame> {
        match self.written.get(key) {
            Some(value) => Ok(value.is_some()),
            None => self.store.contains_key(key).map_err(store_error),
        }
    }

    fn len(&self) -> i64 {
        self.store.len() as i64 + self.added_keys
    }

    /// Adds a write's operations to the transaction's batch and to what it sees.
    fn write(&mut self, ops: &[Op]) -> Result<(), Frame> {
        for op in ops {
            let existed = self.contains(op.key())?;
            match op {
                Op::Put { key, value } => {
                    self.added_keys += i64::from(!existed);
                    self.batch.put(key, value);
                    self.written.insert(key.clone(), Some(value.clone()));
                }
                Op::Delete { key } => {
                    self.added_keys -= i64::from(existed);
                    self.batch.delete(key);
                    self.written.insert(key.clone(), None);
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, spec: &Spec, args: &mut Args, node: &Node) -> Result<Frame, Frame> {
        let writes = spec.flags.contains(&"write");
        if writes && self.replica {
            return Err(readonly());
        }
        match spec.name {
            "ping" | "echo" => match args.next_opt() {
                // Echoed messages count against the reply limit as values do.
                Some(message) => {
                    let hint = "echo less in one transaction";
                    reply_budget(node, &mut self.reply_bytes, message.len(), hint)?;
                    Ok(Frame::bulk(message))
                }
                None => Ok(Frame::Simple("PONG".into())),
            },
            "get" | "read" => match self.get(args.next_bytes()?)? {
                // Every value of the reply counts against the server's reply limit, as an
                // MGET's do: one EXEC of many GETs is one reply.
                Some(value) => {
                    let hint = "read fewer values in one transaction";
                    reply_budget(node, &mut self.reply_bytes, value.len(), hint)?;
                    Ok(Frame::Bulk(value))
                }
                None => Ok(Frame::Null),
            },
            "mget" => {
                let mut values = Vec::new();
                for key in del::parse_keys(args)? {
                    values.push(match self.get(key)? {
                        Some(value) => {
                            let hint = "read fewer values in one transaction";
                            reply_budget(node, &mut self.reply_bytes, value.len(), hint)?;
                            Frame::Bulk(value)
                        }
                        None => Frame::Null,
                    });
                }
                Ok(Frame::Array(values))
            }
            "exists" => {
                let mut count = 0;
                for key in del::parse_keys(args)? {
                    count += i64::from(self.contains(key)?);
                }
                Ok(Frame::Integer(count))
            }
            "time" => Ok(super::time::now()),
            "type" => Ok(super::key_type::type_of(self.contains(args.next_bytes()?)?)),
            "ttl" | "pttl" => Ok(super::ttl::ttl_of(self.contains(args.next_bytes()?)?)),
            "strlen" => {
                let key = args.next_bytes()?;
                let len = match self.written.get(key) {
                    Some(value) => value.as_ref().map_or(0, Vec::len),
                    None => self.store.value_len(key).unwrap_or(0),
                };
                Ok(Frame::Integer(len as i64))
            }
            "dbsize" => Ok(Frame::Integer(self.len())),
            // The watched keys were compared before the queue ran; nothing is left to forget.
            "unwatch" => Ok(Frame::ok()),
            "set" | "put" | "mset" | "batchput" => {
                let batch = match spec.name {
                    "set" => set::parse_set(args)?,
                    "put" => set::parse_put_batch(args)?,
                    _ => mset::parse_batch(args)?,
                };
                self.write(batch.ops())?;
                Ok(Frame::ok())
            }
            _ => {
                let mut seen = HashSet::new();
                let mut deletes = Vec::new();
                for key in del::parse_keys(args)? {
                    if seen.insert(key) && self.contains(key)? {
                        deletes.push(Op::Delete { key: key.to_vec() });
                    }
                }
                self.write(&deletes)?;
                Ok(Frame::Integer(deletes.len() as i64))
            }
        }
    }
}
