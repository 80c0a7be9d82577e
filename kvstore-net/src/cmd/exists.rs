//! `EXISTS key [key …]`: how many of the keys exist (a key named twice counts twice, as in
//! Redis).

use super::del::parse_keys;
use super::{store_error, Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let keys = parse_keys(args)?;
    let mut count = 0;
    for key in keys {
        if ctx.node.store.contains_key(key).map_err(store_error)? {
            count += 1;
        }
    }
    Ok(Frame::Integer(count))
}
