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

/// Receiving c2s: a stanza from the bound client (RFC 6120 §8.1.2.1): `from`, when given,
/// must be the client's full JID or its account's bare JID (else `invalid-from`) and is
/// stamped with the full JID; a malformed `to` is refused with `jid-malformed` and the
/// stream goes on.
pub(crate) fn from_client(m: &mut Machine, stanza: Element) -> Result<(), ProtocolError> {
    if let Some(stanza) = checked_from_client(m, stanza)? {
        m.core.event(Event::Stanza(stanza));
    }
    Ok(())
}

/// The checks of [`from_client`]: the stanza to deliver, or `None` when it was refused.
pub(crate) fn checked_from_client(
    m: &mut Machine,
    mut stanza: Element,
) -> Result<Option<Element>, ProtocolError> {
    let Side::Server(side) = &m.side else {
        return Ok(None);
    };
    let Some(jid) = &side.jid else {
        return Ok(None);
    };
    // This is the per-stanza hot path: one pass over the attributes (a small ordered map,
    // un-namespaced ones first) instead of a lookup per name, and no JID is built.
    let (mut from, mut to, mut kind) = (None, None, None);
    for ((ns, name), value) in stanza.attrs() {
        if !ns.is_none() {
            break;
        }
        match name.as_str() {
            "from" => from = Some(value.as_str()),
            "to" => to = Some(value.as_str()),
            "type" => kind = Some(value.as_str()),
            _ => {}
        }
    }
    let stamped = match from {
        None => false,
        // Already our full JID, byte for byte: nothing to check or rewrite.
        Some(from) if from == jid.as_str() => true,
        // The full JID, or the bare JID of the account (RFC 6120 §8.1.2.1), compared after
        // the JID's own normalization.
        Some(from) => {
            let ours = Jid::new(from).is_ok_and(|from| {
                from.as_str() == jid.as_str()
                    || (from.resource().is_none() && from.to_bare() == jid.to_bare())
            });
            if !ours {
                return Err(m.fail(
                    StreamErrorCondition::InvalidFrom,
                    "stanza from another address",
                ));
            }
            false
        }
    };
    // `to` is passed on as written: validated (RFC 7622 via xmpp-jid) without building a JID.
    let bad_to = to.is_some_and(|to| Jid::validate(to).is_err());
    let is_error = kind == Some("error");
    if !stamped {
        // The attribute name is built once per stream.
        let from = jid.as_str().to_owned();
        stanza
            .attrs_mut()
            .insert(minidom::rxml::Namespace::NONE, side.from_attr.clone(), from);
    }
    if bad_to {
        if !is_error {
            let reply = StanzaError::new(StanzaErrorCondition::JidMalformed).reply_to(&stanza);
            m.core.send(&reply);
        }
        return Ok(None);
    }
    Ok(Some(stanza))
}
