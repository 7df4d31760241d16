//! RFC 7395 framing (XMPP over WebSocket) on the one machine: both roles negotiate, chat and
//! close with `<open/>` / `<close/>`, one element per message; the events equal those of the
//! same session on a TCP stream; framing errors close with their exact conditions.
#![allow(clippy::unwrap_used, clippy::panic)]

use minidom::Element;
use proptest::prelude::*;
use xmpp_stream::{
    AnyStream, BareJid, ClientConfig, ClientStream, CloseReason, Event, Instant, MemoryBackend,
    Output, SeededEntropy, ServerConfig, ServerStream, StreamErrorCondition, TlsPolicy, Transport,
};
use xmpp_xml::{ContentNamespace, Limits, StreamParser};

fn ends(websocket: bool) -> [AnyStream; 2] {
    let mut client = ClientConfig::new(BareJid::new("juliet@im.example.com").unwrap(), "r0m30");
    client.tls = TlsPolicy::Disabled;
    client.resource = Some("balcony".into());
    let mut server = ServerConfig::new(BareJid::new("im.example.com").unwrap());
    server.tls = TlsPolicy::Disabled;
    let accounts = MemoryBackend::new().with_user("juliet", "r0m30", 4096);
    let client = ClientStream::new(client, SeededEntropy::new(1));
    let server = ServerStream::new(server, SeededEntropy::new(2), accounts);
    if websocket {
        [client.websocket().into(), server.websocket().into()]
    } else {
        [client.into(), server.into()]
    }
}

/// Runs both ends until quiet; returns each end's events and the messages each sent.
fn drive(ends: &mut [AnyStream; 2], events: &mut [Vec<Event>; 2], sent: &mut [Vec<Vec<u8>>; 2]) {
    let now = Instant::ZERO;
    loop {
        let mut moved = false;
        for from in 0..2 {
            while let Some(output) = ends[from].poll_output() {
                moved = true;
                match output {
                    Output::Transmit(bytes) => {
                        let _ = ends[1 - from].handle_message(now, &bytes);
                        sent[from].push(bytes);
                    }
                    Output::Event(event) => events[from].push(event),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        if !moved {
            return;
        }
    }
}

fn message(to: &str, body: &str) -> Element {
    Element::builder("message", "jabber:client")
        .attr(minidom::rxml::NcName::try_from("to").unwrap(), to)
        .append(Element::builder("body", "jabber:client").append(body))
        .build()
}

/// A whole session: negotiate, a message each way, close. Returns events and messages.
fn session(websocket: bool, stanzas: &[(bool, Element)]) -> ([Vec<Event>; 2], [Vec<Vec<u8>>; 2]) {
    let mut ends = ends(websocket);
    let mut events = [Vec::new(), Vec::new()];
    let mut sent = [Vec::new(), Vec::new()];
    for end in &mut ends {
        end.start(Instant::ZERO, Transport::Plain).unwrap();
    }
    drive(&mut ends, &mut events, &mut sent);
    assert!(
        ends[0].is_negotiated() && ends[1].is_negotiated(),
        "{events:?}"
    );
    for (from_client, stanza) in stanzas {
        let end = usize::from(!*from_client);
        ends[end].send_stanza(Instant::ZERO, stanza).unwrap();
        drive(&mut ends, &mut events, &mut sent);
    }
    ends[0].close(Instant::ZERO).unwrap();
    drive(&mut ends, &mut events, &mut sent);
    assert!(ends[0].is_closed() && ends[1].is_closed());
    (events, sent)
}

#[test]
fn both_roles_negotiate_chat_and_close_one_element_per_message() {
    let stanzas = [
        (true, message("romeo@im.example.com", "hi")),
        (false, message("juliet@im.example.com/balcony", "hello")),
    ];
    let (events, sent) = session(true, &stanzas);
    // Every message is one standalone element a fresh framed parser reads whole.
    for side in &sent {
        for bytes in side {
            let mut parser = StreamParser::framed(Limits::default(), ContentNamespace::Client);
            // Each message alone: `<open/>` first, anything else after an open.
            let text = std::str::from_utf8(bytes).unwrap();
            if !text.starts_with("<open ") {
                parser.feed_message(
                    b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' version='1.0'/>",
                );
                parser.next_event().unwrap().unwrap();
                assert!(parser.next_event().unwrap().is_none());
            }
            parser.feed_message(bytes);
            assert!(parser.next_event().unwrap().is_some(), "{text}");
            assert!(parser.next_event().unwrap().is_none(), "{text}");
        }
    }
    let client: Vec<String> = sent[0]
        .iter()
        .map(|b| String::from_utf8_lossy(b).into())
        .collect();
    // The header, the restart after SASL, stanzas with their own namespace, the close.
    assert_eq!(
        client[0],
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='im.example.com' version='1.0'/>"
    );
    assert_eq!(
        client.iter().filter(|m| m.starts_with("<open ")).count(),
        2,
        "{client:#?}"
    );
    assert!(
        client
            .iter()
            .any(|m| m.starts_with("<message xmlns='jabber:client' to='romeo@im.example.com'>"))
    );
    assert_eq!(
        client.last().unwrap(),
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
    );
    let server: Vec<String> = sent[1]
        .iter()
        .map(|b| String::from_utf8_lossy(b).into())
        .collect();
    assert!(
        server[1].starts_with("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"),
        "{server:#?}"
    );
    assert!(
        !server.iter().any(|m| m.contains("starttls")),
        "no STARTTLS over WebSocket"
    );
    assert!(events[1].iter().any(|e| matches!(e, Event::Stanza(s) if s.get_child("body", "jabber:client").is_some_and(|b| b.text() == "hi"))));
    assert!(events[0].iter().any(|e| matches!(e, Event::Stanza(s) if s.get_child("body", "jabber:client").is_some_and(|b| b.text() == "hello"))));
    assert!(matches!(
        events[0].last(),
        Some(Event::Closed {
            reason: CloseReason::Graceful
        })
    ));
}

/// A framed server fed one raw message after the client's header: the error it closes with
/// and what it sent.
fn server_after_open(message: &str) -> (Option<StreamErrorCondition>, Vec<String>, Vec<Event>) {
    let server = ServerStream::new(
        ServerConfig::new(BareJid::new("im.example.com").unwrap()),
        SeededEntropy::new(2),
        MemoryBackend::new(),
    )
    .websocket();
    let mut server = AnyStream::from(server);
    server.start(Instant::ZERO, Transport::Plain).unwrap();
    let open =
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='im.example.com' version='1.0'/>";
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut result = Ok(());
    for input in [open, message] {
        result = server.handle_message(Instant::ZERO, input.as_bytes());
        while let Some(output) = server.poll_output() {
            match output {
                Output::Transmit(bytes) => sent.push(String::from_utf8(bytes).unwrap()),
                Output::Event(event) => events.push(event),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    (result.err().map(|e| e.condition()), sent, events)
}

#[test]
fn framing_errors_close_with_their_exact_condition() {
    for (what, message, condition) in [
        (
            "partial element",
            "<iq xmlns='jabber:client' type='get' id='1'>",
            StreamErrorCondition::NotWellFormed,
        ),
        (
            "two elements",
            "<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>",
            StreamErrorCondition::NotWellFormed,
        ),
        (
            "tcp header",
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>",
            StreamErrorCondition::InvalidNamespace,
        ),
        (
            "second open",
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='im.example.com' version='1.0'/>",
            StreamErrorCondition::BadFormat,
        ),
    ] {
        let (error, sent, events) = server_after_open(message);
        assert_eq!(error, Some(condition), "{what}");
        // The stream error and the close, each its own message, after the header and features.
        let n = sent.len();
        assert_eq!(
            sent[n - 2],
            format!(
                "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><{} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
                condition.as_str()
            ),
            "{what}"
        );
        assert_eq!(
            sent[n - 1],
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
            "{what}"
        );
        assert!(
            !events.iter().any(|e| matches!(e, Event::Stanza(_))),
            "{what}"
        );
    }
}

#[test]
fn wrong_framing_namespace_or_version_before_anything_else() {
    for (open, condition) in [
        (
            "<open xmlns='urn:example:not-framing' to='im.example.com' version='1.0'/>",
            StreamErrorCondition::InvalidNamespace,
        ),
        (
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='im.example.com' version='2.0'/>",
            StreamErrorCondition::UnsupportedVersion,
        ),
        (
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='im.example.com'/>",
            StreamErrorCondition::UnsupportedVersion,
        ),
    ] {
        let mut server = ServerStream::new(
            ServerConfig::new(BareJid::new("im.example.com").unwrap()),
            SeededEntropy::new(2),
            MemoryBackend::new(),
        )
        .websocket();
        server.start(Instant::ZERO, Transport::Plain).unwrap();
        let error = server
            .handle_message(Instant::ZERO, open.as_bytes())
            .unwrap_err();
        assert_eq!(error.condition(), condition, "{open}");
        let mut sent = Vec::new();
        while let Some(output) = server.poll_output() {
            if let Output::Transmit(bytes) = output {
                sent.push(String::from_utf8(bytes).unwrap());
            }
        }
        // Our `<open/>` first (RFC 6120 §4.9.1.2), then the error, then `<close/>`.
        assert!(
            sent[0].starts_with(
                "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='im.example.com'"
            ),
            "{sent:?}"
        );
        assert!(sent[1].contains(condition.as_str()), "{sent:?}");
        assert_eq!(sent.len(), 3, "{sent:?}");
    }
}

#[test]
fn see_other_uri_is_reported_as_a_redirect() {
    let mut client = ClientConfig::new(BareJid::new("juliet@im.example.com").unwrap(), "r0m30");
    client.tls = TlsPolicy::Disabled;
    let mut client = ClientStream::new(client, SeededEntropy::new(1)).websocket();
    client.start(Instant::ZERO, Transport::Plain).unwrap();
    client
        .handle_message(Instant::ZERO, b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='im.example.com' id='x' version='1.0'/>")
        .unwrap();
    client
        .handle_message(Instant::ZERO, b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://other.example/xmpp-websocket'/>")
        .unwrap();
    let mut events = Vec::new();
    while let Some(output) = client.poll_output() {
        if let Output::Event(event) = output {
            events.push(event);
        }
    }
    let n = events.len();
    assert_eq!(
        events[n - 2],
        Event::SeeOtherUri {
            uri: "wss://other.example/xmpp-websocket".into()
        }
    );
    assert!(matches!(
        events[n - 1],
        Event::Closed {
            reason: CloseReason::Graceful
        }
    ));
}

#[test]
fn nothing_after_the_peers_close_is_delivered() {
    let mut ends = ends(true);
    let mut events = [Vec::new(), Vec::new()];
    let mut sent = [Vec::new(), Vec::new()];
    for end in &mut ends {
        end.start(Instant::ZERO, Transport::Plain).unwrap();
    }
    drive(&mut ends, &mut events, &mut sent);
    let close = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
    ends[1].handle_message(Instant::ZERO, close).unwrap();
    let before = events[1].len();
    let _ = ends[1].handle_message(
        Instant::ZERO,
        b"<message xmlns='jabber:client' to='romeo@im.example.com'><body>late</body></message>",
    );
    while let Some(output) = ends[1].poll_output() {
        if let Output::Event(event) = output {
            events[1].push(event);
        }
    }
    assert!(ends[1].is_closed());
    assert!(
        !events[1][before..]
            .iter()
            .any(|e| matches!(e, Event::Stanza(_))),
        "{:?}",
        &events[1][before..]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Any sequence of stanzas each way gives the same events on a framed stream as on TCP.
    #[test]
    fn framed_sessions_give_the_same_events_as_tcp(
        stanzas in proptest::collection::vec((any::<bool>(), "[a-z <>&]{0,10}"), 0..6)
    ) {
        let stanzas: Vec<(bool, Element)> = stanzas
            .into_iter()
            .map(|(from_client, body)| {
                let to = if from_client { "romeo@im.example.com" } else { "juliet@im.example.com/balcony" };
                (from_client, message(to, &body))
            })
            .collect();
        let (framed, _) = session(true, &stanzas);
        let (tcp, _) = session(false, &stanzas);
        prop_assert_eq!(framed, tcp);
    }
}

#[test]
fn the_server_closes_naming_another_endpoint() {
    let mut pair = ends(true);
    let mut events = [Vec::new(), Vec::new()];
    let mut sent = [Vec::new(), Vec::new()];
    for end in &mut pair {
        end.start(Instant::ZERO, Transport::Plain).unwrap();
    }
    drive(&mut pair, &mut events, &mut sent);
    assert!(pair[0].is_negotiated() && pair[1].is_negotiated());
    let server = pair[1].as_server_mut().unwrap();
    // Refused: empty, or not XML.
    assert!(server.close_see_other_uri(Instant::ZERO, "").is_err());
    assert!(
        server
            .close_see_other_uri(Instant::ZERO, "wss://a\u{1}b")
            .is_err()
    );
    let before = sent[1].len();
    server
        .close_see_other_uri(Instant::ZERO, "wss://other.example/ws?a=1&b='2'")
        .unwrap();
    drive(&mut pair, &mut events, &mut sent);
    // One message: the `<close/>` with the URI, escaped.
    assert_eq!(
        String::from_utf8(sent[1][before].clone()).unwrap(),
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' \
         see-other-uri='wss://other.example/ws?a=1&amp;b=&apos;2&apos;'/>"
    );
    assert_eq!(sent[1].len(), before + 1, "{:?}", &sent[1][before..]);
    // The client reports the redirect with the URI as sent, then the close.
    let n = events[0].len();
    assert_eq!(
        events[0][n - 2],
        Event::SeeOtherUri {
            uri: "wss://other.example/ws?a=1&b='2'".into()
        }
    );
    assert!(matches!(events[0][n - 1], Event::Closed { .. }));
    assert!(pair[0].is_closed() && pair[1].is_closed());
    // A TCP stream has no such close: the host uses the see-other-host stream error.
    let mut tcp = ends(false);
    tcp[1].start(Instant::ZERO, Transport::Plain).unwrap();
    assert!(
        tcp[1]
            .as_server_mut()
            .unwrap()
            .close_see_other_uri(Instant::ZERO, "wss://other.example/ws")
            .is_err()
    );
}

/// A negotiated server end for `juliet` (WebSocket or TCP) with envelopes on, and its client.
fn negotiated_with_envelopes(websocket: bool) -> ([AnyStream; 2], [Vec<Event>; 2]) {
    let mut client = ClientConfig::new(BareJid::new("juliet@im.example.com").unwrap(), "r0m30");
    client.tls = TlsPolicy::Disabled;
    client.resource = Some("balcony".into());
    let mut server = ServerConfig::new(BareJid::new("im.example.com").unwrap());
    server.tls = TlsPolicy::Disabled;
    server.envelopes = true;
    let accounts = MemoryBackend::new().with_user("juliet", "r0m30", 4096);
    let client = ClientStream::new(client, SeededEntropy::new(1));
    let server = ServerStream::new(server, SeededEntropy::new(2), accounts);
    let mut ends: [AnyStream; 2] = if websocket {
        [client.websocket().into(), server.websocket().into()]
    } else {
        [client.into(), server.into()]
    };
    let mut events = [Vec::new(), Vec::new()];
    let mut sent = [Vec::new(), Vec::new()];
    for end in &mut ends {
        end.start(Instant::ZERO, Transport::Plain).unwrap();
    }
    drive(&mut ends, &mut events, &mut sent);
    assert!(ends[0].is_negotiated() && ends[1].is_negotiated());
    (ends, events)
}

#[test]
fn envelopes_cross_between_websocket_and_tcp_sessions() {
    for (from_websocket, to_websocket) in [(true, true), (true, false), (false, true)] {
        let (mut a, mut a_events) = negotiated_with_envelopes(from_websocket);
        let (mut b, mut b_events) = negotiated_with_envelopes(to_websocket);
        let mut sent = [Vec::new(), Vec::new()];
        a[0].send_stanza(
            Instant::ZERO,
            &message("romeo@im.example.com", "hi &amp; bye"),
        )
        .unwrap();
        drive(&mut a, &mut a_events, &mut sent);
        let envelope = a_events[1]
            .iter()
            .find_map(|e| match e {
                Event::StanzaEnvelope(env) => Some(env.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no envelope: {:?}", a_events[1]));
        assert_eq!(envelope.to(), Some("romeo@im.example.com"));
        let mut sent = [Vec::new(), Vec::new()];
        b[1].send_envelope(
            Instant::ZERO,
            &envelope,
            Some("juliet@im.example.com/balcony"),
            None,
        )
        .unwrap();
        drive(&mut b, &mut b_events, &mut sent);
        let out = String::from_utf8(sent[1].concat()).unwrap();
        if to_websocket {
            // One message, the stanza declaring its namespace, no element built.
            assert_eq!(sent[1].len(), 1);
            assert!(
                out.starts_with("<message to='romeo@im.example.com' xmlns='jabber:client'"),
                "{out}"
            );
        } else {
            assert!(
                out.starts_with("<message to='romeo@im.example.com' from="),
                "{out}"
            );
        }
        let got = b_events[0]
            .iter()
            .find_map(|e| match e {
                Event::Stanza(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("nothing delivered: {:?}", b_events[0]));
        assert_eq!(got.attr("from"), Some("juliet@im.example.com/balcony"));
        assert_eq!(
            got.get_child("body", "jabber:client")
                .map(Element::text)
                .as_deref(),
            Some("hi &amp; bye")
        );
    }
}
