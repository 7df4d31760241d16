#![no_main]
//! A `ServerStream` with RFC 7395 framing (XMPP over WebSocket) fuzzed message by message. The
//! first input byte picks a state (fresh, opened, mid-SCRAM, authenticated and reopened,
//! negotiated) reached by replaying scripted client messages; each later step's bytes are one
//! WebSocket message. Properties: no panic; protocol errors are sticky; nothing after
//! `Closed`; every `Transmit` is exactly one complete element (one message); queued output
//! stays within its bound.

use std::sync::OnceLock;

use xmpp_stream::{
    BareJid, Event, Instant, MemoryBackend, Output, SeededEntropy, ServerConfig, ServerStream,
    SessionFlags, TlsPolicy, Transport,
};
use xmpp_xml::{ContentNamespace, Limits, StreamParser};

const OPEN: &[u8] =
    b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='im.example.com' version='1.0'/>";
/// SCRAM-SHA-1 client-first `n,,n=juliet,r=fyko+d2lbbFgONRv9qkxdawL` (RFC 5802 §5 nonce).
const AUTH_SCRAM: &[u8] = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' \
mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQscj1meXprbytkMmxiYkZnT05Sdjlxa3hkYXdM</auth>";
/// PLAIN `\0juliet\0r0m30myr0m30`.
const AUTH_PLAIN: &[u8] = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' \
mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>";
const BIND: &[u8] = b"<iq xmlns='jabber:client' type='set' id='b1'>\
<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>";

const STATES: &[&[&[u8]]] = &[
    &[],
    &[OPEN],
    &[OPEN, AUTH_SCRAM],
    &[OPEN, AUTH_PLAIN, OPEN],
    &[OPEN, AUTH_PLAIN, OPEN, BIND],
];

const MAX_OUTPUT: usize = 64 * 1024;
const MAX_STANZA: usize = 2048;

fn backend() -> MemoryBackend {
    static BACKEND: OnceLock<MemoryBackend> = OnceLock::new();
    BACKEND
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 1))
        .clone()
}

/// Whether `bytes` is one complete element (the server's `<open/>` aside, which a fresh
/// framed parser reads as the header).
fn one_element(bytes: &[u8]) -> bool {
    let mut parser = StreamParser::framed(Limits::default(), ContentNamespace::Client);
    if !bytes.starts_with(b"<open ") {
        parser.feed_message(OPEN);
        if !matches!(parser.next_event(), Ok(Some(_))) {
            return false;
        }
        let _ = parser.next_event();
    }
    parser.feed_message(bytes);
    matches!(parser.next_event(), Ok(Some(_))) && matches!(parser.next_event(), Ok(None))
}

struct Harness {
    server: ServerStream,
    now: Instant,
    closed: bool,
    sticky: Option<xmpp_stream::ProtocolError>,
}

impl Harness {
    fn drain(&mut self) {
        let mut queued = 0usize;
        while let Some(output) = self.server.poll_output() {
            assert!(!self.closed, "output after Closed: {output:?}");
            match output {
                Output::Transmit(bytes) => {
                    assert!(one_element(&bytes), "not one element: {bytes:?}");
                    queued += bytes.len();
                }
                Output::StartTls => panic!("STARTTLS on a WebSocket stream"),
                Output::Event(Event::Closed { .. }) => self.closed = true,
                Output::Event(Event::StanzaEnvelope(envelope)) => {
                    xmpp_fuzz::forward_back(&mut self.server, self.now, &envelope);
                }
                _ => {}
            }
        }
        assert!(
            queued <= MAX_OUTPUT + 1024,
            "output over its bound: {queued}"
        );
        if self.closed {
            assert!(self.server.poll_timeout().is_none(), "timer after Closed");
        }
    }

    fn message(&mut self, bytes: &[u8]) {
        let result = self.server.handle_message(self.now, bytes);
        if let Some(previous) = &self.sticky {
            assert_eq!(result.as_ref().err(), Some(previous), "errors are sticky");
        }
        if let Err(e) = result {
            self.sticky = Some(e);
        }
        self.drain();
    }
}

fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(domain) = BareJid::new("im.example.com") else {
        return;
    };
    let mut config = ServerConfig::new(domain);
    config.tls = TlsPolicy::Disabled;
    config.allow_plain_without_tls = true;
    config.max_output_bytes = MAX_OUTPUT;
    config.limits.max_stanza_bytes = MAX_STANZA;
    // Envelopes (issue 17) in half the runs.
    config.envelopes = selector & 0x40 != 0;
    let mut h = Harness {
        server: ServerStream::new(config, SeededEntropy::new(u64::from(selector)), backend())
            .websocket(),
        now: Instant::ZERO,
        closed: false,
        sticky: None,
    };
    if h.server.start(h.now, Transport::Plain).is_err() {
        return;
    }
    let index = usize::from(selector & 0x0f) % STATES.len();
    for step in STATES[index] {
        h.message(step);
    }
    assert!(
        !h.closed && h.sticky.is_none(),
        "replay to state {index} failed"
    );
    assert_eq!(
        h.server.flags().contains(SessionFlags::AUTHENTICATED),
        index >= 3
    );
    assert_eq!(h.server.is_negotiated(), index >= 4);
    for step in xmpp_fuzz::steps(rest) {
        if step.tick {
            h.now = h.now + core::time::Duration::from_secs(60);
            h.server.handle_timeout(h.now);
            h.drain();
        }
        if step.transport_closed {
            h.server.transport_closed(h.now);
            h.drain();
            assert!(h.closed, "transport_closed must end in Closed");
        }
        h.message(step.bytes);
    }
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// As `server_stream`: one stanza's bytes and tree, fixed state, one message's output.
fn bound(_len: usize) -> usize {
    128 * MAX_STANZA + 64 * 1024
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xmpp_fuzz::check(data.len(), bound(data.len()), || run(data));
});
