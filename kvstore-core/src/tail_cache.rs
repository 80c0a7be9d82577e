//! The active segment's newest bytes, kept in memory as well as in its file.
//!
//! Sealed segments are memory-mapped, so reading a value from them is a copy with no system
//! call. The active segment cannot be mapped safely (it grows and is trimmed), so without this
//! every read of a recent write — the values most often read — and every scanned value that
//! still lives in the active segment would cost a `pread`, several times a mapped read. The
//! commit leader's writes pass through [`CachedTail`], which mirrors them into a buffer that
//! reads are served from; once the segment is sealed and mapped the buffer is dropped.
//!
//! The mirror is exact: it holds the file's bytes over `[base, end)` as this process wrote
//! them, in place for writes inside that range and appended for writes that continue it. A
//! write that would leave a gap is not mirrored, nor are preallocated zeros
//! ([`FileIo::preallocate`]). It keeps the newest bytes: past its budget
//! (`Options::tail_cache_bytes`, one segment by default) it drops its oldest chunk, so memory
//! stays bounded and the most recent writes stay cached; reads outside it go to the file.

use std::io;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::io::FileIo;

/// A segment file whose written bytes are mirrored in memory until it is sealed.
#[derive(Debug)]
pub(crate) struct CachedTail {
    inner: Arc<dyn FileIo>,
    mirror: RwLock<Mirror>,
}

/// Bytes per chunk of a mirror: the unit in which old bytes are dropped.
const CHUNK_BYTES: usize = 256 << 10;

/// A store's mirror budget, and the chunks its mirrors are done with: a sealed segment's
/// mirror hands its chunks on to the next active segment's, so that the memory is allocated,
/// and its pages faulted in, once rather than for every segment (measured: page faults in
/// fresh chunks took a tenth of a replica's CPU applying a write burst).
#[derive(Debug)]
pub(crate) struct TailChunks {
    /// Most bytes a mirror keeps (rounded up to whole chunks); 0 keeps nothing.
    budget: usize,
    spare: Mutex<Vec<Vec<u8>>>,
}

impl TailChunks {
    pub(crate) fn new(budget: usize) -> Arc<Self> {
        Arc::new(TailChunks {
            budget,
            spare: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> Vec<u8> {
        self.spare
            .lock()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES))
    }

    /// Keeps `chunk` for the next mirror, up to one mirror's worth.
    fn give(&self, mut chunk: Vec<u8>) {
        chunk.clear();
        let mut spare = self.spare.lock();
        if chunk.capacity() == CHUNK_BYTES && spare.len() < self.budget.div_ceil(CHUNK_BYTES) {
            spare.push(chunk);
        }
    }
}

#[derive(Debug)]
struct Mirror {
    /// File offset of the first byte of `chunks[0]`.
    base: u64,
    /// Every chunk but the last holds exactly `CHUNK_BYTES`.
    chunks: std::collections::VecDeque<Vec<u8>>,
    len: usize,
    /// Most bytes to keep (rounded up to whole chunks); 0 keeps nothing.
    budget: usize,
    /// Where chunks come from and go back to.
    pool: Arc<TailChunks>,
}

impl Mirror {
    fn new(base: u64, pool: Arc<TailChunks>) -> Self {
        Mirror {
            base,
            chunks: std::collections::VecDeque::new(),
            len: 0,
            budget: pool.budget,
            pool,
        }
    }

    fn end(&self) -> u64 {
        self.base + self.len as u64
    }

    /// Mirrors a successful write of `buf` at `offset`: the part inside the window is copied
    /// in place, a part that continues the window is appended; a write past the window's end
    /// (it would leave a gap) is not mirrored.
    fn note_write(&mut self, buf: &[u8], offset: u64) {
        let stop = offset.saturating_add(buf.len() as u64);
        let start = offset.max(self.base);
        if self.budget == 0 || start > self.end() || stop <= start {
            return;
        }
        let from = (start - offset) as usize;
        let at = (start - self.base) as usize;
        let overlap = (self.len - at).min(buf.len() - from);
        self.copy_in(at, &buf[from..from + overlap]);
        let mut rest = &buf[from + overlap..];
        while !rest.is_empty() {
            if self.chunks.back().is_none_or(|c| c.len() == CHUNK_BYTES) {
                self.chunks.push_back(self.pool.take());
            }
            let Some(last) = self.chunks.back_mut() else {
                return;
            };
            let n = (CHUNK_BYTES - last.len()).min(rest.len());
            last.extend_from_slice(&rest[..n]);
            self.len += n;
            rest = &rest[n..];
        }
        while self.len > self.budget.next_multiple_of(CHUNK_BYTES) {
            let Some(oldest) = self.chunks.pop_front() else {
                break;
            };
            self.base += oldest.len() as u64;
            self.len -= oldest.len();
            self.pool.give(oldest);
        }
    }

    /// Overwrites mirrored bytes from index `at` (relative to `base`) on.
    fn copy_in(&mut self, mut at: usize, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let Some(chunk) = self.chunks.get_mut(at / CHUNK_BYTES) else {
                return;
            };
            let from = at % CHUNK_BYTES;
            let n = (chunk.len() - from).min(bytes.len());
            chunk[from..from + n].copy_from_slice(&bytes[..n]);
            at += n;
            bytes = &bytes[n..];
        }
    }

    fn read(&self, buf: &mut [u8], offset: u64) -> bool {
        let Some(end) = offset.checked_add(buf.len() as u64) else {
            return false;
        };
        if offset < self.base || end > self.end() {
            return false;
        }
        let mut at = (offset - self.base) as usize;
        let mut out = &mut buf[..];
        while !out.is_empty() {
            let Some(chunk) = self.chunks.get(at / CHUNK_BYTES) else {
                return false;
            };
            let from = at % CHUNK_BYTES;
            let n = (chunk.len() - from).min(out.len());
            out[..n].copy_from_slice(&chunk[from..from + n]);
            at += n;
            out = &mut out[n..];
        }
        true
    }

    /// Prefetches the mirrored bytes at `offset` and `offset + len - 1`, where mirrored.
    fn prefetch(&self, offset: u64, len: usize) {
        let last = offset.saturating_add(len as u64).saturating_sub(1);
        for at in [offset, last] {
            let Some(at) = at
                .checked_sub(self.base)
                .and_then(|at| usize::try_from(at).ok())
            else {
                continue;
            };
            if let Some(chunk) = self.chunks.get(at / CHUNK_BYTES) {
                crate::io::prefetch(chunk, at % CHUNK_BYTES);
            }
        }
    }

    /// Drops every byte and keeps none from now on.
    fn clear(&mut self) {
        for chunk in std::mem::take(&mut self.chunks) {
            self.pool.give(chunk);
        }
        self.base = self.end();
        self.len = 0;
        self.budget = 0;
    }

    /// Forgets the bytes from file offset `len` on (the file was cut there).
    fn truncate(&mut self, len: u64) {
        if len >= self.end() {
            return;
        }
        let keep = len.saturating_sub(self.base) as usize;
        for chunk in self.chunks.drain(keep.div_ceil(CHUNK_BYTES)..) {
            self.pool.give(chunk);
        }
        if let Some(last) = self.chunks.back_mut() {
            last.truncate(keep - (keep.div_ceil(CHUNK_BYTES).max(1) - 1) * CHUNK_BYTES);
        }
        self.len = keep;
        if keep == 0 {
            self.base = len.max(self.base);
        }
    }
}

impl CachedTail {
    /// Wraps `inner`, whose bytes before `base` are not mirrored (already written before).
    /// The mirror keeps about the newest `chunks.budget` bytes (0: none).
    pub(crate) fn wrap(
        inner: Arc<dyn FileIo>,
        base: u64,
        chunks: &Arc<TailChunks>,
    ) -> Arc<dyn FileIo> {
        Arc::new(CachedTail {
            inner,
            mirror: RwLock::new(Mirror::new(base, chunks.clone())),
        })
    }
}

impl FileIo for CachedTail {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if self.mirror.read().read(buf, offset) {
            return Ok(());
        }
        self.inner.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        // Mirrored only once the file has the bytes. Readers cannot see the gap: one commit
        // leader at a time writes, and it publishes a record (letting anyone read it) only
        // after this returned.
        self.inner.write_all_at(buf, offset)?;
        self.mirror.write().note_write(buf, offset);
        Ok(())
    }

    fn preallocate(&self, offset: u64, len: u64) -> io::Result<()> {
        // Zeros ahead of the log's end are not worth memory, and would push the newest
        // records out of the window.
        self.inner.preallocate(offset, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        self.mirror.write().truncate(len);
        Ok(())
    }

    fn seal(&self) -> io::Result<()> {
        self.inner.seal()?;
        // Mapped now: reads take the mapping, so the copy is only memory.
        self.mirror.write().clear();
        Ok(())
    }

    fn mapped(&self) -> Option<&[u8]> {
        self.inner.mapped()
    }

    fn prefetch(&self, offset: u64, len: usize) {
        if self.inner.mapped().is_some() {
            return self.inner.prefetch(offset, len);
        }
        // Only a hint: not worth waiting for a writer that holds the mirror.
        if let Some(mirror) = self.mirror.try_read() {
            mirror.prefetch(offset, len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_appends_and_overwrites_in_place() {
        let mut m = Mirror::new(10, TailChunks::new(100));
        m.note_write(&[0; 8], 10); // preallocated zeros
        m.note_write(b"abc", 10); // a record over them
        m.note_write(b"defgh", 13);
        m.note_write(b"ij", 18); // continues past the zeros
        let mut out = [0u8; 10];
        assert!(m.read(&mut out, 10));
        assert_eq!(&out, b"abcdefghij");
        let mut partial = [0u8; 3];
        assert!(m.read(&mut partial, 15));
        assert_eq!(&partial, b"fgh");
    }

    /// A prefetch is a hint: any range, mirrored or not, empty or overflowing, is accepted
    /// without effect on what reads return.
    #[test]
    fn prefetch_takes_any_range() {
        let mut m = Mirror::new(10, TailChunks::new(1 << 20));
        m.note_write(&vec![7u8; CHUNK_BYTES + 100], 10);
        for (offset, len) in [
            (0, 0),
            (0, 5),
            (9, 2),
            (10, 0),
            (10, CHUNK_BYTES + 100),
            (CHUNK_BYTES as u64 + 5, 50),
            (CHUNK_BYTES as u64 + 200, 10),
            (u64::MAX, usize::MAX),
        ] {
            m.prefetch(offset, len);
        }
        let mut out = vec![0u8; CHUNK_BYTES + 100];
        assert!(m.read(&mut out, 10));
        assert!(out.iter().all(|b| *b == 7));
    }

    #[test]
    fn never_serves_bytes_it_does_not_have() {
        let mut m = Mirror::new(10, TailChunks::new(100));
        m.note_write(b"xyz", 9); // starts before the base: only "yz" is inside
        assert_eq!(m.len, 2);
        m.note_write(b"abc", 14); // would leave a gap: not mirrored
        assert_eq!(m.len, 2);
        m.note_write(b"abcdef", 10);
        assert_eq!(m.len, 6);
        let mut out = [0u8; 2];
        assert!(!m.read(&mut out, 9));
        assert!(!m.read(&mut out, 15));
        assert!(!m.read(&mut out, u64::MAX));
        assert!(m.read(&mut out, 14));
        assert_eq!(&out, b"ef");
        m.truncate(13);
        assert!(!m.read(&mut out, 12));
        let mut none = Mirror::new(0, TailChunks::new(0));
        none.note_write(b"abc", 0);
        assert!(!none.read(&mut out, 0));
    }

    #[test]
    fn keeps_the_newest_bytes_across_chunks() {
        // A model: the file's bytes, written in odd-sized pieces that straddle chunk edges.
        let mut file = Vec::new();
        let mut m = Mirror::new(0, TailChunks::new(2 * CHUNK_BYTES));
        let mut byte = 0u8;
        while file.len() < 5 * CHUNK_BYTES + 123 {
            let piece: Vec<u8> = (0..70_001)
                .map(|_| {
                    byte = byte.wrapping_add(7);
                    byte
                })
                .collect();
            m.note_write(&piece, file.len() as u64);
            file.extend_from_slice(&piece);
        }
        // Rewrite a stretch that straddles a chunk edge, as a record over preallocated zeros.
        let edge = m.base as usize + CHUNK_BYTES - 10;
        m.note_write(&[1; 20], edge as u64);
        file[edge..edge + 20].fill(1);
        assert!(m.len <= 2 * CHUNK_BYTES && m.len > CHUNK_BYTES);
        assert_eq!(m.end(), file.len() as u64);
        let mut out = vec![0u8; 3000];
        for start in (m.base..m.end() - 3000).step_by(9_999) {
            assert!(m.read(&mut out, start));
            assert_eq!(out, file[start as usize..start as usize + 3000]);
        }
        assert!(
            !m.read(&mut out, m.base - 1),
            "dropped bytes are not served"
        );
        // A write that starts before the window and runs into it updates the part inside.
        let before = m.base as usize - 4;
        m.note_write(&[9; 8], before as u64);
        file[before..before + 8].fill(9);
        let mut four = [0u8; 4];
        assert!(m.read(&mut four, m.base));
        assert_eq!(four, [9; 4]);
        let cut = m.base + CHUNK_BYTES as u64 + 5;
        m.truncate(cut);
        assert_eq!(m.end(), cut);
        let mut last = [0u8; 5];
        assert!(m.read(&mut last, cut - 5));
        assert_eq!(last[..], file[cut as usize - 5..cut as usize]);
        m.note_write(b"xyz", cut);
        assert!(m.read(&mut last[..3], cut));
        assert_eq!(&last[..3], b"xyz");
    }
}
