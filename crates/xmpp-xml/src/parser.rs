//! The incremental stream parser: bytes in, [`Event`]s out.

use minidom::Element;
use rxml::error::EndOrError;
use rxml::{Namespace, NcName, Options, Parse, RawEvent, RawParser, WithOptions};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::conditions::{NS_STREAMS, StreamErrorCondition as Cond};
use crate::envelope::{Bindings, Envelope, SpliceSpans, StanzaKind, StreamContext, stanza_kind};
use crate::error::ParseError;
use crate::framing::{self, Framing};
use crate::header::{ContentNamespace, StreamHeader, StreamVersion};
use crate::limits::Limits;

/// What the parser found in the peer's stream, in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The stream header (`<stream:stream ...>`) was read. Always the first event, and again
    /// the first after [`StreamParser::reset`].
    StreamStart(StreamHeader),
    /// One complete depth-1 child of the stream: a stanza or a negotiation element. Its
    /// namespace is resolved (inherited from the stream's default namespace when not
    /// declared on the element itself).
    Element(Element),
    /// In envelope mode ([`StreamParser::set_envelopes`]): one complete depth-1 stanza
    /// (`message`, `presence` or `iq` in `jabber:client`, `jabber:server` or
    /// `jabber:component:accept`) as validated bytes and decoded header, instead of
    /// [`Event::Element`]. Validated exactly as on the element path.
    Stanza(Envelope),
    /// Whitespace between depth-1 elements: the RFC 6120 §4.6.1 keepalive. How many of these
    /// one run of whitespace produces depends on how the bytes were chunked; hosts use them
    /// only to note that the peer is alive.
    Whitespace,
    /// The peer closed its stream (`</stream:stream>`). Only whitespace may follow; any other
    /// byte is a `not-well-formed` error.
    StreamEnd,
}

/// Where the parser is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the stream header has been read completely.
    Header,
    /// Inside the stream element.
    Stream,
    /// After the stream element's end tag.
    Ended,
}

/// The start tag being read (between rxml's `ElementHeadOpen` and `ElementHeadClose`).
#[derive(Debug)]
struct Head {
    prefix: Option<NcName>,
    local: NcName,
}

/// An attribute as read, before prefix resolution.
type RawAttr = (Option<NcName>, NcName, String);

/// The incremental, restricted-XML stream parser (RFC 6120 §11).
///
/// Feed it the peer's bytes in chunks of any size with [`feed`](Self::feed), then call
/// [`next_event`](Self::next_event) until it returns `Ok(None)` ("need more bytes"). The
/// parser never blocks and never needs a whole stanza in one chunk.
///
/// # Byte accounting
///
/// The parser counts every fed byte as either *consumed* (it belongs to an event already
/// returned) or *buffered* ([`buffered_len`](Self::buffered_len)): fed but not yet part of a
/// returned event, even if the parser has already looked at it. After `next_event` returns
/// [`Event::StreamStart`], [`Event::Element`] or [`Event::StreamEnd`], the consumed bytes end
/// exactly at that tag's closing `>` (the tokenizer returns as soon as it reads it, and
/// `next_event` returns with the first event it completes). After [`Event::Whitespace`] they
/// end after the last literal whitespace byte read.
/// This makes protocol switches exact:
///
/// - STARTTLS: after `<proceed/>`, [`has_unparsed_input`](Self::has_unparsed_input) is true
///   iff the peer pipelined anything (whitespace included) behind it in data already fed.
/// - Stream restart after SASL `<success/>`: [`reset`](Self::reset) keeps the buffered
///   bytes and parses them with fresh state, so a new stream header pipelined right after
///   `<success/>` is read by the new stream. [`take_unparsed`](Self::take_unparsed) instead
///   hands them back.
///
/// # Memory
///
/// The parser holds only the bytes of the element in progress (bounded by
/// [`Limits::max_stanza_bytes`]) plus whatever the last `feed` added, and the partial
/// element tree. Both are released when the element is emitted.
///
/// # Errors
///
/// Every error carries its RFC 6120 stream error condition; see [`ParseError`]. Errors are
/// sticky: after one, `next_event` returns it again and `feed` discards its input.
#[derive(Debug)]
pub struct StreamParser {
    limits: Limits,
    raw: RawParser,
    /// Fed bytes from the first one not yet consumed by a returned event.
    buf: Vec<u8>,
    /// End (in `buf`) of the bytes accounted to returned events.
    consumed: usize,
    /// End (in `buf`) of the bytes handed to rxml.
    fed: usize,
    phase: Phase,
    error: Option<ParseError>,
    /// Namespace declarations in scope.
    scopes: Scopes,
    head: Option<Head>,
    attrs: Vec<RawAttr>,
    /// [`name_key`] of the local name of each of the first [`PAIRWISE_ATTRS`] entries of
    /// `attrs` (written as each is pushed).
    attr_keys: [u32; PAIRWISE_ATTRS],
    /// Whether the start tag being read is a depth-1 element in envelope mode, whose
    /// attribute events are measured for the splice.
    measuring: bool,
    /// For such a tag, each attribute event's length in bytes, for the first
    /// [`SPAN_SLOTS`] of them; then the tag's end.
    attr_spans: [u32; SPAN_SLOTS],
    /// Attribute events (declarations included) of the tag being measured.
    attr_events: usize,
    decls: Vec<(Option<NcName>, String)>,
    /// Open elements below the stream element.
    stack: Vec<Element>,
    /// Character data bytes directly inside each open element of `stack`.
    text_lens: Vec<usize>,
    /// Elements opened so far in the current depth-1 element, itself included.
    elements: usize,
    /// RFC 7395 framing: every fed message is one standalone element (see [`Self::framed`]).
    framing: Option<Framing>,
    /// Envelope mode (see [`Self::set_envelopes`]).
    envelopes: bool,
    /// In envelope mode, what the stream header put in scope (built at the first stanza).
    context: Option<Arc<StreamContext>>,
    /// The stream header's `xml:lang`.
    header_lang: Option<String>,
    /// In envelope mode, the offset from `consumed` of the `<` of the depth-1 start tag
    /// being read.
    pending_start: Option<usize>,
    /// The stanza being captured as an envelope (boxed: a stream that never captures, the
    /// usual idle one, does not carry its size). The box stays between stanzas (`depth` 0:
    /// nothing captured) so a stanza costs no allocation for it; `release_memory` frees it.
    capture: Option<Box<Capture>>,
}

/// Where the step that completes an event puts it: a slot on `next_event`'s stack, handed
/// down the event loop by reference (so an event, about 250 bytes, is not passed back
/// through every step of the loop, and the parser, which every idle stream holds, does not
/// carry one).
type Ready = Option<Event>;

/// The decoded header attributes of a captured stanza's start tag.
#[derive(Default)]
struct Header {
    to: Option<String>,
    from: Option<String>,
    type_: Option<String>,
    id: Option<String>,
    lang: Option<String>,
}

/// A stanza being read in envelope mode: no tree is built, only its header is kept.
#[derive(Debug)]
struct Capture {
    /// Offset of its `<` from `consumed` (which does not move while it is read).
    start: usize,
    /// Length of its start tag.
    head_end: usize,
    /// Its open elements, itself included.
    depth: usize,
    kind: StanzaKind,
    ns: &'static str,
    to: Option<String>,
    from: Option<String>,
    type_: Option<String>,
    id: Option<String>,
    lang: Option<String>,
    bindings: Bindings,
    spans: Option<SpliceSpans>,
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamParser {
    /// A parser with the default [`Limits`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A parser with the given limits.
    #[must_use]
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            raw: new_raw(&limits),
            limits,
            buf: Vec::new(),
            consumed: 0,
            fed: 0,
            phase: Phase::Header,
            error: None,
            scopes: Scopes::default(),
            head: None,
            attrs: Vec::new(),
            attr_keys: [0; PAIRWISE_ATTRS],
            measuring: false,
            attr_spans: [0; SPAN_SLOTS],
            attr_events: 0,
            decls: Vec::new(),
            stack: Vec::new(),
            text_lens: Vec::new(),
            elements: 0,
            framing: None,
            envelopes: false,
            context: None,
            header_lang: None,
            pending_start: None,
            capture: None,
        }
    }

    /// A parser for an RFC 7395 framed stream (XMPP over WebSocket): feed each message with
    /// [`feed_message`](Self::feed_message). Each message must hold exactly one complete
    /// element, a standalone XML document (its namespaces declared on it: stanzas carry
    /// `xmlns='jabber:client'` themselves), or the parser fails with `not-well-formed`. The
    /// events are those of a TCP stream: `<open/>` in `urn:ietf:params:xml:ns:xmpp-framing`
    /// is [`Event::StreamStart`] (with `content` as its content namespace), `<close/>` is
    /// [`Event::StreamEnd`] (its `see-other-uri`, if any, in
    /// [`see_other_uri`](Self::see_other_uri)), anything else [`Event::Element`].
    ///
    /// Errors of the framing (RFC 7395 §3.3): the first element of a stream (and the first
    /// after [`reset`](Self::reset)) must be `<open/>`; a root element outside the framing
    /// namespace there, or a `<stream:stream>` anywhere, is `invalid-namespace` (§3.3.2); an
    /// element of the framing namespace other than `<open/>` there, or an `<open/>` inside
    /// the open stream, is `bad-format`; an `<open/>` whose version is not 1.x is
    /// `unsupported-version`; a partial element, a second element or text beside the element
    /// in one message is `not-well-formed` (§3.3.3).
    #[must_use]
    pub fn framed(limits: Limits, content: ContentNamespace) -> Self {
        let mut parser = Self::with_limits(limits);
        parser.phase = Phase::Stream;
        parser.framing = Some(Framing::new(content));
        parser
    }

    /// Whether this parser reads an RFC 7395 framed stream ([`Self::framed`]).
    #[must_use]
    pub fn is_framed(&self) -> bool {
        self.framing.is_some()
    }

    /// On a framed stream, the `see-other-uri` of the peer's `<close/>` (RFC 7395 §3.6.1):
    /// where the peer asks us to reconnect. Set once [`Event::StreamEnd`] was returned.
    #[must_use]
    pub fn see_other_uri(&self) -> Option<&str> {
        self.framing.as_ref()?.see_other_uri.as_deref()
    }

    /// Turns envelope mode on or off (off by default). In envelope mode, each depth-1 stanza
    /// (`message`, `presence`, `iq` in a content namespace) comes as [`Event::Stanza`]: its
    /// bytes, copied once out of the input buffer, and its decoded header; no element tree is
    /// built for it. Every other depth-1 element still comes as [`Event::Element`]. Takes
    /// effect from the next depth-1 element. On a framed stream ([`Self::framed`]) the
    /// stanzas are the messages' root elements, declaring their own namespace.
    pub fn set_envelopes(&mut self, enabled: bool) {
        self.envelopes = enabled;
    }

    /// Whether envelope mode is on ([`Self::set_envelopes`]).
    #[must_use]
    pub fn envelopes(&self) -> bool {
        self.envelopes
    }

    // ----- getters -----

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes fed but not yet part of any returned event (see "Byte accounting" above).
    #[must_use]
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Whether any fed byte is not yet part of a returned event. Checked right after
    /// `<proceed/>`, true means the peer pipelined data into the TLS switch.
    #[must_use]
    pub fn has_unparsed_input(&self) -> bool {
        self.buffered_len() > 0
    }

    /// Whether the stream header has been read and the stream not yet closed.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Stream && self.error.is_none()
    }

    /// Whether the peer's `</stream:stream>` has been read.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// The sticky error, if the parser has failed.
    #[must_use]
    pub fn error(&self) -> Option<&ParseError> {
        self.error.as_ref()
    }

    // ----- inputs -----

    /// Appends the peer's bytes. Call [`next_event`](Self::next_event) until it returns
    /// `Ok(None)` after each call, so that at most one chunk waits in the buffer. Discarded
    /// once the parser has failed.
    #[inline]
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        // Drop consumed bytes once they are at least half the buffer: each byte is moved
        // at most a constant number of times, so feeding stays linear.
        if self.consumed > 0 && self.consumed * 2 >= self.buf.len() {
            self.compact();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Drops the consumed bytes from the buffer (see [`Self::feed`]).
    #[inline(never)]
    fn compact(&mut self) {
        self.buf.drain(..self.consumed);
        self.fed -= self.consumed;
        self.consumed = 0;
        // After a large stanza, give the memory back (hysteresis avoids churn).
        let keep = self.buf.len().max(BUFFER_BASELINE);
        if self.buf.capacity() > 4 * keep {
            self.buf.shrink_to(keep);
        }
    }

    /// On a framed stream ([`Self::framed`]): one whole WebSocket message. Call
    /// [`next_event`](Self::next_event) until it returns `Ok(None)` before the next one. The
    /// message ends here: an element it leaves open is `not-well-formed`. On a TCP stream
    /// this is [`feed`](Self::feed). Discarded once the parser has failed.
    pub fn feed_message(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let Some(framing) = &mut self.framing else {
            self.feed(bytes);
            return;
        };
        framing.complete = true;
        // Every message is a document of its own: nothing of the previous one carries over.
        self.buf.clear();
        self.consumed = 0;
        self.fed = 0;
        self.raw = new_raw(&self.limits);
        self.phase = Phase::Stream;
        self.scopes.clear();
        self.head = None;
        self.stack.clear();
        self.text_lens.clear();
        if let Some(capture) = &mut self.capture {
            // Kept for the next stanza (no allocation per message); nothing of it is read.
            capture.depth = 0;
        }
        self.pending_start = None;
        self.buf.extend_from_slice(bytes);
    }

    // ----- commands -----

    /// Restarts the stream (after STARTTLS or SASL success, RFC 6120 §4.3.3): forgets the
    /// header, namespaces, any partial element and any error, and keeps the buffered bytes,
    /// which the fresh state parses from the start (they must begin with the new stream
    /// header, optionally preceded by an XML declaration).
    ///
    /// On a framed stream the message being read is over (its one element was consumed) and
    /// the next message must be a new `<open/>`.
    pub fn reset(&mut self) {
        if let Some(framing) = &mut self.framing {
            framing.restart();
            self.buf.clear();
            self.consumed = 0;
            self.phase = Phase::Stream;
        }
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        self.fed = 0;
        self.raw = new_raw(&self.limits);
        if self.framing.is_none() {
            self.phase = Phase::Header;
        }
        self.error = None;
        self.scopes.clear();
        self.head = None;
        self.attrs.clear();
        self.decls.clear();
        self.stack.clear();
        self.text_lens.clear();
        self.capture = None;
        self.pending_start = None;
        self.context = None;
        self.header_lang = None;
    }

    /// Gives back the scratch memory parsing needs (rxml's token buffers, 8 KiB each with the
    /// default limits; the input buffer; the element and attribute stacks), if the parser is
    /// between elements with every fed byte consumed. Returns whether it did. Memory is
    /// allocated again when the next element starts, so call it when the stream goes quiet
    /// (a server's idle connections), not after every read: `xmpp-stream` calls it when
    /// negotiation completes and on each keepalive tick. An idle parser then holds about
    /// 700 bytes besides its own struct instead of about 11 KiB.
    pub fn release_memory(&mut self) -> bool {
        if self.depth() > 0 || self.consumed != self.buf.len() || self.head.is_some() {
            return false;
        }
        self.raw.release_temporaries();
        self.capture = None;
        self.buf = Vec::new();
        self.consumed = 0;
        self.fed = 0;
        self.attrs = Vec::new();
        self.decls = Vec::new();
        self.stack = Vec::new();
        self.text_lens = Vec::new();
        self.scopes.shrink_to_fit();
        true
    }

    /// Returns the buffered bytes (fed but not part of a returned event) and resets the
    /// parser to a fresh state with an empty buffer, as [`reset`](Self::reset) would.
    #[must_use]
    pub fn take_unparsed(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.consumed);
        self.buf.clear();
        self.consumed = 0;
        self.reset();
        rest
    }

    // ----- outputs -----

    /// The next event, `Ok(None)` if more bytes are needed, or the (sticky) error.
    #[inline]
    pub fn next_event(&mut self) -> Result<Option<Event>, ParseError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        // Not dropped on "need more bytes", the common return: `advance` reports `false` only
        // with nothing in the slot, so there is nothing to drop (and no drop check per read).
        let mut ready = core::mem::ManuallyDrop::new(None);
        match self.advance(&mut ready) {
            // "Need more bytes" is told without handing an (empty) event slot around.
            Ok(false) => Ok(None),
            Ok(true) => Ok(core::mem::ManuallyDrop::into_inner(ready)),
            Err(error) => {
                drop(core::mem::ManuallyDrop::into_inner(ready));
                self.error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Runs the tokenizer until an event is ready (`true`, in `ready`) or it needs more
    /// bytes (`false`).
    #[inline(never)]
    fn advance(&mut self, ready: &mut Ready) -> Result<bool, ParseError> {
        if self.phase == Phase::Ended {
            return self.after_end();
        }
        loop {
            let mut input = &self.buf[self.fed..];
            let before = input.len();
            let result = self.raw.parse(&mut input, false);
            self.fed += before - input.len();
            let raw = match result {
                Ok(Some(raw)) => raw,
                Ok(None) | Err(EndOrError::NeedMoreData) => {
                    self.check_pending()?;
                    if self.framing.as_ref().is_some_and(|f| f.complete) {
                        return Err(framing::incomplete());
                    }
                    return Ok(false);
                }
                Err(EndOrError::Error(error)) => return Err(self.map_rxml_error(error)),
            };
            self.check_pending()?;
            self.handle_raw(raw, ready)?;
            if ready.is_some() {
                return Ok(true);
            }
        }
    }

    /// Bounds the bytes held for the event in progress.
    fn check_pending(&self) -> Result<(), ParseError> {
        if self.fed - self.consumed > self.limits.max_stanza_bytes {
            return Err(policy("element exceeds the stanza size limit"));
        }
        Ok(())
    }

    fn after_end(&mut self) -> Result<bool, ParseError> {
        let rest = &self.buf[self.consumed..];
        if let Some(pos) = rest.iter().position(|b| !is_xml_space(*b)) {
            self.consumed += pos;
            if self.framing.is_some() {
                return Err(framing::trailing());
            }
            return Err(ParseError::new(
                Cond::NotWellFormed,
                "data after the end of the stream",
            ));
        }
        if let Some(framing) = &mut self.framing {
            framing.complete = false;
        }
        self.consumed = self.buf.len();
        self.fed = self.consumed;
        Ok(false)
    }

    // Inlined into the event loop: out of line, every event (about 100 bytes) is copied into
    // the call (+3% instructions on the `xml` bench).
    #[allow(clippy::inline_always)] // measured: see above
    #[inline(always)]
    fn handle_raw(&mut self, raw: RawEvent, ready: &mut Ready) -> Result<(), ParseError> {
        match raw {
            RawEvent::XmlDeclaration(..) => Ok(()),
            RawEvent::ElementHeadOpen(metrics, (prefix, local)) => {
                let mut opens_stanza = false;
                if self.phase == Phase::Stream {
                    let depth = self.depth();
                    opens_stanza = depth == 0;
                    if depth >= self.limits.max_depth {
                        return Err(policy("element nesting exceeds the depth limit"));
                    }
                    if depth == 0 && self.envelopes {
                        self.note_depth1_start()?;
                    }
                    self.elements = if depth == 0 { 1 } else { self.elements + 1 };
                    if self.elements > self.limits.max_elements {
                        return Err(policy("element count exceeds the per-stanza limit"));
                    }
                }
                // The event's bytes (`<`, the name, maybe whitespace before) bound the name's
                // length: only a long event needs the name measured.
                if metrics.len() > self.limits.max_name_length
                    && qname_len(prefix.as_ref(), &local) > self.limits.max_name_length
                {
                    return Err(policy("element name exceeds the name length limit"));
                }
                if opens_stanza {
                    // Inside a stanza, text is only needed whole: let rxml batch it.
                    self.raw.set_text_buffering(true);
                }
                self.measuring = opens_stanza && self.envelopes;
                self.attr_events = 0;
                self.head = Some(Head { prefix, local });
                self.attrs.clear();
                self.decls.clear();
                Ok(())
            }
            RawEvent::Attribute(metrics, (prefix, local), value) => {
                self.attribute(metrics.len(), prefix, local, value)
            }
            RawEvent::ElementHeadClose(metrics) => {
                if self.measuring {
                    // The tag's end (`>` or `/>`, with the whitespace before it).
                    self.measure(metrics.len());
                }
                let head = self.head.take().ok_or_else(internal)?;
                if self.phase == Phase::Header {
                    self.finish_header(&head, ready)
                } else {
                    self.open_element(&head)
                }
            }
            RawEvent::ElementFoot(_) => self.close_element(ready),
            RawEvent::Text(_, text) => self.text(text, ready),
        }
    }

    /// Notes the length of one event of a start tag being measured (an attribute; the
    /// last one is the tag's end, `>` or `/>`).
    fn measure(&mut self, len: usize) {
        if let Some(slot) = self.attr_spans.get_mut(self.attr_events) {
            // An event longer than `u32` (never, under the token bounds) fails the
            // measurement: the splice then scans.
            *slot = u32::try_from(len).unwrap_or(u32::MAX);
        }
        self.attr_events += 1;
    }

    /// In envelope mode, at a depth-1 start tag: where its `<` is, and the stream context
    /// (taken at the first one). Once per stanza: kept out of the event loop.
    #[inline(never)]
    fn note_depth1_start(&mut self) -> Result<(), ParseError> {
        // The tokenizer has read `<` and the name (and maybe one byte more).
        let window = self.buf.get(self.consumed..self.fed).unwrap_or_default();
        let start = window.iter().rposition(|b| *b == b'<');
        self.pending_start = Some(start.ok_or_else(internal)?);
        if self.context.is_none() {
            // At depth 0 the innermost scope is the stream header's.
            self.context = Some(Arc::new(StreamContext {
                decls: self
                    .scopes
                    .current_declarations()
                    .map(|(p, ns)| (p.map(|p| p.as_str().to_owned()), ns.to_owned()))
                    .collect(),
                lang: self.header_lang.clone(),
                limits: self.limits.clone(),
            }));
        }
        Ok(())
    }

    /// An attribute event (`len`: its length in bytes).
    fn attribute(
        &mut self,
        len: usize,
        prefix: Option<NcName>,
        local: NcName,
        value: String,
    ) -> Result<(), ParseError> {
        if self.measuring {
            self.measure(len);
        }
        // The local name is looked at once (its length, `xmlns`, its key).
        let name = local.as_str();
        let name_len = prefix.as_ref().map_or(0, |p| p.len() + 1) + name.len();
        if name_len > self.limits.max_name_length {
            return Err(policy("attribute name exceeds the name length limit"));
        }
        if value.len() > self.limits.max_attribute_value_length {
            return Err(policy("attribute value exceeds the length limit"));
        }
        match prefix {
            None if name == "xmlns" => self.decls.push((None, value)),
            Some(p) if p.as_str() == "xmlns" => self.decls.push((Some(local), value)),
            prefix => {
                if self.attrs.len() >= self.limits.max_attributes {
                    return Err(policy("element exceeds the attribute count limit"));
                }
                let key = name_key(name);
                if let Some(slot) = self.attr_keys.get_mut(self.attrs.len()) {
                    *slot = key;
                }
                self.attrs.push((prefix, local, value));
                return Ok(());
            }
        }
        if self.decls.len() > self.limits.max_namespace_declarations {
            return Err(policy(
                "element exceeds the namespace declaration count limit",
            ));
        }
        Ok(())
    }

    /// Brings the current element's namespace declarations into scope.
    #[inline]
    fn push_scope(&mut self) -> Result<(), ParseError> {
        self.scopes.push(&mut self.decls)
    }

    /// Resolves the attributes read for the current start tag into an attribute map.
    fn resolve_attrs(&mut self) -> Result<rxml::AttrMap, ParseError> {
        let mut map = rxml::AttrMap::new();
        // Taken out and put back so the vector keeps its capacity from element to element.
        let mut attrs = core::mem::take(&mut self.attrs);
        for (prefix, local, value) in attrs.drain(..) {
            let ns = match prefix {
                None => Namespace::NONE,
                Some(p) => match self.scopes.lookup(Some(&p))? {
                    rxml::XMLNS_XML => Namespace::XML,
                    other => Namespace::from(other.to_owned()),
                },
            };
            // The map is ordered, so this duplicate check costs O(log n) per attribute.
            if map.insert(ns, local, value).is_some() {
                return Err(ParseError::new(Cond::NotWellFormed, "duplicate attribute"));
            }
        }
        self.attrs = attrs;
        Ok(map)
    }

    /// The stream header's start tag is complete: it is the event. Once per stream: kept out
    /// of the event loop.
    #[inline(never)]
    fn finish_header(&mut self, head: &Head, ready: &mut Ready) -> Result<(), ParseError> {
        let header = self.stream_header(head)?;
        self.phase = Phase::Stream;
        self.consumed = self.fed;
        *ready = Some(Event::StreamStart(header));
        Ok(())
    }

    fn stream_header(&mut self, head: &Head) -> Result<StreamHeader, ParseError> {
        let declared: Vec<(Option<String>, String)> = self
            .decls
            .iter()
            .map(|(p, ns)| (p.as_ref().map(|p| p.as_str().to_owned()), ns.clone()))
            .collect();
        self.push_scope()?;
        let ns = self.scopes.lookup(head.prefix.as_ref())?;
        if ns != NS_STREAMS {
            return Err(ParseError::new(
                Cond::InvalidNamespace,
                format!("stream element in namespace {ns:?}"),
            ));
        }
        if head.local.as_str() != "stream" {
            return Err(ParseError::new(
                Cond::BadFormat,
                format!("root element is {:?}, not \"stream\"", head.local.as_str()),
            ));
        }
        let attrs = self.resolve_attrs()?;
        let stream_prefix = head.prefix.as_ref().map(|p| p.as_str().to_owned());
        let mut content_namespace = None;
        let mut namespace_declarations = Vec::new();
        for (prefix, ns) in declared {
            match prefix {
                None if ns.is_empty() => {}
                None if stream_prefix.is_none() => {}
                None if ns == NS_STREAMS => {
                    return Err(ParseError::new(
                        Cond::InvalidNamespace,
                        "the content namespace is the stream namespace",
                    ));
                }
                None => content_namespace = Some(ContentNamespace::from(ns.as_str())),
                Some(p) if Some(&p) == stream_prefix.as_ref() => {}
                Some(p) => namespace_declarations.push((p, ns)),
            }
        }
        self.header_lang = attrs.get(&Namespace::XML, "lang").cloned();
        let get = |name: &str| attrs.get(&Namespace::NONE, name).cloned();
        let version = match attrs.get(&Namespace::NONE, "version") {
            None => None,
            Some(v) => match v.parse::<StreamVersion>() {
                Ok(version) if version.major == 1 => Some(version),
                _ => {
                    return Err(ParseError::new(
                        Cond::UnsupportedVersion,
                        format!("unsupported stream version {v:?}"),
                    ));
                }
            },
        };
        Ok(StreamHeader {
            to: get("to"),
            from: get("from"),
            id: get("id"),
            version,
            lang: attrs.get(&Namespace::XML, "lang").cloned(),
            content_namespace,
            stream_prefix,
            namespace_declarations,
        })
    }

    fn open_element(&mut self, head: &Head) -> Result<(), ParseError> {
        self.push_scope()?;
        if self.capturing() {
            // Never on a framed stream: envelopes are off there.
            return self.open_captured_child(head);
        }
        self.open_uncaptured(head)
    }

    /// [`Self::open_element`] outside a captured stanza (the element path, and a depth-1
    /// element in envelope mode): kept out of the event loop of envelope mode.
    #[inline(never)]
    fn open_uncaptured(&mut self, head: &Head) -> Result<(), ParseError> {
        let ns = self.scopes.lookup(head.prefix.as_ref())?;
        if let (Some(framing), true) = (&self.framing, self.stack.is_empty()) {
            framing.check_root(ns, head.local.as_str())?;
        }
        let pending_start = self.pending_start.take();
        if self.stack.is_empty() && ns == NS_STREAMS && head.local.as_str() == "stream" {
            // A second stream header inside the open stream (any prefix: the check is on the
            // resolved namespace). It is well-formed XML in the right namespace, so neither
            // `not-well-formed` nor `invalid-namespace` fits; RFC 6120 §4.9.3.1 defines
            // `bad-format` for XML the receiver cannot process, which a nested stream is (a
            // restart is a new stream header on a fresh stream, §4.3.3, never a child of the
            // old one). Buffering it as a stanza would hold the peer's bytes until the stanza
            // size bound: reject it as soon as its start tag is complete.
            return Err(ParseError::new(
                Cond::BadFormat,
                "stream header inside the open stream",
            ));
        }
        if let (true, Some(start), Some((kind, ns))) = (
            self.stack.is_empty(),
            pending_start,
            stanza_kind(head.local.as_str(), ns),
        ) {
            return self.open_capture(head, start, kind, ns);
        }
        let mut element = crate::prototypes::element(head.local.as_str(), ns);
        // Most stanza children carry no attributes (only `xmlns`): keep the empty map.
        if !self.attrs.is_empty() {
            let attrs = self.resolve_attrs()?;
            *element.attrs_mut() = attrs;
        }
        self.stack.push(element);
        self.text_lens.push(0);
        Ok(())
    }

    /// Starts capturing a depth-1 stanza as an envelope (its start tag was just read).
    /// Once per stanza: kept out of the event loop.
    #[inline(never)]
    fn open_capture(
        &mut self,
        head: &Head,
        start: usize,
        kind: StanzaKind,
        ns: &'static str,
    ) -> Result<(), ParseError> {
        let mut bindings = Bindings::default();
        note_bindings(
            &self.scopes,
            self.context.as_deref(),
            &self.attrs,
            head,
            &mut bindings,
            ns,
            true,
        );
        let head_end = (self.fed - self.consumed)
            .checked_sub(start)
            .ok_or_else(internal)?;
        let tag_start = self.consumed + start;
        let spans = self
            .buf
            .get(tag_start..tag_start + head_end)
            .zip(self.attr_spans.get(..self.attr_events))
            .and_then(|(tag, events)| SpliceSpans::measure(tag, events, head.prefix.is_some()));
        let mut header = Header::default();
        if self.attrs.len() > PAIRWISE_ATTRS {
            let mut attrs = self.resolve_attrs()?;
            let mut take = |ns: &Namespace<'static>, name: &str| attrs.remove(ns, name);
            header = Header {
                to: take(&Namespace::NONE, "to"),
                from: take(&Namespace::NONE, "from"),
                type_: take(&Namespace::NONE, "type"),
                id: take(&Namespace::NONE, "id"),
                lang: take(&Namespace::XML, "lang"),
            };
        } else {
            // The usual handful: checked pairwise as `validate_attrs` does (same errors, same
            // order as building the map), and the header's values moved out, no map built.
            self.check_attrs_pairwise()?;
            let mut attrs = core::mem::take(&mut self.attrs);
            for (prefix, local, value) in attrs.drain(..) {
                let slot = match (&prefix, local.as_str()) {
                    (None, "to") => &mut header.to,
                    (None, "from") => &mut header.from,
                    (None, "type") => &mut header.type_,
                    (None, "id") => &mut header.id,
                    (Some(p), "lang") if self.scopes.lookup(Some(p))? == rxml::XMLNS_XML => {
                        &mut header.lang
                    }
                    _ => continue,
                };
                *slot = Some(value);
            }
            self.attrs = attrs;
        }
        // The box of the previous stanza is filled in place (its values were moved out).
        let capture = self.capture.get_or_insert_with(|| {
            Box::new(Capture {
                start: 0,
                head_end: 0,
                depth: 0,
                kind,
                ns,
                to: None,
                from: None,
                type_: None,
                id: None,
                lang: None,
                bindings: Bindings::default(),
                spans: None,
            })
        });
        capture.start = start;
        capture.head_end = head_end;
        capture.depth = 1;
        capture.kind = kind;
        capture.ns = ns;
        capture.to = header.to;
        capture.from = header.from;
        capture.type_ = header.type_;
        capture.id = header.id;
        capture.lang = header.lang;
        capture.bindings = bindings;
        capture.spans = spans;
        self.text_lens.push(0);
        Ok(())
    }

    /// Validates an element inside a captured stanza without building it.
    fn open_captured_child(&mut self, head: &Head) -> Result<(), ParseError> {
        if head.prefix.is_some() {
            // An unbound prefix is `not-well-formed`; the namespace itself is not needed.
            self.scopes.lookup(head.prefix.as_ref())?;
        }
        let Some(capture) = self.capture.as_deref_mut().filter(|c| c.depth > 0) else {
            return Err(internal());
        };
        let own = capture.ns;
        note_bindings(
            &self.scopes,
            self.context.as_deref(),
            &self.attrs,
            head,
            &mut capture.bindings,
            own,
            false,
        );
        capture.depth += 1;
        self.validate_attrs()?;
        self.text_lens.push(0);
        Ok(())
    }

    /// Checks the attributes read for the current start tag as [`Self::resolve_attrs`] does
    /// (unbound prefixes, then duplicates by resolved name, in document order, same errors)
    /// without building the map: pairwise for the usual handful.
    fn validate_attrs(&mut self) -> Result<(), ParseError> {
        if self.attrs.is_empty() {
            return Ok(());
        }
        if self.attrs.len() > PAIRWISE_ATTRS {
            return self.resolve_attrs().map(drop);
        }
        self.check_attrs_pairwise()?;
        self.attrs.clear();
        Ok(())
    }

    /// The checks of [`Self::resolve_attrs`] (unbound prefixes, then duplicates by resolved
    /// name, in document order, same errors) pairwise, for at most [`PAIRWISE_ATTRS`]
    /// attributes; the attributes stay. Two names are compared only when their
    /// [`name_key`]s are equal.
    fn check_attrs_pairwise(&self) -> Result<(), ParseError> {
        let attrs = self.attrs.as_slice();
        if let [(prefix, _, _)] = attrs {
            // One attribute: only its prefix can be wrong.
            if prefix.is_some() {
                self.scopes.lookup(prefix.as_ref())?;
            }
            return Ok(());
        }
        let keys = self.attr_keys.get(..attrs.len()).ok_or_else(internal)?;
        if attrs.iter().all(|(prefix, _, _)| prefix.is_none()) {
            // No namespaces: duplicates by name alone.
            for (i, ((_, local, _), key)) in attrs.iter().zip(keys).enumerate() {
                if attrs[..i]
                    .iter()
                    .zip(keys)
                    .any(|((_, other, _), other_key)| other_key == key && other == local)
                {
                    return Err(ParseError::new(Cond::NotWellFormed, "duplicate attribute"));
                }
            }
            return Ok(());
        }
        // An unprefixed attribute has no namespace; a prefix is never bound to "".
        let resolve = |prefix: &Option<NcName>| match prefix {
            None => Ok(""),
            Some(p) => self.scopes.lookup(Some(p)),
        };
        for (i, ((prefix, local, _), key)) in attrs.iter().zip(keys).enumerate() {
            let ns = resolve(prefix)?;
            for ((other_prefix, other_local, _), other_key) in attrs[..i].iter().zip(keys) {
                if other_key == key && other_local == local && resolve(other_prefix)? == ns {
                    return Err(ParseError::new(Cond::NotWellFormed, "duplicate attribute"));
                }
            }
        }
        Ok(())
    }

    /// Closes an element inside a captured stanza; the envelope when the stanza ends.
    fn close_captured(&mut self, ready: &mut Ready) -> Result<(), ParseError> {
        let Some(capture) = self.capture.as_deref_mut().filter(|c| c.depth > 0) else {
            return Err(internal());
        };
        capture.depth -= 1;
        let done = capture.depth == 0;
        self.text_lens.pop();
        self.scopes.pop();
        if done {
            return self.finish_capture(ready);
        }
        Ok(())
    }

    /// The captured stanza's end tag was read: its envelope is the event. Once per stanza:
    /// kept out of the event loop.
    #[inline(never)]
    fn finish_capture(&mut self, ready: &mut Ready) -> Result<(), ParseError> {
        let Some(mut capture) = self.capture.take() else {
            return Err(internal());
        };
        // The box is kept for the next stanza; its values move into the envelope.
        let mut bindings = Bindings::default();
        core::mem::swap(&mut bindings, &mut capture.bindings);
        let (to, from_attr, type_, id, lang) = (
            capture.to.take(),
            capture.from.take(),
            capture.type_.take(),
            capture.id.take(),
            capture.lang.take(),
        );
        let (start, head_end, kind, ns, spans) = (
            capture.start,
            capture.head_end,
            capture.kind,
            capture.ns,
            capture.spans,
        );
        self.capture = Some(capture);
        let from = self.consumed + start;
        let bytes = self.buf.get(from..self.fed).ok_or_else(internal)?.to_vec();
        let context = self.context.clone().ok_or_else(internal)?;
        self.consumed = self.fed;
        self.raw.set_text_buffering(false);
        if self.framing.is_some() {
            // The message's one element, as on the element path: anything but whitespace
            // after it fails the message before its stanza is delivered.
            self.phase = Phase::Ended;
            if self.buf[self.fed..].iter().any(|b| !is_xml_space(*b)) {
                return Err(framing::trailing());
            }
        }
        *ready = Some(Event::Stanza(Envelope {
            bytes,
            head_end,
            kind,
            ns,
            to,
            from: from_attr,
            type_,
            id,
            lang,
            context,
            bindings,
            spans,
        }));
        Ok(())
    }

    /// Whether a stanza is being captured as an envelope.
    fn capturing(&self) -> bool {
        self.capture.as_ref().is_some_and(|c| c.depth > 0)
    }

    /// Open elements below the stream element.
    fn depth(&self) -> usize {
        self.stack.len() + self.capture.as_ref().map_or(0, |c| c.depth)
    }

    fn close_element(&mut self, ready: &mut Ready) -> Result<(), ParseError> {
        if self.capturing() {
            return self.close_captured(ready);
        }
        self.close_uncaptured(ready)
    }

    /// [`Self::close_element`] outside a captured stanza: kept out of the event loop of
    /// envelope mode.
    #[inline(never)]
    fn close_uncaptured(&mut self, ready: &mut Ready) -> Result<(), ParseError> {
        let Some(element) = self.stack.pop() else {
            // The stream element itself closed.
            self.phase = Phase::Ended;
            self.consumed = self.fed;
            self.scopes.clear();
            *ready = Some(Event::StreamEnd);
            return Ok(());
        };
        self.text_lens.pop();
        self.scopes.pop();
        if let Some(parent) = self.stack.last_mut() {
            parent.append_child(element);
            Ok(())
        } else {
            self.consumed = self.fed;
            // Between stanzas, report keepalive whitespace as soon as it arrives.
            self.raw.set_text_buffering(false);
            if let Some(framing) = &mut self.framing {
                // The message's one element. The whole message is here: anything but
                // whitespace after it fails the message before its element is delivered.
                self.phase = Phase::Ended;
                if self.buf[self.fed..].iter().any(|b| !is_xml_space(*b)) {
                    return Err(framing::trailing());
                }
                let event = framing.event(element)?;
                if let Event::StreamStart(header) = &event {
                    // What a stanza without its own `xml:lang` inherits (envelope `lang()`).
                    self.header_lang.clone_from(&header.lang);
                    // An envelope's context is taken at its first stanza, after this.
                    self.context = None;
                }
                *ready = Some(event);
                return Ok(());
            }
            *ready = Some(Event::Element(element));
            Ok(())
        }
    }

    fn text(&mut self, text: String, ready: &mut Ready) -> Result<(), ParseError> {
        if self.capturing() {
            if let Some(len) = self.text_lens.last_mut() {
                *len += text.len();
                if *len > self.limits.max_text_length {
                    return Err(policy("character data exceeds the text length limit"));
                }
            }
            return Ok(());
        }
        self.text_uncaptured(text, ready)
    }

    /// [`Self::text`] outside a captured stanza: kept out of the event loop of envelope
    /// mode.
    #[inline(never)]
    fn text_uncaptured(&mut self, text: String, ready: &mut Ready) -> Result<(), ParseError> {
        let Some(element) = self.stack.last_mut() else {
            if self.phase != Phase::Stream {
                return Ok(());
            }
            if !text.bytes().all(is_xml_space) {
                if self.framing.is_some() {
                    return Err(framing::trailing());
                }
                return Err(ParseError::new(
                    Cond::BadFormat,
                    "character data directly inside the stream element",
                ));
            }
            // The tokenizer may have read the `<` that ended the run (or the start of a
            // reference): only the literal whitespace is consumed.
            let pending = &self.buf[self.consumed..self.fed];
            self.consumed += pending.iter().take_while(|b| is_xml_space(**b)).count();
            if self.framing.is_some() {
                // Whitespace around a message's element is not a keepalive (RFC 7395 §3.8).
                return Ok(());
            }
            *ready = Some(Event::Whitespace);
            return Ok(());
        };
        if text.is_empty() {
            return Ok(());
        }
        if let Some(len) = self.text_lens.last_mut() {
            *len += text.len();
            if *len > self.limits.max_text_length {
                return Err(policy("character data exceeds the text length limit"));
            }
        }
        element.append_text(text);
        Ok(())
    }

    /// Maps an rxml error to its RFC 6120 condition, looking at the bytes of the failing
    /// construct where rxml's error is too generic.
    fn map_rxml_error(&self, error: rxml::Error) -> ParseError {
        // The bytes read since the last event boundary hold the failing construct.
        let window = self.buf.get(self.consumed..self.fed).unwrap_or_default();
        let detail = format!("{error}");
        let condition = match error {
            rxml::Error::RestrictedXml("long name or reference" | "event too long") => {
                Cond::PolicyViolation
            }
            rxml::Error::RestrictedXml(_) if non_utf8_encoding(window) => Cond::UnsupportedEncoding,
            rxml::Error::RestrictedXml(_) | rxml::Error::UndeclaredEntity => Cond::RestrictedXml,
            _ if is_markup_declaration(window) => Cond::RestrictedXml,
            _ => Cond::NotWellFormed,
        };
        ParseError::new(condition, detail)
    }
}

/// Records what the element just opened (its declarations in `scopes`, its prefix and its
/// attributes' prefixes) borrows from the stream header (`context`) and whether it binds the
/// stanza's namespace `own`.
// Inlined so the fast path costs no call (30 000 elements per 2 MiB in the `xml` bench).
#[allow(clippy::inline_always)]
#[inline(always)]
fn note_bindings(
    scopes: &Scopes,
    context: Option<&StreamContext>,
    attrs: &[(Option<NcName>, NcName, String)],
    head: &Head,
    bindings: &mut Bindings,
    own: &str,
    root: bool,
) {
    // No prefix to borrow (`xml` is never borrowed: `xml:lang` on a stanza is usual).
    if head.prefix.is_none()
        && attrs
            .iter()
            .all(|(prefix, _, _)| prefix.as_ref().is_none_or(|p| p.as_str() == "xml"))
    {
        if !scopes.declares_any() {
            // The usual element inside a stanza (the header's default already noted) has
            // nothing to note; else (a stanza's root) it may be in the header's default.
            if !bindings.borrows_default
                && context.is_some_and(|c| scopes.default.len() == c.default_count())
            {
                bindings.borrows_default = true;
            }
            return;
        } else if let Some(default) = scopes.only_default_declaration() {
            // The usual declaring element (`<query xmlns='jabber:iq:roster'>`): no prefix to
            // borrow, and its default namespace is its own, not the header's; all there is
            // to note is whether it binds the stanza's namespace (the root may).
            if default == own && !root {
                bindings.rebinds_own = true;
            }
            return;
        }
    }
    note_bindings_in_full(scopes, context, attrs, head, bindings, own, root);
}

/// [`note_bindings`] past its fast path.
fn note_bindings_in_full(
    scopes: &Scopes,
    context: Option<&StreamContext>,
    attrs: &[(Option<NcName>, NcName, String)],
    head: &Head,
    bindings: &mut Bindings,
    own: &str,
    root: bool,
) {
    if scopes.declares_any() {
        let root_default_ok = root && head.prefix.is_none();
        for (prefix, value) in scopes.current_declarations() {
            if value == own && !(prefix.is_none() && root_default_ok) {
                bindings.rebinds_own = true;
            }
        }
    }
    let Some(context) = context else {
        return;
    };
    let mut borrow = |p: &NcName| {
        if p.as_str() != "xml"
            && context.declares(p.as_str())
            && scopes.prefixed.get(p).is_some_and(|s| s.len() == 1)
            && !bindings.borrowed.iter().any(|(q, _)| q == p.as_str())
        {
            if let Ok(value) = scopes.lookup(Some(p)) {
                bindings
                    .borrowed
                    .push((p.as_str().to_owned(), value.to_owned()));
            }
        }
    };
    match &head.prefix {
        Some(p) => borrow(p),
        None => {
            if !bindings.borrows_default && scopes.default.len() == context.default_count() {
                bindings.borrows_default = true;
            }
        }
    }
    for (prefix, _, _) in attrs {
        if let Some(p) = prefix {
            borrow(p);
        }
    }
}

/// Namespace declarations in scope: O(1) default-namespace and O(log n) prefix lookups, so
/// no nesting of declarations makes resolution quadratic.
#[derive(Debug, Default)]
struct Scopes {
    /// Prefixes declared (`None`: the default namespace), in order, to undo at element end.
    declared: Vec<Option<NcName>>,
    /// `declared.len()` before each open element's declarations, root included.
    marks: Vec<usize>,
    /// The default namespace declarations in scope, innermost last.
    default: Vec<String>,
    /// The declarations of each prefix in scope, innermost last.
    prefixed: BTreeMap<NcName, Vec<String>>,
}

impl Scopes {
    fn clear(&mut self) {
        self.declared.clear();
        self.marks.clear();
        self.default.clear();
        self.prefixed.clear();
    }

    fn shrink_to_fit(&mut self) {
        self.declared.shrink_to_fit();
        self.marks.shrink_to_fit();
        self.default.shrink_to_fit();
        for stack in self.prefixed.values_mut() {
            stack.shrink_to_fit();
        }
    }

    /// Opens an element's scope with its declarations (drained from `decls`).
    // Once per element: out of line it cost a call per element (measured, issue 17).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn push(&mut self, decls: &mut Vec<(Option<NcName>, String)>) -> Result<(), ParseError> {
        if decls.is_empty() {
            // Most elements inside a stanza declare nothing.
            self.marks.push(self.declared.len());
            return Ok(());
        }
        if let [(None, _)] = decls.as_slice() {
            // The usual declaring element declares its default namespace, and nothing else.
            if let Some((_, ns)) = decls.pop() {
                self.marks.push(self.declared.len());
                self.default.push(ns);
                self.declared.push(None);
                return Ok(());
            }
        }
        self.push_declarations(decls)
    }

    /// [`Self::push`] for an element that declares something.
    #[inline(never)]
    fn push_declarations(
        &mut self,
        decls: &mut Vec<(Option<NcName>, String)>,
    ) -> Result<(), ParseError> {
        // rxml has already rejected rebinding `xml`/`xmlns` and empty prefixed declarations;
        // a prefix declared twice on one element is a duplicate attribute.
        if has_duplicate_prefix(decls) {
            return Err(ParseError::new(
                Cond::NotWellFormed,
                "namespace declared twice on one element",
            ));
        }
        self.marks.push(self.declared.len());
        for (prefix, ns) in decls.drain(..) {
            match &prefix {
                None => self.default.push(ns),
                Some(p) => self.prefixed.entry(p.clone()).or_default().push(ns),
            }
            self.declared.push(prefix);
        }
        Ok(())
    }

    /// The default namespace the innermost element declared, if that is its only
    /// declaration.
    fn only_default_declaration(&self) -> Option<&str> {
        let mark = *self.marks.last()?;
        if mark + 1 != self.declared.len() || self.declared.last() != Some(&None) {
            return None;
        }
        self.default.last().map(String::as_str)
    }

    /// Whether the innermost element declared anything.
    fn declares_any(&self) -> bool {
        self.marks
            .last()
            .is_none_or(|mark| *mark < self.declared.len())
    }

    /// The declarations of the innermost element (each prefix at most once): the top of
    /// each declared prefix's stack.
    fn current_declarations(&self) -> impl Iterator<Item = (Option<&NcName>, &str)> {
        let mark = self.marks.last().copied().unwrap_or(0);
        self.declared
            .get(mark..)
            .unwrap_or_default()
            .iter()
            .filter_map(|prefix| {
                let value = match prefix {
                    None => self.default.last(),
                    Some(p) => self.prefixed.get(p).and_then(|s| s.last()),
                };
                Some((prefix.as_ref(), value?.as_str()))
            })
    }

    /// Closes the innermost element's scope.
    #[inline]
    fn pop(&mut self) {
        let Some(mark) = self.marks.pop() else {
            return;
        };
        if mark < self.declared.len() {
            if mark + 1 == self.declared.len() && self.declared.last() == Some(&None) {
                // Its one declaration was the default namespace.
                self.declared.pop();
                self.default.pop();
                return;
            }
            self.pop_declarations(mark);
        }
    }

    /// [`Self::pop`] for an element that declared something: undoes its declarations.
    #[inline(never)]
    fn pop_declarations(&mut self, mark: usize) {
        for prefix in self.declared.drain(mark..) {
            match prefix {
                None => {
                    self.default.pop();
                }
                Some(p) => {
                    if let Some(stack) = self.prefixed.get_mut(&p) {
                        stack.pop();
                        if stack.is_empty() {
                            self.prefixed.remove(&p);
                        }
                    }
                }
            }
        }
    }

    /// The namespace bound to `prefix` (`None`: the default namespace, `""` if undeclared).
    fn lookup(&self, prefix: Option<&NcName>) -> Result<&str, ParseError> {
        match prefix {
            None => Ok(self.default.last().map_or("", String::as_str)),
            Some(p) if p.as_str() == "xml" => Ok(rxml::XMLNS_XML),
            Some(p) => self
                .prefixed
                .get(p)
                .and_then(|stack| stack.last())
                .map(String::as_str)
                .ok_or_else(|| {
                    ParseError::new(
                        Cond::NotWellFormed,
                        format!("unbound namespace prefix {:?}", p.as_str()),
                    )
                }),
        }
    }
}

/// Whether a prefix is declared twice: pairwise for the usual handful, by sorting beyond.
fn has_duplicate_prefix(decls: &[(Option<NcName>, String)]) -> bool {
    if decls.len() <= 8 {
        return decls
            .iter()
            .enumerate()
            .any(|(i, (p, _))| decls[..i].iter().any(|(q, _)| q == p));
    }
    let mut prefixes: Vec<Option<&str>> = decls
        .iter()
        .map(|(p, _)| p.as_ref().map(NcName::as_str))
        .collect();
    prefixes.sort_unstable();
    prefixes.windows(2).any(|w| w[0] == w[1])
}

/// Attribute events of a stanza's start tag measured for the splice (beyond, it scans).
const SPAN_SLOTS: usize = 16;

/// Up to this many attributes, an element's are checked pairwise, without building a map.
const PAIRWISE_ATTRS: usize = 8;

/// A cheap summary of a name (its length and first and last bytes): equal names have equal
/// keys, so names with different keys need no comparison.
fn name_key(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let first = bytes.first().copied().unwrap_or(0);
    let last = bytes.last().copied().unwrap_or(0);
    // A filter, not an identity: a length beyond 16 bits (never, under the name bound)
    // only makes more pairs compare their names.
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    u32::from(len) << 16 | u32::from(first) << 8 | u32::from(last)
}

/// Buffer capacity kept between stanzas.
const BUFFER_BASELINE: usize = 8 * 1024;

fn new_raw(limits: &Limits) -> RawParser {
    // rxml's own token bound must not fire before ours (which give exact errors).
    let options = Options {
        max_token_length: limits
            .max_name_length
            .max(limits.max_attribute_value_length)
            .max(64),
        ..Options::default()
    };
    let mut raw = <RawParser as WithOptions>::with_options(options);
    // Emit text (in particular keepalive whitespace) as soon as it arrives.
    raw.set_text_buffering(false);
    raw
}

fn policy(detail: &str) -> ParseError {
    ParseError::new(Cond::PolicyViolation, detail)
}

fn internal() -> ParseError {
    ParseError::new(Cond::InternalServerError, "parser state out of sync")
}

fn qname_len(prefix: Option<&NcName>, local: &NcName) -> usize {
    prefix.map_or(0, |p| p.len() + 1) + local.len()
}

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether the failing construct is a markup declaration (`<!DOCTYPE`, `<!ENTITY`, ...):
/// `<!` followed by anything but the start of a comment or CDATA section.
fn is_markup_declaration(window: &[u8]) -> bool {
    window
        .windows(3)
        .any(|w| w[0] == b'<' && w[1] == b'!' && w[2] != b'[' && w[2] != b'-')
}

/// Whether the failing construct is an XML declaration naming an encoding other than UTF-8.
fn non_utf8_encoding(window: &[u8]) -> bool {
    let Some(start) = find(window, b"<?xml") else {
        return false;
    };
    let Some(at) = find(&window[start..], b"encoding") else {
        return false;
    };
    let rest = &window[start + at + b"encoding".len()..];
    let mut rest = rest.iter().copied().skip_while(|b| is_xml_space(*b));
    if rest.next() != Some(b'=') {
        return false;
    }
    let mut rest = rest.skip_while(|b| is_xml_space(*b));
    let Some(quote @ (b'\'' | b'"')) = rest.next() else {
        return false;
    };
    let value: Vec<u8> = rest.take_while(|b| *b != quote).collect();
    !value.eq_ignore_ascii_case(b"utf-8")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
