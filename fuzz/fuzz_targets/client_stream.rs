#![no_main]
//! A `ClientStream` fuzzed at every negotiation state. The first input byte picks a state
//! (fresh, header received, STARTTLS sent, secured, SASL sent, authenticated, bind sent,
//! negotiated); the machine is brought there by replaying a scripted server, then the rest
//! of the input is fed as arbitrary chunks with time jumps. Properties: no panic; protocol
//! errors are sticky; nothing (no output, no timer) after `Closed`; queued output stays
//! within the configured bound between polls.

use xmpp_stream::{
    BareJid, ChannelBinding, ChannelBindingType, ClientConfig, ClientStream, Event, Instant,
    Mechanism, Output, SeededEntropy, SessionFlags, Transport,
};

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' from='im.example.com' id='s1' version='1.0'>";
const TLS_FEATURES: &[u8] = b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
<required/></starttls></stream:features>";
const PROCEED: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const SASL_FEATURES: &[u8] = b"<stream:features><mechanisms \
xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>\
<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>";
const SUCCESS: &[u8] = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
const BIND_FEATURES: &[u8] = b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
</stream:features>";

/// Server messages that bring a fresh client to each state; `None` stands for the bind
/// result, which must echo the id the client chose.
const STATES: &[&[Option<&[u8]>]] = &[
    &[],
    &[Some(HEADER)],
    &[Some(HEADER), Some(TLS_FEATURES)],
    &[
        Some(HEADER),
        Some(TLS_FEATURES),
        Some(PROCEED),
        Some(HEADER),
    ],
    &[
        Some(HEADER),
        Some(TLS_FEATURES),
        Some(PROCEED),
        Some(HEADER),
        Some(SASL_FEATURES),
    ],
    &[
        Some(HEADER),
        Some(TLS_FEATURES),
        Some(PROCEED),
        Some(HEADER),
        Some(SASL_FEATURES),
        Some(SUCCESS),
        Some(HEADER),
    ],
    &[
        Some(HEADER),
        Some(TLS_FEATURES),
        Some(PROCEED),
        Some(HEADER),
        Some(SASL_FEATURES),
        Some(SUCCESS),
        Some(HEADER),
        Some(BIND_FEATURES),
    ],
    &[
        Some(HEADER),
        Some(TLS_FEATURES),
        Some(PROCEED),
        Some(HEADER),
        Some(SASL_FEATURES),
        Some(SUCCESS),
        Some(HEADER),
        Some(BIND_FEATURES),
        None,
    ],
];

/// Output bound configured on the machine; a drain may exceed it by the closing error.
const MAX_OUTPUT: usize = 64 * 1024;
/// Stanza bound configured on the machine: small, so that inputs of libFuzzer's default
/// `-max_len` (4096) reach it.
const MAX_STANZA: usize = 2048;

struct Harness {
    client: ClientStream,
    now: Instant,
    closed: bool,
    sticky: Option<xmpp_stream::ProtocolError>,
    binding: Vec<ChannelBinding>,
    /// The last bytes the client transmitted (for the bind id).
    last: Vec<u8>,
}

impl Harness {
    fn drain(&mut self) {
        let mut queued = 0usize;
        while let Some(output) = self.client.poll_output() {
            assert!(!self.closed, "output after Closed: {output:?}");
            match output {
                Output::Transmit(bytes) => {
                    queued += bytes.len();
                    self.last = bytes;
                }
                Output::StartTls => {
                    let _ = self.client.tls_established(self.now, self.binding.clone());
                }
                Output::Event(Event::Closed { .. }) => self.closed = true,
                _ => {}
            }
        }
        assert!(
            queued <= MAX_OUTPUT + 1024,
            "output over its bound: {queued}"
        );
        if self.closed {
            assert!(self.client.poll_timeout().is_none(), "timer after Closed");
            assert!(self.client.is_closed());
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        let result = self.client.handle_input(self.now, bytes);
        if let Some(previous) = &self.sticky {
            assert_eq!(result.as_ref().err(), Some(previous), "errors are sticky");
        }
        if let Err(e) = result {
            self.sticky = Some(e);
        }
        self.drain();
    }

    fn bind_result(&self) -> Vec<u8> {
        let text = String::from_utf8_lossy(&self.last);
        let id = text
            .find("id='")
            .map(|at| &text[at + 4..])
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or("none");
        format!(
            "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <jid>juliet@im.example.com/balcony</jid></bind></iq>"
        )
        .into_bytes()
    }
}

fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(jid) = BareJid::new("juliet@im.example.com") else {
        return;
    };
    let mut config = ClientConfig::new(jid, "r0m30myr0m30");
    config.resource = (selector & 0x80 != 0).then(|| "balcony".to_owned());
    config.max_output_bytes = MAX_OUTPUT;
    config.limits.max_stanza_bytes = MAX_STANZA;
    config.max_queued_stanzas = usize::from((selector >> 4) & 7);
    // PLAIN first so the scripted bare <success/> completes it; SCRAM-SHA-256 second so a
    // fuzzed mechanism-level <failure/> reaches the fallback path.
    config.mechanisms = vec![Mechanism::Plain, Mechanism::ScramSha256];
    let binding = vec![ChannelBinding::new(
        ChannelBindingType::TlsExporter,
        [7u8; 32],
    )];
    let mut h = Harness {
        client: ClientStream::new(config, SeededEntropy::new(u64::from(selector))),
        now: Instant::ZERO,
        closed: false,
        sticky: None,
        binding,
        last: Vec::new(),
    };
    if h.client.start(h.now, Transport::Plain).is_err() {
        return;
    }
    h.drain();
    let index = usize::from(selector & 0x0f) % STATES.len();
    for step in STATES[index] {
        let bytes = step.map_or_else(|| h.bind_result(), <[u8]>::to_vec);
        h.input(&bytes);
    }
    // The replay really reached the state it names.
    let flags = h.client.flags();
    assert!(
        !h.closed && h.sticky.is_none(),
        "replay to state {index} failed"
    );
    assert_eq!(flags.contains(SessionFlags::SECURE), index >= 3);
    assert_eq!(flags.contains(SessionFlags::AUTHENTICATED), index >= 5);
    assert_eq!(h.client.is_negotiated(), index == 7);
    // The rest: steps (`xmpp_fuzz::steps`) of time, transport close, a host stanza and
    // server bytes.
    for step in xmpp_fuzz::steps(rest) {
        if step.tick {
            h.now = h.now + core::time::Duration::from_secs(60);
            h.client.handle_timeout(h.now);
            h.drain();
        }
        if step.transport_closed {
            h.client.transport_closed(h.now);
            h.drain();
            assert!(h.closed, "transport_closed must end in Closed");
        }
        if step.host_sends {
            if let Ok(stanza) = "<message xmlns='jabber:client' to='romeo@example.net'/>"
                .parse::<minidom::Element>()
                && h.client.send_stanza(h.now, &stanza).is_ok()
            {
                assert!(!h.closed, "send_stanza accepted after Closed");
            }
            h.drain();
        }
        h.input(step.bytes);
    }
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// Peak heap one input may use, independent of the input length: the machine holds at most
/// one stanza (bounded by `MAX_STANZA`) as bytes and as a tree (~70 heap bytes per source
/// byte at worst, measured 140 KB for 505 `<a/>` children), plus its fixed state, the
/// pre-negotiation queue of host stanzas (bounded by `max_queued_stanzas`) and the output of
/// one chunk (measured ~37 KB together): 128 per stanza byte plus 64 KiB. Input buffered
/// past the stanza bound, or state growing with the number of stanzas, trips this.
fn bound(_len: usize) -> usize {
    128 * MAX_STANZA + 64 * 1024
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xmpp_fuzz::check(data.len(), bound(data.len()), || run(data));
});
