//! XEP-0198 resumption of our client (`ClientStream` in the blocking driver) against real
//! Prosody 0.12 (`mod_smacks`) and ejabberd 23.01 (`mod_stream_mgmt`) on loopback: alice
//! enables stream management with resumption, receives messages, loses her TCP connection
//! without `</stream>` while bob keeps sending, reconnects and resumes; every message arrives
//! exactly once, in order. Every wait is bounded.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use minidom::Element;
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config};
use xmpp_host::{Error, OsEntropy};
use xmpp_stream::transcript::{Role, Transcript};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Event, FullJid, SmConfig, SmEvent, SmState,
};
use xmpp_testpeers::{PeerKind, PeerOptions, PeerServer, start_for_test_with};

const WAIT: Duration = Duration::from_secs(10);

fn options(server: &PeerServer) -> ClientOptions {
    let tls = client_config(
        &Trust::Pem(server.certificate_pem.clone().into_bytes()),
        Versions::Any,
    )
    .unwrap();
    ClientOptions::new(
        SocketAddr::from((Ipv4Addr::LOCALHOST, server.starttls_port)),
        &server.domain,
        tls,
    )
}

fn config(server: &PeerServer, user: &str, password: &str, sm: bool) -> ClientConfig {
    let jid = BareJid::new(&format!("{user}@{}", server.domain)).unwrap();
    let mut config = ClientConfig::new(jid, password);
    config.resource = Some("sm".to_owned());
    if sm {
        config.sm = SmConfig::on();
    }
    config
}

/// Read events until `done` says so; the message ids seen go to `ids`.
fn read_until(
    conn: &mut Connection<ClientStream>,
    ids: &mut Vec<String>,
    mut done: impl FnMut(&Event, &[String]) -> bool,
) -> Result<(), String> {
    loop {
        let event = match conn.next_event(WAIT) {
            Ok(Some(event)) => event,
            Ok(None) => return Err("closed".to_owned()),
            Err(Error::Timeout) => return Err(format!("timed out; messages so far {ids:?}")),
            Err(e) => return Err(e.to_string()),
        };
        if let Event::Stanza(s) = &event
            && s.name() == "message"
            && let Some(id) = s.attr("id")
            && id.starts_with("sm-")
        {
            ids.push(id.to_owned());
        }
        if let Event::Closed { reason } = &event {
            return Err(format!("closed: {reason:?}"));
        }
        if done(&event, ids) {
            return Ok(());
        }
    }
}

fn negotiated(conn: &mut Connection<ClientStream>) -> Result<(), String> {
    read_until(conn, &mut Vec::new(), |e, _| {
        matches!(e, Event::Negotiated { .. })
    })
}

fn message(to: &FullJid, n: u32) -> Element {
    format!(
        "<message xmlns='jabber:client' type='chat' to='{to}' id='sm-{n}'><body>{n}</body></message>"
    )
    .parse()
    .unwrap()
}

fn scenario(server: &PeerServer) -> Result<(), String> {
    let opts = options(server);
    let mut alice = Connection::connect(
        &opts,
        config(server, "alice", "pw-a", true),
        OsEntropy::new(),
    )
    .map_err(|e| e.to_string())?;
    read_until(&mut alice, &mut Vec::new(), |e, _| {
        matches!(e, Event::Sm(SmEvent::Enabled { id: Some(_), .. }))
    })?;
    let alice_jid = alice.machine().jid().cloned().ok_or("alice unbound")?;
    let presence: Element = "<presence xmlns='jabber:client'/>".parse().unwrap();
    alice.send(&presence).map_err(|e| e.to_string())?;
    let mut bob = Connection::connect(
        &opts,
        config(server, "bob", "pw-b", false),
        OsEntropy::new(),
    )
    .map_err(|e| e.to_string())?;
    negotiated(&mut bob)?;
    let mut got = Vec::new();
    for n in 0..3 {
        bob.send(&message(&alice_jid, n))
            .map_err(|e| e.to_string())?;
    }
    read_until(&mut alice, &mut got, |_, ids| ids.len() == 3)?;
    // The connection dies without </stream>: take the resumable state, drop the socket.
    let state: SmState = alice
        .machine()
        .as_client()
        .and_then(ClientStream::sm_state)
        .ok_or("no resumable state")?;
    drop(alice);
    // bob keeps sending while alice is away (give the server a moment to see the EOF).
    std::thread::sleep(Duration::from_millis(300));
    for n in 3..6 {
        bob.send(&message(&alice_jid, n))
            .map_err(|e| e.to_string())?;
    }
    // Make sure bob's stanzas left before alice comes back.
    let ping: Element = format!(
        "<iq xmlns='jabber:client' type='get' id='bob-ping' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
        server.domain
    )
    .parse()
    .unwrap();
    bob.send(&ping).map_err(|e| e.to_string())?;
    read_until(
        &mut bob,
        &mut Vec::new(),
        |e, _| matches!(e, Event::Stanza(s) if s.attr("id") == Some("bob-ping")),
    )?;
    // A new connection resumes the session (recorded: its transcript must replay offline).
    let mut alice = Connection::connect_resumed_recorded(
        &opts,
        config(server, "alice", "pw-a", true),
        state,
        &format!(
            "{}: alice resumes her stream-management session on a new connection\n\
             (crates/hosts/xmpp-host/tests/interop_sm.rs).",
            server.kind
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut resumed = false;
    read_until(&mut alice, &mut got, |e, _| match e {
        Event::Sm(SmEvent::Resumed { jid, .. }) => {
            resumed = *jid == alice_jid;
            true
        }
        Event::Sm(SmEvent::ResumeFailed { .. }) | Event::Negotiated { .. } => true,
        _ => false,
    })?;
    if !resumed {
        return Err("the session was not resumed".to_owned());
    }
    read_until(&mut alice, &mut got, |_, ids| ids.len() >= 6)?;
    bob.send(&message(&alice_jid, 6))
        .map_err(|e| e.to_string())?;
    read_until(&mut alice, &mut got, |_, ids| ids.len() >= 7)?;
    let want: Vec<String> = (0..7).map(|n| format!("sm-{n}")).collect();
    if got != want {
        return Err(format!("messages {got:?}, want {want:?}"));
    }
    let _ = alice.close(WAIT);
    let _ = bob.close(WAIT);
    keep_transcript(
        &alice,
        &format!(
            "{}-resume-alice.txt",
            server.kind.to_string().to_lowercase()
        ),
    )
}

/// The resumed stream's transcript must replay against a fresh machine; with `XMPP_RECORD`
/// set it is also written under `testdata/transcripts/real-sm/`.
fn keep_transcript(conn: &Connection<ClientStream>, file: &str) -> Result<(), String> {
    let text = conn.transcript().ok_or("no transcript")?;
    Transcript::parse(&text)
        .and_then(|t| t.replay(Role::Client))
        .map_err(|e| format!("replay of {file}: {e}\n{text}"))?;
    if std::env::var_os("XMPP_RECORD").is_some() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../testdata/transcripts/real-sm");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(file), text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn run(kind: PeerKind) {
    let Some(server) = start_for_test_with(
        kind,
        &[("alice", "pw-a"), ("bob", "pw-b")],
        &PeerOptions::new().with_stream_management(),
    ) else {
        return;
    };
    if let Err(e) = scenario(&server) {
        panic!("{}", server.failure(&e));
    }
}

#[test]
fn prosody_resumes_after_a_cut() {
    run(PeerKind::Prosody);
}

#[test]
fn ejabberd_resumes_after_a_cut() {
    run(PeerKind::Ejabberd);
}
