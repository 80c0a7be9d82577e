//! A cursor over one request's arguments (mini-redis's `Parse`): each command takes what it
//! needs and gets Redis's error replies for missing, extra or malformed arguments. Arguments
//! are borrowed from the request; a command copies only those it keeps.

use crate::frame::Frame;
use crate::parse::{parse_int, Request};

/// The arguments after the command name.
pub(crate) struct Args<'a> {
    /// The command name as typed, for error messages (lowercased only when one is needed).
    name: &'a [u8],
    request: &'a Request,
    /// Index in `request` of the next argument.
    next: usize,
}

/// Redis's reply to a malformed number.
pub(crate) fn not_an_integer() -> Frame {
    Frame::error("ERR value is not an integer or out of range")
}

/// Redis's reply to an unknown option or misplaced argument.
pub(crate) fn syntax_error() -> Frame {
    Frame::error("ERR syntax error")
}

impl<'a> Args<'a> {
    /// The arguments of `request` after its first one, the name.
    pub(crate) fn new(request: &'a Request) -> Self {
        Args {
            name: request.get(0).unwrap_or_default(),
            request,
            next: 1,
        }
    }

    /// `-ERR wrong number of arguments for '<name>' command`.
    pub(crate) fn wrong_arity(&self) -> Frame {
        Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(self.name).to_lowercase()
        ))
    }

    /// The whole request, name included.
    pub(crate) fn request(&self) -> &'a Request {
        self.request
    }

    /// Arguments not taken yet.
    pub(crate) fn remaining(&self) -> usize {
        self.request.len().saturating_sub(self.next)
    }

    /// The next argument, or the arity error.
    pub(crate) fn next_bytes(&mut self) -> Result<&'a [u8], Frame> {
        match self.next_opt() {
            Some(arg) => Ok(arg),
            None => Err(self.wrong_arity()),
        }
    }

    /// The next argument as a signed integer.
    pub(crate) fn next_int(&mut self) -> Result<i64, Frame> {
        let arg = self.next_bytes()?;
        parse_int(arg).ok_or_else(not_an_integer)
    }

    /// The next argument as a non-negative integer.
    pub(crate) fn next_u64(&mut self) -> Result<u64, Frame> {
        let n = self.next_int()?;
        u64::try_from(n).map_err(|_| not_an_integer())
    }

    /// The next argument if there is one.
    pub(crate) fn next_opt(&mut self) -> Option<&'a [u8]> {
        let request: &'a Request = self.request;
        let arg = request.get(self.next)?;
        self.next += 1;
        Some(arg)
    }

    /// Everything left.
    pub(crate) fn take_rest(&mut self) -> Vec<&'a [u8]> {
        std::iter::from_fn(|| self.next_opt()).collect()
    }

    /// Succeeds when every argument was taken; extra ones are an arity error.
    pub(crate) fn finish(&self) -> Result<(), Frame> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.wrong_arity())
        }
    }
}
