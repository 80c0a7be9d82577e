//! `GET key` (alias `READ`): the value as a bulk string, or the null bulk if absent.

use super::{store_error, Args, Ctx};
use crate::frame::Frame;
use crate::stats::ServerStats;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    args.finish()?;
    let stats = &ctx.node.stats;
    match ctx.node.store.get(key).map_err(store_error)? {
        Some(value) => {
            ServerStats::add(&stats.keyspace_hits, 1);
            Ok(Frame::Bulk(value))
        }
        None => {
            ServerStats::add(&stats.keyspace_misses, 1);
            Ok(Frame::Null)
        }
    }
}
