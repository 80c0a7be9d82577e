//! `EXISTS key [key …]`: how many of the keys exist (a key named twice counts twice, as in
//! Redis), all as of one moment.

use super::del::parse_keys;
use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let keys = parse_keys(args)?;
    let present = ctx.node.store.contains_keys(&keys);
    ctx.node.stats.lookups(present.iter().copied());
    Ok(Frame::Integer(present.iter().filter(|p| **p).count() as i64))
}
