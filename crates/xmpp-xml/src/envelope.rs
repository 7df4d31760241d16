//! Stanza envelopes: a validated stanza as bytes plus its decoded header, for routing without
//! building a tree (see [`StreamParser::set_envelopes`](crate::StreamParser::set_envelopes)).

use core::ops::Range;
use std::sync::Arc;

use minidom::{Element, Node};
use rxml::Namespace;

use crate::conditions::{NS_STREAMS, StreamErrorCondition as Cond};
use crate::error::ParseError;
use crate::header::{NS_CLIENT, NS_COMPONENT_ACCEPT, NS_SERVER};
use crate::limits::Limits;
use crate::parser::{Event, StreamParser};

/// The three stanza kinds of RFC 6120 §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaKind {
    /// `<message/>`.
    Message,
    /// `<presence/>`.
    Presence,
    /// `<iq/>`.
    Iq,
}

impl StanzaKind {
    /// The element's local name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Presence => "presence",
            Self::Iq => "iq",
        }
    }
}

/// The kind and content namespace of a depth-1 element, if it is a stanza.
pub(crate) fn stanza_kind(local: &str, ns: &str) -> Option<(StanzaKind, &'static str)> {
    let ns = [NS_CLIENT, NS_SERVER, NS_COMPONENT_ACCEPT]
        .into_iter()
        .find(|candidate| *candidate == ns)?;
    let kind = match local {
        "message" => StanzaKind::Message,
        "presence" => StanzaKind::Presence,
        "iq" => StanzaKind::Iq,
        _ => return None,
    };
    Some((kind, ns))
}

/// What the stream header put in scope, shared by every envelope of one stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StreamContext {
    /// The header's namespace declarations (`None`: the default namespace), in order.
    pub(crate) decls: Vec<(Option<String>, String)>,
    /// The header's `xml:lang`.
    pub(crate) lang: Option<String>,
    /// The limits of the parser, for building elements lazily.
    pub(crate) limits: Limits,
}

impl StreamContext {
    /// How many default namespace declarations the header made (0 or 1).
    pub(crate) fn default_count(&self) -> usize {
        self.decls.iter().filter(|(p, _)| p.is_none()).count()
    }

    /// Whether the header declared `prefix`.
    pub(crate) fn declares(&self, prefix: &str) -> bool {
        self.decls.iter().any(|(p, _)| p.as_deref() == Some(prefix))
    }
}

/// A stanza as its validated bytes plus its header, decoded (character references resolved,
/// namespaces resolved). Produced by the parser in envelope mode
/// ([`StreamParser::set_envelopes`](crate::StreamParser::set_envelopes)) as
/// [`Event::Stanza`] only after the stanza's end tag was validated exactly as on the element
/// path. [`element`](Self::element) builds the [`Element`] the element path would have given;
/// [`splice`](Self::splice) rewrites the start tag for forwarding.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub(crate) bytes: Vec<u8>,
    pub(crate) head_end: usize,
    pub(crate) kind: StanzaKind,
    pub(crate) ns: &'static str,
    pub(crate) to: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) type_: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) lang: Option<String>,
    pub(crate) context: Arc<StreamContext>,
    pub(crate) bindings: Bindings,
}

/// What a stanza takes from outside itself or binds inside, found while it was parsed: what
/// decides whether its bytes can be spliced into another stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bindings {
    /// Prefixes declared on the stream header and used inside the stanza, with their value.
    pub(crate) borrowed: Vec<(String, String)>,
    /// The header's default namespace, if some unprefixed element of the stanza is in it
    /// (`""` when the header declared none).
    pub(crate) borrowed_default: Option<String>,
    /// Whether a declaration inside the stanza (other than the root's own default
    /// declaration) binds the stanza's namespace.
    pub(crate) rebinds_own: bool,
}

impl Envelope {
    /// The stanza kind.
    #[must_use]
    pub fn kind(&self) -> StanzaKind {
        self.kind
    }

    /// The stanza's namespace: [`NS_CLIENT`], [`NS_SERVER`] or [`NS_COMPONENT_ACCEPT`].
    #[must_use]
    pub fn namespace(&self) -> &'static str {
        self.ns
    }

    /// The `to` attribute, decoded.
    #[must_use]
    pub fn to(&self) -> Option<&str> {
        self.to.as_deref()
    }

    /// The `from` attribute, decoded.
    #[must_use]
    pub fn from(&self) -> Option<&str> {
        self.from.as_deref()
    }

    /// The `type` attribute, decoded.
    #[must_use]
    pub fn stanza_type(&self) -> Option<&str> {
        self.type_.as_deref()
    }

    /// The `id` attribute, decoded.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The effective `xml:lang`: the stanza's own, else the stream header's (RFC 6120 §4.7.4).
    #[must_use]
    pub fn lang(&self) -> Option<&str> {
        self.lang.as_deref().or(self.context.lang.as_deref())
    }

    /// The stanza's own `xml:lang` attribute, if it carries one.
    #[must_use]
    pub fn own_lang(&self) -> Option<&str> {
        self.lang.as_deref()
    }

    /// The stanza's bytes as the peer sent them, from its start tag's `<` to its end tag's
    /// `>`. They rely on the stream header's namespace declarations.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The byte range of the start tag within [`bytes`](Self::bytes).
    #[must_use]
    pub fn start_tag(&self) -> Range<usize> {
        0..self.head_end
    }

    /// The bytes, by value.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The element the element path would have returned for this stanza, built now by
    /// parsing the bytes in the stream header's namespace context.
    ///
    /// # Errors
    ///
    /// None in practice (the bytes were validated); an `internal-server-error` if the bytes
    /// do not reparse to one element.
    pub fn element(&self) -> Result<Element, ParseError> {
        let mut parser = StreamParser::with_limits(self.context.limits.clone());
        parser.feed(&wrapper(&self.context.decls));
        parser.feed(&self.bytes);
        match (parser.next_event()?, parser.next_event()?) {
            (Some(Event::StreamStart(_)), Some(Event::Element(element))) => Ok(element),
            _ => Err(ParseError::new(
                Cond::InternalServerError,
                "envelope bytes do not reparse to one element",
            )),
        }
    }

    /// The stanza's bytes with its start tag rewritten by `stamp`, for a stream whose
    /// default namespace is [`Stamp::namespace`] and that declares no other prefix the
    /// stanza could use. Attributes are found by resolved name (an unprefixed `from` is the
    /// `from`; `foo:from` is not), values are escaped, prefixes the stanza borrowed from its
    /// stream header are declared on it, and its own default namespace declaration is dropped
    /// (the target stream supplies one). Parsing the result in such a stream gives the element
    /// [`stamp_element`] makes of [`element`](Self::element).
    ///
    /// # Errors
    ///
    /// [`SpliceError::NeedsElement`] when the bytes cannot express the result (the namespace
    /// mapping would also rename an element the stanza binds to its own namespace explicitly,
    /// or an element inherits a foreign default namespace from the stream header): use the
    /// element path. [`SpliceError::InvalidValue`] when a stamped value holds a character XML
    /// forbids.
    pub fn splice(&self, stamp: &Stamp<'_>) -> Result<Vec<u8>, SpliceError> {
        let mut out = Vec::with_capacity(self.bytes.len() + 64);
        self.splice_into(stamp, &mut out)?;
        Ok(out)
    }

    /// [`splice`](Self::splice), appending to `out` (a reused write buffer: no allocation
    /// once it has grown). On error `out` is left as it was.
    ///
    /// # Errors
    ///
    /// As [`splice`](Self::splice).
    pub fn splice_into(&self, stamp: &Stamp<'_>, out: &mut Vec<u8>) -> Result<(), SpliceError> {
        let len = out.len();
        let result = self.write_spliced(stamp, out);
        if result.is_err() {
            out.truncate(len);
        }
        result
    }

    fn write_spliced(&self, stamp: &Stamp<'_>, out: &mut Vec<u8>) -> Result<(), SpliceError> {
        let target = stamp.namespace;
        if target != self.ns {
            let b = &self.bindings;
            if b.rebinds_own || b.borrowed.iter().any(|(_, v)| v == self.ns) {
                return Err(SpliceError::NeedsElement);
            }
        }
        if let Some(x) = &self.bindings.borrowed_default {
            if x != self.ns && x != target {
                return Err(SpliceError::NeedsElement);
            }
        }
        let tag = self
            .bytes
            .get(..self.head_end)
            .ok_or(SpliceError::Malformed)?;
        let scan = scan_start_tag(tag)?;
        let mut at = 0;
        for attr in &scan.attrs {
            let drop = match attr.name {
                b"from" => stamp.from.is_some(),
                b"to" => stamp.to.is_some(),
                b"xmlns" => !scan.prefixed,
                _ => false,
            };
            if drop {
                out.extend_from_slice(tag.get(at..attr.span.start).ok_or(SpliceError::Malformed)?);
                at = attr.span.end;
            }
        }
        out.extend_from_slice(tag.get(at..scan.tail).ok_or(SpliceError::Malformed)?);
        for (prefix, ns) in &self.bindings.borrowed {
            write_attr(out, &format!("xmlns:{prefix}"), ns)?;
        }
        if let Some(from) = stamp.from {
            write_attr(out, "from", from)?;
        }
        if let Some(to) = stamp.to {
            write_attr(out, "to", to)?;
        }
        if let (Some(lang), None) = (stamp.lang, &self.lang) {
            write_attr(out, "xml:lang", lang)?;
        }
        out.extend_from_slice(self.bytes.get(scan.tail..).ok_or(SpliceError::Malformed)?);
        Ok(())
    }
}

/// The element bytes written by [`Envelope::splice`] stand for in a stream whose default
/// namespace is `namespace` (the [`Stamp::namespace`] they were spliced with): what the
/// receiving peer parses, and what [`stamp_element`] makes of [`Envelope::element`]. For a
/// host that kept the spliced bytes (e.g. until acknowledged) and needs the stanza back.
///
/// The bytes passed a stream's limits before the splice, which adds a few attributes and
/// declarations: they are parsed with every bound at least their own length, so whatever was
/// sent parses again.
///
/// # Errors
///
/// The [`ParseError`] of bytes that are not one well-formed element (never for bytes a splice
/// wrote).
pub fn parse_spliced(bytes: &[u8], namespace: &str) -> Result<Element, ParseError> {
    let len = bytes.len();
    let mut limits = Limits::DEFAULT;
    for bound in [
        &mut limits.max_stanza_bytes,
        &mut limits.max_depth,
        &mut limits.max_attributes,
        &mut limits.max_namespace_declarations,
        &mut limits.max_name_length,
        &mut limits.max_attribute_value_length,
        &mut limits.max_text_length,
        &mut limits.max_elements,
    ] {
        *bound = (*bound).max(len);
    }
    let mut parser = StreamParser::with_limits(limits);
    parser.feed(&wrapper(&[(None, namespace.to_owned())]));
    parser.feed(bytes);
    match (parser.next_event()?, parser.next_event()?) {
        (Some(Event::StreamStart(_)), Some(Event::Element(element))) => Ok(element),
        _ => Err(ParseError::new(
            Cond::InternalServerError,
            "spliced bytes do not parse to one element",
        )),
    }
}

/// How [`Envelope::splice`] and [`stamp_element`] rewrite a stanza for forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp<'a> {
    /// The default namespace of the stream the stanza goes to: its own namespace, and every
    /// element of its own namespace inside, move to this one (`jabber:client` to
    /// `jabber:server` and back, or `jabber:component:accept`).
    pub namespace: &'a str,
    /// Stamp or replace `from`.
    pub from: Option<&'a str>,
    /// Set or replace `to`.
    pub to: Option<&'a str>,
    /// Add this `xml:lang` unless the stanza carries its own (the recipient's stream has a
    /// different default than the sender's).
    pub lang: Option<&'a str>,
}

impl<'a> Stamp<'a> {
    /// A stamp that only moves the stanza into a stream with default namespace `namespace`.
    #[must_use]
    pub fn new(namespace: &'a str) -> Self {
        Self {
            namespace,
            from: None,
            to: None,
            lang: None,
        }
    }
}

/// Why [`Envelope::splice`] gave no bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpliceError {
    /// The rewrite needs the element path: [`Envelope::element`], [`stamp_element`], then
    /// serialize.
    NeedsElement,
    /// A stamped value holds a character XML 1.0 forbids.
    InvalidValue,
    /// The start tag did not scan (never for bytes the parser validated).
    Malformed,
}

impl core::fmt::Display for SpliceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NeedsElement => "the stanza cannot be spliced: use the element path",
            Self::InvalidValue => "a stamped value holds a character XML forbids",
            Self::Malformed => "the start tag did not scan",
        })
    }
}

impl std::error::Error for SpliceError {}

/// The element counterpart of [`Envelope::splice`]: renames `element` and every descendant
/// in `element`'s namespace to `stamp.namespace`, sets `from` and `to`, and adds `xml:lang`
/// unless present.
pub fn stamp_element(element: &mut Element, stamp: &Stamp<'_>) {
    let source = element.ns();
    if source != stamp.namespace {
        let taken = core::mem::replace(element, Element::bare("x", ""));
        *element = rename(taken, &source, stamp.namespace);
    }
    if let Some(from) = stamp.from {
        set(element, Namespace::NONE, "from", from);
    }
    if let Some(to) = stamp.to {
        set(element, Namespace::NONE, "to", to);
    }
    if let Some(lang) = stamp.lang {
        if element.attrs().get(&Namespace::XML, "lang").is_none() {
            set(element, Namespace::XML, "lang", lang);
        }
    }
}

fn set(element: &mut Element, ns: Namespace<'static>, name: &'static str, value: &str) {
    if let Ok(name) = rxml::NcName::try_from(name) {
        element.attrs_mut().insert(ns, name, value.to_owned());
    }
}

fn rename(mut element: Element, from: &str, to: &str) -> Element {
    let ns = if element.has_ns(from) {
        to.to_owned()
    } else {
        element.ns()
    };
    let mut renamed = Element::bare(element.name(), ns);
    *renamed.attrs_mut() = core::mem::take(element.attrs_mut());
    for node in element.take_nodes() {
        match node {
            Node::Element(child) => renamed.append_node(Node::Element(rename(child, from, to))),
            text @ Node::Text(_) => renamed.append_node(text),
        }
    }
    renamed
}

/// A stream header declaring exactly `decls` (so no bound is closer than on the peer's
/// header), under the prefix they bind to the streams namespace, else a fresh one.
fn wrapper(decls: &[(Option<String>, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let bound = decls
        .iter()
        .find_map(|(p, ns)| p.as_ref().filter(|_| ns == NS_STREAMS));
    let prefix = if let Some(p) = bound {
        p.clone()
    } else {
        let mut prefix = String::from("stream");
        let mut n = 0u32;
        while decls
            .iter()
            .any(|(p, _)| p.as_deref() == Some(prefix.as_str()))
        {
            prefix = format!("stream{n}");
            n += 1;
        }
        prefix
    };
    out.extend_from_slice(format!("<{prefix}:stream").as_bytes());
    if bound.is_none() {
        out.extend_from_slice(format!(" xmlns:{prefix}='{NS_STREAMS}'").as_bytes());
    }
    for (p, ns) in decls {
        let name = p
            .as_ref()
            .map_or_else(|| "xmlns".to_owned(), |p| format!("xmlns:{p}"));
        // Header values were accepted by the parser: escaping cannot fail for them.
        let _ = write_attr(&mut out, &name, ns);
    }
    out.push(b'>');
    out
}

/// Appends ` name='value'` with `value` escaped (whitespace other than the space as character
/// references, so attribute value normalization gives it back unchanged).
fn write_attr(out: &mut Vec<u8>, name: &str, value: &str) -> Result<(), SpliceError> {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    // Runs of bytes that need no escaping are copied whole (a JID needs none): only ASCII
    // bytes are escaped, and the only characters XML forbids that UTF-8 can spell in a
    // `str` are C0 controls and U+FFFE / U+FFFF (`EF BF BE`, `EF BF BF`).
    let bytes = value.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\'' => b"&apos;",
            b'"' => b"&quot;",
            b'\t' => b"&#9;",
            b'\n' => b"&#xA;",
            b'\r' => b"&#xD;",
            0..=0x1F => return Err(SpliceError::InvalidValue),
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                return Err(SpliceError::InvalidValue);
            }
            _ => continue,
        };
        out.extend_from_slice(bytes.get(run..i).unwrap_or_default());
        out.extend_from_slice(escaped);
        run = i + 1;
    }
    out.extend_from_slice(bytes.get(run..).unwrap_or_default());
    out.push(b'\'');
    Ok(())
}

/// One attribute of a scanned start tag.
struct ScannedAttr<'t> {
    /// From the whitespace before the name to after the closing quote.
    span: Range<usize>,
    /// The qualified name as written.
    name: &'t [u8],
}

/// A scanned start tag: its attributes and where its `>` or `/>` begins.
struct ScannedTag<'t> {
    /// Whether the element name has a prefix.
    prefixed: bool,
    attrs: Vec<ScannedAttr<'t>>,
    tail: usize,
}

/// Scans a start tag the parser has already validated.
fn scan_start_tag(tag: &[u8]) -> Result<ScannedTag<'_>, SpliceError> {
    let byte = |i: usize| tag.get(i).copied().ok_or(SpliceError::Malformed);
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut i = 1;
    while !matches!(byte(i)?, b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>') {
        i += 1;
    }
    let prefixed = tag.get(1..i).is_some_and(|name| name.contains(&b':'));
    let mut attrs = Vec::new();
    loop {
        let span_start = i;
        while is_space(byte(i)?) {
            i += 1;
        }
        if matches!(byte(i)?, b'/' | b'>') {
            return Ok(ScannedTag {
                prefixed,
                attrs,
                tail: i,
            });
        }
        let name_start = i;
        while !matches!(byte(i)?, b'=' | b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        let name = tag.get(name_start..i).ok_or(SpliceError::Malformed)?;
        while is_space(byte(i)?) {
            i += 1;
        }
        if byte(i)? != b'=' {
            return Err(SpliceError::Malformed);
        }
        i += 1;
        while is_space(byte(i)?) {
            i += 1;
        }
        let quote = byte(i)?;
        if quote != b'\'' && quote != b'"' {
            return Err(SpliceError::Malformed);
        }
        i += 1;
        while byte(i)? != quote {
            i += 1;
        }
        i += 1;
        attrs.push(ScannedAttr {
            span: span_start..i,
            name,
        });
    }
}
