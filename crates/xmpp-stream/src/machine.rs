//! The one stream machine behind every public stream type: the shared [`Core`], the stream
//! kind and role, the negotiation [`Step`], and the role's own data ([`Side`]). Inputs are
//! dispatched through the negotiation table ([`crate::rules`]); everything the roles do the
//! same way (input processing, TLS, restart, close, sending stanzas) is written here once.

use minidom::Element;
use xmpp_sasl::ChannelBinding;
use xmpp_xml::{Envelope, SpliceError, Stamp, StanzaKind, StreamError, StreamErrorCondition};

use crate::core::{Core, Incoming, Phase};
use crate::error::{ProtocolError, UsageError};
use crate::flags::SessionFlags;
use crate::kind::{Role, StreamKind};
use crate::output::{CloseReason, Event, Output, Transport};
use crate::rules::{self, Handler, Step};
use crate::steps;
use crate::time::Instant;

/// The role-specific part of a machine: configuration, the host's backend, and the state of
/// the step that needs more than its name.
///
/// Every variant boxed, so the enum is a pointer wide: inline, the largest side (the c2s
/// server's, 480 bytes) would be carried by every stream of the other kinds. One allocation
/// per stream, none per stanza.
pub(crate) enum Side {
    /// The client's configuration and negotiation state.
    Client(Box<crate::client::ClientSide>),
    /// The c2s server's configuration, backend and session.
    Server(Box<crate::server::ServerSide>),
    /// Federation, either role.
    S2s(Box<steps::s2s::S2sSide>),
    /// A component (XEP-0114) connecting to its server.
    Component(Box<steps::component::ComponentSide>),
    /// The server end of a component connection.
    ComponentServer(Box<steps::component::ComponentServerSide>),
}

pub(crate) struct Machine {
    pub(crate) core: Core,
    pub(crate) kind: StreamKind,
    pub(crate) role: Role,
    pub(crate) step: Step,
    /// The current stream's id (the receiving entity's, as both ends see it).
    pub(crate) stream_id: Option<String>,
    /// Channel-binding data from the TLS layer (direct TLS or after STARTTLS).
    pub(crate) bindings: Vec<ChannelBinding>,
    pub(crate) side: Side,
    /// Process stanzas as the host polls (see `handle_input`), instead of all at once.
    lazy: bool,
    /// XEP-0198 counters and queue, once stream management is enabled (`steps::sm`).
    pub(crate) sm: Option<Box<crate::sm::Sm>>,
    /// XEP-0199 keepalive pings, when configured (`steps::ping`).
    pub(crate) ping: Option<Box<steps::ping::Ping>>,
}

impl Machine {
    pub(crate) fn new(core: Core, kind: StreamKind, role: Role, side: Side) -> Self {
        let ping = match &side {
            Side::Client(side) => side.config.ping,
            Side::Server(side) => side.config.ping,
            _ => None,
        }
        .map(|config| Box::new(steps::ping::Ping::new(config)));
        Machine {
            core,
            kind,
            role,
            step: Step::AwaitHeader,
            stream_id: None,
            bindings: Vec::new(),
            side,
            lazy: role == Role::Receiving,
            sm: None,
            ping,
        }
    }

    // ----- getters -----

    pub(crate) fn is_negotiated(&self) -> bool {
        self.step == Step::Established && self.core.phase == Phase::Open
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.core.phase == Phase::Closed
    }

    // ----- outputs -----

    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        if self.core.input_pending && !self.core.has_output() {
            // An error is queued as the stream error and `Closed`, and returned by every
            // later input.
            let _ = self.process_input(true);
        }
        if self.sm.is_none() {
            return self.core.poll_output();
        }
        let output = self.core.poll_output().or_else(|| {
            steps::sm::drained(self);
            self.core.poll_output()
        });
        let stanza = matches!(
            output,
            Some(Output::Event(Event::Stanza(_) | Event::StanzaEnvelope(_)))
        );
        steps::sm::taken(self, stanza);
        output
    }

    // ----- commands -----

    pub(crate) fn start(&mut self, now: Instant, transport: Transport) -> Result<(), UsageError> {
        if let Side::Client(side) = &self.side {
            side.config.validate()?;
        }
        self.core.start(now)?;
        if let Transport::Tls(bindings) = transport {
            self.core.flags |= SessionFlags::SECURE;
            self.bindings = bindings;
        }
        steps::header::open(self);
        Ok(())
    }

    pub(crate) fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        let _ = self.process_input(false);
        self.core.tick(now);
        self.core.check_open()?;
        if !rules::is_stanza_any(stanza) {
            return Err(UsageError::InvalidStanza(
                "not a message, presence or iq in a content namespace",
            ));
        }
        if !self.is_negotiated() {
            return Err(UsageError::NotNegotiated);
        }
        self.transmit_stanza(stanza)
    }

    /// Serialize and queue a stanza on a negotiated stream; with stream management on, count
    /// it and keep it until acknowledged: a copy of the bytes just written (one allocation;
    /// the bytes themselves move into the output), or of the element where those bytes do
    /// not stand for exactly it ([`crate::sm::Unacked`]).
    pub(crate) fn transmit_stanza(&mut self, stanza: &Element) -> Result<(), UsageError> {
        let bytes = self
            .core
            .serialize(stanza)
            .ok_or(UsageError::InvalidStanza("not serializable as XML 1.0"))?;
        steps::sm::before_send(self)?;
        // Only with XEP-0198 on (and the writer is there: it wrote the bytes).
        let kept = match (&self.sm, self.core.writer()) {
            (Some(_), Some(writer)) => Some(crate::sm::Unacked::written(
                writer,
                stanza,
                &bytes,
                self.kind.namespace(),
            )),
            _ => None,
        };
        if !self.core.send_bytes(bytes) {
            // The output bound closed the stream: the stanza was not queued.
            return Err(UsageError::Closed);
        }
        if let Some(kept) = kept {
            steps::sm::sent(self, || kept);
        }
        Ok(())
    }

    /// Forward a stanza received as an envelope (on any stream) on this negotiated stream,
    /// with `from` and `to` stamped: its bytes with the start tag spliced (no element built;
    /// with XEP-0198 on, a copy of them is what the unacknowledged queue keeps), or through
    /// the element path where the splice needs the element. On a WebSocket stream the
    /// spliced stanza declares its namespace (`Stamp::standalone`).
    pub(crate) fn send_envelope(
        &mut self,
        now: Instant,
        envelope: &Envelope,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(), UsageError> {
        let _ = self.process_input(false);
        self.core.tick(now);
        self.core.check_open()?;
        if !self.is_negotiated() {
            return Err(UsageError::NotNegotiated);
        }
        let stamp = Stamp {
            namespace: self.kind.namespace(),
            from,
            to,
            lang: None,
            standalone: self.core.framed,
        };
        let mut bytes = Vec::with_capacity(envelope.bytes().len() + 128);
        match envelope.splice_into(&stamp, &mut bytes) {
            Ok(()) => return self.transmit_spliced(bytes),
            Err(SpliceError::NeedsElement) => {}
            Err(_) => return Err(UsageError::InvalidStanza("not serializable as XML 1.0")),
        }
        let mut element = envelope
            .element()
            .map_err(|_| UsageError::InvalidStanza("the envelope does not rebuild"))?;
        xmpp_xml::stamp_element(&mut element, &stamp);
        self.transmit_stanza(&element)
    }

    /// Queue a stanza's spliced bytes (in this stream's namespace; on a WebSocket stream,
    /// declaring it) on a negotiated
    /// stream; with stream management on, count it and keep a copy of the bytes until
    /// acknowledged (one allocation: the bytes themselves move into the output).
    fn transmit_spliced(&mut self, bytes: Vec<u8>) -> Result<(), UsageError> {
        steps::sm::before_send(self)?;
        let kept = self
            .sm
            .is_some()
            .then(|| Box::<[u8]>::from(bytes.as_slice()));
        if !self.core.send_bytes(bytes) {
            // The output bound closed the stream: the stanza was not queued.
            return Err(UsageError::Closed);
        }
        if let Some(kept) = kept {
            let namespace = self.kind.namespace();
            let declared = self.core.framed;
            steps::sm::sent(self, || {
                crate::sm::Unacked::spliced(kept, namespace, declared)
            });
        }
        Ok(())
    }

    pub(crate) fn close(&mut self, now: Instant) -> Result<(), UsageError> {
        let _ = self.process_input(false);
        self.core.tick(now);
        self.core.check_open()?;
        steps::header::ensure_sent(self);
        self.step = Step::Done;
        self.core.close(CloseReason::Requested);
        Ok(())
    }

    pub(crate) fn close_with_error(
        &mut self,
        now: Instant,
        error: StreamError,
    ) -> Result<(), UsageError> {
        let _ = self.process_input(false);
        self.core.tick(now);
        self.core.check_open()?;
        self.step = Step::Done;
        let _ = self.core.fail(ProtocolError::from_stream_error(
            error,
            "closed by the host",
        ));
        Ok(())
    }

    // ----- inputs -----

    pub(crate) fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.process_input(false)?;
        if !self.core.feed(now, bytes)? {
            return Ok(());
        }
        self.core.input_pending = true;
        let result = self.process_input(true);
        steps::ping::heard(self);
        result
    }

    /// One whole WebSocket message on a framed stream (on a TCP stream: `handle_input`).
    pub(crate) fn handle_message(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<(), ProtocolError> {
        self.process_input(false)?;
        if !self.core.feed_message(now, bytes)? {
            return Ok(());
        }
        self.core.input_pending = true;
        let result = self.process_input(true);
        steps::ping::heard(self);
        result
    }

    /// Processes fed input until none is left, or (`lazy`, on a negotiated stream of a role
    /// that processes as the host polls) until an output is queued.
    pub(crate) fn process_input(&mut self, lazy: bool) -> Result<(), ProtocolError> {
        while self.core.input_pending {
            if lazy && self.lazy && self.step == Step::Established && self.core.has_output() {
                return Ok(());
            }
            match self.core.next_incoming() {
                Ok(Some(Incoming::Header(header))) => self.on_header(&header)?,
                Ok(Some(Incoming::Element(element))) => self.on_element(element)?,
                Ok(Some(Incoming::Envelope(envelope))) => self.on_envelope(envelope)?,
                Ok(None) => self.core.input_pending = false,
                Err(error) => {
                    self.core.input_pending = false;
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let _ = self.process_input(false);
        let now = self.core.tick(now);
        steps::s2s::on_timeout(self, now);
        steps::sm::on_timeout(self, now);
        steps::ping::on_timeout(self, now);
        self.core.handle_timeout(now);
    }

    pub(crate) fn tls_established(
        &mut self,
        now: Instant,
        bindings: Vec<ChannelBinding>,
    ) -> Result<(), UsageError> {
        self.core.tick(now);
        if self.step != Step::AwaitTls || self.core.phase != Phase::AwaitingTls {
            return Err(UsageError::NotExpectingTls);
        }
        self.bindings = bindings;
        self.core.flags |= SessionFlags::SECURE;
        self.core.phase = Phase::Open;
        self.core.event(Event::Secured);
        self.restart();
        Ok(())
    }

    pub(crate) fn transport_closed(&mut self, now: Instant) {
        let _ = self.process_input(false);
        self.core.tick(now);
        self.step = Step::Done;
        self.core.transport_closed();
    }

    // ----- what handlers share -----

    /// Restart the stream (RFC 6120 §4.3.3): one place, after TLS and after SASL success.
    pub(crate) fn restart(&mut self) {
        self.core.restart();
        self.stream_id = None;
        steps::header::open(self);
    }

    /// The peer broke the protocol: stream error, close, `Closed`.
    pub(crate) fn fail(
        &mut self,
        condition: StreamErrorCondition,
        detail: &'static str,
    ) -> ProtocolError {
        self.step = Step::Done;
        self.core.fail(ProtocolError::new(condition, detail))
    }

    /// Negotiation cannot go on for a reason of ours: close gracefully with `reason`.
    pub(crate) fn give_up(&mut self, reason: CloseReason) {
        self.step = Step::Done;
        self.core.close(reason);
    }

    /// The table's default for an element no rule accepts (see [`rules::unaccepted_condition`]).
    pub(crate) fn reject(&mut self) -> ProtocolError {
        let condition = rules::unaccepted_condition(self.role, self.step);
        self.fail(condition, "no negotiation rule accepts this element here")
    }

    fn on_header(&mut self, header: &xmpp_xml::StreamHeader) -> Result<(), ProtocolError> {
        match rules::find_header(self.kind, self.role, self.step, self.core.flags) {
            Some(rules::Rule {
                handler: Handler::Header(handle),
                ..
            }) => handle(self, header),
            _ => Err(self.fail(StreamErrorCondition::InvalidXml, "unexpected stream header")),
        }
    }

    /// A stanza in envelope mode. On an established stream, a `message` or `presence` in the
    /// stream's content namespace is checked on the envelope by the handler of the row the
    /// table gives such a stanza: a c2s server's `established.from-client`, a component
    /// server's `component.inbound-stanza`, an s2s receiving end's `s2s.inbound-stanza` and,
    /// with XEP-0288 bidi, an initiating end's `s2s.bidi-stanza` (each sharing its checks with
    /// the row's element handler). Everything else goes through the table as an element.
    fn on_envelope(&mut self, envelope: Envelope) -> Result<(), ProtocolError> {
        if self.step == Step::Established
            && envelope.kind() != StanzaKind::Iq
            && envelope.namespace() == self.kind.namespace()
        {
            match (&self.side, self.kind, self.role) {
                (Side::Server(_), StreamKind::Client, _) => {
                    return steps::established::from_client_envelope(self, envelope);
                }
                (Side::ComponentServer(_), StreamKind::Component, _) => {
                    return steps::established::component_envelope(self, envelope);
                }
                (Side::S2s(_), StreamKind::Server, Role::Receiving) => {
                    return steps::s2s::inbound_envelope(self, envelope);
                }
                (Side::S2s(_), StreamKind::Server, Role::Initiating)
                    if self.core.flags.contains(SessionFlags::BIDI) =>
                {
                    return steps::s2s::inbound_envelope(self, envelope);
                }
                _ => {}
            }
        }
        match envelope.element() {
            Ok(element) => self.on_element(element),
            Err(_) => Err(self.fail(
                StreamErrorCondition::InternalServerError,
                "a validated stanza did not rebuild",
            )),
        }
    }

    fn on_element(&mut self, element: Element) -> Result<(), ProtocolError> {
        match rules::find(self.kind, self.role, self.step, self.core.flags, &element) {
            Some(rules::Rule {
                handler: Handler::Element(handle),
                ..
            }) => handle(self, element),
            _ => Err(self.reject()),
        }
    }
}

#[cfg(test)]
mod tests {
    use minidom::Element;

    use crate::flags::SessionFlags;
    use crate::kind::{Role, StreamKind};
    use crate::rules::{self, Step};

    /// `on_envelope` stands in for the handler of the row the table gives an established
    /// stream's `message` or `presence` in its content namespace: for each case it takes on
    /// the envelope, that row is the one named in its documentation (a row added before it
    /// would make the envelope path skip that row, and fails this test).
    #[test]
    fn the_envelope_path_takes_the_rows_the_table_gives() {
        let secure_authenticated = SessionFlags::SECURE | SessionFlags::AUTHENTICATED;
        let cases = [
            (
                StreamKind::Client,
                Role::Receiving,
                secure_authenticated | SessionFlags::BOUND,
                "established.from-client",
            ),
            (
                StreamKind::Component,
                Role::Receiving,
                SessionFlags::BOUND,
                "component.inbound-stanza",
            ),
            (
                StreamKind::Server,
                Role::Receiving,
                secure_authenticated | SessionFlags::BOUND,
                "s2s.inbound-stanza",
            ),
            (
                StreamKind::Server,
                Role::Initiating,
                secure_authenticated | SessionFlags::BOUND | SessionFlags::BIDI,
                "s2s.bidi-stanza",
            ),
            // Left to the table: the stanza is refused there.
            (
                StreamKind::Server,
                Role::Initiating,
                secure_authenticated | SessionFlags::BOUND,
                "s2s.no-bidi",
            ),
        ];
        for (kind, role, flags, row) in cases {
            for name in ["message", "presence"] {
                let stanza = Element::bare(name, kind.namespace());
                let rule = rules::find(kind, role, Step::Established, flags, &stanza);
                assert_eq!(rule.map(|r| r.name), Some(row), "{kind} {role} {name}");
            }
        }
    }
}
