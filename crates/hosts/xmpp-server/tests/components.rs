//! XEP-0114 components on the example server's component port, at the socket level: the
//! server runs in-process (`ServerHandle::spawn_on`, a component listener on 127.0.0.1), clients
//! are our `ClientStream` over STARTTLS, components are our `ComponentStream` (both through
//! xmpp-host's blocking `Connection`) and real libraries nobody here wrote: slixmpp's
//! `ComponentXMPP` and libstrophe's `xmpp_connect_component`
//! (`crates/tools/xmpp-testpeers/peers/`).
//!
//! Missing peers skip with a message unless `XMPP_INTEROP=require`. Under `XMPP_RECORD=1` the
//! real components' sessions are written to `testdata/transcripts/real-component-server/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_host::blocking::{ComponentOptions, Connection};
use xmpp_host::{Error, OsEntropy};
use xmpp_server::{HubConfig, ServerHandle, TranscriptSink};
use xmpp_stream::{
    BareJid, ClientStream, CloseReason, ComponentConfig, ComponentStream, Event,
    StreamErrorCondition,
};

use common::{
    Peer, body, build_strophe_program, error_condition, login, loopback, missing, parse, results,
    runtime_config, shared_peers_dir, slixmpp_python,
};

const DOMAIN: &str = "localhost";
/// The component the tests connect.
const COMPONENT: &str = "comp.localhost";
const SECRET: &str = "comp-secret";
/// A configured component that never connects.
const IDLE: &str = "idle.localhost";
const WAIT: Duration = Duration::from_secs(10);

struct Server {
    handle: ServerHandle,
    /// Finished sessions' transcripts, when recording.
    sink: Option<TranscriptSink>,
}

impl Server {
    fn start(record: bool) -> Server {
        let mut hub = HubConfig::new(BareJid::new(DOMAIN).unwrap())
            .with_user("alice", "alice-pw")
            .with_user("bob", "bob-pw")
            .with_component(BareJid::new(COMPONENT).unwrap(), SECRET)
            .with_component(BareJid::new(IDLE).unwrap(), "idle-secret");
        let sink = record.then(TranscriptSink::default);
        hub.record.clone_from(&sink);
        let config = runtime_config(hub, DOMAIN);
        let handle = ServerHandle::spawn_on(loopback(), None, Some(loopback()), config).unwrap();
        Server { handle, sink }
    }

    fn component_addr(&self) -> SocketAddr {
        self.handle.component_addr.unwrap()
    }

    /// `user` logged in as `user@localhost/RESOURCE`, available (initial presence sent).
    fn client(&self, user: &str, resource: &str) -> Connection<ClientStream> {
        login(&self.handle, DOMAIN, user, resource, WAIT)
    }
}

/// Send `xml` (a stanza with the id `id`) as `client` and wait for the stanza with that id
/// coming back: the answer or the bounce.
fn exchange(client: &mut Connection<ClientStream>, xml: &str, id: &str) -> Element {
    client.send(&parse(xml)).unwrap();
    client
        .wait_stanza(WAIT, |s| s.attr("id") == Some(id))
        .unwrap()
}

fn is_message_with_body(stanza: &Element, text: &str) -> bool {
    stanza.name() == "message" && body(stanza).as_deref() == Some(text)
}

/// Our component, `domain` with `secret`, connected to the component port (plain TCP):
/// xmpp-host's blocking connection for a `ComponentStream`.
fn connect_component(addr: SocketAddr, domain: &str, secret: &str) -> Connection<ComponentStream> {
    let config = ComponentConfig::new(BareJid::new(domain).unwrap(), secret);
    Connection::connect_component(&ComponentOptions::new(addr), config, OsEntropy::new()).unwrap()
}

/// The stream error the server closed the component's stream with.
fn refused_with(component: &mut Connection<ComponentStream>) -> StreamErrorCondition {
    match component.negotiate(WAIT) {
        Err(Error::Closed(reason)) => match *reason {
            CloseReason::StreamError(error) => error.condition,
            other => panic!("expected a stream error, got {other:?}"),
        },
        other => panic!("expected a stream error, got {other:?}"),
    }
}

fn connected_component(server: &Server) -> Connection<ComponentStream> {
    let mut component = connect_component(server.component_addr(), COMPONENT, SECRET);
    assert_eq!(component.negotiate(WAIT).unwrap().as_str(), COMPONENT);
    component
}

#[test]
fn messages_and_iqs_flow_both_ways_between_a_client_and_a_component() {
    let server = Server::start(false);
    let mut alice = server.client("alice", "phone");
    let mut comp = connected_component(&server);

    // Component -> the bare JID of an available user: the IM machine's delivery rules.
    comp.send(&parse(
        "<message xmlns='jabber:component:accept' type='chat' from='bot@comp.localhost' \
         to='alice@localhost'><body>hello alice</body></message>",
    ))
    .unwrap();
    let got = alice
        .wait_stanza(WAIT, |s| is_message_with_body(s, "hello alice"))
        .unwrap();
    assert_eq!(got.attr("from"), Some("bot@comp.localhost"));
    assert_eq!(got.attr("to"), Some("alice@localhost"));

    // Client -> a subdomain of the component's domain: the server stamps the sender.
    alice
        .send(&parse(
            "<message xmlns='jabber:client' type='chat' to='room@muc.comp.localhost'>\
             <body>hi from alice</body></message>",
        ))
        .unwrap();
    let got = comp
        .wait_stanza(WAIT, |s| is_message_with_body(s, "hi from alice"))
        .unwrap();
    assert_eq!(got.attr("from"), Some("alice@localhost/phone"));
    assert_eq!(got.attr("to"), Some("room@muc.comp.localhost"));
    assert_eq!(got.ns(), "jabber:component:accept");

    // An iq to the component's domain and the component's answer.
    alice
        .send(&parse(
            "<iq xmlns='jabber:client' type='get' id='v1' to='comp.localhost'>\
             <query xmlns='jabber:iq:version'/></iq>",
        ))
        .unwrap();
    let iq = comp
        .wait_stanza(WAIT, |s| s.name() == "iq" && s.attr("id") == Some("v1"))
        .unwrap();
    assert_eq!(iq.attr("from"), Some("alice@localhost/phone"));
    comp.send(&parse(
        "<iq xmlns='jabber:component:accept' type='result' id='v1' from='comp.localhost' \
         to='alice@localhost/phone'><query xmlns='jabber:iq:version'><name>bot</name></query></iq>",
    ))
    .unwrap();
    let result = alice
        .wait_stanza(WAIT, |s| s.name() == "iq" && s.attr("id") == Some("v1"))
        .unwrap();
    assert_eq!(result.attr("type"), Some("result"));
    assert_eq!(result.attr("from"), Some("comp.localhost"));

    // The component asks the server itself: the answer comes back to the component.
    comp.send(&parse(
        "<iq xmlns='jabber:component:accept' type='get' id='p1' from='comp.localhost' \
         to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    ))
    .unwrap();
    let pong = comp
        .wait_stanza(WAIT, |s| s.name() == "iq" && s.attr("id") == Some("p1"))
        .unwrap();
    assert_eq!(pong.attr("type"), Some("result"));
    assert_eq!(pong.attr("from"), Some("localhost"));
    assert_eq!(pong.attr("to"), Some("comp.localhost"));

    // The server lists its components as disco items.
    let items = exchange(
        &mut alice,
        "<iq xmlns='jabber:client' type='get' id='d1' to='localhost'>\
         <query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
        "d1",
    );
    assert_eq!(items.attr("type"), Some("result"));
    let jids: Vec<&str> = items
        .children()
        .flat_map(Element::children)
        .filter_map(|item| item.attr("jid"))
        .collect();
    assert_eq!(jids, [COMPONENT, IDLE]);

    assert_eq!(comp.close(WAIT).unwrap(), CloseReason::Graceful);
    alice.close(WAIT).unwrap();
}

#[test]
fn a_message_from_a_component_to_an_offline_user_waits_for_its_presence() {
    let server = Server::start(false);
    let mut comp = connected_component(&server);
    comp.send(&parse(
        "<message xmlns='jabber:component:accept' from='bot@comp.localhost' \
         to='bob@localhost'><body>stored for bob</body></message>",
    ))
    .unwrap();
    // The component's stanzas are handled in order: once this answer arrives, the message
    // was stored.
    comp.send(&parse(
        "<iq xmlns='jabber:component:accept' type='get' id='sync' from='comp.localhost' \
         to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    ))
    .unwrap();
    comp.wait_stanza(WAIT, |s| s.attr("id") == Some("sync"))
        .unwrap();
    let mut bob = server.client("bob", "laptop");
    let got = bob
        .wait_stanza(WAIT, |s| is_message_with_body(s, "stored for bob"))
        .unwrap();
    assert_eq!(got.attr("from"), Some("bot@comp.localhost"));
    bob.close(WAIT).unwrap();
    comp.close(WAIT).unwrap();
}

#[test]
fn a_component_that_is_not_connected_is_service_unavailable() {
    let server = Server::start(false);
    let mut alice = server.client("alice", "phone");
    // Configured, never connected.
    let bounce = exchange(
        &mut alice,
        "<message xmlns='jabber:client' id='m1' to='bot@idle.localhost'><body>anyone?</body></message>",
        "m1",
    );
    assert_eq!(
        error_condition(&bounce).as_deref(),
        Some("service-unavailable")
    );
    assert_eq!(bounce.attr("from"), Some("bot@idle.localhost"));

    // Connected, then gone: the same, and the domain is free to connect again.
    let mut comp = connected_component(&server);
    assert_eq!(comp.close(WAIT).unwrap(), CloseReason::Graceful);
    let bounce = exchange(
        &mut alice,
        "<iq xmlns='jabber:client' type='get' id='i1' to='comp.localhost'>\
             <query xmlns='jabber:iq:version'/></iq>",
        "i1",
    );
    assert_eq!(
        error_condition(&bounce).as_deref(),
        Some("service-unavailable")
    );
    let mut again = connected_component(&server);
    again.close(WAIT).unwrap();

    // Not a component, not the served domain: no server-to-server here.
    let bounce = exchange(
        &mut alice,
        "<message xmlns='jabber:client' id='m2' to='someone@example.test'><body>x</body></message>",
        "m2",
    );
    assert_eq!(
        error_condition(&bounce).as_deref(),
        Some("remote-server-not-found")
    );
    alice.close(WAIT).unwrap();
}

#[test]
fn a_second_connection_for_a_connected_component_gets_conflict() {
    let server = Server::start(false);
    let mut alice = server.client("alice", "phone");
    let mut first = connected_component(&server);
    let mut second = connect_component(server.component_addr(), COMPONENT, SECRET);
    assert_eq!(refused_with(&mut second), StreamErrorCondition::Conflict);
    // The first one still serves the domain.
    alice
        .send(&parse(
            "<message xmlns='jabber:client' to='bot@comp.localhost'><body>still there?</body></message>",
        ))
        .unwrap();
    first
        .wait_stanza(WAIT, |s| is_message_with_body(s, "still there?"))
        .unwrap();
    first.close(WAIT).unwrap();
    alice.close(WAIT).unwrap();
}

#[test]
fn an_unknown_component_domain_is_host_unknown() {
    let server = Server::start(false);
    let mut link = connect_component(server.component_addr(), "nobody.localhost", SECRET);
    assert_eq!(refused_with(&mut link), StreamErrorCondition::HostUnknown);
    // The served domain is not a component either.
    let mut link = connect_component(server.component_addr(), DOMAIN, SECRET);
    assert_eq!(refused_with(&mut link), StreamErrorCondition::HostUnknown);
}

#[test]
fn a_wrong_secret_is_not_authorized() {
    let server = Server::start(false);
    let mut link = connect_component(server.component_addr(), COMPONENT, "idle-secret");
    assert_eq!(refused_with(&mut link), StreamErrorCondition::NotAuthorized);
    // The refused attempt left the domain free.
    connected_component(&server).close(WAIT).unwrap();
}

#[test]
fn a_stanza_from_outside_the_component_domain_is_invalid_from() {
    let server = Server::start(false);
    let mut alice = server.client("alice", "phone");
    let mut comp = connected_component(&server);
    comp.send(&parse(
        "<message xmlns='jabber:component:accept' from='mallory@localhost' \
         to='alice@localhost'><body>spoofed</body></message>",
    ))
    .unwrap();
    let closed = loop {
        match comp.next_event(WAIT).unwrap() {
            Some(Event::Closed { reason }) => break reason,
            Some(_) => {}
            None => panic!("no close"),
        }
    };
    assert!(
        matches!(&closed, CloseReason::StreamError(e) if e.condition == StreamErrorCondition::InvalidFrom),
        "{closed:?}"
    );
    // Nothing reached alice, and the component is gone: its domain answers
    // service-unavailable (the iq's answer also shows that the spoofed message, written
    // before it, was not delivered).
    alice
        .send(&parse(
            "<iq xmlns='jabber:client' type='get' id='after' to='comp.localhost'>\
             <query xmlns='jabber:iq:version'/></iq>",
        ))
        .unwrap();
    let mut seen = Vec::new();
    let answer = loop {
        match alice.next_event(WAIT).unwrap() {
            Some(Event::Stanza(s)) if s.attr("id") == Some("after") => break s,
            // Her own presence comes back to her; any message is the spoofed one.
            Some(Event::Stanza(s)) if s.name() == "message" => seen.push(String::from(&s)),
            Some(_) => {}
            None => panic!("alice's stream ended"),
        }
    };
    assert_eq!(
        error_condition(&answer).as_deref(),
        Some("service-unavailable")
    );
    assert!(
        seen.is_empty(),
        "the spoofed message was delivered: {seen:?}"
    );
    alice.close(WAIT).unwrap();
}

// ----- real components -----

/// A real component's run against the server: alice (our client) is available; the peer
/// connects to the component port, says hello to alice, echoes alice's answer and closes.
fn real_component(peer: &str, mut command: Command) {
    let record = std::env::var("XMPP_RECORD").is_ok_and(|v| v == "1");
    let server = Server::start(record);
    let mut alice = server.client("alice", "rust");
    command
        .arg("127.0.0.1")
        .arg(server.component_addr().port().to_string())
        .arg(COMPONENT)
        .arg(SECRET)
        .arg(format!("alice@{DOMAIN}"));
    let running = Peer::spawn(command);

    let hello = format!("hello from {peer}");
    let got = alice.wait_stanza(Duration::from_secs(20), |s| is_message_with_body(s, &hello));
    let got = match got {
        Ok(got) => got,
        Err(e) => {
            let (_, out, err) = running.finish();
            panic!("{peer}: no hello ({e:?})\nstdout:\n{out}\nstderr:\n{err}")
        }
    };
    assert_eq!(got.attr("from"), Some("bot@comp.localhost"), "{peer}");
    assert_eq!(got.attr("to"), Some("alice@localhost"), "{peer}");

    alice
        .send(&parse(
            "<message xmlns='jabber:client' type='chat' to='bot@comp.localhost'>\
             <body>ping from rust</body></message>",
        ))
        .unwrap();
    let echo = alice
        .wait_stanza(WAIT, |s| is_message_with_body(s, "echo: ping from rust"))
        .unwrap();
    assert_eq!(echo.attr("from"), Some("bot@comp.localhost"), "{peer}");
    assert_eq!(echo.attr("to"), Some("alice@localhost/rust"), "{peer}");

    let (ok, out, err) = running.finish();
    let rows = results(&out);
    println!("{peer}: {rows:?}");
    for feature in ["handshake", "message", "close"] {
        assert!(
            rows.iter().any(|(f, pass)| f == feature && *pass),
            "{peer}: {feature} did not pass\nstdout:\n{out}\nstderr:\n{err}"
        );
    }
    // What the component saw: the sender stamped by the server, the address alice used.
    assert!(
        out.lines()
            .any(|l| l == "GOT from=alice@localhost/rust to=bot@comp.localhost body=ping from rust"),
        "{peer}\nstdout:\n{out}"
    );
    assert!(
        ok,
        "{peer} exited with failure\nstdout:\n{out}\nstderr:\n{err}"
    );
    alice.close(WAIT).unwrap();
    save_component_transcript(&server, peer);
}

/// Under `XMPP_RECORD=1`: the component's session as
/// `testdata/transcripts/real-component-server/PEER.txt` (role `component-server`).
fn save_component_transcript(server: &Server, peer: &str) {
    let Some(sink) = &server.sink else {
        return;
    };
    let is_component = |t: &String| t.contains("\n!component-server ");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sink.lock().unwrap().iter().any(is_component) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let transcripts: Vec<String> = sink
        .lock()
        .unwrap()
        .iter()
        .filter(|t| is_component(t))
        .cloned()
        .collect();
    assert_eq!(
        transcripts.len(),
        1,
        "{peer}: one replayable component session"
    );
    let dir = transcripts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let comment = format!(
        "# {peer} as an XEP-0114 component (crates/tools/xmpp-testpeers/peers/) against the hub's \
         component port; alice (our ClientStream) on the c2s side. Recorded by \
         crates/hosts/xmpp-server/tests/components.rs with XMPP_RECORD=1.\n"
    );
    std::fs::write(
        dir.join(format!("{peer}.txt")),
        format!("{comment}{}", transcripts[0]),
    )
    .unwrap();
}

fn transcripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../testdata/transcripts/real-component-server")
}

#[test]
fn slixmpp_component_exchanges_messages_with_a_client() {
    let Some(python) = slixmpp_python() else {
        missing("slixmpp is not installed (Debian: python3-slixmpp)");
        return;
    };
    let mut command = Command::new(python);
    command.arg(shared_peers_dir().join("slixmpp_component.py"));
    real_component("slixmpp", command);
}

#[test]
fn libstrophe_component_exchanges_messages_with_a_client() {
    let Some(program) = build_strophe_program(&shared_peers_dir().join("strophe_component.c"))
    else {
        missing("libstrophe cannot be built against (Debian: libstrophe-dev, pkg-config, cc)");
        return;
    };
    real_component("libstrophe", Command::new(program));
}
