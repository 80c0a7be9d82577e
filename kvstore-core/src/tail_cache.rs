//! The active segment's newest bytes, kept in memory as well as in its file.
//!
//! Sealed segments are memory-mapped, so reading a value from them is a copy with no system
//! call. The active segment cannot be mapped safely (it grows and is trimmed), so without this
//! every read of a recent write — the values most often read — and every scanned value that
//! still lives in the active segment would cost a `pread`, several times a mapped read. The
//! commit leader's writes pass through [`CachedTail`], which mirrors them into a buffer that
//! reads are served from; once the segment is sealed and mapped the buffer is dropped.
//!
//! The mirror is exact: it holds the file's bytes over `[base, base + len)` as this process
//! wrote them, in place for writes inside that range and appended for writes that continue
//! it. A write that would leave a gap is not mirrored, and the mirror stops growing at its
//! byte budget, so memory stays bounded by about one segment; reads outside the mirror go to
//! the file.

use std::io;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::io::FileIo;

/// A segment file whose written bytes are mirrored in memory until it is sealed.
#[derive(Debug)]
pub(crate) struct CachedTail {
    inner: Arc<dyn FileIo>,
    mirror: RwLock<Mirror>,
}

#[derive(Debug)]
struct Mirror {
    /// File offset of `bytes[0]`.
    base: u64,
    bytes: Vec<u8>,
    /// Most bytes the mirror may hold.
    budget: usize,
}

impl Mirror {
    fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// Mirrors a successful write of `buf` at `offset`.
    fn note_write(&mut self, buf: &[u8], offset: u64) {
        if offset < self.base || offset > self.end() {
            return;
        }
        let at = (offset - self.base) as usize;
        let overlap = (self.bytes.len() - at).min(buf.len());
        self.bytes[at..at + overlap].copy_from_slice(&buf[..overlap]);
        let room = self.budget.saturating_sub(self.bytes.len());
        let rest = &buf[overlap..];
        self.bytes.extend_from_slice(&rest[..rest.len().min(room)]);
    }

    fn read(&self, buf: &mut [u8], offset: u64) -> bool {
        let Some(end) = offset.checked_add(buf.len() as u64) else {
            return false;
        };
        if offset < self.base || end > self.end() {
            return false;
        }
        let at = (offset - self.base) as usize;
        buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
        true
    }
}

/// Most bytes a mirror holds, whatever the segment size: 64 MiB.
const MAX_BUDGET: u64 = 64 << 20;

impl CachedTail {
    /// What a mirror may hold for segments of `segment_bytes`: one segment and the zeros
    /// preallocated past its end.
    pub(crate) fn budget_for(segment_bytes: u64) -> usize {
        (segment_bytes + crate::commit::PREALLOCATE_BYTES).min(MAX_BUDGET) as usize
    }

    /// Wraps `inner`, whose bytes before `base` are not mirrored (already written before).
    /// The mirror holds at most `budget` bytes.
    pub(crate) fn wrap(inner: Arc<dyn FileIo>, base: u64, budget: usize) -> Arc<dyn FileIo> {
        Arc::new(CachedTail {
            inner,
            mirror: RwLock::new(Mirror {
                base,
                // Reserved up front (address space only, until written): growing by doubling
                // would copy up to a whole segment under the lock, several times over.
                bytes: Vec::with_capacity(budget),
                budget,
            }),
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

    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        let mut mirror = self.mirror.write();
        if len < mirror.end() {
            let keep = len.saturating_sub(mirror.base) as usize;
            mirror.bytes.truncate(keep);
        }
        Ok(())
    }

    fn seal(&self) -> io::Result<()> {
        self.inner.seal()?;
        // Mapped now: reads take the mapping, so the copy is only memory.
        let mut mirror = self.mirror.write();
        mirror.bytes = Vec::new();
        mirror.budget = 0;
        Ok(())
    }

    fn mapped(&self) -> Option<&[u8]> {
        self.inner.mapped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(base: u64, budget: usize) -> Mirror {
        Mirror {
            base,
            bytes: Vec::new(),
            budget,
        }
    }

    #[test]
    fn mirrors_appends_and_overwrites_in_place() {
        let mut m = mirror(10, 100);
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

    #[test]
    fn never_serves_bytes_it_does_not_have() {
        let mut m = mirror(10, 6);
        m.note_write(b"abc", 9); // starts before the base: not mirrored
        m.note_write(b"abc", 14); // would leave a gap: not mirrored
        assert!(m.bytes.is_empty());
        m.note_write(b"abcdefgh", 10); // over budget: only a prefix is kept
        assert_eq!(m.bytes, b"abcdef");
        let mut out = [0u8; 2];
        assert!(!m.read(&mut out, 9));
        assert!(!m.read(&mut out, 15));
        assert!(!m.read(&mut out, u64::MAX));
        assert!(m.read(&mut out, 14));
        assert_eq!(&out, b"ef");
    }
}
