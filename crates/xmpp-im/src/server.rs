//! The server side of RFC 6121: roster processing (§2), subscriptions (§3), presence (§4) and
//! delivery (§8), as one Sans-IO machine.
//!
//! The host feeds it stanzas from local sessions ([`Server::handle_session_stanza`]) and from
//! remote servers ([`Server::handle_remote_stanza`]), tells it when sessions start and end, and
//! drains [`Server::poll_output`]: stanzas to deliver to a local session, to route to a remote
//! domain, to store offline, or addressed to the server for the host's other services. Roster
//! and subscription state lives in the host's [`RosterStore`]; only session state (who is
//! online, with which presence, and who got directed presence) lives in the machine. Stanzas
//! between two local accounts are processed inside the same call.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, DefaultHasher};

use minidom::Element;
use xmpp_jid::{BareJid, FullJid, Jid};
use xmpp_xml::{StanzaError, StanzaErrorCondition};

use crate::delivery::{DeliveryPolicy, MessageDecision, Recipients, SessionInfo, message_decision};
use crate::roster::{NS_ROSTER, RosterError, RosterItem, RosterQuery};
use crate::stanza::{
    Iq, IqPayload, Message, MessageType, Presence, PresenceType, Stanza, StanzaParseError,
};
use crate::store::{RosterEntry, RosterStore};
use crate::subscription::{StanzaFate, SubscriptionKind};

/// Server configuration: the local domains, and the choices RFC 6121 leaves to servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Domains whose accounts this server hosts; stanzas to other domains are routed out.
    pub domains: BTreeSet<String>,
    /// Support subscription pre-approval (RFC 6121 §3.4).
    pub pre_approval: bool,
    /// Delivery choices of §8.5.
    pub delivery: DeliveryPolicy,
    /// Maximum items in one roster (§2.3.3 `not-acceptable` beyond).
    pub max_roster_items: usize,
    /// Maximum bytes of a roster item name or group name (§2.3.3).
    pub max_text_len: usize,
    /// Maximum groups of one item.
    pub max_groups: usize,
    /// Maximum subscription requests from contacts outside the roster stored for one account
    /// while they await an answer (§3.1.3); further requests from strangers are dropped.
    pub max_pending_requests: usize,
    /// Maximum sessions of one account.
    pub max_sessions: usize,
    /// Maximum entities one session may have sent directed presence to (§4.6).
    pub max_directed: usize,
}

impl ServerConfig {
    /// A configuration hosting `domain`, with defaults for everything else.
    #[must_use]
    pub fn new(domain: &str) -> Self {
        Self {
            domains: BTreeSet::from([domain.to_owned()]),
            pre_approval: true,
            delivery: DeliveryPolicy::default(),
            max_roster_items: 1000,
            max_text_len: 1023,
            max_groups: 64,
            max_pending_requests: 100,
            max_sessions: 64,
            max_directed: 256,
        }
    }
}

/// Something the host must do, in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Send the stanza to this local session.
    Deliver {
        /// The session.
        to: FullJid,
        /// The stanza.
        stanza: Element,
    },
    /// Send the stanza to the remote domain of its `to` address.
    Route(Element),
    /// No resource can take this message now (§8.5.2.2.1): store it for the account, or
    /// bounce it with [`Server::bounce`] if the host keeps no offline storage.
    Offline {
        /// The account.
        user: BareJid,
        /// The message.
        stanza: Element,
    },
    /// A stanza addressed to the server or handled on behalf of an account that this crate
    /// does not process (non-roster iqs: disco, vCard, ...). The host answers it; an iq get or
    /// set it does not know gets `service-unavailable` ([`Iq::unsupported_reply`]).
    Unhandled(Element),
}

/// A mistake of the host (not of the peer): nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// The session does not exist.
    NoSession,
    /// A session with this full JID already exists.
    SessionExists,
    /// The account has the maximum number of sessions.
    TooManySessions,
    /// The JID is not of a local domain.
    NotLocal,
}

impl core::fmt::Display for UsageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoSession => "no such session",
            Self::SessionExists => "session already exists",
            Self::TooManySessions => "too many sessions for the account",
            Self::NotLocal => "not a local JID",
        })
    }
}

impl core::error::Error for UsageError {}

#[derive(Debug, Clone)]
struct Session {
    jid: FullJid,
    available: bool,
    priority: i8,
    /// Requested the roster: receives roster pushes (§2.1.6 "interested resource").
    interested: bool,
    /// The last broadcast presence, stamped with the session's JID.
    presence: Option<Presence>,
    /// Entities that received directed available presence and are owed an unavailable.
    directed: BTreeSet<Jid>,
}

impl SessionInfo for Session {
    fn resource(&self) -> &str {
        self.jid.resource()
    }

    fn available(&self) -> bool {
        self.available
    }

    fn priority(&self) -> i8 {
        self.priority
    }
}

/// The part of a JID string before the resource: a borrowed bare JID.
fn bare_str(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(bare, _)| bare)
}

/// Below this many slots the session table is not worth shrinking.
const MIN_SESSION_CAPACITY: usize = 64;

/// The RFC 6121 server machine. See the module documentation.
#[derive(Debug, Clone)]
pub struct Server {
    config: ServerConfig,
    /// Online accounts by bare JID string: borrowed lookups (no allocation per stanza), one
    /// probe instead of a tree walk of cache misses. `DefaultHasher::new()` has fixed keys, so
    /// runs are reproducible; the map is never iterated.
    sessions: HashMap<String, Vec<Session>, BuildHasherDefault<DefaultHasher>>,
    out: VecDeque<Output>,
    /// Stanzas between local accounts, processed before the call returns.
    local: VecDeque<Stanza>,
    next_push: u64,
}

impl Server {
    /// A server with no sessions.
    #[must_use]
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            sessions: HashMap::default(),
            out: VecDeque::new(),
            local: VecDeque::new(),
            next_push: 0,
        }
    }

    // ---- getters ----

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Whether `domain` is hosted here.
    #[must_use]
    pub fn is_local(&self, domain: &str) -> bool {
        self.config.domains.contains(domain)
    }

    /// Whether the session is available (sent available presence).
    #[must_use]
    pub fn is_available(&self, jid: &FullJid) -> bool {
        self.session(jid).is_some_and(|s| s.available)
    }

    /// The sessions of an account: (full JID, available, priority).
    pub fn sessions_of(&self, user: &BareJid) -> impl Iterator<Item = (&FullJid, bool, i8)> {
        self.sessions
            .get(user.as_str())
            .into_iter()
            .flatten()
            .map(|s| (&s.jid, s.available, s.priority))
    }

    /// The §8.5 decision for a message to `to` of type `kind`, without acting on it. Allocates
    /// nothing when the account is online; otherwise asks `store` whether it exists.
    pub fn message_decision(
        &self,
        store: &impl RosterStore,
        to: &Jid,
        kind: MessageType,
    ) -> MessageDecision {
        let sessions = self.sessions.get(bare_str(to.as_str()));
        let exists = sessions.is_some() || store.account_exists(&to.to_bare());
        let empty: &[Session] = &[];
        let view = exists.then(|| sessions.map_or(empty, Vec::as_slice));
        message_decision(self.config.delivery, view, to.resource(), kind)
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    // ---- session lifecycle ----

    /// A client bound `jid` (a "connected resource", RFC 6120 §7).
    pub fn session_started(&mut self, jid: FullJid) -> Result<(), UsageError> {
        if !self.is_local(jid.domain()) {
            return Err(UsageError::NotLocal);
        }
        let max = self.config.max_sessions;
        let list = self
            .sessions
            .entry(bare_str(jid.as_str()).to_owned())
            .or_default();
        if list.iter().any(|s| s.jid == jid) {
            return Err(UsageError::SessionExists);
        }
        if list.len() >= max {
            return Err(UsageError::TooManySessions);
        }
        list.push(Session {
            jid,
            available: false,
            priority: 0,
            interested: false,
            presence: None,
            directed: BTreeSet::new(),
        });
        Ok(())
    }

    /// The session ended (closed or lost): if it was available, its contacts, the other
    /// resources and directed-presence recipients get `unavailable` (§4.5.2, §4.6.3).
    pub fn session_ended(
        &mut self,
        store: &mut impl RosterStore,
        jid: &FullJid,
    ) -> Result<(), UsageError> {
        if self.session(jid).is_none() {
            return Err(UsageError::NoSession);
        }
        // The ended session itself is gone: it is not among the recipients.
        self.go_unavailable(
            store,
            jid,
            Presence::new(Some(PresenceType::Unavailable)),
            false,
        );
        let key = bare_str(jid.as_str());
        if let Some(list) = self.sessions.get_mut(key) {
            list.retain(|s| &s.jid != jid);
            if list.is_empty() {
                self.sessions.remove(key);
                self.shrink_sessions();
            }
        }
        self.drain_local(store);
        Ok(())
    }

    /// Give back the table a load spike grew (a hash map never shrinks by itself, so a
    /// server would keep the memory of its busiest moment forever). Shrinking to twice the
    /// length once a quarter is in use keeps the cost O(1) amortized per removal.
    fn shrink_sessions(&mut self) {
        let capacity = self.sessions.capacity();
        if capacity > MIN_SESSION_CAPACITY && self.sessions.len() < capacity / 4 {
            self.sessions
                .shrink_to((self.sessions.len() * 2).max(MIN_SESSION_CAPACITY));
        }
    }

    // ---- inputs ----

    /// A stanza from the local session `from`. The server stamps `from` (RFC 6120 §8.1.2.1)
    /// and applies the outbound rules.
    pub fn handle_session_stanza(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        stanza: &Element,
    ) -> Result<(), UsageError> {
        if self.session(from).is_none() {
            return Err(UsageError::NoSession);
        }
        let mut parsed = match Stanza::try_from(stanza) {
            Ok(s) => s,
            Err(e) => {
                if stanza.attr("type") != Some("error") {
                    let reply = e.to_stanza_error().reply_to(stanza);
                    self.deliver(from, reply);
                }
                return Ok(());
            }
        };
        parsed.header_mut().from = Some(from.clone().into());
        match parsed {
            Stanza::Presence(p) => self.outbound_presence(store, from, p),
            Stanza::Message(mut m) => {
                // RFC 6120 §10.3: no `to` means the sender's own bare JID.
                if m.header.to.is_none() {
                    m.header.to = Some(from.to_bare().into());
                }
                self.route(Stanza::Message(m));
            }
            Stanza::Iq(iq) => self.outbound_iq(store, from, iq),
        }
        self.drain_local(store);
        Ok(())
    }

    /// A stanza from a remote server for a local address (its `from` already verified by the
    /// stream layer). Stanzas without `from` or `to`, or to other domains, are dropped.
    pub fn handle_remote_stanza(&mut self, store: &mut impl RosterStore, stanza: &Element) {
        match Stanza::try_from(stanza) {
            Ok(s) => {
                let h = s.header();
                if h.from.is_some() && h.to.as_ref().is_some_and(|t| self.is_local(t.domain())) {
                    self.local.push_back(s);
                }
            }
            // Not a stanza at all: the stream layer's business, nothing to answer.
            Err(StanzaParseError::NotAStanza) => {}
            Err(e) => {
                if stanza.attr("from").is_some() {
                    self.bounce_with(stanza, e.condition());
                }
            }
        }
        self.drain_local(store);
    }

    // ---- commands ----

    /// The `service-unavailable` bounce of a message the host will not store offline
    /// (§8.5.2.2.1). Errors are never bounced; the result is routed like any stanza.
    pub fn bounce(&mut self, store: &mut impl RosterStore, stanza: &Element) {
        self.bounce_with(stanza, StanzaErrorCondition::ServiceUnavailable);
        self.drain_local(store);
    }

    // ---- internals: routing ----

    fn session(&self, jid: &FullJid) -> Option<&Session> {
        self.sessions
            .get(bare_str(jid.as_str()))?
            .iter()
            .find(|s| &s.jid == jid)
    }

    fn session_mut(&mut self, jid: &FullJid) -> Option<&mut Session> {
        self.sessions
            .get_mut(bare_str(jid.as_str()))?
            .iter_mut()
            .find(|s| &s.jid == jid)
    }

    fn deliver(&mut self, to: &FullJid, stanza: Element) {
        self.out.push_back(Output::Deliver {
            to: to.clone(),
            stanza,
        });
    }

    /// Sends a stanza on: local addresses are processed in this call, others leave.
    fn route(&mut self, stanza: Stanza) {
        let local = stanza
            .header()
            .to
            .as_ref()
            .is_some_and(|to| self.is_local(to.domain()));
        if local {
            self.local.push_back(stanza);
        } else {
            self.out.push_back(Output::Route(stanza.to_element()));
        }
    }

    fn bounce_with(&mut self, stanza: &Element, condition: StanzaErrorCondition) {
        if stanza.attr("type") == Some("error") {
            return;
        }
        let reply = StanzaError::new(condition).reply_to(stanza);
        // The reply only fails to parse when the original's addresses are not JIDs: there is
        // nobody to send it to.
        if let Ok(s) = Stanza::try_from(&reply) {
            self.route(s);
        }
    }

    fn drain_local(&mut self, store: &mut impl RosterStore) {
        // Each local stanza can cause at most a bounded chain (an auto-reply, its delivery);
        // the bound is a guard against a logic loop, never reached in practice.
        let mut budget = 10_000usize;
        while let Some(stanza) = self.local.pop_front() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                self.local.clear();
                break;
            }
            self.inbound(store, stanza);
        }
    }

    // ---- internals: inbound (§8.5) ----

    fn inbound(&mut self, store: &mut impl RosterStore, stanza: Stanza) {
        let Some(to) = stanza.header().to.clone() else {
            return;
        };
        if to.node().is_none() {
            // Addressed to the server itself (§8.3 of RFC 6120 / §8.4 here).
            self.out.push_back(Output::Unhandled(stanza.to_element()));
            return;
        }
        let user = to.to_bare();
        match stanza {
            Stanza::Message(m) => self.inbound_message(store, &to, &m),
            Stanza::Presence(p) => self.inbound_presence(store, &user, &to, p),
            Stanza::Iq(iq) => self.inbound_iq(store, &user, &to, &iq),
        }
    }

    fn inbound_message(&mut self, store: &mut impl RosterStore, to: &Jid, m: &Message) {
        match self.message_decision(store, to, m.kind()) {
            MessageDecision::Deliver(recipients) => {
                let targets = self.recipients(to, recipients);
                let el = m.to_element();
                for t in targets {
                    self.deliver(&t, el.clone());
                }
            }
            MessageDecision::Offline => self.out.push_back(Output::Offline {
                user: to.to_bare(),
                stanza: m.to_element(),
            }),
            MessageDecision::Bounce(condition) => self.bounce_with(&m.to_element(), condition),
            _ => {}
        }
    }

    fn recipients(&self, to: &Jid, recipients: Recipients) -> Vec<FullJid> {
        let Some(list) = self.sessions.get(bare_str(to.as_str())) else {
            return Vec::new();
        };
        recipients
            .select(list)
            .filter_map(|i| list.get(i).map(|s| s.jid.clone()))
            .collect()
    }

    fn available_sessions(&self, user: &BareJid) -> Vec<FullJid> {
        self.sessions
            .get(user.as_str())
            .into_iter()
            .flatten()
            .filter(|s| s.available)
            .map(|s| s.jid.clone())
            .collect()
    }

    fn inbound_presence(
        &mut self,
        store: &mut impl RosterStore,
        user: &BareJid,
        to: &Jid,
        p: Presence,
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
                    self.inbound_subscription(store, user, &from.to_bare(), kind, p);
                } else {
                    self.deliver_presence(to, &p);
                }
            }
            None => self.deliver_presence(to, &p),
        }
    }

    /// §8.5.2.1.2 / §8.5.3: availability presence to the bare JID reaches every available
    /// resource, to a full JID only that resource; otherwise it is dropped (§8.5.2.2.2,
    /// §8.5.3.2.2).
    fn deliver_presence(&mut self, to: &Jid, p: &Presence) {
        let Some(list) = self.sessions.get(bare_str(to.as_str())) else {
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
        let el = p.to_element();
        for t in targets {
            self.deliver(&t, el.clone());
        }
    }

    fn inbound_iq(&mut self, store: &mut impl RosterStore, user: &BareJid, to: &Jid, iq: &Iq) {
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
                    self.out.push_back(Output::Unhandled(iq.to_element()));
                }
            }
            Some(r) => {
                let target = self
                    .sessions
                    .get(user.as_str())
                    .and_then(|l| l.iter().find(|s| s.jid.resource() == r))
                    .map(|s| s.jid.clone());
                match target {
                    // §8.5.3.1: delivered to the connected or available resource.
                    Some(t) => self.deliver(&t, iq.to_element()),
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

    // ---- internals: outbound ----

    fn outbound_iq(&mut self, store: &mut impl RosterStore, from: &FullJid, iq: Iq) {
        let user = from.to_bare();
        let own = match &iq.header.to {
            None => true,
            Some(to) => to.is_bare() && to.as_str() == user.as_str(),
        };
        if !own {
            self.route(iq.into());
            return;
        }
        let roster = iq
            .request_payload()
            .is_some_and(|p| p.is("query", NS_ROSTER));
        if roster {
            self.roster_iq(store, from, &user, &iq);
        } else if matches!(iq.payload, IqPayload::Result(_) | IqPayload::Error { .. })
            && iq.id().starts_with("push-")
        {
            // The answer to one of our roster pushes.
        } else {
            self.out.push_back(Output::Unhandled(iq.to_element()));
        }
    }

    fn outbound_presence(&mut self, store: &mut impl RosterStore, from: &FullJid, p: Presence) {
        let user = from.to_bare();
        match (p.presence_type, p.header.to.clone()) {
            (Some(t), Some(to)) if t.subscription_kind().is_some() => {
                if let Some(kind) = t.subscription_kind() {
                    self.outbound_subscription(store, &user, &to.to_bare(), kind, p);
                }
            }
            (None, None) => self.go_available(store, from, p),
            (Some(PresenceType::Unavailable), None) => self.go_unavailable(store, from, p, true),
            (None | Some(PresenceType::Unavailable), Some(to)) => {
                self.directed_presence(from, &to, p);
            }
            (Some(PresenceType::Error), Some(_)) => self.route(p.into()),
            // Probes are the servers' business (§4.3); other combinations mean nothing.
            _ => {}
        }
    }

    /// §4.6: presence sent to one entity; an available one is remembered so that the
    /// entity gets `unavailable` when the session ends.
    fn directed_presence(&mut self, from: &FullJid, to: &Jid, p: Presence) {
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
        self.route(p.into());
    }

    /// §4.2: initial or updated available presence.
    fn go_available(&mut self, store: &mut impl RosterStore, from: &FullJid, mut p: Presence) {
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
        let entries = store.entries(&user);
        // §4.2.2 / §4.4.2: to every contact with a subscription from the user...
        for e in entries
            .iter()
            .filter(|e| e.state.state.subscription().has_from())
        {
            let mut copy = p.clone();
            copy.header.to = Some(e.jid.clone().into());
            self.route(copy.into());
        }
        // ... and to each of the user's available resources, the sender included.
        for r in self.available_sessions(&user) {
            let mut copy = p.clone();
            copy.header.to = Some(r.clone().into());
            self.deliver(&r, copy.to_element());
        }
        if initial {
            // §4.2.2: probe the contacts the user is subscribed to.
            for e in entries
                .iter()
                .filter(|e| e.state.state.subscription().has_to())
            {
                let mut probe = Presence::new(Some(PresenceType::Probe));
                probe.header.from = Some(user.clone().into());
                probe.header.to = Some(e.jid.clone().into());
                self.route(probe.into());
            }
            // §4.2.2: the new resource learns about the user's other available resources.
            let others: Vec<Presence> = self
                .sessions
                .get(user.as_str())
                .into_iter()
                .flatten()
                .filter(|o| o.available && &o.jid != from)
                .filter_map(|o| o.presence.clone())
                .collect();
            for mut o in others {
                o.header.to = Some(from.clone().into());
                self.deliver(from, o.to_element());
            }
            // §3.1.3: requests that arrived while the user was offline are delivered now.
            for e in entries.iter().filter(|e| e.state.state.pending_in()) {
                let mut req = Presence::new(Some(PresenceType::Subscribe));
                req.header.from = Some(e.jid.clone().into());
                req.header.to = Some(user.clone().into());
                self.deliver(from, req.to_element());
            }
        }
    }

    /// §4.5: unavailable presence, broadcast to the subscribers, the user's resources and
    /// the recipients of directed presence.
    fn go_unavailable(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        mut p: Presence,
        to_self: bool,
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
                let mut copy = p.clone();
                copy.header.to = Some(to);
                self.route(copy.into());
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
        }
        let mut sent: BTreeSet<Jid> = BTreeSet::new();
        for e in store
            .entries(&user)
            .into_iter()
            .filter(|e| e.state.state.subscription().has_from())
        {
            let to: Jid = e.jid.into();
            let mut copy = p.clone();
            copy.header.to = Some(to.clone());
            sent.insert(to);
            self.route(copy.into());
        }
        for to in directed {
            if sent.contains(&to) || sent.contains(&Jid::from(to.to_bare())) {
                continue;
            }
            let mut copy = p.clone();
            copy.header.to = Some(to);
            self.route(copy.into());
        }
        for r in recipients {
            let mut copy = p.clone();
            copy.header.to = Some(r.clone().into());
            self.deliver(&r, copy.to_element());
        }
    }

    /// §4.3.2: a probe of `user` from `prober`.
    fn answer_probe(&mut self, store: &impl RosterStore, user: &BareJid, prober: &Jid) {
        let contact = prober.to_bare();
        let allowed = store
            .entry(user, &contact)
            .is_some_and(|e| e.state.state.subscription().has_from());
        if !allowed {
            // Do not reveal presence; tell the prober it is not subscribed.
            let mut p = Presence::new(Some(PresenceType::Unsubscribed));
            p.header.from = Some(user.clone().into());
            p.header.to = Some(contact.into());
            self.route(p.into());
            return;
        }
        let presences: Vec<Presence> = self
            .sessions
            .get(user.as_str())
            .into_iter()
            .flatten()
            .filter(|s| s.available)
            .filter_map(|s| s.presence.clone())
            .collect();
        if presences.is_empty() {
            let mut p = Presence::new(Some(PresenceType::Unavailable));
            p.header.from = Some(user.clone().into());
            p.header.to = Some(prober.clone());
            self.route(p.into());
        }
        for mut p in presences {
            p.header.to = Some(prober.clone());
            self.route(p.into());
        }
    }

    /// Sends the current presence of each available resource (share) or `unavailable` from
    /// each (revoke) to a contact whose `from` subscription just changed.
    fn presence_to_contact(&mut self, user: &BareJid, contact: &BareJid, share: bool) {
        let presences: Vec<Presence> = self
            .sessions
            .get(user.as_str())
            .into_iter()
            .flatten()
            .filter(|s| s.available)
            .filter_map(|s| {
                if share {
                    s.presence.clone()
                } else {
                    let mut p = Presence::new(Some(PresenceType::Unavailable));
                    p.header.from = Some(s.jid.clone().into());
                    Some(p)
                }
            })
            .collect();
        for mut p in presences {
            p.header.to = Some(contact.clone().into());
            self.route(p.into());
        }
    }

    // ---- internals: subscriptions (§3) ----

    fn outbound_subscription(
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
        if !was_in_roster
            && entry.in_roster
            && store.entries(user).iter().filter(|e| e.in_roster).count()
                >= self.config.max_roster_items
        {
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
        if t.fate == StanzaFate::Route {
            // §3.1.2: stamped with the user's bare JID, addressed to the contact's bare JID.
            p.header.from = Some(user.clone().into());
            p.header.to = Some(contact.clone().into());
            self.route(p.into());
        }
        self.after_transition(user, contact, t.share_presence, t.revoke_presence);
    }

    fn inbound_subscription(
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
        Self::save(store, user, &entry);
        if t.roster_push && entry.in_roster {
            self.push(store, user, entry.item());
        }
        if t.fate == StanzaFate::Deliver {
            // §3.1.3 etc.: delivered from the contact's bare JID to every available
            // resource; a request with none available waits in the pending-in state.
            p.header.from = Some(contact.clone().into());
            p.header.to = Some(user.clone().into());
            let el = p.to_element();
            for r in self.available_sessions(user) {
                self.deliver(&r, el.clone());
            }
        }
        if let Some(reply) = t.auto_reply {
            let mut r = Presence::new(Some(reply.into()));
            r.header.from = Some(user.clone().into());
            r.header.to = Some(contact.clone().into());
            self.route(r.into());
        }
        self.after_transition(user, contact, t.share_presence, t.revoke_presence);
    }

    fn after_transition(&mut self, user: &BareJid, contact: &BareJid, share: bool, revoke: bool) {
        if share {
            self.presence_to_contact(user, contact, true);
        }
        if revoke {
            self.presence_to_contact(user, contact, false);
        }
    }

    fn save(store: &mut impl RosterStore, user: &BareJid, entry: &RosterEntry) {
        if entry.is_empty() {
            store.delete(user, &entry.jid);
        } else {
            store.put(user, entry.clone());
        }
    }

    /// §2.1.6: a roster push to every interested resource, with a new version (§2.6).
    fn push(&mut self, store: &mut impl RosterStore, user: &BareJid, item: RosterItem) {
        let version = store.version(user).saturating_add(1);
        store.set_version(user, version);
        let query = RosterQuery {
            ver: Some(version.to_string()),
            items: vec![item],
        }
        .to_element();
        let interested: Vec<FullJid> = self
            .sessions
            .get(user.as_str())
            .into_iter()
            .flatten()
            .filter(|s| s.interested)
            .map(|s| s.jid.clone())
            .collect();
        for r in interested {
            self.next_push = self.next_push.wrapping_add(1);
            let mut iq = Iq::set(format!("push-{}", self.next_push), query.clone());
            iq.header.to = Some(r.clone().into());
            self.deliver(&r, iq.to_element());
        }
    }

    // ---- internals: roster (§2) ----

    fn roster_iq(&mut self, store: &mut impl RosterStore, from: &FullJid, user: &BareJid, iq: &Iq) {
        let result = match &iq.payload {
            IqPayload::Get(q) => self.roster_get(store, from, user, q),
            IqPayload::Set(q) => self.roster_set(store, user, q),
            _ => return,
        };
        let mut reply = match result {
            Ok(payload) => iq.result(payload),
            Err(e) => iq.error(StanzaError::new(e)),
        };
        reply.header.from = None;
        reply.header.to = Some(from.clone().into());
        self.deliver(from, reply.to_element());
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
        if query.ver.as_deref() == Some(version.as_str()) {
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
                ver: Some(version),
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
        if !entry.in_roster
            && store.entries(user).iter().filter(|e| e.in_roster).count()
                >= self.config.max_roster_items
        {
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
        let send = |kind: SubscriptionKind| {
            let mut p = Presence::new(Some(kind.into()));
            p.header.from = Some(user.clone().into());
            p.header.to = Some(contact.clone().into());
            p
        };
        let mut stanzas = Vec::new();
        if state.subscription().has_to() || state.pending_out() {
            stanzas.push(send(SubscriptionKind::Unsubscribe));
        }
        if state.subscription().has_from() || state.pending_in() {
            stanzas.push(send(SubscriptionKind::Unsubscribed));
        }
        if state.subscription().has_from() {
            self.presence_to_contact(user, &contact, false);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    /// Found by the soak of `xmpp-loadgen` (heap after the load above the baseline):
    /// once a spike of sessions came and went, the table kept its peak capacity.
    #[test]
    fn session_table_shrinks_after_a_spike() {
        let mut server = Server::new(ServerConfig::new("example.com"));
        let mut store = MemoryStore::new();
        let jids: Vec<FullJid> = (0..5000)
            .map(|i| FullJid::new(&format!("user{i}@example.com/r")).unwrap())
            .collect();
        for jid in &jids {
            server.session_started(jid.clone()).unwrap();
        }
        assert!(server.sessions.capacity() >= 5000);
        for jid in &jids {
            server.session_ended(&mut store, jid).unwrap();
        }
        assert!(server.sessions.is_empty());
        assert!(
            server.sessions.capacity() <= 2 * MIN_SESSION_CAPACITY,
            "capacity {} after every session ended",
            server.sessions.capacity()
        );
        // A second spike grows it again and still works.
        for jid in &jids[..100] {
            server.session_started(jid.clone()).unwrap();
        }
        assert_eq!(server.sessions.len(), 100);
        assert_eq!(server.sessions_of(&jids[0].to_bare()).count(), 1);
        assert_eq!(server.sessions_of(&jids[100].to_bare()).count(), 0);
    }
}
