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

/// Refuse a stanza whose `to` is not a JID with `jid-malformed` (RFC 6120 §8.3.3.8), unless it
/// is an error itself (no error loops). The reply carries no `from`: it would be the
/// malformed address, and a stanza without `from` comes from the entity at the other end of
/// the stream (§8.1.2.1).
pub(crate) fn refuse_malformed_to(m: &mut Machine, stanza: &Element) {
    if stanza.attr("type") == Some("error") {
        return;
    }
    let mut reply = StanzaError::new(StanzaErrorCondition::JidMalformed).reply_to(stanza);
    reply
        .attrs_mut()
        .remove(&minidom::rxml::Namespace::NONE, "from");
    m.core.send(&reply);
}

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
/// (improper-addressing, RFC 6120 §4.9.3.7), and `from` must be at the component's domain
/// or a subdomain of it (invalid-from, §4.9.3.9), so a component cannot speak for anyone.
/// The checks are [`component_addresses`]'s.
pub(crate) fn component_stanza(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let Some(verdict) = component_addresses(m, element.attr("from"), element.attr("to"))? else {
        return Ok(());
    };
    deliver_component_stanza(m, element, verdict);
    Ok(())
}

/// What [`component_addresses`] found.
pub(crate) struct ComponentVerdict {
    /// `from`'s normalized form, when it differs from the attribute (case, width...).
    normalized_from: Option<String>,
    /// `to` is not a JID: refuse with `jid-malformed`.
    bad_to: bool,
}

/// The address checks of XEP-0114 §3 on a stanza from the component, shared by the element
/// and envelope paths: `to` and `from` present (else `improper-addressing`), `from` a JID at
/// the component's domain or a subdomain of it (else `invalid-from`), both returned as the
/// stream error; `to` must be a JID. `None` when the stream has no component (yet).
pub(crate) fn component_addresses(
    m: &mut Machine,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Option<ComponentVerdict>, ProtocolError> {
    let Side::ComponentServer(side) = &m.side else {
        return Ok(None);
    };
    let Some(domain) = &side.domain else {
        return Ok(None);
    };
    let (Some(from), Some(to)) = (from, to) else {
        return Err(m.fail(
            StreamErrorCondition::ImproperAddressing,
            "component stanza without to or from",
        ));
    };
    let checked = Jid::new(from).ok().filter(|from| {
        let host = from.domain();
        let ours = domain.domain();
        host == ours
            || host
                .strip_suffix(ours)
                .is_some_and(|prefix| prefix.ends_with('.'))
    });
    let Some(checked) = checked else {
        return Err(m.fail(
            StreamErrorCondition::InvalidFrom,
            "component stanza from outside its domain",
        ));
    };
    let normalized_from = (checked.as_str() != from).then(|| checked.as_str().to_owned());
    let bad_to = Jid::validate(to).is_err();
    Ok(Some(ComponentVerdict {
        normalized_from,
        bad_to,
    }))
}

/// Act on a component stanza's [`ComponentVerdict`] on the element path: refuse a malformed
/// `to` (as on a client stream: the stream goes on), else report the stanza with `from` in
/// its normalized form, so that routing by it needs no normalization of the host's own.
fn deliver_component_stanza(m: &mut Machine, mut element: Element, verdict: ComponentVerdict) {
    if verdict.bad_to {
        refuse_malformed_to(m, &element);
        return;
    }
    if let Some(normalized) = verdict.normalized_from {
        let from_attr = crate::codec::attr_name("from");
        element
            .attrs_mut()
            .insert(minidom::rxml::Namespace::NONE, from_attr, normalized);
    }
    m.core.event(Event::Stanza(element));
}

/// A component server in envelope mode: the checks of [`component_stanza`] on the decoded
/// header, no element built. Only a refusal (`jid-malformed`) or a `from` to normalize (both
/// rare) builds the element and takes the element path: the envelope's bytes are never
/// rewritten, so what the host gets holds `from` exactly as the element path would give it.
pub(crate) fn component_envelope(
    m: &mut Machine,
    envelope: xmpp_xml::Envelope,
) -> Result<(), ProtocolError> {
    let Some(verdict) = component_addresses(m, envelope.from(), envelope.to())? else {
        return Ok(());
    };
    if verdict.bad_to || verdict.normalized_from.is_some() {
        let Ok(element) = envelope.element() else {
            return Err(m.fail(
                StreamErrorCondition::InternalServerError,
                "a validated stanza did not rebuild",
            ));
        };
        deliver_component_stanza(m, element, verdict);
        return Ok(());
    }
    m.core
        .event(Event::StanzaEnvelope(std::sync::Arc::new(envelope)));
    Ok(())
}

/// Receiving c2s: a stanza from the bound client (RFC 6120 §8.1.2.1): `from`, when given,
/// must be the client's full JID or its account's bare JID (else `invalid-from`) and is
/// stamped with the full JID; a malformed `to` is refused with `jid-malformed` and the
/// stream goes on.
pub(crate) fn from_client(m: &mut Machine, mut stanza: Element) -> Result<(), ProtocolError> {
    if checked_from_client(m, &mut stanza)? {
        m.core.event(Event::Stanza(stanza));
    }
    Ok(())
}

/// The checks of [`from_client`], stamping `from` in place: whether to deliver the stanza
/// (`false` when it was refused). Takes the stanza by reference: this is the per-stanza hot
/// path, and each move of an `Element` is a copy.
pub(crate) fn checked_from_client(
    m: &mut Machine,
    stanza: &mut Element,
) -> Result<bool, ProtocolError> {
    // This is the per-stanza hot path: one pass over the attributes (a small ordered map,
    // un-namespaced ones first) instead of a lookup per name, and no JID is built.
    let (mut from, mut to) = (None, None);
    for ((ns, name), value) in stanza.attrs() {
        if !ns.is_none() {
            break;
        }
        match name.as_str() {
            "from" => from = Some(value.as_str()),
            "to" => to = Some(value.as_str()),
            _ => {}
        }
    }
    let Some(verdict) = client_addresses(m, from, to)? else {
        return Ok(false);
    };
    if !verdict.stamped {
        if let Side::Server(side) = &m.side {
            if let Some(jid) = &side.jid {
                // The attribute name is built once per stream.
                let from = jid.as_str().to_owned();
                stanza.attrs_mut().insert(
                    minidom::rxml::Namespace::NONE,
                    side.from_attr.clone(),
                    from,
                );
            }
        }
    }
    if verdict.bad_to {
        refuse_malformed_to(m, stanza);
        return Ok(false);
    }
    Ok(true)
}

/// What [`client_addresses`] found.
pub(crate) struct Verdict {
    /// `from` is already the client's full JID, byte for byte.
    stamped: bool,
    /// `to` is not a JID: refuse with `jid-malformed`.
    bad_to: bool,
}

/// The address checks of RFC 6120 §8.1.2.1 and §8.1.1.1 on a stanza from the bound client,
/// shared by the element and envelope paths: `from`, when given, must be the client's full
/// JID or its account's bare JID (else `invalid-from`, returned as the stream error); `to`
/// must be a JID. `None` when the stream has no bound client.
pub(crate) fn client_addresses(
    m: &mut Machine,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Option<Verdict>, ProtocolError> {
    let Side::Server(side) = &m.side else {
        return Ok(None);
    };
    let Some(jid) = &side.jid else {
        return Ok(None);
    };
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
    Ok(Some(Verdict { stamped, bad_to }))
}

/// Receiving c2s in envelope mode: the checks of [`from_client`] on the decoded header, no
/// element built. The bytes keep the client's `from` (see `Event::StanzaEnvelope`); only a
/// refusal (`jid-malformed`, rare) builds the element, for the error reply.
pub(crate) fn from_client_envelope(
    m: &mut Machine,
    envelope: xmpp_xml::Envelope,
) -> Result<(), ProtocolError> {
    let Some(verdict) = client_addresses(m, envelope.from(), envelope.to())? else {
        return Ok(());
    };
    if verdict.bad_to {
        if let Ok(mut element) = envelope.element() {
            return checked_from_client(m, &mut element).map(|_| ());
        }
        return Ok(());
    }
    m.core
        .event(Event::StanzaEnvelope(std::sync::Arc::new(envelope)));
    Ok(())
}
