//! Server Dialback (XEP-0220) on the wire, and its keys (XEP-0185): pure building blocks for
//! the server-to-server machines. This module parses and serializes; it never changes state.
//!
//! - [`DbResult`] and [`DbVerify`] are the `<db:result/>` and `<db:verify/>` elements of the
//!   `jabber:server:dialback` namespace ([`NS`]) in every form XEP-0220 §2 uses: a request
//!   carrying a key, a `type='valid'` or `type='invalid'` answer, and a `type='error'` answer
//!   with a dialback error (§2.5). [`Dialback`] is either of them. Addresses are [`Domain`]s
//!   (enforced RFC 7622 domainparts), the `id` of `<db:verify/>` a [`StreamId`], the key a
//!   [`DialbackKey`]; each is checked when parsed, and a bad one is a [`DialbackParseError`].
//! - [`DialbackFeature`] is the `<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>`
//!   stream feature (XEP-0220 §2.4.2): whether the peer handles dialback errors gracefully.
//! - [`DialbackSecret`] generates and checks keys as XEP-0185 §2 recommends:
//!   `HMAC-SHA256(hex(SHA256(secret)), receiving + ' ' + originating + ' ' + stream id)` as
//!   lowercase hex. The secret is the host's (from its configuration or drawn at start); it is
//!   hashed when the value is built and never printed.
//!
//! The XEP-0220 §2.1.1 exchange, from key to answer:
//!
//! ```
//! use xmpp_stream::dialback::{Content, DbResult, DbVerify, Dialback, DialbackSecret, Domain, StreamId};
//!
//! // capulet.example opens a stream to montague.example, which answers with stream id D60000229F.
//! let secret = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
//! let (capulet, montague) = (Domain::new("capulet.example")?, Domain::new("montague.example")?);
//! let id = StreamId::new("D60000229F")?;
//! let key = secret.key(&montague, &capulet, &id);
//! assert_eq!(key.as_str(), "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3");
//! let step1 = DbResult::request(capulet.clone(), montague.clone(), key).to_element();
//!
//! // montague.example reads it and asks capulet.example's authoritative server about the key.
//! let Dialback::Result(request) = Dialback::parse(&step1)? else { unreachable!() };
//! let Content::Key(key) = &request.content else { unreachable!() };
//! let step2 = DbVerify::request(montague.clone(), capulet.clone(), id.clone(), key.clone());
//!
//! // The authoritative server, which knows the secret, checks the key in constant time.
//! let verify = DbVerify::parse(&step2.to_element())?;
//! let Content::Key(key) = &verify.content else { unreachable!() };
//! assert!(secret.verify(&verify.from, &verify.to, &verify.id, key));
//! let step3 = verify.answer(Content::Valid);
//! assert_eq!((step3.from.as_str(), step3.to.as_str()), ("capulet.example", "montague.example"));
//!
//! // montague.example reports the result to capulet.example (step 4).
//! let step4 = request.answer(Content::Valid).to_element();
//! assert_eq!(step4.attr("type"), Some("valid"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use minidom::Element;
use minidom::rxml::Namespace;
use sha2::{Digest, Sha256};
use xmpp_jid::{BareJid, Jid, JidError};
use xmpp_xml::conditions::NS_XMPP_STANZAS;
use xmpp_xml::{
    ErrorElementError, ErrorText, NS_SERVER, StanzaError, StanzaErrorCondition, StanzaErrorType,
    StreamErrorCondition,
};

use crate::codec::{attr_name, set_attr};

/// `jabber:server:dialback`: the namespace of `<db:result/>` and `<db:verify/>`.
pub const NS: &str = "jabber:server:dialback";

/// `urn:xmpp:features:dialback`: the namespace of the dialback stream feature (XEP-0220 §2.4.2).
pub const NS_FEATURE: &str = "urn:xmpp:features:dialback";

/// Longest dialback key accepted from a peer, in bytes. XEP-0185 keys are 64 hex digits; the
/// bound leaves room for other generators while keeping what a peer can make us hold small.
pub const MAX_KEY_LEN: usize = 1024;

/// Longest stream id accepted in `<db:verify id='...'/>`, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 1024;

// ---------------------------------------------------------------------------------------------
// Typed values: domains, stream ids, keys.

/// A domain-only address (RFC 7622 domainpart, enforced: lowercased, IDNA A-labels shown as
/// U-labels): what `from` and `to` carry on server-to-server streams.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Domain(BareJid);

/// Why a string is not a [`Domain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainError {
    /// Not a valid JID at all.
    Jid(JidError),
    /// A valid JID, but with a localpart or a resourcepart.
    NotADomain,
}

impl Domain {
    /// Parses and enforces a domain; `juliet@example.com` or `example.com/r` is
    /// [`DomainError::NotADomain`].
    pub fn new(s: &str) -> Result<Self, DomainError> {
        let jid = Jid::new(s).map_err(DomainError::Jid)?;
        match jid.into_either() {
            Err(bare) => Self::try_from(bare),
            Ok(_) => Err(DomainError::NotADomain),
        }
    }

    /// The enforced form, e.g. `example.com`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The domain as a bare JID.
    pub fn as_bare_jid(&self) -> &BareJid {
        &self.0
    }

    /// The domain as a bare JID, by value.
    pub fn into_bare_jid(self) -> BareJid {
        self.0
    }
}

impl TryFrom<BareJid> for Domain {
    type Error = DomainError;

    fn try_from(jid: BareJid) -> Result<Self, DomainError> {
        if jid.node().is_some() {
            return Err(DomainError::NotADomain);
        }
        Ok(Self(jid))
    }
}

impl FromStr for Domain {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::new(s)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({:?})", self.as_str())
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Jid(e) => write!(f, "invalid domain: {e}"),
            Self::NotADomain => {
                f.write_str("not a domain: the address has a localpart or resource")
            }
        }
    }
}

impl core::error::Error for DomainError {}

/// The stream id a dialback key is bound to (the `id` of the receiving server's response
/// stream header; the `id` attribute of `<db:verify/>`): 1 to [`MAX_STREAM_ID_LEN`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(String);

impl StreamId {
    /// Checks the bounds: [`DialbackParseError::MissingStreamId`] when empty,
    /// [`DialbackParseError::StreamIdTooLong`] when too long.
    pub fn new(id: &str) -> Result<Self, DialbackParseError> {
        if id.is_empty() {
            Err(DialbackParseError::MissingStreamId)
        } else if id.len() > MAX_STREAM_ID_LEN {
            Err(DialbackParseError::StreamIdTooLong)
        } else {
            Ok(Self(id.to_owned()))
        }
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A dialback key as carried in a request: 1 to [`MAX_KEY_LEN`] bytes, no whitespace or
/// control characters (the element text around it is whitespace the parser trims).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialbackKey(String);

impl DialbackKey {
    /// Checks the form: [`DialbackParseError::MissingKey`] when empty,
    /// [`DialbackParseError::KeyTooLong`] when too long, [`DialbackParseError::InvalidKey`]
    /// for whitespace or control characters.
    pub fn new(key: &str) -> Result<Self, DialbackParseError> {
        if key.is_empty() {
            Err(DialbackParseError::MissingKey)
        } else if key.len() > MAX_KEY_LEN {
            Err(DialbackParseError::KeyTooLong)
        } else if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Err(DialbackParseError::InvalidKey)
        } else {
            Ok(Self(key.to_owned()))
        }
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DialbackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Keys (XEP-0185).

/// The host's dialback secret (XEP-0185 §2), kept only as the HMAC key it yields:
/// `SHA256(secret)` in lowercase hex. `Debug` never shows it.
#[derive(Clone)]
pub struct DialbackSecret {
    mac: Hmac<Sha256>,
}

impl DialbackSecret {
    /// Hashes `secret` (from the host's configuration, or random bytes drawn at start; XEP-0185
    /// §2 note 3) into the HMAC key.
    pub fn new(secret: &[u8]) -> Self {
        // 64 hex digits: exactly SHA-256's block size, HMAC's fixed-size key (no padding, and
        // no fallible `new_from_slice`).
        let hashed = hex_digits(&Sha256::digest(secret).into());
        Self {
            mac: <Hmac<Sha256> as KeyInit>::new(&hashed.into()),
        }
    }

    fn mac(&self, receiving: &Domain, originating: &Domain, stream_id: &StreamId) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        for part in [
            receiving.as_str(),
            " ",
            originating.as_str(),
            " ",
            stream_id.as_str(),
        ] {
            mac.update(part.as_bytes());
        }
        mac
    }

    /// The key for a stream from `originating` (the Sender Domain) to `receiving` (the Target
    /// Domain) whose response header carried `stream_id`: 64 lowercase hex digits. Domains are
    /// hashed in their enforced form, so both ends of one server agree on every spelling.
    pub fn key(
        &self,
        receiving: &Domain,
        originating: &Domain,
        stream_id: &StreamId,
    ) -> DialbackKey {
        let tag = self
            .mac(receiving, originating, stream_id)
            .finalize()
            .into_bytes();
        DialbackKey(
            hex_digits(&tag.into())
                .iter()
                .copied()
                .map(char::from)
                .collect(),
        )
    }

    /// Whether `key` is the key for this stream, compared in constant time (the hex is decoded
    /// and the MAC checked with `hmac`'s constant-time comparison). The hex may be in either
    /// case; anything that is not 64 hex digits is rejected without computing anything that
    /// depends on the secret.
    pub fn verify(
        &self,
        receiving: &Domain,
        originating: &Domain,
        stream_id: &StreamId,
        key: &DialbackKey,
    ) -> bool {
        let Some(tag) = hex_decode_32(key.as_str()) else {
            return false;
        };
        self.mac(receiving, originating, stream_id)
            .verify_slice(&tag)
            .is_ok()
    }
}

impl fmt::Debug for DialbackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DialbackSecret(..)")
    }
}

/// A SHA-256 output as 64 lowercase hex digits (XEP-0185 §2 note 4).
fn hex_digits(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&crate::codec::hex_pair(*b));
    }
    out
}

fn hex_decode_32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let nibble = |d: u8| {
        char::from(d)
            .to_digit(16)
            .and_then(|v| u8::try_from(v).ok())
    };
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Errors inside dialback elements (XEP-0220 §2.5).

/// The condition of a dialback error. XEP-0220 §2.5 uses RFC 6120 stanza error conditions
/// (`item-not-found`, `remote-server-not-found`, `remote-server-timeout`, `policy-violation`,
/// `not-authorized`, `forbidden`, `not-acceptable`, and `internal-server-error` for a bounced
/// stanza in §2.1.1) plus `remote-connection-failed`, which RFC 6120 defines only as a stream
/// error (§4.9.3.15) and so has its own variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DialbackCondition {
    /// An RFC 6120 §8.3.3 stanza error condition.
    Stanza(StanzaErrorCondition),
    /// `<remote-connection-failed/>`: the receiving server could not connect to the
    /// authoritative server (XEP-0220 §2.5, step 4).
    RemoteConnectionFailed,
}

impl DialbackCondition {
    const REMOTE_CONNECTION_FAILED: &'static str = "remote-connection-failed";

    /// The element name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stanza(c) => c.as_str(),
            Self::RemoteConnectionFailed => Self::REMOTE_CONNECTION_FAILED,
        }
    }

    /// The error type sent with this condition by default: RFC 6120's pairing for stanza
    /// conditions, `wait` for `remote-connection-failed` (a transient failure, like
    /// `remote-server-timeout`).
    pub const fn default_type(self) -> StanzaErrorType {
        match self {
            Self::Stanza(c) => c.default_type(),
            Self::RemoteConnectionFailed => StanzaErrorType::Wait,
        }
    }
}

impl From<StanzaErrorCondition> for DialbackCondition {
    fn from(condition: StanzaErrorCondition) -> Self {
        Self::Stanza(condition)
    }
}

impl fmt::Display for DialbackCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `<error/>` of a `type='error'` dialback element: a stanza error (RFC 6120 §8.3) in the
/// `jabber:server` namespace. Non-fatal for the stream (XEP-0220 §2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialbackError {
    /// The error type.
    pub error_type: StanzaErrorType,
    /// The defined condition.
    pub condition: DialbackCondition,
    /// Optional descriptive text.
    pub text: Option<ErrorText>,
}

impl DialbackError {
    /// An error with the condition and its default type.
    pub fn new(condition: impl Into<DialbackCondition>) -> Self {
        let condition = condition.into();
        Self {
            error_type: condition.default_type(),
            condition,
            text: None,
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

    /// The `<error/>` element (namespace `jabber:server`).
    pub fn to_element(&self) -> Element {
        match self.condition {
            DialbackCondition::Stanza(condition) => StanzaError {
                error_type: self.error_type,
                condition,
                new_address: None,
                by: None,
                text: self.text.clone(),
                application_condition: None,
            }
            .to_element(NS_SERVER),
            DialbackCondition::RemoteConnectionFailed => {
                let mut error = Element::bare("error", NS_SERVER);
                set_attr(&mut error, "type", self.error_type.as_str());
                error.append_child(Element::bare(self.condition.as_str(), NS_XMPP_STANZAS));
                if let Some(text) = &self.text {
                    let mut el = Element::bare("text", NS_XMPP_STANZAS);
                    if let Some(lang) = &text.lang {
                        el.set_attr(Namespace::XML, attr_name("lang"), lang.as_str());
                    }
                    el.append_text_node(text.text.as_str());
                    error.append_child(el);
                }
                error
            }
        }
    }

    /// Reads an `<error/>` element (namespace `jabber:server`). `by`, application conditions
    /// and redirect addresses mean nothing in dialback and are dropped.
    pub fn from_element(element: &Element) -> Result<Self, ErrorElementError> {
        if !element.is("error", NS_SERVER) {
            return Err(ErrorElementError::NotAnErrorElement);
        }
        let remote_failed = element
            .get_child(DialbackCondition::REMOTE_CONNECTION_FAILED, NS_XMPP_STANZAS)
            .is_some();
        if !remote_failed {
            let error = StanzaError::from_element(element)?;
            return Ok(Self {
                error_type: error.error_type,
                condition: DialbackCondition::Stanza(error.condition),
                text: error.text,
            });
        }
        let error_type = element
            .attr("type")
            .and_then(|t| t.parse::<StanzaErrorType>().ok())
            .ok_or(ErrorElementError::BadType)?;
        let known = element
            .children()
            .filter(|c| c.has_ns(NS_XMPP_STANZAS))
            .filter(|c| c.name().parse::<StanzaErrorCondition>().is_ok())
            .count();
        if known > 0 {
            return Err(ErrorElementError::MultipleConditions);
        }
        let text = element
            .get_child("text", NS_XMPP_STANZAS)
            .map(|t| ErrorText {
                lang: t
                    .attrs()
                    .get(&Namespace::XML, "lang")
                    .map(ToString::to_string),
                text: t.text(),
            });
        Ok(Self {
            error_type,
            condition: DialbackCondition::RemoteConnectionFailed,
            text,
        })
    }
}

impl From<StanzaError> for DialbackError {
    fn from(error: StanzaError) -> Self {
        Self {
            error_type: error.error_type,
            condition: DialbackCondition::Stanza(error.condition),
            text: error.text,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The elements.

/// The `type` attribute of a dialback answer (XEP-0220 §6 schema); a request has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DialbackType {
    /// `valid`: the key checked out.
    Valid,
    /// `invalid`: the key did not.
    Invalid,
    /// `error`: the check could not be made; an `<error/>` child says why.
    Error,
}

impl DialbackType {
    /// Every value.
    pub const ALL: &'static [DialbackType] = &[Self::Valid, Self::Invalid, Self::Error];

    /// The name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }
}

impl FromStr for DialbackType {
    type Err = DialbackParseError;

    fn from_str(s: &str) -> Result<Self, DialbackParseError> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or(DialbackParseError::UnknownType)
    }
}

impl fmt::Display for DialbackType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `<db:result/>` or `<db:verify/>` carries: a key (a request) or an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content {
    /// A request: the key as character data, no `type`.
    Key(DialbackKey),
    /// `type='valid'`, empty.
    Valid,
    /// `type='invalid'`, empty.
    Invalid,
    /// `type='error'` with its `<error/>` child.
    Error(DialbackError),
}

impl Content {
    /// The `type` attribute this content is sent with (`None` for a request).
    pub fn dialback_type(&self) -> Option<DialbackType> {
        match self {
            Self::Key(_) => None,
            Self::Valid => Some(DialbackType::Valid),
            Self::Invalid => Some(DialbackType::Invalid),
            Self::Error(_) => Some(DialbackType::Error),
        }
    }

    /// An error answer with `condition` and its default type.
    pub fn error(condition: impl Into<DialbackCondition>) -> Self {
        Self::Error(DialbackError::new(condition))
    }

    fn parse(element: &Element) -> Result<Self, DialbackParseError> {
        let kind = element
            .attr("type")
            .map(str::parse::<DialbackType>)
            .transpose()?;
        let mut children = element.children();
        match kind {
            None => {
                if children.next().is_some() {
                    return Err(DialbackParseError::UnexpectedChild);
                }
                let text = element.text();
                DialbackKey::new(text.trim()).map(Self::Key)
            }
            // An answer's character data means nothing (some servers echo the key): ignored.
            Some(DialbackType::Valid | DialbackType::Invalid) => {
                if children.next().is_some() {
                    return Err(DialbackParseError::UnexpectedChild);
                }
                Ok(if kind == Some(DialbackType::Valid) {
                    Self::Valid
                } else {
                    Self::Invalid
                })
            }
            Some(DialbackType::Error) => {
                let error = children.next().ok_or(DialbackParseError::MissingError)?;
                if !error.is("error", NS_SERVER) || children.next().is_some() {
                    return Err(DialbackParseError::UnexpectedChild);
                }
                DialbackError::from_element(error)
                    .map(Self::Error)
                    .map_err(DialbackParseError::InvalidError)
            }
        }
    }
}

/// A `<db:result/>`: the initiating server's key for a domain pair (XEP-0220 §2.1.1 step 1),
/// or the receiving server's answer to it (step 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbResult {
    /// The sender: the Sender Domain in a request, the Target Domain in an answer.
    pub from: Domain,
    /// The addressee: the Target Domain in a request, the Sender Domain in an answer.
    pub to: Domain,
    /// The key or the answer.
    pub content: Content,
}

impl DbResult {
    /// The request for the pair `from` → `to`, with its key.
    pub fn request(from: Domain, to: Domain, key: DialbackKey) -> Self {
        Self {
            from,
            to,
            content: Content::Key(key),
        }
    }

    /// The answer to this request: `from` and `to` swapped.
    #[must_use]
    pub fn answer(&self, content: Content) -> Self {
        Self {
            from: self.to.clone(),
            to: self.from.clone(),
            content,
        }
    }

    /// Reads a `<db:result/>`.
    pub fn parse(element: &Element) -> Result<Self, DialbackParseError> {
        let (from, to) = addresses(element, "result")?;
        Ok(Self {
            from,
            to,
            content: Content::parse(element)?,
        })
    }

    /// Builds the `<db:result/>` element.
    pub fn to_element(&self) -> Element {
        build("result", &self.from, &self.to, None, &self.content)
    }
}

/// A `<db:verify/>`: the receiving server's question to the authoritative server about a key
/// (XEP-0220 §2.1.2 step 2), or the answer (step 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbVerify {
    /// The sender: the Target Domain in a request, the Sender Domain in an answer.
    pub from: Domain,
    /// The addressee: the Sender Domain in a request, the Target Domain in an answer.
    pub to: Domain,
    /// The stream id the key was generated for (the receiving server's response header).
    pub id: StreamId,
    /// The key or the answer.
    pub content: Content,
}

impl DbVerify {
    /// The request to check `key` for the stream `id`, from `from` (Target Domain) to `to`
    /// (Sender Domain, whose authoritative server answers).
    pub fn request(from: Domain, to: Domain, id: StreamId, key: DialbackKey) -> Self {
        Self {
            from,
            to,
            id,
            content: Content::Key(key),
        }
    }

    /// The answer to this request: `from` and `to` swapped, the same `id`.
    #[must_use]
    pub fn answer(&self, content: Content) -> Self {
        Self {
            from: self.to.clone(),
            to: self.from.clone(),
            id: self.id.clone(),
            content,
        }
    }

    /// Reads a `<db:verify/>`.
    pub fn parse(element: &Element) -> Result<Self, DialbackParseError> {
        let (from, to) = addresses(element, "verify")?;
        let id = element
            .attr("id")
            .ok_or(DialbackParseError::MissingAttribute(Attribute::Id))?;
        Ok(Self {
            from,
            to,
            id: StreamId::new(id)?,
            content: Content::parse(element)?,
        })
    }

    /// Builds the `<db:verify/>` element.
    pub fn to_element(&self) -> Element {
        build(
            "verify",
            &self.from,
            &self.to,
            Some(&self.id),
            &self.content,
        )
    }
}

/// Checks the element's name and reads `from` and `to`.
fn addresses(element: &Element, name: &str) -> Result<(Domain, Domain), DialbackParseError> {
    if !element.is(name, NS) {
        return Err(DialbackParseError::NotDialback);
    }
    let domain = |attribute: Attribute| {
        let value = element
            .attr(attribute.as_str())
            .ok_or(DialbackParseError::MissingAttribute(attribute))?;
        Domain::new(value).map_err(|error| DialbackParseError::InvalidDomain { attribute, error })
    };
    Ok((domain(Attribute::From)?, domain(Attribute::To)?))
}

fn build(
    name: &str,
    from: &Domain,
    to: &Domain,
    id: Option<&StreamId>,
    content: &Content,
) -> Element {
    let mut element = Element::bare(name, NS);
    set_attr(&mut element, "from", from.as_str());
    set_attr(&mut element, "to", to.as_str());
    if let Some(id) = id {
        set_attr(&mut element, "id", id.as_str());
    }
    if let Some(kind) = content.dialback_type() {
        set_attr(&mut element, "type", kind.as_str());
    }
    match content {
        Content::Key(key) => {
            element.append_text_node(key.as_str());
        }
        Content::Error(error) => {
            element.append_child(error.to_element());
        }
        Content::Valid | Content::Invalid => {}
    }
    element
}

/// A dialback element: `<db:result/>` or `<db:verify/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialback {
    /// `<db:result/>`.
    Result(DbResult),
    /// `<db:verify/>`.
    Verify(DbVerify),
}

impl Dialback {
    /// Reads either element; anything else is [`DialbackParseError::NotDialback`].
    pub fn parse(element: &Element) -> Result<Self, DialbackParseError> {
        match element.name() {
            "result" => DbResult::parse(element).map(Self::Result),
            "verify" => DbVerify::parse(element).map(Self::Verify),
            _ => Err(DialbackParseError::NotDialback),
        }
    }

    /// Builds the element.
    pub fn to_element(&self) -> Element {
        match self {
            Self::Result(result) => result.to_element(),
            Self::Verify(verify) => verify.to_element(),
        }
    }
}

impl From<DbResult> for Dialback {
    fn from(result: DbResult) -> Self {
        Self::Result(result)
    }
}

impl From<DbVerify> for Dialback {
    fn from(verify: DbVerify) -> Self {
        Self::Verify(verify)
    }
}

/// An attribute of a dialback element, named in parse errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Attribute {
    /// `from`.
    From,
    /// `to`.
    To,
    /// `id` (on `<db:verify/>`).
    Id,
}

impl Attribute {
    /// The attribute's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::From => "from",
            Self::To => "to",
            Self::Id => "id",
        }
    }
}

/// Why a dialback element could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialbackParseError {
    /// Not `<result/>` or `<verify/>` in `jabber:server:dialback` (or, for
    /// [`DialbackFeature::parse`], not the feature element).
    NotDialback,
    /// A required attribute is absent.
    MissingAttribute(Attribute),
    /// `from` or `to` is not a domain.
    InvalidDomain {
        /// Which attribute.
        attribute: Attribute,
        /// Why.
        error: DomainError,
    },
    /// `type` is not `valid`, `invalid` or `error`.
    UnknownType,
    /// A request (no `type`) without a key.
    MissingKey,
    /// A key longer than [`MAX_KEY_LEN`].
    KeyTooLong,
    /// A key with whitespace or control characters inside.
    InvalidKey,
    /// An empty `id`.
    MissingStreamId,
    /// An `id` longer than [`MAX_STREAM_ID_LEN`].
    StreamIdTooLong,
    /// A child element the form does not allow (any child of a request or a valid/invalid
    /// answer; anything but one `<error/>` in an error answer).
    UnexpectedChild,
    /// `type='error'` without an `<error/>` child.
    MissingError,
    /// The `<error/>` child cannot be read.
    InvalidError(ErrorElementError),
}

impl DialbackParseError {
    /// The stream error a receiving machine would close with, if it treats this as fatal:
    /// `improper-addressing` for a missing `from`/`to` and `invalid-from` for a bad `from`
    /// (RFC 6120 §4.9.3.7, §4.9.3.9), `host-unknown` for a bad `to`, `policy-violation` for a
    /// bound exceeded, `bad-format` otherwise.
    pub fn stream_condition(&self) -> StreamErrorCondition {
        match self {
            Self::MissingAttribute(Attribute::From | Attribute::To) => {
                StreamErrorCondition::ImproperAddressing
            }
            Self::InvalidDomain {
                attribute: Attribute::From,
                ..
            } => StreamErrorCondition::InvalidFrom,
            Self::InvalidDomain { .. } => StreamErrorCondition::HostUnknown,
            Self::KeyTooLong | Self::StreamIdTooLong => StreamErrorCondition::PolicyViolation,
            _ => StreamErrorCondition::BadFormat,
        }
    }
}

impl fmt::Display for DialbackParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotDialback => f.write_str("not a dialback element"),
            Self::MissingAttribute(a) => write!(f, "dialback element without '{}'", a.as_str()),
            Self::InvalidDomain { attribute, error } => {
                write!(f, "dialback '{}': {error}", attribute.as_str())
            }
            Self::UnknownType => f.write_str("unknown dialback type"),
            Self::MissingKey => f.write_str("dialback request without a key"),
            Self::KeyTooLong => write!(f, "dialback key longer than {MAX_KEY_LEN} bytes"),
            Self::InvalidKey => f.write_str("dialback key with whitespace or control characters"),
            Self::MissingStreamId => f.write_str("empty dialback stream id"),
            Self::StreamIdTooLong => {
                write!(
                    f,
                    "dialback stream id longer than {MAX_STREAM_ID_LEN} bytes"
                )
            }
            Self::UnexpectedChild => f.write_str("unexpected child in a dialback element"),
            Self::MissingError => f.write_str("dialback error without <error/>"),
            Self::InvalidError(e) => write!(f, "dialback error: {e}"),
        }
    }
}

impl core::error::Error for DialbackParseError {}

// ---------------------------------------------------------------------------------------------
// The stream feature (XEP-0220 §2.4.2).

/// The `<dialback xmlns='urn:xmpp:features:dialback'/>` stream feature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DialbackFeature {
    /// `<errors/>` is present: the server handles dialback errors (`type='error'`) without
    /// closing the stream, so target multiplexing may be used (XEP-0220 §2.6.2).
    pub errors: bool,
}

impl DialbackFeature {
    /// Reads the feature element; other children are ignored (stream features are extensible).
    pub fn parse(element: &Element) -> Result<Self, DialbackParseError> {
        if !element.is("dialback", NS_FEATURE) {
            return Err(DialbackParseError::NotDialback);
        }
        Ok(Self {
            errors: element.has_child("errors", NS_FEATURE),
        })
    }

    /// Builds the feature element.
    pub fn to_element(self) -> Element {
        let mut element = Element::bare("dialback", NS_FEATURE);
        if self.errors {
            element.append_child(Element::bare("errors", NS_FEATURE));
        }
        element
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads one XML element, declaring the stream's namespaces as a `jabber:server` stream
    /// header would (XEP-0220 §2.4.1).
    fn xml(body: &str) -> Element {
        let name_end = body.find([' ', '>', '/']).expect("an element");
        let declared = format!(
            "{} xmlns='jabber:server' xmlns:db='jabber:server:dialback'{}",
            &body[..name_end],
            &body[name_end..]
        );
        declared.parse::<Element>().expect("test XML")
    }

    fn d(s: &str) -> Domain {
        Domain::new(s).unwrap()
    }

    fn id(s: &str) -> StreamId {
        StreamId::new(s).unwrap()
    }

    fn key(s: &str) -> DialbackKey {
        DialbackKey::new(s).unwrap()
    }

    fn item_not_found() -> Content {
        Content::Error(DialbackError::new(StanzaErrorCondition::ItemNotFound))
    }

    const XEP0220_KEY_1: &str = "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3";
    const XEP0220_KEY_5: &str = "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d";

    // Keys: every value below was also computed independently with Python 3's `hmac` and
    // `hashlib`: hmac.new(hashlib.sha256(secret).hexdigest().encode(), message, sha256).

    #[test]
    fn xep0185_section3_vector() {
        // XEP-0185 §3: secret s3cr3tf0rd14lb4ck, receiving xmpp.example.com, originating
        // example.org, stream id D60000229F.
        let secret = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        let (receiving, originating) = (d("xmpp.example.com"), d("example.org"));
        let k = secret.key(&receiving, &originating, &id("D60000229F"));
        assert_eq!(
            k.as_str(),
            "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"
        );
        assert!(secret.verify(&receiving, &originating, &id("D60000229F"), &k));
        // The intermediate value: the HMAC key is the hex of SHA256(secret).
        assert_eq!(
            hex_digits(&Sha256::digest(b"s3cr3tf0rd14lb4ck").into()),
            *b"a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc"
        );
    }

    #[test]
    fn xep0220_example_1_and_5_keys() {
        // Example 1 (§2.1.1): capulet.example's secret, stream id D60000229F.
        let capulet = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        let k1 = capulet.key(
            &d("montague.example"),
            &d("capulet.example"),
            &id("D60000229F"),
        );
        assert_eq!(k1.as_str(), XEP0220_KEY_1);
        // Example 5 (§2.1.2), checked in §2.2.2: montague.example's secret, stream 417GAF25.
        let montague = DialbackSecret::new(b"d14lb4ck43v3r");
        let k5 = montague.key(
            &d("capulet.example"),
            &d("montague.example"),
            &id("417GAF25"),
        );
        assert_eq!(k5.as_str(), XEP0220_KEY_5);
    }

    #[test]
    fn verify_rejects_every_wrong_input() {
        let secret = DialbackSecret::new(b"d14lb4ck43v3r");
        let (r, o, i) = (d("capulet.example"), d("montague.example"), id("417GAF25"));
        assert!(secret.verify(&r, &o, &i, &key(XEP0220_KEY_5)));
        // Upper-case hex is the same MAC.
        assert!(secret.verify(&r, &o, &i, &key(&XEP0220_KEY_5.to_uppercase())));
        // Another stream id: 0f3e2c... by Python, and not the Example 5 key.
        let other = secret.key(&r, &o, &id("417GAF26"));
        assert_eq!(
            other.as_str(),
            "0f3e2cdbfe06fcb1a6c7535553ba0d2391e19e76dc4ff316ea035d58b83d5ef7"
        );
        assert!(!secret.verify(&r, &o, &id("417GAF26"), &key(XEP0220_KEY_5)));
        // Domains swapped, another secret, a flipped digit, truncated, not hex.
        assert!(!secret.verify(&o, &r, &i, &key(XEP0220_KEY_5)));
        assert!(!DialbackSecret::new(b"s3cr3tf0rd14lb4ck").verify(&r, &o, &i, &key(XEP0220_KEY_5)));
        let flipped = format!("{}e", &XEP0220_KEY_5[..63]);
        assert!(!secret.verify(&r, &o, &i, &key(&flipped)));
        assert!(!secret.verify(&r, &o, &i, &key(&XEP0220_KEY_5[..62])));
        assert!(!secret.verify(&r, &o, &i, &key(&format!("{}zz", &XEP0220_KEY_5[..62]))));
        assert!(!secret.verify(&r, &o, &i, &key(&format!("{XEP0220_KEY_5}00"))));
    }

    #[test]
    fn the_secret_never_prints() {
        let secret = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        let shown = format!("{secret:?} {secret:#?}");
        assert_eq!(shown, "DialbackSecret(..) DialbackSecret(..)");
        assert!(!shown.contains("a7136eb1"));
    }

    #[test]
    fn xep0220_examples_parse() {
        let (capulet, montague) = (d("capulet.example"), d("montague.example"));
        // Example 1 (and 9): the key, with the whitespace of the example around it.
        let ex1 = xml(&format!(
            "<db:result from='capulet.example' to='montague.example'>\n        {XEP0220_KEY_1}\n      </db:result>"
        ));
        assert_eq!(
            Dialback::parse(&ex1),
            Ok(Dialback::Result(DbResult::request(
                capulet.clone(),
                montague.clone(),
                key(XEP0220_KEY_1)
            )))
        );
        // Example 5 (and 13).
        let ex5 = xml(&format!(
            "<db:verify from='capulet.example' id='417GAF25' to='montague.example'>\n       {XEP0220_KEY_5}\n     </db:verify>"
        ));
        let request = DbVerify::request(
            capulet.clone(),
            montague.clone(),
            id("417GAF25"),
            key(XEP0220_KEY_5),
        );
        assert_eq!(Dialback::parse(&ex5), Ok(Dialback::Verify(request.clone())));
        // Examples 2, 3, 4 (and 11, 12, 10) and 6, 7, 8 (and 15, 16, 14): the answers, the
        // verify ones built with `answer`.
        let result_answer = |content| {
            Dialback::Result(DbResult {
                from: montague.clone(),
                to: capulet.clone(),
                content,
            })
        };
        let verify_answer = |content| Dialback::Verify(request.answer(content));
        let error = "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>";
        for (name, id_attr) in [("result", ""), ("verify", "id='417GAF25'")] {
            for (text, content) in [
                ("type='valid'/>".to_owned(), Content::Valid),
                ("type='invalid'/>".to_owned(), Content::Invalid),
                (
                    format!("type='error'>{error}</db:{name}>"),
                    item_not_found(),
                ),
            ] {
                let el = xml(&format!(
                    "<db:{name} from='montague.example' {id_attr} to='capulet.example' {text}"
                ));
                let expected = if name == "result" {
                    result_answer(content)
                } else {
                    verify_answer(content)
                };
                assert_eq!(Dialback::parse(&el), Ok(expected), "{name} {text}");
            }
        }
    }

    #[test]
    fn xep0220_example_18_feature() {
        let ex18 = "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
            .parse::<Element>()
            .unwrap();
        assert_eq!(
            DialbackFeature::parse(&ex18),
            Ok(DialbackFeature { errors: true })
        );
        let bare = "<dialback xmlns='urn:xmpp:features:dialback'/>"
            .parse::<Element>()
            .unwrap();
        assert_eq!(
            DialbackFeature::parse(&bare),
            Ok(DialbackFeature { errors: false })
        );
        // An `<errors/>` in another namespace is not the sub-feature.
        let foreign =
            "<dialback xmlns='urn:xmpp:features:dialback'><errors xmlns='urn:example'/></dialback>"
                .parse::<Element>()
                .unwrap();
        assert_eq!(
            DialbackFeature::parse(&foreign),
            Ok(DialbackFeature { errors: false })
        );
        for feature in [
            DialbackFeature { errors: true },
            DialbackFeature { errors: false },
        ] {
            let el = feature.to_element();
            assert!(el.is("dialback", NS_FEATURE));
            assert_eq!(el.has_child("errors", NS_FEATURE), feature.errors);
            assert_eq!(DialbackFeature::parse(&el), Ok(feature));
        }
        let starttls = Element::bare("starttls", "urn:ietf:params:xml:ns:xmpp-tls");
        assert_eq!(
            DialbackFeature::parse(&starttls),
            Err(DialbackParseError::NotDialback)
        );
    }

    /// Every form of both elements, with every XEP-0220 §2.5 condition.
    fn every_form() -> Vec<Dialback> {
        let (a, b) = (d("capulet.example"), d("montague.example"));
        let mut contents = vec![
            Content::Key(key(XEP0220_KEY_1)),
            Content::Valid,
            Content::Invalid,
        ];
        for condition in [
            DialbackCondition::Stanza(StanzaErrorCondition::ItemNotFound),
            DialbackCondition::RemoteConnectionFailed,
            DialbackCondition::Stanza(StanzaErrorCondition::RemoteServerNotFound),
            DialbackCondition::Stanza(StanzaErrorCondition::RemoteServerTimeout),
            DialbackCondition::Stanza(StanzaErrorCondition::PolicyViolation),
            DialbackCondition::Stanza(StanzaErrorCondition::NotAuthorized),
            DialbackCondition::Stanza(StanzaErrorCondition::Forbidden),
            DialbackCondition::Stanza(StanzaErrorCondition::NotAcceptable),
            DialbackCondition::Stanza(StanzaErrorCondition::InternalServerError),
        ] {
            contents.push(Content::error(condition));
            contents.push(Content::Error(
                DialbackError::new(condition).with_text(Some("en"), "no route"),
            ));
        }
        let mut forms = Vec::new();
        for content in contents {
            forms.push(Dialback::Result(DbResult {
                from: a.clone(),
                to: b.clone(),
                content: content.clone(),
            }));
            forms.push(Dialback::Verify(DbVerify {
                from: b.clone(),
                to: a.clone(),
                id: id("417GAF25"),
                content,
            }));
        }
        forms
    }

    #[test]
    fn every_form_round_trips_as_element_and_as_text() {
        for form in every_form() {
            let el = form.to_element();
            assert!(el.has_ns(NS));
            assert_eq!(Dialback::parse(&el), Ok(form.clone()), "{el:?}");
            // Through serialized text too (the error's namespace survives a default-namespace
            // writer).
            let mut bytes = Vec::new();
            el.write_to(&mut bytes).unwrap();
            let reparsed = String::from_utf8(bytes)
                .unwrap()
                .parse::<Element>()
                .unwrap();
            assert_eq!(Dialback::parse(&reparsed), Ok(form));
        }
    }

    #[test]
    fn built_elements_have_the_wire_shape() {
        let (a, b) = (d("capulet.example"), d("montague.example"));
        let request = DbVerify::request(b.clone(), a.clone(), id("417GAF25"), key(XEP0220_KEY_5));
        let el = request.to_element();
        assert!(el.is("verify", NS));
        assert_eq!(
            (
                el.attr("from"),
                el.attr("to"),
                el.attr("id"),
                el.attr("type")
            ),
            (
                Some("montague.example"),
                Some("capulet.example"),
                Some("417GAF25"),
                None
            )
        );
        assert_eq!(el.text(), XEP0220_KEY_5);
        let error = DbResult::request(a, b, key(XEP0220_KEY_1))
            .answer(Content::error(DialbackCondition::RemoteConnectionFailed))
            .to_element();
        assert_eq!(error.attr("type"), Some("error"));
        assert_eq!(error.text(), "");
        let child = error
            .get_child("error", NS_SERVER)
            .expect("<error/> in jabber:server");
        assert_eq!(child.attr("type"), Some("wait"));
        assert!(child.has_child("remote-connection-failed", NS_XMPP_STANZAS));
        let not_found = Content::error(StanzaErrorCondition::RemoteServerNotFound);
        let Content::Error(e) = &not_found else {
            unreachable!()
        };
        assert_eq!(e.error_type, StanzaErrorType::Cancel);
        assert_eq!(
            DialbackError::from(StanzaError::new(StanzaErrorCondition::RemoteServerNotFound)),
            *e
        );
    }

    #[test]
    fn hostile_input_gets_its_typed_error() {
        use DialbackParseError as E;
        let k = XEP0220_KEY_1;
        let long_key = "a".repeat(MAX_KEY_LEN + 1);
        let long_id = "i".repeat(MAX_STREAM_ID_LEN + 1);
        let cases: Vec<(String, E)> = vec![
            (format!("<db:result to='b.example'>{k}</db:result>"), E::MissingAttribute(Attribute::From)),
            (format!("<db:result from='a.example'>{k}</db:result>"), E::MissingAttribute(Attribute::To)),
            (
                format!("<db:verify from='a.example' to='b.example'>{k}</db:verify>"),
                E::MissingAttribute(Attribute::Id),
            ),
            (
                format!("<db:verify from='a.example' to='b.example' id=''>{k}</db:verify>"),
                E::MissingStreamId,
            ),
            (
                format!("<db:verify from='a.example' to='b.example' id='{long_id}'>{k}</db:verify>"),
                E::StreamIdTooLong,
            ),
            (
                format!("<db:result from='juliet@a.example' to='b.example'>{k}</db:result>"),
                E::InvalidDomain { attribute: Attribute::From, error: DomainError::NotADomain },
            ),
            (
                format!("<db:result from='a.example' to='b.example/res'>{k}</db:result>"),
                E::InvalidDomain { attribute: Attribute::To, error: DomainError::NotADomain },
            ),
            ("<db:result from='a.example' to='b.example' type='maybe'/>".into(), E::UnknownType),
            ("<db:result from='a.example' to='b.example' type='Valid'/>".into(), E::UnknownType),
            ("<db:result from='a.example' to='b.example'/>".into(), E::MissingKey),
            ("<db:result from='a.example' to='b.example'>   </db:result>".into(), E::MissingKey),
            (format!("<db:result from='a.example' to='b.example'>{long_key}</db:result>"), E::KeyTooLong),
            ("<db:result from='a.example' to='b.example'>ab cd</db:result>".into(), E::InvalidKey),
            (
                format!("<db:result from='a.example' to='b.example'>{k}<x xmlns='urn:example'/></db:result>"),
                E::UnexpectedChild,
            ),
            (
                "<db:result from='a.example' to='b.example' type='valid'><x xmlns='urn:example'/></db:result>".into(),
                E::UnexpectedChild,
            ),
            ("<db:result from='a.example' to='b.example' type='error'/>".into(), E::MissingError),
            (
                "<db:result from='a.example' to='b.example' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error><x xmlns='urn:example'/></db:result>".into(),
                E::UnexpectedChild,
            ),
            (
                // `<error/>` in the dialback namespace, not `jabber:server`.
                "<db:result from='a.example' to='b.example' type='error'><db:error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></db:error></db:result>".into(),
                E::UnexpectedChild,
            ),
            (
                "<db:result from='a.example' to='b.example' type='error'><error type='cancel'/></db:result>".into(),
                E::InvalidError(ErrorElementError::MissingCondition),
            ),
            (
                "<db:verify from='a.example' to='b.example' id='x' type='error'><error><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>".into(),
                E::InvalidError(ErrorElementError::BadType),
            ),
            (
                "<db:verify from='a.example' to='b.example' id='x' type='error'><error type='sometimes'><remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>".into(),
                E::InvalidError(ErrorElementError::BadType),
            ),
            (
                "<db:verify from='a.example' to='b.example' id='x' type='error'><error type='wait'><remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>".into(),
                E::InvalidError(ErrorElementError::MultipleConditions),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Dialback::parse(&xml(&text)), Err(expected), "{text}");
        }
        // Domains that are not valid JIDs at all.
        for bad in [
            "",
            "a..example",
            "exa mple.com",
            "[::1",
            "under_score.example",
        ] {
            let el = xml(&format!(
                "<db:result from='{bad}' to='b.example'>{k}</db:result>"
            ));
            assert!(
                matches!(
                    Dialback::parse(&el),
                    Err(E::InvalidDomain {
                        attribute: Attribute::From,
                        error: DomainError::Jid(_)
                    })
                ),
                "{bad:?}"
            );
        }
        // Not a dialback element.
        for el in [
            Element::bare("result", NS_SERVER),
            Element::bare("message", NS_SERVER),
            Element::bare("db", NS),
        ] {
            assert_eq!(Dialback::parse(&el), Err(E::NotDialback));
        }
        assert_eq!(
            DbVerify::parse(
                &DbResult::request(d("a.example"), d("b.example"), key(k)).to_element()
            ),
            Err(E::NotDialback)
        );
    }

    #[test]
    fn answers_tolerate_an_echoed_key() {
        let el = xml(&format!(
            "<db:result from='a.example' to='b.example' type='valid'>{XEP0220_KEY_1}</db:result>"
        ));
        assert_eq!(DbResult::parse(&el).map(|r| r.content), Ok(Content::Valid));
    }

    #[test]
    fn errors_map_to_stream_conditions() {
        use DialbackParseError as E;
        assert_eq!(
            E::MissingAttribute(Attribute::To).stream_condition(),
            StreamErrorCondition::ImproperAddressing
        );
        let bad_from = E::InvalidDomain {
            attribute: Attribute::From,
            error: DomainError::NotADomain,
        };
        assert_eq!(
            bad_from.stream_condition(),
            StreamErrorCondition::InvalidFrom
        );
        let bad_to = E::InvalidDomain {
            attribute: Attribute::To,
            error: DomainError::NotADomain,
        };
        assert_eq!(bad_to.stream_condition(), StreamErrorCondition::HostUnknown);
        assert_eq!(
            E::KeyTooLong.stream_condition(),
            StreamErrorCondition::PolicyViolation
        );
        assert_eq!(
            E::UnknownType.stream_condition(),
            StreamErrorCondition::BadFormat
        );
    }

    #[test]
    fn domains_are_enforced() {
        assert_eq!(d("Capulet.EXAMPLE.").as_str(), "capulet.example");
        assert_eq!(d("xn--bcher-kva.example").as_str(), "bücher.example");
        assert_eq!(Domain::new("a@b.example"), Err(DomainError::NotADomain));
        let bare = BareJid::new("juliet@capulet.example").unwrap();
        assert_eq!(Domain::try_from(bare), Err(DomainError::NotADomain));
        assert_eq!(
            d("capulet.example").into_bare_jid(),
            BareJid::new("capulet.example").unwrap()
        );
    }

    fn domain_strategy() -> impl Strategy<Value = Domain> {
        // LDH labels with at most one hyphen, never at either end (so never the `--` IDNA
        // reserves at positions 3 and 4).
        "[a-z]([a-z0-9]{0,4}-?[a-z0-9]{1,4})?(\\.[a-z]([a-z0-9]{0,4}-?[a-z0-9]{1,4})?){0,3}"
            .prop_map(|s| d(&s))
    }

    fn content_strategy() -> impl Strategy<Value = Content> {
        let condition = prop_oneof![
            Just(DialbackCondition::RemoteConnectionFailed),
            proptest::sample::select(StanzaErrorCondition::ALL).prop_map(DialbackCondition::Stanza),
        ];
        let error = (
            condition,
            proptest::sample::select(StanzaErrorType::ALL),
            proptest::option::of((proptest::option::of("[a-z]{2}"), "[ -~]{0,20}")),
        )
            .prop_map(|(condition, error_type, text)| {
                let mut e = DialbackError::new(condition);
                e.error_type = error_type;
                if let Some((lang, text)) = text {
                    e = e.with_text(lang.as_deref(), text);
                }
                Content::Error(e)
            });
        prop_oneof![
            "[!-~]{1,80}".prop_map(|k| Content::Key(key(&k))),
            Just(Content::Valid),
            Just(Content::Invalid),
            error,
        ]
    }

    fn dialback_strategy() -> impl Strategy<Value = Dialback> {
        (
            domain_strategy(),
            domain_strategy(),
            proptest::option::of("[!-~]{1,40}"),
            content_strategy(),
        )
            .prop_map(|(from, to, stream_id, content)| match stream_id {
                None => Dialback::Result(DbResult { from, to, content }),
                Some(s) => Dialback::Verify(DbVerify {
                    from,
                    to,
                    id: id(&s),
                    content,
                }),
            })
    }

    /// Strategy for hostile attribute values: anything XML text can carry.
    fn any_value() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            "\\PC{0,40}",
            Just("valid".to_owned()),
            Just("error".to_owned()),
            Just("a.example".to_owned()),
            "[a-z@./\\[\\]:]{0,20}",
        ])
    }

    proptest! {
        #[test]
        fn build_then_parse_is_the_identity(form in dialback_strategy()) {
            prop_assert_eq!(Dialback::parse(&form.to_element()), Ok(form));
        }

        #[test]
        fn parse_never_panics(
            name in prop_oneof![Just("result"), Just("verify")],
            from in any_value(),
            to in any_value(),
            stream_id in any_value(),
            kind in any_value(),
            text in "\\PC{0,80}",
            child in proptest::option::of(prop_oneof![Just("error"), Just("x")]),
        ) {
            let mut el = Element::bare(name, NS);
            for (attr, value) in [("from", &from), ("to", &to), ("id", &stream_id), ("type", &kind)] {
                if let Some(value) = value {
                    set_attr(&mut el, attr, value);
                }
            }
            el.append_text_node(text);
            if let Some(child) = child {
                el.append_child(Element::bare(child, NS_SERVER));
            }
            // Whatever the outcome, it is a value, and a success builds back to itself.
            if let Ok(parsed) = Dialback::parse(&el) {
                prop_assert_eq!(Dialback::parse(&parsed.to_element()), Ok(parsed));
            }
        }
    }
}
