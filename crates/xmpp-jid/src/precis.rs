//! PRECIS profiles (RFC 8264 framework, RFC 8265 usernames and passwords, RFC 8266
//! nicknames), implemented in-house on tables generated from the Unicode Character Database.
//!
//! Each function *enforces* its profile: it maps the input (width, spaces, case, NFC, as the
//! profile says), checks every code point against the profile's string class, the contextual
//! rules and (where the profile asks) the Bidi Rule, and returns the enforced string. Strings
//! that are already enforced are returned borrowed, without allocating.
//!
//! ```
//! use xmpp_jid::precis;
//! assert_eq!(precis::username_case_mapped("Juliet")?, "juliet");
//! assert_eq!(precis::opaque_string("correct\u{A0}horse")?, "correct horse");
//! assert!(precis::username_case_preserved("two words").is_err());
//! # Ok::<(), xmpp_jid::PrecisError>(())
//! ```

use alloc::borrow::Cow;
use alloc::string::String;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::{IsNormalized, is_nfkc_quick};

use crate::ascii;
pub use crate::error::PrecisError;
use crate::props::{Bidi, Class, changes_when_lowercased, is_nfc, props, width_map};
use crate::rules;

/// What a profile does (RFC 8264 §5 and §7: the rules are applied in this order).
#[derive(Clone, Copy)]
struct Profile {
    /// FreeformClass (`true`) or IdentifierClass (`false`).
    freeform: bool,
    /// Map fullwidth/halfwidth code points to their decompositions.
    width: bool,
    /// Map non-ASCII spaces to U+0020.
    spaces: bool,
    /// Nickname rule: trim leading/trailing spaces and collapse inner runs to one.
    trim_spaces: bool,
    /// Unicode toLowerCase (with the final-sigma context).
    lower: bool,
    /// NFKC instead of NFC.
    nfkc: bool,
    /// Apply the Bidi Rule to strings containing right-to-left characters.
    bidi: bool,
}

const USERNAME_CASE_MAPPED: Profile = Profile {
    freeform: false,
    width: true,
    spaces: false,
    trim_spaces: false,
    lower: true,
    nfkc: false,
    bidi: true,
};

const USERNAME_CASE_PRESERVED: Profile = Profile {
    lower: false,
    ..USERNAME_CASE_MAPPED
};

const OPAQUE_STRING: Profile = Profile {
    freeform: true,
    width: false,
    spaces: true,
    trim_spaces: false,
    lower: false,
    nfkc: false,
    bidi: false,
};

const NICKNAME_CASE_MAPPED: Profile = Profile {
    freeform: true,
    width: false,
    spaces: true,
    trim_spaces: true,
    lower: true,
    nfkc: true,
    bidi: false,
};

const NICKNAME_CASE_PRESERVED: Profile = Profile {
    lower: false,
    ..NICKNAME_CASE_MAPPED
};

/// Enforces the UsernameCaseMapped profile (RFC 8265 §3.3): width mapping, lowercase, NFC,
/// IdentifierClass, Bidi Rule. This is the base of a JID localpart (which additionally
/// excludes `" & ' / : < > @`).
pub fn username_case_mapped(s: &str) -> Result<Cow<'_, str>, PrecisError> {
    enforce(USERNAME_CASE_MAPPED, s)
}

/// Enforces the UsernameCasePreserved profile (RFC 8265 §3.4): like
/// [`username_case_mapped`] without the case mapping.
pub fn username_case_preserved(s: &str) -> Result<Cow<'_, str>, PrecisError> {
    enforce(USERNAME_CASE_PRESERVED, s)
}

/// Enforces the OpaqueString profile (RFC 8265 §4.2), used for passwords and JID
/// resourceparts: non-ASCII spaces become U+0020, NFC, FreeformClass.
pub fn opaque_string(s: &str) -> Result<Cow<'_, str>, PrecisError> {
    enforce(OPAQUE_STRING, s)
}

/// Enforces the NicknameCaseMapped profile (RFC 8266 §2): spaces mapped, trimmed and
/// collapsed, lowercase, NFKC, FreeformClass. RFC 8266 uses it to compare nicknames.
pub fn nickname_case_mapped(s: &str) -> Result<Cow<'_, str>, PrecisError> {
    enforce(NICKNAME_CASE_MAPPED, s)
}

/// Enforces the NicknameCasePreserved profile (RFC 8266 §2): like
/// [`nickname_case_mapped`] without the case mapping; the form to display.
pub fn nickname_case_preserved(s: &str) -> Result<Cow<'_, str>, PrecisError> {
    enforce(NICKNAME_CASE_PRESERVED, s)
}

/// The Unicode version of the derived-property tables (the UCD the generator read).
pub const UNICODE_VERSION: (u8, u8, u8) = crate::tables::UNICODE_VERSION;

fn enforce(p: Profile, s: &str) -> Result<Cow<'_, str>, PrecisError> {
    let flags = ascii::scan_precis(s.as_bytes(), p.freeform);
    if flags & ascii::NON_ASCII == 0 && !p.trim_spaces {
        return enforce_ascii(p, s, flags);
    }
    let mut mapped = map(p, s);
    if p.trim_spaces {
        // RFC 8266 §2.4: nickname rules are reapplied until the string is stable (NFKC can
        // expose spaces that the space rule then removes); give up after a few rounds.
        let mut rounds = 0;
        while let Cow::Owned(ref prev) = mapped {
            let again = map(p, prev);
            if again == prev.as_str() {
                break;
            }
            rounds += 1;
            if rounds > 3 {
                return Err(PrecisError::Unstable);
            }
            mapped = Cow::Owned(again.into_owned());
        }
        check(p, &mapped)?;
        return Ok(mapped);
    }
    check(p, &mapped)?;
    if let Cow::Owned(ref once) = mapped {
        // RFC 8264 §7: enforcement must be idempotent; a mapping that needs a second pass to
        // settle leaves the string without a stable form.
        if map(p, once) != once.as_str() {
            return Err(PrecisError::Unstable);
        }
    }
    Ok(mapped)
}

/// ASCII fast path: no width, space, normalization or bidi work can apply, and the class
/// check is a byte range.
fn enforce_ascii(p: Profile, s: &str, flags: u8) -> Result<Cow<'_, str>, PrecisError> {
    if flags & ascii::BAD != 0 {
        let bad = ascii::bad_in_precis(s.as_bytes(), p.freeform);
        return Err(PrecisError::Forbidden(bad));
    }
    if s.is_empty() {
        return Err(PrecisError::Empty);
    }
    Ok(if p.lower && flags & ascii::UPPER != 0 {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    })
}

/// The mapping steps (RFC 8264 §7 steps 1-4).
fn map(p: Profile, s: &str) -> Cow<'_, str> {
    let mut out: Cow<'_, str> = Cow::Borrowed(s);
    // One pass decides which mappings apply; each allocates only when it changes something.
    let (mut width, mut spaces, mut lower) = (false, false, false);
    for c in s.chars() {
        if !c.is_ascii() {
            width |= p.width && width_map(c).is_some();
            spaces |= p.spaces && props(c).is_space();
        }
        lower |= p.lower && changes_when_lowercased(c);
    }
    if width {
        out = Cow::Owned(out.chars().map(|c| width_map(c).unwrap_or(c)).collect());
        // Width-mapped letters may now be uppercase ASCII.
        lower = p.lower && out.chars().any(changes_when_lowercased);
    }
    if spaces {
        out = Cow::Owned(
            out.chars()
                .map(|c| if props(c).is_space() { ' ' } else { c })
                .collect(),
        );
    }
    if p.trim_spaces {
        let mut t = String::with_capacity(out.len());
        for word in out.split(' ').filter(|w| !w.is_empty()) {
            if !t.is_empty() {
                t.push(' ');
            }
            t.push_str(word);
        }
        if t != out {
            out = Cow::Owned(t);
        }
    }
    if lower {
        // `str::to_lowercase` applies the Final_Sigma context of Unicode's toLowerCase.
        out = Cow::Owned(out.to_lowercase());
    }
    if p.nfkc {
        if is_nfkc_quick(out.chars()) != IsNormalized::Yes {
            let n: String = out.nfkc().collect();
            if n != out {
                out = Cow::Owned(n);
            }
        }
    } else if !is_nfc(&out) {
        out = Cow::Owned(out.nfc().collect());
    }
    out
}

/// The checks (RFC 8264 §7 step 5 and the class/context rules of §8).
fn check(p: Profile, s: &str) -> Result<(), PrecisError> {
    if s.is_empty() {
        return Err(PrecisError::Empty);
    }
    let mut rtl = false;
    let mut facts = rules::Facts::default();
    for (i, c) in s.char_indices() {
        let props = props(c);
        match props.precis() {
            Class::Pvalid => {}
            Class::FreePval if p.freeform => {}
            Class::ContextJ | Class::ContextO => {
                if !rules::context_ok(s, i, c, &mut facts) {
                    return Err(PrecisError::Context(c));
                }
            }
            _ => return Err(PrecisError::Forbidden(c)),
        }
        rtl |= matches!(props.bidi(), Bidi::R | Bidi::AL | Bidi::AN);
    }
    if p.bidi && rtl && !rules::bidi_ok(s) {
        return Err(PrecisError::Bidi);
    }
    Ok(())
}
