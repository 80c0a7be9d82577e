//! `AUTH password` or `AUTH default password`: `+OK` when it matches `--requirepass`.

use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let first = args.next_bytes()?;
    let (user, password) = match args.next_opt() {
        Some(password) => (Some(first), password),
        None => (None, first),
    };
    args.finish()?;
    authenticate(ctx, user, password)?;
    Ok(Frame::ok())
}

/// Marks the session authenticated when `password` (for `user`, which can only be
/// `default`) is `--requirepass`; else the error `AUTH` replies with. Shared with `HELLO …
/// AUTH user password`.
pub(super) fn authenticate(
    ctx: &mut Ctx<'_>,
    user: Option<&[u8]>,
    password: &[u8],
) -> Result<(), Frame> {
    let Some(expected) = ctx.node.config.requirepass.as_deref() else {
        return Err(Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ));
    };
    let user_ok = user.is_none_or(|u| u == b"default");
    if user_ok && constant_time_eq(expected.as_bytes(), password) {
        ctx.session.authenticated = true;
        Ok(())
    } else {
        Err(Frame::error(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

/// Compares without an early exit, so reply timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
