//! `HELLO [protover [AUTH username password] [SETNAME clientname]]`: switches the connection
//! to RESP2 or RESP3 and describes the server, as Redis 6+ does. Client libraries that speak
//! RESP3 (redis-py 8 by default, go-redis, Lettuce) start every connection with it; the reply
//! is a map in the protocol just chosen.

use super::client::validate_name;
use super::{auth, Args, Ctx};
use crate::frame::{Frame, Protocol};

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let protocol = match args.next_opt() {
        None => None,
        Some(version) => Some(match crate::parse::parse_int(version) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Err(Frame::error("NOPROTO unsupported protocol version")),
            None => {
                return Err(Frame::error(
                    "ERR Protocol version is not an integer or out of range",
                ))
            }
        }),
    };
    let mut credentials = None;
    let mut name = None;
    while let Some(option) = args.next_opt() {
        let left = args.remaining();
        if option.eq_ignore_ascii_case(b"AUTH") && left >= 2 {
            credentials = Some((args.next_bytes()?, args.next_bytes()?));
        } else if option.eq_ignore_ascii_case(b"SETNAME") && left >= 1 {
            let given = args.next_bytes()?;
            // Before authenticating, as Redis does: a refused HELLO changes nothing.
            validate_name(given)?;
            name = Some(given);
        } else {
            return Err(Frame::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            )));
        }
    }
    if let Some((user, password)) = credentials {
        if ctx.node.config.requirepass.is_some() {
            auth::authenticate(ctx, Some(user), password)?;
        } else {
            auth::default_user_only(user)?;
        }
    }
    if !ctx.session.authenticated {
        return Err(Frame::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client \
             and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        ctx.session.name = name.to_vec();
    }
    if let Some(protocol) = protocol {
        ctx.session.protocol = protocol;
    }
    let role = if ctx.node.is_replica() {
        "replica"
    } else {
        "master"
    };
    let field = |name: &str, value: Frame| (Frame::bulk(name), value);
    Ok(Frame::Map(vec![
        field("server", Frame::bulk("kvstore")),
        // The Redis version whose commands and replies this server follows (INFO's
        // `redis_version`), which is what clients look at to decide what they may send.
        field("version", Frame::bulk(super::info::REDIS_VERSION)),
        field("proto", Frame::Integer(ctx.session.protocol.version())),
        field("id", Frame::Integer(ctx.session.id as i64)),
        field("mode", Frame::bulk("standalone")),
        field("role", Frame::bulk(role)),
        field("modules", Frame::Array(Vec::new())),
    ]))
}
