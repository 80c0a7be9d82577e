//! Incremental decoding of client requests: RESP2 multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! and inline lines (`GET k\r\n`), within [`Limits`].
//!
//! The decoder is resumable: it consumes each argument as soon as it is complete and keeps
//! the ones it has, so a large request that arrives in many reads is scanned once, and the
//! caller's buffer only ever holds the argument in flight. "Need more bytes" is `Ok(None)`,
//! never an error; an error means the stream cannot be resynchronised and the connection
//! should get the error reply and be closed (as Redis does).

use crate::inline::split_inline;

/// Longest inline request line: 64 KiB (Redis's `PROTO_INLINE_MAX_SIZE`). A longer line,
/// with or without its newline, gets `-ERR Protocol error: …` and the connection is closed.
pub const MAX_INLINE_BYTES: usize = 64 << 10;

/// Largest bulk argument: 64 MiB, the engine's default largest value. A larger declared
/// length is refused before any of it is read or allocated.
pub const MAX_BULK_BYTES: usize = 64 << 20;

/// Most arguments in one request: 1,048,576 (Redis's limit). The argument vector grows as
/// arguments arrive, so a large declared count allocates nothing up front.
pub const MAX_ARGS: usize = 1 << 20;

/// Most bytes of arguments in one request: 128 MiB, so that many in-limit bulks cannot add
/// up to unbounded memory.
pub const MAX_REQUEST_BYTES: usize = 128 << 20;

/// Longest `*n` / `$n` header line; any valid count fits in 20 digits.
pub(crate) const MAX_HEADER_LINE_BYTES: usize = 32;

/// Protocol limits of a server; each hit gets a `-ERR Protocol error: …` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest inline line in bytes. Default [`MAX_INLINE_BYTES`].
    pub max_inline_bytes: usize,
    /// Largest bulk argument in bytes. Default [`MAX_BULK_BYTES`].
    pub max_bulk_bytes: usize,
    /// Most arguments per request. Default [`MAX_ARGS`].
    pub max_args: usize,
    /// Most argument bytes per request. Default [`MAX_REQUEST_BYTES`].
    pub max_request_bytes: usize,
}

/// Largest bulk a connection may send before it has authenticated: 16 KiB, as Redis allows.
pub const MAX_UNAUTHENTICATED_BULK_BYTES: usize = 16 << 10;

/// Most arguments a request may have before its connection has authenticated: 10, as Redis
/// allows (`HELLO 3 AUTH user pass SETNAME name` takes 7).
pub const MAX_UNAUTHENTICATED_ARGS: usize = 10;

impl Limits {
    /// The limits of a connection that has not authenticated yet on a server with a
    /// password: these, or `self` where it is tighter. Without them anyone who can connect,
    /// password or not, could make the server buffer 128 MiB per connection
    /// (Redis's CVE-2021-32675).
    pub fn before_auth(self) -> Limits {
        Limits {
            max_inline_bytes: self.max_inline_bytes.min(MAX_UNAUTHENTICATED_BULK_BYTES),
            max_bulk_bytes: self.max_bulk_bytes.min(MAX_UNAUTHENTICATED_BULK_BYTES),
            max_args: self.max_args.min(MAX_UNAUTHENTICATED_ARGS),
            max_request_bytes: self
                .max_request_bytes
                .min(MAX_UNAUTHENTICATED_ARGS * MAX_UNAUTHENTICATED_BULK_BYTES),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_inline_bytes: MAX_INLINE_BYTES,
            max_bulk_bytes: MAX_BULK_BYTES,
            max_args: MAX_ARGS,
            max_request_bytes: MAX_REQUEST_BYTES,
        }
    }
}

/// Why bytes from a peer are not valid RESP2 (or exceed a limit). The `Display` text is what
/// follows `-ERR Protocol error: ` in the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A `*n` header that is not a number (or is too long to be one).
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    /// More arguments (or reply elements) than allowed.
    #[error("multibulk length {count} exceeds the limit of {max} arguments")]
    TooManyArgs {
        /// Declared count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A `$n` header that is not a number, is negative, or is too long to be one.
    #[error("invalid bulk length")]
    InvalidBulkLength,
    /// A bulk longer than allowed; refused before reading or allocating it.
    #[error("bulk length {len} exceeds the limit of {max} bytes")]
    BulkTooLarge {
        /// Declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A request whose arguments add up to more bytes than allowed.
    #[error("request exceeds the limit of {max} bytes")]
    RequestTooLarge {
        /// The limit.
        max: usize,
    },
    /// Inside a multibulk request, an element that is not a bulk string (e.g. a nested array).
    #[error("expected '$', got '{}'", char::from(*.0).escape_default())]
    ExpectedBulk(u8),
    /// An inline line longer than allowed.
    #[error("too big inline request (limit {max} bytes)")]
    InlineTooLarge {
        /// The limit.
        max: usize,
    },
    /// An inline line with an unterminated quote.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    /// Bulk data not followed by CRLF.
    #[error("expected CRLF after bulk data")]
    MissingCrlf,
    /// A line ending in a bare CR not followed by LF.
    #[error("expected LF after CR")]
    BareCr,
    /// (Replies) a `:` line that is not an integer.
    #[error("invalid integer")]
    InvalidInteger,
    /// (Replies) a first byte that starts no RESP2 type.
    #[error("unexpected byte '{}' at the start of a frame", char::from(*.0).escape_default())]
    UnexpectedByte(u8),
    /// (Replies) arrays nested deeper than allowed.
    #[error("reply nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
}

/// Finds the CRLF-terminated header line starting at `pos`: `Ok(Some((line, after)))`,
/// `Ok(None)` if incomplete. Header lines are short; a longer one can never be valid.
pub(crate) fn find_line(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    find_line_within(buf, pos, MAX_HEADER_LINE_BYTES)
}

/// Like [`find_line`] for lines of up to `max` bytes (status and error replies).
pub(crate) fn find_line_within(
    buf: &[u8],
    pos: usize,
    max: usize,
) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    // Only the first `max + 1` bytes decide (a CR there, or none and the line is too long),
    // so the outcome never depends on how the bytes were split across reads.
    let rest = buf.get(pos..).unwrap_or_default();
    let window = &rest[..rest.len().min(max + 1)];
    match window.iter().position(|&b| b == b'\r') {
        Some(cr) => match rest.get(cr + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((&rest[..cr], pos + cr + 2))),
            Some(_) => Err(ProtocolError::BareCr),
        },
        None if window.len() > max => Err(ProtocolError::InvalidMultibulkLength),
        None => Ok(None),
    }
}

/// Parses a strict decimal `i64` as Redis's `string2ll` does: optional `-`, digits only, no
/// spaces, `+` or leading zeros (`0` alone, but not `-0`, `03` or `-03`).
pub(crate) fn parse_int(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    if digits[0] == b'0' && (digits.len() > 1 || negative) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        // Accumulate with the final sign so that i64::MIN parses.
        let digit = i64::from(d - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

pub use crate::request::Request;

/// A resumable request decoder for one connection.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    limits: Limits,
    /// The arguments of the request being decoded, as they arrive.
    current: Request,
    /// Arguments of `current` still to come; 0 between requests.
    remaining: usize,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestDecoder {
            limits,
            current: Request::default(),
            remaining: 0,
        }
    }

    /// Enforces `limits` from the next request on (a connection that authenticated gets the
    /// server's full limits instead of [`Limits::before_auth`]).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Decodes from `buf`, adding the bytes it used up to `*consumed` (the caller drops them):
    /// `Ok(Some(request))` for a whole request, `Ok(None)` when more bytes are needed (partial
    /// state is kept), `Err` when the stream is invalid. Empty requests (`*0`, blank lines)
    /// are skipped as Redis does.
    pub fn decode(
        &mut self,
        buf: &[u8],
        consumed: &mut usize,
    ) -> Result<Option<Request>, ProtocolError> {
        let mut request = Request::default();
        let whole = self.decode_into(buf, consumed, &mut request)?;
        Ok(whole.then_some(request))
    }

    /// Like [`RequestDecoder::decode`], but a whole request replaces `request`'s contents
    /// (`Ok(true)`) and the decoder keeps `request`'s old buffers for the next one, so a
    /// caller that passes the same request each time allocates nothing once they are large
    /// enough. `request` is left as it was when no whole request is there.
    pub fn decode_into(
        &mut self,
        buf: &[u8],
        consumed: &mut usize,
        request: &mut Request,
    ) -> Result<bool, ProtocolError> {
        let mut pos = 0;
        let result = self.decode_inner(buf, &mut pos);
        *consumed += pos;
        let whole = result?;
        if whole {
            std::mem::swap(request, &mut self.current);
            self.current.clear();
        }
        Ok(whole)
    }

    /// Whether a request has been started but not finished.
    pub fn is_mid_request(&self) -> bool {
        self.remaining > 0
    }

    /// Decodes into `self.current`: whether it now holds a whole request.
    fn decode_inner(&mut self, buf: &[u8], pos: &mut usize) -> Result<bool, ProtocolError> {
        loop {
            if self.remaining == 0 {
                let Some(&first) = buf.get(*pos) else {
                    return Ok(false);
                };
                if first != b'*' {
                    match self.decode_inline(&buf[*pos..])? {
                        None => return Ok(false),
                        Some((args, used)) => {
                            *pos += used;
                            if args.is_empty() {
                                continue;
                            }
                            self.current.reserve_args(args.len());
                            for arg in &args {
                                self.current.push(arg);
                            }
                            return Ok(true);
                        }
                    }
                }
                let Some((line, next)) = find_line(buf, *pos + 1)? else {
                    return Ok(false);
                };
                let count = parse_int(line).ok_or(ProtocolError::InvalidMultibulkLength)?;
                *pos = next;
                if count <= 0 {
                    continue;
                }
                let count = count as usize;
                if count > self.limits.max_args {
                    return Err(ProtocolError::TooManyArgs {
                        count,
                        max: self.limits.max_args,
                    });
                }
                self.remaining = count;
                self.current.reserve_args(count.min(16));
            }
            while self.remaining > 0 {
                let Some(&first) = buf.get(*pos) else {
                    return Ok(false);
                };
                if first != b'$' {
                    return Err(ProtocolError::ExpectedBulk(first));
                }
                let Some((line, next)) =
                    find_line(buf, *pos + 1).map_err(|_| ProtocolError::InvalidBulkLength)?
                else {
                    return Ok(false);
                };
                let len = parse_int(line)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or(ProtocolError::InvalidBulkLength)?;
                if len > self.limits.max_bulk_bytes {
                    return Err(ProtocolError::BulkTooLarge {
                        len,
                        max: self.limits.max_bulk_bytes,
                    });
                }
                if self.current.arg_bytes() + len > self.limits.max_request_bytes {
                    return Err(ProtocolError::RequestTooLarge {
                        max: self.limits.max_request_bytes,
                    });
                }
                let end = next + len;
                if buf.len() < end + 2 {
                    return Ok(false);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(ProtocolError::MissingCrlf);
                }
                self.current.push(&buf[next..end]);
                self.remaining -= 1;
                *pos = end + 2;
            }
            return Ok(true);
        }
    }

    /// An inline line: `Ok(Some((args, used)))`, `Ok(None)` without its newline yet.
    fn decode_inline(&self, buf: &[u8]) -> Result<Option<(Vec<Vec<u8>>, usize)>, ProtocolError> {
        // A line of `max` bytes plus CRLF fits in `max + 2`; only those bytes decide, so the
        // outcome never depends on how the bytes were split across reads.
        let max = self.limits.max_inline_bytes;
        let window = &buf[..buf.len().min(max + 2)];
        let Some(newline) = window.iter().position(|&b| b == b'\n') else {
            if window.len() >= max + 2 {
                return Err(ProtocolError::InlineTooLarge { max });
            }
            return Ok(None);
        };
        let line = match &buf[..newline] {
            [head @ .., b'\r'] => head,
            line => line,
        };
        if line.len() > max {
            return Err(ProtocolError::InlineTooLarge { max });
        }
        let args = split_inline(line)?;
        if args.len() > self.limits.max_args {
            return Err(ProtocolError::TooManyArgs {
                count: args.len(),
                max: self.limits.max_args,
            });
        }
        Ok(Some((args, newline + 1)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut decoder = RequestDecoder::default();
        let mut used = 0;
        let mut out = Vec::new();
        while let Some(req) = decoder.decode(&bytes[used..], &mut used)? {
            out.push(req.to_vecs());
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline_requests_decode() {
        let reqs =
            decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPUT a \"b c\"\r\n\r\n*0\r\nPING\n").unwrap();
        assert_eq!(
            reqs,
            vec![
                vec![b"GET".to_vec(), b"k".to_vec()],
                vec![b"PUT".to_vec(), b"a".to_vec(), b"b c".to_vec()],
                vec![b"PING".to_vec()],
            ]
        );
    }

    #[test]
    fn byte_by_byte_feeding_gives_the_same_requests() {
        let bytes = b"*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$5\r\nv\r\n\0x\r\nGET k1\r\n";
        let mut decoder = RequestDecoder::default();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for &b in bytes {
            buf.push(b);
            let mut used = 0;
            while let Some(req) = decoder.decode(&buf[used..], &mut used).unwrap() {
                out.push(req.to_vecs());
            }
            buf.drain(..used);
        }
        assert_eq!(out, decode_all(bytes).unwrap());
        assert_eq!(out[0][2], b"v\r\n\0x".to_vec());
    }

    #[test]
    fn limits_are_enforced_before_allocating() {
        assert_eq!(
            decode_all(b"*1\r\n$1073741824\r\n"),
            Err(ProtocolError::BulkTooLarge {
                len: 1 << 30,
                max: MAX_BULK_BYTES
            })
        );
        assert_eq!(
            decode_all(b"*1\r\n$-5\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            decode_all(b"*99999999\r\n"),
            Err(ProtocolError::TooManyArgs {
                count: 99_999_999,
                max: MAX_ARGS
            })
        );
        assert_eq!(
            decode_all(b"*1\r\n*1\r\n"),
            Err(ProtocolError::ExpectedBulk(b'*'))
        );
        assert_eq!(
            decode_all(&vec![b'a'; MAX_INLINE_BYTES + 10]),
            Err(ProtocolError::InlineTooLarge {
                max: MAX_INLINE_BYTES
            })
        );
        assert_eq!(
            decode_all(b"*1\r\n$3\r\nabcde"),
            Err(ProtocolError::MissingCrlf)
        );
    }

    /// Found by the fuzzer: a long header line with a bare CR past the limit used to give a
    /// different error when it arrived in pieces.
    #[test]
    fn long_lines_fail_the_same_however_they_are_split() {
        let mut header = b"*".to_vec();
        header.extend(vec![b'1'; 40]);
        header.extend(b"\rx");
        let mut inline = vec![b'a'; MAX_INLINE_BYTES];
        inline.extend(b"\r\n");
        for bytes in [header, inline] {
            let whole = decode_all(&bytes);
            let mut decoder = RequestDecoder::default();
            let mut buf = Vec::new();
            let mut split = Ok(Vec::new());
            for chunk in bytes.chunks(7) {
                buf.extend_from_slice(chunk);
                let mut used = 0;
                match decoder.decode(&buf, &mut used) {
                    Ok(Some(req)) => split.as_mut().map(|v| v.push(req.to_vecs())).unwrap_or(()),
                    Ok(None) => {}
                    Err(e) => {
                        split = Err(e);
                        break;
                    }
                }
                buf.drain(..used);
            }
            assert_eq!(whole, split);
        }
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"+1"), None);
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b"99999999999999999999"), None);
        // As Redis's string2ll: no leading zeros, no negative zero.
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"10"), Some(10));
        assert_eq!(parse_int(b"03"), None);
        assert_eq!(parse_int(b"-0"), None);
        assert_eq!(parse_int(b"-03"), None);
        assert_eq!(parse_int(b"00"), None);
    }
}
