//! Property tests: chunking invariance and the serialize/parse round trip.
#![allow(clippy::panic, clippy::unwrap_used)]

use minidom::Element;
use proptest::prelude::*;
use rxml::{Namespace, NcName};
use xmpp_xml::{
    ContentNamespace, Event, NS_CLIENT, StreamHeader, StreamParser, StreamWriter, parse_spliced,
};

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

/// Attributes and nodes moved onto a `jabber:client` stanza named `name`: a stanza a host
/// could send.
fn as_stanza(name: &str, from: Element) -> Element {
    let mut stanza = Element::bare(name, NS_CLIENT);
    for ((ns, key), value) in from.attrs() {
        stanza
            .attrs_mut()
            .insert(ns.clone(), key.clone(), value.clone());
    }
    let mut from = from;
    for node in from.take_nodes() {
        stanza.append_node(node);
    }
    stanza
}

/// Stanzas as the parser gives them (`element()` with the root moved to `jabber:client`).
fn stanza() -> impl Strategy<Value = Element> {
    (
        prop::sample::select(&["message", "presence", "iq"][..]),
        element(),
    )
        .prop_map(|(name, e)| as_stanza(name, e))
}

/// Namespaces, attribute names and nodes the serializer writes in a way that depends on the
/// stream, or parses back differently: content namespaces nested in one another, namespaces
/// a stream header binds to a prefix, `xmlns` attributes, reserved namespaces, empty and
/// adjacent text nodes, besides the ordinary ones.
fn wild_element() -> impl Strategy<Value = Element> {
    const WILD: &[&str] = &[
        "jabber:client",
        "jabber:server",
        "jabber:component:accept",
        "urn:a",
        "",
        "http://etherx.jabber.org/streams",
        "jabber:server:dialback",
        "http://www.w3.org/XML/1998/namespace",
    ];
    const WILD_ATTRS: &[&str] = &[
        "",
        "urn:attr",
        "http://www.w3.org/XML/1998/namespace",
        "http://etherx.jabber.org/streams",
        "jabber:server:dialback",
        "http://www.w3.org/2000/xmlns/",
    ];
    let name = prop_oneof![4 => ncname(), 1 => Just("xmlns".to_owned())];
    let leaf = (
        ncname(),
        prop::sample::select(WILD),
        prop::collection::vec((prop::sample::select(WILD_ATTRS), name, xml_text()), 0..3),
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
    leaf.prop_recursive(3, 16, 4, |inner| {
        (
            inner.clone(),
            prop::collection::vec(
                prop_oneof![inner.prop_map(Ok), xml_text().prop_map(Err)],
                0..4,
            ),
        )
            .prop_map(|(mut parent, children)| {
                for child in children {
                    match child {
                        Ok(c) => {
                            parent.append_child(c);
                        }
                        Err(text) => parent.append_text_node(text),
                    }
                }
                parent
            })
    })
}

/// Writers of the stanzas `writes_exactly` is asked about: a TCP client stream binding
/// `stream` and `db` (`header()`), one binding nothing, and a WebSocket one.
fn writers() -> [StreamWriter; 3] {
    let mut bare = StreamHeader::new(ContentNamespace::Client);
    bare.stream_prefix = None;
    [
        StreamWriter::new(&header()),
        StreamWriter::new(&bare),
        StreamWriter::framed(&header()),
    ]
}

/// `writes_exactly` for `stanza` on each writer, checked against what the bytes parse to
/// where it says yes; whether it said yes for each.
fn check_writes_exactly(stanza: &Element) -> Result<[bool; 3], TestCaseError> {
    let mut said = [false; 3];
    for (writer, said) in writers().iter().zip(&mut said) {
        let mut out = Vec::new();
        if writer.write_element(stanza, &mut out).is_err()
            || !writer.writes_exactly(stanza, NS_CLIENT)
        {
            continue;
        }
        *said = true;
        prop_assert_eq!(&parse_spliced(&out, NS_CLIENT).unwrap(), stanza);
        // Unframed: the stanza carries no `xmlns` of its own; framed: it declares it.
        let tag = format!("<{} xmlns='{NS_CLIENT}'", stanza.name());
        prop_assert_eq!(out.starts_with(tag.as_bytes()), writer.is_framed());
    }
    Ok(said)
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

    #[test]
    fn stanzas_are_written_exactly(stanza in stanza()) {
        // Ordinary stanzas: every writer's bytes stand for the stanza alone.
        prop_assert_eq!(check_writes_exactly(&stanza)?, [true; 3]);
    }

    #[test]
    fn writes_exactly_holds_where_it_says_so(root in wild_element(), name in prop::sample::select(&["message", "iq"][..])) {
        check_writes_exactly(&as_stanza(name, root.clone()))?;
        // And for a root outside `jabber:client`: never exact (it is written in the
        // stream's namespace, or declares its own).
        if !root.has_ns(NS_CLIENT) {
            prop_assert_eq!(check_writes_exactly(&root)?, [false; 3]);
        }
    }
}
