//! Splitting an inline request line (`PUT key "a value"`) into arguments, with the quoting
//! rules of Redis's `sdssplitargs`, so `nc` and telnet users can send any bytes.

use crate::parse::ProtocolError;

/// Blanks skipped between arguments (C's `isspace`), and after a closing quote.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Bytes that end an unquoted argument: fewer than [`is_space`], as in `sdssplitargs`, where a
/// vertical tab or form feed inside an argument is part of it.
fn ends_argument(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits `line` into arguments. Double quotes understand `\n \r \t \b \a \\ \" \xHH`;
/// single quotes only `\'`. A closing quote must be followed by a space or the end of the line.
pub(crate) fn split_inline(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        while let Some(&b) = line.get(i) {
            match b {
                // A closing quote ends the argument (a blank or the line's end follows it, and
                // that blank may be a vertical tab or form feed, which is not kept).
                b'"' => {
                    i = double_quoted(line, i + 1, &mut current)?;
                    break;
                }
                b'\'' => {
                    i = single_quoted(line, i + 1, &mut current)?;
                    break;
                }
                b if ends_argument(b) => break,
                b => {
                    current.push(b);
                    i += 1;
                }
            }
        }
        args.push(current);
    }
}

/// Reads a double-quoted section starting after its opening quote; returns the index after
/// the closing quote.
fn double_quoted(line: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, ProtocolError> {
    loop {
        let Some(&b) = line.get(i) else {
            return Err(ProtocolError::UnbalancedQuotes);
        };
        match b {
            b'\\' => {
                let hex = line
                    .get(i + 1..i + 4)
                    .filter(|h| h[0] == b'x')
                    .and_then(|h| Some(hex_value(h[1])? * 16 + hex_value(h[2])?));
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 4;
                    continue;
                }
                let Some(&escaped) = line.get(i + 1) else {
                    return Err(ProtocolError::UnbalancedQuotes);
                };
                out.push(match escaped {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                i += 2;
            }
            b'"' => return after_closing_quote(line, i + 1),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

fn single_quoted(line: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, ProtocolError> {
    loop {
        let Some(&b) = line.get(i) else {
            return Err(ProtocolError::UnbalancedQuotes);
        };
        match b {
            b'\\' if line.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            b'\'' => return after_closing_quote(line, i + 1),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

fn after_closing_quote(line: &[u8], i: usize) -> Result<usize, ProtocolError> {
    match line.get(i) {
        None => Ok(i),
        Some(&b) if is_space(b) => Ok(i),
        Some(_) => Err(ProtocolError::UnbalancedQuotes),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(s: &str) -> Result<Vec<String>, ProtocolError> {
        Ok(split_inline(s.as_bytes())?
            .into_iter()
            .map(|a| String::from_utf8_lossy(&a).into_owned())
            .collect())
    }

    #[test]
    fn quoting_follows_redis() {
        assert_eq!(split("  SET  k   v ").unwrap(), ["SET", "k", "v"]);
        assert_eq!(
            split(r#"SET k "a b\n\x41""#).unwrap(),
            ["SET", "k", "a b\nA"]
        );
        assert_eq!(split(r"SET k 'it\'s'").unwrap(), ["SET", "k", "it's"]);
        assert_eq!(split(r#"SET k """#).unwrap(), ["SET", "k", ""]);
        assert_eq!(
            split(r#"SET k "open"#),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(split(r#"SET k "a"b"#), Err(ProtocolError::UnbalancedQuotes));
        assert!(split("").unwrap().is_empty());
    }
}
