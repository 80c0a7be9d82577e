//! `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name…`, `COMMAND DOCS …`: the minimal
//! introspection `redis-cli` and client libraries ask for at start-up.

use super::{lookup, Args, Ctx, Spec, COMMANDS};
use crate::frame::Frame;

/// A command in Redis 7's ten fields: name, arity, flags, first key, last key, step, ACL
/// categories, tips, key specifications, subcommands (the last three empty here). All but
/// the scalars are sets, as Redis 7 sends them to RESP3 clients.
fn describe(spec: &Spec) -> Frame {
    let simple = |text: &'static str| Frame::Simple(text.into());
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(spec.arity),
        Frame::Set(spec.flags.iter().copied().map(simple).collect()),
        Frame::Integer(spec.first_key),
        Frame::Integer(spec.last_key),
        Frame::Integer(spec.step),
        Frame::Set(categories(spec).map(simple).collect()),
        Frame::Set(Vec::new()),
        Frame::Set(Vec::new()),
        Frame::Set(Vec::new()),
    ])
}

/// The ACL categories Redis puts commands with these flags in.
fn categories(spec: &Spec) -> impl Iterator<Item = &'static str> {
    let of_flag = |flag: &str| -> &'static [&'static str] {
        match flag {
            "write" => &["@write"],
            "readonly" => &["@read"],
            "fast" => &["@fast"],
            "admin" => &["@admin", "@dangerous"],
            "no-auth" => &["@connection"],
            _ => &[],
        }
    };
    spec.flags
        .iter()
        .flat_map(move |flag| of_flag(flag).iter().copied())
}

pub(super) fn run(args: &mut Args, _ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let Some(sub) = args.next_opt() else {
        return Ok(Frame::Array(COMMANDS.iter().map(describe).collect()));
    };
    let typed = sub;
    let sub = sub.to_ascii_uppercase();
    match sub.as_slice() {
        b"COUNT" => {
            args.finish()?;
            Ok(Frame::Integer(COMMANDS.len() as i64))
        }
        b"INFO" => Ok(Frame::Array(
            args.take_rest()
                .iter()
                .map(|name| lookup(name).map_or(Frame::Null, describe))
                .collect(),
        )),
        // No documentation is served; clients fall back to their built-in help.
        b"DOCS" => Ok(Frame::Map(Vec::new())),
        _ => Err(Frame::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            super::as_c_string(typed, 128)
        ))),
    }
}
