//! External components (XEP-0114): [`ComponentStream`] is the component's end,
//! [`ComponentServerStream`] the server's. Both are rows of the negotiation table
//! ([`crate::rules`]) over the same machine as the client streams.

use std::collections::HashMap;
use std::sync::Arc;

use minidom::Element;
use xmpp_jid::BareJid;
use xmpp_xml::Limits;

use crate::config::Timeouts;
use crate::core::{Core, DEFAULT_MAX_OUTPUT_BYTES};
use crate::entropy::Entropy;
use crate::error::{ProtocolError, UsageError};
use crate::kind::{Role, StreamKind};
use crate::machine::{Machine, Side};
use crate::steps::component::{ComponentServerSide, ComponentSide};
use crate::surface::stream_surface;
use crate::time::Instant;

/// The component's configuration. Build with [`ComponentConfig::new`] and adjust the public
/// fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct ComponentConfig {
    /// The component's domain (`comp.example.com`): the stream's `to`.
    pub domain: BareJid,
    /// The secret shared with the server.
    pub secret: String,
    /// Deadlines and keepalive.
    pub timeouts: Timeouts,
    /// Parser bounds.
    pub limits: Limits,
    /// Bytes of output the host has not polled yet that the machine holds before it gives up
    /// on the peer (default 1 MiB; see [`ClientConfig::max_output_bytes`](crate::ClientConfig::max_output_bytes)).
    pub max_output_bytes: usize,
}

impl core::fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret.
        f.debug_struct("ComponentConfig")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl ComponentConfig {
    /// A configuration for the component `domain` with its shared `secret` and the default
    /// timeouts and limits.
    pub fn new(domain: BareJid, secret: impl Into<String>) -> Self {
        ComponentConfig {
            domain,
            secret: secret.into(),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// The server's configuration for its component connections.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ComponentServerConfig {
    /// Deadlines and keepalive.
    pub timeouts: Timeouts,
    /// Parser bounds.
    pub limits: Limits,
    /// Bytes of output the host has not polled yet that the machine holds before it gives up
    /// on the peer (default 1 MiB).
    pub max_output_bytes: usize,
    /// Routing without trees (default off), as
    /// [`ServerConfig::envelopes`](crate::ServerConfig::envelopes): once the handshake
    /// succeeded, the component's `message` and `presence` stanzas come as
    /// [`Event::StanzaEnvelope`](crate::Event::StanzaEnvelope) (validated bytes and decoded
    /// header, no element built) after the same checks as on the element path (`to` and
    /// `from` present, `from` at the component's domain or a subdomain, a malformed `to`
    /// answered with `jid-malformed`). A `from` that is not in its normalized form (case,
    /// width...) is rewritten as on the element path, so such a stanza comes as
    /// [`Event::Stanza`](crate::Event::Stanza); iqs, nonzas and stanzas not in
    /// `jabber:component:accept` stay elements too.
    pub envelopes: bool,
}

impl ComponentServerConfig {
    /// The defaults.
    pub fn new() -> Self {
        ComponentServerConfig {
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            envelopes: false,
        }
    }
}

impl Default for ComponentServerConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a [`ComponentServerStream`] finds component secrets: the host's store, shared by all
/// component connections (as an `Arc`).
pub trait ComponentBackend {
    /// The shared secret of the component `domain`; `None` when no such component is
    /// configured (the stream then ends with `host-unknown`).
    fn secret(&self, domain: &BareJid) -> Option<String>;

    /// Whether a component for `domain` is connected already (a second one is refused with
    /// `conflict`, XEP-0114 §3). Default: never.
    fn is_connected(&self, domain: &BareJid) -> bool {
        let _ = domain;
        false
    }
}

impl<T: ComponentBackend + ?Sized> ComponentBackend for Arc<T> {
    fn secret(&self, domain: &BareJid) -> Option<String> {
        (**self).secret(domain)
    }

    fn is_connected(&self, domain: &BareJid) -> bool {
        (**self).is_connected(domain)
    }
}

/// Component secrets in memory.
///
/// ```
/// use xmpp_stream::{BareJid, ComponentBackend, MemoryComponents};
///
/// let components = MemoryComponents::new().with_component(BareJid::new("comp.example.com")?, "s3cr3t");
/// assert_eq!(components.secret(&BareJid::new("comp.example.com")?).as_deref(), Some("s3cr3t"));
/// assert_eq!(components.secret(&BareJid::new("other.example.com")?), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryComponents {
    secrets: HashMap<BareJid, String>,
}

impl core::fmt::Debug for MemoryComponents {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.secrets.keys()).finish()
    }
}

impl MemoryComponents {
    /// No components.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the component `domain` with `secret`.
    #[must_use]
    pub fn with_component(mut self, domain: BareJid, secret: impl Into<String>) -> Self {
        self.secrets.insert(domain, secret.into());
        self
    }
}

impl ComponentBackend for MemoryComponents {
    fn secret(&self, domain: &BareJid) -> Option<String> {
        self.secrets.get(domain).cloned()
    }
}

/// The component's end (initiating entity) of a `jabber:component:accept` stream (XEP-0114).
///
/// The same four kinds of methods as [`ClientStream`](crate::ClientStream): getters, inputs
/// (`handle_*`, `tls_established`, `transport_closed`), commands (`start`, `send_stanza`,
/// `close`, `close_with_error`) and outputs (`poll_*`). After the handshake,
/// [`Event::ComponentNegotiated`](crate::Event::ComponentNegotiated) is emitted and stanzas
/// flow; a refusal by the server is `Closed { StreamError }` with its condition.
///
/// ```
/// use xmpp_stream::{BareJid, ComponentConfig, ComponentServerConfig, ComponentServerStream, ComponentStream};
/// use xmpp_stream::{Event, Instant, MemoryComponents, Output, SeededEntropy, Transport};
///
/// let domain = BareJid::new("comp.example.com")?;
/// let mut component = ComponentStream::new(ComponentConfig::new(domain.clone(), "s3cr3t"), SeededEntropy::new(1));
/// let secrets = MemoryComponents::new().with_component(domain.clone(), "s3cr3t");
/// let mut server = ComponentServerStream::new(ComponentServerConfig::new(), SeededEntropy::new(2), secrets);
/// let now = Instant::ZERO;
/// component.start(now, Transport::Plain)?;
/// server.start(now, Transport::Plain)?;
/// let mut events = Vec::new();
/// for _ in 0..4 {
///     while let Some(output) = component.poll_output() {
///         match output {
///             Output::Transmit(bytes) => server.handle_input(now, &bytes)?,
///             Output::Event(event) => events.push(event),
///             Output::StartTls | _ => {}
///         }
///     }
///     while let Some(output) = server.poll_output() {
///         if let Output::Transmit(bytes) = output {
///             component.handle_input(now, &bytes)?;
///         }
///     }
/// }
/// assert!(events.contains(&Event::ComponentNegotiated { domain: domain.clone() }));
/// assert!(component.is_negotiated() && server.is_negotiated());
/// assert_eq!(server.domain(), Some(&domain));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ComponentStream {
    machine: Machine,
    /// The configured domain (also in the machine's configuration), for `domain()`.
    domain: BareJid,
}

impl core::fmt::Debug for ComponentStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ComponentStream")
            .field("domain", self.domain())
            .field("flags", &self.machine.core.flags)
            .finish_non_exhaustive()
    }
}

impl ComponentStream {
    /// A component that will connect with `config`. `entropy` is drawn from by nothing today
    /// (the server makes the stream id) and kept for the same constructor shape as the other
    /// roles.
    pub fn new(config: ComponentConfig, entropy: impl Entropy + Send + 'static) -> Self {
        let core = Core::new(
            config.timeouts,
            config.limits.clone(),
            config.max_output_bytes,
            Box::new(entropy),
        );
        let domain = config.domain.clone();
        let side = Side::Component(Box::new(ComponentSide { config }));
        ComponentStream {
            machine: Machine::new(core, StreamKind::Component, Role::Initiating, side),
            domain,
        }
    }

    /// The component's domain.
    pub fn domain(&self) -> &BareJid {
        &self.domain
    }

    /// Send a stanza (`message`, `presence`, `iq`; in `jabber:component:accept`, or in
    /// `jabber:client`/`jabber:server`, which is written as the stream's). XEP-0114 wants
    /// `from` at the component's domain and a `to`: the server enforces it. Refused before
    /// the handshake succeeded.
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        self.machine.send_stanza(now, stanza)
    }

    /// Bytes from the server, in any chunking.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.machine.handle_input(now, bytes)
    }
}

stream_surface!(ComponentStream);

/// The server's end (receiving entity) of a component connection (XEP-0114).
///
/// The component's header names its domain; the host's [`ComponentBackend`] supplies the
/// secret. After the handshake, [`Event::ComponentNegotiated`](crate::Event::ComponentNegotiated)
/// is emitted and the component's stanzas arrive as `Event::Stanza` (in
/// `jabber:component:accept`), each checked: `from` at the component's domain or a subdomain
/// of it, `to` and `from` present. The host routes them; stanzas it sends the component may
/// be in any content namespace. See [`ComponentStream`] for an example.
pub struct ComponentServerStream {
    machine: Machine,
}

impl core::fmt::Debug for ComponentServerStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ComponentServerStream")
            .field("domain", &self.domain())
            .field("flags", &self.machine.core.flags)
            .finish_non_exhaustive()
    }
}

impl ComponentServerStream {
    /// A server end for one accepted component connection. `entropy` supplies stream ids;
    /// `backend` the secrets.
    pub fn new(
        config: ComponentServerConfig,
        entropy: impl Entropy + Send + 'static,
        backend: impl ComponentBackend + Send + 'static,
    ) -> Self {
        let mut core = Core::new(
            config.timeouts,
            config.limits,
            config.max_output_bytes,
            Box::new(entropy),
        );
        core.envelopes = config.envelopes;
        let side = Side::ComponentServer(Box::new(ComponentServerSide::new(Box::new(backend))));
        ComponentServerStream {
            machine: Machine::new(core, StreamKind::Component, Role::Receiving, side),
        }
    }

    /// The component's domain, once its header named a configured one.
    pub fn domain(&self) -> Option<&BareJid> {
        match &self.machine.side {
            Side::ComponentServer(side) => side.domain.as_ref(),
            _ => None,
        }
    }

    /// Send a stanza to the component on a negotiated stream (any content namespace: it is
    /// written as `jabber:component:accept`).
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        self.machine.send_stanza(now, stanza)
    }

    /// Forward a stanza received as an envelope (on any stream: `jabber:client`,
    /// `jabber:server` or `jabber:component:accept`) to the component on a negotiated stream,
    /// with `from` and `to` stamped (`None` keeps the envelope's own): its bytes with the
    /// start tag spliced and the namespace moved into `jabber:component:accept` (no element
    /// built), or through the element path where the splice needs it, as
    /// [`ServerStream::send_envelope`](crate::ServerStream::send_envelope). The component
    /// reads the stanza [`send_stanza`](Self::send_stanza) of the stamped element would give.
    pub fn send_envelope(
        &mut self,
        now: Instant,
        envelope: &xmpp_xml::Envelope,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(), UsageError> {
        self.machine.send_envelope(now, envelope, from, to)
    }

    /// Bytes from the component, in any chunking. As on
    /// [`ServerStream::handle_input`](crate::ServerStream::handle_input), stanzas of a
    /// negotiated stream are processed as the host drains `poll_output`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.machine.handle_input(now, bytes)
    }
}

stream_surface!(ComponentServerStream);
