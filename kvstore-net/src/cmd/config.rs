//! `CONFIG GET pattern…`: read-only, for the settings `redis-benchmark` and clients ask about
//! (`save`, `appendonly`, `appendfsync`, `maxclients`, …). `CONFIG SET`/`RESETSTAT`/`REWRITE`
//! are refused: this server is configured by its command line.

use kvstore_core::SyncPolicy;

use super::{Args, Ctx};
use crate::frame::Frame;
use crate::glob::Glob;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let sub = args.next_bytes()?;
    if !sub.eq_ignore_ascii_case(b"GET") {
        return Err(Frame::error(format!(
            "ERR CONFIG {} is not supported: kvstore-server is configured by its command line",
            String::from_utf8_lossy(sub).to_uppercase()
        )));
    }
    let patterns = args.take_rest();
    if patterns.is_empty() {
        return Err(Frame::error(
            "ERR wrong number of arguments for 'config|get' command",
        ));
    }
    let config = &ctx.node.config;
    let fsync = match config.sync_policy {
        SyncPolicy::Always => "always",
        SyncPolicy::EveryMillis(_) => "everysec",
        SyncPolicy::Never => "no",
    };
    let settings = [
        ("save", String::new()),
        ("appendonly", "yes".to_string()),
        ("appendfsync", fsync.to_string()),
        ("maxclients", config.max_clients.to_string()),
        ("bind", config.bind.ip().to_string()),
        ("port", ctx.node.listen_addr.port().to_string()),
        ("databases", "1".to_string()),
        (
            "proto-max-bulk-len",
            config.limits.max_bulk_bytes.to_string(),
        ),
        (
            "min-replicas-to-write",
            config.min_replicas_to_write.to_string(),
        ),
        ("dir", config.data_dir.display().to_string()),
    ];
    let mut out = Vec::new();
    for (name, value) in settings {
        if patterns
            .iter()
            .any(|p| Glob::new(&p.to_ascii_lowercase()).matches(name.as_bytes()))
        {
            out.push((Frame::bulk(name), Frame::bulk(value)));
        }
    }
    // Name, value, name, value… to RESP2 clients; a map to RESP3 ones, as Redis 7 replies.
    Ok(Frame::Map(out))
}
