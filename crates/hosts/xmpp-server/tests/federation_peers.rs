//! The example server federates (RFC 6120 §13) with servers nobody here wrote, on loopback:
//! Prosody 0.12 and ejabberd 23.01, started by xmpp-testpeers from their own configuration
//! in a temp dir, each serving `<peer>.s2s.test`, while ours serves `rust.s2s.test`.
//!
//! - Connections in both directions: the peer's user writes first, so the peer dials us (it
//!   finds us through the SRV record `_xmpp-server._tcp.rust.s2s.test` on a private
//!   `dnsmasq` on a loopback port: no test name ever reaches the machine's resolver); then
//!   our user writes, and we dial the peer (a static route to its s2s port).
//! - SASL EXTERNAL: both ends trust one test CA, and neither allows dialback (we have no
//!   dialback secret; Prosody has `s2s_secure_auth` and no `mod_dialback`, ejabberd no
//!   `mod_s2s_dialback`), so only certificates can authenticate either link.
//! - Dialback (XEP-0220): each end's certificate is issued by a CA the other does not trust,
//!   so EXTERNAL fails (ejabberd offers it anyway and answers `<failure/>`) and only
//!   dialback can authenticate; each verification is a connection back to the other's
//!   authoritative server.
//!
//! In each: messages both ways and a presence subscription (RFC 6121 §3) between
//! `alice@rust.s2s.test` (our `ClientStream` on our server) and `bob@<peer>.s2s.test` (our
//! `ClientStream` on the peer's c2s port). Skipped (or failed under `XMPP_INTEROP=require`)
//! without the peer or `dnsmasq`.
//!
//! With `XMPP_RECORD=1` each run writes our server's s2s sessions as transcripts to
//! `testdata/transcripts/real-s2s/` (replayed offline by `tests/replay_real.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minidom::Element;
use xmpp_host::blocking::Connection;
use xmpp_server::{HubConfig, RuntimeConfig, S2sSettings, S2sTls, ServerHandle, TlsMaterial};
use xmpp_stream::dialback::DialbackSecret;
use xmpp_stream::{BareJid, ClientStream};
use xmpp_testpeers::{
    PeerKind, PeerOptions, PeerServer, PrivateDns, S2sAuth, S2sOptions, SrvRecord, TestCa,
};

use common::{body, login, login_at, loopback, parse};

const WAIT: Duration = Duration::from_secs(20);
const OURS: &str = "rust.s2s.test";
/// Our dialback secret (dialback runs only).
const SECRET: &str = "rust-s2s-test-dialback-secret";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    External,
    /// EXTERNAL with certificates that carry the server authentication key usage only (as
    /// Let's Encrypt issues them since 2025), on both ends. ejabberd 23.01 refuses such a
    /// certificate from a dialing server ("unsupported certificate purpose"): Prosody only.
    ExternalServerAuthOnly,
    Dialback,
}

fn peer_domain(kind: PeerKind) -> String {
    match kind {
        PeerKind::Prosody => "prosody.s2s.test".to_owned(),
        PeerKind::Ejabberd => "ejabberd.s2s.test".to_owned(),
    }
}

/// Everything one run needs, in the order it must be dropped: clients, our server, the
/// peer, the DNS server.
struct Federation {
    alice: Connection<ClientStream>,
    bob: Connection<ClientStream>,
    ours: Option<ServerHandle>,
    peer: PeerServer,
    _dns: PrivateDns,
    bob_jid: String,
    recorded: Option<Arc<Mutex<Vec<String>>>>,
}

fn start(kind: PeerKind, mode: Mode) -> Option<Federation> {
    if !kind.is_installed() {
        xmpp_testpeers::skip_or_fail(&format!("{kind} is not installed"));
        return None;
    }
    if !PrivateDns::is_installed() {
        xmpp_testpeers::skip_or_fail("dnsmasq (Debian dnsmasq-base) is not installed");
        return None;
    }
    let domain = peer_domain(kind);
    // EXTERNAL: one CA for both. Dialback: each its own, trusted by nobody else.
    let our_ca = TestCa::new("rust.s2s.test test CA").unwrap();
    let peer_ca = match mode {
        Mode::External | Mode::ExternalServerAuthOnly => None,
        Mode::Dialback => Some(TestCa::new("peer test CA").unwrap()),
    };
    let issue = |ca: &TestCa, domain: &str| match mode {
        Mode::ExternalServerAuthOnly => ca.issue_server_auth_only(domain).unwrap(),
        _ => ca.issue(domain).unwrap(),
    };
    let peer_issuer = peer_ca.as_ref().unwrap_or(&our_ca);

    let s2s_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let our_s2s_port = s2s_listener.local_addr().unwrap().port();
    let dns = PrivateDns::start(&[SrvRecord {
        domain: OURS.to_owned(),
        port: our_s2s_port,
    }])
    .unwrap();

    let auth = match mode {
        Mode::External | Mode::ExternalServerAuthOnly => S2sAuth::External {
            ca_pem: our_ca.pem(),
        },
        Mode::Dialback => S2sAuth::Dialback,
    };
    let options = PeerOptions::new().with_s2s(S2sOptions {
        domain: domain.clone(),
        cert: issue(peer_issuer, &domain),
        auth,
        dns: dns.addr,
    });
    let peer = xmpp_testpeers::start_for_test_with(kind, &[("bob", "bob-pw")], &options)?;
    let peer_s2s = SocketAddr::from((Ipv4Addr::LOCALHOST, peer.s2s_port.unwrap()));

    let mut hub = HubConfig::new(BareJid::new(OURS).unwrap())
        .with_user("alice", "alice-pw")
        .with_s2s(DialbackSecret::new(SECRET.as_bytes()));
    if mode != Mode::Dialback
        && let Some(s2s) = &mut hub.s2s
    {
        s2s.dialback_secret = None;
    }
    let recorded = std::env::var_os("XMPP_RECORD").map(|_| Arc::new(Mutex::new(Vec::new())));
    hub.record.clone_from(&recorded);
    let our_cert = issue(&our_ca, OURS);
    let s2s = S2sSettings {
        routes: [(domain.clone(), peer_s2s)].into_iter().collect(),
        dns: xmpp_server::Dns::Off,
        // Dialback: we trust only our own CA, which did not sign the peer's certificate.
        tls: S2sTls::from_pem(
            our_cert.cert_pem.as_bytes(),
            our_cert.key_pem.as_bytes(),
            Some(our_ca.pem().as_bytes()),
        )
        .unwrap(),
        connect_timeout: Duration::from_secs(5),
    };
    let config = RuntimeConfig {
        hub,
        tls: TlsMaterial::self_signed(&[OURS]).unwrap(),
        log: std::env::var("XMPP_C2S_LOG").is_ok(),
        trace: std::env::var("XMPP_C2S_TRACE").is_ok(),
        s2s: Some(s2s),
    };
    let ours = ServerHandle::spawn_federating(loopback(), s2s_listener, config).unwrap();

    let alice = login(&ours, OURS, "alice", "phone", WAIT);
    let bob = login_at(
        SocketAddr::from((Ipv4Addr::LOCALHOST, peer.starttls_port)),
        &peer_issuer.pem(),
        &domain,
        "bob",
        "phone",
        WAIT,
    );
    Some(Federation {
        alice,
        bob,
        ours: Some(ours),
        peer,
        _dns: dns,
        bob_jid: format!("bob@{domain}"),
        recorded,
    })
}

fn message(to: &str, id: &str, text: &str) -> Element {
    parse(&format!(
        "<message xmlns='jabber:client' type='chat' to='{to}' id='{id}'><body>{text}</body></message>"
    ))
}

/// Waits for a stanza on `conn`, with the peer's log tail on failure.
fn wait(
    conn: &mut Connection<ClientStream>,
    peer: &PeerServer,
    what: &str,
    matches: impl Fn(&Element) -> bool,
) -> Element {
    conn.wait_stanza(WAIT, matches).unwrap_or_else(|e| {
        panic!(
            "{what}: {e:?}\n--- {} log tail ---\n{}",
            peer.kind,
            peer.log_tail(60)
        )
    })
}

fn federate(kind: PeerKind, mode: Mode) {
    let Some(mut f) = start(kind, mode) else {
        return;
    };
    let alice_full = format!("alice@{OURS}/phone");
    let bob = f.bob_jid.clone();

    // They dial us: the peer's user writes first.
    f.bob
        .send(&message(&format!("alice@{OURS}"), "m1", "hi from the peer"))
        .unwrap();
    let got = wait(&mut f.alice, &f.peer, "bob -> alice", |s| {
        body(s).as_deref() == Some("hi from the peer")
    });
    assert_eq!(got.attr("from"), Some(format!("{bob}/phone").as_str()));

    // We dial them.
    f.alice.send(&message(&bob, "m2", "hi from rust")).unwrap();
    let got = wait(&mut f.bob, &f.peer, "alice -> bob", |s| {
        body(s).as_deref() == Some("hi from rust")
    });
    assert_eq!(got.attr("from"), Some(alice_full.as_str()));

    // RFC 6121 §3.1: alice subscribes to bob; bob approves; alice learns of it and gets
    // bob's presence.
    f.alice
        .send(&parse(&format!(
            "<presence xmlns='jabber:client' type='subscribe' to='{bob}'/>"
        )))
        .unwrap();
    let request = wait(&mut f.bob, &f.peer, "subscribe", |s| {
        s.name() == "presence" && s.attr("type") == Some("subscribe")
    });
    assert_eq!(request.attr("from"), Some(format!("alice@{OURS}").as_str()));
    f.bob
        .send(&parse(&format!(
            "<presence xmlns='jabber:client' type='subscribed' to='alice@{OURS}'/>"
        )))
        .unwrap();
    let approved = wait(&mut f.alice, &f.peer, "subscribed", |s| {
        s.name() == "presence" && s.attr("type") == Some("subscribed")
    });
    assert_eq!(approved.attr("from"), Some(bob.as_str()));
    let bob_full = format!("{bob}/phone");
    wait(&mut f.alice, &f.peer, "bob's presence", |s| {
        s.name() == "presence" && s.attr("type").is_none() && s.attr("from") == Some(&bob_full)
    });

    // Both links still carry stanzas.
    f.alice.send(&message(&bob, "m3", "still here")).unwrap();
    wait(&mut f.bob, &f.peer, "alice -> bob again", |s| {
        body(s).as_deref() == Some("still here")
    });
    f.bob.send(&message(&alice_full, "m4", "me too")).unwrap();
    wait(&mut f.alice, &f.peer, "bob -> alice again", |s| {
        body(s).as_deref() == Some("me too")
    });
    save_transcripts(f, kind, mode);
}

/// With `XMPP_RECORD=1`: stops the peer first (it closes its streams to us, so that every
/// s2s session of ours ends gracefully and is written down), then saves our server's s2s
/// transcripts as `testdata/transcripts/real-s2s/<peer>-<mode>-<end>.txt`, `<end>` being
/// `initiating`, `receiving`, or `verify` (a receiving stream that only carried the peer's
/// `<db:verify/>` question). The hub keeps only the hash of the dialback secret: its text is
/// added here.
fn save_transcripts(f: Federation, kind: PeerKind, mode: Mode) {
    let Some(sink) = f.recorded.clone() else {
        return;
    };
    let Federation {
        mut alice,
        mut bob,
        ours,
        peer,
        ..
    } = f;
    let _ = alice.close(WAIT);
    let _ = bob.close(WAIT);
    drop(peer);
    let deadline = std::time::Instant::now() + WAIT;
    while sink
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.contains("!s2s-"))
        .count()
        < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(ours) = ours {
        ours.stop().unwrap();
    }
    let dir = xmpp_testpeers::transcripts::dir("real-s2s");
    std::fs::create_dir_all(&dir).unwrap();
    let peer = match kind {
        PeerKind::Prosody => "prosody",
        PeerKind::Ejabberd => "ejabberd",
    };
    let mode_name = match mode {
        Mode::External => "external",
        Mode::ExternalServerAuthOnly => "external-serverauth",
        Mode::Dialback => "dialback",
    };
    let mut saved = 0;
    for text in sink.lock().unwrap().iter() {
        let (who, end) = if text.contains("\n!s2s-initiating ") {
            ("s2s-initiating", "initiating")
        } else if text.contains("E s2s-receiving: ServerAuthenticated") {
            ("s2s-receiving", "receiving")
        } else if text.contains("\n!s2s-receiving ") {
            ("s2s-receiving", "verify")
        } else {
            continue;
        };
        let mut text = text.clone();
        if mode == Mode::Dialback {
            let at = text.find(&format!("\n!{who} ")).unwrap() + 1;
            text.insert_str(at, &format!("!{who} dialback-secret {SECRET}\n"));
        }
        std::fs::write(dir.join(format!("{peer}-{mode_name}-{end}.txt")), text).unwrap();
        saved += 1;
    }
    assert!(saved >= 2, "{saved} s2s transcripts recorded");
}

#[test]
fn prosody_federates_with_sasl_external() {
    federate(PeerKind::Prosody, Mode::External);
}

#[test]
fn prosody_federates_with_sasl_external_and_server_auth_only_certificates() {
    federate(PeerKind::Prosody, Mode::ExternalServerAuthOnly);
}

#[test]
fn prosody_federates_with_dialback() {
    federate(PeerKind::Prosody, Mode::Dialback);
}

#[test]
fn ejabberd_federates_with_sasl_external() {
    federate(PeerKind::Ejabberd, Mode::External);
}

#[test]
fn ejabberd_federates_with_dialback() {
    federate(PeerKind::Ejabberd, Mode::Dialback);
}
