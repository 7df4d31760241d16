//! Splitting a JID into parts (RFC 7622 §3.1) and enforcing each part.
//!
//! The common case, an all-ASCII JID, takes a fast path: one pass per part over the bytes,
//! no normalization or table lookups, and exactly one allocation (the shared buffer).

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::sync::Arc;

use crate::ascii;
use crate::domain::{self, Ascii};
use crate::error::{JidError, JidErrorKind, JidPart};
use crate::precis;
use crate::repr::Repr;

/// Largest enforced part, in octets (RFC 7622 §3.2-3.4).
pub(crate) const MAX_PART: usize = 1023;

/// No mapping shrinks a string more than threefold (fullwidth to ASCII, Hangul jamo to
/// syllables), so a raw part longer than this cannot enforce to 1023 octets: reject it before
/// doing any Unicode work.
const MAX_RAW_PART: usize = 4 * MAX_PART;

/// One enforced part, borrowed from the input where possible.
enum Part<'a> {
    /// Copy as is.
    Same(&'a str),
    /// ASCII: copy lowercased.
    Lower(&'a str),
    /// Computed.
    Owned(String),
}

impl Part<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Same(s) | Self::Lower(s) => s.len(),
            Self::Owned(s) => s.len(),
        }
    }

    fn write(&self, out: &mut [u8]) {
        match self {
            Self::Same(s) => out.copy_from_slice(s.as_bytes()),
            Self::Lower(s) => {
                for (o, b) in out.iter_mut().zip(s.as_bytes()) {
                    *o = b.to_ascii_lowercase();
                }
            }
            Self::Owned(s) => out.copy_from_slice(s.as_bytes()),
        }
    }
}

impl<'a> From<Cow<'a, str>> for Part<'a> {
    fn from(c: Cow<'a, str>) -> Self {
        match c {
            Cow::Borrowed(s) => Self::Same(s),
            Cow::Owned(s) => Self::Owned(s),
        }
    }
}

fn check_len(part: JidPart, p: Part<'_>) -> Result<Part<'_>, JidError> {
    match p.len() {
        0 => Err(JidError::new(part, JidErrorKind::Empty)),
        len if len > MAX_PART => Err(JidError::new(part, JidErrorKind::TooLong { len })),
        _ => Ok(p),
    }
}

fn check_raw(part: JidPart, s: &str) -> Result<(), JidError> {
    if s.len() > MAX_RAW_PART {
        return Err(JidError::new(part, JidErrorKind::TooLong { len: s.len() }));
    }
    Ok(())
}

/// RFC 7622 §3.3.1: besides UsernameCaseMapped, a localpart excludes these.
fn excluded_in_localpart(c: char) -> bool {
    matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@')
}

fn localpart(s: &str) -> Result<Part<'_>, JidError> {
    const P: JidPart = JidPart::Localpart;
    check_raw(P, s)?;
    let flags = ascii::scan_localpart(s.as_bytes());
    let part = if flags & ascii::NON_ASCII == 0 {
        if flags & ascii::BAD != 0 {
            let bad = ascii::bad_in_localpart(s.as_bytes());
            return Err(JidError::new(P, JidErrorKind::Forbidden(bad)));
        }
        if flags & ascii::UPPER != 0 {
            Part::Lower(s)
        } else {
            Part::Same(s)
        }
    } else {
        let e = precis::username_case_mapped(s).map_err(|e| JidError::precis(P, e))?;
        if let Some(c) = e.chars().find(|&c| excluded_in_localpart(c)) {
            return Err(JidError::new(P, JidErrorKind::Forbidden(c)));
        }
        e.into()
    };
    check_len(P, part)
}

fn domainpart(s: &str) -> Result<Part<'_>, JidError> {
    const P: JidPart = JidPart::Domainpart;
    check_raw(P, s)?;
    let part = if s.is_ascii() {
        match domain::enforce_ascii(s).map_err(|k| JidError::new(P, k))? {
            Ascii::Slice(d, false) => Part::Same(d),
            Ascii::Slice(d, true) => Part::Lower(d),
            Ascii::Owned(d) => Part::Owned(d),
        }
    } else {
        domain::enforce(s).map_err(|k| JidError::new(P, k))?.into()
    };
    check_len(P, part)
}

fn resourcepart(s: &str) -> Result<Part<'_>, JidError> {
    const P: JidPart = JidPart::Resourcepart;
    check_raw(P, s)?;
    let part = precis::opaque_string(s).map_err(|e| JidError::precis(P, e))?;
    check_len(P, part.into())
}

/// Parses a JID string: the first `/` starts the resourcepart, then the first `@` before it
/// ends the localpart.
pub(crate) fn parse(s: &str) -> Result<Repr, JidError> {
    if let Some(repr) = fast_ascii(s) {
        return Ok(repr);
    }
    general(s)
}

/// The general path of [`parse`].
fn general(s: &str) -> Result<Repr, JidError> {
    // JIDs are short: a plain scan beats `memchr`'s set-up cost. '/' and '@' are ASCII, so
    // the byte offsets are char boundaries.
    let bytes = s.as_bytes();
    let (bare, resource) = match bytes.iter().position(|&b| b == b'/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (node, domain) = match bare.as_bytes().iter().position(|&b| b == b'@') {
        Some(i) => (Some(&bare[..i]), &bare[i + 1..]),
        None => (None, bare),
    };
    build(Some(s), node, domain, resource)
}

/// Longest input [`fast_ascii`] handles: short enough that no part can exceed 1023 octets
/// and that the lowercased copy fits a stack buffer.
const MAX_FAST: usize = 256;

/// The common case in one tight function: a short, valid, all-ASCII JID whose enforcement
/// at most lowercases the localpart and domainpart. Anything else (non-ASCII, any error, a
/// trailing dot, IP literals, A-labels) returns `None` and takes the general path, which
/// gives the same result or the precise error.
fn fast_ascii(s: &str) -> Option<Repr> {
    let (at, slash, upper) = fast_ascii_scan(s)?;
    let b = s.as_bytes();
    let bare_end = slash.unwrap_or(b.len());
    let text: Arc<str> = if upper {
        let mut buf = [0u8; MAX_FAST];
        let out = &mut buf[..b.len()];
        out.copy_from_slice(b);
        out[..bare_end].make_ascii_lowercase();
        // ASCII in, ASCII out: always valid UTF-8.
        Arc::from(core::str::from_utf8(out).ok()?)
    } else {
        Arc::from(s)
    };
    Some(Repr::new(text, at, slash))
}

/// Checks `s` exactly as [`parse`] would, without building the JID (no allocation for the
/// common all-ASCII case).
pub(crate) fn validate(s: &str) -> Result<(), JidError> {
    if fast_ascii_scan(s).is_some() {
        return Ok(());
    }
    general(s).map(|_| ())
}

/// The checks of [`fast_ascii`]: the `@` and `/` positions and whether the bare part has
/// upper-case letters to lowercase, or `None` for anything the general path must handle.
fn fast_ascii_scan(s: &str) -> Option<(Option<usize>, Option<usize>, bool)> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_FAST {
        return None;
    }
    let slash = ascii::find_byte(b, b'/');
    let bare_end = slash.unwrap_or(b.len());
    let bare = &b[..bare_end];
    let at = ascii::find_byte(bare, b'@');
    let dom_start = at.map_or(0, |i| i + 1);
    let domain = &bare[dom_start..];

    let mut upper = 0;
    if let Some(at) = at {
        let f = ascii::scan_localpart(&bare[..at]);
        if at == 0 || f & !ascii::UPPER != 0 {
            return None;
        }
        upper |= f;
    }
    let f = ascii::scan_domain(domain);
    if f & !ascii::UPPER != 0 || !domain::ldh_structure_ok(domain) {
        return None;
    }
    upper |= f;
    if let Some(slash) = slash {
        let r = &b[slash + 1..];
        if r.is_empty() || ascii::scan_precis(r, true) & !ascii::UPPER != 0 {
            return None;
        }
    }

    Some((at, slash, upper & ascii::UPPER != 0))
}

/// Lenient parsing for peers that still prepare JIDs with RFC 6122 stringprep: when strict
/// parsing fails, retry after applying stringprep's mapping steps to the localpart and the
/// resourcepart (drop the RFC 3454 table B.1 code points "commonly mapped to nothing", then
/// NFKC), and enforce the result strictly. The result is always a strictly valid JID; on a
/// second failure the strict error is returned.
pub(crate) fn parse_lenient(s: &str) -> Result<Repr, JidError> {
    let strict = match parse(s) {
        Ok(repr) => return Ok(repr),
        Err(e) => e,
    };
    let (bare, resource) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (node, domain) = match bare.find('@') {
        Some(i) => (Some(&bare[..i]), &bare[i + 1..]),
        None => (None, bare),
    };
    // Bound the work like the strict path does before mapping.
    for part in [node, resource].into_iter().flatten() {
        if part.len() > MAX_RAW_PART {
            return Err(strict);
        }
    }
    let node = node.map(legacy_map);
    let resource = resource.map(legacy_map);
    build(None, node.as_deref(), domain, resource.as_deref()).map_err(|_| strict)
}

/// RFC 3454 table B.1 (mapped to nothing), then NFKC: the mapping half of nodeprep and
/// resourceprep.
fn legacy_map(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{AD}'
                    | '\u{34F}'
                    | '\u{1806}'
                    | '\u{180B}'..='\u{180D}'
                    | '\u{200B}'..='\u{200D}'
                    | '\u{2060}'
                    | '\u{FE00}'..='\u{FE0F}'
                    | '\u{FEFF}'
            )
        })
        .nfkc()
        .collect()
}

/// Builds a JID from separately given parts.
pub(crate) fn from_parts(
    node: Option<&str>,
    domain: &str,
    resource: Option<&str>,
) -> Result<Repr, JidError> {
    build(None, node, domain, resource)
}

fn build(
    whole: Option<&str>,
    node: Option<&str>,
    domain: &str,
    resource: Option<&str>,
) -> Result<Repr, JidError> {
    // Report errors in reading order: localpart, domainpart, resourcepart.
    let node = node.map(localpart).transpose()?;
    let domain = domainpart(domain)?;
    let resource = resource.map(resourcepart).transpose()?;

    let node_len = node.as_ref().map_or(0, |n| n.len() + 1);
    let res_len = resource.as_ref().map_or(0, |r| r.len() + 1);
    let total = node_len + domain.len() + res_len;
    let at = node.as_ref().map(Part::len);
    let slash = resource.as_ref().map(|_| node_len + domain.len());

    // Already enforced: share the input's bytes in one allocation.
    let unchanged = |p: &Option<Part<'_>>| matches!(p, None | Some(Part::Same(_)));
    if let Some(s) = whole {
        if total == s.len()
            && unchanged(&node)
            && matches!(domain, Part::Same(_))
            && unchanged(&resource)
        {
            return Ok(Repr::new(Arc::from(s), at, slash));
        }
    }

    // Assemble on the stack when small, so the `Arc` is the only allocation.
    let mut stack = [0u8; 256];
    let mut heap;
    let buf: &mut [u8] = if total <= stack.len() {
        &mut stack[..total]
    } else {
        heap = alloc::vec![0u8; total];
        &mut heap
    };
    let mut pos = 0;
    let put = |p: &Part<'_>, buf: &mut [u8], pos: &mut usize| {
        let end = *pos + p.len();
        p.write(&mut buf[*pos..end]);
        *pos = end;
    };
    if let Some(n) = &node {
        put(n, buf, &mut pos);
        buf[pos] = b'@';
        pos += 1;
    }
    put(&domain, buf, &mut pos);
    if let Some(r) = &resource {
        buf[pos] = b'/';
        pos += 1;
        put(r, buf, &mut pos);
    }
    // Every part is valid UTF-8 and the separators are ASCII, so this cannot fail; an empty
    // fallback would still be caught by the tests.
    let text = core::str::from_utf8(buf).unwrap_or_default();
    Ok(Repr::new(Arc::from(text), at, slash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The fast path, when it answers, agrees with the general path.
        #[test]
        fn fast_path_agrees_with_general_path(s in "[a-zA-Z0-9@/. \\-_:\"\\[\\]\u{7f}\u{e9}]{0,24}") {
            if let Some(fast) = fast_ascii(&s) {
                let slow = general(&s).expect("fast path accepted it");
                prop_assert_eq!(fast.parts(), slow.parts());
            }
        }
    }

    #[test]
    fn fast_path_covers_the_common_cases() {
        for s in [
            "a@b",
            "A@B/C",
            "example.com",
            "x@Example.COM/Res Ource",
            "a-b.c-d/e@f",
        ] {
            let fast = fast_ascii(s).expect(s);
            assert_eq!(fast.parts(), general(s).unwrap().parts());
        }
        for s in [
            "a@b.",
            "[::1]",
            "1.2.3.4",
            "xn--bcher-kva.de",
            "a@b/",
            "@b",
            "\u{e9}@b",
        ] {
            assert!(fast_ascii(s).is_none(), "{s}");
        }
    }
}
