//! `APPEND key value`: appends to the key's value (a key without one starts empty) and
//! answers the new length. The whole value is rewritten: values here are not stored in
//! pieces, so appending to a large value costs its size (and is refused past the server's
//! largest value).

use super::view::View;
use super::Args;
use crate::frame::Frame;

pub(super) fn apply(view: &mut View, args: &mut Args) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    let suffix = args.next_bytes()?;
    args.finish()?;
    let mut value = view.get(key)?.unwrap_or_default();
    let max = view.max_value_bytes();
    if value.len() + suffix.len() > max {
        return Err(Frame::error(format!(
            "ERR string exceeds maximum allowed size ({max} bytes)"
        )));
    }
    value.extend_from_slice(suffix);
    let len = value.len();
    view.put(key, value)?;
    Ok(Frame::Integer(len as i64))
}
