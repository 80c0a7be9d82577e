//! `REPLICAOF host port` (alias `SLAVEOF`): become a replica, refusing client writes and
//! accepting `REPLICATE` from a master (which streams to us because we are in its
//! `--replicas`). `REPLICAOF NO ONE`: promote this replica to master with an epoch higher
//! than any it has seen, so the old master is refused from then on; it then streams to its own
//! `--replicas`.

use super::{Args, Ctx};
use crate::frame::Frame;
use crate::role;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let host = args.next_bytes()?;
    let port = args.next_bytes()?;
    args.finish()?;
    if host.eq_ignore_ascii_case(b"NO") && port.eq_ignore_ascii_case(b"ONE") {
        let epoch = role::promote(ctx.node).map_err(|e| Frame::error(format!("ERR {e}")))?;
        tracing::info!(epoch, peer = %ctx.session.peer, "REPLICAOF NO ONE");
        return Ok(Frame::ok());
    }
    let port = std::str::from_utf8(port)
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| Frame::error("ERR Invalid master port"))?;
    let host = String::from_utf8_lossy(host).into_owned();
    role::become_replica(ctx.node, Some((host, port)))
        .map_err(|e| Frame::error(format!("ERR {e}")))?;
    Ok(Frame::ok())
}
