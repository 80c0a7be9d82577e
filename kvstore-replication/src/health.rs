//! Per-replica health: a small state machine driven by events with the time passed in.

use std::time::{Duration, Instant};

/// Where a replica stands, as [`crate::Replicator::status`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaState {
    /// No session yet (starting, or reconnecting after an error below the threshold).
    Connecting,
    /// Session open, sending records from the WAL or a snapshot; behind the master.
    CatchingUp,
    /// Session open and up to date, fed from the live queue.
    Streaming,
    /// Too many consecutive failures: skipped for new sends, probed periodically.
    Unhealthy,
    /// The replica holds records the master lacks (or refused the master's epoch): left
    /// untouched until an operator forces a resync or empties it; probed periodically.
    Diverged,
}

impl ReplicaState {
    /// Whether the replica counts towards `min_replicas_to_write`.
    pub fn is_healthy(self) -> bool {
        matches!(self, ReplicaState::CatchingUp | ReplicaState::Streaming)
    }

    /// Lower-case name, as in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::Connecting => "connecting",
            ReplicaState::CatchingUp => "catching_up",
            ReplicaState::Streaming => "streaming",
            ReplicaState::Unhealthy => "unhealthy",
            ReplicaState::Diverged => "diverged",
        }
    }
}

/// What just happened on a replica's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEvent {
    /// A call succeeded; `caught_up` says whether the replica now has every committed record.
    Success {
        /// Acked LSN equals the master's last LSN.
        caught_up: bool,
    },
    /// A session opened (`HELLO` answered): the replica is reachable, but it has not taken a
    /// record yet unless `caught_up`. Unlike [`HealthEvent::Success`] this does not clear the
    /// failures: a replica that accepts every HELLO and then fails every send (it refuses a
    /// record, or the link cannot carry it) must still become unhealthy.
    Connected {
        /// The replica already has every committed record: nothing is left to prove.
        caught_up: bool,
    },
    /// A call failed (retryable).
    Failure,
    /// The replica refused: diverged log or stale epoch.
    Refused,
    /// An operator forced a resync.
    ForcedResync,
    /// A diverged replica accepted a plain session: an operator emptied or restored it.
    Rejoined,
}

/// Health bookkeeping for one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaHealth {
    /// Current state.
    pub state: ReplicaState,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When a call last succeeded.
    pub last_success: Option<Instant>,
    /// When a call last failed.
    pub last_failure: Option<Instant>,
}

impl Default for ReplicaHealth {
    fn default() -> Self {
        ReplicaHealth {
            state: ReplicaState::Connecting,
            consecutive_failures: 0,
            last_success: None,
            last_failure: None,
        }
    }
}

impl ReplicaHealth {
    /// Applies `event` at `now`: `failure_threshold` consecutive failures make the replica
    /// unhealthy; any success makes it healthy again; a refusal sticks (diverged) until a forced
    /// resync. Returns the new state.
    pub fn on_event(
        &mut self,
        event: HealthEvent,
        now: Instant,
        failure_threshold: u32,
    ) -> ReplicaState {
        match event {
            HealthEvent::Success { caught_up } => {
                self.consecutive_failures = 0;
                self.last_success = Some(now);
                if self.state != ReplicaState::Diverged {
                    self.state = if caught_up {
                        ReplicaState::Streaming
                    } else {
                        ReplicaState::CatchingUp
                    };
                }
            }
            HealthEvent::Connected { caught_up } => {
                self.last_success = Some(now);
                if caught_up {
                    self.consecutive_failures = 0;
                }
                if self.state != ReplicaState::Diverged {
                    self.state = if caught_up {
                        ReplicaState::Streaming
                    } else if self.consecutive_failures >= failure_threshold {
                        ReplicaState::Unhealthy
                    } else {
                        ReplicaState::CatchingUp
                    };
                }
            }
            HealthEvent::Failure => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_failure = Some(now);
                if self.state != ReplicaState::Diverged {
                    self.state = if self.consecutive_failures >= failure_threshold
                        || self.state == ReplicaState::Unhealthy
                    {
                        ReplicaState::Unhealthy
                    } else {
                        ReplicaState::Connecting
                    };
                }
            }
            HealthEvent::Refused => {
                self.last_failure = Some(now);
                self.state = ReplicaState::Diverged;
            }
            HealthEvent::ForcedResync | HealthEvent::Rejoined => {
                self.consecutive_failures = 0;
                self.state = ReplicaState::Connecting;
            }
        }
        self.state
    }

    /// Whether an unhealthy replica is due for a probe at `now`.
    pub fn probe_due(&self, now: Instant, probe_interval: Duration) -> bool {
        match self.last_failure {
            Some(at) => now.saturating_duration_since(at) >= probe_interval,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_reach_unhealthy_at_the_threshold_and_one_success_recovers() {
        let t0 = Instant::now();
        let mut h = ReplicaHealth::default();
        assert_eq!(
            h.on_event(HealthEvent::Success { caught_up: true }, t0, 3),
            ReplicaState::Streaming
        );
        assert_eq!(
            h.on_event(HealthEvent::Failure, t0, 3),
            ReplicaState::Connecting
        );
        assert_eq!(
            h.on_event(HealthEvent::Failure, t0, 3),
            ReplicaState::Connecting
        );
        assert_eq!(
            h.on_event(HealthEvent::Failure, t0, 3),
            ReplicaState::Unhealthy
        );
        assert_eq!(h.consecutive_failures, 3);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            h.on_event(HealthEvent::Success { caught_up: false }, t1, 3),
            ReplicaState::CatchingUp
        );
        assert_eq!(h.consecutive_failures, 0);
        assert_eq!(h.last_success, Some(t1));
        assert_eq!(h.last_failure, Some(t0));
    }

    #[test]
    fn diverged_sticks_until_a_forced_resync() {
        let t0 = Instant::now();
        let mut h = ReplicaHealth::default();
        h.on_event(HealthEvent::Refused, t0, 3);
        assert_eq!(
            h.on_event(HealthEvent::Success { caught_up: true }, t0, 3),
            ReplicaState::Diverged
        );
        assert_eq!(
            h.on_event(HealthEvent::Failure, t0, 3),
            ReplicaState::Diverged
        );
        assert!(!h.state.is_healthy());
        assert_eq!(
            h.on_event(HealthEvent::ForcedResync, t0, 3),
            ReplicaState::Connecting
        );
        assert_eq!(
            h.on_event(HealthEvent::Success { caught_up: true }, t0, 3),
            ReplicaState::Streaming
        );
    }

    #[test]
    fn a_diverged_replica_that_accepts_the_master_again_rejoins() {
        let t0 = Instant::now();
        let mut h = ReplicaHealth::default();
        h.on_event(HealthEvent::Refused, t0, 3);
        assert_eq!(
            h.on_event(HealthEvent::Rejoined, t0, 3),
            ReplicaState::Connecting
        );
        assert_eq!(
            h.on_event(HealthEvent::Success { caught_up: false }, t0, 3),
            ReplicaState::CatchingUp
        );
    }

    #[test]
    fn probes_come_due_after_the_interval() {
        let t0 = Instant::now();
        let mut h = ReplicaHealth::default();
        assert!(h.probe_due(t0, Duration::from_millis(100)));
        h.on_event(HealthEvent::Failure, t0, 1);
        assert!(!h.probe_due(t0 + Duration::from_millis(99), Duration::from_millis(100)));
        assert!(h.probe_due(t0 + Duration::from_millis(100), Duration::from_millis(100)));
    }

    #[test]
    fn a_session_alone_keeps_the_failures_until_progress_or_nothing_to_send() {
        let t0 = Instant::now();
        let mut h = ReplicaHealth::default();
        for _ in 0..3 {
            h.on_event(HealthEvent::Failure, t0, 3);
        }
        let connected = HealthEvent::Connected { caught_up: false };
        assert_eq!(h.on_event(connected, t0, 3), ReplicaState::Unhealthy);
        assert_eq!(h.consecutive_failures, 3);
        assert_eq!(h.last_success, Some(t0));
        assert_eq!(
            h.on_event(HealthEvent::Success { caught_up: false }, t0, 3),
            ReplicaState::CatchingUp
        );
        assert_eq!(h.consecutive_failures, 0);
        h.on_event(HealthEvent::Failure, t0, 3);
        assert_eq!(h.on_event(connected, t0, 3), ReplicaState::CatchingUp);
        let caught_up = HealthEvent::Connected { caught_up: true };
        assert_eq!(h.on_event(caught_up, t0, 3), ReplicaState::Streaming);
        assert_eq!(h.consecutive_failures, 0);
    }
}
