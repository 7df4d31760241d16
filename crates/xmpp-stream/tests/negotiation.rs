//! Full negotiations through the in-memory `Pair`.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;

use minidom::Element;
use xmpp_stream::MemoryBackend;
use xmpp_stream::pair::{Direction, Pair, WireConfig};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, Event, Instant, Mechanism, Output,
    SeededEntropy, ServerConfig, ServerStream, SessionFlags, StreamErrorCondition, TlsPolicy,
    Transport,
};

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn backend() -> MemoryBackend {
    static BACKEND: std::sync::OnceLock<MemoryBackend> = std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096))
        .clone()
}

fn pair_with(client: ClientConfig, server: ServerConfig) -> Pair {
    let client = ClientStream::new(client, SeededEntropy::new(1));
    let server = ServerStream::new(server, SeededEntropy::new(2), backend());
    Pair::new(client, server)
}

fn default_pair() -> Pair {
    pair_with(
        ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30"),
        ServerConfig::new(jid("im.example.com")),
    )
}

fn negotiated_jid(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::Negotiated { jid, .. } => Some(jid.as_str().to_owned()),
        _ => None,
    })
}

fn mechanism(events: &[Event]) -> Option<Mechanism> {
    events.iter().find_map(|e| match e {
        Event::Authenticated { mechanism, .. } => Some(*mechanism),
        _ => None,
    })
}

fn closed(events: &[Event]) -> Option<&CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed { reason } => Some(reason),
        _ => None,
    })
}

fn message(to: &str, body: &str) -> Element {
    Element::builder("message", "jabber:client")
        .attr("to".try_into().unwrap(), to)
        .attr("type".try_into().unwrap(), "chat")
        .append(
            Element::builder("body", "jabber:client")
                .append(body)
                .build(),
        )
        .build()
}

#[test]
fn starttls_scram_plus_bind_messages_and_close() {
    let mut pair = default_pair();
    pair.start();
    pair.drive();
    assert!(pair.client_errors.is_empty(), "{:?}", pair.client_errors);
    assert!(pair.server_errors.is_empty(), "{:?}", pair.server_errors);
    let client_jid = negotiated_jid(&pair.client_events).expect("client negotiated");
    let server_jid = negotiated_jid(&pair.server_events).expect("server negotiated");
    assert_eq!(client_jid, server_jid);
    assert!(client_jid.starts_with("juliet@im.example.com/"));
    assert_eq!(
        mechanism(&pair.client_events),
        Some(Mechanism::ScramSha512Plus)
    );
    assert_eq!(
        pair.client.flags(),
        SessionFlags::SECURE | SessionFlags::AUTHENTICATED | SessionFlags::BOUND
    );
    assert!(pair.client_events.contains(&Event::Secured));

    pair.client
        .send_stanza(
            pair.now,
            &message("romeo@example.net", "Art thou not Romeo?"),
        )
        .unwrap();
    pair.server
        .send_stanza(pair.now, &message(&client_jid, "Neither, fair saint"))
        .unwrap();
    pair.drive();
    let at_server = pair.server_events.iter().find_map(|e| match e {
        Event::Stanza(s) => Some(s.clone()),
        _ => None,
    });
    let at_server = at_server.expect("server got the message");
    assert_eq!(
        at_server.attr("from"),
        Some(client_jid.as_str()),
        "server stamps from"
    );
    assert!(pair.client_events.iter().any(|e| matches!(e, Event::Stanza(s) if s.get_child("body", "jabber:client").unwrap().text() == "Neither, fair saint")));

    pair.client.close(pair.now).unwrap();
    pair.drive();
    assert_eq!(closed(&pair.client_events), Some(&CloseReason::Graceful));
    assert_eq!(closed(&pair.server_events), Some(&CloseReason::Graceful));
}

#[test]
fn any_chunking_gives_the_same_events() {
    let mut reference = default_pair();
    reference.start();
    reference.drive();
    for chunk in [1, 2, 3, 7, 64] {
        let mut pair = default_pair();
        pair.set_wire(
            Direction::ToServer,
            WireConfig {
                chunk,
                latency: Duration::from_millis(3),
            },
        );
        pair.set_wire(
            Direction::ToClient,
            WireConfig {
                chunk,
                latency: Duration::from_millis(5),
            },
        );
        pair.start();
        pair.drive();
        assert_eq!(pair.client_events, reference.client_events, "chunk {chunk}");
        assert_eq!(pair.server_events, reference.server_events, "chunk {chunk}");
    }
}

#[test]
fn wrong_password_fails_with_not_authorized() {
    let mut pair = pair_with(
        ClientConfig::new(jid("juliet@im.example.com"), "wrong"),
        ServerConfig::new(jid("im.example.com")),
    );
    pair.start();
    pair.drive();
    match closed(&pair.client_events) {
        Some(CloseReason::AuthenticationFailed { condition, .. }) => {
            assert_eq!(condition.to_string(), "not-authorized");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(negotiated_jid(&pair.server_events).is_none());
}

#[test]
fn injection_after_proceed_is_fatal() {
    let mut pair = default_pair();
    pair.set_tamper(|direction, bytes| {
        if direction == Direction::ToClient
            && bytes.ends_with(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        {
            bytes.extend_from_slice(b"<stream:features/>");
        }
    });
    pair.start();
    pair.drive();
    assert_eq!(
        pair.client_errors
            .first()
            .map(xmpp_stream::ProtocolError::condition),
        Some(StreamErrorCondition::PolicyViolation)
    );
    assert!(!pair.client.flags().contains(SessionFlags::SECURE));
}

#[test]
fn plaintext_is_refused_when_tls_is_required_but_not_offered() {
    let mut server = ServerConfig::new(jid("im.example.com"));
    server.tls = TlsPolicy::Disabled;
    let mut pair = pair_with(
        ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30"),
        server,
    );
    pair.start();
    pair.drive();
    assert_eq!(closed(&pair.client_events), Some(&CloseReason::TlsFailed));
}

#[test]
#[ignore = "prints the wire log for inspection"]
fn print_log() {
    let mut pair = default_pair();
    pair.start();
    pair.drive();
    pair.client.close(pair.now).unwrap();
    pair.drive();
    println!("{}", pair.log_text());
    println!("{:#?}", pair.client_events);
}

fn client_config() -> ClientConfig {
    ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30")
}

fn server_config() -> ServerConfig {
    ServerConfig::new(jid("im.example.com"))
}

fn run(client: ClientConfig, server: ServerConfig) -> Pair {
    let mut pair = pair_with(client, server);
    pair.start();
    pair.drive();
    pair
}

#[test]
fn every_mechanism_negotiates() {
    for wanted in [
        Mechanism::Plain,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha512Plus,
    ] {
        let mut server = server_config();
        server.mechanisms = vec![wanted];
        let pair = run(client_config(), server);
        assert_eq!(mechanism(&pair.client_events), Some(wanted), "{wanted}");
        assert_eq!(mechanism(&pair.server_events), Some(wanted), "{wanted}");
        assert!(
            pair.client.is_negotiated() && pair.server.is_negotiated(),
            "{wanted}"
        );
    }
}

#[test]
fn direct_tls_skips_starttls() {
    let mut pair = pair_with(client_config(), server_config());
    pair.start_direct_tls();
    pair.drive();
    assert!(pair.client.is_negotiated());
    assert!(
        !pair.client_events.contains(&Event::Secured),
        "no STARTTLS happened"
    );
    assert!(pair.client.flags().contains(SessionFlags::SECURE));
    assert!(!pair.log_text().contains("starttls"));
    assert_eq!(
        mechanism(&pair.client_events),
        Some(Mechanism::ScramSha512Plus)
    );
}

#[test]
fn tls_policies_combine() {
    use TlsPolicy::{Disabled, Optional, Required};
    // (client, server, negotiated, secure)
    let cases = [
        (Required, Required, true, true),
        (Required, Optional, true, true),
        (Optional, Required, true, true),
        (Optional, Optional, true, true),
        (Optional, Disabled, true, false),
        (Disabled, Optional, true, false),
        (Disabled, Disabled, true, false),
        (Required, Disabled, false, false),
        (Disabled, Required, false, false),
    ];
    for (client_tls, server_tls, negotiated, secure) in cases {
        let mut client = client_config();
        client.tls = client_tls;
        let mut server = server_config();
        server.tls = server_tls;
        let pair = run(client, server);
        assert_eq!(
            pair.client.is_negotiated(),
            negotiated,
            "{client_tls:?}/{server_tls:?}"
        );
        assert_eq!(
            pair.client.flags().contains(SessionFlags::SECURE),
            secure,
            "{client_tls:?}/{server_tls:?}"
        );
        if !negotiated {
            assert_eq!(
                closed(&pair.client_events),
                Some(&CloseReason::TlsFailed),
                "{client_tls:?}/{server_tls:?}"
            );
        }
    }
}

#[test]
fn plain_without_tls_needs_both_sides_to_allow_it() {
    for (client_allows, server_allows, works) in [
        (false, false, false),
        (true, false, false),
        (false, true, false),
        (true, true, true),
    ] {
        let mut client = client_config();
        client.tls = TlsPolicy::Disabled;
        client.allow_plain_without_tls = client_allows;
        let mut server = server_config();
        server.tls = TlsPolicy::Disabled;
        server.allow_plain_without_tls = server_allows;
        server.mechanisms = vec![Mechanism::Plain];
        let pair = run(client, server);
        assert_eq!(
            pair.client.is_negotiated(),
            works,
            "{client_allows}/{server_allows}"
        );
        if !works {
            assert_eq!(closed(&pair.client_events), Some(&CloseReason::NoMechanism));
        }
    }
}

#[test]
fn required_channel_binding_refuses_unbound_mechanisms() {
    let mut client = client_config();
    client.tls = TlsPolicy::Disabled;
    client.require_channel_binding = true;
    let mut server = server_config();
    server.tls = TlsPolicy::Disabled;
    let pair = run(client, server);
    assert_eq!(closed(&pair.client_events), Some(&CloseReason::NoMechanism));
}

#[test]
fn channel_binding_mismatch_fails_authentication() {
    let mut pair = default_pair();
    pair.server_bindings = vec![xmpp_stream::ChannelBinding::new(
        xmpp_stream::ChannelBindingType::TlsExporter,
        [1u8; 32],
    )];
    pair.start();
    pair.drive();
    assert!(matches!(
        closed(&pair.client_events),
        Some(CloseReason::AuthenticationFailed { .. })
    ));
    assert!(!pair.server.is_negotiated());
}

#[test]
fn starttls_failure_closes() {
    let mut pair = default_pair();
    pair.set_tamper(|direction, bytes| {
        let proceed: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
        if direction == Direction::ToClient && bytes.as_slice() == proceed {
            *bytes = b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".to_vec();
        }
    });
    pair.start();
    pair.drive();
    assert_eq!(closed(&pair.client_events), Some(&CloseReason::TlsFailed));
}

#[test]
fn tampered_success_is_not_trusted() {
    let mut pair = default_pair();
    pair.set_tamper(|direction, bytes| {
        if direction == Direction::ToClient && bytes.starts_with(b"<success") {
            *bytes =
                b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1BQUFB</success>".to_vec();
        }
    });
    pair.start();
    pair.drive();
    assert_eq!(
        closed(&pair.client_events),
        Some(&CloseReason::ServerNotVerified)
    );
    assert!(!pair.client.flags().contains(SessionFlags::AUTHENTICATED));
}

/// Drive a lone server with raw client bytes; returns everything it transmitted.
fn raw_server(config: ServerConfig, inputs: &[&str]) -> (ServerStream, String, Vec<Event>) {
    let mut server = ServerStream::new(config, SeededEntropy::new(9), backend());
    server.start(Instant::ZERO, Transport::Plain).unwrap();
    let mut sent = String::new();
    let mut events = Vec::new();
    for input in inputs {
        let _ = server.handle_input(Instant::ZERO, input.as_bytes());
        while let Some(out) = server.poll_output() {
            match out {
                Output::Transmit(bytes) => sent.push_str(&String::from_utf8(bytes).unwrap()),
                Output::Event(e) => events.push(e),
                Output::StartTls => sent.push_str("[TLS]"),
                _ => {}
            }
        }
    }
    (server, sent, events)
}

const HEADER: &str = "<stream:stream to='im.example.com' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

fn plaintext_server() -> ServerConfig {
    let mut config = server_config();
    config.tls = TlsPolicy::Disabled;
    config.allow_plain_without_tls = true;
    config
}

#[test]
fn server_allows_configured_retries_then_policy_violation() {
    // PLAIN "\0juliet\0bad"
    let bad =
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABiYWQ=</auth>";
    let (server, sent, _) = raw_server(plaintext_server(), &[HEADER, bad, bad]);
    assert_eq!(sent.matches("<not-authorized/>").count(), 2);
    assert!(!server.is_closed(), "two failures are tolerated");
    let (server, sent, events) = raw_server(plaintext_server(), &[HEADER, bad, bad, bad]);
    assert_eq!(sent.matches("<not-authorized/>").count(), 3);
    assert!(sent.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
    assert!(server.is_closed());
    assert!(
        matches!(closed(&events), Some(CloseReason::ProtocolError(e)) if e.condition() == StreamErrorCondition::PolicyViolation)
    );
}

#[test]
fn server_sasl_abort_invalid_mechanism_and_bad_base64() {
    let (_, sent, _) = raw_server(
        plaintext_server(),
        &[
            HEADER,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'/>",
            "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        ],
    );
    assert!(
        sent.contains("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
        "empty challenge asks for the initial response: {sent}"
    );
    assert!(sent.contains("<aborted/>"), "{sent}");
    let (_, sent, _) = raw_server(
        plaintext_server(),
        &[
            HEADER,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-UNKNOWN'>=</auth>",
        ],
    );
    assert!(sent.contains("<invalid-mechanism/>"), "{sent}");
    let (_, sent, _) = raw_server(
        plaintext_server(),
        &[
            HEADER,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%%%</auth>",
        ],
    );
    assert!(sent.contains("<incorrect-encoding/>"), "{sent}");
}

#[test]
fn server_header_checks() {
    let (_, sent, events) = raw_server(
        plaintext_server(),
        &[
            "<stream:stream to='other.example' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        ],
    );
    assert!(
        sent.starts_with("<?xml version='1.0'?><stream:stream"),
        "header before the error: {sent}"
    );
    assert!(sent.contains("<host-unknown"), "{sent}");
    assert!(matches!(
        closed(&events),
        Some(CloseReason::ProtocolError(_))
    ));
    let (_, sent, _) = raw_server(
        plaintext_server(),
        &[
            "<stream:stream to='im.example.com' version='1.0' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
        ],
    );
    assert!(sent.contains("<invalid-namespace"), "{sent}");
    let (_, sent, _) = raw_server(
        plaintext_server(),
        &[
            "<stream:stream to='im.example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        ],
    );
    assert!(sent.contains("<unsupported-version"), "{sent}");
    let (_, sent, _) = raw_server(
        plaintext_server(),
        &[
            "<stream:stream from='not a jid@@' to='im.example.com' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        ],
    );
    assert!(sent.contains("<invalid-from"), "{sent}");
    let (_, sent, _) = raw_server(plaintext_server(), &["<garbage"]);
    assert!(!sent.contains("<features"), "{sent}");
}

#[test]
fn stanzas_before_authentication_are_not_authorized() {
    let (server, sent, _) = raw_server(
        plaintext_server(),
        &[
            HEADER,
            "<message to='romeo@example.net'><body>x</body></message>",
        ],
    );
    assert!(
        sent.contains("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{sent}"
    );
    assert!(server.is_closed());
}

#[test]
fn server_starttls_injection_is_fatal() {
    let mut config = server_config();
    config.tls = TlsPolicy::Required;
    let (server, sent, _) = raw_server(
        config,
        &[
            HEADER,
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAB4</auth>",
        ],
    );
    assert!(!sent.contains("<proceed"), "{sent}");
    assert!(!sent.contains("[TLS]"));
    assert!(sent.contains("<policy-violation"), "{sent}");
    assert!(server.is_closed());
}

#[test]
fn bind_conflict_falls_back_to_a_generated_resource() {
    let mut client = client_config();
    client.resource = Some("balcony".into());
    let server = ServerStream::new(
        server_config(),
        SeededEntropy::new(2),
        backend().with_taken("juliet@im.example.com/balcony"),
    );
    let mut pair = Pair::new(ClientStream::new(client, SeededEntropy::new(1)), server);
    pair.start();
    pair.drive();
    let bound = negotiated_jid(&pair.client_events).expect("negotiated after the retry");
    assert!(
        bound.starts_with("juliet@im.example.com/") && !bound.ends_with("/balcony"),
        "{bound}"
    );
    assert!(pair.log_text().contains("<conflict"));
}

#[test]
fn requested_resource_is_bound_and_invalid_one_is_refused() {
    let mut client = client_config();
    client.resource = Some("balcony".into());
    let pair = run(client, server_config());
    assert_eq!(
        negotiated_jid(&pair.client_events).as_deref(),
        Some("juliet@im.example.com/balcony")
    );

    let mut client = ClientStream::new(client_config(), SeededEntropy::new(1));
    let mut config = client_config();
    config.resource = Some("x".repeat(2000));
    let mut bad = ClientStream::new(config, SeededEntropy::new(1));
    assert!(matches!(
        bad.start(Instant::ZERO, Transport::Plain),
        Err(xmpp_stream::UsageError::InvalidConfig(_))
    ));
    assert!(client.start(Instant::ZERO, Transport::Plain).is_ok());

    // The server refuses an invalid resourcepart with bad-request and keeps the stream.
    let plain = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>";
    let long = format!(
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{}</resource></bind></iq>",
        "x".repeat(2000)
    );
    let good = "<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>";
    let (server, sent, _) = raw_server(plaintext_server(), &[HEADER, plain, HEADER, &long, good]);
    assert!(sent.contains("<success"), "{sent}");
    assert!(
        sent.contains("<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
        "{sent}"
    );
    assert_eq!(
        server.jid().map(ToString::to_string).as_deref(),
        Some("juliet@im.example.com/balcony")
    );
}

#[test]
fn mandatory_legacy_session_is_negotiated() {
    let mut pair = default_pair();
    pair.set_tamper(|direction, bytes| {
        let optional: &[u8] =
            b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>";
        if direction == Direction::ToClient {
            if let Some(at) = bytes.windows(optional.len()).position(|w| w == optional) {
                bytes.splice(
                    at..at + optional.len(),
                    b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>"
                        .iter()
                        .copied(),
                );
            }
        }
    });
    pair.start();
    pair.drive();
    assert!(pair.client.is_negotiated());
    assert!(
        pair.log_text()
            .contains("<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
    );
}

#[test]
fn spoofed_from_is_a_stream_error() {
    let mut pair = default_pair();
    pair.start();
    pair.drive();
    let spoofed = Element::builder("message", "jabber:client")
        .attr("from".try_into().unwrap(), "romeo@example.net/orchard")
        .attr("to".try_into().unwrap(), "nurse@example.net")
        .build();
    pair.client.send_stanza(pair.now, &spoofed).unwrap();
    pair.drive();
    assert!(
        matches!(closed(&pair.server_events), Some(CloseReason::ProtocolError(e)) if e.condition() == StreamErrorCondition::InvalidFrom)
    );
    assert!(
        matches!(closed(&pair.client_events), Some(CloseReason::StreamError(e)) if e.condition == StreamErrorCondition::InvalidFrom)
    );
    assert!(
        !pair
            .server_events
            .iter()
            .any(|e| matches!(e, Event::Stanza(_)))
    );
}

#[test]
fn malformed_to_gets_jid_malformed() {
    let mut pair = default_pair();
    pair.start();
    pair.drive();
    pair.client
        .send_stanza(pair.now, &message("@@bad", "x"))
        .unwrap();
    pair.drive();
    assert!(
        !pair
            .server_events
            .iter()
            .any(|e| matches!(e, Event::Stanza(_)))
    );
    let reply = pair.client_events.iter().find_map(|e| match e {
        Event::Stanza(s) => Some(s.clone()),
        _ => None,
    });
    let reply = reply.expect("error reply");
    assert_eq!(reply.attr("type"), Some("error"));
    assert!(
        reply
            .get_child("error", "jabber:client")
            .unwrap()
            .has_child("jid-malformed", "urn:ietf:params:xml:ns:xmpp-stanzas")
    );
    // The malformed address is not written back as the reply's `from`.
    assert_eq!(reply.attr("from"), None);
}

#[test]
fn stanzas_sent_early_are_queued_not_leaked() {
    let mut pair = default_pair();
    pair.start();
    pair.client
        .send_stanza(pair.now, &message("romeo@example.net", "early"))
        .unwrap();
    pair.drive();
    let negotiated_at = pair
        .server_events
        .iter()
        .position(|e| matches!(e, Event::Negotiated { .. }))
        .unwrap();
    let stanza_at = pair
        .server_events
        .iter()
        .position(|e| matches!(e, Event::Stanza(_)))
        .unwrap();
    assert!(stanza_at > negotiated_at);
    let text = pair.log_text();
    let bind = text.find("xmpp-bind").unwrap();
    assert!(text.find("early").unwrap() > bind, "never before binding");
    // The server refuses to send before negotiation.
    let mut pair = default_pair();
    pair.start();
    assert_eq!(
        pair.server
            .send_stanza(pair.now, &message("juliet@im.example.com", "x")),
        Err(xmpp_stream::UsageError::NotNegotiated)
    );
}

#[test]
fn usage_errors_change_nothing() {
    let mut pair = default_pair();
    pair.start();
    assert_eq!(
        pair.client.start(pair.now, Transport::Plain),
        Err(xmpp_stream::UsageError::AlreadyStarted)
    );
    assert_eq!(
        pair.client.tls_established(pair.now, vec![]),
        Err(xmpp_stream::UsageError::NotExpectingTls)
    );
    let not_a_stanza = Element::bare("foo", "urn:example");
    assert!(matches!(
        pair.client.send_stanza(pair.now, &not_a_stanza),
        Err(xmpp_stream::UsageError::InvalidStanza(_))
    ));
    pair.drive();
    assert!(pair.client.is_negotiated(), "nothing was disturbed");
}

#[test]
fn negotiation_deadline() {
    let mut pair = default_pair();
    pair.set_tamper(|direction, bytes| {
        if direction == Direction::ToClient {
            bytes.clear();
        }
    });
    pair.start();
    pair.drive();
    pair.advance(Duration::from_secs(61));
    assert_eq!(
        closed(&pair.client_events),
        Some(&CloseReason::Timeout(xmpp_stream::Timer::Negotiation))
    );
    assert!(pair.log_text().contains("<connection-timeout"));
}

#[test]
fn close_deadline_and_keepalive() {
    let mut pair = default_pair();
    pair.start();
    pair.drive();
    let before = pair.log.len();
    pair.advance(Duration::from_secs(61));
    let keepalives = pair.log[before..]
        .iter()
        .filter(|e| matches!(e, xmpp_stream::pair::LogEntry::Sent { bytes, .. } if bytes.as_slice() == b" "))
        .count();
    assert!(keepalives >= 2, "both sides keep the idle stream alive");
    pair.set_tamper(|direction, bytes| {
        if direction == Direction::ToClient {
            bytes.clear();
        }
    });
    pair.client.close(pair.now).unwrap();
    pair.drive();
    assert!(!pair.client.is_closed(), "waits for the server's close");
    pair.advance(Duration::from_secs(11));
    assert_eq!(
        closed(&pair.client_events),
        Some(&CloseReason::Timeout(xmpp_stream::Timer::Close))
    );
}

#[test]
fn see_other_host_is_a_redirect() {
    let mut pair = default_pair();
    pair.start();
    pair.drive();
    pair.server
        .close_with_error(
            pair.now,
            xmpp_stream::StreamError::see_other_host("other.example:5222"),
        )
        .unwrap();
    pair.drive();
    assert!(pair.client_events.contains(&Event::Redirect {
        to: "other.example:5222".parse().unwrap()
    }));
    assert!(
        matches!(closed(&pair.client_events), Some(CloseReason::StreamError(e)) if e.condition == StreamErrorCondition::SeeOtherHost)
    );
}

#[test]
fn server_domain_must_match() {
    let pair = run(
        ClientConfig::new(jid("juliet@elsewhere.example"), "x"),
        server_config(),
    );
    assert!(
        matches!(closed(&pair.client_events), Some(CloseReason::StreamError(e)) if e.condition == StreamErrorCondition::HostUnknown)
    );
}

#[test]
fn protocol_errors_are_sticky() {
    let mut client = ClientStream::new(client_config(), SeededEntropy::new(1));
    client.start(Instant::ZERO, Transport::Plain).unwrap();
    let first = client.handle_input(Instant::ZERO, b"<<<").unwrap_err();
    assert_eq!(
        client.handle_input(Instant::ZERO, b"<stream:stream>"),
        Err(first.clone())
    );
    let outputs: Vec<Output> = std::iter::from_fn(|| client.poll_output()).collect();
    assert!(matches!(
        outputs.last(),
        Some(Output::Event(Event::Closed { .. }))
    ));
    assert!(client.is_closed());
    assert_eq!(
        client.send_stanza(Instant::ZERO, &message("a@b", "x")),
        Err(xmpp_stream::UsageError::Closed)
    );
}

/// Host-added feature rows (`ServerConfig::extra_features`) are listed through the same flag
/// gate as the built-in rows: a post-authentication row reaches the client's `Negotiated`
/// event, a pre-authentication one (in-band registration) is listed before SASL only.
#[test]
fn host_feature_rows_are_listed_by_their_flags() {
    use xmpp_stream::HostFeature;
    let ver = Element::bare("ver", "urn:xmpp:features:rosterver");
    let sub = Element::bare("sub", "urn:xmpp:features:pre-approval");
    let register = Element::bare("register", "http://jabber.org/features/iq-register");
    let mut server = ServerConfig::new(jid("im.example.com"));
    server.extra_features = vec![
        HostFeature::after_auth(ver.clone()),
        HostFeature::before_auth(register.clone()),
        HostFeature::after_auth(sub.clone()),
    ];
    let mut pair = pair_with(
        ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30"),
        server,
    );
    pair.start();
    pair.drive();
    let extra = pair
        .client_events
        .iter()
        .find_map(|e| match e {
            Event::Negotiated { extra_features, .. } => Some(extra_features.clone()),
            _ => None,
        })
        .expect("negotiated");
    assert_eq!(extra, vec![ver, sub]);
    let log = pair.log_text();
    let register_listed = log.matches("jabber.org/features/iq-register").count();
    // Listed on the streams before authentication (before and after TLS), never after.
    assert_eq!(register_listed, 2, "{log}");
}

/// RFC 6120 §4.9.3.19: a server configured to redirect sends `see-other-host` in answer to
/// the client's header, on the plaintext stream or on the encrypted one; the client reports
/// it typed (`Event::Redirect`) before `Closed`, and nothing is authenticated.
#[test]
fn configured_redirect_before_and_after_tls() {
    use xmpp_stream::{HostPort, Redirect};
    for after_tls in [false, true] {
        let mut server = ServerConfig::new(jid("im.example.com"));
        server.redirect = Some(Box::new(Redirect {
            to: "other.example.com:5223".parse::<HostPort>().unwrap(),
            after_tls,
        }));
        let mut pair = pair_with(
            ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30"),
            server,
        );
        pair.start();
        pair.drive();
        let redirect = pair.client_events.iter().position(|e| {
            matches!(e, Event::Redirect { to } if to.host == "other.example.com" && to.port == Some(5223))
        });
        let redirect = redirect.expect("redirect reported");
        let secured = pair.client_events.iter().position(|e| *e == Event::Secured);
        assert_eq!(
            secured.is_some_and(|s| s < redirect),
            after_tls,
            "after_tls={after_tls}"
        );
        assert!(matches!(
            closed(&pair.client_events),
            Some(CloseReason::StreamError(e)) if e.condition == StreamErrorCondition::SeeOtherHost
        ));
        assert!(mechanism(&pair.client_events).is_none());
    }
}
