//! An internationalized domain on the s2s path (RFC 6120 §13 with RFC 7622 §3.2 domains):
//! two instances of the example server in-process, `münchen.test` (U-labels, its certificate
//! naming the A-label `xn--mnchen-3ya.test`, as RFC 6125 §6.4.2 wants certificates to) and
//! `b.test`, static routes to each other. Messages go both ways, so each server dials the
//! other: b.test's outgoing connection must send the TLS server name (SNI, RFC 6066 §3) and
//! check the certificate in A-label form, since domains are held enforced with U-labels.
//!
//! Once over SASL EXTERNAL (one CA, no dialback secret), once over dialback (XEP-0220; each
//! trusts a CA that did not sign the other's certificate): XEP-0185 keys hash the domains in
//! their enforced (U-label) form, as Prosody's `mod_dialback` (its hosts are `nameprep`ed) and
//! ejabberd's `mod_s2s_dialback` (`jid:nameprep`ed servers) do; the key is only ever checked
//! by the server that made it, so what matters is that one server agrees with itself over
//! every spelling the peer may send.
//!
//! No peer software is needed: these tests always run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use xmpp_host::OsEntropy;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_server::{Dns, HubConfig, RuntimeConfig, S2sSettings, S2sTls, ServerHandle, TlsMaterial};
use xmpp_stream::dialback::DialbackSecret;
use xmpp_stream::{BareJid, ClientConfig, ClientStream};
use xmpp_testpeers::TestCa;

use common::{body, loopback, parse};

const WAIT: Duration = Duration::from_secs(15);
const IDN: &str = "m\u{FC}nchen.test";
const IDN_A_LABEL: &str = "xn--mnchen-3ya.test";
const OTHER: &str = "b.test";

/// One server: `domain` (enforced form), the name its certificates carry, user `user`; its
/// certificate from `ca`, the only CA it trusts for peers.
fn spawn(
    domain: &str,
    cert_name: &str,
    user: &str,
    ca: &TestCa,
    dialback: bool,
    listener: TcpListener,
    route: (&str, SocketAddr),
) -> ServerHandle {
    let mut hub = HubConfig::new(BareJid::new(domain).unwrap())
        .with_user(user, &format!("{user}-pw"))
        .with_s2s(DialbackSecret::new(format!("{domain} secret").as_bytes()));
    if !dialback && let Some(s2s) = &mut hub.s2s {
        s2s.dialback_secret = None;
    }
    let cert = ca.issue(cert_name).unwrap();
    let s2s = S2sSettings {
        routes: [(route.0.to_owned(), route.1)].into_iter().collect(),
        dns: Dns::Off,
        tls: S2sTls::from_pem(
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
            Some(ca.pem().as_bytes()),
        )
        .unwrap(),
        connect_timeout: Duration::from_secs(5),
    };
    let config = RuntimeConfig {
        hub,
        tls: TlsMaterial::self_signed(&[cert_name]).unwrap(),
        log: std::env::var("XMPP_C2S_LOG").is_ok(),
        trace: std::env::var("XMPP_C2S_TRACE").is_ok(),
        s2s: Some(s2s),
    };
    ServerHandle::spawn_federating(loopback(), listener, config).unwrap()
}

/// `user@domain/phone` on `server`, its TLS name `tls_name` (the A-label form).
fn login(
    server: &ServerHandle,
    domain: &str,
    tls_name: &str,
    user: &str,
) -> Connection<ClientStream> {
    let tls = client_config(
        &Trust::Pem(server.cert_pem.as_bytes().to_vec()),
        Versions::Any,
    )
    .unwrap();
    let options = ClientOptions::new(server.addr, tls_name, tls);
    let mut config = ClientConfig::new(
        BareJid::new(&format!("{user}@{domain}")).unwrap(),
        format!("{user}-pw"),
    );
    config.resource = Some("phone".to_owned());
    let mut conn = Connection::connect(&options, config, OsEntropy::new()).unwrap();
    conn.negotiate(WAIT).unwrap();
    conn.send(&parse("<presence xmlns='jabber:client'/>"))
        .unwrap();
    conn
}

fn message(to: &str, text: &str) -> minidom::Element {
    parse(&format!(
        "<message xmlns='jabber:client' type='chat' to='{to}'><body>{text}</body></message>"
    ))
}

fn federate_with_an_idn(dialback: bool) {
    let ca_idn = TestCa::new("IDN test CA (münchen)").unwrap();
    let ca_other = TestCa::new("IDN test CA (b)").unwrap();
    // EXTERNAL: both certificates from one CA both trust. Dialback: each trusts only its own
    // CA, which did not sign the peer's certificate.
    let (idn_issuer, other_issuer) = if dialback {
        (&ca_idn, &ca_other)
    } else {
        (&ca_idn, &ca_idn)
    };
    let idn_listener = TcpListener::bind(loopback()).unwrap();
    let other_listener = TcpListener::bind(loopback()).unwrap();
    let idn_addr = idn_listener.local_addr().unwrap();
    let other_addr = other_listener.local_addr().unwrap();
    let munich = spawn(
        IDN,
        IDN_A_LABEL,
        "alice",
        idn_issuer,
        dialback,
        idn_listener,
        (OTHER, other_addr),
    );
    let other = spawn(
        OTHER,
        OTHER,
        "bob",
        other_issuer,
        dialback,
        other_listener,
        (IDN, idn_addr),
    );
    let mut alice = login(&munich, IDN, IDN_A_LABEL, "alice");
    let mut bob = login(&other, OTHER, OTHER, "bob");

    // b.test dials münchen.test: the outgoing IDN path.
    bob.send(&message(&format!("alice@{IDN}"), "servus"))
        .unwrap();
    let got = alice
        .wait_stanza(WAIT, |s| body(s).as_deref() == Some("servus"))
        .unwrap();
    assert_eq!(got.attr("from"), Some("bob@b.test/phone"));
    // münchen.test dials b.test, its stream from an IDN; the A-label spelling of the address
    // reaches the same user.
    alice
        .send(&message("bob@b.test", "gr\u{FC}\u{DF} dich"))
        .unwrap();
    let got = bob
        .wait_stanza(WAIT, |s| body(s).as_deref() == Some("gr\u{FC}\u{DF} dich"))
        .unwrap();
    assert_eq!(
        got.attr("from"),
        Some(format!("alice@{IDN}/phone").as_str())
    );
    bob.send(&message(&format!("alice@{IDN_A_LABEL}"), "again"))
        .unwrap();
    alice
        .wait_stanza(WAIT, |s| body(s).as_deref() == Some("again"))
        .unwrap();
    let (m, o) = (munich.stats().unwrap(), other.stats().unwrap());
    assert!(m.s2s_outgoing >= 1 && o.s2s_outgoing >= 1, "{m:?} {o:?}");
}

#[test]
fn an_internationalized_domain_federates_with_sasl_external() {
    federate_with_an_idn(false);
}

#[test]
fn an_internationalized_domain_federates_with_dialback() {
    federate_with_an_idn(true);
}
