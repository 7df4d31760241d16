//! Resource binding (RFC 6120 §7), both ends, and the client's legacy session request
//! (RFC 3921 §3) that may follow it. The IQs are built and parsed by [`crate::bind`].

use minidom::Element;
use xmpp_jid::FullJid;
use xmpp_xml::{StanzaError, StanzaErrorCondition, StreamErrorCondition};

use crate::bind;
use crate::client::PendingIq;
use crate::entropy::random_token;
use crate::error::ProtocolError;
use crate::features::ns;
use crate::machine::{Machine, Side};
use crate::output::{CloseReason, Event};
use crate::rules::Step;

fn new_id(m: &mut Machine) -> String {
    random_token(m.core.entropy.as_mut(), 6)
}

/// Client: ask to bind (the configured resource when `requested`, else a server-chosen one).
pub(crate) fn request(m: &mut Machine, requested: bool, session: bool) {
    let id = new_id(m);
    let Side::Client(side) = &mut m.side else {
        return;
    };
    let resource = if requested {
        side.config.resource.clone()
    } else {
        None
    };
    m.core.send(&bind::bind_request(&id, resource.as_deref()));
    side.pending = Some(Box::new(PendingIq {
        id,
        requested,
        session,
        bound: None,
    }));
    m.step = Step::Bind;
}

/// Client: the reply to our bind (§7.6.2, §7.7) or legacy session request. A conflict on the
/// requested resource retries with a server-chosen one (§7.7.2.2); another error ends the
/// stream; a result without a full JID of our account is `invalid-xml`.
pub(crate) fn reply(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let Side::Client(side) = &mut m.side else {
        return Ok(());
    };
    let Some(pending) = side.pending.take() else {
        return Ok(());
    };
    if element.attr("id") != Some(pending.id.as_str()) {
        return Err(m.fail(
            StreamErrorCondition::UnsupportedStanzaType,
            "expected the bind or session reply",
        ));
    }
    if bind::is_iq(&element, "error") {
        let error = element
            .get_child("error", ns::JABBER_CLIENT)
            .and_then(|e| StanzaError::from_element(e).ok())
            .unwrap_or_else(|| StanzaError::new(StanzaErrorCondition::UndefinedCondition));
        if pending.requested
            && pending.bound.is_none()
            && error.condition == StanzaErrorCondition::Conflict
        {
            request(m, false, pending.session);
            return Ok(());
        }
        m.give_up(CloseReason::BindFailed(error));
        return Ok(());
    }
    if !bind::is_iq(&element, "result") {
        return Err(m.fail(
            StreamErrorCondition::UnsupportedStanzaType,
            "bind reply is not a result",
        ));
    }
    if let Some(jid) = pending.bound {
        ready(m, jid);
        return Ok(());
    }
    let jid = bind::bound_jid(&element).and_then(|text| FullJid::new(&text).ok());
    let Some(jid) = jid.filter(|jid| jid.to_bare() == side.config.jid) else {
        return Err(m.fail(
            StreamErrorCondition::InvalidXml,
            "bind result carries no full JID of our account",
        ));
    };
    if pending.session {
        let id = new_id(m);
        m.core.send(&bind::session_request(&id));
        if let Side::Client(side) = &mut m.side {
            side.pending = Some(Box::new(PendingIq {
                id,
                requested: pending.requested,
                session: true,
                bound: Some(jid),
            }));
        }
    } else {
        ready(m, jid);
    }
    Ok(())
}

/// Client: negotiated. Report it and send what the host queued meanwhile.
fn ready(m: &mut Machine, jid: FullJid) {
    m.step = Step::Established;
    m.core.negotiated();
    let Side::Client(side) = &mut m.side else {
        return;
    };
    side.jid = Some(jid.clone());
    m.core.event(Event::Negotiated {
        jid,
        extra_features: std::mem::take(&mut side.extra_features),
    });
    // XEP-0198: enabled before the queued stanzas go out, so that they count.
    if side.config.sm.enabled && side.sm_offered {
        crate::steps::sm::request_enable(m);
    }
    crate::steps::sm::flush_host_queue(m);
}

/// Server: an `<iq/>` after authentication, before binding: a bind request binds (the
/// requested resource or a generated one, if the backend agrees); any other is the table's
/// default (§7.1: nothing but binding until a resource is bound).
pub(crate) fn serve(m: &mut Machine, iq: Element) -> Result<(), ProtocolError> {
    let Some(request) = bind::parse_bind_request(&iq) else {
        return Err(m.reject());
    };
    let Side::Server(side) = &m.side else {
        return Ok(());
    };
    let Some(account) = side.account.clone() else {
        return Ok(());
    };
    let resource = match request.resource.clone() {
        Some(resource) => resource,
        None => generated_resource(m),
    };
    let Side::Server(side) = &mut m.side else {
        return Ok(());
    };
    let result = account
        .with_resource(&resource)
        .map_err(|_| StanzaErrorCondition::BadRequest)
        .and_then(|jid| side.backend.check_bind(&jid).map(|()| jid));
    match result {
        Ok(jid) => {
            m.core.send(&bind::bind_result(&request.id, jid.as_str()));
            side.jid = Some(jid.clone());
            m.step = Step::Established;
            m.core.negotiated();
            m.core.event(Event::Negotiated {
                jid,
                extra_features: Vec::new(),
            });
        }
        Err(condition) => {
            let reply = StanzaError::new(condition).reply_to(&iq);
            m.core.send(&reply);
        }
    }
    Ok(())
}

/// A resource for a client that asked for none: 16 hex digits of entropy.
fn generated_resource(m: &mut Machine) -> String {
    let mut bytes = [0u8; 8];
    m.core.entropy.fill(&mut bytes);
    crate::codec::hex_lower(&bytes)
}
