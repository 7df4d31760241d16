//! XEP-0114 external components, both ends: the handshake, stanzas both ways, and each way
//! the server end refuses a component, with its exact stream error.
#![allow(clippy::unwrap_used, clippy::panic)]

use minidom::Element;
use xmpp_stream::{
    AnyStream, BareJid, CloseReason, ComponentBackend, ComponentConfig, ComponentServerConfig,
    ComponentServerStream, ComponentStream, Event, Instant, MemoryComponents, Output,
    SeededEntropy, StreamErrorCondition, Transport,
};

const SECRET: &str = "s3cr3t";

fn domain() -> BareJid {
    BareJid::new("comp.example.com").unwrap()
}

fn server_with(backend: impl ComponentBackend + Send + 'static) -> ComponentServerStream {
    let mut server =
        ComponentServerStream::new(ComponentServerConfig::new(), SeededEntropy::new(2), backend);
    server.start(Instant::ZERO, Transport::Plain).unwrap();
    server
}

fn server() -> ComponentServerStream {
    server_with(MemoryComponents::new().with_component(domain(), SECRET))
}

fn component(secret: &str) -> ComponentStream {
    let mut component = ComponentStream::new(
        ComponentConfig::new(domain(), secret),
        SeededEntropy::new(1),
    );
    component.start(Instant::ZERO, Transport::Plain).unwrap();
    component
}

/// Moves bytes between two ends until both are quiet; returns each end's events.
fn drive(a: &mut AnyStream, b: &mut AnyStream) -> (Vec<Event>, Vec<Event>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        while let Some(out) = a.poll_output() {
            moved = true;
            match out {
                Output::Transmit(bytes) => {
                    let _ = b.handle_input(Instant::ZERO, &bytes);
                }
                Output::Event(e) => ea.push(e),
                _ => {}
            }
        }
        while let Some(out) = b.poll_output() {
            moved = true;
            match out {
                Output::Transmit(bytes) => {
                    let _ = a.handle_input(Instant::ZERO, &bytes);
                }
                Output::Event(e) => eb.push(e),
                _ => {}
            }
        }
        if !moved {
            return (ea, eb);
        }
    }
}

/// Feeds raw bytes to a server end; returns what it wrote and its events.
fn raw(server: &mut ComponentServerStream, input: &str) -> (String, Vec<Event>) {
    let _ = server.handle_input(Instant::ZERO, input.as_bytes());
    let (mut wire, mut events) = (Vec::new(), Vec::new());
    while let Some(out) = server.poll_output() {
        match out {
            Output::Transmit(bytes) => wire.extend(bytes),
            Output::Event(e) => events.push(e),
            _ => {}
        }
    }
    (String::from_utf8(wire).unwrap(), events)
}

fn closed_with(events: &[Event]) -> Option<StreamErrorCondition> {
    events.iter().find_map(|e| match e {
        Event::Closed {
            reason: CloseReason::ProtocolError(error),
        } => Some(error.condition()),
        _ => None,
    })
}

const HEADER: &str = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
    xmlns='jabber:component:accept' to='comp.example.com'>";

/// The handshake for the id the seeded server end (seed 2) draws.
fn handshake_for(server: &ComponentServerStream) -> String {
    let id = server.stream_id().unwrap();
    // The digest is checked independently in the crate's unit test; here the value
    // only needs to be the one the component end computes for this id.
    let mut probe = ComponentStream::new(
        ComponentConfig::new(domain(), SECRET),
        SeededEntropy::new(9),
    );
    probe.start(Instant::ZERO, Transport::Plain).unwrap();
    while probe.poll_output().is_some() {}
    let header = format!(
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
         xmlns='jabber:component:accept' from='comp.example.com' id='{id}'>"
    );
    probe
        .handle_input(Instant::ZERO, header.as_bytes())
        .unwrap();
    let mut wire = Vec::new();
    while let Some(out) = probe.poll_output() {
        if let Output::Transmit(bytes) = out {
            wire.extend(bytes);
        }
    }
    String::from_utf8(wire).unwrap()
}

fn message(ns: &str, from: &str, to: &str, body: &str) -> Element {
    format!("<message xmlns='{ns}' from='{from}' to='{to}'><body>{body}</body></message>")
        .parse()
        .unwrap()
}

#[test]
fn component_handshakes_and_exchanges_stanzas() {
    let mut a: AnyStream = component(SECRET).into();
    let mut b: AnyStream = server().into();
    let (ea, eb) = drive(&mut a, &mut b);
    let negotiated = Event::ComponentNegotiated { domain: domain() };
    assert!(ea.contains(&negotiated), "{ea:?}");
    assert!(eb.contains(&negotiated), "{eb:?}");
    assert!(a.is_negotiated() && b.is_negotiated());
    assert_eq!(a.stream_id(), b.stream_id());
    assert!(a.jid().is_none());

    // Component to server, from a subdomain's user; server to component, in jabber:client
    // (as a host routes a user's stanza): each arrives in jabber:component:accept.
    let out = message(
        "jabber:component:accept",
        "bot@rooms.comp.example.com",
        "juliet@example.com",
        "hello",
    );
    a.send_stanza(Instant::ZERO, &out).unwrap();
    let back = message(
        "jabber:client",
        "juliet@example.com/balcony",
        "bot@comp.example.com",
        "hi",
    );
    b.send_stanza(Instant::ZERO, &back).unwrap();
    let (ea, eb) = drive(&mut a, &mut b);
    let got = |events: &[Event]| -> Vec<Element> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Stanza(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    let at_server = got(&eb);
    assert_eq!(at_server.len(), 1);
    assert!(at_server[0].is("message", "jabber:component:accept"));
    assert_eq!(
        at_server[0].attr("from"),
        Some("bot@rooms.comp.example.com")
    );
    let at_component = got(&ea);
    assert_eq!(at_component.len(), 1);
    assert!(at_component[0].is("message", "jabber:component:accept"));
    assert_eq!(
        at_component[0]
            .get_child("body", "jabber:component:accept")
            .map(Element::text),
        Some("hi".to_owned())
    );

    a.close(Instant::ZERO).unwrap();
    let (ea, eb) = drive(&mut a, &mut b);
    assert!(ea.contains(&Event::Closed {
        reason: CloseReason::Graceful
    }));
    assert!(eb.contains(&Event::Closed {
        reason: CloseReason::Graceful
    }));
}

#[test]
fn wrong_secret_is_not_authorized() {
    let mut a: AnyStream = component("not the secret").into();
    let mut b: AnyStream = server().into();
    let (ea, eb) = drive(&mut a, &mut b);
    assert_eq!(closed_with(&eb), Some(StreamErrorCondition::NotAuthorized));
    assert!(
        ea.iter().any(|e| matches!(
            e,
            Event::Closed { reason: CloseReason::StreamError(error) }
                if error.condition == StreamErrorCondition::NotAuthorized
        )),
        "{ea:?}"
    );
    assert!(!a.is_negotiated() && !b.is_negotiated());
}

#[test]
fn unknown_component_is_host_unknown() {
    let mut server = server();
    let header = HEADER.replace("comp.example.com", "other.example.com");
    let (wire, events) = raw(&mut server, &header);
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::HostUnknown)
    );
    // Our header goes out first, then the error (RFC 6120 §4.9.1.2).
    let header_at = wire.find("<stream:stream").unwrap();
    assert!(wire.find("<host-unknown").unwrap() > header_at, "{wire}");
    // Our header does not claim to be the unknown domain.
    assert!(!wire.contains("from='other.example.com'"), "{wire}");
}

#[test]
fn client_namespace_on_the_component_port_is_invalid_namespace() {
    let mut server = server();
    let header = HEADER.replace("jabber:component:accept", "jabber:client");
    let (_, events) = raw(&mut server, &header);
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::InvalidNamespace)
    );
}

#[test]
fn stanza_before_handshake_is_not_authorized() {
    let mut server = server();
    let input = format!(
        "{HEADER}<message from='comp.example.com' to='juliet@example.com'><body>x</body></message>"
    );
    let (_, events) = raw(&mut server, &input);
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::NotAuthorized)
    );
    assert!(!events.iter().any(|e| matches!(e, Event::Stanza(_))));
}

/// Connects a raw component to the server end: header and the right handshake.
fn handshaken() -> ComponentServerStream {
    let mut server = server();
    let (_, _) = raw(&mut server, HEADER);
    let handshake = handshake_for(&server);
    let (wire, events) = raw(&mut server, &handshake);
    assert!(wire.contains("<handshake/>"), "{wire}");
    assert!(events.contains(&Event::ComponentNegotiated { domain: domain() }));
    server
}

#[test]
fn second_handshake_is_rejected() {
    let mut server = handshaken();
    let handshake = handshake_for(&server);
    let (_, events) = raw(&mut server, &handshake);
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::UnsupportedStanzaType)
    );
}

#[test]
fn from_outside_the_domain_is_invalid_from() {
    for from in [
        "romeo@example.com",
        "evilcomp.example.com",
        "comp.example.com.evil",
    ] {
        let mut server = handshaken();
        let input = format!("<message from='{from}' to='juliet@example.com'/>");
        let (_, events) = raw(&mut server, &input);
        assert_eq!(
            closed_with(&events),
            Some(StreamErrorCondition::InvalidFrom),
            "{from}"
        );
    }
    let mut server = handshaken();
    let (_, events) = raw(&mut server, "<message to='juliet@example.com'/>");
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::ImproperAddressing)
    );
}

#[test]
fn conflict_when_already_connected() {
    struct Busy;
    impl ComponentBackend for Busy {
        fn secret(&self, _: &BareJid) -> Option<String> {
            Some(SECRET.to_owned())
        }
        fn is_connected(&self, _: &BareJid) -> bool {
            true
        }
    }
    let mut a: AnyStream = component(SECRET).into();
    let mut b: AnyStream = server_with(Busy).into();
    let (_, eb) = drive(&mut a, &mut b);
    assert_eq!(closed_with(&eb), Some(StreamErrorCondition::Conflict));
}

#[test]
fn nonzas_reach_the_host() {
    let mut server = handshaken();
    let (_, events) = raw(&mut server, "<r xmlns='urn:xmpp:sm:3'/>");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Nonza(el) if el.is("r", "urn:xmpp:sm:3"))),
        "{events:?}"
    );
}

// ----- hostile components, byte by byte -----

/// The stream id the server end seeded with 2 draws, and the handshake for it with
/// [`SECRET`], both computed outside this crate (Python: SplitMix64(2), 20 bytes, base64;
/// `hashlib.sha1(id + secret).hexdigest()`), as fuzz/corpus/make_seeds.py does.
const SEEDED_ID: &str = "zlaXHN41WJdCHvwLEEbIvy9Tft0=";
const SEEDED_DIGEST: &str = "3a1997dfb157f36cf5d016b788ee7de9819b85e0";

fn handshake_text(text: &str) -> String {
    format!("<handshake>{text}</handshake>")
}

/// The elements a component reads in `wire` (the server's bytes after its header).
fn elements(wire: &str) -> Vec<Element> {
    let mut parser = xmpp_xml::StreamParser::new();
    parser.feed(
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
          xmlns='jabber:component:accept' id='x'>",
    );
    parser.feed(wire.as_bytes());
    let mut out = Vec::new();
    while let Some(event) = parser.next_event().unwrap() {
        if let xmpp_xml::Event::Element(element) = event {
            out.push(element);
        }
    }
    out
}

#[test]
fn handshake_is_hex_sha1_of_the_id_and_secret() {
    let mut server = server();
    let (_, _) = raw(&mut server, HEADER);
    assert_eq!(server.stream_id(), Some(SEEDED_ID));
    // The component end computes the same value as an independent implementation.
    assert_eq!(handshake_for(&server), handshake_text(SEEDED_DIGEST));
}

#[test]
fn handshake_before_the_header_is_invalid_namespace() {
    // The first element of a stream must be `<stream:stream>` in the streams namespace
    // (RFC 6120 §4.8.1); xmpp-xml's parser resolves the root element's namespace before its
    // name, and an unprefixed `<handshake/>` without a default namespace is in no namespace:
    // "the stream namespace name is something other than http://etherx.jabber.org/streams",
    // which is `invalid-namespace` (RFC 6120 §4.9.3.10). The same holds with the component
    // namespace declared on it.
    for input in [
        handshake_text(SEEDED_DIGEST),
        format!("<handshake xmlns='jabber:component:accept'>{SEEDED_DIGEST}</handshake>{HEADER}"),
    ] {
        let mut server = server();
        let (wire, events) = raw(&mut server, &input);
        assert_eq!(
            closed_with(&events),
            Some(StreamErrorCondition::InvalidNamespace),
            "{input}"
        );
        assert!(!events.iter().any(|e| matches!(
            e,
            Event::StreamOpened { .. } | Event::ComponentNegotiated { .. }
        )));
        // Our own header goes out first, then the error and the close (RFC 6120 §4.9.1.2).
        let header_at = wire.find("<stream:stream").unwrap();
        let error_at = wire
            .find("<invalid-namespace xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
            .unwrap();
        assert!(header_at < error_at, "{wire}");
        assert!(wire.ends_with("</stream:stream>"), "{wire}");
        assert!(server.is_closed() && !server.is_negotiated());
    }
    // In the streams namespace but not named `stream`: XML the receiver cannot process as
    // a stream header, `bad-format` (RFC 6120 §4.9.3.1).
    let mut server = server();
    let (_, events) = raw(
        &mut server,
        "<stream:handshake xmlns:stream='http://etherx.jabber.org/streams'/>",
    );
    assert_eq!(closed_with(&events), Some(StreamErrorCondition::BadFormat));
}

#[test]
fn empty_handshake_is_not_authorized() {
    for handshake in [
        "<handshake/>",
        "<handshake></handshake>",
        "<handshake>  </handshake>",
    ] {
        let mut server = server();
        let (wire, events) = raw(&mut server, &format!("{HEADER}{handshake}"));
        assert_eq!(
            closed_with(&events),
            Some(StreamErrorCondition::NotAuthorized),
            "{handshake}"
        );
        assert!(!wire.contains("<handshake/>"), "{wire}");
        assert!(!server.is_negotiated());
    }
}

#[test]
fn overlong_handshake_is_not_authorized() {
    // The right digest with more after it: one hex digit, a second copy, a long run.
    for text in [
        format!("{SEEDED_DIGEST}0"),
        SEEDED_DIGEST.repeat(2),
        format!("{SEEDED_DIGEST}{}", "0".repeat(10_000)),
    ] {
        let mut server = server();
        let (_, events) = raw(&mut server, &format!("{HEADER}{}", handshake_text(&text)));
        assert_eq!(
            closed_with(&events),
            Some(StreamErrorCondition::NotAuthorized),
            "{} hex digits",
            text.len()
        );
    }
    // Longer than the stanza bound: the parser stops it before it is buffered whole.
    let mut config = ComponentServerConfig::new();
    config.limits.max_stanza_bytes = 1024;
    let mut server = ComponentServerStream::new(
        config,
        SeededEntropy::new(2),
        MemoryComponents::new().with_component(domain(), SECRET),
    );
    server.start(Instant::ZERO, Transport::Plain).unwrap();
    let (_, events) = raw(
        &mut server,
        &format!("{HEADER}{}", handshake_text(&"a".repeat(4096))),
    );
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn handshake_in_uppercase_hex_is_accepted() {
    let mut server = server();
    let (_, _) = raw(&mut server, HEADER);
    let upper = SEEDED_DIGEST.to_ascii_uppercase();
    assert_ne!(upper, SEEDED_DIGEST);
    let (wire, events) = raw(&mut server, &handshake_text(&upper));
    assert_eq!(wire, "<handshake/>");
    assert_eq!(
        events,
        vec![Event::ComponentNegotiated { domain: domain() }]
    );
    assert!(server.is_negotiated());
}

#[test]
fn to_with_a_node_or_a_resource_is_host_unknown() {
    for to in [
        "bot@comp.example.com",
        "comp.example.com/r",
        "bot@comp.example.com/r",
        "",
        "@@",
    ] {
        let mut server = server();
        let header = HEADER.replace("to='comp.example.com'", &format!("to='{to}'"));
        let (wire, events) = raw(&mut server, &header);
        assert_eq!(
            closed_with(&events),
            Some(StreamErrorCondition::HostUnknown),
            "{to}"
        );
        assert!(wire.contains("<host-unknown"), "{wire}");
        assert_eq!(server.domain(), None);
    }
}

#[test]
fn header_without_to_is_host_unknown() {
    let mut server = server();
    let header = HEADER.replace(" to='comp.example.com'", "");
    assert!(!header.contains("to="));
    let (wire, events) = raw(&mut server, &header);
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::HostUnknown)
    );
    let header_at = wire.find("<stream:stream").unwrap();
    assert!(wire.find("<host-unknown").unwrap() > header_at, "{wire}");
    // Our header does not claim to be the unknown domain.
    assert!(!wire.contains("from='other.example.com'"), "{wire}");
    assert_eq!(server.domain(), None);
}

/// A whole component session as one byte string: header, handshake, stanzas (one to a
/// malformed address, answered with an error), a nonza, the close.
fn whole_session() -> String {
    format!(
        "{HEADER}{}\
         <message from='bot@comp.example.com' to='juliet@example.com' id='m1'><body>hi</body></message>\
         <presence from='rooms.comp.example.com' to='juliet@example.com/balcony'/>\
         <message from='bot@comp.example.com' to='a@b@c' id='m2'><body>x</body></message>\
         <r xmlns='urn:xmpp:sm:3'/>\
         <iq from='comp.example.com' to='example.com' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>\
         </stream:stream>",
        handshake_text(SEEDED_DIGEST)
    )
}

/// What a server end did with `pieces`: its bytes, its events, the errors returned.
fn feed_pieces(pieces: &[&[u8]]) -> (Vec<u8>, Vec<Event>, Vec<String>) {
    let mut server = server();
    let (mut wire, mut events, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for piece in pieces {
        if let Err(e) = server.handle_input(Instant::ZERO, piece) {
            errors.push(e.to_string());
        }
        while let Some(out) = server.poll_output() {
            match out {
                Output::Transmit(bytes) => wire.extend(bytes),
                Output::Event(e) => events.push(e),
                other => panic!("{other:?}"),
            }
        }
    }
    (wire, events, errors)
}

#[test]
fn every_split_point_gives_the_same_session() {
    let session = whole_session();
    let bytes = session.as_bytes();
    let whole = feed_pieces(&[bytes]);
    let (_, events, errors) = &whole;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(events.contains(&Event::ComponentNegotiated { domain: domain() }));
    let stanzas = events
        .iter()
        .filter(|e| matches!(e, Event::Stanza(_)))
        .count();
    assert_eq!(stanzas, 3, "{events:?}");
    assert_eq!(
        events.last(),
        Some(&Event::Closed {
            reason: CloseReason::Graceful
        })
    );
    for at in 0..=bytes.len() {
        let (a, b) = bytes.split_at(at);
        assert_eq!(feed_pieces(&[a, b]), whole, "split at {at}");
    }
    // And one byte at a time.
    let single: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(feed_pieces(&single), whole);
}

#[test]
fn stanza_to_a_malformed_address_gets_jid_malformed_and_the_stream_stays_up() {
    let mut server = handshaken();
    let (wire, events) = raw(
        &mut server,
        "<message from='bot@comp.example.com' to='a@b@c' id='m2'><body>x</body></message>",
    );
    assert!(events.is_empty(), "{events:?}");
    let replies = elements(&wire);
    assert_eq!(replies.len(), 1, "{wire}");
    let reply = &replies[0];
    assert!(reply.is("message", "jabber:component:accept"));
    assert_eq!(reply.attr("type"), Some("error"));
    assert_eq!(reply.attr("id"), Some("m2"));
    assert_eq!(reply.attr("to"), Some("bot@comp.example.com"));
    // Not `from='a@b@c'`: the server never writes the malformed address back.
    assert_eq!(reply.attr("from"), None, "{wire}");
    let error = xmpp_stream::StanzaError::from_element(
        reply.get_child("error", "jabber:component:accept").unwrap(),
    )
    .unwrap();
    assert_eq!(
        error.condition,
        xmpp_stream::StanzaErrorCondition::JidMalformed
    );
    assert!(server.is_negotiated() && !server.is_closed());

    // An error stanza to a malformed address is dropped without a reply (no error loops).
    let (wire, events) = raw(
        &mut server,
        "<message from='bot@comp.example.com' to='a@b@c' type='error'/>",
    );
    assert_eq!((wire.as_str(), events.len()), ("", 0));

    // The next good stanza goes through.
    let (_, events) = raw(
        &mut server,
        "<message from='bot@comp.example.com' to='juliet@example.com'/>",
    );
    assert!(
        matches!(events.as_slice(), [Event::Stanza(s)] if s.attr("to") == Some("juliet@example.com")),
        "{events:?}"
    );
}

/// Drains a machine that overflowed: only the stream error and the close are left on the
/// wire, then `Closed` with `resource-constraint`.
fn assert_overflowed(server: &mut ComponentServerStream) {
    let (wire, events) = raw(server, "");
    assert_eq!(
        wire,
        "<stream:error><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         </stream:error></stream:stream>"
    );
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::ResourceConstraint)
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(server.is_closed());
    assert!(server.poll_timeout().is_none(), "no timers after Closed");
    assert_eq!(
        server
            .handle_input(Instant::ZERO, b"<presence/>")
            .err()
            .map(|e| e.condition()),
        Some(StreamErrorCondition::ResourceConstraint)
    );
}

fn bounded_server(max_output_bytes: usize) -> ComponentServerStream {
    let mut config = ComponentServerConfig::new();
    config.max_output_bytes = max_output_bytes;
    let mut server = ComponentServerStream::new(
        config,
        SeededEntropy::new(2),
        MemoryComponents::new().with_component(domain(), SECRET),
    );
    server.start(Instant::ZERO, Transport::Plain).unwrap();
    let (_, _) = raw(&mut server, HEADER);
    let (_, events) = raw(&mut server, &handshake_text(SEEDED_DIGEST));
    assert!(events.contains(&Event::ComponentNegotiated { domain: domain() }));
    server
}

#[test]
fn unpolled_output_hits_the_bound_with_resource_constraint() {
    // The host keeps routing stanzas to a component that does not read (the host's writes
    // block, so it stops polling).
    let mut server = bounded_server(16 * 1024);
    let stanza = message(
        "jabber:client",
        "juliet@example.com/balcony",
        "bot@comp.example.com",
        &"x".repeat(1000),
    );
    let mut accepted = 0usize;
    let refused = loop {
        match server.send_stanza(Instant::ZERO, &stanza) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "no bound on queued output");
    };
    assert_eq!(refused, xmpp_stream::UsageError::Closed);
    assert!((10..=16).contains(&accepted), "{accepted}");
    assert_overflowed(&mut server);

    // The component itself floods stanzas the server must answer (to a malformed address)
    // while the host reads its input but never polls.
    let mut server = bounded_server(4 * 1024);
    let bad = "<message from='bot@comp.example.com' to='a@b@c'><body>x</body></message>";
    let mut fed = 0usize;
    let error = loop {
        match server.handle_input(Instant::ZERO, bad.as_bytes()) {
            Ok(()) => fed += 1,
            Err(e) => break e,
        }
        assert!(fed < 10_000, "no bound on queued output");
    };
    assert_eq!(error.condition(), StreamErrorCondition::ResourceConstraint);
    assert_overflowed(&mut server);
}

#[test]
fn negotiation_timeout_before_the_handshake_is_connection_timeout() {
    // After the header, and before anything arrived at all (our header goes out first).
    for input in [HEADER, ""] {
        let mut server = server();
        let (mut wire, _) = raw(&mut server, input);
        let deadline = server.poll_timeout().unwrap();
        assert_eq!(
            deadline,
            Instant::ZERO + core::time::Duration::from_secs(60)
        );
        server.handle_timeout(deadline);
        let (rest, events) = raw(&mut server, "");
        wire.push_str(&rest);
        assert!(
            wire.starts_with("<?xml version='1.0'?><stream:stream"),
            "{wire}"
        );
        assert!(
            wire.ends_with(
                "<stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
                 </stream:error></stream:stream>"
            ),
            "{wire}"
        );
        assert_eq!(
            events.last(),
            Some(&Event::Closed {
                reason: CloseReason::Timeout(xmpp_stream::Timer::Negotiation)
            })
        );
        assert!(server.is_closed() && server.poll_timeout().is_none());
    }
    // After the handshake, the deadline is gone (only the keepalive is left).
    let mut server = handshaken();
    server.handle_timeout(Instant::ZERO + core::time::Duration::from_secs(60));
    let (wire, events) = raw(&mut server, "");
    assert_eq!((wire.as_str(), events.len()), (" ", 0));
    assert!(server.is_negotiated());
}

#[test]
fn handshake_with_child_elements_is_not_authorized() {
    let mut server = server();
    let (_, _) = raw(&mut server, HEADER);
    let handshake = handshake_for(&server);
    let digest = handshake
        .trim_start_matches("<handshake>")
        .trim_end_matches("</handshake>")
        .to_owned();
    let (_, events) = raw(&mut server, &format!("<handshake>{digest}<x/></handshake>"));
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::NotAuthorized)
    );
}

#[test]
fn from_is_handed_over_normalized() {
    let mut server = handshaken();
    let (_, events) = raw(
        &mut server,
        "<message from='Bot@COMP.Example.com/R' to='juliet@example.com'/>",
    );
    let from = events.iter().find_map(|e| match e {
        Event::Stanza(s) => s.attr("from").map(str::to_owned),
        _ => None,
    });
    assert_eq!(
        from.as_deref(),
        Some("bot@comp.example.com/R"),
        "{events:?}"
    );
}
