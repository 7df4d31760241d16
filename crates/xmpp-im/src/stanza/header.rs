//! What every stanza shares (RFC 6120 §8.1): the stanza namespace, the addressing header
//! (`from`, `to`, `id`, `xml:lang`), and texts with their own `xml:lang` (bodies, subjects,
//! statuses; RFC 6121 §5.2.3, §4.7.2.2).

use minidom::Element;
use minidom::rxml::{Namespace, NcName};
use xmpp_jid::Jid;

use super::StanzaParseError;

vocabulary! {
    /// The stanza namespace (the stream's default namespace).
    StanzaNamespace, "stanza namespace" {
        /// `jabber:client`.
        Client = "jabber:client",
        /// `jabber:server`.
        Server = "jabber:server",
        /// `jabber:component:accept` (XEP-0114).
        ComponentAccept = "jabber:component:accept",
    }
}

/// Text with an optional `xml:lang` (bodies, subjects, statuses).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LangText {
    /// The language, if the child carries its own `xml:lang`.
    pub lang: Option<String>,
    /// The character data.
    pub text: String,
}

/// The addressing common to every stanza (RFC 6120 §8.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The stanza namespace; defaults to `jabber:client`.
    pub ns: Option<StanzaNamespace>,
    /// The `from` address.
    pub from: Option<Jid>,
    /// The `to` address.
    pub to: Option<Jid>,
    /// The `id`.
    pub id: Option<String>,
    /// The stanza's `xml:lang`.
    pub lang: Option<String>,
}

impl Header {
    pub(super) fn parse(el: &Element, name: &str) -> Result<Self, StanzaParseError> {
        if el.name() != name {
            return Err(StanzaParseError::NotAStanza);
        }
        let ns = StanzaNamespace::ALL
            .iter()
            .copied()
            .find(|ns| el.has_ns(ns.as_str()))
            .ok_or(StanzaParseError::NotAStanza)?;
        let jid = |attr: &'static str| -> Result<Option<Jid>, StanzaParseError> {
            el.attr(attr)
                .map(|s| Jid::new(s).map_err(|_| StanzaParseError::MalformedJid(attr)))
                .transpose()
        };
        Ok(Self {
            ns: Some(ns),
            from: jid("from")?,
            to: jid("to")?,
            id: el.attr("id").map(str::to_owned),
            lang: lang_of(el),
        })
    }

    /// The header of a stanza that arrived as an envelope, as the typed parsers read it from
    /// the element it stands for, with `from` set to `from` (stamped by the server, or the
    /// peer's normalized). `None` when its `to` is no JID or its namespace no stanza
    /// namespace (the element path's error).
    #[must_use]
    pub fn of_envelope(envelope: &xmpp_xml::Envelope, from: Jid) -> Option<Self> {
        let ns = envelope.namespace();
        Some(Self {
            ns: Some(
                StanzaNamespace::ALL
                    .iter()
                    .copied()
                    .find(|n| n.as_str() == ns)?,
            ),
            from: Some(from),
            to: match envelope.to() {
                None => None,
                Some(to) => Some(Jid::new(to).ok()?),
            },
            id: envelope.id().map(str::to_owned),
            lang: envelope.own_lang().map(str::to_owned),
        })
    }

    /// The stanza namespace, `jabber:client` when unset.
    pub(super) fn namespace(&self) -> &'static str {
        self.ns.unwrap_or(StanzaNamespace::Client).as_str()
    }

    pub(super) fn builder(&self, name: &str) -> minidom::ElementBuilder {
        let mut b = Element::builder(name, self.namespace())
            .attr(nc("from"), self.from.as_ref().map(Jid::as_str))
            .attr(nc("to"), self.to.as_ref().map(Jid::as_str))
            .attr(nc("id"), self.id.as_deref());
        if let Some(lang) = &self.lang {
            b = b.attr_ns(Namespace::XML, nc("lang"), lang.as_str());
        }
        b
    }

    /// The header of a reply: addresses swapped, same id, namespace and language.
    #[must_use]
    pub fn reply(&self) -> Self {
        Self {
            ns: self.ns,
            from: self.to.clone(),
            to: self.from.clone(),
            id: self.id.clone(),
            lang: self.lang.clone(),
        }
    }
}

/// An attribute name known at compile time.
#[allow(clippy::expect_used)]
pub(crate) fn nc(name: &'static str) -> NcName {
    // Only called with the literal ASCII names of this crate, which are valid NCNames.
    NcName::try_from(name).expect("literal attribute names are valid NCNames")
}

pub(super) fn lang_of(el: &Element) -> Option<String> {
    el.attrs()
        .get(&Namespace::XML, "lang")
        .map(ToString::to_string)
}

fn lang_text(el: &Element) -> LangText {
    LangText {
        lang: lang_of(el),
        text: el.text(),
    }
}

pub(super) fn push_lang_text(
    list: &mut Vec<LangText>,
    el: &Element,
    what: &'static str,
) -> Result<(), StanzaParseError> {
    push_text(list, lang_text(el), what)
}

/// Adds a text in a language the list does not have yet; a second one of a language is
/// rejected (RFC 6121 §4.7.2.2, §5.2.3).
pub(super) fn push_text(
    list: &mut Vec<LangText>,
    t: LangText,
    what: &'static str,
) -> Result<(), StanzaParseError> {
    if list.iter().any(|x| x.lang == t.lang) {
        return Err(StanzaParseError::Duplicate(what));
    }
    list.push(t);
    Ok(())
}

/// Fills a child that may appear once (`show`, `priority`, `thread`); a second one is
/// rejected before it is parsed.
pub(super) fn set_once<T>(
    slot: &mut Option<T>,
    what: &'static str,
    parse: impl FnOnce() -> Result<T, StanzaParseError>,
) -> Result<(), StanzaParseError> {
    if slot.is_some() {
        return Err(StanzaParseError::Duplicate(what));
    }
    *slot = Some(parse()?);
    Ok(())
}

pub(super) fn lang_text_element(name: &str, ns: &str, t: &LangText) -> Element {
    let mut b = Element::builder(name, ns);
    if let Some(lang) = &t.lang {
        b = b.attr_ns(Namespace::XML, nc("lang"), lang.as_str());
    }
    b.append(t.text.as_str()).build()
}

pub(super) fn pick_lang<'a>(list: &'a [LangText], lang: Option<&str>) -> Option<&'a str> {
    list.iter()
        .find(|t| t.lang.as_deref() == lang)
        .or_else(|| list.iter().find(|t| t.lang.is_none()))
        .or_else(|| list.first())
        .map(|t| t.text.as_str())
}

#[cfg(test)]
mod tests {
    use xmpp_xml::StanzaErrorCondition;

    use crate::stanza::{Message, StanzaParseError, parse};

    #[test]
    fn bad_jids_and_duplicates_map_to_stanza_errors() {
        let e =
            Message::try_from(&parse("<message xmlns='jabber:client' to='a@b@c'/>")).unwrap_err();
        assert_eq!(e, StanzaParseError::MalformedJid("to"));
        assert_eq!(e.condition(), StanzaErrorCondition::JidMalformed);
        let e = Message::try_from(&parse(
            "<message xmlns='jabber:client'><body>a</body><body>b</body></message>",
        ))
        .unwrap_err();
        assert_eq!(e.condition(), StanzaErrorCondition::BadRequest);
        assert!(Message::try_from(&parse("<message xmlns='urn:other'/>")).is_err());
        assert!(Message::try_from(&parse("<presence xmlns='jabber:client'/>")).is_err());
    }
}
