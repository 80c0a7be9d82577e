//! RESP frames: what a reply is made of, how it is written to the wire in either protocol
//! version a client chose ([`Protocol`]: RESP2 unless it said `HELLO 3`), and how a client
//! reads one back.
//!
//! Requests are always arrays of bulk strings (or inline lines), so the server decodes them
//! with the specialised, resumable [`crate::parse::RequestDecoder`]; this module's
//! [`Frame::decode`] handles the general, nested reply grammar a client reads.

use std::borrow::Cow;
use std::fmt;

use crate::parse::{
    find_line_within, parse_int, ProtocolError, MAX_HEADER_LINE_BYTES, MAX_INLINE_BYTES,
};

/// Deepest reply nesting a client accepts; our server never nests beyond 3 levels.
pub const MAX_REPLY_DEPTH: usize = 32;

/// Largest reply bulk a client accepts: 512 MiB (Redis's own `proto-max-bulk-len`).
pub const MAX_REPLY_BULK_BYTES: usize = 512 << 20;

/// Most elements of one reply array a client accepts.
pub const MAX_REPLY_ARRAY_LEN: usize = 16 << 20;

/// The reply encoding a connection asked for with `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, every connection's start: nulls are `$-1`/`*-1`, maps flat arrays.
    #[default]
    Resp2,
    /// RESP3 (`HELLO 3`): nulls are `_`, maps `%`, sets `~`, `INFO` a verbatim string.
    Resp3,
}

impl Protocol {
    /// The version number `HELLO` names it by.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One RESP value. The RESP3 kinds (`Map`, `Set`, `Verbatim`) are written as their RESP2
/// counterparts (a flat array, an array, a bulk string) to a RESP2 connection, as Redis does.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+text\r\n`: a status reply such as `OK` or `PONG`. Must not contain CR or LF.
    /// Borrowed when constant, so the commonest replies cost no allocation.
    Simple(Cow<'static, str>),
    /// `-CODE message\r\n`: an error reply. Must not contain CR or LF.
    Error(String),
    /// `:n\r\n`.
    Integer(i64),
    /// `$len\r\nbytes\r\n`: binary-safe bytes.
    Bulk(Vec<u8>),
    /// `$-1\r\n`: the null bulk string (a missing key).
    Null,
    /// `*-1\r\n`: the null array.
    NullArray,
    /// `*n\r\n` followed by `n` frames.
    Array(Vec<Frame>),
    /// `%n\r\n` followed by `n` key and value frames (RESP3); to RESP2, an array of `2n`.
    Map(Vec<(Frame, Frame)>),
    /// `~n\r\n` followed by `n` frames (RESP3); to RESP2, an array.
    Set(Vec<Frame>),
    /// `=len\r\ntxt:text\r\n`: text meant to be shown as it is, such as `INFO`'s (RESP3);
    /// to RESP2, a bulk string of the text.
    Verbatim(Vec<u8>),
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple(Cow::Borrowed("OK"))
    }

    /// An error reply; `text` starts with the code, e.g. `ERR syntax error`. CR and LF are
    /// replaced by spaces so the reply cannot break the framing.
    pub fn error(text: impl Into<String>) -> Frame {
        let text: String = text.into();
        Frame::Error(text.replace(['\r', '\n'], " "))
    }

    /// A bulk string from anything byte-like.
    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Frame {
        Frame::Bulk(bytes.into())
    }

    /// Appends the RESP2 encoding of this frame to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_as(out, Protocol::Resp2);
    }

    /// Appends the encoding of this frame in `protocol` to `out`.
    pub fn write_as(&self, out: &mut Vec<u8>, protocol: Protocol) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Frame::Simple(s) => {
                out.push(b'+');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Frame::Error(s) => {
                out.push(b'-');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Frame::Integer(n) => {
                out.push(b':');
                write_decimal(out, *n);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Bulk(b) => write_bulk(out, b),
            Frame::Null | Frame::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Frame::Null => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => {
                write_array_header(out, items.len());
                for item in items {
                    item.write_as(out, protocol);
                }
            }
            Frame::Map(pairs) => {
                if resp3 {
                    write_header(out, b'%', pairs.len());
                } else {
                    write_array_header(out, 2 * pairs.len());
                }
                for (key, value) in pairs {
                    key.write_as(out, protocol);
                    value.write_as(out, protocol);
                }
            }
            Frame::Set(items) => {
                write_header(out, if resp3 { b'~' } else { b'*' }, items.len());
                for item in items {
                    item.write_as(out, protocol);
                }
            }
            Frame::Verbatim(text) if resp3 => {
                write_header(out, b'=', VERBATIM_FORMAT.len() + text.len());
                out.extend_from_slice(VERBATIM_FORMAT);
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Verbatim(text) => write_bulk(out, text),
        }
    }

    /// The wire encoding of this frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Decodes one frame from the start of `buf`: `Ok(None)` when more bytes are needed,
    /// `Ok(Some((frame, consumed)))` when a whole frame is there, `Err` when the bytes can
    /// never become a valid frame (or exceed [`MAX_REPLY_BULK_BYTES`], [`MAX_REPLY_DEPTH`],
    /// [`MAX_REPLY_ARRAY_LEN`]).
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, ProtocolError> {
        decode_at(buf, 0, 0)
    }
}

/// Appends a bulk string's encoding.
pub(crate) fn write_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    write_decimal(out, bytes.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// The format a verbatim string's text is in, with the colon that ends it: plain text.
const VERBATIM_FORMAT: &[u8; 4] = b"txt:";

/// Appends `*n\r\n`.
pub(crate) fn write_array_header(out: &mut Vec<u8>, len: usize) {
    write_header(out, b'*', len);
}

/// Appends `<tag>n\r\n`: the header of an aggregate or a length-prefixed string.
fn write_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    write_decimal(out, len as i64);
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal form of `n` without allocating.
pub(crate) fn write_decimal(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut v = n.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn decode_at(
    buf: &[u8],
    pos: usize,
    depth: usize,
) -> Result<Option<(Frame, usize)>, ProtocolError> {
    if depth > MAX_REPLY_DEPTH {
        return Err(ProtocolError::TooDeep {
            max: MAX_REPLY_DEPTH,
        });
    }
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    let max_line = if matches!(tag, b'+' | b'-') {
        MAX_INLINE_BYTES
    } else {
        MAX_HEADER_LINE_BYTES
    };
    let Some((line, next)) = find_line_within(buf, pos + 1, max_line)? else {
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(line).into_owned();
    match tag {
        b'+' => Ok(Some((Frame::Simple(text().into()), next))),
        b'-' => Ok(Some((Frame::Error(text()), next))),
        b':' => {
            let n = parse_int(line).ok_or(ProtocolError::InvalidInteger)?;
            Ok(Some((Frame::Integer(n), next)))
        }
        b'_' if line.is_empty() => Ok(Some((Frame::Null, next))),
        b'$' | b'=' => {
            let len = parse_int(line).ok_or(ProtocolError::InvalidBulkLength)?;
            if len == -1 && tag == b'$' {
                return Ok(Some((Frame::Null, next)));
            }
            let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
            if len > MAX_REPLY_BULK_BYTES {
                return Err(ProtocolError::BulkTooLarge {
                    len,
                    max: MAX_REPLY_BULK_BYTES,
                });
            }
            let end = next + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::MissingCrlf);
            }
            let bytes = &buf[next..end];
            let frame = if tag == b'$' {
                Frame::Bulk(bytes.to_vec())
            } else {
                // `xxx:` names the text's format; what follows is the text.
                match bytes.get(3) {
                    Some(b':') => Frame::Verbatim(bytes[4..].to_vec()),
                    _ => return Err(ProtocolError::InvalidBulkLength),
                }
            };
            Ok(Some((frame, end + 2)))
        }
        b'*' | b'~' | b'%' => {
            let len = parse_int(line).ok_or(ProtocolError::InvalidMultibulkLength)?;
            if len == -1 && tag == b'*' {
                return Ok(Some((Frame::NullArray, next)));
            }
            let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
            // A map's length counts pairs.
            let frames = if tag == b'%' {
                len.saturating_mul(2)
            } else {
                len
            };
            if frames > MAX_REPLY_ARRAY_LEN {
                return Err(ProtocolError::TooManyArgs {
                    count: frames,
                    max: MAX_REPLY_ARRAY_LEN,
                });
            }
            let mut items = Vec::with_capacity(frames.min(1024));
            let mut at = next;
            for _ in 0..frames {
                match decode_at(buf, at, depth + 1)? {
                    Some((item, after)) => {
                        items.push(item);
                        at = after;
                    }
                    None => return Ok(None),
                }
            }
            let frame = match tag {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                _ => {
                    let mut items = items.into_iter();
                    Frame::Map(
                        std::iter::from_fn(|| Some((items.next()?, items.next()?))).collect(),
                    )
                }
            };
            Ok(Some((frame, at)))
        }
        other => Err(ProtocolError::UnexpectedByte(other)),
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Renders a frame the way `redis-cli` would, for logs and error messages.
impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Simple(s) => write!(f, "{s}"),
            Frame::Error(s) => write!(f, "(error) {s}"),
            Frame::Integer(n) => write!(f, "(integer) {n}"),
            Frame::Bulk(b) => write!(f, "\"{}\"", b.escape_ascii()),
            Frame::Null | Frame::NullArray => write!(f, "(nil)"),
            Frame::Verbatim(text) => write!(f, "\"{}\"", text.escape_ascii()),
            Frame::Array(items) | Frame::Set(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
            Frame::Map(pairs) => {
                write!(f, "{{")?;
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{key}: {value}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_kind_round_trips() {
        let frame = Frame::Array(vec![
            Frame::ok(),
            Frame::error("ERR bad\r\nthing"),
            Frame::Integer(-42),
            Frame::Integer(i64::MIN),
            Frame::bulk(&b"bin\0ary\r\n"[..]),
            Frame::Null,
            Frame::NullArray,
            Frame::Array(vec![]),
        ]);
        let bytes = frame.to_bytes();
        let (back, used) = Frame::decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        let Frame::Array(items) = back else {
            panic!("not an array")
        };
        assert_eq!(items[1], Frame::Error("ERR bad  thing".into()));
        assert_eq!(items[3], Frame::Integer(i64::MIN));
        assert_eq!(items[4], Frame::bulk(&b"bin\0ary\r\n"[..]));
        assert_eq!(items.len(), 8);
    }

    #[test]
    fn resp3_kinds_round_trip_and_fall_back_to_resp2_shapes() {
        let frame = Frame::Array(vec![
            Frame::Map(vec![(Frame::bulk("proto"), Frame::Integer(3))]),
            Frame::Set(vec![Frame::Simple("write".into())]),
            Frame::Verbatim(b"# Server\r\n".to_vec()),
            Frame::Null,
        ]);
        let mut resp3 = Vec::new();
        frame.write_as(&mut resp3, Protocol::Resp3);
        assert_eq!(
            resp3,
            b"*4\r\n%1\r\n$5\r\nproto\r\n:3\r\n~1\r\n+write\r\n=14\r\ntxt:# Server\r\n\r\n_\r\n"
        );
        assert_eq!(
            Frame::decode(&resp3),
            Ok(Some((frame.clone(), resp3.len())))
        );
        for cut in 0..resp3.len() {
            assert_eq!(Frame::decode(&resp3[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            frame.to_bytes(),
            b"*4\r\n*2\r\n$5\r\nproto\r\n:3\r\n*1\r\n+write\r\n$10\r\n# Server\r\n\r\n$-1\r\n"
        );
        assert_eq!(
            Frame::decode(b"=2\r\nab\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
    }

    #[test]
    fn every_prefix_of_a_frame_is_incomplete() {
        let bytes = Frame::Array(vec![Frame::bulk("abc"), Frame::Integer(7)]).to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(Frame::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn too_deep_nesting_is_refused() {
        let bytes = b"*1\r\n".repeat(MAX_REPLY_DEPTH + 2);
        assert_eq!(
            Frame::decode(&bytes),
            Err(ProtocolError::TooDeep {
                max: MAX_REPLY_DEPTH
            })
        );
    }
}
