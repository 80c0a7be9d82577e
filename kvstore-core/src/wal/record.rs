//! On-disk encoding of log records.
//!
//! ```text
//! record  = header_crc:u32 | body_len:u32 | lsn:u64 | op_count:u32 | op*      (little endian)
//! op      = op_crc:u32 | tag:u8 (1 put, 2 delete) | key_len:u32 | value_len:u32 | key | value
//! ```
//! The header CRC covers the rest of the header; each op's CRC covers the rest of the op. So
//! every byte is checked, a torn or bit-flipped record is detected, and a read of one value
//! (which reads its op) verifies it without reading the whole record.
//! A write batch is one record, which is what makes it atomic on disk.

use crate::batch::Op;
use crate::{Lsn, MAX_KEY_BYTES, MAX_RECORD_BYTES};

/// Bytes of a record before its first operation.
pub(crate) const RECORD_HEADER_BYTES: usize = 20;
/// Bytes of an operation before its key.
pub(crate) const OP_HEADER_BYTES: usize = 13;

const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;

/// A committed record as `wal_since` yields it and `apply_replicated` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// The record's log sequence number.
    pub lsn: Lsn,
    /// The operations, applied atomically in order.
    pub ops: Vec<Op>,
}

impl WalRecord {
    /// Bytes this record takes in the log.
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_BYTES
            + self
                .ops
                .iter()
                .map(|op| match op {
                    Op::Put { key, value } => OP_HEADER_BYTES + key.len() + value.len(),
                    Op::Delete { key } => OP_HEADER_BYTES + key.len(),
                })
                .sum::<usize>()
    }
}

/// Where an operation's key and value sit inside an encoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpSpan {
    pub key_start: u32,
    pub key_len: u32,
    pub value_start: u32,
    pub value_len: u32,
    pub is_delete: bool,
}

/// Bytes an operation with these key and value lengths occupies in the log.
pub(crate) fn op_disk_bytes(key_len: usize, value_len: usize) -> u64 {
    (OP_HEADER_BYTES + key_len + value_len) as u64
}

/// A record encoded with its LSN and CRC still to be stamped by the commit leader.
#[derive(Debug)]
pub(crate) struct EncodedRecord {
    pub bytes: Vec<u8>,
    pub spans: Vec<OpSpan>,
}

impl EncodedRecord {
    /// Encodes `ops`; the caller has validated key and value sizes.
    pub fn encode(ops: &[Op]) -> Self {
        let body: usize = ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value } => OP_HEADER_BYTES + key.len() + value.len(),
                Op::Delete { key } => OP_HEADER_BYTES + key.len(),
            })
            .sum();
        let mut bytes = Vec::with_capacity(RECORD_HEADER_BYTES + body);
        bytes.extend_from_slice(&[0u8; 4]);
        bytes.extend_from_slice(&(body as u32).to_le_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        bytes.extend_from_slice(&(ops.len() as u32).to_le_bytes());
        let mut spans = Vec::with_capacity(ops.len());
        for op in ops {
            let (tag, key, value): (u8, &[u8], &[u8]) = match op {
                Op::Put { key, value } => (TAG_PUT, key, value),
                Op::Delete { key } => (TAG_DELETE, key, &[]),
            };
            let op_start = bytes.len();
            bytes.extend_from_slice(&[0u8; 4]);
            bytes.push(tag);
            bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
            let key_start = bytes.len() as u32;
            bytes.extend_from_slice(key);
            let value_start = bytes.len() as u32;
            bytes.extend_from_slice(value);
            let crc = crc32fast::hash(&bytes[op_start + 4..]);
            bytes[op_start..op_start + 4].copy_from_slice(&crc.to_le_bytes());
            spans.push(OpSpan {
                key_start,
                key_len: key.len() as u32,
                value_start,
                value_len: value.len() as u32,
                is_delete: tag == TAG_DELETE,
            });
        }
        EncodedRecord { bytes, spans }
    }

    /// Writes the LSN and the header CRC into the header.
    pub fn stamp(&mut self, lsn: Lsn) {
        self.bytes[8..16].copy_from_slice(&lsn.to_le_bytes());
        let crc = crc32fast::hash(&self.bytes[4..RECORD_HEADER_BYTES]);
        self.bytes[0..4].copy_from_slice(&crc.to_le_bytes());
    }

    pub fn key(&self, span: &OpSpan) -> &[u8] {
        &self.bytes[span.key_start as usize..(span.key_start + span.key_len) as usize]
    }

    pub fn value(&self, span: &OpSpan) -> &[u8] {
        &self.bytes[span.value_start as usize..(span.value_start + span.value_len) as usize]
    }

    /// The record as owned operations, for commit hooks.
    pub fn to_wal_record(&self, lsn: Lsn) -> WalRecord {
        let ops = self
            .spans
            .iter()
            .map(|span| {
                let key = self.key(span).to_vec();
                if span.is_delete {
                    Op::Delete { key }
                } else {
                    Op::Put {
                        key,
                        value: self.value(span).to_vec(),
                    }
                }
            })
            .collect();
        WalRecord { lsn, ops }
    }
}

/// Why bytes failed to decode as a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Fewer bytes remain than the record needs: a torn write, or the end of a preallocated file.
    Truncated,
    /// The bytes are there but wrong.
    Invalid(String),
}

/// Reads the body length from a record header, validating it against the limits.
pub(crate) fn body_len(header: &[u8; RECORD_HEADER_BYTES]) -> Result<usize, String> {
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len + RECORD_HEADER_BYTES > MAX_RECORD_BYTES {
        return Err(format!("record length {len} exceeds the maximum"));
    }
    Ok(len)
}

/// Validates a whole record (header + body) and returns its LSN and operation spans
/// (offsets relative to the record start).
pub(crate) fn decode(record: &[u8]) -> Result<(Lsn, Vec<OpSpan>), DecodeError> {
    if record.len() < RECORD_HEADER_BYTES {
        return Err(DecodeError::Truncated);
    }
    let stored_crc = read_u32(record, 0);
    let body = read_u32(record, 4) as usize;
    if record.len() != RECORD_HEADER_BYTES + body {
        return Err(DecodeError::Truncated);
    }
    if crc32fast::hash(&record[4..RECORD_HEADER_BYTES]) != stored_crc {
        if record.iter().all(|b| *b == 0) {
            return Err(DecodeError::Truncated);
        }
        return Err(DecodeError::Invalid(
            "record header checksum mismatch".into(),
        ));
    }
    let lsn = read_u64(record, 8);
    let count = read_u32(record, 16) as usize;
    if count > body / OP_HEADER_BYTES {
        return Err(DecodeError::Invalid(format!("impossible op count {count}")));
    }
    let mut spans = Vec::with_capacity(count);
    let mut pos = RECORD_HEADER_BYTES;
    for _ in 0..count {
        if pos + OP_HEADER_BYTES > record.len() {
            return Err(DecodeError::Invalid("op header past record end".into()));
        }
        let op_crc = read_u32(record, pos);
        let tag = record[pos + 4];
        let key_len = read_u32(record, pos + 5) as usize;
        let value_len = read_u32(record, pos + 9) as usize;
        let is_delete = match tag {
            TAG_PUT => false,
            TAG_DELETE if value_len == 0 => true,
            _ => return Err(DecodeError::Invalid(format!("bad op tag {tag}"))),
        };
        if key_len > MAX_KEY_BYTES {
            return Err(DecodeError::Invalid(format!("key length {key_len}")));
        }
        let key_start = pos + OP_HEADER_BYTES;
        let value_start = key_start + key_len;
        let end = value_start + value_len;
        if end > record.len() {
            return Err(DecodeError::Invalid("op past record end".into()));
        }
        if crc32fast::hash(&record[pos + 4..end]) != op_crc {
            return Err(DecodeError::Invalid("op checksum mismatch".into()));
        }
        spans.push(OpSpan {
            key_start: key_start as u32,
            key_len: key_len as u32,
            value_start: value_start as u32,
            value_len: value_len as u32,
            is_delete,
        });
        pos = end;
    }
    if pos != record.len() {
        return Err(DecodeError::Invalid("trailing bytes after ops".into()));
    }
    Ok((lsn, spans))
}

/// Checks one operation (op header, key, value) against its CRC and the key the index holds,
/// and returns where its value starts. `None` if anything disagrees.
pub(crate) fn verify_op(op: &[u8], key: &[u8]) -> Option<usize> {
    let header_and_key = OP_HEADER_BYTES + key.len();
    let ok = op.len() >= header_and_key
        && read_u32(op, 5) as usize == key.len()
        && &op[OP_HEADER_BYTES..header_and_key] == key
        && crc32fast::hash(&op[4..]) == read_u32(op, 0);
    ok.then_some(header_and_key)
}

/// Builds owned operations from a validated record.
pub(crate) fn ops_of(record: &[u8], spans: &[OpSpan]) -> Vec<Op> {
    spans
        .iter()
        .map(|s| {
            let key = record[s.key_start as usize..(s.key_start + s.key_len) as usize].to_vec();
            if s.is_delete {
                Op::Delete { key }
            } else {
                let value =
                    record[s.value_start as usize..(s.value_start + s.value_len) as usize].to_vec();
                Op::Put { key, value }
            }
        })
        .collect()
}

pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

pub(crate) fn read_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_bit_flip_is_caught() {
        let ops = vec![
            Op::Put {
                key: b"key".to_vec(),
                value: b"value".to_vec(),
            },
            Op::Delete {
                key: b"gone".to_vec(),
            },
        ];
        let mut rec = EncodedRecord::encode(&ops);
        rec.stamp(42);
        let (lsn, spans) = decode(&rec.bytes).unwrap();
        assert_eq!(lsn, 42);
        assert_eq!(ops_of(&rec.bytes, &spans), ops);
        for bit in 0..rec.bytes.len() * 8 {
            let mut bad = rec.bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad).is_err(), "flip of bit {bit} went unnoticed");
        }
    }
}
