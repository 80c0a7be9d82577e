//! [`LoopConn`]: one connection owned by an event loop: its non-blocking socket, its
//! [`Wire`] buffers, its session, and where it stands (reading, waiting for the commit group,
//! closing). Also [`ClientSlot`], the connection's place under `--max-clients`, which travels
//! with it when it is handed to a thread.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mio::net::TcpStream;

use crate::cmd::Session;
use crate::frame::Frame;
use crate::node::Node;
use crate::parse::{ProtocolError, Request};
use crate::stats::ServerStats;
use crate::wire::Wire;

/// Holds one place under the connection limit (`connected_clients`) until dropped, wherever
/// the connection is served by then.
pub(crate) struct ClientSlot {
    node: Arc<Node>,
}

impl ClientSlot {
    /// Takes a place, if one is free. Only the accepting thread takes places, so checking
    /// and then adding cannot let two connections share the last one.
    pub(crate) fn take(node: &Arc<Node>) -> Option<ClientSlot> {
        let live = ServerStats::get(&node.stats.connected_clients);
        if live >= node.config.max_clients as u64 {
            return None;
        }
        ServerStats::add(&node.stats.connected_clients, 1);
        Some(ClientSlot { node: node.clone() })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.node
            .stats
            .connected_clients
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one read from the socket gave.
pub(super) enum ReadOutcome {
    /// Bytes were added to the buffer.
    Data,
    /// Nothing is waiting: the next readiness event says when to try again.
    Drained,
    /// The peer closed its side.
    Eof,
    /// The socket failed.
    Failed(io::Error),
}

/// A connection served by an event loop.
pub(super) struct LoopConn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub wire: Wire,
    pub session: Session,
    /// A request taken from the buffer that has not run yet: the one that ended a coalesced
    /// run of `SET`s, or the blocking one the connection is handed off with.
    pub pending: Option<Request>,
    /// The buffers of a request that has run, to decode the next one into.
    spare: Request,
    /// The stream was found broken after the requests before it: they run, then the peer
    /// gets the error and the connection is closed.
    pub broken: Option<ProtocolError>,
    /// Whether the socket may hold unread bytes or an EOF. Readiness is edge-triggered, so it
    /// is cleared only by a read that shows the socket drained.
    pub can_read: bool,
    /// The peer shut its side down (seen in an event): only a read of 0 bytes ends reading,
    /// since no further event will announce the EOF.
    pub read_closed: bool,
    /// A write of this connection is in the loop's commit group: its later requests wait
    /// until the group has committed, so they see that write.
    pub in_group: bool,
    /// The connection ends once its queued replies are written (`QUIT`, EOF).
    pub closing: bool,
    /// Already in the loop's list of connections to look at.
    pub queued: bool,
    pub slot: ClientSlot,
}

impl LoopConn {
    /// A freshly accepted connection, with the session a new client starts with.
    pub(super) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        slot: ClientSlot,
        node: &Node,
    ) -> LoopConn {
        let session = Session::new(peer, node);
        LoopConn {
            stream,
            peer,
            wire: Wire::new(crate::cmd::limits_for(&session, node)),
            session,
            pending: None,
            spare: Request::default(),
            broken: None,
            can_read: true,
            read_closed: false,
            in_group: false,
            closing: false,
            queued: false,
            slot,
        }
    }

    /// The next request to run: the pending one, else one decoded from the buffer (into the
    /// buffers of the last one [`LoopConn::recycle`] gave back).
    pub(super) fn next_request(&mut self) -> Result<Option<Request>, ProtocolError> {
        if let Some(request) = self.pending.take() {
            return Ok(Some(request));
        }
        let mut request = std::mem::take(&mut self.spare);
        if self.wire.decode_request_into(&mut request)? {
            Ok(Some(request))
        } else {
            self.spare = request;
            Ok(None)
        }
    }

    /// Takes back a request that has run, so the next one is decoded into its buffers.
    pub(super) fn recycle(&mut self, request: Request) {
        self.spare = request;
    }

    /// Reads once without waiting.
    pub(super) fn read_once(&mut self) -> ReadOutcome {
        match self.wire.fill_from(&mut self.stream) {
            Ok((0, _)) => {
                self.can_read = false;
                ReadOutcome::Eof
            }
            Ok((read, room)) => {
                // A read that did not fill the room took all the kernel had; more bytes
                // arriving later raise a new event. Unless the peer has shut down: its EOF
                // is only seen by reading again.
                if read < room && !self.read_closed {
                    self.can_read = false;
                }
                ReadOutcome::Data
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.can_read = false;
                ReadOutcome::Drained
            }
            Err(e) => {
                self.can_read = false;
                ReadOutcome::Failed(e)
            }
        }
    }

    /// Queues a reply, in the protocol the client chose, unless the client turned replies
    /// off (`CLIENT REPLY`).
    pub(super) fn reply(&mut self, frame: &Frame) {
        if self.session.sends_reply() {
            self.wire.queue(frame, self.session.protocol);
        }
    }

    /// Writes queued replies without waiting: `Ok(true)` when none are left.
    pub(super) fn write_out(&mut self) -> io::Result<bool> {
        self.wire.write_to(&mut self.stream)
    }

    /// Whether the connection has work it can do without a new readiness event.
    pub(super) fn has_work(&self) -> bool {
        !self.in_group
            && (self.pending.is_some()
                || self.broken.is_some()
                || self.can_read
                || self.wire.buffered() > 0)
    }
}
