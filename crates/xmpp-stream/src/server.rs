//! The receiving entity of a `jabber:client` stream: [`ServerStream`] and its data. What each
//! element means is in the negotiation table ([`crate::rules`]) and the step modules.

use minidom::Element;
use xmpp_jid::{BareJid, FullJid};

use crate::backend::ServerBackend;
use crate::config::ServerConfig;
use crate::core::Core;
use crate::entropy::Entropy;
use crate::error::{ProtocolError, UsageError};
use crate::identity::PresentedId;
use crate::kind::{Role, StreamKind};
use crate::machine::{Machine, Side};
use crate::surface::stream_surface;
use crate::time::Instant;

/// The server's role data.
pub(crate) struct ServerSide {
    pub(crate) config: ServerConfig,
    pub(crate) backend: Box<dyn ServerBackend + Send>,
    pub(crate) account: Option<BareJid>,
    pub(crate) jid: Option<FullJid>,
    pub(crate) failed_attempts: u32,
    /// The `from` attribute name, built once per stream for the per-stanza stamp.
    pub(crate) from_attr: minidom::rxml::NcName,
    /// The running exchange ([`Step::Sasl`](crate::rules::Step::Sasl)).
    pub(crate) exchange: Option<Box<xmpp_sasl::Server>>,
    /// The names of the client's certificate, once the host verified it against the CA it
    /// trusts for clients: SASL EXTERNAL is offered then (XEP-0178 §2).
    pub(crate) peer_ids: Option<Vec<PresentedId>>,
    /// XEP-0077: registrations submitted on this stream.
    pub(crate) registration_attempts: u32,
    /// XEP-0077: the id of the submission the host has not answered yet.
    pub(crate) registration_pending: Option<String>,
}

/// The server (receiving entity) side of a `jabber:client` stream.
///
/// Methods come in four kinds: getters (`&self`), inputs (`handle_*`, `tls_established`,
/// `transport_closed`), commands (`start`, `send_stanza`, `close`, `close_with_error`) and
/// outputs (`poll_*`). After every input or command, drain [`poll_output`](Self::poll_output)
/// until `None` and re-read [`poll_timeout`](Self::poll_timeout).
pub struct ServerStream {
    machine: Machine,
}

impl core::fmt::Debug for ServerStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerStream")
            .field("jid", &self.jid())
            .field("flags", &self.machine.core.flags)
            .finish_non_exhaustive()
    }
}

impl ServerStream {
    /// A server stream for one accepted connection. `entropy` supplies stream ids, SCRAM
    /// nonces and generated resources; `backend` authenticates and approves bindings.
    pub fn new(
        config: ServerConfig,
        entropy: impl Entropy + Send + 'static,
        backend: impl ServerBackend + Send + 'static,
    ) -> Self {
        let mut core = Core::new(
            config.timeouts,
            config.limits.clone(),
            config.max_output_bytes,
            Box::new(entropy),
        );
        core.envelopes = config.envelopes;
        let side = Side::Server(Box::new(ServerSide {
            config,
            backend: Box::new(backend),
            account: None,
            jid: None,
            failed_attempts: 0,
            from_attr: crate::codec::attr_name("from"),
            exchange: None,
            peer_ids: None,
            registration_attempts: 0,
            registration_pending: None,
        }));
        ServerStream {
            machine: Machine::new(core, StreamKind::Client, Role::Receiving, side),
        }
    }

    /// The stream over WebSocket (RFC 7395): `<open/>` and `<close/>` in
    /// `urn:ietf:params:xml:ns:xmpp-framing` instead of the stream header and its end tag,
    /// one element per [`Output::Transmit`](crate::Output::Transmit) (send each as one text
    /// message), input through [`handle_message`](Self::handle_message), no STARTTLS (TLS
    /// is the host's `wss:`: start with [`Transport::Tls`](crate::Transport::Tls) there), no
    /// whitespace keepalives. Call before [`start`](Self::start).
    #[must_use]
    pub fn websocket(mut self) -> Self {
        self.machine.core.frame(xmpp_xml::ContentNamespace::Client);
        self
    }

    /// On a WebSocket stream, close it naming another endpoint the client should use instead
    /// (RFC 7395 §3.6.1): `<close see-other-uri='uri'/>`, then as [`close`](Self::close)
    /// (wait, bounded, for the client's `<close/>` or the end of the transport). The host
    /// should not name an endpoint of a lower security context than the current one (`wss:`
    /// to `ws:`). A TCP stream redirects with the `see-other-host` stream error instead
    /// ([`close_with_error`](Self::close_with_error)), so there this is
    /// [`UsageError::InvalidConfig`](crate::UsageError::InvalidConfig), as is a `uri` that is
    /// empty or holds a character XML forbids.
    pub fn close_see_other_uri(
        &mut self,
        now: crate::Instant,
        uri: &str,
    ) -> Result<(), crate::UsageError> {
        if !self.machine.core.framed {
            return Err(crate::UsageError::InvalidConfig(
                "see-other-uri needs a WebSocket stream; use the see-other-host stream error",
            ));
        }
        let header = xmpp_xml::StreamHeader::new(xmpp_xml::ContentNamespace::Client);
        let writer = xmpp_xml::StreamWriter::framed(&header);
        if uri.is_empty()
            || writer
                .write_close_see_other_uri(uri, &mut Vec::new())
                .is_err()
        {
            return Err(crate::UsageError::InvalidConfig(
                "see-other-uri must be a non-empty XML attribute value",
            ));
        }
        self.machine.core.close_uri = Some(uri.to_owned());
        self.machine.close(now)
    }

    fn side(&self) -> Option<&ServerSide> {
        match &self.machine.side {
            Side::Server(side) => Some(side),
            _ => None,
        }
    }

    /// The authenticated account, once SASL succeeded.
    pub fn account(&self) -> Option<&BareJid> {
        self.side()?.account.as_ref()
    }

    /// The names of the client's TLS certificate (XEP-0178 §2), after the host verified its
    /// chain against the CA it trusts for client certificates. Call before
    /// `tls_established`, or with direct TLS before the first input. On an encrypted stream
    /// SASL EXTERNAL is then offered (first, unless [`ServerConfig::mechanisms`] lists it
    /// elsewhere), and logs in as the account
    /// [`ServerBackend::certificate_accounts`] maps the names to (by default the
    /// certificate's XmppAddr): with the client's authorization identity when it sent one
    /// (`invalid-authzid` when the certificate does not name it), else the only account
    /// (`not-authorized` when there is none, or several).
    pub fn set_peer_identities(&mut self, ids: Vec<PresentedId>) {
        if let Side::Server(side) = &mut self.machine.side {
            side.peer_ids = Some(ids);
        }
    }

    /// The bound full JID, once negotiated.
    pub fn jid(&self) -> Option<&FullJid> {
        self.side()?.jid.as_ref()
    }

    /// Send a stanza to the client on a negotiated stream (in `jabber:client`, or in another
    /// content namespace, written as `jabber:client`).
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        self.machine.send_stanza(now, stanza)
    }

    /// Forward a stanza that arrived as an [`Envelope`](xmpp_xml::Envelope) (on this or
    /// another stream) to the client on a negotiated stream, stamping `from` and `to` when
    /// given (RFC 6120 §8.1.2.1: the sender's full JID; the `to` as routed). The bytes are
    /// spliced into the output (no element built: one copy of the stanza), moved into
    /// `jabber:client`. Where bytes cannot express it the element is built and sent as
    /// [`send_stanza`](Self::send_stanza) would: when the splice needs the element
    /// ([`SpliceError::NeedsElement`](xmpp_xml::SpliceError::NeedsElement)). On a WebSocket
    /// stream the spliced stanza declares `jabber:client` itself (one message, RFC 7395
    /// §3.3.3). Counted and queued for acknowledgement like any sent stanza: with XEP-0198
    /// on, the unacknowledged queue keeps a copy of the spliced bytes (an
    /// [`Unacked`](crate::Unacked)), re-sent on resumption.
    pub fn send_envelope(
        &mut self,
        now: Instant,
        envelope: &xmpp_xml::Envelope,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(), UsageError> {
        self.machine.send_envelope(now, envelope, from, to)
    }

    /// XEP-0198: the host found the session a [`SmEvent::ResumeRequested`](crate::SmEvent::ResumeRequested)
    /// named, detached from its old stream: this stream takes it over (`<resumed/>`, the
    /// unacknowledged stanzas re-sent in order, [`SmEvent::Resumed`](crate::SmEvent::Resumed)).
    /// A session of another account is refused as unknown (`item-not-found`). Whenever the
    /// session was not taken over (no resumption pending, another account, an `h` above what
    /// was sent, which closes this stream) it is handed back unchanged, for the host to keep
    /// or end: never lost.
    pub fn resume(
        &mut self,
        now: Instant,
        session: crate::sm::DetachedSession,
    ) -> Result<(), Box<crate::sm::DetachedSession>> {
        self.machine.core.tick(now);
        if self.machine.core.check_open().is_err() {
            return Err(Box::new(session));
        }
        crate::steps::sm::accept_resume(&mut self.machine, session)
    }

    /// XEP-0077: the host's answer to the stream's
    /// [`Event::RegistrationRequested`](crate::Event::RegistrationRequested): `Ok` once the
    /// account is stored (the client gets its IQ result and may authenticate as it), or why
    /// not (the matching stanza error, [`RegistrationRefused::stanza_error`](crate::RegistrationRefused::stanza_error)).
    /// [`UsageError::NoRegistrationPending`] when nothing was asked;
    /// [`UsageError::Closed`] when the stream ended meanwhile (the account, if created,
    /// stays).
    pub fn registration_done(
        &mut self,
        now: Instant,
        outcome: Result<(), crate::RegistrationRefused>,
    ) -> Result<(), UsageError> {
        crate::steps::register::done(&mut self.machine, now, outcome)
    }

    /// XEP-0198: the resumption id of this stream's managed session, once granted.
    pub fn sm_id(&self) -> Option<&str> {
        self.machine.sm.as_ref()?.id.as_deref()
    }

    /// XEP-0198: no session has the id a [`SmEvent::ResumeRequested`](crate::SmEvent::ResumeRequested)
    /// named (unknown or expired): `<failed><item-not-found/></failed>`; the client may bind.
    pub fn refuse_resume(&mut self, now: Instant) {
        self.machine.core.tick(now);
        crate::steps::sm::refuse_resume(&mut self.machine);
    }

    /// XEP-0198: take this stream's managed session to keep it detached (after the transport
    /// died) for the resumption window: `None` unless resumption was granted. The stream
    /// keeps nothing of it.
    pub fn detach(&mut self) -> Option<crate::sm::DetachedSession> {
        crate::steps::sm::detach(&mut self.machine)
    }

    /// XEP-0198 with [`SmConfig::handled_by_host`](crate::SmConfig::handled_by_host): the
    /// number of the inbound stanza last taken from [`poll_output`](Self::poll_output), to
    /// name it later in [`stanza_handled`](Self::stanza_handled). `None` before stream
    /// management counts inbound stanzas.
    pub fn last_taken(&self) -> Option<u32> {
        let sm = self.machine.sm.as_deref()?;
        (sm.counting_in && sm.config.handled_by_host).then_some(sm.taken)
    }

    /// XEP-0198 with [`SmConfig::handled_by_host`](crate::SmConfig::handled_by_host): inbound
    /// stanza `seq` (from [`last_taken`](Self::last_taken)) is handled; `<a h=''/>` counts it
    /// once every stanza before it is handled too. A number handled already is ignored.
    pub fn stanza_handled(&mut self, now: Instant, seq: u32) {
        self.machine.core.tick(now);
        crate::steps::sm::host_handled(&mut self.machine, seq);
    }

    /// XEP-0198: whether stream management is on, and the number of stanzas sent and not yet
    /// acknowledged.
    pub fn sm_unacked(&self) -> Option<usize> {
        self.machine.sm.as_ref().map(|sm| sm.unacked.len())
    }

    /// Bytes from the client, in any chunking.
    ///
    /// During negotiation every complete element is processed here, and a protocol error in
    /// `bytes` is returned. Once the stream is negotiated, stanzas are processed as the host
    /// drains [`poll_output`](Self::poll_output): this call processes input up to the first
    /// output, and each `poll_output` that finds the queue empty processes the next stanza.
    /// So a read full of small stanzas never holds them all as queued trees at once (memory,
    /// and allocator caches stay warm), and a host that stops polling because its writes
    /// block stops consuming input too. A protocol error found while polling is reported
    /// there (the stream error is transmitted and `Closed` follows) and returned by every
    /// later input. Every other input and command first processes whatever input is still
    /// pending, so the order of outputs never depends on when the host polled.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.machine.handle_input(now, bytes)
    }
}

stream_surface!(ServerStream);
