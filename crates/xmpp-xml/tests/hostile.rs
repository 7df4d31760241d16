//! The hostile-input suite (issue 3): each case asserts its exact RFC 6120 stream error
//! condition and that every element the peer completed before the attack was delivered.
#![allow(clippy::panic, clippy::unwrap_used)]

use std::fmt::Write as _;

use xmpp_xml::{Event, Limits, StreamErrorCondition as C, StreamParser};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
const BEFORE: &str = "<message id='before'><body>still delivered</body></message>";

/// Feeds `input` in `chunk`-byte pieces, pulling events after each, until the first error.
/// The same input on a fresh parser with the same limits in envelope mode must fail with the
/// same condition after delivering the same stanzas (issue 17: the hostile suite runs against
/// the envelope path too).
fn run_chunked(parser: &mut StreamParser, input: &[u8], chunk: usize) -> (Vec<Event>, C) {
    let mut twin = StreamParser::with_limits(parser.limits().clone());
    twin.set_envelopes(true);
    let (events, condition) = run_one(parser, input, chunk);
    let (envelopes, envelope_condition) = run_one(&mut twin, input, chunk);
    assert_eq!(condition, envelope_condition, "envelope path disagrees");
    let materialized: Vec<Event> = envelopes
        .into_iter()
        .map(|e| match e {
            Event::Stanza(env) => Event::Element(env.element().unwrap()),
            other => other,
        })
        .collect();
    assert_eq!(
        events, materialized,
        "envelope path delivered other stanzas"
    );
    (events, condition)
}

fn run_one(parser: &mut StreamParser, input: &[u8], chunk: usize) -> (Vec<Event>, C) {
    let mut events = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        parser.feed(piece);
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(error) => {
                    // Sticky: asking again gives the same error.
                    assert_eq!(parser.next_event(), Err(error.clone()));
                    return (events, error.condition());
                }
            }
        }
    }
    panic!("no error after all input; events: {events:?}");
}

fn run(input: &[u8]) -> (Vec<Event>, C) {
    run_chunked(&mut StreamParser::new(), input, input.len())
}

/// The attack comes after the header and a complete stanza, in the same read.
fn after_stanza(attack: &str) -> C {
    let input = format!("{HEADER}{BEFORE}{attack}");
    let (events, condition) = run(input.as_bytes());
    assert_delivered(&events);
    // Also one byte at a time: same condition, same delivery.
    let (events, bytewise) = run_chunked(&mut StreamParser::new(), input.as_bytes(), 1);
    assert_delivered(&events);
    assert_eq!(condition, bytewise, "chunking changed the condition");
    condition
}

fn assert_delivered(events: &[Event]) {
    assert!(
        matches!(events.first(), Some(Event::StreamStart(_))),
        "header not delivered: {events:?}"
    );
    let delivered = events.iter().any(|e| {
        matches!(e, Event::Element(m) if m.attr("id") == Some("before")
            && m.get_child("body", "jabber:client").map(minidom::Element::text)
                == Some("still delivered".into()))
    });
    assert!(delivered, "earlier stanza lost: {events:?}");
}

fn header_condition(input: &str) -> C {
    let (events, condition) = run(input.as_bytes());
    assert!(events.is_empty(), "{events:?}");
    condition
}

#[test]
fn billion_laughs_via_dtd() {
    let dtd = "<!DOCTYPE lolz [<!ENTITY lol \"lol\">\
        <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
        <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>";
    let input = format!("<?xml version='1.0'?>{dtd}{}&lol3;", &HEADER[21..]);
    assert_eq!(header_condition(&input), C::RestrictedXml);
    assert_eq!(after_stanza(dtd), C::RestrictedXml);
}

#[test]
fn external_entity() {
    let dtd = "<!DOCTYPE stream [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>";
    let input = format!("<?xml version='1.0'?>{dtd}{}", &HEADER[21..]);
    assert_eq!(header_condition(&input), C::RestrictedXml);
    assert_eq!(
        after_stanza("<message><body>&xxe;</body></message>"),
        C::RestrictedXml
    );
}

#[test]
fn comment() {
    assert_eq!(after_stanza("<!-- sneaky -->"), C::RestrictedXml);
    assert_eq!(
        after_stanza("<message><!-- inside --></message>"),
        C::RestrictedXml
    );
    assert_eq!(
        header_condition(&format!("<!-- first -->{HEADER}")),
        C::RestrictedXml
    );
}

#[test]
fn processing_instruction() {
    assert_eq!(after_stanza("<?php echo 1; ?>"), C::RestrictedXml);
    assert_eq!(
        after_stanza("<message><?target data?></message>"),
        C::RestrictedXml
    );
}

#[test]
fn undeclared_entity() {
    assert_eq!(
        after_stanza("<message><body>&nbsp;</body></message>"),
        C::RestrictedXml
    );
    assert_eq!(after_stanza("<message to='&copy;'/>"), C::RestrictedXml);
}

#[test]
fn predefined_entities_and_character_references_are_fine() {
    let mut parser = StreamParser::new();
    parser.feed(HEADER.as_bytes());
    parser.feed(
        b"<message a='&quot;&apos;&#x41;'><body>&lt;&gt;&amp;&#65;&#x1F600;</body></message>",
    );
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    let Ok(Some(Event::Element(m))) = parser.next_event() else {
        panic!()
    };
    assert_eq!(m.attr("a"), Some("\"'A"));
    assert_eq!(
        m.get_child("body", "jabber:client").unwrap().text(),
        "<>&A\u{1F600}"
    );
}

#[test]
fn surrogate_character_reference() {
    assert_eq!(
        after_stanza("<message><body>&#xD800;</body></message>"),
        C::NotWellFormed
    );
    assert_eq!(after_stanza("<message a='&#55296;'/>"), C::NotWellFormed);
}

#[test]
fn nul_character_reference() {
    assert_eq!(
        after_stanza("<message><body>&#0;</body></message>"),
        C::NotWellFormed
    );
    assert_eq!(after_stanza("<message a='&#x0;'/>"), C::NotWellFormed);
}

fn after_stanza_bytes(attack: &[u8]) -> C {
    let mut input = format!("{HEADER}{BEFORE}").into_bytes();
    input.extend_from_slice(attack);
    let (events, condition) = run(&input);
    assert_delivered(&events);
    let (events, bytewise) = run_chunked(&mut StreamParser::new(), &input, 1);
    assert_delivered(&events);
    assert_eq!(condition, bytewise);
    condition
}

#[test]
fn invalid_utf8_in_text() {
    assert_eq!(
        after_stanza_bytes(b"<message><body>caf\xC3</body></message>"),
        C::NotWellFormed
    );
    assert_eq!(
        after_stanza_bytes(b"<message><body>\xED\xA0\x80</body></message>"),
        C::NotWellFormed
    );
    assert_eq!(
        after_stanza_bytes(b"<message><body>\xFF</body></message>"),
        C::NotWellFormed
    );
}

#[test]
fn invalid_utf8_in_names() {
    assert_eq!(after_stanza_bytes(b"<mess\xC0\xAFage/>"), C::NotWellFormed);
    assert_eq!(
        after_stanza_bytes(b"<message \xFEa='1'/>"),
        C::NotWellFormed
    );
}

#[test]
fn invalid_utf8_in_attributes() {
    assert_eq!(
        after_stanza_bytes(b"<message to='juliet\x80@example.com'/>"),
        C::NotWellFormed
    );
}

#[test]
fn deep_nesting_10000() {
    let attack = "<a>".repeat(10_000);
    assert_eq!(after_stanza(&attack), C::PolicyViolation);
}

#[test]
fn attributes_100000() {
    let mut attack = String::from("<message");
    for i in 0..100_000 {
        write!(attack, " a{i}='x'").unwrap();
    }
    attack.push_str("/>");
    assert_eq!(after_stanza(&attack), C::PolicyViolation);
}

#[test]
fn duplicate_attributes() {
    assert_eq!(after_stanza("<message id='1' id='2'/>"), C::NotWellFormed);
    // Distinct prefixes bound to one namespace name the same attribute.
    assert_eq!(
        after_stanza("<message xmlns:a='urn:x' xmlns:b='urn:x' a:k='1' b:k='2'/>"),
        C::NotWellFormed
    );
}

#[test]
fn unbound_prefix() {
    assert_eq!(after_stanza("<foo:message/>"), C::NotWellFormed);
    assert_eq!(after_stanza("<message foo:bar='1'/>"), C::NotWellFormed);
    // A prefix goes out of scope with its element.
    assert_eq!(
        after_stanza("<message><x xmlns:p='urn:p'/><p:y/></message>"),
        C::NotWellFormed
    );
}

#[test]
fn xmlns_xml_rebinding() {
    assert_eq!(
        after_stanza("<message xmlns:xml='urn:not-xml'/>"),
        C::NotWellFormed
    );
    assert_eq!(
        after_stanza("<message xmlns:x='http://www.w3.org/XML/1998/namespace'/>"),
        C::NotWellFormed
    );
    assert_eq!(
        after_stanza("<message xmlns:xmlns='urn:x'/>"),
        C::NotWellFormed
    );
}

#[test]
fn stanza_over_the_size_bound() {
    let body = "a".repeat(300 * 1024);
    assert_eq!(
        after_stanza(&format!("<message><body>{body}</body></message>")),
        C::PolicyViolation
    );
    // Exactly at a small configured bound passes, one byte over fails.
    // (The header counts against the same bound, so the bound is larger than it.)
    let filler = "0123456789".repeat(30);
    let stanza = format!("<message><body>{filler}</body></message>");
    let mut limits = Limits::default();
    limits.max_stanza_bytes = stanza.len();
    let mut ok = StreamParser::with_limits(limits.clone());
    ok.feed(format!("{HEADER}{stanza}").as_bytes());
    assert!(matches!(ok.next_event(), Ok(Some(Event::StreamStart(_)))));
    assert!(matches!(ok.next_event(), Ok(Some(Event::Element(_)))));
    let over = format!("<message><body>{filler}!</body></message>");
    let mut parser = StreamParser::with_limits(limits);
    let (_, condition) = run_chunked(&mut parser, format!("{HEADER}{over}").as_bytes(), 7);
    assert_eq!(condition, C::PolicyViolation);
}

#[test]
fn single_10_mb_text_node() {
    let mut parser = StreamParser::new();
    let mut input = format!("{HEADER}{BEFORE}<message><body>").into_bytes();
    input.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    let chunk = 64 * 1024;
    let mut fed = 0;
    let mut events = Vec::new();
    let condition = 'outer: {
        for piece in input.chunks(chunk) {
            parser.feed(piece);
            fed += piece.len();
            // Bounded memory: never more than the stanza bound plus one chunk held.
            assert!(parser.buffered_len() <= Limits::default().max_stanza_bytes + chunk);
            loop {
                match parser.next_event() {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => break,
                    Err(e) => break 'outer e.condition(),
                }
            }
        }
        panic!("10 MB text node accepted");
    };
    assert_eq!(condition, C::PolicyViolation);
    assert!(fed < 1024 * 1024, "error came late, after {fed} bytes");
    assert_delivered(&events);
}

#[test]
fn garbage_after_stream_end() {
    let condition = after_stanza("</stream:stream>garbage");
    assert_eq!(condition, C::NotWellFormed);
    let (events, condition) = run(format!("{HEADER}{BEFORE}</stream:stream>\n<x/>").as_bytes());
    assert_delivered(&events);
    assert_eq!(events.last(), Some(&Event::StreamEnd));
    assert_eq!(condition, C::NotWellFormed);
}

#[test]
fn stream_header_with_the_wrong_namespace() {
    assert_eq!(
        header_condition(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://example.com/streams'>"
        ),
        C::InvalidNamespace
    );
    assert_eq!(
        header_condition("<stream xmlns='jabber:client'>"),
        C::InvalidNamespace
    );
    assert_eq!(
        header_condition("<html xmlns='http://www.w3.org/1999/xhtml'>"),
        C::InvalidNamespace
    );
    // The content namespace must differ from the stream namespace (RFC 6120 §4.8.2).
    assert_eq!(
        header_condition(
            "<stream:stream xmlns='http://etherx.jabber.org/streams' \
             xmlns:stream='http://etherx.jabber.org/streams'>"
        ),
        C::InvalidNamespace
    );
}

#[test]
fn stream_header_with_the_wrong_element_name() {
    assert_eq!(
        header_condition("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"),
        C::BadFormat
    );
}

#[test]
fn iso_8859_1_encoding_declaration() {
    let input = format!(
        "<?xml version='1.0' encoding='ISO-8859-1'?>{}",
        &HEADER[21..]
    );
    assert_eq!(header_condition(&input), C::UnsupportedEncoding);
    let utf8 = format!("<?xml version='1.0' encoding='UTF-8'?>{}", &HEADER[21..]);
    let mut parser = StreamParser::new();
    parser.feed(utf8.as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
}

#[test]
fn unsupported_stream_version() {
    for version in ["2.0", "0.9", "one", "1"] {
        let input = format!(
            "<stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='{version}'>"
        );
        assert_eq!(header_condition(&input), C::UnsupportedVersion, "{version}");
    }
    let mut parser = StreamParser::new();
    parser.feed(
        HEADER
            .replace("version='1.0'>", "version='1.42'>")
            .as_bytes(),
    );
    let Ok(Some(Event::StreamStart(h))) = parser.next_event() else {
        panic!()
    };
    assert_eq!(h.version.map(|v| (v.major, v.minor)), Some((1, 42)));
}

#[test]
fn text_directly_inside_the_stream() {
    assert_eq!(after_stanza("hello"), C::BadFormat);
}

#[test]
fn mismatched_end_tag() {
    assert_eq!(after_stanza("<message></presence>"), C::NotWellFormed);
    assert_eq!(after_stanza("<message><body></message>"), C::NotWellFormed);
}

#[test]
fn too_many_namespace_declarations() {
    let mut attack = String::from("<message");
    for i in 0..1000 {
        write!(attack, " xmlns:p{i}='urn:{i}'").unwrap();
    }
    attack.push_str("/>");
    assert_eq!(after_stanza(&attack), C::PolicyViolation);
}

#[test]
fn overlong_names_and_values() {
    let name = "n".repeat(5000);
    assert_eq!(after_stanza(&format!("<{name}/>")), C::PolicyViolation);
    let value = "v".repeat(20_000);
    assert_eq!(
        after_stanza(&format!("<message id='{value}'/>")),
        C::PolicyViolation
    );
}

#[test]
fn duplicate_namespace_declarations() {
    assert_eq!(
        after_stanza("<message xmlns:p='urn:a' xmlns:p='urn:b'/>"),
        C::NotWellFormed
    );
    assert_eq!(
        after_stanza("<message xmlns='urn:a' xmlns='urn:b'/>"),
        C::NotWellFormed
    );
}

#[test]
fn many_namespace_declarations_stay_linear() {
    // With the bound lifted, 20 000 declarations on one element must still be cheap.
    let mut limits = Limits::default();
    limits.max_namespace_declarations = usize::MAX;
    limits.max_stanza_bytes = usize::MAX;
    let mut attack = String::from("<message");
    for i in 0..20_000 {
        write!(attack, " xmlns:p{i}='urn:{i}'").unwrap();
    }
    attack.push_str("/>");
    let mut parser = StreamParser::with_limits(limits);
    parser.feed(format!("{HEADER}{attack}").as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    assert!(matches!(parser.next_event(), Ok(Some(Event::Element(_)))));
}

#[test]
fn second_stream_header_inside_the_stream() {
    // Rejected at the end of its start tag, under any prefix bound to the stream namespace,
    // without waiting for the (never coming) end tag; the stanza before it is delivered.
    let nested = "<stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
    assert_eq!(after_stanza(nested), C::BadFormat);
    let other_prefix = "<s:stream xmlns:s='http://etherx.jabber.org/streams' version='1.0'>";
    assert_eq!(after_stanza(other_prefix), C::BadFormat);
    let default_ns = "<stream xmlns='http://etherx.jabber.org/streams'>";
    assert_eq!(after_stanza(default_ns), C::BadFormat);
    // Nothing after the start tag is needed: the error comes with its `>`, long before the
    // stanza size bound.
    let mut parser = StreamParser::new();
    let input = format!("{HEADER}{BEFORE}{nested}");
    let (events, condition) = run_chunked(&mut parser, input.as_bytes(), 7);
    assert_delivered(&events);
    assert_eq!(condition, C::BadFormat);
    // A `stream` element in another namespace, or a stream-namespace `stream` element deeper
    // in a stanza, is just an element.
    let mut parser = StreamParser::new();
    parser.feed(
        format!("{HEADER}<stream xmlns='urn:example'/><message><stream:stream/></message>")
            .as_bytes(),
    );
    let mut elements = 0;
    while let Some(event) = parser.next_event().unwrap() {
        if matches!(event, Event::Element(_)) {
            elements += 1;
        }
    }
    assert_eq!(elements, 2);
}

/// A tree of many tiny elements: 4 bytes of markup each but a few hundred bytes of heap, so
/// the byte bound alone would let one stanza hold tens of MiB. The element bound stops it.
#[test]
fn element_flood_under_the_byte_bound() {
    let attack = format!("<message>{}</message>", "<a/>".repeat(50_000));
    assert!(attack.len() < Limits::DEFAULT.max_stanza_bytes);
    assert_eq!(after_stanza(&attack), C::PolicyViolation);
}

/// The bound counts per depth-1 element, itself included, and starts again with the next.
#[test]
fn element_bound_is_exact_and_per_stanza() {
    let limits = Limits::DEFAULT;
    let children = limits.max_elements - 1;
    let full = format!("<iq type='result' id='r'>{}</iq>", "<a/>".repeat(children));
    let input = format!("{HEADER}{full}{full}");
    let mut parser = StreamParser::with_limits(limits.clone());
    parser.feed(input.as_bytes());
    let mut stanzas = 0;
    while let Some(event) = parser.next_event().unwrap() {
        if let Event::Element(e) = event {
            assert_eq!(e.children().count(), children);
            stanzas += 1;
        }
    }
    assert_eq!(
        stanzas, 2,
        "two stanzas at exactly the bound are both delivered"
    );
    let over = format!(
        "<iq type='result' id='r'>{}</iq>",
        "<a/>".repeat(children + 1)
    );
    assert_eq!(after_stanza(&over), C::PolicyViolation);
}
