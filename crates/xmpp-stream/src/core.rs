//! What both roles share: the parser, the writer, the output queue, the timer table, session
//! flags, the sticky error, restart and the closing handshake. Role files (`client`, `server`)
//! only decide what each element means during negotiation.

use std::collections::VecDeque;

use minidom::Element;
use xmpp_xml::{
    Event as XmlEvent, Limits, StreamError, StreamErrorCondition, StreamHeader, StreamParser,
    StreamWriter,
};

use crate::config::Timeouts;
use crate::entropy::Entropy;
use crate::error::{ProtocolError, UsageError};
use crate::features::ns;
use crate::flags::SessionFlags;
use crate::output::{CloseReason, Event, Output};
use crate::time::Instant;
use crate::timers::{TRIM_AFTER, Timer, TimerTable};

/// Output slots kept when the queue drains (a negotiated stream's usual burst).
const IDLE_QUEUE_CAPACITY: usize = 4;

/// Default bound on queued output bytes (both roles' `max_output_bytes`).
pub(crate) const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;

/// Where the stream is, independent of the role and of which feature is being negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `start` not called yet.
    Idle,
    /// Reading and writing the stream.
    Open,
    /// `StartTls` emitted; waiting for `tls_established`. No byte may arrive or leave.
    AwaitingTls,
    /// We sent `</stream:stream>` and wait for the peer's.
    Closing,
    /// Over: `Closed` was emitted.
    Closed,
}

/// What the parser produced, with the stream-level cases (peer stream error, peer close)
/// already handled by the core.
pub(crate) enum Incoming {
    Header(StreamHeader),
    Element(Element),
    /// A stanza in envelope mode (see [`Core::envelopes`]).
    Envelope(xmpp_xml::Envelope),
}

/// The machinery shared by both roles.
pub(crate) struct Core {
    parser: StreamParser,
    writer: Option<StreamWriter>,
    out: VecDeque<Output>,
    pub(crate) timers: TimerTable,
    pub(crate) timeouts: Timeouts,
    pub(crate) flags: SessionFlags,
    pub(crate) phase: Phase,
    error: Option<ProtocolError>,
    now: Instant,
    pub(crate) entropy: Box<dyn Entropy + Send>,
    /// The peer's header arrived on the current stream.
    pub(crate) header_received: bool,
    /// A header to send first if we must send a stream error before our own header went out
    /// (RFC 6120 §4.9.1.2): set by the server. Boxed: held only until our header goes out,
    /// and a `StreamHeader` is 184 bytes every idle stream would otherwise carry.
    pub(crate) fallback_header: Option<Box<StreamHeader>>,
    /// Why we are closing, reported when the peer's close (or the close deadline) arrives.
    /// Boxed: set only while closing, and a `CloseReason` is over 200 bytes that every idle
    /// stream would otherwise carry.
    closing_reason: Option<Box<CloseReason>>,
    /// Bound on the bytes of queued `Transmit`s the host has not polled yet.
    max_output: usize,
    /// Bytes of queued `Transmit`s the host has not polled yet.
    queued_bytes: usize,
    /// The output bound was exceeded: the closing stream error may go over it.
    overflowed: bool,
    /// The stream went quiet (negotiation done, or a keepalive tick): when the host has
    /// drained the output queue, give back the parser's scratch memory and the queue's.
    trim_when_drained: bool,
    /// Fed bytes may hold events not processed yet: a negotiated server processes stanzas as
    /// the host polls (see `ServerStream::handle_input`).
    pub(crate) input_pending: bool,
    /// RFC 7395 framing (XMPP over WebSocket): one element per message in and out.
    pub(crate) framed: bool,
    /// The `see-other-uri` our `<close/>` carries (RFC 7395 §3.6.1), if the host asked.
    pub(crate) close_uri: Option<String>,
    /// The host asked for stanzas as envelopes once negotiated (`ServerConfig::envelopes`):
    /// the parser switches to envelope mode in [`Core::negotiated`].
    pub(crate) envelopes: bool,
}

impl Core {
    pub(crate) fn new(
        timeouts: Timeouts,
        limits: Limits,
        max_output: usize,
        entropy: Box<dyn Entropy + Send>,
    ) -> Self {
        Core {
            parser: StreamParser::with_limits(limits),
            writer: None,
            out: VecDeque::new(),
            timers: TimerTable::default(),
            timeouts,
            flags: SessionFlags::EMPTY,
            phase: Phase::Idle,
            error: None,
            now: Instant::ZERO,
            entropy,
            header_received: false,
            fallback_header: None,
            closing_reason: None,
            max_output,
            queued_bytes: 0,
            overflowed: false,
            trim_when_drained: false,
            input_pending: false,
            framed: false,
            close_uri: None,
            envelopes: false,
        }
    }

    /// Switch to RFC 7395 framing (before `start`): the parser takes one standalone element
    /// per message, the writer sends `<open/>`, `<close/>` and one element per `Transmit`.
    pub(crate) fn frame(&mut self, content: xmpp_xml::ContentNamespace) {
        let limits = self.parser.limits().clone();
        self.parser = StreamParser::framed(limits, content);
        self.framed = true;
    }

    /// The latest time seen.
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Time never goes backwards: an earlier `now` than one already seen is taken as the later.
    pub(crate) fn tick(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    pub(crate) fn start(&mut self, now: Instant) -> Result<(), UsageError> {
        if self.phase != Phase::Idle {
            return Err(UsageError::AlreadyStarted);
        }
        let now = self.tick(now);
        self.phase = Phase::Open;
        if let Some(limit) = self.timeouts.negotiation {
            self.timers.set(Timer::Negotiation, now + limit);
        }
        Ok(())
    }

    // ----- outputs -----

    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        let output = self.out.pop_front();
        if let Some(Output::Transmit(bytes)) = &output {
            self.queued_bytes = self.queued_bytes.saturating_sub(bytes.len());
        }
        if output.is_none() {
            if self.trim_when_drained {
                self.trim();
            } else if self.out.capacity() > IDLE_QUEUE_CAPACITY {
                // Bursts grow the queue; a busy stream keeps a few slots.
                self.out.shrink_to(IDLE_QUEUE_CAPACITY);
            }
        }
        output
    }

    /// An idle stream is what a server holds thousands of: keep nothing that the next burst
    /// can allocate again (a few allocations then, never per byte).
    fn trim(&mut self) {
        self.trim_when_drained = false;
        self.out = VecDeque::new();
        self.parser.release_memory();
    }

    /// Whether an output waits in the queue.
    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub(crate) fn event(&mut self, event: Event) {
        // Nothing follows `Closed` (the output bound may close the stream mid-step).
        if self.phase != Phase::Closed {
            self.out.push_back(Output::Event(event));
        }
    }

    pub(crate) fn start_tls(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::AwaitingTls;
        self.out.push_back(Output::StartTls);
    }

    /// Queue bytes for the wire. Returns `false` when they were refused because the queue
    /// is over its bound (the stream is then closed with `resource-constraint`).
    fn transmit(&mut self, bytes: Vec<u8>) -> bool {
        // Nothing follows `Closed`, bytes included (a handler that runs late, such as an
        // expired dialback verification, must not reach the wire).
        if bytes.is_empty() || self.phase == Phase::Closed {
            return true;
        }
        if !self.overflowed
            && self.error.is_none()
            && self.queued_bytes.saturating_add(bytes.len()) > self.max_output
        {
            self.overflow();
            return false;
        }
        self.queued_bytes = self.queued_bytes.saturating_add(bytes.len());
        if let (Some(interval), Some(_)) =
            (self.timeouts.keepalive, self.timers.get(Timer::Keepalive))
        {
            self.timers.set(Timer::Keepalive, self.now + interval);
        }
        // Coalesce with a transmit still queued: fewer, larger writes for the host. A framed
        // stream sends each element as its own WebSocket message (RFC 7395 §3.3.3).
        if let (false, Some(Output::Transmit(last))) = (self.framed, self.out.back_mut()) {
            last.extend_from_slice(&bytes);
        } else {
            self.out.push_back(Output::Transmit(bytes));
        }
        true
    }

    /// The host has not drained the output queue (the peer does not read, so the host's
    /// writes block) and it reached its bound: drop what cannot be delivered, close with
    /// `resource-constraint` (best effort on the wire) and report `Closed`.
    fn overflow(&mut self) {
        self.overflowed = true;
        self.out
            .retain(|output| !matches!(output, Output::Transmit(_)));
        self.queued_bytes = 0;
        let _ = self.fail(ProtocolError::new(
            StreamErrorCondition::ResourceConstraint,
            "output queue over its bound: the peer is not reading",
        ));
    }

    /// Open our side of a (new) stream with `header`.
    pub(crate) fn send_header(&mut self, header: &StreamHeader) {
        // Only needed until our header is out.
        self.fallback_header = None;
        let writer = if self.framed {
            StreamWriter::framed(header)
        } else {
            StreamWriter::new(header)
        };
        let mut bytes = Vec::new();
        if writer.write_header(&mut bytes).is_err() {
            // Our header's fields were validated when the config was built; an error here can
            // only come from a host-supplied value the writer rejects: send a plain header.
            let plain = StreamWriter::new(&StreamHeader::new(xmpp_xml::ContentNamespace::Client));
            bytes.clear();
            let _ = plain.write_header(&mut bytes);
            self.writer = Some(plain);
        } else {
            self.writer = Some(writer);
        }
        self.transmit(bytes);
    }

    pub(crate) fn header_sent(&self) -> bool {
        self.writer.is_some()
    }

    /// Serialize and transmit one element. Elements built by this crate always serialize; a
    /// host stanza that does not is refused before it reaches here.
    pub(crate) fn send(&mut self, element: &Element) {
        let mut bytes = Vec::new();
        if let Some(writer) = &self.writer {
            if writer.write_element(element, &mut bytes).is_ok() {
                self.transmit(bytes);
            }
        }
    }

    /// Check that a host element can be serialized, returning its bytes.
    pub(crate) fn serialize(&self, element: &Element) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        self.writer
            .as_ref()?
            .write_element(element, &mut bytes)
            .ok()?;
        Some(bytes)
    }

    /// The writer of the current stream, once our header went out.
    pub(crate) fn writer(&self) -> Option<&StreamWriter> {
        self.writer.as_ref()
    }

    /// Queue serialized bytes; `false` if the output bound refused them (the stream closed).
    pub(crate) fn send_bytes(&mut self, bytes: Vec<u8>) -> bool {
        self.transmit(bytes)
    }

    pub(crate) fn send_keepalive(&mut self) {
        // No whitespace keepalive on a framed stream (RFC 7395 §3.8): WebSocket pings are
        // the host's.
        if self.framed {
            return;
        }
        let _ = self.transmit(vec![b' ']);
    }

    fn send_close_tag(&mut self) {
        if let Some(writer) = &self.writer {
            let mut bytes = Vec::new();
            match &self.close_uri {
                // The URI was checked when the host gave it.
                Some(uri) => {
                    let _ = writer.write_close_see_other_uri(uri, &mut bytes);
                }
                None => writer.write_end(&mut bytes),
            }
            self.transmit(bytes);
        }
    }

    // ----- lifecycle -----

    /// Restart the stream (RFC 6120 §4.3.3): a fresh parser state that keeps the bytes it
    /// has not consumed (they belong to the new stream), a new writer on our next header,
    /// per-stream attributes forgotten; session flags kept.
    pub(crate) fn restart(&mut self) {
        self.parser.reset();
        self.writer = None;
        self.header_received = false;
    }

    /// Negotiation is done: stop its deadline, start keepalives.
    pub(crate) fn negotiated(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        self.flags |= SessionFlags::BOUND;
        self.trim_when_drained = true;
        if self.envelopes {
            // Negotiation elements stay elements; from here on stanzas come as envelopes.
            self.parser.set_envelopes(true);
        }
        self.timers.stop(Timer::Negotiation);
        if let Some(interval) = self.timeouts.keepalive {
            self.timers.set(Timer::Keepalive, self.now + interval);
        }
    }

    pub(crate) fn check_open(&self) -> Result<(), UsageError> {
        match self.phase {
            Phase::Idle => Err(UsageError::NotStarted),
            Phase::Closing | Phase::Closed => Err(UsageError::Closed),
            Phase::Open | Phase::AwaitingTls => Ok(()),
        }
    }

    fn finish(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.timers.stop_all();
        self.out.push_back(Output::Event(Event::Closed { reason }));
    }

    /// The peer broke the protocol: send the stream error and our close, emit `Closed`, and
    /// remember the error so every later input returns it.
    pub(crate) fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        if self.phase == Phase::Closed {
            return self.error.clone().unwrap_or(error);
        }
        // Set first: the closing bytes may exceed the output bound (see `transmit`).
        self.error = Some(error.clone());
        if !self.header_sent() {
            if let Some(header) = self.fallback_header.take() {
                self.send_header(&header);
            }
        }
        if self.phase != Phase::Closing {
            let element = error.stream_error().to_element();
            self.send(&element);
            self.send_close_tag();
        }
        // Already closing for a reason of our own (failed TLS, failed authentication...):
        // that reason is what the host needs; the peer's garbage after it is not.
        let reason = match self.closing_reason.take() {
            Some(reason) if *reason != CloseReason::Requested => *reason,
            _ => CloseReason::ProtocolError(error.clone()),
        };
        self.finish(reason);
        error
    }

    /// Close our side gracefully: send `</stream:stream>` and wait (bounded) for the peer's.
    pub(crate) fn close(&mut self, reason: CloseReason) {
        match self.phase {
            Phase::Closing | Phase::Closed => {}
            Phase::Idle => self.finish(reason),
            Phase::Open | Phase::AwaitingTls => {
                self.send_close_tag();
                if self.phase == Phase::Closed {
                    return;
                }
                self.phase = Phase::Closing;
                self.closing_reason = Some(Box::new(reason));
                self.timers.stop_all();
                self.timers
                    .set(Timer::Close, self.now + self.timeouts.close);
            }
        }
    }

    /// The host reports the transport is gone.
    pub(crate) fn transport_closed(&mut self) {
        if self.phase != Phase::Closed {
            let reason = match self.closing_reason.take().map(|reason| *reason) {
                Some(CloseReason::Requested) | None => CloseReason::TransportClosed,
                Some(reason) => reason,
            };
            self.finish(reason);
        }
    }

    /// Fire expired timers. Returns the negotiation timeout so the role can react (both roles
    /// treat it the same way today).
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        while let Some(timer) = self.timers.take_expired(now) {
            match timer {
                Timer::Keepalive => {
                    if self.phase == Phase::Open {
                        self.send_keepalive();
                        self.trim_when_drained = true;
                    }
                    if self.phase == Phase::Open {
                        if let Some(interval) = self.timeouts.keepalive {
                            self.timers.set(Timer::Keepalive, now + interval);
                        }
                    }
                }
                Timer::Negotiation => self.time_out(Timer::Negotiation),
                // Answered by the server-to-server, stream-management and ping steps before
                // the core's timers run.
                Timer::Dialback | Timer::AckRequest | Timer::Ping => {}
                Timer::Trim => {
                    if self.out.is_empty() {
                        self.trim();
                    } else {
                        self.trim_when_drained = true;
                    }
                }
                Timer::Close => {
                    if self.phase == Phase::Closing {
                        self.closing_reason = None;
                        self.finish(CloseReason::Timeout(Timer::Close));
                    }
                }
            }
        }
    }

    /// A deadline passed: `connection-timeout` (RFC 6120 §4.9.3.4), close, and
    /// `Closed { Timeout(timer) }`.
    pub(crate) fn time_out(&mut self, timer: Timer) {
        if matches!(self.phase, Phase::Open | Phase::AwaitingTls) {
            if self.phase == Phase::Open {
                let error = StreamError::new(StreamErrorCondition::ConnectionTimeout);
                if !self.header_sent() {
                    if let Some(header) = self.fallback_header.take() {
                        self.send_header(&header);
                    }
                }
                self.send(&error.to_element());
                self.send_close_tag();
            }
            self.finish(CloseReason::Timeout(timer));
        }
    }

    /// Stanza events queued for the host and not taken yet.
    pub(crate) fn queued_stanzas(&self) -> usize {
        self.out
            .iter()
            .filter(|output| {
                matches!(
                    output,
                    Output::Event(Event::Stanza(_) | Event::StanzaEnvelope(_))
                )
            })
            .count()
    }

    // ----- input -----

    /// Accept peer bytes. `Ok(false)` means: do not process (closed, or not started yet: the
    /// bytes are buffered for when the stream starts).
    pub(crate) fn feed(&mut self, now: Instant, bytes: &[u8]) -> Result<bool, ProtocolError> {
        self.tick(now);
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        match self.phase {
            Phase::Closed => Ok(false),
            Phase::Idle => {
                self.parser.feed(bytes);
                Ok(false)
            }
            Phase::AwaitingTls => {
                if bytes.is_empty() {
                    return Ok(false);
                }
                // Plaintext arriving between the TLS switch and `tls_established`: whatever
                // the peer sent there was not protected by TLS (STARTTLS command injection).
                Err(self.fail(ProtocolError::new(
                    StreamErrorCondition::PolicyViolation,
                    "bytes received between the STARTTLS switch and the TLS handshake",
                )))
            }
            Phase::Open | Phase::Closing => {
                self.parser.feed(bytes);
                if self.flags.contains(SessionFlags::BOUND) && !bytes.is_empty() {
                    self.timers.set(Timer::Trim, self.now + TRIM_AFTER);
                }
                Ok(true)
            }
        }
    }

    /// Accept one whole WebSocket message of a framed stream (on a TCP stream: `feed`).
    pub(crate) fn feed_message(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<bool, ProtocolError> {
        if !self.framed {
            return self.feed(now, bytes);
        }
        self.tick(now);
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        match self.phase {
            // A framed stream has no STARTTLS: `AwaitingTls` cannot happen.
            Phase::Closed | Phase::AwaitingTls => Ok(false),
            Phase::Idle | Phase::Open | Phase::Closing => {
                self.parser.feed_message(bytes);
                if self.flags.contains(SessionFlags::BOUND) {
                    self.timers.set(Timer::Trim, self.now + TRIM_AFTER);
                }
                Ok(self.phase != Phase::Idle)
            }
        }
    }

    /// Whether bytes were fed but not yet consumed by an event: checked at the STARTTLS switch.
    pub(crate) fn has_unparsed_input(&self) -> bool {
        self.parser.has_unparsed_input()
    }

    /// The next header or element the role must interpret. Handles stream-level events
    /// itself: whitespace, the peer's stream error (redirect included) and the peer's close.
    pub(crate) fn next_incoming(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        loop {
            if !matches!(self.phase, Phase::Open | Phase::Closing) {
                return Ok(None);
            }
            // Every fed byte is part of an event already returned: none can come before
            // more input (a server polled empty after each stanza skips a tokenizer pass
            // over nothing). A parse error is still returned by every call.
            if !self.parser.has_unparsed_input() && self.parser.error().is_none() {
                return Ok(None);
            }
            let event = match self.parser.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(None),
                Err(error) => {
                    let condition = error.condition();
                    return Err(self.fail(ProtocolError::new(condition, "malformed XML stream")));
                }
            };
            match event {
                XmlEvent::StreamStart(header) => {
                    self.header_received = true;
                    return Ok(Some(Incoming::Header(header)));
                }
                XmlEvent::Whitespace => {}
                XmlEvent::StreamEnd => {
                    if let Some(uri) = self.parser.see_other_uri() {
                        let uri = uri.to_owned();
                        self.event(Event::SeeOtherUri { uri });
                    }
                    self.peer_closed();
                    return Ok(None);
                }
                XmlEvent::Element(element) => {
                    if element.is("error", ns::STREAMS) {
                        self.peer_error(&element);
                        return Ok(None);
                    }
                    return Ok(Some(Incoming::Element(element)));
                }
                XmlEvent::Stanza(envelope) => return Ok(Some(Incoming::Envelope(envelope))),
                _ => {}
            }
        }
    }

    fn peer_closed(&mut self) {
        if self.phase == Phase::Closing {
            let reason = match self.closing_reason.take().map(|reason| *reason) {
                Some(CloseReason::Requested) | None => CloseReason::Graceful,
                Some(reason) => reason,
            };
            self.finish(reason);
        } else {
            self.send_close_tag();
            self.finish(CloseReason::Graceful);
        }
    }

    fn peer_error(&mut self, element: &Element) {
        let error = StreamError::from_element(element)
            .unwrap_or_else(|_| StreamError::new(StreamErrorCondition::UndefinedCondition));
        if let Some(to) = error
            .other_host
            .as_deref()
            .and_then(|host| host.parse().ok())
        {
            self.event(Event::Redirect { to });
        }
        if self.phase != Phase::Closing {
            self.send_close_tag();
        }
        self.finish(CloseReason::StreamError(error));
    }
}
