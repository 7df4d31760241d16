//! Full negotiations through the in-memory `Pair`.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;

use minidom::Element;
use xmpp_stream::pair::{Direction, MemoryBackend, Pair, WireConfig};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, Event, Mechanism, SeededEntropy,
    ServerConfig, ServerStream, SessionFlags, StreamErrorCondition, TlsPolicy,
};

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn backend() -> MemoryBackend {
    MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096)
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
            message("romeo@example.net", "Art thou not Romeo?"),
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
            assert_eq!(condition, "not-authorized");
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
