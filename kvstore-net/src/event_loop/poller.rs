//! [`Poller`]: one I/O thread: a `mio::Poll` and the connections it owns. Each turn it
//! waits for readiness, accepts (the first loop owns the listener), takes the connections
//! other loops accepted for it, then runs a round: every connection with work takes a step,
//! replies that wait on nothing are written, the round's writes are committed as one group,
//! and their replies are written.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::stats::ServerStats;

use super::closing;
use super::conn_state::{ClientSlot, LoopConn};
use super::dispatch::{step, Step};
use super::group::{Answer, Group};
use super::Shared;

/// The token of the loop's waker (new connections from another loop, shutdown).
pub(super) const WAKER: Token = Token(0);
/// The token of the listener, on the first loop.
const LISTENER: Token = Token(1);
/// The first connection token.
const FIRST_CONNECTION: usize = 2;
/// Readiness events taken per wait.
const EVENTS_PER_POLL: usize = 1024;
/// After a failed `accept` (out of file descriptors, say), wait this long before retrying:
/// the connection stays in the backlog and raises no new event.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// A connection accepted by the first loop for another one.
pub(super) struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub slot: ClientSlot,
}

/// One event loop and its connections.
pub(super) struct Poller {
    pub index: usize,
    pub poll: Poll,
    pub inbox: Receiver<Accepted>,
    pub listener: Option<TcpListener>,
    pub shared: Arc<Shared>,
    conns: HashMap<usize, LoopConn>,
    next_token: usize,
    /// Connections to step in the next round.
    attention: Vec<usize>,
    group: Group,
    retry_accept: bool,
    next_loop: usize,
}

impl Poller {
    /// A loop over `poll` (its waker registered as [`WAKER`]).
    pub(super) fn new(
        index: usize,
        poll: Poll,
        inbox: Receiver<Accepted>,
        listener: Option<TcpListener>,
        shared: Arc<Shared>,
    ) -> Poller {
        Poller {
            index,
            poll,
            inbox,
            listener,
            shared,
            conns: HashMap::new(),
            next_token: FIRST_CONNECTION,
            attention: Vec::new(),
            group: Group::default(),
            retry_accept: false,
            next_loop: 0,
        }
    }

    /// Runs until the server stops; then closes every connection it owns.
    pub(super) fn run(mut self) {
        if let Some(listener) = self.listener.as_mut() {
            if let Err(err) = self
                .poll
                .registry()
                .register(listener, LISTENER, Interest::READABLE)
            {
                tracing::error!(%err, "cannot watch the listening socket; accepting nothing");
            }
        }
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            let timeout = if !self.attention.is_empty() {
                Some(Duration::ZERO)
            } else if self.retry_accept {
                Some(ACCEPT_RETRY)
            } else {
                None
            };
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if err.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(%err, "event loop wait failed");
                    std::thread::sleep(ACCEPT_RETRY);
                }
                continue;
            }
            let mut accept = std::mem::take(&mut self.retry_accept);
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    LISTENER => accept = true,
                    Token(token) => {
                        if let Some(conn) = self.conns.get_mut(&token) {
                            conn.can_read = true;
                            conn.read_closed |= event.is_read_closed() || event.is_error();
                            notice(&mut self.attention, conn, token);
                        }
                    }
                }
            }
            if self.shared.node.stopping.load(Ordering::Acquire) {
                break;
            }
            if accept {
                self.accept_all();
            }
            while let Ok(accepted) = self.inbox.try_recv() {
                self.register(accepted);
            }
            self.round();
        }
        self.close_all();
    }

    /// Takes every pending connection from the listener.
    fn accept_all(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    // EMFILE and friends: retry shortly instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    self.retry_accept = true;
                    return;
                }
            };
            let node = &self.shared.node;
            ServerStats::add(&node.stats.connections_received, 1);
            let Some(slot) = ClientSlot::take(node) else {
                ServerStats::add(&node.stats.rejected_connections, 1);
                refuse(stream);
                continue;
            };
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%peer, %err, "could not set TCP_NODELAY");
            }
            let accepted = Accepted { stream, peer, slot };
            // Spread connections over the loops in turn.
            let target = self.next_loop % self.shared.inboxes.len();
            self.next_loop = self.next_loop.wrapping_add(1);
            if target == self.index {
                self.register(accepted);
            } else if let Some((inbox, waker)) = self.shared.inboxes.get(target) {
                // A send fails only once that loop has ended (shutdown): the connection is
                // dropped, closing it.
                if inbox.send(accepted).is_ok() {
                    if let Err(err) = waker.wake() {
                        tracing::error!(%err, "could not wake an event loop");
                    }
                }
            }
        }
    }

    /// Adds a connection to this loop.
    fn register(&mut self, accepted: Accepted) {
        let Accepted {
            mut stream,
            peer,
            slot,
        } = accepted;
        let token = self.next_token;
        self.next_token += 1;
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut stream, Token(token), interest)
        {
            tracing::warn!(%peer, %err, "could not watch a connection; closing it");
            return;
        }
        let mut conn = LoopConn::new(stream, peer, slot, &self.shared.node);
        // Bytes may have arrived before it was watched.
        notice(&mut self.attention, &mut conn, token);
        self.conns.insert(token, conn);
    }

    /// Steps every connection with work, writes what is ready, commits the group, writes
    /// its replies.
    fn round(&mut self) {
        let ready = std::mem::take(&mut self.attention);
        let node = self.shared.node.clone();
        let mut touched = Vec::with_capacity(ready.len());
        for token in ready {
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            conn.queued = false;
            match step(conn, token, &node, &mut self.group) {
                Step::Wait { again } => {
                    if again {
                        notice(&mut self.attention, conn, token);
                    }
                    touched.push(token);
                }
                Step::Close => touched.push(token),
                Step::HandOff => {
                    if let Some(mut conn) = self.conns.remove(&token) {
                        let _ = self.poll.registry().deregister(&mut conn.stream);
                        self.shared.blocking.hand_off(&node, conn);
                    }
                }
                Step::Drop => self.close(token),
            }
        }
        // Replies that wait on no commit go out before the group's fsync.
        for token in touched {
            self.write_out(token);
        }
        if self.group.is_empty() {
            return;
        }
        // A connection that only waited (a `DEL` of a key the group wrote) runs first in the
        // next round, before the others can put a write of that key in the group again.
        let mut waited = Vec::new();
        // A connection may have several members in the group (pipelined `INCR`s): all its
        // replies are queued before one write sends them.
        let mut answered = Vec::new();
        for Answer { token, replies } in self.group.commit(&node) {
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            conn.in_group = false;
            match replies {
                None => notice(&mut waited, conn, token),
                Some((reply, count)) => {
                    for _ in 0..count {
                        conn.reply(&reply);
                    }
                    if conn.has_work() {
                        notice(&mut self.attention, conn, token);
                    }
                }
            }
            answered.push(token);
        }
        answered.sort_unstable();
        answered.dedup();
        for token in answered {
            self.write_out(token);
        }
        if !waited.is_empty() {
            waited.append(&mut self.attention);
            self.attention = waited;
        }
    }

    /// Writes `token`'s queued replies without waiting; closes it if it failed or is done.
    fn write_out(&mut self, token: usize) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.wire.pending_output() == 0 && !conn.closing {
            return;
        }
        match conn.write_out() {
            // Everything written and the connection is over.
            Ok(true) if conn.closing => self.close(token),
            // The rest goes out when the socket is writable again (an event).
            Ok(_) => {}
            Err(err) => {
                tracing::debug!(peer = %conn.peer, %err, "write failed");
                self.close(token);
            }
        }
    }

    /// Ends a connection of this loop.
    fn close(&mut self, token: usize) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            let (read, written) = conn.wire.traffic();
            let stats = &self.shared.node.stats;
            ServerStats::add(&stats.net_input_bytes, read);
            ServerStats::add(&stats.net_output_bytes, written);
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// On shutdown: each connection gets its queued replies and a FIN within the grace
    /// period (see `closing`), then every connection is closed.
    fn close_all(&mut self) {
        let deadline = self.shared.shutdown_deadline();
        closing::finish_all(&mut self.poll, &mut self.conns, deadline);
        let tokens: Vec<usize> = self.conns.keys().copied().collect();
        for token in tokens {
            self.close(token);
        }
    }
}

/// Puts a connection in the next round's list, once.
fn notice(attention: &mut Vec<usize>, conn: &mut LoopConn, token: usize) {
    if !conn.queued {
        conn.queued = true;
        attention.push(token);
    }
}

/// Tells a client over the connection limit why it is being closed. A fresh socket's send
/// buffer is empty, so the write does not block.
fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(b"-ERR max number of clients reached\r\n");
}
