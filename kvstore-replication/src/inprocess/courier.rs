//! Delayed delivery for the in-process transport: a thread per session hands records to the
//! replica when their simulated network delay has passed, in send order.

use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::ReplicaSlot;
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
    pub fn start(slot: ReplicaSlot, epoch: u64) -> std::io::Result<Self> {
        let (parcel_tx, parcel_rx) = crossbeam_channel::unbounded::<Parcel>();
        let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
        let (cancel_tx, cancel_rx) = crossbeam_channel::bounded::<()>(0);
        let handle = std::thread::Builder::new()
            .name("kvstore-inproc-courier".into())
            .spawn(move || deliver(slot, epoch, parcel_rx, ack_tx, cancel_rx))?;
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

fn deliver(
    slot: ReplicaSlot,
    epoch: u64,
    parcels: Receiver<Parcel>,
    acks: Sender<Result<Ack>>,
    cancel: Receiver<()>,
) {
    for (arrival, record, report) in parcels {
        let now = Instant::now();
        if arrival > now {
            match cancel.recv_timeout(arrival - now) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        } else if !matches!(cancel.try_recv(), Err(TryRecvError::Empty)) {
            return;
        }
        // A replica that is down loses the message, as a network would.
        let Some(endpoint) = slot.read().clone() else {
            continue;
        };
        let result = endpoint.apply(epoch, &record);
        drop(endpoint);
        if (report || result.is_err()) && acks.send(result).is_err() {
            return;
        }
    }
}
