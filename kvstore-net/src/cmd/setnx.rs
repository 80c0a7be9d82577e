//! `SETNX key value`: sets the key only if it has no value; `:1` if it did, `:0` if not.

use super::view::View;
use super::Args;
use crate::frame::Frame;

pub(super) fn apply(view: &mut View, args: &mut Args) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    args.finish()?;
    if view.contains(key)? {
        return Ok(Frame::Integer(0));
    }
    view.put(key, value.to_vec())?;
    Ok(Frame::Integer(1))
}
