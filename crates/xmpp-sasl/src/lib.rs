//! SASL mechanisms for XMPP, client and server sides, as pure bytes-in / bytes-out steps:
//! PLAIN (RFC 4616), SCRAM-SHA-1/256/512 and their `-PLUS` channel-binding variants (RFC 5802,
//! RFC 7677; `tls-exporter`, `tls-server-end-point`, `tls-unique`), EXTERNAL (RFC 4422) and
//! ANONYMOUS (RFC 4505), with XEP-0474 downgrade protection.
//!
//! No XML, no base64 framing, no TLS object, no randomness: the host (the stream crate) frames
//! the bytes, passes nonces in and hands over channel-binding data.
//!
//! - [`select_mechanism`] picks what to use from the server's offer and a [`ClientPolicy`];
//!   [`acceptable_mechanisms`] ranks every usable one (for falling back after a failure).
//! - [`Client`] runs the client side: `start`, `step` per challenge, `finish` on success.
//! - [`Server`] runs the server side against a [`CredentialStore`] that returns
//!   [`StoredCredentials`] (never passwords); failures carry an RFC 6120 [`Condition`].
//! - [`ScramKeys`] is the client's cache: the same salt and iteration count skip PBKDF2.
//! - [`PasswordPrep`] is SASLprep by default and pluggable (e.g. PRECIS OpaqueString).
//!
//! ```
//! use xmpp_sasl::{
//!     select_mechanism, ChannelBinding, ChannelBindingType, Client, ClientConfig, ClientPolicy,
//!     Condition, CredentialStore, Mechanism, PasswordPrep, ScramHash, Server, ServerConfig,
//!     ServerStep, StoredCredentials,
//! };
//!
//! // The server's account database holds derived keys, not the password.
//! struct Db(StoredCredentials);
//! impl CredentialStore for Db {
//!     fn scram_credentials(&self, user: &str, hash: ScramHash)
//!         -> Result<Option<StoredCredentials>, Condition> {
//!         Ok((user == "juliet" && hash == self.0.hash()).then(|| self.0.clone()))
//!     }
//! }
//! let db = Db(StoredCredentials::derive(
//!     ScramHash::Sha256, "r0m30myr0m30", PasswordPrep::SaslPrep, b"some salt", 4096,
//! )?);
//!
//! // Both ends of one TLS 1.3 connection hold the same tls-exporter value.
//! let binding = ChannelBinding::new(ChannelBindingType::TlsExporter, [7u8; 32]);
//! let server_config = ServerConfig::new("server-nonce-3rfcNHYJY1ZVvWVs7j")
//!     .tls(true)
//!     .offer(vec![Mechanism::ScramSha256Plus, Mechanism::ScramSha256, Mechanism::Plain])
//!     .channel_binding(binding.clone())
//!     .advertised_binding_types(vec![ChannelBindingType::TlsExporter]);
//! let offered = server_config.mechanisms();
//!
//! // The client picks the strongest mechanism it can use.
//! let policy = ClientPolicy::new()
//!     .tls(true)
//!     .password(true)
//!     .binding_types(vec![ChannelBindingType::TlsExporter]);
//! let choice = select_mechanism(&offered, Some(&[ChannelBindingType::TlsExporter]), &policy)
//!     .expect("a mechanism");
//! assert_eq!(choice.mechanism, Mechanism::ScramSha256Plus);
//!
//! let mut client = Client::new(
//!     choice.mechanism,
//!     ClientConfig::new("juliet", "client-nonce-fyko+d2lbbFgONRv9q")
//!         .password("r0m30myr0m30")
//!         .gs2(choice.gs2)
//!         .channel_binding(binding),
//! )?;
//! let mut server = Server::new(choice.mechanism, server_config)?;
//!
//! // Run the exchange (the stream crate would base64 these into <auth/>, <challenge/>, ...).
//! let mut message = client.start()?.unwrap_or_default();
//! loop {
//!     match server.step(&db, &message) {
//!         Ok(ServerStep::Challenge(c)) => message = client.step(&c)?,
//!         Ok(ServerStep::Success { additional_data, identity }) => {
//!             client.finish(additional_data.as_deref())?; // verifies the server too
//!             // The host may keep these to skip PBKDF2 next time.
//!             assert!(client.scram_keys().is_some());
//!             assert_eq!(identity.authcid.as_deref(), Some("juliet"));
//!             break;
//!         }
//!         Ok(_) => unreachable!(),
//!         Err(e) => panic!("<failure><{}/></failure> ({e})", e.condition()),
//!     }
//! }
//! # Ok::<(), xmpp_sasl::Error>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod client;
mod codec;
mod credentials;
mod crypto;
mod error;
mod mechanism;
mod prep;
mod scram;
mod select;
mod server;

pub use client::{Client, ClientConfig, DEFAULT_MAX_ITERATIONS, DEFAULT_MIN_ITERATIONS};
pub use codec::Gs2Binding;
pub use credentials::{CredentialStore, ScramKeys, StoredCredentials};
pub use error::{Condition, Error, ScramError};
pub use mechanism::{ChannelBinding, ChannelBindingType, Mechanism, ScramHash, UnknownName};
pub use prep::{PasswordPrep, saslprep};
pub use scram::downgrade_hash;
pub use select::{ClientPolicy, Selection, acceptable_mechanisms, select_mechanism};
pub use server::{Authenticated, Server, ServerConfig, ServerStep};
