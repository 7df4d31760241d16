//! Property tests: chunking invariance and no panic on arbitrary bytes in any state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use proptest::prelude::*;
use xmpp_stream::MemoryBackend;
use xmpp_stream::pair::{Direction, LogEntry, Pair};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, Credentials, Instant, Output, SeededEntropy, ServerConfig,
    ServerStream, TlsPolicy, Transport,
};

/// SCRAM keys from one real login, so the property cases run no PBKDF2 (debug builds are slow).
static KEYS: OnceLock<xmpp_sasl::ScramKeys> = OnceLock::new();

fn backend() -> MemoryBackend {
    static BACKEND: OnceLock<MemoryBackend> = OnceLock::new();
    BACKEND
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096))
        .clone()
}

fn client() -> ClientStream {
    let mut config = ClientConfig::new(
        BareJid::new("juliet@im.example.com").unwrap(),
        "r0m30myr0m30",
    );
    if let Some(keys) = KEYS.get() {
        config.credentials = Credentials::ScramKeys(keys.clone());
    }
    config.tls = TlsPolicy::Disabled;
    config.resource = Some("balcony".into());
    ClientStream::new(config, SeededEntropy::new(11))
}

fn server() -> ServerStream {
    let mut config = ServerConfig::new(BareJid::new("im.example.com").unwrap());
    config.tls = TlsPolicy::Disabled;
    ServerStream::new(config, SeededEntropy::new(12), backend())
}

/// The bytes each side received in a full plaintext negotiation with a message and a close.
struct Recording {
    to_client: Vec<u8>,
    to_server: Vec<u8>,
}

fn recording() -> &'static Recording {
    static RECORDING: OnceLock<Recording> = OnceLock::new();
    RECORDING.get_or_init(|| {
        let mut pair = Pair::new(client(), server());
        pair.start();
        pair.drive();
        let message = minidom::Element::builder("message", "jabber:client")
            .attr("to".try_into().unwrap(), "romeo@example.net")
            .append(
                minidom::Element::builder("body", "jabber:client")
                    .append("hi")
                    .build(),
            )
            .build();
        pair.client_send(&message).unwrap();
        pair.drive();
        pair.client_close().unwrap();
        pair.drive();
        assert!(pair.client.is_closed() && pair.server.is_closed());
        let _ = KEYS.set(pair.client.scram_keys().expect("SCRAM was used").clone());
        let mut rec = Recording {
            to_client: Vec::new(),
            to_server: Vec::new(),
        };
        for entry in &pair.log {
            if let LogEntry::Delivered {
                direction, bytes, ..
            } = entry
            {
                match direction {
                    Direction::ToClient => rec.to_client.extend_from_slice(bytes),
                    Direction::ToServer => rec.to_server.extend_from_slice(bytes),
                }
            }
        }
        rec
    })
}

/// Everything a machine output, with transmissions concatenated (their split is not
/// part of the contract).
#[derive(Debug, PartialEq)]
struct Outcome {
    bytes: Vec<u8>,
    others: Vec<String>,
    errors: Vec<String>,
}

fn feed_client(input: &[u8], cuts: &[usize]) -> Outcome {
    let mut machine = client();
    machine.start(Instant::ZERO, Transport::Plain).unwrap();
    let mut outcome = Outcome {
        bytes: Vec::new(),
        others: Vec::new(),
        errors: Vec::new(),
    };
    let drain = |m: &mut ClientStream, o: &mut Outcome| {
        while let Some(out) = m.poll_output() {
            match out {
                Output::Transmit(b) => o.bytes.extend(b),
                other => o.others.push(format!("{other:?}")),
            }
        }
    };
    drain(&mut machine, &mut outcome);
    for piece in split(input, cuts) {
        if let Err(e) = machine.handle_input(Instant::ZERO, piece) {
            outcome.errors.push(e.to_string());
        }
        drain(&mut machine, &mut outcome);
    }
    outcome
}

fn feed_server(input: &[u8], cuts: &[usize]) -> Outcome {
    let mut machine = server();
    machine.start(Instant::ZERO, Transport::Plain).unwrap();
    let mut outcome = Outcome {
        bytes: Vec::new(),
        others: Vec::new(),
        errors: Vec::new(),
    };
    for piece in split(input, cuts) {
        if let Err(e) = machine.handle_input(Instant::ZERO, piece) {
            outcome.errors.push(e.to_string());
        }
        while let Some(out) = machine.poll_output() {
            match out {
                Output::Transmit(b) => outcome.bytes.extend(b),
                other => outcome.others.push(format!("{other:?}")),
            }
        }
    }
    // A negotiated server processes stanzas as they are polled, so an error may surface in
    // `poll_output` rather than in the `handle_input` that fed it: compare the sticky error
    // the machine ends with (the `Closed` event in `others` carries it too).
    if let Err(e) = machine.handle_input(Instant::ZERO, b"") {
        outcome.errors.push(e.to_string());
    }
    outcome.errors.dedup();
    outcome
}

fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points {
        pieces.push(&input[start..p]);
        start = p;
    }
    pieces.push(&input[start..]);
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The server's bytes to the client, split anywhere, give the client the same outputs and
    /// events as delivered whole (the client's own bytes are deterministic, so the server's
    /// recorded answers stay valid).
    #[test]
    fn client_is_chunking_invariant(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        let rec = recording();
        let whole = feed_client(&rec.to_client, &[]);
        prop_assert!(whole.errors.is_empty(), "{:?}", whole.errors);
        prop_assert_eq!(feed_client(&rec.to_client, &cuts), whole);
    }

    /// Same for the server with the client's bytes.
    #[test]
    fn server_is_chunking_invariant(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        let rec = recording();
        let whole = feed_server(&rec.to_server, &[]);
        prop_assert!(whole.errors.is_empty(), "{:?}", whole.errors);
        prop_assert_eq!(feed_server(&rec.to_server, &cuts), whole);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any prefix of a real conversation followed by arbitrary bytes: no panic, and once an
    /// error is returned every later input returns the same error.
    #[test]
    fn client_never_panics(prefix in any::<usize>(), junk in proptest::collection::vec(any::<u8>(), 0..256)) {
        let rec = recording();
        let prefix = &rec.to_client[..prefix % (rec.to_client.len() + 1)];
        let mut machine = client();
        machine.start(Instant::ZERO, Transport::Plain).unwrap();
        let _ = machine.handle_input(Instant::ZERO, prefix);
        while machine.poll_output().is_some() {}
        let first = machine.handle_input(Instant::from_millis(1), &junk);
        while machine.poll_output().is_some() {}
        machine.handle_timeout(Instant::from_millis(u64::MAX / 2));
        while machine.poll_output().is_some() {}
        if let Err(e) = first {
            prop_assert_eq!(machine.handle_input(Instant::from_millis(2), b"<x/>"), Err(e));
        }
    }

    /// Same for the server.
    #[test]
    fn server_never_panics(prefix in any::<usize>(), junk in proptest::collection::vec(any::<u8>(), 0..256)) {
        let rec = recording();
        let prefix = &rec.to_server[..prefix % (rec.to_server.len() + 1)];
        let mut machine = server();
        machine.start(Instant::ZERO, Transport::Plain).unwrap();
        let _ = machine.handle_input(Instant::ZERO, prefix);
        while machine.poll_output().is_some() {}
        let first = machine.handle_input(Instant::from_millis(1), &junk);
        while machine.poll_output().is_some() {}
        machine.handle_timeout(Instant::from_millis(u64::MAX / 2));
        while machine.poll_output().is_some() {}
        if let Err(e) = first {
            prop_assert_eq!(machine.handle_input(Instant::from_millis(2), b"<x/>"), Err(e));
        }
    }

    /// Structured junk (XMPP-ish fragments) after a valid prefix, for deeper states.
    #[test]
    fn server_survives_xmppish_junk(prefix in any::<usize>(), parts in proptest::collection::vec(prop_oneof![
        Just("<iq type='set' id='a'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>"),
        Just("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAB4</auth>"),
        Just("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'/>"),
        Just("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>"),
        Just("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
        Just("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        Just("<message from='evil@example.com' to='a@b'><body>x</body></message>"),
        Just("<presence to='@@'/>"),
        Just("<stream:stream to='im.example.com' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"),
        Just("</stream:stream>"),
        Just(" "),
    ], 0..12)) {
        let rec = recording();
        let prefix = &rec.to_server[..prefix % (rec.to_server.len() + 1)];
        let mut machine = server();
        machine.start(Instant::ZERO, Transport::Plain).unwrap();
        let _ = machine.handle_input(Instant::ZERO, prefix);
        for part in parts {
            let _ = machine.handle_input(Instant::ZERO, part.as_bytes());
            while machine.poll_output().is_some() {}
        }
    }
}
