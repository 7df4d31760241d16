//! The SASLprep column of `testdata/vectors/password-prep.tsv` (RFC 4013 §3 examples, RFC 8265
//! inputs, synthesized rows; outputs from two independent implementations).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

use xmpp_sasl::{PasswordPrep, saslprep};

/// Undoes the TSV escapes: `\\`, `\t`, `\n`, `\r`, `\u{HEX}`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut it = field.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('u') => {
                assert_eq!(it.next(), Some('{'));
                let hex: String = it.by_ref().take_while(|c| *c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
            }
            other => panic!("bad escape {other:?}"),
        }
    }
    out
}

#[test]
fn saslprep_column() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/vectors/password-prep.tsv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows = 0;
    let mut disputed = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(f.len() >= 3, "{line:?}");
        let input = unescape(f[0]);
        let got = saslprep(&input);
        if f[1] == "ERROR" {
            assert!(got.is_err(), "{input:?} must be rejected, got {got:?}");
        } else {
            let want = unescape(f[1]);
            assert_eq!(
                got.as_deref().map(String::as_str),
                Ok(want.as_str()),
                "{input:?}"
            );
            // PasswordPrep::SaslPrep is the same function.
            assert_eq!(
                PasswordPrep::SaslPrep.prepare(&input).unwrap().as_str(),
                want
            );
        }
        if f.get(4).is_some_and(|n| n.starts_with("DISPUTED")) {
            // We follow the column (U+200B maps to nothing): see src/prep.rs.
            disputed += 1;
            assert_eq!(saslprep(&input).unwrap().as_str(), "pass");
        }
        rows += 1;
    }
    assert_eq!(rows, 21);
    assert_eq!(disputed, 1);
}
