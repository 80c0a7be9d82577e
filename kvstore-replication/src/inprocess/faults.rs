//! Fault injection for the in-process transport: a shared switchboard tests flip while
//! replication runs.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How long a message takes to reach the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// Delivered at once.
    None,
    /// Delivered after this long.
    Fixed(Duration),
    /// Delivered after a delay drawn uniformly from `[min, max]`, per message. Messages stay in
    /// order (like a TCP stream): one never overtakes an earlier one.
    Uniform {
        /// Shortest delay.
        min: Duration,
        /// Longest delay.
        max: Duration,
    },
}

#[derive(Debug)]
struct FaultState {
    drop_probability: f64,
    duplicate_probability: f64,
    reorder_probability: f64,
    delay: Delay,
    partitioned: bool,
    fail_next: u32,
    /// Bumped by `disconnect`: sessions opened before are broken.
    generation: u64,
    rng: StdRng,
}

/// The faults of one in-process link, shared between the test and the transport. Cheap to
/// clone. Initially no fault is active.
#[derive(Debug, Clone)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

impl Default for Faults {
    /// No faults, with a random seed: two links never share their random delays or drops
    /// (a shared seed would make every replica draw the same delay for the same message).
    fn default() -> Self {
        Faults::seeded(rand::random())
    }
}

impl Faults {
    /// No faults, with a deterministic random generator seeded by `seed`.
    pub fn seeded(seed: u64) -> Self {
        Faults {
            state: Arc::new(Mutex::new(FaultState {
                drop_probability: 0.0,
                duplicate_probability: 0.0,
                reorder_probability: 0.0,
                delay: Delay::None,
                partitioned: false,
                fail_next: 0,
                generation: 0,
                rng: StdRng::seed_from_u64(seed),
            })),
        }
    }

    /// Loses each record (and each snapshot chunk) with probability `p`: the worker sees no
    /// acknowledgement and must time out and resend.
    pub fn drop_messages(&self, p: f64) -> &Self {
        self.state.lock().drop_probability = p.clamp(0.0, 1.0);
        self
    }

    /// Delays every message by `d`.
    pub fn delay(&self, d: Duration) -> &Self {
        self.state.lock().delay = Delay::Fixed(d);
        self
    }

    /// Delays every message by a uniform random time in `[min, max]`.
    pub fn delay_uniform(&self, min: Duration, max: Duration) -> &Self {
        self.state.lock().delay = Delay::Uniform {
            min: min.min(max),
            max: max.max(min),
        };
        self
    }

    /// Delivers each record twice with probability `p` (the replica must ignore the copy).
    pub fn duplicate(&self, p: f64) -> &Self {
        self.state.lock().duplicate_probability = p.clamp(0.0, 1.0);
        self
    }

    /// Swaps each pair of neighbouring records of a window with probability `p` (the replica
    /// reports the gap and the master resends).
    pub fn reorder(&self, p: f64) -> &Self {
        self.state.lock().reorder_probability = p.clamp(0.0, 1.0);
        self
    }

    /// Breaks the current session once: its next call fails; a new HELLO works.
    pub fn disconnect(&self) -> &Self {
        self.state.lock().generation += 1;
        self
    }

    /// Makes every call fail until [`heal`](Self::heal).
    pub fn partition(&self) -> &Self {
        let mut state = self.state.lock();
        state.partitioned = true;
        state.generation += 1;
        self
    }

    /// Makes the next `n` calls fail.
    pub fn fail_next(&self, n: u32) -> &Self {
        self.state.lock().fail_next = n;
        self
    }

    /// Removes every fault (partition, delays, drops, duplicates, reordering, pending failures).
    pub fn heal(&self) -> &Self {
        let mut state = self.state.lock();
        state.partitioned = false;
        state.fail_next = 0;
        state.drop_probability = 0.0;
        state.duplicate_probability = 0.0;
        state.reorder_probability = 0.0;
        state.delay = Delay::None;
        self
    }

    /// Fails the call if partitioned or a failure is pending; `Err` holds the reason.
    pub(crate) fn check_call(&self) -> Result<(), &'static str> {
        self.check_session_call().map(drop)
    }

    /// [`check_call`](Self::check_call) and [`generation`](Self::generation) under one lock,
    /// for the calls a session makes per record.
    pub(crate) fn check_session_call(&self) -> Result<u64, &'static str> {
        self.check_window_call().map(|verdict| verdict.generation)
    }

    /// [`check_session_call`](Self::check_session_call) for a window of records, also telling
    /// which faults act on the records themselves (else the window needs no dice and no
    /// delivery thread).
    pub(crate) fn check_window_call(&self) -> Result<WindowVerdict, &'static str> {
        let mut state = self.state.lock();
        if state.partitioned {
            return Err("network partition");
        }
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err("injected failure");
        }
        Ok(WindowVerdict {
            generation: state.generation,
            mangles: state.drop_probability > 0.0
                || state.duplicate_probability > 0.0
                || state.reorder_probability > 0.0,
            delays: state.delay != Delay::None,
        })
    }

    pub(crate) fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    pub(crate) fn has_delay(&self) -> bool {
        self.state.lock().delay != Delay::None
    }

    /// A delay drawn for one message.
    pub(crate) fn sample_delay(&self) -> Duration {
        let mut state = self.state.lock();
        match state.delay {
            Delay::None => Duration::ZERO,
            Delay::Fixed(d) => d,
            Delay::Uniform { min, max } => {
                let (lo, hi) = (min.as_micros() as u64, max.as_micros() as u64);
                Duration::from_micros(state.rng.random_range(lo..=hi))
            }
        }
    }

    /// Rolls the dice for drop, duplicate and reorder of one message.
    pub(crate) fn roll(&self) -> Roll {
        Self::roll_locked(&mut self.state.lock())
    }

    /// The fates of `n` messages sent together, drawn under one lock.
    pub(crate) fn roll_window(&self, n: usize) -> Vec<Roll> {
        let mut state = self.state.lock();
        (0..n).map(|_| Self::roll_locked(&mut state)).collect()
    }

    fn roll_locked(state: &mut FaultState) -> Roll {
        let drop =
            state.drop_probability > 0.0 && state.rng.random::<f64>() < state.drop_probability;
        let duplicate = state.duplicate_probability > 0.0
            && state.rng.random::<f64>() < state.duplicate_probability;
        let reorder = state.reorder_probability > 0.0
            && state.rng.random::<f64>() < state.reorder_probability;
        Roll {
            drop,
            duplicate,
            reorder,
        }
    }
}

/// A window's call let through by [`Faults::check_window_call`], and the faults then active.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowVerdict {
    /// The link's generation (a session opened at another one is broken).
    pub generation: u64,
    /// Records may be dropped, duplicated or reordered.
    pub mangles: bool,
    /// Records take time to arrive.
    pub delays: bool,
}

/// What happens to one message.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Roll {
    pub drop: bool,
    pub duplicate: bool,
    pub reorder: bool,
}
