//! Byte accounting at protocol switches, stream restarts and the stream end.
#![allow(clippy::panic, clippy::unwrap_used)]

use xmpp_xml::{ContentNamespace, Event, StreamErrorCondition, StreamParser};

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

fn started() -> StreamParser {
    let mut parser = StreamParser::new();
    parser.feed(HEADER);
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    assert_eq!(parser.buffered_len(), 0);
    parser
}

fn element(parser: &mut StreamParser) -> minidom::Element {
    match parser.next_event() {
        Ok(Some(Event::Element(e))) => e,
        other => panic!("expected an element, got {other:?}"),
    }
}

#[test]
fn nothing_is_pending_after_a_lone_proceed() {
    let mut parser = started();
    parser.feed(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    let proceed = element(&mut parser);
    assert!(proceed.is("proceed", "urn:ietf:params:xml:ns:xmpp-tls"));
    assert!(!parser.has_unparsed_input());
}

#[test]
fn bytes_pipelined_after_proceed_are_reported_exactly() {
    for trailer in [&b" "[..], b"<message/>", b"<mess", b"\x00garbage"] {
        let mut parser = started();
        let mut input = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".to_vec();
        input.extend_from_slice(trailer);
        parser.feed(&input);
        element(&mut parser);
        assert!(parser.has_unparsed_input());
        assert_eq!(parser.buffered_len(), trailer.len());
        assert_eq!(parser.take_unparsed(), trailer);
        assert_eq!(parser.buffered_len(), 0);
    }
}

#[test]
fn accounting_is_exact_even_when_the_parser_looked_ahead() {
    let mut parser = started();
    // The partial start tag after the element is read by the tokenizer only if we keep
    // pulling; it stays "buffered" either way until an event consumes it.
    parser.feed(b"<a xmlns='urn:x'/><b xmlns='urn:x' attr='va");
    element(&mut parser);
    assert_eq!(parser.next_event(), Ok(None));
    assert_eq!(parser.buffered_len(), b"<b xmlns='urn:x' attr='va".len());
}

#[test]
fn reset_parses_a_header_pipelined_after_success() {
    let mut parser = started();
    let mut input = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".to_vec();
    input.extend_from_slice(b"<?xml version='1.0'?>");
    input.extend_from_slice(&HEADER[..40]);
    parser.feed(&input);
    assert!(element(&mut parser).is("success", "urn:ietf:params:xml:ns:xmpp-sasl"));
    parser.reset();
    assert_eq!(parser.next_event(), Ok(None));
    parser.feed(&HEADER[40..]);
    match parser.next_event() {
        Ok(Some(Event::StreamStart(h))) => {
            assert_eq!(h.content_namespace, Some(ContentNamespace::Client));
        }
        other => panic!("expected a stream header, got {other:?}"),
    }
    parser.feed(b"<iq type='get' id='1'/>");
    assert!(element(&mut parser).is("iq", "jabber:client"));
}

#[test]
fn reset_after_looking_ahead_reparses_from_the_boundary() {
    let mut parser = started();
    let mut input = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".to_vec();
    input.extend_from_slice(HEADER);
    parser.feed(&input);
    element(&mut parser);
    // The old stream would reject a nested stream header at depth 1 only once complete;
    // pulling now makes the old tokenizer read ahead into the header.
    let _ = parser.next_event();
    parser.reset();
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    assert!(!parser.has_unparsed_input());
}

#[test]
fn whitespace_keepalives_are_reported_and_consumed() {
    let mut parser = started();
    parser.feed(b" \n");
    assert_eq!(parser.next_event(), Ok(Some(Event::Whitespace)));
    assert_eq!(parser.next_event(), Ok(None));
    assert!(!parser.has_unparsed_input());
}

#[test]
fn stream_end_then_whitespace_is_fine_but_data_is_not() {
    let mut parser = started();
    parser.feed(b"<presence/></stream:stream>\n");
    element(&mut parser);
    assert_eq!(parser.next_event(), Ok(Some(Event::StreamEnd)));
    assert_eq!(parser.next_event(), Ok(None));
    assert!(parser.is_ended());
    parser.feed(b"<presence/>");
    let err = parser.next_event().unwrap_err();
    assert_eq!(err.condition(), StreamErrorCondition::NotWellFormed);
}

#[test]
fn accounting_stays_exact_across_a_large_stanza() {
    let mut parser = started();
    let body = "x".repeat(200 * 1024);
    parser.feed(format!("<message><body>{body}</body></message>").as_bytes());
    element(&mut parser);
    // The next feed drops the consumed stanza (and shrinks the buffer).
    parser.feed(b"<presence/>");
    assert_eq!(parser.buffered_len(), b"<presence/>".len());
    element(&mut parser);
    assert!(!parser.has_unparsed_input());
}

#[test]
fn release_memory_only_between_elements_and_parsing_goes_on() {
    let mut parser = started();
    parser.feed(b"<message id='1'><body>hi</body></message><message id");
    assert_eq!(element(&mut parser).attr("id"), Some("1"));
    assert_eq!(parser.next_event(), Ok(None));
    // Part of the next stanza is buffered: nothing may be dropped.
    assert!(!parser.release_memory());
    parser.feed(b"='2'><body>a&amp;b</body></message>");
    let second = element(&mut parser);
    assert_eq!(second.attr("id"), Some("2"));
    assert_eq!(
        second.get_child("body", "jabber:client").unwrap().text(),
        "a&b"
    );
    assert_eq!(parser.next_event(), Ok(None));
    assert!(parser.release_memory());
    // The stream's namespaces, the open stream element and the byte accounting survive.
    parser.feed(b" <iq type='get' id='3' xmlns:x='urn:x'><x:q/></iq></stream:stream>");
    assert_eq!(parser.next_event(), Ok(Some(Event::Whitespace)));
    let iq = element(&mut parser);
    assert!(iq.is("iq", "jabber:client") && iq.has_child("q", "urn:x"));
    assert_eq!(parser.next_event(), Ok(Some(Event::StreamEnd)));
    assert!(parser.release_memory());
    assert_eq!(parser.buffered_len(), 0);
}
