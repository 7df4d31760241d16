//! The initiating entity of a `jabber:client` stream: [`ClientStream`] and its data. What each
//! element means is in the negotiation table ([`crate::rules`]) and the step modules.

use std::collections::VecDeque;

use minidom::Element;
use xmpp_jid::FullJid;
use xmpp_sasl::{Mechanism, ScramKeys};

use crate::config::ClientConfig;
use crate::core::Core;
use crate::entropy::Entropy;
use crate::error::{ProtocolError, UsageError};
use crate::kind::{Role, StreamKind};
use crate::machine::{Machine, Side};
use crate::rules::is_stanza_any;
use crate::steps::sasl::SaslAttempts;
use crate::surface::stream_surface;
use crate::time::Instant;

/// A request of ours waiting for its `<iq/>` reply during resource binding.
pub(crate) struct PendingIq {
    /// The request's id.
    pub(crate) id: String,
    /// Whether we asked for the configured resource (a conflict then retries without it).
    pub(crate) requested: bool,
    /// Whether a legacy session request follows the bind.
    pub(crate) session: bool,
    /// Set once bound: the request out is the legacy session request.
    pub(crate) bound: Option<FullJid>,
}

/// The client's role data.
pub(crate) struct ClientSide {
    pub(crate) config: ClientConfig,
    /// Features the server listed with `<bind/>` that this crate does not negotiate.
    pub(crate) extra_features: Vec<Element>,
    /// Stanzas the host sent before negotiation completed.
    pub(crate) queue: VecDeque<Element>,
    pub(crate) jid: Option<FullJid>,
    pub(crate) scram_keys: Option<ScramKeys>,
    /// The server's header named another domain: fatal once it goes on to negotiate.
    pub(crate) foreign_from: bool,
    /// What the server offered and what was tried (SASL fallback).
    pub(crate) sasl: SaslAttempts,
    /// The running exchange ([`Step::Sasl`](crate::rules::Step::Sasl)).
    pub(crate) exchange: Option<Box<xmpp_sasl::Client>>,
    /// The mechanism of the exchange we aborted ([`Step::SaslAborting`](crate::rules::Step::SaslAborting)).
    pub(crate) aborting: Option<Mechanism>,
    /// The bind or session request out ([`Step::Bind`](crate::rules::Step::Bind)).
    /// Boxed: held only during binding, and 56 bytes inline on every idle stream.
    pub(crate) pending: Option<Box<PendingIq>>,
    /// The server listed XEP-0198 `<sm/>` with `<bind/>`.
    pub(crate) sm_offered: bool,
    /// A legacy session request follows binding (kept for a bind after a failed resumption).
    pub(crate) bind_session: bool,
    /// The state to resume instead of binding ([`ClientStream::resume_with`]).
    pub(crate) resume: Option<Box<crate::sm::SmState>>,
    /// XEP-0077: the registration under way ([`Step::Register`](crate::rules::Step::Register)).
    pub(crate) registration: Option<Box<crate::steps::register::ClientRegistration>>,
    /// XEP-0077: our account was registered on this connection.
    pub(crate) registered: bool,
}

/// The client (initiating entity) side of a `jabber:client` stream.
///
/// Methods come in four kinds: getters (`&self`), inputs (`handle_*`, `tls_established`,
/// `transport_closed`), commands (`start`, `send_stanza`, `close`, `close_with_error`) and
/// outputs (`poll_*`). After every input or command, drain [`poll_output`](Self::poll_output)
/// until `None` and re-read [`poll_timeout`](Self::poll_timeout).
pub struct ClientStream {
    machine: Machine,
}

impl core::fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientStream")
            .field("jid", &self.jid())
            .field("flags", &self.machine.core.flags)
            .finish_non_exhaustive()
    }
}

impl ClientStream {
    /// A client that will negotiate with `config` and draw randomness (SCRAM nonces, stanza
    /// ids) from `entropy`. Nothing happens until [`start`](Self::start).
    pub fn new(config: ClientConfig, entropy: impl Entropy + Send + 'static) -> Self {
        let core = Core::new(
            config.timeouts,
            config.limits.clone(),
            config.max_output_bytes,
            Box::new(entropy),
        );
        let side = Side::Client(Box::new(ClientSide {
            config,
            extra_features: Vec::new(),
            queue: VecDeque::new(),
            jid: None,
            scram_keys: None,
            foreign_from: false,
            sasl: SaslAttempts::default(),
            exchange: None,
            aborting: None,
            pending: None,
            sm_offered: false,
            bind_session: false,
            resume: None,
            registration: None,
            registered: false,
        }));
        ClientStream {
            machine: Machine::new(core, StreamKind::Client, Role::Initiating, side),
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

    fn side(&self) -> Option<&ClientSide> {
        match &self.machine.side {
            Side::Client(side) => Some(side),
            _ => None,
        }
    }

    /// The bound full JID, once negotiated.
    pub fn jid(&self) -> Option<&FullJid> {
        self.side()?.jid.as_ref()
    }

    /// SCRAM keys from the last successful SCRAM login, for
    /// [`Credentials::ScramKeys`](crate::Credentials::ScramKeys).
    pub fn scram_keys(&self) -> Option<&ScramKeys> {
        self.side()?.scram_keys.as_ref()
    }

    /// Send a stanza (`<message/>`, `<presence/>` or `<iq/>`, in `jabber:client` or another
    /// content namespace, written as `jabber:client`). Before negotiation completes it is
    /// queued (a copy, up to `max_queued_stanzas`) and sent right after; it never leaks onto
    /// an unauthenticated stream. Takes the stanza by reference like
    /// [`ServerStream::send_stanza`](crate::ServerStream::send_stanza): once negotiated it is
    /// only serialized, so the host keeps (and may resend or fan out) its element.
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        if self.machine.is_negotiated() || !is_stanza_any(stanza) {
            return self.machine.send_stanza(now, stanza);
        }
        self.machine.core.tick(now);
        self.machine.core.check_open()?;
        let Side::Client(side) = &mut self.machine.side else {
            return Err(UsageError::NotNegotiated);
        };
        if side.queue.len() < side.config.max_queued_stanzas {
            side.queue.push_back(stanza.clone());
            Ok(())
        } else {
            Err(UsageError::NotNegotiated)
        }
    }

    /// XEP-0198: resume the session `state` describes (taken with [`sm_state`](Self::sm_state)
    /// from an earlier stream, possibly persisted) instead of binding, when the server offers
    /// stream management. Call before [`start`](Self::start). On `<resumed/>` the
    /// unacknowledged stanzas are re-sent in order and [`SmEvent::Resumed`](crate::SmEvent::Resumed)
    /// is reported; on `<failed/>` they are reported as not delivered
    /// ([`SmEvent::ResumeFailed`](crate::SmEvent::ResumeFailed)) and the client binds afresh.
    pub fn resume_with(&mut self, state: crate::sm::SmState) -> Result<(), UsageError> {
        if self.machine.core.phase != crate::core::Phase::Idle {
            return Err(UsageError::AlreadyStarted);
        }
        if xmpp_jid::FullJid::new(&state.jid).is_err() {
            return Err(UsageError::InvalidConfig("the saved JID is not a full JID"));
        }
        let Side::Client(side) = &mut self.machine.side else {
            return Err(UsageError::NotNegotiated);
        };
        side.resume = Some(Box::new(state));
        Ok(())
    }

    /// XEP-0198: the resumable state (resumption id, counters, unacknowledged stanzas), once
    /// the server granted resumption; `None` otherwise. Take it when the connection is lost
    /// (it stays readable after `Closed`) and give it to a new stream's
    /// [`resume_with`](Self::resume_with).
    pub fn sm_state(&self) -> Option<crate::sm::SmState> {
        crate::steps::sm::snapshot(&self.machine)
    }

    /// XEP-0198: whether stream management is on, and the number of stanzas sent and not yet
    /// acknowledged.
    pub fn sm_unacked(&self) -> Option<usize> {
        self.machine.sm.as_ref().map(|sm| sm.unacked.len())
    }

    /// Bytes from the server, in any chunking. Every complete element is processed here, and
    /// a protocol error in `bytes` is returned.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.machine.handle_input(now, bytes)
    }
}

stream_surface!(ClientStream);
