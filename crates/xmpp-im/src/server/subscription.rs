//! Subscriptions (RFC 6121 §3): outbound requests, approvals, cancellations and
//! pre-approvals (§3.1-§3.4) and their inbound counterparts, applied to the roster entry
//! through the state machine of [`crate::subscription`] (Appendix A).

use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use super::Server;
use super::presence::addressed;
use crate::privacy::Traffic;
use crate::stanza::Presence;
use crate::store::{RosterEntry, RosterStore};
use crate::subscription::{StanzaFate, SubscriptionKind};

impl Server {
    pub(super) fn outbound_subscription(
        &mut self,
        store: &mut impl RosterStore,
        user: &BareJid,
        contact: &BareJid,
        kind: SubscriptionKind,
        mut p: Presence,
    ) {
        if user == contact {
            return;
        }
        let mut entry = store
            .entry(user, contact)
            .unwrap_or_else(|| RosterEntry::new(contact.clone()));
        let t = entry.state.outbound(kind, self.config.pre_approval);
        let was_in_roster = entry.in_roster;
        // §3.1.2: a request creates the roster item; §3.1.5 / §3.4.1: so do an approval and
        // a pre-approval.
        if kind == SubscriptionKind::Subscribe
            || (kind == SubscriptionKind::Subscribed && t.state != entry.state)
        {
            entry.in_roster = true;
        }
        if !was_in_roster && entry.in_roster && self.roster_full(store, user) {
            // The item cannot be created (§2.3.3's limit): nothing changes, and the session
            // learns why.
            if let Some(Ok(session)) = p.header.from.clone().map(FullJid::try_from) {
                let el = p.to_element();
                let reply = StanzaError::new(StanzaErrorCondition::NotAcceptable).reply_to(&el);
                self.deliver(&session, reply);
            }
            return;
        }
        entry.state = t.state;
        Self::save(store, user, &entry);
        if t.roster_push || entry.in_roster != was_in_roster {
            self.push(store, user, entry.item());
        }
        if t.revoke_presence {
            // §3.2.2: `unavailable` from every online resource *before* the `unsubscribed`,
            // so the contact's server learns the user went away while it still routes the
            // user's presence.
            self.presence_to_contact(store, user, contact, false);
        }
        if t.fate == StanzaFate::Route {
            // §3.1.2: stamped with the user's bare JID, addressed to the contact's bare JID.
            p.header.from = Some(user.clone().into());
            p.header.to = Some(contact.clone().into());
            self.route(p.into());
        }
        self.after_transition(store, user, contact, t.share_presence, false);
    }

    pub(super) fn inbound_subscription(
        &mut self,
        store: &mut impl RosterStore,
        user: &BareJid,
        from: &Jid,
        kind: SubscriptionKind,
        mut p: Presence,
    ) {
        let contact = &from.to_bare();
        if user == contact {
            return;
        }
        // XEP-0016 §2.13: only items naming no kind stop subscription presence (§2.10's note
        // keeps it out of presence-in). It is the account's business, delivered to the
        // available resources: each resource's list in force decides whether that resource
        // sees it, and it is dropped (never an error, §2.14) when every one of them refuses
        // it, or, with none available, when the default list does.
        let available = self.available_sessions(user);
        let none_available = available.is_empty();
        let receivers = self.admitted(store, user, from, Traffic::Other, available);
        let admitted = if none_available {
            self.lets_through(store, user, None, from, Traffic::Other)
        } else {
            !receivers.is_empty()
        };
        if !admitted {
            return;
        }
        let existing = store.entry(user, contact);
        if existing.is_none()
            && kind == SubscriptionKind::Subscribe
            && store.entries(user).iter().filter(|e| !e.in_roster).count()
                >= self.config.max_pending_requests
        {
            // Requests from strangers are stored until answered: bounded, so a flood of
            // subscribe stanzas from fresh JIDs cannot grow the account's storage. Beyond the
            // bound they are dropped, as if lost.
            return;
        }
        let mut entry = existing.unwrap_or_else(|| RosterEntry::new(contact.clone()));
        let t = entry.state.inbound(kind);
        entry.state = t.state;
        // §3.1.3 etc.: delivered from the contact's bare JID to every available resource.
        p.header.from = Some(contact.clone().into());
        p.header.to = Some(user.clone().into());
        let el = p.to_element();
        if t.fate == StanzaFate::Deliver && kind == SubscriptionKind::Subscribe {
            // §3.1.3: a request waits in the pending-in state as the complete stanza, to be
            // delivered as such on the next login.
            entry.request = Some(el.clone());
        }
        Self::save(store, user, &entry);
        if t.roster_push && entry.in_roster {
            self.push(store, user, entry.item());
        }
        if t.fate == StanzaFate::Deliver {
            let el = std::sync::Arc::new(el);
            for r in receivers {
                self.deliver(&r, std::sync::Arc::clone(&el));
            }
        }
        if let Some(reply) = t.auto_reply {
            let r = addressed(reply.into(), user.clone(), contact.clone());
            self.route(r.into());
        }
        self.after_transition(store, user, contact, t.share_presence, t.revoke_presence);
    }

    fn after_transition(
        &mut self,
        store: &impl RosterStore,
        user: &BareJid,
        contact: &BareJid,
        share: bool,
        revoke: bool,
    ) {
        if share {
            self.presence_to_contact(store, user, contact, true);
        }
        if revoke {
            self.presence_to_contact(store, user, contact, false);
        }
    }

    fn save(store: &mut impl RosterStore, user: &BareJid, entry: &RosterEntry) {
        if entry.is_empty() {
            store.delete(user, &entry.jid);
        } else if entry.request.is_some() && !entry.state.state.pending_in() {
            // Answered (or cancelled): the stored request is done with.
            store.put(
                user,
                RosterEntry {
                    request: None,
                    ..entry.clone()
                },
            );
        } else {
            store.put(user, entry.clone());
        }
    }
}
