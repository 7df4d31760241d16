//! Both drivers, both roles, on loopback with real TLS and no external server: our client
//! against our server, STARTTLS and direct TLS, SCRAM-SHA-512-PLUS bound with the
//! `tls-exporter` data each side got from its own `rustls` session (they agree only if the
//! drivers extract it correctly), bind, a message echoed back, clean close. Then the same
//! `Connection` and `AsyncConnection` for both ends of a XEP-0114 component stream (plain TCP):
//! handshake, a stanza each way, clean close, and a wrong secret refused.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use minidom::Element;
use rustls::pki_types::CertificateDer;
use xmpp_host::OsEntropy;
use xmpp_host::asynchronous::AsyncConnection;
use xmpp_host::blocking::{ClientOptions, ComponentOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config, server_config};
use xmpp_stream::{
    BareJid, ClientConfig, CloseReason, ComponentConfig, ComponentServerConfig,
    ComponentServerStream, ComponentStream, Event, Mechanism, MemoryBackend, MemoryComponents,
    ServerConfig, ServerStream, StreamErrorCondition,
};

const WAIT: Duration = Duration::from_secs(10);

struct Tls {
    server: Arc<rustls::ServerConfig>,
    leaf: CertificateDer<'static>,
    client: Arc<rustls::ClientConfig>,
}

fn tls() -> Tls {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (server, leaf) = server_config(
        cert_pem.as_bytes(),
        certified.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let client = client_config(&Trust::Pem(cert_pem.into_bytes()), Versions::Any).unwrap();
    Tls {
        server,
        leaf,
        client,
    }
}

fn server_machine() -> ServerStream {
    let config = ServerConfig::new(BareJid::new("localhost").unwrap());
    let accounts = MemoryBackend::new().with_user("alice", "pw-a", 4096);
    ServerStream::new(config, OsEntropy::new(), accounts)
}

fn client_config_for_alice() -> ClientConfig {
    let mut config = ClientConfig::new(BareJid::new("alice@localhost").unwrap(), "pw-a");
    config.resource = Some("loop".to_owned());
    config
}

fn message(to: &str, body: &str) -> Element {
    Element::builder("message", "jabber:client")
        .attr("to".try_into().unwrap(), to)
        .append(
            Element::builder("body", "jabber:client")
                .append(body)
                .build(),
        )
        .build()
}

fn body(stanza: &Element) -> Option<String> {
    stanza.get_child("body", "jabber:client").map(Element::text)
}

#[test]
fn blocking_client_and_server_over_starttls_and_direct_tls() {
    for direct_tls in [false, true] {
        let tls = tls();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let (server_tls, leaf) = (tls.server.clone(), tls.leaf.clone());
        let server = std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let mut conn =
                Connection::accept(socket, server_machine(), server_tls, leaf, direct_tls).unwrap();
            // Echo every message back to its sender until the stream closes.
            let mut seen = Vec::new();
            while let Some(event) = conn.next_event(WAIT).unwrap() {
                if let Event::Stanza(stanza) = &event {
                    let jid = conn.machine().jid().unwrap().to_string();
                    let text = body(stanza).unwrap_or_default();
                    conn.send(&message(&jid, &format!("echo: {text}"))).unwrap();
                }
                seen.push(event);
            }
            seen
        });

        let mut options = ClientOptions::new(addr, "localhost", tls.client.clone());
        options.direct_tls = direct_tls;
        let mut client =
            Connection::connect(&options, client_config_for_alice(), OsEntropy::new()).unwrap();
        let mut mechanism = None;
        let jid = loop {
            match client.next_event(WAIT).unwrap() {
                Some(Event::Authenticated { mechanism: m, .. }) => mechanism = Some(m),
                Some(Event::Negotiated { jid, .. }) => break jid,
                Some(Event::Closed { reason }) => panic!("closed: {reason:?}"),
                _ => {}
            }
        };
        assert_eq!(jid.to_string(), "alice@localhost/loop");
        // Channel binding with tls-exporter: both sides computed the same exporter value.
        assert_eq!(
            mechanism,
            Some(Mechanism::ScramSha512Plus),
            "direct TLS {direct_tls}"
        );
        client.send(&message("localhost", "hi")).unwrap();
        let echo = client.wait_stanza(WAIT, |s| s.name() == "message").unwrap();
        assert_eq!(body(&echo).as_deref(), Some("echo: hi"));
        assert_eq!(client.close(WAIT).unwrap(), CloseReason::Graceful);
        let seen = server.join().unwrap();
        assert!(seen.iter().any(|e| matches!(e, Event::Negotiated { .. })));
        assert!(seen.iter().any(|e| matches!(
            e,
            Event::Closed {
                reason: CloseReason::Graceful
            }
        )));
    }
}

#[test]
fn async_client_and_server_under_tokio() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for direct_tls in [false, true] {
            let tls = tls();
            let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .unwrap();
            let addr: SocketAddr = listener.local_addr().unwrap();
            let (server_tls, leaf) = (tls.server.clone(), tls.leaf.clone());
            let server = tokio::spawn(async move {
                let (socket, _) = listener.accept().await.unwrap();
                // Boxed: the machine makes this future large (clippy::large_futures).
                let mut conn = Box::pin(AsyncConnection::accept(
                    socket,
                    server_machine(),
                    server_tls,
                    leaf,
                    direct_tls,
                ))
                .await
                .unwrap();
                let mut closed = None;
                while let Some(event) = conn.next_event(WAIT).await.unwrap() {
                    match event {
                        Event::Stanza(stanza) => {
                            let jid = conn.machine().jid().unwrap().to_string();
                            let text = body(&stanza).unwrap_or_default();
                            conn.send(&message(&jid, &format!("echo: {text}")))
                                .await
                                .unwrap();
                        }
                        Event::Closed { reason } => closed = Some(reason),
                        _ => {}
                    }
                }
                closed
            });
            let mut client = AsyncConnection::connect(
                addr,
                "localhost",
                direct_tls,
                tls.client.clone(),
                client_config_for_alice(),
                OsEntropy::new(),
            )
            .await
            .unwrap();
            let jid = client.negotiate(WAIT).await.unwrap();
            assert_eq!(jid.to_string(), "alice@localhost/loop");
            client.send(&message("localhost", "hello")).await.unwrap();
            let echo = loop {
                match client.next_event(WAIT).await.unwrap() {
                    Some(Event::Stanza(stanza)) => break stanza,
                    Some(Event::Closed { reason }) => panic!("closed: {reason:?}"),
                    _ => {}
                }
            };
            assert_eq!(body(&echo).as_deref(), Some("echo: hello"));
            assert_eq!(client.close(WAIT).await.unwrap(), CloseReason::Graceful);
            assert_eq!(server.await.unwrap(), Some(CloseReason::Graceful));
        }
    });
}

#[test]
fn wrong_password_is_a_failure_event_not_a_hang() {
    let tls = tls();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let (server_tls, leaf) = (tls.server.clone(), tls.leaf.clone());
    let server = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut conn =
            Connection::accept(socket, server_machine(), server_tls, leaf, false).unwrap();
        while conn.next_event(WAIT).unwrap().is_some() {}
    });
    let options = ClientOptions::new(addr, "localhost", tls.client.clone());
    let config = ClientConfig::new(BareJid::new("alice@localhost").unwrap(), "wrong");
    let mut client = Connection::connect(&options, config, OsEntropy::new()).unwrap();
    match client.negotiate(WAIT) {
        Err(xmpp_host::Error::Closed(reason)) => assert!(
            matches!(&*reason, CloseReason::AuthenticationFailed { condition, .. } if condition.to_string() == "not-authorized"),
            "{reason:?}"
        ),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
}

const COMPONENT: &str = "comp.localhost";

fn component_server_machine() -> ComponentServerStream {
    let secrets =
        MemoryComponents::new().with_component(BareJid::new(COMPONENT).unwrap(), "comp-secret");
    ComponentServerStream::new(ComponentServerConfig::new(), OsEntropy::new(), secrets)
}

fn component_config(secret: &str) -> ComponentConfig {
    ComponentConfig::new(BareJid::new(COMPONENT).unwrap(), secret)
}

/// A component stanza from `bot@comp.localhost` to `to`.
fn component_message(to: &str, body: &str) -> Element {
    format!(
        "<message xmlns='jabber:component:accept' from='bot@comp.localhost' to='{to}'>\
         <body>{body}</body></message>"
    )
    .parse()
    .unwrap()
}

/// The body of a stanza as a component stream carries it (in `jabber:component:accept`).
fn component_body(stanza: &Element) -> Option<String> {
    stanza
        .get_child("body", "jabber:component:accept")
        .map(Element::text)
}

#[test]
fn blocking_component_and_component_server() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let options = ComponentOptions::new(listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        // The component with the right secret: echo its message back, until it closes.
        let (socket, _) = listener.accept().unwrap();
        let mut conn = Connection::accept_component(socket, component_server_machine()).unwrap();
        let domain = conn.negotiate(WAIT).unwrap();
        let stanza = conn.wait_stanza(WAIT, |s| s.name() == "message").unwrap();
        let from = stanza.attr("from").unwrap_or_default().to_owned();
        let reply = message(
            &from,
            &format!("echo: {}", component_body(&stanza).unwrap_or_default()),
        );
        conn.send(&reply).unwrap();
        let closed = loop {
            match conn.next_event(WAIT).unwrap() {
                Some(Event::Closed { reason }) => break reason,
                Some(_) => {}
                None => panic!("no Closed event"),
            }
        };
        // The one with a wrong secret.
        let (socket, _) = listener.accept().unwrap();
        let mut conn = Connection::accept_component(socket, component_server_machine()).unwrap();
        let refused = conn.negotiate(WAIT);
        (domain, stanza, closed, refused)
    });

    let mut component =
        Connection::connect_component_recorded(&options, component_config("comp-secret"), "loop")
            .unwrap();
    let domain = component.negotiate(WAIT).unwrap();
    assert_eq!(domain.as_str(), COMPONENT);
    assert!(
        component
            .machine()
            .as_component()
            .is_some_and(ComponentStream::is_negotiated)
    );
    component
        .send(&component_message("alice@localhost", "hi"))
        .unwrap();
    let echo = component
        .wait_stanza(WAIT, |s| s.name() == "message")
        .unwrap();
    assert_eq!(echo.ns(), "jabber:component:accept");
    assert_eq!(echo.attr("to"), Some("bot@comp.localhost"));
    assert_eq!(component_body(&echo).as_deref(), Some("echo: hi"));
    assert_eq!(component.close(WAIT).unwrap(), CloseReason::Graceful);
    let transcript = component.transcript().unwrap();
    assert!(
        transcript.contains(&format!("E component: ComponentNegotiated {COMPONENT}")),
        "{transcript}"
    );

    let mut wrong =
        Connection::connect_component(&options, component_config("wrong"), OsEntropy::new())
            .unwrap();
    let refused = wrong.negotiate(WAIT);
    assert!(wrong.transcript().is_none());

    let (server_domain, stanza, closed, server_refused) = server.join().unwrap();
    assert_eq!(server_domain.as_str(), COMPONENT);
    assert_eq!(stanza.attr("from"), Some("bot@comp.localhost"));
    assert_eq!(closed, CloseReason::Graceful);
    // The server sent not-authorized; the component received it.
    match refused {
        Err(xmpp_host::Error::Closed(reason)) => assert!(
            matches!(&*reason, CloseReason::StreamError(e) if e.condition == StreamErrorCondition::NotAuthorized),
            "{reason:?}"
        ),
        other => panic!("{other:?}"),
    }
    match server_refused {
        Err(xmpp_host::Error::Closed(reason)) => assert!(
            matches!(&*reason, CloseReason::ProtocolError(e) if e.condition() == StreamErrorCondition::NotAuthorized),
            "{reason:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn async_component_and_component_server_under_tokio() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let options = ComponentOptions::new(listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            // Boxed: the machine makes this future large (clippy::large_futures).
            let mut conn = Box::pin(AsyncConnection::accept_component(
                socket,
                component_server_machine(),
            ))
            .await
            .unwrap();
            let domain = conn.negotiate(WAIT).await.unwrap();
            // Echo every message back to its sender until the stream closes.
            let mut closed = None;
            while let Some(event) = conn.next_event(WAIT).await.unwrap() {
                match event {
                    Event::Stanza(stanza) => {
                        let from = stanza.attr("from").unwrap_or_default().to_owned();
                        let text = component_body(&stanza).unwrap_or_default();
                        conn.send(&message(&from, &format!("echo: {text}")))
                            .await
                            .unwrap();
                    }
                    Event::Closed { reason } => closed = Some(reason),
                    _ => {}
                }
            }
            (domain, closed)
        });

        let config = component_config("comp-secret");
        let mut component = Box::pin(AsyncConnection::connect_component_recorded(
            &options, config, "loop",
        ))
        .await
        .unwrap();
        assert_eq!(component.negotiate(WAIT).await.unwrap().as_str(), COMPONENT);
        component
            .send(&component_message("alice@localhost", "hello"))
            .await
            .unwrap();
        let echo = loop {
            match component.next_event(WAIT).await.unwrap() {
                Some(Event::Stanza(stanza)) => break stanza,
                Some(Event::Closed { reason }) => panic!("closed: {reason:?}"),
                _ => {}
            }
        };
        assert_eq!(echo.attr("to"), Some("bot@comp.localhost"));
        assert_eq!(component_body(&echo).as_deref(), Some("echo: hello"));
        assert_eq!(component.close(WAIT).await.unwrap(), CloseReason::Graceful);
        let transcript = component.transcript().unwrap();
        assert!(
            transcript.contains("H component: send <message "),
            "{transcript}"
        );
        let (domain, closed) = server.await.unwrap();
        assert_eq!(domain.as_str(), COMPONENT);
        assert_eq!(closed, Some(CloseReason::Graceful));
    });
}
