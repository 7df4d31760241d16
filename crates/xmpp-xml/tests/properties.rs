//! Property tests: chunking invariance and the serialize/parse round trip.
#![allow(clippy::panic, clippy::unwrap_used)]

use minidom::Element;
use proptest::prelude::*;
use rxml::{Namespace, NcName};
use xmpp_xml::{ContentNamespace, Event, StreamHeader, StreamParser, StreamWriter};

/// Parses `input` split at `cuts` (sorted, deduplicated offsets). Returns the events, with
/// runs of `Whitespace` collapsed (their count depends on chunking by design), and the
/// error condition if any.
fn parse_split(input: &[u8], cuts: &[usize]) -> (Vec<Event>, Option<String>) {
    let mut parser = StreamParser::new();
    let mut events: Vec<Event> = Vec::new();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|c| *c < input.len()).collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.push(input.len());
    for end in bounds {
        parser.feed(&input[start..end]);
        start = end;
        loop {
            match parser.next_event() {
                Ok(Some(Event::Whitespace)) if events.last() == Some(&Event::Whitespace) => {}
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e.condition().to_string())),
            }
        }
    }
    (events, None)
}

fn one_byte_cuts(len: usize) -> Vec<usize> {
    (1..len).collect()
}

const NAMESPACES: &[&str] = &["jabber:client", "urn:a", "urn:b", "jabber:x:data", ""];

fn ncname() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("body".to_owned()),
        Just("x-y.z_1".to_owned()),
        "[a-z][a-z0-9]{0,6}",
        Just("\u{e9}l\u{e9}ment".to_owned()),
    ]
}

/// Text as XML 1.0 allows it, with markup characters and line endings overrepresented.
fn xml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::char::range('a', 'z'),
            1 => prop::sample::select(vec!['<', '>', '&', '\'', '"', '\r', '\n', '\t', ' ', ']']),
            1 => any::<char>().prop_filter("XML Char", |c| {
                matches!(*c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
            }),
        ],
        0..24,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn element() -> impl Strategy<Value = Element> {
    let leaf = (
        ncname(),
        prop::sample::select(NAMESPACES),
        prop::collection::vec(
            (
                prop::sample::select(&["", "urn:attr", "http://www.w3.org/XML/1998/namespace"][..]),
                ncname(),
                xml_text(),
            ),
            0..4,
        ),
    )
        .prop_map(|(name, ns, attrs)| {
            let mut e = Element::bare(name, ns);
            for (ns, name, value) in attrs {
                let ns = if ns.is_empty() {
                    Namespace::NONE
                } else {
                    Namespace::from(ns.to_owned())
                };
                e.attrs_mut()
                    .insert(ns, NcName::try_from(name).unwrap(), value);
            }
            e
        });
    leaf.prop_recursive(4, 24, 4, |inner| {
        (
            inner.clone(),
            prop::collection::vec(
                prop_oneof![inner.prop_map(Some), xml_text().prop_map(|_| None)],
                0..4,
            ),
            prop::collection::vec(xml_text(), 4),
        )
            .prop_map(|(mut parent, children, texts)| {
                // Interleave text and child elements without two adjacent text nodes, as the
                // parser produces them.
                let mut last_text = matches!(parent.nodes().last(), Some(minidom::Node::Text(_)));
                for (child, text) in children.into_iter().zip(texts) {
                    match child {
                        Some(c) => {
                            parent.append_child(c);
                            last_text = false;
                        }
                        None if !last_text && !text.is_empty() => {
                            parent.append_text_node(text);
                            last_text = true;
                        }
                        None => {}
                    }
                }
                parent
            })
    })
}

fn header() -> StreamHeader {
    let mut header = StreamHeader::new(ContentNamespace::Client);
    header.to = Some("example.com".into());
    header.lang = Some("en".into());
    header
        .namespace_declarations
        .push(("db".into(), "jabber:server:dialback".into()));
    header
}

fn serialize_stream(elements: &[Element], keepalives: bool) -> Vec<u8> {
    let writer = StreamWriter::new(&header());
    let mut out = Vec::new();
    writer.write_header(&mut out).unwrap();
    for e in elements {
        writer.write_element(e, &mut out).unwrap();
        if keepalives {
            out.extend_from_slice(b" \n ");
        }
    }
    writer.write_end(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(elements in prop::collection::vec(element(), 1..4)) {
        let bytes = serialize_stream(&elements, false);
        let (events, error) = parse_split(&bytes, &[]);
        prop_assert_eq!(error, None);
        let parsed: Vec<Element> = events
            .into_iter()
            .filter_map(|e| match e { Event::Element(e) => Some(e), _ => None })
            .collect();
        prop_assert_eq!(&parsed, &elements);
        // And the serialization is a fixed point.
        prop_assert_eq!(serialize_stream(&parsed, false), bytes);
    }

    #[test]
    fn chunking_invariance(
        elements in prop::collection::vec(element(), 1..4),
        cuts in prop::collection::vec(0usize..4096, 0..12),
    ) {
        let bytes = serialize_stream(&elements, true);
        let whole = parse_split(&bytes, &[]);
        prop_assert_eq!(&whole.1, &None);
        prop_assert_eq!(&parse_split(&bytes, &cuts), &whole);
        prop_assert_eq!(&parse_split(&bytes, &one_byte_cuts(bytes.len())), &whole);
    }

    #[test]
    fn chunking_invariance_on_damaged_input(
        elements in prop::collection::vec(element(), 1..3),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cuts in prop::collection::vec(0usize..2048, 0..12),
    ) {
        let mut bytes = serialize_stream(&elements, true);
        for (at, byte) in damage {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        // Whether a keepalive is reported before a later error depends on whether the
        // error arrived in the same read, so keepalives are left out of this comparison.
        let strip = |(events, error): (Vec<Event>, Option<String>)| {
            (events.into_iter().filter(|e| *e != Event::Whitespace).collect::<Vec<_>>(), error)
        };
        let whole = strip(parse_split(&bytes, &[]));
        prop_assert_eq!(&strip(parse_split(&bytes, &cuts)), &whole);
        prop_assert_eq!(&strip(parse_split(&bytes, &one_byte_cuts(bytes.len()))), &whole);
    }
}
