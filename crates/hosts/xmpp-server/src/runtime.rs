//! The tokio shell around the [`Hub`](crate::Hub): a TCP accept loop, one task per
//! connection moving bytes (through tokio-rustls after STARTTLS), a ticker for the hub's
//! timers.
//!
//! All protocol decisions are the hub's; this module only does I/O. The hub sits behind one
//! mutex: every input locks it, feeds it, and hands the outputs to the connection tasks
//! through per-connection outboxes, so each connection's bytes stay in order. TLS (the
//! server's identity and the channel bindings after a handshake) is `xmpp_host::tls`'s.
//!
//! - `serve`: the accept loops (clients, direct TLS, components) and the timer tick.
//! - `shared`: the hub and the outboxes behind the one mutex.
//! - `outbox`: the hub's commands to one connection task, in order.
//! - `connection`: one connection's task and its transport (plain TCP, then TLS).
//! - `s2s`: server-to-server: TLS of both ends, peer certificate names, outgoing
//!   connections by static route, dialback verifications.
//! - `websocket`: XMPP over WebSocket (RFC 7395) on `/xmpp-websocket`, `ws:` or `wss:`.
//! - `web`: `--web-port`, static files for the browser demo page.
//! - `handle`: a server on its own thread, for tests and tools.
//! - `database`: `--db`, the database on a thread of its own behind a bounded queue.

mod connection;
mod database;
mod dns;
mod handle;
mod outbox;
mod register;
mod s2s;
mod serve;
mod shared;
mod web;
mod websocket;

pub use database::{DB_QUEUE, account_jid};
pub use dns::{Dns, XMPP_SERVER_PORT};
pub use s2s::{S2sSettings, S2sTls, presented_ids};

pub use handle::{ServerHandle, ServerStats};
pub use serve::{Listeners, serve, serve_on, serve_with};
pub use web::serve_web;
pub use websocket::{MAX_MESSAGE_BYTES, WEBSOCKET_PATH};
pub use xmpp_host::tls::TlsMaterial;

use crate::hub::HubConfig;

/// How the shell runs: the hub, TLS, and logging.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The hub (domain, accounts, stream policy).
    pub hub: HubConfig,
    /// The TLS identity.
    pub tls: TlsMaterial,
    /// Log connections and hub decisions to stderr.
    pub log: bool,
    /// Also log every byte of XML in and out (inside TLS), for debugging interop.
    pub trace: bool,
    /// Federation (routes, TLS of s2s connections); `None`: no s2s. The hub federates when
    /// [`HubConfig::s2s`] is set too.
    pub s2s: Option<S2sSettings>,
}
