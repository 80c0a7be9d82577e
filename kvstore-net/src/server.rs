//! [`Server`]: binds, then serves every connection from a few event loops (see
//! `event_loop`), handing those that run blocking commands to threads of their own.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use kvstore_core::Options;

use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::event_loop::EventLoops;
use crate::node::Node;
use crate::shutdown::ShutdownRequest;

/// Starts servers.
#[derive(Debug)]
pub struct Server;

/// A running server. [`shutdown`](ServerHandle::shutdown) (or dropping it) stops accepting,
/// closes every connection, stops replication and flushes the store.
pub struct ServerHandle {
    node: Arc<Node>,
    addr: SocketAddr,
    loops: Option<EventLoops>,
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
        let io_threads = config.io_threads;
        let node = Arc::new(Node::new(store, config, addr));
        crate::role::start(&node)?;
        let loops = match EventLoops::start(node.clone(), listener, io_threads) {
            Ok(loops) => loops,
            Err(err) => {
                crate::role::stop(&node);
                return Err(err);
            }
        };
        tracing::info!(%addr, io_threads, role = %node.role.read_recursive().name(), "kvstore-server listening");
        Ok(ServerHandle {
            node,
            addr,
            loops: Some(loops),
        })
    }
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

    /// The request a client's `SHUTDOWN` makes, for the program running this server to wait
    /// on (and to make itself, from a signal handler's thread). Once taken, `SHUTDOWN` is
    /// accepted; the server stops only when the program calls [`shutdown`](Self::shutdown).
    pub fn shutdown_request(&self) -> Arc<ShutdownRequest> {
        self.node.shutdown.heed();
        self.node.shutdown.clone()
    }

    /// Stops accepting, closes every connection, stops replication and flushes the store.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        let Some(mut loops) = self.loops.take() else {
            return Ok(());
        };
        loops.stop();
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
