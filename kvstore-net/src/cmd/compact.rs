//! `COMPACT`: reclaims the space of overwritten and deleted values now; `+OK` when done.

use super::{store_error, Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    args.finish()?;
    let report = ctx.node.store.compact().map_err(store_error)?;
    tracing::info!(?report, "compaction requested by a client finished");
    Ok(Frame::ok())
}
