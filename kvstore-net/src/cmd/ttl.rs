//! `TTL key` and `PTTL key`: keys here never expire, so `-1` for a key with a value and
//! `-2` for one without, Redis's answers for a key without an expiry and a missing key.

use super::{store_error, Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    args.finish()?;
    let exists = ctx.node.store.contains_key(key).map_err(store_error)?;
    Ok(ttl_of(exists))
}

/// The reply for a key that has a value or not.
pub(super) fn ttl_of(exists: bool) -> Frame {
    Frame::Integer(if exists { -1 } else { -2 })
}
