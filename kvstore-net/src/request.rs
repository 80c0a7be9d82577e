//! [`Request`]: one decoded request, its arguments side by side in one buffer.
//!
//! A request used to be a vector of vectors: one allocation per argument and one for the
//! list, freed again once the command ran. Keeping the arguments in one byte buffer with
//! their end offsets costs two allocations whatever the argument count, and none at all
//! when a connection decodes into the same request again (`RequestDecoder::decode_into`):
//! commands borrow the arguments and copy only what they keep.

use std::fmt;

/// A request buffer larger than this is released when the request is reused, so one large
/// request does not pin its memory for the rest of the connection.
const KEEP_REQUEST_BYTES: usize = 1 << 20;
/// Argument offsets kept when a request is reused (8 bytes each: 64 KiB).
const KEEP_REQUEST_ARGS: usize = 8 << 10;

/// One decoded request: the command name and its arguments, binary-safe.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Every argument, one after another.
    bytes: Vec<u8>,
    /// Where each argument ends in `bytes`.
    ends: Vec<usize>,
}

impl Request {
    /// A request of `args` (the name first).
    pub fn from_args<A: AsRef<[u8]>>(args: impl IntoIterator<Item = A>) -> Request {
        let mut request = Request::default();
        for arg in args {
            request.push(arg.as_ref());
        }
        request
    }

    /// Number of arguments, the name included.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the request has no argument, not even a name.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Argument `index` (0 is the command name), if there is one.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)?;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1],
        };
        self.bytes.get(start..end)
    }

    /// The arguments in order, the name first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + Clone + '_ {
        (0..self.len()).map(|index| self.get(index).unwrap_or_default())
    }

    /// Bytes of all arguments, the name included.
    pub fn arg_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The arguments as separate vectors (for tests and callers that want owned arguments).
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }

    /// Appends an argument.
    pub(crate) fn push(&mut self, arg: &[u8]) {
        self.bytes.extend_from_slice(arg);
        self.ends.push(self.bytes.len());
    }

    /// Makes room for `args` more arguments.
    pub(crate) fn reserve_args(&mut self, args: usize) {
        self.ends.reserve(args);
    }

    /// Empties the request for reuse, releasing buffers a large request left behind.
    pub(crate) fn clear(&mut self) {
        if self.bytes.capacity() > KEEP_REQUEST_BYTES {
            self.bytes = Vec::new();
        }
        if self.ends.capacity() > KEEP_REQUEST_ARGS {
            self.ends = Vec::new();
        }
        self.bytes.clear();
        self.ends.clear();
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|arg| arg.escape_ascii().to_string()))
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn arguments_come_back_as_pushed() {
        let request = Request::from_args([&b"SET"[..], b"", b"v\r\n\0"]);
        assert_eq!(request.len(), 3);
        assert_eq!(request.get(0), Some(&b"SET"[..]));
        assert_eq!(request.get(1), Some(&b""[..]));
        assert_eq!(request.get(2), Some(&b"v\r\n\0"[..]));
        assert_eq!(request.get(3), None);
        assert_eq!(request.arg_bytes(), 7);
        assert_eq!(
            request.to_vecs(),
            vec![b"SET".to_vec(), Vec::new(), b"v\r\n\0".to_vec()]
        );
    }

    #[test]
    fn a_cleared_request_drops_large_buffers_and_keeps_small_ones() {
        let mut request = Request::from_args([vec![0u8; KEEP_REQUEST_BYTES + 1]]);
        request.clear();
        assert!(request.is_empty());
        assert_eq!(request.bytes.capacity(), 0);
        request.push(b"GET");
        let kept = request.bytes.capacity();
        request.clear();
        assert_eq!(request.bytes.capacity(), kept);
    }
}
