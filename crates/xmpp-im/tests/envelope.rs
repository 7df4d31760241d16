//! Routing without trees (issue 17): a session's stanza decided on its envelope gives the
//! same outputs as the element path on the same inputs. `Output::Forward` is compared as the
//! element it stands for (bytes rebuilt, stamp applied); every element through the typed
//! stanza (the element path delivers typed stanzas re-serialized).
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use std::fmt::Write as _;

use minidom::Element;
use proptest::prelude::*;
use xmpp_im::{MemoryStore, Output, Server, ServerConfig, Stanza};
use xmpp_jid::{BareJid, FullJid};
use xmpp_xml::{Envelope, Event, Stamp, StreamParser};

const HEADER: &str = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

fn full(s: &str) -> FullJid {
    FullJid::new(s).unwrap()
}

/// The stanza as the client's stream gives it, in envelope mode and in element mode.
fn parse(stanza: &str) -> (Envelope, Element) {
    let mut envelopes = StreamParser::new();
    envelopes.set_envelopes(true);
    envelopes.feed(HEADER.as_bytes());
    envelopes.feed(stanza.as_bytes());
    let mut elements = StreamParser::new();
    elements.feed(HEADER.as_bytes());
    elements.feed(stanza.as_bytes());
    assert!(matches!(
        envelopes.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    assert!(matches!(
        elements.next_event(),
        Ok(Some(Event::StreamStart(_)))
    ));
    let Ok(Some(Event::Stanza(envelope))) = envelopes.next_event() else {
        panic!("no envelope for {stanza}")
    };
    let Ok(Some(Event::Element(element))) = elements.next_event() else {
        panic!("no element for {stanza}")
    };
    (envelope, element)
}

struct World {
    server: Server,
    store: MemoryStore,
}

impl World {
    /// juliet with two resources, romeo with one, nurse offline; `block` gives romeo a
    /// blocklist (privacy state: the envelope path hands his traffic to the element path).
    fn new(priorities: [i8; 3], chamber_available: bool, block: bool) -> World {
        let mut store = MemoryStore::new();
        for u in [
            "juliet@example.com",
            "romeo@example.com",
            "nurse@example.com",
        ] {
            store.add_account(BareJid::new(u).unwrap());
        }
        let mut w = World {
            server: Server::new(ServerConfig::new("example.com")),
            store,
        };
        let sessions = [
            ("juliet@example.com/balcony", priorities[0], true),
            (
                "juliet@example.com/chamber",
                priorities[1],
                chamber_available,
            ),
            ("romeo@example.com/orchard", priorities[2], true),
        ];
        for (jid, priority, available) in sessions {
            w.server.session_started(full(jid)).unwrap();
            w.element(
                jid,
                "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
            );
            if available {
                w.element(
                    jid,
                    &format!("<presence><priority>{priority}</priority></presence>"),
                );
            }
        }
        if block {
            w.element(
                "romeo@example.com/orchard",
                "<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='tybalt@example.com'/></block></iq>",
            );
        }
        w.drain();
        w
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.server.poll_output()).collect()
    }

    /// The element path as `xmpp-stream` feeds it: `from` stamped with the session's JID.
    fn element(&mut self, from: &str, stanza: &str) -> Vec<Output> {
        let (_, mut element) = parse(stanza);
        let stamp = Stamp {
            from: Some(from),
            ..Stamp::new("jabber:client")
        };
        xmpp_xml::stamp_element(&mut element, &stamp);
        self.server
            .handle_session_stanza(&mut self.store, &full(from), &element)
            .unwrap();
        self.drain()
    }

    fn envelope(&mut self, from: &str, stanza: &str) -> Vec<Output> {
        let (envelope, _) = parse(stanza);
        self.server
            .handle_session_envelope(&mut self.store, &full(from), envelope)
            .unwrap();
        self.drain()
    }
}

/// An output as the element path would give it, every stanza through the typed parser.
fn normalized(outputs: Vec<Output>) -> Vec<Output> {
    let typed = |e: Element| Stanza::try_from(&e).map_or(e, |s| s.to_element());
    outputs
        .into_iter()
        .map(|o| match o {
            Output::Forward(f) => Output::Deliver {
                to: f.to.clone(),
                stanza: typed(f.to_element().unwrap()),
            },
            Output::Deliver { to, stanza } => Output::Deliver {
                to,
                stanza: typed(stanza),
            },
            Output::Route(s) => Output::Route(typed(s)),
            Output::Offline { user, stanza } => Output::Offline {
                user,
                stanza: typed(stanza),
            },
            Output::Unhandled(s) => Output::Unhandled(typed(s)),
            other => other,
        })
        .collect()
}

fn forwards(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .filter(|o| matches!(o, Output::Forward(_)))
        .count()
}

const TO: &[Option<&str>] = &[
    None,
    Some("juliet@example.com"),
    Some("juliet@example.com/balcony"),
    Some("juliet@example.com/chamber"),
    Some("juliet@example.com/gone"),
    Some("JULIET@Example.com"),
    Some("romeo@example.com"),
    Some("romeo@example.com/orchard"),
    Some("nurse@example.com"),
    Some("ghost@example.com"),
    Some("example.com"),
    Some("someone@remote.example"),
];

const TYPES: &[Option<&str>] = &[
    None,
    Some("chat"),
    Some("normal"),
    Some("groupchat"),
    Some("headline"),
    Some("error"),
    Some("bogus"),
];

const FROM: &[&str] = &[
    "juliet@example.com/balcony",
    "romeo@example.com/orchard",
    "juliet@example.com/chamber",
];

#[allow(clippy::too_many_arguments)]
fn message(
    to: Option<&str>,
    kind: Option<&str>,
    from_attr: bool,
    sender: &str,
    lang: bool,
    body: &str,
    extra: bool,
) -> String {
    let mut s = String::from("<message id='m1'");
    if let Some(to) = to {
        let _ = write!(s, " to='{to}'");
    }
    if let Some(kind) = kind {
        let _ = write!(s, " type='{kind}'");
    }
    if from_attr {
        let _ = write!(s, " from='{sender}'");
    }
    if lang {
        s += " xml:lang='fr'";
    }
    let _ = write!(s, "><body>{body}</body>");
    if extra {
        s += "<active xmlns='http://jabber.org/protocol/chatstates'/><x xmlns='urn:x' a='&lt;1'/>";
    }
    s + "</message>"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The envelope path and the element path decide the same on the same inputs.
    #[test]
    fn envelope_and_element_paths_agree(
        priorities in proptest::array::uniform3(-2i8..3),
        chamber_available: bool,
        block: bool,
        to in 0..TO.len(),
        kind in 0..TYPES.len(),
        sender in 0..FROM.len(),
        from_attr: bool,
        lang: bool,
        body in "[a-z &<>]{0,12}",
        extra: bool,
        repeat in 1usize..3,
    ) {
        let body = body.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let sender = FROM[sender];
        let stanza = message(TO[to], TYPES[kind], from_attr, sender, lang, &body, extra);
        let mut by_element = World::new(priorities, chamber_available, block);
        let mut by_envelope = World::new(priorities, chamber_available, block);
        for _ in 0..repeat {
            let a = by_element.element(sender, &stanza);
            let b = by_envelope.envelope(sender, &stanza);
            prop_assert_eq!(forwards(&a), 0);
            prop_assert_eq!(normalized(a), normalized(b), "{}", stanza);
        }
    }
}

#[test]
fn a_chat_message_to_an_online_account_is_forwarded_as_bytes() {
    let mut w = World::new([1, 1, 0], true, false);
    let stanza = "<message to='juliet@example.com' type='chat' id='c1'><body>hi</body></message>";
    let out = w.envelope("romeo@example.com/orchard", stanza);
    // Two resources of equal priority: both get it, sharing one envelope.
    assert_eq!(forwards(&out), 2, "{out:?}");
    let [Output::Forward(a), Output::Forward(b)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert!(std::sync::Arc::ptr_eq(&a.envelope, &b.envelope));
    assert_eq!(a.from.as_str(), "romeo@example.com/orchard");
    assert_eq!(a.stanza_to.as_str(), "juliet@example.com");
    // Offline account, remote domain, privacy state: the element path.
    for to in ["nurse@example.com", "x@remote.example"] {
        let stanza = format!("<message to='{to}' type='chat'><body>hi</body></message>");
        let out = w.envelope("romeo@example.com/orchard", &stanza);
        assert_eq!(forwards(&out), 0, "{out:?}");
        assert!(!out.is_empty());
    }
    let mut w = World::new([1, 1, 0], true, true);
    let out = w.envelope("romeo@example.com/orchard", stanza);
    assert_eq!(forwards(&out), 0, "{out:?}");
    assert_eq!(out.len(), 2, "{out:?}");
}

#[test]
fn payload_validation_is_the_documented_difference() {
    // Two bodies of one language: the element path answers bad-request, the envelope path
    // forwards the bytes as sent (module documentation of `server::envelope`).
    let stanza =
        "<message to='juliet@example.com' type='chat'><body>a</body><body>b</body></message>";
    let mut w = World::new([1, 1, 0], true, false);
    let out = w.element("romeo@example.com/orchard", stanza);
    assert!(
        matches!(out.as_slice(), [Output::Deliver { to, .. }] if to.as_str() == "romeo@example.com/orchard"),
        "{out:?}"
    );
    let out = w.envelope("romeo@example.com/orchard", stanza);
    assert_eq!(forwards(&out), 2, "{out:?}");
}

#[test]
fn stanzas_the_element_path_refuses_are_refused_alike() {
    // Taken by the element path (presence, iq, remote `to`), refused for their payload: the
    // error reply goes to the sender's full JID on both paths (the envelope's element gets
    // `from` stamped as the stream's element path would).
    let refused = [
        "<presence><priority>high</priority></presence>",
        "<presence><show>a</show><show>b</show></presence>",
        "<message to='x@remote.example' type='chat'><body>a</body><body>b</body></message>",
        "<iq type='get' id='q' to='juliet@example.com/balcony'/>",
    ];
    for stanza in refused {
        let mut by_element = World::new([1, 1, 0], true, false);
        let mut by_envelope = World::new([1, 1, 0], true, false);
        let a = normalized(by_element.element("romeo@example.com/orchard", stanza));
        let b = normalized(by_envelope.envelope("romeo@example.com/orchard", stanza));
        assert_eq!(a, b, "{stanza}");
        assert!(
            a.iter().any(|o| matches!(o, Output::Deliver { to, stanza }
                if to.as_str() == "romeo@example.com/orchard"
                    && stanza.attr("type") == Some("error")
                    && stanza.attr("to") == Some("romeo@example.com/orchard"))),
            "{stanza}: {a:?}"
        );
    }
}
