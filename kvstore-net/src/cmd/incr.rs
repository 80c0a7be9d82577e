//! `INCR key`, `DECR key`, `INCRBY key n`, `DECRBY key n`: add to the integer a key holds (0
//! if it has no value) and answer the result. Run in isolation (see [`isolated`](super::isolated)),
//! so concurrent increments never lose one.

use super::args::not_an_integer;
use super::view::View;
use super::Args;
use crate::frame::Frame;
use crate::parse::parse_int;

/// The amount a command adds: 1, -1, or its argument (negated for `DECRBY`).
pub(super) fn parse_delta(name: &str, args: &mut Args) -> Result<i64, Frame> {
    let delta = match name {
        "incr" => 1,
        "decr" => -1,
        "incrby" => args.next_int()?,
        _ => args
            .next_int()?
            .checked_neg()
            .ok_or_else(|| Frame::error("ERR decrement would overflow"))?,
    };
    args.finish()?;
    Ok(delta)
}

/// Reads the key, checks the delta, then adds it.
pub(super) fn apply(view: &mut View, name: &str, args: &mut Args) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    let delta = parse_delta(name, args)?;
    let current = match view.get(key)? {
        // Redis keeps integers as decimal text and reads them as strictly as its arguments.
        Some(value) => parse_int(&value).ok_or_else(not_an_integer)?,
        None => 0,
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| Frame::error("ERR increment or decrement would overflow"))?;
    view.put(key, next.to_string().into_bytes())?;
    Ok(Frame::Integer(next))
}
