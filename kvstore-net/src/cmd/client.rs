//! `CLIENT ID | SETNAME name | GETNAME | SETINFO LIB-NAME|LIB-VER value | INFO`: what client
//! libraries send when they connect (redis-py and Jedis send `SETINFO`, many set a name), and
//! what an operator asks about their own connection. `CLIENT REPLY ON|OFF|SKIP` as in Redis,
//! for clients that fire and forget: `OFF` sends no reply (its own included) until `ON`
//! (whose `+OK` goes out), `SKIP` none for itself and the next command. `CLIENT LIST`,
//! `KILL`, `PAUSE` and the like are not served.

use super::{args::syntax_error, Args, Ctx, ReplyMode, Session};
use crate::frame::Frame;

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let typed = args.next_bytes()?;
    let sub = typed.to_ascii_lowercase();
    let session = &mut *ctx.session;
    let wrong_arity = || {
        Frame::error(format!(
            "ERR wrong number of arguments for 'client|{}' command",
            String::from_utf8_lossy(&sub)
        ))
    };
    let arity = match sub.as_slice() {
        b"id" | b"getname" | b"info" => 0,
        b"setname" | b"reply" => 1,
        b"setinfo" => 2,
        _ => {
            return Err(Frame::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                super::as_c_string(typed, 128)
            )))
        }
    };
    if args.remaining() != arity {
        return Err(wrong_arity());
    }
    match sub.as_slice() {
        b"id" => Ok(Frame::Integer(session.id as i64)),
        b"getname" if session.name.is_empty() => Ok(Frame::Null),
        b"getname" => Ok(Frame::bulk(session.name.clone())),
        b"reply" => {
            let mode = args.next_bytes()?.to_ascii_uppercase();
            session.replies = match (mode.as_slice(), session.replies) {
                (b"ON", _) => ReplyMode::On,
                (b"OFF", _) => ReplyMode::Off,
                // As in Redis, SKIP changes nothing while replies are off.
                (b"SKIP", ReplyMode::Off) => ReplyMode::Off,
                (b"SKIP", _) => ReplyMode::Skip(2),
                _ => return Err(syntax_error()),
            };
            Ok(Frame::ok())
        }
        b"setname" => {
            let name = args.next_bytes()?;
            validate_name(name)?;
            session.name = name.to_vec();
            Ok(Frame::ok())
        }
        b"setinfo" => {
            let attribute = args.next_bytes()?;
            let value = args.next_bytes()?;
            let (slot, label) = if attribute.eq_ignore_ascii_case(b"LIB-NAME") {
                (&mut session.lib_name, "lib-name")
            } else if attribute.eq_ignore_ascii_case(b"LIB-VER") {
                (&mut session.lib_ver, "lib-ver")
            } else {
                return Err(Frame::error(format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(attribute)
                )));
            };
            if !is_plain(value) {
                return Err(Frame::error(format!(
                    "ERR {label} cannot contain spaces, newlines or special characters."
                )));
            }
            *slot = value.to_vec();
            Ok(Frame::ok())
        }
        _ => Ok(Frame::Verbatim(describe(session).into_bytes())),
    }
}

/// `CLIENT INFO`'s line, in Redis's `field=value` form, for the fields this server keeps.
fn describe(session: &Session) -> String {
    format!(
        "id={} addr={} name={} db=0 resp={} lib-name={} lib-ver={}\n",
        session.id,
        session.peer,
        String::from_utf8_lossy(&session.name),
        session.protocol.version(),
        String::from_utf8_lossy(&session.lib_name),
        String::from_utf8_lossy(&session.lib_ver),
    )
}

/// Printable ASCII without spaces, as Redis requires of client names: they appear in
/// space-separated `CLIENT INFO` lines.
fn is_plain(text: &[u8]) -> bool {
    text.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// A name `CLIENT SETNAME` and `HELLO … SETNAME` accept (an empty one clears it), or Redis's
/// error.
pub(super) fn validate_name(name: &[u8]) -> Result<(), Frame> {
    if is_plain(name) {
        Ok(())
    } else {
        Err(Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}
