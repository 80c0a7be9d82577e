//! `MGET key [key …]`: an array with each value, or a null bulk for a missing key. Values
//! adding up to more than the server's `max_reply_bytes` get `-ERR reply exceeds …`.

use super::del::parse_keys;
use super::{reply_budget, store_error, Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let keys = parse_keys(args)?;
    let mut values = Vec::with_capacity(keys.len());
    let mut bytes = 0;
    for key in keys {
        values.push(match ctx.node.store.get(key).map_err(store_error)? {
            Some(value) => {
                reply_budget(ctx.node, &mut bytes, value.len(), "ask for fewer keys")?;
                Frame::Bulk(value)
            }
            None => Frame::Null,
        });
    }
    Ok(Frame::Array(values))
}
