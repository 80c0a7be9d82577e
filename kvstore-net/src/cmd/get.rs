//! `GET key` (alias `READ`): the value as a bulk string, or the null bulk if absent.

use super::{store_error, Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    args.finish()?;
    let value = ctx.node.store.get(key).map_err(store_error)?;
    ctx.node.stats.lookups([value.is_some()]);
    Ok(value.map_or(Frame::Null, Frame::Bulk))
}
