//! RFC 6120 §4.9.3.19 end to end: an example server configured to redirect sends
//! `see-other-host`, and xmpp-host's client follows it to the named host with the same TLS
//! policy and certificate check, within a bound (a redirect loop ends in
//! `TooManyRedirects`, not a hang). The blocking and the tokio driver both, under the one
//! policy (`xmpp_host::Redirects`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{loopback, runtime_config};
use xmpp_host::Error;
use xmpp_host::asynchronous::AsyncConnection;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_server::{HubConfig, ServerHandle};
use xmpp_stream::{BareJid, ClientConfig, ClientStream, HostPort, Redirect};

const DOMAIN: &str = "localhost";

fn server(redirect: Option<Redirect>, tls: &xmpp_server::TlsMaterial) -> ServerHandle {
    let mut hub = HubConfig::new(BareJid::new(DOMAIN).unwrap()).with_user("alice", "alice-pw");
    hub.stream.redirect = redirect.map(Box::new);
    let mut config = runtime_config(hub, DOMAIN);
    config.tls = tls.clone();
    ServerHandle::spawn_with(loopback(), None, config).unwrap()
}

/// A server sending every client to `target` (by its loopback address).
fn redirecting_to(
    target: &ServerHandle,
    after_tls: bool,
    tls: &xmpp_server::TlsMaterial,
) -> ServerHandle {
    let to: HostPort = format!("127.0.0.1:{}", target.addr.port()).parse().unwrap();
    server(Some(Redirect { to, after_tls }), tls)
}

fn client(first: &ServerHandle, tls: &xmpp_server::TlsMaterial) -> (ClientOptions, ClientConfig) {
    let trust = client_config(
        &Trust::Pem(tls.cert_pem.clone().into_bytes()),
        Versions::Any,
    )
    .unwrap();
    let options = ClientOptions::new(first.addr, DOMAIN, trust);
    let config = ClientConfig::new(BareJid::new("alice@localhost").unwrap(), "alice-pw");
    (options, config)
}

fn follow(
    options: &ClientOptions,
    config: &ClientConfig,
    resolve: impl Fn(&HostPort) -> Result<SocketAddr, Error>,
) -> Result<(Connection<ClientStream>, xmpp_stream::FullJid), Error> {
    Connection::connect_following(options, config, 3, Duration::from_secs(10), resolve)
}

/// The tokio driver's [`follow`].
async fn follow_async(
    options: &ClientOptions,
    config: &ClientConfig,
    resolve: impl Fn(&HostPort) -> Result<SocketAddr, Error>,
) -> Result<(AsyncConnection<ClientStream>, xmpp_stream::FullJid), Error> {
    AsyncConnection::connect_following(options, config, 3, Duration::from_secs(10), resolve).await
}

/// The redirect's host is a loopback IP literal in these tests.
#[allow(clippy::unnecessary_wraps)] // the shape `resolve` takes
fn literal(to: &HostPort) -> Result<SocketAddr, Error> {
    Ok(SocketAddr::new(
        to.host.parse().unwrap(),
        to.port.unwrap_or(5222),
    ))
}

#[test]
fn redirect_before_and_after_tls_is_followed() {
    let tls = xmpp_server::TlsMaterial::self_signed(&[DOMAIN]).unwrap();
    let target = server(None, &tls);
    for after_tls in [false, true] {
        let first = redirecting_to(&target, after_tls, &tls);
        let (options, config) = client(&first, &tls);
        let (_conn, jid) = follow(&options, &config, literal).unwrap();
        assert_eq!(
            jid.to_bare().as_str(),
            "alice@localhost",
            "after_tls={after_tls}"
        );
    }
}

#[test]
fn a_redirect_loop_ends_at_the_bound() {
    let tls = xmpp_server::TlsMaterial::self_signed(&[DOMAIN]).unwrap();
    let looping = server(
        Some(Redirect {
            to: "again.localhost".parse().unwrap(),
            after_tls: true,
        }),
        &tls,
    );
    let (options, config) = client(&looping, &tls);
    let addr = looping.addr;
    let dialled = std::sync::atomic::AtomicUsize::new(0);
    let result = follow(&options, &config, |_| {
        dialled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(addr)
    });
    match result {
        Err(Error::TooManyRedirects(to)) => assert_eq!(to.host, "again.localhost"),
        other => panic!("expected TooManyRedirects, got {:?}", other.map(|(_, j)| j)),
    }
    assert_eq!(dialled.load(std::sync::atomic::Ordering::Relaxed), 3);
}

/// A server redirecting (before or after TLS) to a host whose certificate names another
/// domain, and a client trusting both certificates: only the name can make the second
/// handshake fail. Returns both servers (keep them running) and the client's settings.
fn redirect_to_another_name(after_tls: bool) -> ([ServerHandle; 2], ClientOptions, ClientConfig) {
    let tls = xmpp_server::TlsMaterial::self_signed(&[DOMAIN]).unwrap();
    let other = xmpp_server::TlsMaterial::self_signed(&["evil.localhost"]).unwrap();
    let target = server(None, &other);
    let first = redirecting_to(&target, after_tls, &tls);
    let (mut options, config) = client(&first, &tls);
    let both = format!("{}{}", tls.cert_pem, other.cert_pem);
    options.tls = client_config(&Trust::Pem(both.into_bytes()), Versions::Any).unwrap();
    ([first, target], options, config)
}

/// The redirected login failed in the TLS handshake (the STARTTLS driver reports the aborted
/// transport).
fn assert_refused<C>(result: Result<(C, xmpp_stream::FullJid), Error>) {
    assert!(
        matches!(&result, Err(Error::Tls(_) | Error::Io(_)))
            || matches!(&result, Err(Error::Closed(r)) if **r == xmpp_stream::CloseReason::TransportClosed),
        "{:?}",
        result.map(|(_, j)| j)
    );
}

#[test]
fn a_redirect_does_not_move_the_certificate_check() {
    // The new host presents a certificate for another name: the check stays on the XMPP
    // domain, so the TLS handshake fails instead of trusting the redirect's choice.
    // `redirect_before_and_after_tls_is_followed` is the control: the same path with the
    // right name binds.
    let (_servers, options, config) = redirect_to_another_name(true);
    assert_refused(follow(&options, &config, literal));
}

#[tokio::test]
async fn the_async_driver_follows_redirects_before_and_after_tls() {
    let tls = xmpp_server::TlsMaterial::self_signed(&[DOMAIN]).unwrap();
    let target = server(None, &tls);
    for after_tls in [false, true] {
        let first = redirecting_to(&target, after_tls, &tls);
        let (options, config) = client(&first, &tls);
        let dialled = std::sync::atomic::AtomicUsize::new(0);
        let (mut conn, jid) = follow_async(&options, &config, |to| {
            dialled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            literal(to)
        })
        .await
        .unwrap();
        assert_eq!(
            jid.to_bare().as_str(),
            "alice@localhost",
            "after_tls={after_tls}"
        );
        assert_eq!(dialled.load(std::sync::atomic::Ordering::Relaxed), 1);
        conn.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test]
async fn the_async_driver_ends_a_redirect_loop_at_the_bound() {
    let tls = xmpp_server::TlsMaterial::self_signed(&[DOMAIN]).unwrap();
    // Two servers sending the client to each other, before TLS and after.
    let second = server(
        Some(Redirect {
            to: "again.localhost".parse().unwrap(),
            after_tls: true,
        }),
        &tls,
    );
    let first = redirecting_to(&second, false, &tls);
    let (options, config) = client(&first, &tls);
    let dialled = std::sync::Mutex::new(Vec::new());
    let result = follow_async(&options, &config, |to| {
        dialled.lock().unwrap().push(to.host.clone());
        if to.host == "again.localhost" {
            Ok(first.addr)
        } else {
            literal(to)
        }
    })
    .await;
    match result {
        Err(Error::TooManyRedirects(to)) => assert_eq!(to.host, "again.localhost"),
        other => panic!("expected TooManyRedirects, got {:?}", other.map(|(_, j)| j)),
    }
    // first -> second -> first -> second (three redirects followed), whose redirect back is
    // the fourth: one too many.
    assert_eq!(
        *dialled.lock().unwrap(),
        ["127.0.0.1", "again.localhost", "127.0.0.1"]
    );
}

#[tokio::test]
async fn the_async_driver_keeps_the_certificate_check_on_the_domain() {
    let (_servers, options, config) = redirect_to_another_name(false);
    assert_refused(follow_async(&options, &config, literal).await);
}
