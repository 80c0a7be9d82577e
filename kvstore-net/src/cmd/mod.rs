//! Commands: one file each. A request's name selects a [`Spec`] (arity and flags, also what
//! `COMMAND` reports); the command parses its arguments with [`args::Args`], runs against the
//! node and yields one reply [`Frame`].

mod append;
mod args;
mod auth;
mod client;
mod command;
mod compact;
mod config;
mod dbsize;
pub(crate) mod del;
mod digest;
mod echo;
mod exists;
mod get;
mod getdel;
mod getset;
mod hello;
mod incr;
mod info;
pub(crate) mod isolated;
mod key_type;
mod keys;
mod mget;
mod mset;
mod msetnx;
pub(crate) mod multi;
mod ping;
mod quit;
mod range;
mod replicaof;
pub(crate) mod replicate;
mod resync;
mod role;
mod scan;
mod select;
mod set;
mod setnx;
mod shutdown;
mod strlen;
mod time;
mod ttl;
mod view;
mod wait;
pub(crate) mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) use args::Args;

use kvstore_core::WriteBatch;

use crate::config::ReplicationMode;
use crate::frame::{Frame, Protocol};
use crate::node::Node;
use crate::parse::{Limits, Request};
use crate::stats::ServerStats;

/// Per-connection state commands may read or change.
#[derive(Debug)]
pub(crate) struct Session {
    /// The client's address.
    pub peer: SocketAddr,
    /// This connection's number, unique in the server's life (`CLIENT ID`).
    pub id: u64,
    /// Whether `AUTH` succeeded (or no password is configured).
    pub authenticated: bool,
    /// The reply encoding the client chose with `HELLO` (RESP2 until then).
    pub protocol: Protocol,
    /// What the client calls itself: `CLIENT SETNAME`, and `CLIENT SETINFO`'s library name
    /// and version (`CLIENT INFO` shows them).
    pub name: Vec<u8>,
    pub lib_name: Vec<u8>,
    pub lib_ver: Vec<u8>,
    /// Set by `QUIT`: reply, flush, close.
    pub quit: bool,
    /// Set by `SHUTDOWN`: close without replying to this request (earlier replies go out).
    pub hang_up: bool,
    /// The replication session `REPLICATE HELLO` opened on this connection (refused by the
    /// replica once a HELLO of another master incarnation opens another).
    pub replication_session: Option<kvstore_replication::Session>,
    /// Counts this connection as the replica's link to its master while it is open.
    pub master_link: Option<crate::role::LinkGuard>,
    /// A record too large for one request, arriving in `REPLICATE LOGPART`s.
    pub partial_record: Option<replicate::PartialRecord>,
    /// The commands queued since `MULTI`, until `EXEC` or `DISCARD`.
    pub transaction: Option<multi::Transaction>,
    /// The keys `WATCH`ed for the next `EXEC`.
    pub watched: watch::Watched,
    /// A second handle on the socket, for a command that blocks on a thread of its own
    /// (`WAIT`) to notice that the client hung up (see [`Session::client_gone`]).
    pub probe: Option<std::net::TcpStream>,
    /// Which replies go out (`CLIENT REPLY`).
    pub replies: ReplyMode,
}

/// `CLIENT REPLY ON|OFF|SKIP`: whether the connection's replies are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    /// Every reply (the default).
    #[default]
    On,
    /// None, until `CLIENT REPLY ON` (whose `+OK` goes out).
    Off,
    /// Not the next `n` (`CLIENT REPLY SKIP`'s own and the next command's).
    Skip(u8),
}

impl Session {
    /// The session a new connection from `peer` starts with.
    pub fn new(peer: SocketAddr, node: &Node) -> Session {
        Session {
            peer,
            id: node.next_client_id(),
            authenticated: node.config.requirepass.is_none(),
            protocol: Protocol::Resp2,
            name: Vec::new(),
            lib_name: Vec::new(),
            lib_ver: Vec::new(),
            quit: false,
            hang_up: false,
            replication_session: None,
            master_link: None,
            partial_record: None,
            transaction: None,
            watched: watch::Watched::default(),
            probe: None,
            replies: ReplyMode::On,
        }
    }

    /// Whether the next reply goes out (see [`ReplyMode`]); every reply, in order, asks once.
    pub fn sends_reply(&mut self) -> bool {
        match self.replies {
            ReplyMode::On => true,
            ReplyMode::Off => false,
            ReplyMode::Skip(n) => {
                self.replies = match n {
                    0 | 1 => ReplyMode::On,
                    n => ReplyMode::Skip(n - 1),
                };
                false
            }
        }
    }

    /// Whether the client has closed its end: end of stream waiting on the socket, looked at
    /// without reading it. False without a probe, or while the client's next requests wait
    /// to be read. Only for a command blocking on the connection's own thread, which reads
    /// nothing meanwhile (the probe switches the shared socket to non-blocking for a moment).
    pub fn client_gone(&self) -> bool {
        let Some(stream) = &self.probe else {
            return false;
        };
        if stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let gone = match stream.peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        let _ = stream.set_nonblocking(false);
        gone
    }
}

/// What a command runs against.
pub(crate) struct Ctx<'a> {
    pub node: &'a Arc<Node>,
    pub session: &'a mut Session,
}

/// Static facts about a command, as Redis's command table holds them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// Lowercase canonical name.
    pub name: &'static str,
    /// Argument count including the name; negative means "at least".
    pub arity: i64,
    /// `write`, `readonly`, `admin`, … as `COMMAND` reports them.
    pub flags: &'static [&'static str],
    /// Position of the first key, 0 if none.
    pub first_key: i64,
    /// Position of the last key (-1: the last argument).
    pub last_key: i64,
    /// Step between keys.
    pub step: i64,
    run: fn(&mut Args, &mut Ctx<'_>) -> Result<Frame, Frame>,
}

const W: &[&str] = &["write"];
const R: &[&str] = &["readonly"];
const FAST_R: &[&str] = &["readonly", "fast"];
const ADMIN: &[&str] = &["admin"];
const CONN: &[&str] = &["fast", "no-auth"];
const FAST: &[&str] = &["fast"];
const NO_FLAGS: &[&str] = &[];

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $run:path) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            run: $run,
        }
    };
}

/// Every command this server knows, aliases included.
pub(crate) static COMMANDS: &[Spec] = &[
    spec!("ping", -1, FAST, 0, 0, 0, ping::run),
    spec!("echo", 2, FAST, 0, 0, 0, echo::run),
    spec!("time", 1, FAST, 0, 0, 0, time::run),
    spec!("get", 2, FAST_R, 1, 1, 1, get::run),
    spec!("read", 2, FAST_R, 1, 1, 1, get::run),
    spec!("set", -3, W, 1, 1, 1, set::run_set),
    spec!("put", 3, W, 1, 1, 1, set::run_put),
    spec!("del", -2, W, 1, -1, 1, del::run),
    spec!("delete", -2, W, 1, -1, 1, del::run),
    spec!("unlink", -2, W, 1, -1, 1, del::run),
    spec!("mset", -3, W, 1, -1, 2, mset::run),
    spec!("batchput", -3, W, 1, -1, 2, mset::run),
    spec!("mget", -2, FAST_R, 1, -1, 1, mget::run),
    spec!("incr", 2, W, 1, 1, 1, isolated::run),
    spec!("decr", 2, W, 1, 1, 1, isolated::run),
    spec!("incrby", 3, W, 1, 1, 1, isolated::run),
    spec!("decrby", 3, W, 1, 1, 1, isolated::run),
    spec!("setnx", 3, W, 1, 1, 1, isolated::run),
    spec!("msetnx", -3, W, 1, -1, 2, isolated::run),
    spec!("getset", 3, W, 1, 1, 1, isolated::run),
    spec!("getdel", 2, W, 1, 1, 1, isolated::run),
    spec!("append", 3, W, 1, 1, 1, isolated::run),
    spec!("exists", -2, FAST_R, 1, -1, 1, exists::run),
    spec!("type", 2, FAST_R, 1, 1, 1, key_type::run),
    spec!("strlen", 2, FAST_R, 1, 1, 1, strlen::run),
    spec!("ttl", 2, FAST_R, 1, 1, 1, ttl::run),
    spec!("pttl", 2, FAST_R, 1, 1, 1, ttl::run),
    spec!("range", -3, R, 1, 2, 1, range::run),
    spec!("scan", -2, R, 0, 0, 0, scan::run),
    spec!("keys", 2, R, 0, 0, 0, keys::run),
    spec!("dbsize", 1, FAST_R, 0, 0, 0, dbsize::run),
    spec!("info", -1, R, 0, 0, 0, info::run),
    spec!("role", 1, FAST_R, 0, 0, 0, role::run),
    spec!("wait", 3, R, 0, 0, 0, wait::run),
    spec!("replicaof", 3, ADMIN, 0, 0, 0, replicaof::run),
    spec!("resync", 2, ADMIN, 0, 0, 0, resync::run),
    spec!("slaveof", 3, ADMIN, 0, 0, 0, replicaof::run),
    spec!("auth", -2, CONN, 0, 0, 0, auth::run),
    spec!("hello", -1, CONN, 0, 0, 0, hello::run),
    spec!("client", -2, FAST, 0, 0, 0, client::run),
    spec!("select", 2, FAST, 0, 0, 0, select::run),
    spec!("multi", 1, FAST, 0, 0, 0, multi::run_multi),
    spec!("exec", 1, NO_FLAGS, 0, 0, 0, multi::run_exec),
    spec!("discard", 1, FAST, 0, 0, 0, multi::run_discard),
    spec!("watch", -2, FAST, 1, -1, 1, watch::run_watch),
    spec!("unwatch", 1, FAST, 0, 0, 0, watch::run_unwatch),
    spec!("compact", 1, ADMIN, 0, 0, 0, compact::run),
    spec!("shutdown", -1, ADMIN, 0, 0, 0, shutdown::run),
    spec!("quit", -1, CONN, 0, 0, 0, quit::run),
    spec!("command", -1, R, 0, 0, 0, command::run),
    spec!("config", -2, ADMIN, 0, 0, 0, config::run),
    spec!("digest", 1, R, 0, 0, 0, digest::run),
    spec!("replicate", -2, ADMIN, 0, 0, 0, replicate::run),
];

fn lookup(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Redis's reply, byte for byte: the arguments while their list is under 128 bytes, the last
/// one cut to fit (CR and LF become spaces in every error reply).
fn unknown_command<'a>(name: &[u8], args: impl Iterator<Item = &'a [u8]>) -> Frame {
    const BUDGET: usize = 128;
    let mut shown = String::new();
    for arg in args {
        if shown.len() >= BUDGET {
            break;
        }
        let arg = as_c_string(arg, BUDGET - shown.len());
        shown.push_str(&format!("'{arg}' "));
    }
    Frame::error(format!(
        "ERR unknown command '{}', with args beginning with: {shown}",
        as_c_string(name, BUDGET)
    ))
}

/// `bytes` as Redis's `%.*s` prints them: up to the first NUL and at most `max` bytes. Bytes
/// that are not UTF-8, which our error lines cannot carry, are shown as `\xNN`.
pub(crate) fn as_c_string(bytes: &[u8], max: usize) -> String {
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(bytes.len())
        .min(max);
    let mut out = String::new();
    for chunk in bytes[..end].utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The protocol limits of a connection in `session`'s state: [`Limits::before_auth`] until
/// it has authenticated.
pub(crate) fn limits_for(session: &Session, node: &Node) -> Limits {
    if session.authenticated {
        node.config.limits
    } else {
        node.config.limits.before_auth()
    }
}

/// Runs one request and returns its reply. Never panics on any input.
pub(crate) fn execute(request: &Request, ctx: &mut Ctx<'_>) -> Frame {
    let stats = &ctx.node.stats;
    ServerStats::add(&stats.commands_processed, 1);
    let reply = dispatch(request, ctx);
    if matches!(reply, Frame::Error(_)) {
        ServerStats::add(&stats.error_replies, 1);
    }
    reply
}

fn dispatch(request: &Request, ctx: &mut Ctx<'_>) -> Frame {
    let (spec, mut args) = match resolve(request, ctx.session) {
        Ok(resolved) => resolved,
        Err(reply) => {
            if multi::names_exec(request) {
                // A refused EXEC ends the transaction (and the watch), as Redis's does.
                return multi::abort_exec(&reply, ctx.session);
            }
            if let Some(transaction) = ctx.session.transaction.as_mut() {
                transaction.abort();
            }
            return reply;
        }
    };
    if ctx.session.transaction.is_some() && !multi::controls_transaction(spec) {
        return multi::queue(spec, request, ctx);
    }
    // A write holds the role (shared) from the check until it has committed, so a
    // concurrent REPLICAOF cannot demote the node in between and leave a client write on a
    // replica. Recursive: a pending role change must not block a reader already inside.
    let node: &Node = ctx.node;
    let _role = if spec.flags.contains(&"write") {
        let role = node.role.read_recursive();
        if role.is_replica() {
            return readonly();
        }
        Some(role)
    } else {
        None
    };
    match (spec.run)(&mut args, ctx) {
        Ok(frame) | Err(frame) => frame,
    }
}

/// The command a request names and its arguments, once the checks every command gets have
/// passed (known name, `AUTH` when required, arity); else the error reply.
pub(crate) fn resolve<'a>(
    request: &'a Request,
    session: &Session,
) -> Result<(&'static Spec, Args<'a>), Frame> {
    let Some(name) = request.get(0) else {
        return Err(Frame::error("ERR empty command"));
    };
    // In Redis 7's order: an unknown command or a wrong arity is reported even before
    // authentication (they reveal nothing of the data).
    let Some(spec) = lookup(name) else {
        return Err(unknown_command(name, request.iter().skip(1)));
    };
    let argc = request.len() as i64;
    let args = Args::new(request);
    if (spec.arity > 0 && argc != spec.arity) || (spec.arity < 0 && argc < -spec.arity) {
        return Err(args.wrong_arity());
    }
    if !session.authenticated && !spec.flags.contains(&"no-auth") {
        return Err(noauth());
    }
    Ok((spec, args))
}

/// How the event loop runs a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Answered at once on the loop's thread with [`execute`]: reads and refusals, none of
    /// which waits for anything but the disk.
    Inline,
    /// A write (`SET`, `PUT`, `MSET`, `BATCHPUT`, `DEL`, `DELETE`): its batch and reply
    /// ([`prepare_write`]) join the loop's commit group, so it shares the round's write and
    /// fsync instead of making its own on the loop's thread.
    Grouped,
    /// May wait for long (on replicas, a role change, a compaction or a scan of the whole
    /// store): runs on a thread of its own so it cannot stall the loop.
    Blocking,
}

/// Commands that wait on something other than this node's disk, or for a time that grows
/// with the store: `WAIT` (replicas), `REPLICAOF` (retiring a replicator), `COMPACT`,
/// `DIGEST` (reads every value), `KEYS` (walks every key), `REPLICATE` (a master's
/// replication link).
const BLOCKING: &[&str] = &[
    "keys",
    "wait",
    "replicaof",
    "slaveof",
    "compact",
    "digest",
    "replicate",
];

/// Whether a command reads the keys it writes, so it runs in isolation (see
/// [`isolated`]): `INCR` and the like, and `SET` with options.
fn reads_before_writing(spec: &Spec, request: &Request) -> bool {
    isolated::COMMANDS.contains(&spec.name) || (spec.name == "set" && request.len() > 3)
}

/// For a [`Route::Grouped`] request that reads before it writes (`INCR`, `SETNX`, `SET … NX`
/// and the like): `Ok` once the checks [`execute`] makes pass (known, authenticated, arity,
/// `-READONLY` on a replica), for the loop's group to plan it at the commit; else the reply.
/// `None` for any other request. Counted in the stats as [`execute`] counts.
pub(crate) fn prepare_isolated(
    request: &Request,
    session: &Session,
    node: &Node,
) -> Option<Result<(), Frame>> {
    let spec = request.get(0).and_then(lookup)?;
    if !reads_before_writing(spec, request) {
        return None;
    }
    ServerStats::add(&node.stats.commands_processed, 1);
    let checked = resolve(request, session).and_then(|_| {
        if node.is_replica() {
            Err(readonly())
        } else {
            Ok(())
        }
    });
    if checked.is_err() {
        ServerStats::add(&node.stats.error_replies, 1);
    }
    Some(checked)
}

/// How the event loop must run `request` on this session (see [`Route`]).
pub(crate) fn route(request: &Request, session: &Session, node: &Node) -> Route {
    let Some(spec) = request.get(0).and_then(lookup) else {
        return Route::Inline;
    };
    if !session.authenticated && !spec.flags.contains(&"no-auth") {
        // Refused at once, whatever the command would have done.
        return Route::Inline;
    }
    let sync_mode = matches!(node.config.mode, ReplicationMode::Sync { .. });
    if session.transaction.is_some() {
        // Queued, or refused, at once; `EXEC` waits for its quorum in sync mode.
        return if spec.name == "exec" && sync_mode {
            Route::Blocking
        } else {
            Route::Inline
        };
    }
    if BLOCKING.contains(&spec.name) {
        return Route::Blocking;
    }
    if !spec.flags.contains(&"write") {
        return Route::Inline;
    }
    if sync_mode {
        // Every write waits for its quorum's acknowledgements (up to the sync timeout).
        return Route::Blocking;
    }
    if grouped_write(spec).is_some() || reads_before_writing(spec, request) {
        Route::Grouped
    } else {
        Route::Inline
    }
}

/// The keys whose current presence decides a [`Route::Grouped`] request's reply (`DEL`'s
/// count); empty for writes whose reply does not depend on the data. The loop runs such a
/// request only once no write of these keys waits in its group, so the count it gives is the
/// one the group's commit order makes true.
pub(crate) fn keys_read_by_write(request: &Request) -> impl Iterator<Item = &[u8]> {
    let is_delete = request.get(0).is_some_and(|name| {
        [&b"DEL"[..], b"DELETE", b"UNLINK"]
            .iter()
            .any(|delete| name.eq_ignore_ascii_case(delete))
    });
    let keys = if is_delete { request.len() - 1 } else { 0 };
    request.iter().skip(1).take(keys)
}

/// For a [`Route::Grouped`] request: the batch it commits and the reply each of its requests
/// gets once that batch committed, after the checks [`execute`] makes (arity, arguments,
/// `-READONLY` on a replica); else the reply [`execute`] would give. An empty batch (a `DEL`
/// of keys that do not exist) needs no commit: its reply can go out at once. Counted in the
/// stats as [`execute`] counts (the commit's outcome is counted by whoever commits).
pub(crate) fn prepare_write(
    request: &Request,
    session: &Session,
    node: &Node,
) -> Result<(WriteBatch, Frame), Frame> {
    ServerStats::add(&node.stats.commands_processed, 1);
    let prepared = resolve(request, session).and_then(|(spec, mut args)| {
        if node.is_replica() {
            return Err(readonly());
        }
        match grouped_write(spec) {
            Some(GroupedWrite::Blind(parse)) => parse(&mut args).map(|batch| (batch, Frame::ok())),
            Some(GroupedWrite::Delete) => del::plan(&del::parse_keys(&mut args)?, &node.store),
            None => Err(Frame::error(format!(
                "ERR internal: '{}' is not a grouped write",
                spec.name
            ))),
        }
    });
    if prepared.is_err() {
        ServerStats::add(&node.stats.error_replies, 1);
    }
    prepared
}

/// Parses a blind write's arguments into its batch.
type BatchParser = fn(&mut Args) -> Result<WriteBatch, Frame>;

/// How a write that joins the loop's group is prepared.
enum GroupedWrite {
    /// Its reply is `+OK` or the commit's error, whatever the data holds.
    Blind(BatchParser),
    /// `DEL`: its batch and its reply depend on which keys exist (see [`del::plan`]).
    Delete,
}

/// How a write joins the loop's commit group; `None` for commands that do not.
fn grouped_write(spec: &Spec) -> Option<GroupedWrite> {
    match spec.name {
        "set" => Some(GroupedWrite::Blind(set::parse_set)),
        "put" => Some(GroupedWrite::Blind(set::parse_put_batch)),
        "mset" | "batchput" => Some(GroupedWrite::Blind(mset::parse_batch)),
        "del" | "delete" | "unlink" => Some(GroupedWrite::Delete),
        _ => None,
    }
}

/// `-NOAUTH Authentication required.`
pub(crate) fn noauth() -> Frame {
    Frame::error("NOAUTH Authentication required.")
}

/// `-READONLY You can't write against a read only replica.`
pub(crate) fn readonly() -> Frame {
    Frame::error("READONLY You can't write against a read only replica.")
}

/// Adds `bytes` to a reply being gathered, or the error once it would exceed the server's
/// `max_reply_bytes` (so a few keys repeated in one `MGET`, or a `RANGE` over large values,
/// cannot make the server build a reply of unbounded size).
pub(crate) fn reply_budget(
    node: &Node,
    used: &mut usize,
    bytes: usize,
    hint: &str,
) -> Result<(), Frame> {
    let limit = node.config.max_reply_bytes;
    *used = used.saturating_add(bytes);
    if *used > limit {
        return Err(Frame::error(format!(
            "ERR reply exceeds the limit of {limit} bytes; {hint}"
        )));
    }
    Ok(())
}

/// The reply for an engine error, with Redis's code where one fits.
pub(crate) fn store_error(err: kvstore_core::Error) -> Frame {
    use kvstore_core::Error as E;
    match err {
        E::ReadOnly => readonly(),
        E::NotEnoughReplicas { healthy, required } => Frame::error(format!(
            "NOREPLICAS Not enough good replicas to write ({healthy} healthy, {required} required)."
        )),
        E::Poisoned { reason } => Frame::error(format!(
            "MISCONF writes are refused after a failed write or fsync ({reason}); restart the server"
        )),
        other => Frame::error(format!("ERR {other}")),
    }
}
