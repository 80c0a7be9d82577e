//! On-disk encoding of log records.
//!
//! ```text
//! record  = header_crc:u32 | body_len:u32 | lsn:u64 | op_count:u32 | synced_gap:u32 | op*
//! op      = op_crc:u32 | tag:u8 (1 put, 2 delete) | key_len:varint | value_len:varint | key | value
//! ```
//! Integers are little endian. The header CRC covers, before the rest of the header, the
//! salt of the segment file the record is in (random per file; see `segment`), so a record
//! is valid only where it was written: the bytes of another segment's records inside a
//! value never pass for records when recovery looks past damage. Records in transit (the
//! commit hook, `wal_since`, replication) carry the unsalted CRC (salt 0).
//!
//! `synced_gap` says how far the log was known durable when the record was written to its
//! segment: through LSN `lsn − synced_gap` (0: not known). After a power loss, damage in the
//! newest segment followed by records that say it was synced before they were written is
//! damage to synced data (an error); damage that no later record says was synced is a torn,
//! unsynced write (a page that never reached the disk ahead of one that did), and the log
//! ends there. The gap is this node's own: a replica writing a master's record stamps its
//! own before the record reaches its log.
//! Lengths are LEB128 varints: an op with a key and value under 128 bytes each has a 7-byte
//! header (13 with fixed-width lengths, segment format version 1).
//! The header CRC covers the rest of the header; each op's CRC covers the rest of the op. So
//! every byte is checked, a torn or bit-flipped record is detected, and a read of one value
//! (which reads its op) verifies it without reading the whole record.
//! A write batch is one record, which is what makes it atomic on disk.

use std::borrow::Cow;

use bytes::Bytes;

use crate::batch::{Op, OpView, WriteBatch};
use crate::error::{Error, Result};
use crate::wal::varint::{get_varint, put_varint, varint_len};
use crate::{Lsn, MAX_KEY_BYTES, MAX_RECORD_BYTES};

/// Bytes of a record before its first operation.
pub(crate) const RECORD_HEADER_BYTES: usize = 24;
/// Where the header's `synced_gap` sits.
const SYNCED_GAP_AT: usize = 20;
/// Fewest bytes of an operation before its key: CRC, tag and two one-byte lengths.
const MIN_OP_HEADER_BYTES: usize = 7;

/// Bytes of an operation before its key, for these key and value lengths.
pub(crate) fn op_header_len(key_len: usize, value_len: usize) -> usize {
    5 + varint_len(key_len as u64) + varint_len(value_len as u64)
}

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
                    Op::Put { key, value } => op_disk_bytes(key.len(), value.len()) as usize,
                    Op::Delete { key } => op_disk_bytes(key.len(), 0) as usize,
                })
                .sum::<usize>()
    }
}

/// Where an operation's key and value sit inside an encoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OpSpan {
    pub key_start: u32,
    pub key_len: u32,
    pub value_start: u32,
    pub value_len: u32,
    pub is_delete: bool,
}

/// The op spans of a record. Most records hold one op (a put or a delete), whose span is kept
/// inline: a `Vec` would cost an allocation per write on the master and per record on a replica.
#[derive(Debug, Clone)]
pub(crate) enum Spans {
    /// No span or one (the count says which).
    Inline(usize, [OpSpan; 1]),
    Heap(Vec<OpSpan>),
}

impl Spans {
    pub fn with_capacity(n: usize) -> Self {
        if n <= 1 {
            Spans::Inline(0, [OpSpan::default()])
        } else {
            Spans::Heap(Vec::with_capacity(n))
        }
    }

    pub fn push(&mut self, span: OpSpan) {
        match self {
            Spans::Inline(n, slot) if *n == 0 => {
                slot[0] = span;
                *n = 1;
            }
            Spans::Inline(_, [first]) => *self = Spans::Heap(vec![*first, span]),
            Spans::Heap(spans) => spans.push(span),
        }
    }
}

impl std::ops::Deref for Spans {
    type Target = [OpSpan];

    fn deref(&self) -> &[OpSpan] {
        match self {
            Spans::Inline(n, spans) => &spans[..(*n).min(1)],
            Spans::Heap(spans) => spans,
        }
    }
}

impl<'a> IntoIterator for &'a Spans {
    type Item = &'a OpSpan;
    type IntoIter = std::slice::Iter<'a, OpSpan>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for Spans {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Spans {}

/// Bytes an operation with these key and value lengths occupies in the log.
pub(crate) fn op_disk_bytes(key_len: usize, value_len: usize) -> u64 {
    (op_header_len(key_len, value_len) + key_len + value_len) as u64
}

/// A record encoded with its LSN and CRC still to be stamped by the commit leader.
#[derive(Debug)]
pub(crate) struct EncodedRecord {
    pub bytes: RecordBytes,
    pub spans: Spans,
}

/// The bytes of an [`EncodedRecord`]: encoded here, or a master's record taken as it arrived.
#[derive(Debug)]
pub(crate) enum RecordBytes {
    /// Encoded by this store; the commit leader stamps the LSN into it.
    Owned(Vec<u8>),
    /// A master's stamped and verified record, shared with whoever else holds it (the in-process
    /// transport, other replicas), so applying it copies nothing until it joins the write.
    Shared(EncodedWalRecord),
}

impl std::ops::Deref for RecordBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            RecordBytes::Owned(bytes) => bytes,
            RecordBytes::Shared(record) => record.as_bytes(),
        }
    }
}

impl EncodedRecord {
    /// Encodes `ops`; the caller has validated key and value sizes.
    pub fn encode<O: OpView>(ops: &[O]) -> Self {
        let body: usize = ops
            .iter()
            .map(|op| op_disk_bytes(op.key().len(), op.value().map_or(0, <[u8]>::len)) as usize)
            .sum();
        let mut bytes = Vec::with_capacity(RECORD_HEADER_BYTES + body);
        bytes.extend_from_slice(&[0u8; 4]);
        bytes.extend_from_slice(&(body as u32).to_le_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        bytes.extend_from_slice(&(ops.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&[0u8; 4]);
        let mut spans = Spans::with_capacity(ops.len());
        for op in ops {
            spans.push(append_op(&mut bytes, op.key(), op.value()));
        }
        EncodedRecord {
            bytes: RecordBytes::Owned(bytes),
            spans,
        }
    }

    /// The record of `batch`, whose operations it holds encoded already: taken as it is, with
    /// no copy. `None` for an empty batch or one whose offsets do not fit 32 bits; the caller
    /// has checked its size against [`MAX_RECORD_BYTES`], which rules both out.
    pub fn from_batch(batch: WriteBatch) -> Option<Self> {
        let count = u32::try_from(batch.len()).ok()?;
        let (mut bytes, spans) = batch.into_record()?;
        let body = u32::try_from(bytes.len().checked_sub(RECORD_HEADER_BYTES)?).ok()?;
        bytes[4..8].copy_from_slice(&body.to_le_bytes());
        bytes[16..20].copy_from_slice(&count.to_le_bytes());
        Some(EncodedRecord {
            bytes: RecordBytes::Owned(bytes),
            spans,
        })
    }

    /// A master's record, ready to be written as it is: every checksum verified, the LSN its
    /// header carries. [`Error::Corrupt`] if anything is damaged.
    pub fn verified(record: &EncodedWalRecord) -> Result<Self> {
        Ok(EncodedRecord {
            spans: record.verified_spans()?,
            bytes: RecordBytes::Shared(record.clone()),
        })
    }

    /// Writes the LSN and the header CRC into the header. A shared record already carries
    /// its LSN with a verified header checksum, so it is left as it is (and copied first in
    /// the case, which the commit leader never asks for, of another LSN).
    pub fn stamp(&mut self, lsn: Lsn) {
        if let RecordBytes::Shared(shared) = &self.bytes {
            if shared.lsn() == lsn {
                return;
            }
            self.bytes = RecordBytes::Owned(shared.as_bytes().to_vec());
        }
        if let RecordBytes::Owned(bytes) = &mut self.bytes {
            bytes[8..16].copy_from_slice(&lsn.to_le_bytes());
            seal_header(bytes, 0);
        }
    }

    pub fn key(&self, span: &OpSpan) -> &[u8] {
        &self.bytes[span.key_start as usize..(span.key_start + span.key_len) as usize]
    }

    /// The stamped record as the commit hook receives it: its bytes, shared. One copy of the
    /// bytes, where owned operations would cost a decode and an allocation per key and value.
    #[cfg(test)]
    pub fn to_shared(&self, lsn: Lsn) -> EncodedWalRecord {
        EncodedWalRecord {
            lsn,
            bytes: Bytes::copy_from_slice(&self.bytes),
        }
    }
}

/// A committed record in the log's own encoding: its LSN, operations and checksums exactly as
/// the master wrote them, shared without copying (a clone only bumps a reference count).
///
/// This is how records travel from a master to its replicas: the commit hook receives them in
/// this form ([`crate::CommitHook::committed_encoded`]) and a replica applies them as they are
/// ([`crate::KvStore::apply_replicated_batch`]), which verifies every checksum first, so bytes
/// damaged on the way are refused, never applied.
///
/// ```
/// use kvstore_core::{EncodedWalRecord, Op, WalRecord};
/// let record = WalRecord { lsn: 7, ops: vec![Op::Put { key: b"k".to_vec(), value: b"v".to_vec() }] };
/// let encoded = EncodedWalRecord::from(&record);
/// assert_eq!(encoded.lsn(), 7);
/// assert_eq!(encoded.encoded_len(), record.encoded_len());
/// assert_eq!(encoded.to_wal_record()?, record);
/// // Bytes as they would arrive from elsewhere: the header is checked at once, every
/// // operation's checksum when the record is decoded or applied.
/// let received = EncodedWalRecord::from_bytes(encoded.as_bytes().to_vec())?;
/// assert_eq!(received, encoded);
/// # Ok::<(), kvstore_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedWalRecord {
    lsn: Lsn,
    /// A whole stamped record (header and operations), as in a log segment. Often a slice of
    /// a buffer shared with the records committed or received with it, so that records cost
    /// an allocation (and a free, maybe on another thread) per chunk of many rather than
    /// each: with one per record, a master's writer waited on the allocator's lock for the
    /// replication threads freeing its records.
    bytes: Bytes,
}

impl std::fmt::Debug for EncodedWalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedWalRecord")
            .field("lsn", &self.lsn)
            .field("encoded_len", &self.bytes.len())
            .finish()
    }
}

impl EncodedWalRecord {
    /// Takes a record's bytes as another node sent them: a `Vec`, or a slice of a
    /// [`Bytes`] buffer holding several records (no copy then). Checks the header (length
    /// and header checksum), which is all that reading the LSN needs; the operations'
    /// checksums are verified when the record is decoded or applied. Fails with
    /// [`Error::Corrupt`] when the header is damaged or the length does not match.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Self> {
        let bytes = bytes.into();
        let lsn = header_lsn(&bytes).map_err(|reason| invalid_record(None, &reason))?;
        Ok(EncodedWalRecord { lsn, bytes })
    }

    /// The length of the encoded record at the start of `bytes`, as its header announces it,
    /// when the header and that many bytes are there (records delimit themselves, so several
    /// can travel back to back). Checks no checksum: [`from_bytes`](Self::from_bytes) does.
    pub fn framed_len(bytes: &[u8]) -> Option<usize> {
        let header: &[u8; RECORD_HEADER_BYTES] =
            bytes.get(..RECORD_HEADER_BYTES)?.try_into().ok()?;
        let len = body_len(header).ok()? + RECORD_HEADER_BYTES;
        (len <= bytes.len()).then_some(len)
    }

    /// A record this node stamped itself with `lsn` (so its header needs no check).
    pub(crate) fn stamped(lsn: Lsn, bytes: Bytes) -> Self {
        EncodedWalRecord { lsn, bytes }
    }

    /// Wraps the bytes of a record committed at `lsn` as [`crate::CommitHook::committed_bytes`]
    /// handed them over (copied, or sliced from a copy), without checking the header again as
    /// [`from_bytes`](Self::from_bytes) would. Nothing trusts the wrapped bytes: applying
    /// ([`crate::KvStore::apply_replicated_batch`]) and decoding
    /// ([`to_wal_record`](Self::to_wal_record)) verify every checksum and that the header
    /// carries `lsn`, and refuse the record otherwise.
    pub fn from_committed_bytes(lsn: Lsn, bytes: Bytes) -> Self {
        EncodedWalRecord { lsn, bytes }
    }

    /// The record's log sequence number.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// The whole encoded record (what [`from_bytes`](Self::from_bytes) takes back).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes this record takes in the log (equal to [`WalRecord::encoded_len`]).
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// Checks every checksum and bound and returns where each operation lies; what a replica
    /// needs before it writes the bytes into its own log.
    pub(crate) fn verified_spans(&self) -> Result<Spans> {
        match decode(self.as_bytes(), 0) {
            Ok((lsn, spans)) if lsn == self.lsn => Ok(spans),
            Ok((lsn, _)) => Err(invalid_record(
                Some(self.lsn),
                &format!("the header now says LSN {lsn}"),
            )),
            Err(DecodeError::Truncated) => Err(invalid_record(Some(self.lsn), "truncated")),
            Err(DecodeError::Invalid(reason)) => Err(invalid_record(Some(self.lsn), &reason)),
        }
    }

    /// Decodes the record into owned operations, verifying every checksum first
    /// ([`Error::Corrupt`] if one fails).
    pub fn to_wal_record(&self) -> Result<WalRecord> {
        let spans = self.verified_spans()?;
        Ok(WalRecord {
            lsn: self.lsn,
            ops: ops_of(self.as_bytes(), &spans),
        })
    }
}

impl From<&WalRecord> for EncodedWalRecord {
    /// Encodes a record's operations as the log would, with its LSN.
    fn from(record: &WalRecord) -> Self {
        let mut encoded = EncodedRecord::encode(&record.ops);
        encoded.stamp(record.lsn);
        EncodedWalRecord {
            lsn: record.lsn,
            bytes: Bytes::copy_from_slice(&encoded.bytes),
        }
    }
}

/// A master's record in a form a replica can apply with
/// [`crate::KvStore::apply_replicated_batch`]: a [`WalRecord`] (its operations are encoded on
/// the way in) or an [`EncodedWalRecord`] (the master's bytes, verified on the way in).
pub trait ReplicatedRecord {
    /// The record's log sequence number.
    fn lsn(&self) -> Lsn;

    /// The record in its log encoding: borrowed when it already is, encoded when it is not.
    /// Fails when the record cannot be encoded at all ([`Error::KeyTooLarge`],
    /// [`Error::BatchTooLarge`]).
    fn encoded(&self) -> Result<Cow<'_, EncodedWalRecord>>;
}

impl ReplicatedRecord for WalRecord {
    fn lsn(&self) -> Lsn {
        self.lsn
    }

    fn encoded(&self) -> Result<Cow<'_, EncodedWalRecord>> {
        for op in &self.ops {
            let len = op.key().len();
            if len > MAX_KEY_BYTES {
                return Err(Error::KeyTooLarge {
                    len,
                    max: MAX_KEY_BYTES,
                });
            }
        }
        let len = self.encoded_len();
        if len > MAX_RECORD_BYTES {
            return Err(Error::BatchTooLarge {
                len,
                max: MAX_RECORD_BYTES,
            });
        }
        Ok(Cow::Owned(EncodedWalRecord::from(self)))
    }
}

impl ReplicatedRecord for EncodedWalRecord {
    fn lsn(&self) -> Lsn {
        self.lsn
    }

    fn encoded(&self) -> Result<Cow<'_, EncodedWalRecord>> {
        Ok(Cow::Borrowed(self))
    }
}

/// The LSN of a whole encoded record, after checking its length and header checksum.
fn header_lsn(record: &[u8]) -> std::result::Result<Lsn, String> {
    if record.len() < RECORD_HEADER_BYTES {
        return Err(format!(
            "{} bytes are shorter than a record header",
            record.len()
        ));
    }
    if record.len() > MAX_RECORD_BYTES {
        return Err(format!(
            "record length {} exceeds the maximum",
            record.len()
        ));
    }
    let body = read_u32(record, 4) as usize;
    if record.len() != RECORD_HEADER_BYTES + body {
        return Err(format!(
            "header announces {} bytes but {} arrived",
            RECORD_HEADER_BYTES + body,
            record.len()
        ));
    }
    if !header_crc_holds(record, 0) {
        return Err("record header checksum mismatch".into());
    }
    Ok(read_u64(record, 8))
}

/// The error for a record that arrived damaged: it names no file, since it is not on disk.
fn invalid_record(lsn: Option<Lsn>, reason: &str) -> Error {
    let what = match lsn {
        Some(lsn) => format!("record at LSN {lsn}"),
        None => "record".to_string(),
    };
    Error::Corrupt {
        path: std::path::PathBuf::from("(replicated record)"),
        offset: 0,
        reason: format!("{what} failed verification: {reason}; nothing was applied"),
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

/// Appends an op (a put when `value` is given, else a delete) with its CRC to `bytes`;
/// returns where its key and value start in `bytes`.
pub(crate) fn encode_op(bytes: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) -> (usize, usize) {
    let (tag, value) = match value {
        Some(value) => (TAG_PUT, value),
        None => (TAG_DELETE, &[][..]),
    };
    let op_start = bytes.len();
    bytes.extend_from_slice(&[0u8; 4]);
    bytes.push(tag);
    put_varint(bytes, key.len() as u64);
    put_varint(bytes, value.len() as u64);
    let key_start = bytes.len();
    bytes.extend_from_slice(key);
    let value_start = bytes.len();
    bytes.extend_from_slice(value);
    let crc = crate::wal::checksum::crc32(&bytes[op_start + 4..]);
    bytes[op_start..op_start + 4].copy_from_slice(&crc.to_le_bytes());
    (key_start, value_start)
}

/// [`encode_op`] into a record under [`MAX_RECORD_BYTES`] (so its offsets fit 32 bits);
/// returns the op's span.
pub(crate) fn append_op(bytes: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) -> OpSpan {
    let (key_start, value_start) = encode_op(bytes, key, value);
    OpSpan {
        key_start: key_start as u32,
        key_len: key.len() as u32,
        value_start: value_start as u32,
        value_len: value.map_or(0, <[u8]>::len) as u32,
        is_delete: value.is_none(),
    }
}

/// Appends an operation already encoded (and verified) elsewhere, as it is, with its own CRC;
/// returns where its key and value sit in `bytes`. `op` holds one whole op whose key is
/// `key_len` bytes long.
pub(crate) fn append_encoded_op(bytes: &mut Vec<u8>, op: &[u8], key_len: usize) -> Option<OpSpan> {
    let (_crc, tag, op_key_len, value_len, key_start) = op_header(op, 0)?;
    if op_key_len != key_len || key_start + key_len + value_len != op.len() {
        return None;
    }
    let base = bytes.len();
    bytes.extend_from_slice(op);
    Some(OpSpan {
        key_start: (base + key_start) as u32,
        key_len: key_len as u32,
        value_start: (base + key_start + key_len) as u32,
        value_len: value_len as u32,
        is_delete: tag == TAG_DELETE,
    })
}

/// Fills in the header of a record assembled in `bytes` (its first [`RECORD_HEADER_BYTES`]
/// reserved, then `count` ops): body length, LSN, op count, no synced LSN, and the header
/// CRC. (Compacted segments are written this way: they are whole and synced before they
/// count, so no record in them needs to say how far the log was synced.)
pub(crate) fn seal_record(bytes: &mut [u8], count: usize, lsn: Lsn, salt: u32) {
    let body = (bytes.len() - RECORD_HEADER_BYTES) as u32;
    bytes[4..8].copy_from_slice(&body.to_le_bytes());
    bytes[8..16].copy_from_slice(&lsn.to_le_bytes());
    bytes[16..20].copy_from_slice(&(count as u32).to_le_bytes());
    bytes[SYNCED_GAP_AT..RECORD_HEADER_BYTES].copy_from_slice(&[0; 4]);
    seal_header(bytes, salt);
}

/// Writes the header CRC of the record at the start of `record`, salted with `salt` (0 for
/// a record in transit).
fn seal_header(record: &mut [u8], salt: u32) {
    let crc = crate::wal::checksum::crc32_salted(salt, &record[4..RECORD_HEADER_BYTES]);
    record[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// Whether the header at the start of `record` (at least a header's bytes) holds its CRC
/// for `salt`.
pub(crate) fn header_crc_holds(record: &[u8], salt: u32) -> bool {
    crate::wal::checksum::crc32_salted(salt, &record[4..RECORD_HEADER_BYTES]) == read_u32(record, 0)
}

/// Writes into the header at the start of `record` (a stamped record, about to be written
/// to this node's log, in a segment of salt `salt`) that the log was durable through
/// `synced` when it was written, and recomputes the header CRC with the salt. A gap that
/// does not fit (four billion unsynced records, as only `SyncPolicy::Never` could leave) is
/// written as 0, "not known", which recovery treats as nothing synced: the cautious reading.
pub(crate) fn stamp_synced(record: &mut [u8], synced: Lsn, salt: u32) {
    let lsn = read_u64(record, 8);
    let gap = lsn
        .checked_sub(synced)
        .and_then(|gap| u32::try_from(gap).ok())
        .unwrap_or(0);
    record[SYNCED_GAP_AT..RECORD_HEADER_BYTES].copy_from_slice(&gap.to_le_bytes());
    seal_header(record, salt);
}

/// Clears the note [`stamp_synced`] wrote into the header at the start of `record` and the
/// segment's salt from its CRC: the record as it was encoded, for another node.
pub(crate) fn clear_synced(record: &mut [u8]) {
    record[SYNCED_GAP_AT..RECORD_HEADER_BYTES].copy_from_slice(&[0; 4]);
    seal_header(record, 0);
}

/// The LSN through which the log was durable when this record was written, as its header
/// says (0 when it says nothing): `header` is a whole record header whose CRC held.
pub(crate) fn synced_before(header: &[u8]) -> Lsn {
    let lsn = read_u64(header, 8);
    match read_u32(header, SYNCED_GAP_AT) {
        0 => 0,
        gap => lsn.saturating_sub(u64::from(gap)),
    }
}

/// Validates a whole record (header + body) whose header CRC is salted with `salt` (0 for a
/// record in transit) and returns its LSN and operation spans (offsets relative to the
/// record start).
pub(crate) fn decode(record: &[u8], salt: u32) -> Result<(Lsn, Spans), DecodeError> {
    if record.len() < RECORD_HEADER_BYTES {
        return Err(DecodeError::Truncated);
    }
    let body = read_u32(record, 4) as usize;
    if record.len() != RECORD_HEADER_BYTES + body {
        return Err(DecodeError::Truncated);
    }
    if !header_crc_holds(record, salt) {
        if record.iter().all(|b| *b == 0) {
            return Err(DecodeError::Truncated);
        }
        return Err(DecodeError::Invalid(
            "record header checksum mismatch".into(),
        ));
    }
    let lsn = read_u64(record, 8);
    let count = read_u32(record, 16) as usize;
    if count > body / MIN_OP_HEADER_BYTES {
        return Err(DecodeError::Invalid(format!("impossible op count {count}")));
    }
    let mut spans = Spans::with_capacity(count);
    let mut pos = RECORD_HEADER_BYTES;
    for _ in 0..count {
        let Some((op_crc, tag, key_len, value_len, key_start)) = op_header(record, pos) else {
            return Err(DecodeError::Invalid("op header past record end".into()));
        };
        let is_delete = match tag {
            TAG_PUT => false,
            TAG_DELETE if value_len == 0 => true,
            _ => return Err(DecodeError::Invalid(format!("bad op tag {tag}"))),
        };
        if key_len > MAX_KEY_BYTES {
            return Err(DecodeError::Invalid(format!("key length {key_len}")));
        }
        let value_start = key_start + key_len;
        let Some(end) = value_start
            .checked_add(value_len)
            .filter(|e| *e <= record.len())
        else {
            return Err(DecodeError::Invalid("op past record end".into()));
        };
        if crate::wal::checksum::crc32(&record[pos + 4..end]) != op_crc {
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
    let (crc, _tag, key_len, value_len, key_start) = op_header(op, 0)?;
    let value_start = key_start + key_len;
    let ok = key_len == key.len()
        && value_start.checked_add(value_len) == Some(op.len())
        && op.get(key_start..value_start) == Some(key)
        && crate::wal::checksum::crc32(&op[4..]) == crc;
    ok.then_some(value_start)
}

/// Reads the header of the op at `pos`: its CRC, tag, key and value lengths, and where its
/// key starts. `None` if the header runs past `buf` or a length is out of range.
fn op_header(buf: &[u8], pos: usize) -> Option<(u32, u8, usize, usize, usize)> {
    let crc = u32::from_le_bytes(buf.get(pos..pos + 4)?.try_into().ok()?);
    let tag = *buf.get(pos + 4)?;
    let mut at = pos + 5;
    let key_len = get_varint(buf, &mut at, buf.len())?;
    let value_len = get_varint(buf, &mut at, buf.len())?;
    Some((
        crc,
        tag,
        usize::try_from(key_len).ok()?,
        usize::try_from(value_len).ok()?,
        at,
    ))
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
    fn a_record_says_how_far_the_log_was_synced_and_can_unsay_it() {
        let ops = [Op::Put {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        }];
        let mut record = EncodedRecord::encode(&ops);
        record.stamp(1_000);
        let as_encoded = record.bytes.to_vec();
        assert_eq!(
            synced_before(&as_encoded),
            0,
            "a fresh encoding says nothing"
        );

        let salt = 0x5eed;
        let mut written = as_encoded.clone();
        stamp_synced(&mut written, 990, salt);
        assert_eq!(synced_before(&written), 990);
        assert!(
            decode(&written, salt).is_ok(),
            "the header CRC covers the note"
        );
        assert!(
            decode(&written, salt + 1).is_err(),
            "a record is valid only in its own segment"
        );
        assert!(decode(&written, 0).is_err());
        written[SYNCED_GAP_AT] ^= 1;
        assert!(decode(&written, salt).is_err(), "a flipped note is damage");
        written[SYNCED_GAP_AT] ^= 1;

        clear_synced(&mut written);
        assert_eq!(written, as_encoded);
        assert!(decode(&written, 0).is_ok());

        // A gap too large to note, or a synced LSN past the record's own (a snapshot
        // install lowered the LSNs), says nothing rather than something wrong.
        let mut far = as_encoded.clone();
        far[8..16].copy_from_slice(&(u64::from(u32::MAX) + 10).to_le_bytes());
        stamp_synced(&mut far, 1, salt);
        assert_eq!(synced_before(&far), 0);
        let mut ahead = as_encoded;
        stamp_synced(&mut ahead, 5_000, salt);
        assert_eq!(synced_before(&ahead), 0);
    }

    #[test]
    fn spans_hold_one_inline_and_more_on_the_heap() {
        let span = |n: u32| OpSpan {
            key_start: n,
            ..OpSpan::default()
        };
        let mut spans = Spans::with_capacity(1);
        assert!(spans.is_empty());
        for n in 0..4 {
            spans.push(span(n));
            assert_eq!(spans.len(), n as usize + 1);
            assert_eq!(spans.last(), Some(&span(n)));
        }
        assert!(matches!(spans, Spans::Heap(_)));
        let mut planned = Spans::with_capacity(4);
        (0..4).for_each(|n| planned.push(span(n)));
        assert_eq!(spans, planned);
        let mut one = Spans::with_capacity(1);
        one.push(span(7));
        assert!(matches!(one, Spans::Inline(1, _)));
        assert_eq!(&*one, &[span(7)]);
    }

    #[test]
    fn multi_byte_lengths_round_trip_and_verify() {
        let ops = vec![
            Op::Put {
                key: vec![b'k'; 200],
                value: vec![b'v'; 300],
            },
            Op::Put {
                key: b"x".to_vec(),
                value: vec![7; 70_000],
            },
            Op::Delete {
                key: vec![b'd'; 130],
            },
            Op::Put {
                key: b"e".to_vec(),
                value: Vec::new(),
            },
        ];
        let mut rec = EncodedRecord::encode(&ops);
        rec.stamp(9);
        let expected: usize = RECORD_HEADER_BYTES
            + ops
                .iter()
                .map(|op| match op {
                    Op::Put { key, value } => op_disk_bytes(key.len(), value.len()) as usize,
                    Op::Delete { key } => op_disk_bytes(key.len(), 0) as usize,
                })
                .sum::<usize>();
        assert_eq!(rec.bytes.len(), expected);
        assert_eq!(op_header_len(200, 300), 9);
        assert_eq!(op_header_len(1, 70_000), 9);
        let (lsn, spans) = decode(&rec.bytes, 0).unwrap();
        assert_eq!(lsn, 9);
        assert_eq!(spans, rec.spans);
        assert_eq!(ops_of(&rec.bytes, &spans), ops);
        for (span, op) in spans.iter().zip(&ops) {
            let op_start = span.key_start as usize
                - op_header_len(span.key_len as usize, span.value_len as usize);
            let op_end = (span.value_start + span.value_len) as usize;
            let at = verify_op(&rec.bytes[op_start..op_end], op.key()).unwrap();
            assert_eq!(op_start + at, span.value_start as usize);
            assert_eq!(verify_op(&rec.bytes[op_start..op_end], b"other"), None);
            assert_eq!(verify_op(&rec.bytes[op_start..op_end - 1], op.key()), None);
        }
    }

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
        let (lsn, spans) = decode(&rec.bytes, 0).unwrap();
        assert_eq!(lsn, 42);
        assert_eq!(ops_of(&rec.bytes, &spans), ops);
        for bit in 0..rec.bytes.len() * 8 {
            let mut bad = rec.bytes.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad, 0).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    fn sample(lsn: Lsn) -> WalRecord {
        WalRecord {
            lsn,
            ops: vec![
                Op::Put {
                    key: b"key".to_vec(),
                    value: b"value".to_vec(),
                },
                Op::Delete {
                    key: b"gone".to_vec(),
                },
            ],
        }
    }

    #[test]
    fn records_sharing_one_buffer_are_each_whole_and_checked() {
        let (a, b) = (sample(3), sample(4));
        let (ea, eb) = (EncodedWalRecord::from(&a), EncodedWalRecord::from(&b));
        let mut both = ea.as_bytes().to_vec();
        both.extend_from_slice(eb.as_bytes());
        let shared = Bytes::from(both);
        let split = ea.encoded_len();
        let first = EncodedWalRecord::from_bytes(shared.slice(..split)).unwrap();
        let second = EncodedWalRecord::from_bytes(shared.slice(split..)).unwrap();
        assert_eq!((first.clone(), second.clone()), (ea, eb));
        assert_eq!(second.to_wal_record().unwrap(), b);
        let stamped = [
            EncodedWalRecord::stamped(3, shared.slice(..split)),
            EncodedWalRecord::stamped(4, shared.slice(split..)),
        ];
        assert_eq!(stamped, [first, second]);
        // A slice that is not one whole record is refused.
        assert!(EncodedWalRecord::from_bytes(shared.slice(..split + 1)).is_err());
        assert!(EncodedWalRecord::from_bytes(shared.slice(1..split)).is_err());
    }

    #[test]
    fn a_committed_record_wrapped_under_another_lsn_is_refused_when_decoded() {
        let encoded = EncodedWalRecord::from(&sample(5));
        let bytes = Bytes::copy_from_slice(encoded.as_bytes());
        let right = EncodedWalRecord::from_committed_bytes(5, bytes.clone());
        assert_eq!(right, encoded);
        assert_eq!(right.to_wal_record().unwrap(), sample(5));
        let wrong = EncodedWalRecord::from_committed_bytes(6, bytes);
        assert!(wrong.to_wal_record().is_err());
    }

    #[test]
    fn an_encoded_record_is_the_log_encoding_and_decodes_back() {
        let record = sample(9);
        let encoded = EncodedWalRecord::from(&record);
        let mut local = EncodedRecord::encode(&record.ops);
        local.stamp(9);
        assert_eq!(encoded.as_bytes(), &local.bytes[..]);
        assert_eq!(local.to_shared(9), encoded);
        assert_eq!(encoded.lsn(), 9);
        assert_eq!(encoded.encoded_len(), record.encoded_len());
        assert_eq!(encoded.to_wal_record().unwrap(), record);
        let again = EncodedWalRecord::from_bytes(encoded.as_bytes().to_vec()).unwrap();
        assert_eq!(again, encoded);
    }

    #[test]
    fn every_damaged_byte_is_refused_by_from_bytes_or_by_verification() {
        let encoded = EncodedWalRecord::from(&sample(3));
        for bit in 0..encoded.encoded_len() * 8 {
            let mut bad = encoded.as_bytes().to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            let refused = match EncodedWalRecord::from_bytes(bad) {
                Err(e) => matches!(e, Error::Corrupt { .. }),
                Ok(arrived) => {
                    matches!(arrived.to_wal_record(), Err(Error::Corrupt { .. }))
                        && matches!(
                            EncodedRecord::verified(&arrived),
                            Err(Error::Corrupt { .. })
                        )
                }
            };
            assert!(refused, "flip of bit {bit} was not refused");
        }
        assert!(EncodedWalRecord::from_bytes(vec![0u8; 7]).is_err());
        let mut longer = encoded.as_bytes().to_vec();
        longer.push(0);
        assert!(EncodedWalRecord::from_bytes(longer).is_err());
    }

    #[test]
    fn a_shared_record_is_written_as_it_arrived() {
        let encoded = EncodedWalRecord::from(&sample(5));
        let mut verified = EncodedRecord::verified(&encoded).unwrap();
        verified.stamp(5);
        assert!(matches!(verified.bytes, RecordBytes::Shared(_)));
        assert_eq!(&verified.bytes[..], encoded.as_bytes());
        // Stamped with another LSN, it is copied and restamped, never changed in place.
        verified.stamp(6);
        assert!(matches!(verified.bytes, RecordBytes::Owned(_)));
        assert_eq!(decode(&verified.bytes, 0).unwrap().0, 6);
        assert_eq!(read_u64(encoded.as_bytes(), 8), 5);
    }
}
