//! Feeds arbitrary bytes to the request decoder, whole and split into chunks at positions the
//! input itself chooses, and to the reply decoder. Checks: no panic, chunking never changes the
//! requests decoded or the error hit, consumed bytes never exceed what was given, and every
//! decoded request re-encodes to bytes that decode to the same request.
#![no_main]

use kvstore_net::parse::{Limits, Request, RequestDecoder};
use kvstore_net::Frame;
use libfuzzer_sys::fuzz_target;

fn small_limits() -> Limits {
    Limits {
        max_inline_bytes: 256,
        max_bulk_bytes: 1024,
        max_args: 64,
        max_request_bytes: 4096,
    }
}

/// Decodes `data` delivered in the given chunk sizes; returns the requests and the error, if any.
fn decode(data: &[u8], chunks: &[usize]) -> (Vec<Request>, Option<String>) {
    let mut decoder = RequestDecoder::new(small_limits());
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut out = Vec::new();
    let mut sizes = chunks.iter().cycle();
    while fed < data.len() {
        let step = (*sizes.next().unwrap_or(&usize::MAX)).max(1);
        let end = data.len().min(fed.saturating_add(step));
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        loop {
            let mut used = 0;
            let result = decoder.decode(&buf, &mut used);
            assert!(used <= buf.len());
            buf.drain(..used);
            match result {
                Ok(Some(request)) => out.push(request),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    (out, None)
}

fn encode(request: &Request) -> Vec<u8> {
    Frame::Array(request.iter().map(Frame::bulk).collect()).to_bytes()
}

fuzz_target!(|data: &[u8]| {
    let (split, data) = match data.split_first() {
        Some((&n, rest)) => (usize::from(n % 16) + 1, rest),
        None => return,
    };
    let whole = decode(data, &[usize::MAX]);
    let chunked = decode(data, &[split, 1, split * 7]);
    assert_eq!(whole, chunked, "chunking changed the outcome");
    for request in &whole.0 {
        assert!(!request.is_empty());
        let (again, err) = decode(&encode(request), &[usize::MAX]);
        assert_eq!(err, None);
        assert_eq!(again.as_slice(), std::slice::from_ref(request));
    }
    if let Ok(Some((frame, used))) = Frame::decode(data) {
        assert!(used <= data.len());
        let bytes = frame.to_bytes();
        assert!(matches!(Frame::decode(&bytes), Ok(Some((_, n))) if n == bytes.len()));
    }
});
