//! The receiving entity of a `jabber:client` stream: [`ServerStream`] and its data. What each
//! element means is in the negotiation table ([`crate::rules`]) and the step modules.

use minidom::Element;
use xmpp_jid::{BareJid, FullJid};

use crate::backend::ServerBackend;
use crate::config::ServerConfig;
use crate::core::Core;
use crate::entropy::Entropy;
use crate::error::{ProtocolError, UsageError};
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
        let core = Core::new(
            config.timeouts,
            config.limits.clone(),
            config.max_output_bytes,
            Box::new(entropy),
        );
        let side = Side::Server(ServerSide {
            config,
            backend: Box::new(backend),
            account: None,
            jid: None,
            failed_attempts: 0,
            from_attr: crate::codec::attr_name("from"),
            exchange: None,
        });
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

    /// The bound full JID, once negotiated.
    pub fn jid(&self) -> Option<&FullJid> {
        self.side()?.jid.as_ref()
    }

    /// Send a stanza to the client on a negotiated stream (in `jabber:client`, or in another
    /// content namespace, written as `jabber:client`).
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        self.machine.send_stanza(now, stanza)
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
