//! One module per negotiation step. Each holds the handlers the rule table
//! ([`crate::rules::RULES`]) points to; the table decides when a handler runs, the handler
//! what it means. Wire codecs that never change state are beside them
//! ([`crate::sasl`], [`crate::bind`], [`crate::features`]).

// Every handler has the table's signature (`fn(&mut Machine, Element) -> Result<(),
// ProtocolError>`), whether or not it consumes the element or can fail.
#![allow(clippy::needless_pass_by_value, clippy::unnecessary_wraps)]

pub(crate) mod bind;
pub(crate) mod component;
pub(crate) mod established;
pub(crate) mod features;
pub(crate) mod header;
pub(crate) mod ping;
pub(crate) mod register;
pub(crate) mod s2s;
pub(crate) mod sasl;
pub(crate) mod session;
pub(crate) mod sm;
pub(crate) mod starttls;
