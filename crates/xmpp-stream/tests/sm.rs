//! XEP-0198 stream management and XEP-0199 pings, both roles, through real negotiations
//! between a `ClientStream` and a `ServerStream`: enabling, acknowledgements, the bound on
//! `h`, cuts with bytes lost in flight and resumption with exact accounting, failed
//! resumption, pings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;

use core::time::Duration;
use minidom::Element;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, DetachedSession, Event, Instant,
    MemoryBackend, Output, PingConfig, SeededEntropy, ServerConfig, ServerStream, SmConfig,
    SmEvent, SmState, StreamErrorCondition, Timer, TlsPolicy, Transport, Unacked, UsageError,
};

const SM: &str = "urn:xmpp:sm:3";

fn client_config(sm: bool) -> ClientConfig {
    let mut config = ClientConfig::new(
        BareJid::new("juliet@im.example.com").unwrap(),
        "r0m30myr0m30",
    );
    config.tls = TlsPolicy::Disabled;
    config.allow_plain_without_tls = true;
    config.resource = Some("balcony".to_owned());
    config.timeouts.keepalive = None;
    if sm {
        config.sm = SmConfig::on();
    }
    config
}

fn server_config(sm: bool) -> ServerConfig {
    let mut config = ServerConfig::new(BareJid::new("im.example.com").unwrap());
    config.tls = TlsPolicy::Disabled;
    config.allow_plain_without_tls = true;
    config.timeouts.keepalive = None;
    if sm {
        config.sm = SmConfig::on();
    }
    config
}

fn server(config: ServerConfig, seed: u64) -> ServerStream {
    let backend = MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096);
    ServerStream::new(config, SeededEntropy::new(seed), backend)
}

/// Two ends, two wires, a clock; what each host received.
struct Link {
    client: ClientStream,
    server: ServerStream,
    now: Instant,
    to_server: VecDeque<u8>,
    to_client: VecDeque<u8>,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
    client_wire: String,
    server_wire: String,
    /// Rewrites the server's bytes before they enter the wire.
    tamper: Option<fn(String) -> String>,
}

impl Link {
    fn new(client: ClientStream, server: ServerStream) -> Link {
        let mut link = Link {
            client,
            server,
            now: Instant::ZERO,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_wire: String::new(),
            server_wire: String::new(),
            tamper: None,
        };
        link.client.start(link.now, Transport::Plain).unwrap();
        link.server.start(link.now, Transport::Plain).unwrap();
        link
    }

    /// Collect both ends' outputs into the wires and event lists.
    fn collect(&mut self) -> bool {
        let mut moved = false;
        while let Some(out) = self.client.poll_output() {
            moved = true;
            match out {
                Output::Transmit(bytes) => {
                    self.client_wire.push_str(&String::from_utf8_lossy(&bytes));
                    self.to_server.extend(bytes);
                }
                Output::Event(event) => self.client_events.push(event),
                _ => {}
            }
        }
        while let Some(out) = self.server.poll_output() {
            moved = true;
            match out {
                Output::Transmit(bytes) => {
                    let text = String::from_utf8(bytes).unwrap();
                    let text = match self.tamper {
                        Some(tamper) => tamper(text),
                        None => text,
                    };
                    self.server_wire.push_str(&text);
                    self.to_client.extend(text.into_bytes());
                }
                Output::Event(event) => self.server_events.push(event),
                _ => {}
            }
        }
        moved
    }

    /// Feed `input` to the server; its answer must contain `expect`.
    fn server_answers(&mut self, input: &str, expect: &str) {
        let _ = self.server.handle_input(self.now, input.as_bytes());
        self.collect();
        assert!(self.server_wire.contains(expect), "{}", self.server_wire);
    }

    /// Deliver everything until both ends are quiet.
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

    fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
    }

    /// The TCP connection dies: bytes in flight are cut after `keep_to_server` and
    /// `keep_to_client` bytes, both ends learn the transport closed.
    fn cut(&mut self, keep_to_server: usize, keep_to_client: usize) {
        self.collect();
        self.to_server.truncate(keep_to_server);
        self.to_client.truncate(keep_to_client);
        let bytes: Vec<u8> = self.to_server.drain(..).collect();
        let _ = self.server.handle_input(self.now, &bytes);
        let bytes: Vec<u8> = self.to_client.drain(..).collect();
        let _ = self.client.handle_input(self.now, &bytes);
        self.collect();
        self.client.transport_closed(self.now);
        self.server.transport_closed(self.now);
        self.collect();
        self.to_server.clear();
        self.to_client.clear();
    }
}

fn message(to: &str, id: &str) -> Element {
    format!(
        "<message xmlns='jabber:client' to='{to}' id='{id}' type='chat'><body>{id}</body></message>"
    )
    .parse()
    .unwrap()
}

/// Ids of the messages a host received, in order.
fn received(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Stanza(s) if s.name() == "message" => s.attr("id").map(str::to_owned),
            _ => None,
        })
        .collect()
}

fn sm_events(events: &[Event]) -> Vec<&SmEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sm(event) => Some(event),
            _ => None,
        })
        .collect()
}

fn negotiated(sm: bool) -> Link {
    let mut link = Link::new(
        ClientStream::new(client_config(sm), SeededEntropy::new(1)),
        server(server_config(sm), 2),
    );
    link.pump();
    assert!(link.client.is_negotiated() && link.server.is_negotiated());
    link
}

#[test]
fn enable_ack_and_counters() {
    let mut link = negotiated(true);
    assert!(
        link.server_wire.contains("<sm xmlns=\"urn:xmpp:sm:3\"")
            || link.server_wire.contains("<sm xmlns='urn:xmpp:sm:3'"),
        "{}",
        link.server_wire
    );
    assert!(link.client_wire.contains("<enable"), "{}", link.client_wire);
    let enabled = sm_events(&link.client_events);
    assert!(
        matches!(
            enabled.as_slice(),
            [SmEvent::Enabled {
                id: Some(_),
                max: Some(300),
                ..
            }]
        ),
        "{enabled:?}"
    );
    // Seven stanzas: an `<r/>` after the fifth (request_every), answered once the server's
    // host has taken what arrived before it.
    for n in 0..7 {
        link.client
            .send_stanza(link.now, &message("romeo@example.net", &format!("m{n}")))
            .unwrap();
    }
    assert_eq!(link.client.sm_unacked(), Some(7));
    link.pump();
    assert_eq!(received(&link.server_events).len(), 7);
    assert_eq!(
        link.client_wire.matches("<r ").count() + link.client_wire.matches("<r/>").count(),
        1,
        "{}",
        link.client_wire
    );
    // Answered at once: the server's host had taken the five stanzas before it.
    assert!(link.server_wire.contains("h='5'"), "{}", link.server_wire);
    assert_eq!(link.client.sm_unacked(), Some(2));
    // The server's stanzas: two, then an ack request by time.
    for n in 0..2 {
        link.server
            .send_stanza(
                link.now,
                &message("juliet@im.example.com/balcony", &format!("s{n}")),
            )
            .unwrap();
    }
    link.pump();
    assert_eq!(link.server.sm_unacked(), Some(2));
    assert!(link.server.poll_timeout().is_some());
    // Both ends ask by time (request_after): everything is acknowledged.
    link.advance(Duration::from_secs(31));
    link.pump();
    assert_eq!(link.server.sm_unacked(), Some(0));
    assert_eq!(link.client.sm_unacked(), Some(0));
    // Nonzas do not count: the client acknowledged exactly the two stanzas.
    let state = link.client.sm_state().unwrap();
    assert_eq!((state.handled, state.sent, state.acked), (2, 7, 7));
    // A second enable is refused.
    let _ = link
        .server
        .handle_input(link.now, b"<enable xmlns='urn:xmpp:sm:3'/>");
    link.collect();
    assert!(
        link.server_wire.contains("unexpected-request"),
        "{}",
        link.server_wire
    );
}

#[test]
fn an_h_above_what_was_sent_closes_the_stream() {
    let mut link = negotiated(true);
    link.client
        .send_stanza(link.now, &message("romeo@example.net", "m0"))
        .unwrap();
    link.collect();
    link.to_server.clear();
    let _ = link
        .client
        .handle_input(link.now, b"<a xmlns='urn:xmpp:sm:3' h='2'/>");
    link.collect();
    let Some(Event::Closed {
        reason: CloseReason::ProtocolError(error),
    }) = link.client_events.last()
    else {
        panic!("{:?}", link.client_events)
    };
    assert_eq!(error.condition(), StreamErrorCondition::UndefinedCondition);
    let app = error.stream_error().application_condition.as_ref().unwrap();
    assert!(app.is("handled-count-too-high", SM));
    assert_eq!(
        (app.attr("h"), app.attr("send-count")),
        (Some("2"), Some("1"))
    );
    assert!(
        link.client_wire.contains("handled-count-too-high"),
        "{}",
        link.client_wire
    );
}

/// Resume `link`'s session on a new link, the server host looking the id up in `detached`.
fn resume(state: SmState, detached: Option<DetachedSession>, seed: u64) -> Link {
    let mut client = ClientStream::new(client_config(true), SeededEntropy::new(seed));
    client.resume_with(state).unwrap();
    let mut link = Link::new(client, server(server_config(true), seed + 1));
    let mut detached = detached;
    for _ in 0..100 {
        link.pump();
        let asked = link
            .server_events
            .iter()
            .any(|e| matches!(e, Event::Sm(SmEvent::ResumeRequested { .. })));
        if asked {
            if let Some(session) = detached.take() {
                link.server.resume(link.now, session).unwrap();
            } else {
                link.server.refuse_resume(link.now);
            }
            link.pump();
            break;
        }
    }
    link
}

#[test]
fn client_resumes_after_a_cut_and_nothing_is_lost_or_doubled() {
    // Every cut point of the last client transmission and the last server transmission.
    for cut in [0usize, 7, 40, 10_000] {
        let mut link = negotiated(true);
        for n in 0..3 {
            link.client
                .send_stanza(link.now, &message("romeo@example.net", &format!("c{n}")))
                .unwrap();
            link.server
                .send_stanza(
                    link.now,
                    &message("juliet@im.example.com/balcony", &format!("s{n}")),
                )
                .unwrap();
        }
        link.pump();
        // In flight when the connection dies: c3..c5 and s3..s5, cut at `cut` bytes.
        for n in 3..6 {
            link.client
                .send_stanza(link.now, &message("romeo@example.net", &format!("c{n}")))
                .unwrap();
            link.server
                .send_stanza(
                    link.now,
                    &message("juliet@im.example.com/balcony", &format!("s{n}")),
                )
                .unwrap();
        }
        link.cut(cut, cut);
        let state = link.client.sm_state().expect("resumable");
        let detached = link.server.detach().expect("detached");
        assert_eq!(detached.jid().to_string(), "juliet@im.example.com/balcony");
        let (mut client_got, mut server_got) =
            (received(&link.client_events), received(&link.server_events));
        // Round trip through serde's data model when the feature is on is tested below; here
        // the state is handed over as a value.
        let mut next = resume(state, Some(detached), 10);
        assert!(
            next.client.is_negotiated(),
            "{}\n{}",
            next.client_wire,
            next.server_wire
        );
        assert!(
            sm_events(&next.client_events)
                .iter()
                .any(|e| matches!(e, SmEvent::Resumed { .. })),
            "{:?}",
            next.client_events
        );
        next.pump();
        client_got.extend(received(&next.client_events));
        server_got.extend(received(&next.server_events));
        let want = |p: &str| (0..6).map(|n| format!("{p}{n}")).collect::<Vec<_>>();
        assert_eq!(server_got, want("c"), "cut at {cut}");
        assert_eq!(client_got, want("s"), "cut at {cut}");
        // No Negotiated on the resumed stream: the session went on.
        assert!(
            !next
                .client_events
                .iter()
                .any(|e| matches!(e, Event::Negotiated { .. }))
        );
        assert_eq!(
            next.client.jid().unwrap().to_string(),
            "juliet@im.example.com/balcony"
        );
    }
}

#[test]
fn server_resumes_and_resends_in_order() {
    let mut link = negotiated(true);
    for n in 0..4 {
        link.server
            .send_stanza(
                link.now,
                &message("juliet@im.example.com/balcony", &format!("s{n}")),
            )
            .unwrap();
    }
    // Nothing reaches the client.
    link.cut(0, 0);
    let state = link.client.sm_state().unwrap();
    let mut detached = link.server.detach().unwrap();
    // While detached, the server host queues more for the session.
    assert!(detached.queue(&message("juliet@im.example.com/balcony", "s4")));
    assert_eq!(detached.queued(), 5);
    let next = resume(state, Some(detached), 20);
    assert_eq!(
        received(&next.client_events),
        ["s0", "s1", "s2", "s3", "s4"]
    );
    assert!(
        next.server_events
            .iter()
            .any(|e| matches!(e, Event::Sm(SmEvent::Resumed { resent: 5, .. }))),
        "{:?}",
        next.server_events
    );
}

#[test]
fn failed_resumption_reports_undelivered_and_binds() {
    let mut link = negotiated(true);
    for n in 0..3 {
        link.client
            .send_stanza(link.now, &message("romeo@example.net", &format!("c{n}")))
            .unwrap();
    }
    link.cut(0, 0);
    let state = link.client.sm_state().unwrap();
    // The server lost the session (expired): item-not-found, then a fresh bind.
    let next = resume(state, None, 30);
    let events = sm_events(&next.client_events);
    let Some(SmEvent::ResumeFailed {
        condition,
        undelivered,
    }) = events
        .iter()
        .find(|e| matches!(e, SmEvent::ResumeFailed { .. }))
    else {
        panic!("{events:?}")
    };
    assert_eq!(condition.as_deref(), Some("item-not-found"));
    let ids: Vec<_> = undelivered
        .iter()
        .map(|s| s.element().unwrap().attr("id").unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["c0", "c1", "c2"]);
    assert!(
        next.server_wire.contains("item-not-found"),
        "{}",
        next.server_wire
    );
    assert!(next.client.is_negotiated());
    assert!(
        next.client_events
            .iter()
            .any(|e| matches!(e, Event::Negotiated { .. }))
    );
    // And stream management is enabled afresh.
    assert!(events.iter().any(|e| matches!(e, SmEvent::Enabled { .. })));
}

#[test]
fn enable_before_bind_and_unknown_resume_fail() {
    // Raw client bytes against the server: authenticate with PLAIN, then SM before binding.
    let mut config = server_config(true);
    config.mechanisms = vec![xmpp_stream::Mechanism::Plain];
    let mut server = server(config, 3);
    server.start(Instant::ZERO, Transport::Plain).unwrap();
    let mut wire = String::new();
    let feed = |server: &mut ServerStream, wire: &mut String, bytes: &str| {
        let _ = server.handle_input(Instant::ZERO, bytes.as_bytes());
        while let Some(out) = server.poll_output() {
            if let Output::Transmit(b) = out {
                wire.push_str(&String::from_utf8(b).unwrap());
            }
        }
    };
    let header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";
    feed(&mut server, &mut wire, header);
    feed(
        &mut server,
        &mut wire,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>",
    );
    feed(&mut server, &mut wire, header);
    feed(&mut server, &mut wire, "<enable xmlns='urn:xmpp:sm:3'/>");
    assert!(wire.ends_with("</failed>"), "{wire}");
    assert!(wire.contains("unexpected-request"), "{wire}");
    feed(
        &mut server,
        &mut wire,
        "<resume xmlns='urn:xmpp:sm:3' h='0'/>",
    );
    assert!(wire.contains("bad-request"), "{wire}");
    feed(
        &mut server,
        &mut wire,
        "<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/>",
    );
    server.refuse_resume(Instant::ZERO);
    feed(&mut server, &mut wire, "");
    assert!(wire.contains("item-not-found"), "{wire}");
    // Binding still works, and afterwards `<resume/>` is out of place.
    feed(
        &mut server,
        &mut wire,
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    assert!(server.is_negotiated(), "{wire}");
    feed(
        &mut server,
        &mut wire,
        "<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>",
    );
    assert!(wire.contains("unsupported-stanza-type"), "{wire}");
    assert!(server.is_closed());
}

#[test]
fn enable_refused_is_reported() {
    let mut link = Link::new(
        ClientStream::new(client_config(true), SeededEntropy::new(1)),
        server(server_config(true), 2),
    );
    link.tamper = Some(|text| match text.find("<enabled") {
        Some(start) => {
            let end = start + text[start..].find("/>").unwrap() + 2;
            format!(
                "{}<failed xmlns='urn:xmpp:sm:3'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>{}",
                &text[..start],
                &text[end..]
            )
        }
        None => text,
    });
    link.pump();
    let events = sm_events(&link.client_events);
    assert!(
        events.contains(&&SmEvent::Refused {
            condition: Some("feature-not-implemented".to_owned())
        }),
        "{events:?}"
    );
    assert_eq!(link.client.sm_unacked(), None);
    assert!(link.client.sm_state().is_none());
}

#[test]
fn unsupported_first_level_elements_are_answered() {
    // A server without stream management: `<enable/>` gets `<failed/>`, never silence.
    let mut link = negotiated(false);
    assert!(!link.server_wire.contains("urn:xmpp:sm:3"));
    link.server_answers(
        "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
        "feature-not-implemented",
    );
    link.server_answers("<r xmlns='urn:xmpp:sm:3'/>", "unexpected-request");
    // Anything else unknown: unsupported-stanza-type (RFC 6120 §4.9.3.24).
    link.server_answers(
        "<foo xmlns='urn:example:unknown'/>",
        "unsupported-stanza-type",
    );
    assert!(link.server.is_closed());
}

#[test]
fn pings_when_idle_and_times_out() {
    let mut config = client_config(true);
    config.ping = Some(PingConfig::new(
        Duration::from_secs(60),
        Duration::from_secs(10),
    ));
    let mut link = Link::new(
        ClientStream::new(config, SeededEntropy::new(1)),
        server(server_config(true), 2),
    );
    link.pump();
    assert!(link.client.is_negotiated());
    // Idle: a ping goes out; the server's host answers it like any iq.
    link.advance(Duration::from_secs(61));
    link.pump();
    let ping = link
        .server_events
        .iter()
        .find_map(|e| match e {
            Event::Stanza(s) if s.has_child("ping", "urn:xmpp:ping") => Some(s.clone()),
            _ => None,
        })
        .expect("a ping reached the server's host");
    let pong: Element = format!(
        "<iq xmlns='jabber:client' type='result' id='{}'/>",
        ping.attr("id").unwrap()
    )
    .parse()
    .unwrap();
    link.server.send_stanza(link.now, &pong).unwrap();
    link.pump();
    // The pong was consumed by the client machine, and counted as handled.
    assert!(
        !link
            .client_events
            .iter()
            .any(|e| matches!(e, Event::Stanza(_)))
    );
    // A ping from the server is answered by the client machine.
    let ping: Element =
        "<iq xmlns='jabber:client' type='get' id='sp'><ping xmlns='urn:xmpp:ping'/></iq>"
            .parse()
            .unwrap();
    link.server.send_stanza(link.now, &ping).unwrap();
    link.pump();
    assert!(
        link.server_events
            .iter()
            .any(|e| matches!(e, Event::Stanza(s) if s.attr("id") == Some("sp"))),
        "{:?}",
        link.server_events
    );
    // Counters agree after both machine-handled iqs: acknowledge everything.
    link.advance(Duration::from_secs(31));
    link.pump();
    assert_eq!(link.client.sm_unacked(), Some(0));
    assert_eq!(link.server.sm_unacked(), Some(0));
    assert!(!link.client.is_closed() && !link.server.is_closed());
    // Now the server goes silent: ping, then connection-timeout.
    link.advance(Duration::from_secs(61));
    link.collect();
    link.to_server.clear();
    link.advance(Duration::from_secs(11));
    link.collect();
    assert!(
        link.client_wire.contains("connection-timeout"),
        "{}",
        link.client_wire
    );
    assert_eq!(
        link.client_events.last(),
        Some(&Event::Closed {
            reason: CloseReason::Timeout(Timer::Ping)
        })
    );
}

#[test]
fn a_full_unacked_queue_refuses_or_forgets() {
    let mut config = client_config(true);
    config.sm.max_unacked = 2;
    config.sm.request_every = 0;
    let mut link = Link::new(
        ClientStream::new(config, SeededEntropy::new(1)),
        server(server_config(true), 2),
    );
    link.pump();
    for n in 0..2 {
        link.client
            .send_stanza(link.now, &message("romeo@example.net", &format!("c{n}")))
            .unwrap();
    }
    assert_eq!(
        link.client
            .send_stanza(link.now, &message("romeo@example.net", "c2")),
        Err(UsageError::Backpressure)
    );
    // The refusal asked for an ack; once it arrives there is room again.
    link.pump();
    assert_eq!(link.client.sm_unacked(), Some(0));
    link.client
        .send_stanza(link.now, &message("romeo@example.net", "c2"))
        .unwrap();

    let mut config = client_config(true);
    config.sm.max_unacked = 1;
    config.sm.request_every = 0;
    config.sm.overflow = xmpp_stream::UnackedOverflow::ForgetOldest;
    let mut link = Link::new(
        ClientStream::new(config, SeededEntropy::new(1)),
        server(server_config(true), 2),
    );
    link.pump();
    for n in 0..2 {
        link.client
            .send_stanza(link.now, &message("romeo@example.net", &format!("c{n}")))
            .unwrap();
    }
    link.collect();
    let forgotten: Vec<_> = sm_events(&link.client_events)
        .into_iter()
        .filter_map(|e| match e {
            SmEvent::Forgotten(s) => s.element().unwrap().attr("id").map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(forgotten, ["c0"]);
    assert_eq!(link.client.sm_unacked(), Some(1));
    assert_eq!(link.client.sm_state().unwrap().sent, 2);
    // The server still acknowledges both; the counters stay consistent.
    let _ = link
        .client
        .handle_input(link.now, b"<a xmlns='urn:xmpp:sm:3' h='2'/>");
    assert_eq!(link.client.sm_unacked(), Some(0));
    assert!(!link.client.is_closed());
}

/// Stanzas `ForgetOldest` dropped and the server never got are not re-sent on resumption;
/// the counters must not keep them, or the next resumption re-sends what arrived (found by
/// the `stream_management` fuzz target: two cuts, messages delivered twice).
#[test]
fn forgotten_stanzas_lost_in_a_cut_do_not_shift_the_next_resumption() {
    let mut config = client_config(true);
    config.sm.max_unacked = 2;
    config.sm.request_every = 0;
    config.sm.overflow = xmpp_stream::UnackedOverflow::ForgetOldest;
    let mut link = Link::new(
        ClientStream::new(config, SeededEntropy::new(1)),
        server(server_config(true), 2),
    );
    link.pump();
    for n in 0..4 {
        link.client
            .send_stanza(link.now, &message("romeo@example.net", &format!("c{n}")))
            .unwrap();
    }
    // Nothing reaches the server: c0 and c1 were forgotten, c2 and c3 are re-sent.
    link.cut(0, 0);
    let forgotten = sm_events(&link.client_events)
        .iter()
        .filter(|e| matches!(e, SmEvent::Forgotten(_)))
        .count();
    assert_eq!(forgotten, 2);
    let state = link.client.sm_state().unwrap();
    let detached = link.server.detach().unwrap();
    let mut second = resume(state, Some(detached), 10);
    second.pump();
    let mut server_got = received(&second.server_events);
    assert_eq!(server_got, ["c2", "c3"]);
    // The server acknowledged both: nothing is left to re-send.
    assert_eq!(
        second.client.sm_unacked(),
        Some(0),
        "{}",
        second.client_wire
    );
    // A second cut and resumption re-sends nothing.
    second.cut(0, 0);
    let state = second.client.sm_state().unwrap();
    let detached = second.server.detach().unwrap();
    let mut third = resume(state, Some(detached), 20);
    third.pump();
    server_got.extend(received(&third.server_events));
    assert_eq!(server_got, ["c2", "c3"], "{}", third.client_wire);
}

#[test]
fn counters_wrap_across_a_resumption() {
    // A saved state with every counter just below 2^32, resumed against a scripted server.
    let state = SmState {
        id: "abc".to_owned(),
        jid: "juliet@im.example.com/balcony".to_owned(),
        location: None,
        handled: u32::MAX,
        sent: 1,
        acked: u32::MAX - 1,
        unacked: vec![
            "<message xmlns='jabber:client' id='w0'/>".to_owned(),
            "<message xmlns='jabber:client' id='w1'/>".to_owned(),
            "<message xmlns='jabber:client' id='w2'/>".to_owned(),
        ],
    };
    let mut client = ClientStream::new(client_config(true), SeededEntropy::new(1));
    client.resume_with(state).unwrap();
    let mut config = server_config(true);
    config.mechanisms = vec![xmpp_stream::Mechanism::ScramSha1];
    let mut link = Link::new(client, server(config, 2));
    // Intercept at `<resume/>`: answer as a server whose session acknowledged one stanza.
    link.pump();
    assert!(
        link.client_wire.contains("h=\"4294967295\"")
            || link.client_wire.contains("h='4294967295'"),
        "{}",
        link.client_wire
    );
    link.to_client.clear();
    let _ = link.client.handle_input(
        link.now,
        b"<resumed xmlns='urn:xmpp:sm:3' previd='abc' h='4294967295'/><message xmlns='jabber:client' id='x'/>",
    );
    link.collect();
    // w0 acknowledged across the wrap; w1, w2 re-sent.
    assert_eq!(link.client.sm_unacked(), Some(2));
    let resent = &link.client_wire[link.client_wire.find("<resume ").unwrap()..];
    assert!(
        !resent.contains("w0") && resent.contains("w1") && resent.contains("w2"),
        "{resent}"
    );
    let state = link.client.sm_state().unwrap();
    assert_eq!(state.handled, 0, "h wrapped to 0 after one more stanza");
    // h = 1 acknowledges w1 and w2 (2^32 - 1 + 2 mod 2^32).
    let _ = link
        .client
        .handle_input(link.now, b"<a xmlns='urn:xmpp:sm:3' h='1'/>");
    assert_eq!(link.client.sm_unacked(), Some(0));
    assert!(!link.client.is_closed());
}

#[cfg(feature = "serde")]
#[test]
fn resumable_state_round_trips_through_serde() {
    let mut link = negotiated(true);
    link.client
        .send_stanza(link.now, &message("romeo@example.net", "c0"))
        .unwrap();
    let state = link.client.sm_state().unwrap();
    let text = serde_json::to_string(&state).unwrap();
    let back: SmState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, state);
}

#[test]
fn a_hostile_resume_hands_the_session_back() {
    let mut link = negotiated(true);
    link.server
        .send_stanza(link.now, &message("juliet@im.example.com/balcony", "s0"))
        .unwrap();
    link.cut(0, 0);
    let mut state = link.client.sm_state().unwrap();
    let detached = link.server.detach().unwrap();
    // The client claims to have handled two stanzas of the one sent.
    state.handled = 2;
    let mut client = ClientStream::new(client_config(true), SeededEntropy::new(40));
    client.resume_with(state).unwrap();
    let mut next = Link::new(client, server(server_config(true), 41));
    next.pump();
    let back = next.server.resume(next.now, detached).unwrap_err();
    next.collect();
    assert!(
        next.server_wire.contains("handled-count-too-high"),
        "{}",
        next.server_wire
    );
    assert!(next.server.is_closed());
    // Nothing was lost: the session, with its unacknowledged stanza, is the host's again.
    assert_eq!(back.queued(), 1);
    let unacked = back.into_unacked();
    assert_eq!(unacked[0].element().unwrap().attr("id"), Some("s0"));
}

// ----- envelopes forwarded to a managed stream (issue 17) -----

/// A stanza as a c2s server in envelope mode hands it out: validated bytes and header, the
/// stream header declaring a prefix the stanza borrows.
fn envelope(stanza: &str) -> xmpp_xml::Envelope {
    let mut parser = xmpp_xml::StreamParser::new();
    parser.set_envelopes(true);
    parser.feed(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:e='urn:example:e'>",
    );
    parser.feed(stanza.as_bytes());
    assert!(matches!(
        parser.next_event(),
        Ok(Some(xmpp_xml::Event::StreamStart(_)))
    ));
    match parser.next_event() {
        Ok(Some(xmpp_xml::Event::Stanza(envelope))) => envelope,
        other => panic!("{other:?}"),
    }
}

const FROM: &str = "romeo@example.net/orchard";
const TO: &str = "juliet@im.example.com/balcony";

/// What `send_stanza` would have sent for `envelope` stamped as `send_envelope` stamps it.
fn stamped(envelope: &xmpp_xml::Envelope) -> Element {
    let mut element = envelope.element().unwrap();
    let stamp = xmpp_xml::Stamp {
        from: Some(FROM),
        to: Some(TO),
        ..xmpp_xml::Stamp::new("jabber:client")
    };
    xmpp_xml::stamp_element(&mut element, &stamp);
    element
}

/// `send_envelope` on the server, returning exactly the bytes it transmitted (its events
/// are collected).
fn forward(link: &mut Link, envelope: &xmpp_xml::Envelope) -> Vec<u8> {
    link.collect();
    link.server
        .send_envelope(link.now, envelope, Some(FROM), Some(TO))
        .unwrap();
    let mut sent = Vec::new();
    while let Some(out) = link.server.poll_output() {
        match out {
            Output::Transmit(bytes) => sent.extend(bytes),
            Output::Event(event) => link.server_events.push(event),
            _ => {}
        }
    }
    sent
}

const ENVELOPES: [&str; 2] = [
    "<message to='juliet@im.example.com' id='e0' type='chat'><body>a &amp; &lt;b&gt;</body><e:x e:a='1'/></message>",
    "<message from='juliet@im.example.com/balcony' id='e1' xml:lang='fr'><body>salut</body><y xmlns='urn:example:y'/></message>",
];

#[test]
fn a_forwarded_envelope_is_resent_byte_identical_on_resumption() {
    let mut link = negotiated(true);
    let envelopes: Vec<_> = ENVELOPES.iter().map(|s| envelope(s)).collect();
    let sent: Vec<Vec<u8>> = envelopes.iter().map(|e| forward(&mut link, e)).collect();
    // Spliced (not an element serialized), even with stream management on.
    let stamp = xmpp_xml::Stamp {
        from: Some(FROM),
        to: Some(TO),
        ..xmpp_xml::Stamp::new("jabber:client")
    };
    for (bytes, envelope) in sent.iter().zip(&envelopes) {
        assert_eq!(*bytes, envelope.splice(&stamp).unwrap());
    }
    assert_eq!(link.server.sm_unacked(), Some(2));
    // The connection dies before anything arrives.
    link.to_client.clear();
    link.cut(0, 0);
    let state = link.client.sm_state().unwrap();
    let detached = link.server.detach().unwrap();
    // The queue hands back the elements the element path would have kept.
    let kept: Vec<Element> = detached.unacked().map(|u| u.element().unwrap()).collect();
    let want: Vec<Element> = envelopes.iter().map(stamped).collect();
    assert_eq!(kept, want);
    let mut next = resume(state, Some(detached), 20);
    assert!(next.client.is_negotiated(), "{}", next.server_wire);
    // Re-sent verbatim, in order, back to back after `<resumed/>`.
    let mut both = sent[0].clone();
    both.extend_from_slice(&sent[1]);
    let resent = String::from_utf8(both).unwrap();
    assert!(next.server_wire.contains(&resent), "{}", next.server_wire);
    // And the client gets them as if sent as elements.
    let got: Vec<Element> = next
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::Stanza(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(got, want);
    next.pump();
    assert_eq!(next.server.sm_unacked(), Some(0));
}

#[test]
fn an_envelope_queued_while_detached_is_sent_as_its_spliced_bytes_on_resumption() {
    let mut link = negotiated(true);
    link.cut(0, 0);
    let state = link.client.sm_state().unwrap();
    let mut detached = link.server.detach().unwrap();
    let envelopes: Vec<_> = ENVELOPES.iter().map(|s| envelope(s)).collect();
    for e in &envelopes {
        assert!(detached.queue_envelope(e, Some(FROM), Some(TO)));
    }
    assert_eq!(detached.queued(), 2);
    // Kept as the splice, handed back as the element the element path would have queued.
    let kept: Vec<Element> = detached.unacked().map(|u| u.element().unwrap()).collect();
    let want: Vec<Element> = envelopes.iter().map(stamped).collect();
    assert_eq!(kept, want);
    let next = resume(state, Some(detached), 21);
    let stamp = xmpp_xml::Stamp {
        from: Some(FROM),
        to: Some(TO),
        ..xmpp_xml::Stamp::new("jabber:client")
    };
    let mut spliced = Vec::new();
    for e in &envelopes {
        spliced.extend(e.splice(&stamp).unwrap());
    }
    let spliced = String::from_utf8(spliced).unwrap();
    assert!(next.server_wire.contains(&spliced), "{}", next.server_wire);
    assert_eq!(received(&next.client_events), ["e0", "e1"]);
}

#[test]
fn a_full_detached_queue_refuses_an_envelope() {
    let mut link = negotiated(true);
    link.cut(0, 0);
    let mut detached = link.server.detach().unwrap();
    let e = envelope(ENVELOPES[0]);
    let mut queued = 0;
    while detached.queue_envelope(&e, Some(FROM), Some(TO)) {
        queued += 1;
        assert!(queued <= 100_000, "the queue never fills");
    }
    assert_eq!(detached.queued(), queued);
    assert!(!detached.queue(&message(TO, "late")));
}

#[test]
fn forgotten_hands_back_a_forwarded_envelope_as_its_element() {
    let mut config = server_config(true);
    config.sm.max_unacked = 1;
    config.sm.overflow = xmpp_stream::UnackedOverflow::ForgetOldest;
    let mut link = Link::new(
        ClientStream::new(client_config(true), SeededEntropy::new(1)),
        server(config, 2),
    );
    link.pump();
    let envelopes: Vec<_> = ENVELOPES.iter().map(|s| envelope(s)).collect();
    for e in &envelopes {
        let _ = forward(&mut link, e);
    }
    link.collect();
    let forgotten: Vec<Element> = sm_events(&link.server_events)
        .into_iter()
        .filter_map(|e| match e {
            SmEvent::Forgotten(s) => Some(s.element().unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(forgotten, [stamped(&envelopes[0])]);
    assert_eq!(link.server.sm_unacked(), Some(1));
    let detached = link.server.detach().unwrap();
    let left: Vec<Element> = detached
        .into_unacked()
        .into_iter()
        .map(|u| u.into_element().unwrap())
        .collect();
    assert_eq!(left, [stamped(&envelopes[1])]);
}

#[test]
fn spliced_bytes_resumed_on_a_websocket_stream_are_written_as_its_elements() {
    // Kept as bytes for a TCP stream (no xmlns of their own): a WebSocket stream writes each
    // element with its namespace, so the bytes are parsed back and serialized for it.
    let mut link = negotiated(true);
    let envelopes: Vec<_> = ENVELOPES.iter().map(|s| envelope(s)).collect();
    for e in &envelopes {
        let _ = forward(&mut link, e);
    }
    link.cut(0, 0);
    let state = link.client.sm_state().unwrap();
    let mut detached = Some(link.server.detach().unwrap());
    let mut client = ClientStream::new(client_config(true), SeededEntropy::new(30)).websocket();
    client.resume_with(state).unwrap();
    let mut server = server(server_config(true), 31).websocket();
    let now = Instant::ZERO;
    client.start(now, Transport::Plain).unwrap();
    server.start(now, Transport::Plain).unwrap();
    let mut got = Vec::new();
    let mut server_messages = Vec::new();
    for _ in 0..1_000 {
        let mut moved = false;
        while let Some(out) = client.poll_output() {
            moved = true;
            match out {
                Output::Transmit(bytes) => {
                    let _ = server.handle_message(now, &bytes);
                }
                Output::Event(Event::Stanza(s)) => got.push(s),
                _ => {}
            }
        }
        while let Some(out) = server.poll_output() {
            moved = true;
            match out {
                Output::Transmit(bytes) => {
                    server_messages.push(String::from_utf8(bytes.clone()).unwrap());
                    let _ = client.handle_message(now, &bytes);
                }
                Output::Event(Event::Sm(SmEvent::ResumeRequested { .. })) => {
                    server.resume(now, detached.take().unwrap()).unwrap();
                }
                _ => {}
            }
        }
        if !moved {
            break;
        }
    }
    assert!(client.is_negotiated() && !client.is_closed());
    let want: Vec<Element> = envelopes.iter().map(stamped).collect();
    assert_eq!(got, want);
    let resent: Vec<&String> = server_messages
        .iter()
        .filter(|m| m.starts_with("<message"))
        .collect();
    assert_eq!(resent.len(), 2, "{server_messages:?}");
    assert!(
        resent.iter().all(|m| m.contains("xmlns='jabber:client'")),
        "{resent:?}"
    );
}

// ----- stanzas sent as elements, kept as the bytes written for them -----

/// Stanzas a host may send, each with whether the unacknowledged queue keeps the bytes
/// written for it (`false`: those bytes alone would parse to another element, so a copy of
/// the element is kept).
fn kept_stanzas() -> Vec<(Element, bool)> {
    let parsed = |xml: &str| -> Element { xml.parse().unwrap() };
    let mut stanzas = vec![
        // Prefixed payload, `xml:lang`, character references (a carriage return among them).
        (
            parsed(
                "<message xmlns='jabber:client' to='juliet@im.example.com/balcony' id='k0' \
                 type='chat' xml:lang='en'><body>a &amp; b &lt; c &#x263A; &#13;&#10;d</body>\
                 <x:y xmlns:x='urn:example:x' x:a='1&#9;2'><x:z>t</x:z></x:y></message>",
            ),
            true,
        ),
        // Nested namespaces, whitespace between children.
        (
            parsed(
                "<iq xmlns='jabber:client' type='result' id='k1' to='juliet@im.example.com/balcony'>\n \
                 <query xmlns='jabber:iq:roster' ver='v1'>\n  <item jid='romeo@example.net' \
                 name='R&apos;o &quot;'><group>Friends</group></item>\n </query>\n</iq>",
            ),
            true,
        ),
        (
            parsed(
                "<presence xmlns='jabber:client' id='k2'><show>away</show><status>&gt;_&lt;</status>\
                 <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/>\
                 <priority>5</priority></presence>",
            ),
            true,
        ),
        // A forwarded message: `jabber:client` again below a foreign element; an element out
        // of every namespace.
        (
            parsed(
                "<message xmlns='jabber:client' id='k3' to='juliet@im.example.com/balcony'>\
                 <forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' \
                 stamp='2010-07-10T23:08:25Z'/><message xmlns='jabber:client' \
                 from='romeo@example.net/orchard' xml:lang='it'><body>inner</body></message>\
                 </forwarded><none xmlns=''/></message>",
            ),
            true,
        ),
        // `jabber:server` below a `jabber:client` stanza is written as `jabber:client`.
        (
            parsed(
                "<message xmlns='jabber:client' id='k4'><body xmlns='jabber:server'>moved</body>\
                 </message>",
            ),
            false,
        ),
    ];
    // Built, not parsed: an attribute in a namespace, no prefix recorded anywhere.
    let mut built = Element::builder("message", "jabber:client")
        .attr(xmpp_stream_name("id"), "k5")
        .append(Element::builder("body", "jabber:client").append("built"))
        .build();
    built.set_attr(
        minidom::rxml::Namespace::from("urn:example:attr".to_owned()),
        xmpp_stream_name("a"),
        "v",
    );
    stanzas.push((built, true));
    // Two text nodes in a row: one run of text once parsed.
    let mut adjacent = Element::builder("message", "jabber:client")
        .attr(xmpp_stream_name("id"), "k6")
        .build();
    adjacent.append_text_node("one ");
    adjacent.append_text_node("two");
    stanzas.push((adjacent, false));
    stanzas
}

fn xmpp_stream_name(name: &str) -> minidom::rxml::NcName {
    minidom::rxml::NcName::try_from(name).unwrap()
}

/// The queue hands every stanza back as the element sent, kept as bytes where `kept_stanzas`
/// says so (a value keeping bytes is never equal to one keeping the element).
fn check_kept<'a>(unacked: impl Iterator<Item = &'a Unacked>, stanzas: &[(Element, bool)]) {
    let unacked: Vec<&Unacked> = unacked.collect();
    assert_eq!(unacked.len(), stanzas.len());
    for (kept, (stanza, as_bytes)) in unacked.into_iter().zip(stanzas) {
        assert_eq!(kept.element().unwrap(), *stanza);
        assert_eq!(kept.clone().into_element().unwrap(), *stanza);
        let as_element = Unacked::from(stanza.clone());
        assert_eq!(*kept != as_element, *as_bytes, "{stanza:?}");
    }
}

/// The bytes a host polled: stanzas, with the `<r/>` a count of them asks for left out
/// (resumption sends one after all of them instead).
fn stanza_bytes(transmitted: Vec<u8>) -> String {
    String::from_utf8(transmitted)
        .unwrap()
        .replace("<r xmlns='urn:xmpp:sm:3'/>", "")
}

/// `send_stanza` on the server, returning the bytes transmitted for the stanza (its events
/// are collected).
fn server_sends(link: &mut Link, stanza: &Element) -> String {
    link.collect();
    link.server.send_stanza(link.now, stanza).unwrap();
    let mut sent = Vec::new();
    while let Some(out) = link.server.poll_output() {
        match out {
            Output::Transmit(bytes) => sent.extend(bytes),
            Output::Event(event) => link.server_events.push(event),
            _ => {}
        }
    }
    stanza_bytes(sent)
}

/// What the client receives when the server sends `stanzas` on a live TCP stream.
fn delivered(stanzas: &[(Element, bool)]) -> Vec<Element> {
    let mut link = negotiated(true);
    for (stanza, _) in stanzas {
        link.server.send_stanza(link.now, stanza).unwrap();
    }
    link.pump();
    stanzas_received(&link.client_events)
}

fn stanzas_received(events: &[Event]) -> Vec<Element> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Stanza(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn stanzas_a_server_sends_are_kept_as_their_bytes_and_resent_as_first_sent() {
    let stanzas = kept_stanzas();
    let want = delivered(&stanzas);
    // Written exactly: the client gets the very stanza sent.
    for ((stanza, as_bytes), got) in stanzas.iter().zip(&want) {
        if *as_bytes {
            assert_eq!(got, stanza);
        }
    }
    let mut link = negotiated(true);
    let sent: String = stanzas
        .iter()
        .map(|(stanza, _)| server_sends(&mut link, stanza))
        .collect();
    // Nothing arrives.
    link.to_client.clear();
    link.cut(0, 0);
    let state = link.client.sm_state().unwrap();
    let detached = link.server.detach().unwrap();
    check_kept(detached.unacked(), &stanzas);
    // Resumed on TCP: the same bytes again, in order (verbatim, or the element written
    // again the same way), and the client gets what it would have.
    let next = resume(state.clone(), Some(detached.clone()), 50);
    assert!(next.client.is_negotiated(), "{}", next.server_wire);
    assert!(
        next.server_wire.contains(&sent),
        "{}\n{sent}",
        next.server_wire
    );
    assert_eq!(stanzas_received(&next.client_events), want);
    // Resumed on WebSocket: every stanza declares its namespace; the client gets the same.
    let (got, messages) = resume_on_websocket(state, detached);
    assert_eq!(got, want);
    let resent: Vec<&String> = messages
        .iter()
        .filter(|m| {
            ["<message", "<iq", "<presence"]
                .iter()
                .any(|s| m.starts_with(s))
        })
        .collect();
    assert_eq!(resent.len(), stanzas.len(), "{messages:?}");
    assert!(
        resent.iter().all(|m| {
            let tag = &m[..m.find('>').unwrap()];
            tag.contains(" xmlns='jabber:client'")
        }),
        "{resent:?}"
    );
}

#[test]
fn stanzas_a_client_sends_are_kept_as_their_bytes_and_given_up_as_sent() {
    // A queue of one that forgets the oldest: every stanza but the last is handed back.
    let mut config = client_config(true);
    config.sm.max_unacked = 1;
    config.sm.overflow = xmpp_stream::UnackedOverflow::ForgetOldest;
    let mut link = Link::new(
        ClientStream::new(config, SeededEntropy::new(1)),
        server(server_config(true), 2),
    );
    link.pump();
    let stanzas = kept_stanzas();
    let last = message("romeo@example.net", "c-last");
    for stanza in stanzas.iter().map(|(s, _)| s).chain([&last]) {
        link.client.send_stanza(link.now, stanza).unwrap();
    }
    link.collect();
    let forgotten: Vec<&Unacked> = sm_events(&link.client_events)
        .into_iter()
        .filter_map(|e| match e {
            SmEvent::Forgotten(s) => Some(s),
            _ => None,
        })
        .collect();
    check_kept(forgotten.into_iter(), &stanzas);
    // The state a host persists holds the last one as XML text that parses to it.
    let state = link.client.sm_state().unwrap();
    let saved: Vec<Element> = state.unacked.iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(saved, [last]);
}

#[test]
fn stanzas_queued_for_a_detached_session_are_kept_as_their_bytes() {
    let stanzas = kept_stanzas();
    let want = delivered(&stanzas);
    let mut link = negotiated(true);
    link.cut(0, 0);
    let state = link.client.sm_state().unwrap();
    let mut detached = link.server.detach().unwrap();
    for (stanza, _) in &stanzas {
        assert!(detached.queue(stanza));
    }
    check_kept(detached.unacked(), &stanzas);
    let next = resume(state.clone(), Some(detached.clone()), 60);
    assert_eq!(stanzas_received(&next.client_events), want);
    let (got, _) = resume_on_websocket(state, detached);
    assert_eq!(got, want);
}

#[test]
fn stanzas_sent_on_a_websocket_stream_are_kept_as_their_messages() {
    let stanzas = kept_stanzas();
    let want = delivered(&stanzas);
    let mut ws = Ws::new(
        ClientStream::new(client_config(true), SeededEntropy::new(1)).websocket(),
        server(server_config(true), 2).websocket(),
    );
    ws.pump(true, &mut None);
    assert!(ws.client.is_negotiated() && ws.server.is_negotiated());
    ws.server_messages.clear();
    let mut sent = Vec::new();
    for (stanza, _) in &stanzas {
        ws.server.send_stanza(ws.now, stanza).unwrap();
        ws.pump(false, &mut None);
        sent.extend(ws.take_stanza_messages());
    }
    assert_eq!(sent.len(), stanzas.len(), "{sent:?}");
    ws.client.transport_closed(ws.now);
    ws.server.transport_closed(ws.now);
    let state = ws.client.sm_state().unwrap();
    let detached = ws.server.detach().unwrap();
    check_kept(detached.unacked(), &stanzas);
    // Resumed on WebSocket: the same messages again.
    let (got, messages) = resume_on_websocket(state.clone(), detached.clone());
    assert_eq!(got, want);
    let resent: Vec<String> = messages
        .into_iter()
        .filter(|m| {
            ["<message", "<iq", "<presence"]
                .iter()
                .any(|s| m.starts_with(s))
        })
        .collect();
    assert_eq!(resent, sent);
    // Resumed on TCP: what the client gets is the same.
    let next = resume(state, Some(detached), 70);
    assert_eq!(stanzas_received(&next.client_events), want);
}

/// A WebSocket link: each transmit is one message, delivered whole at once.
struct Ws {
    client: ClientStream,
    server: ServerStream,
    now: Instant,
    client_events: Vec<Event>,
    /// What the server sent, one message each.
    server_messages: Vec<String>,
}

impl Ws {
    fn new(client: ClientStream, server: ServerStream) -> Ws {
        let mut ws = Ws {
            client,
            server,
            now: Instant::ZERO,
            client_events: Vec::new(),
            server_messages: Vec::new(),
        };
        ws.client.start(ws.now, Transport::Plain).unwrap();
        ws.server.start(ws.now, Transport::Plain).unwrap();
        ws
    }

    /// Exchange messages until both ends are quiet, the server's lost in flight unless
    /// `deliver`; a resumption request resumes `detached`.
    fn pump(&mut self, deliver: bool, detached: &mut Option<DetachedSession>) {
        for _ in 0..1_000 {
            let mut moved = false;
            while let Some(out) = self.client.poll_output() {
                moved = true;
                match out {
                    Output::Transmit(bytes) => {
                        let _ = self.server.handle_message(self.now, &bytes);
                    }
                    Output::Event(event) => self.client_events.push(event),
                    _ => {}
                }
            }
            while let Some(out) = self.server.poll_output() {
                moved = true;
                match out {
                    Output::Transmit(bytes) => {
                        self.server_messages
                            .push(String::from_utf8(bytes.clone()).unwrap());
                        if deliver {
                            let _ = self.client.handle_message(self.now, &bytes);
                        }
                    }
                    Output::Event(Event::Sm(SmEvent::ResumeRequested { .. })) => {
                        self.server
                            .resume(self.now, detached.take().unwrap())
                            .unwrap();
                    }
                    _ => {}
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the ends never went quiet");
    }

    /// The stanza messages the server sent since the last call.
    fn take_stanza_messages(&mut self) -> Vec<String> {
        self.server_messages
            .drain(..)
            .filter(|m| {
                ["<message", "<iq", "<presence"]
                    .iter()
                    .any(|s| m.starts_with(s))
            })
            .collect()
    }
}

/// Resume a session on a WebSocket link: the stanzas the client got, every message the
/// server sent.
fn resume_on_websocket(state: SmState, detached: DetachedSession) -> (Vec<Element>, Vec<String>) {
    let mut client = ClientStream::new(client_config(true), SeededEntropy::new(80)).websocket();
    client.resume_with(state).unwrap();
    let mut ws = Ws::new(client, server(server_config(true), 81).websocket());
    ws.pump(true, &mut Some(detached));
    assert!(ws.client.is_negotiated() && !ws.client.is_closed());
    (stanzas_received(&ws.client_events), ws.server_messages)
}
