//! The in-process transport: a replica `KvStore` in the same process, reached through a link
//! that can drop, delay, duplicate and reorder messages, fail calls, disconnect and partition.

mod courier;
mod faults;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvstore_core::{KvStore, Options};
use parking_lot::RwLock;

use crate::endpoint::{ReplicaEndpoint, Session};
use crate::error::{Error, Result};
use crate::protocol::{Ack, Hello, HelloReply, SharedRecord, SnapshotAck, SnapshotChunk};
use crate::transport::Transport;
use courier::Courier;
pub use faults::{Delay, Faults};

type ReplicaSlot = Arc<RwLock<Option<ReplicaEndpoint>>>;

/// An embedded replica: a [`ReplicaEndpoint`] that can be stopped and restarted (to simulate
/// a crash, drop it and reopen its directory), with the [`Faults`] of the link to it.
/// Cheap to clone; clones share the replica.
#[derive(Debug, Clone)]
pub struct InProcessReplica {
    name: String,
    slot: ReplicaSlot,
    faults: Faults,
}

impl InProcessReplica {
    /// A running replica named `name` (names must be unique per replicator).
    pub fn new(name: impl Into<String>, endpoint: ReplicaEndpoint) -> Self {
        InProcessReplica {
            name: name.into(),
            slot: Arc::new(RwLock::new(Some(endpoint))),
            faults: Faults::default(),
        }
    }

    /// Opens (creating if needed) a replica store in `dir` with `options` and wraps it.
    pub fn open(name: impl Into<String>, dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        let store = options.open(dir)?;
        Ok(Self::new(name, ReplicaEndpoint::open(store)?))
    }

    /// The replica's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The link's fault switchboard.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The running endpoint, if the replica is up.
    pub fn endpoint(&self) -> Option<ReplicaEndpoint> {
        self.slot.read().clone()
    }

    /// The running replica's store, if it is up.
    pub fn store(&self) -> Option<KvStore> {
        self.endpoint().map(|e| e.store().clone())
    }

    /// Takes the replica down: calls fail and messages are lost until [`start`](Self::start).
    /// Returns the endpoint so the caller can drop it (closing the store) or keep it.
    pub fn stop(&self) -> Option<ReplicaEndpoint> {
        // A restart ends the session, as it drops a TCP connection: the next call fails and
        // the master's next HELLO checks the restarted replica's log.
        self.faults.disconnect();
        self.slot.write().take()
    }

    /// Brings the replica (back) up with `endpoint`, in a new session (see [`stop`](Self::stop)).
    pub fn start(&self, endpoint: ReplicaEndpoint) {
        self.faults.disconnect();
        *self.slot.write() = Some(endpoint);
    }

    /// A transport to this replica, for [`crate::ReplicatorBuilder::replica`].
    pub fn transport(&self) -> InProcessTransport {
        InProcessTransport {
            replica: self.clone(),
            link: None,
        }
    }
}

/// A session of the in-process transport.
struct Link {
    session: Session,
    generation: u64,
    /// Acks of records applied on the caller's thread (before any delay was configured).
    inline_acks: VecDeque<Ack>,
    /// The error that ends the session, returned once the acks before it were taken.
    deferred: Option<Error>,
    /// Delivery thread, started by the first HELLO or window that saw a delay configured.
    courier: Option<Courier>,
}

/// [`Transport`] to an [`InProcessReplica`], applying its [`Faults`].
pub struct InProcessTransport {
    replica: InProcessReplica,
    link: Option<Link>,
}

impl std::fmt::Debug for InProcessTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessTransport")
            .field("replica", &self.replica.name)
            .field("connected", &self.link.is_some())
            .finish()
    }
}

impl InProcessTransport {
    fn error(&self, reason: impl Into<String>) -> Error {
        Error::transport(self.replica.name.clone(), reason)
    }

    /// Fails the call on an injected fault or a broken session; returns the session.
    fn check(&mut self) -> Result<Session> {
        let verdict = self.replica.faults.check_session_call();
        self.session(verdict)
    }

    /// The session if the fault check let the call through and the session is current.
    fn session(&mut self, verdict: std::result::Result<u64, &'static str>) -> Result<Session> {
        let generation = match verdict {
            Ok(generation) => generation,
            Err(reason) => {
                self.link = None;
                return Err(self.error(reason));
            }
        };
        match &self.link {
            Some(link) if link.generation == generation => Ok(link.session),
            Some(_) => {
                self.link = None;
                Err(self.error("disconnected"))
            }
            None => Err(Error::NoSession),
        }
    }

    /// Appends up to `max` acks to `acks`: the first one waited for up to `timeout` (with a
    /// courier), the rest only if they have arrived. An error after acks is kept for the next
    /// call, so acks always come back in the order the replica sent them.
    fn take_acks(&mut self, timeout: Duration, acks: &mut Vec<Ack>, max: usize) -> Result<()> {
        self.check()?;
        let Some(link) = self.link.as_mut() else {
            return Err(Error::NoSession);
        };
        // Acks of windows applied inline come before any the courier delivers: the courier
        // starts only once a delay is set, after those windows were sent.
        let inline = !link.inline_acks.is_empty() || link.courier.is_none();
        let failed = match link.courier.as_ref().filter(|_| !inline) {
            None => {
                let n = link.inline_acks.len().min(max);
                acks.extend(link.inline_acks.drain(..n));
                // Applied inline: a missing ack is a lost message and will never arrive, so
                // waiting out the timeout would only slow tests down.
                if n == 0 {
                    link.deferred.take()
                } else {
                    None
                }
            }
            Some(_) if link.deferred.is_some() => link.deferred.take(),
            Some(courier) => match courier.acks.recv_timeout(timeout) {
                Err(_) => None,
                Ok(Err(e)) => Some(e),
                Ok(Ok(ack)) => {
                    acks.push(ack);
                    let mut taken = 1;
                    while taken < max {
                        match courier.acks.try_recv() {
                            Ok(Ok(ack)) => acks.push(ack),
                            Ok(Err(e)) => {
                                link.deferred = Some(e);
                                break;
                            }
                            Err(_) => break,
                        }
                        taken += 1;
                    }
                    None
                }
            },
        };
        match failed {
            Some(e) => {
                self.link = None;
                Err(e)
            }
            None => Ok(()),
        }
    }

    fn endpoint(&self) -> Result<ReplicaEndpoint> {
        self.replica
            .endpoint()
            .ok_or_else(|| self.error("replica is down"))
    }
}

impl Transport for InProcessTransport {
    fn describe(&self) -> String {
        self.replica.name.clone()
    }

    fn hello(&mut self, hello: &Hello) -> Result<HelloReply> {
        self.link = None;
        if let Err(reason) = self.replica.faults.check_call() {
            return Err(self.error(reason));
        }
        let endpoint = self.endpoint()?;
        std::thread::sleep(self.replica.faults.sample_delay());
        let opened = endpoint.hello(hello)?;
        let courier = if self.replica.faults.has_delay() {
            Some(
                Courier::start(self.replica.slot.clone(), opened.session)
                    .map_err(|e| self.error(format!("starting the courier thread: {e}")))?,
            )
        } else {
            None
        };
        self.link = Some(Link {
            session: opened.session,
            generation: self.replica.faults.generation(),
            inline_acks: VecDeque::new(),
            deferred: None,
            courier,
        });
        Ok(opened.reply)
    }

    fn send_records(&mut self, records: &[SharedRecord]) -> Result<()> {
        self.send_window(records.to_vec())
    }

    fn send_window(&mut self, records: Vec<SharedRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let verdict = self.replica.faults.check_window_call();
        let (mangles, delays) = verdict.map_or((false, false), |v| (v.mangles, v.delays));
        let session = self.session(verdict.map(|v| v.generation))?;
        let endpoint = self.replica.endpoint();
        let Some(link) = self.link.as_mut() else {
            return Err(Error::NoSession);
        };
        if link.deferred.is_some() {
            // The session already failed; its error is on its way to the worker.
            return Ok(());
        }
        if delays && link.courier.is_none() {
            // A delay set while the session is open applies from this window on, as it would
            // on a network (acks of the windows applied inline are returned first).
            match Courier::start(self.replica.slot.clone(), session) {
                Ok(courier) => link.courier = Some(courier),
                Err(e) => {
                    self.link = None;
                    return Err(Error::transport(
                        self.replica.name.clone(),
                        format!("starting the courier thread: {e}"),
                    ));
                }
            }
        }
        if link.courier.is_none() && !mangles {
            // Nothing happens to the records on the way: the replica applies the window as sent.
            let endpoint = endpoint
                .ok_or_else(|| Error::transport(self.replica.name.clone(), "replica is down"))?;
            match endpoint.apply_many(session, &records) {
                Ok(acks) => link.inline_acks.extend(acks),
                Err(e) => link.deferred = Some(e),
            }
            return Ok(());
        }
        let faults = self.replica.faults.clone();
        // Decide each message's fate: lost, delivered, delivered twice, swapped with the next.
        let rolls = faults.roll_window(records.len());
        let mut parcels: Vec<(SharedRecord, bool)> = Vec::with_capacity(records.len());
        let mut copies = Vec::new();
        for (record, roll) in records.into_iter().zip(rolls) {
            if roll.drop {
                continue;
            }
            if roll.duplicate {
                copies.push((record.clone(), false));
            }
            parcels.push((record, true));
            if roll.reorder && parcels.len() >= 2 {
                let n = parcels.len();
                parcels.swap(n - 2, n - 1);
            }
        }
        parcels.extend(copies);
        if let Some(courier) = link.courier.as_mut() {
            // One send time for the window: records with equal delays arrive together.
            let sent_at = Instant::now();
            for (record, report) in parcels {
                let arrival = (sent_at + faults.sample_delay()).max(courier.last_arrival);
                courier.last_arrival = arrival;
                if !courier.post((arrival, record, report)) {
                    self.link = None;
                    return Err(Error::transport(
                        self.replica.name.clone(),
                        "courier stopped",
                    ));
                }
            }
            return Ok(());
        }
        let endpoint = endpoint
            .ok_or_else(|| Error::transport(self.replica.name.clone(), "replica is down"))?;
        match courier::deliver_window(&endpoint, session, parcels) {
            Ok(acks) => link.inline_acks.extend(acks),
            Err(e) => link.deferred = Some(e),
        }
        Ok(())
    }

    fn recv_ack(&mut self, timeout: Duration) -> Result<Option<Ack>> {
        let mut acks = Vec::with_capacity(1);
        self.take_acks(timeout, &mut acks, 1)?;
        Ok(acks.pop())
    }

    fn recv_acks(&mut self, timeout: Duration, acks: &mut Vec<Ack>) -> Result<()> {
        self.take_acks(timeout, acks, usize::MAX)
    }

    fn send_snapshot_chunk(&mut self, chunk: &SnapshotChunk) -> Result<SnapshotAck> {
        let session = self.check()?;
        let endpoint = self.endpoint()?;
        std::thread::sleep(self.replica.faults.sample_delay());
        if self.replica.faults.roll().drop {
            self.link = None;
            return Err(self.error("snapshot chunk lost"));
        }
        endpoint.install_chunk(session, chunk)
    }

    fn close(&mut self) {
        self.link = None;
    }
}
