//! Our XEP-0114 component side (`ComponentStream`, run by xmpp-host's [`Driver`] over a plain
//! loopback `TcpStream`) against real Prosody 0.12 and ejabberd 23.01, each started by
//! `xmpp-testpeers` with a component listener (`PeerOptions::with_component`). For each server:
//! the component handshakes, exchanges a message each way with a c2s user (alice, logged in
//! with our own `ClientStream` through the blocking host), and closes cleanly; a component
//! with the wrong secret is refused with a stream error. Every scenario appends a row to the
//! interop matrix. Every wait is bounded.
//!
//! Run with `XMPP_INTEROP=require cargo test -p xmpp-host --test interop_component`; add
//! `XMPP_RECORD=1` to rewrite the transcripts under `testdata/transcripts/real-component/`.
//! Two tests here need no server: they replay those files offline through a fresh
//! `ComponentStream` (role `component`), and check that a changed secret or stream id fails.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use minidom::Element;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::driver::{Action, Driver, Next};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_host::{OsEntropy, Recorder, matrix};
use xmpp_stream::transcript::Role;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, ComponentConfig, ComponentStream, Event,
    FullJid, StreamErrorCondition, Transport,
};
use xmpp_testpeers::transcripts::{self, dir, flip_entropy};
use xmpp_testpeers::{ComponentListener, PeerKind, PeerOptions, PeerServer, start_for_test_with};

const WAIT: Duration = Duration::from_secs(10);
const COMPONENT: &str = "comp.localhost";
const SECRET: &str = "comp-secret";
/// The address the component speaks as (any JID in its domain).
const BOT: &str = "bot@comp.localhost";
const NS_CLIENT: &str = "jabber:client";
const NS_COMPONENT: &str = "jabber:component:accept";

/// A component connection: the machine in a recording [`Driver`], and its socket. The loop is
/// the one the driver's docs describe (and `blocking::Connection` runs), without TLS: a
/// component stream never asks for it.
struct Component {
    driver: Driver,
    socket: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Component {
    fn connect(port: u16, secret: &str, comment: &str) -> Component {
        let config = ComponentConfig::new(BareJid::new(COMPONENT).unwrap(), secret);
        let (entropy, log) = OsEntropy::recording();
        let recorder = Recorder::component(comment, &config, log);
        let driver = Driver::recorded(ComponentStream::new(config, entropy), recorder);
        let socket =
            TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), WAIT)
                .unwrap();
        socket.set_nodelay(true).unwrap();
        let mut component = Component {
            driver,
            socket: Some(socket),
            buf: vec![0; 4096],
        };
        component.driver.start(Transport::Plain).unwrap();
        component.pump();
        component
    }

    /// Carry out the driver's actions, in order.
    fn pump(&mut self) {
        while let Some(action) = self.driver.next_action() {
            let written = match (&action, &mut self.socket) {
                (Action::Write(bytes), Some(socket)) => socket.write_all(bytes).is_ok(),
                // No socket, or TLS (which no component stream asks for): hang up.
                _ => false,
            };
            if !written {
                self.hang_up();
            }
        }
    }

    fn hang_up(&mut self) {
        if let Some(socket) = self.socket.take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        if !self.driver.is_closed() {
            self.driver.transport_closed();
        }
    }

    /// The next event within `timeout`; `Ok(None)` once the stream is over.
    fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, String> {
        let deadline = self.driver.now().saturating_add(timeout);
        loop {
            match self.driver.poll_event(deadline) {
                Next::Event(event) => return Ok(Some(event)),
                Next::Closed => return Ok(None),
                Next::Expired => return Err("timed out".to_owned()),
                Next::Read(wait) => self.read_once(wait),
                other => return Err(format!("unexpected {other:?}")),
            }
        }
    }

    fn read_once(&mut self, wait: Duration) {
        let Some(socket) = &mut self.socket else {
            self.hang_up();
            self.pump();
            return;
        };
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .unwrap();
        match socket.read(&mut self.buf) {
            Ok(0) => self.hang_up(),
            Ok(n) => self.driver.input(&self.buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.driver.timeout();
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => self.hang_up(),
        }
        self.pump();
    }

    /// Read until the handshake is done; returns the events on the way (the last one is
    /// `ComponentNegotiated` or `Closed`).
    fn negotiate(&mut self) -> Result<Vec<Event>, String> {
        let mut events = Vec::new();
        loop {
            let event = self
                .next_event(WAIT)?
                .ok_or("the stream ended without a Closed event")?;
            let done = matches!(
                event,
                Event::ComponentNegotiated { .. } | Event::Closed { .. }
            );
            events.push(event);
            if done {
                return Ok(events);
            }
        }
    }

    fn send(&mut self, stanza: &Element) -> Result<(), String> {
        self.driver.send(stanza).map_err(|e| e.to_string())?;
        self.pump();
        Ok(())
    }

    fn wait_stanza(&mut self, accept: impl Fn(&Element) -> bool) -> Result<Element, String> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.next_event(left)? {
                Some(Event::Stanza(stanza)) if accept(&stanza) => return Ok(stanza),
                Some(Event::Closed { reason }) => return Err(format!("closed: {reason:?}")),
                Some(_) => {}
                None => return Err("the stream is over".to_owned()),
            }
        }
    }

    /// Close, wait for the server's close, then shut the socket. Returns how it ended.
    fn close(&mut self) -> Result<CloseReason, String> {
        self.driver.close().map_err(|e| e.to_string())?;
        self.pump();
        let result = loop {
            match self.next_event(WAIT) {
                Ok(Some(Event::Closed { reason })) => break Ok(reason),
                Ok(Some(_)) => {}
                Ok(None) => break Err("ended without a Closed event".to_owned()),
                Err(e) => break Err(e),
            }
        };
        self.hang_up();
        result
    }

    fn transcript(&self) -> String {
        self.driver
            .recorder()
            .map(Recorder::finish)
            .unwrap_or_default()
    }
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
    let mut component = Component::connect(peer.listener.port, SECRET, &comment);
    let events = component.negotiate()?;
    match events.as_slice() {
        [
            Event::StreamOpened { id: Some(_), .. },
            Event::ComponentNegotiated { domain },
        ] if domain.as_str() == COMPONENT => {}
        other => return Err(format!("negotiation events: {other:?}")),
    }
    if !component.driver.machine().is_negotiated() {
        return Err("ComponentNegotiated but not is_negotiated()".to_owned());
    }

    // Component -> user. Built in jabber:client: the writer puts it in the stream's namespace.
    component.send(&message(
        NS_CLIENT,
        Some(BOT),
        &alice_jid,
        "c1",
        "hello from the component",
    ))?;
    let got = alice
        .wait_stanza(WAIT, body_is(NS_CLIENT, "hello from the component"))
        .map_err(|e| format!("alice waiting for the component's message: {e}"))?;
    check_message(&got, NS_CLIENT, BOT, &alice_jid, "hello from the component")?;

    // User -> component: arrives in jabber:component:accept, from alice's full JID.
    alice
        .send(&message(NS_CLIENT, None, BOT, "u1", "hello from alice"))
        .map_err(|e| e.to_string())?;
    let got = component
        .wait_stanza(body_is(NS_COMPONENT, "hello from alice"))
        .map_err(|e| format!("component waiting for alice's message: {e}"))?;
    check_message(&got, NS_COMPONENT, &alice_jid, BOT, "hello from alice")?;
    if got.attr("id") != Some("u1") {
        return Err(format!("id {:?}", got.attr("id")));
    }

    match component.close()? {
        CloseReason::Graceful => {}
        other => return Err(format!("component close: {other:?}")),
    }
    if !component.driver.machine().is_closed() {
        return Err("closed gracefully but not is_closed()".to_owned());
    }
    match alice.close(WAIT) {
        Ok(CloseReason::Graceful) => {}
        other => return Err(format!("alice close: {other:?}")),
    }
    Ok(component.transcript())
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
    let mut component = Component::connect(peer.listener.port, "not-the-secret", "wrong secret");
    let events = component.negotiate()?;
    match events.as_slice() {
        [
            Event::StreamOpened { .. },
            Event::Closed {
                reason: CloseReason::StreamError(error),
            },
        ] if error.condition == StreamErrorCondition::NotAuthorized => {}
        other => return Err(format!("events: {other:?}")),
    }
    if component.driver.machine().is_negotiated() || !component.driver.machine().is_closed() {
        return Err("refused, yet negotiated or not closed".to_owned());
    }
    let text = component.transcript();
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

/// The recorded sessions replay offline, byte-exact, through a fresh `ComponentStream`.
#[test]
fn every_real_component_transcript_replays_as_the_component() {
    let names = transcripts::replay_all(&dir("real-component"), Role::Client)
        .unwrap_or_else(|e| panic!("{e}"));
    for peer in ["prosody", "ejabberd"] {
        assert!(names.iter().any(|n| n.starts_with(peer)), "{names:?}");
    }
}

/// The replay is a real check: the handshake is SHA-1 of the server's stream id and the secret,
/// so another secret, or another id in the server's header, no longer reproduces what the real
/// server accepted. (The component draws no entropy: nothing to flip.)
#[test]
fn component_replay_detects_changed_secret_or_stream_id() {
    for file in transcripts::load(&dir("real-component")).unwrap() {
        let text = &file.text;
        assert_eq!(flip_entropy(text, Role::Client), None, "{}", file.name);
        let secret = format!("!component secret {SECRET}");
        assert!(text.contains(&secret), "{}", file.name);
        let changed = text.replace(&secret, "!component secret other-secret");
        assert!(
            transcripts::replay(&changed, Role::Client).is_err(),
            "{}: a different secret still replayed",
            file.name
        );
        let header = text
            .lines()
            .find(|l| l.contains(" S: <?xml") && l.contains(" id='"))
            .expect("the server's header carries an id");
        let changed = text.replacen(header, &header.replacen(" id='", " id='0", 1), 1);
        assert!(
            transcripts::replay(&changed, Role::Client).is_err(),
            "{}: a different stream id still replayed",
            file.name
        );
    }
}
