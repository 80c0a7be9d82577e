//! `MSETNX key value [key value …]`: sets every key, all at once, only if none has a value;
//! `:1` if they were set, `:0` if not.

use kvstore_core::Op;

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
    let ops: Vec<Op> = batch.ops().to_vec();
    view.write(&ops)?;
    Ok(Frame::Integer(1))
}
