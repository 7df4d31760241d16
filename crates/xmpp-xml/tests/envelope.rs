//! Stanza envelopes: the envelope path agrees with the element path, whatever the chunking,
//! and splicing the start tag gives what stamping the element gives.
#![allow(clippy::panic, clippy::unwrap_used)]

use minidom::Element;
use proptest::prelude::*;
use xmpp_xml::{
    ContentNamespace, Envelope, Event, Limits, NS_CLIENT, NS_COMPONENT_ACCEPT, NS_SERVER,
    SpliceError, Stamp, StanzaKind, StreamParser, stamp_element,
};

const STREAMS: &str = "http://etherx.jabber.org/streams";

fn header(default: &str, extra: &str) -> String {
    format!("<stream:stream xmlns='{default}' xmlns:stream='{STREAMS}'{extra} version='1.0'>")
}

/// Parses `input` split at `cuts`, in envelope mode or not: the events (whitespace dropped)
/// and the error condition, if any.
fn parse(input: &[u8], cuts: &[usize], envelopes: bool) -> (Vec<Event>, Option<String>) {
    let mut parser = StreamParser::new();
    parser.set_envelopes(envelopes);
    let mut events = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|c| *c < input.len()).collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.push(input.len());
    let mut start = 0;
    for end in bounds {
        parser.feed(&input[start..end]);
        start = end;
        loop {
            match parser.next_event() {
                Ok(Some(Event::Whitespace)) => {}
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e.condition().to_string())),
            }
        }
    }
    (events, None)
}

/// The envelope events, each replaced by its lazily built element.
fn materialize(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .map(|e| match e {
            Event::Stanza(env) => Event::Element(env.element().unwrap()),
            other => other.clone(),
        })
        .collect()
}

/// Every envelope's decoded header agrees with its element's attributes (unprefixed
/// `to`/`from`/`type`/`id`, and its own `xml:lang`).
fn headers_agree(events: &[Event]) -> Result<(), TestCaseError> {
    use minidom::rxml::Namespace;
    for e in events {
        if let Event::Stanza(env) = e {
            let el = env.element().unwrap();
            prop_assert_eq!(env.to(), el.attr("to"));
            prop_assert_eq!(env.from(), el.attr("from"));
            prop_assert_eq!(env.stanza_type(), el.attr("type"));
            prop_assert_eq!(env.id(), el.attr("id"));
            let lang = el.attrs().get(&Namespace::XML, "lang").map(String::as_str);
            prop_assert_eq!(env.own_lang(), lang);
        }
    }
    Ok(())
}

fn envelopes(input: &str) -> Vec<Envelope> {
    let (events, error) = parse(input.as_bytes(), &[], true);
    assert_eq!(error, None);
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Stanza(env) => Some(env),
            _ => None,
        })
        .collect()
}

fn next_stanza(parser: &mut StreamParser) -> Envelope {
    match parser.next_event() {
        Ok(Some(Event::Stanza(env))) => env,
        other => panic!("no envelope: {other:?}"),
    }
}

fn one(input: &str) -> Envelope {
    let mut all = envelopes(input);
    assert_eq!(all.len(), 1, "{input}");
    all.remove(0)
}

/// Parses one stanza's bytes on a stream whose default namespace is `ns` (element path).
fn parse_in(ns: &str, stanza: &[u8]) -> Element {
    let mut input = header(ns, "").into_bytes();
    input.extend_from_slice(stanza);
    let (events, error) = parse(&input, &[], false);
    assert_eq!(error, None, "{}", String::from_utf8_lossy(stanza));
    match events.as_slice() {
        [Event::StreamStart(_), Event::Element(e)] => e.clone(),
        other => panic!("{other:?}"),
    }
}

const OPEN: &str = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.net' \
                    version='1.0' xml:lang='en'/>";

/// WebSocket messages (RFC 7395) through a framed parser, in envelope mode or not: the
/// events of each message and the error condition, if any (parsing stops there).
fn parse_framed(messages: &[&str], envelopes: bool) -> (Vec<Event>, Option<String>) {
    let mut parser = StreamParser::framed(Limits::default(), ContentNamespace::Client);
    parser.set_envelopes(envelopes);
    let mut events = Vec::new();
    for message in messages {
        parser.feed_message(message.as_bytes());
        loop {
            match parser.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e.condition().to_string())),
            }
        }
    }
    (events, None)
}

/// A stanza spliced as a WebSocket message, parsed by a framed parser.
fn parse_as_message(stanza: &[u8]) -> Element {
    let text = String::from_utf8(stanza.to_vec()).unwrap();
    let (events, error) = parse_framed(&[OPEN, &text], false);
    assert_eq!(error, None, "{text}");
    match events.as_slice() {
        [Event::StreamStart(_), Event::Element(e)] => e.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn websocket_messages_come_as_envelopes() {
    let chat = "<message xmlns='jabber:client' to='juliet@example.com' type='chat' id='m1'>\
                <body>hi</body></message>";
    let lang = "<presence xmlns='jabber:client' xml:lang='fr'/>";
    let (events, error) = parse_framed(
        &[
            OPEN,
            chat,
            "<r xmlns='urn:xmpp:sm:3'/>",
            lang,
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        ],
        true,
    );
    assert_eq!(error, None);
    let [
        Event::StreamStart(header),
        Event::Stanza(message),
        Event::Element(nonza),
        Event::Stanza(presence),
        Event::StreamEnd,
    ] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(header.lang.as_deref(), Some("en"));
    assert_eq!(message.bytes(), chat.as_bytes());
    assert_eq!(
        (
            message.kind(),
            message.to(),
            message.stanza_type(),
            message.id(),
            message.lang()
        ),
        (
            StanzaKind::Message,
            Some("juliet@example.com"),
            Some("chat"),
            Some("m1"),
            Some("en")
        )
    );
    assert_eq!(nonza.name(), "r");
    assert_eq!(presence.lang(), Some("fr"));
    // The element each envelope builds is the element path's.
    let (elements, _) = parse_framed(&[OPEN, chat, lang], false);
    let Event::Element(first) = &elements[1] else {
        panic!("{elements:?}")
    };
    assert_eq!(message.element().unwrap(), *first);
    // Spliced for another WebSocket client: the message declares its namespace.
    let stamp = Stamp {
        from: Some("romeo@example.net/orchard"),
        standalone: true,
        ..Stamp::new(NS_CLIENT)
    };
    let out = message.splice(&stamp).unwrap();
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "<message to='juliet@example.com' type='chat' id='m1' xmlns='jabber:client' \
         from='romeo@example.net/orchard'><body>hi</body></message>"
    );
    let mut expected = message.element().unwrap();
    stamp_element(&mut expected, &stamp);
    assert_eq!(parse_as_message(&out), expected);
    // Spliced for a TCP stream: the stream supplies the namespace.
    let tcp = message.splice(&Stamp::new(NS_CLIENT)).unwrap();
    assert!(tcp.starts_with(b"<message to="));
}

#[test]
fn a_websocket_message_with_more_than_its_stanza_delivers_nothing() {
    for envelopes in [false, true] {
        let (events, error) = parse_framed(
            &[
                OPEN,
                "<message xmlns='jabber:client'><body>x</body></message><message xmlns='jabber:client'/>",
            ],
            envelopes,
        );
        assert_eq!(error.as_deref(), Some("not-well-formed"));
        assert_eq!(events.len(), 1, "{events:?}");
    }
}

#[test]
fn header_is_decoded_and_bytes_are_exact() {
    let stanza = "<message  to = \"juliet@example.com\" from='romeo&#x40;example.net/a&amp;b' \
                  type='chat' id=\"m&apos;1\" xml:lang='en'><body>hi</body></message>";
    let input = format!(
        "{}{stanza} <presence/><iq type='get' id='1'/>",
        header(NS_CLIENT, "")
    );
    let all = envelopes(&input);
    assert_eq!(all.len(), 3);
    let m = &all[0];
    assert_eq!(m.kind(), StanzaKind::Message);
    assert_eq!(m.namespace(), NS_CLIENT);
    assert_eq!(m.to(), Some("juliet@example.com"));
    assert_eq!(m.from(), Some("romeo@example.net/a&b"));
    assert_eq!(m.stanza_type(), Some("chat"));
    assert_eq!(m.id(), Some("m'1"));
    assert_eq!(m.lang(), Some("en"));
    assert_eq!(m.bytes(), stanza.as_bytes());
    assert_eq!(
        &stanza[m.start_tag()],
        &stanza[..stanza.find("<body>").unwrap()]
    );
    assert_eq!(all[1].kind(), StanzaKind::Presence);
    assert_eq!(all[1].bytes(), b"<presence/>");
    assert_eq!(all[1].start_tag(), 0..11);
    assert_eq!(all[2].kind(), StanzaKind::Iq);
    assert_eq!(all[2].lang(), None);
}

#[test]
fn lang_is_inherited_from_the_stream_header() {
    let input = format!(
        "{}<message/><message xml:lang='fr'/>",
        header(NS_CLIENT, " xml:lang='de'")
    );
    let all = envelopes(&input);
    assert_eq!(all[0].lang(), Some("de"));
    assert_eq!(all[0].own_lang(), None);
    assert_eq!(all[1].lang(), Some("fr"));
}

#[test]
fn non_stanzas_and_foreign_namespaces_take_the_element_path() {
    let input = format!(
        "{}<stream:features/><message xmlns='urn:other'/><foo/><message/>",
        header(NS_CLIENT, "")
    );
    let (events, error) = parse(input.as_bytes(), &[], true);
    assert_eq!(error, None);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            Event::StreamStart(_) => "start",
            Event::Element(_) => "element",
            Event::Stanza(_) => "stanza",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["start", "element", "element", "element", "stanza"]);
}

#[test]
fn envelope_mode_is_off_by_default() {
    let input = format!("{}<message/>", header(NS_CLIENT, ""));
    let (events, _) = parse(input.as_bytes(), &[], false);
    assert!(matches!(events.last(), Some(Event::Element(_))));
}

#[test]
fn errors_inside_a_stanza_are_those_of_the_element_path() {
    let bad = [
        "<message><body>x</bod></message>",
        "<message><!-- c --></message>",
        "<message><x y='1' y='2'/></message>",
        "<message><q:x/></message>",
        "<message from='a' from='b'/>",
        "<message><a><b></a></b></message>",
        "<message>\u{1}</message>",
        "<message>&ent;</message>",
    ];
    for stanza in bad {
        let input = format!("{}{stanza}", header(NS_CLIENT, ""));
        let env = parse(input.as_bytes(), &[], true);
        let el = parse(input.as_bytes(), &[], false);
        assert!(el.1.is_some(), "{stanza}");
        assert_eq!(env.1, el.1, "{stanza}");
        assert_eq!(
            env.0.len(),
            1,
            "nothing released before the error: {stanza}"
        );
    }
}

#[test]
fn bounds_hold_on_the_envelope_path() {
    let mut limits = xmpp_xml::Limits::default();
    limits.max_stanza_bytes = 128;
    let mut parser = StreamParser::with_limits(limits);
    parser.set_envelopes(true);
    parser.feed(header(NS_CLIENT, "").as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    parser.feed(format!("<message><body>{}</body></message>", "x".repeat(100)).as_bytes());
    let error = parser.next_event().unwrap_err();
    assert_eq!(error.condition().to_string(), "policy-violation");
}

#[test]
fn from_is_found_by_resolved_name_not_spelling() {
    let input = format!(
        "{}<message foo:from='evil' xmlns:foo='urn:foo' from='a@b'/>",
        header(NS_CLIENT, "")
    );
    let env = one(&input);
    assert_eq!(env.from(), Some("a@b"));
    let stamp = Stamp {
        from: Some("x@y/z"),
        ..Stamp::new(NS_CLIENT)
    };
    let out = env.splice(&stamp).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<message foo:from='evil' xmlns:foo='urn:foo' from='x@y/z'/>"
    );
}

#[test]
fn prefixes_borrowed_from_the_header_are_declared_on_the_stanza() {
    let input = format!(
        "{}<message><p:x p:a='1'/></message>",
        header(NS_CLIENT, " xmlns:p='urn:p'")
    );
    let env = one(&input);
    let out = env.splice(&Stamp::new(NS_SERVER)).unwrap();
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "<message xmlns:p='urn:p'><p:x p:a='1'/></message>"
    );
    let mut expected = env.element().unwrap();
    stamp_element(&mut expected, &Stamp::new(NS_SERVER));
    assert_eq!(parse_in(NS_SERVER, &out), expected);
    assert!(expected.is("message", NS_SERVER));
}

#[test]
fn a_stanza_declaring_its_namespace_itself_is_mapped() {
    let input = format!(
        "{}<message xmlns='jabber:client' to='a@b'><body>hi</body></message>",
        header(NS_CLIENT, "")
    );
    let env = one(&input);
    let stamp = Stamp {
        from: Some("c@d"),
        lang: Some("en"),
        ..Stamp::new(NS_COMPONENT_ACCEPT)
    };
    let out = env.splice(&stamp).unwrap();
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "<message to='a@b' from='c@d' xml:lang='en'><body>hi</body></message>"
    );
    let mut expected = env.element().unwrap();
    stamp_element(&mut expected, &stamp);
    assert_eq!(parse_in(NS_COMPONENT_ACCEPT, &out), expected);
}

#[test]
fn explicit_rebinding_of_the_own_namespace_needs_the_element_path() {
    for (extra, stanza) in [
        (
            "",
            "<message><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'/></forwarded></message>",
        ),
        (" xmlns:c='jabber:client'", "<message><c:body/></message>"),
        ("", "<c:message xmlns:c='jabber:client'/>"),
    ] {
        let env = one(&format!("{}{stanza}", header(NS_CLIENT, extra)));
        assert_eq!(
            env.splice(&Stamp::new(NS_SERVER)),
            Err(SpliceError::NeedsElement),
            "{stanza}"
        );
        // Without a namespace change the bytes stay valid.
        let out = env.splice(&Stamp::new(NS_CLIENT)).unwrap();
        assert_eq!(parse_in(NS_CLIENT, &out), env.element().unwrap());
    }
}

#[test]
fn stamped_values_are_escaped_and_checked() {
    let env = one(&format!("{}<presence/>", header(NS_CLIENT, "")));
    let stamp = Stamp {
        to: Some("a'\"<&>\t\n\r b"),
        ..Stamp::new(NS_CLIENT)
    };
    let out = env.splice(&stamp).unwrap();
    assert_eq!(
        parse_in(NS_CLIENT, &out).attr("to"),
        Some("a'\"<&>\t\n\r b")
    );
    for bad in ["\u{1}", "a\u{1f}", "x\u{FFFE}", "\u{FFFF}y"] {
        let bad = Stamp {
            to: Some(bad),
            ..Stamp::new(NS_CLIENT)
        };
        assert_eq!(env.splice(&bad), Err(SpliceError::InvalidValue));
    }
    // Non-ASCII is copied as is (U+FFFD and U+EFBF's neighbours included), DEL too.
    let fine = "j\u{fc}liet\u{FFFD}\u{10FFFF}\u{7f}\u{EFBF}&";
    let stamp = Stamp {
        to: Some(fine),
        ..Stamp::new(NS_CLIENT)
    };
    let out = env.splice(&stamp).unwrap();
    assert_eq!(parse_in(NS_CLIENT, &out).attr("to"), Some(fine));
}

// ----- properties -----

const VALUES: &[&str] = &[
    "a@b",
    "r&#xE9;my@example.com/x",
    "&apos;q&quot;&amp;&lt;&gt;",
    "a&#9;b&#10;c",
    "",
    "juliet@example.com",
];

fn attr() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "from", "to", "type", "id", "xml:lang", "p:from", "q:to", "p:lang", "p:id",
        ]),
        prop::sample::select(VALUES.to_vec()),
        prop::sample::select(vec![("=", "'"), (" = ", "\""), ("\n=\t", "'"), ("=", "\"")]),
        prop::sample::select(vec![" ", "\n", "  \t"]),
    )
        .prop_map(|(name, value, (eq, q), ws)| {
            let value = if q == "'" {
                value.replace('\'', "&apos;")
            } else {
                value.to_owned()
            };
            format!("{ws}{name}{eq}{q}{value}{q}")
        })
}

const CHILDREN: &[&str] = &[
    "<body>hi &amp; bye</body>",
    "<p:x p:from='1'/>",
    "<x xmlns='urn:x'><y a='b'/>text</x>",
    "<c:body/>",
    "<z xmlns='jabber:client'/>",
    "<q:y xmlns:q='urn:q' q:a='1'/>",
    "plain &#x3C; text",
    "<thread\n/>",
];

/// One stanza from attribute and child fragments (duplicates removed by name).
fn stanza() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["message", "presence", "iq"]),
        prop::collection::vec(attr(), 0..5),
        prop::sample::select(vec!["", " xmlns='jabber:client'", " xmlns='jabber:server'"]),
        prop::sample::select(vec!["", " xmlns:q='urn:q2'"]),
        prop::collection::vec(prop::sample::select(CHILDREN.to_vec()), 0..4),
        any::<bool>(),
    )
        .prop_map(|(name, attrs, own_ns, q, children, ws)| {
            let mut seen = Vec::new();
            let mut tag = format!("<{name}{own_ns}{q}");
            for a in attrs {
                let key = a
                    .trim_start()
                    .split(['=', ' ', '\n', '\t'])
                    .next()
                    .unwrap()
                    .to_owned();
                if key == "q:to" && q.is_empty() || seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                tag.push_str(&a);
            }
            if ws {
                tag.push('\n');
            }
            if children.is_empty() {
                format!("{tag}/>")
            } else {
                format!("{tag}>{}</{name}>", children.concat())
            }
        })
}

fn stream_of(stanzas: &[String], default: &str) -> String {
    format!(
        "{}{} <stream:features/></stream:stream>",
        header(
            default,
            " xmlns:p='urn:p' xmlns:c='jabber:client' xml:lang='en'"
        ),
        stanzas.join("\n")
    )
}

fn content_ns() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![NS_CLIENT, NS_SERVER, NS_COMPONENT_ACCEPT])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any split of the input gives the same envelopes, and the elements they build are the
    /// element path's.
    #[test]
    fn any_split_gives_the_same_envelopes(
        stanzas in prop::collection::vec(stanza(), 1..4),
        default in content_ns(),
        cuts in prop::collection::vec(0usize..2048, 0..8),
    ) {
        let input = stream_of(&stanzas, default);
        let whole = parse(input.as_bytes(), &[], true);
        let split = parse(input.as_bytes(), &cuts, true);
        let bytewise = parse(input.as_bytes(), &(1..input.len()).collect::<Vec<_>>(), true);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(&whole, &bytewise);
        let elements = parse(input.as_bytes(), &cuts, false);
        prop_assert_eq!(materialize(&whole.0), elements.0);
        prop_assert_eq!(whole.1, elements.1);
        headers_agree(&whole.0)?;
    }

    /// Parsing the spliced bytes gives the element stamping the parsed element gives.
    #[test]
    fn splice_equals_stamping_the_element(
        stanza in stanza(),
        default in content_ns(),
        target in content_ns(),
        from in prop::option::of(prop::sample::select(vec!["x@y/r", "a'b\"<&>", "s\u{e9}rvice"])),
        to in prop::option::of(prop::sample::select(vec!["t@u", "t&u"])),
        lang in prop::option::of(prop::sample::select(vec!["de", "x-'"])),
        standalone in any::<bool>(),
    ) {
        let input = stream_of(std::slice::from_ref(&stanza), default);
        let (events, error) = parse(input.as_bytes(), &[], false);
        prop_assert_eq!(error, None);
        let Some(Event::Element(mut expected)) = events.get(1).cloned() else {
            panic!("{events:?}")
        };
        let env = one(&input);
        let stamp = Stamp {
            namespace: target,
            from,
            to,
            lang,
            standalone,
        };
        match env.splice(&stamp) {
            Ok(out) => {
                stamp_element(&mut expected, &stamp);
                if standalone {
                    prop_assert_eq!(parse_as_message(&out), expected);
                } else {
                    prop_assert_eq!(parse_in(target, &out), expected);
                }
            }
            Err(SpliceError::NeedsElement) => {
                // Only where the bytes cannot express the mapping.
                prop_assert!(target != env.namespace());
                prop_assert!(stanza.contains("c:") || stanza.contains("<z xmlns='jabber:client'/>"));
            }
            Err(other) => panic!("{other}"),
        }
    }
}

#[test]
fn envelope_mode_can_start_after_the_header() {
    let mut parser = StreamParser::new();
    parser.feed(header(NS_SERVER, " xml:lang='de' xmlns:p='urn:p'").as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    parser.feed(b"<iq type='get' id='b'><p:q/></iq>");
    assert!(matches!(parser.next_event(), Ok(Some(Event::Element(_)))));
    parser.set_envelopes(true);
    parser.feed(b"<message><p:x/></message>");
    let env = next_stanza(&mut parser);
    assert_eq!(env.lang(), Some("de"));
    assert_eq!(env.namespace(), NS_SERVER);
    let element = env.element().unwrap();
    assert!(element.is("message", NS_SERVER));
    assert!(element.has_child("x", "urn:p"));
    assert!(!parser.has_unparsed_input());
}

#[test]
fn a_stream_restart_takes_the_new_header_context() {
    let mut parser = StreamParser::new();
    parser.set_envelopes(true);
    parser.feed(header(NS_CLIENT, " xml:lang='en'").as_bytes());
    parser.feed(b"<message/>");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    let first = next_stanza(&mut parser);
    assert_eq!(first.lang(), Some("en"));
    parser.reset();
    parser.feed(header(NS_SERVER, " xmlns:p='urn:p'").as_bytes());
    parser.feed(b"<presence><p:x/></presence>");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    let second = next_stanza(&mut parser);
    assert_eq!(second.lang(), None);
    assert_eq!(second.namespace(), NS_SERVER);
    assert!(second.element().unwrap().has_child("x", "urn:p"));
}

#[test]
fn elements_build_under_a_tight_declaration_bound() {
    let mut limits = xmpp_xml::Limits::default();
    limits.max_namespace_declarations = 3;
    let mut parser = StreamParser::with_limits(limits);
    parser.set_envelopes(true);
    parser.feed(header(NS_CLIENT, " xmlns:p='urn:p'").as_bytes());
    parser.feed(b"<message><p:x/></message>");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    let env = next_stanza(&mut parser);
    assert!(env.element().unwrap().has_child("x", "urn:p"));
}

#[test]
fn nothing_of_one_stanza_carries_over_to_the_next() {
    // The parser keeps its capture between stanzas: the second stanza has no `to`, `from`,
    // `type`, `id` or `xml:lang` of its own and borrows nothing.
    let first = "<message xmlns:x='urn:x' to='a@b' from='c@d/e' type='chat' id='1' \
                 xml:lang='fr'><x:y/></message>";
    let input = format!(
        "{}{first}<presence/>",
        header(NS_CLIENT, " xmlns:x='urn:x'")
    );
    let got = envelopes(&input);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].to(), Some("a@b"));
    assert_eq!(got[0].lang(), Some("fr"));
    let second = &got[1];
    assert_eq!(second.kind(), StanzaKind::Presence);
    assert_eq!(
        (
            second.to(),
            second.from(),
            second.stanza_type(),
            second.id(),
            second.lang()
        ),
        (None, None, None, None, None)
    );
    assert_eq!(second.bytes(), b"<presence/>");
    let stamp = Stamp {
        from: Some("c@d/e"),
        ..Stamp::new(NS_SERVER)
    };
    assert_eq!(
        second.splice(&stamp).unwrap(),
        b"<presence from='c@d/e'/>".to_vec()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// WebSocket messages: the envelope path gives what the element path gives (same
    /// stanzas, same error), and each envelope's header agrees with its element.
    #[test]
    fn websocket_envelopes_are_the_element_path(stanzas in prop::collection::vec(stanza(), 1..4)) {
        let mut messages = vec![OPEN.to_owned()];
        messages.extend(stanzas);
        let messages: Vec<&str> = messages.iter().map(String::as_str).collect();
        let (envelopes, error) = parse_framed(&messages, true);
        let (elements, element_error) = parse_framed(&messages, false);
        prop_assert_eq!(materialize(&envelopes), elements);
        prop_assert_eq!(error, element_error);
        headers_agree(&envelopes)?;
    }
}

/// Children of a stanza as the reader of [`Envelope::children`] must see them: namespaces
/// from the child, the stanza or the stream header, `xml:lang` with references, text with
/// references, line ends, CDATA sections, nested elements, `>` in values and text.
const READ_CHILDREN: &[&str] = &[
    "<show>away</show>",
    "<status xml:lang='cs'>hned jsem zp\u{11b}t</status>",
    "<status xml:lang=\"x&#x2D;y&apos;\">a &amp; b &lt;3 &#233;&#x1F600;</status>",
    "<status>line\r\nbreak\rhere</status>",
    "<status><![CDATA[<not> &amp; a tag]]> and\r\n<b>bold</b> text</status>",
    "<priority>\n -5 \t</priority>",
    "<priority/>",
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='a>b' ver='v\"/'/>",
    "<x xmlns='urn:x'><show>nested</show><y a='1'>t</y></x>",
    "<p:show>p-show</p:show>",
    "<c:status xml:lang='de'>c-status</c:status>",
    "<q:priority>1</q:priority>",
    "<r:show xmlns:r='jabber:client'>r</r:show>",
    "<show xmlns=''>none</show>",
    "<show xmlns='jabber:server'>s</show>",
    "<error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    "<delay xmlns='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'>Offline &gt; stored</delay>",
    "text &#60;between&#62; children",
    "<![CDATA[cdata between children]]>",
    "<empty\n\t/>",
    "<q xmlns='urn:a\r\tb\r\r\nc\t\r'/>",
    "<status xml:lang='x\r\ny\r&#13;z'>s</status>",
];

fn presence_with_children() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["presence", "c:presence", "message"]),
        prop::sample::select(vec!["", " xmlns='jabber:client'", " xmlns='urn:default'"]),
        prop::sample::select(vec!["", " xmlns:q='jabber:client'", " xmlns:q='urn:q'"]),
        prop::collection::vec(prop::sample::select(READ_CHILDREN.to_vec()), 0..6),
    )
        .prop_map(|(name, own_ns, q, children)| {
            let children: String = children.concat();
            if name == "c:presence" && own_ns.is_empty() && children.is_empty() {
                return format!("<{name}{q}/>");
            }
            format!("<{name}{own_ns}{q}>{children}</{name}>")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Reading the children from the bytes gives what the element's children say: the same
    /// elements in order, namespace, name, own `xml:lang` and text.
    #[test]
    fn children_read_from_the_bytes_are_the_elements_children(
        stanza in presence_with_children(),
        default in content_ns(),
    ) {
        use minidom::rxml::Namespace;
        let input = stream_of(std::slice::from_ref(&stanza), default);
        let (events, error) = parse(input.as_bytes(), &[], false);
        // An undeclared prefix (`q:` without its declaration) is not well-formed.
        prop_assume!(error.is_none());
        let Some(Event::Element(element)) = events.get(1).cloned() else {
            // Not a stanza in this stream's namespaces: no envelope either.
            return Ok(());
        };
        let Ok(Some(Event::Stanza(_))) = ({
            let mut p = StreamParser::new();
            p.set_envelopes(true);
            p.feed(input.as_bytes());
            let _ = p.next_event();
            p.next_event()
        }) else {
            return Ok(());
        };
        let env = one(&input);
        let read: Vec<(String, String, Option<String>, String)> = env
            .children()
            .map(|c| {
                let c = c.unwrap();
                (
                    c.namespace().to_owned(),
                    c.name().to_owned(),
                    c.lang().map(str::to_owned),
                    c.text().unwrap().into_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String, Option<String>, String)> = element
            .children()
            .map(|c| {
                (
                    c.ns(),
                    c.name().to_owned(),
                    c.attrs().get(&Namespace::XML, "lang").cloned(),
                    c.text(),
                )
            })
            .collect();
        prop_assert_eq!(read, expected, "{}", stanza);
    }
}

#[test]
fn children_of_an_empty_stanza_are_none() {
    let env = one(&stream_of(
        &["<presence type='unavailable'/>".to_owned()],
        NS_CLIENT,
    ));
    assert_eq!(env.children().count(), 0);
    let env = one(&stream_of(
        &["<presence>\n </presence>".to_owned()],
        NS_CLIENT,
    ));
    assert_eq!(env.children().count(), 0);
}

/// Carriage returns in attribute values and text, as the element path reads them (its parser
/// drops a `\r` in an attribute value unless another `\r` follows).
#[test]
fn children_read_carriage_returns_as_the_element_path() {
    use minidom::rxml::Namespace;
    for v in [
        "a\r\tb",
        "a\r\nb",
        "a\r\r\nb",
        "a\t\r\tb",
        "a\r",
        "a\r\r",
        "a\r&amp;b",
        "a\rb",
    ] {
        for text in [false, true] {
            let stanza = if text {
                format!("<presence><status>{v}</status></presence>")
            } else {
                format!("<presence><c xmlns='u' xml:lang='{v}'/></presence>")
            };
            let input = stream_of(&[stanza], NS_CLIENT);
            let (events, error) = parse(input.as_bytes(), &[], false);
            if error.is_some() {
                // Refused by the parser: no envelope either.
                continue;
            }
            let Some(Event::Element(el)) = events.get(1) else {
                panic!("{events:?}")
            };
            let c = el.children().next().unwrap();
            let env = one(&input);
            let child = env.children().next().unwrap().unwrap();
            if text {
                assert_eq!(child.text().unwrap(), c.text(), "{v:?}");
            } else {
                let lang = c.attrs().get(&Namespace::XML, "lang").map(String::as_str);
                assert_eq!(child.lang(), lang, "{v:?}");
            }
        }
    }
}
