//! RFC 7622 §3.5 examples, part boundaries (1023 octets), the parsing rules of §3.1 and the
//! domainpart rules of §3.2.
// Helpers outside `#[test]` functions assert too: a failure must stop the test.
#![allow(clippy::panic, clippy::expect_used, clippy::type_complexity)]

use xmpp_jid::{BareJid, FullJid, Jid, JidError, JidErrorKind, JidPart, LabelError};

fn ok(input: &str) -> Jid {
    Jid::new(input).unwrap_or_else(|e| panic!("{input:?} rejected: {e}"))
}

fn err(input: &str) -> JidError {
    match Jid::new(input) {
        Ok(j) => panic!("{input:?} accepted as {j}"),
        Err(e) => e,
    }
}

/// RFC 7622 §3.5.1, with the enforced form and the parts each example must produce.
#[test]
fn rfc7622_valid_examples() {
    let cases: &[(&str, &str, Option<&str>, &str, Option<&str>)] = &[
        (
            "juliet@example.com",
            "juliet@example.com",
            Some("juliet"),
            "example.com",
            None,
        ),
        (
            "juliet@example.com/foo",
            "juliet@example.com/foo",
            Some("juliet"),
            "example.com",
            Some("foo"),
        ),
        (
            "juliet@example.com/foo bar",
            "juliet@example.com/foo bar",
            Some("juliet"),
            "example.com",
            Some("foo bar"),
        ),
        (
            "juliet@example.com/foo@bar",
            "juliet@example.com/foo@bar",
            Some("juliet"),
            "example.com",
            Some("foo@bar"),
        ),
        (
            r"foo\20bar@example.com",
            r"foo\20bar@example.com",
            Some(r"foo\20bar"),
            "example.com",
            None,
        ),
        (
            "fussball@example.com",
            "fussball@example.com",
            Some("fussball"),
            "example.com",
            None,
        ),
        (
            "fu\u{DF}ball@example.com",
            "fu\u{DF}ball@example.com",
            Some("fu\u{DF}ball"),
            "example.com",
            None,
        ),
        (
            "\u{3C0}@example.com",
            "\u{3C0}@example.com",
            Some("\u{3C0}"),
            "example.com",
            None,
        ),
        (
            "\u{3A3}@example.com/foo",
            "\u{3C3}@example.com/foo",
            Some("\u{3C3}"),
            "example.com",
            Some("foo"),
        ),
        (
            "\u{3C3}@example.com/foo",
            "\u{3C3}@example.com/foo",
            Some("\u{3C3}"),
            "example.com",
            Some("foo"),
        ),
        (
            "\u{3C2}@example.com/foo",
            "\u{3C2}@example.com/foo",
            Some("\u{3C2}"),
            "example.com",
            Some("foo"),
        ),
        (
            "king@example.com/\u{265A}",
            "king@example.com/\u{265A}",
            Some("king"),
            "example.com",
            Some("\u{265A}"),
        ),
        ("example.com", "example.com", None, "example.com", None),
        (
            "example.com/foobar",
            "example.com/foobar",
            None,
            "example.com",
            Some("foobar"),
        ),
        (
            "a.example.com/b@example.net",
            "a.example.com/b@example.net",
            None,
            "a.example.com",
            Some("b@example.net"),
        ),
    ];
    for &(input, enforced, node, domain, resource) in cases {
        let j = ok(input);
        assert_eq!(j.as_str(), enforced, "{input:?}");
        assert_eq!(j.to_string(), enforced, "{input:?}");
        assert_eq!(
            (j.node(), j.domain(), j.resource()),
            (node, domain, resource),
            "{input:?}"
        );
        assert_eq!(j.is_full(), resource.is_some());
    }
}

/// RFC 7622 §3.5.2, with the part each must fail in.
#[test]
fn rfc7622_invalid_examples() {
    let cases: &[(&str, JidPart, JidErrorKind)] = &[
        (
            "\"juliet\"@example.com",
            JidPart::Localpart,
            JidErrorKind::Forbidden('"'),
        ),
        (
            "foo bar@example.com",
            JidPart::Localpart,
            JidErrorKind::Forbidden(' '),
        ),
        ("@example.com/", JidPart::Localpart, JidErrorKind::Empty),
        // Case mapping runs first, so the code point reported is the lowercased U+2173.
        (
            "henry\u{2163}@example.com",
            JidPart::Localpart,
            JidErrorKind::Forbidden('\u{2173}'),
        ),
        (
            "\u{265A}@example.com",
            JidPart::Localpart,
            JidErrorKind::Forbidden('\u{265A}'),
        ),
        ("juliet@", JidPart::Domainpart, JidErrorKind::Empty),
        ("/foobar", JidPart::Domainpart, JidErrorKind::Empty),
    ];
    for &(input, part, kind) in cases {
        let e = err(input);
        assert_eq!((e.part, e.kind), (part, kind), "{input:?}: {e}");
    }
}

/// RFC 7622 §3.5.2 also lists `juliet@example.com/ foo` ("leading space in resourcepart") as
/// invalid, but the OpaqueString profile it cites (RFC 8265 §4.2) allows U+0020 anywhere, and
/// so do precis_i18n and the `precis.tsv` vectors. We follow the profile (see the crate docs).
#[test]
fn leading_space_in_resource_follows_opaque_string() {
    assert_eq!(ok("juliet@example.com/ foo").resource(), Some(" foo"));
}

#[test]
fn separators() {
    // The first '/' starts the resourcepart; '@' and '/' after it belong to the resource.
    let j = ok("a@b/c@d/e");
    assert_eq!(
        (j.node(), j.domain(), j.resource()),
        (Some("a"), "b", Some("c@d/e"))
    );
    // The first '@' before the '/' ends the localpart; a second one lands in the domain.
    assert_eq!(err("a@b@c").part, JidPart::Domainpart);
    assert_eq!(err("a@b@c").kind, JidErrorKind::Forbidden('@'));
    assert_eq!(err("example.com/").kind, JidErrorKind::Empty);
    assert_eq!(err("").part, JidPart::Domainpart);
    // Fullwidth solidus maps to '/' in a localpart, which then fails (no re-splitting).
    assert_eq!(
        err("a\u{FF0F}b@example.com").kind,
        JidErrorKind::Forbidden('/')
    );
    // Fullwidth letters are width-mapped and lowercased.
    assert_eq!(
        ok("\u{FF2A}uliet@example.com").as_str(),
        "juliet@example.com"
    );
}

#[test]
fn domainpart_rules() {
    assert_eq!(ok("Juliet@Example.COM.").as_str(), "juliet@example.com");
    assert_eq!(ok("example.com./r").as_str(), "example.com/r");
    assert_eq!(err(".").kind, JidErrorKind::Empty);
    assert_eq!(
        err("example..com").kind,
        JidErrorKind::BadLabel(LabelError::Empty)
    );
    assert_eq!(
        err("example.com..").kind,
        JidErrorKind::BadLabel(LabelError::Empty)
    );
    assert_eq!(
        err("-example.com").kind,
        JidErrorKind::BadLabel(LabelError::Hyphen)
    );
    assert_eq!(
        err("example-.com").kind,
        JidErrorKind::BadLabel(LabelError::Hyphen)
    );
    assert_eq!(
        err("ab--cd.com").kind,
        JidErrorKind::BadLabel(LabelError::ReservedHyphens)
    );
    assert_eq!(err("under_score.com").kind, JidErrorKind::Forbidden('_'));
    assert_eq!(
        err(&format!("{}.com", "a".repeat(64))).kind,
        JidErrorKind::BadLabel(LabelError::TooLong)
    );
    ok(&format!("{}.com", "a".repeat(63)));
    // IP literals.
    assert_eq!(ok("juliet@127.0.0.1/r").domain(), "127.0.0.1");
    assert_eq!(ok("[::1]").domain(), "[::1]");
    assert_eq!(ok("[2001:DB8:0:0:0:0:0:1]").domain(), "[2001:db8::1]");
    assert_eq!(ok("x@[::ffff:192.0.2.1]/r").domain(), "[::ffff:192.0.2.1]");
    for bad in [
        "256.0.0.1",
        "1.2.3",
        "01.2.3.4",
        "[::1",
        "[1:2:3]",
        "[::1]x",
        "[fe80::1%eth0]",
        "123",
    ] {
        assert_eq!(err(bad).kind, JidErrorKind::BadIpLiteral, "{bad:?}");
    }
    // IDNA2008: A-labels become U-labels; U-labels are lowercased and NFC'd.
    assert_eq!(ok("xn--bcher-kva.example").domain(), "b\u{FC}cher.example");
    assert_eq!(ok("XN--BCHER-KVA.Example").domain(), "b\u{FC}cher.example");
    assert_eq!(ok("B\u{DC}CHER.example").domain(), "b\u{FC}cher.example");
    assert_eq!(ok("bu\u{308}cher.example").domain(), "b\u{FC}cher.example");
    assert_eq!(
        ok("\u{4F8B}\u{3002}\u{FF45}\u{FF58}").domain(),
        "\u{4F8B}.ex"
    );
    // Punycode that does not round-trip, decodes to ASCII, or is garbage.
    assert_eq!(
        err("xn--abc-.example").kind,
        JidErrorKind::BadLabel(LabelError::Hyphen)
    );
    assert_eq!(err("xn--a.example").kind, JidErrorKind::Forbidden('\u{80}'));
    assert_eq!(
        err("xn--ab-.example").kind,
        JidErrorKind::BadLabel(LabelError::Hyphen)
    );
    assert_eq!(
        err("xn--99999999999.example").kind,
        JidErrorKind::BadLabel(LabelError::BadPunycode)
    );
    // IDNA2008 disallows symbols and case-unstable code points that PRECIS would allow.
    assert_eq!(
        err("\u{2665}.example").kind,
        JidErrorKind::Forbidden('\u{2665}')
    );
    assert_eq!(
        err("\u{301}a.example").kind,
        JidErrorKind::BadLabel(LabelError::LeadingCombiningMark)
    );
    // Contextual rules: ZWJ needs a virama before it; middle dot needs l·l.
    assert_eq!(
        err("a\u{200D}b.example").kind,
        JidErrorKind::Context('\u{200D}')
    );
    ok("\u{915}\u{94D}\u{200D}.example");
    ok("l\u{B7}l.example");
    assert_eq!(
        err("a\u{B7}l.example").kind,
        JidErrorKind::Context('\u{B7}')
    );
    // Bidi: an RTL label may not start with a digit; mixing is checked over the whole name.
    ok("\u{5D0}\u{5D1}.example");
    assert_eq!(err("1\u{5D0}.example").kind, JidErrorKind::Bidi);
}

#[test]
fn localpart_bidi_and_context() {
    ok("\u{5E9}\u{5DC}\u{5D5}\u{5DD}@example.com");
    assert_eq!(err("\u{5D0}a@example.com").kind, JidErrorKind::Bidi);
    assert_eq!(
        err("a\u{200D}@example.com").kind,
        JidErrorKind::Context('\u{200D}')
    );
    assert_eq!(
        err("a\u{A0}b@example.com").kind,
        JidErrorKind::Forbidden('\u{A0}')
    );
}

fn too_long(e: &JidError, part: JidPart) -> bool {
    e.part == part && matches!(e.kind, JidErrorKind::TooLong { .. })
}

#[test]
fn part_length_boundaries() {
    let a1023 = "a".repeat(1023);
    let a1024 = "a".repeat(1024);
    // Localpart.
    assert_eq!(ok(&format!("{a1023}@x")).node().map(str::len), Some(1023));
    assert!(too_long(&err(&format!("{a1024}@x")), JidPart::Localpart));
    let two_byte = format!("{}a", "\u{E9}".repeat(511));
    assert_eq!(
        ok(&format!("{two_byte}@x")).node().map(str::len),
        Some(1023)
    );
    assert!(too_long(
        &err(&format!("{two_byte}a@x")),
        JidPart::Localpart
    ));
    // Measured after enforcement: 1023 fullwidth letters (3069 octets) map to 1023 ASCII.
    let wide = "\u{FF21}".repeat(1023);
    assert_eq!(ok(&format!("{wide}@x")).node(), Some(a1023.as_str()));
    assert!(too_long(
        &err(&format!("{wide}\u{FF21}@x")),
        JidPart::Localpart
    ));
    // Domainpart: 16 labels of 63 octets and 15 dots = 1023 octets.
    let label = "d".repeat(63);
    let domain = vec![label.as_str(); 16].join(".");
    assert_eq!(domain.len(), 1023);
    assert_eq!(ok(&domain).domain().len(), 1023);
    assert_eq!(ok(&format!("{domain}.")).domain().len(), 1023);
    assert_eq!(
        err(&format!("a{domain}")).kind,
        JidErrorKind::BadLabel(LabelError::TooLong)
    );
    assert!(too_long(&err(&format!("{domain}.a")), JidPart::Domainpart));
    // Resourcepart.
    assert_eq!(
        ok(&format!("x/{a1023}")).resource().map(str::len),
        Some(1023)
    );
    assert!(too_long(&err(&format!("x/{a1024}")), JidPart::Resourcepart));
    // All three at their maximum at once.
    let max = ok(&format!("{a1023}@{domain}/{a1023}"));
    assert_eq!(max.as_str().len(), 1023 * 3 + 2);
    assert_eq!(max.to_bare().as_str().len(), 1023 * 2 + 1);
    // Huge inputs are rejected before any Unicode work.
    assert!(too_long(
        &err(&"\u{E9}".repeat(1 << 20)),
        JidPart::Domainpart
    ));
}

#[test]
fn types_and_conversions() {
    let full = FullJid::new("Juliet@Example.com/Balcony").unwrap();
    assert_eq!(full.resource(), "Balcony");
    let bare = full.to_bare();
    assert_eq!(bare.as_str(), "juliet@example.com");
    assert_eq!(bare.resource(), None);
    assert_eq!(BareJid::from(full.clone()), bare);
    assert_eq!(
        bare.with_resource("orchard").unwrap().as_str(),
        "juliet@example.com/orchard"
    );
    assert_eq!(
        bare.with_resource("").unwrap_err().kind,
        JidErrorKind::Empty
    );

    let jid: Jid = full.clone().into();
    assert_eq!(jid, full);
    assert_eq!(full, jid);
    assert!(jid.is_full() && !jid.is_bare());
    assert_eq!(FullJid::try_from(jid.clone()).unwrap(), full);
    assert_eq!(
        BareJid::try_from(jid.clone()).unwrap_err().kind,
        JidErrorKind::UnexpectedResource
    );
    let jb: Jid = bare.clone().into();
    assert_eq!(jb, bare);
    assert!(jb.is_bare());
    assert_eq!(
        FullJid::try_from(jb.clone()).unwrap_err().kind,
        JidErrorKind::MissingResource
    );
    assert_eq!(jid.to_bare(), jb);
    assert_eq!(jid.to_bare().as_str(), jb.as_str());

    assert_eq!(
        BareJid::new("a@b/c").unwrap_err().kind,
        JidErrorKind::UnexpectedResource
    );
    assert_eq!(
        FullJid::new("a@b").unwrap_err().kind,
        JidErrorKind::MissingResource
    );
    assert_eq!("a@b".parse::<BareJid>().unwrap().node(), Some("a"));
    assert_eq!("b/c".parse::<FullJid>().unwrap().node(), None);

    assert_eq!(
        BareJid::from_parts(Some("Juliet"), "Example.com")
            .unwrap()
            .as_str(),
        "juliet@example.com"
    );
    assert_eq!(
        BareJid::from_parts(None, "example.com").unwrap().node(),
        None
    );
    assert_eq!(
        BareJid::from_parts(Some("a@b"), "c").unwrap_err().kind,
        JidErrorKind::Forbidden('@')
    );
    assert_eq!(
        BareJid::from_parts(Some("a"), "c/d").unwrap_err().part,
        JidPart::Domainpart
    );
    let f = FullJid::from_parts(Some("a"), "b", "c/d@e").unwrap();
    assert_eq!(
        (f.node(), f.domain(), f.resource()),
        (Some("a"), "b", "c/d@e")
    );
    assert_eq!(f, Jid::new("a@b/c/d@e").unwrap());
}

#[test]
fn eq_ord_hash_use_the_enforced_form() {
    use std::collections::{BTreeSet, HashSet};
    let a = ok("Juliet@Example.COM/balcony");
    let b = ok("juliet@example.com./balcony");
    assert_eq!(a, b);
    assert_ne!(a, ok("juliet@example.com/Balcony"));
    let hs: HashSet<Jid> = [a.clone(), b.clone()].into_iter().collect();
    assert_eq!(hs.len(), 1);
    assert!(hs.contains("juliet@example.com/balcony"));
    let bs: BTreeSet<Jid> = ["b@x", "A@x", "c@x", "a@x"].iter().map(|s| ok(s)).collect();
    let order: Vec<&str> = bs.iter().map(Jid::as_str).collect();
    assert_eq!(order, ["a@x", "b@x", "c@x"]);
    assert_eq!(format!("{a:?}"), "Jid(\"juliet@example.com/balcony\")");
}

#[test]
fn errors_display_part_and_reason() {
    let cases = [
        ("@x", "empty localpart"),
        ("a@x/", "empty resourcepart"),
        ("a\u{7}@x", "forbidden code point U+0007 in localpart"),
        ("a@256.1.1.1", "invalid IP address literal in domainpart"),
        (
            "a@-x",
            "invalid DNS label in domainpart: label starts or ends with a hyphen",
        ),
        ("\u{5D0}1a@x", "localpart violates the Bidi Rule"),
    ];
    for (input, text) in cases {
        assert_eq!(err(input).to_string(), text, "{input:?}");
    }
    let long = err(&format!("x/{}", "r".repeat(2000)));
    assert_eq!(
        long.to_string(),
        "resourcepart is 2000 octets long, more than 1023"
    );
}

#[test]
fn lenient_mode_maps_legacy_input() {
    let cases = [
        ("henry\u{2163}@example.com", "henryiv@example.com"),
        ("\u{FB01}le@example.com/\u{FB01}", "file@example.com/fi"),
        ("a\u{AD}b@example.com/r\u{200B}s", "ab@example.com/rs"),
        ("Juliet@Example.COM/balcony", "juliet@example.com/balcony"),
    ];
    for (input, expected) in cases {
        let j = Jid::new_lenient(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(j.as_str(), expected);
        // Always strictly valid: it round-trips through the strict parser.
        assert_eq!(Jid::new(j.as_str()).unwrap(), j);
    }
    // Still invalid: the strict error comes back.
    assert_eq!(
        Jid::new_lenient("a b@example.com").unwrap_err(),
        err("a b@example.com")
    );
    assert_eq!(
        Jid::new_lenient("a@b@c").unwrap_err().part,
        JidPart::Domainpart
    );
}

/// Contextual rules that look at the whole string must not make many contextual code points
/// quadratic; and their verdicts: Arabic-Indic digits alone are fine, mixed with extended
/// ones they are not; a katakana middle dot needs a Japanese script character.
#[test]
fn contextual_rules_whole_string() {
    let digits = "\u{661}".repeat(511);
    ok(&format!("x/{digits}"));
    assert_eq!(
        err(&format!("x/{digits}\u{6F1}")).kind,
        JidErrorKind::Context('\u{661}')
    );
    ok("\u{30A2}\u{30FB}\u{30A2}@example.com");
    assert_eq!(
        err("a\u{30FB}b@example.com").kind,
        JidErrorKind::Context('\u{30FB}')
    );
    let dots = "\u{30FB}".repeat(300);
    ok(&format!("\u{30A2}{dots}@example.com"));
}

#[test]
fn domain_mapping_edge_cases() {
    // Found by the fuzzer: `xn--bce` is the Cherokee capital U+13EB, PVALID in IDNA2008, whose
    // lowercase U+ABBB is DISALLOWED; PVALID code points must not be lowercased.
    let cherokee = ok("xn--bce");
    assert_eq!(cherokee.domain(), "\u{13EB}");
    assert_eq!(ok(cherokee.as_str()), cherokee);
    assert_eq!(
        err("\u{ABBB}.example").kind,
        JidErrorKind::Forbidden('\u{ABBB}')
    );
    // Other capitals are lowercased per code point (no final-sigma context in domains).
    assert_eq!(
        ok("\u{3A3}\u{3A3}.example").domain(),
        "\u{3C3}\u{3C3}.example"
    );
    // Mapping to ASCII puts the name under the ASCII rules, so re-parsing agrees.
    assert_eq!(
        ok("\u{4F8B}\u{3002}\u{FF45}\u{FF58}").domain(),
        "\u{4F8B}.ex"
    );
    assert_eq!(ok("\u{FF25}x\u{FF0E}com").domain(), "ex.com");
    assert_eq!(ok("\u{FF11}27.0.0.1").domain(), "127.0.0.1");
    assert_eq!(err("\u{FF19}99.1.1.1").kind, JidErrorKind::BadIpLiteral);
    assert_eq!(err("\u{4F8B}.123").kind, JidErrorKind::BadIpLiteral);
    assert_eq!(
        err("ex\u{FF0E}\u{FF0E}").kind,
        JidErrorKind::BadLabel(LabelError::Empty)
    );
    assert_eq!(ok("ex\u{FF0E}").domain(), "ex");
    assert_eq!(
        ok("\u{FF58}\u{FF4E}--bcher-kva.example").domain(),
        "b\u{FC}cher.example"
    );
}

/// RFC 7622 §3.2 with RFC 5952 §4: every spelling of one IPv6 address is one JID, printed in
/// the canonical text form (lowercase hex, longest zero run compressed, no leading zeros).
#[test]
fn ipv6_literals_have_one_canonical_form() {
    let spellings = [
        "juliet@[2001:DB8::1]",
        "juliet@[2001:db8::1]",
        "juliet@[2001:0DB8:0000:0000:0000:0000:0000:0001]",
        "juliet@[2001:db8:0::0:1]",
    ];
    let jids: Vec<Jid> = spellings.iter().map(|s| ok(s)).collect();
    for (s, j) in spellings.iter().zip(&jids) {
        assert_eq!(j.to_string(), "juliet@[2001:db8::1]", "{s}");
        assert_eq!(j, &jids[0], "{s}");
    }
    // RFC 5952 §4.2.2: a single zero field is not compressed; §4.2.3: the first of two equal
    // longest runs is.
    assert_eq!(
        ok("[2001:db8:0:1:1:1:1:1]").domain(),
        "[2001:db8:0:1:1:1:1:1]"
    );
    assert_eq!(ok("[2001:0:0:1:0:0:0:1]").domain(), "[2001:0:0:1::1]");
    assert_eq!(ok("[2001:db8:0:0:1:0:0:1]").domain(), "[2001:db8::1:0:0:1]");
    // A full JID keeps its resource untouched around the literal.
    assert_eq!(
        ok("Juliet@[2001:DB8::A]/Balcony").to_string(),
        "juliet@[2001:db8::a]/Balcony"
    );
}

#[test]
fn domains_in_a_label_form_for_dns_and_tls() {
    use std::borrow::Cow;
    // RFC 3492 §7.1 style round trips: the enforced form holds U-labels, the A-label form
    // encodes each one back, ASCII labels untouched.
    let jid = BareJid::new("juliet@M\u{DC}nchen.example").unwrap();
    assert_eq!(jid.domain(), "m\u{FC}nchen.example");
    assert_eq!(jid.domain_a_labels(), "xn--mnchen-3ya.example");
    let jid = BareJid::new("xn--bcher-kva.xn--mnchen-3ya.example").unwrap();
    assert_eq!(
        jid.domain_a_labels(),
        "xn--bcher-kva.xn--mnchen-3ya.example"
    );
    // Han labels (RFC 3492 §7.1 (A), Chinese simplified).
    let jid = BareJid::new(
        "\u{4ED6}\u{4EEC}\u{4E3A}\u{4EC0}\u{4E48}\u{4E0D}\u{8BF4}\u{4E2D}\u{6587}.example",
    )
    .unwrap();
    assert_eq!(
        jid.domain_a_labels(),
        "xn--ihqwcrb4cv8a8dqg056pqjye.example"
    );
    // ASCII domains and IP literals are borrowed as they are.
    let jid = BareJid::new("example.com").unwrap();
    assert!(matches!(
        jid.domain_a_labels(),
        Cow::Borrowed("example.com")
    ));
    let jid = BareJid::new("[::1]").unwrap();
    assert_eq!(jid.domain_a_labels(), "[::1]");
}
