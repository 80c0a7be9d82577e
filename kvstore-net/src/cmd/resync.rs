//! `RESYNC host:port` (on a master): replaces the contents of that replica — one of
//! `--replicas`, named as `INFO replication` shows it — with a snapshot of this master, at its
//! next connection. For a replica reported `diverged` (it holds writes this master does not
//! have, e.g. an old master demoted after writes its replicas never got): the master leaves
//! such a replica untouched, since a resync discards those writes, until an operator decides
//! so with this command. `+OK` once requested; progress shows in `INFO replication`.

use super::{Args, Ctx};
use crate::frame::Frame;
use crate::role::Role;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let name = args.next_bytes()?;
    args.finish()?;
    let name = String::from_utf8_lossy(name).into_owned();
    let role = ctx.node.role.read_recursive();
    let replicator = match &*role {
        Role::Replica(_) => {
            return Err(Frame::error(
                "ERR RESYNC is for a master: this node is a replica",
            ))
        }
        Role::Master(master) => master.replicator.as_ref(),
    };
    if !replicator.is_some_and(|r| r.force_resync(&name)) {
        return Err(Frame::error(format!(
            "ERR no replica named '{name}' (see INFO replication for their names)"
        )));
    }
    tracing::warn!(replica = %name, peer = %ctx.session.peer, "full resync requested by a client: the replica's own writes will be replaced");
    Ok(Frame::ok())
}
