//! `MSET k v [k v …]` (alias `BATCHPUT`): `+OK` once every pair is committed atomically as
//! one write batch (one LSN, all or nothing after a crash).
//!
//! [`parse_pairs`] is also how `REPLICATE BATCHPUT <lsn> k v …` reads its pairs.

use kvstore_core::WriteBatch;

use super::{store_error, Args, Ctx};
use crate::frame::Frame;

/// Reads one or more `key value` pairs into a batch.
pub(crate) fn parse_pairs(args: &mut Args) -> Result<WriteBatch, Frame> {
    if args.remaining() == 0 || !args.remaining().is_multiple_of(2) {
        return Err(args.wrong_arity());
    }
    let mut batch = WriteBatch::new();
    while args.remaining() > 0 {
        let key = args.next_bytes()?;
        let value = args.next_bytes()?;
        batch.put(key, value);
    }
    Ok(batch)
}

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let batch = parse_pairs(args)?;
    ctx.node.store.write_batch(batch).map_err(store_error)?;
    Ok(Frame::ok())
}
