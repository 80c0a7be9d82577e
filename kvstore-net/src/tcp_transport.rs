//! [`TcpTransport`]: the replication [`Transport`] over one TCP connection to a replica's
//! `kvstore-server`, speaking the `REPLICATE …` commands of `cmd/replicate.rs`.
//!
//! Records are pipelined: [`send_records`](Transport::send_records) writes the window as one
//! `REPLICATE LOG <blob>` command without waiting (the records' log bytes as the engine
//! committed them, concatenated; several blobs when the window exceeds
//! [`MAX_LOG_BLOB_BYTES`] or [`crate::MAX_LOG_BLOB_RECORDS`]; a record too large for any blob
//! goes alone as a text command). Each reply (`:applied_lsn`, cumulative) becomes the [`Ack`]
//! of every record of the oldest command in flight, since RESP replies come back in request
//! order.
//! Every [`hello`](Transport::hello) opens a fresh connection (authenticating first when a
//! password is set), so nothing from an earlier session can be mistaken for an ack of this
//! one. Reconnect pacing is the worker's exponential [`kvstore_replication::Backoff`]; this
//! transport bounds each connect, write and reply wait.

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use kvstore_core::Lsn;
use kvstore_replication::{
    Ack, Error, Hello, HelloReply, Result, SharedRecord, SnapshotAck, SnapshotChunk,
    SnapshotProgress, Transport,
};

use crate::client::{resolve, Client};
use crate::frame::Frame;
use crate::log_blob::{plan, Piece, LOG_PART_BYTES, MAX_LOG_BLOB_BYTES};

/// Default bound on connecting to a replica.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default bound on a write, and on the reply to a snapshot chunk (the last one installs
/// the snapshot, which takes a while on a large store).
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the replies to `AUTH` and `HELLO`, which a replica answers at once: a link that
/// takes bytes and answers nothing (stalled) is found out in this time, also when idle (the
/// worker's heartbeat is a `HELLO`), rather than counted healthy for the I/O timeout.
pub const HELLO_TIMEOUT: Duration = kvstore_replication::DEFAULT_ACK_TIMEOUT;

/// A connection from a master to one replica. See the module docs.
#[derive(Debug)]
pub struct TcpTransport {
    addr: String,
    password: Option<String>,
    connect_timeout: Duration,
    io_timeout: Duration,
    client: Option<Client>,
    in_flight: InFlight,
    abort: Arc<Abort>,
}

/// What [`Transport::interrupter`] shares with the transport: the current connection's
/// socket, to shut down from another thread, and whether calls are over for good.
#[derive(Debug, Default)]
struct Abort {
    aborted: AtomicBool,
    socket: Mutex<Option<TcpStream>>,
}

impl Abort {
    /// Ends the current connection's calls and refuses new connections.
    fn interrupt(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        if let Some(socket) = self.socket.lock().take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Notes the socket of a new connection; false if calls are already over (the socket is
    /// then shut down here).
    fn watch(&self, socket: Option<TcpStream>) -> bool {
        let mut slot = self.socket.lock();
        *slot = socket;
        if self.aborted.load(Ordering::SeqCst) {
            if let Some(socket) = slot.take() {
                let _ = socket.shutdown(Shutdown::Both);
            }
            return false;
        }
        true
    }
}

/// What was sent and not yet acknowledged: the LSNs of the records, in order, and how many
/// of them each command carried (one reply per command acknowledges that many).
#[derive(Debug, Default)]
struct InFlight {
    lsns: VecDeque<Lsn>,
    per_command: VecDeque<usize>,
    /// Acks of a reply already read, not yet handed to the worker.
    ready: VecDeque<Ack>,
}

impl InFlight {
    fn is_empty(&self) -> bool {
        self.lsns.is_empty() && self.ready.is_empty()
    }

    fn clear(&mut self) {
        self.lsns.clear();
        self.per_command.clear();
        self.ready.clear();
    }

    /// Books the reply of the oldest command: every record it carried is acknowledged with
    /// `applied_lsn`.
    fn acknowledge(&mut self, applied_lsn: Lsn) {
        let count = self.per_command.pop_front().unwrap_or(0);
        let taken = count.min(self.lsns.len());
        let acks = self.lsns.drain(..taken).map(|lsn| Ack { lsn, applied_lsn });
        self.ready.extend(acks);
    }
}

impl TcpTransport {
    /// A transport to the replica at `addr` (`host:port`); connects on the first `hello`.
    pub fn new(addr: impl Into<String>, password: Option<String>) -> Self {
        TcpTransport {
            addr: addr.into(),
            password,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            io_timeout: DEFAULT_IO_TIMEOUT,
            client: None,
            in_flight: InFlight::default(),
            abort: Arc::default(),
        }
    }

    /// Bounds connecting and the other waits. Defaults: [`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_IO_TIMEOUT`].
    pub fn timeouts(mut self, connect: Duration, io: Duration) -> Self {
        self.connect_timeout = connect;
        self.io_timeout = io;
        self
    }

    fn broken(&mut self, reason: impl std::fmt::Display) -> Error {
        self.close();
        Error::transport(&self.addr, reason.to_string())
    }

    fn client(&mut self) -> Result<&mut Client> {
        match self.client {
            Some(ref mut client) => Ok(client),
            None => Err(Error::NoSession),
        }
    }

    /// Sends one request and reads its reply with the I/O timeout.
    fn round_trip(&mut self, args: &[Vec<u8>]) -> Result<Frame> {
        self.round_trip_within(args, self.io_timeout)
    }

    /// Sends one request and reads its reply within `timeout`.
    fn round_trip_within(&mut self, args: &[Vec<u8>], timeout: Duration) -> Result<Frame> {
        let result = self.client().and_then(|client| {
            client
                .set_timeout(Some(timeout))
                .and_then(|_| client.command(args))
                .map_err(|e| Error::transport("", e.to_string()))
        });
        result.map_err(|e| match e {
            Error::Transport { reason, .. } => self.broken(reason),
            other => other,
        })
    }
}

/// Turns an error reply into the replication error it stands for.
fn refusal(message: &str) -> Error {
    let numbers: Vec<u64> = message
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let code = message.split(' ').next().unwrap_or_default();
    match (code, numbers.as_slice()) {
        ("STALEEPOCH", [replica_epoch, master_epoch, ..]) => Error::StaleEpoch {
            master_epoch: *master_epoch,
            replica_epoch: *replica_epoch,
        },
        ("DIVERGED", [replica_lsn, master_lsn, ..]) => Error::Diverged {
            replica_lsn: *replica_lsn,
            master_lsn: *master_lsn,
        },
        ("NOSESSION", _) => Error::NoSession,
        _ => Error::Protocol(format!("replica replied {message}")),
    }
}

fn int(frame: &Frame) -> Option<u64> {
    match frame {
        Frame::Integer(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

impl Transport for TcpTransport {
    fn describe(&self) -> String {
        self.addr.clone()
    }

    fn hello(&mut self, hello: &Hello) -> Result<HelloReply> {
        self.close();
        if self.abort.aborted.load(Ordering::SeqCst) {
            return Err(self.broken("interrupted: the replicator is closing"));
        }
        let addr = resolve(&self.addr).map_err(|e| self.broken(e))?;
        let client = Client::connect_timeout(&addr.to_string(), self.connect_timeout)
            .map_err(|e| self.broken(e))?;
        if !self.abort.watch(client.try_clone_stream().ok()) {
            return Err(self.broken("interrupted: the replicator is closing"));
        }
        self.client = Some(client);
        if let Some(password) = self.password.clone() {
            match self
                .round_trip_within(&[b"AUTH".to_vec(), password.into_bytes()], HELLO_TIMEOUT)?
            {
                Frame::Simple(ok) if ok == "OK" => {}
                other => return Err(self.broken(format!("AUTH refused: {other}"))),
            }
        }
        let mut args = vec![
            b"REPLICATE".to_vec(),
            b"HELLO".to_vec(),
            hello.master_id.clone().into_bytes(),
            hello.epoch.to_string().into_bytes(),
            hello.master_last_lsn.to_string().into_bytes(),
        ];
        if hello.force_resync {
            args.push(b"FORCE".to_vec());
        }
        if !hello.timeline.is_empty() {
            args.push(b"TIMELINE".to_vec());
            args.push(hello.timeline.encode().into_bytes());
        }
        match self.round_trip_within(&args, HELLO_TIMEOUT)? {
            // A fifth item, the replica's id, comes from replicas that send one.
            Frame::Array(items) if items.len() == 4 || items.len() == 5 => {
                let (Some(applied_lsn), Some(epoch)) = (int(&items[0]), int(&items[1])) else {
                    return Err(self.broken("malformed HELLO reply"));
                };
                let snapshot_in_progress = match (&items[2], int(&items[3])) {
                    (Frame::Integer(lsn), Some(next_seq)) if *lsn >= 0 => Some(SnapshotProgress {
                        snapshot_lsn: *lsn as u64,
                        next_seq,
                    }),
                    _ => None,
                };
                Ok(HelloReply {
                    applied_lsn,
                    epoch,
                    snapshot_in_progress,
                    replica_id: items.get(4).and_then(int),
                })
            }
            Frame::Error(message) => {
                let err = refusal(&message);
                self.close();
                Err(err)
            }
            other => Err(self.broken(format!("unexpected HELLO reply {other}"))),
        }
    }

    fn send_records(&mut self, records: &[SharedRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let pieces = plan(records, MAX_LOG_BLOB_BYTES);
        let timeout = self.io_timeout;
        let client = self.client()?;
        let mut per_command = Vec::with_capacity(pieces.len());
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut written = client.set_timeout(Some(timeout));
        for piece in &pieces {
            if written.is_err() {
                // The connection is lost with what was queued: queue nothing more.
                break;
            }
            match piece {
                Piece::Log(range) => {
                    parts.clear();
                    parts.extend(records[range.clone()].iter().map(|r| r.as_bytes()));
                    client.queue_joined(&[b"REPLICATE", b"LOG"], &parts);
                    per_command.push(range.len());
                }
                Piece::Parts(index) => {
                    let bytes = records[*index].as_bytes();
                    let total = bytes.len().to_string();
                    let mut chunks = bytes.chunks(LOG_PART_BYTES).peekable();
                    while let Some(part) = chunks.next() {
                        if written.is_err() {
                            break;
                        }
                        client.queue(&[&b"REPLICATE"[..], b"LOGPART", total.as_bytes(), part]);
                        // The replica acks the record with its last part.
                        per_command.push(usize::from(chunks.peek().is_none()));
                        // Written part by part: a record of up to 1 GiB is not copied whole
                        // into the output buffer.
                        written = written.and_then(|()| client.flush());
                    }
                }
            }
        }
        let sent = written.and_then(|()| client.flush());
        match sent {
            Ok(()) => {
                self.in_flight.lsns.extend(records.iter().map(|r| r.lsn()));
                self.in_flight.per_command.extend(per_command);
                Ok(())
            }
            Err(e) => Err(self.broken(e)),
        }
    }

    fn recv_ack(&mut self, timeout: Duration) -> Result<Option<Ack>> {
        if let Some(ack) = self.in_flight.ready.pop_front() {
            return Ok(Some(ack));
        }
        if self.in_flight.per_command.is_empty() {
            return Ok(None);
        }
        let client = self.client()?;
        if let Err(e) = client.set_timeout(Some(timeout.max(Duration::from_millis(1)))) {
            return Err(self.broken(e));
        }
        let reply = match client.read_reply() {
            Ok(reply) => reply,
            Err(crate::Error::Io { source, .. })
                if matches!(
                    source.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(self.broken(e)),
        };
        match reply {
            Frame::Integer(applied) if applied >= 0 => {
                self.in_flight.acknowledge(applied as u64);
                match self.in_flight.ready.pop_front() {
                    // A reply to a record's first parts acks nothing: read on.
                    None if !self.in_flight.per_command.is_empty() => self.recv_ack(timeout),
                    ack => Ok(ack),
                }
            }
            Frame::Error(message) => {
                let err = refusal(&message);
                self.close();
                Err(err)
            }
            other => Err(self.broken(format!("unexpected reply to a record: {other}"))),
        }
    }

    fn recv_acks(&mut self, timeout: Duration, acks: &mut Vec<Ack>) -> Result<()> {
        if let Some(ack) = self.recv_ack(timeout)? {
            acks.push(ack);
            acks.extend(self.in_flight.ready.drain(..));
        }
        Ok(())
    }

    fn send_snapshot_chunk(&mut self, chunk: &SnapshotChunk) -> Result<SnapshotAck> {
        if !self.in_flight.is_empty() {
            return Err(Error::Protocol(
                "snapshot chunk sent while records are unacknowledged".into(),
            ));
        }
        let mut args = vec![
            b"REPLICATE".to_vec(),
            b"SNAPSHOT".to_vec(),
            chunk.snapshot_lsn.to_string().into_bytes(),
            chunk.seq.to_string().into_bytes(),
            if chunk.last {
                b"1".to_vec()
            } else {
                b"0".to_vec()
            },
        ];
        for piece in &chunk.pieces {
            args.extend([
                piece.key.clone(),
                piece.value_offset.to_string().into_bytes(),
                piece.value_len.to_string().into_bytes(),
                piece.data.clone(),
            ]);
        }
        match self.round_trip(&args)? {
            Frame::Array(items) if items.len() == 3 => {
                match (int(&items[0]), int(&items[1]), int(&items[2])) {
                    (Some(next_seq), Some(applied_lsn), Some(finished)) => Ok(SnapshotAck {
                        next_seq,
                        applied_lsn,
                        finished: finished == 1,
                    }),
                    _ => Err(self.broken("malformed snapshot reply")),
                }
            }
            Frame::Error(message) => {
                let err = refusal(&message);
                self.close();
                Err(err)
            }
            other => Err(self.broken(format!("unexpected snapshot reply {other}"))),
        }
    }

    fn close(&mut self) {
        self.client = None;
        self.in_flight.clear();
        self.abort.socket.lock().take();
    }

    fn interrupter(&self) -> Option<kvstore_replication::Interrupter> {
        let abort = self.abort.clone();
        Some(Box::new(move || abort.interrupt()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_numbers() {
        let stale = kvstore_replication::Error::StaleEpoch {
            master_epoch: 3,
            replica_epoch: 7,
        };
        assert!(matches!(
            refusal(&stale.to_string()),
            Error::StaleEpoch {
                master_epoch: 3,
                replica_epoch: 7
            }
        ));
        let diverged = kvstore_replication::Error::Diverged {
            replica_lsn: 10,
            master_lsn: 4,
        };
        assert!(matches!(
            refusal(&diverged.to_string()),
            Error::Diverged {
                replica_lsn: 10,
                master_lsn: 4
            }
        ));
    }

    /// A replica that takes the HELLO and never answers: the interrupter ends the wait at
    /// once (not after [`HELLO_TIMEOUT`]), and every later call fails without connecting.
    #[test]
    fn the_interrupter_ends_a_blocked_call_and_every_later_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let silent = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
        let mut transport = TcpTransport::new(addr, None);
        let interrupt = transport.interrupter().unwrap();
        let interrupting = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            interrupt();
        });
        let hello = Hello {
            master_id: "m".into(),
            epoch: 1,
            master_last_lsn: 0,
            force_resync: false,
            timeline: Default::default(),
        };
        let started = std::time::Instant::now();
        assert!(transport.hello(&hello).is_err());
        assert!(
            started.elapsed() < HELLO_TIMEOUT / 2,
            "{:?}",
            started.elapsed()
        );
        interrupting.join().unwrap();
        let _held_open = silent.join().unwrap();
        let err = transport.hello(&hello).unwrap_err().to_string();
        assert!(err.contains("interrupted"), "{err}");
    }
}
