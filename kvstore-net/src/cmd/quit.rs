//! `QUIT`: `+OK`, then the server closes the connection.

use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(_args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    ctx.session.quit = true;
    Ok(Frame::ok())
}
