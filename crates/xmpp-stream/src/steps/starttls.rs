//! STARTTLS (RFC 6120 §5), both ends, and its three elements.

use minidom::Element;
use xmpp_xml::StreamErrorCondition;

use crate::config::TlsPolicy;
use crate::error::ProtocolError;
use crate::features::ns;
use crate::flags::SessionFlags;
use crate::machine::{Machine, Side};
use crate::output::CloseReason;
use crate::rules::Step;

/// The elements of the STARTTLS exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsElement {
    StartTls,
    Proceed,
    Failure,
}

impl TlsElement {
    const fn name(self) -> &'static str {
        match self {
            TlsElement::StartTls => "starttls",
            TlsElement::Proceed => "proceed",
            TlsElement::Failure => "failure",
        }
    }

    pub(crate) fn parse(element: &Element) -> Option<TlsElement> {
        if !element.has_ns(ns::TLS) {
            return None;
        }
        [
            TlsElement::StartTls,
            TlsElement::Proceed,
            TlsElement::Failure,
        ]
        .into_iter()
        .find(|kind| element.name() == kind.name())
    }

    pub(crate) fn to_element(self) -> Element {
        Element::bare(self.name(), ns::TLS)
    }
}

/// Initiating: ask for TLS.
pub(crate) fn request(m: &mut Machine) {
    m.core.send(&TlsElement::StartTls.to_element());
    m.step = Step::AwaitProceed;
}

/// Initiating: `<proceed/>` (§5.4.2.3). Bytes the server (or an attacker on the path)
/// pipelined after it would be read as if they had come through TLS: fatal.
pub(crate) fn proceed(m: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    if m.core.has_unparsed_input() {
        return Err(m.fail(
            StreamErrorCondition::PolicyViolation,
            "data pipelined after <proceed/>",
        ));
    }
    m.step = Step::AwaitTls;
    m.core.start_tls();
    Ok(())
}

/// Initiating: `<failure/>` (§5.4.2.2): the server will close; so do we.
pub(crate) fn refused(m: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    m.give_up(CloseReason::TlsFailed);
    Ok(())
}

/// Receiving: an element of the STARTTLS namespace (§5.4.2.1). Only `<starttls/>`, only
/// while offered; bytes pipelined after it would be taken as sent inside TLS (the STARTTLS
/// command-injection attack).
pub(crate) fn starttls(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let policy = match &m.side {
        Side::Server(side) => side.config.tls,
        Side::S2s(side) => side.config.tls,
        _ => return Ok(()),
    };
    let offered = !m
        .core
        .flags
        .intersects(SessionFlags::SECURE | SessionFlags::AUTHENTICATED)
        && policy != TlsPolicy::Disabled;
    if TlsElement::parse(&element) != Some(TlsElement::StartTls) || !offered {
        return Err(m.fail(
            StreamErrorCondition::PolicyViolation,
            "STARTTLS not offered",
        ));
    }
    if m.core.has_unparsed_input() {
        return Err(m.fail(
            StreamErrorCondition::PolicyViolation,
            "data pipelined after <starttls/>",
        ));
    }
    m.core.send(&TlsElement::Proceed.to_element());
    m.step = Step::AwaitTls;
    m.core.start_tls();
    Ok(())
}
