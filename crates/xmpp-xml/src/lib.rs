//! The XML stream: an incremental, restricted-XML parser (on `rxml`) that yields the stream
//! header, each depth-1 element as a `minidom::Element`, and the stream end; a serializer; limits.
//!
//! [`conditions`] holds the RFC 6120 error vocabulary every layer shares: stream error
//! conditions, stanza error types and conditions, and the error elements built from them.
//!
//! ```
//! use xmpp_xml::{StanzaError, StanzaErrorCondition, StanzaErrorType};
//!
//! let error = StanzaError::new(StanzaErrorCondition::ItemNotFound);
//! assert_eq!(error.error_type, StanzaErrorType::Cancel);
//! let element = error.to_element("jabber:client");
//! assert_eq!(StanzaError::from_element(&element), Ok(error));
//! ```
//!
//! (The parser and serializer are being built: see issue 3.)
#![forbid(unsafe_code)]

pub mod conditions;

pub use conditions::{
    ErrorElementError, ErrorText, StanzaError, StanzaErrorCondition, StanzaErrorType, StreamError,
    StreamErrorCondition,
};
pub use minidom;
