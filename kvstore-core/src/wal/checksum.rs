//! CRC32 of the log's records, ops, headers and hints.
//!
//! `crc32fast::hash` asks the CPU which instructions it has (two feature checks) on every
//! call: about 44 instructions, a quarter of checksumming a 100-byte op, and every put, get
//! and replicated record checksums once or twice. A hasher made once and copied per call
//! skips that.

use std::sync::OnceLock;

use crc32fast::Hasher;

/// A fresh hasher, copied from one made once.
fn hasher() -> Hasher {
    static PROTOTYPE: OnceLock<Hasher> = OnceLock::new();
    PROTOTYPE.get_or_init(Hasher::new).clone()
}

/// The CRC32 (IEEE) of `bytes`, as `crc32fast::hash` computes it.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut hasher = hasher();
    hasher.update(bytes);
    hasher.finalize()
}

/// The CRC32 of `salt` (little endian) followed by `bytes`; of `bytes` alone for salt 0.
/// Record headers in a segment are checked with the segment's salt, so that the bytes of
/// another segment's records (inside a value, say) never pass for records of this one.
pub(crate) fn crc32_salted(salt: u32, bytes: &[u8]) -> u32 {
    if salt == 0 {
        return crc32(bytes);
    }
    let mut hasher = hasher();
    hasher.update(&salt.to_le_bytes());
    hasher.update(bytes);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn matches_crc32fast_on_every_length() {
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..bytes.len() {
            assert_eq!(
                crc32(&bytes[..len]),
                crc32fast::hash(&bytes[..len]),
                "{len}"
            );
        }
    }
}
