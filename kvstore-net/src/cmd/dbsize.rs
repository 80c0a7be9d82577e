//! `DBSIZE`: the number of keys.

use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    args.finish()?;
    Ok(Frame::Integer(ctx.node.store.len() as i64))
}
