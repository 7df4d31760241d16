//! XEP-0106 escaping against `testdata/vectors/jid-escaping.tsv` (XEP-0106 examples and
//! Prosody's test data).

mod common;

use xmpp_jid::Jid;
use xmpp_jid::escape::{escape_localpart, unescape_localpart};

#[test]
fn escaping_vectors_round_trip() {
    let rows = common::rows("jid-escaping.tsv");
    assert!(rows.len() >= 18, "only {} rows", rows.len());
    for (line, f) in rows {
        let (raw, escaped) = (common::unescape(&f[0]), common::unescape(&f[1]));
        assert_eq!(
            escape_localpart(&raw),
            escaped,
            "line {line}: escape {raw:?}"
        );
        assert_eq!(
            unescape_localpart(&escaped),
            raw,
            "line {line}: unescape {escaped:?}"
        );
    }
}

#[test]
fn escaped_localparts_are_valid_jids() {
    for raw in [
        "space cadet",
        "call me \"ishmael\"",
        "at&t guy",
        "d'artagnan",
        "/.fanboy",
        "::foo::",
        "<foo>",
        "user@host",
    ] {
        let local = escape_localpart(raw);
        let j =
            Jid::new(&format!("{local}@example.com")).unwrap_or_else(|e| panic!("{local:?}: {e}"));
        assert_eq!(unescape_localpart(j.node().unwrap()), raw);
    }
}

#[test]
fn unescape_accepts_only_table_codes() {
    assert_eq!(unescape_localpart(r"a\41b"), r"a\41b");
    assert_eq!(unescape_localpart(r"a\2Fb"), "a/b");
    assert_eq!(unescape_localpart("trailing\\"), "trailing\\");
    assert_eq!(unescape_localpart("\\2"), "\\2");
    assert_eq!(unescape_localpart("\\\u{E9}9"), "\\\u{E9}9");
    assert!(matches!(
        escape_localpart("plain"),
        std::borrow::Cow::Borrowed(_)
    ));
}
