//! Rules shared by PRECIS (RFC 8264) and IDNA2008 (RFC 5891/5892): the contextual rules of
//! RFC 5892 Appendix A and the Bidi Rule of RFC 5893 §2.

use crate::props::{Bidi, Joining, Script, props};

/// Whole-string facts some contextual rules ask for, computed at most once per string so
/// that many contextual code points cost linear time, not quadratic.
#[derive(Default)]
pub(crate) struct Facts {
    japanese: Option<bool>,
    arabic_indic: Option<bool>,
    extended_arabic_indic: Option<bool>,
}

fn cached(slot: &mut Option<bool>, s: &str, f: impl Fn(char) -> bool) -> bool {
    *slot.get_or_insert_with(|| s.chars().any(f))
}

/// `true` when the contextual rule for `c`, found at byte offset `pos` of `s`, holds. `s` is
/// the whole string (PRECIS) or the label (IDNA2008); `facts` caches whole-string lookups
/// and must belong to the same `s`. Code points without a registered rule fail.
pub(crate) fn context_ok(s: &str, pos: usize, c: char, facts: &mut Facts) -> bool {
    let before = s.get(..pos).and_then(|b| b.chars().next_back());
    let after = s.get(pos + c.len_utf8()..).and_then(|a| a.chars().next());
    match c {
        // ZERO WIDTH NON-JOINER (A.1).
        '\u{200C}' => {
            if before.is_some_and(|b| props(b).virama()) {
                return true;
            }
            let left = s.get(..pos).map_or(Joining::U, |b| {
                b.chars()
                    .rev()
                    .map(|ch| props(ch).joining())
                    .find(|&j| j != Joining::T)
                    .unwrap_or(Joining::U)
            });
            let right = s.get(pos + c.len_utf8()..).map_or(Joining::U, |a| {
                a.chars()
                    .map(|ch| props(ch).joining())
                    .find(|&j| j != Joining::T)
                    .unwrap_or(Joining::U)
            });
            matches!(left, Joining::L | Joining::D) && matches!(right, Joining::R | Joining::D)
        }
        // ZERO WIDTH JOINER (A.2).
        '\u{200D}' => before.is_some_and(|b| props(b).virama()),
        // MIDDLE DOT (A.3): only between two 'l' (Catalan ela geminada).
        '\u{B7}' => before == Some('l') && after == Some('l'),
        // GREEK LOWER NUMERAL SIGN (A.4).
        '\u{375}' => after.is_some_and(|a| props(a).script() == Script::Greek),
        // HEBREW PUNCTUATION GERESH and GERSHAYIM (A.5, A.6).
        '\u{5F3}' | '\u{5F4}' => before.is_some_and(|b| props(b).script() == Script::Hebrew),
        // KATAKANA MIDDLE DOT (A.7).
        '\u{30FB}' => cached(&mut facts.japanese, s, |ch| {
            props(ch).script() == Script::Japanese
        }),
        // ARABIC-INDIC DIGITS (A.8) and EXTENDED ARABIC-INDIC DIGITS (A.9) must not mix.
        '\u{660}'..='\u{669}' => !cached(&mut facts.extended_arabic_indic, s, |ch| {
            ('\u{6F0}'..='\u{6F9}').contains(&ch)
        }),
        '\u{6F0}'..='\u{6F9}' => !cached(&mut facts.arabic_indic, s, |ch| {
            ('\u{660}'..='\u{669}').contains(&ch)
        }),
        _ => false,
    }
}

/// `true` when `s` contains a right-to-left character (Bidi_Class R, AL or AN), which makes
/// the Bidi Rule apply.
pub(crate) fn has_rtl(s: &str) -> bool {
    s.chars()
        .any(|c| matches!(props(c).bidi(), Bidi::R | Bidi::AL | Bidi::AN))
}

/// The six conditions of the Bidi Rule (RFC 5893 §2) on a non-empty string.
pub(crate) fn bidi_ok(s: &str) -> bool {
    let mut chars = s.chars().map(|c| props(c).bidi());
    let Some(first) = chars.next() else {
        return true;
    };
    // Last class that is not NSM (condition 3 and 6 allow trailing NSMs).
    let last = s
        .chars()
        .rev()
        .map(|c| props(c).bidi())
        .find(|&b| b != Bidi::NSM)
        .unwrap_or(first);
    match first {
        Bidi::R | Bidi::AL => {
            let mut en = false;
            let mut an = false;
            for b in s.chars().map(|c| props(c).bidi()) {
                match b {
                    Bidi::EN => en = true,
                    Bidi::AN => an = true,
                    Bidi::R
                    | Bidi::AL
                    | Bidi::ES
                    | Bidi::CS
                    | Bidi::ET
                    | Bidi::ON
                    | Bidi::BN
                    | Bidi::NSM => {}
                    _ => return false,
                }
            }
            !(en && an) && matches!(last, Bidi::R | Bidi::AL | Bidi::EN | Bidi::AN)
        }
        Bidi::L => {
            chars.all(|b| {
                matches!(
                    b,
                    Bidi::L
                        | Bidi::EN
                        | Bidi::ES
                        | Bidi::CS
                        | Bidi::ET
                        | Bidi::ON
                        | Bidi::BN
                        | Bidi::NSM
                )
            }) && matches!(last, Bidi::L | Bidi::EN)
        }
        _ => false,
    }
}
