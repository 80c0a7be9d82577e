//! `ECHO message`: the message as a bulk string.

use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, _ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let message = args.next_bytes()?;
    args.finish()?;
    Ok(Frame::bulk(message))
}
