//! The `<message/>` stanza (RFC 6121 §5): its type (§5.2.2), bodies and subjects in several
//! languages (§5.2.3, §5.2.4) and thread (§5.2.5).

use minidom::Element;
use xmpp_jid::Jid;
use xmpp_xml::StanzaError;

use super::header::{
    Header, LangText, Langs, lang_text_element, nc, pick_lang, push_lang_text, set_once,
};
use super::parse_error::{StanzaParseError, parse_error_child};

vocabulary! {
    /// A message `type` (RFC 6121 §5.2.2).
    MessageType, "message type" {
        /// A one-to-one chat.
        Chat = "chat",
        /// An error about a message the entity sent.
        Error = "error",
        /// A multi-user chat message.
        Groupchat = "groupchat",
        /// An alert or notification; no reply expected.
        Headline = "headline",
        /// A standalone message (the default).
        Normal = "normal",
    }
}

/// A `<thread/>` (RFC 6121 §5.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// The thread identifier.
    pub id: String,
    /// The optional `parent` thread.
    pub parent: Option<String>,
}

/// A `<message/>` stanza (RFC 6121 §5).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Addressing.
    pub header: Header,
    /// The `type`; `None` when absent (treated as `normal`, see [`Message::kind`]).
    pub message_type: Option<MessageType>,
    /// `<body/>` children, one per language.
    pub bodies: Vec<LangText>,
    /// `<subject/>` children, one per language.
    pub subjects: Vec<LangText>,
    /// The `<thread/>`.
    pub thread: Option<Thread>,
    /// The `<error/>` of a message of type `error`.
    pub error: Option<StanzaError>,
    /// Extension children, in order.
    pub payloads: Vec<Element>,
}

impl Message {
    /// An empty message of the given type.
    #[must_use]
    pub fn new(message_type: MessageType) -> Self {
        Self {
            header: Header::default(),
            message_type: Some(message_type),
            bodies: Vec::new(),
            subjects: Vec::new(),
            thread: None,
            error: None,
            payloads: Vec::new(),
        }
    }

    /// A chat message to `to` with a body.
    #[must_use]
    pub fn chat(to: Jid, body: impl Into<String>) -> Self {
        let mut m = Self::new(MessageType::Chat);
        m.header.to = Some(to);
        m.bodies.push(LangText {
            lang: None,
            text: body.into(),
        });
        m
    }

    /// The effective type: absent or unknown types are `normal` (RFC 6121 §5.2.2).
    #[must_use]
    pub fn kind(&self) -> MessageType {
        self.message_type.unwrap_or(MessageType::Normal)
    }

    /// The body in the given language, or the body without a language.
    #[must_use]
    pub fn body(&self, lang: Option<&str>) -> Option<&str> {
        pick_lang(&self.bodies, lang)
    }

    /// Builds the element.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let ns = self.header.namespace();
        let mut b = self
            .header
            .builder("message")
            .attr(nc("type"), self.message_type.map(MessageType::as_str));
        for s in &self.subjects {
            b = b.append(lang_text_element("subject", ns, s));
        }
        for t in &self.bodies {
            b = b.append(lang_text_element("body", ns, t));
        }
        if let Some(t) = &self.thread {
            b = b.append(
                Element::builder("thread", ns)
                    .attr(nc("parent"), t.parent.as_deref())
                    .append(t.id.as_str())
                    .build(),
            );
        }
        if let Some(e) = &self.error {
            b = b.append(e.to_element(ns));
        }
        b.append_all(self.payloads.iter().cloned()).build()
    }

    /// Parses `el`, handing each payload (a child of no known kind, by its position among
    /// the child elements) to `payload` instead of keeping it.
    fn read(
        el: &Element,
        payload: &mut impl FnMut(usize, &Element),
    ) -> Result<Self, StanzaParseError> {
        let header = Header::parse(el, "message")?;
        let ns = header.namespace();
        // RFC 6121 §5.2.2: an unknown type is treated as `normal`.
        let message_type = el
            .attr("type")
            .map(|t| t.parse().unwrap_or(MessageType::Normal));
        let mut m = Message {
            header,
            message_type,
            ..Message::new(MessageType::Normal)
        };
        let (mut body_langs, mut subject_langs) = (Langs::default(), Langs::default());
        for (i, child) in el.children().enumerate() {
            if !child.has_ns(ns) {
                payload(i, child);
                continue;
            }
            match child.name() {
                "body" => push_lang_text(&mut m.bodies, &mut body_langs, child, "body")?,
                "subject" => {
                    push_lang_text(&mut m.subjects, &mut subject_langs, child, "subject")?;
                }
                "thread" => set_once(&mut m.thread, "thread", || {
                    Ok(Thread {
                        id: child.text(),
                        parent: child.attr("parent").map(str::to_owned),
                    })
                })?,
                "error" if m.message_type == Some(MessageType::Error) => {}
                _ => payload(i, child),
            }
        }
        if m.message_type == Some(MessageType::Error) {
            m.error = Some(parse_error_child(el, ns)?);
        }
        Ok(m)
    }
}

with_payloads!(Message);

#[cfg(test)]
mod tests {
    use crate::stanza::{Message, MessageType, parse};

    #[test]
    fn message_round_trips_with_languages_thread_and_extensions() {
        // RFC 6121 §5.2.3 example (bodies in two languages), plus a thread and an extension.
        let el = parse(
            "<message xmlns='jabber:client' from='juliet@example.com/balcony' \
             to='romeo@example.net' id='ktx72v49' type='chat' xml:lang='en'>\
             <subject>Wherefore</subject>\
             <body>Wherefore art thou, Romeo?</body>\
             <body xml:lang='cs'>PročeŽ jsi ty, Romeo?</body>\
             <thread parent='7edac73ab41e45c4aafa7b2d7b749080'>e0ffe42b28561960c6b12b944a092794b9683a38</thread>\
             <active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        );
        let m = Message::try_from(&el).unwrap();
        assert_eq!(m.kind(), MessageType::Chat);
        assert_eq!(m.body(Some("cs")), Some("PročeŽ jsi ty, Romeo?"));
        assert_eq!(m.body(Some("fr")), Some("Wherefore art thou, Romeo?"));
        assert_eq!(m.header.lang.as_deref(), Some("en"));
        assert_eq!(
            m.thread.as_ref().unwrap().parent.as_deref(),
            Some("7edac73ab41e45c4aafa7b2d7b749080")
        );
        assert_eq!(m.payloads.len(), 1);
        let back = m.to_element();
        assert_eq!(back, el);
        assert_eq!(Message::try_from(&back).unwrap(), m);
    }

    #[test]
    fn message_type_defaults_and_unknown_values_are_normal() {
        let m = Message::try_from(&parse("<message xmlns='jabber:client'/>")).unwrap();
        assert_eq!((m.message_type, m.kind()), (None, MessageType::Normal));
        let m = Message::try_from(&parse("<message xmlns='jabber:client' type='shout'/>")).unwrap();
        assert_eq!(m.kind(), MessageType::Normal);
    }
}
