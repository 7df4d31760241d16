//! Splitting a JID into parts (RFC 7622 §3.1) and enforcing each part.
//!
//! The common case, an all-ASCII JID, takes a fast path: one pass per part over the bytes,
//! no normalization or table lookups, and exactly one allocation (the shared buffer).

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::sync::Arc;

use crate::domain::{self, Ascii};
use crate::error::{JidError, JidErrorKind, JidPart};
use crate::jid::Repr;
use crate::precis;

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
    let part = if s.is_ascii() {
        let mut upper = false;
        for &b in s.as_bytes() {
            if !(b'!'..=b'~').contains(&b) || excluded_in_localpart(char::from(b)) {
                return Err(JidError::new(P, JidErrorKind::Forbidden(char::from(b))));
            }
            upper |= b.is_ascii_uppercase();
        }
        if upper { Part::Lower(s) } else { Part::Same(s) }
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
    let (bare, resource) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (node, domain) = match bare.find('@') {
        Some(i) => (Some(&bare[..i]), &bare[i + 1..]),
        None => (None, bare),
    };
    build(Some(s), node, domain, resource)
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
