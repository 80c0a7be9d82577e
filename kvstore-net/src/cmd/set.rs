//! `SET key value` and the seed's `PUT key value`: `+OK` once the write is durable per the
//! server's fsync policy (and replicated per its replication mode).
//!
//! [`parse_put`] is also how `REPLICATE PUT <lsn> key value` reads its key and value.

use super::args::syntax_error;
use super::{store_error, Args, Ctx};
use crate::frame::Frame;

/// Reads `key value` and nothing more.
pub(crate) fn parse_put(args: &mut Args) -> Result<(Vec<u8>, Vec<u8>), Frame> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    args.finish()?;
    Ok((key, value))
}

/// `SET`: Redis's options (EX, NX, GET, …) are not supported and get `-ERR syntax error`.
pub(super) fn run_set(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    if args.remaining() > 2 {
        return Err(syntax_error());
    }
    run_put(args, ctx)
}

/// `PUT`.
pub(super) fn run_put(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let (key, value) = parse_put(args)?;
    ctx.node.store.put(&key, &value).map_err(store_error)?;
    Ok(Frame::ok())
}
