//! One client connection's loop: decode every buffered request, run it, queue its reply;
//! flush when the buffer holds no complete request; close on `QUIT`, EOF or a protocol error
//! (after replying with the error, as Redis does).

use std::sync::Arc;

use crate::cmd::{self, Ctx, Session};
use crate::connection::{Connection, ReadError};
use crate::frame::Frame;
use crate::node::Node;
use crate::stats::ServerStats;

/// Serves `conn` until the peer leaves, sends garbage, or the server shuts the socket down.
pub(crate) fn serve(node: Arc<Node>, mut conn: Connection) {
    let mut session = Session {
        peer: conn.peer(),
        authenticated: node.config.requirepass.is_none(),
        quit: false,
        replication_epoch: None,
    };
    loop {
        let request = match conn.read_request() {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(ReadError::Protocol(err)) => {
                ServerStats::add(&node.stats.protocol_errors, 1);
                tracing::debug!(peer = %session.peer, %err, "protocol error; closing");
                conn.queue(&Frame::error(format!("ERR Protocol error: {err}")));
                conn.close_after_error();
                break;
            }
            Err(ReadError::Io(err)) => {
                tracing::debug!(peer = %session.peer, %err, "connection ended");
                break;
            }
        };
        let reply = cmd::execute(
            request,
            &mut Ctx {
                node: &node,
                session: &mut session,
            },
        );
        conn.queue(&reply);
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
