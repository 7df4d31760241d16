//! A stanza's child elements read from its envelope's bytes, no tree built: what a server
//! needs to decide a stanza from a few children (a presence's `<show/>`, `<status/>` and
//! `<priority/>`) while every recipient gets the bytes.
//!
//! The bytes were validated by the parser before the envelope was made (well-formed,
//! restricted XML, namespaces bound), so the reader only has to find boundaries: a tag ends
//! at the first `>` outside quotes, an element at its matching end tag. It resolves each
//! child's namespace as the parser did (the child's own declarations, then the stanza's, then
//! the stream header's) and decodes text and attribute values as the parser does (the five
//! predefined entities, character references, line ends, attribute value normalization).

use std::borrow::Cow;

use super::{Envelope, StartTagScan, find_byte};
use crate::conditions::StreamErrorCondition as Cond;
use crate::error::ParseError;

/// The namespace the `xml` prefix is bound to.
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// A child element of a stanza, read from its [`Envelope`]'s bytes: [`Envelope::children`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child<'a> {
    namespace: Cow<'a, str>,
    name: &'a str,
    lang: Option<Cow<'a, str>>,
    content: &'a [u8],
}

impl<'a> Child<'a> {
    /// Its namespace, resolved (`""`: none).
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Its local name.
    #[must_use]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Whether it is the element `name` in `namespace`.
    #[must_use]
    pub fn is(&self, name: &str, namespace: &str) -> bool {
        self.name == name && self.namespace == namespace
    }

    /// Its own `xml:lang` attribute, decoded (not one inherited from the stanza).
    #[must_use]
    pub fn lang(&self) -> Option<&str> {
        self.lang.as_deref()
    }

    /// Its character data, decoded: what `Element::text` gives for it (the text directly
    /// inside it, CDATA sections included, its children's text not).
    ///
    /// # Errors
    ///
    /// None in practice (the bytes were validated); an `internal-server-error` if they do not
    /// scan.
    pub fn text(&self) -> Result<Cow<'a, str>, ParseError> {
        let content = self.content;
        // The usual case: text only, nothing to decode.
        if !content.iter().any(|b| matches!(b, b'<' | b'&' | b'\r')) {
            return as_str(content).map(Cow::Borrowed);
        }
        let mut text = String::new();
        let mut depth = 0usize;
        let mut at = 0;
        loop {
            let lt = find_byte(content, at, b'<').unwrap_or(content.len());
            if depth == 0 {
                text.push_str(&decode(slice(content, at, lt)?, false)?);
            }
            if lt == content.len() {
                break;
            }
            match Markup::at(content, lt)? {
                Markup::Cdata { data, end } => {
                    if depth == 0 {
                        text.push_str(&normalize_line_ends(as_str(data)?));
                    }
                    at = end;
                }
                Markup::Start { end, empty } => {
                    depth += usize::from(!empty);
                    at = end;
                }
                Markup::End { end } => {
                    depth = depth.checked_sub(1).ok_or_else(malformed)?;
                    at = end;
                }
            }
        }
        Ok(Cow::Owned(text))
    }
}

/// The child elements of a stanza, in order: [`Envelope::children`].
#[derive(Debug)]
pub struct Children<'a> {
    envelope: &'a Envelope,
    /// Where reading resumes; `None` once the stanza's end tag (or an error) was reached.
    at: Option<usize>,
    /// The stanza's own namespace declarations (`None`: the default), read lazily.
    scope: Vec<(Option<&'a [u8]>, Cow<'a, str>)>,
}

impl Envelope {
    /// The stanza's child elements, read from its bytes in order, no tree built: each with
    /// its resolved namespace, local name, own `xml:lang` and text
    /// ([`Child::text`]). For deciding a stanza on a few children while forwarding its
    /// bytes; [`element`](Self::element) builds the whole tree.
    ///
    /// Each item is an error only if the bytes do not scan (never for a validated
    /// envelope); the iteration ends after it.
    ///
    /// ```
    /// use xmpp_xml::{Event, StreamParser};
    ///
    /// let mut parser = StreamParser::new();
    /// parser.set_envelopes(true);
    /// parser.feed(b"<stream:stream xmlns='jabber:client' \
    ///     xmlns:stream='http://etherx.jabber.org/streams'>");
    /// parser.feed(b"<presence><show>away</show><status xml:lang='en'>at &amp; about</status>\
    ///     <c xmlns='http://jabber.org/protocol/caps' ver='v'/></presence>");
    /// parser.next_event()?;
    /// let Some(Event::Stanza(envelope)) = parser.next_event()? else { panic!() };
    /// let children: Vec<_> = envelope.children().collect::<Result<_, _>>()?;
    /// assert!(children[0].is("show", "jabber:client"));
    /// assert_eq!(children[1].lang(), Some("en"));
    /// assert_eq!(children[1].text()?, "at & about");
    /// assert_eq!(children[2].namespace(), "http://jabber.org/protocol/caps");
    /// # Ok::<(), xmpp_xml::ParseError>(())
    /// ```
    #[must_use]
    pub fn children(&self) -> Children<'_> {
        let empty = self.head_end < 2 || self.bytes.get(self.head_end - 2) == Some(&b'/');
        Children {
            envelope: self,
            at: (!empty).then_some(self.head_end),
            scope: Vec::new(),
        }
    }
}

impl<'a> Children<'a> {
    /// The namespace `prefix` (`None`: the default namespace) is bound to for a child whose
    /// own declarations are `own`.
    fn resolve(
        &mut self,
        prefix: Option<&[u8]>,
        own: Option<Cow<'a, str>>,
    ) -> Result<Cow<'a, str>, ParseError> {
        if let Some(ns) = own {
            return Ok(ns);
        }
        if prefix == Some(b"xml") {
            return Ok(Cow::Borrowed(NS_XML));
        }
        if let Some((_, ns)) = self.scope.iter().rev().find(|(p, _)| *p == prefix) {
            return Ok(ns.clone());
        }
        let context = &self.envelope.context;
        context
            .decls
            .iter()
            .find(|(p, _)| p.as_deref().map(str::as_bytes) == prefix)
            .map(|(_, ns)| Cow::Borrowed(ns.as_str()))
            .or_else(|| prefix.is_none().then_some(Cow::Borrowed("")))
            .ok_or_else(malformed)
    }

    /// Reads the stanza's start tag for its namespace declarations.
    fn read_scope(&mut self) -> Result<(), ParseError> {
        let bytes = self.envelope.bytes.as_slice();
        let tag = bytes.get(..self.envelope.head_end).ok_or_else(malformed)?;
        let mut scan = StartTagScan::new(tag).map_err(|_| malformed())?;
        while let Some(attr) = scan.next_attr().map_err(|_| malformed())? {
            let prefix = match attr.name {
                b"xmlns" => None,
                [b'x', b'm', b'l', b'n', b's', b':', prefix @ ..] => Some(prefix),
                _ => continue,
            };
            let value = decode(attr_value(tag, &attr.span)?, true)?;
            self.scope.push((prefix, value));
        }
        Ok(())
    }

    fn read(&mut self, at: usize) -> Result<Option<(Child<'a>, usize)>, ParseError> {
        if at == self.envelope.head_end {
            self.read_scope()?;
        }
        let bytes = self.envelope.bytes.as_slice();
        let mut at = at;
        // Text between children is skipped; the stanza's end tag ends the list.
        let (start, end, empty) = loop {
            let lt = find_byte(bytes, at, b'<').ok_or_else(malformed)?;
            match Markup::at(bytes, lt)? {
                Markup::End { .. } => return Ok(None),
                Markup::Cdata { end, .. } => at = end,
                Markup::Start { end, empty } => break (lt, end, empty),
            }
        };
        let tag = slice(bytes, start, end)?;
        let mut scan = StartTagScan::new(tag).map_err(|_| malformed())?;
        let qname = slice(tag, 1, scan.at)?;
        let (prefix, local) = match qname.iter().position(|b| *b == b':') {
            Some(colon) => (
                Some(slice(qname, 0, colon)?),
                slice(qname, colon + 1, qname.len())?,
            ),
            None => (None, qname),
        };
        let mut own = None;
        let mut lang = None;
        while let Some(attr) = scan.next_attr().map_err(|_| malformed())? {
            let declares = match attr.name {
                b"xmlns" => prefix.is_none(),
                [b'x', b'm', b'l', b'n', b's', b':', p @ ..] => Some(p) == prefix,
                b"xml:lang" => {
                    lang = Some(decode(attr_value(tag, &attr.span)?, true)?);
                    false
                }
                _ => false,
            };
            if declares {
                own = Some(decode(attr_value(tag, &attr.span)?, true)?);
            }
        }
        let namespace = self.resolve(prefix, own)?;
        let (content, next) = if empty {
            (&[][..], end)
        } else {
            let (close, next) = element_end(bytes, end)?;
            (slice(bytes, end, close)?, next)
        };
        let child = Child {
            namespace,
            name: as_str(local)?,
            lang,
            content,
        };
        Ok(Some((child, next)))
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Child<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.at.take()?;
        match self.read(at) {
            Ok(Some((child, next))) => {
                self.at = Some(next);
                Some(Ok(child))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// What begins at a `<`.
enum Markup<'b> {
    /// A start tag ending before `end`; `empty` when it is `/>`.
    Start { end: usize, empty: bool },
    /// An end tag ending before `end`.
    End { end: usize },
    /// A CDATA section holding `data`, ending before `end`.
    Cdata { data: &'b [u8], end: usize },
}

impl<'b> Markup<'b> {
    /// The markup at `lt` (a `<` in `bytes`).
    fn at(bytes: &'b [u8], lt: usize) -> Result<Self, ParseError> {
        match bytes.get(lt + 1) {
            Some(b'/') => {
                let gt = find_byte(bytes, lt, b'>').ok_or_else(malformed)?;
                Ok(Markup::End { end: gt + 1 })
            }
            Some(b'!') => {
                const OPEN: &[u8] = b"<![CDATA[";
                if !bytes.get(lt..).is_some_and(|rest| rest.starts_with(OPEN)) {
                    return Err(malformed());
                }
                let from = lt + OPEN.len();
                let mut search = from;
                loop {
                    let close = find_byte(bytes, search, b']').ok_or_else(malformed)?;
                    if bytes.get(close..close + 3) == Some(b"]]>") {
                        return Ok(Markup::Cdata {
                            data: slice(bytes, from, close)?,
                            end: close + 3,
                        });
                    }
                    search = close + 1;
                }
            }
            Some(_) => {
                let gt = tag_end(bytes, lt)?;
                Ok(Markup::Start {
                    end: gt + 1,
                    empty: gt > 0 && bytes.get(gt - 1) == Some(&b'/'),
                })
            }
            None => Err(malformed()),
        }
    }
}

/// The `>` ending the start tag at `lt` (quotes skipped: `>` may stand in a value).
fn tag_end(bytes: &[u8], lt: usize) -> Result<usize, ParseError> {
    let mut at = lt + 1;
    loop {
        let rest = bytes.get(at..).ok_or_else(malformed)?;
        let i = rest
            .iter()
            .position(|b| matches!(b, b'>' | b'\'' | b'"'))
            .ok_or_else(malformed)?;
        let found = at + i;
        match bytes.get(found) {
            Some(b'>') => return Ok(found),
            Some(quote) => {
                at = find_byte(bytes, found + 1, *quote).ok_or_else(malformed)? + 1;
            }
            None => return Err(malformed()),
        }
    }
}

/// Where the element whose start tag ended before `from` ends: the start of its end tag,
/// and the byte after it.
fn element_end(bytes: &[u8], from: usize) -> Result<(usize, usize), ParseError> {
    let mut depth = 1usize;
    let mut at = from;
    loop {
        let lt = find_byte(bytes, at, b'<').ok_or_else(malformed)?;
        match Markup::at(bytes, lt)? {
            Markup::Start { end, empty } => {
                depth += usize::from(!empty);
                at = end;
            }
            Markup::Cdata { end, .. } => at = end,
            Markup::End { end } => {
                depth -= 1;
                if depth == 0 {
                    return Ok((lt, end));
                }
                at = end;
            }
        }
    }
}

/// The value of the attribute spanning `span` in `tag` (between its quotes), undecoded.
fn attr_value<'t>(tag: &'t [u8], span: &core::ops::Range<usize>) -> Result<&'t [u8], ParseError> {
    let quoted = slice(tag, span.start, span.end)?;
    let close = quoted.len().checked_sub(1).ok_or_else(malformed)?;
    let quote = *quoted.get(close).ok_or_else(malformed)?;
    let open = quoted
        .iter()
        .position(|b| *b == quote)
        .ok_or_else(malformed)?;
    slice(quoted, open + 1, close)
}

/// Character data or an attribute value as the parser reports it: line ends normalized,
/// references resolved and, in an attribute value, each whitespace character a space.
fn decode(raw: &[u8], attribute: bool) -> Result<Cow<'_, str>, ParseError> {
    let s = as_str(raw)?;
    let plain = !raw.iter().any(|b| match b {
        b'&' | b'\r' => true,
        b'\t' | b'\n' => attribute,
        _ => false,
    });
    if plain {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '&' => {
                let rest = s.get(i + 1..).ok_or_else(malformed)?;
                let semi = rest.find(';').ok_or_else(malformed)?;
                let name = rest.get(..semi).ok_or_else(malformed)?;
                out.push(reference(name)?);
                // Skip the name and the `;`.
                for _ in 0..=name.chars().count() {
                    chars.next();
                }
            }
            // Text: `\r\n` and a lone `\r` are one `\n` (XML 1.0 §2.11).
            '\r' if !attribute => {
                if chars.peek().is_some_and(|(_, n)| *n == '\n') {
                    chars.next();
                }
                out.push('\n');
            }
            // An attribute value, as the parser (`rxml`) reads it, which the element path
            // gives: a `\r` adds a space only when another `\r` follows; otherwise it is
            // dropped and what follows is read as usual (`\r\n` is one space, as XML 1.0
            // §2.11 and §3.3.3 say; `\r` before a tab, a reference or the closing quote adds
            // nothing; before any other character the parser refused the stanza).
            '\r' => {
                if chars.peek().is_some_and(|(_, n)| *n == '\r') {
                    out.push(' ');
                }
            }
            '\t' | '\n' if attribute => out.push(' '),
            c => out.push(c),
        }
    }
    Ok(Cow::Owned(out))
}

/// `\r\n` and `\r` as `\n` (XML 1.0 §2.11), for CDATA sections.
fn normalize_line_ends(s: &str) -> Cow<'_, str> {
    if s.contains('\r') {
        Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The character a reference (`name` between `&` and `;`) stands for.
fn reference(name: &str) -> Result<char, ParseError> {
    let code = match name {
        "lt" => return Ok('<'),
        "gt" => return Ok('>'),
        "amp" => return Ok('&'),
        "apos" => return Ok('\''),
        "quot" => return Ok('"'),
        _ => {
            if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16)
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse()
            } else {
                return Err(malformed());
            }
        }
    };
    code.ok().and_then(char::from_u32).ok_or_else(malformed)
}

fn slice(bytes: &[u8], from: usize, to: usize) -> Result<&[u8], ParseError> {
    bytes.get(from..to).ok_or_else(malformed)
}

fn as_str(bytes: &[u8]) -> Result<&str, ParseError> {
    core::str::from_utf8(bytes).map_err(|_| malformed())
}

fn malformed() -> ParseError {
    ParseError::new(
        Cond::InternalServerError,
        "envelope bytes do not scan as validated XML",
    )
}
