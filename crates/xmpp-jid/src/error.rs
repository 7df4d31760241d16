//! Error types: which part of a JID failed and why.

use core::fmt;

/// The three parts of a JID (RFC 7622 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum JidPart {
    /// The part before the `@` (PRECIS UsernameCaseMapped, RFC 7622 §3.3).
    Localpart,
    /// The server part (IP literal or IDNA2008 domain name, RFC 7622 §3.2).
    Domainpart,
    /// The part after the first `/` (PRECIS OpaqueString, RFC 7622 §3.4).
    Resourcepart,
}

impl JidPart {
    /// The RFC 7622 name of the part.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Localpart => "localpart",
            Self::Domainpart => "domainpart",
            Self::Resourcepart => "resourcepart",
        }
    }
}

impl fmt::Display for JidPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a PRECIS profile (RFC 8264/8265/8266) rejected a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PrecisError {
    /// The string is empty after enforcement.
    Empty,
    /// A code point is DISALLOWED or UNASSIGNED in the profile's string class (or excluded by
    /// the profile, e.g. RFC 7622's `" & ' / : < > @` in a localpart).
    Forbidden(char),
    /// A CONTEXTJ or CONTEXTO code point whose contextual rule (RFC 5892 Appendix A) fails.
    Context(char),
    /// The string contains right-to-left characters and breaks the Bidi Rule (RFC 5893 §2).
    Bidi,
    /// Applying the profile a second time changes the result (RFC 8264 §7), so the string has
    /// no stable enforced form.
    Unstable,
}

impl fmt::Display for PrecisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty string"),
            Self::Forbidden(c) => write!(f, "forbidden code point U+{:04X}", u32::from(*c)),
            Self::Context(c) => {
                write!(f, "contextual rule fails for U+{:04X}", u32::from(*c))
            }
            Self::Bidi => f.write_str("violates the Bidi Rule"),
            Self::Unstable => f.write_str("enforcement is not idempotent"),
        }
    }
}

impl core::error::Error for PrecisError {}

/// Why a DNS label of a domainpart is not a valid IDNA2008 label (RFC 5890/5891).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LabelError {
    /// Two dots in a row, a leading dot, or two trailing dots.
    Empty,
    /// The label's A-label (ASCII) form exceeds 63 octets.
    TooLong,
    /// The label starts or ends with `-`.
    Hyphen,
    /// `--` in positions 3 and 4 of a label that is not an `xn--` A-label.
    ReservedHyphens,
    /// The label starts with a combining mark.
    LeadingCombiningMark,
    /// An `xn--` label whose punycode does not decode, or that does not round-trip to the
    /// same A-label, or that decodes to pure ASCII.
    BadPunycode,
    /// The U-label is not in Unicode Normalization Form C.
    NotNfc,
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty label",
            Self::TooLong => "label longer than 63 octets",
            Self::Hyphen => "label starts or ends with a hyphen",
            Self::ReservedHyphens => "hyphens in positions 3 and 4",
            Self::LeadingCombiningMark => "label starts with a combining mark",
            Self::BadPunycode => "invalid A-label",
            Self::NotNfc => "label not in NFC",
        })
    }
}

impl core::error::Error for LabelError {}

/// Why a part of a JID was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JidErrorKind {
    /// The part is empty (e.g. `@example.com`, `example.com/`, or an empty string).
    Empty,
    /// The part is longer than 1023 octets after enforcement; `len` is the length found (or a
    /// lower bound of it when the input was rejected early).
    TooLong {
        /// Octets found.
        len: usize,
    },
    /// A code point that the part's profile does not allow.
    Forbidden(char),
    /// A CONTEXTJ/CONTEXTO code point whose contextual rule fails.
    Context(char),
    /// The part breaks the Bidi Rule (RFC 5893).
    Bidi,
    /// Enforcement is not idempotent for this input (RFC 8264 §7).
    Unstable,
    /// A `[...]` IPv6 literal, or a dotted-decimal IPv4 address, that does not parse.
    BadIpLiteral,
    /// A DNS label is not a valid IDNA2008 label.
    BadLabel(LabelError),
    /// A full JID (with a resourcepart) was required but none was given.
    MissingResource,
    /// A bare JID was required but a resourcepart was given.
    UnexpectedResource,
}

impl From<PrecisError> for JidErrorKind {
    fn from(e: PrecisError) -> Self {
        match e {
            PrecisError::Empty => Self::Empty,
            PrecisError::Forbidden(c) => Self::Forbidden(c),
            PrecisError::Context(c) => Self::Context(c),
            PrecisError::Bidi => Self::Bidi,
            PrecisError::Unstable => Self::Unstable,
        }
    }
}

/// A JID was rejected: [`part`](Self::part) says where, [`kind`](Self::kind) says why.
///
/// The `Display` text is suitable for the text of a `jid-malformed` stanza error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct JidError {
    /// The part that failed.
    pub part: JidPart,
    /// Why it failed.
    pub kind: JidErrorKind,
}

impl JidError {
    pub(crate) const fn new(part: JidPart, kind: JidErrorKind) -> Self {
        Self { part, kind }
    }

    pub(crate) fn precis(part: JidPart, e: PrecisError) -> Self {
        Self::new(part, e.into())
    }

    /// The part that failed.
    pub const fn part(&self) -> JidPart {
        self.part
    }

    /// Why it failed.
    pub const fn kind(&self) -> JidErrorKind {
        self.kind
    }
}

impl fmt::Display for JidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.part;
        match self.kind {
            JidErrorKind::Empty => write!(f, "empty {p}"),
            JidErrorKind::TooLong { len } => {
                write!(f, "{p} is {len} octets long, more than 1023")
            }
            JidErrorKind::Forbidden(c) => {
                write!(f, "forbidden code point U+{:04X} in {p}", u32::from(c))
            }
            JidErrorKind::Context(c) => {
                write!(f, "contextual rule fails for U+{:04X} in {p}", u32::from(c))
            }
            JidErrorKind::Bidi => write!(f, "{p} violates the Bidi Rule"),
            JidErrorKind::Unstable => write!(f, "{p} has no stable enforced form"),
            JidErrorKind::BadIpLiteral => write!(f, "invalid IP address literal in {p}"),
            JidErrorKind::BadLabel(e) => write!(f, "invalid DNS label in {p}: {e}"),
            JidErrorKind::MissingResource => f.write_str("a full JID needs a resourcepart"),
            JidErrorKind::UnexpectedResource => {
                f.write_str("a bare JID cannot have a resourcepart")
            }
        }
    }
}

impl core::error::Error for JidError {}
