//! Our XEP-0114 component side (`ComponentStream` in xmpp-host's blocking `Connection`, plain
//! TCP on loopback) against real Prosody 0.12 and ejabberd 23.01, each started by
//! `xmpp-testpeers` with a component listener (`PeerOptions::with_component`). For each server:
//! the component handshakes, exchanges a message each way with a c2s user (alice, logged in
//! with our own `ClientStream` through the blocking host), and closes cleanly; a component
//! with the wrong secret is refused with a stream error. Every scenario appends a row to the
//! interop matrix. Every wait is bounded.
//!
//! Run with `XMPP_INTEROP=require cargo test -p xmpp-host --test interop_component`; add
//! `XMPP_RECORD=1` to rewrite the transcripts under `testdata/transcripts/real-component/`
//! (`tests/replay_real.rs` replays them offline).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use minidom::Element;
use xmpp_host::blocking::{ClientOptions, ComponentOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_host::{Error, OsEntropy, matrix};
use xmpp_stream::transcript::Role;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, ComponentConfig, ComponentStream, FullJid,
    StreamErrorCondition,
};
use xmpp_testpeers::transcripts::{self, dir};
use xmpp_testpeers::{ComponentListener, PeerKind, PeerOptions, PeerServer, start_for_test_with};

const WAIT: Duration = Duration::from_secs(10);
const COMPONENT: &str = "comp.localhost";
const SECRET: &str = "comp-secret";
/// The address the component speaks as (any JID in its domain).
const BOT: &str = "bot@comp.localhost";
const NS_CLIENT: &str = "jabber:client";
const NS_COMPONENT: &str = "jabber:component:accept";

/// Our component, connected to `port` with `secret` and recording (role `component`).
fn connect_component(
    port: u16,
    secret: &str,
    comment: &str,
) -> Result<Connection<ComponentStream>, String> {
    let options = ComponentOptions::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let config = ComponentConfig::new(BareJid::new(COMPONENT).unwrap(), secret);
    Connection::connect_component_recorded(&options, config, comment)
        .map_err(|e| format!("component: connect: {e}"))
}

/// The events the recording holds (its `E component:` lines, without the time).
fn recorded_events(component: &Connection<ComponentStream>) -> Vec<String> {
    let text = component.transcript().unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(" E component: ").map(|(_, e)| e.to_owned()))
        .collect()
}

struct Peer {
    server: PeerServer,
    listener: ComponentListener,
    name: &'static str,
    version: &'static str,
}

impl Peer {
    fn start(kind: PeerKind) -> Option<Peer> {
        let options = PeerOptions::new().with_component(COMPONENT, SECRET);
        let server = start_for_test_with(kind, &[("alice", "pw-a")], &options)?;
        let listener = server.component.clone().expect("started with a component");
        let (name, version) = match kind {
            PeerKind::Prosody => ("prosody", "Prosody 0.12"),
            PeerKind::Ejabberd => ("ejabberd", "ejabberd 23.01"),
        };
        Some(Peer {
            server,
            listener,
            name,
            version,
        })
    }

    /// alice, logged in with our `ClientStream` (STARTTLS, strongest mechanism) as
    /// `alice@localhost/interop`.
    fn login_alice(&self) -> Result<(Connection<ClientStream>, FullJid), String> {
        let tls = client_config(
            &Trust::Pem(self.server.certificate_pem.clone().into_bytes()),
            Versions::Any,
        )
        .map_err(|e| e.to_string())?;
        let options = ClientOptions::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, self.server.starttls_port)),
            &self.server.domain,
            tls,
        );
        let jid = BareJid::new(&format!("alice@{}", self.server.domain)).unwrap();
        let mut config = ClientConfig::new(jid, "pw-a");
        config.resource = Some("interop".to_owned());
        let mut conn = Connection::connect(&options, config, OsEntropy::new())
            .map_err(|e| format!("alice: connect: {e}"))?;
        let jid = conn
            .negotiate(WAIT)
            .map_err(|e| format!("alice: login: {e}"))?;
        Ok((conn, jid))
    }
}

fn message(ns: &str, from: Option<&str>, to: &str, id: &str, body: &str) -> Element {
    let mut builder = Element::builder("message", ns)
        .attr("to".try_into().unwrap(), to)
        .attr("type".try_into().unwrap(), "chat")
        .attr("id".try_into().unwrap(), id);
    if let Some(from) = from {
        builder = builder.attr("from".try_into().unwrap(), from);
    }
    builder
        .append(Element::builder("body", ns).append(body).build())
        .build()
}

fn body_is(ns: &'static str, text: &'static str) -> impl Fn(&Element) -> bool {
    move |s| {
        s.name() == "message" && s.get_child("body", ns).map(Element::text).as_deref() == Some(text)
    }
}

/// `stanza` has exactly this namespace, `from`, `to` and body.
fn check_message(
    stanza: &Element,
    ns: &str,
    from: &str,
    to: &str,
    body: &str,
) -> Result<(), String> {
    let seen = (
        stanza.ns(),
        stanza.attr("from"),
        stanza.attr("to"),
        stanza.get_child("body", ns).map(Element::text),
    );
    let wanted = (ns.to_owned(), Some(from), Some(to), Some(body.to_owned()));
    if seen == wanted {
        Ok(())
    } else {
        Err(format!(
            "got {seen:?}, wanted {wanted:?}: {}",
            String::from(stanza)
        ))
    }
}

/// The whole successful session: handshake, a message each way with alice, clean closes.
/// Returns the component's transcript.
fn session(peer: &Peer) -> Result<String, String> {
    let (mut alice, alice_jid) = peer.login_alice()?;
    let alice_jid = alice_jid.to_string();
    let comment = format!(
        "Recorded against a real {} by crates/hosts/xmpp-host/tests/interop_component.rs: the component {COMPONENT} handshakes,\nsends alice a message, receives hers, and closes. Replayed as the component (role `component`).",
        peer.version
    );
    let mut component = connect_component(peer.listener.port, SECRET, &comment)?;
    let domain = component
        .negotiate(WAIT)
        .map_err(|e| format!("component: handshake: {e}"))?;
    // Exactly the server's header (with an id) and the handshake's success.
    let events = recorded_events(&component);
    let wanted = [
        "StreamOpened".to_owned(),
        format!("ComponentNegotiated {COMPONENT}"),
    ];
    if domain.as_str() != COMPONENT || events != wanted || component.machine().stream_id().is_none()
    {
        return Err(format!(
            "negotiated {domain}, events {events:?}, stream id {:?}",
            component.machine().stream_id()
        ));
    }
    if !component.machine().is_negotiated() {
        return Err("ComponentNegotiated but not is_negotiated()".to_owned());
    }

    // Component -> user. Built in jabber:client: the writer puts it in the stream's namespace.
    component
        .send(&message(
            NS_CLIENT,
            Some(BOT),
            &alice_jid,
            "c1",
            "hello from the component",
        ))
        .map_err(|e| e.to_string())?;
    let got = alice
        .wait_stanza(WAIT, body_is(NS_CLIENT, "hello from the component"))
        .map_err(|e| format!("alice waiting for the component's message: {e}"))?;
    check_message(&got, NS_CLIENT, BOT, &alice_jid, "hello from the component")?;

    // User -> component: arrives in jabber:component:accept, from alice's full JID.
    alice
        .send(&message(NS_CLIENT, None, BOT, "u1", "hello from alice"))
        .map_err(|e| e.to_string())?;
    let got = component
        .wait_stanza(WAIT, body_is(NS_COMPONENT, "hello from alice"))
        .map_err(|e| format!("component waiting for alice's message: {e}"))?;
    check_message(&got, NS_COMPONENT, &alice_jid, BOT, "hello from alice")?;
    if got.attr("id") != Some("u1") {
        return Err(format!("id {:?}", got.attr("id")));
    }

    match component.close(WAIT) {
        Ok(CloseReason::Graceful) => {}
        other => return Err(format!("component close: {other:?}")),
    }
    if !component.machine().is_closed() {
        return Err("closed gracefully but not is_closed()".to_owned());
    }
    match alice.close(WAIT) {
        Ok(CloseReason::Graceful) => {}
        other => return Err(format!("alice close: {other:?}")),
    }
    component
        .transcript()
        .ok_or_else(|| "no transcript".to_owned())
}

/// The recording holds what the session did and replays through a fresh `ComponentStream`;
/// with `XMPP_RECORD` it is also written under `testdata/transcripts/real-component/`.
fn keep_transcript(text: &str, file: &str) -> Result<(), String> {
    for line in [
        format!("!component domain {COMPONENT}"),
        format!("!component secret {SECRET}"),
        format!("E component: ComponentNegotiated {COMPONENT}"),
        "H component: send <message ".to_owned(),
        "S: <message ".to_owned(),
        "H component: close".to_owned(),
        "E component: Closed Graceful".to_owned(),
    ] {
        if !text.contains(&line) {
            return Err(format!("the transcript lacks {line:?}:\n{text}"));
        }
    }
    transcripts::replay(text, Role::Client)
        .map_err(|e| format!("replay of the fresh recording: {e}"))?;
    // What we sent is in the component stream's namespace, never jabber:client.
    if let Some(line) = text
        .lines()
        .find(|l| l.contains(" C: ") && l.contains(NS_CLIENT))
    {
        return Err(format!("jabber:client on the component stream: {line}"));
    }
    if std::env::var_os("XMPP_RECORD").is_some() {
        let dir = dir("real-component");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(file), text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A component proving the wrong secret: the server refuses the handshake with a stream error,
/// which our side reports as `Closed { StreamError }`.
fn wrong_secret(peer: &Peer) -> Result<(), String> {
    let mut component = connect_component(peer.listener.port, "not-the-secret", "wrong secret")?;
    match component.negotiate(WAIT) {
        Err(Error::Closed(reason))
            if matches!(
                &*reason,
                CloseReason::StreamError(error) if error.condition == StreamErrorCondition::NotAuthorized
            ) => {}
        other => return Err(format!("handshake: {other:?}")),
    }
    // Exactly the server's header and its stream error.
    let events = recorded_events(&component);
    if events != ["StreamOpened", "Closed StreamError not-authorized"] {
        return Err(format!("events: {events:?}"));
    }
    if component.machine().is_negotiated() || !component.machine().is_closed() {
        return Err("refused, yet negotiated or not closed".to_owned());
    }
    let text = component.transcript().unwrap_or_default();
    if text.contains("<handshake/>") || !text.contains("<not-authorized ") {
        return Err(format!("unexpected exchange:\n{text}"));
    }
    Ok(())
}

fn run(kind: PeerKind) {
    let Some(peer) = Peer::start(kind) else {
        return;
    };
    let file = format!("{}-component.txt", peer.name);
    let outcomes = [
        (
            "component (XEP-0114): handshake, messages both ways, close",
            session(&peer).and_then(|text| keep_transcript(&text, &file)),
        ),
        (
            "component (XEP-0114): wrong secret: not-authorized",
            wrong_secret(&peer),
        ),
    ];
    // One matrix row per scenario; every failure is reported, with the server's log.
    let mut failures = Vec::new();
    for (feature, outcome) in outcomes {
        matrix::record(peer.name, feature, outcome.is_ok());
        eprintln!("{} / {feature}: {outcome:?}", peer.name);
        if let Err(e) = outcome {
            failures.push(format!("{feature}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}:\n{}\n--- server log tail ---\n{}",
        peer.name,
        failures.join("\n"),
        peer.server.log_tail(200)
    );
}

#[test]
fn prosody() {
    run(PeerKind::Prosody);
}

#[test]
fn ejabberd() {
    run(PeerKind::Ejabberd);
}
