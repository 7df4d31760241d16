//! Shared, seeded corpus generators for the criterion benches in `benches/benches/`.
//!
//! Run every bench with `cargo bench -p xmpp-benches`; see `BENCHMARKS.md`.
//!
//! - [`corpus::client_stream`]: a realistic `jabber:client` stream of any size.

pub mod corpus;
