//! The serializer: headers for both roles, namespaces, escaping, illegal characters.
#![allow(clippy::panic, clippy::unwrap_used)]

use minidom::Element;
use rxml::{Namespace, NcName};
use xmpp_xml::{
    ContentNamespace, Event, SerializeError, StreamHeader, StreamParser, StreamVersion,
    StreamWriter,
};

fn parse_header(bytes: &[u8]) -> StreamHeader {
    let mut parser = StreamParser::new();
    parser.feed(bytes);
    match parser.next_event() {
        Ok(Some(Event::StreamStart(h))) => h,
        other => panic!("{other:?}"),
    }
}

fn written(writer: &StreamWriter, element: &Element) -> String {
    let mut out = Vec::new();
    writer.write_element(element, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn headers_round_trip_for_both_roles() {
    let mut client = StreamHeader::new(ContentNamespace::Client);
    client.to = Some("example.com".into());
    client.lang = Some("en".into());
    let mut server = StreamHeader::new(ContentNamespace::Server);
    server.from = Some("example.com".into());
    server.to = Some("example.net".into());
    server.id = Some("++TR84Sm6A3hnt3Q065SnAbbk3Y=".into());
    server.version = Some(StreamVersion { major: 1, minor: 1 });
    server
        .namespace_declarations
        .push(("db".into(), "jabber:server:dialback".into()));
    let mut component = StreamHeader::new(ContentNamespace::ComponentAccept);
    component.stream_prefix = Some("s".into());
    component.version = None;
    let mut prefix_free = StreamHeader::new(ContentNamespace::Client);
    prefix_free.stream_prefix = None;
    prefix_free.content_namespace = None;
    for header in [client, server, component, prefix_free] {
        let mut out = Vec::new();
        StreamWriter::new(&header).write_header(&mut out).unwrap();
        assert_eq!(parse_header(&out), header);
    }
}

#[test]
fn content_namespace_is_not_repeated_and_others_are_declared() {
    let writer = StreamWriter::new(&StreamHeader::new(ContentNamespace::Client));
    let iq = Element::builder("iq", "jabber:client")
        .attr(NcName::try_from("type").unwrap(), "result")
        .attr(NcName::try_from("id").unwrap(), "r1")
        .append(
            Element::builder("query", "jabber:iq:roster")
                .append(Element::bare("item", "jabber:iq:roster"))
                .append(Element::bare("group", "jabber:client")),
        )
        .build();
    assert_eq!(
        written(&writer, &iq),
        "<iq id='r1' type='result'><query xmlns='jabber:iq:roster'><item/>\
         <group xmlns='jabber:client'/></query></iq>"
    );
}

#[test]
fn stream_namespace_elements_use_the_stream_prefix() {
    let mut header = StreamHeader::new(ContentNamespace::Server);
    header
        .namespace_declarations
        .push(("db".into(), "jabber:server:dialback".into()));
    let writer = StreamWriter::new(&header);
    let features = Element::builder("features", "http://etherx.jabber.org/streams")
        .append(Element::bare("starttls", "urn:ietf:params:xml:ns:xmpp-tls"))
        .build();
    assert_eq!(
        written(&writer, &features),
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"
    );
    let result = Element::builder("result", "jabber:server:dialback")
        .append("key")
        .build();
    assert_eq!(written(&writer, &result), "<db:result>key</db:result>");
}

#[test]
fn escaping_and_namespaced_attributes() {
    let writer = StreamWriter::new(&StreamHeader::new(ContentNamespace::Client));
    let mut body = Element::bare("body", "jabber:client");
    body.attrs_mut().insert(
        Namespace::XML,
        NcName::try_from("lang").unwrap(),
        "en".into(),
    );
    body.attrs_mut().insert(
        Namespace::from("urn:x".to_owned()),
        NcName::try_from("k").unwrap(),
        "a'b\"c<d>&\te\nf\rg".into(),
    );
    body.append_text_node("1 < 2 && ]]> \r\n done");
    let text = written(&writer, &body);
    assert_eq!(
        text,
        "<body xml:lang='en' xmlns:ns0='urn:x' ns0:k='a&apos;b&quot;c&lt;d&gt;&amp;&#x9;e&#xA;f&#xD;g'>\
         1 &lt; 2 &amp;&amp; ]]&gt; &#xD;\n done</body>"
    );
}

#[test]
fn illegal_characters_are_rejected_and_nothing_is_written() {
    let writer = StreamWriter::new(&StreamHeader::new(ContentNamespace::Client));
    for bad in ["nul\u{0}", "bell\u{7}", "\u{FFFE}", "x\u{FFFF}"] {
        let mut out = b"kept".to_vec();
        let mut text = Element::bare("body", "jabber:client");
        text.append_text_node(bad);
        assert!(matches!(
            writer.write_element(&text, &mut out),
            Err(SerializeError::IllegalCharacter(_))
        ));
        let attr = Element::builder("body", "jabber:client")
            .attr(NcName::try_from("a").unwrap(), bad)
            .build();
        assert!(matches!(
            writer.write_element(&attr, &mut out),
            Err(SerializeError::IllegalCharacter(_))
        ));
        assert_eq!(out, b"kept");
    }
    let bad_name = Element::bare("not a name", "jabber:client");
    assert!(matches!(
        writer.write_element(&bad_name, &mut Vec::new()),
        Err(SerializeError::InvalidName(_))
    ));
}

#[test]
fn stream_end_matches_the_prefix() {
    let mut out = Vec::new();
    StreamWriter::new(&StreamHeader::new(ContentNamespace::Client)).write_end(&mut out);
    assert_eq!(out, b"</stream:stream>");
    let mut header = StreamHeader::new(ContentNamespace::Client);
    header.stream_prefix = None;
    header.content_namespace = None;
    out.clear();
    StreamWriter::new(&header).write_end(&mut out);
    assert_eq!(out, b"</stream>");
}

#[test]
fn stanzas_in_any_content_namespace_take_the_streams() {
    // A component's stanza routed to a client stream, and a client's to a component stream:
    // written as the stream's own (no xmlns), content included; a content namespace below a
    // foreign element (a forwarded message) keeps its declaration.
    let client = StreamWriter::new(&StreamHeader::new(ContentNamespace::Client));
    let component = StreamWriter::new(&StreamHeader::new(ContentNamespace::ComponentAccept));
    let message = |ns: &str| {
        Element::builder("message", ns)
            .attr(NcName::try_from("to").unwrap(), "juliet@example.com")
            .append(Element::builder("body", ns).append("hi"))
            .append(
                Element::builder("forwarded", "urn:xmpp:forward:0")
                    .append(Element::bare("message", ns)),
            )
            .build()
    };
    for (writer, ns, inner) in [
        (
            &client,
            "jabber:component:accept",
            "jabber:component:accept",
        ),
        (&component, "jabber:client", "jabber:client"),
        (&client, "jabber:server", "jabber:server"),
    ] {
        assert_eq!(
            written(writer, &message(ns)),
            format!(
                "<message to='juliet@example.com'><body>hi</body>\
                 <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='{inner}'/></forwarded></message>"
            )
        );
    }
}

#[test]
fn writes_exactly_says_no_where_the_bytes_alone_mean_another_element() {
    // Each stanza: written on a TCP `jabber:server` stream binding `db` (and `stream`), its
    // bytes parsed alone in `jabber:server` are not the element (or not XML), and
    // `writes_exactly` says so.
    let mut header = StreamHeader::new(ContentNamespace::Server);
    header
        .namespace_declarations
        .push(("db".into(), "jabber:server:dialback".into()));
    let writer = StreamWriter::new(&header);
    let ns = "jabber:server";
    let with = |child: Element| {
        let mut message = Element::bare("message", ns);
        message.append_child(child);
        message
    };
    let mut adjacent = Element::bare("message", ns);
    adjacent.append_text_node("a");
    adjacent.append_text_node("b");
    let mut empty = Element::bare("message", ns);
    empty.append_text_node("");
    let mut xmlns_attr = Element::bare("message", ns);
    xmlns_attr.set_attr(Namespace::NONE, NcName::try_from("xmlns").unwrap(), "urn:x");
    let mut bound_attr = Element::bare("message", ns);
    bound_attr.set_attr(
        Namespace::from("jabber:server:dialback".to_owned()),
        NcName::try_from("a").unwrap(),
        "1",
    );
    let cases = [
        // A content namespace inside another is written as the outer one.
        ("moved", with(Element::bare("body", "jabber:client"))),
        // Written with the header's prefix, unbound where the bytes are parsed alone.
        (
            "prefixed",
            with(Element::bare("result", "jabber:server:dialback")),
        ),
        ("prefixed attribute", bound_attr),
        // One run of text, or none, when parsed.
        ("adjacent texts", adjacent),
        ("empty text", empty),
        // Read as a declaration.
        ("xmlns attribute", xmlns_attr),
    ];
    for (case, stanza) in cases {
        let mut out = Vec::new();
        writer.write_element(&stanza, &mut out).unwrap();
        let parsed = xmpp_xml::parse_spliced(&out, ns);
        assert_ne!(parsed.as_ref().ok(), Some(&stanza), "{case}");
        assert!(!writer.writes_exactly(&stanza, ns), "{case}");
    }
    // The stanza itself in another namespace than the one named, or the stream's.
    let plain = Element::bare("message", ns);
    assert!(writer.writes_exactly(&plain, ns));
    assert!(!writer.writes_exactly(&plain, "jabber:client"));
    let client = StreamWriter::new(&StreamHeader::new(ContentNamespace::Client));
    assert!(!client.writes_exactly(&plain, ns));
}
