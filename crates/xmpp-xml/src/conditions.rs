//! RFC 6120 error vocabulary shared by every layer: stream error conditions (§4.9.3), stanza
//! error types and conditions (§8.3), and the `<stream:error/>` and stanza `<error/>` elements
//! built from them and parsed back.
//!
//! It lives in this leaf crate because the parser maps its own failures to stream error
//! conditions, while `xmpp-stream` and `xmpp-im` both build and parse error elements: one place
//! owns the vocabulary.

use core::fmt;
use core::str::FromStr;

use minidom::Element;
use minidom::rxml::{Namespace, NcName};

/// `http://etherx.jabber.org/streams`: the namespace of `<stream:stream/>`, `<stream:features/>`
/// and `<stream:error/>`.
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// `urn:ietf:params:xml:ns:xmpp-streams`: the namespace of stream error conditions.
pub const NS_XMPP_STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// `urn:ietf:params:xml:ns:xmpp-stanzas`: the namespace of stanza error conditions.
pub const NS_XMPP_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// The error returned when a wire name is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// Which vocabulary was being parsed (e.g. "stream error condition").
    pub vocabulary: &'static str,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {}", self.vocabulary)
    }
}

impl core::error::Error for UnknownName {}

/// Defines a protocol vocabulary enum with its wire names, `ALL`, `Display` and `FromStr`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $vocabulary:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the RFC's order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The name used on the wire.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $wire => Ok($name::$variant), )+
                    _ => Err(UnknownName { vocabulary: $vocabulary }),
                }
            }
        }
    };
}

wire_enum! {
    /// A stream error condition (RFC 6120 §4.9.3). A stream error is unrecoverable: the stream
    /// is closed after it is sent.
    StreamErrorCondition, "stream error condition" {
        /// The entity sent XML that cannot be processed (§4.9.3.1).
        BadFormat = "bad-format",
        /// A namespace prefix is unsupported or missing where one is required (§4.9.3.2).
        BadNamespacePrefix = "bad-namespace-prefix",
        /// A new stream for the same entity replaced this one (§4.9.3.3).
        Conflict = "conflict",
        /// The peer has not generated traffic for too long (§4.9.3.4).
        ConnectionTimeout = "connection-timeout",
        /// The `to` address of the stream is no longer serviced (§4.9.3.5).
        HostGone = "host-gone",
        /// The `to` address of the stream is not serviced (§4.9.3.6).
        HostUnknown = "host-unknown",
        /// A stanza lacks a `to` or `from` address where one is required (§4.9.3.7).
        ImproperAddressing = "improper-addressing",
        /// The server hit an internal error (§4.9.3.8).
        InternalServerError = "internal-server-error",
        /// A `from` address does not match an authorized JID (§4.9.3.9).
        InvalidFrom = "invalid-from",
        /// The stream or content namespace is wrong (§4.9.3.10).
        InvalidNamespace = "invalid-namespace",
        /// The entity sent invalid XML (§4.9.3.11).
        InvalidXml = "invalid-xml",
        /// Data was sent before the stream was authenticated (§4.9.3.12).
        NotAuthorized = "not-authorized",
        /// The data is not well-formed XML (§4.9.3.13).
        NotWellFormed = "not-well-formed",
        /// A local policy was violated, e.g. a size limit (§4.9.3.14).
        PolicyViolation = "policy-violation",
        /// The server could not reach a remote entity needed for authentication (§4.9.3.15).
        RemoteConnectionFailed = "remote-connection-failed",
        /// The stream must be reset, e.g. after a security change (§4.9.3.16).
        Reset = "reset",
        /// The server lacks resources to service the stream (§4.9.3.17).
        ResourceConstraint = "resource-constraint",
        /// The entity used restricted XML: comments, PIs, DTDs, entity references (§4.9.3.18).
        RestrictedXml = "restricted-xml",
        /// The entity should reconnect to another host (§4.9.3.19).
        SeeOtherHost = "see-other-host",
        /// The server is shutting down (§4.9.3.20).
        SystemShutdown = "system-shutdown",
        /// A condition not defined here; an application-specific condition says more (§4.9.3.21).
        UndefinedCondition = "undefined-condition",
        /// The stream uses an encoding other than UTF-8 (§4.9.3.22).
        UnsupportedEncoding = "unsupported-encoding",
        /// A mandatory stream feature is unsupported by the receiver (§4.9.3.23).
        UnsupportedFeature = "unsupported-feature",
        /// A first-level child of the stream is not supported (§4.9.3.24).
        UnsupportedStanzaType = "unsupported-stanza-type",
        /// The stream `version` is not supported (§4.9.3.25).
        UnsupportedVersion = "unsupported-version",
    }
}

wire_enum! {
    /// A stanza error type (RFC 6120 §8.3.2): what the sender should do next.
    StanzaErrorType, "stanza error type" {
        /// Retry after providing credentials.
        Auth = "auth",
        /// Do not retry: the error cannot be remedied.
        Cancel = "cancel",
        /// Proceed: the condition was only a warning.
        Continue = "continue",
        /// Retry after changing the data sent.
        Modify = "modify",
        /// Retry after waiting: the error is temporary.
        Wait = "wait",
    }
}

wire_enum! {
    /// A stanza error condition (RFC 6120 §8.3.3).
    StanzaErrorCondition, "stanza error condition" {
        /// The request is malformed or unrecognized (§8.3.3.1).
        BadRequest = "bad-request",
        /// The resource or session already exists (§8.3.3.2).
        Conflict = "conflict",
        /// The feature is not implemented by the recipient (§8.3.3.3).
        FeatureNotImplemented = "feature-not-implemented",
        /// The requester lacks the permissions (§8.3.3.4).
        Forbidden = "forbidden",
        /// The recipient is no longer at this address; the element may carry a new one (§8.3.3.5).
        Gone = "gone",
        /// The server hit an internal error (§8.3.3.6).
        InternalServerError = "internal-server-error",
        /// The addressed item was not found (§8.3.3.7).
        ItemNotFound = "item-not-found",
        /// A JID in the stanza is malformed (§8.3.3.8).
        JidMalformed = "jid-malformed",
        /// The request does not meet the recipient's criteria (§8.3.3.9).
        NotAcceptable = "not-acceptable",
        /// No entity is allowed to perform the action (§8.3.3.10).
        NotAllowed = "not-allowed",
        /// The sender must authenticate first (§8.3.3.11).
        NotAuthorized = "not-authorized",
        /// A local policy was violated (§8.3.3.12).
        PolicyViolation = "policy-violation",
        /// The intended recipient is temporarily unavailable (§8.3.3.13).
        RecipientUnavailable = "recipient-unavailable",
        /// The request should go to another address; the element carries it (§8.3.3.14).
        Redirect = "redirect",
        /// Registration is required first (§8.3.3.15).
        RegistrationRequired = "registration-required",
        /// The remote server does not exist or cannot be resolved (§8.3.3.16).
        RemoteServerNotFound = "remote-server-not-found",
        /// The remote server could not be reached in time (§8.3.3.17).
        RemoteServerTimeout = "remote-server-timeout",
        /// The recipient lacks the resources to process the request (§8.3.3.18).
        ResourceConstraint = "resource-constraint",
        /// The service is not provided (§8.3.3.19).
        ServiceUnavailable = "service-unavailable",
        /// A subscription is required first (§8.3.3.20).
        SubscriptionRequired = "subscription-required",
        /// A condition not defined here; an application-specific condition says more (§8.3.3.21).
        UndefinedCondition = "undefined-condition",
        /// The request was understood but not expected at this time (§8.3.3.22).
        UnexpectedRequest = "unexpected-request",
    }
}

impl StanzaErrorCondition {
    /// The error type RFC 6120 §8.3.3 pairs with this condition in its definition and examples.
    #[must_use]
    pub const fn default_type(self) -> StanzaErrorType {
        use StanzaErrorCondition as C;
        match self {
            C::BadRequest
            | C::JidMalformed
            | C::NotAcceptable
            | C::PolicyViolation
            | C::Redirect => StanzaErrorType::Modify,
            C::Forbidden | C::NotAuthorized | C::RegistrationRequired | C::SubscriptionRequired => {
                StanzaErrorType::Auth
            }
            C::RecipientUnavailable
            | C::RemoteServerTimeout
            | C::ResourceConstraint
            | C::UnexpectedRequest => StanzaErrorType::Wait,
            C::Conflict
            | C::FeatureNotImplemented
            | C::Gone
            | C::InternalServerError
            | C::ItemNotFound
            | C::NotAllowed
            | C::RemoteServerNotFound
            | C::ServiceUnavailable
            | C::UndefinedCondition => StanzaErrorType::Cancel,
        }
    }

    /// Whether the condition element carries a new address as text (`gone`, `redirect`).
    #[must_use]
    pub const fn carries_address(self) -> bool {
        matches!(self, Self::Gone | Self::Redirect)
    }
}

/// Why an `<error/>` element could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorElementError {
    /// The element is not an error element of the expected namespace.
    NotAnErrorElement,
    /// No defined condition child was found.
    MissingCondition,
    /// More than one defined condition child was found.
    MultipleConditions,
    /// The stanza error has no `type` attribute or an unknown one.
    BadType,
}

impl fmt::Display for ErrorElementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnErrorElement => "not an error element",
            Self::MissingCondition => "error element without a defined condition",
            Self::MultipleConditions => "error element with more than one defined condition",
            Self::BadType => "stanza error without a valid type attribute",
        })
    }
}

impl core::error::Error for ErrorElementError {}

/// Human-readable text carried by an error, with its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorText {
    /// The `xml:lang` of the text, if given.
    pub lang: Option<String>,
    /// The text itself.
    pub text: String,
}

/// A `<stream:error/>` (RFC 6120 §4.9): condition, optional text, optional
/// application-specific condition.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamError {
    /// The defined condition.
    pub condition: StreamErrorCondition,
    /// For `see-other-host`: the host (and optional port) to reconnect to.
    pub other_host: Option<String>,
    /// Optional descriptive text.
    pub text: Option<ErrorText>,
    /// Optional application-specific condition element (boxed: rare, and the error travels
    /// inside every stream output, which it would otherwise make larger).
    pub application_condition: Option<Box<Element>>,
}

impl StreamError {
    /// An error with only a defined condition.
    #[must_use]
    pub fn new(condition: StreamErrorCondition) -> Self {
        Self {
            condition,
            other_host: None,
            text: None,
            application_condition: None,
        }
    }

    /// A `see-other-host` error redirecting the peer to `host` (RFC 6120 §4.9.3.19).
    #[must_use]
    pub fn see_other_host(host: impl Into<String>) -> Self {
        Self {
            other_host: Some(host.into()),
            ..Self::new(StreamErrorCondition::SeeOtherHost)
        }
    }

    /// Adds descriptive text.
    #[must_use]
    pub fn with_text(mut self, lang: Option<&str>, text: impl Into<String>) -> Self {
        self.text = Some(ErrorText {
            lang: lang.map(str::to_owned),
            text: text.into(),
        });
        self
    }

    /// Adds an application-specific condition element.
    #[must_use]
    pub fn with_application_condition(mut self, condition: Element) -> Self {
        self.application_condition = Some(Box::new(condition));
        self
    }

    /// Builds the `<error xmlns='http://etherx.jabber.org/streams'/>` element.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut condition = Element::builder(self.condition.as_str(), NS_XMPP_STREAMS);
        if let Some(host) = &self.other_host {
            condition = condition.append(host.as_str());
        }
        let mut error = Element::builder("error", NS_STREAMS).append(condition.build());
        if let Some(text) = &self.text {
            error = error.append(text_element(text, NS_XMPP_STREAMS));
        }
        if let Some(app) = &self.application_condition {
            error = error.append(Element::clone(app));
        }
        error.build()
    }

    /// Reads a `<stream:error/>` element.
    pub fn from_element(element: &Element) -> Result<Self, ErrorElementError> {
        if !element.is("error", NS_STREAMS) {
            return Err(ErrorElementError::NotAnErrorElement);
        }
        let mut error: Option<Self> = None;
        let mut text = None;
        let mut application_condition = None;
        for child in element.children() {
            if child.has_ns(NS_XMPP_STREAMS) {
                if child.name() == "text" {
                    text = Some(read_text(child));
                } else if let Ok(condition) = child.name().parse::<StreamErrorCondition>() {
                    if error.is_some() {
                        return Err(ErrorElementError::MultipleConditions);
                    }
                    let mut parsed = Self::new(condition);
                    if condition == StreamErrorCondition::SeeOtherHost {
                        parsed.other_host = Some(child.text());
                    }
                    error = Some(parsed);
                }
            } else if application_condition.is_none() {
                application_condition = Some(Box::new(child.clone()));
            }
        }
        let mut error = error.ok_or(ErrorElementError::MissingCondition)?;
        error.text = text;
        error.application_condition = application_condition;
        Ok(error)
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream error: {}", self.condition)?;
        if let Some(host) = &self.other_host {
            write!(f, " ({host})")?;
        }
        if let Some(text) = &self.text {
            write!(f, ": {}", text.text)?;
        }
        Ok(())
    }
}

impl core::error::Error for StreamError {}

/// A stanza `<error/>` (RFC 6120 §8.3): type, condition, optional `by`, text and
/// application-specific condition.
#[derive(Debug, Clone, PartialEq)]
pub struct StanzaError {
    /// What the sender should do next.
    pub error_type: StanzaErrorType,
    /// The defined condition.
    pub condition: StanzaErrorCondition,
    /// For `gone` and `redirect`: the new address, if given.
    pub new_address: Option<String>,
    /// The entity that generated the error, if it says.
    pub by: Option<String>,
    /// Optional descriptive text.
    pub text: Option<ErrorText>,
    /// Optional application-specific condition element (boxed: rare, and the error travels
    /// inside every stream output, which it would otherwise make larger).
    pub application_condition: Option<Box<Element>>,
}

impl StanzaError {
    /// An error with the condition and the type RFC 6120 pairs with it.
    #[must_use]
    pub fn new(condition: StanzaErrorCondition) -> Self {
        Self {
            error_type: condition.default_type(),
            condition,
            new_address: None,
            by: None,
            text: None,
            application_condition: None,
        }
    }

    /// Overrides the error type.
    #[must_use]
    pub fn with_type(mut self, error_type: StanzaErrorType) -> Self {
        self.error_type = error_type;
        self
    }

    /// Sets the `by` attribute.
    #[must_use]
    pub fn with_by(mut self, by: impl Into<String>) -> Self {
        self.by = Some(by.into());
        self
    }

    /// Sets the new address carried by `gone` or `redirect`.
    #[must_use]
    pub fn with_new_address(mut self, address: impl Into<String>) -> Self {
        self.new_address = Some(address.into());
        self
    }

    /// Adds descriptive text.
    #[must_use]
    pub fn with_text(mut self, lang: Option<&str>, text: impl Into<String>) -> Self {
        self.text = Some(ErrorText {
            lang: lang.map(str::to_owned),
            text: text.into(),
        });
        self
    }

    /// Adds an application-specific condition element.
    #[must_use]
    pub fn with_application_condition(mut self, condition: Element) -> Self {
        self.application_condition = Some(Box::new(condition));
        self
    }

    /// Builds the `<error/>` element in the stanza's namespace (`jabber:client`,
    /// `jabber:server`, ...).
    #[must_use]
    pub fn to_element(&self, stanza_ns: &str) -> Element {
        let mut condition = Element::builder(self.condition.as_str(), NS_XMPP_STANZAS);
        if let Some(address) = &self.new_address {
            condition = condition.append(address.as_str());
        }
        let mut error = Element::builder("error", stanza_ns)
            .attr(name("type"), self.error_type.as_str())
            .attr(name("by"), self.by.clone())
            .append(condition.build());
        if let Some(text) = &self.text {
            error = error.append(text_element(text, NS_XMPP_STANZAS));
        }
        if let Some(app) = &self.application_condition {
            error = error.append(Element::clone(app));
        }
        error.build()
    }

    /// Reads an `<error/>` element (of any stanza namespace).
    pub fn from_element(element: &Element) -> Result<Self, ErrorElementError> {
        if element.name() != "error" {
            return Err(ErrorElementError::NotAnErrorElement);
        }
        let error_type = element
            .attr("type")
            .and_then(|t| t.parse::<StanzaErrorType>().ok())
            .ok_or(ErrorElementError::BadType)?;
        let mut condition: Option<(StanzaErrorCondition, Option<String>)> = None;
        let mut text = None;
        let mut application_condition = None;
        for child in element.children() {
            if child.has_ns(NS_XMPP_STANZAS) {
                if child.name() == "text" {
                    text = Some(read_text(child));
                } else if let Ok(parsed) = child.name().parse::<StanzaErrorCondition>() {
                    if condition.is_some() {
                        return Err(ErrorElementError::MultipleConditions);
                    }
                    let address = parsed.carries_address().then(|| child.text());
                    condition = Some((parsed, address.filter(|a| !a.is_empty())));
                }
            } else if application_condition.is_none() {
                application_condition = Some(Box::new(child.clone()));
            }
        }
        let (condition, new_address) = condition.ok_or(ErrorElementError::MissingCondition)?;
        Ok(Self {
            error_type,
            condition,
            new_address,
            by: element.attr("by").map(str::to_owned),
            text,
            application_condition,
        })
    }

    /// Builds the error reply to `stanza` (RFC 6120 §8.3.1): same name, namespace and `id`,
    /// `to` and `from` swapped, `type='error'`, and this error as its `<error/>` child. The
    /// original payload is not echoed back.
    #[must_use]
    pub fn reply_to(&self, stanza: &Element) -> Element {
        let ns = stanza.ns();
        Element::builder(stanza.name(), ns.as_str())
            .attr(name("id"), stanza.attr("id"))
            .attr(name("to"), stanza.attr("from"))
            .attr(name("from"), stanza.attr("to"))
            .attr(name("type"), "error")
            .append(self.to_element(&ns))
            .build()
    }
}

impl fmt::Display for StanzaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stanza error: {} ({})", self.condition, self.error_type)?;
        if let Some(text) = &self.text {
            write!(f, ": {}", text.text)?;
        }
        Ok(())
    }
}

impl core::error::Error for StanzaError {}

/// An attribute name known at compile time.
#[allow(clippy::expect_used)]
fn name(name: &'static str) -> NcName {
    // Only called with literal ASCII names above, which are valid NCNames.
    NcName::try_from(name).expect("literal attribute names are valid NCNames")
}

fn text_element(text: &ErrorText, ns: &str) -> Element {
    let mut builder = Element::builder("text", ns);
    if let Some(lang) = &text.lang {
        builder = builder.attr_ns(Namespace::XML, name("lang"), lang.as_str());
    }
    builder.append(text.text.as_str()).build()
}

fn read_text(element: &Element) -> ErrorText {
    let lang = element
        .attrs()
        .get(&Namespace::XML, "lang")
        .map(ToString::to_string);
    ErrorText {
        lang,
        text: element.text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_name_round_trips_and_is_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for c in StreamErrorCondition::ALL {
            assert_eq!(c.as_str().parse::<StreamErrorCondition>(), Ok(*c));
            assert!(seen.insert(c.as_str()));
        }
        assert_eq!(
            StreamErrorCondition::ALL.len(),
            25,
            "RFC 6120 §4.9.3 has 25"
        );
        seen.clear();
        for c in StanzaErrorCondition::ALL {
            assert_eq!(c.to_string().parse::<StanzaErrorCondition>(), Ok(*c));
            assert!(seen.insert(c.as_str()));
        }
        assert_eq!(
            StanzaErrorCondition::ALL.len(),
            22,
            "RFC 6120 §8.3.3 has 22"
        );
        assert!("Bad-Request".parse::<StanzaErrorCondition>().is_err());
        assert_eq!(StanzaErrorType::ALL.len(), 5);
    }

    #[test]
    fn stream_error_round_trips_through_an_element() {
        let app = Element::builder("too-many-hats", "urn:example:app").build();
        let err = StreamError::new(StreamErrorCondition::PolicyViolation)
            .with_text(Some("en"), "stanza too big")
            .with_application_condition(app);
        let el = err.to_element();
        assert!(el.is("error", NS_STREAMS));
        assert!(el.has_child("policy-violation", NS_XMPP_STREAMS));
        assert_eq!(StreamError::from_element(&el), Ok(err));
    }

    #[test]
    fn see_other_host_carries_the_host() {
        let err = StreamError::see_other_host("[2001:db8::1]:5222");
        let back = StreamError::from_element(&err.to_element()).unwrap();
        assert_eq!(back.condition, StreamErrorCondition::SeeOtherHost);
        assert_eq!(back.other_host.as_deref(), Some("[2001:db8::1]:5222"));
    }

    #[test]
    fn stream_error_without_condition_is_rejected() {
        let el = Element::builder("error", NS_STREAMS).build();
        assert_eq!(
            StreamError::from_element(&el),
            Err(ErrorElementError::MissingCondition)
        );
        let two = Element::builder("error", NS_STREAMS)
            .append(Element::bare("conflict", NS_XMPP_STREAMS))
            .append(Element::bare("reset", NS_XMPP_STREAMS))
            .build();
        assert_eq!(
            StreamError::from_element(&two),
            Err(ErrorElementError::MultipleConditions)
        );
    }

    #[test]
    fn stanza_error_uses_the_paired_type_and_round_trips() {
        let err = StanzaError::new(StanzaErrorCondition::ServiceUnavailable)
            .with_by("example.net")
            .with_text(None, "no such service");
        assert_eq!(err.error_type, StanzaErrorType::Cancel);
        let el = err.to_element("jabber:client");
        assert_eq!(el.attr("type"), Some("cancel"));
        assert_eq!(el.attr("by"), Some("example.net"));
        assert_eq!(StanzaError::from_element(&el), Ok(err));
        let redirect = StanzaError::new(StanzaErrorCondition::Redirect)
            .with_new_address("xmpp:other@example.net");
        let back = StanzaError::from_element(&redirect.to_element("jabber:server")).unwrap();
        assert_eq!(back.error_type, StanzaErrorType::Modify);
        assert_eq!(back.new_address.as_deref(), Some("xmpp:other@example.net"));
    }

    #[test]
    fn stanza_error_needs_a_valid_type() {
        let el = Element::builder("error", "jabber:client")
            .attr(name("type"), "sometimes")
            .append(Element::bare("conflict", NS_XMPP_STANZAS))
            .build();
        assert_eq!(
            StanzaError::from_element(&el),
            Err(ErrorElementError::BadType)
        );
    }

    #[test]
    fn reply_swaps_addresses_and_keeps_the_id() {
        let iq = Element::builder("iq", "jabber:client")
            .attr(name("id"), "q1")
            .attr(name("type"), "get")
            .attr(name("from"), "juliet@example.com/balcony")
            .attr(name("to"), "example.com")
            .append(Element::bare("query", "urn:example:unknown"))
            .build();
        let reply = StanzaError::new(StanzaErrorCondition::FeatureNotImplemented).reply_to(&iq);
        assert!(reply.is("iq", "jabber:client"));
        assert_eq!(reply.attr("id"), Some("q1"));
        assert_eq!(reply.attr("type"), Some("error"));
        assert_eq!(reply.attr("to"), Some("juliet@example.com/balcony"));
        assert_eq!(reply.attr("from"), Some("example.com"));
        assert!(!reply.has_child("query", "urn:example:unknown"));
        let error = reply.get_child("error", "jabber:client").unwrap();
        assert_eq!(
            StanzaError::from_element(error).unwrap().condition,
            StanzaErrorCondition::FeatureNotImplemented
        );
    }
}
