//! The methods every public stream type shares, written once: a macro that forwards them to
//! the [`Machine`](crate::machine::Machine) inside, with their documentation.

/// Implements the shared surface (outputs, commands, inputs and the common getters) of a
/// stream type whose `machine` field is a [`Machine`](crate::machine::Machine).
macro_rules! stream_surface {
    ($ty:ty) => {
        impl $ty {
            /// The session flags (Secure, Authenticated, Bound).
            pub fn flags(&self) -> $crate::SessionFlags {
                self.machine.core.flags
            }

            /// Whether stanzas may flow.
            pub fn is_negotiated(&self) -> bool {
                self.machine.is_negotiated()
            }

            /// Whether `Closed` has been emitted.
            pub fn is_closed(&self) -> bool {
                self.machine.is_closed()
            }

            /// The current stream's id (the receiving entity's, as both ends see it).
            pub fn stream_id(&self) -> Option<&str> {
                self.machine.stream_id.as_deref()
            }

            /// The stream kind and this end's role.
            pub fn kind(&self) -> ($crate::StreamKind, $crate::Role) {
                (self.machine.kind, self.machine.role)
            }

            /// The next output, in order. On a receiving entity's negotiated stream this is
            /// also where buffered input is processed, one stanza at a time (see
            /// `handle_input`).
            pub fn poll_output(&mut self) -> Option<$crate::Output> {
                self.machine.poll_output()
            }

            /// When [`handle_timeout`](Self::handle_timeout) should next be called.
            pub fn poll_timeout(&self) -> Option<$crate::Instant> {
                self.machine.core.poll_timeout()
            }

            /// Open the stream on `transport` ([`Transport::Tls`](crate::Transport::Tls) for
            /// XEP-0368 direct TLS: STARTTLS is skipped) and arm the negotiation deadline.
            pub fn start(
                &mut self,
                now: $crate::Instant,
                transport: $crate::Transport,
            ) -> Result<(), $crate::UsageError> {
                self.machine.start(now, transport)
            }

            /// Close the stream: send `</stream:stream>` and wait (up to the close timeout)
            /// for the peer's. `Closed { reason: Graceful }` follows.
            pub fn close(&mut self, now: $crate::Instant) -> Result<(), $crate::UsageError> {
                self.machine.close(now)
            }

            /// Close the stream with a stream error the host chose (`system-shutdown`,
            /// `conflict`, `see-other-host`, `policy-violation`...). `Closed { ProtocolError }`
            /// follows.
            pub fn close_with_error(
                &mut self,
                now: $crate::Instant,
                error: $crate::StreamError,
            ) -> Result<(), $crate::UsageError> {
                self.machine.close_with_error(now, error)
            }

            /// One whole WebSocket message from the peer, on a stream switched to RFC 7395
            /// framing (`websocket()`): exactly one complete element, or the stream fails
            /// with the framing error's condition. On a TCP stream, the same as
            /// `handle_input`.
            pub fn handle_message(
                &mut self,
                now: $crate::Instant,
                message: &[u8],
            ) -> Result<(), $crate::ProtocolError> {
                self.machine.handle_message(now, message)
            }

            /// Whether the stream uses RFC 7395 framing (XMPP over WebSocket).
            pub fn is_websocket(&self) -> bool {
                self.machine.core.framed
            }

            /// Time passed: fire due timers (keepalive, negotiation and close deadlines).
            /// Calling it early is harmless.
            pub fn handle_timeout(&mut self, now: $crate::Instant) {
                self.machine.handle_timeout(now);
            }

            /// The TLS handshake the machine asked for with
            /// [`Output::StartTls`](crate::Output::StartTls) finished; `bindings` is the
            /// channel-binding data the TLS library offers (possibly none). The stream
            /// restarts over TLS.
            pub fn tls_established(
                &mut self,
                now: $crate::Instant,
                bindings: Vec<$crate::ChannelBinding>,
            ) -> Result<(), $crate::UsageError> {
                self.machine.tls_established(now, bindings)
            }

            /// The transport closed (EOF or error). Emits `Closed` if not already.
            pub fn transport_closed(&mut self, now: $crate::Instant) {
                self.machine.transport_closed(now);
            }
        }
    };
}

pub(crate) use stream_surface;
