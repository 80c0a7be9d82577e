//! Hint files: a compact index of a sealed segment (as in Bitcask), so that opening a store
//! reads keys and locations without reading values.
//!
//! ```text
//! hint  = magic "KVSTHNT\0" | version:u32 | segment_id:u32 | entry* | segment_len:u64 | entry_count:u64 | crc32:u32
//! entry = tag:u8 (1 put, 2 delete) | key_len:varint | value_len:varint
//!         | value_offset − end of the previous entry's value:zigzag varint
//!         | lsn − the previous entry's lsn:zigzag varint | key
//! ```
//! Varints are LEB128 (7 bits a byte, low bits first). Entries are in log order, so the
//! offset and LSN deltas are small and most entries take 5 bytes besides their key, against
//! 21 with fixed-width fields (version 1, which is ignored: its segment is scanned and its
//! hint rewritten). The CRC covers the whole file; a damaged hint is ignored and its segment
//! scanned instead.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::wal::record::{read_u32, read_u64};
use crate::wal::segment::SegmentId;
use crate::wal::varint::{get_varint, put_varint, varint_len};
use crate::{Lsn, MAX_KEY_BYTES};

const MAGIC: &[u8; 8] = b"KVSTHNT\0";
const VERSION: u32 = 2;
/// Fewest bytes an entry takes besides its key: a tag and four one-byte varints.
const MIN_ENTRY_HEADER_BYTES: usize = 5;
const TRAILER_BYTES: usize = 20;

fn zigzag(delta: i64) -> u64 {
    ((delta << 1) ^ (delta >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// What the previous entry leaves for the next one's deltas.
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    value_end: u64,
    lsn: Lsn,
}

impl Cursor {
    /// The deltas of an entry against this cursor, which then moves past it.
    fn deltas(&mut self, value_offset: u32, value_len: u32, lsn: Lsn) -> (u64, u64) {
        let offset = zigzag((i64::from(value_offset)).wrapping_sub(self.value_end as i64));
        let lsn_delta = zigzag((lsn as i64).wrapping_sub(self.lsn as i64));
        self.value_end = u64::from(value_offset) + u64::from(value_len);
        self.lsn = lsn;
        (offset, lsn_delta)
    }
}

/// The encoded size of `hint`'s entries.
fn entries_len(hint: &Hint) -> usize {
    let mut cursor = Cursor::default();
    hint.entries
        .iter()
        .map(|e| {
            let (offset, lsn) = cursor.deltas(e.value_offset, e.value_len, e.lsn);
            1 + varint_len(e.key.len() as u64)
                + varint_len(u64::from(e.value_len))
                + varint_len(offset)
                + varint_len(lsn)
                + e.key.len()
        })
        .sum()
}

/// One operation of a segment: a put (with where its value is) or a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HintEntry {
    pub key: Vec<u8>,
    pub lsn: Lsn,
    pub value_offset: u32,
    pub value_len: u32,
    pub is_delete: bool,
}

/// Everything a hint file records about its segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hint {
    pub segment_len: u64,
    pub entries: Vec<HintEntry>,
}

pub(crate) fn encode(id: SegmentId, hint: &Hint) -> Vec<u8> {
    let mut builder = HintBuilder::with_capacity(id, entries_len(hint));
    for e in &hint.entries {
        builder.push(&e.key, e.lsn, e.value_offset, e.value_len, e.is_delete);
    }
    builder.finish(hint.segment_len).unwrap_or_default()
}

/// A hint file built entry by entry while its segment is written, so that sealing the
/// segment needs no scan of it: the scan (reading, checking and decoding every record of
/// records the leader had just encoded) took a sixth of the CPU of a master and two
/// in-process replicas under a write burst.
#[derive(Debug)]
pub(crate) struct HintBuilder {
    /// The file so far: header and entries; `None` when the segment holds records the
    /// builder never saw (one reopened with records), which a scan must then read.
    buf: Option<Vec<u8>>,
    cursor: Cursor,
    count: u64,
}

impl HintBuilder {
    /// The hint of segment `id`, which holds no records yet.
    pub fn new(id: SegmentId) -> Self {
        Self::with_capacity(id, 0)
    }

    fn with_capacity(id: SegmentId, entries: usize) -> Self {
        let mut buf = Vec::with_capacity(16 + entries + TRAILER_BYTES);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        buf.extend_from_slice(&id.to_le_bytes());
        HintBuilder {
            buf: Some(buf),
            cursor: Cursor::default(),
            count: 0,
        }
    }

    /// A builder for a segment that already holds records it never saw: it builds nothing.
    pub fn unknown() -> Self {
        HintBuilder {
            buf: None,
            cursor: Cursor::default(),
            count: 0,
        }
    }

    /// Records one operation, in log order.
    pub fn push(
        &mut self,
        key: &[u8],
        lsn: Lsn,
        value_offset: u32,
        value_len: u32,
        is_delete: bool,
    ) {
        let Some(buf) = self.buf.as_mut() else {
            return;
        };
        let (offset, lsn) = self.cursor.deltas(value_offset, value_len, lsn);
        buf.push(if is_delete { 2 } else { 1 });
        put_varint(buf, key.len() as u64);
        put_varint(buf, u64::from(value_len));
        put_varint(buf, offset);
        put_varint(buf, lsn);
        buf.extend_from_slice(key);
        self.count += 1;
    }

    /// The finished file for a segment whose records end at `segment_len`, if the builder
    /// saw all of them.
    pub fn finish(self, segment_len: u64) -> Option<Vec<u8>> {
        let mut buf = self.buf?;
        buf.extend_from_slice(&segment_len.to_le_bytes());
        buf.extend_from_slice(&self.count.to_le_bytes());
        let crc = crate::wal::checksum::crc32(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        Some(buf)
    }
}

/// One entry of a hint file, borrowing its key from the file's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryRef<'a> {
    pub key: &'a [u8],
    pub lsn: Lsn,
    pub value_offset: u32,
    pub value_len: u32,
    pub is_delete: bool,
}

impl EntryRef<'_> {
    /// The entry with its key copied out.
    pub(crate) fn to_entry(self) -> HintEntry {
        HintEntry {
            key: self.key.to_vec(),
            lsn: self.lsn,
            value_offset: self.value_offset,
            value_len: self.value_len,
            is_delete: self.is_delete,
        }
    }
}

/// Decodes a hint file, or says why it cannot be trusted.
#[cfg(test)]
pub(crate) fn decode(id: SegmentId, buf: &[u8]) -> std::result::Result<Hint, String> {
    let mut entries = Vec::new();
    let segment_len = visit(id, buf, |e| entries.push(e.to_entry()))?;
    Ok(Hint {
        segment_len,
        entries,
    })
}

/// How many entries a hint file says it holds, for sizing buffers before it is validated:
/// never more than its bytes could hold, so a damaged count cannot ask for a huge allocation.
pub(crate) fn entry_count_estimate(buf: &[u8]) -> usize {
    if buf.len() < 16 + TRAILER_BYTES {
        return 0;
    }
    let entries_end = buf.len() - TRAILER_BYTES;
    let count = usize::try_from(read_u64(buf, entries_end + 8)).unwrap_or(usize::MAX);
    count.min((entries_end - 16) / MIN_ENTRY_HEADER_BYTES)
}

/// Validates a hint file and hands each entry to `f` in file order; returns the segment length
/// it records. On error `f` may have seen some entries: the caller discards them.
pub(crate) fn visit(
    id: SegmentId,
    buf: &[u8],
    mut f: impl FnMut(EntryRef<'_>),
) -> std::result::Result<u64, String> {
    if buf.len() < 16 + TRAILER_BYTES {
        return Err("hint file too short".into());
    }
    let body_end = buf.len() - 4;
    if crate::wal::checksum::crc32(&buf[..body_end]) != read_u32(buf, body_end) {
        return Err("hint checksum mismatch".into());
    }
    if &buf[0..8] != MAGIC || read_u32(buf, 8) != VERSION {
        return Err("bad hint magic or version".into());
    }
    if read_u32(buf, 12) != id {
        return Err("hint belongs to another segment".into());
    }
    let entries_end = buf.len() - TRAILER_BYTES;
    let segment_len = read_u64(buf, entries_end);
    let count = read_u64(buf, entries_end + 8) as usize;
    if count > (entries_end - 16) / MIN_ENTRY_HEADER_BYTES {
        return Err("impossible hint entry count".into());
    }
    let mut seen = 0usize;
    let mut pos = 16;
    let mut cursor = Cursor::default();
    while pos < entries_end {
        let tag = buf[pos];
        pos += 1;
        let (key_len, value_len, offset_delta, lsn_delta) = match buf.get(pos..pos + 4) {
            // The common entry: four one-byte fields.
            Some(&[a, b, c, d]) if pos + 4 <= entries_end && (a | b | c | d) < 0x80 => {
                pos += 4;
                (a.into(), b.into(), c.into(), d.into())
            }
            _ => {
                let mut field =
                    || get_varint(buf, &mut pos, entries_end).ok_or("hint entry cut short");
                (field()?, field()?, field()?, field()?)
            }
        };
        let value_offset = (cursor.value_end as i64).wrapping_add(unzigzag(offset_delta));
        let lsn = (cursor.lsn as i64).wrapping_add(unzigzag(lsn_delta)) as u64;
        let (Ok(key_len), Ok(value_len), Ok(value_offset)) = (
            usize::try_from(key_len),
            u32::try_from(value_len),
            u32::try_from(value_offset),
        ) else {
            return Err("bad hint entry".into());
        };
        let key_start = pos;
        if key_len > MAX_KEY_BYTES || key_start + key_len > entries_end || tag == 0 || tag > 2 {
            return Err("bad hint entry".into());
        }
        if u64::from(value_offset) + u64::from(value_len) > segment_len {
            return Err("hint entry points past its segment".into());
        }
        cursor.deltas(value_offset, value_len, lsn);
        f(EntryRef {
            key: &buf[key_start..key_start + key_len],
            lsn,
            value_offset,
            value_len,
            is_delete: tag == 2,
        });
        seen += 1;
        pos = key_start + key_len;
    }
    if seen != count {
        return Err("hint entry count mismatch".into());
    }
    Ok(segment_len)
}

/// Bytes of a hint file besides its entries: magic, version and segment id, then the trailer.
pub(crate) const EMPTY_HINT_BYTES: usize = 16 + TRAILER_BYTES;

/// Fewest bytes a hint entry for a key of `key_len` bytes takes.
pub(crate) fn least_entry_bytes(key_len: usize) -> u64 {
    (MIN_ENTRY_HEADER_BYTES + key_len) as u64
}

/// The encoded size of a hint file listing `hint`'s entries.
pub(crate) fn encoded_len(hint: &Hint) -> u64 {
    (EMPTY_HINT_BYTES + entries_len(hint)) as u64
}

/// Whether a compacted segment's hint of `hint_bytes` is worth writing for a segment of
/// `segment_len` bytes: only when it is under an eighth of the segment, i.e. when values are
/// large next to keys. Otherwise opening the store reads the segment itself (its records are
/// checked and parsed in one pass, keys borrowed from the read buffer) for little more than
/// reading a hint that repeats every key would cost, and compaction's output stays near the
/// data's size. Log segments always get their hint: they are what a restart after a crash
/// reads, often from a cold page cache, where the hint saves reading every value.
pub(crate) fn worth_writing(hint_bytes: u64, segment_len: u64) -> bool {
    hint_bytes.saturating_mul(8) < segment_len
}

/// Writes the hint for segment `id` durably: to a temporary name, synced, then renamed.
/// The caller syncs the directory.
pub(crate) fn write(dir: &Path, id: SegmentId, hint: &Hint) -> Result<()> {
    write_bytes(dir, id, &encode(id, hint))
}

/// Writes an encoded hint file (see [`write`]).
pub(crate) fn write_bytes(dir: &Path, id: SegmentId, bytes: &[u8]) -> Result<()> {
    let path = crate::wal::segment::hint_path(dir, id);
    let tmp = path.with_extension("hint.tmp");
    let mut file = fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .ctx(|| format!("writing {}", tmp.display()))?;
    file.sync_data()
        .ctx(|| format!("syncing {}", tmp.display()))?;
    fs::rename(&tmp, &path).ctx(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

/// The bytes of the hint file of segment `id`, or `None` if it does not exist.
pub(crate) fn read_bytes(dir: &Path, id: SegmentId) -> Result<Option<Vec<u8>>> {
    let path = crate::wal::segment::hint_path(dir, id);
    match fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Logs why a hint is not used.
pub(crate) fn warn_damaged(dir: &Path, id: SegmentId, reason: &str) {
    let path = crate::wal::segment::hint_path(dir, id);
    tracing::warn!(path = %path.display(), %reason, "ignoring damaged hint file; scanning its segment instead");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips() {
        for d in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(d)), d);
        }
    }

    #[test]
    fn round_trip_and_bit_flips() {
        let hint = Hint {
            segment_len: 1000,
            entries: vec![
                HintEntry {
                    key: b"a".to_vec(),
                    lsn: 1,
                    value_offset: 60,
                    value_len: 3,
                    is_delete: false,
                },
                HintEntry {
                    key: b"bb".to_vec(),
                    lsn: 2,
                    value_offset: 0,
                    value_len: 0,
                    is_delete: true,
                },
                // Multi-byte fields and a backward LSN step (a compacted segment's order).
                HintEntry {
                    key: vec![b'k'; 200],
                    lsn: 1 << 40,
                    value_offset: 700,
                    value_len: 290,
                    is_delete: false,
                },
                HintEntry {
                    key: b"c".to_vec(),
                    lsn: 7,
                    value_offset: 30,
                    value_len: 1,
                    is_delete: false,
                },
            ],
        };
        let buf = encode(3, &hint);
        assert_eq!(buf.len(), 16 + entries_len(&hint) + TRAILER_BYTES);
        assert_eq!(decode(3, &buf), Ok(hint));
        assert!(decode(4, &buf).is_err());
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(3, &bad).is_err(), "flip of bit {bit} went unnoticed");
        }
    }
}
