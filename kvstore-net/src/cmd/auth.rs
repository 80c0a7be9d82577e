//! `AUTH password` or `AUTH default password`: `+OK` when it matches `--requirepass`.
//! Without `--requirepass`, as in Redis, the default user takes any password (`AUTH default
//! x` is `+OK`), and the one-argument form is refused as a configuration mistake.

use super::args::syntax_error;
use super::{Args, Ctx};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let first = args.next_bytes()?;
    let (user, password) = match args.next_opt() {
        Some(password) => (Some(first), password),
        None => (None, first),
    };
    if args.remaining() > 0 {
        return Err(syntax_error());
    }
    match user {
        Some(user) if ctx.node.config.requirepass.is_none() => default_user_only(user)?,
        _ => authenticate(ctx, user, password)?,
    }
    Ok(Frame::ok())
}

/// Without a password, the default user takes any; there is no other user.
pub(super) fn default_user_only(user: &[u8]) -> Result<(), Frame> {
    if user == b"default" {
        Ok(())
    } else {
        Err(wrong_pass())
    }
}

fn wrong_pass() -> Frame {
    Frame::error("WRONGPASS invalid username-password pair or user is disabled.")
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
        Err(wrong_pass())
    }
}

/// Compares without an early exit, so reply timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
