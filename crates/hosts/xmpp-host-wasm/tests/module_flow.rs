//! The negotiation `tests/node/negotiate.mjs` runs in WebAssembly, driven natively through
//! [`Module`] exactly as the JavaScript drives the exported functions: input staged in the
//! module's buffer, lengths and codes as numbers, events parsed from the output buffer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use xmpp_host_wasm::{MAX_INPUT, Module};

const FAKE_TLS: [u8; 32] = [0x5a; 32];

fn put(m: &mut Module, bytes: &[u8]) -> u32 {
    let len = u32::try_from(bytes.len()).unwrap();
    m.input_buffer(len).unwrap().copy_from_slice(bytes);
    len
}

fn output(m: &Module, len: i32) -> Vec<u8> {
    m.output()[..usize::try_from(len).unwrap()].to_vec()
}

fn last_error(m: &mut Module) -> String {
    let len = m.last_error();
    String::from_utf8(output(m, len)).unwrap()
}

fn check(m: &mut Module, call: impl FnOnce(&mut Module) -> i32, what: &str) -> i32 {
    let rc = call(m);
    assert!(rc >= 0, "{what} failed ({rc}): {}", last_error(m));
    rc
}

/// The `summary` strings of the JSON events (a tiny extraction: the summary never contains a
/// quote in these sessions).
fn summaries(json: &str) -> Vec<String> {
    json.split(r#""summary":""#)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

struct Session {
    client: u32,
    server: u32,
    now: u64,
    client_events: Vec<String>,
    server_events: Vec<String>,
    wire: Vec<String>,
    /// Feed in pieces of this many bytes (0: whole transmissions).
    chunk: usize,
}

impl Session {
    fn new(m: &mut Module, mechanism: &str, password: &str) -> Session {
        let setup = format!("jid=juliet@im.example.com\npassword={password}\nresource=balcony");
        let len = put(m, setup.as_bytes());
        let client = check(m, |m| m.client_new(1, len), "client_new");
        let setup =
            format!("domain=im.example.com\nuser=juliet r0m30myr0m30\nmechanisms={mechanism}");
        let len = put(m, setup.as_bytes());
        let server = check(m, |m| m.server_new(2, len), "server_new");
        let session = Session {
            client: u32::try_from(client).unwrap(),
            server: u32::try_from(server).unwrap(),
            now: 0,
            client_events: Vec::new(),
            server_events: Vec::new(),
            wire: Vec::new(),
            chunk: 0,
        };
        check(m, |m| m.start(session.server, 0), "start");
        check(m, |m| m.start(session.client, 0), "start");
        session
    }

    fn pump(&mut self, m: &mut Module) {
        for _ in 0..1000 {
            let mut moved = false;
            for (from, to) in [(self.client, self.server), (self.server, self.client)] {
                let len = check(m, |m| m.take_bytes(from), "take_bytes");
                if len > 0 {
                    moved = true;
                    let bytes = output(m, len);
                    self.wire.push(String::from_utf8(bytes.clone()).unwrap());
                    let step = if self.chunk == 0 {
                        bytes.len()
                    } else {
                        self.chunk
                    };
                    for piece in bytes.chunks(step) {
                        let len = put(m, piece);
                        let rc = m.feed(to, self.now, len);
                        assert!(rc == 0 || rc == -4, "feed: {rc}");
                    }
                }
                let len = check(m, |m| m.take_events(from), "take_events");
                let json = String::from_utf8(output(m, len)).unwrap();
                assert!(json.starts_with('[') && json.ends_with(']'), "{json}");
                let events = summaries(&json);
                moved |= !events.is_empty();
                for event in events {
                    if event == "StartTls" {
                        let len = put(m, &FAKE_TLS);
                        check(m, |m| m.tls_established(from, self.now, 1, len), "tls");
                    }
                    if from == self.client {
                        self.client_events.push(event);
                    } else {
                        self.server_events.push(event);
                    }
                }
            }
            if !moved {
                return;
            }
            self.now += 10;
        }
        panic!("did not settle");
    }
}

fn full_session(mechanism: &str) -> Session {
    chunked_session(mechanism, 0)
}

fn chunked_session(mechanism: &str, chunk: usize) -> Session {
    let mut m = Module::new();
    let mut s = Session::new(&mut m, mechanism, "r0m30myr0m30");
    s.chunk = chunk;
    s.pump(&mut m);
    assert!(
        s.client_events
            .contains(&"Negotiated juliet@im.example.com/balcony".to_owned()),
        "{:?}",
        s.client_events
    );
    assert!(s.client_events.contains(&"Secured".to_owned()));
    assert!(
        s.client_events
            .contains(&format!("Authenticated juliet@im.example.com {mechanism}")),
        "{:?}",
        s.client_events
    );

    let msg = "<message xmlns='jabber:client' to='im.example.com' id='c1'><body>Wherefore?</body></message>";
    let len = put(&mut m, msg.as_bytes());
    check(&mut m, |m| m.send(s.client, s.now, len), "send");
    s.pump(&mut m);
    assert!(s.server_events.contains(&"Stanza message c1".to_owned()));

    let msg = "<message xmlns='jabber:client' to='juliet@im.example.com/balcony' id='s1'><body>Here.</body></message>";
    let len = put(&mut m, msg.as_bytes());
    check(&mut m, |m| m.send(s.server, s.now, len), "send");
    s.pump(&mut m);
    assert!(s.client_events.contains(&"Stanza message s1".to_owned()));

    check(&mut m, |m| m.close(s.client, s.now), "close");
    s.pump(&mut m);
    assert_eq!(s.client_events.last().unwrap(), "Closed Graceful");
    assert_eq!(s.server_events.last().unwrap(), "Closed Graceful");
    assert_eq!(m.is_closed(s.client), 1);
    assert_eq!(m.is_closed(s.server), 1);
    assert!(s.wire.iter().any(|w| w.contains("<starttls")));
    assert!(s.wire.iter().any(|w| w.contains("Wherefore?")));
    s
}

#[test]
fn scram_sha_256_session_through_the_module() {
    full_session("SCRAM-SHA-256");
}

#[test]
fn plain_over_tls_and_plus_sessions_through_the_module() {
    full_session("PLAIN");
    full_session("SCRAM-SHA-256-PLUS");
}

#[test]
fn seeded_sessions_are_reproducible_byte_for_byte() {
    let a = full_session("SCRAM-SHA-256");
    let b = full_session("SCRAM-SHA-256");
    assert_eq!(a.wire, b.wire);
}

#[test]
fn any_chunking_gives_the_same_events_and_bytes() {
    let whole = full_session("SCRAM-SHA-256");
    for chunk in [1, 3, 64] {
        let pieces = chunked_session("SCRAM-SHA-256", chunk);
        assert_eq!(whole.client_events, pieces.client_events, "chunk {chunk}");
        assert_eq!(whole.server_events, pieces.server_events, "chunk {chunk}");
        assert_eq!(whole.wire, pieces.wire, "chunk {chunk}");
    }
}

#[test]
fn the_negotiation_deadline_fires_through_timeout() {
    let mut m = Module::new();
    let len = put(&mut m, b"jid=juliet@im.example.com\npassword=x");
    let client = u32::try_from(m.client_new(4, len)).unwrap();
    assert_eq!(m.start(client, 1_000), 0);
    assert!(m.take_bytes(client) > 0);
    let deadline = u64::try_from(m.poll_timeout(client)).unwrap();
    assert_eq!(
        deadline, 61_000,
        "60 s default negotiation deadline from the start time"
    );
    assert_eq!(m.timeout(client, deadline - 1), 0);
    let len = m.take_events(client);
    let early = String::from_utf8(output(&m, len)).unwrap();
    assert!(!early.contains("Closed"), "{early}");
    assert_eq!(m.timeout(client, deadline), 0);
    let len = m.take_events(client);
    let events = String::from_utf8(output(&m, len)).unwrap();
    assert!(
        summaries(&events).contains(&"Closed Timeout Negotiation".to_owned()),
        "{events}"
    );
    assert_eq!(m.is_closed(client), 1);
}

#[test]
fn direct_tls_skips_starttls() {
    let mut m = Module::new();
    let len = put(&mut m, b"jid=juliet@im.example.com\npassword=r0m30myr0m30");
    let client = u32::try_from(m.client_new(1, len)).unwrap();
    let len = put(&mut m, b"domain=im.example.com\nuser=juliet r0m30myr0m30");
    let server = u32::try_from(m.server_new(2, len)).unwrap();
    let mut s = Session {
        client,
        server,
        now: 0,
        client_events: Vec::new(),
        server_events: Vec::new(),
        wire: Vec::new(),
        chunk: 0,
    };
    for side in [server, client] {
        let len = put(&mut m, &FAKE_TLS);
        assert_eq!(
            m.start_direct_tls(side, 0, 1, len),
            0,
            "{}",
            last_error(&mut m)
        );
    }
    s.pump(&mut m);
    assert!(!s.wire.iter().any(|w| w.contains("starttls")));
    assert!(!s.client_events.contains(&"StartTls".to_owned()));
    // With the binding from the start, the default policy picks channel-bound SCRAM.
    assert!(
        s.client_events
            .iter()
            .any(|e| e.starts_with("Authenticated juliet@im.example.com SCRAM-SHA-512-PLUS")),
        "{:?}",
        s.client_events
    );
    assert!(s.client_events.iter().any(|e| e.starts_with("Negotiated")));
}

#[test]
fn wrong_password_ends_in_not_authorized() {
    let mut m = Module::new();
    let mut s = Session::new(&mut m, "SCRAM-SHA-256", "wrong");
    s.pump(&mut m);
    assert_eq!(
        s.client_events.last().unwrap(),
        "Closed AuthenticationFailed not-authorized"
    );
    assert!(!s.client_events.iter().any(|e| e.starts_with("Negotiated")));
}

#[test]
fn errors_are_codes_with_text() {
    let mut m = Module::new();
    assert_eq!(m.start(7, 0), -1);
    assert!(last_error(&mut m).contains("handle"));
    let len = put(&mut m, b"jid=\xff");
    assert_eq!(m.client_new(1, len), -2);
    assert!(last_error(&mut m).contains("UTF-8"));
    // A length beyond what was staged is refused, not read out of bounds.
    let len = put(&mut m, b"jid=a@b");
    assert_eq!(m.client_new(1, len + 1), -2);
    let client = u32::try_from(m.client_new(1, len)).unwrap();
    assert_eq!(m.tls_established(client, 0, 9, 0), -2);
    assert_eq!(m.tls_established(client, 0, 0, 0), -3, "no StartTls yet");
    assert_eq!(m.replay(5, 0), -2);
    assert!(
        m.input_buffer(u32::try_from(MAX_INPUT).unwrap() + 1)
            .is_none()
    );
    assert_eq!(m.poll_timeout(99), -1);
    assert_eq!(m.destroy(client), 0);
    assert_eq!(m.destroy(client), -1);
}

#[test]
fn committed_transcripts_replay_through_the_module() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../testdata/transcripts");
    let mut m = Module::new();
    let mut replayed = 0;
    for name in [
        "starttls-scram-plus-bind.client.txt",
        "starttls-scram-plus-bind.server.txt",
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let role = u32::from(name.contains(".server."));
        let len = put(&mut m, text.as_bytes());
        assert_eq!(m.replay(role, len), 0, "{name}: {}", last_error(&mut m));
        replayed += 1;
        // A tampered transcript must fail, so the check above means something.
        let tampered = text.replacen("to='im.example.com'", "to='im.example.org'", 1);
        assert_ne!(tampered, text);
        let len = put(&mut m, tampered.as_bytes());
        assert!(m.replay(role, len) < 0, "{name} tampered still replayed");
    }
    assert_eq!(replayed, 2);
}
