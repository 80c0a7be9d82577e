//! [`Server`]: binds, accepts, and runs each connection on its own thread.
//!
//! Why threads, not an event loop: the engine's calls block (a durable `put` waits for its
//! group's fsync), so an event loop would need a worker pool anyway, and one thread per
//! connection lets concurrent writers meet in the engine's group commit naturally. With
//! 256 KiB stacks, a thousand idle connections cost little. Measured with redis-benchmark,
//! see the crate README.

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvstore_core::Options;
use parking_lot::{Mutex, RwLock};

use crate::config::ServerConfig;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::node::{random_run_id, Node};
use crate::role::Role;
use crate::stats::ServerStats;

/// Stack of a connection thread; request handling never recurses.
const CONNECTION_STACK_BYTES: usize = 256 << 10;

/// How long shutdown waits for connection threads to finish their current command.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Starts servers.
#[derive(Debug)]
pub struct Server;

/// A running server. [`shutdown`](ServerHandle::shutdown) (or dropping it) stops accepting,
/// closes every connection, stops replication and flushes the store.
pub struct ServerHandle {
    node: Arc<Node>,
    addr: SocketAddr,
    accept_thread: Option<JoinHandle<()>>,
    connections: Connections,
}

impl Server {
    /// Validates `config`, opens the store, binds, starts replication per the configured role
    /// and starts accepting.
    pub fn start(config: ServerConfig) -> Result<ServerHandle> {
        config.validate()?;
        let store = Options::new()
            .sync_policy(config.sync_policy)
            .open(&config.data_dir)?;
        let listener = TcpListener::bind(config.bind)
            .map_err(|e| Error::io(format!("binding {}", config.bind), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let node = Arc::new(Node {
            store,
            listen_addr: addr,
            stats: ServerStats::default(),
            role: RwLock::new(Role::Master(crate::role::MasterRole::idle())),
            cursors: Mutex::default(),
            started: Instant::now(),
            run_id: random_run_id(),
            stopping: AtomicBool::new(false),
            transitions: Mutex::new(()),
            config,
        });
        crate::role::start(&node)?;
        let connections = Arc::new(Mutex::new(HashMap::new()));
        let accept_thread = {
            let (node, connections) = (node.clone(), connections.clone());
            std::thread::Builder::new()
                .name("kvstore-accept".into())
                .spawn(move || accept_loop(listener, node, connections))
                .map_err(|e| Error::io("spawning the accept thread", e))?
        };
        tracing::info!(%addr, role = %node.role.read().name(), "kvstore-server listening");
        Ok(ServerHandle {
            node,
            addr,
            accept_thread: Some(accept_thread),
            connections,
        })
    }
}

fn accept_loop(listener: TcpListener, node: Arc<Node>, connections: Connections) {
    let next_id = AtomicU64::new(0);
    for stream in listener.incoming() {
        if node.stopping.load(Ordering::Acquire) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%err, "accept failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        ServerStats::add(&node.stats.connections_received, 1);
        // Held until the new connection is registered, so its thread (which deregisters
        // itself when it ends) cannot try to remove its entry before it is there.
        let mut live = connections.lock();
        if live.len() >= node.config.max_clients {
            drop(live);
            ServerStats::add(&node.stats.rejected_connections, 1);
            refuse(stream);
            continue;
        }
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let (control, conn) = match stream
            .try_clone()
            .and_then(|control| Ok((control, Connection::new(stream, node.config.limits)?)))
        {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(%err, "could not set up an accepted connection");
                continue;
            }
        };
        let node = node.clone();
        let registry = connections.clone();
        let spawned = std::thread::Builder::new()
            .name("kvstore-conn".into())
            .stack_size(CONNECTION_STACK_BYTES)
            .spawn(move || {
                // Dropped last (even on a panic): closes the accept loop's handle on the
                // socket as soon as the connection ends, not at the next accept. Made here,
                // not before the spawn: if spawning fails, the closure is dropped while the
                // accept loop holds the lock.
                let _registry = Deregister {
                    connections: registry,
                    id,
                };
                ServerStats::add(&node.stats.connected_clients, 1);
                crate::handler::serve(node.clone(), conn);
                node.stats.connected_clients.fetch_sub(1, Ordering::Relaxed);
            });
        match spawned {
            Ok(thread) => {
                live.insert(id, (control, thread));
            }
            Err(err) => {
                tracing::warn!(%err, "could not spawn a connection thread");
                refuse(control);
            }
        }
    }
}

/// Every live connection by id: a second handle on its socket (so shutdown can close it)
/// and its thread.
type Connections = Arc<Mutex<HashMap<u64, (TcpStream, JoinHandle<()>)>>>;

/// Removes a connection from [`Connections`] when its thread ends, closing the duplicate
/// socket handle at once; otherwise each closed connection would keep a file descriptor
/// (and count against `--max-clients`) until the next accept.
struct Deregister {
    connections: Connections,
    id: u64,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        // The thread removing its own entry drops its own JoinHandle: that only detaches it.
        let entry = self.connections.lock().remove(&self.id);
        drop(entry);
    }
}

/// Tells a client over the connection limit why it is being closed.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(b"-ERR max number of clients reached\r\n");
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store the server serves (for embedding and tests).
    pub fn store(&self) -> &kvstore_core::KvStore {
        &self.node.store
    }

    /// Stops accepting, closes every connection, stops replication and flushes the store.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        let Some(accept) = self.accept_thread.take() else {
            return Ok(());
        };
        // Also ends blocked WAITs (they check it between slices), so their connections
        // finish within the grace period below instead of outliving it.
        self.node.stopping.store(true, Ordering::Release);
        // Wake the blocking accept with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let _ = accept.join();
        let live: Vec<_> = self.connections.lock().drain().map(|(_, c)| c).collect();
        for (stream, _) in &live {
            let _ = stream.shutdown(std::net::Shutdown::Read);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        for (stream, thread) in live {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                // Blocked in a long command (e.g. `WAIT n 0`): left to end on its own rather
                // than holding up shutdown; it holds only a handle on the store.
                tracing::warn!(
                    "a connection thread did not finish within the shutdown grace period"
                );
            }
        }
        crate::role::stop(&self.node);
        self.node.store.flush()?;
        tracing::info!(addr = %self.addr, "kvstore-server stopped");
        Ok(())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::error!(%err, "shutdown failed");
        }
    }
}
