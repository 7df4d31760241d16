//! Shared, seeded corpus generators for the criterion benches in `benches/benches/`.
//!
//! Run every bench with `cargo bench -p xmpp-benches`; see `BENCHMARKS.md`.
//!
//! - [`corpus::client_stream`]: a realistic `jabber:client` stream of any size.
//! - [`c2s`]: the in-memory client-to-server negotiation the `stream` and `s2s` benches time.
//! - [`heap::retained`]: the heap a bench's results keep, on the bench's counting allocator.

pub mod c2s;
pub mod corpus;
pub mod heap;
