//! One connection's blocking loop, on a thread of its own, for the connections the event
//! loop hands off (see `event_loop::blocking`): decode every buffered request, run it, queue
//! its reply; flush when the buffer holds no complete request; close on `QUIT`, EOF or a
//! protocol error (after replying with the error, as Redis does). Runs of pipelined `SET`s are committed
//! together (see `pipeline`), and so are runs of `REPLICATE` records a master pipelines to a
//! replica (see `replica_pipeline`).

use std::sync::Arc;

use kvstore_core::WriteBatch;

use crate::cmd::{self, Ctx, Session};
use crate::connection::{Connection, ReadError};
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::{ProtocolError, Request};
use crate::pipeline::ReadAhead;
use crate::stats::ServerStats;
use crate::{pipeline, replica_pipeline};

/// Serves `conn` until the peer leaves, sends garbage, or the server shuts the socket down.
/// Starts with `pending` (a request already decoded), and ends with `broken`'s error reply
/// once `pending` ran, if the stream was found broken before the hand-off.
pub(crate) fn serve(
    node: Arc<Node>,
    mut conn: Connection,
    mut session: Session,
    mut pending: Option<Request>,
    mut broken: Option<ProtocolError>,
) {
    session.probe = conn.try_clone_stream().ok();
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
            let mut batch = Vec::new();
            let run = pipeline::collect(
                &mut conn,
                request,
                ReadAhead::BufferOnly,
                |next| pipeline::coalescible(next, &session, &node),
                |taken| batch.push(std::mem::take(taken)),
            );
            (pending, broken) = (run.next, run.broken);
            let count = run.count;
            let reply = match batch.as_slice() {
                [one] => run_one(one, &node, &mut session),
                _ => {
                    let mut puts = WriteBatch::new();
                    for request in &batch {
                        pipeline::add_put(&mut puts, request);
                    }
                    pipeline::commit(puts, &node)
                }
            };
            if count > 1 && matches!(reply, Frame::Error(_)) {
                ServerStats::add(&node.stats.error_replies, count as u64);
            }
            for _ in 0..count {
                send(&mut conn, &mut session, &reply);
            }
        } else if replica_pipeline::coalescible(&request, &session, &node) {
            let mut window = Vec::new();
            let run = pipeline::collect(
                &mut conn,
                request,
                ReadAhead::Arrived,
                |next| replica_pipeline::coalescible(next, &session, &node),
                |taken| window.push(std::mem::take(taken)),
            );
            (pending, broken) = (run.next, run.broken);
            if let [one] = window.as_slice() {
                let reply = run_one(one, &node, &mut session);
                send(&mut conn, &mut session, &reply);
            } else {
                for reply in replica_pipeline::apply(window, &node, &session) {
                    send(&mut conn, &mut session, &reply);
                }
            }
        } else {
            let was_authenticated = session.authenticated;
            let reply = run_one(&request, &node, &mut session);
            if session.authenticated != was_authenticated {
                conn.set_limits(cmd::limits_for(&session, &node));
            }
            if !session.hang_up {
                send(&mut conn, &mut session, &reply);
            }
        }
        if session.quit || session.hang_up {
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
        let reply = Frame::error(format!("ERR Protocol error: {err}"));
        send(&mut conn, &mut session, &reply);
        conn.close_after_error();
    }
    let _ = conn.flush();
    // The link is down once the connection is: before the socket closes, as the master sees.
    session.master_link = None;
    let (read, written) = conn.traffic();
    ServerStats::add(&node.stats.net_input_bytes, read);
    ServerStats::add(&node.stats.net_output_bytes, written);
    conn.shutdown();
}

fn run_one(request: &Request, node: &Arc<Node>, session: &mut Session) -> Frame {
    cmd::execute(request, &mut Ctx { node, session })
}

/// Queues a reply in the protocol the client chose, unless it turned replies off
/// (`CLIENT REPLY`).
fn send(conn: &mut Connection, session: &mut Session, reply: &Frame) {
    if session.sends_reply() {
        conn.queue_as(reply, session.protocol);
    }
}
