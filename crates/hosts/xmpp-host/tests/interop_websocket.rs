//! Our client over WebSocket (RFC 7395, `AsyncConnection::connect_websocket`, offering
//! `Sec-WebSocket-Protocol: xmpp`) against real Prosody 0.12 (`mod_websocket` on its `http`
//! module) and ejabberd 23.01 (`ejabberd_http_ws`), each started on loopback from its own
//! temp config by `xmpp-testpeers` (`PeerOptions::with_websocket`). Alice logs in over
//! WebSocket with SCRAM, Bob over TCP with STARTTLS; they exchange directed presence and a
//! message each way; Alice closes with `<close/>` and gets the server's. Every wait is bounded.
//!
//! The same over `wss:` (`PeerOptions::with_secure_websocket`): the peer serves a certificate
//! for `localhost` issued by a fresh `TestCa`, which is all our client trusts, so the TLS
//! under the WebSocket is really checked (name and chain); the TLS session's channel bindings
//! go to the machine as on direct TLS.
//!
//! Run with `XMPP_INTEROP=require cargo test -p xmpp-host --test interop_websocket`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use minidom::Element;
use xmpp_host::asynchronous::AsyncConnection;
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_host::websocket::WebSocketOptions;
use xmpp_host::{Error, OsEntropy};
use xmpp_stream::{BareJid, ClientConfig, ClientStream, CloseReason, Event, FullJid, TlsPolicy};
use xmpp_testpeers::{DOMAIN, PeerKind, PeerOptions, PeerServer, TestCa, start_for_test_with};

const WAIT: Duration = Duration::from_secs(10);
const NS: &str = "jabber:client";

type Conn = AsyncConnection<ClientStream>;

/// Run until negotiated, returning the bound JID and the SASL mechanism that succeeded.
async fn login(conn: &mut Conn, server: &PeerServer) -> (FullJid, String) {
    let mut mechanism = None;
    loop {
        match conn.next_event(WAIT).await {
            Ok(Some(Event::Authenticated { mechanism: m, .. })) => {
                mechanism = Some(m.to_string());
            }
            Ok(Some(Event::Negotiated { jid, .. })) => {
                return (
                    jid,
                    mechanism.expect("Authenticated comes before Negotiated"),
                );
            }
            Ok(Some(Event::Closed { reason })) => {
                panic!("closed during login: {reason:?}\n{}", server.log_tail(30))
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("login did not finish\n{}", server.log_tail(30)),
        }
    }
}

/// The next stanza `accept` likes, within [`WAIT`].
async fn wait_stanza(conn: &mut Conn, what: &str, accept: impl Fn(&Element) -> bool) -> Element {
    loop {
        match conn.next_event(WAIT).await {
            Ok(Some(Event::Stanza(stanza))) if accept(&stanza) => return stanza,
            Ok(Some(Event::Closed { reason })) => panic!("closed waiting for {what}: {reason:?}"),
            Ok(Some(_)) => {}
            Ok(None) | Err(Error::Timeout) => panic!("no {what} arrived"),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

fn message(to: &FullJid, body: &str) -> Element {
    Element::builder("message", NS)
        .attr("to".try_into().unwrap(), to.to_string())
        .attr("type".try_into().unwrap(), "chat")
        .append(Element::builder("body", NS).append(body))
        .build()
}

fn is_message(body: &'static str) -> impl Fn(&Element) -> bool {
    move |s| {
        s.name() == "message" && s.get_child("body", NS).map(Element::text).as_deref() == Some(body)
    }
}

/// `ws:` or `wss:` under the WebSocket.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Ws,
    Wss,
}

async fn run(kind: PeerKind, transport: Transport) {
    let ca = TestCa::new("interop_websocket test CA").unwrap();
    let mut options = PeerOptions::new().with_certificate(ca.issue(DOMAIN).unwrap());
    options = match transport {
        Transport::Ws => options.with_websocket(),
        Transport::Wss => options.with_secure_websocket(),
    };
    let Some(server) = start_for_test_with(kind, &[("alice", "pw-a"), ("bob", "pw-b")], &options)
    else {
        return;
    };
    let (url, port) = match transport {
        Transport::Ws => (server.websocket_url(), server.websocket_port),
        Transport::Wss => (server.secure_websocket_url(), server.secure_websocket_port),
    };
    let (url, port) = url.zip(port).expect("asked for a WebSocket endpoint");
    let tls = client_config(&Trust::Pem(ca.pem().into_bytes()), Versions::Any).unwrap();
    let mut ws = WebSocketOptions::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), &url);
    let mut alice_config = ClientConfig::new(BareJid::new("alice@localhost").unwrap(), "pw-a");
    if transport == Transport::Ws {
        // `ws:` on loopback: no TLS anywhere, and the client must be told so, or it refuses
        // to authenticate (the default policy requires TLS).
        alice_config.tls = TlsPolicy::Disabled;
    } else {
        ws.tls = Some(tls.clone());
    }
    let mut alice = Conn::connect_websocket(&ws, alice_config, OsEntropy::new())
        .await
        .unwrap_or_else(|e| panic!("{kind}: WebSocket connect: {e}\n{}", server.log_tail(30)));
    let (alice_jid, mechanism) = login(&mut alice, &server).await;
    assert!(
        mechanism.starts_with("SCRAM-SHA-"),
        "{kind}: over {url}: authenticated with {mechanism}"
    );
    assert!(alice.machine().is_websocket());

    let bob_config = ClientConfig::new(BareJid::new("bob@localhost").unwrap(), "pw-b");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.starttls_port));
    let mut bob = Conn::connect(
        addr,
        &server.domain,
        false,
        tls,
        bob_config,
        OsEntropy::new(),
    )
    .await
    .unwrap();
    let (bob_jid, _) = login(&mut bob, &server).await;

    // Directed presence both ways (delivered without a subscription).
    let presence = |to: &FullJid| {
        Element::builder("presence", NS)
            .attr("to".try_into().unwrap(), to.to_string())
            .build()
    };
    alice.send(&presence(&bob_jid)).await.unwrap();
    let from_alice = alice_jid.to_string();
    wait_stanza(&mut bob, "Alice's presence", |s| {
        s.name() == "presence" && s.attr("from") == Some(&from_alice) && s.attr("type").is_none()
    })
    .await;
    bob.send(&presence(&alice_jid)).await.unwrap();
    let from_bob = bob_jid.to_string();
    wait_stanza(&mut alice, "Bob's presence", |s| {
        s.name() == "presence" && s.attr("from") == Some(&from_bob) && s.attr("type").is_none()
    })
    .await;

    // A message each way.
    alice
        .send(&message(&bob_jid, "over a WebSocket"))
        .await
        .unwrap();
    let got = wait_stanza(&mut bob, "Alice's message", is_message("over a WebSocket")).await;
    assert_eq!(got.attr("from"), Some(from_alice.as_str()), "{kind}");
    bob.send(&message(&alice_jid, "back over TCP"))
        .await
        .unwrap();
    let got = wait_stanza(&mut alice, "Bob's message", is_message("back over TCP")).await;
    assert_eq!(got.attr("from"), Some(from_bob.as_str()), "{kind}");

    // `<close/>` answered by the server's `<close/>`.
    let reason = alice.close(WAIT).await.unwrap();
    assert_eq!(
        reason,
        CloseReason::Graceful,
        "{kind}\n{}",
        server.log_tail(20)
    );
    // Bob sees Alice go unavailable (the server ends her directed presence).
    wait_stanza(&mut bob, "Alice's unavailable presence", |s| {
        s.name() == "presence"
            && s.attr("from") == Some(&from_alice)
            && s.attr("type") == Some("unavailable")
    })
    .await;
    let _ = bob.close(WAIT).await;
}

#[tokio::test]
async fn prosody_over_websocket() {
    run(PeerKind::Prosody, Transport::Ws).await;
}

#[tokio::test]
async fn ejabberd_over_websocket() {
    run(PeerKind::Ejabberd, Transport::Ws).await;
}

#[tokio::test]
async fn prosody_over_secure_websocket() {
    run(PeerKind::Prosody, Transport::Wss).await;
}

#[tokio::test]
async fn ejabberd_over_secure_websocket() {
    run(PeerKind::Ejabberd, Transport::Wss).await;
}
