//! Write batches and the operations they hold.

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
}

/// An operation borrowed from its caller: `put` and `delete` encode straight from the
/// caller's slices instead of copying them into an [`Op`] first.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OpRef<'a> {
    Put { key: &'a [u8], value: &'a [u8] },
    Delete { key: &'a [u8] },
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
        match self {
            OpRef::Put { key, .. } | OpRef::Delete { key } => key,
        }
    }
    fn value(&self) -> Option<&[u8]> {
        match self {
            OpRef::Put { value, .. } => Some(value),
            OpRef::Delete { .. } => None,
        }
    }
}

/// Puts and deletes committed together: after a crash either all of them are there or none.
///
/// Operations apply in the order they were added, so a later put of the same key wins.
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) ops: Vec<Op>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `key` → `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(Op::Put {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
        });
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(Op::Delete {
            key: key.as_ref().to_vec(),
        });
        self
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
}

impl From<Vec<Op>> for WriteBatch {
    fn from(ops: Vec<Op>) -> Self {
        WriteBatch { ops }
    }
}
