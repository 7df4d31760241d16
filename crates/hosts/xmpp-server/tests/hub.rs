//! The hub in memory: clients are `xmpp-stream` client machines wired to hub sessions by
//! byte queues, TLS is faked (fixed binding bytes on both ends), time is virtual.
// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::error_condition;
use core::time::Duration;
use minidom::Element;
use xmpp_server::hub::Verification;
use xmpp_server::{
    Hub, HubConfig, HubOutput, MAX_LOG_LINES, PlusPolicy, SessionId, StorageRequest,
};
use xmpp_stream::dialback::{DialbackKey, DialbackSecret, Domain, StreamId};
use xmpp_stream::pair::fake_tls_binding;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, DialbackOutcome, Event, Instant, Mechanism, Output,
    S2sConfig, S2sReceivingStream, SeededEntropy, SmConfig, SmEvent, SmState, StanzaErrorCondition,
    Transport,
};

struct Client {
    stream: ClientStream,
    id: SessionId,
    events: Vec<Event>,
    /// Bytes waiting for the client machine.
    inbox: Vec<u8>,
    server_tls_pending: bool,
    /// Keep the client's `<resume/>` from the hub (in `held`) instead of delivering it: the
    /// soak then decides whether it reaches the hub before the connection is cut.
    hold_resume: bool,
    held: Vec<u8>,
}

struct World {
    hub: Hub,
    clients: Vec<Client>,
    now: Instant,
    seed: u64,
    /// The s2s connections the hub asked for: (session, remote domain).
    connects: Vec<(SessionId, String)>,
    /// Storage requests not answered yet (with a database), oldest first.
    storage: Vec<StorageRequest>,
}

const NS_ROSTER: &str = "jabber:iq:roster";

impl World {
    fn new(plus: PlusPolicy) -> Self {
        Self::with_config(
            HubConfig::new(BareJid::new("localhost").unwrap())
                .with_user("alice", "alice-pw")
                .with_user("bob", "bob-pw")
                .with_plus(plus),
        )
    }

    fn with_config(config: HubConfig) -> Self {
        World {
            hub: Hub::new(config),
            clients: Vec::new(),
            now: Instant::ZERO,
            seed: 10,
            connects: Vec::new(),
            storage: Vec::new(),
        }
    }

    fn connect(&mut self, user: &str, password: &str, resource: &str) -> usize {
        let jid = BareJid::new(&format!("{user}@localhost")).unwrap();
        let mut config = ClientConfig::new(jid, password);
        config.resource = Some(resource.to_owned());
        self.connect_with(config)
    }

    fn connect_with(&mut self, config: ClientConfig) -> usize {
        self.connect_on(config, Transport::Plain)
    }

    fn connect_on(&mut self, config: ClientConfig, transport: Transport) -> usize {
        self.seed += 2;
        let mut stream = ClientStream::new(config, SeededEntropy::new(self.seed));
        let id = self.hub.accept(
            self.now,
            transport.clone(),
            SeededEntropy::new(self.seed + 1),
        );
        stream.start(self.now, transport).unwrap();
        self.clients.push(Client {
            stream,
            id,
            events: Vec::new(),
            inbox: Vec::new(),
            server_tls_pending: false,
            hold_resume: false,
            held: Vec::new(),
        });
        self.drive();
        self.clients.len() - 1
    }

    /// Move bytes until nothing moves (bounded).
    fn drive(&mut self) {
        for _ in 0..10_000 {
            let mut progress = false;
            self.now = Instant::from_millis(self.now.as_millis() + 1);
            // Hub -> clients.
            while let Some(out) = self.hub.poll_output() {
                progress = true;
                match out {
                    HubOutput::Transmit(id, bytes) => {
                        if let Some(c) = self.clients.iter_mut().find(|c| c.id == id) {
                            c.inbox.extend(bytes);
                        }
                    }
                    HubOutput::StartTls(id) => {
                        if let Some(c) = self.clients.iter_mut().find(|c| c.id == id) {
                            c.server_tls_pending = true;
                        }
                    }
                    HubOutput::Close(_) => {}
                    HubOutput::Connect { id, remote, .. } => {
                        self.connects.push((id, remote.to_string()));
                    }
                    HubOutput::Storage(request) => self.storage.push(request),
                    _ => {}
                }
            }
            let now = self.now;
            for i in 0..self.clients.len() {
                let c = &mut self.clients[i];
                if !c.inbox.is_empty() {
                    progress = true;
                    let bytes = std::mem::take(&mut c.inbox);
                    let _ = c.stream.handle_input(now, &bytes);
                }
                let id = c.id;
                let mut to_hub = Vec::new();
                let mut client_tls = false;
                while let Some(out) = c.stream.poll_output() {
                    progress = true;
                    match out {
                        Output::Transmit(bytes) => to_hub.extend(bytes),
                        Output::StartTls => client_tls = true,
                        Output::Event(e) => c.events.push(e),
                        _ => {}
                    }
                }
                if !to_hub.is_empty() {
                    let c = &mut self.clients[i];
                    if c.hold_resume && to_hub.windows(8).any(|w| w == b"<resume ") {
                        c.hold_resume = false;
                        c.held = to_hub;
                    } else {
                        self.hub.handle_input(id, now, &to_hub);
                    }
                }
                // Fake TLS: both ends "handshake" once the client asked for it too.
                if client_tls {
                    let c = &mut self.clients[i];
                    assert!(c.server_tls_pending, "server asked for TLS first");
                    c.server_tls_pending = false;
                    c.stream.tls_established(now, fake_tls_binding()).unwrap();
                    self.hub.tls_established(id, now, fake_tls_binding());
                }
            }
            if !progress {
                return;
            }
        }
        panic!("no quiescence");
    }

    fn send(&mut self, client: usize, stanza: &str) {
        let element: Element = stanza.parse().unwrap();
        self.clients[client]
            .stream
            .send_stanza(self.now, &element)
            .unwrap();
        self.drive();
    }

    /// Stanzas the client received since the last call.
    fn take_stanzas(&mut self, client: usize) -> Vec<Element> {
        let events = std::mem::take(&mut self.clients[client].events);
        events
            .into_iter()
            .filter_map(|e| match e {
                Event::Stanza(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn authenticated_with(&self, client: usize) -> Option<Mechanism> {
        self.clients[client].events.iter().find_map(|e| match e {
            Event::Authenticated { mechanism, .. } => Some(*mechanism),
            _ => None,
        })
    }
}

fn is_negotiated(world: &World, client: usize) -> bool {
    world.clients[client].stream.is_negotiated()
}

#[test]
fn login_binds_and_default_policy_offers_no_plus() {
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "alice-pw", "laptop");
    assert!(is_negotiated(&w, a));
    assert_eq!(
        w.clients[a].stream.jid().unwrap().as_str(),
        "alice@localhost/laptop"
    );
    // Our client prefers -PLUS when binding data exists: without it on offer it picks the
    // strongest plain SCRAM.
    assert_eq!(w.authenticated_with(a), Some(Mechanism::ScramSha512));
    assert_eq!(
        w.hub.jid(w.clients[a].id).unwrap().as_str(),
        "alice@localhost/laptop"
    );
}

#[test]
fn plus_policy_advertise_binds_the_channel() {
    let mut w = World::new(PlusPolicy::Advertise);
    let a = w.connect("alice", "alice-pw", "laptop");
    assert!(is_negotiated(&w, a));
    assert_eq!(w.authenticated_with(a), Some(Mechanism::ScramSha512Plus));
}

#[test]
fn wrong_password_is_not_authorized() {
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "wrong", "laptop");
    assert!(!is_negotiated(&w, a));
    let failed = w.clients[a].events.iter().any(|e| {
        matches!(e, Event::Closed { reason: xmpp_stream::CloseReason::AuthenticationFailed { condition, .. } } if condition.to_string() == "not-authorized")
    });
    assert!(failed, "{:?}", w.clients[a].events);
}

#[test]
fn each_mechanism_logs_in() {
    for (plus, mechanism) in [
        (PlusPolicy::Off, Mechanism::ScramSha1),
        (PlusPolicy::Off, Mechanism::ScramSha256),
        (PlusPolicy::Off, Mechanism::ScramSha512),
        (PlusPolicy::Off, Mechanism::Plain),
        (PlusPolicy::Advertise, Mechanism::ScramSha1Plus),
        (PlusPolicy::Advertise, Mechanism::ScramSha256Plus),
    ] {
        // The server offers its whole list (with XEP-0474 downgrade protection on); the client
        // allows only one mechanism.
        let mut w = World::new(plus);
        let mut config = ClientConfig::new(BareJid::new("bob@localhost").unwrap(), "bob-pw");
        config.resource = Some("phone".to_owned());
        config.mechanisms = vec![mechanism];
        let b = w.connect_with(config);
        assert!(is_negotiated(&w, b), "{mechanism}");
        assert_eq!(w.authenticated_with(b), Some(mechanism));
    }
}

#[test]
fn roster_subscription_presence_and_messages() {
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "alice-pw", "laptop");
    let b = w.connect("bob", "bob-pw", "phone");

    // Both fetch their (empty) rosters and go online.
    for (c, id) in [(a, "ra"), (b, "rb")] {
        w.send(
            c,
            &format!(
                "<iq xmlns='jabber:client' type='get' id='{id}'><query xmlns='{NS_ROSTER}'/></iq>"
            ),
        );
        let got = w.take_stanzas(c);
        let result = got.iter().find(|s| s.attr("id") == Some(id)).unwrap();
        assert_eq!(result.attr("type"), Some("result"));
        let query = result.get_child("query", NS_ROSTER).unwrap();
        assert_eq!(query.children().count(), 0);
        w.send(c, "<presence xmlns='jabber:client'/>");
        w.take_stanzas(c);
    }

    // Alice adds Bob to her roster: result plus a push.
    w.send(
        a,
        &format!("<iq xmlns='jabber:client' type='set' id='add'><query xmlns='{NS_ROSTER}'><item jid='bob@localhost' name='Bob'><group>Friends</group></item></query></iq>"),
    );
    let got = w.take_stanzas(a);
    assert!(
        got.iter()
            .any(|s| s.attr("id") == Some("add") && s.attr("type") == Some("result"))
    );
    let push = got
        .iter()
        .find(|s| s.attr("type") == Some("set"))
        .expect("roster push");
    let item = push
        .get_child("query", NS_ROSTER)
        .and_then(|q| q.get_child("item", NS_ROSTER))
        .unwrap();
    assert_eq!(item.attr("jid"), Some("bob@localhost"));
    assert_eq!(item.attr("subscription"), Some("none"));

    // Alice subscribes; Bob receives the request stamped with her bare JID.
    w.send(
        a,
        "<presence xmlns='jabber:client' type='subscribe' to='bob@localhost'/>",
    );
    w.take_stanzas(a);
    let got = w.take_stanzas(b);
    let request = got
        .iter()
        .find(|s| s.name() == "presence" && s.attr("type") == Some("subscribe"))
        .expect("subscription request");
    assert_eq!(request.attr("from"), Some("alice@localhost"));

    // Bob approves: Alice gets `subscribed` and Bob's current presence.
    w.send(
        b,
        "<presence xmlns='jabber:client' type='subscribed' to='alice@localhost'/>",
    );
    let got = w.take_stanzas(a);
    assert!(
        got.iter()
            .any(|s| s.name() == "presence" && s.attr("type") == Some("subscribed")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|s| s.name() == "presence"
            && s.attr("type").is_none()
            && s.attr("from") == Some("bob@localhost/phone")),
        "{got:?}"
    );
    let push = got
        .iter()
        .filter(|s| s.name() == "iq" && s.attr("type") == Some("set"))
        .filter_map(|s| {
            s.get_child("query", NS_ROSTER)?
                .get_child("item", NS_ROSTER)
        })
        .next_back()
        .expect("push with the new state");
    assert_eq!(push.attr("subscription"), Some("to"));
    w.take_stanzas(b);

    // Bob changes presence: Alice (subscribed to him) sees it.
    w.send(
        b,
        "<presence xmlns='jabber:client'><show>away</show><status>lunch</status></presence>",
    );
    let got = w.take_stanzas(a);
    let presence = got
        .iter()
        .find(|s| s.name() == "presence")
        .expect("broadcast");
    assert_eq!(presence.attr("from"), Some("bob@localhost/phone"));
    assert_eq!(
        presence
            .get_child("show", "jabber:client")
            .map(Element::text),
        Some("away".to_owned())
    );

    // Bob's own resource got his presence too (RFC 6121 §4.2.2).
    let own = w.take_stanzas(b);
    assert!(
        own.iter()
            .any(|s| s.name() == "presence" && s.attr("to") == Some("bob@localhost/phone")),
        "{own:?}"
    );

    // Alice changes presence: Bob has no subscription to her, so he sees nothing.
    w.send(
        a,
        "<presence xmlns='jabber:client'><show>dnd</show></presence>",
    );
    let got = w.take_stanzas(b);
    assert!(got.iter().all(|s| s.name() != "presence"), "{got:?}");

    // Messages both ways, to the bare and to the full JID.
    w.send(
        a,
        "<message xmlns='jabber:client' type='chat' to='bob@localhost' id='m1'><body>hi bob</body></message>",
    );
    let got = w.take_stanzas(b);
    let m = got
        .iter()
        .find(|s| s.name() == "message")
        .expect("delivered");
    assert_eq!(m.attr("from"), Some("alice@localhost/laptop"));
    assert_eq!(
        m.get_child("body", "jabber:client").unwrap().text(),
        "hi bob"
    );
    w.send(
        b,
        "<message xmlns='jabber:client' type='chat' to='alice@localhost/laptop' id='m2'><body>hi alice</body></message>",
    );
    let got = w.take_stanzas(a);
    let m = got
        .iter()
        .find(|s| s.name() == "message")
        .expect("delivered");
    assert_eq!(m.attr("from"), Some("bob@localhost/phone"));
    assert_eq!(
        m.get_child("body", "jabber:client").unwrap().text(),
        "hi alice"
    );

    // Bob leaves: Alice gets his unavailable presence.
    w.clients[b].stream.close(w.now).unwrap();
    w.drive();
    assert!(w.clients[b].stream.is_closed());
    let got = w.take_stanzas(a);
    assert!(
        got.iter().any(|s| s.name() == "presence"
            && s.attr("type") == Some("unavailable")
            && s.attr("from") == Some("bob@localhost/phone")),
        "{got:?}"
    );
    assert_eq!(w.hub.session_count(), 1);
}

#[test]
fn unknown_iq_gets_service_unavailable_and_ping_is_answered() {
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "alice-pw", "laptop");
    w.send(a, "<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    w.send(a, "<iq xmlns='jabber:client' type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
    let got = w.take_stanzas(a);
    let ping = got.iter().find(|s| s.attr("id") == Some("p1")).unwrap();
    assert_eq!(ping.attr("type"), Some("result"));
    let version = got.iter().find(|s| s.attr("id") == Some("v1")).unwrap();
    assert_eq!(version.attr("type"), Some("error"));
    assert!(
        version
            .get_child("error", "jabber:client")
            .and_then(|e| e.get_child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"))
            .is_some(),
        "{version:?}"
    );
}

#[test]
fn message_to_remote_domain_bounces() {
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "alice-pw", "laptop");
    w.send(a, "<message xmlns='jabber:client' to='carol@elsewhere.example' id='r1'><body>x</body></message>");
    let got = w.take_stanzas(a);
    let bounce = got
        .iter()
        .find(|s| s.attr("id") == Some("r1"))
        .expect("bounce");
    assert_eq!(bounce.attr("type"), Some("error"));
}

#[test]
fn same_full_jid_replaces_the_older_session() {
    let mut w = World::new(PlusPolicy::Off);
    let first = w.connect("alice", "alice-pw", "laptop");
    let second = w.connect("alice", "alice-pw", "laptop");
    assert!(is_negotiated(&w, second));
    assert!(w.clients[first].stream.is_closed());
    let conflict = w.clients[first].events.iter().any(|e| {
        matches!(e, Event::Closed { reason: xmpp_stream::CloseReason::StreamError(err) } if err.condition == xmpp_stream::StreamErrorCondition::Conflict)
    });
    assert!(conflict, "{:?}", w.clients[first].events);
    assert_eq!(w.hub.session_count(), 1);
}

#[test]
fn roster_set_ignores_subscription_values_other_than_remove() {
    // RFC 6121 §2.1.2.5; slixmpp sends subscription='none' in every roster set.
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "alice-pw", "laptop");
    w.send(
        a,
        &format!("<iq xmlns='jabber:client' type='get' id='g'><query xmlns='{NS_ROSTER}'/></iq>"),
    );
    w.take_stanzas(a);
    w.send(
        a,
        &format!("<iq xmlns='jabber:client' type='set' id='s1'><query xmlns='{NS_ROSTER}'><item jid='bob@localhost' subscription='both'/></query></iq>"),
    );
    let got = w.take_stanzas(a);
    let result = got.iter().find(|s| s.attr("id") == Some("s1")).unwrap();
    assert_eq!(result.attr("type"), Some("result"), "{got:?}");
    let pushed = got
        .iter()
        .filter_map(|s| {
            s.get_child("query", NS_ROSTER)?
                .get_child("item", NS_ROSTER)
        })
        .find(|item| item.attr("jid") == Some("bob@localhost"))
        .expect("push");
    // The claimed 'both' changed nothing: the state is still none.
    assert_eq!(pushed.attr("subscription"), Some("none"));

    // 'remove' still removes.
    w.send(
        a,
        &format!("<iq xmlns='jabber:client' type='set' id='s2'><query xmlns='{NS_ROSTER}'><item jid='bob@localhost' subscription='remove'/></query></iq>"),
    );
    let got = w.take_stanzas(a);
    assert!(
        got.iter()
            .any(|s| s.attr("id") == Some("s2") && s.attr("type") == Some("result"))
    );
    assert!(got.iter().any(|s| {
        s.get_child("query", NS_ROSTER)
            .and_then(|q| q.get_child("item", NS_ROSTER))
            .is_some_and(|i| i.attr("subscription") == Some("remove"))
    }));
}

#[test]
fn direct_tls_skips_starttls_and_keeps_the_plus_policy() {
    for (plus, expected) in [
        (PlusPolicy::Off, Mechanism::ScramSha512),
        (PlusPolicy::Advertise, Mechanism::ScramSha512Plus),
    ] {
        let mut w = World::new(plus);
        let jid = BareJid::new("alice@localhost").unwrap();
        let config = ClientConfig::new(jid, "alice-pw");
        let a = w.connect_on(config, Transport::Tls(fake_tls_binding()));
        assert!(is_negotiated(&w, a));
        assert!(
            !w.clients[a]
                .events
                .iter()
                .any(|e| matches!(e, Event::Secured)),
            "no STARTTLS on direct TLS"
        );
        assert_eq!(w.authenticated_with(a), Some(expected));
    }
}

#[test]
fn shutdown_sends_system_shutdown_to_every_stream() {
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "alice-pw", "laptop");
    let b = w.connect("bob", "bob-pw", "phone");
    w.hub.shutdown(w.now);
    w.drive();
    for c in [a, b] {
        let shut = w.clients[c].events.iter().any(|e| {
            matches!(e, Event::Closed { reason: xmpp_stream::CloseReason::StreamError(err) } if err.condition == xmpp_stream::StreamErrorCondition::SystemShutdown)
        });
        assert!(shut, "{:?}", w.clients[c].events);
    }
    assert_eq!(w.hub.session_count(), 0);
}

#[test]
fn messages_to_an_offline_account_wait_for_its_initial_presence() {
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "alice-pw", "laptop");
    w.send(
        a,
        "<message xmlns='jabber:client' type='chat' to='bob@localhost' id='o1'><body>later</body></message>",
    );
    // Stored, not bounced.
    assert!(w.take_stanzas(a).iter().all(|s| s.attr("id") != Some("o1")));
    let bob = BareJid::new("bob@localhost").unwrap();
    assert_eq!(w.hub.offline_count(&bob), 1);

    let b = w.connect("bob", "bob-pw", "phone");
    // Bound but not yet available: still waiting.
    assert!(w.take_stanzas(b).iter().all(|s| s.name() != "message"));
    w.send(b, "<presence xmlns='jabber:client'/>");
    let got = w.take_stanzas(b);
    let m = got
        .iter()
        .find(|s| s.name() == "message")
        .expect("delivered");
    assert_eq!(m.attr("from"), Some("alice@localhost/laptop"));
    assert_eq!(
        m.get_child("body", "jabber:client").unwrap().text(),
        "later"
    );
    assert_eq!(w.hub.offline_count(&bob), 0);
}

// ----- XEP-0198 stream management -----

/// A client with stream management on (it resumes `state` when given).
fn sm_client(w: &mut World, resource: &str, state: Option<SmState>) -> usize {
    sm_client_as(w, "alice", "alice-pw", resource, state)
}

fn sm_client_as(
    w: &mut World,
    user: &str,
    password: &str,
    resource: &str,
    state: Option<SmState>,
) -> usize {
    sm_client_holding(w, user, password, resource, state, false)
}

/// [`sm_client_as`], keeping the client's `<resume/>` from the hub when `hold_resume`.
fn sm_client_holding(
    w: &mut World,
    user: &str,
    password: &str,
    resource: &str,
    state: Option<SmState>,
    hold_resume: bool,
) -> usize {
    let jid = BareJid::new(&format!("{user}@localhost")).unwrap();
    let mut config = ClientConfig::new(jid, password);
    config.resource = Some(resource.to_owned());
    config.sm = SmConfig::on();
    sm_client_configured(w, config, state, hold_resume)
}

/// A client of `config` (stream management on in it), resuming `state` when given.
fn sm_client_configured(
    w: &mut World,
    config: ClientConfig,
    state: Option<SmState>,
    hold_resume: bool,
) -> usize {
    w.seed += 2;
    let mut stream = ClientStream::new(config, SeededEntropy::new(w.seed));
    if let Some(state) = state {
        stream.resume_with(state).unwrap();
    }
    let id = w
        .hub
        .accept(w.now, Transport::Plain, SeededEntropy::new(w.seed + 1));
    stream.start(w.now, Transport::Plain).unwrap();
    w.clients.push(Client {
        stream,
        id,
        events: Vec::new(),
        inbox: Vec::new(),
        server_tls_pending: false,
        hold_resume,
        held: Vec::new(),
    });
    w.drive();
    w.clients.len() - 1
}

/// The TCP connection of `client` dies: what the hub sent it and did not arrive is lost.
fn cut(w: &mut World, client: usize) -> SmState {
    while let Some(out) = w.hub.poll_output() {
        if let HubOutput::Transmit(id, bytes) = out
            && let Some(c) = w.clients.iter_mut().find(|c| c.id == id)
        {
            c.inbox.extend(bytes);
        }
    }
    w.clients[client].inbox.clear();
    let (now, id) = (w.now, w.clients[client].id);
    w.clients[client].stream.transport_closed(now);
    w.hub.transport_closed(id, now);
    w.drive();
    w.clients[client]
        .stream
        .sm_state()
        .expect("resumption granted")
}

fn message_ids(stanzas: &[Element]) -> Vec<String> {
    stanzas
        .iter()
        .filter(|s| s.name() == "message")
        .filter_map(|s| s.attr("id").map(str::to_owned))
        .collect()
}

fn bob_sends(w: &mut World, b: usize, ids: std::ops::Range<u32>) {
    for n in ids {
        w.send(
            b,
            &format!("<message xmlns='jabber:client' type='chat' to='alice@localhost/phone' id='m{n}'><body>{n}</body></message>"),
        );
    }
}

#[test]
fn a_cut_session_is_resumed_and_every_message_arrives_once_in_order() {
    let mut w = World::new(PlusPolicy::Off);
    let a = sm_client(&mut w, "phone", None);
    assert!(
        w.clients[a]
            .events
            .iter()
            .any(|e| matches!(e, Event::Sm(SmEvent::Enabled { id: Some(_), .. }))),
        "{:?}",
        w.clients[a].events
    );
    w.send(a, "<presence xmlns='jabber:client'/>");
    let b = w.connect("bob", "bob-pw", "desk");
    bob_sends(&mut w, b, 0..3);
    let mut got = message_ids(&w.take_stanzas(a));
    // m3 is in flight when the connection dies: bob's bytes reach the hub, the hub's to
    // alice are lost with the connection.
    let m3: Element =
        "<message xmlns='jabber:client' type='chat' to='alice@localhost/phone' id='m3'/>"
            .parse()
            .unwrap();
    w.clients[b].stream.send_stanza(w.now, &m3).unwrap();
    let mut to_hub = Vec::new();
    while let Some(out) = w.clients[b].stream.poll_output() {
        if let Output::Transmit(bytes) = out {
            to_hub.extend(bytes);
        }
    }
    let (now, bob_id) = (w.now, w.clients[b].id);
    w.hub.handle_input(bob_id, now, &to_hub);
    let state = cut(&mut w, a);
    assert_eq!(w.hub.detached_count(), 1);
    bob_sends(&mut w, b, 4..6);
    // m3 unacknowledged (with what else was not acknowledged yet), m4 and m5 queued.
    assert!(w.hub.detached_queued() >= 3, "{}", w.hub.detached_queued());
    // A new connection resumes: nothing lost, nothing twice, in order.
    let a2 = sm_client(&mut w, "phone", Some(state));
    assert!(
        w.clients[a2]
            .events
            .iter()
            .any(|e| matches!(e, Event::Sm(SmEvent::Resumed { .. })))
    );
    assert_eq!(w.hub.detached_count(), 0);
    got.extend(message_ids(&w.take_stanzas(a2)));
    bob_sends(&mut w, b, 6..7);
    got.extend(message_ids(&w.take_stanzas(a2)));
    let want: Vec<String> = (0..7).map(|n| format!("m{n}")).collect();
    assert_eq!(got, want);
    // The resumed stream is the session: the hub routes to it.
    assert_eq!(
        w.hub.jid(w.clients[a2].id).unwrap().as_str(),
        "alice@localhost/phone"
    );
}

#[test]
fn a_second_resumption_replaces_the_first_transport() {
    let mut w = World::new(PlusPolicy::Off);
    let a = sm_client(&mut w, "phone", None);
    w.send(a, "<presence xmlns='jabber:client'/>");
    // The client thinks its connection died; the hub has not noticed.
    let state = w.clients[a].stream.sm_state().unwrap();
    let a2 = sm_client(&mut w, "phone", Some(state));
    assert!(w.clients[a2].stream.is_negotiated());
    let closed = w.clients[a].events.iter().any(|e| {
        matches!(e, Event::Closed { reason: xmpp_stream::CloseReason::StreamError(err) } if err.condition == xmpp_stream::StreamErrorCondition::Conflict)
    });
    assert!(closed, "{:?}", w.clients[a].events);
    let b = w.connect("bob", "bob-pw", "desk");
    bob_sends(&mut w, b, 0..1);
    assert_eq!(message_ids(&w.take_stanzas(a2)), ["m0"]);
}

#[test]
fn an_expired_session_ends_and_its_messages_go_offline() {
    let mut w = World::new(PlusPolicy::Off);
    let a = sm_client(&mut w, "phone", None);
    w.send(a, "<presence xmlns='jabber:client'/>");
    let b = w.connect("bob", "bob-pw", "desk");
    let state = cut(&mut w, a);
    bob_sends(&mut w, b, 0..2);
    let alice = BareJid::new("alice@localhost").unwrap();
    assert_eq!(w.hub.offline_count(&alice), 0);
    // Past the window: the session ends, the queued messages are stored for the account.
    w.now = w.now + Duration::from_secs(301);
    w.hub.handle_timeout(w.now);
    w.drive();
    assert_eq!(w.hub.detached_count(), 0);
    assert_eq!(w.hub.offline_count(&alice), 2);
    // Resuming now: item-not-found; the client binds afresh and reports nothing undelivered.
    let a2 = sm_client(&mut w, "phone", Some(state));
    let failed = w.clients[a2].events.iter().any(|e| {
        matches!(e, Event::Sm(SmEvent::ResumeFailed { condition: Some(c), .. }) if c == "item-not-found")
    });
    assert!(failed, "{:?}", w.clients[a2].events);
    assert!(w.clients[a2].stream.is_negotiated());
    w.send(a2, "<presence xmlns='jabber:client'/>");
    assert_eq!(message_ids(&w.take_stanzas(a2)), ["m0", "m1"]);
}

/// The stanzas alice's fresh session gets from offline storage after her managed session
/// expired with bob's messages unacknowledged (in flight when her connection died), the
/// hub's client streams handing out envelopes or not.
fn offline_after_expiry(envelopes: bool) -> Vec<Element> {
    let mut config = HubConfig::new(BareJid::new("localhost").unwrap())
        .with_user("alice", "alice-pw")
        .with_user("bob", "bob-pw");
    config.stream.envelopes = envelopes;
    let mut w = World::with_config(config);
    let a = sm_client(&mut w, "phone", None);
    w.send(a, "<presence xmlns='jabber:client'/>");
    let b = w.connect("bob", "bob-pw", "desk");
    // Bob's messages reach the hub, which forwards them to alice; her connection dies
    // before they arrive: they are unacknowledged in her detached session.
    for n in 0..3 {
        let m: Element = format!(
            "<message xmlns='jabber:client' type='chat' to='alice@localhost/phone' id='u{n}' xml:lang='en'><body>{n} &amp; &lt;more&gt;</body><x xmlns='urn:example:x' a='&apos;{n}'/></message>"
        )
        .parse()
        .unwrap();
        w.clients[b].stream.send_stanza(w.now, &m).unwrap();
    }
    let mut to_hub = Vec::new();
    while let Some(out) = w.clients[b].stream.poll_output() {
        if let Output::Transmit(bytes) = out {
            to_hub.extend(bytes);
        }
    }
    let (now, bob_id) = (w.now, w.clients[b].id);
    w.hub.handle_input(bob_id, now, &to_hub);
    let _ = cut(&mut w, a);
    assert_eq!(w.hub.detached_count(), 1);
    // The three messages, with whatever else alice had not acknowledged yet.
    assert!(w.hub.detached_queued() >= 3, "{}", w.hub.detached_queued());
    w.now = w.now + Duration::from_secs(301);
    w.hub.handle_timeout(w.now);
    w.drive();
    let alice = BareJid::new("alice@localhost").unwrap();
    assert_eq!(w.hub.offline_count(&alice), 3);
    let a2 = w.connect("alice", "alice-pw", "tablet");
    w.send(a2, "<presence xmlns='jabber:client'/>");
    w.take_stanzas(a2)
        .into_iter()
        .filter(|s| s.name() == "message")
        .collect()
}

#[test]
fn unacknowledged_envelopes_go_offline_as_the_elements_would() {
    // Forwarded by envelope, the detached session keeps the spliced bytes: on expiry they
    // become the same elements the element path kept, stored and delivered the same.
    let by_element = offline_after_expiry(false);
    let by_envelope = offline_after_expiry(true);
    assert_eq!(message_ids(&by_element), ["u0", "u1", "u2"]);
    assert_eq!(by_envelope, by_element);
    let x = by_envelope[1].get_child("x", "urn:example:x").unwrap();
    assert_eq!(x.attr("a"), Some("'1"));
    assert_eq!(by_envelope[1].attr("from"), Some("bob@localhost/desk"));
}

#[test]
fn a_detached_session_is_kept_for_the_window_granted_not_longer() {
    // The client asks for 5 s: the hub grants min(300, 5) in `<enabled max=''/>` and must
    // keep the session that long, not for its own 300 s.
    let mut w = World::new(PlusPolicy::Off);
    let jid = BareJid::new("alice@localhost").unwrap();
    let mut config = ClientConfig::new(jid, "alice-pw");
    config.resource = Some("phone".to_owned());
    config.sm = SmConfig::on();
    config.sm.max_resume = Some(Duration::from_secs(5));
    let a = w.connect_with(config);
    let granted = w.clients[a].events.iter().find_map(|e| match e {
        Event::Sm(SmEvent::Enabled { max, .. }) => Some(*max),
        _ => None,
    });
    assert_eq!(granted, Some(Some(5)));
    w.send(a, "<presence xmlns='jabber:client'/>");
    let state = cut(&mut w, a);
    assert_eq!(w.hub.detached_count(), 1);
    w.now = w.now + Duration::from_secs(4);
    w.hub.handle_timeout(w.now);
    w.drive();
    assert_eq!(
        w.hub.detached_count(),
        1,
        "expired before the window granted"
    );
    w.now = w.now + Duration::from_secs(2);
    w.hub.handle_timeout(w.now);
    w.drive();
    assert_eq!(w.hub.detached_count(), 0, "kept past the window granted");
    let a2 = sm_client(&mut w, "phone", Some(state));
    let failed = w.clients[a2].events.iter().any(|e| {
        matches!(e, Event::Sm(SmEvent::ResumeFailed { condition: Some(c), .. }) if c == "item-not-found")
    });
    assert!(failed, "{:?}", w.clients[a2].events);
}

/// The stream-management soak, in memory: 8 accounts with stream management, one sender,
/// 400 rounds; a seeded choice each round sends a message, cuts a connection at a random byte
/// of what was in flight (mid-stanza, mid-ack), or resumes a cut session, one time in two
/// cutting that resumption too (`<resume/>` lost, or read by the hub and the cut before
/// `<resumed/>` arrives whole, or right after it).
/// Exact accounting at the end: every message arrived once, in order, per account; and once
/// every session is closed the hub holds no detached session and no queued stanza.
#[test]
fn sm_soak_cuts_at_random_points_and_loses_nothing() {
    const USERS: usize = 8;
    let mut config = HubConfig::new(BareJid::new("localhost").unwrap()).with_user("bob", "bob-pw");
    for u in 0..USERS {
        config = config.with_user(&format!("u{u}"), "pw");
    }
    let mut w = World::with_config(config);
    let mut rng = 0x5eed_u64;
    let mut next = move |n: usize| {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(rng >> 33).unwrap() % n
    };
    let bob = w.connect("bob", "bob-pw", "desk");
    // Per account: its client index (None while cut), its last saved state, what was sent
    // and what arrived.
    let mut clients: Vec<Option<usize>> = Vec::new();
    let mut saved: Vec<Option<SmState>> = vec![None; USERS];
    let mut sent: Vec<Vec<u32>> = vec![Vec::new(); USERS];
    let mut got: Vec<Vec<u32>> = vec![Vec::new(); USERS];
    for u in 0..USERS {
        let c = sm_client_as(&mut w, &format!("u{u}"), "pw", "r", None);
        w.send(c, "<presence xmlns='jabber:client'/>");
        clients.push(Some(c));
    }
    let collect = |w: &mut World, c: usize, got: &mut Vec<u32>| {
        for s in w.take_stanzas(c) {
            if let Some(id) = s.attr("id").and_then(|id| id.strip_prefix('m')) {
                got.push(id.parse().unwrap());
            }
        }
    };
    let (mut cuts, mut resumptions) = (0, 0);
    // Cuts during resumption: `<resume/>` lost, cut before `<resumed/>`, right after it.
    let mut resume_cuts = [0u32; 3];
    for round in 0..400u32 {
        let u = next(USERS);
        match next(10) {
            0..=5 => {
                let m: Element = format!(
                    "<message xmlns='jabber:client' type='chat' to='u{u}@localhost/r' id='m{round}'/>"
                )
                .parse()
                .unwrap();
                w.clients[bob].stream.send_stanza(w.now, &m).unwrap();
                sent[u].push(round);
                // Sometimes the bytes move at once, sometimes they stay in flight.
                if next(2) == 0 {
                    w.drive();
                }
            }
            6 | 7 => {
                let Some(c) = clients[u] else { continue };
                // Cut at a random byte of what is in flight to the client.
                while let Some(out) = w.hub.poll_output() {
                    if let HubOutput::Transmit(id, bytes) = out
                        && let Some(cl) = w.clients.iter_mut().find(|cl| cl.id == id)
                    {
                        cl.inbox.extend(bytes);
                    }
                }
                let keep = next(w.clients[c].inbox.len() + 1);
                w.clients[c].inbox.truncate(keep);
                let bytes = std::mem::take(&mut w.clients[c].inbox);
                let now = w.now;
                let _ = w.clients[c].stream.handle_input(now, &bytes);
                while let Some(out) = w.clients[c].stream.poll_output() {
                    if let Output::Event(e) = out {
                        w.clients[c].events.push(e);
                    }
                }
                collect(&mut w, c, &mut got[u]);
                w.clients[c].stream.transport_closed(now);
                let id = w.clients[c].id;
                w.hub.transport_closed(id, now);
                // A cut during resumption leaves the older saved state the one to use.
                if let Some(state) = w.clients[c].stream.sm_state() {
                    saved[u] = Some(state);
                }
                clients[u] = None;
                cuts += 1;
                w.drive();
            }
            _ => {
                if clients[u].is_some() {
                    continue;
                }
                let state = saved[u].clone();
                if next(2) == 0 {
                    // Cut during the resumption handshake: `<resume/>` sent and lost, or
                    // read by the hub with the cut before `<resumed/>` arrives whole, or
                    // right after it (at a random byte of what the hub re-sends with it).
                    let c = sm_client_holding(&mut w, &format!("u{u}"), "pw", "r", state, true);
                    let held = std::mem::take(&mut w.clients[c].held);
                    assert!(!held.is_empty(), "u{u} sent no <resume/>");
                    let (now, id) = (w.now, w.clients[c].id);
                    let kind = next(3);
                    if kind > 0 {
                        w.hub.handle_input(id, now, &held);
                        while let Some(out) = w.hub.poll_output() {
                            if let HubOutput::Transmit(to, bytes) = out
                                && let Some(cl) = w.clients.iter_mut().find(|cl| cl.id == to)
                            {
                                cl.inbox.extend(bytes);
                            }
                        }
                        let inbox = &mut w.clients[c].inbox;
                        let start = inbox
                            .windows(8)
                            .position(|b| b == b"<resumed")
                            .expect("the hub answered <resumed/>");
                        let end = start
                            + inbox[start..]
                                .windows(2)
                                .position(|b| b == b"/>")
                                .expect("<resumed/> is empty")
                            + 2;
                        let keep = if kind == 1 {
                            next(end)
                        } else {
                            end + next(inbox.len() - end + 1)
                        };
                        inbox.truncate(keep);
                        let bytes = std::mem::take(inbox);
                        let _ = w.clients[c].stream.handle_input(now, &bytes);
                        while let Some(out) = w.clients[c].stream.poll_output() {
                            if let Output::Event(e) = out {
                                w.clients[c].events.push(e);
                            }
                        }
                        let resumed = w.clients[c]
                            .events
                            .iter()
                            .any(|e| matches!(e, Event::Sm(SmEvent::Resumed { .. })));
                        assert_eq!(resumed, kind == 2, "u{u}: cut at byte {keep} of {end}");
                        collect(&mut w, c, &mut got[u]);
                    }
                    w.clients[c].stream.transport_closed(now);
                    w.hub.transport_closed(id, now);
                    // Before `<resumed/>` the old state is still the one to resume.
                    if let Some(state) = w.clients[c].stream.sm_state() {
                        saved[u] = Some(state);
                    }
                    resume_cuts[kind] += 1;
                    w.drive();
                    continue;
                }
                let c = sm_client_as(&mut w, &format!("u{u}"), "pw", "r", state);
                assert!(
                    w.clients[c]
                        .events
                        .iter()
                        .any(|e| matches!(e, Event::Sm(SmEvent::Resumed { .. }))),
                    "u{u} did not resume: {:?}",
                    w.clients[c].events
                );
                resumptions += 1;
                collect(&mut w, c, &mut got[u]);
                clients[u] = Some(c);
            }
        }
        for u in 0..USERS {
            if let Some(c) = clients[u] {
                collect(&mut w, c, &mut got[u]);
            }
        }
    }
    // Everyone comes back and drains.
    for u in 0..USERS {
        if clients[u].is_none() {
            let c = sm_client_as(&mut w, &format!("u{u}"), "pw", "r", saved[u].clone());
            clients[u] = Some(c);
        }
    }
    w.drive();
    for u in 0..USERS {
        let c = clients[u].unwrap();
        collect(&mut w, c, &mut got[u]);
        assert_eq!(got[u], sent[u], "u{u}: lost or duplicated");
    }
    assert!(
        cuts > 20 && resumptions > 20 && resume_cuts.iter().all(|&n| n >= 3),
        "{cuts} cuts, {resumptions} resumptions, {resume_cuts:?} cuts mid-resumption"
    );
    // Clean closes: nothing detached, nothing queued.
    for c in clients.iter().flatten() {
        let now = w.now;
        w.clients[*c].stream.close(now).unwrap();
    }
    w.drive();
    assert_eq!(w.hub.detached_count(), 0);
    assert_eq!(w.hub.detached_queued(), 0);
}

fn federating() -> World {
    World::with_config(
        HubConfig::new(BareJid::new("localhost").unwrap())
            .with_user("alice", "alice-pw")
            .with_s2s(DialbackSecret::new(b"localhost's secret")),
    )
}

#[test]
fn stanzas_for_a_remote_domain_wait_for_one_connection_and_bounce_when_it_fails() {
    let mut w = federating();
    let a = w.connect("alice", "alice-pw", "laptop");
    for id in ["r1", "r2"] {
        w.send(
            a,
            &format!("<message xmlns='jabber:client' to='carol@elsewhere.example' id='{id}'/>"),
        );
    }
    // One connection for both, nothing bounced while it is being set up.
    assert_eq!(w.connects.len(), 1);
    assert_eq!(w.connects[0].1, "elsewhere.example");
    assert!(w.take_stanzas(a).is_empty());

    // The queue is bounded: past it, the newest bounce at once.
    for _ in 2..xmpp_server::hub::MAX_QUEUED_PER_DOMAIN {
        w.send(
            a,
            "<message xmlns='jabber:client' to='carol@elsewhere.example'/>",
        );
    }
    assert!(w.take_stanzas(a).is_empty());
    w.send(
        a,
        "<message xmlns='jabber:client' to='carol@elsewhere.example' id='over'/>",
    );
    let got = w.take_stanzas(a);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attr("id"), Some("over"));
    assert_eq!(
        error_condition(&got[0]).as_deref(),
        Some("resource-constraint")
    );

    // The host gives up at its deadline: everything queued bounces with
    // remote-server-timeout (RFC 6120 §8.3.3.15), from the address it was for.
    let (id, _) = w.connects[0].clone();
    let now = w.now;
    w.hub
        .s2s_connect_failed(id, now, StanzaErrorCondition::RemoteServerTimeout);
    w.drive();
    let got = w.take_stanzas(a);
    assert_eq!(got.len(), xmpp_server::hub::MAX_QUEUED_PER_DOMAIN);
    assert_eq!(got[0].attr("id"), Some("r1"));
    assert_eq!(got[0].attr("from"), Some("carol@elsewhere.example"));
    assert!(
        got.iter()
            .all(|s| error_condition(s).as_deref() == Some("remote-server-timeout"))
    );

    // The next stanza asks for a new connection.
    w.send(
        a,
        "<message xmlns='jabber:client' to='carol@elsewhere.example' id='r3'/>",
    );
    assert_eq!(w.connects.len(), 2);
}

#[test]
fn many_pending_connections_each_bounce_their_own_stanzas() {
    const DOMAINS: usize = 300;
    // A client may write to as many remote domains as it likes: each has a connection of its
    // own, whose failure bounces that domain's stanzas only (the hub finds a connection's
    // entries through an index, not a walk over every outgoing connection).
    let mut w = federating();
    let a = w.connect("alice", "alice-pw", "laptop");
    for n in 0..DOMAINS {
        w.send(
            a,
            &format!("<message xmlns='jabber:client' to='c@d{n}.example' id='m{n}'/>"),
        );
    }
    assert_eq!(w.connects.len(), DOMAINS);
    let connects = w.connects.clone();
    assert!(connects.iter().all(|(id, _)| w.hub.is_outgoing(*id)));
    for (id, remote) in connects.iter().rev() {
        let now = w.now;
        w.hub
            .s2s_connect_failed(*id, now, StanzaErrorCondition::RemoteServerNotFound);
        w.drive();
        assert!(!w.hub.is_outgoing(*id));
        let got = w.take_stanzas(a);
        assert_eq!(got.len(), 1, "{remote}");
        let n = remote.trim_start_matches('d').trim_end_matches(".example");
        assert_eq!(got[0].attr("id"), Some(format!("m{n}").as_str()));
        assert_eq!(got[0].attr("from"), Some(format!("c@{remote}").as_str()));
    }
    // A domain written to again asks for a connection again.
    w.send(a, "<message xmlns='jabber:client' to='c@d7.example'/>");
    assert_eq!(w.connects.len(), DOMAINS + 1);
    assert!(w.hub.is_outgoing(w.connects[DOMAINS].0));
}

#[test]
fn connections_being_set_up_are_bounded() {
    use xmpp_server::hub::MAX_S2S_CONNECTING;
    // Each new remote domain costs the host lookups and a connection attempt: past the
    // bound, a stanza for one more bounces at once instead of asking for it.
    let mut w = federating();
    let a = w.connect("alice", "alice-pw", "laptop");
    for n in 0..MAX_S2S_CONNECTING {
        w.send(
            a,
            &format!("<message xmlns='jabber:client' to='c@d{n}.example' id='m{n}'/>"),
        );
    }
    assert_eq!(w.connects.len(), MAX_S2S_CONNECTING);
    assert!(w.take_stanzas(a).is_empty());
    w.send(
        a,
        "<message xmlns='jabber:client' to='c@over.example' id='over'/>",
    );
    assert_eq!(w.connects.len(), MAX_S2S_CONNECTING);
    let got = w.take_stanzas(a);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attr("id"), Some("over"));
    assert_eq!(got[0].attr("from"), Some("c@over.example"));
    assert_eq!(
        error_condition(&got[0]).as_deref(),
        Some("resource-constraint")
    );
    // A domain already being connected to still queues its stanzas.
    w.send(
        a,
        "<message xmlns='jabber:client' to='c@d3.example' id='again'/>",
    );
    assert!(w.take_stanzas(a).is_empty());
    assert_eq!(w.connects.len(), MAX_S2S_CONNECTING);

    // One attempt fails: its stanzas bounce, and the next new domain may connect.
    let (id, _) = w.connects[3].clone();
    let now = w.now;
    w.hub
        .s2s_connect_failed(id, now, StanzaErrorCondition::RemoteServerNotFound);
    w.drive();
    let ids: Vec<_> = w
        .take_stanzas(a)
        .iter()
        .map(|s| s.attr("id").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, ["m3", "again"]);
    w.send(
        a,
        "<message xmlns='jabber:client' to='c@over.example' id='over2'/>",
    );
    assert_eq!(w.connects.len(), MAX_S2S_CONNECTING + 1);
    assert_eq!(w.connects[MAX_S2S_CONNECTING].1, "over.example");
    assert!(w.take_stanzas(a).is_empty());
}

#[test]
fn without_federation_remote_domains_bounce_at_once() {
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "alice-pw", "laptop");
    w.send(
        a,
        "<message xmlns='jabber:client' to='carol@elsewhere.example' id='r1'/>",
    );
    assert!(w.connects.is_empty());
    let got = w.take_stanzas(a);
    assert_eq!(
        error_condition(&got[0]).as_deref(),
        Some("remote-server-not-found")
    );
}

/// A `Verification` against the authoritative server's receiving stream, in memory; both
/// ends switch to (pretend) TLS when the verification asks for it, and `tls` records that.
fn verify_against(secret: &[u8], key: &str) -> DialbackOutcome {
    verify_against_with(secret, key, &mut false)
}

fn verify_against_with(secret: &[u8], key: &str, tls: &mut bool) -> DialbackOutcome {
    let mut config = S2sConfig::new(vec![BareJid::new("a.example").unwrap()]);
    config.dialback_secret = Some(DialbackSecret::new(secret));
    let mut authoritative = S2sReceivingStream::new(config, SeededEntropy::new(3));
    authoritative
        .start(Instant::ZERO, Transport::Plain)
        .unwrap();
    let mut verification = Verification::new(
        &BareJid::new("a.example").unwrap(),
        &BareJid::new("b.example").unwrap(),
        StreamId::new("s1").unwrap(),
        DialbackKey::new(key).unwrap(),
    )
    .unwrap();
    let mut to_peer = verification.start();
    for _ in 0..10 {
        let _ = authoritative.handle_input(Instant::ZERO, &to_peer);
        let mut from_peer = Vec::new();
        while let Some(out) = authoritative.poll_output() {
            match out {
                Output::Transmit(bytes) => from_peer.extend(bytes),
                Output::StartTls => authoritative
                    .tls_established(Instant::ZERO, Vec::new())
                    .unwrap(),
                _ => {}
            }
        }
        let (write, outcome) = verification.handle_input(&from_peer);
        if let Some(outcome) = outcome {
            return outcome;
        }
        to_peer = write;
        if verification.wants_tls() {
            assert!(to_peer.is_empty(), "nothing written after <proceed/>");
            *tls = true;
            to_peer = verification.tls_established();
        }
    }
    panic!("no answer");
}

/// Regression (ejabberd 23.01 with `s2s_use_starttls: required` closed our plain
/// verification connection with `policy-violation`): the verification connection takes
/// STARTTLS when the authoritative server offers it, and asks its question inside TLS.
#[test]
fn a_verification_secures_its_stream_when_starttls_is_offered() {
    let secret = b"a.example's secret";
    let key = DialbackSecret::new(secret).key(
        &Domain::new("b.example").unwrap(),
        &Domain::new("a.example").unwrap(),
        &StreamId::new("s1").unwrap(),
    );
    let mut tls = false;
    assert_eq!(
        verify_against_with(secret, key.as_str(), &mut tls),
        DialbackOutcome::Valid
    );
    assert!(tls, "the verification did not switch to TLS");
}

/// Bytes pipelined after `<proceed/>` (the STARTTLS injection) end the verification
/// without an answer; no TLS is asked for.
#[test]
fn a_verification_refuses_bytes_pipelined_after_proceed() {
    let mut verification = Verification::new(
        &BareJid::new("a.example").unwrap(),
        &BareJid::new("b.example").unwrap(),
        StreamId::new("s1").unwrap(),
        DialbackKey::new("0123456789abcdef").unwrap(),
    )
    .unwrap();
    let (write, outcome) = verification.handle_input(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
          xmlns:db='jabber:server:dialback' from='a.example' to='b.example' id='v1' \
          version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
          <required/></starttls></stream:features>",
    );
    assert!(outcome.is_none());
    assert_eq!(
        String::from_utf8(write).unwrap(),
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    let (_, outcome) = verification.handle_input(
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><db:verify from='a.example' \
          to='b.example' id='s1' type='valid'/>",
    );
    assert_eq!(
        outcome,
        Some(DialbackOutcome::Error(
            StanzaErrorCondition::RemoteServerNotFound.into()
        ))
    );
    assert!(!verification.wants_tls());
}

#[test]
fn a_verification_asks_the_authoritative_server_about_the_key() {
    let secret = b"a.example's secret";
    let key = DialbackSecret::new(secret).key(
        &Domain::new("b.example").unwrap(),
        &Domain::new("a.example").unwrap(),
        &StreamId::new("s1").unwrap(),
    );
    assert_eq!(verify_against(secret, key.as_str()), DialbackOutcome::Valid);
    assert_eq!(
        verify_against(b"another secret", key.as_str()),
        DialbackOutcome::Invalid
    );
}

#[test]
fn offline_messages_are_stamped_in_order_and_bounce_when_the_box_is_full() {
    let mut config = HubConfig::new(BareJid::new("localhost").unwrap())
        .with_user("alice", "alice-pw")
        .with_user("bob", "bob-pw");
    // 2002-09-10T23:08:25Z at the hub's Instant::ZERO.
    config.unix_epoch_millis = 1_031_699_305_000;
    let mut w = World::with_config(config);
    let a = w.connect("alice", "alice-pw", "laptop");
    let max = xmpp_server::hub::MAX_OFFLINE_PER_ACCOUNT;
    for i in 0..=max {
        w.send(
            a,
            &format!("<message xmlns='jabber:client' type='chat' to='bob@localhost' id='o{i}'><body>{i}</body></message>"),
        );
    }
    let bob = BareJid::new("bob@localhost").unwrap();
    assert_eq!(w.hub.offline_count(&bob), max);
    // The one past the limit bounced to its sender, the stored ones stayed.
    let bounced: Vec<Element> = w.take_stanzas(a);
    let last = format!("o{max}");
    let bounce = bounced
        .iter()
        .find(|s| s.attr("id") == Some(last.as_str()))
        .expect("bounced");
    assert_eq!(bounce.attr("type"), Some("error"));
    assert!(
        bounce
            .get_child("error", "jabber:client")
            .and_then(|e| e.get_child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"))
            .is_some()
    );
    assert_eq!(
        bounced
            .iter()
            .filter(|s| s.attr("type") == Some("error"))
            .count(),
        1
    );

    let b = w.connect("bob", "bob-pw", "phone");
    w.send(b, "<presence xmlns='jabber:client'/>");
    let got: Vec<Element> = w
        .take_stanzas(b)
        .into_iter()
        .filter(|s| s.name() == "message")
        .collect();
    let ids: Vec<String> = got
        .iter()
        .map(|m| m.attr("id").unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..max).map(|i| format!("o{i}")).collect();
    assert_eq!(ids, expected, "delivered in order");
    let mut previous = String::new();
    for m in &got {
        let delay = m
            .get_child("delay", "urn:xmpp:delay")
            .expect("XEP-0203 stamp");
        assert_eq!(delay.attr("from"), Some("localhost"));
        let stamp = delay.attr("stamp").unwrap().to_owned();
        assert!(stamp.starts_with("2002-09-10T23:08:"), "{stamp}");
        assert!(
            stamp >= previous,
            "stamps never go back: {stamp} < {previous}"
        );
        previous = stamp;
    }
    assert_eq!(w.hub.offline_count(&bob), 0);
}

#[test]
fn advertised_rows_drive_stream_features_and_disco_info() {
    let mut config =
        HubConfig::new(BareJid::new("localhost").unwrap()).with_user("alice", "alice-pw");
    // A host row: entity capabilities in the features, and a disco var of its own.
    let caps = xmpp_im::ServiceFeature::stream("c", "http://jabber.org/protocol/caps")
        .with_disco("http://jabber.org/protocol/caps");
    config.features.push(caps);
    config
        .features
        .push(xmpp_im::ServiceFeature::disco("urn:xmpp:example"));
    let mut w = World::with_config(config);
    let a = w.connect("alice", "alice-pw", "laptop");
    let extra = w.clients[a]
        .events
        .iter()
        .find_map(|e| match e {
            Event::Negotiated { extra_features, .. } => Some(extra_features.clone()),
            _ => None,
        })
        .expect("negotiated");
    let names: Vec<(String, String)> = extra
        .iter()
        .map(|e| (e.name().to_owned(), e.ns()))
        .collect();
    assert_eq!(
        names,
        [
            ("ver".to_owned(), "urn:xmpp:features:rosterver".to_owned()),
            (
                "sub".to_owned(),
                "urn:xmpp:features:pre-approval".to_owned()
            ),
            ("c".to_owned(), "http://jabber.org/protocol/caps".to_owned()),
        ]
    );
    w.send(a, "<iq xmlns='jabber:client' type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    let got = w.take_stanzas(a);
    let info = got.iter().find(|s| s.attr("id") == Some("d1")).unwrap();
    let vars: Vec<&str> = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap()
        .children()
        .filter_map(|f| f.attr("var"))
        .collect();
    for var in [
        "jabber:iq:roster",
        "http://jabber.org/protocol/caps",
        "urn:xmpp:example",
    ] {
        assert!(vars.contains(&var), "{var} missing from {vars:?}");
    }
}

/// XEP-0199 by default: a client silent for `PING_IDLE` is pinged; one that stays silent
/// `PING_TIMEOUT` more is closed with `connection-timeout`. One that answers stays.
#[test]
fn silent_clients_are_pinged_and_closed_when_they_stay_silent() {
    use xmpp_server::{PING_IDLE, PING_TIMEOUT};
    let mut w = World::new(PlusPolicy::Off);
    let a = w.connect("alice", "alice-pw", "phone");
    let b = w.connect("bob", "bob-pw", "desk");
    let (a_id, b_id) = (w.clients[a].id, w.clients[b].id);
    let take = |w: &mut World| {
        let mut to = std::collections::BTreeMap::<u64, (String, bool)>::new();
        while let Some(out) = w.hub.poll_output() {
            match out {
                // Whitespace keepalives are not what this test is about.
                HubOutput::Transmit(id, bytes) if !bytes.trim_ascii().is_empty() => {
                    to.entry(id.0).or_default().0 += &String::from_utf8_lossy(&bytes);
                }
                HubOutput::Close(id) => to.entry(id.0).or_default().1 = true,
                _ => {}
            }
        }
        to
    };
    // Just under the idle interval: nothing.
    w.now = w.now + PING_IDLE.checked_sub(Duration::from_secs(1)).unwrap();
    w.hub.handle_timeout(w.now);
    let early = take(&mut w);
    assert!(early.is_empty(), "{early:?}");
    w.now = w.now + Duration::from_secs(2);
    w.hub.handle_timeout(w.now);
    let sent = take(&mut w);
    for id in [a_id, b_id] {
        let (bytes, closed) = &sent[&id.0];
        assert!(bytes.contains("<ping xmlns='urn:xmpp:ping'/>"), "{bytes}");
        assert!(!closed);
    }
    // bob answers his ping; alice stays silent.
    let ping = &sent[&b_id.0].0;
    let id_at = ping.find("id='").unwrap() + 4;
    let ping_id = &ping[id_at..id_at + ping[id_at..].find('\'').unwrap()];
    w.send(
        b,
        &format!("<iq xmlns='jabber:client' type='result' id='{ping_id}' to='localhost'/>"),
    );
    let _ = take(&mut w);
    w.now = w.now + PING_TIMEOUT + Duration::from_secs(1);
    w.hub.handle_timeout(w.now);
    let after = take(&mut w);
    let (bytes, closed) = &after[&a_id.0];
    assert!(bytes.contains("connection-timeout"), "{bytes}");
    assert!(closed);
    assert!(!after.get(&b_id.0).is_some_and(|(_, closed)| *closed));
}

#[test]
fn the_log_is_bounded_when_the_host_does_not_take_it() {
    // Every connection a peer opens and drops leaves a line; a host that never takes the
    // log kept them all.
    let mut hub = Hub::new(HubConfig::new(BareJid::new("localhost").unwrap()));
    let now = Instant::ZERO;
    let connections = MAX_LOG_LINES + 1000;
    for seed in 0..connections {
        let id = hub.accept(now, Transport::Plain, SeededEntropy::new(seed as u64));
        hub.transport_closed(id, now);
        while hub.poll_output().is_some() {}
    }
    let log = hub.take_log();
    assert_eq!(log.len(), MAX_LOG_LINES + 1);
    let last = log.last().unwrap();
    assert!(
        last.ends_with("more log lines dropped: the log was not taken"),
        "{last}"
    );
    let dropped: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(dropped >= connections - MAX_LOG_LINES, "{last}");
    // Taken, it starts over.
    let id = hub.accept(now, Transport::Plain, SeededEntropy::new(0));
    hub.transport_closed(id, now);
    let log = hub.take_log();
    assert!(!log.is_empty() && log.len() < 4, "{log:?}");
    assert!(log.iter().all(|line| !line.contains("dropped")), "{log:?}");
}

// ----- XEP-0198 with a database: acknowledged once durable -----

/// Answers the storage requests `pick` chooses, oldest first, as a database that succeeds
/// would (every account exists, empty), with the answers' own requests too, until none it
/// picks is left; the others stay unanswered.
fn answer_storage(w: &mut World, pick: impl Fn(&StorageRequest) -> bool) {
    while let Some(i) = w.storage.iter().position(&pick) {
        let request = w.storage.remove(i);
        let now = w.now;
        match request {
            StorageRequest::Load { id, .. } => {
                let data = xmpp_im::AccountData {
                    exists: true,
                    ..Default::default()
                };
                w.hub.storage_loaded(now, id, Ok(data));
            }
            StorageRequest::Write { id, .. } => w.hub.storage_written(now, id, Ok(())),
            StorageRequest::StoreOffline { id, .. } => w.hub.offline_stored(now, id),
            StorageRequest::TakeOffline { jid } => w.hub.offline_taken(now, &jid, Vec::new()),
            other => panic!("not asked of this test: {other:?}"),
        }
        w.drive();
    }
}

fn loads(user: &'static str) -> impl Fn(&StorageRequest) -> bool {
    move |r| matches!(r, StorageRequest::Load { user: u, .. } if u.as_str() == user)
}

/// With a database, a client's stanza counts as handled (`<a h=''/>`) once the storage it
/// caused is durable: not before, and not only once the IM machine has nothing queued. Under
/// sustained load something is always queued; here, another account's load that is never
/// answered stands for it.
#[test]
fn with_a_database_a_stanza_is_acknowledged_once_its_own_storage_is_durable() {
    let mut config = HubConfig::new(BareJid::new("localhost").unwrap())
        .with_user("alice", "alice-pw")
        .with_user("bob", "bob-pw")
        .with_user("carol", "carol-pw")
        .with_user("dave", "dave-pw")
        .with_user("erin", "erin-pw");
    // Never opened: the hub only names it; this test answers the storage requests itself.
    config.database = Some(xmpp_server::db::Location::Sqlite("unused.sqlite".into()));
    let mut w = World::with_config(config);
    let mut alice = ClientConfig::new(BareJid::new("alice@localhost").unwrap(), "alice-pw");
    alice.resource = Some("phone".to_owned());
    alice.sm = SmConfig::on();
    alice.sm.request_every = 1;
    let a = sm_client_configured(&mut w, alice, None, false);
    let b = w.connect("bob", "bob-pw", "desk");
    answer_storage(&mut w, |_| true);
    assert_eq!(w.clients[a].stream.sm_unacked(), Some(0));

    // Bob writes to carol: his unit waits for carol's account, which never loads here.
    w.send(
        b,
        "<message xmlns='jabber:client' type='chat' to='carol@localhost' id='c1'><body>hi</body></message>",
    );
    assert!(
        w.storage.iter().any(loads("carol@localhost")),
        "{:?}",
        w.storage
    );

    // Alice writes to dave, offline: her unit waits for the accounts it needs, then stores
    // the message offline.
    w.send(
        a,
        "<message xmlns='jabber:client' type='chat' to='dave@localhost' id='d1'><body>hi</body></message>",
    );
    assert_eq!(w.clients[a].stream.sm_unacked(), Some(1));
    let other_loads = |r: &StorageRequest| {
        matches!(r, StorageRequest::Load { .. }) && !loads("carol@localhost")(r)
    };
    answer_storage(&mut w, other_loads);
    let stores = |w: &World| {
        w.storage
            .iter()
            .filter(|r| matches!(r, StorageRequest::StoreOffline { user, .. } if user.as_str() == "dave@localhost"))
            .count()
    };
    assert_eq!(stores(&w), 1, "{:?}", w.storage);
    // Her unit ran; what it caused is not durable yet.
    assert_eq!(w.clients[a].stream.sm_unacked(), Some(1));
    assert_eq!(w.hub.waiting_for_storage(), 1);

    // Stored: acknowledged, while bob's unit still waits for carol.
    answer_storage(&mut w, |r| matches!(r, StorageRequest::StoreOffline { .. }));
    assert_eq!(w.clients[a].stream.sm_unacked(), Some(0));
    assert_eq!(w.hub.waiting_for_storage(), 0);
    assert!(
        w.storage.iter().any(loads("carol@localhost")),
        "{:?}",
        w.storage
    );

    // Many more of alice's stanzas, each parked behind its own account's load, all while
    // carol's load stays out: each is acknowledged once its own storage is durable.
    for n in 0..50 {
        w.send(
            a,
            &format!("<message xmlns='jabber:client' type='chat' to='dave@localhost' id='e{n}'><body>{n}</body></message>"),
        );
    }
    assert_eq!(w.clients[a].stream.sm_unacked(), Some(50));
    answer_storage(&mut w, |r| !loads("carol@localhost")(r));
    assert_eq!(w.clients[a].stream.sm_unacked(), Some(0));
    assert_eq!(w.hub.waiting_for_storage(), 0);

    // A stanza parked behind a write of another session of the same account: it makes its
    // request in the call that answers that write, which is not a request it waited for.
    let mut tablet = ClientConfig::new(BareJid::new("alice@localhost").unwrap(), "alice-pw");
    tablet.resource = Some("tablet".to_owned());
    tablet.sm = SmConfig::on();
    tablet.sm.request_every = 1;
    let t = sm_client_configured(&mut w, tablet, None, false);
    answer_storage(&mut w, |r| !loads("carol@localhost")(r));
    w.send(
        a,
        "<iq xmlns='jabber:client' type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='eve@localhost'/></query></iq>",
    );
    let writes = |w: &World| {
        w.storage
            .iter()
            .filter(|r| matches!(r, StorageRequest::Write { .. }))
            .count()
    };
    assert_eq!(writes(&w), 1, "{:?}", w.storage);
    w.send(
        t,
        "<message xmlns='jabber:client' type='chat' to='dave@localhost' id='t1'><body>hi</body></message>",
    );
    answer_storage(&mut w, other_loads);
    assert_eq!(
        stores(&w),
        0,
        "parked behind alice's write: {:?}",
        w.storage
    );
    assert_eq!(w.clients[t].stream.sm_unacked(), Some(1));
    answer_storage(&mut w, |r| matches!(r, StorageRequest::Write { .. }));
    assert_eq!(stores(&w), 1, "{:?}", w.storage);
    // The roster set's write is durable: acknowledged, though the call that answered it
    // also ran the tablet's message, whose store is not answered yet (its unit made that
    // request, not the roster set's).
    assert_eq!(w.clients[a].stream.sm_unacked(), Some(0));
    assert_eq!(w.clients[t].stream.sm_unacked(), Some(1));
    answer_storage(&mut w, |r| matches!(r, StorageRequest::StoreOffline { .. }));
    assert_eq!(w.clients[t].stream.sm_unacked(), Some(0));
    assert_eq!(w.hub.waiting_for_storage(), 0);

    // Sustained load: each answer runs someone else's unit, which makes a request of its
    // own. Alice's roster set is acknowledged once its own write is durable, not once that
    // chain ends (erin's subscription requests to alice wait for her account, one write
    // each, each answer running the next).
    let erin = w.connect("erin", "erin-pw", "desk");
    w.send(
        a,
        "<iq xmlns='jabber:client' type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='frank@localhost'/></query></iq>",
    );
    assert_eq!(writes(&w), 1, "{:?}", w.storage);
    for n in 0..5 {
        w.send(
            erin,
            &format!(
                "<presence xmlns='jabber:client' type='subscribe' to='alice@localhost' id='s{n}'/>"
            ),
        );
    }
    answer_storage(&mut w, other_loads);
    assert_eq!(
        writes(&w),
        1,
        "erin's wait for alice's account: {:?}",
        w.storage
    );
    assert_eq!(w.clients[a].stream.sm_unacked(), Some(1));
    let alice_write = w
        .storage
        .iter()
        .position(|r| matches!(r, StorageRequest::Write { .. }))
        .unwrap();
    let StorageRequest::Write { id, .. } = w.storage.remove(alice_write) else {
        unreachable!()
    };
    let now = w.now;
    w.hub.storage_written(now, id, Ok(()));
    w.drive();
    assert_eq!(
        writes(&w),
        1,
        "erin's first subscription ran: {:?}",
        w.storage
    );
    assert_eq!(w.clients[a].stream.sm_unacked(), Some(0));
    answer_storage(&mut w, |r| !loads("carol@localhost")(r));
    assert_eq!(w.hub.waiting_for_storage(), 0);

    // Carol's account in: bob's message is stored for her.
    answer_storage(&mut w, |_| true);
    assert!(w.storage.is_empty());
    assert_eq!(w.hub.waiting_for_storage(), 0);
}
