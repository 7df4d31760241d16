//! Property tests: no input panics; every accepted JID re-parses to itself from its display
//! form, display is idempotent, and the parts reassemble to the whole.
// Helpers outside `#[test]` functions assert too: a failure must stop the test.
#![allow(clippy::panic, clippy::expect_used, clippy::type_complexity)]

use proptest::prelude::*;
use xmpp_jid::{BareJid, FullJid, Jid, precis};

/// Characters chosen to hit every path: separators, ASCII case, fullwidth and halfwidth forms,
/// final sigma, combining marks (NFC), Hangul jamo, right-to-left letters and digits, joiners,
/// contextual code points, spaces, controls, unassigned and private-use code points.
const ALPHABET: &[char] = &[
    'a',
    'Z',
    'x',
    'n',
    '-',
    '0',
    '9',
    '.',
    '@',
    '/',
    '[',
    ']',
    ':',
    ' ',
    '\\',
    '"',
    '_',
    '\u{DF}',
    '\u{3A3}',
    '\u{3C3}',
    '\u{3C2}',
    '\u{301}',
    '\u{308}',
    '\u{E9}',
    '\u{130}',
    '\u{FF21}',
    '\u{FF0F}',
    '\u{FF20}',
    '\u{3002}',
    '\u{FF61}',
    '\u{FF71}',
    '\u{A0}',
    '\u{3000}',
    '\u{1100}',
    '\u{1161}',
    '\u{11A8}',
    '\u{5D0}',
    '\u{627}',
    '\u{661}',
    '\u{6F1}',
    '\u{200C}',
    '\u{200D}',
    '\u{94D}',
    '\u{915}',
    '\u{B7}',
    'l',
    '\u{375}',
    '\u{5F3}',
    '\u{30FB}',
    '\u{30A2}',
    '\u{2163}',
    '\u{265A}',
    '\u{7}',
    '\u{7F}',
    '\u{FEFF}',
    '\u{E000}',
    '\u{378}',
    '\u{10FFFF}',
    '\u{212A}',
    '\u{FF10}',
    '\u{FF19}',
    '\u{FF0E}',
    '\u{FF3B}',
    '1',
    '5',
    '\u{1F600}',
    '\u{FB01}',
];

fn jidish() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(proptest::sample::select(ALPHABET), 0..24)
            .prop_map(|v| v.into_iter().collect()),
        // Structured: localpart@domain/resource with random pieces.
        (
            proptest::option::of("[a-zA-Z\u{C0}-\u{24F}\u{391}-\u{3C9}]{1,8}"),
            proptest::sample::select(vec![
                "example.com",
                "EXAMPLE.com.",
                "xn--bcher-kva.example",
                "[::1]",
                "127.0.0.1",
                "b\u{FC}cher.example",
                "\u{4F8B}\u{3002}jp",
                "ex\u{FF41}mple.org",
                "\u{FF11}\u{FF12}.0.0.1",
                "\u{FF19}99.1.1.1",
                "x\u{FF0E}\u{FF0E}",
                "\u{4F8B}.9",
            ]),
            proptest::option::of(any::<String>()),
        )
            .prop_map(|(n, d, r)| {
                let mut s = String::new();
                if let Some(n) = n {
                    s.push_str(&n);
                    s.push('@');
                }
                s.push_str(d);
                if let Some(r) = r {
                    s.push('/');
                    s.push_str(&r);
                }
                s
            }),
        any::<String>(),
    ]
}

fn check_accepted(j: &Jid) {
    let shown = j.to_string();
    let again = Jid::new(&shown).expect("display form must re-parse");
    assert_eq!(&again, j);
    assert_eq!(again.to_string(), shown, "display is idempotent");
    // The parts reassemble to the whole.
    let mut whole = String::new();
    if let Some(n) = j.node() {
        whole.push_str(n);
        whole.push('@');
    }
    whole.push_str(j.domain());
    if let Some(r) = j.resource() {
        whole.push('/');
        whole.push_str(r);
    }
    assert_eq!(whole, shown);
    for part in [j.node(), Some(j.domain()), j.resource()]
        .into_iter()
        .flatten()
    {
        assert!((1..=1023).contains(&part.len()));
    }
    // Rebuilding from the parts gives the same JID.
    let bare = BareJid::from_parts(j.node(), j.domain()).expect("parts re-enforce");
    assert_eq!(bare, j.to_bare());
    if let Some(r) = j.resource() {
        assert_eq!(
            FullJid::from_parts(j.node(), j.domain(), r).expect("parts"),
            *j
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn validate_agrees_with_new(s in jidish()) {
        prop_assert_eq!(Jid::validate(&s), Jid::new(&s).map(|_| ()));
    }

    #[test]
    fn parse_never_panics_and_round_trips(s in jidish()) {
        if let Ok(j) = Jid::new(&s) {
            check_accepted(&j);
        }
        let _ = BareJid::new(&s);
        let _ = FullJid::new(&s);
        if let Ok(j) = Jid::new_lenient(&s) {
            check_accepted(&j);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let s = String::from_utf8_lossy(&bytes);
        if let Ok(j) = Jid::new(&s) {
            check_accepted(&j);
        }
    }

    #[test]
    fn precis_profiles_are_idempotent(s in jidish()) {
        type P = fn(&str) -> Result<std::borrow::Cow<'_, str>, xmpp_jid::PrecisError>;
        let profiles: [P; 5] = [
            precis::username_case_mapped,
            precis::username_case_preserved,
            precis::opaque_string,
            precis::nickname_case_mapped,
            precis::nickname_case_preserved,
        ];
        for p in profiles {
            if let Ok(once) = p(&s) {
                let twice = p(&once).expect("enforced output must be accepted");
                prop_assert_eq!(&*twice, &*once);
            }
        }
    }

    #[test]
    fn escape_round_trips(s in "[a-z \"&'/:<>@\\\\0-9]{0,16}") {
        let e = xmpp_jid::escape::escape_localpart(&s);
        prop_assert_eq!(xmpp_jid::escape::unescape_localpart(&e), s.as_str());
    }
}
