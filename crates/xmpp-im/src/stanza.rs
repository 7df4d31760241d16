//! Typed `<message/>`, `<presence/>` and `<iq/>` stanzas (RFC 6120 §8, RFC 6121 §4-5) with
//! conversion to and from `minidom::Element`.
//!
//! Parsing never panics; a malformed stanza gives a [`StanzaParseError`] whose
//! [`condition`](StanzaParseError::condition) is the stanza error to answer with. Conversion is
//! lossless for the stanza's meaning: addresses, id, `xml:lang`, type, every known child with
//! its language, and every extension child in order. (Known children are written before the
//! extensions, and attributes other than the RFC's are not kept.)

use core::fmt;
use core::str::FromStr;

use minidom::Element;
use minidom::rxml::{Namespace, NcName};
use xmpp_jid::Jid;
use xmpp_xml::{ErrorElementError, StanzaError, StanzaErrorCondition};

use crate::error::UnknownValue;

/// `jabber:client`, the client-to-server stanza namespace.
pub const NS_CLIENT: &str = "jabber:client";
/// `jabber:server`, the server-to-server stanza namespace.
pub const NS_SERVER: &str = "jabber:server";

/// Defines a vocabulary enum with `ALL`, `as_str`, `Display` and `FromStr`.
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $v:ident = $wire:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            /// The name used on the wire.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$v => $wire,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$v),)+
                    _ => Err(UnknownValue($what)),
                }
            }
        }
    };
}

vocabulary! {
    /// The stanza namespace (the stream's default namespace).
    StanzaNamespace, "stanza namespace" {
        /// `jabber:client`.
        Client = "jabber:client",
        /// `jabber:server`.
        Server = "jabber:server",
        /// `jabber:component:accept` (XEP-0114).
        ComponentAccept = "jabber:component:accept",
    }
}

vocabulary! {
    /// A message `type` (RFC 6121 §5.2.2).
    MessageType, "message type" {
        /// A one-to-one chat.
        Chat = "chat",
        /// An error about a message the entity sent.
        Error = "error",
        /// A multi-user chat message.
        Groupchat = "groupchat",
        /// An alert or notification; no reply expected.
        Headline = "headline",
        /// A standalone message (the default).
        Normal = "normal",
    }
}

vocabulary! {
    /// A presence `type` (RFC 6121 §4.7.1); availability has no type attribute.
    PresenceType, "presence type" {
        /// An error about a presence the entity sent.
        Error = "error",
        /// A request for the entity's current presence (sent by servers).
        Probe = "probe",
        /// A subscription request (§3.1).
        Subscribe = "subscribe",
        /// A subscription approval (§3.1.5) or pre-approval (§3.4).
        Subscribed = "subscribed",
        /// The entity is no longer available.
        Unavailable = "unavailable",
        /// Unsubscribing from the recipient's presence (§3.3).
        Unsubscribe = "unsubscribe",
        /// Denying or cancelling a subscription (§3.2).
        Unsubscribed = "unsubscribed",
    }
}

vocabulary! {
    /// A presence `<show/>` value (RFC 6121 §4.7.2.1).
    Show, "show value" {
        /// Temporarily away.
        Away = "away",
        /// Interested in chatting.
        Chat = "chat",
        /// Do not disturb.
        Dnd = "dnd",
        /// Extended away.
        Xa = "xa",
    }
}

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

impl PresenceType {
    /// The subscription kind, for the four subscription-management types.
    #[must_use]
    pub const fn subscription_kind(self) -> Option<crate::SubscriptionKind> {
        use crate::SubscriptionKind as K;
        match self {
            Self::Subscribe => Some(K::Subscribe),
            Self::Subscribed => Some(K::Subscribed),
            Self::Unsubscribe => Some(K::Unsubscribe),
            Self::Unsubscribed => Some(K::Unsubscribed),
            _ => None,
        }
    }
}

impl From<crate::SubscriptionKind> for PresenceType {
    fn from(kind: crate::SubscriptionKind) -> Self {
        use crate::SubscriptionKind as K;
        match kind {
            K::Subscribe => Self::Subscribe,
            K::Subscribed => Self::Subscribed,
            K::Unsubscribe => Self::Unsubscribe,
            K::Unsubscribed => Self::Unsubscribed,
        }
    }
}

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

/// Text with an optional `xml:lang` (bodies, subjects, statuses).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LangText {
    /// The language, if the child carries its own `xml:lang`.
    pub lang: Option<String>,
    /// The character data.
    pub text: String,
}

/// The addressing common to every stanza (RFC 6120 §8.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The stanza namespace; defaults to `jabber:client`.
    pub ns: Option<StanzaNamespace>,
    /// The `from` address.
    pub from: Option<Jid>,
    /// The `to` address.
    pub to: Option<Jid>,
    /// The `id`.
    pub id: Option<String>,
    /// The stanza's `xml:lang`.
    pub lang: Option<String>,
}

impl Header {
    fn parse(el: &Element, name: &str) -> Result<Self, StanzaParseError> {
        if el.name() != name {
            return Err(StanzaParseError::NotAStanza);
        }
        let ns = StanzaNamespace::ALL
            .iter()
            .copied()
            .find(|ns| el.has_ns(ns.as_str()))
            .ok_or(StanzaParseError::NotAStanza)?;
        let jid = |attr: &'static str| -> Result<Option<Jid>, StanzaParseError> {
            el.attr(attr)
                .map(|s| Jid::new(s).map_err(|_| StanzaParseError::MalformedJid(attr)))
                .transpose()
        };
        Ok(Self {
            ns: Some(ns),
            from: jid("from")?,
            to: jid("to")?,
            id: el.attr("id").map(str::to_owned),
            lang: lang_of(el),
        })
    }

    fn builder(&self, name: &str) -> minidom::ElementBuilder {
        let ns = self.ns.unwrap_or(StanzaNamespace::Client);
        let mut b = Element::builder(name, ns.as_str())
            .attr(nc("from"), self.from.as_ref().map(Jid::as_str))
            .attr(nc("to"), self.to.as_ref().map(Jid::as_str))
            .attr(nc("id"), self.id.as_deref());
        if let Some(lang) = &self.lang {
            b = b.attr_ns(Namespace::XML, nc("lang"), lang.as_str());
        }
        b
    }

    /// The header of a reply: addresses swapped, same id, namespace and language.
    #[must_use]
    pub fn reply(&self) -> Self {
        Self {
            ns: self.ns,
            from: self.to.clone(),
            to: self.from.clone(),
            id: self.id.clone(),
            lang: self.lang.clone(),
        }
    }
}

/// An attribute name known at compile time.
#[allow(clippy::expect_used)]
pub(crate) fn nc(name: &'static str) -> NcName {
    // Only called with the literal ASCII names of this crate, which are valid NCNames.
    NcName::try_from(name).expect("literal attribute names are valid NCNames")
}

fn lang_of(el: &Element) -> Option<String> {
    el.attrs()
        .get(&Namespace::XML, "lang")
        .map(ToString::to_string)
}

fn lang_text(el: &Element) -> LangText {
    LangText {
        lang: lang_of(el),
        text: el.text(),
    }
}

fn push_lang_text(
    list: &mut Vec<LangText>,
    el: &Element,
    what: &'static str,
) -> Result<(), StanzaParseError> {
    let t = lang_text(el);
    if list.iter().any(|x| x.lang == t.lang) {
        return Err(StanzaParseError::Duplicate(what));
    }
    list.push(t);
    Ok(())
}

fn lang_text_element(name: &str, ns: &str, t: &LangText) -> Element {
    let mut b = Element::builder(name, ns);
    if let Some(lang) = &t.lang {
        b = b.attr_ns(Namespace::XML, nc("lang"), lang.as_str());
    }
    b.append(t.text.as_str()).build()
}

fn parse_error_child(el: &Element, ns: &str) -> Result<StanzaError, StanzaParseError> {
    el.get_child("error", ns)
        .ok_or(StanzaParseError::BadError(
            ErrorElementError::NotAnErrorElement,
        ))
        .and_then(|e| StanzaError::from_element(e).map_err(StanzaParseError::BadError))
}

/// A `<thread/>` (RFC 6121 §5.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// The thread identifier.
    pub id: String,
    /// The optional `parent` thread.
    pub parent: Option<String>,
}

/// A `<message/>` stanza (RFC 6121 §5).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Addressing.
    pub header: Header,
    /// The `type`; `None` when absent (treated as `normal`, see [`Message::kind`]).
    pub message_type: Option<MessageType>,
    /// `<body/>` children, one per language.
    pub bodies: Vec<LangText>,
    /// `<subject/>` children, one per language.
    pub subjects: Vec<LangText>,
    /// The `<thread/>`.
    pub thread: Option<Thread>,
    /// The `<error/>` of a message of type `error`.
    pub error: Option<StanzaError>,
    /// Extension children, in order.
    pub payloads: Vec<Element>,
}

impl Message {
    /// An empty message of the given type.
    #[must_use]
    pub fn new(message_type: MessageType) -> Self {
        Self {
            header: Header::default(),
            message_type: Some(message_type),
            bodies: Vec::new(),
            subjects: Vec::new(),
            thread: None,
            error: None,
            payloads: Vec::new(),
        }
    }

    /// A chat message to `to` with a body.
    #[must_use]
    pub fn chat(to: Jid, body: impl Into<String>) -> Self {
        let mut m = Self::new(MessageType::Chat);
        m.header.to = Some(to);
        m.bodies.push(LangText {
            lang: None,
            text: body.into(),
        });
        m
    }

    /// The effective type: absent or unknown types are `normal` (RFC 6121 §5.2.2).
    #[must_use]
    pub fn kind(&self) -> MessageType {
        self.message_type.unwrap_or(MessageType::Normal)
    }

    /// The body in the given language, or the body without a language.
    #[must_use]
    pub fn body(&self, lang: Option<&str>) -> Option<&str> {
        pick_lang(&self.bodies, lang)
    }

    /// Builds the element.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let ns = self.header.ns.unwrap_or(StanzaNamespace::Client).as_str();
        let mut b = self
            .header
            .builder("message")
            .attr(nc("type"), self.message_type.map(MessageType::as_str));
        for s in &self.subjects {
            b = b.append(lang_text_element("subject", ns, s));
        }
        for t in &self.bodies {
            b = b.append(lang_text_element("body", ns, t));
        }
        if let Some(t) = &self.thread {
            b = b.append(
                Element::builder("thread", ns)
                    .attr(nc("parent"), t.parent.as_deref())
                    .append(t.id.as_str())
                    .build(),
            );
        }
        if let Some(e) = &self.error {
            b = b.append(e.to_element(ns));
        }
        b.append_all(self.payloads.iter().cloned()).build()
    }
}

fn pick_lang<'a>(list: &'a [LangText], lang: Option<&str>) -> Option<&'a str> {
    list.iter()
        .find(|t| t.lang.as_deref() == lang)
        .or_else(|| list.iter().find(|t| t.lang.is_none()))
        .or_else(|| list.first())
        .map(|t| t.text.as_str())
}

impl TryFrom<&Element> for Message {
    type Error = StanzaParseError;

    fn try_from(el: &Element) -> Result<Self, StanzaParseError> {
        let header = Header::parse(el, "message")?;
        let ns = header.ns.unwrap_or(StanzaNamespace::Client).as_str();
        // RFC 6121 §5.2.2: an unknown type is treated as `normal`.
        let message_type = el
            .attr("type")
            .map(|t| t.parse().unwrap_or(MessageType::Normal));
        let mut m = Message {
            header,
            message_type,
            ..Message::new(MessageType::Normal)
        };
        for child in el.children() {
            if !child.has_ns(ns) {
                m.payloads.push(child.clone());
                continue;
            }
            match child.name() {
                "body" => push_lang_text(&mut m.bodies, child, "body")?,
                "subject" => push_lang_text(&mut m.subjects, child, "subject")?,
                "thread" => {
                    if m.thread.is_some() {
                        return Err(StanzaParseError::Duplicate("thread"));
                    }
                    m.thread = Some(Thread {
                        id: child.text(),
                        parent: child.attr("parent").map(str::to_owned),
                    });
                }
                "error" if m.message_type == Some(MessageType::Error) => {}
                _ => m.payloads.push(child.clone()),
            }
        }
        if m.message_type == Some(MessageType::Error) {
            m.error = Some(parse_error_child(el, ns)?);
        }
        Ok(m)
    }
}

/// A `<presence/>` stanza (RFC 6121 §4).
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    /// Addressing.
    pub header: Header,
    /// The `type`; `None` means available.
    pub presence_type: Option<PresenceType>,
    /// The `<show/>`.
    pub show: Option<Show>,
    /// `<status/>` children, one per language.
    pub statuses: Vec<LangText>,
    /// The `<priority/>`; absent means 0 (RFC 6121 §4.7.2.3).
    pub priority: Option<i8>,
    /// The `<error/>` of a presence of type `error`.
    pub error: Option<StanzaError>,
    /// Extension children, in order.
    pub payloads: Vec<Element>,
}

impl Presence {
    /// A presence of the given type (`None`: available) with nothing else.
    #[must_use]
    pub fn new(presence_type: Option<PresenceType>) -> Self {
        Self {
            header: Header::default(),
            presence_type,
            show: None,
            statuses: Vec::new(),
            priority: None,
            error: None,
            payloads: Vec::new(),
        }
    }

    /// Available presence with a show value and priority.
    #[must_use]
    pub fn available(show: Option<Show>, priority: i8) -> Self {
        Self {
            show,
            priority: Some(priority),
            ..Self::new(None)
        }
    }

    /// A subscription-management presence to `to` (RFC 6121 §3).
    #[must_use]
    pub fn subscription(kind: crate::SubscriptionKind, to: Jid) -> Self {
        let mut p = Self::new(Some(kind.into()));
        p.header.to = Some(to);
        p
    }

    /// The effective priority (0 when absent).
    #[must_use]
    pub fn effective_priority(&self) -> i8 {
        self.priority.unwrap_or(0)
    }

    /// The status in the given language, or the status without a language.
    #[must_use]
    pub fn status(&self, lang: Option<&str>) -> Option<&str> {
        pick_lang(&self.statuses, lang)
    }

    /// Builds the element.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let ns = self.header.ns.unwrap_or(StanzaNamespace::Client).as_str();
        let mut b = self
            .header
            .builder("presence")
            .attr(nc("type"), self.presence_type.map(PresenceType::as_str));
        if let Some(show) = self.show {
            b = b.append(Element::builder("show", ns).append(show.as_str()).build());
        }
        for s in &self.statuses {
            b = b.append(lang_text_element("status", ns, s));
        }
        if let Some(p) = self.priority {
            b = b.append(
                Element::builder("priority", ns)
                    .append(p.to_string())
                    .build(),
            );
        }
        if let Some(e) = &self.error {
            b = b.append(e.to_element(ns));
        }
        b.append_all(self.payloads.iter().cloned()).build()
    }
}

impl TryFrom<&Element> for Presence {
    type Error = StanzaParseError;

    fn try_from(el: &Element) -> Result<Self, StanzaParseError> {
        let header = Header::parse(el, "presence")?;
        let ns = header.ns.unwrap_or(StanzaNamespace::Client).as_str();
        let presence_type = el
            .attr("type")
            .map(|t| t.parse().map_err(|_| StanzaParseError::BadType))
            .transpose()?;
        let mut p = Presence {
            header,
            ..Presence::new(presence_type)
        };
        for child in el.children() {
            if !child.has_ns(ns) {
                p.payloads.push(child.clone());
                continue;
            }
            match child.name() {
                "show" => {
                    if p.show.is_some() {
                        return Err(StanzaParseError::Duplicate("show"));
                    }
                    p.show = Some(
                        child
                            .text()
                            .trim()
                            .parse()
                            .map_err(|_| StanzaParseError::BadShow)?,
                    );
                }
                "status" => push_lang_text(&mut p.statuses, child, "status")?,
                "priority" => {
                    if p.priority.is_some() {
                        return Err(StanzaParseError::Duplicate("priority"));
                    }
                    p.priority = Some(
                        child
                            .text()
                            .trim()
                            .parse::<i8>()
                            .map_err(|_| StanzaParseError::BadPriority)?,
                    );
                }
                "error" if p.presence_type == Some(PresenceType::Error) => {}
                _ => p.payloads.push(child.clone()),
            }
        }
        if p.presence_type == Some(PresenceType::Error) {
            p.error = Some(parse_error_child(el, ns)?);
        }
        Ok(p)
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
        let ns = self.header.ns.unwrap_or(StanzaNamespace::Client).as_str();
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

impl TryFrom<&Element> for Iq {
    type Error = StanzaParseError;

    fn try_from(el: &Element) -> Result<Self, StanzaParseError> {
        let header = Header::parse(el, "iq")?;
        let ns = header.ns.unwrap_or(StanzaNamespace::Client).as_str();
        if header.id.is_none() {
            return Err(StanzaParseError::MissingId);
        }
        let iq_type: IqType = el
            .attr("type")
            .ok_or(StanzaParseError::MissingType)?
            .parse()
            .map_err(|_| StanzaParseError::BadType)?;
        let mut children = el.children();
        let payload = match iq_type {
            IqType::Get | IqType::Set => {
                let (Some(p), None) = (children.next(), children.next()) else {
                    return Err(StanzaParseError::PayloadCount);
                };
                if iq_type == IqType::Get {
                    IqPayload::Get(p.clone())
                } else {
                    IqPayload::Set(p.clone())
                }
            }
            IqType::Result => {
                let first = children.next();
                if children.next().is_some() {
                    return Err(StanzaParseError::PayloadCount);
                }
                IqPayload::Result(first.cloned())
            }
            IqType::Error => IqPayload::Error {
                error: parse_error_child(el, ns)?,
                payload: el.children().find(|c| !c.is("error", ns)).cloned(),
            },
        };
        Ok(Iq { header, payload })
    }
}

/// Any of the three stanzas.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Stanza {
    /// A message.
    Message(Message),
    /// A presence.
    Presence(Presence),
    /// An iq.
    Iq(Iq),
}

impl Stanza {
    /// The addressing.
    #[must_use]
    pub fn header(&self) -> &Header {
        match self {
            Self::Message(m) => &m.header,
            Self::Presence(p) => &p.header,
            Self::Iq(i) => &i.header,
        }
    }

    /// Mutable addressing.
    pub fn header_mut(&mut self) -> &mut Header {
        match self {
            Self::Message(m) => &mut m.header,
            Self::Presence(p) => &mut p.header,
            Self::Iq(i) => &mut i.header,
        }
    }

    /// Builds the element.
    #[must_use]
    pub fn to_element(&self) -> Element {
        match self {
            Self::Message(m) => m.to_element(),
            Self::Presence(p) => p.to_element(),
            Self::Iq(i) => i.to_element(),
        }
    }
}

impl TryFrom<&Element> for Stanza {
    type Error = StanzaParseError;

    fn try_from(el: &Element) -> Result<Self, StanzaParseError> {
        match el.name() {
            "message" => Message::try_from(el).map(Self::Message),
            "presence" => Presence::try_from(el).map(Self::Presence),
            "iq" => Iq::try_from(el).map(Self::Iq),
            _ => Err(StanzaParseError::NotAStanza),
        }
    }
}

impl From<Message> for Stanza {
    fn from(m: Message) -> Self {
        Self::Message(m)
    }
}

impl From<Presence> for Stanza {
    fn from(p: Presence) -> Self {
        Self::Presence(p)
    }
}

impl From<Iq> for Stanza {
    fn from(i: Iq) -> Self {
        Self::Iq(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn message_round_trips_with_languages_thread_and_extensions() {
        // RFC 6121 §5.2.3 example (bodies in two languages), plus a thread and an extension.
        let el = parse(
            "<message xmlns='jabber:client' from='juliet@example.com/balcony' \
             to='romeo@example.net' id='ktx72v49' type='chat' xml:lang='en'>\
             <subject>Wherefore</subject>\
             <body>Wherefore art thou, Romeo?</body>\
             <body xml:lang='cs'>PročeŽ jsi ty, Romeo?</body>\
             <thread parent='7edac73ab41e45c4aafa7b2d7b749080'>e0ffe42b28561960c6b12b944a092794b9683a38</thread>\
             <active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        );
        let m = Message::try_from(&el).unwrap();
        assert_eq!(m.kind(), MessageType::Chat);
        assert_eq!(m.body(Some("cs")), Some("PročeŽ jsi ty, Romeo?"));
        assert_eq!(m.body(Some("fr")), Some("Wherefore art thou, Romeo?"));
        assert_eq!(m.header.lang.as_deref(), Some("en"));
        assert_eq!(
            m.thread.as_ref().unwrap().parent.as_deref(),
            Some("7edac73ab41e45c4aafa7b2d7b749080")
        );
        assert_eq!(m.payloads.len(), 1);
        let back = m.to_element();
        assert_eq!(back, el);
        assert_eq!(Message::try_from(&back).unwrap(), m);
    }

    #[test]
    fn message_type_defaults_and_unknown_values_are_normal() {
        let m = Message::try_from(&parse("<message xmlns='jabber:client'/>")).unwrap();
        assert_eq!((m.message_type, m.kind()), (None, MessageType::Normal));
        let m = Message::try_from(&parse("<message xmlns='jabber:client' type='shout'/>")).unwrap();
        assert_eq!(m.kind(), MessageType::Normal);
    }

    #[test]
    fn bad_jids_and_duplicates_map_to_stanza_errors() {
        let e =
            Message::try_from(&parse("<message xmlns='jabber:client' to='a@b@c'/>")).unwrap_err();
        assert_eq!(e, StanzaParseError::MalformedJid("to"));
        assert_eq!(e.condition(), StanzaErrorCondition::JidMalformed);
        let e = Message::try_from(&parse(
            "<message xmlns='jabber:client'><body>a</body><body>b</body></message>",
        ))
        .unwrap_err();
        assert_eq!(e.condition(), StanzaErrorCondition::BadRequest);
        assert!(Message::try_from(&parse("<message xmlns='urn:other'/>")).is_err());
        assert!(Message::try_from(&parse("<presence xmlns='jabber:client'/>")).is_err());
    }

    #[test]
    fn presence_round_trips_and_validates_show_and_priority() {
        let el = parse(
            "<presence xmlns='jabber:client' from='juliet@example.com/balcony'>\
             <show>away</show><status>be right back</status>\
             <status xml:lang='cs'>hned jsem zpět</status><priority>-1</priority>\
             <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>",
        );
        let p = Presence::try_from(&el).unwrap();
        assert_eq!(p.show, Some(Show::Away));
        assert_eq!(p.effective_priority(), -1);
        assert_eq!(p.status(Some("cs")), Some("hned jsem zpět"));
        assert_eq!(p.to_element(), el);
        for bad in [
            "<presence xmlns='jabber:client'><priority>128</priority></presence>",
            "<presence xmlns='jabber:client'><priority>high</priority></presence>",
            "<presence xmlns='jabber:client'><show>busy</show></presence>",
            "<presence xmlns='jabber:client' type='online'/>",
            "<presence xmlns='jabber:client'><show>xa</show><show>dnd</show></presence>",
        ] {
            let e = Presence::try_from(&parse(bad)).unwrap_err();
            assert_eq!(e.condition(), StanzaErrorCondition::BadRequest, "{bad}");
        }
        let p = Presence::try_from(&parse(
            "<presence xmlns='jabber:client'><priority>-128</priority></presence>",
        ))
        .unwrap();
        assert_eq!(p.priority, Some(-128));
    }

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
