//! RFC 6121 instant messaging and presence as pure Sans-IO state machines: typed message,
//! presence and iq stanzas, the roster (client cache and server processing), the subscription
//! state machine of Appendix A, and the presence broadcast and delivery rules a server applies.
//!
//! Nothing here does I/O, reads a clock or draws randomness. Inputs are stanzas
//! (`minidom::Element`) and events; outputs are stanzas to deliver or route, drained with
//! `poll_output()`. Roster and privacy state is the host's to store, the Sans-IO way: the
//! server asks for an account with [`Output::Load`], parks the work that needs it until
//! [`Server::handle_load`] answers, hands changes out as [`Output::Write`] and acknowledges
//! them to clients only once [`Server::handle_write`] says they are durable ([`store`]). A
//! store that answers at once ([`MemoryStore`], for tests and examples) can instead be passed
//! to the methods taking `&mut impl RosterStore`, as below.
//!
//! # Tour
//!
//! - [`stanza`]: [`Message`], [`Presence`], [`Iq`] with lossless `Element` conversion; parse
//!   errors map to stanza errors ([`StanzaParseError::condition`]).
//! - [`subscription`]: the nine states of Appendix A, one table per direction, pre-approval.
//! - [`server`]: the [`Server`] machine: roster get/set/push (§2), subscriptions (§3),
//!   presence broadcast, probes and directed presence (§4), delivery (§8).
//! - [`features`]: what the server implements as data ([`ServiceFeature`]), from which a
//!   host lists its stream features and answers `disco#info`.
//! - [`delay`]: the XEP-0203 stamp of a message stored offline (time from the host).
//! - [`delivery`]: the §8.5 decision as a pure, allocation-free function.
//! - [`roster`] and [`client`]: the client's [`RosterCache`] (versioning, roster-poisoning
//!   protection), subscription helpers, and an [`IqTracker`] driven by host time.
//!
//! ```
//! use xmpp_im::{MemoryStore, Output, RosterStore, Server, ServerConfig, State};
//! use xmpp_jid::{BareJid, FullJid};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let juliet = BareJid::new("juliet@example.com")?;
//! let romeo = BareJid::new("romeo@example.com")?;
//! let mut store = MemoryStore::new();
//! store.add_account(juliet.clone());
//! store.add_account(romeo.clone());
//! let mut server = Server::new(ServerConfig::new("example.com"));
//!
//! let balcony = FullJid::new("juliet@example.com/balcony")?;
//! let orchard = FullJid::new("romeo@example.com/orchard")?;
//! server.session_started(balcony.clone())?;
//! server.session_started(orchard.clone())?;
//! server.handle_session_stanza(&mut store, &orchard, &"<presence xmlns='jabber:client'/>".parse()?)?;
//! while server.poll_output().is_some() {}
//!
//! // Juliet asks for Romeo's presence (RFC 6121 §3.1): the request is stamped with her bare
//! // JID and delivered to Romeo's available resource.
//! let request = "<presence xmlns='jabber:client' type='subscribe' to='romeo@example.com'/>";
//! server.handle_session_stanza(&mut store, &balcony, &request.parse()?)?;
//! let mut delivered = Vec::new();
//! while let Some(out) = server.poll_output() {
//!     if let Output::Deliver { to, stanza } = out {
//!         delivered.push((to, stanza));
//!     }
//! }
//! assert_eq!(delivered.len(), 1);
//! assert_eq!(delivered[0].0, orchard);
//! assert_eq!(delivered[0].1.attr("from"), Some("juliet@example.com"));
//!
//! // Both servers' views (here one server) follow Appendix A.
//! let state = |user: &BareJid, contact: &BareJid| store.entry(user, contact).map(|e| e.state.state);
//! assert_eq!(state(&juliet, &romeo), Some(State::NonePendingOut));
//! assert_eq!(state(&romeo, &juliet), Some(State::NonePendingIn));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod delay;
pub mod delivery;
pub mod error;
pub mod features;
pub mod privacy;
pub mod roster;
pub mod server;
pub mod stanza;
pub mod store;
pub mod subscription;

/// The hasher of every map in this crate: foldhash with a fixed seed, so runs are
/// reproducible (no OS randomness) and lookups by JID string are cheap. Like the fixed-key
/// SipHash it replaced, a fixed seed is not a defence against keys chosen to collide.
pub(crate) type FixedHasher = foldhash::fast::FixedState;

pub use client::{IqOutcome, IqTracker, TrackError};
pub use delivery::{
    BareMessagePolicy, DeliveryPolicy, MessageDecision, Recipients, SessionInfo, SessionView,
    message_decision,
};
pub use error::UnknownValue;
pub use features::ServiceFeature;
pub use privacy::PrivacyData;
pub use roster::{NS_ROSTER, PushOutcome, RosterCache, RosterError, RosterItem, RosterQuery};
pub use server::{Forward, Output, Relay, Server, ServerConfig, UsageError};
pub use stanza::{
    Header, Iq, IqPayload, IqType, LangText, Message, MessageType, Presence, PresenceType, Show,
    Stanza, StanzaNamespace, StanzaParseError, Thread,
};
pub use store::{
    AccountData, Change, LoadId, MemoryStore, RosterEntry, RosterStore, StoreError, WorkMark,
    WriteId,
};
pub use subscription::{
    ContactState, StanzaFate, State, Subscription, SubscriptionKind, Transition,
};
