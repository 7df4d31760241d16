//! Issue 17 beyond client-to-client: a client's message to an XEP-0114 component, and a
//! component's message to a client, are routed as the sender's bytes (the start tag
//! stamped, the rest verbatim) when the hub's streams hand out envelopes, and re-serialized
//! from an element when they do not. In memory: the hub, alice's client machine, and the
//! component's machine; raw bytes injected on either socket once negotiated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use minidom::Element;
use xmpp_server::{Hub, HubConfig, HubOutput, SessionId};
use xmpp_stream::pair::fake_tls_binding;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, ComponentConfig, ComponentStream, Event, Instant, Output,
    SeededEntropy, Transport,
};

struct World {
    hub: Hub,
    now: Instant,
    alice: (ClientStream, SessionId),
    bot: (ComponentStream, SessionId),
    /// Bytes the hub sent each peer since the last `take`.
    to_alice: Vec<u8>,
    to_bot: Vec<u8>,
    /// What each machine reported besides its bytes, oldest first.
    alice_reports: Vec<Output>,
    bot_reports: Vec<Output>,
}

impl World {
    fn new(envelopes: bool) -> World {
        let domain = BareJid::new("localhost").unwrap();
        let mut config = HubConfig::new(domain)
            .with_user("alice", "alice-pw")
            .with_component(BareJid::new("bot.localhost").unwrap(), "s3cret");
        config.stream.envelopes = envelopes;
        let mut hub = Hub::new(config);
        let now = Instant::ZERO;
        let mut cc = ClientConfig::new(BareJid::new("alice@localhost").unwrap(), "alice-pw");
        cc.resource = Some("r".to_owned());
        let mut client = ClientStream::new(cc, SeededEntropy::new(1));
        let alice_id = hub.accept(now, Transport::Plain, SeededEntropy::new(2));
        client.start(now, Transport::Plain).unwrap();
        let component = ComponentStream::new(
            ComponentConfig::new(BareJid::new("bot.localhost").unwrap(), "s3cret"),
            SeededEntropy::new(3),
        );
        let bot_id = hub.accept_component(now, SeededEntropy::new(4));
        let mut w = World {
            hub,
            now,
            alice: (client, alice_id),
            bot: (component, bot_id),
            to_alice: Vec::new(),
            to_bot: Vec::new(),
            alice_reports: Vec::new(),
            bot_reports: Vec::new(),
        };
        w.bot.0.start(now, Transport::Plain).unwrap();
        w.drive();
        assert!(w.alice.0.is_negotiated() && w.bot.0.is_negotiated());
        let presence: Element = "<presence xmlns='jabber:client'/>".parse().unwrap();
        w.alice.0.send_stanza(w.now, &presence).unwrap();
        w.drive();
        w
    }

    /// Runs every machine until nothing moves; the bytes the hub sends each peer are also
    /// kept in `to_alice` / `to_bot`.
    fn drive(&mut self) {
        for _ in 0..1_000 {
            let mut progress = false;
            self.now = Instant::from_millis(self.now.as_millis() + 1);
            let now = self.now;
            while let Some(out) = self.hub.poll_output() {
                if let HubOutput::Transmit(id, bytes) = out {
                    progress = true;
                    if id == self.alice.1 {
                        self.to_alice.extend_from_slice(&bytes);
                        let _ = self.alice.0.handle_input(now, &bytes);
                    } else if id == self.bot.1 {
                        self.to_bot.extend_from_slice(&bytes);
                        let _ = self.bot.0.handle_input(now, &bytes);
                    }
                }
            }
            // The client's reports stay queued for the test (`stanzas`); only its bytes and
            // its STARTTLS are taken here.
            let mut to_hub = Vec::new();
            let mut tls = false;
            let mut kept = Vec::new();
            while let Some(out) = self.alice.0.poll_output() {
                match out {
                    Output::Transmit(bytes) => to_hub.extend(bytes),
                    Output::StartTls => tls = true,
                    other => kept.push(other),
                }
            }
            self.alice_reports.extend(kept);
            if !to_hub.is_empty() {
                progress = true;
                self.hub.handle_input(self.alice.1, now, &to_hub);
            }
            if tls {
                progress = true;
                self.alice
                    .0
                    .tls_established(now, fake_tls_binding())
                    .unwrap();
                self.hub
                    .tls_established(self.alice.1, now, fake_tls_binding());
            }
            let mut to_hub = Vec::new();
            while let Some(out) = self.bot.0.poll_output() {
                match out {
                    Output::Transmit(bytes) => to_hub.extend(bytes),
                    other => self.bot_reports.push(other),
                }
            }
            if !to_hub.is_empty() {
                progress = true;
                self.hub.handle_input(self.bot.1, now, &to_hub);
            }
            if !progress {
                return;
            }
        }
        panic!("no quiescence");
    }

    /// `bytes` on `id`'s socket (past its stream machine: what any peer software may write).
    fn inject(&mut self, id: SessionId, bytes: &str) {
        self.to_alice.clear();
        self.to_bot.clear();
        let now = self.now;
        self.hub.handle_input(id, now, bytes.as_bytes());
        self.drive();
    }
}

/// The stanzas a machine reported since the last call.
fn stanzas(reports: &mut Vec<Output>) -> Vec<Element> {
    std::mem::take(reports)
        .into_iter()
        .filter_map(|out| match out {
            Output::Event(Event::Stanza(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// A payload whose spelling (quotes, spaces, an empty element's form) no serializer
/// writes: found verbatim in what the hub sent only if the sender's bytes were forwarded.
const ODD: &str = "<x xmlns='urn:example:odd'   a=\"1\"  ></x >";

#[test]
fn client_and_component_messages_are_routed_as_the_senders_bytes() {
    for envelopes in [true, false] {
        let mut w = World::new(envelopes);
        // Drain what the setup reported.
        let _ = stanzas(&mut w.alice_reports);
        let _ = stanzas(&mut w.bot_reports);
        let (alice, bot) = (w.alice.1, w.bot.1);

        // alice -> the component.
        w.inject(
            alice,
            &format!("<message to='Eliza@Bot.Localhost' type='chat' id='a1'><body>hi</body>{ODD}</message>"),
        );
        let sent = String::from_utf8(w.to_bot.clone()).unwrap();
        assert_eq!(sent.contains(ODD), envelopes, "{sent}");
        let got = stanzas(&mut w.bot_reports);
        let [message] = got.as_slice() else {
            panic!("envelopes {envelopes}: {got:?} from {sent}")
        };
        assert_eq!(message.ns(), "jabber:component:accept");
        assert_eq!(message.attr("from"), Some("alice@localhost/r"));
        assert_eq!(message.attr("to"), Some("eliza@bot.localhost"));
        assert!(message.get_child("x", "urn:example:odd").is_some());

        // The component -> alice.
        w.inject(
            bot,
            &format!("<message xmlns='jabber:component:accept' from='eliza@bot.localhost' to='alice@localhost' type='chat' id='b1'><body>hello</body>{ODD}</message>"),
        );
        let sent = String::from_utf8(w.to_alice.clone()).unwrap();
        assert_eq!(sent.contains(ODD), envelopes, "{sent}");
        assert!(!sent.contains("jabber:component:accept"), "{sent}");
        let got = stanzas(&mut w.alice_reports);
        let [message] = got.as_slice() else {
            panic!("envelopes {envelopes}: {got:?} from {sent}")
        };
        assert_eq!(message.ns(), "jabber:client");
        assert_eq!(message.attr("from"), Some("eliza@bot.localhost"));
        assert_eq!(message.attr("to"), Some("alice@localhost"));
        assert_eq!(
            message
                .get_child("body", "jabber:client")
                .map(Element::text),
            Some("hello".to_owned())
        );

        // alice's availability reaches a directed-presence recipient at the component as
        // her bytes too.
        w.inject(
            alice,
            &format!("<presence to='eliza@bot.localhost'><status>here</status>{ODD}</presence>"),
        );
        let sent = String::from_utf8(w.to_bot.clone()).unwrap();
        assert_eq!(sent.contains(ODD), envelopes, "{sent}");
        let got = stanzas(&mut w.bot_reports);
        assert!(
            matches!(got.as_slice(), [p] if p.name() == "presence" && p.attr("from") == Some("alice@localhost/r")),
            "{got:?}"
        );
    }
}

#[test]
fn relayed_messages_take_the_component_routes_and_bounce_like_elements() {
    let mut w = World::new(true);
    let _ = stanzas(&mut w.alice_reports);
    let alice = w.alice.1;
    w.inject(
        alice,
        "<message to='x@other.bot.localhost' type='chat' id='a2'><body>hi</body></message>",
    );
    // `other.bot.localhost` is a subdomain of the connected component: it goes there.
    assert!(!w.to_bot.is_empty());
    // A domain nobody serves, with federation off: remote-server-not-found, from the relay.
    w.inject(
        alice,
        "<message to='x@nowhere.example' type='chat' id='a3'><body>hi</body></message>",
    );
    let got = stanzas(&mut w.alice_reports);
    let [error] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(error.attr("type"), Some("error"));
    assert_eq!(error.attr("id"), Some("a3"));
    let condition = error
        .get_child("error", "jabber:client")
        .and_then(|e| e.children().next())
        .map(|c| c.name().to_owned());
    assert_eq!(condition.as_deref(), Some("remote-server-not-found"));
}
