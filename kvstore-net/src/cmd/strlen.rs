//! `STRLEN key`: the length of the key's value, 0 if it has none, from the index (no disk
//! read).

use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    args.finish()?;
    let len = ctx.node.store.value_len(key).unwrap_or(0);
    Ok(Frame::Integer(len as i64))
}
