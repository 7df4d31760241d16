//! The `<iq/>` stanza (RFC 6120 §8.2.3): a get or set with exactly one payload, a result
//! with at most one, an error with its `<error/>`; replies keep the id and swap addresses.

use minidom::Element;
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use super::header::{Header, nc};
use super::parse_error::{StanzaParseError, parse_error_child};

vocabulary! {
    /// An iq `type` (RFC 6120 §8.2.3).
    IqType, "iq type" {
        /// A request for information.
        Get = "get",
        /// A request to change something.
        Set = "set",
        /// A successful response.
        Result = "result",
        /// An error response.
        Error = "error",
    }
}

/// The type-specific content of an iq (RFC 6120 §8.2.3).
#[derive(Debug, Clone, PartialEq)]
// Iqs are transient values, never stored in bulk: boxing the error buys nothing.
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
pub enum IqPayload {
    /// A `get` with its one payload.
    Get(Element),
    /// A `set` with its one payload.
    Set(Element),
    /// A `result` with at most one payload.
    Result(Option<Element>),
    /// An `error` with the error and, optionally, the original payload.
    Error {
        /// The error.
        error: StanzaError,
        /// The request payload, if echoed back.
        payload: Option<Element>,
    },
}

/// An `<iq/>` stanza (RFC 6120 §8.2.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Iq {
    /// Addressing; `header.id` is always `Some` for a parsed iq.
    pub header: Header,
    /// The type and its content.
    pub payload: IqPayload,
}

impl Iq {
    /// A `get` request.
    #[must_use]
    pub fn get(id: impl Into<String>, payload: Element) -> Self {
        Self::request(id.into(), IqPayload::Get(payload))
    }

    /// A `set` request.
    #[must_use]
    pub fn set(id: impl Into<String>, payload: Element) -> Self {
        Self::request(id.into(), IqPayload::Set(payload))
    }

    fn request(id: String, payload: IqPayload) -> Self {
        Self {
            header: Header {
                id: Some(id),
                ..Header::default()
            },
            payload,
        }
    }

    /// The iq's type.
    #[must_use]
    pub fn iq_type(&self) -> IqType {
        match self.payload {
            IqPayload::Get(_) => IqType::Get,
            IqPayload::Set(_) => IqType::Set,
            IqPayload::Result(_) => IqType::Result,
            IqPayload::Error { .. } => IqType::Error,
        }
    }

    /// The id (empty only for an iq built by hand without one).
    #[must_use]
    pub fn id(&self) -> &str {
        self.header.id.as_deref().unwrap_or("")
    }

    /// The request payload of a get or set.
    #[must_use]
    pub fn request_payload(&self) -> Option<&Element> {
        match &self.payload {
            IqPayload::Get(p) | IqPayload::Set(p) => Some(p),
            _ => None,
        }
    }

    /// The `result` reply to this request.
    #[must_use]
    pub fn result(&self, payload: Option<Element>) -> Self {
        Self {
            header: self.header.reply(),
            payload: IqPayload::Result(payload),
        }
    }

    /// The `error` reply to this request.
    #[must_use]
    pub fn error(&self, error: StanzaError) -> Self {
        Self {
            header: self.header.reply(),
            payload: IqPayload::Error {
                error,
                payload: None,
            },
        }
    }

    /// The reply an entity owes to a get or set whose payload it does not understand
    /// (RFC 6120 §8.2.3 / §8.4: `service-unavailable`); `None` for results and errors, which
    /// are never answered.
    #[must_use]
    pub fn unsupported_reply(&self) -> Option<Self> {
        self.request_payload()
            .map(|_| self.error(StanzaError::new(StanzaErrorCondition::ServiceUnavailable)))
    }

    /// Builds the element.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let ns = self.header.namespace();
        let b = self
            .header
            .builder("iq")
            .attr(nc("type"), self.iq_type().as_str());
        match &self.payload {
            IqPayload::Get(p) | IqPayload::Set(p) => b.append(p.clone()),
            IqPayload::Result(p) => b.append_all(p.iter().cloned()),
            IqPayload::Error { error, payload } => b
                .append_all(payload.iter().cloned())
                .append(error.to_element(ns)),
        }
        .build()
    }
}

/// What an iq holds besides its header, with its payload as a position among the child
/// elements (taken by reference or moved out, by the caller).
enum Shape {
    Get(usize),
    Set(usize),
    Result(Option<usize>),
    Error(StanzaError, Option<usize>),
}

impl Iq {
    /// Validates `el` (RFC 6120 §8.2.3) and says where its payload is.
    fn read(el: &Element) -> Result<(Header, Shape), StanzaParseError> {
        let header = Header::parse(el, "iq")?;
        let ns = header.namespace();
        if header.id.is_none() {
            return Err(StanzaParseError::MissingId);
        }
        let iq_type: IqType = el
            .attr("type")
            .ok_or(StanzaParseError::MissingType)?
            .parse()
            .map_err(|_| StanzaParseError::BadType)?;
        let count = el.children().take(2).count();
        let shape = match iq_type {
            IqType::Get | IqType::Set if count != 1 => {
                return Err(StanzaParseError::PayloadCount);
            }
            IqType::Get => Shape::Get(0),
            IqType::Set => Shape::Set(0),
            IqType::Result if count > 1 => return Err(StanzaParseError::PayloadCount),
            IqType::Result => Shape::Result((count == 1).then_some(0)),
            IqType::Error => Shape::Error(
                parse_error_child(el, ns)?,
                el.children().position(|c| !c.is("error", ns)),
            ),
        };
        Ok((header, shape))
    }

    /// The iq of `header` and `shape`, its payload from `take`.
    fn with_payload(
        header: Header,
        shape: Shape,
        mut take: impl FnMut(usize) -> Option<Element>,
    ) -> Result<Self, StanzaParseError> {
        let payload = match shape {
            Shape::Get(i) => IqPayload::Get(take(i).ok_or(StanzaParseError::PayloadCount)?),
            Shape::Set(i) => IqPayload::Set(take(i).ok_or(StanzaParseError::PayloadCount)?),
            Shape::Result(i) => IqPayload::Result(i.and_then(&mut take)),
            Shape::Error(error, i) => IqPayload::Error {
                error,
                payload: i.and_then(take),
            },
        };
        Ok(Iq { header, payload })
    }

    /// [`to_element`](Self::to_element), moving the payload in (no copy of it).
    #[must_use]
    pub fn into_element(self) -> Element {
        let ns = self.header.namespace();
        let b = self
            .header
            .builder("iq")
            .attr(nc("type"), self.iq_type().as_str());
        match self.payload {
            IqPayload::Get(p) | IqPayload::Set(p) => b.append(p),
            IqPayload::Result(p) => b.append_all(p),
            IqPayload::Error { error, payload } => {
                b.append_all(payload).append(error.to_element(ns))
            }
        }
        .build()
    }
}

impl TryFrom<&Element> for Iq {
    type Error = StanzaParseError;

    fn try_from(el: &Element) -> Result<Self, StanzaParseError> {
        let (header, shape) = Self::read(el)?;
        Self::with_payload(header, shape, |i| el.children().nth(i).cloned())
    }
}

/// Parses the element it owns: the payload is moved out of it, not copied.
impl TryFrom<Element> for Iq {
    type Error = StanzaParseError;

    fn try_from(el: Element) -> Result<Self, StanzaParseError> {
        let (header, shape) = Self::read(&el)?;
        let at = match &shape {
            Shape::Get(i) | Shape::Set(i) => Some(*i),
            Shape::Result(i) | Shape::Error(_, i) => *i,
        };
        let mut taken = super::children_at(el, at.as_slice()).into_iter();
        Self::with_payload(header, shape, |_| taken.next())
    }
}

#[cfg(test)]
mod tests {
    use xmpp_xml::StanzaErrorCondition;

    use crate::stanza::{Iq, IqPayload, IqType, StanzaParseError, parse};

    #[test]
    fn iq_rules_of_rfc_6120_8_2_3() {
        let get = parse(
            "<iq xmlns='jabber:client' id='r1' type='get'><query xmlns='jabber:iq:roster'/></iq>",
        );
        let iq = Iq::try_from(&get).unwrap();
        assert_eq!(iq.iq_type(), IqType::Get);
        assert_eq!(iq.to_element(), get);
        for (bad, expected) in [
            (
                "<iq xmlns='jabber:client' type='get'><q xmlns='x'/></iq>",
                StanzaParseError::MissingId,
            ),
            (
                "<iq xmlns='jabber:client' id='1'><q xmlns='x'/></iq>",
                StanzaParseError::MissingType,
            ),
            (
                "<iq xmlns='jabber:client' id='1' type='get'/>",
                StanzaParseError::PayloadCount,
            ),
            (
                "<iq xmlns='jabber:client' id='1' type='set'><a xmlns='x'/><b xmlns='x'/></iq>",
                StanzaParseError::PayloadCount,
            ),
            (
                "<iq xmlns='jabber:client' id='1' type='result'><a xmlns='x'/><b xmlns='x'/></iq>",
                StanzaParseError::PayloadCount,
            ),
            (
                "<iq xmlns='jabber:client' id='1' type='fetch'><q xmlns='x'/></iq>",
                StanzaParseError::BadType,
            ),
        ] {
            assert_eq!(Iq::try_from(&parse(bad)), Err(expected), "{bad}");
        }
        let reply = iq.unsupported_reply().unwrap().to_element();
        assert_eq!(reply.attr("type"), Some("error"));
        assert_eq!(reply.attr("id"), Some("r1"));
        let back = Iq::try_from(&reply).unwrap();
        let IqPayload::Error { error, .. } = &back.payload else {
            panic!("not an error")
        };
        assert_eq!(error.condition, StanzaErrorCondition::ServiceUnavailable);
        assert!(
            back.unsupported_reply().is_none(),
            "errors are never answered"
        );
    }
}
