//! `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]`: asks the program running the server to stop it
//! (see [`ShutdownRequest`](crate::ShutdownRequest)); `kvstore-server` then shuts down as on
//! SIGTERM, flushing the store. As with Redis, success closes the connection without a
//! reply (redis-cli prints nothing; redis-py's `shutdown()` expects the connection to drop).
//! The options are accepted for Redis's sake and change nothing: every write is already in
//! the log, and the flush at shutdown is not skipped. `SHUTDOWN ABORT`: there is never a
//! shutdown to abort, as it starts at once.

use super::args::syntax_error;
use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let options = args.take_rest();
    let named = |name: &str| {
        options
            .iter()
            .any(|o| o.eq_ignore_ascii_case(name.as_bytes()))
    };
    let known = ["NOSAVE", "SAVE", "NOW", "FORCE", "ABORT"];
    if options
        .iter()
        .any(|o| !known.iter().any(|k| o.eq_ignore_ascii_case(k.as_bytes())))
        || (named("NOSAVE") && named("SAVE"))
        || (named("ABORT") && options.len() > 1)
    {
        return Err(syntax_error());
    }
    if named("ABORT") {
        return Err(Frame::error("ERR No shutdown in progress."));
    }
    let reason = format!("SHUTDOWN from {}", ctx.session.peer);
    if !ctx.node.shutdown.request_if_heeded(&reason) {
        tracing::warn!(peer = %ctx.session.peer, "SHUTDOWN refused: the program running this server takes no shutdown requests");
        return Err(Frame::error("ERR Errors trying to SHUTDOWN. Check logs."));
    }
    tracing::info!(peer = %ctx.session.peer, "SHUTDOWN requested");
    ctx.session.hang_up = true;
    Ok(Frame::ok())
}
