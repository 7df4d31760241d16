//! SASL EXTERNAL for clients (XEP-0178 §2), both ends through the `Pair`: the server offers it
//! once the host gave the client's verified certificate, maps the certificate's XmppAddr to
//! an account, and answers a wrong identity or authorization identity with the exact
//! condition.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sasl_common;

use sasl_common::{auth_failed, authenticated, closed};

use xmpp_sasl::Condition;
use xmpp_stream::identity::PresentedId;
use xmpp_stream::pair::{Direction, LogEntry, Pair};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Mechanism, MemoryBackend, SeededEntropy, ServerConfig,
    ServerStream, TlsPolicy,
};

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn accounts() -> MemoryBackend {
    MemoryBackend::new()
        .with_user("juliet", "r0m30myr0m30", 4096)
        .with_user("nurse", "n0rse", 4096)
}

/// A client that logs in with its certificate only (EXTERNAL listed alone).
fn certificate_client(account: &str) -> ClientConfig {
    let mut config = ClientConfig::new(jid(account), "");
    config.mechanisms = vec![Mechanism::External];
    config
}

/// Run the pair with the server holding `certificate` (None: no client certificate).
fn run(client: ClientConfig, server: ServerConfig, certificate: Option<Vec<PresentedId>>) -> Pair {
    let mut server = ServerStream::new(server, SeededEntropy::new(2), accounts());
    if let Some(ids) = certificate {
        server.set_peer_identities(ids);
    }
    let mut pair = Pair::new(ClientStream::new(client, SeededEntropy::new(1)), server);
    pair.start();
    pair.drive();
    pair
}

fn xmpp_addr(s: &str) -> PresentedId {
    PresentedId::XmppAddr(s.into())
}

/// Everything one side sent, as text.
fn sent(pair: &Pair, direction: Direction) -> String {
    pair.log
        .iter()
        .filter_map(|entry| match entry {
            LogEntry::Sent {
                direction: d,
                bytes,
                ..
            } if *d == direction => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn server() -> ServerConfig {
    ServerConfig::new(jid("im.example.com"))
}

#[test]
fn xep0178_certificate_logs_in_as_its_xmpp_addr() {
    let pair = run(
        certificate_client("juliet@im.example.com"),
        server(),
        Some(vec![
            PresentedId::Dns("laptop.example.net".into()),
            xmpp_addr("juliet@im.example.com"),
        ]),
    );
    let to_client = sent(&pair, Direction::ToClient);
    // Offered first, after TLS only (the first features list is STARTTLS alone).
    let offers: Vec<&str> = to_client.split("<mechanisms").skip(1).collect();
    assert_eq!(offers.len(), 1, "{to_client}");
    assert!(
        offers[0].starts_with(" xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL<"),
        "{to_client}"
    );
    // The client sends no authorization identity: the `=` of an empty one.
    let to_server = sent(&pair, Direction::ToServer);
    assert!(
        to_server.contains("mechanism='EXTERNAL'>=</auth>"),
        "{to_server}"
    );
    let juliet = jid("juliet@im.example.com");
    assert_eq!(
        authenticated(&pair.server_events),
        Some((juliet.clone(), Mechanism::External))
    );
    assert_eq!(
        authenticated(&pair.client_events),
        Some((juliet.clone(), Mechanism::External))
    );
    assert_eq!(pair.server.account(), Some(&juliet));
    assert!(pair.client.is_negotiated() && pair.server.is_negotiated());
}

#[test]
fn xep0178_authzid_chooses_among_the_certificate_accounts() {
    let certificate = vec![
        xmpp_addr("juliet@im.example.com"),
        xmpp_addr("nurse@im.example.com"),
    ];
    // Two accounts and no authorization identity: the server cannot choose.
    let pair = run(
        certificate_client("nurse@im.example.com"),
        server(),
        Some(certificate.clone()),
    );
    assert_eq!(
        closed(&pair.client_events),
        Some(&auth_failed(Condition::NotAuthorized))
    );
    // The client names its account: that one.
    let mut client = certificate_client("nurse@im.example.com");
    client.external_authzid = true;
    let pair = run(client, server(), Some(certificate));
    assert!(
        // base64 of nurse@im.example.com
        sent(&pair, Direction::ToServer)
            .contains("mechanism='EXTERNAL'>bnVyc2VAaW0uZXhhbXBsZS5jb20=</auth>")
    );
    assert_eq!(pair.server.account(), Some(&jid("nurse@im.example.com")));
    assert!(pair.client.is_negotiated());
}

#[test]
fn xep0178_authzid_the_certificate_does_not_name_is_invalid_authzid() {
    let mut client = certificate_client("nurse@im.example.com");
    client.external_authzid = true;
    let pair = run(
        client,
        server(),
        Some(vec![xmpp_addr("juliet@im.example.com")]),
    );
    assert!(
        sent(&pair, Direction::ToClient).contains("<invalid-authzid/>"),
        "{}",
        sent(&pair, Direction::ToClient)
    );
    assert_eq!(
        closed(&pair.client_events),
        Some(&auth_failed(Condition::InvalidAuthzid))
    );
    assert_eq!(pair.server.account(), None);
}

#[test]
fn xep0178_certificate_of_no_account_here_is_not_authorized() {
    for certificate in [
        // Another domain's account, a server name, a resource, an unknown account.
        vec![xmpp_addr("juliet@example.org")],
        vec![
            PresentedId::Dns("im.example.com".into()),
            xmpp_addr("im.example.com"),
        ],
        vec![xmpp_addr("juliet@im.example.com/balcony")],
        vec![xmpp_addr("tybalt@im.example.com")],
        vec![],
    ] {
        let pair = run(
            certificate_client("juliet@im.example.com"),
            server(),
            Some(certificate.clone()),
        );
        assert!(
            sent(&pair, Direction::ToClient).contains("<not-authorized/>"),
            "{certificate:?}"
        );
        assert_eq!(
            closed(&pair.client_events),
            Some(&auth_failed(Condition::NotAuthorized)),
            "{certificate:?}"
        );
        assert_eq!(pair.server.account(), None);
    }
}

#[test]
fn xep0178_no_external_without_a_certificate_or_before_tls() {
    // No certificate: EXTERNAL is not offered, the client falls back to its password.
    let mut client = ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30");
    client.mechanisms = vec![Mechanism::External, Mechanism::ScramSha256];
    let pair = run(client.clone(), server(), None);
    assert!(!sent(&pair, Direction::ToClient).contains("EXTERNAL"));
    assert_eq!(
        authenticated(&pair.server_events).map(|(_, m)| m),
        Some(Mechanism::ScramSha256)
    );
    // A certificate, but no TLS on this stream: not offered, and refused when tried.
    let mut plain_server = server();
    plain_server.tls = TlsPolicy::Disabled;
    client.tls = TlsPolicy::Disabled;
    let pair = run(
        client,
        plain_server.clone(),
        Some(vec![xmpp_addr("juliet@im.example.com")]),
    );
    assert!(!sent(&pair, Direction::ToClient).contains("EXTERNAL"));
    assert_eq!(
        authenticated(&pair.server_events).map(|(_, m)| m),
        Some(Mechanism::ScramSha256)
    );
    let mut server = ServerStream::new(plain_server, SeededEntropy::new(2), accounts());
    server.set_peer_identities(vec![xmpp_addr("juliet@im.example.com")]);
    let now = xmpp_stream::Instant::ZERO;
    server.start(now, xmpp_stream::Transport::Plain).unwrap();
    server
        .handle_input(
            now,
            b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
              to='im.example.com' version='1.0'>\
              <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
        )
        .unwrap();
    let mut out = String::new();
    while let Some(output) = server.poll_output() {
        if let xmpp_stream::Output::Transmit(bytes) = output {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert!(!out.contains("<mechanism>EXTERNAL"), "{out}");
    assert!(out.contains("<invalid-mechanism/>"), "{out}");
    assert_eq!(server.account(), None);
}
