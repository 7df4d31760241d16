//! The iqs addressed to the server or to an account that the IM machine leaves to the host:
//! XEP-0199 ping, a minimal XEP-0030 disco#info of the server and its disco#items (the
//! configured XEP-0114 components, as Prosody and ejabberd list theirs) are answered, every
//! other get or set gets `service-unavailable`.

use minidom::Element;
use xmpp_jid::BareJid;
use xmpp_stream::{Instant, StanzaErrorCondition};

use super::Hub;

impl Hub {
    /// Iqs to the server or an account that the IM machine leaves to the host: ping, a
    /// minimal disco#info and the disco#items of the server are answered, everything else
    /// gets `service-unavailable`.
    pub(super) fn unhandled(&mut self, now: Instant, stanza: &Element) {
        if stanza.name() != "iq" {
            return;
        }
        let kind = stanza.attr("type").unwrap_or_default();
        if kind != "get" && kind != "set" {
            return;
        }
        let payload = stanza.children().next();
        let to_server = stanza
            .attr("to")
            .is_none_or(|to| to == self.config.domain.as_str());
        let answer = match payload.map(|p| (p.name(), p.ns())) {
            Some(("ping", ns)) if ns == "urn:xmpp:ping" => Some(Vec::new()),
            Some(("query", ns))
                if to_server && kind == "get" && ns == "http://jabber.org/protocol/disco#info" =>
            {
                Some(vec![disco_info(&self.config.service_features())])
            }
            Some(("query", ns)) if to_server && kind == "get" && ns == NS_DISCO_ITEMS => {
                Some(vec![disco_items(self.components.domains())])
            }
            _ => None,
        };
        match answer {
            Some(children) => {
                let mut reply = Element::builder("iq", "jabber:client")
                    .attr(name("type"), "result")
                    .attr(name("id"), stanza.attr("id"))
                    .attr(name("to"), stanza.attr("from"))
                    .attr(name("from"), stanza.attr("to"))
                    .build();
                for child in children {
                    reply.append_child(child);
                }
                self.reply_to_sender(now, stanza, &reply);
            }
            None => self.error_reply(now, stanza, StanzaErrorCondition::ServiceUnavailable),
        }
    }
}

fn name(s: &'static str) -> minidom::rxml::NcName {
    // Static attribute names are valid NCNames.
    #[allow(clippy::expect_used)]
    s.try_into().expect("static NCName")
}

const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// The server's items: one per configured component (connected or not: the address is
/// served either way, by the component or by `service-unavailable`).
fn disco_items<'a>(components: impl Iterator<Item = &'a BareJid>) -> Element {
    let mut query = Element::builder("query", NS_DISCO_ITEMS).build();
    for domain in components {
        query.append_child(
            Element::builder("item", NS_DISCO_ITEMS)
                .attr(name("jid"), domain.as_str())
                .build(),
        );
    }
    query
}

/// The server's identity and features: the protocols the host answers itself, then every
/// advertised row's `var` (the same rows as the stream features).
fn disco_info(rows: &[xmpp_im::ServiceFeature]) -> Element {
    let feature = |var: &str| {
        Element::builder("feature", "http://jabber.org/protocol/disco#info")
            .attr(name("var"), var)
            .build()
    };
    Element::builder("query", "http://jabber.org/protocol/disco#info")
        .append(
            Element::builder("identity", "http://jabber.org/protocol/disco#info")
                .attr(name("category"), "server")
                .attr(name("type"), "im")
                .attr(name("name"), "xmpp-server example")
                .build(),
        )
        .append(feature("http://jabber.org/protocol/disco#info"))
        .append(feature(NS_DISCO_ITEMS))
        .append(feature("urn:xmpp:ping"))
        .append_all(xmpp_im::features::disco_vars(rows).map(feature))
        .build()
}
