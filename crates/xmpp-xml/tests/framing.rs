//! RFC 7395 framing: one standalone element per WebSocket message, `<open/>` and `<close/>`
//! for the stream header and end, and the framing errors with their exact conditions.

#![allow(clippy::unwrap_used, clippy::panic)]

use proptest::prelude::*;
use xmpp_xml::minidom::Element;
use xmpp_xml::{
    ContentNamespace, Event, Limits, NS_FRAMING, StreamErrorCondition, StreamHeader, StreamParser,
    StreamWriter,
};

fn parser() -> StreamParser {
    StreamParser::framed(Limits::default(), ContentNamespace::Client)
}

/// Every event of one message.
fn message(parser: &mut StreamParser, bytes: &str) -> Result<Vec<Event>, StreamErrorCondition> {
    parser.feed_message(bytes.as_bytes());
    let mut events = Vec::new();
    loop {
        match parser.next_event() {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return Ok(events),
            Err(error) => return Err(error.condition()),
        }
    }
}

const OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>";

#[test]
fn open_stanza_close_are_header_element_end() {
    let mut p = parser();
    let events = message(&mut p, OPEN).unwrap();
    let [Event::StreamStart(header)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(header.to.as_deref(), Some("example.com"));
    assert_eq!(header.content_namespace, Some(ContentNamespace::Client));
    let events = message(
        &mut p,
        "<message xmlns='jabber:client' to='a@example.com'><body>hi</body></message>\n",
    )
    .unwrap();
    let [Event::Element(message_el)] = &events[..] else {
        panic!("{events:?}")
    };
    assert!(message_el.is("message", "jabber:client"));
    let events = message(
        &mut p,
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://other.example/ws'/>",
    )
    .unwrap();
    assert_eq!(events, [Event::StreamEnd]);
    assert_eq!(p.see_other_uri(), Some("wss://other.example/ws"));
}

#[test]
fn framing_errors_have_their_exact_conditions() {
    let cases: &[(&str, &str, StreamErrorCondition)] = &[
        (
            "partial element",
            "<message xmlns='jabber:client'><body>",
            StreamErrorCondition::NotWellFormed,
        ),
        (
            "two elements",
            "<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>",
            StreamErrorCondition::NotWellFormed,
        ),
        (
            "text beside the element",
            "<presence xmlns='jabber:client'/>hi",
            StreamErrorCondition::NotWellFormed,
        ),
        ("empty message", "", StreamErrorCondition::NotWellFormed),
        (
            "tcp stream header",
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
            StreamErrorCondition::InvalidNamespace,
        ),
        (
            "self-closed tcp stream header",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'/>",
            StreamErrorCondition::InvalidNamespace,
        ),
        (
            "open in the wrong namespace",
            "<open xmlns='urn:example:wrong' version='1.0'/>",
            StreamErrorCondition::InvalidNamespace,
        ),
        (
            "a stanza before open",
            "<message xmlns='jabber:client'/>",
            StreamErrorCondition::InvalidNamespace,
        ),
        (
            "close before open",
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
            StreamErrorCondition::BadFormat,
        ),
        (
            "version 2.0",
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='2.0'/>",
            StreamErrorCondition::UnsupportedVersion,
        ),
    ];
    for (index, &(what, bytes, condition)) in cases.iter().enumerate() {
        let mut p = parser();
        // The first four are errors of any message: checked on an open stream.
        if index < 4 {
            message(&mut p, OPEN).unwrap();
        }
        assert_eq!(message(&mut p, bytes), Err(condition), "{what}");
        // Sticky: the next message gets the same error.
        assert_eq!(message(&mut p, OPEN), Err(condition), "{what}, sticky");
    }
    // After the open: a second open is bad-format, a TCP header invalid-namespace.
    for (bytes, condition) in [
        (OPEN, StreamErrorCondition::BadFormat),
        (
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
            StreamErrorCondition::InvalidNamespace,
        ),
    ] {
        let mut p = parser();
        message(&mut p, OPEN).unwrap();
        assert_eq!(message(&mut p, bytes), Err(condition), "{bytes}");
    }
}

#[test]
fn restart_expects_a_new_open() {
    let mut p = parser();
    message(&mut p, OPEN).unwrap();
    let events = message(
        &mut p,
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    )
    .unwrap();
    assert_eq!(events.len(), 1);
    p.reset();
    assert!(matches!(
        &message(&mut p, OPEN).unwrap()[..],
        [Event::StreamStart(_)]
    ));
}

#[test]
fn an_oversized_message_is_policy_violation() {
    let mut limits = Limits::default();
    limits.max_stanza_bytes = 100;
    let mut p = StreamParser::framed(limits, ContentNamespace::Client);
    message(&mut p, OPEN).unwrap();
    let big = format!(
        "<message xmlns='jabber:client'><body>{}</body></message>",
        "x".repeat(200)
    );
    assert_eq!(
        message(&mut p, &big),
        Err(StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn writer_output_is_standalone_and_reads_back() {
    let header = StreamHeader::new(ContentNamespace::Client);
    let writer = StreamWriter::framed(&header);
    let features = Element::builder("features", "http://etherx.jabber.org/streams")
        .append(Element::bare("bind", "urn:ietf:params:xml:ns:xmpp-bind"))
        .build();
    let mut out = Vec::new();
    writer.write_element(&features, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
         <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
    );
    let mut p = parser();
    message(&mut p, OPEN).unwrap();
    let events = message(&mut p, std::str::from_utf8(&out).unwrap()).unwrap();
    assert_eq!(events, [Event::Element(features)]);
    assert!(NS_FRAMING.starts_with("urn:ietf:params:xml:ns:xmpp-framing"));
}

fn stanza() -> impl Strategy<Value = Element> {
    let text = "[a-z<>&' ]{0,12}";
    (
        0..3usize,
        text,
        proptest::option::of("[a-z]{1,5}@example\\.com"),
    )
        .prop_map(|(kind, body, to)| {
            let name = ["message", "presence", "iq"][kind];
            let mut builder = Element::builder(name, "jabber:client");
            if let Some(to) = to {
                builder =
                    builder.attr(xmpp_xml::minidom::rxml::NcName::try_from("to").unwrap(), to);
            }
            if !body.is_empty() {
                builder = builder.append(Element::builder("body", "jabber:client").append(body));
            }
            builder
                .append(Element::bare("x", "urn:example:ext"))
                .build()
        })
}

proptest! {
    /// Any message sequence gives the same events as the same elements on a TCP stream.
    #[test]
    fn framed_and_tcp_streams_give_the_same_elements(stanzas in proptest::collection::vec(stanza(), 0..8)) {
        let header = StreamHeader::new(ContentNamespace::Client);
        let framed = StreamWriter::framed(&header);
        let tcp = StreamWriter::new(&header);
        let mut p = parser();
        let mut out = Vec::new();
        framed.write_header(&mut out).unwrap();
        let mut framed_events = message(&mut p, std::str::from_utf8(&out).unwrap()).unwrap();
        let mut wire = Vec::new();
        tcp.write_header(&mut wire).unwrap();
        for stanza in &stanzas {
            out.clear();
            framed.write_element(stanza, &mut out).unwrap();
            framed_events.extend(message(&mut p, std::str::from_utf8(&out).unwrap()).unwrap());
            tcp.write_element(stanza, &mut wire).unwrap();
        }
        out.clear();
        framed.write_end(&mut out);
        framed_events.extend(message(&mut p, std::str::from_utf8(&out).unwrap()).unwrap());
        tcp.write_end(&mut wire);
        let mut tcp_parser = StreamParser::new();
        tcp_parser.feed(&wire);
        let mut tcp_events = Vec::new();
        while let Some(event) = tcp_parser.next_event().unwrap() {
            tcp_events.push(event);
        }
        // Headers differ in form (prefix, declarations); the rest is equal.
        prop_assert!(matches!(framed_events.first(), Some(Event::StreamStart(_))));
        prop_assert!(matches!(tcp_events.first(), Some(Event::StreamStart(_))));
        prop_assert_eq!(&framed_events[1..], &tcp_events[1..]);
    }
}

#[test]
fn a_second_element_fails_the_message_before_the_first_is_delivered() {
    let mut p = parser();
    message(&mut p, OPEN).unwrap();
    p.feed_message(b"<presence xmlns='jabber:client'/> <presence xmlns='jabber:client'/>");
    let error = p.next_event().unwrap_err();
    assert_eq!(error.condition(), StreamErrorCondition::NotWellFormed);
}
