//! The load generator against its own echo peer (`xmpp_loadgen::echo`), in this process: a
//! handful of sessions log in over STARTTLS and SCRAM, exchange a few hundred messages, and
//! every one must come back. Guards the echo peer as much as the generator: a peer that
//! negotiates wrongly fails the logins, one that routes wrongly loses messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::time::Duration;

use xmpp_loadgen::echo::{EchoConfig, EchoPeer};
use xmpp_loadgen::{Options, ScramChoice, Target};

const SESSIONS: usize = 6;

/// A certificate for `localhost` as PEM, and the server configuration presenting it.
fn tls() -> (String, std::sync::Arc<rustls::ServerConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (tls, _) = xmpp_host::tls::server_config(
        cert_pem.as_bytes(),
        certified.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    (cert_pem, tls)
}

async fn against_echo(mechanism: ScramChoice) {
    let (cert_pem, tls) = tls();
    let mut options = Options::new(SESSIONS);
    options.mechanism = mechanism;
    options.idle = Duration::from_millis(200);
    // 3 pairs, 100 pings/s for 3 s: about 300 pings and 300 pongs.
    options.message_rate = 100.0;
    options.message_duration = Duration::from_secs(3);
    let config = EchoConfig {
        domain: options.domain.clone(),
        password: options.password.clone(),
    };
    let peer = EchoPeer::bind(0, tls, &config).await.unwrap();
    let addr = peer.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let server = tokio::spawn(peer.serve());
    let report = xmpp_loadgen::run(&Target::new(addr, cert_pem, None), options)
        .await
        .unwrap();
    server.abort();
    eprintln!("{report}");
    assert_eq!(report.logged_in, SESSIONS as u64, "{report}");
    assert_eq!(report.login_failed, 0, "{report}");
    assert_eq!(report.dropped, 0, "{report}");
    assert_eq!(report.messages_bounced, 0, "{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.aborted.is_none(), "{report}");
    assert!(report.messages_sent >= 500, "{report}");
    // Everything sent came back, up to one ping or pong per pair in flight when the window
    // closed.
    assert!(
        report.messages_received + (SESSIONS as u64) >= report.messages_sent,
        "{report}"
    );
    assert!(report.messages_received <= report.messages_sent + SESSIONS as u64);
    assert!(report.round_trips >= 250, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_comes_back_with_scram_sha_1() {
    against_echo(ScramChoice::Sha1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_comes_back_with_the_strongest_mechanism() {
    against_echo(ScramChoice::Strongest).await;
}

/// Sends `bytes` after a stream header and returns what the peer wrote before closing; fails
/// if it does not close within 5 s.
async fn closes_after(bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (_, tls) = tls();
    let config = EchoConfig {
        domain: "localhost".to_owned(),
        password: "pw".to_owned(),
    };
    let peer = EchoPeer::bind(0, tls, &config).await.unwrap();
    let addr = peer.local_addr().unwrap();
    let server = tokio::spawn(peer.serve());
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0'>")
        .await
        .unwrap();
    // The peer may close before reading everything: a failed write is fine.
    let _ = tcp.write_all(bytes).await;
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut seen))
        .await
        .expect("the echo peer closes the session")
        .ok();
    server.abort();
    seen
}

#[tokio::test]
async fn closes_a_session_it_cannot_frame() {
    let seen = closes_after(b"not xml at all").await;
    assert!(seen.starts_with(b"<?xml"), "answered the header first");
    assert!(
        String::from_utf8_lossy(&seen).contains("<starttls"),
        "offered STARTTLS"
    );
}

#[tokio::test]
async fn closes_a_session_whose_element_passes_the_bound() {
    let mut huge = b"<x>".to_vec();
    huge.resize(xmpp_loadgen::echo::MAX_ELEMENT + 4096, b'a');
    let seen = closes_after(&huge).await;
    assert!(seen.starts_with(b"<?xml"));
}

#[tokio::test]
async fn closes_a_session_that_skips_starttls() {
    let seen = closes_after(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHUAcA==</auth>",
    )
    .await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("<starttls"), "{seen}");
    assert!(
        !seen.contains("<success") && !seen.contains("<challenge"),
        "{seen}"
    );
}

#[tokio::test]
async fn refuses_a_domain_that_needs_escaping() {
    let (_, tls) = tls();
    let config = EchoConfig {
        domain: "local'host".to_owned(),
        password: "pw".to_owned(),
    };
    assert!(EchoPeer::bind(0, tls, &config).await.is_err());
}
