//! What the machines hand the host: one ordered queue of [`Output`]s.

use minidom::Element;
use xmpp_xml::{StanzaError, StreamError};

use xmpp_jid::{BareJid, FullJid};
use xmpp_sasl::{ChannelBinding, Mechanism};

use crate::error::ProtocolError;
use crate::features::FeatureKind;
use crate::timers::Timer;

/// One item of the single ordered output queue. Handle items in order: a `Transmit` queued
/// before a `StartTls` must reach the wire before the TLS handshake begins.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Write these bytes to the transport.
    Transmit(Vec<u8>),
    /// Run the TLS handshake on the transport now, then call `tls_established`. No bytes are
    /// transmitted until then.
    StartTls,
    /// Something the host may want to know.
    Event(Event),
}

/// Events reported through [`Output::Event`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The peer's stream header arrived (once per stream, so again after each restart).
    StreamOpened {
        /// The stream id (the server's, as seen by the client; our own on the server).
        id: Option<String>,
        /// The peer's `from`, if given.
        from: Option<String>,
        /// The peer's `xml:lang`, if given.
        lang: Option<String>,
    },
    /// TLS is up and the stream restarted over it.
    Secured,
    /// A SASL exchange ended in `<failure/>` (client only; reported for every attempt, the
    /// last one included, before the final `Closed`).
    SaslAttemptFailed {
        /// The mechanism that was tried.
        mechanism: Mechanism,
        /// The `<failure/>` child's name (`invalid-mechanism`, `not-authorized`, ...).
        condition: String,
        /// The optional human-readable text.
        text: Option<String>,
        /// The mechanism the client tries next, or `None` when it gives up (the condition
        /// means the credentials are wrong, the attempt limit is reached, or nothing else
        /// acceptable was offered) and `Closed { AuthenticationFailed }` follows.
        next: Option<Mechanism>,
    },
    /// SASL succeeded.
    Authenticated {
        /// The authenticated account.
        jid: BareJid,
        /// The mechanism that succeeded.
        mechanism: Mechanism,
    },
    /// Negotiation is complete: stanzas may flow.
    Negotiated {
        /// The bound full JID.
        jid: FullJid,
        /// Features the peer listed alongside the last negotiated one that this machine does
        /// not negotiate itself (stream management, CSI, roster versioning, ...), for the host.
        extra_features: Vec<Element>,
    },
    /// An external component's handshake succeeded (XEP-0114; both ends): stanzas may flow.
    /// A c2s stream reports [`Event::Negotiated`] instead.
    ComponentNegotiated {
        /// The component's domain.
        domain: BareJid,
    },
    /// A stanza (`message`, `presence`, `iq`) arrived on a negotiated stream.
    Stanza(Element),
    /// A top-level element that is not a stanza arrived after negotiation (for example an
    /// XEP-0198 `<r/>`): the host may handle it or ignore it.
    Nonza(Element),
    /// The peer redirected us (`see-other-host`); `Closed` follows.
    Redirect {
        /// The host (and optional port) to connect to instead.
        host: String,
    },
    /// The stream is over; nothing more will be output except this event.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a stream ended.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Both sides sent `</stream:stream>`.
    Graceful,
    /// The peer closed without waiting for our close, or the transport ended.
    TransportClosed,
    /// A deadline passed (negotiation or closing handshake).
    Timeout(Timer),
    /// The peer broke the protocol; we sent the stream error it carries.
    ProtocolError(ProtocolError),
    /// The peer sent this stream error.
    StreamError(StreamError),
    /// The server refused STARTTLS (`<failure/>`), or the client would need TLS and the
    /// server does not offer it.
    TlsFailed,
    /// SASL failed: the RFC 6120 §6.5 condition's wire name and the optional text.
    AuthenticationFailed {
        /// The `<failure/>` child's name (`not-authorized`, ...).
        condition: String,
        /// The optional human-readable text.
        text: Option<String>,
    },
    /// No acceptable SASL mechanism (client) or too many failed attempts (server).
    NoMechanism,
    /// Resource binding (or legacy session establishment) was refused.
    BindFailed(StanzaError),
    /// The server's `<success/>` did not prove it knows our credentials (SCRAM server
    /// signature mismatch): possibly an impostor.
    ServerNotVerified,
    /// The peer did not offer a feature this side requires (for example no `<bind/>` after
    /// authentication).
    FeatureMissing(FeatureKind),
    /// The host asked to close.
    Requested,
}

/// The transport a stream starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// Plain TCP (STARTTLS may follow).
    Plain,
    /// Already inside TLS (XEP-0368 direct TLS): STARTTLS is skipped. Carries whatever
    /// channel-binding data the host's TLS library provides (possibly none).
    Tls(Vec<ChannelBinding>),
}
