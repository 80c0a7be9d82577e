//! `SELECT index`: this server keeps one keyspace, database 0 (`CONFIG GET databases` says
//! 1). Clients configured with a database send it on connect: 0 is accepted, any other is
//! refused as Redis refuses an index past its `databases`.

use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, _ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let index = args.next_int()?;
    args.finish()?;
    if index == 0 {
        Ok(Frame::ok())
    } else {
        Err(Frame::error("ERR DB index is out of range"))
    }
}
