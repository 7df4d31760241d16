//! Shared, seeded corpus generators for the criterion benches in `benches/benches/`.
//!
//! Run every bench with `cargo bench -p xmpp-benches`; see `BENCHMARKS.md`.
//!
//! - [`corpus::client_stream`]: a realistic `jabber:client` stream of any size.
//! - [`c2s`]: the in-memory client-to-server negotiation the `stream` and `s2s` benches time.

pub mod c2s;
pub mod corpus;
