//! Configuration values for both roles. Plain data, built by the host, never read from the
//! environment.

use core::time::Duration;

/// What a side does about STARTTLS (RFC 6120 §5). Direct TLS (XEP-0368) is not a policy but a
/// transport: the host starts the machine with [`crate::Transport::Tls`] and STARTTLS is skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsPolicy {
    /// Server: offer STARTTLS with `<required/>` and refuse to go further without it.
    /// Client: negotiate STARTTLS, and close the stream if the server does not offer it.
    #[default]
    Required,
    /// Server: offer STARTTLS without `<required/>`. Client: use it when offered, go on in
    /// plaintext otherwise.
    Optional,
    /// Never negotiate TLS on this stream (tests, loopback, or TLS terminated elsewhere).
    Disabled,
}

/// Deadlines and intervals, shared by both roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// From `start` until the stream is fully negotiated (bound). `None`: no deadline.
    pub negotiation: Option<Duration>,
    /// How long to wait for the peer's `</stream:stream>` after sending ours.
    pub close: Duration,
    /// Send a single space when nothing was sent for this long after negotiation. `None`: off.
    pub keepalive: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            negotiation: Some(Duration::from_secs(60)),
            close: Duration::from_secs(10),
            keepalive: Some(Duration::from_secs(60)),
        }
    }
}
