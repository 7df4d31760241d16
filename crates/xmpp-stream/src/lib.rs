//! RFC 6120 stream negotiation as deterministic Sans-IO state machines for both roles: stream
//! header, features, STARTTLS, SASL, restart, resource binding, errors, keepalive and close.
//!
//! Bytes go in with `handle_input(now, bytes)`, time with `handle_timeout(now)`; transmissions,
//! "start TLS now" and events come out of one ordered `poll_output()` queue.
//!
//! The building blocks every machine shares are plain values the host controls:
//!
//! ```
//! use core::time::Duration;
//! use xmpp_stream::{Entropy, FeatureKind, Features, Instant, SeededEntropy, SessionFlags};
//!
//! // Time is a plain value: milliseconds since an epoch the host picks.
//! let now = Instant::from_millis(1_000);
//! assert_eq!(now + Duration::from_secs(2), Instant::from_millis(3_000));
//!
//! // Randomness comes from the host; a seeded source makes a run reproducible.
//! let mut entropy = SeededEntropy::new(42);
//! let mut id = [0u8; 16];
//! entropy.fill(&mut id);
//!
//! // Features are data: what to negotiate next follows from the session flags.
//! let features = Features::parse(&"<features xmlns='http://etherx.jabber.org/streams'>\
//!     <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>\
//!     </features>".parse().unwrap());
//! let next = features.next_to_negotiate(SessionFlags::SECURE, |_| true);
//! assert_eq!(next.and_then(|f| f.kind()), Some(FeatureKind::Sasl));
//! ```
#![forbid(unsafe_code)]

mod bind;
mod client;
mod codec;
mod config;
mod core;
mod entropy;
mod error;
pub mod features;
mod flags;
mod output;
pub mod pair;
mod sasl;
mod server;
mod starttls;
mod time;
mod timers;
pub mod transcript;

pub use client::{ClientConfig, ClientStream, Credentials};
pub use config::{Timeouts, TlsPolicy};
pub use entropy::{Entropy, RecordingEntropy, ScriptedEntropy, SeededEntropy};
pub use error::{ProtocolError, UsageError};
pub use features::{Advertised, FeatureKind, FeatureSpec, Features};
pub use flags::SessionFlags;
pub use output::{CloseReason, Event, Output, Transport};
pub use server::{ServerBackend, ServerConfig, ServerStream};
pub use time::Instant;
pub use timers::Timer;
pub use xmpp_jid::{BareJid, FullJid, Jid};
pub use xmpp_sasl::{ChannelBinding, ChannelBindingType, CredentialStore, Mechanism};
pub use xmpp_xml::{
    Limits, StanzaError, StanzaErrorCondition, StanzaErrorType, StreamError, StreamErrorCondition,
};
