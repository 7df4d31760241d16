//! The server side of RFC 6121: roster processing (§2), subscriptions (§3), presence (§4) and
//! delivery (§8), as one Sans-IO machine.
//!
//! The host feeds it stanzas from local sessions ([`Server::handle_session_stanza`]) and from
//! remote servers ([`Server::handle_remote_stanza`]), tells it when sessions start and end, and
//! drains [`Server::poll_output`]: stanzas to deliver to a local session, to route to a remote
//! domain, to store offline, or addressed to the server for the host's other services. Stanzas
//! between two local accounts are processed inside the same unit of work.
//!
//! Roster, subscription and privacy state is the host's to store. Two ways to drive it:
//! - **Sans-IO storage** ([`Server::handle_client_stanza`], [`Server::handle_server_stanza`],
//!   [`Server::end_session`], [`Server::bounce_message`]): the machine asks for the accounts it
//!   needs with [`Output::Load`] and parks the work until [`Server::handle_load`] answers;
//!   changes leave as [`Output::Write`], and what they acknowledge leaves only once
//!   [`Server::handle_write`] reports them durable. See `storage.rs` for the rules.
//! - **A synchronous store** ([`Server::handle_session_stanza`] and the other methods taking
//!   `&mut impl RosterStore`): the same machine, with every load and write answered from the
//!   store before the call returns, so no [`Output::Load`] or [`Output::Write`] is left.
//!
//! The machine keeps the accounts it loaded while they have sessions or pending work; a
//! change made to the store behind its back is seen once the account is loaded again.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use minidom::Element;
use xmpp_jid::{BareJid, FullJid};
use xmpp_xml::Envelope;

use crate::delivery::DeliveryPolicy;
use crate::features::{NS_PRE_APPROVAL, NS_ROSTERVER, ServiceFeature};
use crate::roster::NS_ROSTER;
use crate::stanza::{Iq, IqPayload, Stanza, StanzaParseError};
use crate::store::{Change, LoadId, RosterStore, WriteId};

// One `Server`, one file per concern: this file holds its configuration, inputs, outputs
// and the dispatch of each stanza to the rules below; `sessions.rs` the connected resources
// (RFC 6120 §7); `routing.rs` local delivery and routing (RFC 6121 §8, RFC 6120 §10);
// `delivery.rs` inbound stanzas to local accounts (RFC 6121 §8.5); `roster.rs` roster
// get, set and push (RFC 6121 §2); `subscription.rs` subscriptions (RFC 6121 §3);
// `presence.rs` presence broadcast, probes and directed presence (RFC 6121 §4).
mod cache;
mod delivery;
mod envelope;
mod presence;
mod privacy;
mod roster;
mod routing;
mod sessions;
mod storage;
mod subscription;

pub use envelope::{Forward, Relay};
use sessions::Session;

/// Server configuration: the local domains, and the choices RFC 6121 leaves to servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Domains whose accounts this server hosts; stanzas to other domains are routed out.
    pub domains: BTreeSet<String>,
    /// Support subscription pre-approval (RFC 6121 §3.4), and advertise it.
    pub pre_approval: bool,
    /// Support roster versioning (RFC 6121 §2.6), and advertise it. Off: `ver` is neither
    /// sent nor honoured, every roster get returns the whole roster.
    pub roster_versioning: bool,
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
    /// Bounds on privacy lists (XEP-0016) and the blocklist (XEP-0191); both protocols are
    /// advertised in [`ServerConfig::features`].
    pub privacy: crate::privacy::Limits,
    /// Maximum units of work waiting for the host's storage (a load, or an earlier write of
    /// the same account) per account; beyond, the stanza is answered `resource-constraint`.
    pub max_parked: usize,
    /// The host takes [`Output::Forward`] and [`Output::Relay`] for presence the server
    /// makes itself (issue 17; default off): the unavailable presence a session's end
    /// broadcasts is then one shared envelope for every recipient instead of an element per
    /// recipient. The envelope inputs ([`Server::handle_client_envelope`],
    /// [`Server::handle_server_envelope`]) give those outputs whatever this says.
    pub envelopes: bool,
}

impl ServerConfig {
    /// A configuration hosting `domain`, with defaults for everything else.
    #[must_use]
    pub fn new(domain: &str) -> Self {
        Self {
            domains: BTreeSet::from([domain.to_owned()]),
            pre_approval: true,
            roster_versioning: true,
            delivery: DeliveryPolicy::default(),
            max_roster_items: 1000,
            max_text_len: 1023,
            max_groups: 64,
            max_pending_requests: 100,
            max_sessions: 64,
            max_directed: 256,
            privacy: crate::privacy::Limits::default(),
            max_parked: 256,
            envelopes: false,
        }
    }
}

impl ServerConfig {
    /// What this configuration implements, as clients learn it: the roster (`disco#info`
    /// `jabber:iq:roster`), and the stream features `<ver/>` (roster versioning) and `<sub/>`
    /// (pre-approval) when they are on. A host appends its own rows and lists the stream
    /// elements after authentication and the `var`s in its `disco#info` answer
    /// ([`crate::features`]).
    #[must_use]
    pub fn features(&self) -> Vec<ServiceFeature> {
        let mut rows = vec![
            ServiceFeature::disco(NS_ROSTER),
            ServiceFeature::disco(crate::privacy::NS_PRIVACY),
            ServiceFeature::disco(crate::privacy::NS_BLOCKING),
        ];
        if self.roster_versioning {
            rows.push(ServiceFeature::stream("ver", NS_ROSTERVER));
        }
        if self.pre_approval {
            rows.push(ServiceFeature::stream("sub", NS_PRE_APPROVAL));
        }
        rows
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
        /// The stanza: one allocation shared by every recipient of one stanza (no copy
        /// per recipient); `Arc::unwrap_or_clone` gives a host an element of its own.
        stanza: Arc<Element>,
    },
    /// Send this stanza, received as an envelope, to a local session as bytes: splice
    /// [`Forward::stamp`] into [`Forward::envelope`]'s start tag (issue 17: no element
    /// built; see [`Server::handle_client_envelope`]). The same decision as a
    /// [`Output::Deliver`] of the element path.
    Forward(Forward),
    /// Send the stanza to the remote domain of its `to` address.
    Route(Element),
    /// Send this stanza, received as an envelope, to the remote domain of [`Relay::to`] (a
    /// component or a peer server) as bytes: splice [`Relay::stamp`] into
    /// [`Relay::envelope`]'s start tag. The same decision as an [`Output::Route`] of the
    /// element path (issue 17).
    Relay(Relay),
    /// No resource can take this message now (§8.5.2.2.1): store it for the account, or
    /// bounce it with [`Server::bounce`] if the host keeps no offline storage.
    Offline {
        /// The account.
        user: BareJid,
        /// The message.
        stanza: Element,
    },
    /// Read the account from storage and answer with [`Server::handle_load`] and this id, in
    /// any order relative to other requests, whenever the storage answers.
    Load {
        /// The request.
        id: LoadId,
        /// The account.
        user: BareJid,
    },
    /// Make these changes durable, all or none, after every earlier write, and report it
    /// with [`Server::handle_write`] and this id.
    Write {
        /// The request.
        id: WriteId,
        /// The changes, in order.
        changes: Vec<Change>,
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
    /// No load or write with this id is waiting for an answer.
    UnknownRequest,
}

impl core::fmt::Display for UsageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoSession => "no such session",
            Self::SessionExists => "session already exists",
            Self::TooManySessions => "too many sessions for the account",
            Self::NotLocal => "not a local JID",
            Self::UnknownRequest => "no such storage request",
        })
    }
}

impl core::error::Error for UsageError {}

/// The RFC 6121 server machine. See the module documentation.
#[derive(Debug, Clone)]
pub struct Server {
    config: ServerConfig,
    /// Online accounts by bare JID string: borrowed lookups (no allocation per stanza), one
    /// probe instead of a tree walk of cache misses. The hasher has a fixed seed, so
    /// runs are reproducible; the map is never iterated.
    sessions: HashMap<String, Vec<Session>, crate::FixedHasher>,
    out: VecDeque<Output>,
    /// Stanzas between local accounts, processed before the call returns.
    local: VecDeque<routing::Local>,
    next_push: u64,
    /// The number the next bound session gets ([`Session::binding`]).
    next_binding: u64,
    /// Privacy lists and blocklists of loaded accounts by bare JID string (XEP-0016,
    /// XEP-0191).
    privacy: HashMap<String, privacy::Account, crate::FixedHasher>,
    /// Accounts whose privacy state the running unit changed.
    privacy_dirty: BTreeSet<BareJid>,
    /// The loaded accounts.
    cache: cache::Cache,
    /// Units waiting, loads and writes in flight.
    storage: storage::Storage,
    /// `<presence type='unavailable'/>` as an envelope, shared by every session end's
    /// broadcast ([`ServerConfig::envelopes`]).
    unavailable: Option<Arc<Envelope>>,
}

impl Server {
    /// A server with no sessions.
    #[must_use]
    pub fn new(config: ServerConfig) -> Self {
        let config_envelopes = config.envelopes;
        Self {
            config,
            sessions: HashMap::default(),
            out: VecDeque::new(),
            local: VecDeque::new(),
            next_push: 0,
            next_binding: 0,
            privacy: HashMap::default(),
            privacy_dirty: BTreeSet::new(),
            cache: cache::Cache::default(),
            storage: storage::Storage::default(),
            unavailable: config_envelopes
                .then(envelope::unavailable)
                .flatten()
                .map(Arc::new),
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
        self.resources_of(user)
            .map(|s| (&s.jid, s.available, s.priority))
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.poll_output_made().map(|(output, _)| output)
    }

    // ---- inputs ----

    /// A stanza from the local session `from`, with a synchronous store. The server stamps
    /// `from` (RFC 6120 §8.1.2.1) and applies the outbound rules.
    pub fn handle_session_stanza(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        stanza: &Element,
    ) -> Result<(), UsageError> {
        self.handle_client_stanza(from, stanza)?;
        self.serve(store);
        Ok(())
    }

    /// A stanza from a remote server for a local address (its `from` already verified by the
    /// stream layer), with a synchronous store. Stanzas without `from` or `to`, or to other
    /// domains, are dropped.
    pub fn handle_remote_stanza(&mut self, store: &mut impl RosterStore, stanza: &Element) {
        self.handle_server_stanza(stanza);
        self.serve(store);
    }

    /// A stanza from the local session `from`: see [`Server::handle_session_stanza`]. The
    /// accounts it needs are asked for with [`Output::Load`] if they are not loaded.
    pub fn handle_client_stanza(
        &mut self,
        from: &FullJid,
        stanza: &Element,
    ) -> Result<(), UsageError> {
        if self.session(from).is_none() {
            return Err(UsageError::NoSession);
        }
        self.submit(storage::Work::Session {
            from: from.clone(),
            binding: self.binding_of(from),
            stanza: storage::Received::Element(stanza.clone()),
            shared: None,
        });
        Ok(())
    }

    /// A stanza from a remote server: see [`Server::handle_remote_stanza`].
    pub fn handle_server_stanza(&mut self, stanza: &Element) {
        self.submit(storage::Work::Remote {
            stanza: storage::Received::Element(stanza.clone()),
            shared: None,
        });
    }

    // ---- commands ----

    /// The `service-unavailable` bounce of a message the host will not store offline
    /// (§8.5.2.2.1), with a synchronous store. Errors are never bounced; the result is routed
    /// like any stanza.
    pub fn bounce(&mut self, store: &mut impl RosterStore, stanza: &Element) {
        self.bounce_message(stanza);
        self.serve(store);
    }

    /// The bounce of [`Server::bounce`], with the accounts it needs loaded first.
    pub fn bounce_message(&mut self, stanza: &Element) {
        self.submit(storage::Work::Bounce(stanza.clone()));
    }

    // ---- units of work ----

    /// A session's stanza, as a unit of work; `shared`: its bytes when it arrived as an
    /// envelope (a presence the envelope path fans out, `server::envelope`).
    fn session_stanza_now(
        &mut self,
        store: &mut impl RosterStore,
        from: &FullJid,
        stanza: &storage::Received,
        shared: Option<&routing::Shared>,
    ) {
        if self.session(from).is_none() {
            // Ended while the stanza waited for storage: nobody to answer.
            return;
        }
        let mut parsed = match stanza {
            storage::Received::Element(stanza) => match Stanza::try_from(stanza) {
                Ok(s) => s,
                Err(e) => {
                    if stanza.attr("type") != Some("error") {
                        let reply = e.to_stanza_error().reply_to(stanza);
                        self.deliver(from, reply);
                    }
                    return;
                }
            },
            storage::Received::Presence(p) => Stanza::Presence(p.as_ref().clone()),
            storage::Received::Message(m) => Stanza::Message(m.as_ref().clone()),
        };
        parsed.header_mut().from = Some(from.clone().into());
        if !self.outbound_allowed(store, from, &parsed) {
            self.drain_local(store);
            return;
        }
        match parsed {
            Stanza::Presence(p) => self.outbound_presence(store, from, p, shared),
            Stanza::Message(mut m) => {
                // RFC 6120 §10.3: no `to` means the sender's own bare JID.
                if m.header.to.is_none() {
                    m.header.to = Some(from.to_bare().into());
                }
                match shared {
                    // Decided on its header: its recipients get the bytes.
                    Some(shared) => self.route_bytes(Stanza::Message(m), shared),
                    None => self.route(Stanza::Message(m)),
                }
            }
            Stanza::Iq(iq) => self.outbound_iq(store, from, iq),
        }
        self.drain_local(store);
    }

    fn remote_stanza_now(
        &mut self,
        store: &mut impl RosterStore,
        stanza: &storage::Received,
        shared: Option<&routing::Shared>,
    ) {
        let stanza = match (stanza, shared) {
            (storage::Received::Element(stanza), _) => stanza,
            // Availability presence read from its bytes, or a message decided on its header:
            // its recipients get the bytes.
            (storage::Received::Presence(_) | storage::Received::Message(_), Some(shared)) => {
                let head = match stanza {
                    storage::Received::Presence(p) => Stanza::Presence(p.as_ref().clone()),
                    storage::Received::Message(m) => Stanza::Message(m.as_ref().clone()),
                    storage::Received::Element(_) => return,
                };
                let h = head.header();
                let local = h.to.as_ref().is_some_and(|t| self.is_local(t.domain()));
                if h.from.is_some() && local {
                    self.route_shared(head, shared.clone());
                }
                self.drain_local(store);
                return;
            }
            (storage::Received::Presence(_) | storage::Received::Message(_), None) => return,
        };
        match Stanza::try_from(stanza) {
            Ok(s) => {
                let h = s.header();
                if h.from.is_some() && h.to.as_ref().is_some_and(|t| self.is_local(t.domain())) {
                    self.route_local(s);
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

    // ---- dispatch ----

    /// A stanza for a local address, by kind: the rules of §8.5. With `shared`, `stanza` is
    /// the header of a session's envelope, whose recipients get its bytes.
    fn inbound(
        &mut self,
        store: &mut impl RosterStore,
        stanza: Stanza,
        shared: Option<&routing::Shared>,
    ) {
        let Some(to) = stanza.header().to.clone() else {
            return;
        };
        if to.node().is_none() {
            // Addressed to the server itself (§8.3 of RFC 6120 / §8.4 here). Never a shared
            // copy (`route_shared` takes accounts only); should one come, its bytes rebuild
            // the whole stanza.
            let element = match shared {
                Some(s) => s.element(&to),
                None => Some(stanza.into_element()),
            };
            if let Some(element) = element {
                self.out.push_back(Output::Unhandled(element));
            }
            return;
        }
        if !self.inbound_allowed(&stanza) {
            return;
        }
        let user = to.to_bare();
        match stanza {
            Stanza::Message(m) => self.inbound_message(store, &to, m, shared),
            Stanza::Presence(p) => self.inbound_presence(store, &user, &to, p, shared),
            Stanza::Iq(iq) => self.inbound_iq(store, &user, &to, iq),
        }
    }

    /// An iq from a session: the account's own roster requests are answered here (§2),
    /// answers to roster pushes dropped, other iqs to the account left to the host, and
    /// iqs to anyone else routed.
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
        } else if self.privacy_iq(store, from, &iq) {
            // XEP-0016 / XEP-0191, answered.
        } else if matches!(iq.payload, IqPayload::Result(_) | IqPayload::Error { .. })
            && iq.id().starts_with("push-")
        {
            // The answer to one of our roster pushes.
        } else {
            self.out.push_back(Output::Unhandled(iq.to_element()));
        }
    }
}
