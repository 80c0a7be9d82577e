//! Publication order of commit groups: each group takes a turn when it is written (under the
//! active segment's lock) and publishes only after every earlier group has. A leader writes
//! under that lock but syncs and publishes after releasing it, so whoever takes the lock next
//! (a roll for compaction, a snapshot install) first `drain`s: nothing written is then
//! unpublished. A leader that unwinds still completes its turn (see `commit.rs`).

use parking_lot::{Condvar, Mutex};

/// Hands out turns in write order and lets them complete in the same order.
#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    state: Mutex<Turns>,
    advanced: Condvar,
}

#[derive(Debug, Default)]
struct Turns {
    /// Turns handed out.
    issued: u64,
    /// Turns completed (all of them up to this count).
    completed: u64,
}

impl Sequencer {
    /// A new turn; call under the lock that orders the writes.
    pub fn take_turn(&self) -> u64 {
        let mut s = self.state.lock();
        s.issued += 1;
        s.issued
    }

    /// Blocks until every turn before `turn` has completed.
    pub fn wait_for(&self, turn: u64) {
        let mut s = self.state.lock();
        while s.completed + 1 < turn {
            self.advanced.wait(&mut s);
        }
    }

    /// Completes `turn` (whose predecessors have all completed).
    pub fn done(&self, turn: u64) {
        let mut s = self.state.lock();
        s.completed = s.completed.max(turn);
        self.advanced.notify_all();
    }

    /// Blocks until every turn issued so far has completed. Called with the write lock held,
    /// so that no new turn can start: afterwards nothing written is unpublished.
    pub fn drain(&self) {
        let mut s = self.state.lock();
        while s.completed < s.issued {
            self.advanced.wait(&mut s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn later_turns_wait_for_earlier_ones() {
        let seq = Arc::new(Sequencer::default());
        let (first, second) = (seq.take_turn(), seq.take_turn());
        let log = Arc::new(Mutex::new(Vec::new()));
        let waiter = {
            let (seq, log) = (seq.clone(), log.clone());
            std::thread::spawn(move || {
                seq.wait_for(second);
                log.lock().push(second);
                seq.done(second);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        log.lock().push(first);
        seq.done(first);
        waiter.join().unwrap();
        seq.drain();
        assert_eq!(*log.lock(), vec![first, second]);
    }
}
