//! Write batches and the operations they hold.

use crate::wal::record::{encode_op, op_disk_bytes, OpSpan, Spans, RECORD_HEADER_BYTES};

/// One change to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

impl Op {
    /// The key this operation changes.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }

    /// The operation, borrowed.
    pub fn borrowed(&self) -> OpRef<'_> {
        match self {
            Op::Put { key, value } => OpRef::Put { key, value },
            Op::Delete { key } => OpRef::Delete { key },
        }
    }
}

/// An operation borrowed from where it lies: a caller's slices (`put` and `delete` encode
/// straight from them) or a [`WriteBatch`] (whose [`ops`](WriteBatch::ops) yield these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpRef<'a> {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: &'a [u8],
        /// The new value.
        value: &'a [u8],
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
}

impl<'a> OpRef<'a> {
    /// The key this operation changes.
    pub fn key(&self) -> &'a [u8] {
        match self {
            OpRef::Put { key, .. } | OpRef::Delete { key } => key,
        }
    }

    /// The value of a put; `None` for a delete.
    pub fn value(&self) -> Option<&'a [u8]> {
        match self {
            OpRef::Put { value, .. } => Some(value),
            OpRef::Delete { .. } => None,
        }
    }

    /// The operation with its key and value copied.
    pub fn to_op(&self) -> Op {
        match *self {
            OpRef::Put { key, value } => Op::Put {
                key: key.to_vec(),
                value: value.to_vec(),
            },
            OpRef::Delete { key } => Op::Delete { key: key.to_vec() },
        }
    }
}

/// What encoding and validation need of an operation, owned or borrowed.
pub(crate) trait OpView {
    fn key(&self) -> &[u8];
    /// The value of a put; `None` for a delete.
    fn value(&self) -> Option<&[u8]>;
}

impl OpView for Op {
    fn key(&self) -> &[u8] {
        Op::key(self)
    }
    fn value(&self) -> Option<&[u8]> {
        match self {
            Op::Put { value, .. } => Some(value),
            Op::Delete { .. } => None,
        }
    }
}

impl OpView for OpRef<'_> {
    fn key(&self) -> &[u8] {
        OpRef::key(self)
    }
    fn value(&self) -> Option<&[u8]> {
        OpRef::value(self)
    }
}

impl<T: OpView> OpView for &T {
    fn key(&self) -> &[u8] {
        (**self).key()
    }
    fn value(&self) -> Option<&[u8]> {
        (**self).value()
    }
}

/// Puts and deletes committed together: after a crash either all of them are there or none.
///
/// Operations apply in the order they were added, so a later put of the same key wins.
///
/// A batch holds its operations already encoded as the log stores them (each with its
/// checksum, behind room for the record header), so committing it writes these bytes as
/// they are: adding an operation copies its key and value once, into one growing buffer,
/// where a list of owned operations would cost two allocations per operation and a second
/// copy at the commit.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let store = kvstore_core::KvStore::open(dir.path())?;
/// let mut batch = kvstore_core::WriteBatch::new();
/// batch.put(b"a", b"1").put(b"b", b"2").delete(b"c");
/// store.write_batch(batch)?;
/// assert_eq!(store.get(b"b")?, Some(b"2".to_vec()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// Room for the record header, then the encoded operations; empty while there are none.
    record: Vec<u8>,
    /// Where each operation's key and value lie in `record`.
    spans: Vec<BatchSpan>,
}

/// Where one operation of a [`WriteBatch`] lies in its bytes. Full-width offsets: a batch
/// may grow past the largest record (which the commit refuses) before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchSpan {
    key_start: usize,
    key_len: usize,
    value_start: usize,
    value_len: usize,
    is_delete: bool,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `key` → `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.push(key.as_ref(), Some(value.as_ref()));
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.push(key.as_ref(), None);
        self
    }

    fn push(&mut self, key: &[u8], value: Option<&[u8]>) {
        if self.record.is_empty() {
            let room = RECORD_HEADER_BYTES
                + op_disk_bytes(key.len(), value.map_or(0, <[u8]>::len)) as usize;
            self.record.reserve(room);
            self.record.resize(RECORD_HEADER_BYTES, 0);
        }
        let (key_start, value_start) = encode_op(&mut self.record, key, value);
        self.spans.push(BatchSpan {
            key_start,
            key_len: key.len(),
            value_start,
            value_len: value.map_or(0, <[u8]>::len),
            is_delete: value.is_none(),
        });
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Bytes the batch takes as a log record.
    pub(crate) fn encoded_len(&self) -> usize {
        self.record.len()
    }

    /// The operations, in order, borrowed from the batch.
    pub fn ops(&self) -> BatchOps<'_> {
        BatchOps {
            record: &self.record,
            spans: self.spans.iter(),
        }
    }

    /// The encoded record (header still to be filled in) and where each operation lies in
    /// it, for the commit; `None` when an offset does not fit the log's 32-bit spans, which
    /// only a batch far past the largest record can reach.
    pub(crate) fn into_record(self) -> Option<(Vec<u8>, Spans)> {
        let narrow = |n: usize| u32::try_from(n).ok();
        let mut spans = Spans::with_capacity(self.spans.len());
        for s in &self.spans {
            spans.push(OpSpan {
                key_start: narrow(s.key_start)?,
                key_len: narrow(s.key_len)?,
                value_start: narrow(s.value_start)?,
                value_len: narrow(s.value_len)?,
                is_delete: s.is_delete,
            });
        }
        Some((self.record, spans))
    }
}

/// The operations of a [`WriteBatch`], in order: see [`WriteBatch::ops`].
#[derive(Debug, Clone)]
pub struct BatchOps<'a> {
    record: &'a [u8],
    spans: std::slice::Iter<'a, BatchSpan>,
}

impl<'a> Iterator for BatchOps<'a> {
    type Item = OpRef<'a>;

    fn next(&mut self) -> Option<OpRef<'a>> {
        let span = self.spans.next()?;
        // The spans were taken as the bytes were appended, so they always lie inside them;
        // an empty slice instead of a panic if that ever broke.
        let slice = |start: usize, len: usize| {
            start
                .checked_add(len)
                .and_then(|end| self.record.get(start..end))
                .unwrap_or_default()
        };
        let key = slice(span.key_start, span.key_len);
        Some(if span.is_delete {
            OpRef::Delete { key }
        } else {
            OpRef::Put {
                key,
                value: slice(span.value_start, span.value_len),
            }
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for BatchOps<'_> {}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ops()).finish()
    }
}

impl From<Vec<Op>> for WriteBatch {
    fn from(ops: Vec<Op>) -> Self {
        let mut batch = WriteBatch::new();
        for op in &ops {
            batch.push(op.key(), OpView::value(op));
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::record::EncodedRecord;
    use proptest::prelude::*;

    fn any_op() -> impl Strategy<Value = Op> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
        prop_oneof![
            (bytes(), bytes()).prop_map(|(key, value)| Op::Put { key, value }),
            bytes().prop_map(|key| Op::Delete { key }),
        ]
    }

    proptest! {
        /// A batch lends back the operations it was given, and commits as exactly the record
        /// those operations encode to (bytes and spans).
        #[test]
        fn a_batch_is_the_record_of_its_ops(ops in proptest::collection::vec(any_op(), 1..40)) {
            let batch = WriteBatch::from(ops.clone());
            prop_assert_eq!(batch.len(), ops.len());
            prop_assert_eq!(batch.ops().len(), ops.len());
            let lent: Vec<Op> = batch.ops().map(|op| op.to_op()).collect();
            prop_assert_eq!(&lent, &ops);
            let expected = EncodedRecord::encode(&ops);
            let Some(record) = EncodedRecord::from_batch(batch) else {
                return Err(TestCaseError::fail("a small batch formed no record"));
            };
            prop_assert_eq!(&*record.bytes, &*expected.bytes);
            prop_assert_eq!(&*record.spans, &*expected.spans);
        }
    }

    #[test]
    fn an_empty_batch_forms_no_record() {
        let batch = WriteBatch::new();
        assert!(batch.is_empty());
        assert_eq!(batch.ops().next(), None);
        assert!(EncodedRecord::from_batch(batch).is_none());
    }

    #[test]
    fn batches_compare_and_print_by_their_ops() {
        let mut a = WriteBatch::new();
        a.put(b"k", b"v").delete(b"gone");
        let b = WriteBatch::from(vec![
            Op::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            },
            Op::Delete {
                key: b"gone".to_vec(),
            },
        ]);
        assert_eq!(a, b);
        assert_ne!(a, WriteBatch::new());
        let shown = format!("{a:?}");
        assert!(
            shown.starts_with("[Put {") && shown.contains("Delete {"),
            "{shown}"
        );
    }
}
