//! `DIGEST`: a 32-hex-digit hash of every key and value in key order (see
//! [`crate::Digest`]); equal on a master and its replicas once they hold the same data.

use super::{store_error, Args, Ctx};
use crate::digest::Digest;
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    args.finish()?;
    let digest = Digest::of_store(&ctx.node.store).map_err(store_error)?;
    Ok(Frame::Bulk(digest.hex().into_bytes()))
}
