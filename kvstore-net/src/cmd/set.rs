//! `SET key value` and the seed's `PUT key value`: `+OK` once the write is durable per the
//! server's fsync policy (and replicated per its replication mode).
//!
//! [`parse_put`] is also how `REPLICATE PUT <lsn> key value` reads its key and value.

use kvstore_core::{Op, WriteBatch};

use super::args::syntax_error;
use super::{store_error, Args, Ctx};
use crate::frame::Frame;

/// Reads `key value` and nothing more.
pub(crate) fn parse_put(args: &mut Args) -> Result<(Vec<u8>, Vec<u8>), Frame> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    args.finish()?;
    Ok((key.to_vec(), value.to_vec()))
}

/// `SET`'s batch: Redis's options (EX, NX, GET, …) are not supported and get
/// `-ERR syntax error`.
pub(super) fn parse_set(args: &mut Args) -> Result<WriteBatch, Frame> {
    if args.remaining() > 2 {
        return Err(syntax_error());
    }
    parse_put_batch(args)
}

/// `PUT`'s batch: one put.
pub(super) fn parse_put_batch(args: &mut Args) -> Result<WriteBatch, Frame> {
    let (key, value) = parse_put(args)?;
    Ok(WriteBatch::from(vec![Op::Put { key, value }]))
}

/// `SET`.
pub(super) fn run_set(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    commit(parse_set(args)?, ctx)
}

/// `PUT`.
pub(super) fn run_put(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    commit(parse_put_batch(args)?, ctx)
}

/// Commits a blind write's batch: `+OK` once durable (and replicated) per the server's
/// policy, else the engine's error.
pub(super) fn commit(batch: WriteBatch, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let _not_in_a_transaction = ctx.node.write_gate.read();
    ctx.node.store.write_batch(batch).map_err(store_error)?;
    Ok(Frame::ok())
}
