//! Blocking communication inside the machine: the account's privacy lists (XEP-0016) and
//! blocklist (XEP-0191) managed by their iqs, and the one verdict of
//! [`crate::privacy::decide`] applied to inbound stanzas (before delivery) and outbound
//! ones (before routing and in presence broadcast), with the errors both specifications
//! prescribe.
//!
//! The state of a loaded account lives in the machine; every change is marked so that it
//! leaves in the unit's [`crate::Output::Write`] ([`crate::Change::Privacy`]).

use std::collections::{BTreeMap, BTreeSet};

use minidom::Element;
use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use super::Server;
use crate::privacy::{
    Action, Kind, Matcher, NS_BLOCKING, NS_BLOCKING_ERRORS, NS_PRIVACY, PrivacyData, PrivacyList,
    Traffic, jids_element, parse_jids,
};
use crate::stanza::header::nc;
use crate::stanza::{Iq, IqPayload, Presence, PresenceType, Stanza};
use crate::store::RosterEntry;
use crate::store::RosterStore;
use crate::subscription::Subscription;

/// One account's blocking state.
#[derive(Debug, Clone, Default)]
pub(super) struct Account {
    pub(super) data: PrivacyData,
    /// `data.blocked` as strings, rebuilt on every change: [`Account::blocks`].
    blocked: BTreeSet<String>,
    /// `data.lists` indexed, in the same order, rebuilt on every change.
    compiled: Vec<CompiledList>,
}

impl Account {
    /// The state of a stored account, as loaded.
    pub(super) fn from_data(data: PrivacyData) -> Self {
        let blocked = blocked_index(&data.blocked);
        let compiled = data.lists.iter().map(CompiledList::new).collect();
        Self {
            data,
            blocked,
            compiled,
        }
    }

    /// `data.lists` changed.
    fn lists_changed(&mut self) {
        self.compiled = self.data.lists.iter().map(CompiledList::new).collect();
    }

    /// The verdict of list `at` of `data.lists` ([`PrivacyList::verdict`]), from its index.
    fn verdict(
        &self,
        at: usize,
        traffic: Traffic,
        peer: &Jid,
        entry: Option<&RosterEntry>,
    ) -> Option<Action> {
        let list = self.data.lists.get(at)?;
        match self.compiled.get(at) {
            Some(compiled) => compiled.verdict(list, traffic, peer, entry),
            // Never: the index follows every change of the lists.
            None => list.verdict(traffic, peer, entry),
        }
    }

    /// Whether the blocklist stops everything between the account and `peer`: the verdict
    /// of [`PrivacyList::blocklist`] (one deny-all rule per blocked JID, matched as XEP-0016
    /// §2.1 says), found with at most three lookups instead of one comparison per blocked
    /// JID. A blocked JID that matches `peer` is `peer` itself (a full JID, or a bare or
    /// domain JID equal to it), its bare JID (a localpart blocks every resource) or its
    /// domain (a domain blocks everything at it; `domain/resource` only that JID, which is
    /// `peer` itself). Every stanza to a user is judged by it, and a presence broadcast once
    /// per contact: contacts x blocked JIDs (1 000 x 1 000 under the default bounds) per
    /// presence before.
    fn blocks(&self, peer: &Jid) -> bool {
        !self.blocked.is_empty()
            && (self.blocked.contains(peer.as_str())
                || (peer.node().is_some() && self.blocked.contains(peer.bare_str()))
                || self.blocked.contains(peer.domain()))
    }
}

/// The traffic a rule may apply to, in [`CompiledList`]'s slots.
const TRAFFIC: [Traffic; 5] = [
    Traffic::Other,
    Traffic::Named(Kind::Message),
    Traffic::Named(Kind::Iq),
    Traffic::Named(Kind::PresenceIn),
    Traffic::Named(Kind::PresenceOut),
];

/// The slot of `traffic` in [`TRAFFIC`].
fn slot(traffic: Traffic) -> usize {
    match traffic {
        Traffic::Other => 0,
        Traffic::Named(Kind::Message) => 1,
        Traffic::Named(Kind::Iq) => 2,
        Traffic::Named(Kind::PresenceIn) => 3,
        Traffic::Named(Kind::PresenceOut) => 4,
    }
}

/// For one matcher, the position of the first rule with it that applies to each traffic
/// slot ([`NONE`]: none).
type Firsts = [u32; TRAFFIC.len()];

/// No rule.
const NONE: u32 = u32::MAX;

/// A privacy list indexed by what its rules match: its verdict on a peer is the first rule,
/// by position, among those that can match it (the peer's JID, bare JID and domain, its
/// roster groups, its subscription, and the match-all rules), found by lookups instead of a
/// walk over every rule. A list is up to 1 000 items, and a presence broadcast judges it
/// once per contact (up to 1 000): 10^6 rule checks per presence before, all of it the
/// client's to choose.
#[derive(Debug, Clone, Default)]
struct CompiledList {
    /// By the JID's string (a peer matches a JID rule only through its own string, its bare
    /// JID's or its domain's, as `jid_matches` says).
    jids: BTreeMap<String, Firsts>,
    groups: BTreeMap<String, Firsts>,
    subscriptions: Vec<(Subscription, Firsts)>,
    all: Firsts,
}

impl CompiledList {
    fn new(list: &PrivacyList) -> Self {
        let mut compiled = CompiledList {
            all: [NONE; TRAFFIC.len()],
            ..CompiledList::default()
        };
        for (at, rule) in list.rules.iter().enumerate() {
            let at = u32::try_from(at).unwrap_or(NONE);
            let firsts = match &rule.matcher {
                Matcher::All => &mut compiled.all,
                Matcher::Jid(jid) => compiled
                    .jids
                    .entry(jid.as_str().to_owned())
                    .or_insert([NONE; TRAFFIC.len()]),
                Matcher::Group(group) => compiled
                    .groups
                    .entry(group.clone())
                    .or_insert([NONE; TRAFFIC.len()]),
                Matcher::Subscription(s) => {
                    let known = compiled.subscriptions.iter().position(|(t, _)| t == s);
                    let i = known.unwrap_or_else(|| {
                        compiled.subscriptions.push((*s, [NONE; TRAFFIC.len()]));
                        compiled.subscriptions.len() - 1
                    });
                    match compiled.subscriptions.get_mut(i) {
                        Some((_, firsts)) => firsts,
                        None => continue,
                    }
                }
            };
            for (first, traffic) in firsts.iter_mut().zip(TRAFFIC) {
                if *first == NONE && rule.applies_to(traffic) {
                    *first = at;
                }
            }
        }
        compiled
    }

    /// [`PrivacyList::verdict`] of `list`, the list this index was built from.
    fn verdict(
        &self,
        list: &PrivacyList,
        traffic: Traffic,
        peer: &Jid,
        entry: Option<&RosterEntry>,
    ) -> Option<Action> {
        let k = slot(traffic);
        let mut first = self.all[k];
        let mut consider = |firsts: Option<&Firsts>| {
            if let Some(firsts) = firsts {
                first = first.min(firsts[k]);
            }
        };
        consider(self.jids.get(peer.as_str()));
        if peer.node().is_some() {
            consider(self.jids.get(peer.bare_str()));
        }
        consider(self.jids.get(peer.domain()));
        let in_roster = entry.filter(|e| e.in_roster);
        if !self.groups.is_empty()
            && let Some(e) = in_roster
        {
            for group in &e.groups {
                consider(self.groups.get(group));
            }
        }
        let have = in_roster.map_or(Subscription::None, |e| e.state.state.subscription());
        for (s, firsts) in &self.subscriptions {
            if *s == have {
                consider(Some(firsts));
            }
        }
        let at = usize::try_from(first).ok()?;
        list.rules.get(at).map(|rule| rule.action)
    }
}

/// The strings of the blocked JIDs ([`Account::blocks`]).
fn blocked_index(blocked: &[Jid]) -> BTreeSet<String> {
    blocked.iter().map(|j| j.as_str().to_owned()).collect()
}

/// Why an outbound stanza was stopped.
enum Stop {
    /// By the blocklist: `not-acceptable` with `<blocked/>` (XEP-0191 §3.6).
    Blocked,
    /// By a privacy list: `not-acceptable` (XEP-0016 §2.14).
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
                // §2.11 (its note): a contact that stops receiving the user's presence
                // notifications is sent `unavailable`; one that may receive them again gets
                // the current presence, as an unblock does (XEP-0191 §3.4).
                let user = from.to_bare();
                let affected = self.affected_sessions(from, payload);
                let before = self.presence_out_view(store, &user, &affected);
                let result = self.privacy_set(store, from, payload);
                if result.is_ok() {
                    let after = self.presence_out_view(store, &user, &affected);
                    self.presence_out_changed(&before, after);
                }
                result
            } else {
                self.privacy_get(from, payload)
            }
        } else if payload.ns() == NS_BLOCKING {
            match (payload.name(), set) {
                ("blocklist", false) => {
                    if let Some(s) = self.session_mut(from) {
                        s.wants_blocklist = true;
                    }
                    let account = self.privacy.get(from.bare_str());
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
        let account = self.privacy.get(from.bare_str());
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
        let key = from.bare_str().to_owned();
        let name = child.attr("name").map(str::to_owned);
        let exists = |s: &Self, n: &str| {
            s.privacy
                .get(&key)
                .is_some_and(|a| a.data.lists.iter().any(|l| l.name == n))
        };
        if child.is("active", NS_PRIVACY) {
            // §2.4: a list that does not exist is item-not-found; no name declines.
            if name.as_deref().is_some_and(|n| !exists(self, n)) {
                return Err(StanzaErrorCondition::ItemNotFound);
            }
            if let Some(s) = self.session_mut(from) {
                s.active_list = name;
            }
            return Ok(None);
        }
        // The other connected resources the default list applies to: those without an
        // active list of their own (§2.2 rule 2).
        let others_on_default = self
            .resources_of(&user)
            .any(|s| &s.jid != from && s.active_list.is_none());
        if child.is("default", NS_PRIVACY) {
            // §2.5: a list that does not exist is item-not-found. Changing or declining the
            // default is a conflict only while a default list exists and applies to another
            // connected resource; setting the same default again changes nothing.
            if name.as_deref().is_some_and(|n| !exists(self, n)) {
                return Err(StanzaErrorCondition::ItemNotFound);
            }
            let account = self.privacy.entry(key).or_default();
            if account.data.default.is_some() && account.data.default != name && others_on_default {
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
            // §2.8: removal. item-not-found for a list that does not exist; conflict while
            // the list applies to another connected resource (its active list, or the
            // default for one without an active list). The sender's own use does not count:
            // it falls back to no list.
            if !exists(self, &name) {
                return Err(StanzaErrorCondition::ItemNotFound);
            }
            let active_elsewhere = self
                .resources_of(&user)
                .any(|s| &s.jid != from && s.active_list.as_deref() == Some(name.as_str()));
            let account = self.privacy.entry(key).or_default();
            let default_elsewhere =
                account.data.default.as_deref() == Some(name.as_str()) && others_on_default;
            if active_elsewhere || default_elsewhere {
                return Err(StanzaErrorCondition::Conflict);
            }
            account.data.lists.retain(|l| l.name != name);
            account.lists_changed();
            if account.data.default.as_deref() == Some(name.as_str()) {
                account.data.default = None;
            }
            if let Some(s) = self.session_mut(from)
                && s.active_list.as_deref() == Some(name.as_str())
            {
                s.active_list = None;
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
            account.lists_changed();
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
        let key = from.bare_str().to_owned();
        let account = self.privacy.entry(key).or_default();
        let mut changed: Vec<Jid> = Vec::new();
        if block {
            // Membership in a set: the list and the request are each up to the bound long.
            let mut present: BTreeSet<Jid> = account.data.blocked.iter().cloned().collect();
            for j in &jids {
                if present.insert(j.clone()) {
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
            let unblocked: BTreeSet<&Jid> = jids.iter().collect();
            account.data.blocked.retain(|b| {
                let hit = unblocked.contains(b);
                if hit {
                    changed.push(b.clone());
                }
                !hit
            });
        }
        account.blocked = blocked_index(&account.data.blocked);
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
                self.presence_to_contact(store, &user, &j.to_bare(), !block);
            }
        }
        Ok(None)
    }

    /// The available sessions whose list in force a `jabber:iq:privacy` set can change: the
    /// sender for `<active/>`, those without an active list for `<default/>`, those under
    /// the list for `<list/>`. They share one list in force, so a view of them costs one
    /// pass over the contacts.
    fn affected_sessions(&self, from: &FullJid, query: &Element) -> Vec<FullJid> {
        let Some(child) = query.children().next() else {
            return Vec::new();
        };
        let user = from.to_bare();
        let default = self
            .privacy
            .get(user.as_str())
            .and_then(|a| a.data.default.clone());
        let name = child.attr("name");
        self.resources_of(&user)
            .filter(|s| s.available)
            .filter(|s| match child.name() {
                "active" => &s.jid == from,
                "default" => s.active_list.is_none(),
                _ => s.active_list.as_deref().or(default.as_deref()) == name,
            })
            .map(|s| s.jid.clone())
            .collect()
    }

    /// For each of `sessions` and each contact subscribed to the user's presence: whether
    /// the session's list in force lets presence notifications out to the contact, judged
    /// once per distinct list in force.
    fn presence_out_view(
        &self,
        store: &impl RosterStore,
        user: &BareJid,
        sessions: &[FullJid],
    ) -> Vec<(FullJid, Jid, bool)> {
        if sessions.is_empty() {
            return Vec::new();
        }
        let contacts: Vec<Jid> = store
            .entries(user)
            .into_iter()
            .filter(|e| e.state.state.subscription().has_from())
            .map(|e| e.jid.into())
            .collect();
        let account = self.privacy.get(user.as_str());
        let mut judged: Vec<(Option<String>, Vec<bool>)> = Vec::new();
        let mut view = Vec::new();
        for s in sessions {
            let list = account
                .and_then(|a| self.list_in_force(a, Some(s)))
                .map(|l| l.name.clone());
            let verdicts = if let Some((_, v)) = judged.iter().find(|(n, _)| *n == list) {
                v.clone()
            } else {
                let v: Vec<bool> = contacts
                    .iter()
                    .map(|c| self.lets_through(store, user, Some(s), c, Kind::PresenceOut))
                    .collect();
                judged.push((list, v.clone()));
                v
            };
            for (c, open) in contacts.iter().zip(verdicts) {
                view.push((s.clone(), c.clone(), open));
            }
        }
        view
    }

    /// Compares two [`Self::presence_out_view`]s: `unavailable` from a session to each
    /// contact it no longer lets presence out to, its current presence to each it lets it
    /// out to again.
    fn presence_out_changed(
        &mut self,
        before: &[(FullJid, Jid, bool)],
        after: Vec<(FullJid, Jid, bool)>,
    ) {
        for ((session, contact, open), was) in after.into_iter().zip(before.iter().map(|b| b.2)) {
            if was == open {
                continue;
            }
            let presence = if open {
                self.session(&session)
                    .and_then(|s| Some((s.presence.clone()?, s.presence_bytes.clone())))
            } else {
                Some((Presence::new(Some(PresenceType::Unavailable)), None))
            };
            if let Some((mut p, bytes)) = presence {
                p.header.from = Some(session.into());
                self.stored_presence_to(p, bytes, contact);
            }
        }
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

    /// The privacy list in force for `session` of the account (XEP-0016 §2.2 rules 1–3): its
    /// active list, else the default (no layering); for `None` (no session takes the
    /// stanza: it is the account's, or stored offline) the default.
    fn list_in_force<'a>(
        &'a self,
        account: &'a Account,
        session: Option<&FullJid>,
    ) -> Option<&'a PrivacyList> {
        let active = session
            .and_then(|s| self.session(s))
            .and_then(|s| s.active_list.as_deref());
        let name = active.or(account.data.default.as_deref())?;
        account.data.lists.iter().find(|l| l.name == name)
    }

    /// Where [`Self::list_in_force`] is in the account's lists.
    fn list_in_force_at(&self, account: &Account, session: Option<&FullJid>) -> Option<usize> {
        let active = session
            .and_then(|s| self.session(s))
            .and_then(|s| s.active_list.as_deref());
        let name = active.or(account.data.default.as_deref())?;
        account.data.lists.iter().position(|l| l.name == name)
    }

    /// `user`'s verdict on `traffic` between `peer` and `session` (`None`: the account as a
    /// whole): the blocklist, then the list in force for that session; true in second place
    /// when the blocklist decided. A user's own resources are never blocked (XEP-0016 §2.1).
    fn judge(
        &self,
        store: &impl RosterStore,
        user: &BareJid,
        session: Option<&FullJid>,
        peer: &Jid,
        traffic: Traffic,
    ) -> (Action, bool) {
        let Some(account) = self.privacy.get(user.as_str()) else {
            return (Action::Allow, false);
        };
        if peer.node().is_some() && peer.bare_str() == user.as_str() {
            return (Action::Allow, false);
        }
        let entry = store.entry(user, &peer.to_bare());
        // The blocklist names no kind: it stops every kind of traffic.
        if account.blocks(peer) {
            return (Action::Deny, true);
        }
        // `decide` with the blocklist checked above, the list in force from its index.
        let verdict = self
            .list_in_force_at(account, session)
            .and_then(|at| account.verdict(at, traffic, peer, entry.as_ref()));
        (verdict.unwrap_or(Action::Allow), false)
    }

    /// Whether `session` of `user` (`None`: the account as a whole) may receive `traffic`
    /// from `peer`, or send it to `peer`.
    pub(super) fn lets_through(
        &self,
        store: &impl RosterStore,
        user: &BareJid,
        session: Option<&FullJid>,
        peer: &Jid,
        traffic: impl Into<Traffic>,
    ) -> bool {
        self.judge(store, user, session, peer, traffic.into()).0 == Action::Allow
    }

    /// The recipients among `targets` (sessions of `user`) whose lists let `traffic` from
    /// `peer` through: a stanza to the bare JID is judged by the list in force for each
    /// resource it would reach (XEP-0016 §2.2 rules 1–2), not by the default alone.
    pub(super) fn admitted(
        &self,
        store: &impl RosterStore,
        user: &BareJid,
        peer: &Jid,
        traffic: impl Into<Traffic>,
        mut targets: Vec<FullJid>,
    ) -> Vec<FullJid> {
        let traffic = traffic.into();
        targets.retain(|t| self.lets_through(store, user, Some(t), peer, traffic));
        targets
    }

    /// XEP-0016 §2.14 / XEP-0191 §3.5: the answer to a stopped inbound stanza: a message or an
    /// iq request gets `service-unavailable` (the user appears offline); presence and iq
    /// responses are dropped without a word.
    pub(super) fn refuse_inbound(&mut self, stanza: &Element) {
        let answer = match stanza.name() {
            "message" => true,
            "iq" => matches!(stanza.attr("type"), Some("get" | "set")),
            _ => false,
        };
        if answer {
            self.bounce_with(stanza, StanzaErrorCondition::ServiceUnavailable);
        }
    }

    /// XEP-0191 §3.5: the blocklist applies to the account as a whole, so it is checked once,
    /// before any delivery rule; a stopped stanza is refused as [`Self::refuse_inbound`]
    /// says. The privacy lists, which depend on the receiving resource, are applied where
    /// the recipients are known ([`Self::admitted`]).
    pub(super) fn inbound_allowed(&mut self, stanza: &Stanza) -> bool {
        let h = stanza.header();
        let (Some(to), Some(from)) = (h.to.clone(), h.from.clone()) else {
            return true;
        };
        if to.node().is_none() {
            return true;
        }
        let user = to.to_bare();
        let Some(account) = self.privacy.get(user.as_str()) else {
            return true;
        };
        if from.to_bare() == user {
            return true;
        }
        // The blocklist names no kind: it stops everything.
        if !account.blocks(&from) {
            return true;
        }
        self.refuse_inbound(&stanza.to_element());
        false
    }

    /// Whether a stanza a session sends may leave (XEP-0191 §3.6; XEP-0016 §2.11 for
    /// availability presence, §2.13 for everything else, subscription presence included,
    /// which only items naming no kind stop): a stopped one is answered `not-acceptable`
    /// (§2.14; with `<blocked/>` when the blocklist stopped it), and false is returned.
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
        let traffic = match stanza {
            Stanza::Presence(p)
                if matches!(p.presence_type, None | Some(PresenceType::Unavailable)) =>
            {
                Traffic::Named(Kind::PresenceOut)
            }
            _ => Traffic::Other,
        };
        let (action, by_blocklist) = self.judge(store, &from.to_bare(), Some(from), &to, traffic);
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
}

#[cfg(test)]
mod tests {
    use xmpp_jid::Jid;

    use xmpp_jid::BareJid;

    use super::{Account, CompiledList, TRAFFIC};
    use crate::privacy::{Action, Kind, Matcher, PrivacyData, PrivacyList, Rule, Traffic};
    use crate::store::RosterEntry;
    use crate::subscription::{State, Subscription};

    /// A small deterministic generator (xorshift).
    struct Gen(u64);

    impl Gen {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap()
        }
    }

    #[test]
    fn a_compiled_list_gives_the_verdict_of_its_rules() {
        let jids: Vec<Jid> = [
            "a@x", "a@x/r", "a@x/s", "b@x", "x", "x/r", "y", "c@y/r", "c@y", "b@x/r",
        ]
        .iter()
        .map(|j| Jid::new(j).unwrap())
        .collect();
        let groups = ["g", "h", "i"];
        let subscriptions = [
            Subscription::None,
            Subscription::To,
            Subscription::From,
            Subscription::Both,
        ];
        let states = [
            State::None,
            State::To,
            State::From,
            State::Both,
            State::NonePendingIn,
        ];
        let kinds = [Kind::Message, Kind::Iq, Kind::PresenceIn, Kind::PresenceOut];
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for _ in 0..300 {
            let len = g.below(12);
            let rules: Vec<Rule> = (0..len)
                .map(|order| {
                    let matcher = match g.below(4) {
                        0 => Matcher::All,
                        1 | 2 => Matcher::Jid(jids[g.below(jids.len())].clone()),
                        3 if g.below(2) == 0 => Matcher::Group(groups[g.below(3)].to_owned()),
                        _ => Matcher::Subscription(subscriptions[g.below(4)]),
                    };
                    let action = if g.below(2) == 0 {
                        Action::Allow
                    } else {
                        Action::Deny
                    };
                    let named: Vec<Kind> =
                        kinds.iter().copied().filter(|_| g.below(3) == 0).collect();
                    Rule::new(matcher, action, u32::try_from(order).unwrap()).only(&named)
                })
                .collect();
            let list = PrivacyList {
                name: "l".to_owned(),
                rules,
            };
            let compiled = CompiledList::new(&list);
            for peer in &jids {
                for _ in 0..4 {
                    let entry = (g.below(4) != 0).then(|| {
                        let mut e = RosterEntry::new(BareJid::new(peer.bare_str()).unwrap());
                        e.in_roster = g.below(3) != 0;
                        e.groups = groups
                            .iter()
                            .filter(|_| g.below(2) == 0)
                            .map(|g| (*g).to_owned())
                            .collect();
                        e.state.state = states[g.below(states.len())];
                        e
                    });
                    for traffic in TRAFFIC {
                        assert_eq!(
                            compiled.verdict(&list, traffic, peer, entry.as_ref()),
                            list.verdict(traffic, peer, entry.as_ref()),
                            "{list:?} {peer} {entry:?} {traffic:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_blocklist_index_gives_the_verdict_of_the_blocklist_rules() {
        let jids = [
            "a@x", "a@x/r", "a@x/s", "b@x", "x", "x/r", "y", "c@y/r", "c@y", "z/r", "d@z", "A@X",
            "w@x", "x/a@b",
        ];
        let jids: Vec<Jid> = jids.iter().map(|j| Jid::new(j).unwrap()).collect();
        let traffic = [
            Traffic::Other,
            Kind::Message.into(),
            Kind::Iq.into(),
            Kind::PresenceIn.into(),
            Kind::PresenceOut.into(),
        ];
        // Every subset of a few blocked JIDs of each form, against every peer.
        for mask in 0u32..(1 << 9) {
            let blocked: Vec<Jid> = [0, 1, 3, 4, 5, 6, 7, 9, 10]
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask & (1 << bit) != 0)
                .map(|(_, i)| jids[*i].clone())
                .collect();
            let rules = PrivacyList::blocklist(&blocked);
            let account = Account::from_data(PrivacyData {
                blocked,
                ..PrivacyData::default()
            });
            for peer in &jids {
                for t in traffic {
                    let denied = rules.verdict(t, peer, None) == Some(Action::Deny);
                    assert_eq!(account.blocks(peer), denied, "{peer} {mask:#b}");
                }
            }
        }
    }
}
