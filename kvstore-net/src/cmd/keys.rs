//! `KEYS pattern`: every key matching the glob pattern, in key order, as Redis answers it
//! (an operator's tool: `redis-cli keys 'user:*'`). Reads the index only, in chunks, never
//! holding the engine's lock for the whole walk; the keys of a literal prefix are the only
//! ones visited. A reply over the server's reply limit is refused (use `SCAN`).

use std::ops::Bound;

use kvstore_core::prefix_end;

use super::{reply_budget, Args, Ctx};
use crate::frame::Frame;
use crate::glob::Glob;

/// Keys read from the index per visit.
const CHUNK_KEYS: usize = 4096;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let pattern = Glob::new(args.next_bytes()?);
    args.finish()?;
    let prefix = pattern.literal_prefix();
    let end = if prefix.is_empty() {
        Bound::Unbounded
    } else {
        prefix_end(&prefix)
    };
    let mut start = Bound::Included(prefix);
    let mut keys = Vec::new();
    let mut used = 0usize;
    loop {
        let chunk = ctx.node.store.keys((start, end.clone()), CHUNK_KEYS);
        let last_chunk = chunk.len() < CHUNK_KEYS;
        let Some(last) = chunk.last().cloned() else {
            break;
        };
        for key in chunk {
            if pattern.matches(&key) {
                reply_budget(
                    ctx.node,
                    &mut used,
                    key.len(),
                    "use SCAN with MATCH instead",
                )?;
                keys.push(Frame::Bulk(key));
            }
        }
        if last_chunk {
            break;
        }
        start = Bound::Excluded(last);
    }
    Ok(Frame::Array(keys))
}
