//! Errors of the parser and the serializer.

use core::fmt;

use crate::conditions::StreamErrorCondition;

/// A fatal error in the peer's XML stream.
///
/// Every error maps to exactly one RFC 6120 stream error condition ([`Self::condition`]) that
/// the stream layer sends before closing. The parser is sticky: once it has returned an
/// error, it returns the same error from every later call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    condition: StreamErrorCondition,
    detail: String,
}

impl ParseError {
    pub(crate) fn new(condition: StreamErrorCondition, detail: impl Into<String>) -> Self {
        Self {
            condition,
            detail: detail.into(),
        }
    }

    /// The RFC 6120 stream error condition to send to the peer.
    #[must_use]
    pub fn condition(&self) -> StreamErrorCondition {
        self.condition
    }

    /// A human-readable description for logs (not meant for the peer, nor for matching).
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.condition, self.detail)
    }
}

impl core::error::Error for ParseError {}

/// Why an element or stream header could not be serialized. This is the caller's fault (the
/// data cannot be represented in XML 1.0); nothing is written when it is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerializeError {
    /// Text or an attribute value holds a character XML 1.0 forbids (e.g. U+0000, U+FFFE).
    IllegalCharacter(char),
    /// An element name, attribute name or prefix is not a valid XML NCName.
    InvalidName(String),
}

impl fmt::Display for SerializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IllegalCharacter(c) => {
                write!(
                    f,
                    "character U+{:04X} is not allowed in XML 1.0",
                    u32::from(*c)
                )
            }
            Self::InvalidName(name) => write!(f, "{name:?} is not a valid XML name"),
        }
    }
}

impl core::error::Error for SerializeError {}
