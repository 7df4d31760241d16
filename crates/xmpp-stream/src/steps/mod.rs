//! One module per negotiation step. Each holds the handlers the rule table
//! ([`crate::rules::RULES`]) points to and the wire elements of its step; the table decides
//! when a handler runs, the handler what it means.

pub(crate) mod component;
pub(crate) mod established;
pub(crate) mod header;
