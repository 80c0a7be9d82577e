//! `wal_since`: reading committed records in LSN order, for replication catch-up.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::io::FileIo;
use crate::store::Inner;
use crate::wal::reader::{Next, RawRecord, RecordReader};
use crate::wal::record::{clear_synced, ops_of, EncodedWalRecord, WalRecord};
use crate::wal::segment::{segment_path, SegmentId, SEGMENT_HEADER_BYTES};
use crate::Lsn;

/// Iterator over committed records after an LSN, returned by [`crate::KvStore::wal_since`].
///
/// It sees the records committed before it was created. Segments it still has to read stay
/// readable even if compaction removes them meanwhile (the files are held open).
pub struct WalIter {
    dir: std::path::PathBuf,
    after: Lsn,
    last: Lsn,
    /// The segments left to read: id, file, salt, length.
    segments: std::vec::IntoIter<(SegmentId, Arc<dyn FileIo>, u32, u64)>,
    current: Option<(SegmentId, RecordReader)>,
    failed: bool,
}

impl std::fmt::Debug for WalIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalIter")
            .field("after", &self.after)
            .field("last", &self.last)
            .finish()
    }
}

/// The lowest LSN `wal_since` accepts: where the oldest log segment still on disk begins.
///
/// Compaction may rewrite a log segment while an older one stays (it had no dead bytes), which
/// leaves a hole in the log: the log is complete only after the last hole. A hole shows as a
/// log segment starting after the end of the sealed one before it. (After a segment that is
/// not sealed yet, its last records may be unpublished, so no hole is inferred there.)
pub(crate) fn oldest_available(state: &crate::index::State) -> Lsn {
    let mut oldest = 0;
    let mut previous: Option<&crate::index::Segment> = None;
    for (_, s) in state.log_segments() {
        match previous {
            None => oldest = s.lsn_mark,
            Some(p) if p.sealed => {
                let end = if p.is_empty() { p.lsn_mark } else { p.max_lsn };
                if s.lsn_mark > end {
                    oldest = s.lsn_mark;
                }
            }
            Some(_) => {}
        }
        previous = Some(s);
    }
    oldest
}

impl WalIter {
    pub(crate) fn new(inner: &Inner, after: Lsn) -> Result<Self> {
        let state = inner.state.read();
        let last = inner.last_lsn.load(Ordering::Acquire);
        let oldest = oldest_available(&state);
        if after < oldest {
            return Err(Error::WalCompacted {
                requested: after,
                oldest_available: oldest,
            });
        }
        let segments: Vec<_> = state
            .log_segments()
            .filter(|(_, s)| !s.is_empty() && s.max_lsn > after)
            .map(|(id, s)| (*id, s.file.clone(), s.salt, s.len))
            .collect();
        Ok(WalIter {
            dir: inner.dir.clone(),
            after,
            last,
            segments: segments.into_iter(),
            current: None,
            failed: false,
        })
    }

    /// The last LSN committed when the iterator was created; it yields nothing beyond it.
    pub fn end_lsn(&self) -> Lsn {
        self.last
    }
}

impl WalIter {
    /// The next record in its log encoding, as the log holds it (checksums verified while
    /// reading) less the header's note of how far this node's log was synced, which means
    /// nothing elsewhere: what a replica applies, without decoding the operations and
    /// encoding them again. Advances the same position as [`Iterator::next`], so the two may
    /// be mixed.
    pub fn next_encoded(&mut self) -> Option<Result<EncodedWalRecord>> {
        Some(self.next_raw()?.and_then(|mut rec| {
            clear_synced(&mut rec.bytes);
            EncodedWalRecord::from_bytes(rec.bytes)
        }))
    }

    fn next_raw(&mut self) -> Option<Result<RawRecord>> {
        if self.failed {
            return None;
        }
        loop {
            if self.current.is_none() {
                let (id, file, salt, len) = self.segments.next()?;
                self.current = Some((id, RecordReader::new(file, salt, SEGMENT_HEADER_BYTES, len)));
            }
            let (id, reader) = self.current.as_mut()?;
            let id = *id;
            let next = reader
                .next()
                .ctx(|| format!("reading the log in segment {id}"));
            match next {
                Ok(Next::Record(rec)) => {
                    if rec.lsn <= self.after {
                        continue;
                    }
                    if rec.lsn > self.last {
                        self.current = None;
                        self.segments = Vec::new().into_iter();
                        return None;
                    }
                    return Some(Ok(rec));
                }
                Ok(Next::End) => self.current = None,
                Ok(Next::Damaged { offset, reason, .. }) => {
                    self.failed = true;
                    return Some(Err(Error::Corrupt {
                        path: segment_path(&self.dir, id),
                        offset,
                        reason,
                    }));
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Iterator for WalIter {
    type Item = Result<WalRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_raw()?.map(|rec| WalRecord {
            lsn: rec.lsn,
            ops: ops_of(&rec.bytes, &rec.spans),
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::{EncodedWalRecord, KvStore, Op, WriteBatch};

    #[test]
    fn encoded_records_are_the_decoded_ones_in_log_encoding(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = KvStore::open(dir.path())?;
        store.put(b"a", b"1")?;
        store.delete(b"a")?;
        let mut batch = WriteBatch::new();
        batch.put(b"b", b"2");
        batch.put(b"c", b"3");
        store.write_batch(batch)?;
        store.put(b"d", vec![7u8; 5000])?;
        let decoded: Vec<_> = store.wal_since(1)?.collect::<crate::Result<Vec<_>>>()?;
        let mut iter = store.wal_since(1)?;
        let mut encoded = Vec::new();
        while let Some(record) = iter.next_encoded() {
            encoded.push(record?);
        }
        assert_eq!(encoded.len(), 3);
        for (e, d) in encoded.iter().zip(&decoded) {
            assert_eq!(e.lsn(), d.lsn);
            assert_eq!(e.to_wal_record()?, *d);
            assert_eq!(e.as_bytes(), EncodedWalRecord::from(d).as_bytes());
        }
        assert!(matches!(decoded[0].ops[0], Op::Delete { .. }));
        Ok(())
    }

    #[test]
    fn encoded_and_decoded_reads_share_one_position() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = KvStore::open(dir.path())?;
        for i in 0..4u8 {
            store.put([i], [i])?;
        }
        let mut iter = store.wal_since(0)?;
        assert_eq!(iter.next_encoded().transpose()?.map(|r| r.lsn()), Some(1));
        assert_eq!(iter.next().transpose()?.map(|r| r.lsn), Some(2));
        assert_eq!(iter.next_encoded().transpose()?.map(|r| r.lsn()), Some(3));
        assert_eq!(iter.next_encoded().transpose()?.map(|r| r.lsn()), Some(4));
        assert!(iter.next_encoded().is_none());
        Ok(())
    }
}
