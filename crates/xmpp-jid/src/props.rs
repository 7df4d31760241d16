//! Per-code-point properties, looked up in the generated tables (`tables.rs`).

use crate::tables;

/// A derived property value (RFC 8264 §8 for PRECIS, RFC 5892 §3 for IDNA2008).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Allowed everywhere.
    Pvalid,
    /// PRECIS only: DISALLOWED in IdentifierClass, allowed in FreeformClass.
    FreePval,
    /// Allowed only if the CONTEXTJ rule holds.
    ContextJ,
    /// Allowed only if the CONTEXTO rule holds.
    ContextO,
    /// Never allowed.
    Disallowed,
    /// Not assigned in the tables' Unicode version: never allowed.
    Unassigned,
}

#[allow(clippy::upper_case_acronyms)] // the UCD's own names
/// Bidi_Class values the Bidi Rule (RFC 5893) distinguishes; everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bidi {
    L,
    R,
    AL,
    AN,
    EN,
    ES,
    CS,
    ET,
    ON,
    BN,
    NSM,
    Other,
}

/// Joining_Type (ArabicShaping.txt / DerivedJoiningType.txt) for the ZWNJ rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Joining {
    U,
    L,
    R,
    D,
    T,
    C,
}

/// The scripts the CONTEXTO rules ask about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Script {
    Other,
    Greek,
    Hebrew,
    /// Hiragana, Katakana or Han (the KATAKANA MIDDLE DOT rule).
    Japanese,
}

/// Packed properties of one code point; layout documented in `tables.rs`.
#[derive(Clone, Copy)]
pub(crate) struct Props(u32);

const fn class(v: u32) -> Class {
    match v {
        0 => Class::Pvalid,
        1 => Class::FreePval,
        2 => Class::ContextJ,
        3 => Class::ContextO,
        4 => Class::Disallowed,
        _ => Class::Unassigned,
    }
}

impl Props {
    pub(crate) const fn precis(self) -> Class {
        class(self.0 & 7)
    }

    pub(crate) const fn idna(self) -> Class {
        class((self.0 >> 3) & 7)
    }

    pub(crate) const fn bidi(self) -> Bidi {
        match (self.0 >> 6) & 15 {
            0 => Bidi::L,
            1 => Bidi::R,
            2 => Bidi::AL,
            3 => Bidi::AN,
            4 => Bidi::EN,
            5 => Bidi::ES,
            6 => Bidi::CS,
            7 => Bidi::ET,
            8 => Bidi::ON,
            9 => Bidi::BN,
            10 => Bidi::NSM,
            _ => Bidi::Other,
        }
    }

    pub(crate) const fn joining(self) -> Joining {
        match (self.0 >> 10) & 7 {
            1 => Joining::L,
            2 => Joining::R,
            3 => Joining::D,
            4 => Joining::T,
            5 => Joining::C,
            _ => Joining::U,
        }
    }

    /// Canonical_Combining_Class = Virama (9).
    pub(crate) const fn virama(self) -> bool {
        self.0 & (1 << 13) != 0
    }

    pub(crate) const fn script(self) -> Script {
        match (self.0 >> 14) & 3 {
            1 => Script::Greek,
            2 => Script::Hebrew,
            3 => Script::Japanese,
            _ => Script::Other,
        }
    }

    /// General_Category is Mn, Mc or Me.
    pub(crate) const fn is_mark(self) -> bool {
        self.0 & (1 << 16) != 0
    }

    /// NFC_Quick_Check is not Yes, or the canonical combining class is not 0: a string
    /// without such code points is certainly in NFC.
    pub(crate) const fn nfc_maybe_unstable(self) -> bool {
        self.0 & (1 << 18) != 0
    }

    /// General_Category is Zs (a space).
    pub(crate) const fn is_space(self) -> bool {
        self.0 & (1 << 17) != 0
    }
}

/// The properties of `c`: a two-level table lookup (see `tables.rs`).
#[inline]
pub(crate) fn props(c: char) -> Props {
    let cp = u32::from(c);
    let block = tables::BLOCK_INDEX
        .get((cp >> tables::SHIFT) as usize)
        .map_or(0, |&b| usize::from(b));
    let offset = (cp & ((1 << tables::SHIFT) - 1)) as usize;
    let index = tables::BLOCKS
        .get((block << tables::SHIFT) + offset)
        .map_or(0, |&i| usize::from(i));
    // Every index is in range by construction; the fallbacks only keep this panic-free.
    Props(tables::VALUES.get(index).copied().unwrap_or(0))
}

/// `true` when `s` is in NFC. Decided from the tables for the usual text (no combining
/// marks, no code points NFC could change), else by `unicode-normalization`'s quick check
/// and, when that is unsure, by normalizing.
pub(crate) fn is_nfc(s: &str) -> bool {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    if !s
        .chars()
        .any(|c| !c.is_ascii() && props(c).nfc_maybe_unstable())
    {
        return true;
    }
    match is_nfc_quick(s.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => s.chars().eq(s.nfc()),
    }
}

/// `true` when Unicode toLowerCase changes `c` (ASCII answered without tables).
#[inline]
pub(crate) fn changes_when_lowercased(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_uppercase();
    }
    let mut l = c.to_lowercase();
    !(l.next() == Some(c) && l.next().is_none())
}

/// The width mapping of RFC 8265 §3.4.1: a fullwidth or halfwidth code point maps to its
/// `<wide>`/`<narrow>` decomposition.
pub(crate) fn width_map(c: char) -> Option<char> {
    let cp = u32::from(c);
    // All such code points are in U+3000..=U+FFEE.
    if !(0x3000..=0xFFEE).contains(&cp) {
        return None;
    }
    let table = tables::WIDTH;
    table
        .binary_search_by_key(&cp, |&(from, _)| from)
        .ok()
        .and_then(|i| table.get(i))
        .and_then(|&(_, to)| char::from_u32(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        let p = props('a');
        assert_eq!(
            (p.precis(), p.idna(), p.bidi()),
            (Class::Pvalid, Class::Pvalid, Bidi::L)
        );
        assert_eq!(props('A').idna(), Class::Disallowed);
        assert_eq!(props('A').precis(), Class::Pvalid);
        assert_eq!(props(' ').precis(), Class::FreePval);
        assert!(props(' ').is_space() && props('\u{3000}').is_space() && !props('a').is_space());
        assert_eq!(props('\u{A0}').precis(), Class::FreePval);
        assert_eq!(props('\u{7}').precis(), Class::Disallowed);
        assert_eq!(props('\u{DF}').idna(), Class::Pvalid);
        assert_eq!(props('\u{B7}').precis(), Class::ContextO);
        assert_eq!(props('\u{200C}').precis(), Class::ContextJ);
        assert_eq!(props('\u{378}').precis(), Class::Unassigned);
        assert_eq!(props('\u{10FFFF}').precis(), Class::Disallowed);
        assert_eq!(props('\u{1F600}').precis(), Class::FreePval);
        assert_eq!(props('\u{1F600}').idna(), Class::Disallowed);
        assert_eq!(props('\u{5D0}').bidi(), Bidi::R);
        assert_eq!(props('\u{5D0}').script(), Script::Hebrew);
        assert_eq!(props('\u{3B1}').script(), Script::Greek);
        assert_eq!(props('\u{30A2}').script(), Script::Japanese);
        assert_eq!(props('\u{4E00}').script(), Script::Japanese);
        assert_eq!(
            (props('\u{627}').bidi(), props('\u{628}').joining()),
            (Bidi::AL, Joining::D)
        );
        assert_eq!(props('\u{627}').joining(), Joining::R);
        assert_eq!(props('\u{661}').bidi(), Bidi::AN);
        assert_eq!(props('\u{301}').bidi(), Bidi::NSM);
        assert!(props('\u{301}').is_mark() && !props('a').is_mark());
        assert!(props('\u{94D}').virama());
        assert_eq!(props('\u{1100}').precis(), Class::Disallowed);
        assert_eq!(props('\u{2163}').precis(), Class::FreePval);
        // The Zs bit agrees with the generated list of spaces.
        for c in (0..=0x0010_FFFF).filter_map(char::from_u32) {
            assert_eq!(props(c).is_space(), tables::SPACES.contains(&c), "{c:?}");
        }
        assert!(is_nfc("abc \u{E9}\u{4E00}") && !is_nfc("e\u{301}") && !is_nfc("\u{212B}"));
        assert!(!is_nfc(
            "a\u{323}\u{302}b"
                .chars()
                .rev()
                .collect::<String>()
                .as_str()
        ));
        assert!(is_nfc("\u{1EAD}"));
        assert_eq!(width_map('\u{FF21}'), Some('A'));
        assert_eq!(width_map('\u{FF71}'), Some('\u{30A2}'));
        assert_eq!(width_map('A'), None);
    }
}
