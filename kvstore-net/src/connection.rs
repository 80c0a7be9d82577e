//! [`Connection`]: a blocking socket with its [`Wire`] buffers. Buffered reads feed the
//! request decoder (server side) or the frame decoder (client side); replies are queued in a
//! write buffer and flushed once no complete request is left, so a pipeline of requests gets
//! its replies in as few `write` calls as possible. The event loop runs connections without
//! it (non-blocking) and builds one from a connection's buffers when it hands that connection
//! to a thread of its own.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::frame::{Frame, Protocol};
use crate::parse::{Limits, ProtocolError, Request};
use crate::wire::{Wire, FLUSH_THRESHOLD_BYTES};

/// What reading produced.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed.
    Io(io::Error),
    /// The bytes are not valid RESP2 (the peer should get the error, then be disconnected).
    Protocol(ProtocolError),
}

/// A buffered RESP2 connection over a blocking `TcpStream`.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    wire: Wire,
}

impl Connection {
    /// Wraps an accepted or connected stream; `limits` bound what requests may declare.
    pub fn new(stream: TcpStream, limits: Limits) -> io::Result<Connection> {
        let peer = stream.peer_addr()?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            peer,
            wire: Wire::new(limits),
        })
    }

    /// A connection over `stream` (blocking) that goes on with the buffers `wire` holds.
    pub(crate) fn from_parts(stream: TcpStream, peer: SocketAddr, wire: Wire) -> Connection {
        Connection { stream, peer, wire }
    }

    /// Connects to `addr` within `timeout`.
    pub fn connect(addr: &SocketAddr, timeout: Duration) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(addr, timeout)?;
        Connection::new(stream, Limits::default())
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Bounds blocking reads (`None`: wait forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// Bounds blocking writes (`None`: wait forever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_write_timeout(timeout)
    }

    /// A second handle on the socket, so another thread can shut it down.
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }

    /// Closes both directions of the socket.
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Bytes read and written so far.
    pub fn traffic(&self) -> (u64, u64) {
        self.wire.traffic()
    }

    /// Decodes a request already in the buffer, without touching the socket.
    pub fn buffered_request(&mut self) -> Result<Option<Request>, ProtocolError> {
        self.wire.decode_request()
    }

    /// Like [`Connection::buffered_request`], into `request`'s buffers (see
    /// [`crate::RequestDecoder::decode_into`]): whether there was a whole request.
    pub(crate) fn buffered_request_into(
        &mut self,
        request: &mut Request,
    ) -> Result<bool, ProtocolError> {
        self.wire.decode_request_into(request)
    }

    /// The next request: from the buffer if one is there, else reading (and first flushing
    /// queued replies). `Ok(None)` when the peer closed the connection between requests.
    pub fn read_request(&mut self) -> Result<Option<Request>, ReadError> {
        loop {
            if let Some(request) = self.buffered_request().map_err(ReadError::Protocol)? {
                return Ok(Some(request));
            }
            self.flush().map_err(ReadError::Io)?;
            if self.fill().map_err(ReadError::Io)? == 0 {
                return if self.wire.is_mid_message() {
                    Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()))
                } else {
                    Ok(None)
                };
            }
        }
    }

    /// Like [`read_frame`](Self::read_frame), but gives up with `TimedOut` once `limit` has
    /// passed since the call, however slowly the bytes keep coming (a socket read timeout
    /// bounds each read only). The bytes read so far stay buffered for the next call.
    /// The socket's read timeout is as the caller set it again when this returns.
    pub fn read_frame_within(&mut self, limit: Duration) -> Result<Option<Frame>, ReadError> {
        let callers = self.stream.read_timeout().map_err(ReadError::Io)?;
        let read = self.read_frame_until(Some(Instant::now() + limit));
        let restored = self.stream.set_read_timeout(callers).map_err(ReadError::Io);
        let frame = read?;
        restored?;
        Ok(frame)
    }

    /// The next reply frame (client side). `Ok(None)` when the peer closed cleanly.
    pub fn read_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        self.read_frame_until(None)
    }

    fn read_frame_until(&mut self, deadline: Option<Instant>) -> Result<Option<Frame>, ReadError> {
        loop {
            if let Some(frame) = self.wire.decode_frame().map_err(ReadError::Protocol)? {
                return Ok(Some(frame));
            }
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ReadError::Io(io::ErrorKind::TimedOut.into()));
                }
                self.stream
                    .set_read_timeout(Some(left))
                    .map_err(ReadError::Io)?;
            }
            if self.fill().map_err(ReadError::Io)? == 0 {
                return if self.wire.buffered() > 0 {
                    Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()))
                } else {
                    Ok(None)
                };
            }
        }
    }

    /// Reads what has already arrived on the socket into the buffer without waiting, while
    /// fewer than `max_buffered` bytes are buffered; returns the bytes read (0 when nothing
    /// was waiting, at EOF, or with enough buffered). Lets a caller that batches work (a
    /// replica applying a window of records) take everything the peer has sent so far,
    /// not just what the last blocking read happened to return.
    pub fn read_available(&mut self, max_buffered: usize) -> io::Result<usize> {
        if self.wire.buffered() >= max_buffered {
            return Ok(0);
        }
        self.stream.set_nonblocking(true)?;
        let read = self.fill();
        self.stream.set_nonblocking(false)?;
        match read {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            other => other,
        }
    }

    /// Reads once from the socket into the buffer; returns the bytes read (0 at EOF).
    fn fill(&mut self) -> io::Result<usize> {
        self.wire
            .fill_from(&mut self.stream)
            .map(|(read, _room)| read)
    }

    /// Ends a connection after a protocol error: writes what is queued (the error reply),
    /// sends FIN, and discards what the peer is still sending for a moment (bounded in time
    /// and bytes), so that closing does not reset the connection before the peer has read
    /// the reply.
    pub fn close_after_error(&mut self) {
        const DRAIN_BYTES: usize = 4 << 20;
        const DRAIN_TIME: Duration = Duration::from_millis(200);
        let _ = self.flush();
        let _ = self.stream.shutdown(Shutdown::Write);
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(20)));
        let deadline = std::time::Instant::now() + DRAIN_TIME;
        let mut scratch = [0u8; 16 << 10];
        let mut drained = 0;
        while drained < DRAIN_BYTES && std::time::Instant::now() < deadline {
            match self.stream.read(&mut scratch) {
                Ok(0) => break,
                Ok(n) => drained += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    continue
                }
                Err(_) => break,
            }
        }
        self.shutdown();
    }

    /// Bounds the requests read from now on by `limits`.
    pub fn set_limits(&mut self, limits: Limits) {
        self.wire.set_limits(limits);
    }

    /// Queues a frame, in RESP2, for the next flush.
    pub fn queue(&mut self, frame: &Frame) {
        self.wire.queue(frame, Protocol::Resp2);
    }

    /// Queues a reply encoded in `protocol` (what its client chose with `HELLO`) for the
    /// next flush.
    pub fn queue_as(&mut self, frame: &Frame, protocol: Protocol) {
        self.wire.queue(frame, protocol);
    }

    /// Queues a request (an array of bulk strings) for the next flush.
    pub fn queue_request<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.wire.queue_request(args);
    }

    /// Queues a request whose last argument is `last_parts` joined (see
    /// `Wire::queue_request_joined`).
    pub(crate) fn queue_request_joined(&mut self, head: &[&[u8]], last_parts: &[&[u8]]) {
        self.wire.queue_request_joined(head, last_parts);
    }

    /// Whether queued output has grown enough that it should be written before going on.
    pub fn should_flush(&self) -> bool {
        self.wire.pending_output() >= FLUSH_THRESHOLD_BYTES
    }

    /// Writes every queued byte.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.wire.write_to(&mut self.stream)? {
            Ok(())
        } else {
            // Only a socket with a write timeout gets here, and only once the timeout passed.
            Err(io::ErrorKind::TimedOut.into())
        }
    }
}
