//! Opening a stream (RFC 6120 §4.2, §4.7): what each role sends or expects first, on start
//! and on every restart.

use crate::machine::{Machine, Side};
use crate::steps;

/// Open (or reopen after a restart) our side of the stream.
pub(crate) fn open(m: &mut Machine) {
    match &m.side {
        Side::Component(_) => steps::component::open(m),
        Side::ComponentServer(_) => steps::component::expect_header(m),
    }
}

/// Before a close: a receiving entity that has not answered the peer's header yet sends its
/// own first (RFC 6120 §4.4: the close tag needs an open stream).
pub(crate) fn ensure_sent(m: &mut Machine) {
    if m.core.header_sent() {
        return;
    }
    if let Some(header) = m.core.fallback_header.take() {
        m.core.send_header(&header);
    }
}
