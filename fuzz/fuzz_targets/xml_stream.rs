//! Arbitrary bytes in arbitrary chunks into the XML stream parser. Properties checked:
//! no panic; bounded memory (after `next_event` asks for more input, the bytes held never
//! exceed the stanza bound); errors are sticky; every emitted element serializes and parses
//! back to an equal element in a stream with the same header.
#![no_main]

use xmpp_xml::{Event, Limits, StreamHeader, StreamParser, StreamWriter};

/// Stanza bound configured on the parser.
const MAX_STANZA: usize = 2048;

/// A header that makes most arbitrary inputs get past the stream start.
const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' version='1.0'>";

fn round_trip(header: &StreamHeader, element: &xmpp_xml::minidom::Element) {
    let writer = StreamWriter::new(header);
    let mut bytes = Vec::new();
    writer
        .write_header(&mut bytes)
        .expect("a parsed header serializes");
    writer
        .write_element(element, &mut bytes)
        .expect("a parsed element serializes");
    let mut parser = StreamParser::new();
    parser.feed(&bytes);
    match parser.next_event() {
        Ok(Some(Event::StreamStart(h))) => assert_eq!(&h, header),
        other => panic!("header did not round-trip: {other:?}"),
    }
    match parser.next_event() {
        Ok(Some(Event::Element(e))) => assert_eq!(&e, element),
        other => panic!("element did not round-trip: {other:?}"),
    }
    assert!(!parser.has_unparsed_input());
}

fn run(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut limits = Limits::default();
    limits.max_stanza_bytes = MAX_STANZA;
    limits.max_depth = 16;
    let mut parser = StreamParser::with_limits(limits.clone());
    // Half the inputs get a valid header first so the fuzzer explores stanzas.
    let mut input = Vec::new();
    if control & 1 == 0 {
        input.extend_from_slice(HEADER);
    }
    input.extend_from_slice(rest);
    let chunk = usize::from(control >> 1).max(1);
    let mut header: Option<StreamHeader> = None;
    for piece in input.chunks(chunk) {
        parser.feed(piece);
        loop {
            match parser.next_event() {
                Ok(Some(Event::StreamStart(h))) => header = Some(h),
                Ok(Some(Event::Element(e))) => {
                    round_trip(header.as_ref().expect("elements follow the header"), &e);
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    assert!(parser.buffered_len() <= limits.max_stanza_bytes);
                    break;
                }
                Err(error) => {
                    assert_eq!(parser.next_event(), Err(error));
                    return;
                }
            }
        }
    }
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// Peak heap one input may use: the input copy (a `Vec` grown from the header, so at most
/// twice its length) plus a constant derived from the stanza bound, independent of the input
/// length: the parser may hold at most one stanza (and one chunk), and the target holds that
/// stanza's tree twice (parsed and round-tripped). A tree costs up to ~37 heap bytes per
/// source byte (a stanza of 505 `<a/>` children, measured 149 KB for both trees), so 128 per
/// stanza byte. Buffering past the stanza bound, or a tree kept across stanzas, trips this.
fn bound(len: usize) -> usize {
    2 * (len + HEADER.len()) + 128 * MAX_STANZA
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xmpp_fuzz::check(data.len(), bound(data.len()), || run(data));
});
