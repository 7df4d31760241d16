//! One trait over [`ClientStream`] and [`ServerStream`], so each driver's I/O loop is written
//! once for both roles.

use minidom::Element;
use xmpp_stream::{
    ChannelBinding, ClientStream, Instant, Output, ProtocolError, ServerStream, SessionFlags,
    Transport, UsageError,
};

/// What a driver needs from a stream machine. Implemented for both roles.
pub trait Machine {
    /// Begin the stream on `transport`.
    fn start(&mut self, now: Instant, transport: Transport) -> Result<(), UsageError>;
    /// Peer bytes.
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError>;
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The TLS handshake the machine asked for is done.
    fn tls_established(
        &mut self,
        now: Instant,
        bindings: Vec<ChannelBinding>,
    ) -> Result<(), UsageError>;
    /// The transport ended.
    fn transport_closed(&mut self, now: Instant);
    /// Send a stanza.
    fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError>;
    /// Start the closing handshake.
    fn close(&mut self, now: Instant) -> Result<(), UsageError>;
    /// The next output.
    fn poll_output(&mut self) -> Option<Output>;
    /// When to call `handle_timeout` next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Secure / Authenticated / Bound.
    fn flags(&self) -> SessionFlags;
    /// Whether the stream is over.
    fn is_closed(&self) -> bool;
}

macro_rules! forward {
    ($ty:ty) => {
        impl Machine for $ty {
            fn start(&mut self, now: Instant, transport: Transport) -> Result<(), UsageError> {
                <$ty>::start(self, now, transport)
            }
            fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ProtocolError> {
                <$ty>::handle_input(self, now, bytes)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now);
            }
            fn tls_established(
                &mut self,
                now: Instant,
                bindings: Vec<ChannelBinding>,
            ) -> Result<(), UsageError> {
                <$ty>::tls_established(self, now, bindings)
            }
            fn transport_closed(&mut self, now: Instant) {
                <$ty>::transport_closed(self, now);
            }
            fn send_stanza(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
                <$ty>::send_stanza(self, now, stanza)
            }
            fn close(&mut self, now: Instant) -> Result<(), UsageError> {
                <$ty>::close(self, now)
            }
            fn poll_output(&mut self) -> Option<Output> {
                <$ty>::poll_output(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
            fn flags(&self) -> SessionFlags {
                <$ty>::flags(self)
            }
            fn is_closed(&self) -> bool {
                <$ty>::is_closed(self)
            }
        }
    };
}

forward!(ClientStream);
forward!(ServerStream);
