//! The file seam: segment files are reached through [`Vfs`] and [`FileIo`] so that tests can
//! inject failing or tearing writes and failing fsyncs ([`FaultyVfs`]).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The source of [`FileIo::preallocate`]'s zeros. A static, not a fresh buffer per call: a
/// newly allocated megabyte is fresh pages, and the kernel faulted each one in as it copied
/// from it (seen in a profile of a replica applying a write burst).
static ZEROS: [u8; 256 << 10] = [0; 256 << 10];

/// A random-access file as the engine uses it.
pub trait FileIo: Send + Sync + fmt::Debug {
    /// Fills `buf` from `offset`; fails with `UnexpectedEof` past the end.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Writes `len` zeros at `offset`: space allocated ahead of the log's end, so that a later
    /// `fdatasync` need not commit a size change. The default writes them in 256 KiB pieces.
    fn preallocate(&self, offset: u64, len: u64) -> io::Result<()> {
        let mut at = offset;
        let end = offset.saturating_add(len);
        while at < end {
            let n = ZEROS.len().min((end - at) as usize);
            self.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }
    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Current length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Declares that the file will never be written, truncated or extended again (a sealed
    /// segment), so that an implementation may serve reads from a memory map. Default: no-op.
    fn seal(&self) -> io::Result<()> {
        Ok(())
    }
    /// The whole file as bytes in memory, if it is mapped (sealed). Lets a reader check a
    /// value in place and copy only the value. Default: `None`.
    fn mapped(&self) -> Option<&[u8]> {
        None
    }
    /// Asks the CPU to start loading `[offset, offset + len)` into its cache where those bytes
    /// are in memory, so that reading them moments later does not wait for memory: a hint
    /// that reads nothing and never fails. Default: the mapped bytes' first and last lines,
    /// if the file is mapped.
    fn prefetch(&self, offset: u64, len: usize) {
        if let (Some(bytes), Ok(start)) = (self.mapped(), usize::try_from(offset)) {
            prefetch(bytes, start);
            prefetch(bytes, start.saturating_add(len).saturating_sub(1));
        }
    }
}

/// Seals `file` (see [`FileIo::seal`]); a failure only costs speed, so it is logged.
pub(crate) fn seal_for_reads(file: &dyn FileIo) {
    if let Err(e) = file.seal() {
        tracing::warn!(error = %e, "could not map a sealed segment; reading it with pread");
    }
}

/// Asks the CPU to start loading the cache line that holds `items[at]` (nothing if `at` is
/// out of range, or on other architectures). A scan in key order reads values that lie in
/// the log in write order, i.e. all over memory; prefetching a few entries ahead keeps several
/// of those cache misses in flight instead of one (measured: a full scan of 200,000 keys went
/// from 8 to 16 million keys/s). Plain loads would not do: the CPU cannot retire past a load
/// that misses, so its window fills up with them.
#[inline]
pub(crate) fn prefetch<T>(items: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = items.get(at) {
        #[allow(unsafe_code)]
        // SAFETY: PREFETCHT0 is a hint with no architectural effect: it reads nothing into the
        // program, writes nothing and never faults, whatever the address; this one is moreover
        // the address of a live, in-bounds item of `items`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                std::ptr::from_ref(item).cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (items, at);
}

/// Opens files and syncs directories.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Opens `path` for reading and writing, creating it when `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>>;
    /// Makes the directory's entries (created, renamed, deleted files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsVfs;

/// A real file. Once sealed it is memory-mapped and reads are copies out of the page cache,
/// with no system call: a value read costs about a fifth of a `pread`.
#[derive(Debug)]
struct OsFile {
    file: File,
    map: OnceLock<memmap2::Mmap>,
}

fn sealed_error() -> io::Error {
    io::Error::other("a sealed (memory-mapped) segment file cannot be written or resized")
}

impl FileIo for OsFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self.map.get() {
            Some(map) => {
                let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
                let src = start
                    .checked_add(buf.len())
                    .and_then(|end| map.get(start..end))
                    .ok_or(io::ErrorKind::UnexpectedEof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
            None => self.file.read_exact_at(buf, offset),
        }
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.map.get().is_some() {
            return Err(sealed_error());
        }
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.map.get().is_some() {
            return Err(sealed_error());
        }
        self.file.set_len(len)
    }
    #[allow(unsafe_code)]
    fn seal(&self) -> io::Result<()> {
        if self.map.get().is_some() || self.file.metadata()?.len() == 0 {
            return Ok(());
        }
        // SAFETY: a mapping is unsound only if the file changes under it (a truncation makes
        // reads fault with SIGBUS). Sealed segments are immutable: the engine never writes or
        // resizes them (this type refuses to once mapped), the directory's lock file keeps any
        // other kvstore process out, and files are only ever deleted, which keeps the mapping
        // valid until it is dropped. Reads are bounds-checked against the mapping's length.
        let map = unsafe { memmap2::Mmap::map(&self.file)? };
        // Already mapped by a racing caller: dropping the spare mapping is harmless.
        let _ = self.map.set(map);
        Ok(())
    }
    fn mapped(&self) -> Option<&[u8]> {
        self.map.get().map(|m| &m[..])
    }
}

impl Vfs for OsVfs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(OsFile {
            file,
            map: OnceLock::new(),
        }))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// A [`Vfs`] over the real file system that fails on command, for fault-injection tests.
///
/// Counters are shared by every file it opened. After `fail_syncs_after(n)`, the (n+1)-th
/// and later `sync_data` calls fail; after `fail_writes_after(n)` the later writes fail;
/// after `tear_writes_after(n)` the later writes store only half their bytes and then fail,
/// as a crash in the middle of a write would leave them; after `delay_syncs(d)` every sync
/// takes `d` longer.
#[derive(Debug, Clone, Default)]
pub struct FaultyVfs {
    faults: Arc<Faults>,
}

#[derive(Debug, Default)]
struct Faults {
    syncs: AtomicU64,
    writes: AtomicU64,
    syncs_allowed: AtomicU64,
    writes_allowed: AtomicU64,
    sync_limit_on: AtomicBool,
    write_limit_on: AtomicBool,
    tear: AtomicBool,
    sync_delay_ms: AtomicU64,
    syncs_finished: AtomicU64,
}

impl FaultyVfs {
    /// A seam that behaves like the real file system until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }
    /// Lets `n` more syncs succeed, then fails every later one.
    pub fn fail_syncs_after(&self, n: u64) {
        self.faults.syncs_allowed.store(
            self.faults.syncs.load(Ordering::SeqCst) + n,
            Ordering::SeqCst,
        );
        self.faults.sync_limit_on.store(true, Ordering::SeqCst);
    }
    /// Lets `n` more writes succeed, then fails every later one.
    pub fn fail_writes_after(&self, n: u64) {
        self.faults.writes_allowed.store(
            self.faults.writes.load(Ordering::SeqCst) + n,
            Ordering::SeqCst,
        );
        self.faults.write_limit_on.store(true, Ordering::SeqCst);
        self.faults.tear.store(false, Ordering::SeqCst);
    }
    /// Lets `n` more writes succeed, then writes half of each later one and fails it.
    pub fn tear_writes_after(&self, n: u64) {
        self.fail_writes_after(n);
        self.faults.tear.store(true, Ordering::SeqCst);
    }
    /// Makes every later sync take `delay` longer, as a slow disk would.
    pub fn delay_syncs(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.faults.sync_delay_ms.store(ms, Ordering::SeqCst);
    }
    /// How many syncs were started so far (finished or not).
    pub fn syncs_started(&self) -> u64 {
        self.faults.syncs.load(Ordering::SeqCst)
    }
    /// How many syncs returned so far (successfully or not).
    pub fn syncs_finished(&self) -> u64 {
        self.faults.syncs_finished.load(Ordering::SeqCst)
    }
    /// Stops injecting faults: failures, torn writes and sync delays.
    pub fn heal(&self) {
        self.faults.sync_limit_on.store(false, Ordering::SeqCst);
        self.faults.write_limit_on.store(false, Ordering::SeqCst);
        self.faults.tear.store(false, Ordering::SeqCst);
        self.faults.sync_delay_ms.store(0, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn FileIo>,
    faults: Arc<Faults>,
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl FileIo for FaultyFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let f = &self.faults;
        let n = f.writes.fetch_add(1, Ordering::SeqCst);
        if f.write_limit_on.load(Ordering::SeqCst) && n >= f.writes_allowed.load(Ordering::SeqCst) {
            if f.tear.load(Ordering::SeqCst) {
                self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
            }
            return Err(injected("write"));
        }
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        let f = &self.faults;
        let n = f.syncs.fetch_add(1, Ordering::SeqCst);
        let result = if f.sync_limit_on.load(Ordering::SeqCst)
            && n >= f.syncs_allowed.load(Ordering::SeqCst)
        {
            Err(injected("fsync"))
        } else {
            let delay = f.sync_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                std::thread::sleep(std::time::Duration::from_millis(delay));
            }
            self.inner.sync_data()
        };
        f.syncs_finished.fetch_add(1, Ordering::SeqCst);
        result
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn seal(&self) -> io::Result<()> {
        self.inner.seal()
    }
    fn mapped(&self) -> Option<&[u8]> {
        self.inner.mapped()
    }
}

impl Vfs for FaultyVfs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>> {
        Ok(Arc::new(FaultyFile {
            inner: OsVfs.open(path, create)?,
            faults: self.faults.clone(),
        }))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsVfs.sync_dir(dir)
    }
}
