//! Why an element is not a valid stanza, and the stanza error each reason is answered with
//! (RFC 6120 §8.3.3); the `<error/>` child of a stanza of type `error` (RFC 6120 §8.3.2).

use core::fmt;

use minidom::Element;
use xmpp_xml::{ErrorElementError, StanzaError, StanzaErrorCondition};

/// Why an element is not a valid stanza. Each maps to the stanza error to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StanzaParseError {
    /// The element is not the expected stanza (wrong name or namespace).
    NotAStanza,
    /// A `to` or `from` attribute is not a valid JID (RFC 6120 §8.3.3.8: `jid-malformed`).
    MalformedJid(&'static str),
    /// The `type` attribute has an unknown value.
    BadType,
    /// An iq without an `id` (RFC 6120 §8.2.3).
    MissingId,
    /// An iq without a `type`.
    MissingType,
    /// An iq get or set without exactly one payload child, or a result with more than one
    /// (RFC 6120 §8.2.3).
    PayloadCount,
    /// A `<show/>` with an unknown value (RFC 6121 §4.7.2.1).
    BadShow,
    /// A `<priority/>` that is not an integer in -128..=127 (RFC 6121 §4.7.2.3).
    BadPriority,
    /// More than one child that may appear once (`show`, `priority`, `thread`), or two
    /// `body`/`subject`/`status` children with the same language (RFC 6121 §5.2.3).
    Duplicate(&'static str),
    /// A stanza of type `error` without a valid `<error/>` child.
    BadError(ErrorElementError),
}

impl StanzaParseError {
    /// The stanza error condition the recipient answers with (RFC 6120 §8.3.3).
    #[must_use]
    pub const fn condition(&self) -> StanzaErrorCondition {
        match self {
            Self::MalformedJid(_) => StanzaErrorCondition::JidMalformed,
            _ => StanzaErrorCondition::BadRequest,
        }
    }

    /// The stanza error to answer with.
    #[must_use]
    pub fn to_stanza_error(&self) -> StanzaError {
        StanzaError::new(self.condition())
    }
}

impl fmt::Display for StanzaParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAStanza => f.write_str("not the expected stanza"),
            Self::MalformedJid(attr) => write!(f, "malformed JID in '{attr}'"),
            Self::BadType => f.write_str("unknown stanza type"),
            Self::MissingId => f.write_str("iq without an id"),
            Self::MissingType => f.write_str("iq without a type"),
            Self::PayloadCount => f.write_str("iq with the wrong number of payloads"),
            Self::BadShow => f.write_str("unknown show value"),
            Self::BadPriority => f.write_str("priority is not an integer in -128..=127"),
            Self::Duplicate(what) => write!(f, "duplicate {what}"),
            Self::BadError(e) => write!(f, "bad error element: {e}"),
        }
    }
}

impl core::error::Error for StanzaParseError {}

pub(super) fn parse_error_child(el: &Element, ns: &str) -> Result<StanzaError, StanzaParseError> {
    el.get_child("error", ns)
        .ok_or(StanzaParseError::BadError(
            ErrorElementError::NotAnErrorElement,
        ))
        .and_then(|e| StanzaError::from_element(e).map_err(StanzaParseError::BadError))
}

#[cfg(test)]
mod tests {
    use xmpp_xml::StanzaErrorCondition;

    use crate::stanza::{Message, Presence, StanzaParseError, parse};

    #[test]
    fn error_stanzas_need_an_error_child() {
        let ok = parse(
            "<message xmlns='jabber:client' type='error' id='x'><body>hi</body>\
             <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        );
        let m = Message::try_from(&ok).unwrap();
        assert_eq!(
            m.error.as_ref().unwrap().condition,
            StanzaErrorCondition::ServiceUnavailable
        );
        assert_eq!(Message::try_from(&m.to_element()).unwrap(), m);
        let bad = parse("<presence xmlns='jabber:client' type='error'/>");
        assert!(matches!(
            Presence::try_from(&bad),
            Err(StanzaParseError::BadError(_))
        ));
    }
}
