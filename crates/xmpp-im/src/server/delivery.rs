//! Inbound stanzas to a local account (RFC 6121 §8.5): messages by the §8.5 decision of
//! [`crate::delivery`], presence to the available resources (§8.5.2.1.2, §8.5.3), iqs answered
//! on the account's behalf or delivered to the resource (§8.5.2.1.3, §8.5.3.1), and the
//! missing-account rules of §8.5.1.

use std::sync::Arc;

use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use super::sessions::Session;
use super::{Output, Server};
use crate::delivery::{MessageDecision, Recipients, message_decision};
use crate::privacy::Kind;
use crate::roster::NS_ROSTER;
use crate::stanza::{Iq, Message, MessageType, Presence, PresenceType};
use crate::store::RosterStore;

impl Server {
    /// The §8.5 decision for a message to `to` of type `kind`, without acting on it. Allocates
    /// nothing when the account is online; otherwise asks `store` whether it exists.
    pub fn message_decision(
        &self,
        store: &impl RosterStore,
        to: &Jid,
        kind: MessageType,
    ) -> MessageDecision {
        let sessions = self.sessions.get(to.bare_str());
        let exists = sessions.is_some() || store.account_exists(&to.to_bare());
        let empty: &[Session] = &[];
        let view = exists.then(|| sessions.map_or(empty, Vec::as_slice));
        message_decision(self.config.delivery, view, to.resource(), kind)
    }

    /// A message for a local account, after the blocklist: the §8.5 decision, then the
    /// privacy list in force for each recipient (XEP-0016 §2.2): a resource whose list
    /// denies it does not get it, and if none is left (or the default list refuses what
    /// would go offline) the sender gets `service-unavailable` (§2.14).
    /// With `shared`, `m` is the header of a message that arrived as an envelope: its
    /// recipients get the bytes, offline storage the element they rebuild, and refusals and
    /// bounces (which read only the header) are answered from `m`.
    pub(super) fn inbound_message(
        &mut self,
        store: &mut impl RosterStore,
        to: &Jid,
        m: Message,
        shared: Option<&super::routing::Shared>,
    ) {
        let user = to.to_bare();
        let from = m.header.from.clone();
        match self.message_decision(store, to, m.kind()) {
            MessageDecision::Deliver(recipients) => {
                let mut targets = self.recipients(to, recipients);
                if let Some(from) = &from {
                    targets = self.admitted(store, &user, from, Kind::Message, targets);
                }
                if let Some(shared) = shared {
                    if targets.is_empty() {
                        self.refuse_inbound(&m.into_element());
                    }
                    for t in targets {
                        self.forward(&t, shared, to);
                    }
                    return;
                }
                let el = Arc::new(m.into_element());
                if targets.is_empty() {
                    self.refuse_inbound(&el);
                }
                for t in targets {
                    self.deliver(&t, Arc::clone(&el));
                }
            }
            MessageDecision::Offline
                if from
                    .as_ref()
                    .is_some_and(|f| !self.lets_through(store, &user, None, f, Kind::Message)) =>
            {
                self.refuse_inbound(&m.into_element());
            }
            MessageDecision::Offline => {
                // Stored whole: from the bytes when it came as an envelope.
                let stanza = match shared {
                    Some(s) => s.element(to),
                    None => Some(m.into_element()),
                };
                if let Some(stanza) = stanza {
                    self.out.push_back(Output::Offline { user, stanza });
                }
            }
            MessageDecision::Bounce(condition) => self.bounce_with(&m.into_element(), condition),
            _ => {}
        }
    }

    pub(super) fn recipients(&self, to: &Jid, recipients: Recipients) -> Vec<FullJid> {
        let Some(list) = self.sessions.get(to.bare_str()) else {
            return Vec::new();
        };
        recipients
            .select(list)
            .filter_map(|i| list.get(i).map(|s| s.jid.clone()))
            .collect()
    }

    pub(super) fn inbound_presence(
        &mut self,
        store: &mut impl RosterStore,
        user: &BareJid,
        to: &Jid,
        p: Presence,
        shared: Option<&super::routing::Shared>,
    ) {
        let Some(from) = p.header.from.clone() else {
            return;
        };
        if !store.account_exists(user) {
            // §8.5.1: presence to a missing account is silently ignored, except that a probe
            // gets `unsubscribed` (§4.3.2 step 1, one of the two answers §8.5.1 allows).
            if p.presence_type == Some(PresenceType::Probe) {
                self.answer_probe(store, user, &from);
            }
            return;
        }
        match p.presence_type {
            Some(PresenceType::Probe) => self.answer_probe(store, user, &from),
            Some(t) => {
                if let Some(kind) = t.subscription_kind() {
                    self.inbound_subscription(store, user, &from, kind, p);
                } else {
                    self.deliver_presence(store, user, &from, to, &p, shared);
                }
            }
            None => self.deliver_presence(store, user, &from, to, &p, shared),
        }
    }

    /// §8.5.2.1.2 / §8.5.3: availability presence to the bare JID reaches every available
    /// resource, to a full JID only that resource; otherwise it is dropped (§8.5.2.2.2,
    /// §8.5.3.2.2). Each recipient's privacy list judges it (XEP-0016 §2.10, presence-in).
    /// A copy of a session's envelope (`shared`) reaches them as its bytes.
    fn deliver_presence(
        &mut self,
        store: &impl RosterStore,
        user: &BareJid,
        from: &Jid,
        to: &Jid,
        p: &Presence,
        shared: Option<&super::routing::Shared>,
    ) {
        let Some(list) = self.sessions.get(to.bare_str()) else {
            return;
        };
        let targets: Vec<FullJid> = match to.resource() {
            None => list
                .iter()
                .filter(|s| s.available)
                .map(|s| s.jid.clone())
                .collect(),
            Some(r) => list
                .iter()
                .filter(|s| s.jid.resource() == r)
                .map(|s| s.jid.clone())
                .collect(),
        };
        let targets = self.admitted(store, user, from, Kind::PresenceIn, targets);
        if let Some(shared) = shared {
            for t in targets {
                self.deliver_shared(&t, Some(shared), to, || p.to_element());
            }
            return;
        }
        let el = Arc::new(p.to_element());
        for t in targets {
            self.deliver(&t, Arc::clone(&el));
        }
    }

    pub(super) fn inbound_iq(
        &mut self,
        store: &mut impl RosterStore,
        user: &BareJid,
        to: &Jid,
        iq: Iq,
    ) {
        let request = iq.request_payload().is_some();
        if !store.account_exists(user) {
            // §8.5.1: an iq to a missing account gets service-unavailable.
            if request {
                self.route(
                    iq.error(StanzaError::new(StanzaErrorCondition::ServiceUnavailable))
                        .into(),
                );
            }
            return;
        }
        // XEP-0016 §2.12: judged by the list in force for the resource addressed, or by the
        // default when the server answers for the account (a bare JID, a resource not
        // connected).
        let session = to.resource().and_then(|r| {
            self.resources_of(user)
                .find(|s| s.jid.resource() == r)
                .map(|s| s.jid.clone())
        });
        if let Some(from) = &iq.header.from
            && !self.lets_through(store, user, session.as_ref(), from, Kind::Iq)
        {
            self.refuse_inbound(&iq.to_element());
            return;
        }
        match to.resource() {
            None => {
                // §8.5.2.1.3 / §8.5.2.2.3: the server answers on the account's behalf. Only
                // the account itself may touch its roster (§2.1.5 / §2.3.3).
                if iq
                    .request_payload()
                    .is_some_and(|p| p.is("query", NS_ROSTER))
                {
                    self.route(
                        iq.error(StanzaError::new(StanzaErrorCondition::Forbidden))
                            .into(),
                    );
                } else {
                    self.out.push_back(Output::Unhandled(iq.into_element()));
                }
            }
            Some(r) => {
                let target = self
                    .resources_of(user)
                    .find(|s| s.jid.resource() == r)
                    .map(|s| s.jid.clone());
                match target {
                    // §8.5.3.1: delivered to the connected or available resource.
                    Some(t) => self.deliver(&t, iq.into_element()),
                    // §8.5.3.2.3: service-unavailable for requests; responses are dropped.
                    None if request => self.route(
                        iq.error(StanzaError::new(StanzaErrorCondition::ServiceUnavailable))
                            .into(),
                    ),
                    None => {}
                }
            }
        }
    }
}
