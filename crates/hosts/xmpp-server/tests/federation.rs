//! Two instances of the example server federate (RFC 6120 §13) in-process over loopback:
//! a.test and b.test, static routes to each other, a test CA and certificates made with
//! xmpp-testpeers' `TestCa` (a DNS-ID and an SRV-ID `_xmpp-server.<domain>`, never an
//! XmppAddr). A user on each
//! side (our `ClientStream` through xmpp-host's blocking `Connection`) exchanges messages
//! both ways and a presence subscription (RFC 6121 §3).
//!
//! - SASL EXTERNAL: each server trusts the CA of the other's certificate, and neither has a
//!   dialback secret, so nothing but EXTERNAL can authenticate the link.
//! - Dialback (XEP-0220): each server trusts only a CA that did not sign the peer's
//!   certificate, so EXTERNAL is never offered and only dialback can.
//! - Several domains (a.test + a2.test, b.test + b2.test): users of two local domains talk,
//!   and every domain pair federates over one connection per direction, or one in all with
//!   XEP-0288 bidi (the counts of s2s connections are checked).
//! - A route to a port nobody listens on, and a domain with no route: the stanza bounces with
//!   `remote-server-not-found`.
//! - DNS (RFC 6120 §3.2): a.test has no static route to b.test and finds it through SRV
//!   `_xmpp-server._tcp.b.test` on a private DNS server this test runs on 127.0.0.1
//!   (`Dns::Nameserver`, the binary's `--resolver`). The machine's own resolver is never
//!   asked: the server is pointed at this one alone, the names are under `.test`, the
//!   responder refuses anything else, and the test checks that nothing else was asked. Zone:
//!   `_xmpp-server._tcp.b.test` SRV 0 5 <b's s2s port> `b-host.test`, `b-host.test` A
//!   127.0.0.1; `_xmpp-server._tcp.none.test` SRV 0 0 0 `.` (no service); anything else
//!   under `.test` NXDOMAIN.
//!
//! - XEP-0368: `_xmpps-server._tcp.b.test` SRV names b's direct TLS s2s port and is asked
//!   before `_xmpp-server._tcp.b.test` (which names a closed port): the message arrives over a
//!   stream that started with TLS up.
//! - Each domain with a certificate of its own: SNI chooses it (c2s clients verify the name),
//!   and a connection from a2.test presents a2.test's (SASL EXTERNAL only).
//!
//! - A local domain the first connection to a peer cannot carry (no dialback, its own
//!   certificate) gets a second connection; with XEP-0288 the receiving server asks for pairs
//!   in the reverse direction over the one connection (§3); the dialback verification
//!   connection finds the authoritative server by `_xmpps-server._tcp` and speaks over direct
//!   TLS; SNI on an incoming s2s connection chooses the domain's certificate.
//!
//! No peer software is needed: these tests always run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

use minidom::Element;
use xmpp_host::blocking::Connection;
use xmpp_server::{Dns, HubConfig, RuntimeConfig, S2sSettings, S2sTls, ServerHandle, TlsMaterial};
use xmpp_stream::dialback::DialbackSecret;
use xmpp_stream::identity::PresentedId;
use xmpp_stream::transcript::Role;
use xmpp_stream::{BareJid, ClientStream};
use xmpp_testpeers::TestCa;

use common::{body, error_condition, login, loopback, parse};

const WAIT: Duration = Duration::from_secs(15);

/// A test CA (xmpp-testpeers' `TestCa`: the certificates the peers' interop tests use too):
/// a DNS-ID and an SRV-ID `_xmpp-server.<domain>`, never an XmppAddr.
struct Ca(TestCa);

impl Ca {
    fn new(name: &str) -> Ca {
        Ca(TestCa::new(name).unwrap())
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    /// A server certificate for `domain`: (cert PEM, key PEM).
    fn issue(&self, domain: &str) -> (String, String) {
        self.issue_for(&[domain])
    }

    /// [`issue`](Self::issue) for several domains: the names of each, the CN the first.
    fn issue_for(&self, domains: &[&str]) -> (String, String) {
        let cert = self.0.issue_for(domains).unwrap();
        (cert.cert_pem, cert.key_pem)
    }
}

/// One federating server: its domain, one user, its certificate (signed by `issuer`), the
/// CA it trusts for peers, its static routes, and a dialback secret or none.
struct Side<'a> {
    domain: &'a str,
    user: &'a str,
    issuer: &'a Ca,
    trusts: &'a Ca,
    dialback: bool,
    /// Further domains served, each with one user (`user@domain`, password `user-pw`); the
    /// certificate names them all.
    others: &'a [(&'a str, &'a str)],
    /// XEP-0288 bidirectional streams.
    bidi: bool,
    /// A certificate of its own for each domain (c2s and s2s, chosen by SNI and by the
    /// domain we dial out from), instead of one naming them all.
    own_certs: bool,
}

fn start(side: &Side<'_>, listener: TcpListener, routes: &[(&str, SocketAddr)]) -> ServerHandle {
    start_with_dns(side, listener, routes, &Dns::Off)
}

fn start_with_dns(
    side: &Side<'_>,
    listener: TcpListener,
    routes: &[(&str, SocketAddr)],
    dns: &Dns,
) -> ServerHandle {
    ServerHandle::spawn_federating(loopback(), listener, config_for(side, routes, dns)).unwrap()
}

/// The configuration of one federating server.
fn config_for(side: &Side<'_>, routes: &[(&str, SocketAddr)], dns: &Dns) -> RuntimeConfig {
    let mut hub = HubConfig::new(BareJid::new(side.domain).unwrap())
        .with_user(side.user, &format!("{}-pw", side.user))
        .with_s2s(DialbackSecret::new(
            format!("{} dialback secret", side.domain).as_bytes(),
        ));
    for (domain, user) in side.others {
        hub = hub
            .with_domain(BareJid::new(domain).unwrap())
            .with_user(&format!("{user}@{domain}"), &format!("{user}-pw"));
    }
    if let Some(s2s) = &mut hub.s2s {
        if !side.dialback {
            s2s.dialback_secret = None;
        }
        s2s.bidi = side.bidi;
    }
    let names: Vec<&str> = std::iter::once(side.domain)
        .chain(side.others.iter().map(|(domain, _)| *domain))
        .collect();
    let (cert, key) = if side.own_certs {
        side.issuer.issue(side.domain)
    } else {
        side.issuer.issue_for(&names)
    };
    let ca = side.trusts.pem();
    let mut tls = S2sTls::from_pem(cert.as_bytes(), key.as_bytes(), Some(ca.as_bytes())).unwrap();
    let mut c2s =
        TlsMaterial::self_signed(if side.own_certs { &names[..1] } else { &names }).unwrap();
    for domain in names.iter().skip(1).filter(|_| side.own_certs) {
        let (cert, key) = side.issuer.issue(domain);
        tls = tls
            .with_domain(domain, cert.as_bytes(), key.as_bytes())
            .unwrap();
        c2s = c2s.with_domain(domain, &TlsMaterial::self_signed(&[domain]).unwrap());
    }
    let s2s = S2sSettings {
        routes: routes
            .iter()
            .map(|(domain, addr)| ((*domain).to_owned(), *addr))
            .collect(),
        dns: dns.clone(),
        tls,
        connect_timeout: Duration::from_secs(5),
    };
    RuntimeConfig {
        hub,
        tls: c2s,
        log: std::env::var("XMPP_C2S_LOG").is_ok(),
        trace: std::env::var("XMPP_C2S_TRACE").is_ok(),
        s2s: Some(s2s),
    }
}

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// `user@domain/phone` logged in on `server`, available.
fn client(server: &ServerHandle, domain: &str, user: &str) -> Connection<ClientStream> {
    login(server, domain, user, "phone", WAIT)
}

/// A message from `client` to `to` comes back as an error from `to`:
/// `remote-server-not-found`.
fn assert_bounces_not_found(client: &mut Connection<ClientStream>, to: &str, id: &str) {
    client.send(&message(to, id, "anyone?")).unwrap();
    let bounce = client
        .wait_stanza(WAIT, |s| s.attr("id") == Some(id))
        .unwrap();
    assert_eq!(
        error_condition(&bounce).as_deref(),
        Some("remote-server-not-found"),
        "{to}"
    );
    assert_eq!(bounce.attr("from"), Some(to));
}

fn message(to: &str, id: &str, text: &str) -> Element {
    parse(&format!(
        "<message xmlns='jabber:client' type='chat' to='{to}' id='{id}'><body>{text}</body></message>"
    ))
}

/// Messages both ways and a presence subscription between alice@a.test and bob@b.test.
fn federate(a_ca: &Ca, b_ca: &Ca, a_trusts: &Ca, b_trusts: &Ca, dialback: bool) {
    let (a_listener, a_addr) = listener();
    let (b_listener, b_addr) = listener();
    let a = start(
        &Side {
            domain: "a.test",
            user: "alice",
            issuer: a_ca,
            trusts: a_trusts,
            dialback,
            others: &[],
            bidi: false,
            own_certs: false,
        },
        a_listener,
        &[("b.test", b_addr)],
    );
    let b = start(
        &Side {
            domain: "b.test",
            user: "bob",
            issuer: b_ca,
            trusts: b_trusts,
            dialback,
            others: &[],
            bidi: false,
            own_certs: false,
        },
        b_listener,
        &[("a.test", a_addr)],
    );
    let mut alice = client(&a, "a.test", "alice");
    let mut bob = client(&b, "b.test", "bob");

    // a.test -> b.test: the first stanza opens the link and waits in its queue.
    alice.send(&message("bob@b.test", "m1", "hi bob")).unwrap();
    let got = bob
        .wait_stanza(WAIT, |s| body(s).as_deref() == Some("hi bob"))
        .unwrap();
    assert_eq!(got.attr("from"), Some("alice@a.test/phone"));
    assert_eq!(got.attr("to"), Some("bob@b.test"));

    // b.test -> a.test: a link of its own, the other way.
    bob.send(&message("alice@a.test/phone", "m2", "hi alice"))
        .unwrap();
    let got = alice
        .wait_stanza(WAIT, |s| body(s).as_deref() == Some("hi alice"))
        .unwrap();
    assert_eq!(got.attr("from"), Some("bob@b.test/phone"));

    // RFC 6121 §3.1: alice subscribes to bob's presence; bob approves; alice learns of it
    // and receives bob's current presence.
    alice
        .send(&parse(
            "<presence xmlns='jabber:client' type='subscribe' to='bob@b.test'/>",
        ))
        .unwrap();
    let request = bob
        .wait_stanza(WAIT, |s| {
            s.name() == "presence" && s.attr("type") == Some("subscribe")
        })
        .unwrap();
    assert_eq!(request.attr("from"), Some("alice@a.test"));
    bob.send(&parse(
        "<presence xmlns='jabber:client' type='subscribed' to='alice@a.test'/>",
    ))
    .unwrap();
    let approved = alice
        .wait_stanza(WAIT, |s| {
            s.name() == "presence" && s.attr("type") == Some("subscribed")
        })
        .unwrap();
    assert_eq!(approved.attr("from"), Some("bob@b.test"));
    let available = alice
        .wait_stanza(WAIT, |s| {
            s.name() == "presence"
                && s.attr("type").is_none()
                && s.attr("from") == Some("bob@b.test/phone")
        })
        .unwrap();
    // §3.1.5: bob's server knows only alice's bare JID.
    assert_eq!(available.attr("to"), Some("alice@a.test"));

    // A message after all that still flows on the established links.
    alice
        .send(&message("bob@b.test", "m3", "still here"))
        .unwrap();
    bob.wait_stanza(WAIT, |s| body(s).as_deref() == Some("still here"))
        .unwrap();
}

#[test]
fn two_servers_federate_with_sasl_external() {
    let ca = Ca::new("Federation Test CA");
    // No dialback secret on either side: only EXTERNAL can authenticate the link.
    federate(&ca, &ca, &ca, &ca, false);
}

#[test]
fn two_servers_federate_with_dialback_when_certificates_are_not_trusted() {
    let (a_ca, b_ca) = (Ca::new("CA of a.test"), Ca::new("CA of b.test"));
    // Each trusts only its own CA, not the one of the peer's certificate: no EXTERNAL.
    federate(&a_ca, &b_ca, &a_ca, &b_ca, true);
}

#[test]
fn external_alone_fails_when_certificates_are_not_trusted() {
    // The control of the two above: untrusted certificates and no dialback authenticate
    // nothing, and the queued stanza bounces.
    let (a_ca, b_ca) = (Ca::new("CA of a.test"), Ca::new("CA of b.test"));
    let (a_listener, _) = listener();
    let (b_listener, b_addr) = listener();
    let side = |domain, user, issuer, trusts| Side {
        domain,
        user,
        issuer,
        trusts,
        dialback: false,
        others: &[],
        bidi: false,
        own_certs: false,
    };
    let a = start(
        &side("a.test", "alice", &a_ca, &a_ca),
        a_listener,
        &[("b.test", b_addr)],
    );
    let _b = start(&side("b.test", "bob", &b_ca, &b_ca), b_listener, &[]);
    let mut alice = client(&a, "a.test", "alice");
    alice.send(&message("bob@b.test", "m1", "lost")).unwrap();
    let bounce = alice
        .wait_stanza(WAIT, |s| s.attr("id") == Some("m1"))
        .unwrap();
    assert_eq!(
        error_condition(&bounce).as_deref(),
        Some("remote-server-not-found")
    );
}

#[test]
fn unreachable_domains_bounce_with_remote_server_not_found() {
    let ca = Ca::new("Federation Test CA");
    // A port that was free a moment ago: nobody listens there.
    let (closed, closed_addr) = listener();
    drop(closed);
    let (a_listener, _) = listener();
    let a = start(
        &Side {
            domain: "a.test",
            user: "alice",
            issuer: &ca,
            trusts: &ca,
            dialback: true,
            others: &[],
            bidi: false,
            own_certs: false,
        },
        a_listener,
        &[("down.test", closed_addr)],
    );
    let mut alice = client(&a, "a.test", "alice");
    for (to, id) in [("x@down.test", "m1"), ("y@noroute.test", "m2")] {
        assert_bounces_not_found(&mut alice, to, id);
    }
}

#[test]
fn certificate_names_are_read_from_the_subject_alt_names_and_the_cn() {
    let ca = Ca::new("Federation Test CA");
    let (cert, _) = ca.issue("a.test");
    let der = rustls_pemfile_der(&cert);
    let ids = xmpp_server::presented_ids(&der);
    assert_eq!(
        ids,
        vec![
            PresentedId::Dns("a.test".to_owned()),
            PresentedId::Srv("_xmpp-server.a.test".to_owned()),
            PresentedId::CommonName("a.test".to_owned()),
        ]
    );
    assert!(xmpp_server::presented_ids(b"not a certificate").is_empty());
}

/// The DER of the first certificate of a PEM text.
fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// A server with one user, a certificate from `ca`, trusting `ca`, no dialback secret.
fn external_side<'a>(ca: &'a Ca, domain: &'a str, user: &'a str) -> Side<'a> {
    Side {
        domain,
        user,
        issuer: ca,
        trusts: ca,
        dialback: false,
        others: &[],
        bidi: false,
        own_certs: false,
    }
}

/// The private DNS server: answers from the zone above, logs every name asked.
struct DnsServer {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
}

impl DnsServer {
    fn spawn(b_port: u16) -> DnsServer {
        Self::spawn_with(b_port, None)
    }

    /// Also `_xmpps-server._tcp.b.test` SRV 0 5 <b_tls_port> `b-host.test` (XEP-0368).
    fn spawn_with(b_port: u16, b_tls_port: Option<u16>) -> DnsServer {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = socket.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            // Ends with the test process.
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let reply = answer(&query, b_port, b_tls_port, &log);
                let _ = socket.send_to(&reply.to_vec().unwrap(), from);
            }
        });
        DnsServer { addr, asked }
    }

    /// Our servers' DNS setting for this nameserver alone.
    fn config(&self) -> Dns {
        Dns::Nameserver {
            addr: self.addr,
            timeout: Duration::from_secs(2),
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

fn answer(
    query: &Message,
    b_port: u16,
    b_tls_port: Option<u16>,
    log: &Mutex<Vec<String>>,
) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_queries(query.queries.clone());
    let Some(q) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    let name = q.name().to_lowercase().to_ascii();
    log.lock()
        .unwrap()
        .push(format!("{name} {}", q.query_type()));
    let owner = q.name().clone();
    let record = |rdata| Record::from_rdata(owner.clone(), 60, rdata);
    match (name.as_str(), q.query_type()) {
        ("_xmpp-server._tcp.b.test.", RecordType::SRV) => {
            let target = Name::from_ascii("b-host.test.").unwrap();
            reply.add_answer(record(RData::SRV(SRV::new(0, 5, b_port, target))));
        }
        ("_xmpps-server._tcp.b.test.", RecordType::SRV) if b_tls_port.is_some() => {
            let target = Name::from_ascii("b-host.test.").unwrap();
            let port = b_tls_port.unwrap();
            reply.add_answer(record(RData::SRV(SRV::new(0, 5, port, target))));
        }
        ("_xmpp-server._tcp.none.test.", RecordType::SRV) => {
            reply.add_answer(record(RData::SRV(SRV::new(0, 0, 0, Name::root()))));
        }
        ("b-host.test.", RecordType::A) => {
            reply.add_answer(record(RData::A(A(Ipv4Addr::LOCALHOST))));
        }
        // The name exists, with no AAAA: NOERROR, no answer.
        ("b-host.test.", _) => {}
        (other, _) if other.ends_with(".test.") => {
            reply.metadata.response_code = ResponseCode::NXDomain;
        }
        _ => reply.metadata.response_code = ResponseCode::Refused,
    }
    reply
}

#[test]
fn a_peer_is_found_by_srv_on_a_private_nameserver() {
    let ca = Ca::new("Federation Test CA");
    let (a_listener, _) = listener();
    let (b_listener, b_addr) = listener();
    let dns = DnsServer::spawn(b_addr.port());
    // SASL EXTERNAL only: b.test never needs to reach a.test for this one-way link.
    let side = |domain, user| external_side(&ca, domain, user);
    let a = start_with_dns(&side("a.test", "alice"), a_listener, &[], &dns.config());
    let b = start(&side("b.test", "bob"), b_listener, &[]);
    let mut alice = client(&a, "a.test", "alice");
    let mut bob = client(&b, "b.test", "bob");

    alice
        .send(&message("bob@b.test", "m1", "found you"))
        .unwrap();
    let got = bob
        .wait_stanza(WAIT, |s| body(s).as_deref() == Some("found you"))
        .unwrap();
    assert_eq!(got.attr("from"), Some("alice@a.test/phone"));

    // SRV target "." (no service), and a domain with no records at all.
    for (to, id) in [("x@none.test", "m2"), ("y@nothing.test", "m3")] {
        assert_bounces_not_found(&mut alice, to, id);
    }

    let asked = dns.asked();
    for expected in [
        "_xmpp-server._tcp.b.test. SRV",
        "b-host.test. A",
        "_xmpp-server._tcp.none.test. SRV",
        "_xmpp-server._tcp.nothing.test. SRV",
        "nothing.test. A",
    ] {
        assert!(
            asked.iter().any(|q| q == expected),
            "{expected} in {asked:?}"
        );
    }
    // "." means no service: its domain's addresses are not looked up.
    assert!(
        !asked.iter().any(|q| q.starts_with("none.test.")),
        "{asked:?}"
    );
    assert!(asked.iter().all(|q| q.contains(".test. ")), "{asked:?}");
}

/// The bare JID of a full one.
fn bare(full: &str) -> &str {
    full.split('/').next().unwrap()
}

/// Every user of one server sends a message to every user of the other; each arrives from
/// the sender's full JID.
fn everyone_writes(
    senders: &mut [(&str, Connection<ClientStream>)],
    receivers: &mut [(&str, Connection<ClientStream>)],
) {
    for (from, sender) in senders.iter_mut() {
        for (to, receiver) in receivers.iter_mut() {
            let text = format!("{from} to {to}");
            sender.send(&message(bare(to), "x", &text)).unwrap();
            let got = receiver
                .wait_stanza(WAIT, |s| body(s).as_deref() == Some(text.as_str()))
                .unwrap();
            assert_eq!(got.attr("from"), Some(*from), "{text}");
        }
    }
}

/// A side of `ca` with one certificate naming all its domains, dialback on.
fn shared_cert_side<'a>(
    ca: &'a Ca,
    domain: &'a str,
    user: &'a str,
    others: &'a [(&'a str, &'a str)],
    bidi: bool,
) -> Side<'a> {
    Side {
        own_certs: false,
        ..own_cert_side(ca, domain, user, others, true, bidi)
    }
}

/// Two servers of two domains each: a.test + a2.test (alice, carol) and b.test + b2.test
/// (bob, dave), each with one certificate naming both its domains, a CA both trust, and
/// dialback secrets. Static routes name a.test and b.test only: a2.test and b2.test are
/// reachable only over the connection to the other domain of their server. Users of the two
/// local domains of one server talk without any s2s connection; then every pair of domains
/// talks both ways over one connection per direction (or, with XEP-0288, one in all): the
/// first pair by SASL EXTERNAL, our other domain piggybacked by dialback, the peer's other
/// domain added because its certificate names it, and the receiving end skipping the
/// verification for names the initiating end's certificate holds (XEP-0344).
fn two_domains_each(bidi: bool) {
    let ca = Ca::new("Federation Test CA");
    let (a_listener, a_addr) = listener();
    let (b_listener, b_addr) = listener();
    let side = |domain, user, others| shared_cert_side(&ca, domain, user, others, bidi);
    let a = start(
        &side("a.test", "alice", &[("a2.test", "carol")]),
        a_listener,
        &[("b.test", b_addr)],
    );
    let b = start(
        &side("b.test", "bob", &[("b2.test", "dave")]),
        b_listener,
        &[("a.test", a_addr)],
    );
    let mut a_users = [
        ("alice@a.test/phone", client(&a, "a.test", "alice")),
        ("carol@a2.test/phone", client(&a, "a2.test", "carol")),
    ];
    let mut b_users = [
        ("bob@b.test/phone", client(&b, "b.test", "bob")),
        ("dave@b2.test/phone", client(&b, "b2.test", "dave")),
    ];

    // Two local domains of one server: no federation involved.
    let (alice, carol) = a_users.split_at_mut(1);
    everyone_writes(alice, carol);
    everyone_writes(carol, alice);
    assert_eq!(a.stats().unwrap().s2s_outgoing, 0);

    everyone_writes(&mut a_users, &mut b_users);
    everyone_writes(&mut b_users, &mut a_users);
    let (a_stats, b_stats) = (a.stats().unwrap(), b.stats().unwrap());
    let counts = |stats: xmpp_server::ServerStats| (stats.s2s_incoming, stats.s2s_outgoing);
    if bidi {
        assert_eq!((counts(a_stats), counts(b_stats)), ((0, 1), (1, 0)));
    } else {
        assert_eq!((counts(a_stats), counts(b_stats)), ((1, 1), (1, 1)));
    }
}

#[test]
fn two_servers_of_two_domains_each_share_one_connection_per_direction() {
    two_domains_each(false);
}

#[test]
fn with_bidi_two_servers_of_two_domains_each_share_one_connection() {
    two_domains_each(true);
}

#[test]
fn with_bidi_a_domain_the_initiating_certificate_names_is_reached_over_that_stream() {
    // XEP-0288 §3: a.test (certificate naming a.test and a2.test) opens the one
    // bidirectional connection to b.test. b.test has a route to a.test only: bob's message
    // to carol@a2.test, before anyone of a2.test wrote, can only arrive if b.test finds the
    // receiving stream whose certificate names a2.test and asks for (b.test, a2.test) on it.
    let ca = Ca::new("Federation Test CA");
    let (a_listener, a_addr) = listener();
    let (b_listener, b_addr) = listener();
    let side = |domain, user, others| shared_cert_side(&ca, domain, user, others, true);
    let a = start(
        &side("a.test", "alice", &[("a2.test", "carol")]),
        a_listener,
        &[("b.test", b_addr)],
    );
    let b = start(
        &side("b.test", "bob", &[]),
        b_listener,
        &[("a.test", a_addr)],
    );
    let mut alice = [("alice@a.test/phone", client(&a, "a.test", "alice"))];
    let mut carol = [("carol@a2.test/phone", client(&a, "a2.test", "carol"))];
    let mut bob = [("bob@b.test/phone", client(&b, "b.test", "bob"))];
    everyone_writes(&mut alice, &mut bob);
    everyone_writes(&mut bob, &mut carol);
    let counts = |stats: xmpp_server::ServerStats| (stats.s2s_incoming, stats.s2s_outgoing);
    assert_eq!(counts(a.stats().unwrap()), (0, 1));
    assert_eq!(counts(b.stats().unwrap()), (1, 0));
}

#[test]
fn each_domain_presents_its_own_certificate() {
    // a.test and a2.test, b.test and b2.test, each with a certificate naming it alone; SASL
    // EXTERNAL only (no dialback secret). Clients of a2.test verify the name a2.test: SNI
    // chose its certificate. carol@a2.test's stanzas authenticate by EXTERNAL only if a2.test's
    // certificate is the one presented when dialing out from a2.test. b.test's certificate
    // does not name b2.test: b2.test gets a connection of its own.
    let ca = Ca::new("Federation Test CA");
    let (a_listener, _) = listener();
    let (b_listener, b_addr) = listener();
    let side = |domain, user, others| own_cert_side(&ca, domain, user, others, false, false);
    let a = start(
        &side("a.test", "alice", &[("a2.test", "carol")]),
        a_listener,
        &[("b.test", b_addr), ("b2.test", b_addr)],
    );
    let b = start(
        &side("b.test", "bob", &[("b2.test", "dave")]),
        b_listener,
        &[],
    );
    let mut carol = [("carol@a2.test/phone", client(&a, "a2.test", "carol"))];
    let mut b_users = [
        ("bob@b.test/phone", client(&b, "b.test", "bob")),
        ("dave@b2.test/phone", client(&b, "b2.test", "dave")),
    ];
    let _alice = client(&a, "a.test", "alice");
    everyone_writes(&mut carol, &mut b_users);
    let stats = a.stats().unwrap();
    assert_eq!(stats.s2s_outgoing, 2, "{stats:?}");
}

#[test]
fn a_peer_is_found_by_xmpps_srv_and_reached_with_direct_tls() {
    // XEP-0368: b.test publishes `_xmpps-server._tcp` (its direct TLS port) and
    // `_xmpp-server._tcp` (a port nobody listens on), same priority: direct TLS is tried first
    // and is the only way the message can arrive. The stream starts with TLS up (no
    // STARTTLS) and authenticates with SASL EXTERNAL (no dialback secret on either side).
    let ca = Ca::new("Federation Test CA");
    let (a_listener, _) = listener();
    let (b_listener, _) = listener();
    let (b_tls_listener, b_tls_addr) = listener();
    let (closed, closed_addr) = listener();
    drop(closed);
    let dns = DnsServer::spawn_with(closed_addr.port(), Some(b_tls_addr.port()));
    let side = |domain, user| external_side(&ca, domain, user);
    // Both hubs record their sessions: the direct TLS s2s streams replay offline below.
    let sink = Arc::new(Mutex::new(Vec::new()));
    let mut a_config = config_for(&side("a.test", "alice"), &[], &dns.config());
    a_config.hub.record = Some(sink.clone());
    let a = ServerHandle::spawn_federating(loopback(), a_listener, a_config).unwrap();
    let mut b_config = config_for(&side("b.test", "bob"), &[], &Dns::Off);
    b_config.hub.record = Some(sink.clone());
    let b = ServerHandle::spawn_federating_with_direct_tls(
        loopback(),
        b_listener,
        b_tls_listener,
        b_config,
    )
    .unwrap();
    let mut alice = client(&a, "a.test", "alice");
    let mut bob = client(&b, "b.test", "bob");
    alice
        .send(&message("bob@b.test", "m1", "over direct TLS"))
        .unwrap();
    let got = bob
        .wait_stanza(WAIT, |s| body(s).as_deref() == Some("over direct TLS"))
        .unwrap();
    assert_eq!(got.attr("from"), Some("alice@a.test/phone"));
    let asked = dns.asked();
    let position = |query: &str| asked.iter().position(|q| q == query);
    let direct = position("_xmpps-server._tcp.b.test. SRV").expect("xmpps asked");
    let starttls = position("_xmpp-server._tcp.b.test. SRV").expect("xmpp asked");
    assert!(direct < starttls, "{asked:?}");

    // Both ends of a direct TLS link are recorded (a stream that starts secure: `transport
    // tls` in the setup, no STARTTLS) and replay byte-exact as our machines. A server that
    // stops ends its own streams in a way no transcript expresses, so a link yields the
    // transcript of the end that did not stop: c.test dials b.test over direct TLS too; a.test
    // stops first (b's receiving end from a.test is kept), then b.test (c's initiating end).
    let mut c_config = config_for(&side("c.test", "carol"), &[], &dns.config());
    c_config.hub.record = Some(sink.clone());
    let (c_listener, _) = listener();
    let c = ServerHandle::spawn_federating(loopback(), c_listener, c_config).unwrap();
    let mut carol = client(&c, "c.test", "carol");
    carol
        .send(&message("bob@b.test", "m2", "from c.test"))
        .unwrap();
    bob.wait_stanza(WAIT, |s| body(s).as_deref() == Some("from c.test"))
        .unwrap();
    let _ = alice.close(WAIT);
    let _ = bob.close(WAIT);
    let _ = carol.close(WAIT);
    let recorded = |who: &str| {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let found = sink
                .lock()
                .unwrap()
                .iter()
                .find(|t| t.contains(&format!("\n!{who} transport tls\n")))
                .cloned();
            match found {
                Some(text) => return text,
                None if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                None => panic!("no direct TLS {who} transcript"),
            }
        }
    };
    a.stop().unwrap();
    let receiving = recorded("s2s-receiving");
    b.stop().unwrap();
    let initiating = recorded("s2s-initiating");
    c.stop().unwrap();
    for (text, role, peer) in [
        (&receiving, Role::Server, "a.test"),
        (&initiating, Role::Client, "b.test"),
    ] {
        assert!(!text.contains("[TLS]"), "{text}");
        assert!(text.contains(" EXTERNAL\n"), "{text}");
        assert!(text.contains(&format!("peer-id dns {peer}\n")), "{text}");
        xmpp_testpeers::transcripts::replay(text, role).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

/// One side of [`own_cert_servers`]: its domain, user, other domain and its user.
fn own_cert_side<'a>(
    ca: &'a Ca,
    domain: &'a str,
    user: &'a str,
    others: &'a [(&'a str, &'a str)],
    dialback: bool,
    bidi: bool,
) -> Side<'a> {
    Side {
        domain,
        user,
        issuer: ca,
        trusts: ca,
        dialback,
        others,
        bidi,
        own_certs: true,
    }
}

#[test]
fn a_local_domain_the_connection_cannot_carry_gets_a_connection_of_its_own() {
    // a.test and a2.test, each with a certificate naming it alone, no dialback secret: once
    // a.test's connection to b.test is up, a2.test cannot be added to it (no dialback, and
    // its certificate is not the one presented on it). carol@a2.test's message takes a
    // second connection, from a2.test, presenting a2.test's certificate (SASL EXTERNAL).
    let ca = Ca::new("Federation Test CA");
    let (a_listener, _) = listener();
    let (b_listener, b_addr) = listener();
    let a = start(
        &own_cert_side(
            &ca,
            "a.test",
            "alice",
            &[("a2.test", "carol")],
            false,
            false,
        ),
        a_listener,
        &[("b.test", b_addr)],
    );
    let b = start(
        &own_cert_side(&ca, "b.test", "bob", &[], false, false),
        b_listener,
        &[],
    );
    let mut senders = [
        ("alice@a.test/phone", client(&a, "a.test", "alice")),
        ("carol@a2.test/phone", client(&a, "a2.test", "carol")),
    ];
    let mut bob = [("bob@b.test/phone", client(&b, "b.test", "bob"))];
    everyone_writes(&mut senders, &mut bob);
    // Again, on the connections now up.
    everyone_writes(&mut senders, &mut bob);
    let (a_stats, b_stats) = (a.stats().unwrap(), b.stats().unwrap());
    assert_eq!(a_stats.s2s_outgoing, 2, "{a_stats:?}");
    assert_eq!(b_stats.s2s_incoming, 2, "{b_stats:?}");
}

#[test]
fn with_bidi_the_receiving_server_adds_pairs_in_the_reverse_direction() {
    // XEP-0288 §3: a.test opens the one bidirectional connection to b.test (SASL EXTERNAL).
    // b.test has no route to a.test at all: dave@b2.test's message to alice can only arrive
    // if b.test asks for (b2.test, a.test) over that connection; a.test verifies the key with
    // b2.test's authoritative server (b.test's certificate does not name b2.test), by
    // dialback.
    let ca = Ca::new("Federation Test CA");
    let (a_listener, _) = listener();
    let (b_listener, b_addr) = listener();
    let a = start(
        &own_cert_side(&ca, "a.test", "alice", &[], true, true),
        a_listener,
        &[("b.test", b_addr), ("b2.test", b_addr)],
    );
    let b = start(
        &own_cert_side(&ca, "b.test", "bob", &[("b2.test", "dave")], true, true),
        b_listener,
        &[],
    );
    let mut alice = [("alice@a.test/phone", client(&a, "a.test", "alice"))];
    let mut bob = [("bob@b.test/phone", client(&b, "b.test", "bob"))];
    let mut dave = [("dave@b2.test/phone", client(&b, "b2.test", "dave"))];
    everyone_writes(&mut alice, &mut bob);
    everyone_writes(&mut bob, &mut alice);
    everyone_writes(&mut dave, &mut alice);
    // And back on the pair b.test asked for.
    everyone_writes(&mut alice, &mut dave);
    let counts = |stats: xmpp_server::ServerStats| (stats.s2s_incoming, stats.s2s_outgoing);
    assert_eq!(counts(a.stats().unwrap()), (0, 1));
    assert_eq!(counts(b.stats().unwrap()), (1, 0));
}

#[test]
fn the_dialback_verification_uses_xmpps_srv_and_direct_tls() {
    // bob@b.test writes to alice@a.test; a.test does not trust b.test's CA, so b.test
    // authenticates by dialback and a.test asks b.test's authoritative server. a.test finds it
    // by DNS: `_xmpps-server._tcp.b.test` names b.test's direct TLS port, and
    // `_xmpp-server._tcp.b.test` a port nobody listens on: the verification must take the
    // direct TLS address (XEP-0368) for the message to arrive.
    let (a_ca, b_ca) = (Ca::new("CA of a.test"), Ca::new("CA of b.test"));
    let (a_listener, a_addr) = listener();
    let (b_listener, _) = listener();
    let (b_tls_listener, b_tls_addr) = listener();
    let (closed, closed_addr) = listener();
    drop(closed);
    let dns = DnsServer::spawn_with(closed_addr.port(), Some(b_tls_addr.port()));
    let side = |domain, user, issuer| Side {
        domain,
        user,
        issuer,
        trusts: &a_ca,
        dialback: true,
        others: &[],
        bidi: false,
        own_certs: false,
    };
    let a = start_with_dns(
        &side("a.test", "alice", &a_ca),
        a_listener,
        &[],
        &dns.config(),
    );
    let b = ServerHandle::spawn_federating_with_direct_tls(
        loopback(),
        b_listener,
        b_tls_listener,
        config_for(
            &side("b.test", "bob", &b_ca),
            &[("a.test", a_addr)],
            &Dns::Off,
        ),
    )
    .unwrap();
    let mut alice = [("alice@a.test/phone", client(&a, "a.test", "alice"))];
    let mut bob = [("bob@b.test/phone", client(&b, "b.test", "bob"))];
    everyone_writes(&mut bob, &mut alice);
    let asked = dns.asked();
    assert!(
        asked.iter().any(|q| q == "_xmpps-server._tcp.b.test. SRV"),
        "{asked:?}"
    );
}

#[test]
fn sni_chooses_the_certificate_of_an_incoming_s2s_connection() {
    // b.test and b2.test, each with a certificate of its own: a TLS client on b's direct TLS
    // s2s port that names b2.test in SNI gets b2.test's certificate, one that names b.test
    // gets b.test's.
    use rustls::pki_types::pem::PemObject as _;
    use std::io::Write as _;
    let ca = Ca::new("Federation Test CA");
    let (b_listener, _) = listener();
    let (b_tls_listener, b_tls_addr) = listener();
    let _b = ServerHandle::spawn_federating_with_direct_tls(
        loopback(),
        b_listener,
        b_tls_listener,
        config_for(
            &own_cert_side(&ca, "b.test", "bob", &[("b2.test", "dave")], false, false),
            &[],
            &Dns::Off,
        ),
    )
    .unwrap();
    let (cert, key) = ca.issue("a.test");
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let (_, client_config) = xmpp_host::tls::s2s_configs(chain, key).unwrap();
    let presented = |sni: &str| {
        let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
        let mut config = (*client_config).clone();
        config.alpn_protocols = vec![b"xmpp-server".to_vec()];
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = std::net::TcpStream::connect(b_tls_addr).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='a.test' to='{sni}' version='1.0'>"
        );
        tls.write_all(header.as_bytes()).unwrap();
        let mut buf = [0u8; 1024];
        let n = xmpp_testpeers::read_some(&mut tls, &mut buf).unwrap();
        assert!(n > 0);
        let leaf = tls.conn.peer_certificates().unwrap()[0].clone();
        xmpp_server::presented_ids(&leaf)
    };
    let names = |ids: Vec<PresentedId>| -> Vec<String> {
        ids.into_iter()
            .filter_map(|id| match id {
                PresentedId::Dns(name) => Some(name),
                _ => None,
            })
            .collect()
    };
    assert_eq!(names(presented("b2.test")), vec!["b2.test".to_owned()]);
    assert_eq!(names(presented("b.test")), vec!["b.test".to_owned()]);
}
