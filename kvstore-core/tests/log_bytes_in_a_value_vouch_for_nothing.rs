//! A torn write whose surviving pages hold, inside a value, bytes of another store's log
//! opens like any torn write: those records do not vouch for the hole.
//!
//! After damage in the active segment, recovery tries every offset past it for a record
//! saying the damaged bytes had been synced. A value holding a copy of another store's log
//! (a backup of segment files kept in a store, say) holds whole records whose checksums
//! hold, and whose synced notes mean nothing here; one past this log's last valid LSN turned
//! a torn, unsynced write into `Error::Corrupt` (found in review). Record header checksums
//! now cover their segment file's random salt, so another file's records never validate.
//!
//! Sequence: store A writes 300 puts, flushes, writes 20 more (their headers say "synced
//! through 300"). Store B (`Never`) writes a few small puts and flushes, then puts one value
//! holding 8 KiB of filler and then A's last 30 records. A power loss keeps every page of that
//! write except its first. B must open with its synced puts.

mod common;

use std::sync::Arc;

use common::{PageLossVfs, TestResult};
use kvstore_core::{Options, SyncPolicy};

fn opts() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .auto_compaction(false)
}

#[test]
fn log_bytes_inside_a_value_do_not_vouch_for_a_hole() -> TestResult {
    // Store A: records whose headers say the log was synced through LSN 300.
    let a_dir = tempfile::tempdir()?;
    {
        let a = opts().open(a_dir.path())?;
        for i in 0..300u32 {
            a.put(format!("a{i:04}"), vec![b'a'; 64])?;
        }
        a.flush()?;
        for i in 0..20u32 {
            a.put(format!("late{i:02}"), vec![b'l'; 64])?;
        }
    }
    let a_seg = common::active_segment(a_dir.path())?;
    let a_bytes = std::fs::read(&a_seg.path)?;
    // A chunk of A's log: its last records, written after its flush.
    let spans = common::records(&a_seg.path)?;
    let from = spans
        .iter()
        .find(|r| r.lsn > 290)
        .ok_or("A has no late records")?;
    let to = spans.last().map_or(0, |r| r.offset + r.len);
    let mut backup = vec![b'-'; 8 << 10];
    backup.extend_from_slice(&a_bytes[from.offset as usize..to as usize]);

    // Store B: a few synced puts, then one unsynced put of A's bytes.
    let dir = tempfile::tempdir()?;
    let vfs = Arc::new(PageLossVfs::default());
    let b = opts().vfs(vfs.clone()).open(dir.path())?;
    for i in 0..3u32 {
        b.put(format!("b{i}"), b"synced")?;
    }
    b.flush()?;
    let synced = b.last_lsn();
    b.put(b"backup-of-a", &backup)?;

    // Power loss: the first page written since the sync is lost, the later ones are kept.
    let after = tempfile::tempdir()?;
    let mut lost = None;
    vfs.power_loss_copy(dir.path(), after.path(), |path, page| {
        if path.extension().is_some_and(|e| e == "seg") && lost.is_none() {
            lost = Some(page);
            return true;
        }
        false
    })?;
    drop(b);
    assert!(lost.is_some());

    let reopened = opts()
        .open(after.path())
        .map_err(|e| format!("a torn unsynced write was refused: {e}"))?;
    assert_eq!(reopened.last_lsn(), synced);
    assert_eq!(reopened.get(b"b2")?, Some(b"synced".to_vec()));
    assert_eq!(reopened.get(b"backup-of-a")?, None);
    Ok(())
}
