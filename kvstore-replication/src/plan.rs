//! What a worker sends next: a pure function of where the replica and the master stand.

use kvstore_core::Lsn;

/// The inputs of [`next_step`], all read by the worker just before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanInput {
    /// Highest LSN the replica acknowledged as applied.
    pub acked: Lsn,
    /// Highest LSN sent in this session (`>= acked`).
    pub sent: Lsn,
    /// Records sent and not yet acknowledged.
    pub in_flight: usize,
    /// Most records allowed in flight.
    pub window: usize,
    /// The replica reported a gap: stop sending until in-flight records drain, then rewind.
    pub gap_seen: bool,
    /// The master's last committed LSN.
    pub master_last: Lsn,
    /// LSN at the head of the worker's live queue (after stale entries were discarded).
    pub queue_front: Option<Lsn>,
    /// Lowest LSN `wal_since` accepts on the master.
    pub wal_start: Lsn,
}

/// The worker's next move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Wait for acknowledgements (window full, or draining after a gap).
    AwaitAcks,
    /// Resend from `acked + 1`: every in-flight record is answered and some were not applied.
    Rewind,
    /// Send the records at the head of the live queue (they follow `sent` directly).
    SendFromQueue,
    /// Read records after `after` from the master's WAL (the queue skipped some: it overflowed
    /// or the replica was away).
    CatchUpFromWal {
        /// Last LSN the replica has or was sent.
        after: Lsn,
    },
    /// The WAL no longer holds the records after `sent`: stream a snapshot.
    FullResync,
    /// Nothing to send until new commits arrive.
    Idle,
}

/// Decides the worker's next move. Never skips a record: every LSN after `acked` is sent
/// from the queue, the WAL or (if compacted away) a snapshot.
pub fn next_step(input: &PlanInput) -> NextStep {
    if input.gap_seen || input.sent < input.acked {
        return if input.in_flight > 0 {
            NextStep::AwaitAcks
        } else {
            NextStep::Rewind
        };
    }
    if input.in_flight >= input.window {
        return NextStep::AwaitAcks;
    }
    let newest = input.master_last.max(input.queue_front.unwrap_or(0));
    if input.sent >= newest {
        return if input.in_flight > 0 {
            NextStep::AwaitAcks
        } else {
            NextStep::Idle
        };
    }
    if input.queue_front == Some(input.sent + 1) {
        return NextStep::SendFromQueue;
    }
    if input.sent < input.wal_start {
        // A snapshot replaces everything, so it waits for in-flight records to settle.
        return if input.in_flight > 0 {
            NextStep::AwaitAcks
        } else {
            NextStep::FullResync
        };
    }
    NextStep::CatchUpFromWal { after: input.sent }
}

/// Drops queued records the replica already has or was sent; returns how many were dropped.
pub fn discard_stale<T>(
    queue: &mut std::collections::VecDeque<T>,
    sent: Lsn,
    lsn_of: impl Fn(&T) -> Lsn,
) -> usize {
    let mut dropped = 0;
    while queue.front().is_some_and(|r| lsn_of(r) <= sent) {
        queue.pop_front();
        dropped += 1;
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PlanInput {
        PlanInput {
            acked: 10,
            sent: 10,
            in_flight: 0,
            window: 4,
            gap_seen: false,
            master_last: 10,
            queue_front: None,
            wal_start: 0,
        }
    }

    #[test]
    fn idle_when_caught_up_and_streams_from_the_queue_when_contiguous() {
        assert_eq!(next_step(&base()), NextStep::Idle);
        let i = PlanInput {
            master_last: 12,
            queue_front: Some(11),
            ..base()
        };
        assert_eq!(next_step(&i), NextStep::SendFromQueue);
    }

    #[test]
    fn queue_overflow_or_absence_falls_back_to_the_wal_then_to_a_snapshot() {
        let skipped = PlanInput {
            master_last: 50,
            queue_front: Some(40),
            ..base()
        };
        assert_eq!(next_step(&skipped), NextStep::CatchUpFromWal { after: 10 });
        let empty = PlanInput {
            master_last: 50,
            ..base()
        };
        assert_eq!(next_step(&empty), NextStep::CatchUpFromWal { after: 10 });
        let compacted = PlanInput {
            master_last: 50,
            wal_start: 20,
            ..base()
        };
        assert_eq!(next_step(&compacted), NextStep::FullResync);
        let busy = PlanInput {
            in_flight: 1,
            sent: 11,
            ..compacted
        };
        assert_eq!(next_step(&busy), NextStep::AwaitAcks);
    }

    #[test]
    fn window_and_gaps_hold_sending_until_acks_drain() {
        let full = PlanInput {
            sent: 14,
            in_flight: 4,
            master_last: 20,
            ..base()
        };
        assert_eq!(next_step(&full), NextStep::AwaitAcks);
        let gap = PlanInput {
            sent: 12,
            in_flight: 1,
            gap_seen: true,
            master_last: 20,
            ..base()
        };
        assert_eq!(next_step(&gap), NextStep::AwaitAcks);
        let drained = PlanInput {
            in_flight: 0,
            ..gap
        };
        assert_eq!(next_step(&drained), NextStep::Rewind);
        let waiting = PlanInput {
            sent: 12,
            in_flight: 2,
            master_last: 12,
            ..base()
        };
        assert_eq!(next_step(&waiting), NextStep::AwaitAcks);
    }

    #[test]
    fn stale_queue_entries_are_discarded() {
        let mut q: std::collections::VecDeque<Lsn> = (5..15).collect();
        assert_eq!(discard_stale(&mut q, 10, |l| *l), 6);
        assert_eq!(q.front(), Some(&11));
    }
}
