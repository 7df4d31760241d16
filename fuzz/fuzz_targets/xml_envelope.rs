//! The envelope path against the element path (issue 17): the same bytes in the same chunks
//! into two parsers, one in envelope mode. Properties checked: the same accept/reject at the
//! same point with the same condition; every envelope builds the element the element path
//! gave; and where splicing succeeds, parsing the spliced bytes in the target stream gives
//! the element `stamp_element` makes (otherwise only `NeedsElement` on a namespace change).
//! One run in four is a WebSocket stream (RFC 7395): the input is split into messages at
//! 0xFF bytes after an `<open/>`, and spliced stanzas are parsed as messages of their own.
#![no_main]

use xmpp_xml::minidom::Element;
use xmpp_xml::{
    ContentNamespace, Envelope, Event, Limits, NS_CLIENT, NS_COMPONENT_ACCEPT, NS_SERVER,
    SpliceError, Stamp, StreamParser, stamp_element,
};

/// The first message of a framed run.
const OPEN: &[u8] =
    b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='x' version='1.0' xml:lang='en'/>";

/// Stanza bound configured on the parsers.
const MAX_STANZA: usize = 2048;

/// Headers that make most arbitrary inputs get past the stream start, with prefixes stanzas
/// may borrow.
const HEADERS: [&[u8]; 2] = [
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' xmlns:c='jabber:client' xml:lang='en' version='1.0'>",
    b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' version='1.0'>",
];

const TARGETS: [&str; 3] = [NS_CLIENT, NS_SERVER, NS_COMPONENT_ACCEPT];

fn drain(parser: &mut StreamParser, events: &mut Vec<Event>) -> Result<(), String> {
    loop {
        match parser.next_event() {
            Ok(Some(Event::Whitespace)) => {}
            Ok(Some(event)) => events.push(event),
            Ok(None) => return Ok(()),
            Err(error) => {
                assert_eq!(parser.next_event(), Err(error.clone()));
                return Err(error.condition().to_string());
            }
        }
    }
}

/// Parses one spliced stanza as a WebSocket message of its own.
fn parse_message(limits: &Limits, stanza: &[u8]) -> Element {
    let mut parser = StreamParser::framed(limits.clone(), ContentNamespace::Client);
    parser.feed_message(OPEN);
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    parser.feed_message(stanza);
    match parser.next_event() {
        Ok(Some(Event::Element(e))) => e,
        other => panic!("spliced bytes do not parse as a message: {other:?}"),
    }
}

/// Parses one spliced stanza in a stream whose default namespace is `ns`.
fn parse_in(ns: &str, limits: &Limits, stanza: &[u8]) -> Element {
    let mut parser = StreamParser::with_limits(limits.clone());
    parser.feed(
        format!("<stream:stream xmlns='{ns}' xmlns:stream='http://etherx.jabber.org/streams'>")
            .as_bytes(),
    );
    parser.feed(stanza);
    match (parser.next_event(), parser.next_event()) {
        (Ok(Some(Event::StreamStart(_))), Ok(Some(Event::Element(e)))) => {
            assert!(!parser.has_unparsed_input());
            e
        }
        other => panic!("spliced bytes do not parse: {other:?}"),
    }
}

fn check_splice(
    env: &xmpp_xml::Envelope,
    element: &Element,
    control: u8,
    limits: &Limits,
    standalone: bool,
) {
    let target = TARGETS[usize::from(control >> 6) % 3];
    let stamp = Stamp {
        namespace: target,
        from: (control & 0x10 != 0).then_some("a'b\"&<>@x/\t"),
        to: (control & 0x20 != 0).then_some("t@u"),
        lang: (control & 0x08 != 0).then_some("de"),
        standalone,
    };
    match env.splice(&stamp) {
        Ok(bytes) => {
            let mut expected = element.clone();
            stamp_element(&mut expected, &stamp);
            let mut relaxed = limits.clone();
            relaxed.max_stanza_bytes = usize::MAX / 2;
            let parsed = if standalone {
                parse_message(&relaxed, &bytes)
            } else {
                parse_in(target, &relaxed, &bytes)
            };
            assert_eq!(parsed, expected);
        }
        Err(SpliceError::NeedsElement) => {}
        Err(other) => panic!("splice failed: {other}"),
    }
}

/// The children read from the envelope's bytes are the element's: namespace, name, own
/// `xml:lang` and text, in order.
fn check_children(env: &Envelope, element: &Element) {
    let mut expected = element.children();
    for child in env.children() {
        let child = child.expect("validated bytes scan");
        let e = expected.next().expect("no more children in the element");
        assert_eq!(child.namespace(), e.ns());
        assert_eq!(child.name(), e.name());
        let lang = e
            .attrs()
            .get(&xmpp_xml::minidom::rxml::Namespace::XML, "lang");
        assert_eq!(child.lang(), lang.map(String::as_str));
        assert_eq!(child.text().expect("validated text decodes"), e.text());
    }
    assert!(expected.next().is_none(), "more children in the element");
}

/// Compares the two parsers' events so far (and clears them).
fn compare(a: &mut Vec<Event>, b: &mut Vec<Event>, control: u8, limits: &Limits, framed: bool) {
    assert_eq!(a.len(), b.len(), "event counts differ");
    for (x, y) in a.iter().zip(b.iter()) {
        match (x, y) {
            (Event::Element(e), Event::Stanza(env)) => {
                assert_eq!(&env.element().expect("envelopes rebuild"), e);
                check_splice(env, e, control, limits, framed);
                check_children(env, e);
            }
            (x, y) => assert_eq!(x, y),
        }
    }
    a.clear();
    b.clear();
}

/// A WebSocket stream: `rest` split into messages at 0xFF, after an `<open/>`.
fn run_framed(control: u8, rest: &[u8], limits: &Limits) {
    let mut elements = StreamParser::framed(limits.clone(), ContentNamespace::Client);
    let mut envelopes = StreamParser::framed(limits.clone(), ContentNamespace::Client);
    envelopes.set_envelopes(true);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for message in core::iter::once(OPEN).chain(rest.split(|byte| *byte == 0xFF)) {
        elements.feed_message(message);
        envelopes.feed_message(message);
        let ra = drain(&mut elements, &mut a);
        let rb = drain(&mut envelopes, &mut b);
        assert_eq!(ra, rb, "accept/reject or condition differs");
        compare(&mut a, &mut b, control, limits, true);
        if ra.is_err() {
            return;
        }
    }
}

fn run(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut limits = Limits::default();
    limits.max_stanza_bytes = MAX_STANZA;
    limits.max_depth = 16;
    if control & 3 == 3 {
        return run_framed(control, rest, &limits);
    }
    let mut elements = StreamParser::with_limits(limits.clone());
    let mut envelopes = StreamParser::with_limits(limits.clone());
    envelopes.set_envelopes(true);
    let mut input = Vec::new();
    if control & 1 == 0 {
        input.extend_from_slice(HEADERS[usize::from(control >> 1) & 1]);
    }
    input.extend_from_slice(rest);
    let chunk = usize::from(control >> 2).max(1);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for piece in input.chunks(chunk) {
        elements.feed(piece);
        envelopes.feed(piece);
        let ra = drain(&mut elements, &mut a);
        let rb = drain(&mut envelopes, &mut b);
        assert_eq!(ra, rb, "accept/reject or condition differs");
        assert_eq!(elements.buffered_len(), envelopes.buffered_len());
        compare(&mut a, &mut b, control, &limits, false);
        if ra.is_err() {
            return;
        }
    }
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// Peak heap: the input copy, plus per stanza the element path's tree, the envelope's bytes,
/// its rebuilt tree, a clone, the stamped tree and the spliced bytes' tree (six trees at the
/// ~128 heap bytes per stanza byte the `xml_stream` target measured, 3 x 128 per stanza
/// byte more than that target).
fn bound(len: usize) -> usize {
    2 * (len + HEADERS[0].len()) + 512 * MAX_STANZA
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xmpp_fuzz::check(data.len(), bound(data.len()), || run(data));
});
