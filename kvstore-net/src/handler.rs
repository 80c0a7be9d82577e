//! One client connection's loop: decode every buffered request, run it, queue its reply;
//! flush when the buffer holds no complete request; close on `QUIT`, EOF or a protocol error
//! (after replying with the error, as Redis does). Runs of pipelined `SET`s are committed
//! together (see `pipeline`).

use std::sync::Arc;

use crate::cmd::{self, Ctx, Session};
use crate::connection::{Connection, ReadError};
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::{ProtocolError, Request};
use crate::pipeline;
use crate::stats::ServerStats;

/// Serves `conn` until the peer leaves, sends garbage, or the server shuts the socket down.
pub(crate) fn serve(node: Arc<Node>, mut conn: Connection) {
    let mut session = Session {
        peer: conn.peer(),
        authenticated: node.config.requirepass.is_none(),
        quit: false,
        replication_epoch: None,
    };
    // A request read while collecting a batch that could not join it.
    let mut pending: Option<Request> = None;
    let mut broken: Option<ProtocolError> = None;
    loop {
        let request = match pending.take() {
            Some(request) => request,
            None if broken.is_some() => break,
            None => match conn.read_request() {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(ReadError::Protocol(err)) => {
                    broken = Some(err);
                    break;
                }
                Err(ReadError::Io(err)) => {
                    tracing::debug!(peer = %session.peer, %err, "connection ended");
                    break;
                }
            },
        };
        if pipeline::coalescible(&request, &session, &node) {
            let mut batch = vec![request];
            let mut bytes = pipeline::payload_bytes(&batch[0]);
            while batch.len() < pipeline::MAX_COALESCED_REQUESTS
                && bytes < pipeline::MAX_COALESCED_BYTES
            {
                match conn.buffered_request() {
                    Ok(Some(next)) if pipeline::coalescible(&next, &session, &node) => {
                        bytes += pipeline::payload_bytes(&next);
                        batch.push(next);
                    }
                    Ok(Some(next)) => {
                        pending = Some(next);
                        break;
                    }
                    Ok(None) => break,
                    Err(err) => {
                        broken = Some(err);
                        break;
                    }
                }
            }
            let count = batch.len();
            let reply = if count == 1 {
                batch
                    .pop()
                    .map_or_else(Frame::ok, |r| run(r, &node, &mut session))
            } else {
                pipeline::commit(batch, &node)
            };
            if matches!(reply, Frame::Error(_)) {
                ServerStats::add(&node.stats.error_replies, count as u64);
            }
            for _ in 0..count {
                conn.queue(&reply);
            }
        } else {
            let reply = run(request, &node, &mut session);
            conn.queue(&reply);
        }
        if session.quit {
            break;
        }
        if conn.should_flush() {
            if let Err(err) = conn.flush() {
                tracing::debug!(peer = %session.peer, %err, "write failed");
                break;
            }
        }
    }
    if let Some(err) = broken {
        ServerStats::add(&node.stats.protocol_errors, 1);
        tracing::debug!(peer = %session.peer, %err, "protocol error; closing");
        conn.queue(&Frame::error(format!("ERR Protocol error: {err}")));
        conn.close_after_error();
    }
    let _ = conn.flush();
    if session.replication_epoch.is_some() {
        if let crate::role::Role::Replica(replica) = &*node.role.read() {
            replica.session_closed();
        }
    }
    let (read, written) = conn.traffic();
    ServerStats::add(&node.stats.net_input_bytes, read);
    ServerStats::add(&node.stats.net_output_bytes, written);
    conn.shutdown();
}

fn run(request: Request, node: &Arc<Node>, session: &mut Session) -> Frame {
    cmd::execute(request, &mut Ctx { node, session })
}
