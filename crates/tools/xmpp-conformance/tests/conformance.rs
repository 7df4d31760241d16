//! The checker against our example server (every case passes), against the example server
//! deliberately broken for each case in turn (each case fails: it can), and against Prosody
//! 0.12 and ejabberd 23.01 (the side-by-side tables of this crate's README; `BLESS=1`
//! rewrites them).
// Test code may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A test of a tool: the environment (BLESS), files and threads are its business.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use xmpp_conformance::report;
use xmpp_conformance::run::{
    Account, ComponentTarget, Outcome, S2sIdentity, Status, Target, run_case, run_cases,
};
use xmpp_host::tls::{Trust, Versions, client_config, client_config_with_certificate};
use xmpp_server::{
    Dns, HubConfig, RuntimeConfig, S2sSettings, S2sTls, ServerHandle, TestRewrite, TlsMaterial,
};
use xmpp_stream::BareJid;
use xmpp_stream::conformance::{CASES, Case, Expect, Phase, Vars};
use xmpp_stream::dialback::DialbackSecret;
use xmpp_testpeers::{
    PeerKind, PeerOptions, PrivateDns, S2sAuth, S2sOptions, TestCa, start_for_test_with,
};

const DOMAIN: &str = "localhost";
/// A case's deadline here: every server under test is on loopback.
const TIMEOUT: Duration = Duration::from_secs(3);
const ACCOUNTS: [(&str, &str); 2] = [("alice", "pw-a"), ("bob", "pw-b")];

fn all_cases() -> Vec<&'static Case> {
    CASES.iter().collect()
}

fn account(i: usize) -> Account {
    Account {
        user: ACCOUNTS[i].0.to_owned(),
        password: ACCOUNTS[i].1.to_owned(),
    }
}

/// `ca_pem` empty: trust anything (only for [`vars_for`], which connects nowhere).
fn target(addr: SocketAddr, domain: &str, ca_pem: &str) -> Target {
    let trust = if ca_pem.is_empty() {
        Trust::InsecureAcceptAny
    } else {
        Trust::Pem(ca_pem.as_bytes().to_vec())
    };
    Target {
        addr,
        domain: domain.to_owned(),
        server_name: domain.to_owned(),
        direct_tls: false,
        tls: client_config(&trust, Versions::Any).unwrap(),
        a: account(0),
        b: Some(account(1)),
        timeout: TIMEOUT,
        component: None,
        s2s: None,
        websocket: None,
        s2s_identity: None,
    }
}

/// The domain the checker authenticates as on a server-to-server stream.
const REMOTE: &str = "checker.test";

/// The checker as [`REMOTE`], with a certificate from `ca` (which also issued the server's).
fn identity(ca: &TestCa) -> S2sIdentity {
    let cert = ca.issue(REMOTE).unwrap();
    S2sIdentity {
        domain: REMOTE.to_owned(),
        tls: client_config_with_certificate(
            &Trust::Pem(ca.pem().into_bytes()),
            Versions::Any,
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
        )
        .unwrap(),
    }
}

/// Where every server under test serves XMPP over WebSocket.
const WS_PATH: &str = "/xmpp-websocket";

/// The component every server under test accepts (XEP-0114).
const COMPONENT: (&str, &str) = ("comp.localhost", "conformance-secret");

/// `target` with the component listening on `port`.
fn with_component(mut target: Target, port: u16) -> Target {
    target.component = Some(ComponentTarget {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        domain: COMPONENT.0.to_owned(),
        secret: COMPONENT.1.to_owned(),
    });
    target
}

/// Our example server's configuration, broken by `rewrite` if given.
fn config(rewrite: Option<TestRewrite>) -> RuntimeConfig {
    let mut hub = HubConfig::new(BareJid::new(DOMAIN).unwrap());
    for (user, password) in ACCOUNTS {
        hub = hub.with_user(user, password);
    }
    hub.components
        .push((BareJid::new(COMPONENT.0).unwrap(), COMPONENT.1.to_owned()));
    hub.test_rewrite = rewrite;
    RuntimeConfig {
        hub,
        tls: TlsMaterial::self_signed(&[DOMAIN]).unwrap(),
        log: false,
        trace: false,
        s2s: None,
    }
}

/// Our example server: one instance with its component port, one federating (the runtime
/// starts either, not both), the same configuration, broken by the same rewrite if given.
struct Ours {
    server: ServerHandle,
    /// Serves until dropped.
    _federating: ServerHandle,
    s2s: SocketAddr,
    /// Issued the federating instance's certificate and trusted for its peers'.
    ca: TestCa,
    /// Serves XMPP over WebSocket (`ws:`).
    websocket: ServerHandle,
}

fn our_server(rewrite: Option<TestRewrite>) -> Ours {
    our_server_on(rewrite, false)
}

/// [`our_server`], with direct TLS (XEP-0368) too if `direct_tls`.
fn our_server_on(rewrite: Option<TestRewrite>, direct_tls: bool) -> Ours {
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let direct = direct_tls.then_some(loopback);
    let server =
        ServerHandle::spawn_on(loopback, direct, Some(loopback), config(rewrite.clone())).unwrap();
    // The runtime starts c2s with either s2s or WebSocket, not both: three instances.
    let listener = std::net::TcpListener::bind(loopback).unwrap();
    let s2s = listener.local_addr().unwrap();
    let mut federated = config(rewrite.clone());
    federated.hub = federated
        .hub
        .with_s2s(DialbackSecret::new(b"conformance-dialback"));
    let ca = TestCa::new("conformance test CA").unwrap();
    let cert = ca.issue(DOMAIN).unwrap();
    federated.s2s = Some(S2sSettings {
        routes: std::collections::BTreeMap::new(),
        dns: Dns::Off,
        tls: S2sTls::from_pem(
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
            Some(ca.pem().as_bytes()),
        )
        .unwrap(),
        connect_timeout: TIMEOUT,
    });
    let federating = ServerHandle::spawn_federating(loopback, listener, federated).unwrap();
    let websocket =
        ServerHandle::spawn_websocket(loopback, loopback, false, config(rewrite)).unwrap();
    Ours {
        server,
        _federating: federating,
        s2s,
        ca,
        websocket,
    }
}

/// The target for our example server.
fn our_target(ours: &Ours) -> Target {
    let component = ours.server.component_addr.unwrap().port();
    let server = &ours.server;
    let mut target = with_component(target(server.addr, DOMAIN, &server.cert_pem), component);
    target.s2s = Some(ours.s2s);
    target.s2s_identity = Some(identity(&ours.ca));
    target.websocket = Some((ours.websocket.websocket_addr.unwrap(), WS_PATH.to_owned()));
    target
}

/// Our example server with direct TLS (XEP-0368) too: the same cases hold there, except
/// the STARTTLS one, which does not apply.
#[test]
fn direct_tls_runs_the_same_cases() {
    let ours = our_server_on(None, true);
    let mut target = our_target(&ours);
    target.addr = ours.server.direct_tls_addr.unwrap();
    target.direct_tls = true;
    let outcomes = run_cases(&target, &all_cases(), 8);
    for o in &outcomes {
        let expected = if o.case.name == "starttls.proceed-alone" {
            Status::NotApplicable
        } else {
            Status::Pass
        };
        assert_eq!(o.status, expected, "\n{}", report::table(&outcomes));
    }
}

fn ours() -> Vec<Outcome> {
    let server = our_server(None);
    run_cases(&our_target(&server), &all_cases(), 8)
}

/// Cases our example server fails on purpose, with the reason (none today).
const DELIBERATE: &[(u16, &str)] = &[];

#[test]
fn our_server_passes_every_case() {
    let outcomes = ours();
    assert_eq!(outcomes.len(), CASES.len());
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status != Status::Pass && !DELIBERATE.iter().any(|(id, _)| *id == o.case.id))
        .collect();
    assert!(failed.is_empty(), "\n{}", report::table(&outcomes));
}

#[test]
fn every_case_fails_against_a_server_broken_for_it() {
    let cases = all_cases();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let vars = vars_for(case);
                    let rewrite = TestRewrite {
                        input: case.breaks.input,
                        from: vars.fill(case.breaks.from).into_bytes(),
                        to: vars.fill(case.breaks.to).into_bytes(),
                    };
                    let server = our_server(Some(rewrite));
                    let outcome = run_case(&our_target(&server), case);
                    results.lock().unwrap().push(outcome);
                }
            });
        }
    });
    let mut outcomes = results.into_inner().unwrap();
    outcomes.sort_by_key(|o| o.case.id);
    assert_eq!(outcomes.len(), CASES.len());
    // Failed by the case's own judge: a broken set-up would prove nothing (except for the
    // case whose expectation is our client's negotiation itself).
    let passed: Vec<_> = outcomes
        .iter()
        .filter(|o| {
            o.status != Status::Fail
                || (o.received.starts_with("set-up failed") && o.case.expect != Expect::Negotiated)
        })
        .map(|o| o.case.name)
        .collect();
    assert!(
        passed.is_empty(),
        "cases that did not fail against a server broken for them: {passed:?}\n{}",
        report::table(&outcomes)
    );
}

/// The placeholders as a case will see them on our server (its resources are requested).
fn vars_for(case: &Case) -> Vars {
    let mut vars = target(SocketAddr::from((Ipv4Addr::LOCALHOST, 1)), DOMAIN, "").vars();
    vars.a_full = format!("{}/conformance-{}", vars.a, case.id);
    vars.b_full = format!("{}/conformance-{}", vars.b, case.id);
    COMPONENT.0.clone_into(&mut vars.component);
    REMOTE.clone_into(&mut vars.remote);
    vars
}

const BEGIN: &str = "<!-- compliance tables: generated by tests/conformance.rs (BLESS=1) -->";
const END: &str = "<!-- end of compliance tables -->";

fn peer(kind: PeerKind) -> Option<Vec<Outcome>> {
    // XEP-0198 on and a component, so the stream-management and component cases apply.
    let options = PeerOptions::new()
        .with_stream_management()
        .with_websocket()
        .with_component(COMPONENT.0, COMPONENT.1);
    let server = start_for_test_with(kind, &ACCOUNTS, &options)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.starttls_port));
    let mut target = target(addr, &server.domain, &server.certificate_pem);
    if let Some(component) = &server.component {
        target = with_component(target, component.port);
    }
    target.websocket = server.websocket_port.map(|port| {
        (
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            WS_PATH.to_owned(),
        )
    });
    let (s2s_cases, others): (Vec<&Case>, Vec<&Case>) = all_cases()
        .into_iter()
        .partition(|c| matches!(c.phase, Phase::S2sConnected | Phase::S2sAuthenticated));
    let (authenticated, s2s_cases): (Vec<&Case>, Vec<&Case>) = s2s_cases
        .into_iter()
        .partition(|c| c.phase == Phase::S2sAuthenticated);
    let mut outcomes = run_cases(&target, &others, 8);
    // One instance at a time: two ejabberd nodes starting side by side under load have
    // failed to start.
    drop(server);
    // A second instance federates (with dialback, for the same domain): the checker plays a
    // remote server against its s2s port.
    let dns = PrivateDns::start(&[]).unwrap();
    let ca = TestCa::new("conformance peer CA").unwrap();
    let federating = PeerOptions::new().with_s2s(S2sOptions {
        domain: target.domain.clone(),
        cert: ca.issue(&target.domain).unwrap(),
        auth: S2sAuth::Dialback,
        dns: dns.addr,
    });
    let peer = start_for_test_with(kind, &ACCOUNTS, &federating)?;
    target.s2s = peer
        .s2s_port
        .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    outcomes.extend(run_cases(&target, &s2s_cases, 8));
    drop(peer);
    // A third trusts the test CA and takes certificates only (SASL EXTERNAL): the checker
    // authenticates as a remote server with a certificate from it.
    let external = PeerOptions::new().with_s2s(S2sOptions {
        domain: target.domain.clone(),
        cert: ca.issue(&target.domain).unwrap(),
        auth: S2sAuth::External { ca_pem: ca.pem() },
        dns: dns.addr,
    });
    let peer = start_for_test_with(kind, &ACCOUNTS, &external)?;
    target.s2s = peer
        .s2s_port
        .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    target.s2s_identity = Some(identity(&ca));
    outcomes.extend(run_cases(&target, &authenticated, 8));
    outcomes.sort_by_key(|o| CASES.iter().position(|c| c.id == o.case.id));
    Some(outcomes)
}

/// The three servers side by side, compared with (or, with `BLESS=1`, written into) the
/// README. Only the result cells are compared: the notes quote the servers' bytes.
#[test]
fn compliance_tables_of_three_servers() {
    let (prosody, ejabberd) = std::thread::scope(|scope| {
        let prosody = scope.spawn(|| peer(PeerKind::Prosody));
        let ejabberd = scope.spawn(|| peer(PeerKind::Ejabberd));
        (prosody.join().unwrap(), ejabberd.join().unwrap())
    });
    let (Some(prosody), Some(ejabberd)) = (prosody, ejabberd) else {
        return;
    };
    let ours = ours();
    let cases = all_cases();
    let table = report::side_by_side(
        &cases,
        &[
            ("xmpp-server (ours)", &ours),
            ("Prosody 0.12", &prosody),
            ("ejabberd 23.01", &ejabberd),
        ],
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (Some(start), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md lacks the markers {BEGIN} / {END}");
    };
    let generated = format!("{BEGIN}\n\n{table}\n{END}");
    if std::env::var("BLESS").is_ok_and(|v| v == "1") {
        let updated = format!(
            "{}{generated}{}",
            &readme[..start],
            &readme[end + END.len()..]
        );
        std::fs::write(path, updated).unwrap();
        return;
    }
    let rows = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| #"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        rows(&readme[start..end]),
        rows(&generated),
        "the README's compliance tables are stale: run BLESS=1 cargo test -p xmpp-conformance --test conformance\n{table}"
    );
}
