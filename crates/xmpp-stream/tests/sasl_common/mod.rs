//! What the SASL tests read from a pair's events.
#![allow(dead_code, reason = "each test file uses a part")]

use xmpp_sasl::Condition;
use xmpp_stream::{BareJid, CloseReason, Event, Mechanism};

/// The account and mechanism of the first `Authenticated`.
pub(crate) fn authenticated(events: &[Event]) -> Option<(BareJid, Mechanism)> {
    events.iter().find_map(|e| match e {
        Event::Authenticated { jid, mechanism } => Some((jid.clone(), *mechanism)),
        _ => None,
    })
}

/// The mechanism of the first `Authenticated`.
pub(crate) fn authenticated_with(events: &[Event]) -> Option<Mechanism> {
    authenticated(events).map(|(_, mechanism)| mechanism)
}

/// Why the stream closed.
pub(crate) fn closed(events: &[Event]) -> Option<&CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed { reason } => Some(reason),
        _ => None,
    })
}

/// The close of a final SASL `<failure/>` with `condition`.
pub(crate) fn auth_failed(condition: Condition) -> CloseReason {
    CloseReason::AuthenticationFailed {
        condition,
        text: None,
    }
}
