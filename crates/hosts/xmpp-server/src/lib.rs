//! An example XMPP client-to-server (c2s) server built from the toolkit's machines:
//! [`xmpp_stream::ServerStream`] negotiates each connection (STARTTLS, SASL, bind) and
//! [`xmpp_im::Server`] applies RFC 6121 (roster, subscriptions, presence, delivery).
//! XEP-0114 components connect on a port of their own
//! ([`xmpp_stream::ComponentServerStream`], [`HubConfig::with_component`]) and serve their
//! domains and subdomains.
//!
//! Two layers:
//!
//! - [`hub`]: the Sans-IO core. A [`Hub`] owns one stream machine per connection plus the IM
//!   machine and routes stanzas between sessions. No sockets, clock or OS randomness: the
//!   host feeds bytes and time and writes what [`Hub::poll_output`] returns, so the whole
//!   server runs in memory in tests.
//! - [`runtime`]: a tokio + tokio-rustls shell: accept loop, one task per connection, TLS on
//!   `StartTls` with `tls-exporter` / `tls-server-end-point` bindings (from the shared
//!   [`xmpp_host::tls`] helper), a timer tick.
//! - [`db`]: where accounts, rosters, privacy lists and offline messages live (`--db`):
//!   SQLite ([`db::Db`], the default) or PostgreSQL ([`db::postgres::PgDb`]) behind one
//!   trait, [`db::Store`], chosen by [`db::Location`]; the runtime runs it on a thread of its
//!   own.
//!
//! ```
//! use xmpp_server::{Hub, HubConfig, HubOutput};
//! use xmpp_stream::{BareJid, SeededEntropy, Transport, Instant};
//!
//! let config = HubConfig::new(BareJid::new("localhost")?).with_user("alice", "pw");
//! let mut hub = Hub::new(config);
//! let id = hub.accept(Instant::ZERO, Transport::Plain, SeededEntropy::new(1));
//! hub.handle_input(id, Instant::ZERO,
//!     b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
//! let mut sent = Vec::new();
//! while let Some(out) = hub.poll_output() {
//!     if let HubOutput::Transmit(_, bytes) = out {
//!         sent.extend(bytes);
//!     }
//! }
//! let sent = String::from_utf8(sent)?;
//! assert!(sent.contains("<starttls"), "{sent}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
// An example server does real I/O (sockets, clock, OS randomness, threads), unlike the
// library crates the workspace lints guard.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![forbid(unsafe_code)]

pub mod db;
pub mod hub;
pub mod runtime;

pub use hub::{
    Hub, HubConfig, HubOutput, MAX_LOG_LINES, PING_IDLE, PING_TIMEOUT, PlusPolicy, SessionId,
    StorageRequest, TestRewrite, TranscriptSink,
};
pub use runtime::{
    DB_QUEUE, Dns, Listeners, MAX_MESSAGE_BYTES, RuntimeConfig, S2sSettings, S2sTls, ServerHandle,
    ServerStats, TlsMaterial, WEBSOCKET_PATH, account_jid, presented_ids, serve, serve_on,
    serve_web, serve_with,
};
