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
    parse_in(HEADER, stanza)
}

/// The stanza as a stream opened with `header` gives it, in envelope mode and in element
/// mode.
fn parse_in(header: &str, stanza: &str) -> (Envelope, Element) {
    let mut envelopes = StreamParser::new();
    envelopes.set_envelopes(true);
    envelopes.feed(header.as_bytes());
    envelopes.feed(stanza.as_bytes());
    let mut elements = StreamParser::new();
    elements.feed(header.as_bytes());
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

    /// A stanza from a peer server or a component, on the element path.
    fn remote_element(&mut self, header: &str, stanza: &str) -> Vec<Output> {
        let (_, element) = parse_in(header, stanza);
        self.server.handle_remote_stanza(&mut self.store, &element);
        self.drain()
    }

    /// A stanza from a peer server or a component, as an envelope.
    fn remote_envelope(&mut self, header: &str, stanza: &str) -> Vec<Output> {
        let (envelope, _) = parse_in(header, stanza);
        self.server
            .handle_remote_envelope(&mut self.store, envelope);
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
    // In `jabber:client`, as the client's stream writes it (a peer's stanza keeps its
    // stream's namespace on the element path).
    let typed = |mut e: Element| {
        xmpp_xml::stamp_element(&mut e, &Stamp::new("jabber:client"));
        Stanza::try_from(&e).map_or(e, |s| s.to_element())
    };
    outputs
        .into_iter()
        .map(|o| match o {
            Output::Forward(f) => Output::Deliver {
                to: f.to.clone(),
                stanza: typed(f.to_element().unwrap()).into(),
            },
            Output::Deliver { to, stanza } => Output::Deliver {
                to,
                stanza: typed(std::sync::Arc::unwrap_or_clone(stanza)).into(),
            },
            Output::Route(s) => Output::Route(typed(s)),
            Output::Relay(r) => Output::Route(typed(r.to_element().unwrap())),
            Output::Offline { user, stanza } => Output::Offline {
                user,
                stanza: typed(stanza),
            },
            Output::Unhandled(s) => Output::Unhandled(typed(s)),
            other => other,
        })
        .collect()
}

/// The element path's outputs `a` forward nothing as bytes, and the envelope path's `b` are
/// the same once normalized (`stanza`: what both were given, for the failure message).
fn paths_agree(a: Vec<Output>, b: Vec<Output>, stanza: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(forwards(&a), 0);
    prop_assert_eq!(normalized(a), normalized(b), "{}", stanza);
    Ok(())
}

/// Stanzas given as bytes: forwards to local sessions and relays out of the domain.
fn forwards(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .filter(|o| matches!(o, Output::Forward(_) | Output::Relay(_)))
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
            paths_agree(a, b, &stanza)?;
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
    // Offline account: stored whole, the element rebuilt from the bytes (`from` and `to`
    // stamped).
    let offline = "<message to='nurse@example.com' type='chat'><body>hi</body></message>";
    let out = w.envelope("romeo@example.com/orchard", offline);
    let [
        Output::Offline {
            user,
            stanza: stored,
        },
    ] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert_eq!(user.as_str(), "nurse@example.com");
    assert_eq!(stored.attr("from"), Some("romeo@example.com/orchard"));
    assert_eq!(stored.attr("to"), Some("nurse@example.com"));
    assert_eq!(
        stored.get_child("body", "jabber:client").map(Element::text),
        Some("hi".into())
    );
    // A remote domain: relayed as bytes, `to` normalized, `from` the session.
    let remote = "<message to='X@Remote.Example' type='chat'><body>hi</body></message>";
    let out = w.envelope("romeo@example.com/orchard", remote);
    let [Output::Relay(relay)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(relay.to.as_str(), "x@remote.example");
    assert_eq!(relay.from.as_str(), "romeo@example.com/orchard");
    let stamp = relay.stamp("jabber:server");
    let mut bytes = Vec::new();
    relay.envelope.splice_into(&stamp, &mut bytes).unwrap();
    let sent = xmpp_xml::parse_spliced(&bytes, "jabber:server").unwrap();
    assert_eq!(sent.ns(), "jabber:server");
    assert_eq!(sent.attr("to"), Some("x@remote.example"));
    assert_eq!(sent.attr("from"), Some("romeo@example.com/orchard"));
    assert_eq!(
        sent.get_child("body", "jabber:server").map(Element::text),
        Some("hi".into())
    );
    // The sender has a blocklist (privacy state): the element path's unit of work decides on
    // the header, the recipients still get the bytes.
    let mut w = World::new([1, 1, 0], true, true);
    let out = w.envelope("romeo@example.com/orchard", stanza);
    assert_eq!(forwards(&out), 2, "{out:?}");
    assert_eq!(out.len(), 2, "{out:?}");
    // A message to the blocked contact is refused from the header (XEP-0191 §3.6).
    let out = w.envelope(
        "romeo@example.com/orchard",
        "<message to='tybalt@example.com' type='chat' id='t'><body>x</body></message>",
    );
    assert!(
        matches!(out.as_slice(), [Output::Deliver { to, stanza }]
            if to.as_str() == "romeo@example.com/orchard"
                && stanza.attr("type") == Some("error")
                && stanza.attr("id") == Some("t")),
        "{out:?}"
    );
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
    // The same to a remote domain: relayed as sent.
    let stanza =
        "<message to='x@remote.example' type='chat'><body>a</body><body>b</body></message>";
    let out = w.element("romeo@example.com/orchard", stanza);
    assert!(
        matches!(out.as_slice(), [Output::Deliver { to, .. }] if to.as_str() == "romeo@example.com/orchard"),
        "{out:?}"
    );
    let out = w.envelope("romeo@example.com/orchard", stanza);
    assert!(matches!(out.as_slice(), [Output::Relay(_)]), "{out:?}");
}

#[test]
fn stanzas_the_element_path_refuses_are_refused_alike() {
    // Taken by the element path (presence, iq), refused for their payload: the
    // error reply goes to the sender's full JID on both paths (the envelope's element gets
    // `from` stamped as the stream's element path would).
    let refused = [
        "<presence><priority>high</priority></presence>",
        "<presence><show>a</show><show>b</show></presence>",
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

// ---- presence (RFC 6121 §4): broadcast and directed presence fanned out as shared bytes ----

/// The accounts of the presence world: juliet (balcony, chamber), romeo (orchard), benvolio
/// (square), nurse (offline) here, mercutio on a remote domain.
const CONTACTS: &[&str] = &[
    "romeo@example.com",
    "benvolio@example.com",
    "nurse@example.com",
    "mercutio@remote.example",
];

/// The subscription states a contact can be in, as the user's server stores them.
const STATES: &[xmpp_im::State] = &[
    xmpp_im::State::None,
    xmpp_im::State::To,
    xmpp_im::State::From,
    xmpp_im::State::Both,
    xmpp_im::State::FromPendingOut,
    xmpp_im::State::NonePendingIn,
];

/// Privacy set-ups, applied through the element path before the test.
const PRIVACY: &[&[(&str, &str)]] = &[
    &[],
    // juliet blocks benvolio (XEP-0191): presence-out to him stopped.
    &[(
        "juliet@example.com/balcony",
        "<iq type='set' id='p1'><block xmlns='urn:xmpp:blocking'><item jid='benvolio@example.com'/></block></iq>",
    )],
    // romeo blocks juliet: his server drops her presence to him.
    &[(
        "romeo@example.com/orchard",
        "<iq type='set' id='p1'><block xmlns='urn:xmpp:blocking'><item jid='juliet@example.com'/></block></iq>",
    )],
    // juliet's balcony has an active list denying presence-out to romeo (XEP-0016 §2.11).
    &[
        (
            "juliet@example.com/balcony",
            "<iq type='set' id='p1'><query xmlns='jabber:iq:privacy'><list name='po'><item type='jid' value='romeo@example.com' action='deny' order='1'><presence-out/></item></list></query></iq>",
        ),
        (
            "juliet@example.com/balcony",
            "<iq type='set' id='p2'><query xmlns='jabber:iq:privacy'><active name='po'/></query></iq>",
        ),
    ],
    // benvolio's default list denies presence-in from juliet's chamber.
    &[
        (
            "benvolio@example.com/square",
            "<iq type='set' id='p1'><query xmlns='jabber:iq:privacy'><list name='pi'><item type='jid' value='juliet@example.com/chamber' action='deny' order='1'><presence-in/></item></list></query></iq>",
        ),
        (
            "benvolio@example.com/square",
            "<iq type='set' id='p2'><query xmlns='jabber:iq:privacy'><default name='pi'/></query></iq>",
        ),
    ],
    // juliet blocks mercutio (remote): his presence is dropped at her server.
    &[(
        "juliet@example.com/chamber",
        "<iq type='set' id='p1'><block xmlns='urn:xmpp:blocking'><item jid='mercutio@remote.example'/></block></iq>",
    )],
    // juliet's chamber's active list denies messages from romeo; benvolio's default list
    // denies everything from juliet's balcony (XEP-0016 §2.2, §2.8, §2.13).
    &[
        (
            "juliet@example.com/chamber",
            "<iq type='set' id='p1'><query xmlns='jabber:iq:privacy'><list name='m'><item type='jid' value='romeo@example.com' action='deny' order='1'><message/></item></list></query></iq>",
        ),
        (
            "juliet@example.com/chamber",
            "<iq type='set' id='p2'><query xmlns='jabber:iq:privacy'><active name='m'/></query></iq>",
        ),
        (
            "benvolio@example.com/square",
            "<iq type='set' id='p3'><query xmlns='jabber:iq:privacy'><list name='all'><item type='jid' value='juliet@example.com/balcony' action='deny' order='1'/></list></query></iq>",
        ),
        (
            "benvolio@example.com/square",
            "<iq type='set' id='p4'><query xmlns='jabber:iq:privacy'><default name='all'/></query></iq>",
        ),
    ],
    // juliet's chamber's active list denies presence-in from the remote domain.
    &[
        (
            "juliet@example.com/chamber",
            "<iq type='set' id='p1'><query xmlns='jabber:iq:privacy'><list name='pi'><item type='jid' value='remote.example' action='deny' order='1'><presence-in/></item></list></query></iq>",
        ),
        (
            "juliet@example.com/chamber",
            "<iq type='set' id='p2'><query xmlns='jabber:iq:privacy'><active name='pi'/></query></iq>",
        ),
    ],
];

impl World {
    /// The presence world: juliet's subscription state with each of [`CONTACTS`] from
    /// `states` (the contacts hold the mirror image, `Both` kept symmetric); romeo's and
    /// benvolio's rosters name juliet with `back`; `privacy` from [`PRIVACY`].
    /// `envelopes`: [`ServerConfig::envelopes`] (the server's own presence as shared bytes).
    fn presence(
        states: [usize; 4],
        back: usize,
        chamber_available: bool,
        privacy: usize,
        envelopes: bool,
    ) -> World {
        use xmpp_im::{ContactState, RosterEntry, RosterStore};
        let mut store = MemoryStore::new();
        for u in [
            "juliet@example.com",
            "romeo@example.com",
            "benvolio@example.com",
            "nurse@example.com",
        ] {
            store.add_account(BareJid::new(u).unwrap());
        }
        let entry = |jid: &str, state: xmpp_im::State| {
            let mut e = RosterEntry::new(BareJid::new(jid).unwrap());
            e.in_roster = true;
            e.state = ContactState {
                state,
                pre_approved: false,
            };
            e
        };
        let juliet = BareJid::new("juliet@example.com").unwrap();
        for (contact, s) in CONTACTS.iter().zip(states) {
            store.put(&juliet, entry(contact, STATES[s]));
        }
        for u in ["romeo@example.com", "benvolio@example.com"] {
            store.put(
                &BareJid::new(u).unwrap(),
                entry("juliet@example.com", STATES[back]),
            );
        }
        let mut w = World {
            server: Server::new(ServerConfig {
                envelopes,
                ..ServerConfig::new("example.com")
            }),
            store,
        };
        let sessions = [
            ("romeo@example.com/orchard", true),
            ("benvolio@example.com/square", true),
            ("juliet@example.com/balcony", true),
            ("juliet@example.com/chamber", chamber_available),
        ];
        for (jid, _) in sessions {
            w.server.session_started(full(jid)).unwrap();
        }
        for (from, iq) in PRIVACY[privacy] {
            w.element(from, iq);
        }
        for (jid, available) in sessions {
            if available {
                w.element(jid, "<presence><priority>1</priority></presence>");
            }
        }
        w.drain();
        w
    }
}

const PRESENCE_TO: &[Option<&str>] = &[
    None,
    None,
    None,
    Some("romeo@example.com"),
    Some("romeo@example.com/orchard"),
    Some("ROMEO@example.com/gone"),
    Some("benvolio@example.com"),
    Some("nurse@example.com"),
    Some("ghost@example.com"),
    Some("juliet@example.com"),
    Some("juliet@example.com/chamber"),
    Some("example.com"),
    Some("mercutio@remote.example"),
];

const PRESENCE_SENDERS: &[&str] = &[
    "juliet@example.com/balcony",
    "juliet@example.com/chamber",
    "romeo@example.com/orchard",
];

/// What a presence carries: nothing, or one of these child sets, `{p}` the priority. Some
/// the typed parser refuses (`bad-request` on both paths), some that only read right when
/// namespaces, references, line ends and CDATA are resolved.
const PRESENCE_CHILDREN: &[&str] = &[
    "<show>away</show><status xml:lang='en'>out &amp; about</status><priority>{p}</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>",
    "<priority>\n {p} \t</priority><status>a\r\nb<![CDATA[ <c> ]]>&#233;</status><status xml:lang='fr'>x</status>",
    "<priority>{p}00</priority>",
    "<status>one</status><status>two</status><priority>{p}</priority>",
    "<cl:show xmlns:cl='jabber:client'>dnd</cl:show><show>away</show>",
    "<show xmlns='urn:other'>bogus</show><priority>{p}</priority>",
    "<x xmlns='urn:x'><priority>99</priority><show>bogus</show></x><priority>{p}</priority>",
    "<show>sleeping</show>",
    "<show/><priority>{p}</priority>",
];

/// A presence: `to`, `unavailable` or available, `id`, with children when `payload`
/// (a priority and an index into [`PRESENCE_CHILDREN`]).
fn presence(to: Option<&str>, unavailable: bool, id: bool, payload: Option<(i8, usize)>) -> String {
    let mut s = String::from("<presence");
    if let Some(to) = to {
        let _ = write!(s, " to='{to}'");
    }
    if unavailable {
        s += " type='unavailable'";
    }
    if id {
        s += " id='p1'";
    }
    match payload {
        None => s + "/>",
        Some((priority, children)) => {
            let children = PRESENCE_CHILDREN[children % PRESENCE_CHILDREN.len()]
                .replace("{p}", &priority.to_string());
            let _ = write!(s, ">{children}</presence>");
            s
        }
    }
}

/// What happens between two presences in [`presence_paths_agree`]: each reads what the
/// sessions' last presences left (stored as bytes on the envelope path).
const EVENTS: &[(bool, &str, &str)] = &[
    // A remote contact probes juliet (RFC 6121 §4.3.2): her resources' stored presence.
    (
        true,
        "",
        "<presence xmlns='jabber:server' type='probe' from='mercutio@remote.example' to='juliet@example.com'/>",
    ),
    // juliet approves nurse (§3.1.5): her current presence goes to nurse.
    (
        false,
        "juliet@example.com/balcony",
        "<presence to='nurse@example.com' type='subscribed'/>",
    ),
    // juliet's balcony stops, then allows again, presence-out to romeo (XEP-0016 §2.11).
    (
        false,
        "juliet@example.com/balcony",
        "<iq type='set' id='q1'><query xmlns='jabber:iq:privacy'><list name='stop'><item type='jid' value='romeo@example.com' action='deny' order='1'><presence-out/></item><item action='allow' order='2'/></list></query></iq>",
    ),
    (
        false,
        "juliet@example.com/balcony",
        "<iq type='set' id='q2'><query xmlns='jabber:iq:privacy'><active name='stop'/></query></iq>",
    ),
    (
        false,
        "juliet@example.com/balcony",
        "<iq type='set' id='q3'><query xmlns='jabber:iq:privacy'><active/></query></iq>",
    ),
    // juliet blocks and unblocks romeo (XEP-0191 §3.3, §3.4).
    (
        false,
        "juliet@example.com/balcony",
        "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='romeo@example.com'/></block></iq>",
    ),
    (
        false,
        "juliet@example.com/balcony",
        "<iq type='set' id='b2'><unblock xmlns='urn:xmpp:blocking'/></iq>",
    ),
];

/// The stream a remote event arrives on.
const REMOTE_HEADER: &str = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' from='remote.example' version='1.0'>";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Presence broadcast and directed presence: the envelope path and the element path give
    /// the same outputs (the same recipients, the same stanzas once stamped, in the same
    /// order) across subscription states, resources, priorities, privacy lists, directed
    /// presence and unavailability, and through the end of the session.
    #[test]
    fn presence_paths_agree(
        states in proptest::array::uniform4(0..STATES.len()),
        back in 0..STATES.len(),
        chamber_available: bool,
        privacy in 0..PRIVACY.len(),
        steps in proptest::collection::vec(
            (0..PRESENCE_SENDERS.len(), 0..PRESENCE_TO.len(), any::<bool>(), any::<bool>(),
             proptest::option::weighted(0.8, (-2i8..3, 0..PRESENCE_CHILDREN.len())),
             proptest::option::weighted(0.6, 0..EVENTS.len())),
            1..6,
        ),
        end in 0..PRESENCE_SENDERS.len(),
    ) {
        let mut by_element = World::presence(states, back, chamber_available, privacy, false);
        let mut by_envelope = World::presence(states, back, chamber_available, privacy, true);
        for (sender, to, unavailable, id, payload, event) in steps {
            let sender = PRESENCE_SENDERS[sender];
            let stanza = presence(PRESENCE_TO[to], unavailable, id, payload);
            let a = by_element.element(sender, &stanza);
            let b = by_envelope.envelope(sender, &stanza);
            paths_agree(a, b, &stanza)?;
            if let Some(event) = event {
                let (remote, from, stanza) = EVENTS[event];
                let (a, b) = if remote {
                    (
                        by_element.remote_element(REMOTE_HEADER, stanza),
                        by_envelope.remote_envelope(REMOTE_HEADER, stanza),
                    )
                } else {
                    (by_element.element(from, stanza), by_envelope.envelope(from, stanza))
                };
                paths_agree(a, b, stanza)?;
            }
        }
        // The session's end: `unavailable` to its subscribers and directed-presence
        // recipients, from the state each path left.
        let jid = full(PRESENCE_SENDERS[end]);
        by_element.server.session_ended(&mut by_element.store, &jid).unwrap();
        by_envelope.server.session_ended(&mut by_envelope.store, &jid).unwrap();
        prop_assert_eq!(normalized(by_element.drain()), normalized(by_envelope.drain()));
    }
}

/// Fan-out as shared bytes: every recipient of one broadcast gets the same envelope, no
/// element: local sessions as forwards, a remote subscriber as a relay.
#[test]
fn presence_broadcast_is_forwarded_as_shared_bytes() {
    // juliet: romeo and benvolio subscribed (`from`), mercutio remote (`both`).
    let mut w = World::presence([2, 3, 0, 3], 1, true, 0, true);
    let out = w.envelope(
        "juliet@example.com/balcony",
        "<presence><show>dnd</show><priority>5</priority></presence>",
    );
    let shared: Vec<&xmpp_im::Forward> = out
        .iter()
        .filter_map(|o| match o {
            Output::Forward(f) => Some(f),
            _ => None,
        })
        .collect();
    let to: Vec<&str> = shared.iter().map(|f| f.to.as_str()).collect();
    assert_eq!(
        to,
        [
            "juliet@example.com/balcony",
            "juliet@example.com/chamber",
            "benvolio@example.com/square",
            "romeo@example.com/orchard",
        ],
        "{out:?}"
    );
    assert!(
        shared
            .iter()
            .all(|f| std::sync::Arc::ptr_eq(&f.envelope, &shared[0].envelope))
    );
    assert!(
        shared
            .iter()
            .all(|f| f.from.as_str() == "juliet@example.com/balcony")
    );
    assert_eq!(shared[3].stanza_to.as_str(), "romeo@example.com");
    assert_eq!(shared[0].stanza_to.as_str(), "juliet@example.com/balcony");
    // The remote subscriber gets the same bytes, relayed.
    let relayed: Vec<&xmpp_im::Relay> = out
        .iter()
        .filter_map(|o| match o {
            Output::Relay(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(relayed.len(), 1, "{out:?}");
    assert_eq!(relayed[0].to.as_str(), "mercutio@remote.example");
    assert_eq!(relayed[0].from.as_str(), "juliet@example.com/balcony");
    assert!(std::sync::Arc::ptr_eq(
        &relayed[0].envelope,
        &shared[0].envelope
    ));
    assert_eq!(out.len(), 5, "{out:?}");
    // The priority was read: a chat message to juliet's bare JID now reaches balcony only.
    let out = w.envelope(
        "romeo@example.com/orchard",
        "<message to='juliet@example.com' type='chat'><body>hi</body></message>",
    );
    let to: Vec<&str> = out
        .iter()
        .filter_map(|o| match o {
            Output::Forward(f) => Some(f.to.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(to, ["juliet@example.com/balcony"], "{out:?}");
    // Directed presence to a local account, then unavailable: shared bytes too.
    let out = w.envelope(
        "romeo@example.com/orchard",
        "<presence to='benvolio@example.com'/>",
    );
    assert!(
        matches!(out.as_slice(), [Output::Forward(f)] if f.to.as_str() == "benvolio@example.com/square"),
        "{out:?}"
    );
    // Subscription presence stays on the element path.
    let out = w.envelope(
        "romeo@example.com/orchard",
        "<presence to='nurse@example.com' type='subscribe'/>",
    );
    assert_eq!(forwards(&out), 0, "{out:?}");
    // juliet's balcony ends: the unavailable presence the server makes is one shared
    // envelope for every recipient (her other resource, her local subscribers, the remote
    // one), none an element.
    let balcony = full("juliet@example.com/balcony");
    w.server.session_ended(&mut w.store, &balcony).unwrap();
    let out = w.drain();
    let shared: Vec<&std::sync::Arc<xmpp_xml::Envelope>> = out
        .iter()
        .filter_map(|o| match o {
            Output::Forward(f) => Some(&f.envelope),
            Output::Relay(r) => Some(&r.envelope),
            _ => None,
        })
        .collect();
    assert_eq!(shared.len(), out.len(), "{out:?}");
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(shared.iter().all(|e| std::sync::Arc::ptr_eq(e, shared[0])));
    assert_eq!(shared[0].stanza_type(), Some("unavailable"));
    // Without `ServerConfig::envelopes`, elements as before.
    let mut w = World::presence([2, 3, 0, 3], 1, true, 0, false);
    w.server.session_ended(&mut w.store, &balcony).unwrap();
    let out = w.drain();
    assert_eq!(forwards(&out), 0, "{out:?}");
    assert_eq!(out.len(), 4, "{out:?}");
}

/// A peer server's stream and a component's (XEP-0114), as the hub's streams open them.
const PEER_HEADERS: &[&str] = &[
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' from='remote.example' version='1.0'>",
    "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='bot.example.com'>",
];

/// Senders a peer stream lets through (the stream checks the domain): a remote user, a
/// remote domain, a component, and an address whose case the server normalizes.
const PEER_FROM: &[&str] = &[
    "mercutio@remote.example/sword",
    "remote.example",
    "bot.example.com",
    "Tybalt@Remote.Example/x",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A message from a peer server or a component: the envelope path and the element path
    /// decide the same (recipients, stanzas once stamped, offline storage, bounces).
    #[test]
    fn remote_envelope_and_element_paths_agree(
        priorities in proptest::array::uniform3(-2i8..3),
        chamber_available: bool,
        block: bool,
        header in 0..PEER_HEADERS.len(),
        to in 0..TO.len(),
        kind in 0..TYPES.len(),
        sender in 0..PEER_FROM.len(),
        lang: bool,
        body in "[a-z &<>]{0,12}",
        extra: bool,
        repeat in 1usize..3,
    ) {
        let body = body.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let Some(to) = TO[to] else { return Ok(()) };
        let stanza = message(Some(to), TYPES[kind], true, PEER_FROM[sender], lang, &body, extra);
        let header = PEER_HEADERS[header];
        let mut by_element = World::new(priorities, chamber_available, block);
        let mut by_envelope = World::new(priorities, chamber_available, block);
        for _ in 0..repeat {
            let a = by_element.remote_element(header, &stanza);
            let b = by_envelope.remote_envelope(header, &stanza);
            paths_agree(a, b, &stanza)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Presence from a peer server or a component to local accounts: the envelope path
    /// (availability presence read from the bytes, delivered as the bytes) and the element
    /// path give the same outputs across subscription states, resources, privacy lists and
    /// blocklists, payloads the typed parser refuses, and subscription presence and probes
    /// (the element path on both).
    #[test]
    fn remote_presence_paths_agree(
        states in proptest::array::uniform4(0..STATES.len()),
        back in 0..STATES.len(),
        chamber_available: bool,
        privacy in 0..PRIVACY.len(),
        steps in proptest::collection::vec(
            (0..PEER_HEADERS.len(), 0..PEER_FROM.len() + 1, 0..PRESENCE_TO.len(),
             0..REMOTE_TYPES.len(), any::<bool>(),
             proptest::option::weighted(0.7, (-2i8..3, 0..PRESENCE_CHILDREN.len()))),
            1..5,
        ),
    ) {
        let mut by_element = World::presence(states, back, chamber_available, privacy, false);
        let mut by_envelope = World::presence(states, back, chamber_available, privacy, true);
        for (header, sender, to, kind, id, payload) in steps {
            let sender = PEER_FROM.get(sender).copied().unwrap_or("mercutio@remote.example");
            // Not the set with a `jabber:client` `<show/>` beside the stanza's own: on a
            // peer's stream it is a payload, which the recipient's namespace turns into a
            // second `<show/>`. Both paths deliver the same children, the element path in
            // the typed presence's order (known children first), the envelope path in the
            // sender's.
            let payload = payload.filter(|(_, children)| *children != 4);
            let stanza = presence(PRESENCE_TO[to], false, id, payload).replacen(
                "<presence",
                &format!("<presence from='{sender}'{}", REMOTE_TYPES[kind]),
                1,
            );
            let header = PEER_HEADERS[header];
            let a = by_element.remote_element(header, &stanza);
            let b = by_envelope.remote_envelope(header, &stanza);
            paths_agree(a, b, &stanza)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Messages under privacy lists and blocklists, to offline accounts, unknown accounts,
    /// the server and remote domains, from sessions and peers: decided by the element path's
    /// unit of work on the envelope's header (or the fast path), the same outputs as the
    /// element path, recipients getting the bytes.
    #[test]
    fn messages_under_privacy_agree(
        states in proptest::array::uniform4(0..STATES.len()),
        privacy in 0..PRIVACY.len(),
        steps in proptest::collection::vec(
            (0..PRESENCE_SENDERS.len() + 1, 0..PRESENCE_TO.len(), 0..TYPES.len(), any::<bool>()),
            1..5,
        ),
    ) {
        let mut by_element = World::presence(states, 3, true, privacy, false);
        let mut by_envelope = World::presence(states, 3, true, privacy, true);
        for (sender, to, kind, extra) in steps {
            let remote = sender == PRESENCE_SENDERS.len();
            let from = PRESENCE_SENDERS.get(sender).copied().unwrap_or("mercutio@remote.example/x");
            let to = PRESENCE_TO[to];
            let stanza = message(to, TYPES[kind], remote, from, false, "hi", extra);
            let (a, b) = if remote {
                (
                    by_element.remote_element(REMOTE_HEADER, &stanza),
                    by_envelope.remote_envelope(REMOTE_HEADER, &stanza),
                )
            } else {
                (by_element.element(from, &stanza), by_envelope.envelope(from, &stanza))
            };
            paths_agree(a, b, &stanza)?;
        }
    }
}

/// An iq: `to`, `type`, an id or not, and `payloads` children (an extra `xml:lang`).
fn iq(
    to: Option<&str>,
    kind: Option<&str>,
    id: bool,
    payloads: usize,
    from: Option<&str>,
) -> String {
    let mut s = String::from("<iq");
    if let Some(to) = to {
        let _ = write!(s, " to='{to}'");
    }
    if let Some(from) = from {
        let _ = write!(s, " from='{from}'");
    }
    if let Some(kind) = kind {
        let _ = write!(s, " type='{kind}'");
    }
    if id {
        s += " id='i1'";
    }
    let children = [
        "<query xmlns='http://jabber.org/protocol/disco#info' node='a&amp;b'/>",
        "<ping xmlns='urn:xmpp:ping'/>",
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    ];
    if payloads == 0 {
        return s + "/>";
    }
    s + ">" + &children[..payloads.min(3)].concat() + "</iq>"
}

const IQ_TO: &[Option<&str>] = &[
    None,
    Some("juliet@example.com/balcony"),
    Some("juliet@example.com/chamber"),
    Some("Juliet@Example.com/balcony"),
    Some("juliet@example.com/gone"),
    Some("juliet@example.com"),
    Some("romeo@example.com/orchard"),
    Some("romeo@example.com"),
    Some("nurse@example.com/x"),
    Some("ghost@example.com/x"),
    Some("example.com"),
    Some("example.com/res"),
    Some("bot.remote.example"),
    Some("x@remote.example/r"),
];

const IQ_TYPES: &[Option<&str>] = &[
    Some("get"),
    Some("set"),
    Some("result"),
    Some("error"),
    Some("bogus"),
    None,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// An iq from a session or a peer: decided on the envelope where only its addresses and
    /// type matter (to another entity's full JID, out of the domains), the element path
    /// everywhere else; the same outputs either way, and refusals the same.
    #[test]
    fn iq_paths_agree(
        priorities in proptest::array::uniform3(-2i8..3),
        chamber_available: bool,
        block: bool,
        steps in proptest::collection::vec(
            (0..FROM.len() + PEER_FROM.len(), 0..IQ_TO.len(), 0..IQ_TYPES.len(),
             proptest::bool::weighted(0.9), 0usize..4),
            1..4,
        ),
    ) {
        let mut by_element = World::new(priorities, chamber_available, block);
        let mut by_envelope = World::new(priorities, chamber_available, block);
        for (sender, to, kind, id, payloads) in steps {
            let (a, b, stanza) = if let Some(from) = FROM.get(sender) {
                let stanza = iq(IQ_TO[to], IQ_TYPES[kind], id, payloads, None);
                (by_element.element(from, &stanza), by_envelope.envelope(from, &stanza), stanza)
            } else {
                let from = PEER_FROM[sender - FROM.len()];
                let header = PEER_HEADERS[sender % PEER_HEADERS.len()];
                let stanza = iq(IQ_TO[to], IQ_TYPES[kind], id, payloads, Some(from));
                (
                    by_element.remote_element(header, &stanza),
                    by_envelope.remote_envelope(header, &stanza),
                    stanza,
                )
            };
            paths_agree(a, b, &stanza)?;
        }
    }
}

#[test]
fn an_iq_to_a_full_jid_or_a_component_goes_as_bytes() {
    let mut w = World::new([1, 1, 0], true, false);
    let out = w.envelope(
        "romeo@example.com/orchard",
        "<iq to='juliet@example.com/chamber' type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    assert!(
        matches!(out.as_slice(), [Output::Forward(f)]
            if f.to.as_str() == "juliet@example.com/chamber"
                && f.from.as_str() == "romeo@example.com/orchard"),
        "{out:?}"
    );
    let out = w.envelope(
        "romeo@example.com/orchard",
        "<iq to='upload.remote.example' type='get' id='u'><request xmlns='urn:xmpp:http:upload:0'/></iq>",
    );
    assert!(
        matches!(out.as_slice(), [Output::Relay(r)] if r.to.as_str() == "upload.remote.example"),
        "{out:?}"
    );
    // To the account's bare JID: answered on its behalf from the payload, the element path.
    let out = w.envelope(
        "romeo@example.com/orchard",
        "<iq to='juliet@example.com' type='get' id='v'><vCard xmlns='vcard-temp'/></iq>",
    );
    assert_eq!(forwards(&out), 0, "{out:?}");
    assert!(matches!(out.as_slice(), [Output::Unhandled(_)]), "{out:?}");
}

/// The `type` of a peer's presence in [`remote_presence_paths_agree`].
const REMOTE_TYPES: &[&str] = &[
    "",
    "",
    " type='unavailable'",
    " type='probe'",
    " type='subscribe'",
    " type='error'",
    " type='bogus'",
];

/// A peer's availability presence to a local account reaches its resources as the bytes.
#[test]
fn a_remote_presence_is_forwarded_as_bytes() {
    // mercutio (remote) has `both` with juliet.
    let mut w = World::presence([3, 3, 0, 3], 3, true, 0, true);
    let stanza = "<presence from='Mercutio@Remote.Example/sword' to='juliet@example.com'><show>xa</show><c xmlns='urn:caps'/></presence>";
    let out = w.remote_envelope(REMOTE_HEADER, stanza);
    let to: Vec<&str> = out
        .iter()
        .filter_map(|o| match o {
            Output::Forward(f) => Some(f.to.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        to,
        ["juliet@example.com/balcony", "juliet@example.com/chamber"],
        "{out:?}"
    );
    let Output::Forward(f) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(f.from.as_str(), "mercutio@remote.example/sword");
    let element = f.to_element().unwrap();
    assert_eq!(element.ns(), "jabber:client");
    assert!(element.get_child("c", "urn:caps").is_some());
    // A presence the typed parser refuses: the element path's bounce.
    let out = w.remote_envelope(
        REMOTE_HEADER,
        "<presence from='mercutio@remote.example/sword' to='juliet@example.com'><priority>999</priority></presence>",
    );
    assert!(
        matches!(out.as_slice(), [Output::Route(e)] if e.attr("type") == Some("error")),
        "{out:?}"
    );
}

#[test]
fn a_remote_message_to_an_online_account_is_forwarded_as_bytes() {
    let mut w = World::new([1, 0, 0], true, false);
    let stanza = "<message to='juliet@example.com' from='Tybalt@Remote.Example/x' type='chat'><body>hi</body></message>";
    let out = w.remote_envelope(PEER_HEADERS[0], stanza);
    let [Output::Forward(f)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(f.to.as_str(), "juliet@example.com/balcony");
    // `from` as normalized, stamped over the peer's spelling; the namespace mapped.
    assert_eq!(f.from.as_str(), "tybalt@remote.example/x");
    let mut bytes = Vec::new();
    f.envelope.splice_into(&f.stamp(), &mut bytes).unwrap();
    let sent = xmpp_xml::parse_spliced(&bytes, "jabber:client").unwrap();
    assert_eq!(sent.ns(), "jabber:client");
    assert_eq!(sent.attr("from"), Some("tybalt@remote.example/x"));
    assert_eq!(sent.attr("to"), Some("juliet@example.com"));
    // Offline, or the recipient with privacy state, or an error: the element path.
    let out = w.remote_envelope(
        PEER_HEADERS[0],
        "<message to='nurse@example.com' from='remote.example' type='chat'><body>x</body></message>",
    );
    assert!(
        matches!(out.as_slice(), [Output::Offline { .. }]),
        "{out:?}"
    );
    // The recipient has a blocklist (privacy state): decided by the element path's unit of
    // work on the header, delivered as the bytes.
    let mut w = World::new([1, 0, 0], true, true);
    let out = w.remote_envelope(
        PEER_HEADERS[1],
        "<message to='romeo@example.com' from='bot.example.com'><body>x</body></message>",
    );
    assert!(
        matches!(out.as_slice(), [Output::Forward(f)] if f.from.as_str() == "bot.example.com"),
        "{out:?}"
    );
    // Not for a local domain: dropped, as on the element path.
    let out = w.remote_envelope(
        PEER_HEADERS[0],
        "<message to='x@elsewhere.example' from='remote.example'><body>x</body></message>",
    );
    assert!(out.is_empty(), "{out:?}");
}

/// The presence a session sent as bytes is kept as bytes (its typed copy has no payloads):
/// whoever is sent it later gets the bytes, payloads included, from the session that sent it.
#[test]
fn stored_presence_is_sent_on_as_its_bytes() {
    // mercutio (remote) and romeo have `both` with juliet; benvolio asked to subscribe.
    let mut w = World::presence([3, 5, 0, 3], 3, false, 0, true);
    let sent =
        "<presence><show>dnd</show><priority>5</priority><c xmlns='urn:caps' ver='1'/></presence>";
    w.envelope("juliet@example.com/balcony", sent);
    let bytes_of = |out: &[Output]| -> Vec<(String, String)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Forward(f) => Some((f.to.to_string(), f.to_element().unwrap())),
                Output::Relay(r) => Some((r.to.to_string(), r.to_element().unwrap())),
                _ => None,
            })
            .map(|(to, e)| {
                assert!(e.get_child("c", "urn:caps").is_some(), "{e:?}");
                assert_eq!(e.attr("from"), Some("juliet@example.com/balcony"));
                (to, e.attr("to").unwrap().to_owned())
            })
            .collect()
    };
    // A remote probe (RFC 6121 §4.3.2): relayed as the bytes.
    let out = w.remote_envelope(REMOTE_HEADER, EVENTS[0].2);
    assert_eq!(
        bytes_of(&out),
        [(
            "mercutio@remote.example".to_owned(),
            "mercutio@remote.example".to_owned()
        )],
        "{out:?}"
    );
    assert_eq!(out.len(), 1, "{out:?}");
    // A new resource learns the other's presence (§4.2.2), as the bytes.
    let out = w.element("juliet@example.com/chamber", "<presence/>");
    let learned: Vec<_> = bytes_of(&out)
        .into_iter()
        .filter(|(to, _)| to == "juliet@example.com/chamber")
        .collect();
    assert_eq!(
        learned,
        [(
            "juliet@example.com/chamber".to_owned(),
            "juliet@example.com/chamber".to_owned()
        )],
        "{out:?}"
    );
    // An approved subscriber (§3.1.5) gets it as the bytes.
    let out = w.element(
        "juliet@example.com/balcony",
        "<presence to='benvolio@example.com' type='subscribed'/>",
    );
    assert!(
        bytes_of(&out).contains(&(
            "benvolio@example.com/square".to_owned(),
            "benvolio@example.com".to_owned()
        )),
        "{out:?}"
    );
    // Unavailable: nothing stored is sent any more; a probe now gets `unavailable`.
    w.envelope(
        "juliet@example.com/balcony",
        "<presence type='unavailable'/>",
    );
    w.envelope(
        "juliet@example.com/chamber",
        "<presence type='unavailable'/>",
    );
    let out = w.remote_envelope(REMOTE_HEADER, EVENTS[0].2);
    assert!(
        matches!(out.as_slice(), [Output::Route(e)] if e.attr("type") == Some("unavailable")),
        "{out:?}"
    );
}
