//! The XML stream: an incremental, restricted-XML parser (on `rxml`) that yields the stream
//! header, each depth-1 element as a `minidom::Element`, and the stream end; a serializer; limits.
//!
//! (Being built: see issue 3.)
#![forbid(unsafe_code)]
