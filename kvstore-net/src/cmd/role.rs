//! `ROLE`: on a master `["master", last_lsn, [[host, port, acked_lsn], …]]`; on a replica
//! `["slave", master_host, master_port, "connected"|"connect", applied_lsn]`, as Redis.

use super::{Args, Ctx};
use crate::frame::Frame;
use crate::role::Role;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    args.finish()?;
    let role = ctx.node.role.read_recursive();
    Ok(match &*role {
        Role::Master(master) => {
            let replicas = master
                .replicator
                .as_ref()
                .map(|r| r.status().replicas)
                .unwrap_or_default()
                .into_iter()
                .map(|r| {
                    let (host, port) = crate::client::split_host_port(&r.name)
                        .unwrap_or_else(|_| (r.name.clone(), 0));
                    Frame::Array(vec![
                        Frame::bulk(host),
                        Frame::bulk(port.to_string()),
                        Frame::bulk(r.acked_lsn.to_string()),
                    ])
                })
                .collect();
            Frame::Array(vec![
                Frame::bulk("master"),
                Frame::Integer(ctx.node.store.last_lsn() as i64),
                Frame::Array(replicas),
            ])
        }
        Role::Replica(replica) => {
            let (host, port) = crate::cmd::info::master_host_port(replica);
            Frame::Array(vec![
                Frame::bulk("slave"),
                Frame::bulk(host),
                Frame::Integer(i64::from(port)),
                Frame::bulk(if replica.link_up() {
                    "connected"
                } else {
                    "connect"
                }),
                Frame::Integer(replica.endpoint.applied_lsn() as i64),
            ])
        }
    })
}
