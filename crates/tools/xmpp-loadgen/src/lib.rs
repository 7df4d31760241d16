//! A load generator for XMPP c2s servers, and a side-by-side comparison of the toolkit's
//! example server with Prosody and ejabberd.
//!
//! [`run`] opens N sessions to a server on loopback (never anywhere else): each is a
//! [`xmpp_stream::ClientStream`] with a seeded entropy source, driven by `xmpp-host`'s tokio
//! connection with rustls for STARTTLS. Every session authenticates as `user<i>` with SCRAM-SHA-1 or
//! SCRAM-SHA-256, binds and sends initial presence. Then all sessions stay idle for a while
//! (the server's resident memory is sampled), exchange ping/pong messages in pairs at a set
//! rate, and close. The [`Report`] carries logins per second, messages per second, round-trip
//! percentiles and memory per session. [`run_federated`] splits every pair across two
//! servers, so that each message crosses their server-to-server link.
//!
//! ```no_run
//! use xmpp_loadgen::{Options, Target, run};
//!
//! # async fn demo(pem: String) -> Result<(), xmpp_loadgen::Error> {
//! let target = Target::new("127.0.0.1:5222".parse().unwrap(), pem, None);
//! let report = run(&target, Options::new(100)).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! Binaries: `loadgen` (one server you started), `compare` (starts Prosody, ejabberd and
//! `xmpp-server` itself and prints one table) and `soak` ([`soak`]: thousands of
//! sessions, deliberate kills mid-negotiation and mid-stanza, a message storm, and an exact
//! account of lost messages; `tests/soak.rs` runs it against the example server and checks
//! the server's heap returns to its baseline). Their command lines share the flags in [`cli`].
//! `echo-peer` runs [`echo`], the trivial echo peer that measures the generator's own ceiling
//! (a measuring instrument, not an XMPP server; `compare --servers echo` starts it).
// A load generator does real I/O (sockets, clock, /proc), unlike the library crates the
// workspace's Sans-IO lints guard.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![forbid(unsafe_code)]

pub mod cli;
mod conn;
pub mod echo;
mod options;
pub mod procfs;
mod run;
mod scram;
mod session;
mod shared;
pub mod soak;

pub use options::Options;
pub use run::{Error, MAX_PHASE, MAX_SESSIONS, Remote, Report, Target, check, run, run_federated};
pub use scram::ScramChoice;

/// The multi-threaded tokio runtime every binary of this crate drives its run on, or a
/// printable reason it could not be built.
///
/// # Errors
/// When tokio cannot start its runtime (threads or the I/O driver).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))
}
