//! Connections served on threads of their own, off the event loops.
//!
//! A request that may block for long (`WAIT`, `REPLICAOF`, `COMPACT`, `DIGEST`, a master's
//! `REPLICATE` link, any write while writes wait for replicas; see `cmd::Route::Blocking`)
//! would stall every connection of its loop. So the loop hands its connection over: the
//! socket goes back to blocking mode, its buffered bytes and queued replies move with it, and
//! a thread runs the blocking request loop (`handler::serve`) from that request on, for the
//! rest of the connection's life. So does a connection whose stream broke: its error reply
//! and the short drain before closing (`Connection::close_after_error`) wait on the peer.
//!
//! Why not give it back to the loop once its buffer is drained: the connections handed off
//! are the ones that keep blocking (a replication link sends records for ever; a client that
//! writes in sync mode waits for replicas at every write), so returning them would cost a
//! hand-over each way per request; and a thread that blocks on a read is the simplest way to
//! know that a connection has nothing more to run. A thread costs a 256 KiB stack, as every
//! connection did before the event loop.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::connection::Connection;
use crate::handler;
use crate::node::Node;

use super::conn_state::LoopConn;

/// Stack of a connection thread; request handling never recurses.
const CONNECTION_STACK_BYTES: usize = 256 << 10;

/// Every connection running on its own thread, by id: a second handle on its socket (so
/// shutdown can close it) and its thread.
#[derive(Default)]
pub(super) struct Blocking {
    threads: Arc<Mutex<HashMap<u64, (TcpStream, JoinHandle<()>)>>>,
    next_id: AtomicU64,
}

impl Blocking {
    /// Moves `conn` (already deregistered from its loop) to a thread of its own, which
    /// starts with the pending request. Failures are logged and close the connection.
    pub(super) fn hand_off(&self, node: &Arc<Node>, conn: LoopConn) {
        let LoopConn {
            stream,
            peer,
            wire,
            session,
            pending,
            broken,
            slot,
            ..
        } = conn;
        let stream = TcpStream::from(stream);
        let control = match stream
            .set_nonblocking(false)
            .and_then(|()| stream.try_clone())
        {
            Ok(control) => control,
            Err(err) => {
                tracing::warn!(%peer, %err, "could not hand a connection to a thread");
                return;
            }
        };
        let mut conn = Connection::from_parts(stream, peer, wire);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let node = node.clone();
        let registry = self.threads.clone();
        // Held until the new thread is registered, so the thread (which deregisters itself
        // when it ends) cannot try to remove its entry before it is there.
        let mut threads = self.threads.lock();
        let spawned = std::thread::Builder::new()
            .name("kvstore-conn".into())
            .stack_size(CONNECTION_STACK_BYTES)
            .spawn(move || {
                // Dropped last (even on a panic): closes shutdown's handle on the socket and
                // frees the connection's place as soon as the connection ends.
                let _registry = Deregister {
                    threads: registry,
                    id,
                };
                let _slot = slot;
                // Replies the loop queued before the hand-off go out before the (possibly
                // long) request runs.
                if let Err(err) = conn.flush() {
                    tracing::debug!(%peer, %err, "write failed");
                    return;
                }
                handler::serve(node, conn, session, pending, broken);
            });
        match spawned {
            Ok(thread) => {
                threads.insert(id, (control, thread));
            }
            Err(err) => {
                tracing::warn!(%peer, %err, "could not spawn a connection thread");
                let _ = control.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Ends the reads of every connection served on a thread so far: each finishes its
    /// current command, writes its reply and ends.
    pub(super) fn stop_reading(&self) {
        for (stream, _) in self.threads.lock().values() {
            let _ = stream.shutdown(std::net::Shutdown::Read);
        }
    }

    /// Closes every connection served on a thread (also those handed off since
    /// [`Blocking::stop_reading`]): their reads end first, so each finishes its current
    /// command and writes its reply, until `deadline`.
    pub(super) fn shut_down(&self, deadline: Instant) {
        let live: Vec<_> = self.threads.lock().drain().map(|(_, c)| c).collect();
        for (stream, _) in &live {
            let _ = stream.shutdown(std::net::Shutdown::Read);
        }
        for (stream, thread) in live {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                // Blocked in a long command (e.g. `WAIT n 0`): left to end on its own rather
                // than holding up shutdown; it holds only a handle on the store.
                tracing::warn!(
                    "a connection thread did not finish within the shutdown grace period"
                );
            }
        }
    }
}

/// Removes a thread's entry when it ends, closing the duplicate socket handle at once;
/// otherwise each closed connection would keep a file descriptor until shutdown.
struct Deregister {
    threads: Arc<Mutex<HashMap<u64, (TcpStream, JoinHandle<()>)>>>,
    id: u64,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        // The thread removing its own entry drops its own JoinHandle: that only detaches it.
        let entry = self.threads.lock().remove(&self.id);
        drop(entry);
    }
}
