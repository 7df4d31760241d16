//! A stanza leaving the served domains, for a component or a peer server: the element the
//! IM machine or a peer handed over, or the bytes of a stanza that arrived as an envelope
//! with the addresses to stamp (issue 17: relayed without an element). Both take the same
//! routes, queues and bounces; only the last step, onto a stream, differs.

use std::borrow::Cow;
use std::sync::Arc;

use minidom::Element;
use xmpp_jid::{BareJid, Jid};
use xmpp_stream::{AnyStream, Instant, UsageError};

/// A stanza to route out (see the module documentation).
#[derive(Debug, Clone)]
pub(super) enum Routed {
    /// An element ([`xmpp_im::Output::Route`], a peer's stanza on the element path, an
    /// error reply).
    Element(Element),
    /// An envelope's bytes with `from` and `to` to stamp ([`xmpp_im::Output::Relay`]).
    Relay(xmpp_im::Relay),
}

impl Routed {
    /// A stanza that arrived as an envelope from `from` for `to`, as written by the peer
    /// that sent it; `None` when either is not a JID (the stream checked both: never).
    pub(super) fn relay(envelope: Arc<xmpp_stream::Envelope>) -> Option<Routed> {
        let from = Jid::new(envelope.from()?).ok()?;
        let to = Jid::new(envelope.to()?).ok()?;
        Some(Routed::Relay(xmpp_im::Relay { envelope, from, to }))
    }

    /// Its `to`.
    pub(super) fn to(&self) -> Option<&str> {
        match self {
            Routed::Element(element) => element.attr("to"),
            Routed::Relay(relay) => Some(relay.to.as_str()),
        }
    }

    /// Its `from`.
    pub(super) fn from(&self) -> Option<&str> {
        match self {
            Routed::Element(element) => element.attr("from"),
            Routed::Relay(relay) => Some(relay.from.as_str()),
        }
    }

    /// Whether it is a presence (dropped, not bounced, where no route exists).
    pub(super) fn is_presence(&self) -> bool {
        match self {
            Routed::Element(element) => element.name() == "presence",
            Routed::Relay(relay) => relay.envelope.kind() == xmpp_stream::StanzaKind::Presence,
        }
    }

    /// The domain of its `to` or `from` address, as a domain-only JID.
    pub(super) fn domain_of(&self, to: bool) -> Option<BareJid> {
        let address = if to { self.to() } else { self.from() };
        let jid = Jid::new(address?).ok()?;
        BareJid::from_parts(None, jid.domain()).ok()
    }

    /// The element: for an error reply, or a stream that takes elements only (a recorded
    /// session). Built from the bytes for a relay (`None` if they do not rebuild: never for
    /// a validated envelope).
    pub(super) fn element(&self) -> Option<Cow<'_, Element>> {
        match self {
            Routed::Element(element) => Some(Cow::Borrowed(element)),
            Routed::Relay(relay) => relay.to_element().ok().map(Cow::Owned),
        }
    }

    /// Send it on `stream`: the element, or the bytes with the stamp spliced in
    /// ([`AnyStream::send_envelope`], in the stream's own namespace).
    pub(super) fn send(&self, stream: &mut AnyStream, now: Instant) -> Result<(), UsageError> {
        match self {
            Routed::Element(element) => stream.send_stanza(now, element),
            Routed::Relay(relay) => stream.send_envelope(
                now,
                &relay.envelope,
                Some(relay.from.as_str()),
                Some(relay.to.as_str()),
            ),
        }
    }
}
