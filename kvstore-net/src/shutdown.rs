//! [`ShutdownRequest`]: how a client's `SHUTDOWN` (or a signal) reaches the program that owns
//! the server, which alone can stop it: a server cannot join its own event loops from a
//! command running on one of them.

use parking_lot::{Condvar, Mutex};

/// A request, shared by a server and the program that runs it, that the server stop.
///
/// The program takes it with [`ServerHandle::shutdown_request`](crate::ServerHandle::shutdown_request)
/// and waits on it; from then on, a client's `SHUTDOWN` is accepted and wakes the waiter,
/// which then calls [`ServerHandle::shutdown`](crate::ServerHandle::shutdown). Until a
/// program has taken it, `SHUTDOWN` is refused with an error: a server embedded in a
/// program that never looks would otherwise let the client believe it stops.
#[derive(Debug, Default)]
pub struct ShutdownRequest {
    state: Mutex<State>,
    asked: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// A program takes requests (`SHUTDOWN` is accepted).
    heeded: bool,
    /// Why the server was asked to stop, once it was.
    reason: Option<String>,
}

impl ShutdownRequest {
    /// Asks the server to stop, saying why (the waiter gets it); the first reason is kept.
    pub fn request(&self, reason: impl Into<String>) {
        let mut state = self.state.lock();
        if state.reason.is_none() {
            state.reason = Some(reason.into());
        }
        self.asked.notify_all();
    }

    /// Whether the server was asked to stop.
    pub fn is_requested(&self) -> bool {
        self.state.lock().reason.is_some()
    }

    /// Blocks until the server is asked to stop; returns why.
    pub fn wait(&self) -> String {
        let mut state = self.state.lock();
        loop {
            if let Some(reason) = &state.reason {
                return reason.clone();
            }
            self.asked.wait(&mut state);
        }
    }

    /// Asks for `SHUTDOWN` to be accepted from now on.
    pub(crate) fn heed(&self) {
        self.state.lock().heeded = true;
    }

    /// [`request`](Self::request)s a stop if a program takes requests; returns whether it
    /// did.
    pub(crate) fn request_if_heeded(&self, reason: impl Into<String>) -> bool {
        let mut state = self.state.lock();
        if !state.heeded {
            return false;
        }
        if state.reason.is_none() {
            state.reason = Some(reason.into());
        }
        self.asked.notify_all();
        true
    }
}
