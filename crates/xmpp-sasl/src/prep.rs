//! Password preparation: SASLprep (RFC 4013) built in, other profiles pluggable.
//!
//! SCRAM (RFC 5802 §2.2) hashes `Normalize(password)`, so both sides must prepare the password
//! the same way or a correct password fails. SASLprep is what deployed XMPP servers use
//! (Prosody, ejabberd); RFC 8265 PRECIS OpaqueString is its successor and differs on a few inputs
//! (compatibility characters are kept, controls and some spaces are refused). Hosts that want
//! OpaqueString plug it in with [`PasswordPrep::Custom`], e.g. with `xmpp_jid`'s implementation;
//! this crate is a leaf and does not depend on it.
//!
//! The built-in SASLprep treats strings as *queries* (RFC 3454 §7: unassigned code points are
//! allowed), which is what RFC 5802 asks of passwords. Bidi categories come from the
//! `unicode-bidi` tables (a newer Unicode than 3.2; they agree on every code point Unicode 3.2
//! assigned).
//!
//! One input is ambiguous in RFC 3454 itself: U+200B ZERO WIDTH SPACE is listed both in B.1
//! ("map to nothing") and in C.1.2 ("non-ASCII space", which SASLprep maps to U+0020). We map it
//! to nothing, as Python's `scramp`/`saslprep` do: a character that renders as nothing should
//! not become a visible space the user never typed, and later Unicode versions reclassified
//! U+200B as a format character (not a space). The Rust `stringprep` crate picks the other
//! branch (`pa ss`); a password containing U+200B therefore does not interoperate between the
//! two and is best avoided.

use alloc::string::String;
use core::fmt;

use unicode_bidi::BidiClass;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::error::Error;

/// How a password is prepared before it is hashed (SCRAM) or compared (PLAIN).
#[non_exhaustive]
#[derive(Clone, Copy, Default)]
pub enum PasswordPrep {
    /// SASLprep (RFC 4013), query strings. The default: what deployed servers use.
    #[default]
    SaslPrep,
    /// No preparation: the UTF-8 bytes as given (for hosts that prepared the string already).
    None,
    /// A host-supplied profile, e.g. PRECIS OpaqueString (RFC 8265). Return `None` to reject.
    Custom(fn(&str) -> Option<String>),
}

impl fmt::Debug for PasswordPrep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordPrep::SaslPrep => f.write_str("SaslPrep"),
            PasswordPrep::None => f.write_str("None"),
            PasswordPrep::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl PasswordPrep {
    /// Prepares `password`; the result is zeroized when dropped.
    pub fn prepare(&self, password: &str) -> Result<Zeroizing<String>, Error> {
        match self {
            PasswordPrep::SaslPrep => saslprep(password),
            PasswordPrep::None => Ok(Zeroizing::new(String::from(password))),
            PasswordPrep::Custom(f) => f(password)
                .map(Zeroizing::new)
                .ok_or(Error::PasswordPreparation),
        }
    }
}

/// RFC 3454 table B.1: commonly mapped to nothing.
fn mapped_to_nothing(c: char) -> bool {
    matches!(
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
}

/// RFC 3454 table C.1.2: non-ASCII space characters.
fn non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{A0}' | '\u{1680}' | '\u{2000}'..='\u{200B}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// RFC 4013 §2.3: tables C.1.2, C.2.1, C.2.2, C.3, C.4, C.5 (unrepresentable in `char`), C.6,
/// C.7, C.8, C.9.
fn prohibited(c: char) -> bool {
    let u = u32::from(c);
    non_ascii_space(c)
        // C.2.1 ASCII control
        || u <= 0x1F
        || u == 0x7F
        // C.2.2 non-ASCII control
        || (0x80..=0x9F).contains(&u)
        || matches!(
            u,
            0x6DD | 0x70F | 0x180E | 0x200C | 0x200D | 0x2028 | 0x2029 | 0xFEFF
        )
        || (0x2060..=0x2063).contains(&u)
        || (0x206A..=0x206F).contains(&u)
        || (0xFFF9..=0xFFFC).contains(&u)
        || (0x1D173..=0x1D17A).contains(&u)
        // C.3 private use
        || (0xE000..=0xF8FF).contains(&u)
        || (0xF_0000..=0xF_FFFD).contains(&u)
        || (0x10_0000..=0x10_FFFD).contains(&u)
        // C.4 non-character code points
        || (0xFDD0..=0xFDEF).contains(&u)
        || (u & 0xFFFE) == 0xFFFE
        // C.6 inappropriate for plain text
        || (0xFFF9..=0xFFFD).contains(&u)
        // C.7 inappropriate for canonical representation
        || (0x2FF0..=0x2FFB).contains(&u)
        // C.8 change display properties or deprecated
        || matches!(u, 0x340 | 0x341 | 0x200E | 0x200F)
        || (0x202A..=0x202E).contains(&u)
        // C.9 tagging characters
        || u == 0xE_0001
        || (0xE_0020..=0xE_007F).contains(&u)
}

fn rand_al_cat(c: char) -> bool {
    matches!(unicode_bidi::bidi_class(c), BidiClass::R | BidiClass::AL)
}

/// SASLprep (RFC 4013) for query strings.
pub fn saslprep(input: &str) -> Result<Zeroizing<String>, Error> {
    // Fast path: printable ASCII is unchanged by every step.
    if input.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Ok(Zeroizing::new(String::from(input)));
    }
    // Step 1, mapping. B.1 is tested first: see the module docs on U+200B.
    let mut mapped = Zeroizing::new(String::with_capacity(input.len()));
    for c in input.chars() {
        if mapped_to_nothing(c) {
            continue;
        }
        mapped.push(if non_ascii_space(c) { ' ' } else { c });
    }
    // Step 2, NFKC.
    let mut out = Zeroizing::new(String::with_capacity(mapped.len()));
    out.extend(mapped.nfkc());
    // Step 3, prohibited output; step 4, bidi.
    if out.chars().any(prohibited) {
        return Err(Error::PasswordPreparation);
    }
    if out.chars().any(rand_al_cat) {
        let lcat = out
            .chars()
            .any(|c| unicode_bidi::bidi_class(c) == BidiClass::L);
        let first = out.chars().next().is_some_and(rand_al_cat);
        let last = out.chars().next_back().is_some_and(rand_al_cat);
        if lcat || !first || !last {
            return Err(Error::PasswordPreparation);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4013_examples() {
        assert_eq!(saslprep("I\u{AD}X").unwrap().as_str(), "IX");
        assert_eq!(saslprep("\u{AA}").unwrap().as_str(), "a");
        assert_eq!(saslprep("\u{2168}").unwrap().as_str(), "IX");
        assert!(saslprep("\u{7}").is_err());
        assert!(saslprep("\u{627}1").is_err());
        assert_eq!(
            saslprep("\u{627}\u{628}").unwrap().as_str(),
            "\u{627}\u{628}"
        );
    }

    #[test]
    fn custom_and_none() {
        fn upper(s: &str) -> Option<String> {
            (!s.is_empty()).then(|| s.to_ascii_uppercase())
        }
        let p = PasswordPrep::Custom(upper);
        assert_eq!(p.prepare("abc").unwrap().as_str(), "ABC");
        assert_eq!(p.prepare(""), Err(Error::PasswordPreparation));
        assert_eq!(
            PasswordPrep::None.prepare("\u{AA}").unwrap().as_str(),
            "\u{AA}"
        );
    }
}
