//! Shared, seeded corpus generators for the criterion benches in `benches/benches/`.
//!
//! Run every bench with `cargo bench -p xmpp-benches`; see `BENCHMARKS.md`.
