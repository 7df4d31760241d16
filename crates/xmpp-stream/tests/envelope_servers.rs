//! Routing without trees on the streams a server forwards between besides c2s (issue 17):
//! a component server stream (`ComponentServerConfig::envelopes`) and both ends of a
//! server-to-server stream (`S2sConfig::envelopes`). Inbound, a component's or peer server's
//! messages and presences come as `Event::StanzaEnvelope` after the element path's checks,
//! each refusal exactly the element path's; outbound, `send_envelope` splices an envelope
//! received on any stream into the stream's namespace, and the peer reads what `send_stanza`
//! of the stamped element gives; chunking never changes what envelope mode delivers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minidom::Element;
use proptest::prelude::*;
use xmpp_stream::identity::PresentedId;
use xmpp_stream::pair::Pair;
use xmpp_stream::{
    AnyStream, BareJid, ClientConfig, ClientStream, CloseReason, ComponentConfig,
    ComponentServerConfig, ComponentServerStream, ComponentStream, Event, Instant, MemoryBackend,
    MemoryComponents, Output, S2sConfig, S2sInitiatingStream, S2sReceivingStream, SeededEntropy,
    ServerConfig, ServerStream, Stamp, StreamErrorCondition, TlsPolicy, Transport, UsageError,
};
use xmpp_xml::{Envelope, NS_CLIENT, NS_COMPONENT_ACCEPT, NS_SERVER};

const NOW: Instant = Instant::ZERO;

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn closed_with(events: &[Event]) -> Option<StreamErrorCondition> {
    events.iter().find_map(|e| match e {
        Event::Closed {
            reason: CloseReason::ProtocolError(error),
        } => Some(error.condition()),
        _ => None,
    })
}

/// Each event as the element path reports it: an envelope becomes the `Event::Stanza` of
/// its element (neither path rewrites what it hands over, but a component's `from` to
/// normalize, which envelope mode hands over as an element).
fn as_elements(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .map(|e| match e {
            Event::StanzaEnvelope(env) => Event::Stanza(env.element().unwrap()),
            other => other.clone(),
        })
        .collect()
}

/// `envelope` (1) or `element` (0) for each stanza event, in order.
fn shapes(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Stanza(_) => Some("element"),
            Event::StanzaEnvelope(_) => Some("envelope"),
            _ => None,
        })
        .collect()
}

fn stanzas(events: &[Event]) -> Vec<Element> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Stanza(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Drains `stream`'s output: what it wrote and its events.
fn drain(stream: &mut AnyStream) -> (String, Vec<Event>) {
    let (mut wire, mut events) = (Vec::new(), Vec::new());
    while let Some(out) = stream.poll_output() {
        match out {
            Output::Transmit(bytes) => wire.extend(bytes),
            Output::Event(e) => events.push(e),
            _ => {}
        }
    }
    (String::from_utf8(wire).unwrap(), events)
}

/// Raw bytes from the peer to `stream`, then all it outputs.
fn raw(stream: &mut AnyStream, input: &str) -> (String, Vec<Event>) {
    let _ = stream.handle_input(NOW, input.as_bytes());
    drain(stream)
}

// ----- component server streams -----

const SECRET: &str = "s3cr3t";

/// The component header, and the handshake for the stream id the server end seeded with 2
/// draws with [`SECRET`] (computed outside this crate, as in `tests/component.rs`).
const COMPONENT_HEADER: &str = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
    xmlns='jabber:component:accept' to='comp.example.com'>";
const SEEDED_DIGEST: &str = "3a1997dfb157f36cf5d016b788ee7de9819b85e0";

fn component_server(envelopes: bool) -> AnyStream {
    let mut config = ComponentServerConfig::new();
    config.envelopes = envelopes;
    let secrets = MemoryComponents::new().with_component(jid("comp.example.com"), SECRET);
    let mut server: AnyStream =
        ComponentServerStream::new(config, SeededEntropy::new(2), secrets).into();
    server.start(NOW, Transport::Plain).unwrap();
    server
}

/// A component server end past the handshake (fed raw), its output drained.
fn handshaken(envelopes: bool) -> AnyStream {
    let mut server = component_server(envelopes);
    let (_, events) = raw(
        &mut server,
        &format!("{COMPONENT_HEADER}<handshake>{SEEDED_DIGEST}</handshake>"),
    );
    assert!(server.is_negotiated(), "{events:?}");
    server
}

const COMPONENT_STANZAS: &[&str] = &[
    "<message from='bot@comp.example.com' to='juliet@example.com' id='m1' type='chat'><body>hi &amp; bye</body></message>",
    "<presence from='rooms.comp.example.com' to='juliet@example.com/balcony'><show>away</show></presence>",
    "<message from='bot@rooms.comp.example.com/r' to='juliet&#64;example.com' id='m2' xml:lang='fr' xmlns:q='urn:q'><q:x q:from='z'/></message>",
    "<iq from='comp.example.com' to='example.com' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>",
    // Not normalized: the element path rewrites `from`, so envelope mode hands it over as an
    // element.
    "<message from='Bot@COMP.Example.com/R' to='juliet@example.com' id='m3'/>",
];

#[test]
fn a_components_stanzas_come_as_envelopes_with_the_element_paths_header() {
    let mut with = handshaken(true);
    let mut without = handshaken(false);
    let (mut with_events, mut without_events) = (Vec::new(), Vec::new());
    let (mut with_wire, mut without_wire) = (String::new(), String::new());
    for s in COMPONENT_STANZAS {
        let (wire, events) = raw(&mut with, s);
        with_wire += &wire;
        with_events.extend(events);
        let (wire, events) = raw(&mut without, s);
        without_wire += &wire;
        without_events.extend(events);
    }
    assert_eq!(
        shapes(&with_events),
        ["envelope", "envelope", "envelope", "element", "element"]
    );
    assert_eq!(shapes(&without_events), ["element"; 5]);
    // The same stanzas, `from` normalized; the same bytes written (none).
    assert_eq!(as_elements(&with_events), without_events);
    assert_eq!(with_wire, without_wire);
    let normalized = stanzas(&with_events);
    assert_eq!(
        normalized.last().and_then(|s| s.attr("from")),
        Some("bot@comp.example.com/R"),
        "{with_events:?}"
    );
    // The decoded header is the element's.
    assert_eq!(with_events.len(), without_events.len());
    for (event, element) in with_events.iter().zip(stanzas(&without_events)) {
        let Event::StanzaEnvelope(env) = event else {
            continue;
        };
        assert_eq!(env.namespace(), NS_COMPONENT_ACCEPT);
        assert_eq!(env.kind().name(), element.name());
        for (name, value) in [
            ("from", env.from()),
            ("to", env.to()),
            ("id", env.id()),
            ("type", env.stanza_type()),
        ] {
            assert_eq!(value, element.attr(name), "{name}");
        }
    }
    assert!(!with.is_closed());
}

#[test]
fn a_components_refusals_are_the_element_paths() {
    let cases = [
        (
            "<message to='juliet@example.com'/>",
            StreamErrorCondition::ImproperAddressing,
        ),
        (
            "<presence from='bot@comp.example.com'/>",
            StreamErrorCondition::ImproperAddressing,
        ),
        (
            "<message from='romeo@example.com' to='juliet@example.com'/>",
            StreamErrorCondition::InvalidFrom,
        ),
        (
            "<message from='evilcomp.example.com' to='juliet@example.com'/>",
            StreamErrorCondition::InvalidFrom,
        ),
        (
            "<message from='a@@comp.example.com' to='juliet@example.com'/>",
            StreamErrorCondition::InvalidFrom,
        ),
    ];
    for (xml, condition) in cases {
        let mut with = handshaken(true);
        let (wire, events) = raw(&mut with, xml);
        assert_eq!(closed_with(&events), Some(condition), "{xml}");
        assert!(shapes(&events).is_empty(), "{xml}: {events:?}");
        let mut without = handshaken(false);
        assert_eq!(raw(&mut without, xml), (wire, events), "{xml}");
    }
    // A malformed `to`: jid-malformed, nothing reported, the stream goes on.
    let mut with = handshaken(true);
    let bad = "<message from='bot@comp.example.com' to='a@b@c' id='bad'><body>x</body></message>";
    let (wire, events) = raw(&mut with, bad);
    assert!(
        wire.contains("jid-malformed") && wire.contains("id='bad'"),
        "{wire}"
    );
    assert!(events.is_empty(), "{events:?}");
    let mut without = handshaken(false);
    assert_eq!(raw(&mut without, bad), (wire, events));
    let (_, events) = raw(
        &mut with,
        "<message from='bot@comp.example.com' to='juliet@example.com'/>",
    );
    assert_eq!(shapes(&events), ["envelope"]);
}

#[test]
fn a_component_stream_without_envelopes_or_before_the_handshake_gives_elements() {
    // Before the handshake nothing is an envelope (the stanza is refused as on the element
    // path); with envelopes off, nothing ever is.
    let mut server = component_server(true);
    let (_, events) = raw(
        &mut server,
        &format!(
            "{COMPONENT_HEADER}<message from='bot@comp.example.com' to='juliet@example.com'/>"
        ),
    );
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::NotAuthorized)
    );
    let mut server = handshaken(false);
    let (_, events) = raw(
        &mut server,
        "<message from='bot@comp.example.com' to='juliet@example.com'/>",
    );
    assert_eq!(shapes(&events), ["element"]);
}

// ----- server-to-server streams -----

fn s2s_config(domains: &[&str], envelopes: bool, bidi: bool) -> S2sConfig {
    let mut config = S2sConfig::new(domains.iter().map(|d| jid(d)).collect());
    config.envelopes = envelopes;
    config.bidi = bidi;
    config
}

/// Our initiating end for a.example -> b.example and b.example's receiving end (which also
/// serves b2.example), authenticated by SASL EXTERNAL over (faked) TLS.
fn s2s_ends(initiating: S2sConfig, receiving: S2sConfig) -> [AnyStream; 2] {
    let mut out = S2sInitiatingStream::new(
        initiating,
        jid("a.example"),
        jid("b.example"),
        SeededEntropy::new(1),
    );
    out.set_peer_identities(vec![PresentedId::Dns("b.example".into())]);
    let mut inc = S2sReceivingStream::new(receiving, SeededEntropy::new(2));
    inc.set_peer_identities(vec![PresentedId::Dns("a.example".into())]);
    let mut ends: [AnyStream; 2] = [out.into(), inc.into()];
    for end in &mut ends {
        end.start(NOW, Transport::Plain).unwrap();
    }
    let [out_events, inc_events] = xmpp_stream::pair::drive_ends(&mut ends, NOW, |_, _, _, _| None);
    assert!(
        ends.iter().all(AnyStream::is_negotiated),
        "{out_events:?} {inc_events:?}"
    );
    assert!(
        shapes(&out_events).is_empty() && shapes(&inc_events).is_empty(),
        "negotiation elements stay elements"
    );
    ends
}

/// Established ends, envelope mode as given on both, bidi on both.
fn established(envelopes: bool) -> [AnyStream; 2] {
    s2s_ends(
        s2s_config(&["a.example"], envelopes, true),
        s2s_config(&["b.example", "b2.example"], envelopes, true),
    )
}

const TO_B: &[&str] = &[
    "<message from='alice@a.example/x' to='bob@b.example' id='m1' type='chat'><body>hi &amp; bye</body></message>",
    "<presence from='alice@a.example/x' to='bob@b.example'><priority>5</priority></presence>",
    "<message from='alice@a.example' to='bob&#64;b.example' xml:lang='de' xmlns:q='urn:q'><q:x/></message>",
    "<iq from='a.example' to='b.example' type='get' id='i1'><ping xmlns='urn:xmpp:ping'/></iq>",
    // Not in jabber:server: not a stanza of this stream, a nonza on either path.
    "<message xmlns='jabber:client' from='alice@a.example' to='bob@b.example'/>",
];

#[test]
fn a_receiving_end_hands_out_envelopes_with_the_element_paths_checks() {
    let mut with = established(true);
    let mut without = established(false);
    let (mut with_events, mut without_events) = (Vec::new(), Vec::new());
    for s in TO_B {
        with_events.extend(raw(&mut with[1], s).1);
        without_events.extend(raw(&mut without[1], s).1);
    }
    assert_eq!(
        shapes(&with_events),
        ["envelope", "envelope", "envelope", "element"]
    );
    assert_eq!(as_elements(&with_events), without_events);
    let Event::StanzaEnvelope(env) = &with_events[0] else {
        panic!("{with_events:?}")
    };
    assert_eq!(env.namespace(), NS_SERVER);
    assert_eq!(
        (env.from(), env.to(), env.id()),
        (Some("alice@a.example/x"), Some("bob@b.example"), Some("m1"))
    );
    assert!(
        with_events
            .iter()
            .any(|e| matches!(e, Event::Nonza(el) if el.is("message", NS_CLIENT)))
    );
}

/// The refusals of an established s2s stream, each with the element path's stream error.
const S2S_REFUSALS: &[(&str, StreamErrorCondition)] = &[
    // Not an authenticated pair: a domain the peer never authenticated, and one of ours it
    // did not authenticate with.
    (
        "<message from='eve@c.example' to='bob@b.example'/>",
        StreamErrorCondition::InvalidFrom,
    ),
    (
        "<message from='alice@a.example' to='bob@b2.example'/>",
        StreamErrorCondition::InvalidFrom,
    ),
    (
        "<presence from='alice@a.example' to='bob@z.example'/>",
        StreamErrorCondition::HostUnknown,
    ),
    (
        "<message to='bob@b.example'/>",
        StreamErrorCondition::ImproperAddressing,
    ),
    (
        "<presence from='alice@a.example'/>",
        StreamErrorCondition::ImproperAddressing,
    ),
];

#[test]
fn a_receiving_ends_refusals_are_the_element_paths() {
    for (xml, condition) in S2S_REFUSALS {
        let mut with = established(true);
        let (wire, events) = raw(&mut with[1], xml);
        assert_eq!(closed_with(&events), Some(*condition), "{xml}");
        assert!(shapes(&events).is_empty(), "{xml}: {events:?}");
        let mut without = established(false);
        assert_eq!(raw(&mut without[1], xml), (wire, events), "{xml}");
    }
    // Malformed addresses: jid-malformed, the stream goes on.
    for bad in [
        "<message from='alice@a.example' to='a@@b' id='x'/>",
        "<message from='a@@a.example' to='bob@b.example' id='x'/>",
    ] {
        let mut with = established(true);
        let (wire, events) = raw(&mut with[1], bad);
        assert!(wire.contains("jid-malformed"), "{wire}");
        assert!(events.is_empty(), "{events:?}");
        let mut without = established(false);
        assert_eq!(raw(&mut without[1], bad), (wire, events), "{bad}");
        let (_, events) = raw(&mut with[1], TO_B[0]);
        assert_eq!(shapes(&events), ["envelope"]);
    }
}

/// Stanzas from b.example to a.example, as the receiving end sends them under bidi.
const TO_A: &str =
    "<message from='bob@b.example/y' to='alice@a.example' id='r1'><body>back</body></message>";

#[test]
fn a_bidi_initiating_end_hands_out_envelopes_with_the_element_paths_checks() {
    let mut with = established(true);
    let mut without = established(false);
    let (_, with_events) = raw(&mut with[0], TO_A);
    let (_, without_events) = raw(&mut without[0], TO_A);
    assert_eq!(shapes(&with_events), ["envelope"]);
    assert_eq!(as_elements(&with_events), without_events);
    let refusals = [
        (
            "<message from='bob@b2.example' to='alice@a.example'/>",
            StreamErrorCondition::InvalidFrom,
        ),
        (
            "<message from='bob@b.example' to='alice@z.example'/>",
            StreamErrorCondition::HostUnknown,
        ),
        (
            "<message from='bob@b.example'/>",
            StreamErrorCondition::ImproperAddressing,
        ),
    ];
    for (xml, condition) in refusals {
        let mut with = established(true);
        let (wire, events) = raw(&mut with[0], xml);
        assert_eq!(closed_with(&events), Some(condition), "{xml}");
        assert!(shapes(&events).is_empty(), "{xml}: {events:?}");
        let mut without = established(false);
        assert_eq!(raw(&mut without[0], xml), (wire, events), "{xml}");
    }
    // Without bidi, a stanza against the direction is refused, in envelope mode too.
    let mut one_way = s2s_ends(
        s2s_config(&["a.example"], true, false),
        s2s_config(&["b.example"], true, false),
    );
    let (_, events) = raw(&mut one_way[0], TO_A);
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::UnsupportedStanzaType)
    );
    assert!(shapes(&events).is_empty());
}

// ----- chunking -----

/// A component's whole session: header, handshake, stanzas of every shape (one to
/// normalize, one to a malformed address, one in the client namespace, an iq, a nonza), and
/// one without `to` that ends it.
fn component_session() -> Vec<u8> {
    let mut session = format!("{COMPONENT_HEADER}<handshake>{SEEDED_DIGEST}</handshake>");
    for s in COMPONENT_STANZAS {
        session += s;
    }
    session += "<message from='bot@comp.example.com' to='a@b@c' id='m4'><body>x</body></message>\
        <message xmlns='jabber:client' from='bot@comp.example.com' to='juliet@example.com'/>\
        <r xmlns='urn:xmpp:sm:3'/>\n\
        <message from='bot@comp.example.com' to='juliet@example.com' id='m5'/>\
        <message from='bot@comp.example.com' id='last'/>";
    session.into_bytes()
}

const AUTH_EXTERNAL: &str =
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>";
const S2S_HEADER: &str = "<stream:stream xmlns='jabber:server' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
    from='a.example' to='b.example' version='1.0'>";

/// A peer server's whole session with a receiving end on direct TLS: header, EXTERNAL, the
/// restarted header, stanzas of every shape, and one to a domain not ours that ends it.
fn s2s_session() -> Vec<u8> {
    let mut session = format!("{S2S_HEADER}{AUTH_EXTERNAL}{S2S_HEADER}");
    for s in TO_B {
        session += s;
    }
    session += "<message from='alice@a.example' to='a@@b' id='bad'/>\
        <db:result from='a.example' to='b2.example'>abc</db:result>\n\
        <message from='alice@a.example/x' to='bob@b.example' id='m9'/>\
        <message from='alice@a.example' to='bob@z.example'/>";
    session.into_bytes()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Component,
    S2s,
}

fn session(kind: Kind) -> &'static [u8] {
    static COMPONENT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    static S2S: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    match kind {
        Kind::Component => COMPONENT.get_or_init(component_session),
        Kind::S2s => S2S.get_or_init(s2s_session),
    }
}

/// A fresh, started receiving end of `kind`.
fn receiving(kind: Kind, envelopes: bool) -> AnyStream {
    match kind {
        Kind::Component => component_server(envelopes),
        Kind::S2s => {
            let mut inc = S2sReceivingStream::new(
                s2s_config(&["b.example", "b2.example"], envelopes, false),
                SeededEntropy::new(2),
            );
            inc.set_peer_identities(vec![PresentedId::Dns("a.example".into())]);
            inc.start(NOW, Transport::Tls(Vec::new())).unwrap();
            inc.into()
        }
    }
}

/// What a receiving end did with the session cut at `cuts`: its bytes, its events (as the
/// element path reports them), and how many envelopes it handed out. Not which call
/// returned the stream error: a receiving end processes an established stream's stanzas as
/// the host polls, so that depends on the chunking (the `Closed` event does not).
fn feed(kind: Kind, envelopes: bool, cuts: &[usize]) -> Outcome {
    let input = session(kind);
    let mut end = receiving(kind, envelopes);
    let (mut wire, mut events) = drain(&mut end);
    let bounds: Vec<usize> = core::iter::once(0)
        .chain(cuts.iter().copied())
        .chain(core::iter::once(input.len()))
        .collect();
    for w in bounds.windows(2) {
        let _ = end.handle_input(NOW, &input[w[0]..w[1]]);
        let (more, more_events) = drain(&mut end);
        wire += &more;
        events.extend(more_events);
    }
    let envelopes = events
        .iter()
        .filter(|e| matches!(e, Event::StanzaEnvelope(_)))
        .count();
    Outcome {
        wire,
        events: as_elements(&events),
        envelopes,
    }
}

/// What [`feed`] found.
#[derive(Debug)]
struct Outcome {
    wire: String,
    events: Vec<Event>,
    envelopes: usize,
}

/// The session fed whole in element mode: what every envelope-mode run must give.
fn element_mode(kind: Kind) -> &'static Outcome {
    static COMPONENT: std::sync::OnceLock<Outcome> = std::sync::OnceLock::new();
    static S2S: std::sync::OnceLock<Outcome> = std::sync::OnceLock::new();
    let cell = match kind {
        Kind::Component => &COMPONENT,
        Kind::S2s => &S2S,
    };
    cell.get_or_init(|| {
        let whole = feed(kind, false, &[]);
        assert_eq!(whole.envelopes, 0);
        let expected = match kind {
            Kind::Component => (6, StreamErrorCondition::ImproperAddressing),
            Kind::S2s => (5, StreamErrorCondition::HostUnknown),
        };
        assert_eq!(
            (stanzas(&whole.events).len(), closed_with(&whole.events)),
            (expected.0, Some(expected.1)),
            "{kind:?}: {whole:?}"
        );
        assert!(whole.wire.contains("jid-malformed"), "{kind:?}: {whole:?}");
        whole
    })
}

fn cuts(kind: Kind) -> impl Strategy<Value = Vec<usize>> {
    let positions: Vec<usize> = (1..session(kind).len()).collect();
    proptest::sample::subsequence(positions, 0..40)
}

#[test]
fn whole_sessions_in_envelope_mode_give_the_element_modes_stanzas() {
    for kind in [Kind::Component, Kind::S2s] {
        let got = feed(kind, true, &[]);
        let expected = element_mode(kind);
        assert_eq!(
            (&got.wire, &got.events),
            (&expected.wire, &expected.events),
            "{kind:?}"
        );
        assert_eq!(got.envelopes, 4, "{kind:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A component's bytes, split anywhere, give a component server in envelope mode the
    /// bytes and events (envelopes as their elements) of element mode fed whole.
    #[test]
    fn component_envelope_mode_is_element_mode_in_any_chunking(cuts in cuts(Kind::Component)) {
        let got = feed(Kind::Component, true, &cuts);
        let expected = element_mode(Kind::Component);
        prop_assert_eq!(&got.wire, &expected.wire);
        prop_assert_eq!(&got.events, &expected.events);
        prop_assert_eq!(got.envelopes, 4);
    }

    /// The same for a peer server's bytes to an s2s receiving end.
    #[test]
    fn s2s_envelope_mode_is_element_mode_in_any_chunking(cuts in cuts(Kind::S2s)) {
        let got = feed(Kind::S2s, true, &cuts);
        let expected = element_mode(Kind::S2s);
        prop_assert_eq!(&got.wire, &expected.wire);
        prop_assert_eq!(&got.events, &expected.events);
        prop_assert_eq!(got.envelopes, 4);
    }
}

// ----- send_envelope -----

/// A c2s server stream in envelope mode with its client, negotiated.
fn c2s(envelopes: bool) -> Pair {
    let mut client = ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30");
    client.tls = TlsPolicy::Disabled;
    client.allow_plain_without_tls = true;
    client.resource = Some("balcony".to_owned());
    client.timeouts.keepalive = None;
    let mut server = ServerConfig::new(jid("im.example.com"));
    server.tls = TlsPolicy::Disabled;
    server.allow_plain_without_tls = true;
    server.timeouts.keepalive = None;
    server.envelopes = envelopes;
    let backend = MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096);
    let mut pair = Pair::new(
        ClientStream::new(client, SeededEntropy::new(1)),
        ServerStream::new(server, SeededEntropy::new(2), backend),
    );
    pair.start();
    pair.drive();
    assert!(pair.client.is_negotiated() && pair.server.is_negotiated());
    pair.client_events.clear();
    pair.server_events.clear();
    pair
}

/// The envelope a c2s server stream hands out for this stanza of its client.
fn c2s_envelope(xml: &str) -> Envelope {
    let mut pair = c2s(true);
    let stanza: Element = xml.parse().unwrap();
    pair.client_send(&stanza).unwrap();
    pair.drive();
    match pair.server_events.pop() {
        Some(Event::StanzaEnvelope(env)) => std::sync::Arc::unwrap_or_clone(env),
        other => panic!("{other:?}"),
    }
}

/// A client's message with content of its own namespace and of another.
const FROM_CLIENT: &str = "<message xmlns='jabber:client' to='bob@b.example' id='f1' type='chat'>\
    <body>x &lt; y</body><q:y xmlns:q='urn:q' q:from='z'/><thread>t1</thread></message>";

/// `envelope`'s element stamped as for a stream of `namespace`: what `send_stanza` is given
/// on the element path.
fn stamped(envelope: &Envelope, namespace: &str, from: Option<&str>, to: Option<&str>) -> Element {
    let mut element = envelope.element().unwrap();
    xmpp_xml::stamp_element(
        &mut element,
        &Stamp {
            from,
            to,
            ..Stamp::new(namespace)
        },
    );
    element
}

/// A component and the server end of its connection, negotiated.
fn component_link(envelopes: bool) -> [AnyStream; 2] {
    let mut component: AnyStream = ComponentStream::new(
        ComponentConfig::new(jid("comp.example.com"), SECRET),
        SeededEntropy::new(1),
    )
    .into();
    component.start(NOW, Transport::Plain).unwrap();
    let mut ends = [component, component_server(envelopes)];
    let _ = xmpp_stream::pair::drive_ends(&mut ends, NOW, |_, _, _, _| None);
    assert!(ends.iter().all(AnyStream::is_negotiated));
    ends
}

/// Moves bytes until quiet; returns the stanzas each end received and what the second end
/// (the one the tests send on) wrote.
fn deliver(ends: &mut [AnyStream; 2]) -> [Vec<Element>; 2] {
    let [a, b] = xmpp_stream::pair::drive_ends(ends, NOW, |_, _, _, _| None);
    [stanzas(&a), stanzas(&b)]
}

#[test]
fn a_c2s_envelope_reaches_a_component_as_send_stanza_sends_it() {
    let env = c2s_envelope(FROM_CLIENT);
    assert_eq!(env.namespace(), NS_CLIENT);
    let (from, to) = (
        Some("juliet@im.example.com/balcony"),
        Some("bot@comp.example.com"),
    );
    let mut by_element = component_link(false);
    by_element[1]
        .send_stanza(NOW, &stamped(&env, NS_COMPONENT_ACCEPT, from, to))
        .unwrap();
    let [expected, _] = deliver(&mut by_element);
    assert_eq!(expected.len(), 1);
    assert!(expected[0].is("message", NS_COMPONENT_ACCEPT));
    assert!(expected[0].get_child("body", NS_COMPONENT_ACCEPT).is_some());
    assert_eq!(expected[0].attr("from"), from);
    // The stream's own method, and through AnyStream.
    for through_any in [false, true] {
        let mut link = component_link(false);
        let AnyStream::ComponentServer(server) = &mut link[1] else {
            unreachable!()
        };
        if through_any {
            link[1].send_envelope(NOW, &env, from, to).unwrap();
        } else {
            server.send_envelope(NOW, &env, from, to).unwrap();
        }
        let (wire, _) = drain(&mut link[1]);
        // Spliced: the bytes never name the client namespace, the body is as the client
        // wrote it.
        assert!(!wire.contains(NS_CLIENT), "{wire}");
        assert!(wire.contains("<body>x &lt; y</body>"), "{wire}");
        let _ = link[0].handle_input(NOW, wire.as_bytes());
        let [got, _] = deliver(&mut link);
        assert_eq!(got, expected, "through AnyStream: {through_any}");
    }
    // Not negotiated: the same refusal as send_stanza.
    let mut fresh = component_server(false);
    assert_eq!(
        fresh.send_envelope(NOW, &env, from, to),
        fresh.send_stanza(NOW, &stamped(&env, NS_COMPONENT_ACCEPT, from, to))
    );
}

#[test]
fn a_c2s_envelope_reaches_a_peer_server_as_send_stanza_sends_it() {
    let env = c2s_envelope(FROM_CLIENT);
    let (from, to) = (Some("alice@a.example/x"), None);
    let mut by_element = established(false);
    by_element[0]
        .send_stanza(NOW, &stamped(&env, NS_SERVER, from, to))
        .unwrap();
    let [_, expected] = deliver(&mut by_element);
    assert_eq!(expected.len(), 1);
    assert!(expected[0].is("message", NS_SERVER));
    assert!(expected[0].get_child("thread", NS_SERVER).is_some());
    assert_eq!(expected[0].attr("to"), Some("bob@b.example"));
    for through_any in [false, true] {
        let mut ends = established(false);
        if through_any {
            ends[0].send_envelope(NOW, &env, from, to).unwrap();
        } else {
            let AnyStream::S2sInitiating(out) = &mut ends[0] else {
                unreachable!()
            };
            out.send_envelope(NOW, &env, from, to).unwrap();
        }
        let (wire, _) = drain(&mut ends[0]);
        assert!(!wire.contains(NS_CLIENT), "{wire}");
        let _ = ends[1].handle_input(NOW, wire.as_bytes());
        let [_, got] = deliver(&mut ends);
        assert_eq!(got, expected, "through AnyStream: {through_any}");
    }
    // And back under bidi: the receiving end forwards to the initiating one.
    let mut ends = established(false);
    let back = c2s_envelope(
        "<message xmlns='jabber:client' to='alice@a.example' id='b1'><body>back</body></message>",
    );
    ends[1]
        .send_envelope(NOW, &back, Some("bob@b.example/y"), None)
        .unwrap();
    let [got, _] = deliver(&mut ends);
    assert_eq!(got.len(), 1);
    assert!(got[0].is("message", NS_SERVER));
    assert_eq!(got[0].attr("from"), Some("bob@b.example/y"));
}

#[test]
fn s2s_send_envelope_refuses_what_send_stanza_refuses() {
    let env = c2s_envelope(FROM_CLIENT);
    let refused = UsageError::InvalidStanza(
        "from and to are not an authenticated domain pair of this stream",
    );
    // Each (from, to) stamp; `None` keeps the envelope's own (`to` bob@b.example, no
    // `from`).
    let pairs: [(Option<&str>, Option<&str>); 4] = [
        (Some("eve@c.example"), None),
        (None, None),
        (Some("alice@a.example"), Some("bob@b2.example")),
        (Some("alice@a.example"), Some("a@@b")),
    ];
    for (from, to) in pairs {
        let mut ends = established(false);
        let AnyStream::S2sInitiating(out) = &mut ends[0] else {
            unreachable!()
        };
        let by_envelope = out.send_envelope(NOW, &env, from, to);
        assert_eq!(by_envelope, Err(refused.clone()), "{from:?} {to:?}");
        assert_eq!(
            by_envelope,
            out.send_stanza(NOW, &stamped(&env, NS_SERVER, from, to))
        );
        assert!(drain(&mut ends[0]).0.is_empty(), "nothing sent");
    }
    // The envelope's own `from` when none is stamped: a component's stanza names its domain.
    let mut component = handshaken(true);
    let (_, events) = raw(
        &mut component,
        "<message from='bot@comp.example.com' to='alice@a.example'><body>c</body></message>",
    );
    let Some(Event::StanzaEnvelope(from_component)) = events.into_iter().next() else {
        panic!()
    };
    let mut ends = established(false);
    assert_eq!(
        ends[1].send_envelope(NOW, &from_component, None, None),
        Err(refused.clone())
    );
    // Stamped with a domain of the pair, it goes (in jabber:server, from jabber:component:accept).
    ends[1]
        .send_envelope(NOW, &from_component, Some("bot@b.example"), None)
        .unwrap();
    let [got, _] = deliver(&mut ends);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].is("message", NS_SERVER));
    assert!(got[0].get_child("body", NS_SERVER).is_some());

    // A receiving end without bidi sends nothing: the same refusal as send_stanza.
    let mut one_way = s2s_ends(
        s2s_config(&["a.example"], false, false),
        s2s_config(&["b.example"], false, false),
    );
    let AnyStream::S2sReceiving(inc) = &mut one_way[1] else {
        unreachable!()
    };
    let (from, to) = (Some("bob@b.example"), Some("alice@a.example"));
    let by_envelope = inc.send_envelope(NOW, &env, from, to);
    assert!(
        matches!(by_envelope, Err(UsageError::InvalidConfig(_))),
        "{by_envelope:?}"
    );
    assert_eq!(
        by_envelope,
        inc.send_stanza(NOW, &stamped(&env, NS_SERVER, from, to))
    );
    assert_eq!(one_way[1].send_envelope(NOW, &env, from, to), by_envelope);
}

#[test]
fn envelopes_from_peer_servers_and_components_reach_a_client_in_its_namespace() {
    // A peer server's stanza (jabber:server) and a component's (jabber:component:accept),
    // forwarded to a client: spliced into jabber:client, read as send_stanza sends the
    // stamped element.
    let mut ends = established(true);
    let (_, events) = raw(&mut ends[1], TO_B[0]);
    let Some(Event::StanzaEnvelope(from_server)) = events.into_iter().next() else {
        panic!()
    };
    let mut component = handshaken(true);
    let (_, events) = raw(&mut component, COMPONENT_STANZAS[0]);
    let Some(Event::StanzaEnvelope(from_component)) = events.into_iter().next() else {
        panic!()
    };
    let to = Some("juliet@im.example.com/balcony");
    for env in [&from_server, &from_component] {
        let mut by_element = c2s(false);
        by_element
            .server_send(&stamped(env, NS_CLIENT, None, to))
            .unwrap();
        by_element.drive();
        let expected = stanzas(&by_element.client_events);
        assert_eq!(expected.len(), 1);
        assert!(expected[0].is("message", NS_CLIENT));
        assert!(expected[0].get_child("body", NS_CLIENT).is_some());
        let mut by_envelope = c2s(false);
        by_envelope
            .server
            .send_envelope(NOW, env, None, to)
            .unwrap();
        by_envelope.drive();
        assert_eq!(stanzas(&by_envelope.client_events), expected);
    }
}

#[test]
fn a_component_forwards_an_envelope_through_any_stream_in_its_namespace() {
    // The component's end has no splice of its own: AnyStream stamps the element in
    // jabber:component:accept and sends it; the server end reads what send_stanza of that
    // element gives, and accepts it (from at the component's domain). (Which content
    // namespace is stamped does not show on the wire: the writer puts any of them in the
    // stream's. This checks that the fallback delivers the same stanza.)
    let mut ends = established(true);
    let (_, events) = raw(&mut ends[1], TO_B[0]);
    let Some(Event::StanzaEnvelope(from_server)) = events.into_iter().next() else {
        panic!()
    };
    let (from, to) = (Some("alice@comp.example.com/x"), Some("juliet@example.com"));
    let mut by_element = component_link(false);
    by_element[0]
        .send_stanza(NOW, &stamped(&from_server, NS_COMPONENT_ACCEPT, from, to))
        .unwrap();
    let [_, expected] = deliver(&mut by_element);
    assert_eq!(expected.len(), 1);
    assert!(expected[0].is("message", NS_COMPONENT_ACCEPT));
    assert!(expected[0].get_child("body", NS_COMPONENT_ACCEPT).is_some());
    let mut by_envelope = component_link(false);
    by_envelope[0]
        .send_envelope(NOW, &from_server, from, to)
        .unwrap();
    let [_, got] = deliver(&mut by_envelope);
    assert_eq!(got, expected);
}
