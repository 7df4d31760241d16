//! RFC 7395 framing (XMPP over WebSocket): what the parser and the writer do differently when
//! every WebSocket message is one standalone element and `<open/>` / `<close/>` in
//! `urn:ietf:params:xml:ns:xmpp-framing` stand for the stream header and its end tag.

use minidom::Element;
use rxml::Namespace;

use crate::conditions::{NS_STREAMS, StreamErrorCondition as Cond};
use crate::error::ParseError;
use crate::header::{ContentNamespace, StreamHeader, StreamVersion};
use crate::parser::Event;

/// `urn:ietf:params:xml:ns:xmpp-framing`, the namespace of `<open/>` and `<close/>`
/// (RFC 7395 §3.3.2).
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// The parser's framing state.
#[derive(Debug)]
pub(crate) struct Framing {
    /// The content namespace a framed header stands for (stanzas still declare their own).
    content: ContentNamespace,
    /// The next root element must be `<open/>`: at the start and after each restart.
    awaiting_open: bool,
    /// The current message is all fed: running out of bytes means it was incomplete.
    pub(crate) complete: bool,
    /// The `see-other-uri` of the peer's `<close/>`.
    pub(crate) see_other_uri: Option<String>,
}

impl Framing {
    pub(crate) fn new(content: ContentNamespace) -> Self {
        Framing {
            content,
            awaiting_open: true,
            complete: false,
            see_other_uri: None,
        }
    }

    /// A stream restart: a new `<open/>` comes next; nothing more of this message.
    pub(crate) fn restart(&mut self) {
        self.awaiting_open = true;
        self.complete = false;
    }

    /// Checks a message's root element as soon as its start tag is read.
    pub(crate) fn check_root(&self, ns: &str, local: &str) -> Result<(), ParseError> {
        if ns == NS_STREAMS && local == "stream" {
            return Err(ParseError::new(
                Cond::InvalidNamespace,
                "a TCP stream header in a framed stream: the header is <open/> in \
                 urn:ietf:params:xml:ns:xmpp-framing (RFC 7395 §3.3.2)",
            ));
        }
        if self.awaiting_open {
            if ns != NS_FRAMING {
                return Err(ParseError::new(
                    Cond::InvalidNamespace,
                    format!(
                        "stream header {local:?} in namespace {ns:?}, not the framing namespace"
                    ),
                ));
            }
            if local != "open" {
                return Err(ParseError::new(
                    Cond::BadFormat,
                    format!("framed stream starts with {local:?}, not <open/>"),
                ));
            }
        } else if ns == NS_FRAMING && local == "open" {
            return Err(ParseError::new(
                Cond::BadFormat,
                "<open/> inside the open stream (a restart is asked for, never sent unasked)",
            ));
        }
        Ok(())
    }

    /// The event a message's complete element stands for.
    pub(crate) fn event(&mut self, element: Element) -> Result<Event, ParseError> {
        if !element.has_ns(NS_FRAMING) {
            return Ok(Event::Element(element));
        }
        match element.name() {
            "open" if self.awaiting_open => {
                self.awaiting_open = false;
                self.header(&element).map(Event::StreamStart)
            }
            "close" => {
                self.see_other_uri = element.attr("see-other-uri").map(ToOwned::to_owned);
                Ok(Event::StreamEnd)
            }
            other => Err(ParseError::new(
                Cond::BadFormat,
                format!("unknown framing element {other:?}"),
            )),
        }
    }

    fn header(&self, open: &Element) -> Result<StreamHeader, ParseError> {
        let get = |name: &str| open.attr(name).map(ToOwned::to_owned);
        let version = match open.attr("version") {
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
        let lang = open
            .attrs()
            .into_iter()
            .find(|((ns, name), _)| **ns == Namespace::XML && name.as_str() == "lang")
            .map(|(_, v)| v.clone());
        let mut header = StreamHeader::new(self.content.clone());
        header.to = get("to");
        header.from = get("from");
        header.id = get("id");
        header.version = version;
        header.lang = lang;
        Ok(header)
    }
}

/// A message that ends inside its element, or holds none.
pub(crate) fn incomplete() -> ParseError {
    ParseError::new(
        Cond::NotWellFormed,
        "the WebSocket message is not one complete element (RFC 7395 §3.3.3)",
    )
}

/// Anything but whitespace beside a message's element: text or a second element.
pub(crate) fn trailing() -> ParseError {
    ParseError::new(
        Cond::NotWellFormed,
        "more than one element in one WebSocket message (RFC 7395 §3.3.3)",
    )
}
