//! `INFO [section …]`: Redis-style `field:value` lines under `# Section` headings, as one bulk
//! string (a verbatim string to RESP3 clients, as Redis sends it). Sections: `server`,
//! `clients`, `memory`, `persistence`, `replication`, `stats`, `keyspace`; none, `all`,
//! `default` or `everything` means all of them; an unknown one adds nothing.
//!
//! `replication` on a master holds, besides Redis's `role`/`connected_slaves`/
//! `master_repl_offset`, one line per replica
//! (`replicaN:addr=…,state=…,acked_lsn=…,lag_records=…,lag_bytes=…,lag_ms=…,…`) and the
//! cluster summary of the seed's health endpoint (`healthy_replicas`, `write_quorum`,
//! `has_quorum`).

use std::fmt::Write as _;

use kvstore_core::SyncPolicy;

use super::{Args, Ctx};
use crate::config::ReplicationMode;
use crate::frame::Frame;
use crate::node::Node;
use crate::role::{ReplicaRole, Role};
use crate::stats::ServerStats;

/// The Redis version whose commands and replies this server follows, as clients read it
/// (`INFO`'s `redis_version`, `HELLO`'s `version`) to decide what they may send.
pub(super) const REDIS_VERSION: &str = "7.0.0";

const SECTIONS: [&str; 7] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "replication",
    "stats",
    "keyspace",
];

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let asked: Vec<String> = args
        .take_rest()
        .iter()
        .map(|s| String::from_utf8_lossy(s).to_lowercase())
        .collect();
    let all = asked.is_empty()
        || asked
            .iter()
            .any(|s| matches!(s.as_str(), "all" | "default" | "everything"));
    let mut out = String::new();
    for section in SECTIONS {
        if !all && !asked.iter().any(|s| s == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = section.to_string();
        title[..1].make_ascii_uppercase();
        let _ = write!(out, "# {title}\r\n");
        let node = ctx.node;
        match section {
            "server" => server(&mut out, node),
            "clients" => clients(&mut out, node),
            "memory" => memory(&mut out, node),
            "persistence" => persistence(&mut out, node),
            "replication" => replication(&mut out, node),
            "stats" => stats(&mut out, node),
            _ => keyspace(&mut out, node),
        }
    }
    Ok(Frame::Verbatim(out.into_bytes()))
}

macro_rules! field {
    ($out:expr, $name:expr, $value:expr) => {
        let _ = write!($out, "{}:{}\r\n", $name, $value);
    };
}

fn server(out: &mut String, node: &Node) {
    field!(out, "kvstore_version", env!("CARGO_PKG_VERSION"));
    field!(out, "redis_version", REDIS_VERSION);
    field!(out, "redis_mode", "standalone");
    field!(out, "process_id", std::process::id());
    field!(out, "run_id", node.run_id);
    field!(out, "tcp_port", node.listen_addr.port());
    field!(out, "uptime_in_seconds", node.started.elapsed().as_secs());
    // Redis 7's field; each of the `io_threads` event loops serves its own connections, and
    // a connection that runs a blocking command gets a thread of its own.
    field!(out, "executable_model", "event-loop");
    field!(out, "io_threads", node.config.io_threads);
}

fn clients(out: &mut String, node: &Node) {
    let s = &node.stats;
    field!(
        out,
        "connected_clients",
        ServerStats::get(&s.connected_clients)
    );
    field!(out, "blocked_clients", ServerStats::get(&s.blocked_clients));
    field!(out, "maxclients", node.config.max_clients);
}

/// Redis's `used_memory` counts its allocator's bytes; no allocator count is kept here, so it
/// is the process's resident memory (what `redis-cli --stat` and dashboards show), and the
/// index's own share is `index_bytes`.
fn memory(out: &mut String, node: &Node) {
    let resident = resident_bytes().unwrap_or(0);
    field!(out, "used_memory", resident);
    field!(out, "used_memory_human", human_bytes(resident));
    field!(out, "used_memory_rss", resident);
    field!(out, "used_memory_rss_human", human_bytes(resident));
    field!(out, "index_bytes", node.store.stats().index_bytes);
    field!(out, "maxmemory", 0);
    field!(out, "maxmemory_human", "0B");
    field!(out, "maxmemory_policy", "noeviction");
}

/// The process's resident memory, from `/proc/self/status` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Bytes as Redis's `used_memory_human` shows them: `1.36M`, `512B`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("T", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("G", 1024.0 * 1024.0 * 1024.0),
        ("M", 1024.0 * 1024.0),
        ("K", 1024.0),
    ];
    for (unit, size) in UNITS {
        if bytes as f64 >= size {
            return format!("{:.2}{unit}", bytes as f64 / size);
        }
    }
    format!("{bytes}B")
}

fn persistence(out: &mut String, node: &Node) {
    let st = node.store.stats();
    let fsync = match st.sync_policy {
        SyncPolicy::Always => "always".to_string(),
        SyncPolicy::EveryMillis(ms) => format!("every {ms} ms"),
        SyncPolicy::Never => "no".to_string(),
    };
    field!(out, "aof_enabled", 1);
    field!(out, "fsync", fsync);
    field!(out, "last_lsn", st.last_lsn);
    field!(out, "wal_start_lsn", st.wal_start_lsn);
    field!(out, "segments", st.segments);
    field!(out, "segment_bytes", st.segment_bytes);
    field!(out, "live_bytes", st.live_bytes);
    field!(out, "dead_bytes", st.dead_bytes);
    field!(out, "fsyncs", st.fsyncs);
    field!(out, "compactions", st.compactions);
    field!(out, "poisoned", u8::from(st.poisoned));
    field!(out, "data_dir", node.store.path().display());
}

/// The master a replica follows: `REPLICAOF`'s address, else the session's master id if it
/// is `host:port`, else the peer's IP and port 0.
pub(crate) fn master_host_port(replica: &ReplicaRole) -> (String, u16) {
    if let Some((host, port)) = &replica.master_addr {
        return (host.clone(), *port);
    }
    match &*replica.link.lock() {
        Some(link) => crate::client::split_host_port(&link.master_id)
            .unwrap_or_else(|_| (link.peer.ip().to_string(), 0)),
        None => ("?".to_string(), 0),
    }
}

fn replication(out: &mut String, node: &Node) {
    let role = node.role.read_recursive();
    field!(out, "role", role.name());
    match &*role {
        Role::Master(master) => {
            let status = master.replicator.as_ref().map(|r| r.status());
            let replicas = status.as_ref().map_or(&[][..], |s| &s.replicas[..]);
            let healthy = replicas.iter().filter(|r| r.state.is_healthy()).count();
            let quorum = match node.config.mode {
                ReplicationMode::Async => 0,
                ReplicationMode::Sync { quorum, .. } => quorum,
            };
            let required = quorum.max(node.config.min_replicas_to_write);
            field!(out, "epoch", master.epoch);
            field!(out, "master_lsn", node.store.last_lsn());
            field!(out, "master_repl_offset", node.store.last_lsn());
            field!(out, "connected_slaves", healthy);
            for (i, r) in replicas.iter().enumerate() {
                field!(
                    out,
                    format!("replica{i}"),
                    format!(
                        "addr={},state={},acked_lsn={},lag_records={},lag_bytes={},lag_ms={},\
                         sends_ok={},sends_failed={},retries={},resyncs={},bytes_until_full_resync={}",
                        r.name,
                        r.state.as_str(),
                        r.acked_lsn,
                        r.lag.records,
                        r.lag.bytes,
                        r.lag.millis,
                        r.sends_ok,
                        r.sends_failed,
                        r.retries,
                        r.resyncs,
                        r.bytes_until_full_resync
                    )
                );
            }
            let mode = match node.config.mode {
                ReplicationMode::Async => "async",
                ReplicationMode::Sync { .. } => "sync",
            };
            field!(out, "replication_mode", mode);
            field!(out, "replicas", replicas.len());
            field!(out, "healthy_replicas", healthy);
            field!(out, "write_quorum", quorum);
            field!(
                out,
                "min_replicas_to_write",
                node.config.min_replicas_to_write
            );
            field!(
                out,
                "has_quorum",
                if healthy >= required { "yes" } else { "no" }
            );
            field!(
                out,
                "queue_depth",
                status.as_ref().map_or(0, |s| s.queue_depth)
            );
        }
        Role::Replica(replica) => {
            let (host, port) = master_host_port(replica);
            let link = replica.link.lock().clone();
            let stats = replica.endpoint.stats();
            field!(out, "master_host", host);
            field!(out, "master_port", port);
            field!(
                out,
                "master_link_status",
                if replica.link_up() { "up" } else { "down" }
            );
            field!(
                out,
                "master_last_io_seconds_ago",
                replica.last_io_seconds().map_or(-1, |s| s as i64)
            );
            field!(
                out,
                "master_id",
                link.map_or_else(|| "-".to_string(), |l| l.master_id)
            );
            field!(out, "epoch", replica.endpoint.epoch());
            field!(out, "applied_lsn", replica.endpoint.applied_lsn());
            field!(out, "slave_repl_offset", replica.endpoint.applied_lsn());
            field!(out, "slave_read_only", 1);
            field!(out, "records_applied", stats.applied);
            field!(out, "records_duplicate", stats.duplicates);
            field!(out, "records_gap", stats.gaps);
            field!(out, "snapshots_installed", stats.snapshots_installed);
        }
    }
}

fn stats(out: &mut String, node: &Node) {
    let s = &node.stats;
    let get = ServerStats::get;
    field!(
        out,
        "total_connections_received",
        get(&s.connections_received)
    );
    field!(out, "total_commands_processed", get(&s.commands_processed));
    field!(out, "total_error_replies", get(&s.error_replies));
    field!(out, "total_protocol_errors", get(&s.protocol_errors));
    field!(out, "rejected_connections", get(&s.rejected_connections));
    field!(out, "keyspace_hits", get(&s.keyspace_hits));
    field!(out, "keyspace_misses", get(&s.keyspace_misses));
    field!(out, "total_net_input_bytes", get(&s.net_input_bytes));
    field!(out, "total_net_output_bytes", get(&s.net_output_bytes));
}

fn keyspace(out: &mut String, node: &Node) {
    let keys = node.store.len();
    if keys > 0 {
        field!(out, "db0", format!("keys={keys},expires=0,avg_ttl=0"));
    }
}
