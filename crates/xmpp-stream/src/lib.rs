//! RFC 6120 stream negotiation as deterministic Sans-IO state machines for every stream kind
//! and role: stream header, features, STARTTLS, SASL (through `xmpp-sasl`), restart, resource
//! binding, legacy session, stanzas, stream errors, keepalive and the closing handshake on
//! `jabber:client`, the XEP-0114 handshake on `jabber:component:accept`, and server-to-server
//! `jabber:server` with SASL EXTERNAL ([`identity`]) and dialback ([`dialback`]).
//!
//! Six stream types share one shape: [`ClientStream`] and [`ServerStream`] (the two ends of a
//! c2s stream), [`ComponentStream`] and [`ComponentServerStream`] (an external component and
//! its server), [`S2sInitiatingStream`] and [`S2sReceivingStream`] (two servers); [`AnyStream`]
//! holds any of them, for hosts that write their loop once.
//! Inputs carry the time: `handle_input(now, bytes)` with the peer's bytes in any chunking,
//! `handle_timeout(now)` when `poll_timeout` says so, `tls_established(now, bindings)` after
//! the host ran the TLS handshake it was asked for. Commands are plain verbs: `start`,
//! `send_stanza`, `close`, `close_with_error`. Everything the machine wants done comes out of
//! one ordered queue, [`Output`]: `Transmit(bytes)`, `StartTls`, `Event(..)`. Time is
//! [`Instant`] (milliseconds the host counts), randomness an [`Entropy`] the host supplies: a
//! seeded run is reproducible byte for byte, and [`transcript`] replays a recorded one.
//!
//! What each incoming element means is one table, [`rules::RULES`]: a row per rule with the
//! stream kinds and roles it applies to, the negotiation step and flags it needs, the element
//! it reacts to, its handler, and the RFC or XEP section it implements; an element no row
//! accepts gets one documented default ([`rules::unaccepted_condition`]). Session state is
//! flags ([`SessionFlags`]) and stream features are data ([`features::FEATURES`]).
//!
//! XEP-0198 stream management ([`sm`]) and XEP-0199 pings are rows of the same table: both
//! roles count stanzas mod 2^32 (an inbound one when the host takes its event), keep what
//! was sent until acknowledged, and resume a session on a new stream: the client from a
//! [`SmState`] it may persist, the server from the [`DetachedSession`] its host kept for the
//! resumption window. A c2s server answers every first-level element it does not support.
//!
//! SASL is configured on the client as a typed list in preference order
//! ([`ClientConfig::mechanisms`]); after a mechanism-level `<failure/>` the client falls back
//! to the next listed mechanism (never after a credential failure, never from `-PLUS` to an
//! unbound one), reporting each attempt as [`Event::SaslAttemptFailed`]. The server
//! authenticates against the host's [`backend::ServerBackend`] ([`MemoryBackend`] keeps
//! accounts in memory); a component server asks the host's [`ComponentBackend`].
//!
//! A whole c2s negotiation in memory, one loop for both ends (the `pair` module, behind the
//! `testing` feature, is a fuller harness: wires with chunking and latency, a virtual clock,
//! fake TLS, tamper hooks):
//!
//! ```
//! use xmpp_stream::{AnyStream, BareJid, ClientConfig, ClientStream, Event, Instant, MemoryBackend};
//! use xmpp_stream::{Output, SeededEntropy, ServerConfig, ServerStream, Transport};
//!
//! let client = ClientConfig::new(BareJid::new("juliet@im.example.com")?, "r0m30myr0m30");
//! let server = ServerConfig::new(BareJid::new("im.example.com")?);
//! let accounts = MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096);
//! let mut ends: [AnyStream; 2] = [
//!     ClientStream::new(client, SeededEntropy::new(1)).into(),
//!     ServerStream::new(server, SeededEntropy::new(2), accounts).into(),
//! ];
//! let now = Instant::ZERO;
//! for end in &mut ends {
//!     end.start(now, Transport::Plain)?;
//! }
//! let mut events = Vec::new();
//! while ends.iter().any(|end| !end.is_negotiated() && !end.is_closed()) {
//!     for from in 0..2 {
//!         while let Some(output) = ends[from].poll_output() {
//!             match output {
//!                 Output::Transmit(bytes) => {
//!                     let _ = ends[1 - from].handle_input(now, &bytes);
//!                 }
//!                 // A real host runs TLS here; this one reports a finished handshake.
//!                 Output::StartTls => ends[from].tls_established(now, Vec::new())?,
//!                 Output::Event(event) => events.push(event),
//!                 _ => {}
//!             }
//!         }
//!     }
//! }
//! // STARTTLS, SCRAM-SHA-512 (no channel-binding data here), bind.
//! assert_eq!(ends[0].jid().map(|jid| jid.to_bare().to_string()), Some("juliet@im.example.com".into()));
//! assert!(events.iter().any(|e| matches!(e, Event::Negotiated { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A real host runs the same loop over a socket: feed what it reads to `handle_input`, then
//! drain `poll_output` until `None` (write `Transmit`s in order, run TLS on `StartTls`, act on
//! events), and sleep until `poll_timeout`. `xmpp-host` ships that loop (blocking and tokio)
//! over [`AnyStream`]; its `examples/demo.rs` runs one with real TLS.
#![forbid(unsafe_code)]

mod any;
pub mod backend;
mod bind;
mod client;
mod codec;
mod component;
mod config;
#[cfg(feature = "testing")]
pub mod conformance;
mod core;
pub mod dialback;
mod entropy;
mod error;
pub mod features;
mod flags;
pub mod identity;
mod kind;
mod machine;
mod output;
#[cfg(feature = "testing")]
pub mod pair;
pub mod register;
pub mod rules;
mod s2s;
mod sasl;
mod server;
pub mod sm;
mod steps;
mod surface;
mod time;
mod timers;
pub mod transcript;

pub use any::AnyStream;
pub use backend::{MemoryBackend, ServerBackend};
pub use client::ClientStream;
pub use component::{
    ComponentBackend, ComponentConfig, ComponentServerConfig, ComponentServerStream,
    ComponentStream, MemoryComponents,
};
pub use config::{
    ClientConfig, Credentials, Redirect, S2sConfig, ServerConfig, Timeouts, TlsPolicy,
};
pub use entropy::{Entropy, RecordingEntropy, ScriptedEntropy, SeededEntropy};
pub use error::{ProtocolError, UsageError};
pub use features::{Advertised, FeatureKind, FeatureSpec, Features, HostFeature};
pub use flags::SessionFlags;
pub use kind::{Kinds, Role, Roles, StreamKind};
pub use output::{CloseReason, Event, HostPort, InvalidHostPort, Output, S2sAuthMethod, Transport};
pub use register::{Registration, RegistrationRefused};
pub use s2s::{DialbackOutcome, S2sInitiatingStream, S2sReceivingStream};
pub use server::ServerStream;
pub use sm::{DetachedSession, PingConfig, SmConfig, SmEvent, SmState, Unacked, UnackedOverflow};
pub use time::Instant;
pub use timers::{TRIM_AFTER, Timer};
pub use xmpp_jid::{BareJid, FullJid, Jid};
pub use xmpp_sasl::{
    ChannelBinding, ChannelBindingType, Condition as SaslCondition, CredentialStore, Mechanism,
};
pub use xmpp_xml::{
    Envelope, Limits, SpliceError, Stamp, StanzaError, StanzaErrorCondition, StanzaErrorType,
    StanzaKind, StreamError, StreamErrorCondition,
};
