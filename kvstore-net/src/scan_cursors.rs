//! SCAN cursors. Redis clients (`redis-cli --scan`, redis-py's `scan_iter`) treat the cursor
//! as an unsigned decimal number, but an ordered store resumes from a key. So the server keeps
//! a bounded table from cursor number to "resume after this key"; cursor 0 starts a scan and a
//! reply cursor of 0 ends it.
//!
//! Entries are not removed when used (a client may retry a call); the oldest are evicted once
//! the table holds more than [`MAX_SCAN_CURSORS`] entries or [`MAX_SCAN_CURSOR_BYTES`] of keys.
//! A scan idle long enough for its cursor to be evicted gets `-ERR invalid cursor`.

use std::collections::{HashMap, VecDeque};

/// Most live SCAN cursors kept; past it the oldest is forgotten.
pub const MAX_SCAN_CURSORS: usize = 65_536;

/// Most key bytes held by SCAN cursors; past it the oldest cursors are forgotten.
pub const MAX_SCAN_CURSOR_BYTES: usize = 16 << 20;

/// The table of open cursors.
#[derive(Debug)]
pub(crate) struct ScanCursors {
    next_id: u64,
    resume_after: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
    bytes: usize,
}

impl Default for ScanCursors {
    fn default() -> Self {
        ScanCursors {
            // Random start so cursors of a restarted server are unlikely to collide.
            next_id: 1 + u64::from(rand::random::<u32>()),
            resume_after: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl ScanCursors {
    /// Registers "resume after `key`" and returns its cursor number (never 0).
    pub(crate) fn open(&mut self, key: Vec<u8>) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.bytes += key.len();
        self.resume_after.insert(id, key);
        self.order.push_back(id);
        while self.order.len() > MAX_SCAN_CURSORS || self.bytes > MAX_SCAN_CURSOR_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(k) = self.resume_after.remove(&old) {
                self.bytes -= k.len();
            }
        }
        id
    }

    /// The key a cursor resumes after, if the cursor is known.
    pub(crate) fn resume_key(&self, id: u64) -> Option<Vec<u8>> {
        self.resume_after.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_cursors_are_evicted_by_bytes() {
        let mut cursors = ScanCursors::default();
        let first = cursors.open(vec![0; MAX_SCAN_CURSOR_BYTES / 2]);
        let second = cursors.open(vec![1; MAX_SCAN_CURSOR_BYTES / 2]);
        assert!(cursors.resume_key(first).is_some());
        let third = cursors.open(vec![2; 10]);
        assert_eq!(cursors.resume_key(first), None);
        assert!(cursors.resume_key(second).is_some());
        assert_eq!(cursors.resume_key(third), Some(vec![2; 10]));
        assert_ne!(first, 0);
    }
}
