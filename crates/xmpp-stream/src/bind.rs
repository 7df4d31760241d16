//! Resource binding (RFC 6120 §7) and legacy session establishment (RFC 3921 §3): the IQs
//! both roles exchange.

use minidom::Element;

use crate::codec::attr_name as name;
use crate::features::ns;

/// `<iq type='set' id=...><bind><resource>..</resource>?</bind></iq>`.
pub(crate) fn bind_request(id: &str, resource: Option<&str>) -> Element {
    let mut bind = Element::bare("bind", ns::BIND);
    if let Some(resource) = resource {
        bind.append_child(
            Element::builder("resource", ns::BIND)
                .append(resource)
                .build(),
        );
    }
    Element::builder("iq", ns::JABBER_CLIENT)
        .attr(name("id"), id)
        .attr(name("type"), "set")
        .append(bind)
        .build()
}

/// `<iq type='result' id=...><bind><jid>..</jid></bind></iq>`.
pub(crate) fn bind_result(id: &str, jid: &str) -> Element {
    let bind = Element::builder("bind", ns::BIND)
        .append(Element::builder("jid", ns::BIND).append(jid).build())
        .build();
    Element::builder("iq", ns::JABBER_CLIENT)
        .attr(name("id"), id)
        .attr(name("type"), "result")
        .append(bind)
        .build()
}

/// `<iq type='set' id=...><session/></iq>`.
pub(crate) fn session_request(id: &str) -> Element {
    Element::builder("iq", ns::JABBER_CLIENT)
        .attr(name("id"), id)
        .attr(name("type"), "set")
        .append(Element::bare("session", ns::SESSION))
        .build()
}

/// An empty `<iq type='result'/>` answering `id`.
pub(crate) fn empty_result(id: &str) -> Element {
    Element::builder("iq", ns::JABBER_CLIENT)
        .attr(name("id"), id)
        .attr(name("type"), "result")
        .build()
}

/// What a bind request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BindRequest {
    pub(crate) id: String,
    pub(crate) resource: Option<String>,
}

/// Parse `<iq type='set'><bind/></iq>`; `None` if it is not a bind request.
pub(crate) fn parse_bind_request(iq: &Element) -> Option<BindRequest> {
    if !is_iq(iq, "set") {
        return None;
    }
    let bind = iq.get_child("bind", ns::BIND)?;
    let resource = bind
        .get_child("resource", ns::BIND)
        .map(Element::text)
        .filter(|r| !r.is_empty());
    Some(BindRequest {
        id: iq.attr("id").unwrap_or_default().to_owned(),
        resource,
    })
}

/// Whether `iq` is a session request.
pub(crate) fn is_session_request(iq: &Element) -> bool {
    is_iq(iq, "set") && iq.has_child("session", ns::SESSION)
}

/// Whether `element` is an `<iq/>` of the given type.
pub(crate) fn is_iq(element: &Element, kind: &str) -> bool {
    element.is("iq", ns::JABBER_CLIENT) && element.attr("type") == Some(kind)
}

/// The `<jid/>` of a bind result.
pub(crate) fn bound_jid(iq: &Element) -> Option<String> {
    Some(
        iq.get_child("bind", ns::BIND)?
            .get_child("jid", ns::BIND)?
            .text(),
    )
}
