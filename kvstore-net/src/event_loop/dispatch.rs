//! One step of one connection on its event loop: run the requests it has sent, in order,
//! until it must wait: for bytes not yet arrived, for the loop's commit group (a write), for
//! the peer to read its replies (output over [`FLUSH_THRESHOLD_BYTES`]), or for a thread of
//! its own (a request that may block; see [`Route::Blocking`]).

use std::sync::Arc;

use kvstore_core::WriteBatch;

use crate::cmd::{self, Ctx, Route};
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::Request;
use crate::pipeline::{self, ReadAhead};
use crate::stats::ServerStats;
use crate::wire::FLUSH_THRESHOLD_BYTES;

use super::conn_state::{LoopConn, ReadOutcome};
use super::group::Group;

/// Socket reads one step may make before other connections get their turn; a client that
/// keeps sending is then looked at again in the loop's next round.
const MAX_READS_PER_STEP: usize = 16;

/// How a step ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// The connection waits (for bytes, its group, or the peer to read); `again`: it could go
    /// on but used its share of reads, so it is looked at in the next round.
    Wait { again: bool },
    /// It must go to a thread of its own: a blocking request is pending, or the stream is
    /// broken and its error reply and close (which may wait for the peer) are due.
    HandOff,
    /// The connection is over: close it once its replies are written.
    Close,
    /// The connection failed: drop it now.
    Drop,
}

/// Most read-modify-write commands (`INCR`, `SET … GET`, …) one connection adds to a commit
/// group: a client that pipelines them and reads nothing gets at most this many replies
/// queued per round before back-pressure stops it (`redis-benchmark -P 16` fits in one).
const MAX_ISOLATED_PER_ROUND: usize = 16;

/// Runs `conn`'s requests until it must wait; its writes join `group` under `token`.
pub(super) fn step(conn: &mut LoopConn, token: usize, node: &Arc<Node>, group: &mut Group) -> Step {
    let mut reads = 0;
    loop {
        if conn.in_group {
            return Step::Wait { again: false };
        }
        if conn.closing {
            return Step::Close;
        }
        if conn.wire.pending_output() >= FLUSH_THRESHOLD_BYTES {
            // Back-pressure: no more requests run until the peer has read enough replies;
            // its unread requests stay in the kernel's buffers, not in ours.
            if let Err(err) = conn.write_out() {
                tracing::debug!(peer = %conn.peer, %err, "write failed");
                return Step::Drop;
            }
            if conn.wire.pending_output() >= FLUSH_THRESHOLD_BYTES {
                return Step::Wait { again: false };
            }
        }
        if conn.broken.is_some() {
            // A grouped run found the stream broken (its requests before the damage ran): the
            // error reply and the close are due, and nothing after the damage may run. The
            // decoder has stepped past the bad header, so what follows would read as requests.
            return Step::HandOff;
        }
        let request = match conn.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => {
                if !conn.can_read {
                    return Step::Wait { again: false };
                }
                if reads == MAX_READS_PER_STEP {
                    return Step::Wait { again: true };
                }
                reads += 1;
                match conn.read_once() {
                    ReadOutcome::Data | ReadOutcome::Drained => continue,
                    ReadOutcome::Eof if conn.wire.is_mid_message() => {
                        tracing::debug!(peer = %conn.peer, "connection ended mid-request");
                        return Step::Drop;
                    }
                    ReadOutcome::Eof => {
                        conn.closing = true;
                        return Step::Close;
                    }
                    ReadOutcome::Failed(err) => {
                        tracing::debug!(peer = %conn.peer, %err, "connection ended");
                        return Step::Drop;
                    }
                }
            }
            Err(err) => {
                conn.broken = Some(err);
                return Step::HandOff;
            }
        };
        match cmd::route(&request, &conn.session, node) {
            Route::Blocking => {
                conn.pending = Some(request);
                return Step::HandOff;
            }
            Route::Grouped => join_group(conn, request, token, node, group),
            Route::Inline if cmd::multi::is_exec(&request, &conn.session) && group.has_writes() => {
                // A transaction runs on what is committed: writes waiting in the group go
                // first, so it reads them and commits after them.
                conn.pending = Some(request);
                group.wait(token);
                conn.in_group = true;
            }
            Route::Inline => {
                let was_authenticated = conn.session.authenticated;
                let reply = cmd::execute(
                    &request,
                    &mut Ctx {
                        node,
                        session: &mut conn.session,
                    },
                );
                if conn.session.authenticated != was_authenticated {
                    conn.wire.set_limits(cmd::limits_for(&conn.session, node));
                }
                conn.recycle(request);
                if !conn.session.hang_up {
                    conn.reply(&reply);
                }
                if conn.session.quit || conn.session.hang_up {
                    conn.closing = true;
                }
            }
        }
    }
}

/// Adds a write (with the `SET`s pipelined right after it, as one batch) to the group, or
/// queues the reply it gets before any commit. A command that reads before it writes is
/// planned at the commit. A `DEL` of a key the group already writes waits for the group's
/// commit instead, so that it counts that write.
fn join_group(conn: &mut LoopConn, request: Request, token: usize, node: &Node, group: &mut Group) {
    if pipeline::coalescible(&request, &conn.session, node) {
        let session_ok = |next: &Request| pipeline::coalescible(next, &conn.session, node);
        // Only what is buffered: never a read in the middle of gathering a group.
        let mut source = Buffered(&mut conn.wire);
        let mut puts = WriteBatch::new();
        let run = pipeline::collect(
            &mut source,
            request,
            ReadAhead::BufferOnly,
            session_ok,
            |taken| pipeline::add_put(&mut puts, taken),
        );
        ServerStats::add(&node.stats.commands_processed, run.count as u64);
        conn.pending = run.next;
        conn.broken = run.broken;
        group.add(token, run.count, puts, Frame::ok());
        conn.in_group = true;
        return;
    }
    if let Some(checked) = cmd::prepare_isolated(&request, &conn.session, node) {
        let mut next = Some((request, checked));
        let mut members = 0;
        while let Some((request, checked)) = next.take() {
            members += 1;
            match checked {
                Ok(()) => group.add_isolated(token, request),
                // Answered in its turn, after the writes before it.
                Err(reply) => {
                    conn.recycle(request);
                    group.add(token, 1, WriteBatch::new(), reply);
                }
            }
            // Such commands pipelined right after it join the group too, a member each, as
            // `SET`s do (only what is buffered: never a read in the middle of a group), up to
            // a bound: their replies are built at the commit, past the back-pressure check
            // at the top of `step`, and may be large (`SET k v NX GET` of a big value).
            if members == MAX_ISOLATED_PER_ROUND {
                break;
            }
            match conn.next_request() {
                Ok(Some(following)) => {
                    match cmd::prepare_isolated(&following, &conn.session, node) {
                        Some(checked) => next = Some((following, checked)),
                        None => conn.pending = Some(following),
                    }
                }
                Ok(None) => {}
                Err(err) => conn.broken = Some(err),
            }
        }
        conn.in_group = true;
        return;
    }
    if group.touches(cmd::keys_read_by_write(&request)) {
        conn.pending = Some(request);
        group.wait(token);
        conn.in_group = true;
        return;
    }
    let prepared = cmd::prepare_write(&request, &conn.session, node);
    let deleted: Vec<Vec<u8>> = cmd::keys_read_by_write(&request)
        .map(<[u8]>::to_vec)
        .collect();
    conn.recycle(request);
    match prepared {
        // Nothing to write (a `DEL` of keys that do not exist): answered now.
        Ok((batch, reply)) if batch.is_empty() => conn.reply(&reply),
        // Counted again at the commit, when nothing else can commit in between.
        Ok(_) if !deleted.is_empty() => {
            group.add_delete(token, deleted);
            conn.in_group = true;
        }
        Ok((batch, reply)) => {
            group.add(token, 1, batch, reply);
            conn.in_group = true;
        }
        Err(reply) => conn.reply(&reply),
    }
}

/// A connection's buffer as a [`pipeline::RequestSource`] that never touches the socket.
struct Buffered<'a>(&'a mut crate::wire::Wire);

impl pipeline::RequestSource for Buffered<'_> {
    fn buffered_request(
        &mut self,
        request: &mut Request,
    ) -> Result<bool, crate::parse::ProtocolError> {
        self.0.decode_request_into(request)
    }

    fn read_available(&mut self, _max_buffered: usize) -> std::io::Result<usize> {
        Ok(0)
    }
}
