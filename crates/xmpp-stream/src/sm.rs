//! XEP-0198 stream management: the configuration, the counters and the unacknowledged queue a
//! machine keeps once management is enabled, the state a host keeps across a lost connection
//! ([`SmState`] for a client, [`DetachedSession`] for a server), and the wire elements. What
//! each element means is in the negotiation table ([`crate::rules`], `sm.*` rows) and its
//! handlers; this module never changes a machine's step.
//!
//! Counters are `u32` and wrap (XEP-0198 §5: "h" is mod 2^32); only stanzas count; an inbound
//! stanza counts as handled when the host has taken its [`Event::Stanza`](crate::Event::Stanza)
//! from `poll_output`, never when it was parsed.

use core::time::Duration;
use std::collections::VecDeque;

use minidom::Element;
use xmpp_jid::FullJid;
use xmpp_xml::{ParseError, StreamError, StreamErrorCondition, StreamWriter};

use crate::codec::set_attr;

/// The XEP-0198 namespace (version 3).
pub const NS: &str = "urn:xmpp:sm:3";

/// Where `<failed/>`'s condition lives (RFC 6120 §8.3.3).
pub(crate) const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// What to do when the unacknowledged queue is full and the host sends another stanza.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnackedOverflow {
    /// Refuse the stanza: `send_stanza` returns [`UsageError::Backpressure`](crate::UsageError::Backpressure)
    /// (an `<r/>` is sent so acknowledgements free the queue); the host keeps it and retries.
    #[default]
    Refuse,
    /// Send it, and stop keeping the oldest unacknowledged stanza for re-sending: the machine
    /// hands it back as [`SmEvent::Forgotten`] (it may or may not have
    /// arrived) so it is never lost silently.
    ForgetOldest,
}

/// Stream management settings, for either role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmConfig {
    /// Client: enable stream management after binding when the server offers it. Server:
    /// offer `<sm xmlns='urn:xmpp:sm:3'/>` and accept `<enable/>`. Default off.
    pub enabled: bool,
    /// Client: ask for resumption. Server: grant it (the host keeps detached sessions, see
    /// [`ServerStream::detach`](crate::ServerStream::detach)). Default on.
    pub resume: bool,
    /// Server: the resumption window advertised as `max` (seconds; the host enforces it).
    /// Client: the preferred window sent in `<enable max=''/>`. Default 300 s.
    pub max_resume: Option<Duration>,
    /// Stanzas kept for re-sending until acknowledged (default 500).
    pub max_unacked: usize,
    /// What a full queue does (default [`UnackedOverflow::Refuse`]).
    pub overflow: UnackedOverflow,
    /// Send `<r/>` after this many stanzas since the last request (default 5; 0: never by count).
    pub request_every: u32,
    /// Send `<r/>` when stanzas have waited this long unacknowledged (default 30 s).
    pub request_after: Option<Duration>,
    /// Server: an inbound stanza counts as handled (in `<a h=''/>`, `<resumed h=''/>`) only
    /// once the host says so with [`ServerStream::stanza_handled`](crate::ServerStream::stanza_handled)
    /// (e.g. once what it caused is durable), not when its event is taken. Default off.
    pub handled_by_host: bool,
}

impl Default for SmConfig {
    fn default() -> Self {
        SmConfig {
            enabled: false,
            resume: true,
            max_resume: Some(Duration::from_secs(300)),
            max_unacked: 500,
            overflow: UnackedOverflow::Refuse,
            request_every: 5,
            request_after: Some(Duration::from_secs(30)),
            handled_by_host: false,
        }
    }
}

impl SmConfig {
    /// Stream management on, with the other defaults.
    pub fn on() -> Self {
        SmConfig {
            enabled: true,
            ..SmConfig::default()
        }
    }
}

/// XEP-0199 pings on a negotiated stream, for either role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PingConfig {
    /// Send a ping when nothing was received for this long.
    pub idle: Duration,
    /// Close with `connection-timeout` when nothing was received this long after the ping.
    pub timeout: Duration,
}

impl PingConfig {
    /// Ping after `idle` of silence; give up `timeout` later.
    pub fn new(idle: Duration, timeout: Duration) -> Self {
        PingConfig { idle, timeout }
    }
}

/// The XEP-0199 namespace.
pub const PING_NS: &str = "urn:xmpp:ping";

/// A client's resumable stream-management state: what a host persists to resume after a
/// lost connection or a process restart (`serde` feature: `Serialize`/`Deserialize`). Taken
/// with [`ClientStream::sm_state`](crate::ClientStream::sm_state), given back with
/// [`ClientStream::resume_with`](crate::ClientStream::resume_with).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SmState {
    /// The server's resumption id (`<enabled id=''/>`).
    pub id: String,
    /// The full JID of the session.
    pub jid: String,
    /// Where the server asked to be reconnected (`<enabled location=''/>`), if anywhere.
    pub location: Option<String>,
    /// Stanzas the host has taken from the machine (our `h`).
    pub handled: u32,
    /// Stanzas sent since enabling, mod 2^32.
    pub sent: u32,
    /// The last `h` the server acknowledged.
    pub acked: u32,
    /// The unacknowledged stanzas, oldest first, as XML text in `jabber:client`.
    pub unacked: Vec<String>,
}

/// What stream management tells the host, through [`Event::Sm`](crate::Event::Sm).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SmEvent {
    /// Stream management is on (client: `<enabled/>` arrived; server: it was sent).
    Enabled {
        /// The resumption id, when resumption was granted.
        id: Option<String>,
        /// The resumption window in seconds, if the server named one.
        max: Option<u32>,
        /// Where the server wants resumption to connect, if it said.
        location: Option<String>,
    },
    /// Client: the server refused `<enable/>` (the `<failed/>` condition, if any).
    Refused {
        /// The stanza-error condition name in `<failed/>`.
        condition: Option<String>,
    },
    /// The old session goes on (both roles): `resent` unacknowledged stanzas were sent again,
    /// in order.
    Resumed {
        /// The session's full JID.
        jid: FullJid,
        /// Stanzas re-sent.
        resent: usize,
    },
    /// Client: resumption failed; these stanzas were not acknowledged and must be treated as
    /// not delivered. The client binds afresh (`Negotiated` follows).
    ResumeFailed {
        /// The stanza-error condition name in `<failed/>`, if any.
        condition: Option<String>,
        /// The stanzas not delivered, oldest first.
        undelivered: Vec<Unacked>,
    },
    /// Server: the client asks to resume session `previd`, having handled `h` stanzas. Answer
    /// with [`ServerStream::resume`](crate::ServerStream::resume) or
    /// [`ServerStream::refuse_resume`](crate::ServerStream::refuse_resume).
    ResumeRequested {
        /// The resumption id.
        previd: String,
        /// The client's count of handled stanzas.
        h: u32,
    },
    /// The unacknowledged queue was full ([`UnackedOverflow::ForgetOldest`]): this stanza was
    /// sent but will not be re-sent on resumption; it may not have arrived.
    Forgotten(Unacked),
}

/// A short, stable text form of an [`SmEvent`], as written in transcripts' `E` lines.
pub(crate) fn summary(event: &SmEvent) -> String {
    match event {
        SmEvent::Enabled { id, .. } => format!("SmEnabled {}", id.as_deref().unwrap_or("-")),
        SmEvent::Refused { condition } => {
            format!("SmRefused {}", condition.as_deref().unwrap_or("-"))
        }
        SmEvent::Resumed { jid, resent } => format!("SmResumed {jid} {resent}"),
        SmEvent::ResumeFailed { undelivered, .. } => {
            format!("SmResumeFailed {}", undelivered.len())
        }
        SmEvent::ResumeRequested { previd, h } => format!("SmResumeRequested {previd} {h}"),
        SmEvent::Forgotten(stanza) => {
            let element = stanza.element().ok();
            let id = element.as_ref().and_then(|e| e.attr("id"));
            format!("SmForgotten {}", id.unwrap_or("-"))
        }
    }
}

/// A stanza sent on a managed stream and kept until the peer acknowledges it (XEP-0198 §4),
/// as it was sent: the bytes the stream wrote for it, one allocation, so that keeping a
/// stanza copies no element. For an element given to `send_stanza` (or to
/// [`DetachedSession::queue`]) those are the serializer's bytes when they stand for exactly
/// that element on their own ([`StreamWriter::writes_exactly`]), else (a stanza whose
/// writing moves a child between the content namespaces, or uses a prefix the stream header
/// binds, say) a copy of the element; for a stanza
/// [`ServerStream::send_envelope`](crate::ServerStream::send_envelope) forwarded, the bytes it
/// spliced, so forwarding an envelope to a managed stream builds no element. Resumption
/// sends it again (bytes verbatim where they mean the same on the new stream); the host gets
/// one back only when the queue gives it up ([`SmEvent::Forgotten`],
/// [`SmEvent::ResumeFailed`], [`DetachedSession::into_unacked`]) and asks for the element
/// with [`element`](Self::element) or [`into_element`](Self::into_element): for a stanza the
/// host sent, an element equal to the one it gave.
///
/// Two values are equal when they keep the same stanza the same way (an element and the
/// bytes of the same stanza are not equal: compare their elements).
///
/// [`StreamWriter::writes_exactly`]: xmpp_xml::StreamWriter::writes_exactly
#[derive(Clone, Debug, PartialEq)]
pub struct Unacked(Kept);

#[derive(Clone, Debug, PartialEq)]
enum Kept {
    /// Sent as an element whose bytes do not stand for it alone: a copy of it.
    Element(Element),
    /// Sent as these bytes, one stanza written for a stream whose default namespace is
    /// `namespace`: unless `declared`, for a TCP stream (not framed), the stanza carrying no
    /// `xmlns` of its own; if `declared`, for a WebSocket stream (RFC 7395 §3.3.3), the
    /// stanza declaring `namespace` itself. Either way they parse, in a stream whose default
    /// namespace is `namespace`, to the stanza sent, and either way they can go verbatim on a
    /// TCP stream of that namespace (a declaration of the default namespace changes nothing
    /// there); only `declared` bytes can go verbatim on a WebSocket stream.
    Spliced {
        bytes: Box<[u8]>,
        namespace: &'static str,
        declared: bool,
    },
}

impl Unacked {
    /// Bytes written (spliced or serialized) for a stream with default namespace
    /// `namespace`: a TCP stream's, or, `declared`, a WebSocket stream's (see [`Kept`]).
    pub(crate) fn spliced(bytes: Box<[u8]>, namespace: &'static str, declared: bool) -> Self {
        Unacked(Kept::Spliced {
            bytes,
            namespace,
            declared,
        })
    }

    /// What to keep of `stanza`, just written by `writer` as `bytes` on a stream whose
    /// default namespace is `namespace`: the bytes when they stand for exactly the element
    /// (no element copied), else a copy of the element.
    pub(crate) fn written(
        writer: &StreamWriter,
        stanza: &Element,
        bytes: &[u8],
        namespace: &'static str,
    ) -> Self {
        if writer.writes_exactly(stanza, namespace) {
            Unacked::spliced(Box::from(bytes), namespace, writer.is_framed())
        } else {
            Unacked::from(stanza.clone())
        }
    }

    /// The stanza as an element (for a stanza kept as bytes, parsed from them now: the
    /// element given to `send_stanza`, or the element [`stamp_element`](xmpp_xml::stamp_element)
    /// makes of a forwarded envelope's).
    ///
    /// # Errors
    ///
    /// None in practice (the bytes are a validated stanza with its start tag rewritten, or
    /// ones the serializer wrote); a [`ParseError`] if they do not parse to one element.
    pub fn element(&self) -> Result<Element, ParseError> {
        match &self.0 {
            Kept::Element(element) => Ok(element.clone()),
            Kept::Spliced {
                bytes, namespace, ..
            } => xmpp_xml::parse_spliced(bytes, namespace),
        }
    }

    /// [`element`](Self::element), by value (no copy for a stanza kept as an element).
    ///
    /// # Errors
    ///
    /// As [`element`](Self::element).
    pub fn into_element(self) -> Result<Element, ParseError> {
        match self.0 {
            Kept::Element(element) => Ok(element),
            Kept::Spliced {
                bytes, namespace, ..
            } => xmpp_xml::parse_spliced(&bytes, namespace),
        }
    }

    /// The bytes that were transmitted, when the stanza was kept as bytes that can go
    /// verbatim on a stream with default namespace `namespace`, `framed` (WebSocket) or not.
    /// `None` otherwise: the element is written for that stream.
    pub(crate) fn verbatim_for(&self, namespace: &str, framed: bool) -> Option<&[u8]> {
        match &self.0 {
            Kept::Spliced {
                bytes,
                namespace: ns,
                declared,
            } if *ns == namespace && (*declared || !framed) => Some(bytes),
            _ => None,
        }
    }
}

impl From<Element> for Unacked {
    fn from(element: Element) -> Self {
        Unacked(Kept::Element(element))
    }
}

/// The counters and queue of one managed stream.
#[derive(Clone, Debug)]
pub(crate) struct Sm {
    /// `<enabled/>` arrived (client) or was sent (server): inbound stanzas count.
    pub(crate) counting_in: bool,
    /// Resumption id, if resumption was granted.
    pub(crate) id: Option<String>,
    pub(crate) location: Option<String>,
    /// Server: the window granted.
    pub(crate) max: Option<u32>,
    /// Stanzas handled since enabling (mod 2^32): taken by the host, or, with
    /// [`SmConfig::handled_by_host`], the longest run the host said it handled.
    pub(crate) handled: u32,
    /// Stanzas taken by the host since enabling (mod 2^32): `handled` but for
    /// [`SmConfig::handled_by_host`].
    pub(crate) taken: u32,
    /// [`SmConfig::handled_by_host`]: stanzas after `handled + 1` the host said it handled.
    pub(crate) done: std::collections::BTreeSet<u32>,
    /// Stanza events queued before counting started, not to be counted when taken.
    pub(crate) skip: usize,
    pub(crate) sent: u32,
    pub(crate) acked: u32,
    /// The newest `sent - acked` stanzas at most (fewer after [`UnackedOverflow::ForgetOldest`]).
    pub(crate) unacked: VecDeque<Unacked>,
    /// Stanzas sent since our last `<r/>`.
    pub(crate) since_request: u32,
    /// The peer sent `<r/>`: answer once the host has drained what was received.
    pub(crate) ack_due: bool,
    pub(crate) config: SmConfig,
}

impl Sm {
    pub(crate) fn new(config: SmConfig) -> Self {
        Sm {
            counting_in: false,
            id: None,
            location: None,
            max: None,
            handled: 0,
            taken: 0,
            done: std::collections::BTreeSet::new(),
            skip: 0,
            sent: 0,
            acked: 0,
            unacked: VecDeque::new(),
            since_request: 0,
            ack_due: false,
            config,
        }
    }

    /// Stanzas sent and not acknowledged (mod 2^32).
    pub(crate) fn outstanding(&self) -> u32 {
        self.sent.wrapping_sub(self.acked)
    }

    /// Apply an `h` from the peer: `Err` when it acknowledges more than was sent.
    pub(crate) fn ack(&mut self, h: u32) -> Result<(), Box<StreamError>> {
        let newly = h.wrapping_sub(self.acked);
        if newly > self.outstanding() {
            return Err(Box::new(too_high(h, self.sent)));
        }
        self.acked = h;
        let keep = usize::try_from(self.outstanding()).unwrap_or(usize::MAX);
        while self.unacked.len() > keep {
            self.unacked.pop_front();
        }
        Ok(())
    }

    /// An inbound stanza reached the host (or the machine itself) and is number `taken`;
    /// it counts as handled now unless `later` (the host says when).
    pub(crate) fn count_in(&mut self, later: bool) {
        self.taken = self.taken.wrapping_add(1);
        if !later {
            self.release(self.taken);
        }
    }

    /// Inbound stanza `seq` is handled: `handled` moves over every handled stanza that
    /// follows without a gap. `false` when `seq` was handled already or never taken.
    pub(crate) fn release(&mut self, seq: u32) -> bool {
        let ahead = seq.wrapping_sub(self.handled);
        if ahead == 0 || ahead > self.taken.wrapping_sub(self.handled) {
            return false;
        }
        if ahead > 1 {
            return self.done.insert(seq);
        }
        self.handled = seq;
        while self.done.remove(&self.handled.wrapping_add(1)) {
            self.handled = self.handled.wrapping_add(1);
        }
        true
    }

    /// Every stanza taken is handled.
    pub(crate) fn all_handled(&self) -> bool {
        self.handled == self.taken
    }

    /// Before the queue is re-sent on resumption (after the peer's `h` was applied): the
    /// peer numbers the re-sent stanzas from `acked`, so `sent` becomes `acked` plus the
    /// queue. Stanzas [`UnackedOverflow::ForgetOldest`] dropped and the peer never
    /// acknowledged are not re-sent: left in the count, they would shift every later `h` and
    /// make the next resumption re-send stanzas the peer already has.
    pub(crate) fn renumber_for_resend(&mut self) {
        let queued = u32::try_from(self.unacked.len()).unwrap_or(u32::MAX);
        self.sent = self.acked.wrapping_add(queued);
    }

    /// A stanza was sent.
    pub(crate) fn record(&mut self, stanza: Unacked) {
        self.sent = self.sent.wrapping_add(1);
        self.since_request = self.since_request.saturating_add(1);
        self.unacked.push_back(stanza);
    }
}

/// The stream error XEP-0198 §4 (1.6.1) prescribes for an `h` above what was sent:
/// `undefined-condition` with `<handled-count-too-high h='' send-count=''/>`.
pub(crate) fn too_high(h: u32, sent: u32) -> StreamError {
    let mut error = StreamError::new(StreamErrorCondition::UndefinedCondition);
    let mut condition = Element::bare("handled-count-too-high", NS);
    set_attr(&mut condition, "h", &h.to_string());
    set_attr(&mut condition, "send-count", &sent.to_string());
    error.application_condition = Some(Box::new(condition));
    error
}

/// A server session whose transport died with resumption granted: everything needed to
/// resume it on a new stream, or to end it (its unacknowledged stanzas to be handled by the
/// host: offline storage for messages, errors for the rest).
#[derive(Clone, Debug)]
pub struct DetachedSession {
    pub(crate) id: String,
    pub(crate) jid: FullJid,
    pub(crate) sm: Sm,
}

impl DetachedSession {
    /// A detached session rebuilt from its parts (transcript replays: `H server: resume`).
    pub(crate) fn restore(
        id: String,
        jid: FullJid,
        counters: [u32; 4],
        unacked: Vec<Element>,
        config: SmConfig,
    ) -> Self {
        let [handled, sent, acked, since_request] = counters;
        let mut sm = Sm::new(config);
        sm.counting_in = true;
        sm.id = Some(id.clone());
        sm.handled = handled;
        sm.taken = handled;
        sm.sent = sent;
        sm.acked = acked;
        sm.since_request = since_request;
        sm.unacked = unacked.into_iter().map(Unacked::from).collect();
        DetachedSession { id, jid, sm }
    }

    /// The resumption id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The session's full JID.
    pub fn jid(&self) -> &FullJid {
        &self.jid
    }

    /// The stanzas sent to the client and not acknowledged, oldest first.
    pub fn unacked(&self) -> impl Iterator<Item = &Unacked> {
        self.sm.unacked.iter()
    }

    /// [`SmConfig::handled_by_host`]: inbound stanza `seq` (from
    /// [`ServerStream::last_taken`](crate::ServerStream::last_taken)) is handled, while the
    /// session waits for resumption.
    pub fn stanza_handled(&mut self, seq: u32) {
        self.sm.release(seq);
    }

    /// End the session: its unacknowledged stanzas, oldest first, for the host to handle
    /// (each as an element: [`Unacked::into_element`]).
    pub fn into_unacked(self) -> Vec<Unacked> {
        self.sm.unacked.into()
    }

    /// Send a stanza to the detached session: it is queued (and counted) as if sent on the
    /// stream, and re-sent on resumption. `false` when the queue is full (the host then
    /// treats the stanza as undeliverable).
    ///
    /// The queue keeps the bytes a TCP `jabber:client` stream would carry (written once
    /// here), as it keeps a stanza sent on the stream; a stanza whose bytes would not stand
    /// for exactly it (see [`Unacked`]) is kept as a copy.
    pub fn queue(&mut self, stanza: &Element) -> bool {
        if self.sm.unacked.len() >= self.sm.config.max_unacked {
            return false;
        }
        // No stream: a writer for a TCP `jabber:client` stream binding no prefix (bytes that
        // need none, and a writer that allocates nothing: no prefix list to build).
        let mut header = xmpp_xml::StreamHeader::new(xmpp_xml::ContentNamespace::Client);
        header.stream_prefix = None;
        let writer = StreamWriter::new(&header);
        let mut bytes = Vec::new();
        let kept = if writer.writes_exactly(stanza, xmpp_xml::NS_CLIENT)
            && writer.write_element(stanza, &mut bytes).is_ok()
        {
            Unacked::spliced(bytes.into_boxed_slice(), xmpp_xml::NS_CLIENT, false)
        } else {
            Unacked::from(stanza.clone())
        };
        self.sm.record(kept);
        true
    }

    /// [`queue`](Self::queue) for a stanza that arrived as an envelope, with `from` and `to`
    /// stamped: the spliced bytes are kept (as [`ServerStream::send_envelope`] keeps them on a
    /// managed stream), no element built; one that cannot be spliced is queued as its
    /// stamped element. `false` when the queue is full.
    ///
    /// [`ServerStream::send_envelope`]: crate::ServerStream::send_envelope
    pub fn queue_envelope(
        &mut self,
        envelope: &xmpp_xml::Envelope,
        from: Option<&str>,
        to: Option<&str>,
    ) -> bool {
        if self.sm.unacked.len() >= self.sm.config.max_unacked {
            return false;
        }
        let stamp = xmpp_xml::Stamp {
            from,
            to,
            ..xmpp_xml::Stamp::new(xmpp_xml::NS_CLIENT)
        };
        let mut bytes = Vec::with_capacity(envelope.bytes().len() + 128);
        let kept = match envelope.splice_into(&stamp, &mut bytes) {
            Ok(()) => Unacked::spliced(bytes.into_boxed_slice(), xmpp_xml::NS_CLIENT, false),
            Err(_) => match envelope.element() {
                Ok(mut element) => {
                    xmpp_xml::stamp_element(&mut element, &stamp);
                    Unacked::from(element)
                }
                // A validated envelope always rebuilds: nothing to queue otherwise.
                Err(_) => return true,
            },
        };
        self.sm.record(kept);
        true
    }

    /// Stanzas queued for the client.
    pub fn queued(&self) -> usize {
        self.sm.unacked.len()
    }

    /// The resumption window granted in `<enabled max=''/>` (the server's own, or the
    /// shorter one the client asked for), if one was named: the host keeps the session
    /// detached this long, not longer.
    pub fn max_resume(&self) -> Option<Duration> {
        self.sm.max.map(|secs| Duration::from_secs(u64::from(secs)))
    }
}

// ----- wire elements (build and parse; no state) -----

/// An element of the SM namespace with `attrs`.
pub(crate) fn element(name: &str, attrs: &[(&'static str, &str)]) -> Element {
    let mut el = Element::bare(name, NS);
    for (key, value) in attrs {
        set_attr(&mut el, key, value);
    }
    el
}

/// `<failed/>` with a stanza-error condition child (XEP-0198 §3, §5).
pub(crate) fn failed(condition: &str, h: Option<u32>) -> Element {
    let mut el = Element::bare("failed", NS);
    if let Some(h) = h {
        set_attr(&mut el, "h", &h.to_string());
    }
    el.append_child(Element::bare(condition, STANZAS_NS));
    el
}

/// The `h` attribute: `None` when absent or not a `u32` (XEP-0198: xs:unsignedInt).
pub(crate) fn h(element: &Element) -> Option<u32> {
    element.attr("h")?.trim().parse().ok()
}

/// Whether a `resume` attribute says yes (`true` or `1`, xs:boolean).
pub(crate) fn truthy(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(n: u32) -> Element {
        Element::builder("message", "jabber:client")
            .attr(crate::codec::attr_name("id"), n.to_string())
            .build()
    }

    #[test]
    fn acks_wrap_mod_2_32() {
        let mut sm = Sm::new(SmConfig::on());
        sm.sent = u32::MAX - 1;
        sm.acked = u32::MAX - 1;
        for n in 0..4 {
            sm.record(stanza(n).into());
        }
        assert_eq!(sm.sent, 2);
        assert_eq!(sm.outstanding(), 4);
        sm.ack(u32::MAX).unwrap();
        assert_eq!(sm.unacked.len(), 3);
        sm.ack(1).unwrap();
        assert_eq!(sm.unacked.len(), 1);
        assert_eq!(sm.unacked[0].element().unwrap().attr("id"), Some("3"));
        // One more than was sent, across the wrap.
        let error = sm.ack(3).unwrap_err();
        assert_eq!(error.condition, StreamErrorCondition::UndefinedCondition);
        let app = error.application_condition.unwrap();
        assert!(app.is("handled-count-too-high", NS));
        assert_eq!(app.attr("send-count"), Some("2"));
        // An old h (behind the last ack) is "too high" too: it would acknowledge 2^32 - 1.
        assert!(sm.ack(0).is_err());
        sm.ack(2).unwrap();
        assert!(sm.unacked.is_empty());
    }

    #[test]
    fn handled_by_host_counts_the_run_without_gaps_across_the_wrap() {
        let mut config = SmConfig::on();
        config.handled_by_host = true;
        let mut sm = Sm::new(config);
        sm.handled = u32::MAX - 1;
        sm.taken = u32::MAX - 1;
        for _ in 0..4 {
            sm.count_in(true);
        }
        // Taken: MAX, 0, 1, 2; none handled yet.
        assert_eq!(sm.taken, 2);
        assert!(!sm.all_handled());
        // Handled out of order: `h` waits for the first.
        assert!(sm.release(0));
        assert!(sm.release(2));
        assert_eq!(sm.handled, u32::MAX - 1);
        assert!(sm.release(u32::MAX));
        assert_eq!(sm.handled, 0);
        assert!(sm.release(1));
        assert_eq!(sm.handled, 2);
        assert!(sm.all_handled());
        // Handled twice, or never taken: nothing moves.
        assert!(!sm.release(2));
        assert!(!sm.release(3));
        assert_eq!(sm.handled, 2);
        assert!(sm.done.is_empty());
        // A stanza the machine handled itself counts at once after the host's.
        sm.count_in(true);
        sm.count_in(false);
        assert_eq!(sm.handled, 2);
        assert!(sm.release(3));
        assert_eq!(sm.handled, 4);
    }
}
