//! `MSETNX key value [key value …]`: sets every key, all at once, only if none has a value;
//! `:1` if they were set, `:0` if not.

use super::view::View;
use super::{mset, Args};
use crate::frame::Frame;

pub(super) fn apply(view: &mut View, args: &mut Args) -> Result<Frame, Frame> {
    let batch = mset::parse_batch(args)?;
    for op in batch.ops() {
        if view.contains(op.key())? {
            return Ok(Frame::Integer(0));
        }
    }
    view.write(batch.ops())?;
    Ok(Frame::Integer(1))
}
