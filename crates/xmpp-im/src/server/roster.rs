//! The roster (RFC 6121 §2): get with versioning (§2.1.3, §2.6), set to add or update an
//! item (§2.3, §2.4), remove (§2.5), and roster pushes to the interested resources (§2.1.6).

use minidom::Element;
use xmpp_jid::{BareJid, FullJid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use super::Server;
use super::presence::addressed;
use crate::roster::{RosterError, RosterItem, RosterQuery};
use crate::stanza::{Iq, IqPayload};
use crate::store::{RosterEntry, RosterStore};
use crate::subscription::SubscriptionKind;

impl Server {
    /// §2.1.6: a roster push to every interested resource, with a new version (§2.6).
    pub(super) fn push(&mut self, store: &mut impl RosterStore, user: &BareJid, item: RosterItem) {
        let version = store.version(user).saturating_add(1);
        store.set_version(user, version);
        let query = RosterQuery {
            ver: self.config.roster_versioning.then(|| version.to_string()),
            items: vec![item],
        }
        .to_element();
        self.push_to_all(user, &query, |s| s.interested);
    }

    pub(super) fn roster_iq(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        user: &BareJid,
        iq: &Iq,
    ) {
        let result = match &iq.payload {
            IqPayload::Get(q) => self.roster_get(store, from, user, q),
            IqPayload::Set(q) => self.roster_set(store, user, q),
            _ => return,
        };
        self.answer_own(from, iq, result);
    }

    /// The answer to an iq of a session to its own account (roster, privacy, blocking): a
    /// result with the payload or the error, addressed to the session, with no `from`.
    pub(super) fn answer_own(
        &mut self,
        from: &FullJid,
        iq: &Iq,
        result: Result<Option<Element>, StanzaErrorCondition>,
    ) {
        let mut reply = match result {
            Ok(payload) => iq.result(payload),
            Err(e) => iq.error(StanzaError::new(e)),
        };
        reply.header.from = None;
        reply.header.to = Some(from.clone().into());
        self.deliver(from, reply.to_element());
    }

    /// §2.3.3: the roster has as many items as the server allows.
    pub(super) fn roster_full(&self, store: &impl RosterStore, user: &BareJid) -> bool {
        store.entries(user).iter().filter(|e| e.in_roster).count() >= self.config.max_roster_items
    }

    /// §2.1.3 / §2.6: the roster, or an empty result when the client's version is current.
    fn roster_get(
        &mut self,
        store: &impl RosterStore,
        from: &FullJid,
        user: &BareJid,
        q: &Element,
    ) -> Result<Option<Element>, StanzaErrorCondition> {
        let query = RosterQuery::from_element(q).map_err(RosterError::condition)?;
        if !query.items.is_empty() {
            return Err(StanzaErrorCondition::BadRequest);
        }
        if let Some(s) = self.session_mut(from) {
            s.interested = true;
        }
        let version = store.version(user).to_string();
        // §2.6 is optional: switched off, no `ver` either way and the whole roster each time.
        if self.config.roster_versioning && query.ver.as_deref() == Some(version.as_str()) {
            return Ok(None);
        }
        let items = store
            .entries(user)
            .into_iter()
            .filter(|e| e.in_roster)
            .map(|e| e.item())
            .collect();
        Ok(Some(
            RosterQuery {
                ver: self.config.roster_versioning.then_some(version),
                items,
            }
            .to_element(),
        ))
    }

    /// §2.3 / §2.4 / §2.5: add, update or remove one item.
    fn roster_set(
        &mut self,
        store: &mut impl RosterStore,
        user: &BareJid,
        q: &Element,
    ) -> Result<Option<Element>, StanzaErrorCondition> {
        let query = RosterQuery::from_element(q).map_err(RosterError::condition)?;
        let [item] = query.items.as_slice() else {
            return Err(RosterError::ItemCount.condition());
        };
        // RFC 6121 §2.1.2.5 and §2.1.5: in a roster set the server MUST ignore every
        // 'subscription' value other than "remove"; the state stays the server's to decide.
        if &item.jid == user {
            return Err(StanzaErrorCondition::NotAllowed);
        }
        let existing = store.entry(user, &item.jid);
        if item.remove {
            let Some(entry) = existing.filter(|e| e.in_roster || e.state.state.pending_in()) else {
                return Err(StanzaErrorCondition::ItemNotFound); // §2.5.3
            };
            self.remove_item(store, user, &entry);
            return Ok(None);
        }
        let too_long = |s: &str| s.len() > self.config.max_text_len;
        if item.name.as_deref().is_some_and(too_long) || item.groups.iter().any(|g| too_long(g)) {
            return Err(RosterError::TooLong.condition());
        }
        if item.groups.len() > self.config.max_groups {
            return Err(RosterError::TooManyGroups.condition());
        }
        let mut entry = existing.unwrap_or_else(|| RosterEntry::new(item.jid.clone()));
        if !entry.in_roster && self.roster_full(store, user) {
            return Err(RosterError::RosterFull.condition());
        }
        entry.name.clone_from(&item.name);
        entry.groups.clone_from(&item.groups);
        entry.in_roster = true;
        store.put(user, entry.clone());
        self.push(store, user, entry.item());
        Ok(None)
    }

    /// §2.5.2: removing an item cancels both subscriptions and any pending request.
    fn remove_item(&mut self, store: &mut impl RosterStore, user: &BareJid, entry: &RosterEntry) {
        let state = entry.state.state;
        let contact = entry.jid.clone();
        let send = |kind: SubscriptionKind| addressed(kind.into(), user.clone(), contact.clone());
        let mut stanzas = Vec::new();
        if state.subscription().has_to() || state.pending_out() {
            stanzas.push(send(SubscriptionKind::Unsubscribe));
        }
        if state.subscription().has_from() || state.pending_in() {
            stanzas.push(send(SubscriptionKind::Unsubscribed));
        }
        if state.subscription().has_from() {
            self.presence_to_contact(store, user, &contact, false);
        }
        store.delete(user, &contact);
        let item = RosterItem {
            remove: true,
            ..RosterItem::new(contact)
        };
        self.push(store, user, item);
        for p in stanzas {
            self.route(p.into());
        }
    }
}
