//! `WAIT numreplicas timeout-ms`: blocks until `numreplicas` replicas have applied every
//! write committed so far, or the timeout passes (0: wait without limit); replies with how
//! many have. On a master without replicas: `:0` at once.

use std::time::Duration;

use super::{Args, Ctx};
use crate::frame::Frame;
use crate::role::Role;

/// What `WAIT … 0` ("no timeout") waits at most, so a thread is never parked for ever.
const UNLIMITED_WAIT: Duration = Duration::from_secs(24 * 3600);

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let replicas = args.next_u64()?;
    let timeout_ms = args.next_int()?;
    args.finish()?;
    if timeout_ms < 0 {
        return Err(Frame::error("ERR timeout is negative"));
    }
    let timeout = match timeout_ms {
        0 => UNLIMITED_WAIT,
        ms => Duration::from_millis(ms as u64),
    };
    let lsn = ctx.node.store.last_lsn();
    // Clone the handle out: waiting under the role lock would stall every writer behind a
    // pending REPLICAOF.
    let replicator = match &*ctx.node.role.read() {
        Role::Replica(_) => {
            return Err(Frame::error(
                "ERR WAIT cannot be used with replica instances.",
            ))
        }
        Role::Master(master) => master.replicator.clone(),
    };
    match replicator {
        None => Ok(Frame::Integer(0)),
        Some(replicator) => {
            let acked = replicator.wait_for(lsn, replicas as usize, timeout);
            Ok(Frame::Integer(acked as i64))
        }
    }
}
