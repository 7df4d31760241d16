//! Domainpart enforcement (RFC 7622 §3.2): IP literals and IDNA2008 domain names.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use core::net::{Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

use unicode_normalization::UnicodeNormalization;

use crate::ascii;
use crate::error::{JidErrorKind, LabelError};
use crate::props::{Class, changes_when_lowercased, is_nfc, props, width_map};
use crate::punycode;
use crate::rules;

/// The longest DNS label, in octets of its A-label (RFC 1034 §3.1, RFC 5890 §2.3.2.1).
const MAX_LABEL: usize = 63;

/// How an ASCII domainpart must be rewritten to its enforced form, without allocating.
pub(crate) enum Ascii<'a> {
    /// Copy this slice of the input (trailing dot already removed), lowercasing it when the
    /// flag is set.
    Slice(&'a str, bool),
    /// A computed form (IP literal canonicalized, A-labels converted to U-labels).
    Owned(String),
}

/// Enforces a domainpart. The result is borrowed when the input was already enforced.
pub(crate) fn enforce(d: &str) -> Result<Cow<'_, str>, JidErrorKind> {
    if d.is_ascii() {
        return Ok(match enforce_ascii(d)? {
            Ascii::Slice(s, false) => Cow::Borrowed(s),
            Ascii::Slice(s, true) => Cow::Owned(s.to_ascii_lowercase()),
            Ascii::Owned(s) => Cow::Owned(s),
        });
    }
    enforce_unicode(d)
}

/// The A-label form of an enforced domainpart (RFC 5890 §2.3.2.1): each non-ASCII label
/// (a U-label, after enforcement) as `xn--` and its punycode; ASCII labels and IP literals as
/// they are. Borrowed when the domain is all ASCII.
pub(crate) fn to_a_labels(enforced: &str) -> Cow<'_, str> {
    if enforced.is_ascii() {
        return Cow::Borrowed(enforced);
    }
    let mut out = String::with_capacity(enforced.len() + 8);
    for (i, label) in enforced.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if label.is_ascii() {
            out.push_str(label);
            continue;
        }
        // Enforcement already encoded every U-label within the 63-octet limit, so the
        // encoder cannot overflow here; the label is kept as it is if it ever did.
        match punycode::encode(label) {
            Some(puny) => {
                out.push_str("xn--");
                out.push_str(&puny);
            }
            None => out.push_str(label),
        }
    }
    Cow::Owned(out)
}

/// ASCII domainparts: IP literals, LDH labels and A-labels.
pub(crate) fn enforce_ascii(d: &str) -> Result<Ascii<'_>, JidErrorKind> {
    if let Some(inner) = d.strip_prefix('[') {
        let addr = inner
            .strip_suffix(']')
            .and_then(|a| Ipv6Addr::from_str(a).ok())
            .ok_or(JidErrorKind::BadIpLiteral)?;
        let canonical = alloc::format!("[{addr}]");
        return Ok(if canonical == d {
            Ascii::Slice(d, false)
        } else {
            Ascii::Owned(canonical)
        });
    }
    // RFC 7622 §3.2: strip one trailing label separator before anything else.
    ascii_name(d.strip_suffix('.').unwrap_or(d))
}

/// An ASCII domain name, trailing dot already removed: LDH labels and A-labels, or a
/// dotted-quad IPv4 address.
fn ascii_name(d: &str) -> Result<Ascii<'_>, JidErrorKind> {
    if d.is_empty() {
        return Err(JidErrorKind::Empty);
    }
    let flags = ascii::scan_domain(d.as_bytes());
    if flags & ascii::BAD != 0 {
        let bad = ascii::bad_in_domain(d.as_bytes());
        return Err(JidErrorKind::Forbidden(bad));
    }
    let upper = flags & ascii::UPPER != 0;
    let mut a_label = false;
    // Only the structure of each label is left to check: O(labels), not O(bytes).
    let b = d.as_bytes();
    let mut start = 0;
    let last_numeric = loop {
        let end = b[start..]
            .iter()
            .position(|&c| c == b'.')
            .map_or(b.len(), |p| start + p);
        let label = &b[start..end];
        a_label |= ldh_label(label)?;
        if end == b.len() {
            break label.iter().all(u8::is_ascii_digit);
        }
        start = end + 1;
    };
    if last_numeric {
        // A name whose last label is numeric can only be an IPv4 address (no top-level
        // domain is numeric), and must then be a canonical dotted quad.
        let addr = Ipv4Addr::from_str(d).map_err(|_| JidErrorKind::BadIpLiteral)?;
        if addr.to_string() != d {
            return Err(JidErrorKind::BadIpLiteral);
        }
        return Ok(Ascii::Slice(d, false));
    }
    if a_label {
        return labels(Cow::Owned(d.to_ascii_lowercase())).map(|u| Ascii::Owned(u.into_owned()));
    }
    Ok(Ascii::Slice(d, upper))
}

/// Fast-path check of an ASCII domain whose bytes are already known to be letters, digits,
/// `-` and `.`: every label well-formed, no A-label, no trailing dot, and a last label that
/// is not numeric (IPv4 literals take the general path).
pub(crate) fn ldh_structure_ok(d: &[u8]) -> bool {
    let mut rest = d;
    loop {
        let end = ascii::find_byte(rest, b'.');
        let label = &rest[..end.unwrap_or(rest.len())];
        if !matches!(ldh_label(label), Ok(false)) {
            return false;
        }
        match end {
            Some(e) => rest = &rest[e + 1..],
            None => return !label.first().is_some_and(u8::is_ascii_digit),
        }
    }
}

/// Checks the structure of an LDH label (its bytes are already known to be letters, digits
/// and hyphens); `Ok(true)` for an `xn--` A-label.
#[inline]
fn ldh_label(label: &[u8]) -> Result<bool, JidErrorKind> {
    match (label.first(), label.last()) {
        (None, _) | (_, None) => return Err(JidErrorKind::BadLabel(LabelError::Empty)),
        (Some(b'-'), _) | (_, Some(b'-')) => {
            return Err(JidErrorKind::BadLabel(LabelError::Hyphen));
        }
        _ => {}
    }
    if label.len() > MAX_LABEL {
        return Err(JidErrorKind::BadLabel(LabelError::TooLong));
    }
    if let [x, n, b'-', b'-', ..] = label {
        if x | 0x20 == b'x' && n | 0x20 == b'n' {
            return Ok(true);
        }
        return Err(JidErrorKind::BadLabel(LabelError::ReservedHyphens));
    }
    Ok(false)
}

/// The general path: RFC 5895-style mapping (label separators, width, lowercase, NFC), then
/// every label validated as an IDNA2008 U-label (A-labels decoded first).
fn enforce_unicode(d: &str) -> Result<Cow<'_, str>, JidErrorKind> {
    let is_stop = |c: char| matches!(c, '\u{3002}' | '\u{FF0E}' | '\u{FF61}');
    // Each step allocates only when it changes something.
    let mapped: Cow<'_, str> = if d.chars().any(|c| is_stop(c) || width_map(c).is_some()) {
        // IDEOGRAPHIC FULL STOP and its fullwidth/halfwidth forms separate labels.
        Cow::Owned(
            d.chars()
                .map(|c| {
                    if is_stop(c) {
                        '.'
                    } else {
                        width_map(c).unwrap_or(c)
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(d)
    };
    let trimmed = match mapped {
        Cow::Borrowed(m) => Cow::Borrowed(m.strip_suffix('.').unwrap_or(m)),
        Cow::Owned(mut m) => {
            if m.ends_with('.') {
                m.pop();
            }
            Cow::Owned(m)
        }
    };
    // Lowercase every code point that is not already PVALID. PVALID code points are left
    // alone: IDNA2008 keeps a few that toLowerCase would change, such as the Cherokee
    // capitals (their lowercase forms are DISALLOWED because case folding maps them back), so
    // lowercasing them would reject valid U-labels, including ones decoded from A-labels.
    let lowers = |c: char| props(c).idna() != Class::Pvalid && changes_when_lowercased(c);
    let lowered = if trimmed.chars().any(lowers) {
        let mut out = String::with_capacity(trimmed.len());
        for c in trimmed.chars() {
            if lowers(c) {
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    } else {
        trimmed
    };
    let normalized = if is_nfc(&lowered) {
        lowered
    } else {
        Cow::Owned(lowered.nfc().collect())
    };
    if normalized.is_ascii() {
        // Mapping produced ASCII (e.g. fullwidth letters or digits): the ASCII rules apply,
        // including the IPv4 rule for a numeric last label, so that re-parsing the enforced
        // form gives the same result.
        return Ok(match ascii_name(&normalized)? {
            Ascii::Slice(s, false) if s.len() == normalized.len() => normalized,
            Ascii::Slice(s, lower) if lower => Cow::Owned(s.to_ascii_lowercase()),
            Ascii::Slice(s, _) => Cow::Owned(s.into()),
            Ascii::Owned(s) => Cow::Owned(s),
        });
    }
    labels(normalized)
}

/// Validates the labels of a mapped, non-empty domain name and converts A-labels to
/// U-labels.
fn labels(normalized: Cow<'_, str>) -> Result<Cow<'_, str>, JidErrorKind> {
    if normalized.is_empty() {
        return Err(JidErrorKind::Empty);
    }
    // As on the ASCII path, a numeric last label can only be an IPv4 address, and an IPv4
    // address has no non-ASCII labels.
    let last = normalized.rsplit('.').next().unwrap_or_default();
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(JidErrorKind::BadIpLiteral);
    }
    let mut rtl = false;
    let mut a_labels = false;
    for label in normalized.split('.') {
        let u = u_label(label)?;
        a_labels |= matches!(u, Cow::Owned(_));
        rtl |= rules::has_rtl(&u);
    }
    let out = if a_labels {
        let mut out = String::with_capacity(normalized.len());
        for label in normalized.split('.') {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&u_label(label)?);
        }
        Cow::Owned(out)
    } else {
        normalized
    };
    // RFC 5893: in a domain name with any right-to-left label, every label obeys the Bidi
    // Rule.
    if rtl && !out.split('.').all(rules::bidi_ok) {
        return Err(JidErrorKind::Bidi);
    }
    Ok(out)
}

/// Validates one label (already mapped) and returns its U-label form.
fn u_label(label: &str) -> Result<Cow<'_, str>, JidErrorKind> {
    if label.is_empty() {
        return Err(JidErrorKind::BadLabel(LabelError::Empty));
    }
    if label.is_ascii() {
        let b = label.as_bytes();
        if b.len() > MAX_LABEL {
            return Err(JidErrorKind::BadLabel(LabelError::TooLong));
        }
        if let Some(puny) = label.strip_prefix("xn--") {
            let u =
                punycode::decode(puny).ok_or(JidErrorKind::BadLabel(LabelError::BadPunycode))?;
            // An A-label must decode to a non-ASCII U-label that encodes back to itself.
            if u.is_ascii() || punycode::encode(&u).as_deref() != Some(puny) {
                return Err(JidErrorKind::BadLabel(LabelError::BadPunycode));
            }
            if !is_nfc(&u) {
                return Err(JidErrorKind::BadLabel(LabelError::NotNfc));
            }
            check_u_label(&u)?;
            return Ok(Cow::Owned(u));
        }
        check_u_label(label)?;
        return Ok(Cow::Borrowed(label));
    }
    check_u_label(label)?;
    // Short labels cannot reach 63 octets: each of n <= 7 code points costs at most 8
    // punycode digits (a delta is below 0x110000 * (n + 1) < 10^7, and every non-final digit
    // divides it by at least 10), so the A-label has at most 4 + 1 + 7 * 8 = 61 octets.
    // `None` means more than 63 code points: too long as well.
    if label.chars().nth(7).is_some()
        && punycode::encoded_len(label)
            .unwrap_or(usize::MAX)
            .saturating_add(4)
            > MAX_LABEL
    {
        return Err(JidErrorKind::BadLabel(LabelError::TooLong));
    }
    Ok(Cow::Borrowed(label))
}

/// IDNA2008 U-label validity (RFC 5891 §5.4): hyphen rules, no leading combining mark, every
/// code point PVALID or passing its contextual rule.
fn check_u_label(u: &str) -> Result<(), JidErrorKind> {
    let b = u.as_bytes();
    if b.first() == Some(&b'-') || b.last() == Some(&b'-') {
        return Err(JidErrorKind::BadLabel(LabelError::Hyphen));
    }
    if b.get(2..4) == Some(b"--") {
        return Err(JidErrorKind::BadLabel(LabelError::ReservedHyphens));
    }
    if u.chars().next().is_some_and(|c| props(c).is_mark()) {
        return Err(JidErrorKind::BadLabel(LabelError::LeadingCombiningMark));
    }
    let mut facts = rules::Facts::default();
    for (i, c) in u.char_indices() {
        match props(c).idna() {
            Class::Pvalid => {}
            Class::ContextJ | Class::ContextO => {
                if !rules::context_ok(u, i, c, &mut facts) {
                    return Err(JidErrorKind::Context(c));
                }
            }
            _ => return Err(JidErrorKind::Forbidden(c)),
        }
    }
    Ok(())
}
