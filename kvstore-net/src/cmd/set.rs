//! `SET key value [NX|XX] [GET]` and the seed's `PUT key value`: `+OK` once the write is
//! durable per the server's fsync policy (and replicated per its replication mode).
//!
//! [`parse_put`] is also how `REPLICATE PUT <lsn> key value` reads its key and value.

use kvstore_core::WriteBatch;

use super::args::syntax_error;
use super::view::View;
use super::{store_error, Args, Ctx};
use crate::frame::Frame;
use crate::node::Node;

/// Reads `key value` and nothing more.
pub(crate) fn parse_put(args: &mut Args) -> Result<(Vec<u8>, Vec<u8>), Frame> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    args.finish()?;
    Ok((key.to_vec(), value.to_vec()))
}

/// A plain `SET key value`'s batch (options are [`apply`]'s).
pub(super) fn parse_set(args: &mut Args) -> Result<WriteBatch, Frame> {
    if args.remaining() > 2 {
        return Err(syntax_error());
    }
    parse_put_batch(args)
}

/// `SET`'s options: `NX` (only if the key has no value) or `XX` (only if it has one), and
/// `GET` (answer the previous value). Expiry (`EX`, `PX`, `EXAT`, `PXAT`, `KEEPTTL`) is not
/// supported here and gets `-ERR syntax error`.
pub(super) struct SetOptions {
    /// `Some(true)`: only if the key has a value (`XX`); `Some(false)`: only if not (`NX`).
    only_if_present: Option<bool>,
    get: bool,
}

/// Reads `key value [NX|XX] [GET]`.
pub(super) fn parse_set_options<'a>(
    args: &mut Args<'a>,
) -> Result<(&'a [u8], &'a [u8], SetOptions), Frame> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    let mut options = SetOptions {
        only_if_present: None,
        get: false,
    };
    while let Some(option) = args.next_opt() {
        let wanted = match option.to_ascii_uppercase().as_slice() {
            b"NX" => Some(false),
            b"XX" => Some(true),
            b"GET" => {
                options.get = true;
                continue;
            }
            _ => return Err(syntax_error()),
        };
        if options.only_if_present.is_some_and(|w| Some(w) != wanted) {
            return Err(syntax_error());
        }
        options.only_if_present = wanted;
    }
    Ok((key, value, options))
}

/// `SET` in isolation (in a transaction, or with options): `+OK`, or the null bulk when `NX`
/// or `XX` kept it from setting; with `GET`, the previous value (or the null bulk) either way.
pub(super) fn apply(view: &mut View, args: &mut Args, node: &Node) -> Result<Frame, Frame> {
    let (key, value, options) = parse_set_options(args)?;
    let allowed = match options.only_if_present {
        None => true,
        Some(present) => view.contains(key)? == present,
    };
    // The reply first: a value over the reply limit refuses the command before it writes.
    let reply = match (options.get, allowed) {
        (true, _) => view.get(key).and_then(|old| view.reply_opt(node, old))?,
        (false, true) => Frame::ok(),
        (false, false) => Frame::Null,
    };
    if allowed {
        view.put(key, value.to_vec())?;
    }
    Ok(reply)
}

/// `PUT`'s batch: one put.
pub(super) fn parse_put_batch(args: &mut Args) -> Result<WriteBatch, Frame> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    args.finish()?;
    let mut batch = WriteBatch::new();
    batch.put(key, value);
    Ok(batch)
}

/// `SET`: a plain one is a blind write; one with options reads the key first, so it runs in
/// isolation.
pub(super) fn run_set(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    if args.remaining() > 2 {
        return super::isolated::run(args, ctx);
    }
    commit(parse_set(args)?, ctx)
}

/// `PUT`.
pub(super) fn run_put(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    commit(parse_put_batch(args)?, ctx)
}

/// Commits a blind write's batch: `+OK` once durable (and replicated) per the server's
/// policy, else the engine's error. The wait for replicas comes after the write gate is let
/// go: held (even shared) through a sync-mode quorum wait, it made every `INCR`, `DEL` or
/// `EXEC` (which take it exclusively) wait out this write's timeout before their own.
pub(super) fn commit(batch: WriteBatch, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let replicating = {
        let _not_in_a_transaction = ctx.node.write_gate.read();
        ctx.node
            .store
            .write_batch_then_wait(batch)
            .map_err(store_error)?
    };
    replicating.wait().map_err(store_error)?;
    Ok(Frame::ok())
}
