//! The serializer: stream header, elements and stream close into a caller's `Vec<u8>`.

use minidom::{Element, Node};
use rxml::strings::validate_ncname;
// The namespaces `xml` and `xmlns` are bound to: none can be declared as a default.
use rxml::{Namespace, XMLNS_XML, XMLNS_XMLNS};

use crate::conditions::NS_STREAMS;
use crate::error::SerializeError;
use crate::header::StreamHeader;

/// Writes one side of an XML stream: the header, elements, the close.
///
/// It remembers the header's default namespace and prefixes, so elements in the content
/// namespace carry no redundant `xmlns`, and elements in a namespace the header bound to a
/// prefix (the stream namespace, `db:` for dialback...) use that prefix. Attributes are
/// written in the order of minidom's attribute map (sorted by namespace, then name), so the
/// output is byte-reproducible. Nothing is written when an error is returned.
///
/// ```
/// use xmpp_xml::{ContentNamespace, StreamHeader, StreamWriter, minidom::Element};
///
/// let mut header = StreamHeader::new(ContentNamespace::Client);
/// header.to = Some("example.com".into());
/// let writer = StreamWriter::new(&header);
/// let mut out = Vec::new();
/// writer.write_header(&mut out).unwrap();
/// writer.write_element(&Element::bare("presence", "jabber:client"), &mut out).unwrap();
/// writer.write_end(&mut out);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
///      xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>\
///      <presence/></stream:stream>",
/// );
/// ```
#[derive(Debug, Clone)]
pub struct StreamWriter {
    header: StreamHeader,
    /// Prefixes bound on the stream element, `(prefix, namespace)`.
    prefixes: Vec<(String, String)>,
    /// RFC 7395 framing: see [`StreamWriter::framed`].
    framed: bool,
}

/// The one prefix a framed element may use: `stream`, declared on the element itself.
fn framed_prefixes() -> Vec<(String, String)> {
    vec![("stream".to_owned(), NS_STREAMS.to_owned())]
}

impl StreamWriter {
    /// A writer for a stream opened with `header`.
    #[must_use]
    pub fn new(header: &StreamHeader) -> Self {
        let mut prefixes = Vec::new();
        if let Some(p) = &header.stream_prefix {
            prefixes.push((p.clone(), NS_STREAMS.to_owned()));
        }
        for (p, ns) in &header.namespace_declarations {
            if !prefixes.iter().any(|(q, _)| q == p) {
                prefixes.push((p.clone(), ns.clone()));
            }
        }
        Self {
            header: header.clone(),
            prefixes,
            framed: false,
        }
    }

    /// A writer for an RFC 7395 framed stream (XMPP over WebSocket) opened with `header`:
    /// each write is one message. The header is `<open/>` and the end `<close/>`, both in
    /// `urn:ietf:params:xml:ns:xmpp-framing`; every element is a standalone document that
    /// declares its own namespaces (stanzas carry `xmlns='jabber:client'`, stream-namespace
    /// elements are `<stream:features xmlns:stream=...>`).
    ///
    /// ```
    /// use xmpp_xml::{ContentNamespace, StreamHeader, StreamWriter, minidom::Element};
    ///
    /// let mut header = StreamHeader::new(ContentNamespace::Client);
    /// header.to = Some("example.com".into());
    /// let writer = StreamWriter::framed(&header);
    /// let mut out = Vec::new();
    /// writer.write_header(&mut out).unwrap();
    /// assert_eq!(out, b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>");
    /// out.clear();
    /// writer.write_element(&Element::bare("presence", "jabber:client"), &mut out).unwrap();
    /// assert_eq!(out, b"<presence xmlns='jabber:client'/>");
    /// out.clear();
    /// writer.write_end(&mut out);
    /// assert_eq!(out, b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    /// ```
    #[must_use]
    pub fn framed(header: &StreamHeader) -> Self {
        Self {
            header: header.clone(),
            prefixes: framed_prefixes(),
            framed: true,
        }
    }

    /// Whether this writer writes an RFC 7395 framed stream.
    #[must_use]
    pub fn is_framed(&self) -> bool {
        self.framed
    }

    /// The header this writer was made for.
    #[must_use]
    pub fn header(&self) -> &StreamHeader {
        &self.header
    }

    /// Writes the XML declaration and the stream header (the open `<stream:stream>` tag).
    pub fn write_header(&self, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        let start = out.len();
        let result = self.header_inner(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn header_inner(&self, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        let h = &self.header;
        if self.framed {
            out.extend_from_slice(b"<open");
            attr(out, "xmlns", crate::framing::NS_FRAMING)?;
            self.header_attributes(out)?;
            out.extend_from_slice(b"/>");
            return Ok(());
        }
        out.extend_from_slice(b"<?xml version='1.0'?><");
        self.stream_name(out)?;
        match (&h.stream_prefix, &h.content_namespace) {
            (None, _) => attr(out, "xmlns", NS_STREAMS)?,
            (Some(p), content) => {
                if let Some(content) = content {
                    attr(out, "xmlns", content.as_str())?;
                }
                validate(p)?;
                out.extend_from_slice(b" xmlns:");
                out.extend_from_slice(p.as_bytes());
                value(out, NS_STREAMS)?;
            }
        }
        for (p, ns) in &self.prefixes {
            if Some(p) == h.stream_prefix.as_ref() {
                continue;
            }
            validate(p)?;
            out.extend_from_slice(b" xmlns:");
            out.extend_from_slice(p.as_bytes());
            value(out, ns)?;
        }
        self.header_attributes(out)?;
        out.push(b'>');
        Ok(())
    }

    /// `from`, `id`, `to`, `version` and `xml:lang`, the header's attributes in both framings.
    fn header_attributes(&self, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        let h = &self.header;
        for (name, v) in [("from", &h.from), ("id", &h.id), ("to", &h.to)] {
            if let Some(v) = v {
                attr(out, name, v)?;
            }
        }
        if let Some(version) = h.version {
            attr(out, "version", &version.to_string())?;
        }
        if let Some(lang) = &h.lang {
            attr(out, "xml:lang", lang)?;
        }
        Ok(())
    }

    fn stream_name(&self, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        if let Some(p) = &self.header.stream_prefix {
            validate(p)?;
            out.extend_from_slice(p.as_bytes());
            out.push(b':');
        }
        out.extend_from_slice(b"stream");
        Ok(())
    }

    /// Writes one depth-1 element (a stanza or negotiation element).
    pub fn write_element(
        &self,
        element: &Element,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        let start = out.len();
        let result = if self.framed {
            // A standalone document: no inherited default namespace; the `stream` prefix
            // only when the element itself is in the stream namespace (declared on it).
            let stream_root = element.ns() == NS_STREAMS;
            let prefixes = if stream_root { &self.prefixes[..] } else { &[] };
            Self::element(element, "", prefixes, stream_root, out)
        } else {
            Self::element(
                element,
                self.header.default_namespace(),
                &self.prefixes,
                false,
                out,
            )
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Whether the bytes [`write_element`](Self::write_element) writes for `element` stand
    /// for exactly `element` on their own: [`parse_spliced`](crate::parse_spliced) with
    /// `namespace` gives an element equal to it (minidom's `==`: names, namespaces,
    /// attributes and nodes, not the prefixes an element records). `element` must be in
    /// `namespace`, and on an unframed stream `namespace` must be the stream's default: the
    /// bytes then carry no `xmlns` of their own (on a framed stream they declare
    /// `namespace`). A host that must keep a stanza it sent (XEP-0198's unacknowledged
    /// queue) can keep these bytes, one allocation, instead of a copy of the element.
    ///
    /// Conservative: `false` wherever the bytes depend on the stream or the writer changes
    /// the element — a stanza content namespace moved to the stream's (a `jabber:server`
    /// child of a `jabber:client` stanza), a namespace written with a prefix the stream
    /// header binds, an `xmlns` attribute or a namespace that cannot be declared, an empty
    /// text node or two adjacent ones (a parser reads one run of text) — and the caller keeps
    /// the element. It does not check that the element can be written at all
    /// (`write_element` does).
    ///
    /// ```
    /// use xmpp_xml::{ContentNamespace, NS_CLIENT, StreamHeader, StreamWriter, parse_spliced};
    /// use xmpp_xml::minidom::Element;
    ///
    /// let writer = StreamWriter::new(&StreamHeader::new(ContentNamespace::Client));
    /// let message: Element = "<message xmlns='jabber:client' xml:lang='en'>\
    ///     <body>Wherefore art thou?</body></message>".parse().unwrap();
    /// let mut out = Vec::new();
    /// writer.write_element(&message, &mut out).unwrap();
    /// assert!(writer.writes_exactly(&message, NS_CLIENT));
    /// assert_eq!(parse_spliced(&out, NS_CLIENT).unwrap(), message);
    ///
    /// // Written in the stream's namespace: parsed back, the body is `jabber:client`.
    /// let mut mixed = Element::bare("message", NS_CLIENT);
    /// mixed.append_child(Element::bare("body", "jabber:server"));
    /// assert!(!writer.writes_exactly(&mixed, NS_CLIENT));
    /// ```
    #[must_use]
    pub fn writes_exactly(&self, element: &Element, namespace: &str) -> bool {
        if !element.has_ns(namespace) || namespace == XMLNS_XML || namespace == XMLNS_XMLNS {
            return false;
        }
        if self.framed {
            // A standalone document: `xmlns='namespace'` on the stanza, no prefix but the
            // `stream` one of a stream-namespace root (declared on it; not a stanza).
            namespace != NS_STREAMS && exact_within(element, content_index(element), &[])
        } else {
            self.header.default_namespace() == namespace
                && exact_within(element, content_index(element), &self.prefixes)
        }
    }

    /// Writes the stream close tag (`</stream:stream>`).
    pub fn write_end(&self, out: &mut Vec<u8>) {
        if self.framed {
            out.extend_from_slice(b"<close xmlns='");
            out.extend_from_slice(crate::framing::NS_FRAMING.as_bytes());
            out.extend_from_slice(b"'/>");
            return;
        }
        out.extend_from_slice(b"</");
        if let Some(p) = &self.header.stream_prefix {
            out.extend_from_slice(p.as_bytes());
            out.push(b':');
        }
        out.extend_from_slice(b"stream>");
    }

    /// On a framed stream (RFC 7395 §3.6.1), writes `<close/>` naming another endpoint the
    /// client should connect to instead: `<close xmlns='...' see-other-uri='uri'/>`. An
    /// unframed writer writes its plain end tag (TCP streams redirect with the
    /// `see-other-host` stream error instead). Nothing is written if `uri` holds a character
    /// XML forbids.
    pub fn write_close_see_other_uri(
        &self,
        uri: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        if !self.framed {
            self.write_end(out);
            return Ok(());
        }
        let mut close = Vec::new();
        close.extend_from_slice(b"<close xmlns='");
        close.extend_from_slice(crate::framing::NS_FRAMING.as_bytes());
        close.push(b'\'');
        attr(&mut close, "see-other-uri", uri)?;
        close.extend_from_slice(b"/>");
        out.extend_from_slice(&close);
        Ok(())
    }

    fn element(
        element: &Element,
        default_ns: &str,
        prefixes: &[(String, String)],
        declare_prefixes: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        let prefix_for = |ns: &str| {
            prefixes
                .iter()
                .find(|(_, bound)| bound == ns)
                .map(|(p, _)| p.as_str())
        };
        let name = element.name();
        validate(name)?;
        let ns = element.ns();
        let mut child_default = default_ns;
        // A stanza (and its content) in any of the three content namespaces is written in
        // the stream's own: a host routes one element between c2s, s2s and component
        // streams unchanged, as RFC 6120 §4.8.3 and XEP-0114 expect servers to do.
        let ns =
            if ns != default_ns && is_content_namespace(&ns) && is_content_namespace(default_ns) {
                default_ns.to_owned()
            } else {
                ns
            };
        out.push(b'<');
        let prefix = if ns == default_ns {
            None
        } else {
            prefix_for(&ns)
        };
        if let Some(p) = prefix {
            out.extend_from_slice(p.as_bytes());
            out.push(b':');
        }
        out.extend_from_slice(name.as_bytes());
        if prefix.is_none() && ns != default_ns {
            attr(out, "xmlns", &ns)?;
            child_default = &ns;
        }
        if declare_prefixes {
            for (p, bound) in prefixes {
                validate(p)?;
                out.extend_from_slice(b" xmlns:");
                out.extend_from_slice(p.as_bytes());
                value(out, bound)?;
            }
        }
        let mut generated = 0usize;
        for ((attr_ns, attr_name), v) in element.attrs() {
            out.push(b' ');
            if attr_ns.is_none() {
            } else if *attr_ns == Namespace::XML {
                out.extend_from_slice(b"xml:");
            } else if let Some(p) = prefix_for(attr_ns.as_str()) {
                out.extend_from_slice(p.as_bytes());
                out.push(b':');
            } else {
                // No prefix is bound for this namespace: declare one on this element.
                let p = loop {
                    let candidate = format!("ns{generated}");
                    generated += 1;
                    if !prefixes.iter().any(|(q, _)| *q == candidate) {
                        break candidate;
                    }
                };
                out.extend_from_slice(b"xmlns:");
                out.extend_from_slice(p.as_bytes());
                value(out, attr_ns.as_str())?;
                out.push(b' ');
                out.extend_from_slice(p.as_bytes());
                out.push(b':');
            }
            out.extend_from_slice(attr_name.as_bytes());
            value(out, v)?;
        }
        if element.nodes().next().is_none() {
            out.extend_from_slice(b"/>");
            return Ok(());
        }
        out.push(b'>');
        for node in element.nodes() {
            match node {
                Node::Element(child) => {
                    Self::element(child, child_default, prefixes, false, out)?;
                }
                Node::Text(text) => escape(out, text, false)?,
            }
        }
        out.extend_from_slice(b"</");
        if let Some(p) = prefix {
            out.extend_from_slice(p.as_bytes());
            out.push(b':');
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b'>');
        Ok(())
    }
}

/// The stanza content namespaces (`jabber:client`, `jabber:server`,
/// `jabber:component:accept`): one is written as another (see [`StreamWriter::element`]).
const CONTENT_NAMESPACES: [&str; 3] = [
    crate::header::NS_CLIENT,
    crate::header::NS_SERVER,
    crate::header::NS_COMPONENT_ACCEPT,
];

/// Whether `ns` is a stanza content namespace.
fn is_content_namespace(ns: &str) -> bool {
    CONTENT_NAMESPACES.contains(&ns)
}

/// Which content namespace `element` is in, if any (compared in place: `Element::ns`
/// allocates).
fn content_index(element: &Element) -> Option<usize> {
    CONTENT_NAMESPACES.iter().position(|ns| element.has_ns(*ns))
}

/// [`StreamWriter::writes_exactly`] below the element's start tag: its attributes and
/// nodes, written unprefixed in its own namespace (`content`: which content namespace that
/// is) with `prefixes` bound by the stream, parse back to themselves.
fn exact_within(element: &Element, content: Option<usize>, prefixes: &[(String, String)]) -> bool {
    let bound = |ns: &str| prefixes.iter().any(|(_, b)| b == ns);
    for ((ns, name), _) in element.attrs() {
        // `xmlns` would be read as a declaration; a prefix the stream binds is unbound
        // where the bytes are parsed alone; the `xmlns` namespace cannot be declared.
        let written_as_is = name.as_str() != "xmlns"
            && (ns.is_none()
                || *ns == Namespace::XML
                || (ns.as_str() != XMLNS_XMLNS && !bound(ns.as_str())));
        if !written_as_is {
            return false;
        }
    }
    let mut after_text = false;
    for node in element.nodes() {
        match node {
            Node::Text(text) => {
                // The parser reads no empty text node, and one run for adjacent ones.
                if text.is_empty() || after_text {
                    return false;
                }
                after_text = true;
            }
            Node::Element(child) => {
                after_text = false;
                let child_content = content_index(child);
                let moved =
                    content.is_some() && child_content.is_some() && child_content != content;
                // Declared with `xmlns` unless in the parent's namespace (no prefix: a bound
                // one is refused above for attributes and here for elements).
                let declarable = !child.has_ns(XMLNS_XML)
                    && !child.has_ns(XMLNS_XMLNS)
                    && !prefixes.iter().any(|(_, b)| child.has_ns(b.as_str()));
                if moved || !declarable || !exact_within(child, child_content, prefixes) {
                    return false;
                }
            }
        }
    }
    true
}

fn validate(name: &str) -> Result<(), SerializeError> {
    validate_ncname(name).map_err(|_| SerializeError::InvalidName(name.to_owned()))
}

/// ` name='value'`.
fn attr(out: &mut Vec<u8>, name: &str, v: &str) -> Result<(), SerializeError> {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    value(out, v)
}

/// `='value'`, escaped.
fn value(out: &mut Vec<u8>, v: &str) -> Result<(), SerializeError> {
    out.extend_from_slice(b"='");
    escape(out, v, true)?;
    out.push(b'\'');
    Ok(())
}

/// Escapes character data or an attribute value, rejecting characters XML 1.0 forbids.
///
/// Whitespace other than the space is escaped in attribute values and `\r` everywhere, so
/// that a parser's end-of-line and attribute-value normalization gives back the same string.
fn escape(out: &mut Vec<u8>, s: &str, in_attr: bool) -> Result<(), SerializeError> {
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let replacement: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\'' if in_attr => b"&apos;",
            b'"' if in_attr => b"&quot;",
            b'\r' => b"&#xD;",
            b'\n' if in_attr => b"&#xA;",
            b'\t' if in_attr => b"&#x9;",
            b'\n' | b'\t' => {
                i += 1;
                continue;
            }
            0..0x20 => return Err(SerializeError::IllegalCharacter(char::from(b))),
            // U+FFFE and U+FFFF are EF BF BE and EF BF BF in UTF-8.
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                let c = if bytes[i + 2] == 0xBE {
                    '\u{FFFE}'
                } else {
                    '\u{FFFF}'
                };
                return Err(SerializeError::IllegalCharacter(c));
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(replacement);
        i += 1;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
    Ok(())
}
