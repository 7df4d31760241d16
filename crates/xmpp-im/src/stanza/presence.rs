//! The `<presence/>` stanza (RFC 6121 §4): its type (§4.7.1, the four subscription types
//! of §3 included), show (§4.7.2.1), statuses (§4.7.2.2) and priority (§4.7.2.3).

use minidom::Element;
use xmpp_jid::Jid;
use xmpp_xml::{Envelope, StanzaError, StanzaKind};

use super::header::{
    Header, LangText, Langs, lang_of, lang_text_element, nc, pick_lang, push_text, set_once,
};
use super::parse_error::{StanzaParseError, parse_error_child};

vocabulary! {
    /// A presence `type` (RFC 6121 §4.7.1); availability has no type attribute.
    PresenceType, "presence type" {
        /// An error about a presence the entity sent.
        Error = "error",
        /// A request for the entity's current presence (sent by servers).
        Probe = "probe",
        /// A subscription request (§3.1).
        Subscribe = "subscribe",
        /// A subscription approval (§3.1.5) or pre-approval (§3.4).
        Subscribed = "subscribed",
        /// The entity is no longer available.
        Unavailable = "unavailable",
        /// Unsubscribing from the recipient's presence (§3.3).
        Unsubscribe = "unsubscribe",
        /// Denying or cancelling a subscription (§3.2).
        Unsubscribed = "unsubscribed",
    }
}

vocabulary! {
    /// A presence `<show/>` value (RFC 6121 §4.7.2.1).
    Show, "show value" {
        /// Temporarily away.
        Away = "away",
        /// Interested in chatting.
        Chat = "chat",
        /// Do not disturb.
        Dnd = "dnd",
        /// Extended away.
        Xa = "xa",
    }
}

impl PresenceType {
    /// The subscription kind, for the four subscription-management types.
    #[must_use]
    pub const fn subscription_kind(self) -> Option<crate::SubscriptionKind> {
        use crate::SubscriptionKind as K;
        match self {
            Self::Subscribe => Some(K::Subscribe),
            Self::Subscribed => Some(K::Subscribed),
            Self::Unsubscribe => Some(K::Unsubscribe),
            Self::Unsubscribed => Some(K::Unsubscribed),
            _ => None,
        }
    }
}

impl From<crate::SubscriptionKind> for PresenceType {
    fn from(kind: crate::SubscriptionKind) -> Self {
        use crate::SubscriptionKind as K;
        match kind {
            K::Subscribe => Self::Subscribe,
            K::Subscribed => Self::Subscribed,
            K::Unsubscribe => Self::Unsubscribe,
            K::Unsubscribed => Self::Unsubscribed,
        }
    }
}

/// A `<presence/>` stanza (RFC 6121 §4).
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    /// Addressing.
    pub header: Header,
    /// The `type`; `None` means available.
    pub presence_type: Option<PresenceType>,
    /// The `<show/>`.
    pub show: Option<Show>,
    /// `<status/>` children, one per language.
    pub statuses: Vec<LangText>,
    /// The `<priority/>`; absent means 0 (RFC 6121 §4.7.2.3).
    pub priority: Option<i8>,
    /// The `<error/>` of a presence of type `error`.
    pub error: Option<StanzaError>,
    /// Extension children, in order.
    pub payloads: Vec<Element>,
}

impl Presence {
    /// A presence of the given type (`None`: available) with nothing else.
    #[must_use]
    pub fn new(presence_type: Option<PresenceType>) -> Self {
        Self {
            header: Header::default(),
            presence_type,
            show: None,
            statuses: Vec::new(),
            priority: None,
            error: None,
            payloads: Vec::new(),
        }
    }

    /// Available presence with a show value and priority.
    #[must_use]
    pub fn available(show: Option<Show>, priority: i8) -> Self {
        Self {
            show,
            priority: Some(priority),
            ..Self::new(None)
        }
    }

    /// A subscription-management presence to `to` (RFC 6121 §3).
    #[must_use]
    pub fn subscription(kind: crate::SubscriptionKind, to: Jid) -> Self {
        let mut p = Self::new(Some(kind.into()));
        p.header.to = Some(to);
        p
    }

    /// The effective priority (0 when absent).
    #[must_use]
    pub fn effective_priority(&self) -> i8 {
        self.priority.unwrap_or(0)
    }

    /// The status in the given language, or the status without a language.
    #[must_use]
    pub fn status(&self, lang: Option<&str>) -> Option<&str> {
        pick_lang(&self.statuses, lang)
    }

    /// Reads a child in the presence's own namespace: `<show/>`, `<status/>` and
    /// `<priority/>` (RFC 6121 §4.7.2), and the `<error/>` of a presence of type `error` (read
    /// apart). `Ok(false)`: none of them, a payload. The one reading of these children, for
    /// an element and for an envelope's bytes ([`Presence::without_payloads`]).
    fn read_own_child(
        &mut self,
        langs: &mut Langs,
        name: &str,
        lang: impl FnOnce() -> Option<String>,
        text: impl FnOnce() -> Result<String, StanzaParseError>,
    ) -> Result<bool, StanzaParseError> {
        match name {
            "show" => set_once(&mut self.show, "show", || {
                text()?
                    .trim()
                    .parse()
                    .map_err(|_| StanzaParseError::BadShow)
            })?,
            "status" => {
                let t = LangText {
                    lang: lang(),
                    text: text()?,
                };
                push_text(&mut self.statuses, langs, t, "status")?;
            }
            "priority" => set_once(&mut self.priority, "priority", || {
                text()?
                    .trim()
                    .parse()
                    .map_err(|_| StanzaParseError::BadPriority)
            })?,
            "error" if self.presence_type == Some(PresenceType::Error) => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The presence an envelope holds, read from its bytes with no tree built (issue 17): its
    /// header, type, show, statuses and priority exactly as parsing its element gives them,
    /// with `from` set to `from`, and no payloads (they stay in the bytes, which every
    /// recipient gets). `None` where the element must decide: a presence of type `error`
    /// (its `<error/>` is read as an element), one the typed parser refuses (it answers
    /// `bad-request`), or anything that is not a presence.
    #[must_use]
    pub fn without_payloads(envelope: &Envelope, from: Jid) -> Option<Self> {
        if envelope.kind() != StanzaKind::Presence {
            return None;
        }
        let ns = envelope.namespace();
        let presence_type = match envelope.stanza_type() {
            None => None,
            Some(t) => Some(t.parse::<PresenceType>().ok()?),
        };
        if presence_type == Some(PresenceType::Error) {
            return None;
        }
        let header = Header::of_envelope(envelope, from)?;
        let mut p = Presence {
            header,
            ..Presence::new(presence_type)
        };
        let mut langs = Langs::default();
        for child in envelope.children() {
            let child = child.ok()?;
            if child.namespace() != ns {
                continue;
            }
            p.read_own_child(
                &mut langs,
                child.name(),
                || child.lang().map(str::to_owned),
                || {
                    child
                        .text()
                        .map(std::borrow::Cow::into_owned)
                        .map_err(|_| StanzaParseError::NotAStanza)
                },
            )
            .ok()?;
        }
        Some(p)
    }

    /// Builds the element.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let ns = self.header.namespace();
        let mut b = self
            .header
            .builder("presence")
            .attr(nc("type"), self.presence_type.map(PresenceType::as_str));
        if let Some(show) = self.show {
            b = b.append(Element::builder("show", ns).append(show.as_str()).build());
        }
        for s in &self.statuses {
            b = b.append(lang_text_element("status", ns, s));
        }
        if let Some(p) = self.priority {
            b = b.append(
                Element::builder("priority", ns)
                    .append(p.to_string())
                    .build(),
            );
        }
        if let Some(e) = &self.error {
            b = b.append(e.to_element(ns));
        }
        b.append_all(self.payloads.iter().cloned()).build()
    }
}

impl Presence {
    /// Parses `el`, handing each payload (a child of no known kind, by its position among
    /// the child elements) to `payload` instead of keeping it.
    fn read(
        el: &Element,
        payload: &mut impl FnMut(usize, &Element),
    ) -> Result<Self, StanzaParseError> {
        let header = Header::parse(el, "presence")?;
        let ns = header.namespace();
        let presence_type = el
            .attr("type")
            .map(|t| t.parse().map_err(|_| StanzaParseError::BadType))
            .transpose()?;
        let mut p = Presence {
            header,
            ..Presence::new(presence_type)
        };
        let mut langs = Langs::default();
        for (i, child) in el.children().enumerate() {
            let own = child.has_ns(ns)
                && p.read_own_child(
                    &mut langs,
                    child.name(),
                    || lang_of(child),
                    || Ok(child.text()),
                )?;
            if !own {
                payload(i, child);
            }
        }
        if p.presence_type == Some(PresenceType::Error) {
            p.error = Some(parse_error_child(el, ns)?);
        }
        Ok(p)
    }
}

with_payloads!(Presence);

#[cfg(test)]
mod tests {
    use xmpp_xml::StanzaErrorCondition;

    use crate::stanza::{Presence, Show, parse};

    #[test]
    fn presence_round_trips_and_validates_show_and_priority() {
        let el = parse(
            "<presence xmlns='jabber:client' from='juliet@example.com/balcony'>\
             <show>away</show><status>be right back</status>\
             <status xml:lang='cs'>hned jsem zpět</status><priority>-1</priority>\
             <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>",
        );
        let p = Presence::try_from(&el).unwrap();
        assert_eq!(p.show, Some(Show::Away));
        assert_eq!(p.effective_priority(), -1);
        assert_eq!(p.status(Some("cs")), Some("hned jsem zpět"));
        assert_eq!(p.to_element(), el);
        for bad in [
            "<presence xmlns='jabber:client'><priority>128</priority></presence>",
            "<presence xmlns='jabber:client'><priority>high</priority></presence>",
            "<presence xmlns='jabber:client'><show>busy</show></presence>",
            "<presence xmlns='jabber:client' type='online'/>",
            "<presence xmlns='jabber:client'><show>xa</show><show>dnd</show></presence>",
        ] {
            let e = Presence::try_from(&parse(bad)).unwrap_err();
            assert_eq!(e.condition(), StanzaErrorCondition::BadRequest, "{bad}");
        }
        let p = Presence::try_from(&parse(
            "<presence xmlns='jabber:client'><priority>-128</priority></presence>",
        ))
        .unwrap();
        assert_eq!(p.priority, Some(-128));
    }
}
