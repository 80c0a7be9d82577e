//! `MGET key [key …]`: an array with each value, or a null bulk for a missing key.

use super::del::parse_keys;
use super::{store_error, Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let keys = parse_keys(args)?;
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        values.push(match ctx.node.store.get(&key).map_err(store_error)? {
            Some(value) => Frame::Bulk(value),
            None => Frame::Null,
        });
    }
    Ok(Frame::Array(values))
}
