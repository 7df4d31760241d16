//! RFC 6121 instant messaging and presence as pure state machines: typed message, presence and
//! iq stanzas, the roster (client cache and server processing), the subscription state machine,
//! and the presence broadcast and delivery rules a server applies.
//!
//! ```
//! use xmpp_im::{ContactState, State, StanzaFate, SubscriptionKind};
//!
//! // Juliet asks for Romeo's presence: her server moves the pair to "None + Pending Out",
//! // routes the request and pushes the changed roster item (RFC 6121 §3.1.2).
//! let t = ContactState::default().outbound(SubscriptionKind::Subscribe, true);
//! assert_eq!(t.state.state, State::NonePendingOut);
//! assert_eq!(t.fate, StanzaFate::Route);
//! assert!(t.roster_push);
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod delivery;
pub mod error;
pub mod roster;
pub mod server;
pub mod stanza;
pub mod store;
pub mod subscription;

pub use client::{IqOutcome, IqTracker, TrackError};
pub use delivery::{
    BareMessagePolicy, DeliveryPolicy, MessageDecision, Recipients, SessionInfo, SessionView,
    message_decision,
};
pub use error::UnknownValue;
pub use roster::{NS_ROSTER, PushOutcome, RosterCache, RosterError, RosterItem, RosterQuery};
pub use server::{Output, Server, ServerConfig, UsageError};
pub use stanza::{
    Header, Iq, IqPayload, IqType, LangText, Message, MessageType, Presence, PresenceType, Show,
    Stanza, StanzaNamespace, StanzaParseError, Thread,
};
pub use store::{MemoryStore, RosterEntry, RosterStore};
pub use subscription::{
    ContactState, StanzaFate, State, Subscription, SubscriptionKind, Transition,
};
