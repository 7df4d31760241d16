//! The typed stream header (`<stream:stream ...>`, RFC 6120 §4.7).

use core::fmt;
use core::str::FromStr;

/// `jabber:client`, the content namespace of client-to-server streams.
pub const NS_CLIENT: &str = "jabber:client";
/// `jabber:server`, the content namespace of server-to-server streams.
pub const NS_SERVER: &str = "jabber:server";
/// `jabber:component:accept`, the content namespace of XEP-0114 component streams.
pub const NS_COMPONENT_ACCEPT: &str = "jabber:component:accept";

/// The content namespace of a stream: the default namespace its stanzas inherit
/// (RFC 6120 §4.8.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentNamespace {
    /// `jabber:client`.
    Client,
    /// `jabber:server`.
    Server,
    /// `jabber:component:accept` (XEP-0114).
    ComponentAccept,
    /// Any other namespace; the stream layer decides whether it is acceptable.
    Other(String),
}

impl ContentNamespace {
    /// The namespace name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Client => NS_CLIENT,
            Self::Server => NS_SERVER,
            Self::ComponentAccept => NS_COMPONENT_ACCEPT,
            Self::Other(ns) => ns,
        }
    }
}

impl From<&str> for ContentNamespace {
    fn from(ns: &str) -> Self {
        match ns {
            NS_CLIENT => Self::Client,
            NS_SERVER => Self::Server,
            NS_COMPONENT_ACCEPT => Self::ComponentAccept,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl FromStr for ContentNamespace {
    type Err = core::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(s))
    }
}

impl fmt::Display for ContentNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stream `version` attribute: `major.minor` (RFC 6120 §4.7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamVersion {
    /// The major version; the parser only accepts 1.
    pub major: u32,
    /// The minor version.
    pub minor: u32,
}

impl StreamVersion {
    /// `1.0`, the version RFC 6120 defines.
    pub const V1_0: StreamVersion = StreamVersion { major: 1, minor: 0 };
}

/// The error returned when a `version` attribute is not `major.minor` in decimal digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidVersion;

impl fmt::Display for InvalidVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stream version is not of the form major.minor")
    }
}

impl core::error::Error for InvalidVersion {}

impl FromStr for StreamVersion {
    type Err = InvalidVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn number(part: &str) -> Result<u32, InvalidVersion> {
            // RFC 6120 §4.7.5: each part is a separate integer; leading zeros are ignored,
            // signs are not allowed (u32::from_str would accept a leading '+').
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidVersion);
            }
            let trimmed = part.trim_start_matches('0');
            if trimmed.is_empty() {
                return Ok(0);
            }
            trimmed.parse().map_err(|_| InvalidVersion)
        }
        let (major, minor) = s.split_once('.').ok_or(InvalidVersion)?;
        Ok(Self {
            major: number(major)?,
            minor: number(minor)?,
        })
    }
}

impl fmt::Display for StreamVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The stream header: the attributes and namespace declarations of the root
/// `<stream:stream>` element (RFC 6120 §4.7).
///
/// The parser produces it from the peer's header; the serializer writes one from it. Build
/// one with [`StreamHeader::new`] and set the fields you need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamHeader {
    /// The `to` attribute, as sent (not validated as a JID here).
    pub to: Option<String>,
    /// The `from` attribute, as sent.
    pub from: Option<String>,
    /// The `id` attribute (the stream ID).
    pub id: Option<String>,
    /// The `version` attribute. Absent means a pre-1.0 peer (RFC 6120 §4.7.5); the parser
    /// rejects any major version other than 1 with `unsupported-version`.
    pub version: Option<StreamVersion>,
    /// The `xml:lang` attribute.
    pub lang: Option<String>,
    /// The default namespace declared on the stream element, inherited by every stanza.
    /// `None` when the peer uses prefix-free canonicalization (RFC 6120 §4.8.2) and qualifies
    /// every stanza itself.
    pub content_namespace: Option<ContentNamespace>,
    /// The prefix bound to `http://etherx.jabber.org/streams` and used on the stream element
    /// (normally `stream`); `None` when the stream element is unprefixed (its namespace is
    /// then the default namespace and `content_namespace` is `None`).
    pub stream_prefix: Option<String>,
    /// Other namespace declarations on the stream element, as `(prefix, namespace)` in
    /// document order, e.g. `("db", "jabber:server:dialback")`. They are in scope for every
    /// stanza.
    pub namespace_declarations: Vec<(String, String)>,
}

impl StreamHeader {
    /// A version-1.0 header with the given content namespace, the usual `stream` prefix and
    /// no addresses, ID or language.
    #[must_use]
    pub fn new(content_namespace: ContentNamespace) -> Self {
        Self {
            to: None,
            from: None,
            id: None,
            version: Some(StreamVersion::V1_0),
            lang: None,
            content_namespace: Some(content_namespace),
            stream_prefix: Some("stream".to_owned()),
            namespace_declarations: Vec::new(),
        }
    }

    /// The namespace stanzas inherit: the content namespace, or the stream namespace for a
    /// prefix-free stream element, or `""` when nothing is declared.
    #[must_use]
    pub fn default_namespace(&self) -> &str {
        match (&self.content_namespace, &self.stream_prefix) {
            (Some(ns), _) => ns.as_str(),
            (None, None) => crate::conditions::NS_STREAMS,
            (None, Some(_)) => "",
        }
    }
}
