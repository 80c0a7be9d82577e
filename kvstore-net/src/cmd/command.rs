//! `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name…`, `COMMAND DOCS …`: the minimal
//! introspection `redis-cli` and client libraries ask for at start-up.

use super::args::syntax_error;
use super::{lookup, Args, Ctx, Spec, COMMANDS};
use crate::frame::Frame;

fn describe(spec: &Spec) -> Frame {
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(spec.arity),
        Frame::Array(
            spec.flags
                .iter()
                .map(|f| Frame::Simple((*f).into()))
                .collect(),
        ),
        Frame::Integer(spec.first_key),
        Frame::Integer(spec.last_key),
        Frame::Integer(spec.step),
    ])
}

pub(super) fn run(args: &mut Args, _ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let Some(sub) = args.next_opt() else {
        return Ok(Frame::Array(COMMANDS.iter().map(describe).collect()));
    };
    let sub = sub.to_ascii_uppercase();
    match sub.as_slice() {
        b"COUNT" => {
            args.finish()?;
            Ok(Frame::Integer(COMMANDS.len() as i64))
        }
        b"INFO" => Ok(Frame::Array(
            args.take_rest()
                .iter()
                .map(|name| lookup(name).map_or(Frame::NullArray, describe))
                .collect(),
        )),
        // No documentation is served; clients fall back to their built-in help.
        b"DOCS" => Ok(Frame::Array(Vec::new())),
        _ => Err(syntax_error()),
    }
}
