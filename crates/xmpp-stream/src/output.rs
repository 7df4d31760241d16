//! What the machines hand the host: one ordered queue of [`Output`]s.

use minidom::Element;
use xmpp_xml::{StanzaError, StreamError};

use core::fmt;
use core::str::FromStr;

use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_sasl::{ChannelBinding, Condition, Mechanism};

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
        /// The peer's `from`, if given and a valid JID (a receiving entity refuses an invalid
        /// one with `invalid-from`).
        from: Option<Jid>,
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
        /// The `<failure/>` condition (one this crate does not know reads as `not-authorized`,
        /// RFC 6120 §6.5's catch-all).
        condition: Condition,
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
    /// A server-to-server stream authenticated a domain pair (RFC 6120 §13; both ends): stanzas
    /// from `remote` to `local` (receiving end) or from `local` to `remote` (initiating end)
    /// may flow. Reported once per pair: a connection may carry several (XEP-0220
    /// piggybacking).
    ServerAuthenticated {
        /// Our domain of the pair.
        local: BareJid,
        /// The peer's domain of the pair.
        remote: BareJid,
        /// How the peer's domain was proven.
        method: S2sAuthMethod,
    },
    /// The peer refused a domain pair this initiating stream asked for after it was
    /// established (a piggybacked `<db:result/>` answered `invalid` or with an error); the
    /// stream and its other pairs go on.
    ServerRefused {
        /// Our domain of the pair.
        local: BareJid,
        /// The peer's domain.
        remote: BareJid,
    },
    /// The receiving end of a server-to-server stream needs the dialback key the peer sent
    /// verified by the authoritative server of `originating` (XEP-0220 §2.1.2): the host opens
    /// (or reuses) a connection to it, sends `<db:verify/>`, and reports the answer with
    /// `dialback_verified`. Unanswered by the dialback deadline, the request fails with
    /// `remote-server-timeout`.
    DialbackVerify {
        /// The domain the peer claims (the Sender Domain).
        originating: BareJid,
        /// Our domain it wants to talk to (the Target Domain).
        receiving: BareJid,
        /// The id of the stream the key was sent on (ours).
        stream_id: crate::dialback::StreamId,
        /// The key to verify.
        key: crate::dialback::DialbackKey,
    },
    /// XEP-0077, server: the client, not yet authenticated, asks for an account (the
    /// username already checked as a localpart, the password non-empty). The host creates it
    /// (durably: SCRAM keys, not the password) unless it exists, then answers with
    /// [`ServerStream::registration_done`](crate::ServerStream::registration_done); the client
    /// waits for the IQ answer meanwhile and may authenticate as the account at once after
    /// it. Only one is outstanding per stream.
    RegistrationRequested(Box<crate::register::Registration>),
    /// XEP-0077, client: the server created our account ([`ClientConfig::register`](crate::ClientConfig::register));
    /// SASL follows.
    Registered {
        /// The account.
        jid: BareJid,
    },
    /// A stanza (`message`, `presence`, `iq`) arrived on a negotiated stream.
    Stanza(Element),
    /// A stanza arrived on a negotiated stream whose host opted into envelopes
    /// ([`ServerConfig::envelopes`](crate::ServerConfig::envelopes),
    /// [`ComponentServerConfig::envelopes`](crate::ComponentServerConfig::envelopes),
    /// [`S2sConfig::envelopes`](crate::S2sConfig::envelopes)): its validated bytes
    /// and decoded header, no element built ([`Envelope::element`](xmpp_xml::Envelope::element)
    /// builds it on demand). The stream ran the same checks as for [`Event::Stanza`]; on a c2s
    /// server stream (`from` absent, the client's full JID or its bare JID, else
    /// `invalid-from`; a malformed `to` answered `jid-malformed` and not reported) the bytes
    /// are not rewritten: the envelope's `from` is as the client sent it, and the host stamps
    /// the stream's full JID ([`ServerStream::jid`](crate::ServerStream::jid)) when it
    /// forwards the stanza ([`ServerStream::send_envelope`](crate::ServerStream::send_envelope)).
    /// From a component or a peer server, `from` and `to` are present and checked, and
    /// `from` is what [`Event::Stanza`] would carry (a component's `from` that needs
    /// normalizing comes as [`Event::Stanza`]).
    /// Counted by XEP-0198 exactly as an [`Event::Stanza`] (when the host takes it). Shared
    /// (an envelope is over 200 bytes, which every queued output would otherwise carry): the
    /// host hands the same allocation to `xmpp-im`, whose forwards to every recipient share
    /// it, with no copy.
    StanzaEnvelope(std::sync::Arc<xmpp_xml::Envelope>),
    /// XEP-0198 stream management: enabled, refused, resumed, a resumption request or
    /// failure, a stanza dropped from the bounded queue.
    Sm(crate::sm::SmEvent),
    /// A top-level element that is not a stanza arrived after negotiation (for example an
    /// XEP-0198 `<r/>`): the host may handle it or ignore it.
    Nonza(Element),
    /// The peer redirected us (`see-other-host`, RFC 6120 §4.9.3.19); `Closed` follows. Not
    /// emitted when the element's text is no host or `host:port`.
    Redirect {
        /// Where to connect instead.
        to: HostPort,
    },
    /// On a WebSocket stream (RFC 7395 §3.6.1) the peer's `<close/>` named another endpoint
    /// to connect to (`see-other-uri`, possibly another transport such as BOSH); `Closed`
    /// follows. The host must not follow it to a lower security context (`wss:` to `ws:`).
    SeeOtherUri {
        /// The endpoint, as sent.
        uri: String,
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
    /// SASL failed: the RFC 6120 §6.5 condition and the optional text.
    AuthenticationFailed {
        /// The `<failure/>` condition.
        condition: Condition,
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
    /// Server-to-server: the peer refused to authenticate our domain (SASL EXTERNAL failed
    /// and no dialback was possible, or dialback answered `invalid` or an error).
    ServerNotAuthenticated,
    /// XEP-0077: the server refused to register our account (`conflict`: it exists;
    /// `not-acceptable`: the username or password is refused; ...).
    RegistrationFailed(Box<StanzaError>),
}

/// How a server-to-server domain pair was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum S2sAuthMethod {
    /// SASL EXTERNAL over the TLS certificate (RFC 6120 §13.8, RFC 6125 identity check).
    SaslExternal,
    /// Server Dialback (XEP-0220).
    Dialback,
}

impl fmt::Display for S2sAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            S2sAuthMethod::SaslExternal => "EXTERNAL",
            S2sAuthMethod::Dialback => "dialback",
        })
    }
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

/// A host and an optional port: where a `see-other-host` stream error points (RFC 6120
/// §4.9.3.19: a domain name or IP address, IPv6 in brackets, optionally `:port`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The domain name or IP address (IPv6 without brackets).
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
}

/// Why a text is not a [`HostPort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidHostPort;

impl fmt::Display for InvalidHostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a host or host:port")
    }
}

impl core::error::Error for InvalidHostPort {}

/// Longest host kept (a DNS name is at most 253 octets; RFC 7622 allows 1023 for a domainpart).
const MAX_HOST: usize = 1023;

impl FromStr for HostPort {
    type Err = InvalidHostPort;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let port = |digits: &str| -> Result<u16, InvalidHostPort> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidHostPort);
            }
            digits.parse().map_err(|_| InvalidHostPort)
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or(InvalidHostPort)?;
            if host.parse::<core::net::Ipv6Addr>().is_err() {
                return Err(InvalidHostPort);
            }
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(port(after.strip_prefix(':').ok_or(InvalidHostPort)?)?),
                ),
            }
        } else {
            match text.rsplit_once(':') {
                // A bare IPv6 address has several colons and no port.
                Some(_) if text.parse::<core::net::Ipv6Addr>().is_ok() => (text, None),
                Some((host, digits)) => (host, Some(port(digits)?)),
                None => (text, None),
            }
        };
        let valid = !host.is_empty()
            && host.len() <= MAX_HOST
            && !host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '[' | ']'));
        if !valid {
            return Err(InvalidHostPort);
        }
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let parse = |s: &str| s.parse::<HostPort>();
        let hp = |host: &str, port| HostPort {
            host: host.to_owned(),
            port,
        };
        assert_eq!(parse("example.net"), Ok(hp("example.net", None)));
        assert_eq!(parse("example.net:5222"), Ok(hp("example.net", Some(5222))));
        assert_eq!(
            parse("[2001:db8::1]:5222"),
            Ok(hp("2001:db8::1", Some(5222)))
        );
        assert_eq!(parse("[2001:db8::1]"), Ok(hp("2001:db8::1", None)));
        assert_eq!(parse("2001:db8::1"), Ok(hp("2001:db8::1", None)));
        assert_eq!(parse("192.0.2.1:5269"), Ok(hp("192.0.2.1", Some(5269))));
        for bad in [
            "",
            "example.net:",
            "example.net:99999",
            "example.net:+1",
            "[nope]:1",
            "a b",
            "[::1]x",
        ] {
            assert_eq!(parse(bad), Err(InvalidHostPort), "{bad:?}");
        }
        assert_eq!(
            hp("2001:db8::1", Some(5222)).to_string(),
            "[2001:db8::1]:5222"
        );
        assert_eq!(hp("example.net", None).to_string(), "example.net");
    }
}
