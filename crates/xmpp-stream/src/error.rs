//! The two error kinds: the peer broke the protocol ([`ProtocolError`], fatal and sticky), or
//! the host misused the API ([`UsageError`], returned, nothing changed).

use core::fmt;

use xmpp_xml::{StreamError, StreamErrorCondition};

/// The peer violated the protocol. The machine has queued the matching stream error and its
/// `</stream:stream>` for transmission and will emit `Closed`; every later input returns this
/// same error.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolError {
    error: Box<StreamError>,
    detail: &'static str,
}

impl ProtocolError {
    pub(crate) fn new(condition: StreamErrorCondition, detail: &'static str) -> Self {
        ProtocolError {
            error: Box::new(StreamError::new(condition)),
            detail,
        }
    }

    pub(crate) fn from_stream_error(error: StreamError, detail: &'static str) -> Self {
        ProtocolError {
            error: Box::new(error),
            detail,
        }
    }

    /// The RFC 6120 condition sent to the peer.
    pub fn condition(&self) -> StreamErrorCondition {
        self.error.condition
    }

    /// The whole stream error sent to the peer.
    pub fn stream_error(&self) -> &StreamError {
        &self.error
    }

    /// What exactly went wrong, for logs (never sent on the wire).
    pub fn detail(&self) -> &'static str {
        self.detail
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peer protocol violation ({}): {}",
            self.error.condition, self.detail
        )
    }
}

impl core::error::Error for ProtocolError {}

/// The host called a method at the wrong time or with a bad argument. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// `start` was already called.
    AlreadyStarted,
    /// The method needs `start` first.
    NotStarted,
    /// The stream is closing or closed.
    Closed,
    /// `tls_established` without a preceding [`crate::Output::StartTls`].
    NotExpectingTls,
    /// Stanzas need a negotiated stream (and the pre-negotiation queue is full or disabled).
    NotNegotiated,
    /// The element is not a stanza this stream can send: the reason says why.
    InvalidStanza(&'static str),
    /// The configuration is inconsistent: the reason says why.
    InvalidConfig(&'static str),
    /// XEP-0198: the queue of unacknowledged stanzas is full
    /// ([`UnackedOverflow::Refuse`](crate::UnackedOverflow::Refuse)): send again once
    /// acknowledgements arrived.
    Backpressure,
    /// XEP-0077: `registration_done` without an outstanding
    /// [`Event::RegistrationRequested`](crate::Event::RegistrationRequested).
    NoRegistrationPending,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::AlreadyStarted => f.write_str("the stream was already started"),
            UsageError::NotStarted => f.write_str("the stream was not started"),
            UsageError::Closed => f.write_str("the stream is closing or closed"),
            UsageError::NotExpectingTls => f.write_str("no TLS handshake was requested"),
            UsageError::NotNegotiated => f.write_str("the stream is not negotiated yet"),
            UsageError::InvalidStanza(why) => write!(f, "invalid stanza: {why}"),
            UsageError::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            UsageError::Backpressure => f.write_str("the unacknowledged-stanza queue is full"),
            UsageError::NoRegistrationPending => f.write_str("no registration is pending"),
        }
    }
}

impl core::error::Error for UsageError {}
