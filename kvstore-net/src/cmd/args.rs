//! A cursor over one request's arguments (mini-redis's `Parse`): each command takes what it
//! needs and gets Redis's error replies for missing, extra or malformed arguments.

use crate::frame::Frame;
use crate::parse::parse_int;

/// The arguments after the command name.
pub(crate) struct Args {
    /// The command name as typed, for error messages (lowercased only when one is needed).
    name: Vec<u8>,
    rest: std::vec::IntoIter<Vec<u8>>,
}

/// Redis's reply to a malformed number.
pub(crate) fn not_an_integer() -> Frame {
    Frame::error("ERR value is not an integer or out of range")
}

/// Redis's reply to an unknown option or misplaced argument.
pub(crate) fn syntax_error() -> Frame {
    Frame::error("ERR syntax error")
}

impl Args {
    /// Wraps a request whose first element (the name) was already taken.
    pub(crate) fn new(name: Vec<u8>, rest: Vec<Vec<u8>>) -> Self {
        Args {
            name,
            rest: rest.into_iter(),
        }
    }

    /// `-ERR wrong number of arguments for '<name>' command`.
    pub(crate) fn wrong_arity(&self) -> Frame {
        Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(&self.name).to_lowercase()
        ))
    }

    /// Arguments not taken yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next argument, or the arity error.
    pub(crate) fn next_bytes(&mut self) -> Result<Vec<u8>, Frame> {
        match self.rest.next() {
            Some(arg) => Ok(arg),
            None => Err(self.wrong_arity()),
        }
    }

    /// The next argument as a signed integer.
    pub(crate) fn next_int(&mut self) -> Result<i64, Frame> {
        let arg = self.next_bytes()?;
        parse_int(&arg).ok_or_else(not_an_integer)
    }

    /// The next argument as a non-negative integer.
    pub(crate) fn next_u64(&mut self) -> Result<u64, Frame> {
        let n = self.next_int()?;
        u64::try_from(n).map_err(|_| not_an_integer())
    }

    /// The next argument if there is one.
    pub(crate) fn next_opt(&mut self) -> Option<Vec<u8>> {
        self.rest.next()
    }

    /// Everything left.
    pub(crate) fn take_rest(&mut self) -> Vec<Vec<u8>> {
        self.rest.by_ref().collect()
    }

    /// Succeeds when every argument was taken; extra ones are an arity error.
    pub(crate) fn finish(&self) -> Result<(), Frame> {
        if self.rest.len() == 0 {
            Ok(())
        } else {
            Err(self.wrong_arity())
        }
    }
}
