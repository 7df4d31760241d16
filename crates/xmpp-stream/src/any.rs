//! [`AnyStream`]: one stream machine of any kind and role behind one type, for hosts that pick
//! the role at run time (a replayer, a WASM module's table of machines, a server with a c2s
//! port and a component port) or write their I/O loop once for every role.

use minidom::Element;
use xmpp_jid::FullJid;
use xmpp_sasl::ChannelBinding;
use xmpp_xml::StreamError;

use crate::client::ClientStream;
use crate::component::{ComponentServerStream, ComponentStream};
use crate::error::{ProtocolError, UsageError};
use crate::flags::SessionFlags;
use crate::output::{Output, Transport};
use crate::s2s::{S2sInitiatingStream, S2sReceivingStream};
use crate::server::ServerStream;
use crate::time::Instant;

/// A stream machine of any kind and role: the same inputs, commands, outputs and getters as
/// [`ClientStream`], [`ServerStream`], [`ComponentStream`] and [`ComponentServerStream`],
/// forwarded to the one inside.
///
/// Build it with `From` (`AnyStream::from(client)`, `stream.into()`); reach role-specific
/// methods through [`as_client`](Self::as_client), [`as_server`](Self::as_server),
/// [`as_component`](Self::as_component) and [`as_component_server`](Self::as_component_server).
/// New kinds (server-to-server) will be new variants, so matching on it needs a wildcard arm.
///
/// The variants are held inline: a host holds one machine per connection, and boxing would
/// cost every stream one more allocation for the few bytes the types differ by (they all
/// wrap the same machine).
///
/// ```
/// use xmpp_stream::{AnyStream, BareJid, ClientConfig, ClientStream, Event, Instant, MemoryBackend};
/// use xmpp_stream::{Output, SeededEntropy, ServerConfig, ServerStream, SessionFlags, Transport};
///
/// let client = ClientConfig::new(BareJid::new("juliet@im.example.com")?, "r0m30myr0m30");
/// let server = ServerConfig::new(BareJid::new("im.example.com")?);
/// let accounts = MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096);
/// // One loop for both ends: index 0 is the client, 1 the server.
/// let mut ends: [AnyStream; 2] = [
///     ClientStream::new(client, SeededEntropy::new(1)).into(),
///     ServerStream::new(server, SeededEntropy::new(2), accounts).into(),
/// ];
/// let now = Instant::ZERO;
/// for end in &mut ends {
///     end.start(now, Transport::Plain)?;
/// }
/// let mut negotiated = 0;
/// loop {
///     let mut moved = false;
///     for from in 0..2 {
///         while let Some(output) = ends[from].poll_output() {
///             moved = true;
///             match output {
///                 // The peer is the other end of the array.
///                 Output::Transmit(bytes) => {
///                     let _ = ends[1 - from].handle_input(now, &bytes);
///                 }
///                 // No real TLS here: report a finished handshake without channel bindings.
///                 Output::StartTls => ends[from].tls_established(now, Vec::new())?,
///                 Output::Event(Event::Negotiated { .. }) => negotiated += 1,
///                 _ => {}
///             }
///         }
///     }
///     if !moved {
///         break;
///     }
/// }
/// assert_eq!(negotiated, 2);
/// assert!(ends.iter().all(|end| end.is_negotiated() && end.flags().contains(SessionFlags::SECURE)));
/// assert_eq!(ends[0].jid(), ends[1].jid());
/// assert!(ends[0].as_client().is_some() && ends[1].as_server().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
// The roles differ by a few hundred bytes of about two thousand: see above for why not boxed.
#[allow(clippy::large_enum_variant)]
pub enum AnyStream {
    /// The initiating entity of a `jabber:client` stream.
    Client(ClientStream),
    /// The receiving entity of a `jabber:client` stream.
    Server(ServerStream),
    /// An external component's end of a `jabber:component:accept` stream (XEP-0114).
    Component(ComponentStream),
    /// The server's end of a component connection.
    ComponentServer(ComponentServerStream),
    /// The initiating end of a server-to-server stream.
    S2sInitiating(S2sInitiatingStream),
    /// The receiving end of a server-to-server stream.
    S2sReceiving(S2sReceivingStream),
}

/// Calls the same method on whichever machine is inside.
macro_rules! forward {
    ($self:ident, $stream:ident => $call:expr) => {
        match $self {
            AnyStream::Client($stream) => $call,
            AnyStream::Server($stream) => $call,
            AnyStream::Component($stream) => $call,
            AnyStream::ComponentServer($stream) => $call,
            AnyStream::S2sInitiating($stream) => $call,
            AnyStream::S2sReceiving($stream) => $call,
        }
    };
}

impl From<ClientStream> for AnyStream {
    fn from(stream: ClientStream) -> Self {
        AnyStream::Client(stream)
    }
}

impl From<ServerStream> for AnyStream {
    fn from(stream: ServerStream) -> Self {
        AnyStream::Server(stream)
    }
}

impl From<ComponentStream> for AnyStream {
    fn from(stream: ComponentStream) -> Self {
        AnyStream::Component(stream)
    }
}

impl From<ComponentServerStream> for AnyStream {
    fn from(stream: ComponentServerStream) -> Self {
        AnyStream::ComponentServer(stream)
    }
}

impl From<S2sInitiatingStream> for AnyStream {
    fn from(stream: S2sInitiatingStream) -> Self {
        AnyStream::S2sInitiating(stream)
    }
}

impl From<S2sReceivingStream> for AnyStream {
    fn from(stream: S2sReceivingStream) -> Self {
        AnyStream::S2sReceiving(stream)
    }
}

impl AnyStream {
    // ----- getters -----

    /// The client inside, if this is one.
    pub fn as_client(&self) -> Option<&ClientStream> {
        match self {
            AnyStream::Client(stream) => Some(stream),
            _ => None,
        }
    }

    /// The client inside, mutably, if this is one.
    pub fn as_client_mut(&mut self) -> Option<&mut ClientStream> {
        match self {
            AnyStream::Client(stream) => Some(stream),
            _ => None,
        }
    }

    /// The server inside, if this is one.
    pub fn as_server(&self) -> Option<&ServerStream> {
        match self {
            AnyStream::Server(stream) => Some(stream),
            _ => None,
        }
    }

    /// The server inside, mutably, if this is one.
    pub fn as_server_mut(&mut self) -> Option<&mut ServerStream> {
        match self {
            AnyStream::Server(stream) => Some(stream),
            _ => None,
        }
    }

    /// The session flags (Secure, Authenticated, Bound).
    pub fn flags(&self) -> SessionFlags {
        forward!(self, s => s.flags())
    }

    /// The bound full JID, once a c2s stream is negotiated (`None` on component streams).
    pub fn jid(&self) -> Option<&FullJid> {
        match self {
            AnyStream::Client(s) => s.jid(),
            AnyStream::Server(s) => s.jid(),
            _ => None,
        }
    }

    /// The component inside, if this is one.
    pub fn as_component(&self) -> Option<&ComponentStream> {
        match self {
            AnyStream::Component(stream) => Some(stream),
            _ => None,
        }
    }

    /// The server end of a component connection inside, if this is one.
    pub fn as_component_server(&self) -> Option<&ComponentServerStream> {
        match self {
            AnyStream::ComponentServer(stream) => Some(stream),
            _ => None,
        }
    }

    /// Whether stanzas may flow.
    pub fn is_negotiated(&self) -> bool {
        forward!(self, s => s.is_negotiated())
    }

    /// Whether `Closed` has been emitted.
    pub fn is_closed(&self) -> bool {
        forward!(self, s => s.is_closed())
    }

    /// The current stream's id (the server's, as both roles see it).
    pub fn stream_id(&self) -> Option<&str> {
        forward!(self, s => s.stream_id())
    }

    // ----- outputs -----

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        forward!(self, s => s.poll_output())
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        forward!(self, s => s.poll_timeout())
    }

    // ----- commands -----

    /// Open the stream on `transport` ([`Transport::Tls`] for XEP-0368 direct TLS).
    pub fn start(&mut self, now: Instant, transport: Transport) -> Result<(), UsageError> {
        forward!(self, s => s.start(now, transport))
    }

    /// Send a stanza (see [`ClientStream::send_stanza`] and [`ServerStream::send_stanza`] for
    /// what each role does before negotiation completes).
    pub fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        match self {
            AnyStream::Client(s) => s.send_stanza(now, stanza),
            AnyStream::Server(s) => s.send_stanza(now, stanza),
            AnyStream::Component(s) => s.send_stanza(now, stanza),
            AnyStream::ComponentServer(s) => s.send_stanza(now, stanza),
            AnyStream::S2sInitiating(s) => s.send_stanza(now, stanza),
            // Refused unless XEP-0288 bidi was negotiated.
            AnyStream::S2sReceiving(s) => s.send_stanza(now, stanza),
        }
    }

    /// Forward an envelope with `from` and `to` stamped: spliced bytes on the streams a
    /// server forwards on ([`ServerStream::send_envelope`],
    /// [`ComponentServerStream::send_envelope`], [`S2sInitiatingStream::send_envelope`],
    /// [`S2sReceivingStream::send_envelope`], each refusing what its `send_stanza` refuses);
    /// a client or component stream builds the element, stamps it in its own namespace and
    /// [`send_stanza`](Self::send_stanza)s it.
    pub fn send_envelope(
        &mut self,
        now: Instant,
        envelope: &xmpp_xml::Envelope,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(), UsageError> {
        let namespace = match self {
            AnyStream::Server(s) => return s.send_envelope(now, envelope, from, to),
            AnyStream::ComponentServer(s) => return s.send_envelope(now, envelope, from, to),
            AnyStream::S2sInitiating(s) => return s.send_envelope(now, envelope, from, to),
            AnyStream::S2sReceiving(s) => return s.send_envelope(now, envelope, from, to),
            AnyStream::Client(_) => xmpp_xml::NS_CLIENT,
            AnyStream::Component(_) => xmpp_xml::NS_COMPONENT_ACCEPT,
        };
        let mut element = envelope
            .element()
            .map_err(|_| UsageError::InvalidStanza("the envelope does not rebuild"))?;
        let stamp = xmpp_xml::Stamp {
            namespace,
            from,
            to,
            lang: None,
            standalone: false,
        };
        xmpp_xml::stamp_element(&mut element, &stamp);
        self.send_stanza(now, &element)
    }

    /// Close the stream gracefully.
    pub fn close(&mut self, now: Instant) -> Result<(), UsageError> {
        forward!(self, s => s.close(now))
    }

    /// Close the stream with a stream error the host chose.
    pub fn close_with_error(&mut self, now: Instant, error: StreamError) -> Result<(), UsageError> {
        forward!(self, s => s.close_with_error(now, error))
    }

    // ----- inputs -----

    /// Bytes from the peer, in any chunking.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
        forward!(self, s => s.handle_input(now, bytes))
    }

    /// One whole WebSocket message on a framed stream (on a TCP stream: `handle_input`).
    pub fn handle_message(&mut self, now: Instant, message: &[u8]) -> Result<(), ProtocolError> {
        forward!(self, s => s.handle_message(now, message))
    }

    /// Whether the stream uses RFC 7395 framing (XMPP over WebSocket).
    pub fn is_websocket(&self) -> bool {
        forward!(self, s => s.is_websocket())
    }

    /// Time passed: fire due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        forward!(self, s => s.handle_timeout(now));
    }

    /// The TLS handshake the machine asked for with [`Output::StartTls`] finished;
    /// `bindings` is the channel-binding data the TLS library offers (possibly none).
    pub fn tls_established(
        &mut self,
        now: Instant,
        bindings: Vec<ChannelBinding>,
    ) -> Result<(), UsageError> {
        forward!(self, s => s.tls_established(now, bindings))
    }

    /// The transport closed (EOF or error). Emits `Closed` if not already.
    pub fn transport_closed(&mut self, now: Instant) {
        forward!(self, s => s.transport_closed(now));
    }
}
