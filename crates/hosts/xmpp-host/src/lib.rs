//! Hosts for the `xmpp-stream` machines: the code between a socket and a Sans-IO machine
//! that every host writes once. Small and documented on purpose: copy from it.
//!
//! - [`blocking`]: `std::net` + `rustls`, one [`blocking::Connection`] for every machine:
//!   client ([`connect`](blocking::Connection::connect): STARTTLS or direct TLS), server
//!   ([`accept`](blocking::Connection::accept)), and both ends of a XEP-0114 component
//!   stream ([`connect_component`](blocking::Connection::connect_component),
//!   [`accept_component`](blocking::Connection::accept_component)).
//! - [`asynchronous`]: the same machines under `tokio` + `tokio-rustls`.
//! - [`driver`]: what both share, with no I/O: the machine ([`xmpp_stream::AnyStream`], any
//!   role), the clock, the event queue and the recorder, turning the machine's outputs into
//!   the few actions an I/O loop carries out.
//! - [`websocket`]: XMPP over WebSocket (RFC 7395) for a client: the same
//!   [`asynchronous::AsyncConnection`], one WebSocket text message per element.
//! - [`tls`]: the one TLS helper of every host: `rustls` configurations (trust a PEM file, or
//!   explicitly accept anything), a server's [`tls::TlsMaterial`], and the channel-binding
//!   data (`tls-exporter`, `tls-server-end-point`) the machines use for SCRAM `-PLUS`.
//! - [`Redirects`]: the one `see-other-host` policy (a bound, no downgrade) of both drivers'
//!   `connect_following` and the example client.
//! - [`Recorder`]: writes a real session as a transcript that `xmpp_stream::transcript`
//!   replays offline (see `testdata/transcripts/real/` and `real-component/`).
//!
//! `examples/demo.rs` runs a client and a server in memory over real TLS (the README's demo);
//! `examples/client.rs` is a command-line client for any server; `tests/interop_client.rs`
//! runs it against real Prosody and ejabberd servers (see this crate's README).
//!
//! ```no_run
//! use std::time::Duration;
//! use xmpp_host::blocking::{ClientOptions, Connection};
//! use xmpp_host::tls::{Trust, Versions, client_config};
//! use xmpp_host::OsEntropy;
//! use xmpp_stream::{BareJid, ClientConfig};
//!
//! let tls = client_config(&Trust::Pem(std::fs::read("ca.pem")?), Versions::Any)?;
//! let options = ClientOptions::new("127.0.0.1:5222".parse()?, "localhost", tls);
//! let config = ClientConfig::new(BareJid::new("alice@localhost")?, "secret");
//! let mut client = Connection::connect(&options, config, OsEntropy::new())?;
//! let jid = client.negotiate(Duration::from_secs(10))?;
//! println!("bound as {jid}");
//! client.close(Duration::from_secs(5))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
// Drivers do real I/O (sockets, clocks, OS randomness, threads), unlike the library crates.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![forbid(unsafe_code)]

pub mod asynchronous;
pub mod blocking;
pub mod cli;
pub mod driver;
mod entropy;
mod error;
mod family;
pub mod matrix;
mod options;
mod record;
mod redirect;
pub mod tls;
pub mod websocket;

pub use entropy::OsEntropy;
pub use error::{Clock, Error};
pub use family::mechanism_family;
pub use record::Recorder;
pub use redirect::Redirects;
