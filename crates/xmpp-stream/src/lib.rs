//! RFC 6120 stream negotiation as deterministic Sans-IO state machines for both roles: stream
//! header, features, STARTTLS, SASL, restart, resource binding, errors, keepalive and close.
//!
//! Bytes go in with `handle_input(now, bytes)`, time with `handle_timeout(now)`; transmissions,
//! "start TLS now" and events come out of one ordered `poll_output()` queue.
//!
//! (Being built: see issue 5.)
#![forbid(unsafe_code)]
