//! RFC 6120 stream negotiation as deterministic Sans-IO state machines for both roles: stream
//! header, features, STARTTLS, SASL (through `xmpp-sasl`), restart, resource binding, legacy
//! session, stanzas, stream errors, keepalive and the closing handshake.
//!
//! [`ClientStream`] (initiating entity) and [`ServerStream`] (receiving entity) share one
//! shape ([`AnyStream`] holds either, for hosts that write their loop once for every role).
//! Inputs carry the time: `handle_input(now, bytes)` with the peer's bytes in any chunking,
//! `handle_timeout(now)` when [`poll_timeout`](ClientStream::poll_timeout) says so,
//! `tls_established(now, bindings)` after the host ran the TLS handshake it was asked for.
//! Commands are plain verbs: `start`, `send_stanza`, `close`. Everything the machine wants
//! done comes out of one ordered queue, [`Output`]: `Transmit(bytes)`, `StartTls`,
//! `Event(..)`. Time is [`Instant`] (milliseconds the host counts), randomness an
//! [`Entropy`] the host supplies: a seeded run is reproducible byte for byte.
//!
//! SASL is configured on the client as a typed list in preference order
//! ([`ClientConfig::mechanisms`]); after a mechanism-level `<failure/>` the client falls back
//! to the next listed mechanism (never after a credential failure, never from `-PLUS` to an
//! unbound one), reporting each attempt as [`Event::SaslAttemptFailed`]. The server
//! authenticates against the host's [`backend::ServerBackend`];
//! [`MemoryBackend`] is an in-memory one.
//!
//! Session state is flags ([`SessionFlags`]: Secure, Authenticated, Bound) and features are
//! data ([`features::FEATURES`]): what a server lists and what a client negotiates next follow
//! from the flags alone, so new features (XEP-0198, SASL2, dialback) are rows, not new states.
//!
//! A whole negotiation, in memory, with the [`pair::Pair`] test harness (two machines, two
//! wires, a virtual clock, fake TLS):
//!
//! ```
//! use xmpp_stream::pair::Pair;
//! use xmpp_stream::{BareJid, MemoryBackend, ClientConfig, ClientStream, Event, SeededEntropy, ServerConfig, ServerStream};
//!
//! let client = ClientConfig::new(BareJid::new("juliet@im.example.com")?, "r0m30myr0m30");
//! let server = ServerConfig::new(BareJid::new("im.example.com")?);
//! let accounts = MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096);
//! let mut pair = Pair::new(
//!     ClientStream::new(client, SeededEntropy::new(1)),
//!     ServerStream::new(server, SeededEntropy::new(2), accounts),
//! );
//! pair.start();
//! pair.drive(); // STARTTLS (fake TLS), SCRAM-SHA-512-PLUS, bind
//! let jid = pair.client.jid().expect("negotiated");
//! assert_eq!(jid.to_bare().as_str(), "juliet@im.example.com");
//! assert!(pair.server_events.iter().any(|e| matches!(e, Event::Negotiated { .. })));
//!
//! pair.client.close(pair.now)?;
//! pair.drive();
//! assert!(pair.client.is_closed() && pair.server.is_closed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A real host runs the same loop over a socket: feed what it reads to `handle_input`, then
//! drain `poll_output` until `None` (write `Transmit`s in order, run TLS on `StartTls`, act on
//! events), and sleep until `poll_timeout`. See `xmpp-host`'s `examples/demo.rs` for one with
//! real TLS.
#![forbid(unsafe_code)]

mod any;
pub mod backend;
mod bind;
mod client;
mod codec;
mod component;
mod config;
mod core;
mod entropy;
mod error;
pub mod features;
mod flags;
mod kind;
mod machine;
mod output;
pub mod pair;
pub mod rules;
mod sasl;
mod server;
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
pub use config::{ClientConfig, Credentials, ServerConfig, Timeouts, TlsPolicy};
pub use entropy::{Entropy, RecordingEntropy, ScriptedEntropy, SeededEntropy};
pub use error::{ProtocolError, UsageError};
pub use features::{Advertised, FeatureKind, FeatureSpec, Features};
pub use flags::SessionFlags;
pub use kind::{Kinds, Role, Roles, StreamKind};
pub use output::{CloseReason, Event, HostPort, InvalidHostPort, Output, Transport};
pub use server::ServerStream;
pub use time::Instant;
pub use timers::{TRIM_AFTER, Timer};
pub use xmpp_jid::{BareJid, FullJid, Jid};
pub use xmpp_sasl::{
    ChannelBinding, ChannelBindingType, Condition as SaslCondition, CredentialStore, Mechanism,
};
pub use xmpp_xml::{
    Limits, StanzaError, StanzaErrorCondition, StanzaErrorType, StreamError, StreamErrorCondition,
};
