//! Routing without trees on a c2s server stream (`ServerConfig::envelopes`, issue 17): after
//! negotiation the client's messages and presences come as `Event::StanzaEnvelope` with the
//! same checks as the element path, iqs and nonzas stay elements, XEP-0198 counts envelopes
//! as stanzas, and `send_envelope` forwards spliced bytes that the client parses to the
//! element `send_stanza` would have sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;

use minidom::Element;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Event, Instant, MemoryBackend, Output, SeededEntropy,
    ServerConfig, ServerStream, SmConfig, Stamp, StreamErrorCondition, TlsPolicy, Transport,
};

struct Link {
    client: ClientStream,
    server: ServerStream,
    now: Instant,
    to_server: VecDeque<u8>,
    to_client: VecDeque<u8>,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
    server_wire: String,
}

impl Link {
    fn negotiated(envelopes: bool, sm: bool) -> Link {
        let mut client = ClientConfig::new(
            BareJid::new("juliet@im.example.com").unwrap(),
            "r0m30myr0m30",
        );
        client.tls = TlsPolicy::Disabled;
        client.allow_plain_without_tls = true;
        client.resource = Some("balcony".to_owned());
        client.timeouts.keepalive = None;
        let mut server = ServerConfig::new(BareJid::new("im.example.com").unwrap());
        server.tls = TlsPolicy::Disabled;
        server.allow_plain_without_tls = true;
        server.timeouts.keepalive = None;
        server.envelopes = envelopes;
        if sm {
            client.sm = SmConfig::on();
            server.sm = SmConfig::on();
        }
        let backend = MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096);
        let mut link = Link {
            client: ClientStream::new(client, SeededEntropy::new(1)),
            server: ServerStream::new(server, SeededEntropy::new(2), backend),
            now: Instant::ZERO,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            server_wire: String::new(),
        };
        link.client.start(link.now, Transport::Plain).unwrap();
        link.server.start(link.now, Transport::Plain).unwrap();
        link.pump();
        assert!(link.client.is_negotiated() && link.server.is_negotiated());
        assert!(
            !link
                .server_events
                .iter()
                .any(|e| matches!(e, Event::StanzaEnvelope(_))),
            "negotiation elements stay elements"
        );
        link.server_events.clear();
        link.client_events.clear();
        link
    }

    fn collect(&mut self) -> bool {
        let mut moved = false;
        while let Some(out) = self.client.poll_output() {
            moved = true;
            match out {
                Output::Transmit(bytes) => self.to_server.extend(bytes),
                Output::Event(event) => self.client_events.push(event),
                _ => {}
            }
        }
        while let Some(out) = self.server.poll_output() {
            moved = true;
            match out {
                Output::Transmit(bytes) => {
                    self.server_wire.push_str(&String::from_utf8_lossy(&bytes));
                    self.to_client.extend(bytes);
                }
                Output::Event(event) => self.server_events.push(event),
                _ => {}
            }
        }
        moved
    }

    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = self.collect();
            if !self.to_server.is_empty() {
                let bytes: Vec<u8> = self.to_server.drain(..).collect();
                let _ = self.server.handle_input(self.now, &bytes);
                moved = true;
            }
            if !self.to_client.is_empty() {
                let bytes: Vec<u8> = self.to_client.drain(..).collect();
                let _ = self.client.handle_input(self.now, &bytes);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the ends never went quiet");
    }

    /// Raw client bytes to the server, then everything it outputs.
    fn raw(&mut self, bytes: &str) {
        let _ = self.server.handle_input(self.now, bytes.as_bytes());
        self.collect();
    }
}

const STANZAS: &[&str] = &[
    "<message to='romeo@example.net' id='m1' type='chat'><body>hi &amp; bye</body></message>",
    "<message from='juliet@im.example.com' to='romeo@example.net' id='m2'><x xmlns='urn:x'/></message>",
    "<message from='juliet@im.example.com/balcony' id='m3' xml:lang='fr'><body>salut</body></message>",
    "<presence><show>away</show><priority>5</priority></presence>",
    "<presence to='room@muc.example.net/j' type='unavailable'/>",
    "<iq type='get' id='i1' to='im.example.com'><query xmlns='jabber:iq:version'/></iq>",
];

/// What the host gets for each stanza, as the element path's element (`from` stamped).
fn delivered(link: &Link) -> Vec<Element> {
    let jid = link.server.jid().unwrap().as_str().to_owned();
    link.server_events
        .iter()
        .filter_map(|e| match e {
            Event::Stanza(el) => Some(el.clone()),
            Event::StanzaEnvelope(env) => {
                let mut el = env.element().unwrap();
                let stamp = Stamp {
                    from: Some(&jid),
                    ..Stamp::new(env.namespace())
                };
                xmpp_xml::stamp_element(&mut el, &stamp);
                Some(el)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn messages_and_presences_come_as_envelopes_iqs_as_elements() {
    let mut with = Link::negotiated(true, false);
    let mut without = Link::negotiated(false, false);
    for s in STANZAS {
        with.raw(s);
        without.raw(s);
    }
    let kinds: Vec<&str> = with
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::Stanza(_) => Some("element"),
            Event::StanzaEnvelope(_) => Some("envelope"),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "envelope", "envelope", "envelope", "envelope", "envelope", "element"
        ]
    );
    // The same stanzas, once the host stamps `from` as the element path does.
    assert_eq!(delivered(&with), delivered(&without));
}

#[test]
fn the_checks_are_the_element_paths() {
    // A malformed `to`: jid-malformed, nothing reported, the stream goes on.
    let mut link = Link::negotiated(true, false);
    link.raw("<message to='a@b@c' id='bad'><body>x</body></message>");
    assert!(
        link.server_wire.contains("jid-malformed"),
        "{}",
        link.server_wire
    );
    assert!(link.server_events.is_empty(), "{:?}", link.server_events);
    link.raw("<message to='romeo@example.net' id='ok'/>");
    assert_eq!(link.server_events.len(), 1);
    // A spoofed `from`: invalid-from, the stream closes.
    let mut link = Link::negotiated(true, false);
    link.raw("<message from='romeo@example.net' to='x@example.net'/>");
    assert!(
        link.server_wire.contains("invalid-from"),
        "{}",
        link.server_wire
    );
    assert!(link.server_events.iter().any(|e| matches!(
        e,
        Event::Closed { reason: xmpp_stream::CloseReason::ProtocolError(err) }
            if err.condition() == StreamErrorCondition::InvalidFrom
    )));
}

#[test]
fn stream_management_counts_envelopes_as_stanzas() {
    for envelopes in [false, true] {
        let mut link = Link::negotiated(envelopes, true);
        for n in 0..7 {
            let m: Element = format!(
                "<message xmlns='jabber:client' to='romeo@example.net' id='m{n}'><body>{n}</body></message>"
            )
            .parse()
            .unwrap();
            link.client.send_stanza(link.now, &m).unwrap();
        }
        link.pump();
        let got = link
            .server_events
            .iter()
            .filter(|e| matches!(e, Event::StanzaEnvelope(_) | Event::Stanza(_)))
            .count();
        assert_eq!(got, 7);
        // request_every is 5: the `<r/>` after the fifth is answered with h='5'.
        assert!(link.server_wire.contains("h='5'"), "{}", link.server_wire);
        assert_eq!(link.client.sm_unacked(), Some(2));
    }
}

#[test]
fn forwarded_envelopes_reach_the_client_as_send_stanza_would_send_them() {
    for sm in [false, true] {
        let mut a = Link::negotiated(true, sm);
        a.raw(
            "<message to='juliet@im.example.com' id='f1' type='chat' xmlns:q='urn:q'><body>x</body><q:y q:from='z'/></message>",
        );
        let Some(Event::StanzaEnvelope(env)) = a.server_events.pop() else {
            panic!("{:?}", a.server_events)
        };
        // Forward it to the client of another link by envelope, and the same by element.
        let mut by_envelope = Link::negotiated(true, sm);
        let mut by_element = Link::negotiated(true, sm);
        let from = "romeo@example.net/orchard";
        let to = "juliet@im.example.com/balcony";
        by_envelope
            .server
            .send_envelope(by_envelope.now, &env, Some(from), Some(to))
            .unwrap();
        let mut el = env.element().unwrap();
        xmpp_xml::stamp_element(
            &mut el,
            &Stamp {
                from: Some(from),
                to: Some(to),
                ..Stamp::new("jabber:client")
            },
        );
        by_element.server.send_stanza(by_element.now, &el).unwrap();
        by_envelope.pump();
        by_element.pump();
        let got = |l: &Link| -> Vec<Element> {
            l.client_events
                .iter()
                .filter_map(|e| match e {
                    Event::Stanza(s) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(got(&by_envelope).len(), 1);
        assert_eq!(got(&by_envelope), got(&by_element));
        assert_eq!(
            by_envelope.server.sm_unacked(),
            by_element.server.sm_unacked()
        );
    }
}
