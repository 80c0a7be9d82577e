//! [`Wire`]: one connection's buffers, without the socket. Bytes read are kept until a whole
//! request (server side) or reply (client side) can be decoded from them; replies are queued
//! in an output buffer until they are written. The socket is passed in by the caller, so the
//! same buffers serve a blocking [`crate::Connection`] and a non-blocking connection of the
//! event loop, and move from one to the other when the loop hands a connection to a thread.

use std::io::{self, Read, Write};

use crate::frame::{write_array_header, write_bulk, write_decimal, Frame, Protocol};
use crate::parse::{Limits, ProtocolError, Request, RequestDecoder};

/// Read buffer growth step and initial size.
const READ_CHUNK_BYTES: usize = 16 << 10;
/// An idle buffer larger than this is released (after a large request or reply).
const KEEP_BUFFER_BYTES: usize = 1 << 20;
/// Pending replies beyond this are written out before more requests are run, so a long
/// pipeline (or a client that does not read) cannot grow the output buffer without bound.
pub(crate) const FLUSH_THRESHOLD_BYTES: usize = 256 << 10;

/// The read and write buffers of one connection and its request decoder.
#[derive(Debug)]
pub(crate) struct Wire {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    /// Bytes of `out` already written (a non-blocking write may stop part-way).
    out_start: usize,
    decoder: RequestDecoder,
    bytes_read: u64,
    bytes_written: u64,
}

impl Wire {
    /// Empty buffers; `limits` bound what requests may declare.
    pub(crate) fn new(limits: Limits) -> Wire {
        Wire {
            buf: vec![0; READ_CHUNK_BYTES],
            start: 0,
            end: 0,
            out: Vec::with_capacity(READ_CHUNK_BYTES),
            out_start: 0,
            decoder: RequestDecoder::new(limits),
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// Bounds requests by `limits` from the next one on.
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.decoder.set_limits(limits);
    }

    /// Decodes a request already in the buffer.
    pub(crate) fn decode_request(&mut self) -> Result<Option<Request>, ProtocolError> {
        let mut request = Request::default();
        let whole = self.decode_request_into(&mut request)?;
        Ok(whole.then_some(request))
    }

    /// Decodes a request already in the buffer into `request`, reusing its buffers (see
    /// [`RequestDecoder::decode_into`]): whether there was a whole one.
    pub(crate) fn decode_request_into(
        &mut self,
        request: &mut Request,
    ) -> Result<bool, ProtocolError> {
        let mut used = 0;
        let result = self
            .decoder
            .decode_into(&self.buf[self.start..self.end], &mut used, request);
        self.start += used;
        result
    }

    /// Decodes a reply frame already in the buffer (client side).
    pub(crate) fn decode_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let decoded = Frame::decode(&self.buf[self.start..self.end])?;
        Ok(decoded.map(|(frame, used)| {
            self.start += used;
            frame
        }))
    }

    /// Whether bytes of an unfinished request or reply are buffered (EOF now would cut it).
    pub(crate) fn is_mid_message(&self) -> bool {
        self.decoder.is_mid_request() || self.start < self.end
    }

    /// Bytes read but not yet decoded.
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Reads once from `source` into the buffer; returns the bytes read (0 at EOF). Returns
    /// what `source` returns otherwise (`WouldBlock` from a non-blocking socket included).
    /// Also returns how much room the read had, so a non-blocking caller can tell a read that
    /// drained the socket (fewer bytes than room) from one that may have left more.
    pub(crate) fn fill_from(&mut self, source: &mut impl Read) -> io::Result<(usize, usize)> {
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
        let room = self.buf.len() - self.end;
        loop {
            match source.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok((n, room));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues a reply, encoded in the `protocol` its client chose, for the next write.
    pub(crate) fn queue(&mut self, frame: &Frame, protocol: Protocol) {
        frame.write_as(&mut self.out, protocol);
    }

    /// Queues a request (an array of bulk strings) for the next write.
    pub(crate) fn queue_request<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        write_array_header(&mut self.out, args.len());
        for arg in args {
            write_bulk(&mut self.out, arg.as_ref());
        }
    }

    /// Queues a request whose last argument is `last_parts` joined, without joining them
    /// first: `REPLICATE LOG` sends a window's records as one argument this way.
    pub(crate) fn queue_request_joined(&mut self, head: &[&[u8]], last_parts: &[&[u8]]) {
        write_array_header(&mut self.out, head.len() + 1);
        for arg in head {
            write_bulk(&mut self.out, arg);
        }
        let len: usize = last_parts.iter().map(|part| part.len()).sum();
        self.out.reserve(len + 16);
        self.out.push(b'$');
        write_decimal(&mut self.out, len as i64);
        self.out.extend_from_slice(b"\r\n");
        for part in last_parts {
            self.out.extend_from_slice(part);
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// Bytes queued and not yet written.
    pub(crate) fn pending_output(&self) -> usize {
        self.out.len() - self.out_start
    }

    /// Writes queued bytes to `sink` until all are written or it refuses more: `Ok(true)` when
    /// nothing is left, `Ok(false)` when a non-blocking `sink` would block (the rest stays
    /// queued, in order).
    pub(crate) fn write_to(&mut self, sink: &mut impl Write) -> io::Result<bool> {
        while self.out_start < self.out.len() {
            match sink.write(&self.out[self.out_start..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_start += n;
                    self.bytes_written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_start = 0;
        if self.out.capacity() > KEEP_BUFFER_BYTES {
            self.out = Vec::with_capacity(READ_CHUNK_BYTES);
        }
        Ok(true)
    }

    /// Bytes read and written so far.
    pub(crate) fn traffic(&self) -> (u64, u64) {
        (self.bytes_read, self.bytes_written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that takes at most `accept` bytes per call, then would block after `calls`.
    struct Trickle {
        taken: Vec<u8>,
        accept: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls -= 1;
            let n = buf.len().min(self.accept);
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_partial_write_keeps_the_rest_in_order() {
        let mut wire = Wire::new(Limits::default());
        wire.queue(&Frame::Bulk(b"hello".to_vec()), Protocol::Resp2);
        wire.queue(&Frame::Integer(42), Protocol::Resp2);
        let mut sink = Trickle {
            taken: Vec::new(),
            accept: 4,
            calls: 2,
        };
        assert!(!wire.write_to(&mut sink).unwrap());
        assert_eq!(wire.pending_output(), 16 - 8);
        sink.calls = 10;
        assert!(wire.write_to(&mut sink).unwrap());
        assert_eq!(sink.taken, b"$5\r\nhello\r\n:42\r\n");
        assert_eq!(wire.pending_output(), 0);
        assert_eq!(wire.traffic().1, 16);
    }

    #[test]
    fn requests_split_across_reads_are_decoded_once_whole() {
        let mut wire = Wire::new(Limits::default());
        let mut first: &[u8] = b"*2\r\n$3\r\nGET\r\n$1";
        wire.fill_from(&mut first).unwrap();
        assert_eq!(wire.decode_request().unwrap(), None);
        assert!(wire.is_mid_message());
        let mut rest: &[u8] = b"\r\nk\r\nPING\r\n";
        wire.fill_from(&mut rest).unwrap();
        assert_eq!(
            wire.decode_request().unwrap(),
            Some(Request::from_args(["GET", "k"]))
        );
        assert_eq!(
            wire.decode_request().unwrap(),
            Some(Request::from_args(["PING"]))
        );
        assert!(!wire.is_mid_message());
    }
}
