//! Blocking communication inside the machine: the account's privacy lists (XEP-0016) and
//! blocklist (XEP-0191) managed by their iqs, and the one verdict of
//! [`crate::privacy::decide`] applied to inbound stanzas (before delivery) and outbound
//! ones (before routing and in presence broadcast), with the errors both specifications
//! prescribe.
//!
//! The state of a loaded account lives in the machine; every change is marked so that it
//! leaves in the unit's [`crate::Output::Write`] ([`crate::Change::Privacy`]).

use minidom::Element;
use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use super::Server;
use super::sessions::bare_str;
use crate::privacy::{
    Action, Kind, NS_BLOCKING, NS_BLOCKING_ERRORS, NS_PRIVACY, PrivacyData, PrivacyList, decide,
    jids_element, parse_jids,
};
use crate::stanza::header::nc;
use crate::stanza::{Iq, IqPayload, PresenceType, Stanza};
use crate::store::RosterStore;

/// One account's blocking state.
#[derive(Debug, Clone, Default)]
pub(super) struct Account {
    pub(super) data: PrivacyData,
    /// `data.data.blocked` as rules, rebuilt on every change.
    block_rules: PrivacyList,
}

impl Account {
    /// The state of a stored account, as loaded.
    pub(super) fn from_data(data: PrivacyData) -> Self {
        let block_rules = PrivacyList::blocklist(&data.blocked);
        Self { data, block_rules }
    }
}

/// Why an outbound stanza was stopped.
enum Stop {
    /// By the blocklist: `not-acceptable` with `<blocked/>` (XEP-0191 §3.6).
    Blocked,
    /// By a privacy list: `not-acceptable` (XEP-0016 §2.13).
    Privacy,
}

impl Server {
    // ---- iqs ----

    /// An iq of the account to itself in `jabber:iq:privacy` or `urn:xmpp:blocking`: true if
    /// it was one (and is answered).
    pub(super) fn privacy_iq(&mut self, store: &impl RosterStore, from: &FullJid, iq: &Iq) -> bool {
        let Some(payload) = iq.request_payload() else {
            return false;
        };
        let set = matches!(iq.payload, IqPayload::Set(_));
        let result = if payload.is("query", NS_PRIVACY) {
            if set {
                self.privacy_set(store, from, payload)
            } else {
                self.privacy_get(from, payload)
            }
        } else if payload.ns() == NS_BLOCKING {
            match (payload.name(), set) {
                ("blocklist", false) => {
                    if let Some(s) = self.session_mut(from) {
                        s.wants_blocklist = true;
                    }
                    let account = self.privacy.get(bare_str(from.as_str()));
                    let jids = account
                        .map(|a| a.data.blocked.as_slice())
                        .unwrap_or_default();
                    Ok(Some(jids_element("blocklist", jids)))
                }
                ("block", true) => self.block(store, from, payload, true),
                ("unblock", true) => self.block(store, from, payload, false),
                _ => Err(StanzaErrorCondition::BadRequest),
            }
        } else {
            return false;
        };
        if set {
            // Whatever the outcome, a set may have changed the stored state: it leaves in
            // this unit's write (an unchanged state written again is harmless).
            self.privacy_dirty.insert(from.to_bare());
        }
        self.answer_own(from, iq, result);
        true
    }

    fn privacy_get(
        &mut self,
        from: &FullJid,
        query: &Element,
    ) -> Result<Option<Element>, StanzaErrorCondition> {
        let account = self.privacy.get(bare_str(from.as_str()));
        let lists = account.map(|a| a.data.lists.as_slice()).unwrap_or_default();
        let names: Vec<&Element> = query.children().collect();
        match names.as_slice() {
            [] => {
                let mut q = Element::bare("query", NS_PRIVACY);
                let active = self.session(from).and_then(|s| s.active_list.clone());
                let mut el = Element::bare("active", NS_PRIVACY);
                if let Some(a) = active {
                    el.set_attr(minidom::rxml::Namespace::NONE, nc("name"), a);
                }
                q.append_child(el);
                let mut el = Element::bare("default", NS_PRIVACY);
                if let Some(d) = account.and_then(|a| a.data.default.clone()) {
                    el.set_attr(minidom::rxml::Namespace::NONE, nc("name"), d);
                }
                q.append_child(el);
                for l in lists {
                    q.append_child(
                        Element::builder("list", NS_PRIVACY)
                            .attr(nc("name"), l.name.as_str())
                            .build(),
                    );
                }
                Ok(Some(q))
            }
            [one] if one.is("list", NS_PRIVACY) => {
                let name = one.attr("name").unwrap_or_default();
                let list = lists
                    .iter()
                    .find(|l| l.name == name)
                    .ok_or(StanzaErrorCondition::ItemNotFound)?;
                Ok(Some(
                    Element::builder("query", NS_PRIVACY)
                        .append(list.to_element())
                        .build(),
                ))
            }
            // XEP-0016 §2.3: one list at a time.
            _ => Err(StanzaErrorCondition::BadRequest),
        }
    }

    fn privacy_set(
        &mut self,
        store: &impl RosterStore,
        from: &FullJid,
        query: &Element,
    ) -> Result<Option<Element>, StanzaErrorCondition> {
        let mut children = query.children();
        let (Some(child), None) = (children.next(), children.next()) else {
            return Err(StanzaErrorCondition::BadRequest);
        };
        let user = from.to_bare();
        let key = bare_str(from.as_str()).to_owned();
        let name = child.attr("name").map(str::to_owned);
        let exists = |s: &Self, n: &str| {
            s.privacy
                .get(&key)
                .is_some_and(|a| a.data.lists.iter().any(|l| l.name == n))
        };
        if child.is("active", NS_PRIVACY) {
            if name.as_deref().is_some_and(|n| !exists(self, n)) {
                return Err(StanzaErrorCondition::ItemNotFound);
            }
            if let Some(s) = self.session_mut(from) {
                s.active_list = name;
            }
            return Ok(None);
        }
        if child.is("default", NS_PRIVACY) {
            if name.as_deref().is_some_and(|n| !exists(self, n)) {
                return Err(StanzaErrorCondition::ItemNotFound);
            }
            // XEP-0016 §2.6: changing the default while another resource relies on it
            // (no active list of its own) is a conflict.
            let others_rely = self
                .resources_of(&user)
                .any(|s| &s.jid != from && s.active_list.is_none());
            let account = self.privacy.entry(key).or_default();
            if others_rely && account.data.default != name {
                return Err(StanzaErrorCondition::Conflict);
            }
            account.data.default = name;
            return Ok(None);
        }
        if !child.is("list", NS_PRIVACY) {
            return Err(StanzaErrorCondition::BadRequest);
        }
        let name = name.ok_or(StanzaErrorCondition::BadRequest)?;
        if child.children().next().is_none() {
            // §2.8: removal; not of a list in use.
            let in_use = self
                .resources_of(&user)
                .any(|s| &s.jid != from && s.active_list.as_deref() == Some(name.as_str()));
            let account = self.privacy.entry(key).or_default();
            if in_use || account.data.default.as_deref() == Some(name.as_str()) {
                return Err(StanzaErrorCondition::Conflict);
            }
            let before = account.data.lists.len();
            account.data.lists.retain(|l| l.name != name);
            if account.data.lists.len() == before {
                return Err(StanzaErrorCondition::ItemNotFound);
            }
        } else {
            let groups: Vec<String> = store
                .entries(&user)
                .into_iter()
                .flat_map(|e| e.groups)
                .collect();
            let limits = self.config.privacy;
            let list = PrivacyList::parse(child, &groups, &limits)?;
            let account = self.privacy.entry(key).or_default();
            if let Some(old) = account.data.lists.iter_mut().find(|l| l.name == name) {
                *old = list;
            } else if account.data.lists.len() >= limits.max_lists {
                return Err(StanzaErrorCondition::ResourceConstraint);
            } else {
                account.data.lists.push(list);
            }
        }
        // §2.6: a push of the list name to every resource.
        let push = Element::builder("query", NS_PRIVACY)
            .append(
                Element::builder("list", NS_PRIVACY)
                    .attr(nc("name"), name.as_str())
                    .build(),
            )
            .build();
        self.push_to_all(&user, &push, |_| true);
        Ok(None)
    }

    fn block(
        &mut self,
        store: &impl RosterStore,
        from: &FullJid,
        payload: &Element,
        block: bool,
    ) -> Result<Option<Element>, StanzaErrorCondition> {
        let max = self.config.privacy.max_items;
        let jids = parse_jids(payload, max)?;
        if block && jids.is_empty() {
            // XEP-0191 §3.3: a block without items is a bad request.
            return Err(StanzaErrorCondition::BadRequest);
        }
        let user = from.to_bare();
        let key = bare_str(from.as_str()).to_owned();
        let account = self.privacy.entry(key).or_default();
        let mut changed: Vec<Jid> = Vec::new();
        if block {
            for j in &jids {
                if !account.data.blocked.contains(j) {
                    if account.data.blocked.len() >= max {
                        return Err(StanzaErrorCondition::ResourceConstraint);
                    }
                    account.data.blocked.push(j.clone());
                    changed.push(j.clone());
                }
            }
        } else if jids.is_empty() {
            changed = core::mem::take(&mut account.data.blocked);
        } else {
            account.data.blocked.retain(|b| {
                let hit = jids.contains(b);
                if hit {
                    changed.push(b.clone());
                }
                !hit
            });
        }
        account.block_rules = PrivacyList::blocklist(&account.data.blocked);
        // §3.3 / §3.4: the change pushed to every resource that asked for the blocklist.
        let push = jids_element(if block { "block" } else { "unblock" }, &jids);
        self.push_to_all(&user, &push, |s| s.wants_blocklist);
        // §3.3: a blocked contact that saw the user online sees it go; §3.4: an unblocked
        // one that is subscribed gets the current presence again.
        for j in changed {
            let subscribed = store
                .entry(&user, &j.to_bare())
                .is_some_and(|e| e.state.state.subscription().has_from());
            if subscribed && j.node().is_some() {
                self.presence_to_contact(&user, &j.to_bare(), !block);
            }
        }
        Ok(None)
    }

    /// An iq set push of `payload` to each session of `user` that `want` picks (roster,
    /// privacy list and blocklist pushes), with ids the answers are recognized by.
    pub(super) fn push_to_all(
        &mut self,
        user: &BareJid,
        payload: &Element,
        want: impl Fn(&super::sessions::Session) -> bool,
    ) {
        let targets: Vec<FullJid> = self
            .resources_of(user)
            .filter(|s| want(s))
            .map(|s| s.jid.clone())
            .collect();
        for t in targets {
            self.next_push = self.next_push.wrapping_add(1);
            let mut iq = Iq::set(format!("push-{}", self.next_push), payload.clone());
            iq.header.to = Some(t.clone().into());
            self.deliver(&t, iq.to_element());
        }
    }

    // ---- verdicts ----

    /// The verdict for `user` (as `to`: a full JID picks that session's active list) about
    /// `peer`, for stanzas of `kind`; `blocklist_only` skips the privacy lists.
    fn verdict(
        &self,
        store: &impl RosterStore,
        to: &Jid,
        peer: &Jid,
        kind: Kind,
        blocklist_only: bool,
    ) -> (Action, bool) {
        let Some(account) = self.privacy.get(bare_str(to.as_str())) else {
            return (Action::Allow, false);
        };
        let entry = store.entry(&to.to_bare(), &peer.to_bare());
        if account.block_rules.verdict(kind, peer, entry.as_ref()) == Some(Action::Deny) {
            return (Action::Deny, true);
        }
        if blocklist_only {
            return (Action::Allow, false);
        }
        let active = match to.resource() {
            Some(_) => FullJid::try_from(to.clone())
                .ok()
                .and_then(|f| self.session(&f))
                .and_then(|s| s.active_list.clone()),
            None => None,
        };
        let name = active.or_else(|| account.data.default.clone());
        let list = name.and_then(|n| account.data.lists.iter().find(|l| l.name == n));
        (
            decide(&PrivacyList::default(), list, kind, peer, entry.as_ref()),
            false,
        )
    }

    /// XEP-0016 §2.13 / XEP-0191 §3.5: whether a stanza for a local account gets through.
    /// A stopped message or iq request is answered `service-unavailable`; presence and
    /// everything else is dropped.
    pub(super) fn inbound_allowed(&mut self, store: &impl RosterStore, stanza: &Stanza) -> bool {
        let h = stanza.header();
        let (Some(to), Some(from)) = (h.to.clone(), h.from.clone()) else {
            return true;
        };
        if from.to_bare() == to.to_bare() || to.node().is_none() {
            return true;
        }
        let (kind, blocklist_only) = match stanza {
            Stanza::Message(_) => (Kind::Message, false),
            Stanza::Iq(iq) => (Kind::Iq, iq.request_payload().is_none()),
            // Subscription stanzas: only the blocklist stops them (XEP-0016 presence-in is
            // about availability).
            Stanza::Presence(p) => (
                Kind::PresenceIn,
                p.presence_type
                    .is_some_and(|t| t.subscription_kind().is_some()),
            ),
        };
        let (action, _) = self.verdict(store, &to, &from, kind, blocklist_only);
        if action == Action::Allow {
            return true;
        }
        let answer = match stanza {
            Stanza::Message(_) => true,
            Stanza::Iq(iq) => iq.request_payload().is_some(),
            Stanza::Presence(_) => false,
        };
        if answer {
            self.bounce_with(
                &stanza.to_element(),
                StanzaErrorCondition::ServiceUnavailable,
            );
        }
        false
    }

    /// Whether a stanza a session sends may leave (XEP-0191 §3.6, XEP-0016 presence-out):
    /// a stopped one is answered `not-acceptable` (with `<blocked/>` when the blocklist
    /// stopped it), and false is returned.
    pub(super) fn outbound_allowed(
        &mut self,
        store: &impl RosterStore,
        from: &FullJid,
        stanza: &Stanza,
    ) -> bool {
        let Some(to) = stanza.header().to.clone() else {
            return true;
        };
        if to.to_bare() == from.to_bare() {
            return true;
        }
        let (kind, blocklist_only) = match stanza {
            Stanza::Presence(p)
                if matches!(p.presence_type, None | Some(PresenceType::Unavailable)) =>
            {
                (Kind::PresenceOut, false)
            }
            _ => (Kind::Message, true),
        };
        let me: Jid = from.clone().into();
        let (action, by_blocklist) = self.verdict(store, &me, &to, kind, blocklist_only);
        if action == Action::Allow {
            return true;
        }
        let stop = if by_blocklist {
            Stop::Blocked
        } else {
            Stop::Privacy
        };
        let el = stanza.to_element();
        if el.attr("type") != Some("error") {
            let mut error = StanzaError::new(StanzaErrorCondition::NotAcceptable);
            if matches!(stop, Stop::Blocked) {
                error =
                    error.with_application_condition(Element::bare("blocked", NS_BLOCKING_ERRORS));
            }
            self.deliver(from, error.reply_to(&el));
        }
        false
    }

    /// Whether the presence of session `from` (or of the account, `None`) may go to `to`
    /// (presence-out, broadcast and probe answers).
    pub(super) fn presence_out_allowed(
        &self,
        store: &impl RosterStore,
        from: &Jid,
        to: &Jid,
    ) -> bool {
        self.verdict(store, from, to, Kind::PresenceOut, false).0 == Action::Allow
    }
}
