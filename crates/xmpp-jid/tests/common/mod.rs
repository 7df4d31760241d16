//! Reading the TSV vectors under `testdata/vectors/` (format: see `../shared/vectors/README.md`;
//! each file starts with `#` lines citing its source).
// Test-only helpers: a malformed vector file should stop the test loudly.
#![allow(dead_code, unreachable_pub, clippy::panic, clippy::expect_used)]

use std::path::PathBuf;

pub fn vectors_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/vectors")
        .join(name)
}

/// The data rows (header and leading `#` comment lines removed), with their 1-based line
/// numbers, fields still escaped.
pub fn rows(name: &str) -> Vec<(usize, Vec<String>)> {
    let path = vectors_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text
        .lines()
        .enumerate()
        .skip_while(|(_, l)| l.starts_with("# "));
    lines.next().expect("header row");
    lines
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i + 1, l.split('\t').map(String::from).collect()))
        .collect()
}

/// Decodes a field: `\\` backslash, `\t` `\n` `\r`, `\u{HEX}`.
pub fn unescape(field: &str) -> String {
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
                assert_eq!(it.next(), Some('{'), "bad escape in {field:?}");
                let hex: String = it.by_ref().take_while(|&h| h != '}').collect();
                let cp = u32::from_str_radix(&hex, 16).expect("hex");
                out.push(char::from_u32(cp).expect("scalar value"));
            }
            other => panic!("bad escape \\{other:?} in {field:?}"),
        }
    }
    out
}
