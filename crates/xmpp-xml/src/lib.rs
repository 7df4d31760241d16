//! The XML stream of RFC 6120: an incremental, restricted-XML parser (on `rxml`) that yields
//! the stream header, each depth-1 element as a [`minidom::Element`] and the stream end; a
//! serializer for the other direction; and the bounds that keep a hostile peer cheap.
//!
//! - [`StreamParser`]: [`feed`](StreamParser::feed) bytes in any chunking, pull
//!   [`Event`]s with [`next_event`](StreamParser::next_event). Comments, processing
//!   instructions, DTDs and undeclared entities are `restricted-xml`; malformed input is
//!   `not-well-formed`; every bound in [`Limits`] is `policy-violation`. Exact byte
//!   accounting ([`buffered_len`](StreamParser::buffered_len)) for STARTTLS and stream
//!   restarts.
//! - [`StreamWriter`]: the header, elements (no redundant `xmlns`, stable attribute order,
//!   escaping, XML-1.0-illegal characters rejected) and the close, into a `Vec<u8>`.
//! - [`Envelope`] (opt-in, [`StreamParser::set_envelopes`]): a stanza as its validated
//!   bytes plus its decoded header, for routing without a tree; [`Envelope::splice`]
//!   stamps `from`/`to`/`xml:lang` and maps the content namespace in the start tag only.
//! - [`conditions`]: the RFC 6120 error vocabulary every layer shares: stream error
//!   conditions, stanza error types and conditions, and the error elements built from them.
//!
//! ```
//! use xmpp_xml::{ContentNamespace, Event, StreamErrorCondition, StreamParser, StreamWriter};
//!
//! let mut parser = StreamParser::new();
//! parser.feed(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
//!     xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>");
//! let Some(Event::StreamStart(header)) = parser.next_event()? else { panic!() };
//! assert_eq!(header.to.as_deref(), Some("example.com"));
//! assert_eq!(header.content_namespace, Some(ContentNamespace::Client));
//!
//! // Any chunking: here the stanza arrives in two pieces.
//! parser.feed(b"<message to='juliet@example.com'><bo");
//! assert_eq!(parser.next_event()?, None); // need more bytes
//! parser.feed(b"dy>Art thou not Romeo?</body></message>");
//! let Some(Event::Element(message)) = parser.next_event()? else { panic!() };
//! assert!(message.is("message", "jabber:client")); // inherited from the stream
//! assert_eq!(message.get_child("body", "jabber:client").unwrap().text(), "Art thou not Romeo?");
//! assert!(!parser.has_unparsed_input());
//!
//! // Serialize it back for a stream with the same content namespace.
//! let writer = StreamWriter::new(&header);
//! let mut out = Vec::new();
//! writer.write_element(&message, &mut out)?;
//! assert_eq!(out, b"<message to='juliet@example.com'><body>Art thou not Romeo?</body></message>");
//!
//! // Restricted XML is a typed, sticky error.
//! parser.feed(b"<!-- hi -->");
//! let error = parser.next_event().unwrap_err();
//! assert_eq!(error.condition(), StreamErrorCondition::RestrictedXml);
//! assert_eq!(parser.next_event().unwrap_err(), error);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod conditions;
mod envelope;
mod error;
mod framing;
mod header;
mod limits;
mod parser;
mod prototypes;
mod serializer;

pub use conditions::{
    ErrorElementError, ErrorText, StanzaError, StanzaErrorCondition, StanzaErrorType, StreamError,
    StreamErrorCondition,
};
pub use envelope::{
    Child, Children, Envelope, SpliceError, Stamp, StanzaKind, parse_spliced, stamp_element,
};
pub use error::{ParseError, SerializeError};
pub use framing::NS_FRAMING;
pub use header::{
    ContentNamespace, InvalidVersion, NS_CLIENT, NS_COMPONENT_ACCEPT, NS_SERVER, StreamHeader,
    StreamVersion,
};
pub use limits::Limits;
pub use minidom;
pub use parser::{Event, StreamParser};
pub use serializer::StreamWriter;
