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

mod children;

pub use children::{Child, Children};

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

    /// The header's default namespace (`""` when it declared none).
    pub(crate) fn default_namespace(&self) -> &str {
        self.decls
            .iter()
            .find(|(p, _)| p.is_none())
            .map_or("", |(_, ns)| ns.as_str())
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
    /// Where the start tag's `from`, `to` and `xmlns` are, as the parser measured them
    /// (`None`: the splice scans the start tag).
    pub(crate) spans: Option<SpliceSpans>,
}

/// The parts of a stanza's start tag a splice drops or keeps, measured while it was parsed:
/// each attribute's span runs from the whitespace before its name to its closing quote.
/// Offsets are `u32` (a start tag is not longer; [`Self::measure`] refuses otherwise) so
/// that an envelope carries only a few bytes more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpliceSpans {
    /// `start, end` of the unprefixed `from`, the unprefixed `to` and the default namespace
    /// declaration (`0, 0`: none).
    spans: [[u32; 2]; 3],
    /// Where the tag's `/>` or `>` begins.
    tail: u32,
    /// Whether the element name has a prefix.
    prefixed: bool,
}

impl SpliceSpans {
    /// The spans of start tag `tag` (from its `<` to its `>`) from the lengths of its
    /// tokenizer events after the name, in order (the last one is the tag's end, `>` or
    /// `/>`, with the whitespace before it). Every attribute span is checked to be one
    /// (whitespace first, a quote last) and `from`, `to` and `xmlns` are found by their
    /// bytes. `None` when anything does not fit (the splice then scans the tag).
    pub(crate) fn measure(tag: &[u8], events: &[u32], prefixed: bool) -> Option<Self> {
        let len = u32::try_from(tag.len()).ok()?;
        let (close, attributes) = events.split_last()?;
        // Each event covers the bytes from the end of the one before: walk back from the end.
        let mut end = tag.len().checked_sub(usize::try_from(*close).ok()?)?;
        let tail = if tag.get(tag.len().checked_sub(2)?) == Some(&b'/') {
            len - 2
        } else {
            len - 1
        };
        let mut spans = [[0; 2]; 3];
        for event_len in attributes.iter().rev() {
            let start = end.checked_sub(usize::try_from(*event_len).ok()?)?;
            let bytes = tag.get(start..end)?;
            let [first, .., last] = bytes else {
                return None;
            };
            if CLASS[usize::from(*first)] & SPACE == 0 || !matches!(last, b'\'' | b'"') {
                return None;
            }
            let at = skip(bytes, 1, |b| b & SPACE != 0);
            // A name ends at whitespace or `=`.
            let ends = |b: u8| CLASS[usize::from(b)] & (SPACE | EQUALS) != 0;
            let slot = match bytes.get(at..)? {
                [b'f', b'r', b'o', b'm', next, ..] if ends(*next) => spans.get_mut(0),
                [b't', b'o', next, ..] if ends(*next) => spans.get_mut(1),
                [b'x', b'm', b'l', b'n', b's', next, ..] if ends(*next) => spans.get_mut(2),
                _ => None,
            };
            if let Some(span) = slot {
                // Both within `tag`, whose length fits.
                *span = [u32::try_from(start).ok()?, u32::try_from(end).ok()?];
            }
            end = start;
        }
        // What is left is `<` and the name.
        if end < 2 || tag.first() != Some(&b'<') {
            return None;
        }
        Some(Self {
            spans,
            tail,
            prefixed,
        })
    }

    fn range(&self, i: usize) -> Option<Range<usize>> {
        let [start, end] = *self.spans.get(i)?;
        (start < end).then_some(start as usize..end as usize)
    }
}

/// What a stanza takes from outside itself or binds inside, found while it was parsed: what
/// decides whether its bytes can be spliced into another stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bindings {
    /// Prefixes declared on the stream header and used inside the stanza, with their value.
    pub(crate) borrowed: Vec<(String, String)>,
    /// Whether some unprefixed element of the stanza is in the header's default namespace
    /// ([`StreamContext::default_namespace`]).
    pub(crate) borrows_default: bool,
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
    /// (the target stream supplies one; with [`Stamp::standalone`] the stanza declares it).
    /// Parsing the result in such a stream (or as a WebSocket message) gives the element
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
        if self.bindings.borrows_default {
            let x = self.context.default_namespace();
            if x != self.ns && x != target {
                return Err(SpliceError::NeedsElement);
            }
        }
        let tag = self
            .bytes
            .get(..self.head_end)
            .ok_or(SpliceError::Malformed)?;
        let (tail, keeps_a_default) = match &self.spans {
            Some(spans) => Self::copy_measured(tag, spans, stamp, out)?,
            None => Self::copy_scanned(tag, stamp, out)?,
        };
        if stamp.standalone && !keeps_a_default {
            write_attr(out, "xmlns", target)?;
        }
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
        out.extend_from_slice(self.bytes.get(tail..).ok_or(SpliceError::Malformed)?);
        Ok(())
    }

    /// Copies the start tag up to its end without the attributes the stamp replaces, with
    /// the spans the parser measured. Returns where the tag's end begins and whether the
    /// stanza keeps its own default declaration.
    fn copy_measured(
        tag: &[u8],
        spans: &SpliceSpans,
        stamp: &Stamp<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(usize, bool), SpliceError> {
        let xmlns = spans.range(2);
        let keeps_a_default = spans.prefixed && xmlns.is_some();
        // At most three spans, in document order.
        let mut dropped: [Option<Range<usize>>; 3] = [
            spans.range(0).filter(|_| stamp.from.is_some()),
            spans.range(1).filter(|_| stamp.to.is_some()),
            xmlns.filter(|_| !spans.prefixed),
        ];
        dropped.sort_unstable_by_key(|span| span.as_ref().map_or(usize::MAX, |s| s.start));
        let mut at = 0;
        for span in dropped.into_iter().flatten() {
            out.extend_from_slice(tag.get(at..span.start).ok_or(SpliceError::Malformed)?);
            at = span.end;
        }
        let tail = spans.tail as usize;
        out.extend_from_slice(tag.get(at..tail).ok_or(SpliceError::Malformed)?);
        Ok((tail, keeps_a_default))
    }

    /// [`Self::copy_measured`] by scanning the start tag.
    fn copy_scanned(
        tag: &[u8],
        stamp: &Stamp<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(usize, bool), SpliceError> {
        let mut scan = StartTagScan::new(tag)?;
        // Runs of the start tag are copied whole between the attributes dropped.
        let mut at = 0;
        // A prefixed stanza keeps its own default declaration (its children's namespace).
        let mut keeps_a_default = false;
        while let Some(attr) = scan.next_attr()? {
            let drop = match attr.name {
                b"from" => stamp.from.is_some(),
                b"to" => stamp.to.is_some(),
                b"xmlns" => {
                    keeps_a_default = scan.prefixed;
                    !scan.prefixed
                }
                _ => false,
            };
            if drop {
                out.extend_from_slice(tag.get(at..attr.span.start).ok_or(SpliceError::Malformed)?);
                at = attr.span.end;
            }
        }
        let tail = scan.at;
        out.extend_from_slice(tag.get(at..tail).ok_or(SpliceError::Malformed)?);
        Ok((tail, keeps_a_default))
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
    /// The result is a document of its own, not part of a stream: a WebSocket message
    /// (RFC 7395 §3.3.3), where every stanza declares `namespace` itself. Splicing then
    /// declares it on the stanza; [`stamp_element`] is the same either way (an element
    /// carries its namespace).
    pub standalone: bool,
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
            standalone: false,
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
    let bytes = value.as_bytes();
    // One reservation for the usual value (a JID), which needs no escaping.
    out.reserve(name.len() + bytes.len() + 4);
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    // Runs of bytes that need no escaping are copied whole (a JID needs none): only ASCII
    // bytes are escaped, and the only characters XML forbids that UTF-8 can spell in a
    // `str` are C0 controls and U+FFFE / U+FFFF (`EF BF BE`, `EF BF BF`).
    // The usual value needs nothing: one branch-free pass over it says so.
    if !bytes
        .iter()
        .fold(false, |any, b| any | NEEDS_A_LOOK[usize::from(*b)])
    {
        out.extend_from_slice(bytes);
        out.push(b'\'');
        return Ok(());
    }
    let mut run = 0;
    let mut from = 0;
    while let Some(i) = bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|b| NEEDS_A_LOOK[usize::from(*b)]))
        .map(|at| from + at)
    {
        from = i + 1;
        let escaped: &[u8] = match bytes.get(i).copied().unwrap_or_default() {
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

/// The bytes [`write_attr`] escapes or refuses (ASCII controls and markup characters) or
/// must look past (`0xEF`, the first byte of U+FFFE / U+FFFF); a table so that the usual
/// value (a JID) costs one lookup per byte.
static NEEDS_A_LOOK: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'&' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'\'' as usize] = true;
    table[b'"' as usize] = true;
    table[0xEF] = true;
    table
};

/// One attribute of a scanned start tag.
struct ScannedAttr<'t> {
    /// From the whitespace before the name to after the closing quote.
    span: Range<usize>,
    /// The qualified name as written.
    name: &'t [u8],
}

/// [`CLASS`] bits: XML whitespace.
const SPACE: u8 = 1;
/// [`CLASS`] bits: `/` and `>`.
const TAG_END: u8 = 2;
/// [`CLASS`] bits: `=`.
const EQUALS: u8 = 4;

/// What [`StartTagScan`] looks for in each byte, one lookup per byte.
static CLASS: [u8; 256] = {
    let mut table = [0; 256];
    table[b' ' as usize] = SPACE;
    table[b'\t' as usize] = SPACE;
    table[b'\n' as usize] = SPACE;
    table[b'\r' as usize] = SPACE;
    table[b'/' as usize] = TAG_END;
    table[b'>' as usize] = TAG_END;
    table[b'=' as usize] = EQUALS;
    table
};

/// A start tag the parser has already validated, scanned one attribute at a time (no
/// list is built: splicing allocates nothing but its output).
struct StartTagScan<'t> {
    tag: &'t [u8],
    /// Whether the element name has a prefix.
    prefixed: bool,
    /// Where scanning resumes; once [`Self::next_attr`] returned `None`, where the tag's `>`
    /// or `/>` begins.
    at: usize,
}

impl<'t> StartTagScan<'t> {
    fn new(tag: &'t [u8]) -> Result<Self, SpliceError> {
        let end = skip(tag, 1, |b| b & (SPACE | TAG_END) == 0);
        if end >= tag.len() {
            return Err(SpliceError::Malformed);
        }
        let prefixed = tag.get(1..end).is_some_and(|name| name.contains(&b':'));
        Ok(Self {
            tag,
            prefixed,
            at: end,
        })
    }

    /// The next attribute, `None` at the end of the tag.
    fn next_attr(&mut self) -> Result<Option<ScannedAttr<'t>>, SpliceError> {
        let tag = self.tag;
        let span_start = self.at;
        let name_start = skip(tag, span_start, |b| b & SPACE != 0);
        match tag.get(name_start) {
            Some(b'/' | b'>') => {
                self.at = name_start;
                return Ok(None);
            }
            None => return Err(SpliceError::Malformed),
            Some(_) => {}
        }
        let name_end = skip(tag, name_start, |b| b & (SPACE | EQUALS) == 0);
        let eq = skip(tag, name_end, |b| b & SPACE != 0);
        if tag.get(eq) != Some(&b'=') {
            return Err(SpliceError::Malformed);
        }
        let open = skip(tag, eq + 1, |b| b & SPACE != 0);
        let quote = *tag.get(open).ok_or(SpliceError::Malformed)?;
        if quote != b'\'' && quote != b'"' {
            return Err(SpliceError::Malformed);
        }
        let close = find_byte(tag, open + 1, quote).ok_or(SpliceError::Malformed)?;
        self.at = close + 1;
        Ok(Some(ScannedAttr {
            span: span_start..self.at,
            name: tag
                .get(name_start..name_end)
                .ok_or(SpliceError::Malformed)?,
        }))
    }
}

/// The index of the first `needle` in `hay` at or after `from`, eight bytes at a time
/// (attribute values are the longest runs a start-tag scan crosses).
fn find_byte(hay: &[u8], from: usize, needle: u8) -> Option<usize> {
    const LOW: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let pattern = u64::from_le_bytes([needle; 8]);
    let rest = hay.get(from..)?;
    let mut words = rest.chunks_exact(8);
    let mut offset = from;
    for word in &mut words {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        // A byte equal to `needle` becomes zero; the lowest flagged byte is the first zero
        // (a borrow can only flag bytes above a true zero).
        let x = u64::from_le_bytes(bytes) ^ pattern;
        let zeros = x.wrapping_sub(LOW) & !x & HIGH;
        if zeros != 0 {
            return Some(offset + (zeros.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    words
        .remainder()
        .iter()
        .position(|b| *b == needle)
        .map(|i| offset + i)
}

/// The first index from `i` whose byte's [`CLASS`] fails `keep` (`tag.len()` if none).
#[inline]
fn skip(tag: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
    while i < tag.len() && keep(CLASS[usize::from(tag[i])]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::{Stamp, StartTagScan, find_byte};
    use crate::{Event, NS_CLIENT, NS_SERVER, StreamParser};

    #[test]
    fn measured_and_scanned_splices_are_the_same_bytes() {
        let header = "<stream:stream xmlns='jabber:client' \
                      xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
        let stanzas = [
            "<message to='a@b' from='c@d/e' type='chat' id='1'><body>x</body></message>",
            "<message\n\tfrom = \"c@d\"  xmlns='jabber:client' to='a' ><body/></message>",
            "<presence/>",
            "<presence xml:lang='en' from='x' />",
            "<iq xmlns='jabber:client' type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
            "<iq a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8' i='9' j='10' k='11' l='12' \
             m='13' n='14' o='15' p='16' from='z' to='y'/>",
        ];
        let stamps = [
            Stamp::new(NS_SERVER),
            Stamp {
                from: Some("r@m/o"),
                to: Some("j@c"),
                lang: Some("de"),
                ..Stamp::new(NS_SERVER)
            },
            Stamp {
                from: Some("r@m/o"),
                standalone: true,
                ..Stamp::new(NS_CLIENT)
            },
        ];
        let mut measured = 0;
        for stanza in stanzas {
            let mut parser = StreamParser::new();
            parser.set_envelopes(true);
            parser.feed(header.as_bytes());
            parser.feed(stanza.as_bytes());
            assert!(matches!(
                parser.next_event(),
                Ok(Some(Event::StreamStart(_)))
            ));
            let Ok(Some(Event::Stanza(envelope))) = parser.next_event() else {
                panic!("no envelope for {stanza}");
            };
            measured += usize::from(envelope.spans.is_some());
            let mut scanned = envelope.clone();
            scanned.spans = None;
            for stamp in &stamps {
                assert_eq!(envelope.splice(stamp), scanned.splice(stamp), "{stanza}");
            }
        }
        // All but the one with more attributes than are measured.
        assert_eq!(measured, stanzas.len() - 1);
    }

    #[test]
    fn find_byte_finds_the_first_occurrence_from_any_offset() {
        // Bytes around the needle's value and the high bit, where a word-at-a-time search
        // could flag a byte that is not the needle.
        let alphabet = [b'\'', b'"', b'&', 0x26, 0x28, 0x80, 0xA7, 0x00, b'a'];
        for len in 0..40 {
            for seed in 0..alphabet.len() {
                let hay: Vec<u8> = (0..len)
                    .map(|i| alphabet[(i * 7 + seed * 3 + i / 5) % alphabet.len()])
                    .collect();
                for needle in [b'\'', b'"'] {
                    for from in 0..=len + 1 {
                        let naive = hay
                            .get(from..)
                            .and_then(|rest| rest.iter().position(|b| *b == needle))
                            .map(|i| from + i);
                        assert_eq!(find_byte(&hay, from, needle), naive, "{hay:?} {from}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_start_tag_scans_attribute_by_attribute() {
        let tag = b"<message to = \"a'b\"\n\tfrom='c\"d' id='x'>";
        let mut scan = StartTagScan::new(tag).unwrap();
        assert!(!scan.prefixed);
        let mut names = Vec::new();
        while let Some(attr) = scan.next_attr().unwrap() {
            names.push((attr.name.to_vec(), &tag[attr.span.clone()]));
        }
        assert_eq!(
            names,
            [
                (b"to".to_vec(), &b" to = \"a'b\""[..]),
                (b"from".to_vec(), &b"\n\tfrom='c\"d'"[..]),
                (b"id".to_vec(), &b" id='x'"[..]),
            ]
        );
        assert_eq!(&tag[scan.at..], b">");
        assert!(StartTagScan::new(b"<x:iq/>").unwrap().prefixed);
        assert!(StartTagScan::new(b"<message").is_err());
        let mut open = StartTagScan::new(b"<message to='a").unwrap();
        assert!(open.next_attr().is_err());
    }
}
