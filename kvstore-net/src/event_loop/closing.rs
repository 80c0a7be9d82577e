//! A loop's connections at shutdown: each gets the replies already queued for it and then
//! a FIN, within the shutdown grace period, before its socket is closed.
//!
//! Why not one write and close: a client that has not read its replies yet (a pipeline, a
//! large reply) would lose what did not fit in the socket at once; and closing a socket
//! whose peer has sent bytes we never read makes the kernel reset the connection, which
//! discards replies still in flight. So each connection's queued output is written as the
//! socket takes it, then its sending side is shut (FIN after the last reply), and what the
//! peer still sends is read and dropped until it closes too or the grace period ends.
//! Requests not yet run are not run: the server is going away.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::net::Shutdown;
use std::time::Instant;

use mio::{Events, Poll};

use super::conn_state::LoopConn;

/// Readiness events taken per wait while closing.
const EVENTS_PER_WAIT: usize = 256;
/// Bytes of a peer's input dropped per read while closing.
const DISCARD_CHUNK_BYTES: usize = 16 << 10;

/// Where a closing connection stands.
enum Phase {
    /// Queued replies are still being written.
    Flushing,
    /// Everything was written and a FIN sent. `discarded`: the peer had sent bytes we
    /// dropped, so closing now could reset the connection; wait for its FIN. A peer that
    /// sent nothing more (an idle client) is closed at once: no reset can follow.
    Draining { discarded: bool },
}

/// Writes every connection's queued replies and lets its peer see them end, until all are
/// done or `deadline` passed. Closes nothing: the caller closes every connection after.
pub(super) fn finish_all(poll: &mut Poll, conns: &mut HashMap<usize, LoopConn>, deadline: Instant) {
    let mut phases: HashMap<usize, Phase> = conns
        .keys()
        .map(|&token| (token, Phase::Flushing))
        .collect();
    let mut done = HashSet::new();
    let mut events = Events::with_capacity(EVENTS_PER_WAIT);
    loop {
        for (token, phase) in phases.iter_mut() {
            let Some(conn) = conns.get_mut(token) else {
                done.insert(*token);
                continue;
            };
            if advance(conn, phase).unwrap_or(true) {
                done.insert(*token);
            }
        }
        phases.retain(|token, _| !done.contains(token));
        let now = Instant::now();
        if phases.is_empty() || now >= deadline {
            return;
        }
        // Edge-triggered: every connection above wrote or read until it would block, so
        // the next event for it means there is something new to do.
        if let Err(err) = poll.poll(&mut events, Some(deadline - now)) {
            if err.kind() != io::ErrorKind::Interrupted {
                tracing::warn!(%err, "event loop wait failed while closing connections");
                return;
            }
        }
    }
}

/// Moves one connection on as far as it goes without waiting: `Ok(true)` once it is done.
fn advance(conn: &mut LoopConn, phase: &mut Phase) -> io::Result<bool> {
    if let Phase::Flushing = phase {
        if !conn.write_out()? {
            return Ok(false);
        }
        conn.stream.shutdown(Shutdown::Write)?;
        // Requests buffered but not run count as input the peer sent.
        *phase = Phase::Draining {
            discarded: conn.wire.buffered() > 0,
        };
    }
    let Phase::Draining { discarded } = phase else {
        return Ok(false);
    };
    let mut scratch = [0u8; DISCARD_CHUNK_BYTES];
    loop {
        match conn.stream.read(&mut scratch) {
            Ok(0) => return Ok(true),
            Ok(_) => *discarded = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(!*discarded),
            Err(e) => return Err(e),
        }
    }
}
