//! `MGET key [key …]`: an array with each value, or a null bulk for a missing key, all as of
//! one moment (an `MSET` or `EXEC` on another connection is seen whole or not at all). Values
//! adding up to more than the server's `max_reply_bytes` get `-ERR reply exceeds …`, before
//! any is read.

use super::del::parse_keys;
use super::{store_error, Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let keys = parse_keys(args)?;
    let limit = ctx.node.config.max_reply_bytes;
    match ctx.node.store.get_many(&keys, limit) {
        Ok(values) => {
            ctx.node.stats.lookups(values.iter().map(Option::is_some));
            Ok(Frame::Array(
                values
                    .into_iter()
                    .map(|value| value.map_or(Frame::Null, Frame::Bulk))
                    .collect(),
            ))
        }
        Err(kvstore_core::Error::ReadTooLarge { .. }) => Err(Frame::error(format!(
            "ERR reply exceeds the limit of {limit} bytes; ask for fewer keys"
        ))),
        Err(err) => Err(store_error(err)),
    }
}
