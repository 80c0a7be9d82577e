//! Segment files: a 40-byte header followed by records, and their names on disk.
//!
//! ```text
//! header = magic "KVSTSEG\0" | version:u32 | flags:u32 | id:u32 | end_check:u32 | lsn_mark:u64
//!          | salt:u32 | crc32:u32
//! ```
//! `salt` is random per segment file; its records' header checksums cover it first (see
//! `record`), so a record is valid only in the segment it was written to.
//! `lsn_mark` is, for a log segment, the LSN just before its first record (so the last LSN
//! survives even when every record was compacted away); for a compacted segment, the highest
//! LSN of the segments it replaced.
//!
//! `end_check` (when flag 2 is set; segments written before it existed leave it 0) lets
//! recovery tell a sealed segment that lost records at its end, cut at a record boundary,
//! from a complete one, which a scan alone cannot: for a log segment it is the id of the log
//! segment written before it (whose last LSN must reach this one's `lsn_mark`), for a
//! compacted segment the number of records it holds.

use std::path::{Path, PathBuf};

use crate::wal::record::{read_u32, read_u64};
use crate::Lsn;

/// Size of the segment header.
pub(crate) const SEGMENT_HEADER_BYTES: u64 = 40;
const MAGIC: &[u8; 8] = b"KVSTSEG\0";
/// 2: op lengths are varints (see `record`). 3: record headers carry how far the log was
/// synced when they were written, and their checksums the segment's salt. Earlier versions
/// are refused.
const VERSION: u32 = 3;
const FLAG_COMPACTED: u32 = 1;
const FLAG_END_CHECK: u32 = 2;

/// Identifies a segment; ids only grow.
pub(crate) type SegmentId = u32;

/// What a segment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub id: SegmentId,
    pub compacted: bool,
    pub lsn_mark: Lsn,
    pub end_check: EndCheck,
    /// Seeds the header checksum of every record in the segment; never 0 (0 is the
    /// unsalted checksum of records in transit).
    pub salt: u32,
}

/// A fresh random salt for a new segment file (never 0).
pub(crate) fn new_salt() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    hasher.write_u64(nanos);
    (hasher.finish() as u32).max(1)
}

/// How recovery can tell that a sealed segment still ends where it was written to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndCheck {
    /// Nothing to check against: the first log segment of a store or of a snapshot install,
    /// a compacted segment being written, and segments written before end checks existed.
    None,
    /// A log segment started when this log segment was sealed: the sealed one's last LSN
    /// must reach this one's `lsn_mark`.
    FollowsLog(SegmentId),
    /// A compacted segment of this many records.
    Records(u32),
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES as usize] {
        let mut buf = [0u8; SEGMENT_HEADER_BYTES as usize];
        buf[0..8].copy_from_slice(MAGIC);
        buf[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let mut flags = if self.compacted { FLAG_COMPACTED } else { 0 };
        let end_check = match self.end_check {
            EndCheck::None => 0,
            EndCheck::FollowsLog(id) => id,
            EndCheck::Records(records) => records,
        };
        if self.end_check != EndCheck::None {
            flags |= FLAG_END_CHECK;
        }
        buf[12..16].copy_from_slice(&flags.to_le_bytes());
        buf[16..20].copy_from_slice(&self.id.to_le_bytes());
        buf[20..24].copy_from_slice(&end_check.to_le_bytes());
        buf[24..32].copy_from_slice(&self.lsn_mark.to_le_bytes());
        buf[32..36].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crate::wal::checksum::crc32(&buf[..36]);
        buf[36..40].copy_from_slice(&crc.to_le_bytes());
        buf
    }

    pub fn decode(buf: &[u8]) -> Result<Self, String> {
        if buf.len() < SEGMENT_HEADER_BYTES as usize {
            return Err("segment header is truncated".into());
        }
        if &buf[0..8] != MAGIC {
            return Err("bad segment magic".into());
        }
        if crate::wal::checksum::crc32(&buf[..36]) != read_u32(buf, 36) {
            return Err("segment header checksum mismatch".into());
        }
        let version = read_u32(buf, 8);
        if version != VERSION {
            return Err(format!(
                "unsupported segment version {version} (this build reads version {VERSION})"
            ));
        }
        let flags = read_u32(buf, 12);
        let compacted = flags & FLAG_COMPACTED != 0;
        let end_check = match (flags & FLAG_END_CHECK != 0, compacted) {
            (false, _) => EndCheck::None,
            (true, false) => EndCheck::FollowsLog(read_u32(buf, 20)),
            (true, true) => EndCheck::Records(read_u32(buf, 20)),
        };
        Ok(SegmentHeader {
            id: read_u32(buf, 16),
            compacted,
            lsn_mark: read_u64(buf, 24),
            end_check,
            salt: read_u32(buf, 32),
        })
    }
}

pub(crate) fn segment_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!("{id:010}.seg"))
}

pub(crate) fn hint_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!("{id:010}.hint"))
}

/// Parses `0000000042.seg` into 42.
pub(crate) fn parse_segment_name(name: &str) -> Option<SegmentId> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() != 10 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Parses `0000000042.hint` into 42.
pub(crate) fn parse_hint_name(name: &str) -> Option<SegmentId> {
    parse_segment_name(&format!("{}.seg", name.strip_suffix(".hint")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let h = SegmentHeader {
            id: 7,
            compacted: true,
            lsn_mark: 99,
            end_check: EndCheck::Records(12),
            salt: new_salt(),
        };
        assert_ne!(h.salt, 0);
        let mut buf = h.encode();
        assert_eq!(SegmentHeader::decode(&buf), Ok(h));
        for end_check in [EndCheck::None, EndCheck::FollowsLog(6)] {
            let log = SegmentHeader {
                compacted: false,
                end_check,
                ..h
            };
            assert_eq!(SegmentHeader::decode(&log.encode()), Ok(log));
        }
        buf[17] ^= 1;
        assert!(SegmentHeader::decode(&buf).is_err());
        assert_eq!(parse_segment_name("0000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000042.hint"), None);
    }
}
