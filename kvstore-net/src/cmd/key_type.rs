//! `TYPE key`: `+string` for a key with a value (every value here is a string), `+none`
//! otherwise. `redis-cli --bigkeys` and Redis GUIs ask it of every key they list.

use super::{store_error, Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    args.finish()?;
    let exists = ctx.node.store.contains_key(key).map_err(store_error)?;
    Ok(type_of(exists))
}

/// The reply for a key that has a value or not.
pub(super) fn type_of(exists: bool) -> Frame {
    Frame::Simple(if exists { "string" } else { "none" }.into())
}
