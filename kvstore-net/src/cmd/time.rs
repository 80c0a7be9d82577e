//! `TIME`: the server's clock as two bulk strings, Unix seconds and microseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, _ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    args.finish()?;
    Ok(now())
}

/// The current time as `TIME` answers it (a clock before 1970 reads as 0).
pub(super) fn now() -> Frame {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Frame::Array(vec![
        Frame::bulk(since.as_secs().to_string()),
        Frame::bulk(since.subsec_micros().to_string()),
    ])
}
