//! Delivery for the in-process transport: [`deliver_window`] applies what reached the replica
//! as one window; with a simulated network delay, a thread per session hands records to the
//! replica when their delay has passed, in send order, together with any others due by then.

use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::ReplicaSlot;
use crate::endpoint::{ReplicaEndpoint, Session};
use crate::error::Result;
use crate::protocol::{Ack, SharedRecord};

/// One message on its way: when it arrives, the record, whether its ack is reported (a
/// duplicated copy's is not).
pub(super) type Parcel = (Instant, SharedRecord, bool);

pub(super) struct Courier {
    parcels: Option<Sender<Parcel>>,
    pub acks: Receiver<Result<Ack>>,
    /// Never sent on: dropping it tells the thread to stop at once.
    cancel: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
    /// Arrival time of the newest parcel (a later one never arrives before it).
    pub last_arrival: Instant,
}

impl Courier {
    pub fn start(slot: ReplicaSlot, session: Session) -> std::io::Result<Self> {
        let (parcel_tx, parcel_rx) = crossbeam_channel::unbounded::<Parcel>();
        let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
        let (cancel_tx, cancel_rx) = crossbeam_channel::bounded::<()>(0);
        let handle = std::thread::Builder::new()
            .name("kvstore-inproc-courier".into())
            .spawn(move || deliver(slot, session, parcel_rx, ack_tx, cancel_rx))?;
        Ok(Courier {
            parcels: Some(parcel_tx),
            acks: ack_rx,
            cancel: Some(cancel_tx),
            handle: Some(handle),
            last_arrival: Instant::now(),
        })
    }

    /// Queues a parcel; false if the thread is gone.
    pub fn post(&self, parcel: Parcel) -> bool {
        self.parcels
            .as_ref()
            .is_some_and(|p| p.send(parcel).is_ok())
    }
}

impl Drop for Courier {
    fn drop(&mut self) {
        drop(self.cancel.take());
        drop(self.parcels.take());
        if let Some(handle) = self.handle.take() {
            if handle.join().is_err() {
                tracing::error!("in-process courier thread panicked");
            }
        }
    }
}

/// Applies the records that reached the replica together as one window (one commit group on
/// the replica) and returns what goes back to the master: the acks of reported records (a
/// duplicated copy's is not), or the error that ends the session.
pub(super) fn deliver_window(
    endpoint: &ReplicaEndpoint,
    session: Session,
    parcels: Vec<(SharedRecord, bool)>,
) -> Result<Vec<Ack>> {
    if parcels.is_empty() {
        return Ok(Vec::new());
    }
    let (window, reported): (Vec<SharedRecord>, Vec<bool>) = parcels.into_iter().unzip();
    let acks = endpoint.apply_many(session, &window)?;
    Ok(acks
        .into_iter()
        .zip(reported)
        .filter(|(_, report)| *report)
        .map(|(ack, _)| ack)
        .collect())
}

/// Sleeps until `arrival`; false when the courier was cancelled meanwhile.
fn wait_until(arrival: Instant, cancel: &Receiver<()>) -> bool {
    let now = Instant::now();
    if arrival > now {
        matches!(
            cancel.recv_timeout(arrival - now),
            Err(RecvTimeoutError::Timeout)
        )
    } else {
        matches!(cancel.try_recv(), Err(TryRecvError::Empty))
    }
}

fn deliver(
    slot: ReplicaSlot,
    session: Session,
    parcels: Receiver<Parcel>,
    acks: Sender<Result<Ack>>,
    cancel: Receiver<()>,
) {
    // A parcel taken from the channel that was not due yet when its predecessors were delivered.
    let mut held: Option<Parcel> = None;
    loop {
        let first = match held.take() {
            Some(parcel) => parcel,
            None => match parcels.recv() {
                Ok(parcel) => parcel,
                Err(_) => return,
            },
        };
        if !wait_until(first.0, &cancel) {
            return;
        }
        // Every parcel that has arrived by now reaches the replica together, as one window;
        // each still arrives no earlier than its own delay says.
        let now = Instant::now();
        let mut window = vec![(first.1, first.2)];
        while let Ok(parcel) = parcels.try_recv() {
            if parcel.0 > now {
                held = Some(parcel);
                break;
            }
            window.push((parcel.1, parcel.2));
        }
        // A replica that is down loses the messages, as a network would.
        let Some(endpoint) = slot.read().clone() else {
            continue;
        };
        let answers = deliver_window(&endpoint, session, window);
        drop(endpoint);
        let sent = match answers {
            Ok(answers) => answers.into_iter().all(|ack| acks.send(Ok(ack)).is_ok()),
            Err(e) => acks.send(Err(e)).is_ok(),
        };
        if !sent {
            return;
        }
    }
}
