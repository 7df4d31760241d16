//! Presence (RFC 6121 §4): a session's outbound presence sorted into subscription requests
//! (§3), initial and updated availability (§4.2, §4.4), unavailability (§4.5) and directed
//! presence (§4.6); answers to probes (§4.3.2); presence shared with or revoked from a
//! contact whose subscription changed.

use std::collections::BTreeSet;
use std::sync::Arc;

use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use super::routing::Shared;
use super::sessions::Session;
use super::{Output, Relay, Server};
use crate::privacy::{Kind, Traffic};
use crate::stanza::{Presence, PresenceType};
use crate::store::RosterStore;

impl Server {
    pub(super) fn outbound_presence(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        p: Presence,
        shared: Option<&Shared>,
    ) {
        let user = from.to_bare();
        match (p.presence_type, p.header.to.clone()) {
            (Some(t), Some(to)) if t.subscription_kind().is_some() => {
                if let Some(kind) = t.subscription_kind() {
                    self.outbound_subscription(store, &user, &to.to_bare(), kind, p);
                }
            }
            (None, None) => self.go_available(store, from, p, shared),
            (Some(PresenceType::Unavailable), None) => {
                self.go_unavailable(store, from, p, true, shared);
            }
            (None | Some(PresenceType::Unavailable), Some(to)) => {
                self.directed_presence(from, &to, p, shared);
            }
            (Some(PresenceType::Error), Some(_)) => self.route(p.into()),
            // Probes are the servers' business (§4.3); other combinations mean nothing.
            _ => {}
        }
    }

    /// §4.6: presence sent to one entity; an available one is remembered so that the
    /// entity gets `unavailable` when the session ends.
    fn directed_presence(
        &mut self,
        from: &FullJid,
        to: &Jid,
        p: Presence,
        shared: Option<&Shared>,
    ) {
        let max = self.config.max_directed;
        let available = p.presence_type.is_none();
        if let Some(s) = self.session_mut(from) {
            if available {
                if s.directed.len() >= max && !s.directed.contains(to) {
                    let el = p.to_element();
                    let reply =
                        StanzaError::new(StanzaErrorCondition::PolicyViolation).reply_to(&el);
                    self.deliver(from, reply);
                    return;
                }
                s.directed.insert(to.clone());
            } else {
                s.directed.remove(to);
            }
        }
        if shared.is_some() {
            self.presence_copy_to(&p, shared, to.clone());
        } else {
            self.route(p.into());
        }
    }

    /// Sends the session's presence `p` on to `to`. When it arrived as an envelope and goes
    /// to a local account, only its header and type are copied (the recipients get the
    /// shared bytes, [`Server::route_shared`]); otherwise a typed copy goes.
    fn presence_copy_to(&mut self, p: &Presence, shared: Option<&Shared>, to: Jid) {
        match shared {
            Some(shared) if to.node().is_some() && self.is_local(to.domain()) => {
                let mut head = Presence::new(p.presence_type);
                head.header.from.clone_from(&p.header.from);
                head.header.to = Some(to);
                self.route_shared(head.into(), shared.clone());
            }
            // Out of the served domains: the same bytes, to the component or peer server.
            Some(shared) if !self.is_local(to.domain()) => {
                self.out.push_back(Output::Relay(Relay {
                    envelope: Arc::clone(&shared.envelope),
                    from: shared.from.clone(),
                    to,
                }));
            }
            _ => {
                // `p` may hold no payloads when it was read from the bytes: the whole
                // presence is typed from them.
                let mut copy = shared
                    .and_then(Shared::presence)
                    .unwrap_or_else(|| p.clone());
                copy.header.to = Some(to);
                self.route(copy.into());
            }
        }
    }

    /// Sends the stored presence `p` of a session (with its bytes when it arrived as an
    /// envelope) to `to`, as [`Self::presence_copy_to`] does.
    pub(super) fn stored_presence_to(&mut self, mut p: Presence, bytes: Option<Shared>, to: Jid) {
        if let Some(bytes) = bytes {
            self.presence_copy_to(&p, Some(&bytes), to);
        } else {
            p.header.to = Some(to);
            self.route(p.into());
        }
    }

    /// The current presence of each session of `user` that `pick` keeps, with its bytes.
    fn stored_presences(
        &self,
        user: &BareJid,
        pick: impl Fn(&Session) -> bool,
    ) -> Vec<(Presence, Option<Shared>)> {
        self.resources_of(user)
            .filter(|s| pick(s))
            .filter_map(|s| Some((s.presence.clone()?, s.presence_bytes.clone())))
            .collect()
    }

    /// Delivers the session's presence `p` to the user's own resource `r` (as the shared
    /// bytes when it arrived as an envelope).
    fn presence_to_own(&mut self, p: &Presence, shared: Option<&Shared>, r: &FullJid) {
        let to: Jid = r.clone().into();
        self.deliver_shared(r, shared, &to, || {
            let mut copy = p.clone();
            copy.header.to = Some(to.clone());
            copy.to_element()
        });
    }

    /// §4.2: initial or updated available presence.
    fn go_available(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        mut p: Presence,
        shared: Option<&Shared>,
    ) {
        let user = from.to_bare();
        p.header.from = Some(from.clone().into());
        p.header.to = None;
        let Some(s) = self.session_mut(from) else {
            return;
        };
        let initial = !s.available;
        s.available = true;
        s.priority = p.effective_priority();
        s.presence = Some(p.clone());
        s.presence_bytes = shared.cloned();
        let entries = store.entries(&user);
        // §4.2.2 / §4.4.2: to every contact with a subscription from the user...
        let subscribers: Vec<&crate::store::RosterEntry> = entries
            .iter()
            .filter(|e| e.state.state.subscription().has_from())
            .filter(|e| {
                self.lets_through(
                    store,
                    &user,
                    Some(from),
                    &e.jid.clone().into(),
                    Kind::PresenceOut,
                )
            })
            .collect();
        for e in subscribers {
            self.presence_copy_to(&p, shared, e.jid.clone().into());
        }
        // ... and to each of the user's available resources, the sender included.
        for r in self.available_sessions(&user) {
            self.presence_to_own(&p, shared, &r);
        }
        if initial {
            // §4.2.2: probe the contacts the user is subscribed to.
            for e in entries
                .iter()
                .filter(|e| e.state.state.subscription().has_to())
            {
                let probe = addressed(PresenceType::Probe, user.clone(), e.jid.clone());
                self.route(probe.into());
            }
            // §4.2.2: the new resource learns about the user's other available resources.
            let others = self.stored_presences(&user, |o| o.available && &o.jid != from);
            let to: Jid = from.clone().into();
            for (mut o, bytes) in others {
                self.deliver_shared(from, bytes.as_ref(), &to, || {
                    o.header.to = Some(to.clone());
                    o.to_element()
                });
            }
            // §3.1.3: requests that arrived while the user was offline are delivered now.
            // The complete stanza as it arrived (extended content included).
            for e in entries.iter().filter(|e| e.state.state.pending_in()) {
                let req = e.request.clone().unwrap_or_else(|| {
                    addressed(PresenceType::Subscribe, e.jid.clone(), user.clone()).to_element()
                });
                self.deliver(from, req);
            }
        }
    }

    /// §4.5: unavailable presence, broadcast to the subscribers, the user's resources and
    /// the recipients of directed presence.
    pub(super) fn go_unavailable(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        mut p: Presence,
        to_self: bool,
        shared: Option<&Shared>,
    ) {
        let user = from.to_bare();
        p.header.from = Some(from.clone().into());
        p.header.to = None;
        p.presence_type = Some(PresenceType::Unavailable);
        let Some(s) = self.session_mut(from) else {
            return;
        };
        let directed = core::mem::take(&mut s.directed);
        if !s.available {
            // Never broadcast: only the recipients of directed presence are owed (§4.6.3).
            for to in directed {
                self.presence_copy_to(&p, shared, to);
            }
            return;
        }
        let mut recipients = self.available_sessions(&user);
        if !to_self {
            recipients.retain(|r| r != from);
        }
        if let Some(s) = self.session_mut(from) {
            s.available = false;
            s.priority = 0;
            s.presence = None;
            s.presence_bytes = None;
        }
        let mut sent: BTreeSet<Jid> = BTreeSet::new();
        for e in store
            .entries(&user)
            .into_iter()
            .filter(|e| e.state.state.subscription().has_from())
        {
            let to: Jid = e.jid.into();
            sent.insert(to.clone());
            self.presence_copy_to(&p, shared, to);
        }
        for to in directed {
            if sent.contains(&to) || sent.contains(&Jid::from(to.to_bare())) {
                continue;
            }
            self.presence_copy_to(&p, shared, to);
        }
        for r in recipients {
            self.presence_to_own(&p, shared, &r);
        }
    }

    /// §4.3.2: a probe of `user` from `prober`. A probe is no presence notification: only
    /// items naming no kind stop it (XEP-0016 §2.13), and a stopped probe gets no answer at
    /// all (§2.14). Each available resource's presence goes out only if that resource's list
    /// in force lets both the probe and its presence-out through (§2.2, §2.11).
    pub(super) fn answer_probe(&mut self, store: &impl RosterStore, user: &BareJid, prober: &Jid) {
        let contact = prober.to_bare();
        let allowed = store
            .entry(user, &contact)
            .is_some_and(|e| e.state.state.subscription().has_from());
        if !allowed {
            // Not subscribed: the account answers, by its default list. Presence is not
            // revealed; the prober learns it is not subscribed.
            if self.lets_through(store, user, None, prober, Traffic::Other) {
                let p = addressed(PresenceType::Unsubscribed, user.clone(), contact);
                self.route(p.into());
            }
            return;
        }
        let answers = |s: Option<&FullJid>| {
            self.lets_through(store, user, s, prober, Traffic::Other)
                && self.lets_through(store, user, s, prober, Kind::PresenceOut)
        };
        let available: Vec<&Session> = self.resources_of(user).filter(|s| s.available).collect();
        let presences: Vec<(Presence, Option<Shared>)> = available
            .iter()
            .filter(|s| answers(Some(&s.jid)))
            .filter_map(|s| Some((s.presence.clone()?, s.presence_bytes.clone())))
            .collect();
        if presences.is_empty() && (!available.is_empty() || !answers(None)) {
            // Blocked for every available resource (or, with none, by the default list):
            // nothing is revealed.
            return;
        }
        if presences.is_empty() {
            let p = addressed(PresenceType::Unavailable, user.clone(), prober.clone());
            self.route(p.into());
        }
        for (p, bytes) in presences {
            self.stored_presence_to(p, bytes, prober.clone());
        }
    }

    /// Sends the current presence of each available resource (share: those whose list in
    /// force lets presence out to the contact, XEP-0016 §2.11) or `unavailable` from each
    /// (revoke) to a contact whose `from` subscription just changed.
    pub(super) fn presence_to_contact(
        &mut self,
        store: &impl RosterStore,
        user: &BareJid,
        contact: &BareJid,
        share: bool,
    ) {
        let to: Jid = contact.clone().into();
        let presences: Vec<(Presence, Option<Shared>)> = self
            .resources_of(user)
            .filter(|s| s.available)
            .filter(|s| {
                !share || self.lets_through(store, user, Some(&s.jid), &to, Kind::PresenceOut)
            })
            .filter_map(|s| {
                if share {
                    Some((s.presence.clone()?, s.presence_bytes.clone()))
                } else {
                    let mut p = Presence::new(Some(PresenceType::Unavailable));
                    p.header.from = Some(s.jid.clone().into());
                    Some((p, None))
                }
            })
            .collect();
        for (p, bytes) in presences {
            self.stored_presence_to(p, bytes, to.clone());
        }
    }
}

/// A presence of type `kind` from `from` to `to`, with nothing else: what the server itself
/// sends on the account's behalf (probes, subscription answers, `unavailable`).
pub(super) fn addressed(kind: PresenceType, from: impl Into<Jid>, to: impl Into<Jid>) -> Presence {
    let mut p = Presence::new(Some(kind));
    p.header.from = Some(from.into());
    p.header.to = Some(to.into());
    p
}
