//! `kvstore-server`: serves a kvstore data directory over RESP2 (redis-cli compatible) and
//! replicates it to other `kvstore-server`s. `--help` explains every flag; a bad flag value
//! prints a clear message and exits with code 2; SIGINT/SIGTERM and a client's `SHUTDOWN`
//! shut down gracefully (connections closed, replication drained, store flushed).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Parser, ValueEnum};
use kvstore_core::SyncPolicy;
use kvstore_net::{ReplicationMode, Server, ServerConfig};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Fsync {
    /// fdatasync before each write is acknowledged (concurrent writers share one sync).
    Always,
    /// fdatasync once a second: a power failure may lose up to a second of writes.
    Everysec,
    /// Leave write-back to the OS: a power failure may lose everything since the last flush.
    No,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// A write returns once durable on this master; replicas follow.
    Async,
    /// A write returns once --write-quorum replicas applied it (or fails after --sync-timeout-ms,
    /// still durable here).
    Sync,
}

/// A replicated key-value store speaking the Redis protocol (RESP2).
#[derive(Debug, Parser)]
#[command(name = "kvstore-server", version)]
struct Args {
    /// Address to listen on. Use 0.0.0.0 to accept connections from other machines.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0: any free port, printed in the log).
    #[arg(long, default_value_t = 5555)]
    port: u16,
    /// Directory holding the store's log segments (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Replicas this node streams its writes to while it is a master, as host:port,host:port.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',', value_parser = parse_host_port)]
    replicas: Vec<String>,
    /// How writes wait for replicas.
    #[arg(long, value_enum, default_value = "async")]
    replication_mode: Mode,
    /// In sync mode: replicas that must apply a write before it is acknowledged
    /// (default: a majority of the --replicas other than this node).
    #[arg(long, value_name = "K")]
    write_quorum: Option<usize>,
    /// In sync mode: how long a write waits for its quorum before failing (it stays durable here).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    sync_timeout_ms: u64,
    /// Start as a replica: refuse client writes (-READONLY), accept REPLICATE from a master.
    #[arg(long)]
    replica: bool,
    /// When acknowledged writes reach the disk.
    #[arg(long, value_enum, default_value = "always")]
    fsync: Fsync,
    /// Password clients (AUTH) and replication links must present.
    #[arg(long, value_name = "PASS")]
    requirepass: Option<String>,
    /// Refuse writes (-NOREPLICAS) while fewer replicas are healthy.
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_replicas_to_write: usize,
    /// Most simultaneous client connections.
    #[arg(long, value_name = "N", default_value_t = kvstore_net::config::DEFAULT_MAX_CLIENTS,
          value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    max_clients: usize,
    /// Event-loop threads serving client connections.
    #[arg(long, value_name = "N", default_value_t = kvstore_net::event_loop::DEFAULT_IO_THREADS,
          value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    io_threads: usize,
}

fn parse_host_port(s: &str) -> Result<String, String> {
    kvstore_net::client::split_host_port(s.trim())?;
    Ok(s.trim().to_string())
}

fn config(args: Args) -> Result<ServerConfig, String> {
    let mode = match (args.replication_mode, args.write_quorum) {
        (Mode::Async, None) => ReplicationMode::Async,
        (Mode::Async, Some(_)) => {
            return Err("--write-quorum needs --replication-mode sync".into());
        }
        (Mode::Sync, quorum) => {
            // A majority of the replicas this node streams to: the list may name the node
            // itself (one list for every node of a cluster).
            let listen = SocketAddr::new(args.host, args.port);
            let others = args
                .replicas
                .iter()
                .filter(|r| !kvstore_net::names_this_node(r, listen))
                .count();
            ReplicationMode::Sync {
                quorum: quorum.unwrap_or(others / 2 + 1),
                timeout: Duration::from_millis(args.sync_timeout_ms),
            }
        }
    };
    let sync_policy = match args.fsync {
        Fsync::Always => SyncPolicy::Always,
        Fsync::Everysec => SyncPolicy::EveryMillis(1000),
        Fsync::No => SyncPolicy::Never,
    };
    let config = ServerConfig::new(args.data_dir)
        .bind(SocketAddr::new(args.host, args.port))
        .requirepass(args.requirepass)
        .max_clients(args.max_clients)
        .io_threads(args.io_threads)
        .sync_policy(sync_policy)
        .replicas(args.replicas)
        .replica(args.replica)
        .replication_mode(mode)
        .min_replicas_to_write(args.min_replicas_to_write);
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match config(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("kvstore-server: {message}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("kvstore-server: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::start(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("kvstore-server: {e}");
            // Flags that contradict each other only once the server knows its own address
            // (a quorum its replica list cannot meet) are bad flags too.
            return match e {
                kvstore_net::Error::Config(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            };
        }
    };
    // Tests and scripts read the bound port from this line.
    println!("listening on {}", server.local_addr());
    // A signal and a client's SHUTDOWN both end up as the one request the main thread waits on.
    let request = server.shutdown_request();
    let from_signal = request.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            from_signal.request(format!("signal {signal}"));
        }
    });
    let reason = request.wait();
    tracing::info!(%reason, "shutting down");
    match server.shutdown() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvstore-server: shutdown: {e}");
            ExitCode::FAILURE
        }
    }
}
