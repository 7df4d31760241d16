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
