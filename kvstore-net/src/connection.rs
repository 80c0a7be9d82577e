//! [`Connection`]: the only code that touches a socket. Buffered reads feed the request
//! decoder (server side) or the frame decoder (client side); replies are queued in a write
//! buffer and flushed once no complete request is left, so a pipeline of requests gets its
//! replies in as few `write` calls as possible.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use crate::frame::{write_array_header, write_bulk, Frame};
use crate::parse::{Limits, ProtocolError, Request, RequestDecoder};

/// Read buffer growth step and initial size.
const READ_CHUNK_BYTES: usize = 16 << 10;
/// An idle read buffer larger than this is released (after a large request).
const KEEP_BUFFER_BYTES: usize = 1 << 20;
/// Pending replies beyond this are written out before more requests are run, so a long
/// pipeline cannot grow the write buffer without bound.
const FLUSH_THRESHOLD_BYTES: usize = 256 << 10;

/// What reading produced.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed.
    Io(io::Error),
    /// The bytes are not valid RESP2 (the peer should get the error, then be disconnected).
    Protocol(ProtocolError),
}

/// A buffered RESP2 connection over a `TcpStream`.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    decoder: RequestDecoder,
    bytes_read: u64,
    bytes_written: u64,
}

impl Connection {
    /// Wraps an accepted or connected stream; `limits` bound what requests may declare.
    pub fn new(stream: TcpStream, limits: Limits) -> io::Result<Connection> {
        let peer = stream.peer_addr()?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            peer,
            buf: vec![0; READ_CHUNK_BYTES],
            start: 0,
            end: 0,
            out: Vec::with_capacity(READ_CHUNK_BYTES),
            decoder: RequestDecoder::new(limits),
            bytes_read: 0,
            bytes_written: 0,
        })
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
        (self.bytes_read, self.bytes_written)
    }

    /// Decodes a request already in the buffer, without touching the socket.
    pub fn buffered_request(&mut self) -> Result<Option<Request>, ProtocolError> {
        let mut used = 0;
        let result = self
            .decoder
            .decode(&self.buf[self.start..self.end], &mut used);
        self.start += used;
        result
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
                let mid = self.decoder.is_mid_request() || self.start < self.end;
                return if mid {
                    Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()))
                } else {
                    Ok(None)
                };
            }
        }
    }

    /// The next reply frame (client side). `Ok(None)` when the peer closed cleanly.
    pub fn read_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            if let Some((frame, used)) =
                Frame::decode(&self.buf[self.start..self.end]).map_err(ReadError::Protocol)?
            {
                self.start += used;
                return Ok(Some(frame));
            }
            if self.fill().map_err(ReadError::Io)? == 0 {
                return if self.start < self.end {
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
        if self.end - self.start >= max_buffered {
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
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP_BUFFER_BYTES {
                self.buf = vec![0; READ_CHUNK_BYTES];
            }
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let grown = (self.buf.len() * 2).max(READ_CHUNK_BYTES);
                self.buf.resize(grown, 0);
            }
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
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

    /// Queues a frame for the next flush.
    pub fn queue(&mut self, frame: &Frame) {
        frame.write_to(&mut self.out);
    }

    /// Queues a request (an array of bulk strings) for the next flush.
    pub fn queue_request<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        write_array_header(&mut self.out, args.len());
        for arg in args {
            write_bulk(&mut self.out, arg.as_ref());
        }
    }

    /// Whether queued output has grown enough that it should be written before going on.
    pub fn should_flush(&self) -> bool {
        self.out.len() >= FLUSH_THRESHOLD_BYTES
    }

    /// Writes every queued byte.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.out)?;
        self.bytes_written += self.out.len() as u64;
        self.out.clear();
        if self.out.capacity() > KEEP_BUFFER_BYTES {
            self.out = Vec::with_capacity(READ_CHUNK_BYTES);
        }
        Ok(())
    }
}
