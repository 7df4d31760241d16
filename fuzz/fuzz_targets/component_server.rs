#![no_main]
//! A `ComponentServerStream` (XEP-0114, the server's end) fuzzed at every negotiation state.
//! The first input byte picks a state (fresh, header received, handshake done) and options;
//! the machine is brought there by replaying a scripted component (the handshake is computed
//! by a real `ComponentStream` for the stream id the server drew), then the rest of the input
//! is fed as arbitrary chunks with time jumps, host stanzas and a host that may stop polling.
//!
//! Properties: no panic; protocol errors are sticky and always end in `Closed`; `Closed` is
//! the last output (no output, no timer after it); queued output stays within the configured
//! bound between polls; no c2s-only output (`StartTls`, `Secured`, SASL events) ever; no
//! stanza reaches the host before the handshake, and every stanza that does is a
//! `jabber:component:accept` stanza from the component's domain (or a subdomain) to a valid
//! JID; everything the server writes is a well-formed XML stream.
//!
//! Envelopes (issue 17): selector bit 5 turns `ComponentServerConfig::envelopes` on. Every
//! `Event::StanzaEnvelope` is then held to the `Event::Stanza` properties above, checked on
//! its decoded header (kind, namespace, `from`, `to`) and on `envelope.element()`, which must
//! rebuild with the header's name, namespace, `from` and `to` (`xmpp_fuzz::envelope_element`;
//! iqs stay elements); no envelope without the option. Each one is forwarded back to the
//! component with `send_envelope`, `from` and `to` swapped, so the splice runs on every
//! accepted stanza and its bytes stay within the output bound and the well-formed stream
//! above; it is accepted unless the stream closed meanwhile. Differential: such an input runs
//! a second time with envelopes off (forwarding each stanza back as the stamped element with
//! `send_stanza`, so both machines see the same host actions); both must hand the host the
//! same stanzas in the same order (the envelope's element equal to the element) and end with
//! the same reason (`xmpp_fuzz::Trace`: up to where the output bound ended either).

use std::sync::OnceLock;

use xmpp_jid::Jid;
use xmpp_stream::{
    BareJid, ComponentBackend, ComponentConfig, ComponentServerConfig, ComponentServerStream,
    ComponentStream, Event, Instant, Output, SeededEntropy, Transport,
};

const DOMAIN: &str = "comp.example.com";
const SECRET: &str = "s3cr3t";
/// A second configured component with an empty secret (the digest is then SHA-1 of the id).
const EMPTY_DOMAIN: &str = "empty.example.com";

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream \
xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' \
to='comp.example.com'>";

/// Seed of the server's entropy: fixed (not taken from the selector) so that a seed's
/// handshake stays right for every option bit libFuzzer flips.
const ENTROPY_SEED: u64 = 2;

/// Output bounds configured on the machine (selector bit 3 picks the small one); a drain
/// may exceed it by the closing stream error.
const MAX_OUTPUT: usize = 64 * 1024;
const SMALL_OUTPUT: usize = 1024;
/// Stanza bound configured on the machine: small, so that inputs of libFuzzer's default
/// `-max_len` (4096) reach it.
const MAX_STANZA: usize = 2048;

/// The host's component store. `connected` makes every handshake a `conflict`.
struct Components {
    connected: bool,
}

impl ComponentBackend for Components {
    fn secret(&self, domain: &BareJid) -> Option<String> {
        match domain.as_str() {
            DOMAIN => Some(SECRET.to_owned()),
            EMPTY_DOMAIN => Some(String::new()),
            _ => None,
        }
    }

    fn is_connected(&self, _domain: &BareJid) -> bool {
        self.connected
    }
}

fn domain() -> &'static BareJid {
    static DOMAIN_JID: OnceLock<BareJid> = OnceLock::new();
    DOMAIN_JID.get_or_init(|| BareJid::new(DOMAIN).expect("a valid domain"))
}

/// The `<handshake/>` a real component sends for the stream id `id`.
fn handshake(id: &str) -> Vec<u8> {
    let mut probe = ComponentStream::new(
        ComponentConfig::new(domain().clone(), SECRET),
        SeededEntropy::new(0),
    );
    let _ = probe.start(Instant::ZERO, Transport::Plain);
    while probe.poll_output().is_some() {}
    let header = format!(
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
         xmlns='jabber:component:accept' from='{DOMAIN}' id='{id}'>"
    );
    assert!(
        probe.handle_input(Instant::ZERO, header.as_bytes()).is_ok(),
        "the probe component refused the server header"
    );
    let mut wire = Vec::new();
    while let Some(output) = probe.poll_output() {
        if let Output::Transmit(bytes) = output {
            wire.extend(bytes);
        }
    }
    wire
}

/// Whether `from` is the component's `domain` or a subdomain of it.
fn in_domain(from: &str, domain: &BareJid) -> bool {
    let ours = domain.as_str();
    Jid::new(from).is_ok_and(|jid| {
        let host = jid.domain();
        host == ours
            || host
                .strip_suffix(ours)
                .is_some_and(|prefix| prefix.ends_with('.'))
    })
}

struct Harness {
    server: ComponentServerStream,
    now: Instant,
    /// The output bound configured on this machine.
    max_output: usize,
    /// Bytes polled since the host last found the queue empty or added to it.
    queued: usize,
    /// Envelopes configured (issue 17).
    envelopes: bool,
    /// Forward each stanza back to the component: envelopes on, or their element-mode twin.
    forward: bool,
    /// What the host took, for the differential check.
    trace: xmpp_fuzz::Trace,
    end: xmpp_fuzz::Ending,
    opened: bool,
    negotiated: bool,
    /// Everything the server wrote, parsed as the component would.
    wire: xmpp_fuzz::Wire,
}

impl Harness {
    fn drain(&mut self) {
        self.queued = 0;
        while let Some(output) = self.server.poll_output() {
            assert!(!self.end.closed, "output after Closed: {output:?}");
            match output {
                Output::Transmit(bytes) => {
                    self.queued += bytes.len();
                    self.wire.feed(&bytes, |_| {});
                }
                Output::Event(event) => self.event(event),
                other => panic!("a component server never outputs {other:?}"),
            }
            assert!(
                self.queued <= self.max_output + 1024,
                "output over its bound: {}",
                self.queued
            );
        }
        if self.end.closed {
            assert!(self.server.poll_timeout().is_none(), "timer after Closed");
            assert!(self.server.is_closed());
            assert!(!self.server.is_negotiated());
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::StreamOpened { id, .. } => {
                assert!(!self.opened, "a second StreamOpened");
                assert!(id.is_some() && id.as_deref() == self.server.stream_id());
                self.opened = true;
            }
            Event::ComponentNegotiated { domain: negotiated } => {
                assert!(self.opened, "negotiated before the header");
                assert!(!self.negotiated, "a second ComponentNegotiated");
                assert!(
                    [DOMAIN, EMPTY_DOMAIN].contains(&negotiated.as_str()),
                    "negotiated for an unconfigured domain: {negotiated}"
                );
                assert_eq!(self.server.domain(), Some(&negotiated));
                self.negotiated = true;
            }
            Event::Stanza(stanza) => {
                self.check_stanza(
                    &stanza,
                    stanza.name(),
                    &stanza.ns(),
                    stanza.attr("from"),
                    stanza.attr("to"),
                );
                self.trace.stanza(&stanza);
                if self.forward {
                    let (from, to) = (stanza.attr("to"), stanza.attr("from"));
                    let back =
                        xmpp_fuzz::stamped(stanza.clone(), xmpp_xml::NS_COMPONENT_ACCEPT, from, to);
                    let result = self.server.send_stanza(self.now, &back);
                    self.forwarded(result);
                }
            }
            Event::StanzaEnvelope(envelope) => {
                assert!(self.envelopes, "an envelope without the option");
                let header = (
                    envelope.kind().name(),
                    envelope.namespace(),
                    envelope.from(),
                    envelope.to(),
                );
                self.check_stanza(&envelope, header.0, header.1, header.2, header.3);
                let element = xmpp_fuzz::envelope_element(&envelope, xmpp_xml::NS_COMPONENT_ACCEPT);
                self.check_stanza(
                    &element,
                    element.name(),
                    &element.ns(),
                    element.attr("from"),
                    element.attr("to"),
                );
                self.trace.stanza(&element);
                let result =
                    self.server
                        .send_envelope(self.now, &envelope, envelope.to(), envelope.from());
                self.forwarded(result);
            }
            Event::Nonza(_) => assert!(self.negotiated, "a nonza before the handshake"),
            // An error found while the host polled is returned by later inputs.
            Event::Closed { reason } => {
                self.trace.closed(&reason);
                self.end.closed(&reason);
            }
            other => panic!("a component server never emits {other:?}"),
        }
    }

    /// The checks of every stanza the host takes, on its name, namespace, `from` and `to`
    /// (an element's, or an envelope's decoded header).
    fn check_stanza(
        &self,
        stanza: &dyn core::fmt::Debug,
        name: &str,
        ns: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) {
        assert!(self.negotiated, "a stanza before the handshake: {stanza:?}");
        assert!(
            ns == xmpp_xml::NS_COMPONENT_ACCEPT && matches!(name, "message" | "presence" | "iq"),
            "not a component stanza: {stanza:?}"
        );
        assert!(
            from.zip(self.server.domain())
                .is_some_and(|(from, domain)| in_domain(from, domain)),
            "stanza from outside: {from:?}"
        );
        assert!(
            to.is_some_and(|to| Jid::validate(to).is_ok()),
            "stanza to an invalid address: {to:?}"
        );
    }

    /// The host forwarded a stanza it took back to the component: accepted unless the stream
    /// closed meanwhile (an error in input processed first, or the output bound). The bytes
    /// polled from here on were all queued at once.
    fn forwarded(&mut self, result: Result<(), xmpp_stream::UsageError>) {
        if let Err(error) = result {
            assert!(
                self.server.is_closed(),
                "a stanza taken on an open stream was not forwarded back: {error:?}"
            );
        }
        self.queued = 0;
    }

    fn input(&mut self, bytes: &[u8], poll: bool) {
        let result = self.server.handle_input(self.now, bytes);
        if self.end.input(result) {
            self.drain();
            assert!(self.end.closed, "a protocol error must end in Closed");
        } else if poll {
            self.drain();
        }
    }
}

/// Runs one input; `twin`: the element-mode run of an input whose selector turns envelopes on
/// (forwarding as the envelope-mode run does). Returns the envelope option and the trace.
fn run(data: &[u8], twin: bool) -> (bool, xmpp_fuzz::Trace) {
    let Some((&selector, rest)) = data.split_first() else {
        return (false, xmpp_fuzz::Trace::default());
    };
    let envelopes = selector & 0x20 != 0 && !twin;
    let index = usize::from(selector & 3) % 3;
    let mut config = ComponentServerConfig::new();
    let max_output = if selector & 0x08 != 0 {
        SMALL_OUTPUT
    } else {
        MAX_OUTPUT
    };
    config.max_output_bytes = max_output;
    config.limits.max_stanza_bytes = MAX_STANZA;
    config.envelopes = envelopes;
    // A host whose writes block: it polls only around its own commands and timers.
    let poll = selector & 0x10 == 0;
    let backend = Components {
        // The replay to the negotiated state needs the handshake to succeed.
        connected: selector & 0x04 != 0 && index < 2,
    };
    let mut h = Harness {
        server: ComponentServerStream::new(config, SeededEntropy::new(ENTROPY_SEED), backend),
        now: Instant::ZERO,
        max_output,
        queued: 0,
        envelopes,
        forward: envelopes || twin,
        trace: xmpp_fuzz::Trace::default(),
        end: xmpp_fuzz::Ending::default(),
        opened: false,
        negotiated: false,
        wire: xmpp_fuzz::Wire::new(MAX_OUTPUT),
    };
    if h.server.start(h.now, Transport::Plain).is_err() {
        return (envelopes, h.trace);
    }
    h.drain();
    if index >= 1 {
        h.input(HEADER, true);
    }
    if index >= 2 {
        let Some(id) = h.server.stream_id().map(str::to_owned) else {
            panic!("no stream id after the header");
        };
        h.input(&handshake(&id), true);
    }
    // The replay really reached the state it names.
    assert!(
        !h.end.closed && h.end.sticky.is_none(),
        "replay to state {index} failed"
    );
    assert_eq!(h.opened, index >= 1);
    assert_eq!(h.server.is_negotiated(), index >= 2);
    assert_eq!(h.negotiated, index >= 2);
    // The rest: steps (`xmpp_fuzz::steps`) of time, transport close, a host stanza to the
    // component and component bytes.
    for step in xmpp_fuzz::steps(rest) {
        if step.tick {
            h.now = h.now + core::time::Duration::from_secs(60);
            h.server.handle_timeout(h.now);
            h.drain();
        }
        if step.transport_closed {
            h.server.transport_closed(h.now);
            h.drain();
            assert!(h.end.closed, "transport_closed must end in Closed");
        }
        if step.host_sends {
            let was_negotiated = h.server.is_negotiated();
            if let Ok(stanza) = "<message xmlns='jabber:client' from='juliet@example.com/balcony' \
                 to='bot@comp.example.com'><body>hi</body></message>"
                .parse::<minidom::Element>()
                && h.server.send_stanza(h.now, &stanza).is_ok()
            {
                assert!(!h.end.closed, "send_stanza accepted after Closed");
                assert!(was_negotiated, "send_stanza accepted before the handshake");
            }
            h.drain();
        }
        h.input(step.bytes, poll);
    }
    h.drain();
    (envelopes, h.trace)
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// Peak heap one input may use, independent of the input length: the machine holds at most
/// one stanza (bounded by `MAX_STANZA`) as bytes and as a tree (~70 heap bytes per source
/// byte at worst), plus its fixed state and the output queued between two polls (bounded by
/// `MAX_OUTPUT`, held once in the queue and once in the wire checker's parser): 128 per
/// stanza byte plus 3 x `MAX_OUTPUT`. Input buffered past the stanza bound, or state
/// growing with the number of stanzas, trips this.
fn bound(_len: usize) -> usize {
    128 * MAX_STANZA + 3 * MAX_OUTPUT
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xmpp_fuzz::check(data.len(), bound(data.len()), || {
        let (envelopes, trace) = run(data, false);
        if envelopes {
            trace.same_as(&run(data, true).1);
        }
    });
});
