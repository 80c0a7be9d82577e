//! [`View`]: the store as commands run in isolation see it (an `EXEC`'s queue, or one
//! read-modify-write command such as `INCR`): the committed data under the exclusive write
//! gate, plus the writes made so far, gathered into one batch committed at the end.

use std::collections::{HashMap, HashSet};

use kvstore_core::{BatchOps, KvStore, Op, OpRef, WriteBatch};

use super::{
    append, del, getdel, getset, incr, key_type, mset, msetnx, readonly, reply_budget, set, setnx,
    store_error, time, ttl, wait, Args, Spec,
};
use crate::frame::Frame;
use crate::node::Node;

/// A key written in the view.
struct Written {
    /// The new value, or `None` once deleted.
    value: Option<Vec<u8>>,
    /// Written since the last [`View::take_batch`] (so listed in `View::dirty_keys`).
    dirty: bool,
}

/// The store with the isolated commands' own writes so far.
///
/// The store itself does not change while a view lives (its user holds the node's write
/// gate exclusively, and every write of the group or transaction goes through the view), so
/// what the view read from it stays true.
pub(super) struct View<'a> {
    store: &'a KvStore,
    /// Keys written, with their new state. Looked up by every read and write of the view,
    /// never walked in order: hashed (a group of 800 `INCR`s of random keys spent a tenth of
    /// its instructions in an ordered map's comparisons).
    written: HashMap<Vec<u8>, Written>,
    /// How many keys the writes add (or, negative, remove) so far: `DBSIZE` must not cost a
    /// lookup per key written.
    added_keys: i64,
    /// Keys written since the last [`View::take_batch`], each once, back to back (`dirty_ends`
    /// holds where each ends): the batch holds each one's final state once (400 `APPEND`s to
    /// one value write it once, not 400 times).
    dirty_keys: Vec<u8>,
    dirty_ends: Vec<usize>,
    /// The last key read from the store and whether it had a value: a read-modify-write
    /// command reads its key, then writes it, and the write need not look it up again to
    /// count the keys it adds.
    last_read: Option<(Vec<u8>, bool)>,
    /// Bytes written since the last [`View::take_batch`], counting a key written twice
    /// twice: at least what the next batch holds.
    pending_bytes: usize,
    /// The node is a replica: every write is refused.
    replica: bool,
    /// Value bytes of the replies so far, bounded by the server's `max_reply_bytes`.
    reply_bytes: usize,
}

impl<'a> View<'a> {
    pub(super) fn new(store: &'a KvStore, replica: bool) -> Self {
        View {
            store,
            written: HashMap::new(),
            added_keys: 0,
            dirty_keys: Vec::new(),
            dirty_ends: Vec::new(),
            last_read: None,
            pending_bytes: 0,
            replica,
            reply_bytes: 0,
        }
    }

    /// The writes made since the last call (each key's final state), as a batch of their
    /// own; later commands still see them.
    pub(super) fn take_batch(&mut self) -> WriteBatch {
        self.pending_bytes = 0;
        let mut batch = WriteBatch::new();
        let mut start = 0;
        for &end in &self.dirty_ends {
            let key = &self.dirty_keys[start..end];
            start = end;
            match self.written.get_mut(key) {
                Some(Written {
                    value: Some(value),
                    dirty,
                }) => {
                    *dirty = false;
                    batch.put(key, value)
                }
                Some(Written { value: None, dirty }) => {
                    *dirty = false;
                    batch.delete(key)
                }
                None => batch.delete(key),
            };
        }
        self.dirty_keys.clear();
        self.dirty_ends.clear();
        batch
    }

    /// Starts counting a new reply against the server's reply limit.
    pub(super) fn new_reply(&mut self) {
        self.reply_bytes = 0;
    }

    /// The largest value the store takes.
    pub(super) fn max_value_bytes(&self) -> usize {
        self.store.max_value_bytes()
    }

    /// `key`'s value as the commands see it.
    pub(super) fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Frame> {
        if let Some(written) = self.written.get(key) {
            return Ok(written.value.clone());
        }
        let value = self.store.get(key).map_err(store_error)?;
        self.note_read(key, value.is_some());
        Ok(value)
    }

    /// Whether `key` has a value as the commands see it.
    pub(super) fn contains(&mut self, key: &[u8]) -> Result<bool, Frame> {
        match self.written.get(key) {
            Some(written) => Ok(written.value.is_some()),
            None => self.stored(key),
        }
    }

    /// Whether `key` has a value in the store (not counting the view's writes).
    fn stored(&mut self, key: &[u8]) -> Result<bool, Frame> {
        if let Some((read, present)) = &self.last_read {
            if read.as_slice() == key {
                return Ok(*present);
            }
        }
        let present = self.store.contains_key(key).map_err(store_error)?;
        self.note_read(key, present);
        Ok(present)
    }

    fn note_read(&mut self, key: &[u8], present: bool) {
        match &mut self.last_read {
            Some((read, was)) => {
                read.clear();
                read.extend_from_slice(key);
                *was = present;
            }
            None => self.last_read = Some((key.to_vec(), present)),
        }
    }

    fn len(&self) -> i64 {
        self.store.len() as i64 + self.added_keys
    }

    /// Whether the store takes `ops` (key, value and record sizes), so that a write the
    /// commit would refuse never shows in the view.
    pub(super) fn check<'o>(&self, ops: impl IntoIterator<Item = OpRef<'o>>) -> Result<(), Frame> {
        self.store.check_ops(ops).map_err(store_error)
    }

    /// Adds operations to the batch and to what later commands see, or refuses them all
    /// (see [`View::check`]).
    pub(super) fn write<'o, I>(&mut self, ops: I) -> Result<(), Frame>
    where
        I: IntoIterator<Item = OpRef<'o>, IntoIter: Clone>,
    {
        self.write_ops(ops, true)
    }

    /// Adds operations to what later commands see, not to the batch: a batch committed as
    /// it is, beside the view's (see `GroupPlanner::blind`). Refuses them all as
    /// [`View::write`] does.
    pub(super) fn note_written(&mut self, ops: BatchOps<'_>) -> Result<(), Frame> {
        // A blind batch comes between rows: a dirty key here would carry the blind value in
        // the view's next batch, its bytes uncounted toward the row's record limit.
        debug_assert!(
            self.dirty_ends.is_empty(),
            "a blind batch noted while the view's batch holds writes"
        );
        self.write_ops(ops, false)
    }

    fn write_ops<'o, I>(&mut self, ops: I, batched: bool) -> Result<(), Frame>
    where
        I: IntoIterator<Item = OpRef<'o>, IntoIter: Clone>,
    {
        let ops = ops.into_iter();
        self.check(ops.clone())?;
        for op in ops {
            self.record(op.key(), op.value().map(<[u8]>::to_vec), batched)?;
        }
        Ok(())
    }

    /// Records `key`'s new state (a value, or `None` for a delete), already checked.
    fn record(&mut self, key: &[u8], value: Option<Vec<u8>>, batched: bool) -> Result<(), Frame> {
        if batched {
            self.pending_bytes += key.len() + value.as_ref().map_or(0, Vec::len);
        }
        let puts = value.is_some();
        let (existed, newly_dirty) = match self.written.get_mut(key) {
            Some(written) => {
                let existed = written.value.is_some();
                written.value = value;
                let newly = batched && !written.dirty;
                written.dirty |= batched;
                (existed, newly)
            }
            None => {
                let existed = self.stored(key)?;
                self.written.insert(
                    key.to_vec(),
                    Written {
                        value,
                        dirty: batched,
                    },
                );
                (existed, batched)
            }
        };
        self.added_keys += i64::from(puts) - i64::from(existed);
        if newly_dirty {
            self.dirty_keys.extend_from_slice(key);
            self.dirty_ends.push(self.dirty_keys.len());
        }
        Ok(())
    }

    /// Bytes written since the last [`View::take_batch`] (an upper bound of its batch's).
    pub(super) fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Deletes each of `keys` that has a value (a key named twice, once); answers how many.
    pub(super) fn delete(&mut self, keys: &[&[u8]]) -> Result<Frame, Frame> {
        let mut seen = HashSet::new();
        let mut deletes = Vec::new();
        for key in keys {
            if seen.insert(*key) && self.contains(key)? {
                deletes.push(Op::Delete { key: key.to_vec() });
            }
        }
        self.write(deletes.iter().map(Op::borrowed))?;
        Ok(Frame::Integer(deletes.len() as i64))
    }

    /// Sets `key` to `value`.
    pub(super) fn put(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), Frame> {
        self.check([OpRef::Put { key, value: &value }])?;
        // Moved into the view, not copied: the value of an `INCR` or `APPEND` is its own.
        self.record(key, Some(value), true)
    }

    /// A value going into a reply, counted against the server's reply limit: one `EXEC` of
    /// many `GET`s is one reply, as an `MGET` is.
    pub(super) fn reply_value(&mut self, node: &Node, value: Vec<u8>) -> Result<Frame, Frame> {
        let hint = "read fewer values in one transaction";
        reply_budget(node, &mut self.reply_bytes, value.len(), hint)?;
        Ok(Frame::Bulk(value))
    }

    /// A value or the null reply.
    pub(super) fn reply_opt(
        &mut self,
        node: &Node,
        value: Option<Vec<u8>>,
    ) -> Result<Frame, Frame> {
        match value {
            Some(value) => self.reply_value(node, value),
            None => Ok(Frame::Null),
        }
    }

    /// Runs one command (already resolved to `spec`) against the view.
    pub(super) fn run(
        &mut self,
        spec: &Spec,
        args: &mut Args,
        node: &Node,
    ) -> Result<Frame, Frame> {
        if spec.flags.contains(&"write") && self.replica {
            return Err(readonly());
        }
        match spec.name {
            "ping" | "echo" => {
                let message = args.next_opt();
                args.finish()?;
                match message {
                    Some(message) => self.reply_value(node, message.to_vec()),
                    None => Ok(Frame::Simple("PONG".into())),
                }
            }
            "get" | "read" => {
                let value = self.get(args.next_bytes()?)?;
                node.stats.lookups([value.is_some()]);
                self.reply_opt(node, value)
            }
            "mget" => {
                let mut values = Vec::new();
                for key in del::parse_keys(args)? {
                    let value = self.get(key)?;
                    node.stats.lookups([value.is_some()]);
                    values.push(self.reply_opt(node, value)?);
                }
                Ok(Frame::Array(values))
            }
            "exists" => {
                let mut count = 0;
                for key in del::parse_keys(args)? {
                    let present = self.contains(key)?;
                    node.stats.lookups([present]);
                    count += i64::from(present);
                }
                Ok(Frame::Integer(count))
            }
            "time" => Ok(time::now()),
            "wait" => wait::in_transaction(args, node),
            "type" => Ok(key_type::type_of(self.contains(args.next_bytes()?)?)),
            "ttl" | "pttl" => Ok(ttl::ttl_of(self.contains(args.next_bytes()?)?)),
            "strlen" => {
                let key = args.next_bytes()?;
                let len = match self.written.get(key) {
                    Some(written) => written.value.as_ref().map_or(0, Vec::len),
                    None => self.store.value_len(key).unwrap_or(0),
                };
                Ok(Frame::Integer(len as i64))
            }
            "dbsize" => Ok(Frame::Integer(self.len())),
            // The watched keys were compared before the queue ran; nothing is left to forget.
            "unwatch" => Ok(Frame::ok()),
            "set" => set::apply(self, args, node),
            "put" | "mset" | "batchput" => {
                let batch = match spec.name {
                    "put" => set::parse_put_batch(args)?,
                    _ => mset::parse_batch(args)?,
                };
                self.write(batch.ops())?;
                Ok(Frame::ok())
            }
            "incr" | "decr" | "incrby" | "decrby" => incr::apply(self, spec.name, args),
            "setnx" => setnx::apply(self, args),
            "msetnx" => msetnx::apply(self, args),
            "getset" => getset::apply(self, args, node),
            "getdel" => getdel::apply(self, args, node),
            "append" => append::apply(self, args),
            "del" | "delete" | "unlink" => {
                let keys = del::parse_keys(args)?;
                self.delete(&keys)
            }
            other => Err(Frame::error(format!(
                "ERR internal: '{other}' cannot run in isolation"
            ))),
        }
    }
}
