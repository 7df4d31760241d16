//! RFC 6121 instant messaging and presence as pure state machines: typed message, presence and
//! iq stanzas, the roster (client cache and server processing), the subscription state machine,
//! and the presence broadcast and delivery rules a server applies.
//!
//! (Being built: see issue 6.)
#![forbid(unsafe_code)]
