//! `MSET k v [k v …]` (alias `BATCHPUT`): `+OK` once every pair is committed atomically as
//! one write batch (one LSN, all or nothing after a crash).
//!
//! [`parse_pairs`] is also how `REPLICATE BATCHPUT <lsn> k v …` reads its pairs.

use kvstore_core::{Op, WriteBatch};

use super::{Args, Ctx};
use crate::frame::Frame;

/// Reads one or more `key value` pairs into puts.
pub(crate) fn parse_pairs(args: &mut Args) -> Result<Vec<Op>, Frame> {
    let mut ops = Vec::with_capacity(args.remaining() / 2);
    each_pair(args, |key, value| {
        ops.push(Op::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        })
    })?;
    Ok(ops)
}

/// `MSET`'s batch: every pair, one atomic record.
pub(super) fn parse_batch(args: &mut Args) -> Result<WriteBatch, Frame> {
    let mut batch = WriteBatch::new();
    each_pair(args, |key, value| {
        batch.put(key, value);
    })?;
    Ok(batch)
}

/// Calls `f` with each of one or more `key value` pairs.
fn each_pair(args: &mut Args, mut f: impl FnMut(&[u8], &[u8])) -> Result<(), Frame> {
    if args.remaining() == 0 || !args.remaining().is_multiple_of(2) {
        return Err(args.wrong_arity());
    }
    while args.remaining() > 0 {
        let key = args.next_bytes()?;
        let value = args.next_bytes()?;
        f(key, value);
    }
    Ok(())
}

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    super::set::commit(parse_batch(args)?, ctx)
}
