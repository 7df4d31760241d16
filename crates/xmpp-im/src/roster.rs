//! The roster (RFC 6121 §2): items, the `jabber:iq:roster` query, and the client's roster
//! cache with versioning (§2.6) and push validation (§2.1.6).
//!
//! The server side of roster management lives in [`crate::server`], next to the subscription
//! state it shares.

use std::collections::BTreeMap;

use minidom::Element;
use xmpp_jid::{BareJid, Jid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use crate::stanza::{Iq, IqPayload, nc};
use crate::subscription::Subscription;

/// `jabber:iq:roster`.
pub const NS_ROSTER: &str = "jabber:iq:roster";

/// One roster item (RFC 6121 §2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    /// The contact's bare JID.
    pub jid: BareJid,
    /// The user-assigned name.
    pub name: Option<String>,
    /// The subscription (§2.1.2.5).
    pub subscription: Subscription,
    /// `subscription='remove'`: the item is being deleted (§2.5).
    pub remove: bool,
    /// `ask='subscribe'`: the user's request awaits the contact's answer (§2.1.2.2).
    pub ask: bool,
    /// `approved='true'`: the user pre-approved the contact (§2.1.2.1, §3.4).
    pub approved: bool,
    /// Groups, in order.
    pub groups: Vec<String>,
    /// Whether a `subscription` attribute other than `remove` was present (a client must not
    /// send one in a set, §2.1.2.5).
    pub subscription_given: bool,
}

/// Why a roster item or query is invalid; each maps to a stanza error (§2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RosterError {
    /// The element is not a roster query or item.
    NotRoster,
    /// An item without a valid bare `jid` (a full JID is not a roster item).
    BadJid,
    /// A set with other than exactly one item (§2.3.3), or a get with items (§2.1.3).
    ItemCount,
    /// Two groups with the same name (§2.3.3).
    DuplicateGroup,
    /// An empty group name (§2.1.2.4, §2.3.3).
    EmptyGroup,
    /// A name or group longer than the server allows (§2.3.3).
    TooLong,
    /// More groups than the server allows.
    TooManyGroups,
    /// The roster already holds the maximum number of items (§2.3.3).
    RosterFull,
}

impl RosterError {
    /// The stanza error condition RFC 6121 §2.3.3 gives for this error.
    #[must_use]
    pub const fn condition(self) -> StanzaErrorCondition {
        match self {
            Self::EmptyGroup | Self::TooLong | Self::TooManyGroups | Self::RosterFull => {
                StanzaErrorCondition::NotAcceptable
            }
            _ => StanzaErrorCondition::BadRequest,
        }
    }
}

impl core::fmt::Display for RosterError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            Self::NotRoster => "not a roster query",
            Self::BadJid => "roster item without a valid bare JID",
            Self::ItemCount => "wrong number of roster items",
            Self::DuplicateGroup => "duplicate group",
            Self::EmptyGroup => "empty group name",
            Self::TooLong => "name or group too long",
            Self::TooManyGroups => "too many groups",
            Self::RosterFull => "roster full",
        };
        f.write_str(s)
    }
}

impl core::error::Error for RosterError {}

impl RosterItem {
    /// An item for `jid` with no name and no groups.
    #[must_use]
    pub fn new(jid: BareJid) -> Self {
        Self {
            jid,
            name: None,
            subscription: Subscription::None,
            remove: false,
            ask: false,
            approved: false,
            groups: Vec::new(),
            subscription_given: false,
        }
    }

    /// Reads an `<item/>`. Duplicate and empty groups are reported, since servers reject them.
    pub fn from_element(el: &Element) -> Result<Self, RosterError> {
        if !el.is("item", NS_ROSTER) {
            return Err(RosterError::NotRoster);
        }
        let jid = el
            .attr("jid")
            .and_then(|j| BareJid::new(j).ok())
            .ok_or(RosterError::BadJid)?;
        let (subscription, remove, given) = match el.attr("subscription") {
            None => (Subscription::None, false, false),
            Some("remove") => (Subscription::None, true, false),
            // RFC 6121 §2.1.2.5: values other than the defined ones are ignored, not errors.
            Some(s) => match s.parse() {
                Ok(subscription) => (subscription, false, true),
                Err(_) => (Subscription::None, false, false),
            },
        };
        let mut groups: Vec<String> = Vec::new();
        // Duplicates found in a set: an item's groups are bounded only by the stanza's size.
        let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for g in el.children().filter(|c| c.is("group", NS_ROSTER)) {
            let name = g.text();
            if name.is_empty() {
                return Err(RosterError::EmptyGroup);
            }
            if !seen.insert(name.clone()) {
                return Err(RosterError::DuplicateGroup);
            }
            groups.push(name);
        }
        Ok(Self {
            jid,
            name: el.attr("name").map(str::to_owned),
            subscription,
            remove,
            ask: el.attr("ask") == Some("subscribe"),
            approved: matches!(el.attr("approved"), Some("true" | "1")),
            groups,
            subscription_given: given,
        })
    }

    /// Builds the `<item/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let subscription = if self.remove {
            Some("remove")
        } else if self.subscription == Subscription::None && !self.subscription_given {
            None
        } else {
            Some(self.subscription.as_str())
        };
        Element::builder("item", NS_ROSTER)
            .attr(nc("jid"), self.jid.as_str())
            .attr(nc("name"), self.name.as_deref())
            .attr(nc("subscription"), subscription)
            .attr(nc("ask"), self.ask.then_some("subscribe"))
            .attr(nc("approved"), self.approved.then_some("true"))
            .append_all(self.groups.iter().map(|g| {
                Element::builder("group", NS_ROSTER)
                    .append(g.as_str())
                    .build()
            }))
            .build()
    }
}

/// A `<query xmlns='jabber:iq:roster'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterQuery {
    /// The `ver` attribute (§2.6).
    pub ver: Option<String>,
    /// The items.
    pub items: Vec<RosterItem>,
}

impl RosterQuery {
    /// Reads a query.
    pub fn from_element(el: &Element) -> Result<Self, RosterError> {
        if !el.is("query", NS_ROSTER) {
            return Err(RosterError::NotRoster);
        }
        let items = el
            .children()
            .filter(|c| c.is("item", NS_ROSTER))
            .map(RosterItem::from_element)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            ver: el.attr("ver").map(str::to_owned),
            items,
        })
    }

    /// Builds the query.
    #[must_use]
    pub fn to_element(&self) -> Element {
        Element::builder("query", NS_ROSTER)
            .attr(nc("ver"), self.ver.as_deref())
            .append_all(self.items.iter().map(RosterItem::to_element))
            .build()
    }
}

/// What [`RosterCache::handle_push`] did with a roster push.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PushOutcome {
    /// The push was applied; send `reply` (an empty result, §2.1.6).
    Applied {
        /// The item as pushed (with `remove` set for a deletion).
        item: RosterItem,
        /// The result to send.
        reply: Iq,
    },
    /// The push came from someone other than the user's server (the roster-poisoning attack,
    /// §2.1.6) or was malformed; the cache is unchanged and `reply` is an error to send.
    Rejected {
        /// The error to send.
        reply: Iq,
    },
}

/// The client's copy of the roster (RFC 6121 §2), kept in sync with results and pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterCache {
    own: BareJid,
    ver: Option<String>,
    items: BTreeMap<BareJid, RosterItem>,
    loaded: bool,
}

impl RosterCache {
    /// An empty cache for the account `own`.
    #[must_use]
    pub fn new(own: BareJid) -> Self {
        Self {
            own,
            ver: None,
            items: BTreeMap::new(),
            loaded: false,
        }
    }

    /// A cache restored from storage, with the version string it was saved at (§2.6.1).
    #[must_use]
    pub fn restore(own: BareJid, ver: String, items: Vec<RosterItem>) -> Self {
        let mut cache = Self::new(own);
        cache.ver = Some(ver);
        cache.items = items.into_iter().map(|i| (i.jid.clone(), i)).collect();
        cache
    }

    /// The version string the cache is at.
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.ver.as_deref()
    }

    /// Whether a roster result has been applied since creation.
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// The item for a contact.
    #[must_use]
    pub fn get(&self, jid: &BareJid) -> Option<&RosterItem> {
        self.items.get(jid)
    }

    /// Every item, ordered by JID.
    pub fn items(&self) -> impl Iterator<Item = &RosterItem> {
        self.items.values()
    }

    /// The roster get to send (§2.1.3); with `versioning` (the server advertised
    /// `urn:xmpp:features:rosterver`) it carries the cached version, or `ver=''` (§2.6.2).
    #[must_use]
    pub fn request(&self, id: impl Into<String>, versioning: bool) -> Iq {
        let query = RosterQuery {
            ver: versioning.then(|| self.ver.clone().unwrap_or_default()),
            items: Vec::new(),
        };
        Iq::get(id, query.to_element())
    }

    /// Applies the result of [`request`](Self::request). An empty result means the cached
    /// version is current and pushes will follow (§2.6.3).
    pub fn handle_result(&mut self, iq: &Iq) -> Result<(), RosterError> {
        let IqPayload::Result(payload) = &iq.payload else {
            return Err(RosterError::NotRoster);
        };
        if !self.sender_is_trusted(iq) {
            return Err(RosterError::NotRoster);
        }
        self.loaded = true;
        let Some(payload) = payload else {
            return Ok(());
        };
        let query = RosterQuery::from_element(payload)?;
        self.items = query
            .items
            .into_iter()
            .filter(|i| !i.remove)
            .map(|i| (i.jid.clone(), i))
            .collect();
        self.ver = query.ver;
        Ok(())
    }

    fn sender_is_trusted(&self, iq: &Iq) -> bool {
        match &iq.header.from {
            None => true,
            Some(from) => from.is_bare() && from.as_str() == self.own.as_str(),
        }
    }

    /// Handles a roster push (§2.1.6): accepted only with no `from` or `from` equal to the
    /// user's bare JID, and exactly one item.
    pub fn handle_push(&mut self, iq: &Iq) -> PushOutcome {
        let IqPayload::Set(payload) = &iq.payload else {
            return PushOutcome::Rejected {
                reply: iq.error(StanzaError::new(StanzaErrorCondition::BadRequest)),
            };
        };
        if !self.sender_is_trusted(iq) {
            // §2.1.6: "MUST ignore" a push from anyone else; answering with an error keeps
            // the iq contract (every set is answered) without acting on it.
            return PushOutcome::Rejected {
                reply: iq.error(StanzaError::new(StanzaErrorCondition::ServiceUnavailable)),
            };
        }
        let query = match RosterQuery::from_element(payload) {
            Ok(q) if q.items.len() == 1 => q,
            Ok(_) => {
                return PushOutcome::Rejected {
                    reply: iq.error(StanzaError::new(RosterError::ItemCount.condition())),
                };
            }
            Err(e) => {
                return PushOutcome::Rejected {
                    reply: iq.error(StanzaError::new(e.condition())),
                };
            }
        };
        let RosterQuery { ver, items } = query;
        let Some(item) = items.into_iter().next() else {
            return PushOutcome::Rejected {
                reply: iq.error(StanzaError::new(RosterError::ItemCount.condition())),
            };
        };
        if item.remove {
            self.items.remove(&item.jid);
        } else {
            self.items.insert(item.jid.clone(), item.clone());
        }
        if ver.is_some() {
            self.ver = ver;
        }
        PushOutcome::Applied {
            item,
            reply: iq.result(None),
        }
    }

    /// A roster set adding or updating an item (§2.3); the cache changes when the server's
    /// push arrives.
    #[must_use]
    pub fn set_item(
        id: impl Into<String>,
        jid: BareJid,
        name: Option<String>,
        groups: Vec<String>,
    ) -> Iq {
        let item = RosterItem {
            name,
            groups,
            ..RosterItem::new(jid)
        };
        let query = RosterQuery {
            ver: None,
            items: vec![item],
        };
        Iq::set(id, query.to_element())
    }

    /// A roster set removing an item (§2.5).
    #[must_use]
    pub fn remove_item(id: impl Into<String>, jid: BareJid) -> Iq {
        let item = RosterItem {
            remove: true,
            ..RosterItem::new(jid)
        };
        let query = RosterQuery {
            ver: None,
            items: vec![item],
        };
        Iq::set(id, query.to_element())
    }

    /// The own account as a [`Jid`].
    #[must_use]
    pub fn own(&self) -> Jid {
        self.own.clone().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    fn push(from: Option<&str>, item: &str, ver: &str) -> Iq {
        let mut iq = Iq::try_from(
            &format!(
                "<iq xmlns='jabber:client' type='set' id='p1'>\
                 <query xmlns='jabber:iq:roster' ver='{ver}'>{item}</query></iq>"
            )
            .parse::<Element>()
            .unwrap(),
        )
        .unwrap();
        iq.header.from = from.map(|f| Jid::new(f).unwrap());
        iq
    }

    #[test]
    fn item_round_trips() {
        // RFC 6121 §2.1.4 example item.
        let el: Element = "<item xmlns='jabber:iq:roster' jid='romeo@example.net' \
                           name='Romeo' subscription='both'><group>Friends</group></item>"
            .parse()
            .unwrap();
        let item = RosterItem::from_element(&el).unwrap();
        assert_eq!(item.subscription, Subscription::Both);
        assert_eq!(item.groups, ["Friends"]);
        assert_eq!(item.to_element(), el);
    }

    #[test]
    fn item_validation_maps_to_section_2_3_3_errors() {
        for (xml, err) in [
            (
                "<item xmlns='jabber:iq:roster' jid='a@b'><group>x</group><group>x</group></item>",
                RosterError::DuplicateGroup,
            ),
            (
                "<item xmlns='jabber:iq:roster' jid='a@b'><group/></item>",
                RosterError::EmptyGroup,
            ),
            (
                "<item xmlns='jabber:iq:roster' jid='a@b/c'/>",
                RosterError::BadJid,
            ),
        ] {
            let el: Element = xml.parse().unwrap();
            assert_eq!(RosterItem::from_element(&el), Err(err), "{xml}");
        }
        assert_eq!(
            RosterError::DuplicateGroup.condition(),
            StanzaErrorCondition::BadRequest
        );
        assert_eq!(
            RosterError::TooLong.condition(),
            StanzaErrorCondition::NotAcceptable
        );
    }

    #[test]
    fn cache_applies_results_and_pushes_in_order_and_tracks_the_version() {
        let mut cache = RosterCache::new(bare("juliet@example.com"));
        let get = cache.request("r1", true);
        let q = RosterQuery::from_element(get.request_payload().unwrap()).unwrap();
        assert_eq!(
            q.ver.as_deref(),
            Some(""),
            "§2.6.2: first request carries ver=''"
        );
        let result_el: Element = "<iq xmlns='jabber:client' type='result' id='r1'>\
            <query xmlns='jabber:iq:roster' ver='ver7'>\
            <item jid='nurse@example.com' subscription='both'/>\
            <item jid='romeo@example.net' subscription='to'/></query></iq>"
            .parse()
            .unwrap();
        cache
            .handle_result(&Iq::try_from(&result_el).unwrap())
            .unwrap();
        assert_eq!(cache.version(), Some("ver7"));
        assert_eq!(cache.items().count(), 2);
        let out = cache.handle_push(&push(
            Some("juliet@example.com"),
            "<item jid='benvolio@example.net' name='Ben'/>",
            "ver8",
        ));
        assert!(matches!(out, PushOutcome::Applied { .. }));
        let out = cache.handle_push(&push(
            None,
            "<item jid='nurse@example.com' subscription='remove'/>",
            "ver9",
        ));
        let PushOutcome::Applied { reply, .. } = out else {
            panic!("rejected")
        };
        assert_eq!(reply.payload, IqPayload::Result(None));
        assert_eq!(cache.version(), Some("ver9"));
        assert!(cache.get(&bare("nurse@example.com")).is_none());
        assert_eq!(
            cache
                .get(&bare("benvolio@example.net"))
                .unwrap()
                .name
                .as_deref(),
            Some("Ben")
        );
        // §2.6.3: an empty result leaves the cache as it is.
        let next = cache.request("r2", true);
        assert_eq!(
            RosterQuery::from_element(next.request_payload().unwrap())
                .unwrap()
                .ver
                .as_deref(),
            Some("ver9")
        );
        let empty: Element = "<iq xmlns='jabber:client' type='result' id='r2'/>"
            .parse()
            .unwrap();
        cache.handle_result(&Iq::try_from(&empty).unwrap()).unwrap();
        assert_eq!(cache.items().count(), 2);
    }

    #[test]
    fn pushes_from_anyone_else_are_ignored_roster_poisoning() {
        let mut cache = RosterCache::new(bare("juliet@example.com"));
        let before = cache.clone();
        for from in [
            "mallory@evil.example",
            "juliet@example.com/balcony",
            "example.com",
            "evil.example",
        ] {
            let out = cache.handle_push(&push(
                Some(from),
                "<item jid='mallory@evil.example' subscription='both'/>",
                "x",
            ));
            assert!(matches!(out, PushOutcome::Rejected { .. }), "{from}");
            assert_eq!(cache, before, "{from}");
        }
        let two = push(None, "<item jid='a@b'/><item jid='c@d'/>", "x");
        assert!(matches!(
            cache.handle_push(&two),
            PushOutcome::Rejected { .. }
        ));
        assert_eq!(cache, before);
    }
}
