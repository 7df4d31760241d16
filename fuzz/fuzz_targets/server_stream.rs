#![no_main]
//! A `ServerStream` fuzzed at every negotiation state. The first input byte picks a state
//! (fresh, header received, secured, mid-SCRAM, authenticated, negotiated); the machine is
//! brought there by replaying a scripted client, then the rest of the input is fed as
//! arbitrary chunks with time jumps. Properties: no panic; protocol errors are sticky;
//! nothing (no output, no timer) after `Closed`; queued output stays within the configured
//! bound between polls. Selector bit 6 turns envelopes on (issue 17): each stanza envelope
//! must rebuild its element and is forwarded back to the client (`send_envelope`, splicing
//! `from`), so the splice runs on every accepted stanza.

use std::sync::OnceLock;

use xmpp_stream::MemoryBackend;
use xmpp_stream::{
    BareJid, ChannelBinding, ChannelBindingType, Event, Instant, Output, SeededEntropy,
    ServerConfig, ServerStream, SessionFlags, TlsPolicy, Transport,
};

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";
const RESTART: &[u8] = b"<stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";
const STARTTLS: &[u8] = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
/// SCRAM-SHA-1 client-first `n,,n=juliet,r=fyko+d2lbbFgONRv9qkxdawL` (RFC 5802 §5 nonce).
const AUTH_SCRAM: &[u8] = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' \
mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQscj1meXprbytkMmxiYkZnT05Sdjlxa3hkYXdM</auth>";
/// PLAIN `\0juliet\0r0m30myr0m30`.
const AUTH_PLAIN: &[u8] = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' \
mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>";
const BIND: &[u8] = b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
<resource>balcony</resource></bind></iq>";

/// The client bytes that bring a fresh server to each state.
const STATES: &[&[&[u8]]] = &[
    &[],
    &[HEADER],
    &[HEADER, STARTTLS, RESTART],
    &[HEADER, STARTTLS, RESTART, AUTH_SCRAM],
    &[HEADER, STARTTLS, RESTART, AUTH_PLAIN, RESTART],
    &[HEADER, STARTTLS, RESTART, AUTH_PLAIN, RESTART, BIND],
];

/// Output bound configured on the machine; a drain may exceed it by the closing error.
const MAX_OUTPUT: usize = 64 * 1024;
/// Stanza bound configured on the machine: small, so that inputs of libFuzzer's default
/// `-max_len` (4096) reach it.
const MAX_STANZA: usize = 2048;

fn backend() -> MemoryBackend {
    static BACKEND: OnceLock<MemoryBackend> = OnceLock::new();
    // One iteration: PLAIN verification derives the key per attempt, keep it cheap.
    BACKEND
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 1))
        .clone()
}

struct Harness {
    server: ServerStream,
    now: Instant,
    closed: bool,
    sticky: Option<xmpp_stream::ProtocolError>,
    binding: Vec<ChannelBinding>,
}

impl Harness {
    fn drain(&mut self) {
        let mut queued = 0usize;
        while let Some(output) = self.server.poll_output() {
            assert!(!self.closed, "output after Closed: {output:?}");
            match output {
                Output::Transmit(bytes) => queued += bytes.len(),
                Output::StartTls => {
                    let _ = self.server.tls_established(self.now, self.binding.clone());
                }
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
            assert!(self.server.is_closed());
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        let result = self.server.handle_input(self.now, bytes);
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
    config.tls = TlsPolicy::Optional;
    config.allow_plain_without_tls = selector & 0x80 != 0;
    config.max_auth_attempts = u32::from((selector >> 4) & 3) + 1;
    config.max_output_bytes = MAX_OUTPUT;
    config.limits.max_stanza_bytes = MAX_STANZA;
    config.envelopes = selector & 0x40 != 0;
    let binding = vec![ChannelBinding::new(
        ChannelBindingType::TlsExporter,
        [7u8; 32],
    )];
    let mut h = Harness {
        server: ServerStream::new(config, SeededEntropy::new(u64::from(selector)), backend()),
        now: Instant::ZERO,
        closed: false,
        sticky: None,
        binding,
    };
    if h.server.start(h.now, Transport::Plain).is_err() {
        return;
    }
    let index = usize::from(selector & 0x0f) % STATES.len();
    for step in STATES[index] {
        h.input(step);
    }
    // The replay really reached the state it names.
    let flags = h.server.flags();
    assert!(
        !h.closed && h.sticky.is_none(),
        "replay to state {index} failed"
    );
    assert_eq!(flags.contains(SessionFlags::SECURE), index >= 2);
    assert_eq!(flags.contains(SessionFlags::AUTHENTICATED), index >= 4);
    assert_eq!(h.server.is_negotiated(), index >= 5);
    // The rest: steps (`xmpp_fuzz::steps`) of time, transport close and peer bytes.
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
        h.input(step.bytes);
    }
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// Peak heap one input may use, independent of the input length: the machine holds at most
/// one stanza (bounded by `MAX_STANZA`) as bytes and as a tree (~70 heap bytes per source
/// byte at worst, measured 139 KB for 505 `<a/>` children), plus its fixed state and the
/// output of one chunk (measured ~25 KB): 128 per stanza byte plus 64 KiB. Input buffered
/// past the stanza bound, or state growing with the number of stanzas, trips this.
fn bound(_len: usize) -> usize {
    128 * MAX_STANZA + 64 * 1024
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xmpp_fuzz::check(data.len(), bound(data.len()), || run(data));
});
