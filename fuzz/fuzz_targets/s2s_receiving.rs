#![no_main]
//! An `S2sReceivingStream` (RFC 6120 §13, the end that accepts a server's connection) fuzzed
//! at several negotiation states. Byte 0 picks the state (fresh, header received, established
//! by SASL EXTERNAL, established by dialback with a second verification pending, a first
//! dialback verification pending) and options (the peer's certificate names it or another
//! domain, dialback secret on or off, direct TLS or plain with STARTTLS, TLS optional with
//! dialback allowed without it, a host that stops polling under a small output bound). Byte 1
//! picks how the host answers `Event::DialbackVerify` (checks the key as the authoritative
//! server would, always valid, invalid, an error, later at a host step, never; bits 0-2) and
//! whether XEP-0288 bidi is configured (bit 3: the replay then asks for it after TLS, and
//! host steps whose pick has bit 4 set call `add_pair` for a reverse pair, XEP-0288 §3, or
//! `send_stanza` for an announced pair). The machine
//! is brought to its state by replaying a scripted initiating server (dialback keys computed
//! with the crate's own `DialbackSecret` for the stream id the machine drew), then the rest
//! is `xmpp_fuzz::steps`: chunks, clock jumps, transport close, and (0x7f) a deferred host
//! answer, its outcome picked by the step's first byte.
//!
//! Properties: no panic; errors are sticky and end in `Closed`; nothing after `Closed`;
//! output within its bound between polls; no c2s or initiating-only output; a
//! `ServerAuthenticated` only for a pair the host just reported valid (dialback), whose
//! certificate names the peer over TLS (EXTERNAL, or dialback without asking: XEP-0344), or
//! that we asked for ourselves over bidi, once, and listed by `pairs()`; every pair
//! `pairs()` lists was announced; no `Event::Stanza` before a pair is authenticated, and each
//! has a (`to` domain, `from` domain) that is an announced pair; `dialback_verified` succeeds
//! exactly for the verifications asked, not answered and not past their deadline; no dialback
//! without the secret, or without TLS unless allowed; a `valid` dialback answer on the wire
//! only for a pair the host reported valid or the certificate proves; the bytes written form one well-formed XML stream
//! per stream (restarted after STARTTLS and EXTERNAL), whose header never names a domain we
//! do not serve; `add_pair` accepted only on a negotiated bidi stream with the secret, for
//! one of our domains and a domain the peer authenticated or its certificate names, and its
//! `ServerAuthenticated` / `ServerRefused` only for a pair so asked; `send_stanza` accepted
//! only with bidi, for an announced pair.
//!
//! Envelopes (issue 17): byte 1 bit 4 turns `S2sConfig::envelopes` on. Every
//! `Event::StanzaEnvelope` is then held to the `Event::Stanza` properties above, checked on
//! its decoded header (kind, namespace, `from`, `to`) and on `envelope.element()`, which must
//! rebuild with the header's name, namespace, `from` and `to` (`xmpp_fuzz::envelope_element`;
//! iqs stay elements); no envelope without the option. Each one is forwarded back with
//! `send_envelope`, `from` and `to` swapped (an authenticated pair of ours): with bidi
//! negotiated it is accepted unless the stream closed meanwhile, so the splice runs on every
//! accepted stanza and its bytes stay within the output bound and the well-formed stream
//! above; without bidi it is refused with `send_stanza`'s error for the stamped element.
//! Differential: such an input runs a second time with envelopes off (forwarding each stanza
//! back as the stamped element with `send_stanza`, so both machines see the same host
//! actions); both must hand the host the same stanzas in the same order (the envelope's
//! element equal to the element) and end with the same reason (`xmpp_fuzz::Trace`: up to
//! where the output bound ended either).

use core::time::Duration;

use minidom::Element;
use xmpp_jid::Jid;
use xmpp_stream::dialback::{DialbackCondition, DialbackKey, DialbackSecret, Domain, StreamId};
use xmpp_stream::identity::PresentedId;
use xmpp_stream::{
    BareJid, DialbackOutcome, Event, Instant, Output, S2sAuthMethod, S2sConfig, S2sReceivingStream,
    SeededEntropy, SessionFlags, StanzaErrorCondition, TlsPolicy, Transport,
};
use xmpp_xml::Event as XmlEvent;

/// Our domains.
const OURS: [&str; 2] = ["b.example", "b2.example"];
/// The peer's domains (a.example's server also speaks for a2.example).
const PEER: &str = "a.example";
const PEER2: &str = "a2.example";
/// The dialback secret of every server in this test world (ours and the peer's authoritative
/// servers), so that seeds can carry valid keys.
const SECRET: &[u8] = b"s2s fuzz dialback secret";
/// Fixed, so that a seed's keys stay right whatever option bits a mutation flips.
const ENTROPY_SEED: u64 = 2;
const DIALBACK_TIMEOUT: Duration = Duration::from_secs(30);

const NS_STREAM: &str = "http://etherx.jabber.org/streams";
const NS_DIALBACK: &str = "jabber:server:dialback";
const STARTTLS: &[u8] = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const BIDI: &[u8] = b"<bidi xmlns='urn:xmpp:bidi'/>";
const AUTH_EXTERNAL: &[u8] =
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>";

/// Output bounds configured on the machine (selector bit 7 picks the small one).
const MAX_OUTPUT: usize = 64 * 1024;
const SMALL_OUTPUT: usize = 1024;
/// Stanza bound configured on the machine: small, so that default-length inputs reach it.
const MAX_STANZA: usize = 2048;
/// Deferred host answers the harness remembers (older ones are dropped: never answered).
const MAX_DEFERRED: usize = 16;

fn header(from: &str) -> Vec<u8> {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='{NS_STREAM}' xmlns:db='{NS_DIALBACK}' from='{from}' to='b.example' \
         version='1.0'>"
    )
    .into_bytes()
}

fn jid(s: &str) -> BareJid {
    match BareJid::new(s) {
        Ok(jid) => jid,
        Err(e) => panic!("{s}: {e}"),
    }
}

/// The key the authoritative server of `originating` makes for `receiving` on stream `id`.
fn key(originating: &str, receiving: &str, id: &str) -> String {
    match (
        Domain::new(receiving),
        Domain::new(originating),
        StreamId::new(id),
    ) {
        (Ok(receiving), Ok(originating), Ok(id)) => DialbackSecret::new(SECRET)
            .key(&receiving, &originating, &id)
            .as_str()
            .to_owned(),
        _ => panic!("bad dialback inputs"),
    }
}

/// What the authoritative server of `originating` answers to `<db:verify/>`.
fn authoritative(
    originating: &BareJid,
    receiving: &BareJid,
    id: &StreamId,
    key: &DialbackKey,
) -> DialbackOutcome {
    xmpp_fuzz::authoritative(SECRET, originating, receiving, id, key)
}

/// How the host answers `Event::DialbackVerify`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// At once: the key checked with the secret.
    Check,
    /// At once: valid, whatever the key.
    Valid,
    /// At once: invalid.
    Invalid,
    /// At once: an error.
    Error,
    /// Later, at a host step (0x7f): possibly past the deadline.
    Defer,
    /// Never.
    Never,
}

impl Mode {
    fn from_byte(b: u8) -> Self {
        match b & 7 {
            0 => Mode::Check,
            1 => Mode::Valid,
            2 => Mode::Invalid,
            3 => Mode::Error,
            4 | 5 => Mode::Defer,
            _ => Mode::Never,
        }
    }
}

/// A verification the machine asked for.
struct Asked {
    originating: BareJid,
    receiving: BareJid,
    stream_id: StreamId,
    key: DialbackKey,
    /// When the machine gives up on it.
    deadline: Instant,
}

struct Harness {
    rx: S2sReceivingStream,
    now: Instant,
    max_output: usize,
    mode: Mode,
    /// Options of this run.
    secret: bool,
    certificate_names_peer: bool,
    dialback_without_tls: bool,
    started_plain: bool,
    end: xmpp_fuzz::Ending,
    /// Verifications asked and not answered yet (the host's memory of them).
    deferred: Vec<Asked>,
    /// (receiving, originating) the host reported valid since the last event consumed it.
    valid_answers: Vec<(BareJid, BareJid)>,
    /// Every (receiving, originating) the host ever reported valid.
    ever_valid: Vec<(BareJid, BareJid)>,
    /// Pairs announced by `ServerAuthenticated`, (ours, theirs).
    announced: Vec<(BareJid, BareJid)>,
    /// XEP-0288 bidi configured.
    bidi: bool,
    /// Pairs (ours, theirs) we asked for with `add_pair`, not answered yet.
    reverse: Vec<(BareJid, BareJid)>,
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

fn domain_of(value: Option<&str>) -> Option<BareJid> {
    let jid = Jid::new(value?).ok()?;
    BareJid::from_parts(None, jid.domain()).ok()
}

impl Harness {
    fn drain(&mut self) {
        self.queued = 0;
        while let Some(output) = self.rx.poll_output() {
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
                        self.started_plain && !self.rx.flags().contains(SessionFlags::SECURE),
                        "StartTls on a secure stream"
                    );
                    // The bytes after `<proceed/>` are a new stream over TLS.
                    // A new stream begins over TLS, unless the stream already failed (bytes
                    // that arrived before the handshake): its error ends the old one.
                    if self.rx.tls_established(self.now, Vec::new()).is_ok() {
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
            assert!(self.rx.poll_timeout().is_none(), "timer after Closed");
            assert!(self.rx.is_closed());
            assert!(!self.rx.is_negotiated());
        } else {
            // Every pair listed was announced (and so checked when it was).
            for pair in self.rx.pairs() {
                assert!(
                    self.announced.contains(pair),
                    "pair never announced: {pair:?}"
                );
            }
            assert_eq!(self.rx.pairs().len(), self.announced.len());
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            // Not compared with `stream_id()`: a host that stops polling may see it after a
            // restart drew the next id.
            Event::StreamOpened { id, .. } => assert!(id.is_some(), "a stream without an id"),
            Event::Secured => assert!(self.started_plain, "Secured on direct TLS"),
            Event::DialbackVerify {
                originating,
                receiving,
                stream_id,
                key,
            } => {
                assert!(self.secret, "dialback without a secret");
                assert!(
                    self.dialback_without_tls || self.rx.flags().contains(SessionFlags::SECURE),
                    "dialback without TLS"
                );
                assert!(
                    OURS.contains(&receiving.as_str()),
                    "verification for a domain not ours: {receiving}"
                );
                assert!(receiving.node().is_none() && originating.node().is_none());
                let asked = Asked {
                    originating,
                    receiving,
                    stream_id,
                    key,
                    deadline: self.now + DIALBACK_TIMEOUT,
                };
                match self.mode {
                    Mode::Check => {
                        let outcome = authoritative(
                            &asked.originating,
                            &asked.receiving,
                            &asked.stream_id,
                            &asked.key,
                        );
                        self.answer(&asked, outcome, true);
                    }
                    Mode::Valid => self.answer(&asked, DialbackOutcome::Valid, true),
                    Mode::Invalid => self.answer(&asked, DialbackOutcome::Invalid, true),
                    Mode::Error => self.answer(
                        &asked,
                        DialbackOutcome::Error(DialbackCondition::from(
                            StanzaErrorCondition::RemoteServerNotFound,
                        )),
                        true,
                    ),
                    Mode::Defer => {
                        if self.deferred.len() >= MAX_DEFERRED {
                            self.deferred.remove(0);
                        }
                        self.deferred.push(asked);
                    }
                    Mode::Never => {}
                }
            }
            Event::ServerAuthenticated {
                local,
                remote,
                method,
            } => {
                assert!(
                    OURS.contains(&local.as_str()),
                    "authenticated for a domain not ours: {local}"
                );
                let pair = (local, remote);
                assert!(
                    !self.announced.contains(&pair),
                    "pair announced twice: {pair:?}"
                );
                match method {
                    S2sAuthMethod::SaslExternal => {
                        assert!(
                            self.rx.flags().contains(SessionFlags::SECURE),
                            "EXTERNAL without TLS"
                        );
                        assert!(
                            self.certificate_names_peer && [PEER, PEER2].contains(&pair.1.as_str()),
                            "EXTERNAL for {} with a certificate that does not name it",
                            pair.1
                        );
                    }
                    S2sAuthMethod::Dialback => {
                        if let Some(at) = self.reverse.iter().position(|p| *p == pair) {
                            // The peer answered our own request (XEP-0288 §3).
                            self.reverse.remove(at);
                        } else if self.certified(&pair.1) {
                            // XEP-0344 §2.4: the certificate proves it, nobody is asked.
                        } else {
                            let Some(at) = self.valid_answers.iter().position(|p| *p == pair)
                            else {
                                panic!("dialback authentication the host did not report: {pair:?}");
                            };
                            self.valid_answers.remove(at);
                        }
                    }
                    other => {
                        panic!("an authentication method this harness does not know: {other:?}")
                    }
                }
                assert!(
                    self.rx.pairs().contains(&pair),
                    "announced but not listed: {pair:?}"
                );
                self.announced.push(pair);
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
                    let bidi = self.rx.is_bidi();
                    let result = self.rx.send_stanza(self.now, &back);
                    self.forwarded(bidi, &result);
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
                let bidi = self.rx.is_bidi();
                let result =
                    self.rx
                        .send_envelope(self.now, &envelope, envelope.to(), envelope.from());
                if !bidi {
                    // Refused as `send_stanza` refuses the stamped element (nothing changed).
                    let back = xmpp_fuzz::stamped(
                        element,
                        xmpp_xml::NS_SERVER,
                        envelope.to(),
                        envelope.from(),
                    );
                    assert_eq!(
                        result,
                        self.rx.send_stanza(self.now, &back),
                        "send_envelope and send_stanza differ without bidi"
                    );
                }
                self.forwarded(bidi, &result);
            }
            Event::Nonza(_) => assert!(!self.announced.is_empty(), "a nonza before auth"),
            Event::ServerRefused { local, remote } => {
                let pair = (local, remote);
                let Some(at) = self.reverse.iter().position(|p| *p == pair) else {
                    panic!("refused a pair we never asked for: {pair:?}");
                };
                self.reverse.remove(at);
                assert!(!self.rx.pairs().contains(&pair), "refused yet listed");
            }
            Event::Closed { reason } => {
                self.trace.closed(&reason);
                self.end.closed(&reason);
            }
            other => panic!("a receiving s2s stream never emits {other:?}"),
        }
    }

    /// The checks of every stanza the host takes, on its `from` and `to` (an element's, or
    /// an envelope's decoded header): after authentication, (`to` domain, `from` domain) an
    /// announced pair.
    fn check_stanza(&self, stanza: &dyn core::fmt::Debug, from: Option<&str>, to: Option<&str>) {
        assert!(
            !self.announced.is_empty(),
            "a stanza before authentication: {stanza:?}"
        );
        let pair = domain_of(to).zip(domain_of(from));
        assert!(
            pair.as_ref().is_some_and(
                |pair| self.announced.contains(pair) && self.rx.pairs().contains(pair)
            ),
            "a stanza outside the authenticated pairs: {stanza:?}"
        );
    }

    /// The host forwarded a stanza it took back to the peer, `from` and `to` swapped: with
    /// bidi (`bidi`: before the call) accepted unless the stream closed meanwhile (an error
    /// in input processed first, or the output bound); without, refused. The bytes polled
    /// from here on were all queued at once.
    fn forwarded(&mut self, bidi: bool, result: &Result<(), xmpp_stream::UsageError>) {
        match result {
            Ok(()) => assert!(bidi, "a stanza forwarded to the peer without bidi"),
            Err(error) => assert!(
                !bidi || self.rx.is_closed(),
                "a stanza taken on an open bidi stream was not forwarded back: {error:?}"
            ),
        }
        self.queued = 0;
    }

    /// The host reports an outcome for `asked`. `fresh`: asked in this very drain.
    fn answer(&mut self, asked: &Asked, outcome: DialbackOutcome, fresh: bool) {
        let expect_ok = !self.end.closed && (fresh || self.now < asked.deadline);
        let result = self.rx.dialback_verified(
            self.now,
            &asked.originating,
            &asked.receiving,
            outcome.clone(),
        );
        if result.is_ok() {
            assert!(
                expect_ok,
                "a late or stale dialback answer was accepted: {} -> {}",
                asked.originating, asked.receiving
            );
            if outcome == DialbackOutcome::Valid {
                let pair = (asked.receiving.clone(), asked.originating.clone());
                self.valid_answers.push(pair.clone());
                if !self.ever_valid.contains(&pair) {
                    self.ever_valid.push(pair);
                }
            }
        } else {
            // Only a stream that closed meanwhile (buffered input processed first) may refuse
            // an answer that is due.
            assert!(
                !expect_ok || self.rx.is_closed(),
                "a pending dialback answer was refused: {} -> {}",
                asked.originating,
                asked.receiving
            );
        }
    }

    /// Whether the peer's certificate names `domain` over TLS: a dialback request for it is
    /// valid without asking the authoritative server (XEP-0344 §2.4).
    fn certified(&self, domain: &BareJid) -> bool {
        self.certificate_names_peer
            && self.rx.flags().contains(SessionFlags::SECURE)
            && [PEER, PEER2].contains(&domain.as_str())
    }

    /// A host step with bit 4 of `pick` set: with bit 5, `send_stanza` from one of our
    /// domains to one of the peer's; else `add_pair` for such a pair (XEP-0288 §3).
    fn host_commands(&mut self, pick: u8) {
        let local = jid(OURS[usize::from(pick & 1)]);
        let remote = jid([PEER, PEER2, "c.example"][usize::from((pick >> 1) & 3) % 3]);
        let was_negotiated = self.rx.is_negotiated();
        let bidi = self.rx.is_bidi();
        if pick & 0x20 != 0 {
            let stanza = format!(
                "<message xmlns='jabber:client' from='x@{local}' to='y@{remote}'><body>hi</body></message>"
            );
            let Ok(stanza) = stanza.parse::<Element>() else {
                return;
            };
            if self.rx.send_stanza(self.now, &stanza).is_ok() {
                assert!(
                    !self.end.closed && was_negotiated && bidi,
                    "send_stanza accepted early"
                );
                assert!(
                    self.announced.contains(&(local, remote)),
                    "send_stanza accepted for a pair not announced"
                );
            }
            return;
        }
        let authenticated = self.announced.iter().any(|(_, r)| *r == remote);
        if self.rx.add_pair(self.now, &local, &remote).is_ok() {
            assert!(
                !self.end.closed && was_negotiated,
                "add_pair accepted early"
            );
            assert!(self.bidi && bidi, "add_pair accepted without bidi");
            assert!(self.secret, "add_pair accepted without a secret");
            assert!(
                authenticated || (self.certificate_names_peer && remote.as_str() != "c.example"),
                "add_pair accepted for a domain the peer is not authoritative for: {remote}"
            );
            self.reverse.push((local, remote));
        }
    }

    /// A host step: answer the oldest deferred verification (or one never asked).
    fn host_answers(&mut self, pick: u8) {
        // Whitespace picks (harmless as peer bytes, so seeds can use them): ' ' checks the
        // key, '\t' valid, '\n' invalid, '\r' an error.
        let pick = match pick {
            b' ' => 0,
            b'\t' => 1,
            b'\n' => 2,
            b'\r' => 3,
            other => other,
        };
        let outcome_of = |asked: &Asked| match pick & 3 {
            0 => authoritative(
                &asked.originating,
                &asked.receiving,
                &asked.stream_id,
                &asked.key,
            ),
            1 => DialbackOutcome::Valid,
            2 => DialbackOutcome::Invalid,
            _ => DialbackOutcome::Error(DialbackCondition::from(
                StanzaErrorCondition::RemoteServerTimeout,
            )),
        };
        if self.deferred.is_empty() {
            // Never asked (not one of our domains): refused.
            let result = self.rx.dialback_verified(
                self.now,
                &jid(PEER),
                &jid("z.example"),
                DialbackOutcome::Valid,
            );
            assert!(result.is_err(), "an answer nobody asked for was accepted");
            return;
        }
        let asked = self.deferred.remove(0);
        let outcome = outcome_of(&asked);
        self.answer(&asked, outcome, false);
    }

    /// Our bytes form one well-formed stream (per restart); our header never names a domain
    /// we do not serve; a `valid` dialback answer only for a pair the host reported valid.
    fn check_wire(&mut self, bytes: &[u8]) {
        let certified: &[&str] = if self.certificate_names_peer {
            &[PEER, PEER2]
        } else {
            &[]
        };
        let Harness {
            wire,
            ever_valid,
            secret,
            ..
        } = self;
        wire.feed_restarting(bytes, |event| match event {
            XmlEvent::StreamStart(header) => {
                if let Some(from) = header.from.as_deref() {
                    assert!(OURS.contains(&from), "our header from {from}");
                }
            }
            XmlEvent::Element(element) => check_sent(element, ever_valid, *secret, certified),
            _ => {}
        });
    }

    fn input(&mut self, bytes: &[u8], poll: bool) {
        let result = self.rx.handle_input(self.now, bytes);
        if self.end.input(result) {
            self.drain();
            assert!(self.end.closed, "a protocol error must end in Closed");
        } else if poll {
            self.drain();
        }
    }

    /// A `<db:result/>` with the right key for `originating` on the current stream.
    fn db_result(&self, originating: &str) -> Vec<u8> {
        let Some(id) = self.rx.stream_id() else {
            panic!("no stream id to key");
        };
        format!(
            "<db:result from='{originating}' to='b.example'>{}</db:result>",
            key(originating, "b.example", id)
        )
        .into_bytes()
    }
}

/// A `valid` dialback answer we write is for a pair the host reported valid or whose
/// originating domain the certificate names (XEP-0344); `db:verify` is answered `valid` only
/// with a secret.
fn check_sent(
    element: &Element,
    ever_valid: &[(BareJid, BareJid)],
    secret: bool,
    certified: &[&str],
) {
    if element.is("result", NS_DIALBACK) && element.attr("type") == Some("valid") {
        let pair = domain_of(element.attr("from")).zip(domain_of(element.attr("to")));
        assert!(
            pair.is_some_and(
                |pair| ever_valid.contains(&pair) || certified.contains(&pair.1.as_str())
            ),
            "a valid dialback answer the host never gave: {element:?}"
        );
    }
    if element.is("verify", NS_DIALBACK) && element.attr("type") == Some("valid") {
        assert!(secret, "db:verify answered valid without a secret");
    }
}

/// Runs one input; `twin`: the element-mode run of an input whose options turn envelopes on
/// (forwarding as the envelope-mode run does). Returns the envelope option and the trace.
fn run(data: &[u8], twin: bool) -> (bool, xmpp_fuzz::Trace) {
    let Some((&selector, rest)) = data.split_first() else {
        return (false, xmpp_fuzz::Trace::default());
    };
    let (host, rest) = rest.split_first().map_or((0, rest), |(&b, r)| (b, r));
    let envelopes = host & 0x10 != 0 && !twin;
    let state = usize::from(selector & 7) % 5;
    // States 3 and 4 replay verifications the host is asked for: a certificate naming the
    // peer would answer them at once (XEP-0344).
    let certificate_names_peer = (selector & 0x08 == 0 && state < 3) || state == 2;
    let secret = selector & 0x10 == 0 || state >= 3;
    let started_plain = selector & 0x20 != 0;
    let relaxed = selector & 0x40 != 0;
    let stingy = selector & 0x80 != 0;
    let bidi = host & 0x08 != 0;

    let mut config = S2sConfig::new(OURS.iter().map(|d| jid(d)).collect());
    if secret {
        config.dialback_secret = Some(DialbackSecret::new(SECRET));
    }
    if relaxed {
        config.tls = TlsPolicy::Optional;
        config.dialback_without_tls = true;
    }
    config.dialback_timeout = DIALBACK_TIMEOUT;
    config.bidi = bidi;
    let max_output = if stingy { SMALL_OUTPUT } else { MAX_OUTPUT };
    config.max_output_bytes = max_output;
    config.limits.max_stanza_bytes = MAX_STANZA;
    config.envelopes = envelopes;
    let mut rx = S2sReceivingStream::new(config, SeededEntropy::new(ENTROPY_SEED));
    rx.set_peer_identities(if certificate_names_peer {
        vec![
            PresentedId::Dns(PEER.into()),
            PresentedId::Dns(PEER2.into()),
        ]
    } else {
        vec![PresentedId::Dns("evil.example".into())]
    });
    let mut h = Harness {
        rx,
        now: Instant::ZERO,
        max_output,
        // The replay needs its verifications answered by the key.
        mode: Mode::Check,
        secret,
        certificate_names_peer,
        dialback_without_tls: relaxed,
        started_plain,
        end: xmpp_fuzz::Ending::default(),
        deferred: Vec::new(),
        valid_answers: Vec::new(),
        ever_valid: Vec::new(),
        announced: Vec::new(),
        bidi,
        reverse: Vec::new(),
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
    if h.rx.start(h.now, transport).is_err() {
        return (envelopes, h.trace);
    }
    h.drain();
    // The replay: the peer's header, STARTTLS on a plain connection, then EXTERNAL or
    // dialback.
    if state >= 1 {
        h.input(&header(PEER), true);
    }
    if state >= 2 && started_plain {
        h.input(STARTTLS, true);
        h.input(&header(PEER), true);
    }
    if state >= 2 && bidi {
        // XEP-0288: asked for after TLS, before authentication.
        h.input(BIDI, true);
    }
    match state {
        2 => {
            h.input(AUTH_EXTERNAL, true);
            h.input(&header(PEER), true);
        }
        3 => {
            let first = h.db_result(PEER);
            h.input(&first, true);
            h.mode = Mode::Defer;
            let second = h.db_result(PEER2);
            h.input(&second, true);
        }
        4 => {
            h.mode = Mode::Defer;
            let first = h.db_result(PEER);
            h.input(&first, true);
        }
        _ => {}
    }
    // The replay really reached the state it names.
    assert!(
        !h.end.closed && h.end.sticky.is_none(),
        "replay to state {state} failed"
    );
    assert_eq!(
        h.rx.is_negotiated(),
        state == 2 || state == 3,
        "state {state}"
    );
    assert_eq!(h.announced.len(), usize::from(state == 2 || state == 3));
    assert_eq!(h.deferred.len(), usize::from(state >= 3));
    h.mode = Mode::from_byte(host);
    let poll = !stingy;
    for step in xmpp_fuzz::steps(rest) {
        if step.tick {
            h.now = h.now + Duration::from_secs(60);
            // A closed stream must stay silent however late the host calls (the fault
            // tests/s2s_regressions.rs keeps fixed).
            h.rx.handle_timeout(h.now);
            h.drain();
        }
        if step.transport_closed {
            h.rx.transport_closed(h.now);
            h.drain();
            assert!(h.end.closed, "transport_closed must end in Closed");
        }
        if step.host_sends {
            let pick = step.bytes.first().copied().unwrap_or(0);
            if pick & 0x10 != 0 {
                h.host_commands(pick);
            } else {
                h.host_answers(pick);
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

/// Peak heap one input may use, independent of the input length: one stanza (bounded by
/// `MAX_STANZA`) as bytes and as a tree (~70 heap bytes per source byte at worst), the fixed
/// state of the machine and of the harness (at most 64 pairs, 8 pending verifications,
/// `MAX_DEFERRED` remembered ones), and the output a host that stops polling lets queue,
/// held once in the queue and once in the wire checker's parser: 128 per stanza byte plus
/// 3 x `MAX_OUTPUT`.
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
