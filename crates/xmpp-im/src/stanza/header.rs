//! What every stanza shares (RFC 6120 §8.1): the stanza namespace, the addressing header
//! (`from`, `to`, `id`, `xml:lang`), and texts with their own `xml:lang` (bodies, subjects,
//! statuses; RFC 6121 §5.2.3, §4.7.2.2).

use std::collections::BTreeSet;

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
    langs: &mut Langs,
    el: &Element,
    what: &'static str,
) -> Result<(), StanzaParseError> {
    push_text(list, langs, lang_text(el), what)
}

/// Up to this many texts, a new one's language is compared with each in the list.
const PAIRWISE_TEXTS: usize = 8;

/// The languages of one list of texts being read (bodies, subjects or statuses), for the
/// duplicate check of [`push_text`]: the list itself while it is short, a set from
/// [`PAIRWISE_TEXTS`] on. A stanza may hold thousands of texts (one per element, up to the
/// parser's element bound): checked against the list each, they cost n²/2 comparisons.
#[derive(Debug, Default)]
pub(super) struct Langs(Option<BTreeSet<Option<String>>>);

#[cfg(test)]
thread_local! {
    /// Languages compared by [`push_text`] (a set operation counts one).
    pub(super) static LANG_CHECKS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

#[cfg(test)]
fn count_checks(n: usize) {
    LANG_CHECKS.with(|c| c.set(c.get() + n as u64));
}

#[cfg(not(test))]
fn count_checks(_: usize) {}

/// Adds a text in a language the list does not have yet; a second one of a language is
/// rejected (RFC 6121 §4.7.2.2, §5.2.3). `langs` must be the same for every text of `list`.
pub(super) fn push_text(
    list: &mut Vec<LangText>,
    langs: &mut Langs,
    t: LangText,
    what: &'static str,
) -> Result<(), StanzaParseError> {
    let duplicate = if list.len() < PAIRWISE_TEXTS {
        count_checks(list.len());
        list.iter().any(|x| x.lang == t.lang)
    } else {
        count_checks(1);
        let seen = langs
            .0
            .get_or_insert_with(|| list.iter().map(|x| x.lang.clone()).collect());
        !seen.insert(t.lang.clone())
    };
    if duplicate {
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
    use std::fmt::Write as _;

    use xmpp_xml::StanzaErrorCondition;

    use crate::stanza::{Message, Presence, StanzaParseError, parse};

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

    /// `count` children `<name xml:lang='l{i}'>`, the last one in the language of the first
    /// when `duplicate`, in a `stanza` of `jabber:client`.
    fn many_texts(stanza: &str, name: &str, count: usize, duplicate: bool) -> String {
        let mut xml = format!("<{stanza} xmlns='jabber:client'>");
        for i in 0..count {
            let lang = if duplicate && i + 1 == count { 0 } else { i };
            let _ = write!(xml, "<{name} xml:lang='l{lang}'>t</{name}>");
        }
        let _ = write!(xml, "</{stanza}>");
        xml
    }

    /// The languages `parse` compared to read a stanza.
    fn checks<T>(parse: impl FnOnce() -> T) -> (T, u64) {
        super::LANG_CHECKS.with(|c| c.set(0));
        let parsed = parse();
        (parsed, super::LANG_CHECKS.with(core::cell::Cell::get))
    }

    fn presence_envelope(xml: &str) -> xmpp_xml::Envelope {
        let mut parser = xmpp_xml::StreamParser::new();
        parser.set_envelopes(true);
        parser.feed(
            b"<stream:stream xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams'>",
        );
        parser.feed(xml.as_bytes());
        assert!(matches!(
            parser.next_event(),
            Ok(Some(xmpp_xml::Event::StreamStart(_)))
        ));
        match parser.next_event() {
            Ok(Some(xmpp_xml::Event::Stanza(envelope))) => envelope,
            other => panic!("no envelope: {other:?}"),
        }
    }

    #[test]
    fn many_texts_are_checked_for_duplicate_languages_in_linear_work() {
        // Thousands of texts fit in a stanza under the default parser bounds (8 192
        // elements, 256 KiB); each checked against every earlier one cost n²/2 comparisons
        // (8 000 statuses: 32 million per presence). Now at most 7 per text, then one set
        // operation each.
        const N: usize = 4000;
        let bound = 8 * N as u64;
        let from = xmpp_jid::Jid::new("a@b/c").unwrap();

        let xml = many_texts("message", "body", N, false);
        let (message, work) = checks(|| Message::try_from(&parse(&xml)));
        assert_eq!(message.unwrap().bodies.len(), N);
        assert!(work <= bound, "{work} checks for {N} bodies");
        let xml = many_texts("message", "subject", N, true);
        let (message, work) = checks(|| Message::try_from(&parse(&xml)));
        assert_eq!(message.unwrap_err(), StanzaParseError::Duplicate("subject"));
        assert!(work <= bound, "{work} checks for {N} subjects");

        for duplicate in [false, true] {
            let xml = many_texts("presence", "status", N, duplicate);
            let (presence, work) = checks(|| Presence::try_from(&parse(&xml)));
            assert!(work <= bound, "{work} checks for {N} statuses");
            let envelope = presence_envelope(&xml);
            let (from_bytes, work) = checks(|| Presence::without_payloads(&envelope, from.clone()));
            assert!(
                work <= bound,
                "{work} checks for {N} statuses in an envelope"
            );
            if duplicate {
                assert_eq!(presence.unwrap_err(), StanzaParseError::Duplicate("status"));
                assert!(from_bytes.is_none());
            } else {
                assert_eq!(presence.unwrap().statuses.len(), N);
                assert_eq!(from_bytes.unwrap().statuses.len(), N);
            }
        }
    }

    #[test]
    fn a_duplicate_language_is_found_on_either_side_of_the_pairwise_bound() {
        for count in 2..=2 * super::PAIRWISE_TEXTS + 2 {
            for first in 0..count - 1 {
                // `first` and the last text share a language (none: no `xml:lang`).
                let mut xml = String::from("<message xmlns='jabber:client'>");
                for i in 0..count {
                    let lang = if i + 1 == count { first } else { i };
                    if lang == 0 {
                        xml.push_str("<body>t</body>");
                    } else {
                        let _ = write!(xml, "<body xml:lang='l{lang}'>t</body>");
                    }
                }
                xml.push_str("</message>");
                assert_eq!(
                    Message::try_from(&parse(&xml)).unwrap_err(),
                    StanzaParseError::Duplicate("body"),
                    "{xml}"
                );
                let fine = xml.replace(
                    &format!("l{first}'>t</body></message>"),
                    "new'>t</body></message>",
                );
                if first != 0 {
                    assert_eq!(
                        Message::try_from(&parse(&fine)).unwrap().bodies.len(),
                        count
                    );
                }
            }
        }
    }
}
