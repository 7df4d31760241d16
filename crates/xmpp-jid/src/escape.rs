//! XEP-0106 JID Escaping: carrying characters a localpart forbids (space, `" & ' / : < > @`
//! and the escape character `\` itself) as `\20`, `\22`, ... sequences.
//!
//! ```
//! use xmpp_jid::escape::{escape_localpart, unescape_localpart};
//! assert_eq!(escape_localpart("d'artagnan"), r"d\27artagnan");
//! assert_eq!(unescape_localpart(r"d\27artagnan"), "d'artagnan");
//! ```

use alloc::borrow::Cow;
use alloc::string::String;

/// The characters XEP-0106 §4 escapes, with their two hex digits (lowercase, as XEP-0106
/// writes them).
const TABLE: [(char, &str); 10] = [
    (' ', "20"),
    ('"', "22"),
    ('&', "26"),
    ('\'', "27"),
    ('/', "2f"),
    (':', "3a"),
    ('<', "3c"),
    ('>', "3e"),
    ('@', "40"),
    ('\\', "5c"),
];

fn code_of(c: char) -> Option<&'static str> {
    TABLE.iter().find(|&&(t, _)| t == c).map(|&(_, h)| h)
}

fn char_of(hex: &str) -> Option<char> {
    TABLE
        .iter()
        .find(|&&(_, h)| h.eq_ignore_ascii_case(hex))
        .map(|&(c, _)| c)
}

/// `true` when `s[i..]` starts with `\` followed by one of the escape codes.
fn is_escape_at(s: &str, i: usize) -> bool {
    s.get(i..).is_some_and(|t| t.starts_with('\\'))
        && s.get(i + 1..i + 3).and_then(char_of).is_some()
}

/// Escapes a user name into a localpart (XEP-0106 §4.2).
///
/// Escapable characters become `\hh`. A backslash is escaped only where it would otherwise
/// read as the start of an escape sequence (XEP-0106 §4.3), so `c:\net` becomes `c\3a\net`.
/// Leading and trailing spaces are not allowed by XEP-0106; they are escaped like the rest,
/// and the result is not enforced (pass it to [`Jid`](crate::Jid) as usual).
pub fn escape_localpart(s: &str) -> Cow<'_, str> {
    let needs = s
        .char_indices()
        .any(|(i, c)| code_of(c).is_some() && (c != '\\' || is_escape_at(s, i)));
    if !needs {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.char_indices() {
        match code_of(c) {
            Some(_) if c == '\\' && !is_escape_at(s, i) => out.push('\\'),
            Some(h) => {
                out.push('\\');
                out.push_str(h);
            }
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Unescapes a localpart into the user name it stands for (XEP-0106 §4.3): each `\hh` whose
/// code is in the escape table becomes its character; any other backslash stays as it is.
pub fn unescape_localpart(s: &str) -> Cow<'_, str> {
    if !s.char_indices().any(|(i, _)| is_escape_at(s, i)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        if let Some(c) = rest.get(i + 1..i + 3).and_then(char_of) {
            out.push(c);
            rest = &rest[i + 3..];
        } else {
            out.push('\\');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}
