//! `REPLICATE …`: the replica side of a replication session, sent by a master's
//! [`crate::TcpTransport`] on an authenticated connection. A master refuses them all.
//!
//! ```text
//! REPLICATE HELLO <master-id> <epoch> <master-last-lsn> [FORCE] [TIMELINE <e:i:s,…>]
//!     -> *5 :applied_lsn :epoch :snapshot_lsn (-1: none in progress) :next_seq :replica_id
//! REPLICATE LOG <blob>                              -> :applied_lsn
//! REPLICATE LOGPART <total-bytes> <bytes>           -> :applied_lsn
//! REPLICATE PUT <lsn> <key> <value>                 -> :applied_lsn
//! REPLICATE DELETE <lsn> <key>                      -> :applied_lsn
//! REPLICATE BATCHPUT <lsn> <k1> <v1> [<k> <v> …]    -> :applied_lsn
//! REPLICATE BATCH <lsn> (PUT <k> <v> | DEL <k>)…    -> :applied_lsn
//! REPLICATE SNAPSHOT <snapshot-lsn> <seq> <last 0|1> [<key> <offset> <value-len> <data>]…
//!     -> *3 :next_seq :applied_lsn :finished (0|1)
//! ```
//! `LOG` carries one or more records in the master's log encoding, concatenated (see
//! `log_blob`); they are applied together as they are, after every checksum is verified, and
//! the reply is the applied LSN after them. A blob that is cut short or damaged anywhere is
//! refused whole (`-ERR …`) and applies nothing. A record larger than a blob
//! (`MAX_LOG_BLOB_BYTES`, up to the engine's 1 GiB) comes in `LOGPART`s of its bytes, each
//! naming the record's whole length: the last one applies it, as a `LOG` of it would. `PUT`,
//! `DELETE`, `BATCHPUT` and `BATCH` are the text form of one record, for a plain socket.
//! An applied LSN below the record's LSN reports a gap (the master resends). Refusals:
//! `-STALEEPOCH …`, `-DIVERGED …`, `-NOSESSION …`. `TIMELINE` lists the master's
//! incarnations as `epoch:incarnation:first-lsn` (see `kvstore_replication::timeline`): a
//! replica whose log parts from it at or before its applied LSN answers `-DIVERGED`. An
//! accepted HELLO ends the session of any earlier HELLO (whose records then get
//! `-NOSESSION`); `replica_id` is drawn when the replica starts, so a master that reaches one
//! replica under two addresses counts it once (a master also takes a reply without it).

use kvstore_core::{Lsn, Op, WalRecord};
use kvstore_replication::{
    Hello, ReplicaEndpoint, Session, SnapshotChunk, SnapshotPiece, Timeline,
};

use super::args::syntax_error;
use super::{mset, set, store_error, Args, Ctx};
use crate::frame::Frame;
use crate::log_blob::{self, WireRecord};
use crate::parse::Request;
use crate::role::Role;

/// The reply for a replication error; refusals keep their own codes.
pub(crate) fn replication_error(err: kvstore_replication::Error) -> Frame {
    use kvstore_replication::Error as E;
    match err {
        e @ (E::StaleEpoch { .. } | E::Diverged { .. } | E::NoSession) => {
            Frame::error(e.to_string())
        }
        E::Core(core) => store_error(core),
        other => Frame::error(format!("ERR {other}")),
    }
}

/// The reply to any `REPLICATE` on a master.
pub(crate) fn master_refuses() -> Frame {
    Frame::error(
        "ERR this node is a master and refuses REPLICATE; make it a replica with REPLICAOF first",
    )
}

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let endpoint = match &*ctx.node.role.read_recursive() {
        Role::Replica(replica) => replica.endpoint.clone(),
        Role::Master(_) => return Err(master_refuses()),
    };
    let sub = args.next_bytes()?.to_ascii_uppercase();
    if sub == b"HELLO" {
        return hello(args, ctx, &endpoint);
    }
    let session = ctx
        .session
        .replication_session
        .ok_or_else(|| replication_error(kvstore_replication::Error::NoSession))?;
    if let Role::Replica(replica) = &*ctx.node.role.read_recursive() {
        replica.touch();
    }
    // Whatever follows writes to the store: not while an EXEC runs.
    let _not_in_a_transaction = ctx.node.write_gate.read();
    if sub == b"SNAPSHOT" {
        let chunk = parse_chunk(args)?;
        let ack = endpoint
            .install_chunk(session, &chunk)
            .map_err(replication_error)?;
        return Ok(Frame::Array(vec![
            Frame::Integer(ack.next_seq as i64),
            Frame::Integer(ack.applied_lsn as i64),
            Frame::Integer(i64::from(ack.finished)),
        ]));
    }
    if sub == b"LOG" {
        let records = parse_log(args)?;
        let applied = apply_window(&endpoint, session, &records)?;
        return Ok(Frame::Integer(applied as i64));
    }
    if sub == b"LOGPART" {
        return log_part(args, ctx, &endpoint, session);
    }
    let record = parse_record(&sub, args)?;
    let ack = endpoint
        .apply(session, &record)
        .map_err(replication_error)?;
    Ok(Frame::Integer(ack.applied_lsn as i64))
}

/// Applies `records` as one window; the applied LSN after it, or the error reply.
pub(crate) fn apply_window(
    endpoint: &ReplicaEndpoint,
    session: Session,
    records: &[WireRecord],
) -> Result<Lsn, Frame> {
    let acks = endpoint
        .apply_many(session, records)
        .map_err(replication_error)?;
    match acks.last() {
        Some(ack) => Ok(ack.applied_lsn),
        None => Err(Frame::error("ERR REPLICATE carries no record")),
    }
}

/// A record arriving in `REPLICATE LOGPART`s: the length its parts announce, and the bytes
/// that came so far.
#[derive(Debug)]
pub(crate) struct PartialRecord {
    total: usize,
    bytes: Vec<u8>,
}

/// `LOGPART <total> <bytes>`: adds a part to the record being assembled on this session and
/// applies the record once it is whole. Parts that disagree on the length, or run past it,
/// drop what was assembled (the master resends the record from its first part after the
/// error closes the session).
fn log_part(
    args: &mut Args,
    ctx: &mut Ctx<'_>,
    endpoint: &ReplicaEndpoint,
    session: Session,
) -> Result<Frame, Frame> {
    let total = args.next_u64()?;
    let part = args.next_bytes()?;
    args.finish()?;
    let partial = ctx.session.partial_record.take();
    let total = usize::try_from(total)
        .ok()
        .filter(|total| (1..=log_blob::MAX_PARTED_RECORD_BYTES).contains(total))
        .ok_or_else(|| {
            Frame::error(format!(
                "ERR REPLICATE LOGPART length {total} is not between 1 and {}",
                log_blob::MAX_PARTED_RECORD_BYTES
            ))
        })?;
    let mut partial = match partial {
        Some(partial) if partial.total != total => {
            return Err(Frame::error(format!(
                "ERR REPLICATE LOGPART announces {total} bytes, its record's first part {}",
                partial.total
            )))
        }
        Some(partial) => partial,
        None => PartialRecord {
            total,
            bytes: Vec::new(),
        },
    };
    if partial.bytes.len() + part.len() > total {
        return Err(Frame::error(format!(
            "ERR REPLICATE LOGPART parts run past the record's {total} bytes"
        )));
    }
    // Grown by doubling, but never past the declared length: plain doubling would hold up to
    // twice a near-1-GiB record.
    let len = partial.bytes.len();
    let wanted = (len * 2).max(len + part.len()).min(total);
    partial.bytes.reserve_exact(wanted - len);
    partial.bytes.extend_from_slice(part);
    if partial.bytes.len() < total {
        ctx.session.partial_record = Some(partial);
        return Ok(Frame::Integer(endpoint.applied_lsn() as i64));
    }
    let records = log_blob::split_shared(partial.bytes.into())
        .map_err(|reason| Frame::error(format!("ERR {reason}")))?;
    let records: Vec<WireRecord> = records.into_iter().map(WireRecord::Log).collect();
    let applied = apply_window(endpoint, session, &records)?;
    Ok(Frame::Integer(applied as i64))
}

/// Reads `LOG <blob>`'s blob into its records, or the error reply.
fn parse_log(args: &mut Args) -> Result<Vec<WireRecord>, Frame> {
    let blob = args.next_bytes()?;
    args.finish()?;
    let records = log_blob::split(blob).map_err(|reason| Frame::error(format!("ERR {reason}")))?;
    Ok(records.into_iter().map(WireRecord::Log).collect())
}

/// Whether `sub` (any case) names a subcommand carrying one record, the ones a replica may
/// apply as a window (see `replica_pipeline`).
pub(crate) fn is_record_subcommand(sub: &[u8]) -> bool {
    [
        &b"LOG"[..],
        b"PUT",
        b"DELETE",
        b"DEL",
        b"BATCHPUT",
        b"BATCH",
    ]
    .iter()
    .any(|name| sub.eq_ignore_ascii_case(name))
}

/// Reads `<lsn> …` of a record subcommand (`sub`, uppercase) into the record it carries,
/// or the error reply the command gets.
fn parse_record(sub: &[u8], args: &mut Args) -> Result<WalRecord, Frame> {
    let lsn = args.next_u64()?;
    let ops = match sub {
        b"PUT" => {
            let (key, value) = set::parse_put(args)?;
            vec![Op::Put { key, value }]
        }
        b"DELETE" | b"DEL" => {
            let key = args.next_bytes()?.to_vec();
            args.finish()?;
            vec![Op::Delete { key }]
        }
        b"BATCHPUT" => mset::parse_pairs(args)?,
        b"BATCH" => parse_mixed(args)?,
        _ => return Err(syntax_error()),
    };
    Ok(WalRecord { lsn, ops })
}

/// Parses a whole `REPLICATE <record subcommand> …` request (name included) into its
/// records (one for a text command, the blob's for `LOG`), or the error reply [`run`] would
/// give it once the session checks have passed.
pub(crate) fn parse_record_request(request: &Request) -> Result<Vec<WireRecord>, Frame> {
    let mut args = Args::new(request);
    let sub = args.next_bytes()?.to_ascii_uppercase();
    if sub == b"LOG" {
        return parse_log(&mut args);
    }
    Ok(vec![WireRecord::Text(parse_record(&sub, &mut args)?)])
}

fn hello(args: &mut Args, ctx: &mut Ctx<'_>, endpoint: &ReplicaEndpoint) -> Result<Frame, Frame> {
    let master_id = String::from_utf8_lossy(args.next_bytes()?).into_owned();
    let epoch = args.next_u64()?;
    let master_last_lsn = args.next_u64()?;
    let (mut force_resync, mut timeline) = (false, Timeline::default());
    while let Some(option) = args.next_opt() {
        if option.eq_ignore_ascii_case(b"FORCE") {
            force_resync = true;
        } else if option.eq_ignore_ascii_case(b"TIMELINE") {
            let text = std::str::from_utf8(args.next_bytes()?).map_err(|_| syntax_error())?;
            timeline = Timeline::decode(text).map_err(|e| Frame::error(format!("ERR {e}")))?;
        } else {
            return Err(syntax_error());
        }
    }
    let opened = endpoint
        .hello(&Hello {
            master_id: master_id.clone(),
            epoch,
            master_last_lsn,
            force_resync,
            timeline,
        })
        .map_err(replication_error)?;
    ctx.session.replication_session = Some(opened.session);
    let reply = opened.reply;
    ctx.session.partial_record = None;
    if let Role::Replica(replica) = &*ctx.node.role.read_recursive() {
        ctx.session.master_link = Some(replica.session_opened(master_id, ctx.session.peer));
    }
    let (snapshot_lsn, next_seq) = match reply.snapshot_in_progress {
        Some(p) => (p.snapshot_lsn as i64, p.next_seq as i64),
        None => (-1, 0),
    };
    let mut items = vec![
        Frame::Integer(reply.applied_lsn as i64),
        Frame::Integer(reply.epoch as i64),
        Frame::Integer(snapshot_lsn),
        Frame::Integer(next_seq),
    ];
    if let Some(id) = reply.replica_id.and_then(|id| i64::try_from(id).ok()) {
        items.push(Frame::Integer(id));
    }
    Ok(Frame::Array(items))
}

/// `(PUT k v | DEL k)…`, at least one operation.
fn parse_mixed(args: &mut Args) -> Result<Vec<Op>, Frame> {
    let mut ops = Vec::new();
    while let Some(kind) = args.next_opt() {
        if kind.eq_ignore_ascii_case(b"PUT") {
            let key = args.next_bytes()?;
            let value = args.next_bytes()?;
            ops.push(Op::Put {
                key: key.to_vec(),
                value: value.to_vec(),
            });
        } else if kind.eq_ignore_ascii_case(b"DEL") {
            ops.push(Op::Delete {
                key: args.next_bytes()?.to_vec(),
            });
        } else {
            return Err(syntax_error());
        }
    }
    if ops.is_empty() {
        return Err(args.wrong_arity());
    }
    Ok(ops)
}

fn parse_chunk(args: &mut Args) -> Result<SnapshotChunk, Frame> {
    let snapshot_lsn = args.next_u64()?;
    let seq = args.next_u64()?;
    let last = match args.next_u64()? {
        0 => false,
        1 => true,
        _ => return Err(syntax_error()),
    };
    if !args.remaining().is_multiple_of(4) {
        return Err(args.wrong_arity());
    }
    let mut pieces = Vec::with_capacity(args.remaining() / 4);
    while args.remaining() > 0 {
        pieces.push(SnapshotPiece {
            key: args.next_bytes()?.to_vec(),
            value_offset: args.next_u64()?,
            value_len: args.next_u64()?,
            data: args.next_bytes()?.to_vec(),
        });
    }
    Ok(SnapshotChunk {
        snapshot_lsn,
        seq,
        pieces,
        last,
    })
}
