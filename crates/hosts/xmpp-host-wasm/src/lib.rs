//! A WebAssembly host for the `xmpp-stream` machines: feed bytes, take bytes, take events.
//!
//! Built for `wasm32-unknown-unknown`, this crate exports a small C ABI (`xw_*` functions,
//! see [`abi`]) that any WebAssembly runtime can drive with nothing but numbers and its view
//! of linear memory: no `wasm-bindgen`, no generated glue, no dependency beyond the machines.
//! `tests/node/negotiate.mjs` drives a [`ClientStream`](xmpp_stream::ClientStream) against a
//! [`ServerStream`](xmpp_stream::ServerStream), both inside one module instance, shuttling
//! bytes by hand through STARTTLS (fake TLS: fixed `tls-exporter` bytes, as the `Pair`
//! harness does), SASL, bind, a message each way and the closing handshake.
//!
//! The layers, from the wire inwards:
//!
//! - [`abi`]: the exported functions. Data crosses through two buffers the module owns: the
//!   caller asks `xw_input(len)` for an address, writes there, then calls e.g.
//!   `xw_feed(handle, now, len)`; results land in the output buffer (`xw_output()`) and the
//!   call returns their length. Time is `u64` milliseconds the caller counts; negative
//!   results are error codes with text from `xw_last_error`.
//! - [`Module`]: the same calls in safe Rust, with the buffers (what native tests drive).
//! - [`Host`]: machines by [`Handle`], with their pending bytes and events, over slices.
//! - `browser` (feature `browser`): the client machine for a web page through
//!   `wasm-bindgen`, over the browser's WebSocket (RFC 7395), `crypto.getRandomValues` and
//!   `performance.now()`; `web/` holds the page that uses it.
//!
//! Events come out as a JSON array of objects, each with `type` (`StreamOpened`,
//! `StartTls`, `Secured`, `SaslAttemptFailed`, `Authenticated`, `Negotiated`, `Stanza`, `Nonza`, `Redirect`,
//! `Closed`) and `summary` (the `xmpp-stream` transcript form, e.g. `Negotiated
//! juliet@im.example.com/balcony`), plus the event's fields (`jid`, `mechanism`, `xml`,
//! `reason`, ...).
//!
//! **Why this crate allows one kind of unsafe code.** The workspace forbids `unsafe_code`.
//! Exporting an unmangled symbol needs `#[unsafe(no_mangle)]` (edition 2024), which that lint
//! counts, so this crate has its own `[lints]` table: everything as in the workspace except
//! `unsafe_code = "deny"`, lifted in the [`abi`] module alone. That module contains no
//! `unsafe` block at all: it never turns a caller's pointer into a slice, because all data
//! travels through module-owned buffers.
//!
//! The loop, in Rust (JavaScript does the same through the ABI):
//!
//! ```
//! use xmpp_stream::{ChannelBindingType, Instant};
//! use xmpp_host_wasm::{Handle, Host};
//!
//! let mut host = Host::new();
//! let client = host.create_client(1, "jid=juliet@im.example.com\npassword=r0m30\nresource=balcony")?;
//! let server = host.create_server(2, "domain=im.example.com\nuser=juliet r0m30")?;
//! let now = Instant::ZERO;
//! host.start(server, now)?;
//! host.start(client, now)?;
//! let fake_tls = Some((ChannelBindingType::TlsExporter, &[0x5a; 32][..]));
//! let mut log = Vec::new();
//! // Shuttle until neither side has anything left to say.
//! loop {
//!     let mut moved = false;
//!     for (from, to) in [(client, server), (server, client)] {
//!         let bytes = host.take_bytes(from)?;
//!         if !bytes.is_empty() {
//!             moved = true;
//!             let _ = host.feed(to, now, &bytes);
//!         }
//!         let events = host.take_events(from)?;
//!         if events.contains("\"StartTls\"") {
//!             moved = true;
//!             host.tls_established(from, now, fake_tls)?;
//!         }
//!         log.push(events);
//!     }
//!     if !moved {
//!         break;
//!     }
//! }
//! assert!(log.iter().any(|e| e.contains("Negotiated juliet@im.example.com/balcony")));
//! # Ok::<(), xmpp_host_wasm::HostError>(())
//! ```
pub mod abi;
#[cfg(feature = "browser")]
pub mod browser;
mod host;
mod json;
mod module;
pub mod setup;

pub use host::{Handle, Host, HostError, MAX_MACHINES, MAX_PENDING, replay};
pub use module::{MAX_INPUT, Module};
