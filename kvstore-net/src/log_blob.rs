//! `REPLICATE LOG <blob>`: a window of replication records carried in the log's own encoding.
//!
//! A blob is one or more whole records of the master's log, concatenated, each exactly as
//! [`EncodedWalRecord::as_bytes`] gives it: a 24-byte header (header CRC, body length, LSN,
//! operation count, and a note of how far the sender's log was synced, which the master
//! leaves at 0 and the replica sets for its own log) and its operations, each with its own
//! CRC. Records delimit themselves
//! by their header's body length, so the blob needs no framing of its own.
//!
//! The master ([`crate::TcpTransport`]) cuts each window it sends into blobs with [`plan`];
//! the replica takes a blob apart with [`split`], which trusts no length it has not checked,
//! and applies the records as they are (`ReplicaEndpoint::apply_many`, which verifies every
//! checksum before writing anything). Nothing is decoded into keys and values on either side.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;

use kvstore_core::{EncodedWalRecord, Lsn, ReplicatedRecord, WalRecord};

use crate::parse::MAX_BULK_BYTES;

/// Most bytes in one blob: the default bulk-length limit, so a replica with default limits
/// accepts every blob a master sends. A record larger than this travels alone, in parts
/// (`REPLICATE LOGPART`, see `Piece::Parts`).
pub const MAX_LOG_BLOB_BYTES: usize = MAX_BULK_BYTES;
/// Bytes of a record one `REPLICATE LOGPART` carries (the last part may be shorter).
pub(crate) const LOG_PART_BYTES: usize = 16 << 20;
/// Most bytes a record sent in parts may have: the engine's largest record, with room for
/// its header and operation framing.
pub(crate) const MAX_PARTED_RECORD_BYTES: usize = kvstore_core::MAX_RECORD_BYTES + (1 << 20);
/// Most records in one blob. Bounds what a replica holds per blob beyond the blob itself (a
/// record handle and a copy of its bytes each); a window with more is sent as several blobs.
pub const MAX_LOG_BLOB_RECORDS: usize = 1 << 16;

/// Splits a blob into its records, checking each header (length and header checksum) as it
/// goes; the operations' checksums are checked when the records are applied. The reason, for
/// an error reply, when the blob is empty, a record is cut short, a header is damaged, or the
/// blob holds more than [`MAX_LOG_BLOB_RECORDS`] records. Nothing is applied by splitting.
pub(crate) fn split(blob: &[u8]) -> Result<Vec<EncodedWalRecord>, String> {
    // One copy of the blob that all its records share: one allocation, not one per record.
    split_shared(Bytes::copy_from_slice(blob))
}

/// [`split`] of a blob the caller already owns (a record assembled from its parts), without
/// copying it.
pub(crate) fn split_shared(shared: Bytes) -> Result<Vec<EncodedWalRecord>, String> {
    let blob: &[u8] = &shared;
    if blob.is_empty() {
        return Err("REPLICATE LOG carries no record".into());
    }
    let mut records = Vec::new();
    let mut rest = blob;
    while !rest.is_empty() {
        if records.len() == MAX_LOG_BLOB_RECORDS {
            return Err(format!(
                "REPLICATE LOG carries more than {MAX_LOG_BLOB_RECORDS} records"
            ));
        }
        let offset = blob.len() - rest.len();
        let len = EncodedWalRecord::framed_len(rest).ok_or_else(|| {
            format!(
                "REPLICATE LOG record at byte {offset} is truncated ({} bytes left)",
                rest.len()
            )
        })?;
        let record = EncodedWalRecord::from_bytes(shared.slice(offset..offset + len))
            .map_err(|e| format!("REPLICATE LOG record at byte {offset}: {e}"))?;
        records.push(record);
        rest = &rest[len..];
    }
    Ok(records)
}

/// How a master sends part of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// These records (indexes into the window) as one `REPLICATE LOG` blob.
    Log(Range<usize>),
    /// The record at this index alone, in `REPLICATE LOGPART` commands of [`LOG_PART_BYTES`]:
    /// it is too large for a blob.
    Parts(usize),
}

/// Cuts a window of records into as few blobs as the limits allow (at most `max_bytes` and
/// [`MAX_LOG_BLOB_RECORDS`] each), in order. A record larger than `max_bytes` on its own
/// becomes a [`Piece::Parts`].
pub(crate) fn plan(records: &[EncodedWalRecord], max_bytes: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, record) in records.iter().enumerate() {
        let len = record.encoded_len();
        let full = i - start == MAX_LOG_BLOB_RECORDS || bytes + len > max_bytes;
        if full && i > start {
            pieces.push(Piece::Log(start..i));
            start = i;
            bytes = 0;
        }
        if len > max_bytes {
            pieces.push(Piece::Parts(i));
            start = i + 1;
        } else {
            bytes += len;
        }
    }
    if start < records.len() {
        pieces.push(Piece::Log(start..records.len()));
    }
    pieces
}

/// A record as a replica received it: parsed from a text command, or as the master's log
/// bytes. Lets one window hold both kinds.
#[derive(Debug, Clone)]
pub(crate) enum WireRecord {
    /// From `REPLICATE PUT / DELETE / BATCHPUT / BATCH`.
    Text(WalRecord),
    /// From `REPLICATE LOG`.
    Log(EncodedWalRecord),
}

impl ReplicatedRecord for WireRecord {
    fn lsn(&self) -> Lsn {
        match self {
            WireRecord::Text(record) => record.lsn,
            WireRecord::Log(record) => record.lsn(),
        }
    }

    fn encoded(&self) -> kvstore_core::Result<Cow<'_, EncodedWalRecord>> {
        match self {
            WireRecord::Text(record) => record.encoded(),
            WireRecord::Log(record) => Ok(Cow::Borrowed(record)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvstore_core::Op;

    fn record(lsn: Lsn, value_len: usize) -> EncodedWalRecord {
        EncodedWalRecord::from(&WalRecord {
            lsn,
            ops: vec![Op::Put {
                key: b"k".to_vec(),
                value: vec![b'v'; value_len],
            }],
        })
    }

    fn blob(records: &[EncodedWalRecord]) -> Vec<u8> {
        records.iter().flat_map(|r| r.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_blob_splits_back_into_its_records() {
        let sent = vec![record(1, 3), record(2, 200), record(3, 0)];
        assert_eq!(split(&blob(&sent)), Ok(sent));
    }

    #[test]
    fn cut_or_damaged_headers_are_refused() {
        let sent = vec![record(1, 3), record(2, 5)];
        let whole = blob(&sent);
        assert!(split(&[]).is_err());
        // Cut anywhere: inside the second header, inside its body, one byte short.
        for cut in [
            whole.len() - 1,
            sent[0].encoded_len() + 3,
            // Past the second record's 24-byte header, inside its operation.
            sent[0].encoded_len() + 26,
        ] {
            let err = split(&whole[..cut]).err().unwrap_or_default();
            assert!(err.contains("truncated"), "{err}");
        }
        let mut damaged = whole.clone();
        damaged[sent[0].encoded_len() + 9] ^= 1; // the second record's LSN
        assert!(split(&damaged).is_err());
        // A body length near u32::MAX is checked against what arrived, never allocated.
        let mut huge = whole;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes()); // the header's body length
        assert!(split(&huge).is_err());
    }

    #[test]
    fn windows_are_cut_by_bytes_and_oversized_records_go_alone() {
        let small = record(1, 10).encoded_len();
        let records = vec![record(1, 10), record(2, 10), record(3, 10), record(4, 10)];
        assert_eq!(plan(&records, 4 * small), vec![Piece::Log(0..4)]);
        assert_eq!(
            plan(&records, 2 * small + 1),
            vec![Piece::Log(0..2), Piece::Log(2..4)]
        );
        let records = vec![record(1, 10), record(2, 500), record(3, 10)];
        assert_eq!(
            plan(&records, 100),
            vec![Piece::Log(0..1), Piece::Parts(1), Piece::Log(2..3)]
        );
        assert_eq!(plan(&[], 100), Vec::new());
    }
}
