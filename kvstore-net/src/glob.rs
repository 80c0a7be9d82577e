//! Redis-style glob patterns for `SCAN … MATCH`: `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
//!
//! Matching backtracks only to the most recent `*` (every other token matches exactly one
//! byte), so it runs in O(pattern × key) time whatever the input: no exponential blow-up on
//! hostile patterns such as `*a*a*a*a*b`.

/// One token of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Byte(u8),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`; every byte string is a valid pattern, read as Redis reads it: a
    /// trailing `\` matches itself, and a `[` with no closing `]` opens a class that runs to
    /// the end of the pattern (so `key[` matches nothing, and `key[a` matches `keya`).
    pub fn new(pattern: &[u8]) -> Glob {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            match pattern[i] {
                b'*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                b'?' => tokens.push(Token::Any),
                b'\\' if i + 1 < pattern.len() => {
                    i += 1;
                    tokens.push(Token::Byte(pattern[i]));
                }
                b'[' => {
                    let (token, next) = class(pattern, i + 1);
                    tokens.push(token);
                    i = next;
                    continue;
                }
                b => tokens.push(Token::Byte(b)),
            }
            i += 1;
        }
        Glob { tokens }
    }

    /// The bytes every match must start with (the pattern's leading literal part).
    pub fn literal_prefix(&self) -> Vec<u8> {
        self.tokens
            .iter()
            .map_while(|t| match t {
                Token::Byte(b) => Some(*b),
                _ => None,
            })
            .collect()
    }

    /// Whether `key` matches the whole pattern.
    pub fn matches(&self, key: &[u8]) -> bool {
        let (mut t, mut k) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while k < key.len() {
            match self.tokens.get(t) {
                Some(Token::Star) => {
                    star = Some((t, k));
                    t += 1;
                    continue;
                }
                Some(token) if single(token, key[k]) => {
                    t += 1;
                    k += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((st, sk)) => {
                    star = Some((st, sk + 1));
                    t = st + 1;
                    k = sk + 1;
                }
                None => return false,
            }
        }
        self.tokens[t..].iter().all(|tok| *tok == Token::Star)
    }
}

fn single(token: &Token, b: u8) -> bool {
    match token {
        Token::Byte(x) => *x == b,
        Token::Any => true,
        Token::Star => false,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&b)) != *negated
        }
    }
}

/// Parses a class starting after its `[`; returns the token and the index after `]`. Read as
/// Redis's `stringmatchlen` reads it: an escaped byte is a member and never starts a range;
/// `x-y` is a range whatever `y` is (so `[a-]` holds `]` through `a`, and the class goes on);
/// a `]` first closes an empty class; an unterminated class runs to the end of the pattern.
fn class(pattern: &[u8], mut i: usize) -> (Token, usize) {
    let negated = pattern.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    while let Some(rest) = pattern.get(i..).filter(|rest| !rest.is_empty()) {
        match *rest {
            [b'\\', escaped, ..] => {
                ranges.push((escaped, escaped));
                i += 2;
            }
            [b']', ..] => return (Token::Class { negated, ranges }, i + 1),
            [lo, b'-', hi, ..] => {
                ranges.push((lo.min(hi), lo.max(hi)));
                i += 3;
            }
            [b, ..] => {
                ranges.push((b, b));
                i += 1;
            }
            [] => break,
        }
    }
    (Token::Class { negated, ranges }, pattern.len())
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(p: &str, k: &str) -> bool {
        Glob::new(p.as_bytes()).matches(k.as_bytes())
    }

    #[test]
    fn patterns_match_like_redis() {
        assert!(m("*", ""));
        assert!(m("user:*", "user:42"));
        assert!(!m("user:*", "use"));
        assert!(m("h?llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*a*b", "xxaxxb"));
        assert!(!m("*a*a*a*a*a*b", &"a".repeat(200)));
        assert_eq!(Glob::new(b"user:*").literal_prefix(), b"user:".to_vec());
    }
}
