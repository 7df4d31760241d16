//! Blocking communication: privacy lists (RFC 3921 §10, carried on as XEP-0016) and the
//! blocking command (XEP-0191) as ONE rule engine.
//!
//! A [`PrivacyList`] is an ordered list of [`Rule`]s: each matches the peer by JID, roster
//! group or subscription state (or matches everyone), applies to some stanza [`Kind`]s
//! (message, iq, presence-in, presence-out; none named means all), and allows or denies. The
//! first matching rule, in ascending `order`, decides; no match allows. A stanza none of the
//! four kinds names ([`Traffic::Other`]: subscription presence either way, probes, what the
//! user sends other than availability) is judged by the rules that name no kind only
//! (XEP-0016 §2.10 and §2.11 notes, §2.13). An XEP-0191 blocklist
//! is the same thing: one deny-everything rule per blocked JID ([`PrivacyList::blocklist`]),
//! evaluated before the account's privacy list ([`decide`]). The server machine applies the
//! verdict inside its delivery and presence decisions; this module only parses, serializes
//! and decides, with no state of its own.
//!
//! Client side: [`request`] builds the iq payloads of both protocols.

use std::collections::BTreeSet;

use minidom::Element;
use xmpp_jid::Jid;
use xmpp_xml::StanzaErrorCondition;

use crate::stanza::header::nc;
use crate::store::RosterEntry;
use crate::subscription::Subscription;

/// `jabber:iq:privacy` (XEP-0016).
pub const NS_PRIVACY: &str = "jabber:iq:privacy";
/// `urn:xmpp:blocking` (XEP-0191).
pub const NS_BLOCKING: &str = "urn:xmpp:blocking";
/// `urn:xmpp:blocking:errors`: the `<blocked/>` application error (XEP-0191 §3.5).
pub const NS_BLOCKING_ERRORS: &str = "urn:xmpp:blocking:errors";

/// Which stanzas a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Messages the user receives.
    Message,
    /// Iq requests the user receives.
    Iq,
    /// Presence the user receives (`<presence-in/>`).
    PresenceIn,
    /// Presence the user sends, broadcast or directed (`<presence-out/>`).
    PresenceOut,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Message, Kind::Iq, Kind::PresenceIn, Kind::PresenceOut];

    const fn bit(self) -> u8 {
        match self {
            Kind::Message => 1,
            Kind::Iq => 2,
            Kind::PresenceIn => 4,
            Kind::PresenceOut => 8,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Iq => "iq",
            Kind::PresenceIn => "presence-in",
            Kind::PresenceOut => "presence-out",
        }
    }
}

/// A stanza as the rules see it: one of the four kinds an item can name, or anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Traffic {
    /// A stanza of this kind: rules naming it, and rules naming no kind, apply.
    Named(Kind),
    /// A stanza no item child names: subscription presence in either direction (the
    /// notes of XEP-0016 §2.10 / §2.11: presence notifications are only presence without
    /// `type` or `unavailable`), probes, and the messages and iqs the user sends (`<message/>`
    /// and `<iq/>` name incoming stanzas only, §2.1). Only rules naming no kind apply: they
    /// block "all stanzas from and to" the peer, subscriptions included (§2.13).
    Other,
}

impl From<Kind> for Traffic {
    fn from(kind: Kind) -> Self {
        Traffic::Named(kind)
    }
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Every peer (the fall-through item, no `type`).
    All,
    /// By JID, as XEP-0016 §2.1 orders them: a full JID matches that JID only; a bare JID
    /// every resource of it; `domain/resource` that resource of the domain; a domain every
    /// JID of it.
    Jid(Jid),
    /// Contacts in this roster group.
    Group(String),
    /// Contacts with this subscription state (`none` also matches peers not in the roster).
    Subscription(Subscription),
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let the stanza through.
    Allow,
    /// Stop it.
    Deny,
}

/// One item of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Who it matches.
    pub matcher: Matcher,
    /// What it does.
    pub action: Action,
    /// Its position: lower first. Unique within a list.
    pub order: u32,
    /// Kinds it applies to, as bits; 0 means every kind.
    kinds: u8,
}

impl Rule {
    /// A rule for every kind.
    #[must_use]
    pub fn new(matcher: Matcher, action: Action, order: u32) -> Self {
        Rule {
            matcher,
            action,
            order,
            kinds: 0,
        }
    }

    /// The same rule restricted to `kinds` (added to those already named).
    #[must_use]
    pub fn only(mut self, kinds: &[Kind]) -> Self {
        for k in kinds {
            self.kinds |= k.bit();
        }
        self
    }

    /// Whether the rule applies to stanzas of `traffic` (a [`Kind`] or [`Traffic::Other`]).
    #[must_use]
    pub fn applies_to(&self, traffic: impl Into<Traffic>) -> bool {
        match traffic.into() {
            Traffic::Named(kind) => self.kinds == 0 || self.kinds & kind.bit() != 0,
            Traffic::Other => self.kinds == 0,
        }
    }

    fn matches(&self, peer: &Jid, entry: Option<&RosterEntry>) -> bool {
        match &self.matcher {
            Matcher::All => true,
            Matcher::Jid(j) => jid_matches(j, peer),
            Matcher::Group(g) => entry.is_some_and(|e| e.in_roster && e.groups.contains(g)),
            Matcher::Subscription(s) => {
                let have = entry
                    .filter(|e| e.in_roster)
                    .map_or(Subscription::None, |e| e.state.state.subscription());
                have == *s
            }
        }
    }
}

fn jid_matches(rule: &Jid, peer: &Jid) -> bool {
    if rule.domain() != peer.domain() {
        return false;
    }
    match (rule.node(), rule.resource()) {
        (Some(_), Some(_)) => rule == peer,
        (Some(n), None) => peer.node() == Some(n),
        (None, Some(r)) => peer.resource() == Some(r) && peer.node().is_none(),
        (None, None) => true,
    }
}

/// One account's stored blocking state: its privacy lists and default list (XEP-0016) and its
/// blocklist (XEP-0191). Active lists are per session and never stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrivacyData {
    /// The privacy lists, in the order they were created.
    pub lists: Vec<PrivacyList>,
    /// The name of the default list.
    pub default: Option<String>,
    /// The blocked JIDs, in the order they were blocked.
    pub blocked: Vec<Jid>,
}

/// Bounds on what a client may store: a list larger than this is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Items of one list (and JIDs of the blocklist).
    pub max_items: usize,
    /// Lists of one account.
    pub max_lists: usize,
    /// Bytes of a list name or group name.
    pub max_name: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_items: 1000,
            max_lists: 32,
            max_name: 1023,
        }
    }
}

/// A named, ordered list of rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrivacyList {
    /// Its name (empty for a blocklist).
    pub name: String,
    /// The rules, ascending by `order`.
    pub rules: Vec<Rule>,
}

impl PrivacyList {
    /// The XEP-0191 blocklist as rules: each JID denied everything, in the given order.
    #[must_use]
    pub fn blocklist<'a>(jids: impl IntoIterator<Item = &'a Jid>) -> Self {
        let rules = jids
            .into_iter()
            .zip(0u32..)
            .map(|(j, i)| Rule::new(Matcher::Jid(j.clone()), Action::Deny, i))
            .collect();
        PrivacyList {
            name: String::new(),
            rules,
        }
    }

    /// The verdict of this list alone: the first rule, by order, that applies to `traffic`
    /// and matches `peer` (`entry`: the peer's roster entry in the user's roster, if any);
    /// none means no opinion.
    #[must_use]
    pub fn verdict(
        &self,
        traffic: impl Into<Traffic>,
        peer: &Jid,
        entry: Option<&RosterEntry>,
    ) -> Option<Action> {
        let traffic = traffic.into();
        self.rules
            .iter()
            .find(|r| r.applies_to(traffic) && r.matches(peer, entry))
            .map(|r| r.action)
    }

    /// Parses `<list name='...'>` of `jabber:iq:privacy` (XEP-0016 §2.4): every item needs
    /// `action` and a unique `order`; `type` is `jid`, `group` or `subscription` with a
    /// `value`, or absent for the fall-through. Errors are the stanza errors to answer with:
    /// `bad-request` for anything malformed or unknown (an unknown action included),
    /// `item-not-found` for a group not in `groups`, `resource-constraint` past `limits`.
    pub fn parse(
        list: &Element,
        groups: &[String],
        limits: &Limits,
    ) -> Result<Self, StanzaErrorCondition> {
        let name = list.attr("name").unwrap_or_default();
        if name.is_empty() || name.len() > limits.max_name {
            return Err(StanzaErrorCondition::BadRequest);
        }
        // Looked up once per item: a roster names a group once per contact in it.
        let groups: BTreeSet<&str> = groups.iter().map(String::as_str).collect();
        let mut rules: Vec<Rule> = Vec::new();
        for item in list.children() {
            if !item.is("item", NS_PRIVACY) {
                return Err(StanzaErrorCondition::BadRequest);
            }
            if rules.len() >= limits.max_items {
                return Err(StanzaErrorCondition::ResourceConstraint);
            }
            rules.push(parse_item(item, &groups)?);
        }
        rules.sort_by_key(|r| r.order);
        if rules.windows(2).any(|w| w[0].order == w[1].order) {
            return Err(StanzaErrorCondition::BadRequest);
        }
        Ok(PrivacyList {
            name: name.to_owned(),
            rules,
        })
    }

    /// The `<list/>` element (XEP-0016 §2.3).
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut list = Element::builder("list", NS_PRIVACY)
            .attr(nc("name"), self.name.as_str())
            .build();
        for rule in &self.rules {
            let mut item = Element::builder("item", NS_PRIVACY)
                .attr(
                    nc("action"),
                    match rule.action {
                        Action::Allow => "allow",
                        Action::Deny => "deny",
                    },
                )
                .attr(nc("order"), rule.order.to_string())
                .build();
            let (kind, value) = match &rule.matcher {
                Matcher::All => (None, String::new()),
                Matcher::Jid(j) => (Some("jid"), j.to_string()),
                Matcher::Group(g) => (Some("group"), g.clone()),
                Matcher::Subscription(s) => (Some("subscription"), s.to_string()),
            };
            if let Some(kind) = kind {
                item.set_attr(minidom::rxml::Namespace::NONE, nc("type"), kind);
                item.set_attr(minidom::rxml::Namespace::NONE, nc("value"), value);
            }
            if rule.kinds != 0 {
                for k in Kind::ALL.iter().filter(|k| rule.kinds & k.bit() != 0) {
                    item.append_child(Element::bare(k.name(), NS_PRIVACY));
                }
            }
            list.append_child(item);
        }
        list
    }
}

fn parse_item(item: &Element, groups: &BTreeSet<&str>) -> Result<Rule, StanzaErrorCondition> {
    let bad = StanzaErrorCondition::BadRequest;
    let action = match item.attr("action") {
        Some("allow") => Action::Allow,
        Some("deny") => Action::Deny,
        _ => return Err(bad),
    };
    let order: u32 = item.attr("order").and_then(|o| o.parse().ok()).ok_or(bad)?;
    let value = item.attr("value");
    let matcher = match (item.attr("type"), value) {
        (None, None) => Matcher::All,
        (Some("jid"), Some(v)) => Matcher::Jid(Jid::new(v).map_err(|_| bad)?),
        (Some("group"), Some(v)) => {
            if !groups.contains(v) {
                return Err(StanzaErrorCondition::ItemNotFound);
            }
            Matcher::Group(v.to_owned())
        }
        (Some("subscription"), Some(v)) => Matcher::Subscription(v.parse().map_err(|_| bad)?),
        _ => return Err(bad),
    };
    let mut rule = Rule::new(matcher, action, order);
    for child in item.children() {
        let kind = Kind::ALL
            .into_iter()
            .find(|k| child.is(k.name(), NS_PRIVACY))
            .ok_or(bad)?;
        rule = rule.only(&[kind]);
    }
    Ok(rule)
}

/// The one decision: the blocklist first (XEP-0191), then the privacy list in force
/// (XEP-0016 §2.2: the receiving session's active list, else the account's default); no
/// opinion allows.
#[must_use]
pub fn decide(
    blocklist: &PrivacyList,
    list: Option<&PrivacyList>,
    traffic: impl Into<Traffic>,
    peer: &Jid,
    entry: Option<&RosterEntry>,
) -> Action {
    let traffic = traffic.into();
    blocklist
        .verdict(traffic, peer, entry)
        .or_else(|| list.and_then(|l| l.verdict(traffic, peer, entry)))
        .unwrap_or(Action::Allow)
}

/// The JIDs of a `<block/>`, `<unblock/>` or `<blocklist/>` (XEP-0191): `<item jid='...'/>`
/// children. `bad-request` for an item without a valid `jid`; `resource-constraint` past
/// `max`.
pub fn parse_jids(el: &Element, max: usize) -> Result<Vec<Jid>, StanzaErrorCondition> {
    let mut out: Vec<Jid> = Vec::new();
    // Each JID once, in order, without a quadratic check (a list is up to `max` long).
    let mut seen: BTreeSet<Jid> = BTreeSet::new();
    for item in el.children().filter(|c| c.is("item", NS_BLOCKING)) {
        if out.len() >= max {
            return Err(StanzaErrorCondition::ResourceConstraint);
        }
        let jid = item
            .attr("jid")
            .and_then(|j| Jid::new(j).ok())
            .ok_or(StanzaErrorCondition::JidMalformed)?;
        if seen.insert(jid.clone()) {
            out.push(jid);
        }
    }
    Ok(out)
}

/// `<name xmlns='urn:xmpp:blocking'>` with one `<item jid='...'/>` per JID.
#[must_use]
pub fn jids_element<'a>(name: &str, jids: impl IntoIterator<Item = &'a Jid>) -> Element {
    let mut el = Element::bare(name, NS_BLOCKING);
    for j in jids {
        el.append_child(
            Element::builder("item", NS_BLOCKING)
                .attr(nc("jid"), j.as_str())
                .build(),
        );
    }
    el
}

/// Client side: the payloads of the requests of both protocols, to put in an iq
/// ([`crate::Iq::get`] / [`crate::Iq::set`]) addressed to the account (no `to`).
pub mod request {
    use minidom::Element;
    use xmpp_jid::Jid;

    use super::{NS_BLOCKING, NS_PRIVACY, PrivacyList, jids_element, nc};

    /// XEP-0191 §3.2: get the blocklist (iq get).
    #[must_use]
    pub fn blocklist() -> Element {
        Element::bare("blocklist", NS_BLOCKING)
    }

    /// XEP-0191 §3.3: block these JIDs (iq set).
    #[must_use]
    pub fn block<'a>(jids: impl IntoIterator<Item = &'a Jid>) -> Element {
        jids_element("block", jids)
    }

    /// XEP-0191 §3.4: unblock these JIDs; none means every JID (iq set).
    #[must_use]
    pub fn unblock<'a>(jids: impl IntoIterator<Item = &'a Jid>) -> Element {
        jids_element("unblock", jids)
    }

    /// XEP-0016 §2.3: the names of the lists, the active and the default (iq get); with
    /// `name`, that list's items.
    #[must_use]
    pub fn lists(name: Option<&str>) -> Element {
        let mut q = Element::bare("query", NS_PRIVACY);
        if let Some(name) = name {
            q.append_child(
                Element::builder("list", NS_PRIVACY)
                    .attr(nc("name"), name)
                    .build(),
            );
        }
        q
    }

    /// XEP-0016 §2.5 / §2.6: set the active or the default list (`which` is `active` or
    /// `default`); `None` declines it (iq set).
    #[must_use]
    pub fn choose(which: &'static str, name: Option<&str>) -> Element {
        let mut choice = Element::bare(which, NS_PRIVACY);
        if let Some(name) = name {
            choice.set_attr(minidom::rxml::Namespace::NONE, nc("name"), name);
        }
        Element::builder("query", NS_PRIVACY).append(choice).build()
    }

    /// XEP-0016 §2.7: create or replace a list (iq set).
    #[must_use]
    pub fn edit(list: &PrivacyList) -> Element {
        Element::builder("query", NS_PRIVACY)
            .append(list.to_element())
            .build()
    }

    /// XEP-0016 §2.8: remove a list (an empty `<list name='...'/>`, iq set).
    #[must_use]
    pub fn remove(name: &str) -> Element {
        Element::builder("query", NS_PRIVACY)
            .append(
                Element::builder("list", NS_PRIVACY)
                    .attr(nc("name"), name)
                    .build(),
            )
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jid {
        Jid::new(s)
            .unwrap_or_else(|_| Jid::new("invalid.example").unwrap_or_else(|_| unreachable!()))
    }

    #[test]
    fn jid_items_match_as_xep_0016_orders_them() {
        let peer = j("romeo@example.net/orchard");
        assert!(jid_matches(&j("romeo@example.net/orchard"), &peer));
        assert!(!jid_matches(&j("romeo@example.net/balcony"), &peer));
        assert!(jid_matches(&j("romeo@example.net"), &peer));
        assert!(jid_matches(&j("example.net"), &peer));
        assert!(!jid_matches(&j("example.net/orchard"), &peer));
        assert!(jid_matches(
            &j("example.net/orchard"),
            &j("example.net/orchard")
        ));
        assert!(!jid_matches(&j("example.com"), &peer));
    }

    #[test]
    fn first_rule_by_order_decides_and_blocklist_comes_first() {
        let list = PrivacyList {
            name: "l".into(),
            rules: vec![
                Rule::new(Matcher::Jid(j("example.net")), Action::Allow, 1),
                Rule::new(Matcher::All, Action::Deny, 2).only(&[Kind::Message]),
            ],
        };
        let peer = j("romeo@example.net");
        let other = j("iago@example.org");
        assert_eq!(
            list.verdict(Kind::Message, &peer, None),
            Some(Action::Allow)
        );
        assert_eq!(
            list.verdict(Kind::Message, &other, None),
            Some(Action::Deny)
        );
        assert_eq!(list.verdict(Kind::Iq, &other, None), None);
        let blocked = PrivacyList::blocklist([&peer]);
        assert_eq!(
            decide(&blocked, Some(&list), Kind::Message, &peer, None),
            Action::Deny
        );
        assert_eq!(
            decide(&blocked, Some(&list), Kind::Iq, &other, None),
            Action::Allow
        );
        // XEP-0016 §2.13: only items naming no kind judge what no kind names (subscription
        // presence, the user's own messages); a <message/> item does not stop them.
        assert_eq!(list.verdict(Traffic::Other, &other, None), None);
        let all = PrivacyList {
            name: "all".into(),
            rules: vec![
                Rule::new(Matcher::Jid(j("iago@example.org")), Action::Allow, 1)
                    .only(&[Kind::PresenceOut]),
                Rule::new(Matcher::Jid(j("example.org")), Action::Deny, 2),
            ],
        };
        assert_eq!(
            all.verdict(Traffic::Other, &other, None),
            Some(Action::Deny)
        );
        assert_eq!(
            all.verdict(Kind::PresenceOut, &other, None),
            Some(Action::Allow)
        );
        // Serialization round-trips.
        let again = PrivacyList::parse(&list.to_element(), &[], &Limits::default());
        assert_eq!(again, Ok(list));
    }
}
