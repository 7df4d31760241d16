//! A negotiated stream (RFC 6120 §8): stanzas and other top-level elements reach the host;
//! a closing stream still delivers what the peer sends before its close.

use minidom::Element;
use xmpp_jid::Jid;
use xmpp_xml::{StanzaError, StanzaErrorCondition, StreamErrorCondition};

use crate::core::Phase;
use crate::error::ProtocolError;
use crate::machine::{Machine, Side};
use crate::output::Event;
use crate::rules::is_stanza_of;

/// Report a stanza.
pub(crate) fn stanza(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    m.core.event(Event::Stanza(element));
    Ok(())
}

/// Report a top-level element that is not a stanza (XEP-0198 `<r/>`...).
pub(crate) fn nonza(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    m.core.event(Event::Nonza(element));
    Ok(())
}

/// Closing: the peer may still send stanzas until its close arrives; anything else is
/// dropped.
pub(crate) fn while_closing(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    if m.core.phase == Phase::Closing && is_stanza_of(m.kind, &element) {
        m.core.event(Event::Stanza(element));
    }
    Ok(())
}

/// Nothing to do (the stream is over, or the element arrived where the table says it is
/// harmless).
pub(crate) fn ignore(_: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    Ok(())
}

/// A stanza from an external component (XEP-0114 §3): it must carry `to` and `from`
/// (improper-addressing, RFC 6120 §4.9.3.14), and `from` must be at the component's domain
/// or a subdomain of it (invalid-from, §4.9.3.9), so a component cannot speak for anyone.
pub(crate) fn component_stanza(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let Side::ComponentServer(side) = &m.side else {
        return Ok(());
    };
    let Some(domain) = &side.domain else {
        return Ok(());
    };
    let (Some(from), Some(to)) = (element.attr("from"), element.attr("to")) else {
        return Err(m.fail(
            StreamErrorCondition::ImproperAddressing,
            "component stanza without to or from",
        ));
    };
    let from_ok = Jid::new(from).is_ok_and(|from| {
        let host = from.domain();
        let ours = domain.domain();
        host == ours
            || host
                .strip_suffix(ours)
                .is_some_and(|prefix| prefix.ends_with('.'))
    });
    if !from_ok {
        return Err(m.fail(
            StreamErrorCondition::InvalidFrom,
            "component stanza from outside its domain",
        ));
    }
    if Jid::validate(to).is_err() {
        // As on a client stream: the stanza is refused, the stream goes on.
        if element.attr("type") != Some("error") {
            let reply = StanzaError::new(StanzaErrorCondition::JidMalformed).reply_to(&element);
            m.core.send(&reply);
        }
        return Ok(());
    }
    m.core.event(Event::Stanza(element));
    Ok(())
}
