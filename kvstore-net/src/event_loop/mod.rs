//! The server's event loops: a few I/O threads, each with its own `mio::Poll` (epoll) and the
//! connections it owns, as Redis serves its clients from one thread.
//!
//! # Layout
//! - `poller`: one loop: wait for readiness, accept (the first loop owns the listener and
//!   deals connections out in turn over a channel and a `mio::Waker`), run a round
//! - `conn_state`: a connection of a loop (non-blocking socket, buffers, session) and its
//!   place under the connection limit
//! - `dispatch`: one step of one connection: its requests in order until it must wait
//! - `group`: the round's writes, from every ready connection, committed as one group
//! - `blocking`: connections handed to threads of their own for requests that may block
//! - `closing`: at shutdown, a loop's connections get their queued replies before closing
//!
//! # Why an event loop
//! With one thread per connection, every request woke a thread: about one context switch
//! per request, half the server's time at `redis-benchmark -P 1` (see the crate README).
//! A loop reads from every ready connection, runs what it read, and writes the replies,
//! with no thread hand-off on the way.
//!
//! # Writes and fsync
//! Within one round, the `SET`/`PUT`/`MSET` writes of all ready connections are committed
//! with one `KvStore::write_batches` call: one record per connection's batch, one write, and
//! under `--fsync always` one `fdatasync` for the round. A connection whose next request is
//! a write waits for that commit before its later requests run (so `SET k v; GET k`
//! pipelined sees the `SET`), and its replies go out only after the commit. Consecutive
//! pipelined `SET`s of one connection still make one batch (`pipeline`).
//!
//! # How many loops
//! [`DEFAULT_IO_THREADS`] is 1: measured on the 2-core machine of the README's tables,
//! redis-benchmark (one core) against 1 and 2 loops: see the crate README for the figures;
//! a second loop competes with the client for the second core and splits each round's
//! group (and its fsync) in two, while one loop keeps up with what the client can send.
//! `--io-threads N` sets it.

mod blocking;
mod closing;
mod conn_state;
mod dispatch;
mod group;
mod poller;
#[cfg(test)]
mod tests;

use std::net::TcpListener as StdListener;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Poll, Waker};

use crate::error::{Error, Result};
use crate::node::Node;

use self::blocking::Blocking;
use self::poller::{Accepted, Poller, WAKER};

/// I/O threads by default (see the module documentation for why).
pub const DEFAULT_IO_THREADS: usize = 1;

/// How long shutdown lets connections (on the loops and on threads of their own) finish:
/// write the replies queued for them and, on a thread, the command it is running. Past it
/// the sockets are closed anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the loops share: the node, the way to hand a connection to another loop, and the
/// connections on threads of their own.
pub(crate) struct Shared {
    node: Arc<Node>,
    inboxes: Vec<(Sender<Accepted>, Arc<Waker>)>,
    blocking: Blocking,
    /// When shutdown must be over, set once it begins.
    deadline: OnceLock<Instant>,
}

impl Shared {
    /// When the shutdown under way must be over (the grace period from now if none is).
    fn shutdown_deadline(&self) -> Instant {
        *self
            .deadline
            .get_or_init(|| Instant::now() + SHUTDOWN_GRACE)
    }
}

/// The running loops of one server.
pub(crate) struct EventLoops {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl EventLoops {
    /// Starts `count` loops (at least one) serving `listener`'s connections.
    pub(crate) fn start(node: Arc<Node>, listener: StdListener, count: usize) -> Result<Self> {
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("making the listener non-blocking", e))?;
        let mut listener = Some(TcpListener::from_std(listener));
        let mut parts = Vec::new();
        let mut inboxes = Vec::new();
        for _ in 0..count.max(1) {
            let poll = Poll::new().map_err(|e| Error::io("creating an event loop", e))?;
            let waker = Waker::new(poll.registry(), WAKER)
                .map_err(|e| Error::io("creating an event loop's waker", e))?;
            let (tx, rx) = mpsc::channel();
            inboxes.push((tx, Arc::new(waker)));
            parts.push((poll, rx));
        }
        let shared = Arc::new(Shared {
            node,
            inboxes,
            blocking: Blocking::default(),
            deadline: OnceLock::new(),
        });
        let mut loops = EventLoops {
            shared: shared.clone(),
            threads: Vec::new(),
        };
        for (index, (poll, inbox)) in parts.into_iter().enumerate() {
            let poller = Poller::new(index, poll, inbox, listener.take(), shared.clone());
            let thread = std::thread::Builder::new()
                .name(format!("kvstore-io-{index}"))
                .spawn(move || poller.run())
                .map_err(|e| Error::io("spawning an event loop thread", e));
            match thread {
                Ok(thread) => loops.threads.push(thread),
                Err(err) => {
                    // Stops the loops already running (the caller's node is not serving yet).
                    loops.stop();
                    return Err(err);
                }
            }
        }
        Ok(loops)
    }

    /// Stops the loops and the connections on threads of their own, all within one grace
    /// period: queued replies are written and commands under way finish if they can.
    pub(crate) fn stop(&mut self) {
        let deadline = self.shared.shutdown_deadline();
        // Also ends blocked WAITs (they check it between slices), so their threads finish
        // within the grace period instead of outliving it.
        self.shared
            .node
            .stopping
            .store(true, std::sync::atomic::Ordering::Release);
        // Threads stop reading now, so they finish while the loops flush theirs.
        self.shared.blocking.stop_reading();
        for (_, waker) in &self.shared.inboxes {
            if let Err(err) = waker.wake() {
                tracing::error!(%err, "could not wake an event loop to stop it");
            }
        }
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("an event loop thread panicked");
            }
        }
        self.shared.blocking.shut_down(deadline);
    }
}
