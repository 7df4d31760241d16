#![no_main]
//! An `S2sInitiatingStream` (RFC 6120 §13, our server connecting to b.example for
//! a.example) fuzzed at several negotiation states; the peer's bytes are the fuzz input after
//! a preamble. Byte 0 picks the state (fresh, the peer's header received, established by SASL
//! EXTERNAL, established by dialback) and options (plain with STARTTLS or direct TLS, TLS
//! optional with dialback allowed without it, EXTERNAL off, dialback secret off, a small
//! output bound, a host that stops polling); byte 1 more options: XEP-0288 bidi (bit 0: the
//! replayed features offer it), the peer's certificate also naming b2.example (bit 1), and how
//! the host answers an `Event::DialbackVerify` for a pair the peer asks for in the reverse
//! direction over bidi (bits 2-3: the key checked, valid, invalid, never). The machine is
//! brought to its state by replaying
//! a scripted receiving server, then the rest is `xmpp_fuzz::steps`: chunks, clock jumps,
//! transport close, and (0x7f) a host command picked by the step's first byte (a stanza for
//! the first pair, one for the piggybacked pair, one for a pair never authenticated,
//! `add_domain` for a2.example, `close`, `add_pair` towards b2.example).
//!
//! Properties: no panic; errors are sticky and end in `Closed`; nothing after `Closed`;
//! output within its bound between polls; no c2s output, no `Event::Stanza` unless bidi was
//! negotiated and then only for an announced pair, `Event::DialbackVerify` only on a
//! negotiated bidi stream with the secret, nonzas only once authenticated; a
//! `ServerAuthenticated` only for a pair we asked for (EXTERNAL over TLS for a.example, or
//! dialback with the secret and TLS unless allowed without, towards b.example or a domain
//! the peer's certificate names), or over bidi for a pair the peer asked for that the host
//! reported valid or the certificate names (XEP-0288 §3, XEP-0344), once, and listed by
//! `pairs()`, which
//! lists nothing unannounced; `ServerRefused` only for a pair asked after establishment and
//! not authenticated; `send_stanza` accepted only on an open negotiated stream for an
//! authenticated pair; every stanza we write is for an authenticated pair; the bytes written
//! form one well-formed XML stream per stream (restarted after STARTTLS and EXTERNAL) whose
//! header is from one of our domains to b.example.
//!
//! Envelopes (issue 17): byte 1 bit 4 turns `S2sConfig::envelopes` on. Every
//! `Event::StanzaEnvelope` is then held to the `Event::Stanza` properties above, checked on
//! its decoded header (kind, namespace, `from`, `to`) and on `envelope.element()`, which must
//! rebuild with the header's name, namespace, `from` and `to` (`xmpp_fuzz::envelope_element`;
//! iqs stay elements); no envelope without the option. Each one is forwarded back with
//! `send_envelope`, `from` and `to` swapped (an authenticated pair of ours), and is accepted
//! unless the stream closed meanwhile: the splice runs on every accepted stanza, and its bytes
//! stay within the output bound, the well-formed stream and the written-stanza check above.
//! Differential: such an input runs a second time with envelopes off (forwarding each stanza
//! back as the stamped element with `send_stanza`, so both machines see the same host
//! actions); both must hand the host the same stanzas in the same order (the envelope's
//! element equal to the element) and end with the same reason (`xmpp_fuzz::Trace`: up to
//! where the output bound ended either).

use core::time::Duration;

use minidom::Element;
use xmpp_jid::Jid;
use xmpp_stream::dialback::DialbackSecret;
use xmpp_stream::identity::PresentedId;
use xmpp_stream::{
    BareJid, DialbackOutcome, Event, Instant, Output, S2sAuthMethod, S2sConfig,
    S2sInitiatingStream, SeededEntropy, SessionFlags, TlsPolicy, Transport,
};
use xmpp_xml::Event as XmlEvent;

const LOCAL: &str = "a.example";
const LOCAL2: &str = "a2.example";
const REMOTE: &str = "b.example";
const SECRET: &[u8] = b"s2s fuzz dialback secret";

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
from='b.example' to='a.example' id='s2s-fuzz-1' version='1.0'>";
const FEATURES_TLS: &[u8] = b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
<required/></starttls></stream:features>";
const PROCEED: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const FEATURES_EXTERNAL: &[u8] = b"<stream:features><mechanisms \
xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>\
<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>";
const FEATURES_DIALBACK: &[u8] = b"<stream:features><dialback \
xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>";
const SUCCESS: &[u8] = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
const FEATURES_EMPTY: &[u8] = b"<stream:features/>";
const DB_VALID: &[u8] = b"<db:result from='b.example' to='a.example' type='valid'/>";
const FEATURES_EXTERNAL_BIDI: &[u8] = b"<stream:features><mechanisms \
xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>\
<bidi xmlns='urn:xmpp:features:bidi'/>\
<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>";
const FEATURES_DIALBACK_BIDI: &[u8] = b"<stream:features><bidi xmlns='urn:xmpp:features:bidi'/>\
<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>";
/// Another domain of the peer's server, named by its certificate when option bit 1 says so.
const REMOTE2: &str = "b2.example";

const NS_DIALBACK: &str = "jabber:server:dialback";

/// Output bounds configured on the machine (selector bit 6 picks the small one).
const MAX_OUTPUT: usize = 64 * 1024;
const SMALL_OUTPUT: usize = 1024;
/// Stanza bound configured on the machine: small, so that default-length inputs reach it.
const MAX_STANZA: usize = 2048;

fn jid(s: &str) -> BareJid {
    match BareJid::new(s) {
        Ok(jid) => jid,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn domain_of(value: Option<&str>) -> Option<BareJid> {
    let jid = Jid::new(value?).ok()?;
    BareJid::from_parts(None, jid.domain()).ok()
}

struct Harness {
    tx: S2sInitiatingStream,
    now: Instant,
    max_output: usize,
    started_plain: bool,
    external: bool,
    secret: bool,
    dialback_without_tls: bool,
    end: xmpp_fuzz::Ending,
    /// Pairs (ours, theirs) whose `<db:result/>` request we wrote, not answered yet.
    requested: Vec<(BareJid, BareJid)>,
    /// Of those, the ones asked once the stream was established (piggybacked).
    piggybacked: Vec<(BareJid, BareJid)>,
    /// The peer's certificate names b2.example too.
    certifies_remote2: bool,
    /// How the host answers `Event::DialbackVerify` (0 the key, 1 valid, 2 invalid, 3 never).
    verify_mode: u8,
    /// Pairs (ours, theirs) the host reported valid, not announced yet; and ever.
    valid_answers: Vec<(BareJid, BareJid)>,
    ever_valid: Vec<(BareJid, BareJid)>,
    /// Pairs announced by `ServerAuthenticated`, (ours, theirs).
    announced: Vec<(BareJid, BareJid)>,
    wire: xmpp_fuzz::Wire,
    /// Bytes polled since the host last found the queue empty or added to it.
    queued: usize,
    /// Envelopes configured (issue 17).
    envelopes: bool,
    /// Forward each stanza back: envelopes on, or their element-mode twin.
    forward: bool,
    /// What the host took, for the differential check.
    trace: xmpp_fuzz::Trace,
}

impl Harness {
    fn drain(&mut self) {
        self.queued = 0;
        while let Some(output) = self.tx.poll_output() {
            assert!(!self.end.closed, "output after Closed: {output:?}");
            match output {
                Output::Transmit(bytes) => {
                    self.queued += bytes.len();
                    // A stream header (ours start with the XML declaration) after SASL's
                    // `<success/>` opens a new stream, in the same chunk or the next: the
                    // machine restarted (`Wire::feed_restarting`).
                    self.check_wire(&bytes);
                }
                Output::StartTls => {
                    assert!(
                        self.started_plain && !self.tx.flags().contains(SessionFlags::SECURE),
                        "StartTls on a secure stream"
                    );
                    // A new stream begins over TLS, unless the stream already failed (bytes
                    // that arrived before the handshake): its error ends the old one.
                    if self.tx.tls_established(self.now, Vec::new()).is_ok() {
                        self.wire.restart();
                    }
                }
                Output::Event(event) => self.event(event),
                other => panic!("an output this harness does not know: {other:?}"),
            }
            assert!(
                self.queued <= self.max_output + 1024,
                "output over its bound: {}",
                self.queued
            );
        }
        if self.end.closed {
            assert!(self.tx.poll_timeout().is_none(), "timer after Closed");
            assert!(self.tx.is_closed());
            assert!(!self.tx.is_negotiated());
        } else {
            for pair in self.tx.pairs() {
                assert!(
                    self.announced.contains(pair),
                    "pair never announced: {pair:?}"
                );
            }
            assert_eq!(self.tx.pairs().len(), self.announced.len());
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::StreamOpened { from, .. } => {
                if let Some(from) = from {
                    assert_eq!(from.as_str(), REMOTE, "a stream from another domain");
                }
            }
            Event::Secured => assert!(self.started_plain, "Secured on direct TLS"),
            Event::ServerAuthenticated {
                local,
                remote,
                method,
            } => {
                assert!(
                    matches!(local.as_str(), LOCAL | LOCAL2),
                    "authenticated for a domain not ours: {local}"
                );
                let pair = (local, remote);
                assert!(
                    !self.announced.contains(&pair),
                    "pair announced twice: {pair:?}"
                );
                match method {
                    S2sAuthMethod::SaslExternal => {
                        assert!(self.external, "EXTERNAL when it is off");
                        assert!(
                            self.tx.flags().contains(SessionFlags::SECURE),
                            "EXTERNAL without TLS"
                        );
                        assert_eq!(pair.0.as_str(), LOCAL, "EXTERNAL for {}", pair.0);
                    }
                    S2sAuthMethod::Dialback => {
                        assert!(self.secret, "dialback without a secret");
                        assert!(
                            self.dialback_without_tls
                                || self.tx.flags().contains(SessionFlags::SECURE),
                            "dialback without TLS"
                        );
                        if let Some(at) = self.requested.iter().position(|p| *p == pair) {
                            self.requested.remove(at);
                        } else if let Some(at) = self.valid_answers.iter().position(|p| *p == pair)
                        {
                            // XEP-0288 §3: the peer asked, the host reported valid.
                            self.valid_answers.remove(at);
                        } else {
                            // XEP-0344: the peer asked, its certificate names the domain.
                            assert!(
                                self.tx.is_bidi() && self.certified(&pair.1),
                                "dialback authentication nobody asked for or proved: {pair:?}"
                            );
                        }
                    }
                    other => {
                        panic!("an authentication method this harness does not know: {other:?}")
                    }
                }
                assert!(
                    self.tx.pairs().contains(&pair),
                    "announced but not listed: {pair:?}"
                );
                self.announced.push(pair);
            }
            Event::ServerRefused { local, remote } => {
                let pair = (local, remote);
                assert!(
                    self.piggybacked.contains(&pair),
                    "refused a pair not piggybacked: {pair:?}"
                );
                assert!(!self.tx.pairs().contains(&pair), "refused yet listed");
                if let Some(at) = self.requested.iter().position(|p| *p == pair) {
                    self.requested.remove(at);
                }
            }
            Event::Stanza(stanza) => {
                self.check_stanza(&stanza, stanza.attr("from"), stanza.attr("to"));
                self.trace.stanza(&stanza);
                if self.forward {
                    let back = xmpp_fuzz::stamped(
                        stanza.clone(),
                        xmpp_xml::NS_SERVER,
                        stanza.attr("to"),
                        stanza.attr("from"),
                    );
                    let result = self.tx.send_stanza(self.now, &back);
                    self.forwarded(&result);
                }
            }
            Event::StanzaEnvelope(envelope) => {
                assert!(self.envelopes, "an envelope without the option");
                assert!(
                    matches!(envelope.kind().name(), "message" | "presence")
                        && envelope.namespace() == xmpp_xml::NS_SERVER,
                    "not a server stanza: {envelope:?}"
                );
                self.check_stanza(&envelope, envelope.from(), envelope.to());
                let element = xmpp_fuzz::envelope_element(&envelope, xmpp_xml::NS_SERVER);
                self.check_stanza(&element, element.attr("from"), element.attr("to"));
                self.trace.stanza(&element);
                let result =
                    self.tx
                        .send_envelope(self.now, &envelope, envelope.to(), envelope.from());
                self.forwarded(&result);
            }
            Event::DialbackVerify {
                originating,
                receiving,
                stream_id,
                key,
            } => {
                // Negotiated once (the stream may have closed since, in the same input).
                assert!(self.tx.is_bidi(), "a verification asked without bidi");
                assert!(
                    !self.announced.is_empty(),
                    "a verification asked before authentication"
                );
                assert!(self.secret, "a verification asked without a secret");
                assert!(
                    matches!(receiving.as_str(), LOCAL | LOCAL2),
                    "a verification for a domain not ours: {receiving}"
                );
                let outcome = match self.verify_mode {
                    0 => {
                        xmpp_fuzz::authoritative(SECRET, &originating, &receiving, &stream_id, &key)
                    }
                    1 => DialbackOutcome::Valid,
                    2 => DialbackOutcome::Invalid,
                    _ => return,
                };
                let valid = outcome == DialbackOutcome::Valid;
                let answered =
                    self.tx
                        .dialback_verified(self.now, &originating, &receiving, outcome);
                assert!(
                    answered.is_ok() || self.tx.is_closed(),
                    "a pending verification refused its answer"
                );
                if answered.is_ok() && valid {
                    let pair = (receiving, originating);
                    self.valid_answers.push(pair.clone());
                    self.ever_valid.push(pair);
                }
            }
            // Top-level elements other than stanzas (XEP-0198 `<r/>`...) are the host's.
            Event::Nonza(element) => {
                assert!(
                    !self.announced.is_empty(),
                    "a nonza before authentication: {element:?}"
                );
                assert!(
                    !(matches!(element.name(), "message" | "presence" | "iq")
                        && element.ns() == "jabber:server"),
                    "a stanza reported as a nonza: {element:?}"
                );
            }
            Event::Closed { reason } => {
                self.trace.closed(&reason);
                self.end.closed(&reason);
            }
            other => panic!("an initiating s2s stream never emits {other:?}"),
        }
    }

    /// The checks of every stanza the host takes, on its `from` and `to` (an element's, or
    /// an envelope's decoded header): only over bidi, (`to` domain, `from` domain) an
    /// announced pair.
    fn check_stanza(&self, stanza: &dyn core::fmt::Debug, from: Option<&str>, to: Option<&str>) {
        assert!(self.tx.is_bidi(), "a stanza from the peer without bidi");
        let pair = domain_of(to).zip(domain_of(from));
        assert!(
            pair.is_some_and(|pair| self.announced.contains(&pair)),
            "a stanza outside the announced pairs: {stanza:?}"
        );
    }

    /// The host forwarded a stanza it took back to the peer, `from` and `to` swapped:
    /// accepted unless the stream closed meanwhile (an error in input processed first, or
    /// the output bound). The bytes polled from here on were all queued at once.
    fn forwarded(&mut self, result: &Result<(), xmpp_stream::UsageError>) {
        if let Err(error) = result {
            assert!(
                self.tx.is_closed(),
                "a stanza taken on an open stream was not forwarded back: {error:?}"
            );
        }
        self.queued = 0;
    }

    /// Whether the peer's certificate names `domain`.
    fn certified(&self, domain: &BareJid) -> bool {
        domain.as_str() == REMOTE || (self.certifies_remote2 && domain.as_str() == REMOTE2)
    }

    /// Our bytes form one well-formed stream (per restart), from one of our domains to
    /// b.example; what we write is checked by [`check_sent`].
    fn check_wire(&mut self, bytes: &[u8]) {
        let certified: &[&str] = if self.certifies_remote2 {
            &[REMOTE, REMOTE2]
        } else {
            &[REMOTE]
        };
        let Harness {
            wire,
            tx,
            requested,
            secret,
            end,
            ever_valid,
            ..
        } = self;
        wire.feed_restarting(bytes, |event| match event {
            XmlEvent::StreamStart(header) => {
                if !end.closed && header.to.is_some() {
                    assert_eq!(header.to.as_deref(), Some(REMOTE), "our header's to");
                    assert!(
                        matches!(header.from.as_deref(), Some(LOCAL | LOCAL2)),
                        "our header's from: {:?}",
                        header.from
                    );
                }
            }
            XmlEvent::Element(element) => {
                check_sent(element, tx.pairs(), requested, *secret, certified);
                // A `valid` answer to the peer's request (XEP-0288 §3) only for a pair the
                // host reported valid or the certificate proves.
                if element.is("result", NS_DIALBACK) && element.attr("type") == Some("valid") {
                    let pair = domain_of(element.attr("from")).zip(domain_of(element.attr("to")));
                    assert!(
                        pair.is_some_and(|pair| ever_valid.contains(&pair)
                            || certified.contains(&pair.1.as_str())),
                        "a valid dialback answer nobody gave: {element:?}"
                    );
                }
            }
            _ => {}
        });
    }

    fn input(&mut self, bytes: &[u8], poll: bool) {
        let result = self.tx.handle_input(self.now, bytes);
        if self.end.input(result) {
            self.drain();
            assert!(self.end.closed, "a protocol error must end in Closed");
        } else if poll {
            self.drain();
        }
    }

    /// A host command (0x7f step), picked by `pick`.
    fn command(&mut self, pick: u8) {
        let stanza = |from: &str| {
            format!(
                "<message xmlns='jabber:client' from='alice@{from}/x' to='bob@b.example'>\
                 <body>hi</body></message>"
            )
            .parse::<Element>()
        };
        // Whitespace picks (harmless as peer bytes, so seeds can use them): '\n' a stanza
        // from a.example, '\t' from a2.example, ' ' from c.example, '\r' add_domain.
        let command = match pick {
            b'\n' => 0,
            b'\t' => 1,
            b' ' => 2,
            b'\r' => 3,
            other => other % 6,
        };
        match command {
            0..=2 => {
                let from = [LOCAL, LOCAL2, "c.example"][usize::from(command)];
                let was_negotiated = self.tx.is_negotiated();
                if let Ok(stanza) = stanza(from)
                    && self.tx.send_stanza(self.now, &stanza).is_ok()
                {
                    assert!(!self.end.closed, "send_stanza accepted after Closed");
                    assert!(was_negotiated, "send_stanza accepted before negotiation");
                    assert!(
                        self.tx.pairs().contains(&(jid(from), jid(REMOTE))),
                        "send_stanza accepted for a pair not authenticated: {from}"
                    );
                }
            }
            3 => {
                let local = jid(LOCAL2);
                let was_negotiated = self.tx.is_negotiated();
                if self.tx.add_domain(self.now, &local).is_ok() {
                    assert!(
                        !self.end.closed && was_negotiated,
                        "add_domain accepted early"
                    );
                    assert!(self.secret, "add_domain without a secret");
                    self.piggybacked.push((local, jid(REMOTE)));
                }
            }
            4 => {
                let _ = self.tx.close(self.now);
            }
            _ => {
                // A further Target Domain of the peer's (XEP-0220 §2.5 with a certificate).
                let local = jid(if pick & 0x40 == 0 { LOCAL } else { LOCAL2 });
                let remote = jid(REMOTE2);
                let was_negotiated = self.tx.is_negotiated();
                if self.tx.add_pair(self.now, &local, &remote).is_ok() {
                    assert!(
                        !self.end.closed && was_negotiated,
                        "add_pair accepted early"
                    );
                    assert!(self.secret, "add_pair without a secret");
                    assert!(
                        self.certifies_remote2,
                        "add_pair for a domain not certified"
                    );
                    self.piggybacked.push((local, remote));
                }
            }
        }
        self.drain();
    }
}

/// A stanza we write is for an authenticated pair; a dialback request is for one of ours to
/// b.example, and is noted in `requested`.
fn check_sent(
    element: &Element,
    pairs: &[(BareJid, BareJid)],
    requested: &mut Vec<(BareJid, BareJid)>,
    secret: bool,
    certified: &[&str],
) {
    // Over bidi, the machine's own refusal of a stanza with a malformed address
    // (`jid-malformed`, RFC 6120 §8.3.3.8) goes back without a `from`.
    let refusal = element.attr("type") == Some("error")
        && element.attr("from").is_none()
        && element
            .get_child("error", "jabber:server")
            .is_some_and(|error| {
                error
                    .get_child("jid-malformed", "urn:ietf:params:xml:ns:xmpp-stanzas")
                    .is_some()
            });
    if matches!(element.name(), "message" | "presence" | "iq")
        && element.ns() == "jabber:server"
        && !refusal
    {
        let pair = domain_of(element.attr("from")).zip(domain_of(element.attr("to")));
        assert!(
            pair.is_some_and(|pair| pairs.contains(&pair)),
            "a stanza written outside the authenticated pairs: {element:?}"
        );
    }
    if element.is("result", NS_DIALBACK) && element.attr("type").is_none() {
        assert!(secret, "a dialback request without a secret");
        assert!(
            matches!(element.attr("from"), Some(LOCAL | LOCAL2))
                && element.attr("to").is_some_and(|to| certified.contains(&to)),
            "a dialback request for another pair: {element:?}"
        );
        if let Some(pair) = domain_of(element.attr("from")).zip(domain_of(element.attr("to"))) {
            requested.push(pair);
        }
    }
}

/// Runs one input; `twin`: the element-mode run of an input whose options turn envelopes on
/// (forwarding as the envelope-mode run does). Returns the envelope option and the trace.
fn run(data: &[u8], twin: bool) -> (bool, xmpp_fuzz::Trace) {
    let Some((&selector, rest)) = data.split_first() else {
        return (false, xmpp_fuzz::Trace::default());
    };
    let state = usize::from(selector & 3);
    let started_plain = selector & 0x04 != 0;
    let relaxed = selector & 0x08 != 0;
    let external = selector & 0x10 == 0 || state == 2;
    let secret = selector & 0x20 == 0 || state == 3;
    let stingy = selector & 0x40 != 0;
    let poll = selector & 0x80 == 0;
    let (options, rest) = rest.split_first().map_or((0, rest), |(&b, r)| (b, r));
    let bidi = options & 0x01 != 0;
    let certifies_remote2 = options & 0x02 != 0;
    let envelopes = options & 0x10 != 0 && !twin;

    let mut config = S2sConfig::new(vec![jid(LOCAL), jid(LOCAL2)]);
    config.sasl_external = external;
    if secret {
        config.dialback_secret = Some(DialbackSecret::new(SECRET));
    }
    if relaxed {
        config.tls = TlsPolicy::Optional;
        config.dialback_without_tls = true;
    }
    let max_output = if stingy { SMALL_OUTPUT } else { MAX_OUTPUT };
    config.max_output_bytes = max_output;
    config.limits.max_stanza_bytes = MAX_STANZA;
    config.bidi = bidi;
    config.envelopes = envelopes;
    let mut tx = S2sInitiatingStream::new(config, jid(LOCAL), jid(REMOTE), SeededEntropy::new(1));
    let mut names = vec![PresentedId::Dns(REMOTE.into())];
    if certifies_remote2 {
        names.push(PresentedId::Dns(REMOTE2.into()));
    }
    tx.set_peer_identities(names);
    let mut h = Harness {
        tx,
        now: Instant::ZERO,
        max_output,
        started_plain,
        external,
        secret,
        dialback_without_tls: relaxed,
        end: xmpp_fuzz::Ending::default(),
        requested: Vec::new(),
        piggybacked: Vec::new(),
        certifies_remote2,
        verify_mode: (options >> 2) & 3,
        valid_answers: Vec::new(),
        ever_valid: Vec::new(),
        announced: Vec::new(),
        wire: xmpp_fuzz::Wire::new(MAX_OUTPUT),
        queued: 0,
        envelopes,
        forward: envelopes || twin,
        trace: xmpp_fuzz::Trace::default(),
    };
    let transport = if started_plain {
        Transport::Plain
    } else {
        Transport::Tls(Vec::new())
    };
    if h.tx.start(h.now, transport).is_err() {
        return (envelopes, h.trace);
    }
    h.drain();
    // The replay: the peer's header, STARTTLS on a plain connection, then EXTERNAL or
    // dialback.
    if state >= 1 {
        h.input(HEADER, true);
    }
    if state >= 2 && started_plain {
        h.input(FEATURES_TLS, true);
        h.input(PROCEED, true);
        h.input(HEADER, true);
    }
    match state {
        2 => {
            h.input(
                if bidi {
                    FEATURES_EXTERNAL_BIDI
                } else {
                    FEATURES_EXTERNAL
                },
                true,
            );
            h.input(SUCCESS, true);
            h.input(HEADER, true);
            h.input(FEATURES_EMPTY, true);
        }
        3 => {
            h.input(
                if bidi {
                    FEATURES_DIALBACK_BIDI
                } else {
                    FEATURES_DIALBACK
                },
                true,
            );
            h.input(DB_VALID, true);
        }
        _ => {}
    }
    assert!(
        !h.end.closed && h.end.sticky.is_none(),
        "replay to state {state} failed"
    );
    assert_eq!(h.tx.is_negotiated(), state >= 2, "state {state}");
    assert_eq!(h.announced.len(), usize::from(state >= 2));
    assert_eq!(h.tx.is_bidi(), bidi && state >= 2, "bidi after the replay");
    for step in xmpp_fuzz::steps(rest) {
        if step.tick {
            h.now = h.now + Duration::from_secs(60);
            h.tx.handle_timeout(h.now);
            h.drain();
        }
        if step.transport_closed {
            h.tx.transport_closed(h.now);
            h.drain();
            assert!(h.end.closed, "transport_closed must end in Closed");
        }
        if step.host_sends {
            h.command(step.bytes.first().copied().unwrap_or(0));
        }
        h.input(step.bytes, poll);
    }
    h.drain();
    (envelopes, h.trace)
}

#[global_allocator]
static ALLOC: xmpp_fuzz::Counting = xmpp_fuzz::Counting;

/// Peak heap one input may use, independent of the input length: one stanza (bounded by
/// `MAX_STANZA`) as bytes and as a tree (~70 heap bytes per source byte at worst), the fixed
/// state of the machine and the harness, and the output a host that stops polling lets
/// queue, held once in the queue and once in the wire checker's parser: 128 per stanza byte
/// plus 3 x `MAX_OUTPUT`.
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
