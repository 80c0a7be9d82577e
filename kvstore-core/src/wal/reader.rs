//! Sequential reading of the records of one segment file.

use std::sync::Arc;

use crate::io::FileIo;
use crate::wal::record::{self, DecodeError, Spans, RECORD_HEADER_BYTES};
use crate::Lsn;

/// Reads ahead in blocks of this size.
const READ_AHEAD_BYTES: usize = 1 << 20;

/// One valid record: its file offset, LSN, bytes and op spans (relative to `bytes`).
#[derive(Debug)]
pub(crate) struct RawRecord<B = Vec<u8>> {
    pub offset: u64,
    pub lsn: Lsn,
    pub bytes: B,
    pub spans: Spans,
}

/// A valid record whose bytes are borrowed from the reader's buffer: scans that only look at
/// each record once need no copy of it.
pub(crate) type RecordRef<'a> = RawRecord<&'a [u8]>;

/// What the next read found.
#[derive(Debug)]
pub(crate) enum Next<R = RawRecord> {
    Record(R),
    /// Clean end: no bytes left.
    End,
    /// The bytes at `offset` are not a valid record.
    Damaged {
        offset: u64,
        reason: String,
        torn: bool,
    },
}

/// Reads records from `start` up to `end` (exclusive) of a file.
pub(crate) struct RecordReader {
    file: Arc<dyn FileIo>,
    /// The segment's salt, which its records' header checksums cover.
    salt: u32,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl RecordReader {
    pub fn new(file: Arc<dyn FileIo>, salt: u32, start: u64, end: u64) -> Self {
        RecordReader {
            file,
            salt,
            pos: start,
            end,
            buf: Vec::new(),
            buf_start: start,
        }
    }

    /// Offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Makes `[pos, pos + len)` available in the buffer, returning false if the file ends first.
    fn fill(&mut self, len: usize) -> std::io::Result<bool> {
        if self.pos + len as u64 > self.end {
            return Ok(false);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos >= self.buf_start && self.pos + len as u64 <= buf_end {
            return Ok(true);
        }
        let want = len.max(READ_AHEAD_BYTES) as u64;
        let read_len = want.min(self.end - self.pos) as usize;
        self.buf.resize(read_len, 0);
        self.file.read_exact_at(&mut self.buf, self.pos)?;
        self.buf_start = self.pos;
        Ok(true)
    }

    fn slice(&self, len: usize) -> &[u8] {
        let at = (self.pos - self.buf_start) as usize;
        &self.buf[at..at + len]
    }

    /// Whether every byte from the current position to the end is zero. A zeroed stretch
    /// followed by data is damage, not a clean end.
    fn rest_is_zero(&mut self) -> std::io::Result<bool> {
        let mut at = self.pos;
        let mut block = vec![0u8; READ_AHEAD_BYTES.min((self.end - at) as usize)];
        while at < self.end {
            let n = block.len().min((self.end - at) as usize);
            self.file.read_exact_at(&mut block[..n], at)?;
            if block[..n].iter().any(|b| *b != 0) {
                return Ok(false);
            }
            at += n as u64;
        }
        Ok(true)
    }

    /// The next record, owned.
    pub fn next(&mut self) -> std::io::Result<Next> {
        Ok(match self.next_ref()? {
            Next::Record(rec) => Next::Record(RawRecord {
                offset: rec.offset,
                lsn: rec.lsn,
                bytes: rec.bytes.to_vec(),
                spans: rec.spans,
            }),
            Next::End => Next::End,
            Next::Damaged {
                offset,
                reason,
                torn,
            } => Next::Damaged {
                offset,
                reason,
                torn,
            },
        })
    }

    /// The next record, borrowed from the read-ahead buffer until the next call.
    pub fn next_ref(&mut self) -> std::io::Result<Next<RecordRef<'_>>> {
        if self.pos >= self.end {
            return Ok(Next::End);
        }
        let offset = self.pos;
        if !self.fill(RECORD_HEADER_BYTES)? {
            return Ok(Next::Damaged {
                offset,
                reason: "record header cut short".into(),
                torn: true,
            });
        }
        let mut header = [0u8; RECORD_HEADER_BYTES];
        header.copy_from_slice(self.slice(RECORD_HEADER_BYTES));
        if header.iter().all(|b| *b == 0) && self.rest_is_zero()? {
            // The preallocated, never written tail of a log segment.
            return Ok(Next::End);
        }
        let body = match record::body_len(&header) {
            Ok(len) => len,
            Err(reason) => {
                let torn = header.iter().all(|b| *b == 0);
                return Ok(Next::Damaged {
                    offset,
                    reason,
                    torn,
                });
            }
        };
        let total = RECORD_HEADER_BYTES + body;
        if !self.fill(total)? {
            return Ok(Next::Damaged {
                offset,
                reason: format!("record of {total} bytes runs past the end of the file"),
                torn: true,
            });
        }
        let at = (self.pos - self.buf_start) as usize;
        match record::decode(&self.buf[at..at + total], self.salt) {
            Ok((lsn, spans)) => {
                self.pos += total as u64;
                Ok(Next::Record(RawRecord {
                    offset,
                    lsn,
                    bytes: &self.buf[at..at + total],
                    spans,
                }))
            }
            Err(DecodeError::Truncated) => Ok(Next::Damaged {
                offset,
                reason: "zeroed record".into(),
                torn: true,
            }),
            Err(DecodeError::Invalid(reason)) => Ok(Next::Damaged {
                offset,
                reason,
                torn: false,
            }),
        }
    }
}
