//! A crash in the middle of appending leaves a torn last record in the active segment. For
//! every byte offset inside that record, a store cut there must open, keep every earlier
//! write, drop the torn record (a whole batch), truncate the file at the last valid record,
//! and say so in a warning naming the file and offset.

mod common;

use std::sync::{Arc, Mutex};

use common::{active_segment, copy_dir, dump, records, truncate, TestResult};
use kvstore_core::{KvStore, Options, SyncPolicy, WriteBatch};
use tracing::field::{Field, Visit};

/// The warnings and errors logged while it is the current subscriber.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            let mut line = Line(format!("{} ", event.metadata().level()));
            event.record(&mut line);
            if let Ok(mut lines) = self.0.lock() {
                lines.push(line.0);
            }
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn every_cut_inside_the_last_record_drops_just_that_record() -> TestResult {
    let pristine = tempfile::tempdir()?;
    let opts = Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(4096);
    {
        // Enough writes for sealed segments with hints, then a batch as the last record.
        let store = opts.clone().open(pristine.path())?;
        for i in 0..120u32 {
            store.put(
                format!("key{i:03}"),
                format!("value-{i}-{}", "v".repeat(20)),
            )?;
        }
        let mut batch = WriteBatch::new();
        batch
            .put("key000", "batch-new-value")
            .put("batch-only", "present only with the batch")
            .delete("key001");
        store.write_batch(batch)?;
    }
    let store = KvStore::open(pristine.path())?;
    let whole = dump(&store)?;
    let last_lsn = store.last_lsn();
    drop(store);
    let active = active_segment(pristine.path())?;
    let last = *records(&active.path)?
        .last()
        .ok_or("active segment holds no record")?;
    assert_eq!(
        last.lsn, last_lsn,
        "the batch must be the active segment's last record"
    );
    let bytes = std::fs::read(&active.path)?;
    assert!(
        bytes[(last.offset + last.len) as usize..]
            .iter()
            .all(|b| *b == 0),
        "only preallocated zeros may follow the last record"
    );

    let mut before: Vec<(Vec<u8>, Vec<u8>)> = whole
        .iter()
        .filter(|(k, _)| k.as_slice() != b"batch-only")
        .cloned()
        .collect();
    for (k, v) in before.iter_mut() {
        if k.as_slice() == b"key000" {
            *v = format!("value-0-{}", "v".repeat(20)).into_bytes();
        }
    }
    before.push((
        b"key001".to_vec(),
        format!("value-1-{}", "v".repeat(20)).into_bytes(),
    ));
    before.sort();

    for cut in last.offset..last.offset + last.len {
        let dir = tempfile::tempdir()?;
        copy_dir(pristine.path(), dir.path())?;
        let path = dir
            .path()
            .join(active.path.file_name().ok_or("no file name")?);
        truncate(&path, cut)?;
        let capture = Capture::default();
        let opened = tracing::subscriber::with_default(capture.clone(), || {
            opts.clone()
                .sync_policy(SyncPolicy::Always)
                .open(dir.path())
        });
        let store = opened.map_err(|e| format!("open after a cut at {cut} failed: {e}"))?;
        assert_eq!(store.last_lsn(), last_lsn - 1, "cut at {cut}");
        assert_eq!(dump(&store)?, before, "cut at {cut}");
        let bytes = std::fs::read(&path)?;
        assert!(
            bytes.len() as u64 >= last.offset
                && bytes[last.offset as usize..].iter().all(|b| *b == 0),
            "cut at {cut}: the torn record was not truncated away"
        );
        if cut > last.offset {
            let lines = capture.0.lock().map_err(|_| "capture poisoned")?.clone();
            let reported = lines.iter().any(|l| {
                l.starts_with("WARN")
                    && l.contains(&format!("offset={} ", last.offset))
                    && l.contains(&path.display().to_string())
            });
            assert!(
                reported,
                "cut at {cut}: no warning about the torn tail in {lines:?}"
            );
        }
        // The store goes on from there: the next write takes the dropped record's LSN.
        assert_eq!(store.put("after", "crash")?, last_lsn);
        drop(store);
        let store = KvStore::open(dir.path())?;
        assert_eq!(store.get("after")?, Some(b"crash".to_vec()));
        assert_eq!(store.get("batch-only")?, None);
    }
    Ok(())
}
