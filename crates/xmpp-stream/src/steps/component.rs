//! The external component protocol (XEP-0114 §3), both ends: the component opens a
//! `jabber:component:accept` stream to its own domain, the server answers with a stream id,
//! the component proves it knows the shared secret with `<handshake/>` = lowercase hex
//! SHA-1(stream id + secret), and the server answers with an empty `<handshake/>`. No
//! features, no TLS negotiation, no SASL.

use minidom::Element;
use sha1::{Digest, Sha1};
use xmpp_jid::BareJid;
use xmpp_xml::{ContentNamespace, StreamErrorCondition, StreamHeader};

use crate::component::{ComponentBackend, ComponentConfig};
use crate::entropy::random_token;
use crate::error::ProtocolError;
use crate::flags::SessionFlags;
use crate::machine::{Machine, Side};
use crate::output::Event;
use crate::rules::Step;

/// Longest handshake text looked at (40 hex digits; anything longer is wrong).
const MAX_HANDSHAKE: usize = 64;

/// The component's end.
pub(crate) struct ComponentSide {
    pub(crate) config: ComponentConfig,
}

/// The server's end.
pub(crate) struct ComponentServerSide {
    pub(crate) backend: Box<dyn ComponentBackend + Send>,
    /// The component's domain, once its header named a configured one.
    pub(crate) domain: Option<BareJid>,
    /// Its secret, from the backend, until the handshake is checked.
    secret: Option<String>,
}

impl ComponentServerSide {
    pub(crate) fn new(backend: Box<dyn ComponentBackend + Send>) -> Self {
        ComponentServerSide {
            backend,
            domain: None,
            secret: None,
        }
    }
}

/// The handshake value: lowercase hex SHA-1 of the stream id followed by the secret.
pub(crate) fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let mut hash = Sha1::new();
    hash.update(stream_id.as_bytes());
    hash.update(secret.as_bytes());
    crate::codec::hex_lower(&hash.finalize())
}

/// Compare two handshake values without an early exit on the first differing byte, and
/// without regard to the case of hex digits (some components send uppercase).
fn same_digest(expected: &str, given: &str) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    expected
        .bytes()
        .zip(given.bytes())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b.to_ascii_lowercase()))
        == 0
}

fn handshake_element(text: Option<&str>) -> Element {
    let mut element = Element::bare("handshake", xmpp_xml::NS_COMPONENT_ACCEPT);
    if let Some(text) = text {
        element.append_text_node(text);
    }
    element
}

// ----- the component's end -----

/// Open the stream: `to` is our own domain; XEP-0114 streams carry no version.
pub(crate) fn open(m: &mut Machine) {
    let Side::Component(side) = &m.side else {
        return;
    };
    let mut header = StreamHeader::new(ContentNamespace::ComponentAccept);
    header.version = None;
    header.to = Some(side.config.domain.as_str().to_owned());
    m.core.send_header(&header);
    m.step = Step::AwaitHeader;
}

/// The server's header: it must be a component stream and carry the id we hash.
pub(crate) fn server_header(m: &mut Machine, header: &StreamHeader) -> Result<(), ProtocolError> {
    if header.content_namespace != Some(ContentNamespace::ComponentAccept) {
        return Err(m.fail(
            StreamErrorCondition::InvalidNamespace,
            "server stream is not jabber:component:accept",
        ));
    }
    let Some(id) = header.id.clone().filter(|id| !id.is_empty()) else {
        return Err(m.fail(
            StreamErrorCondition::InvalidXml,
            "server stream has no id to hash",
        ));
    };
    let Side::Component(side) = &m.side else {
        return Ok(());
    };
    let digest = handshake_digest(&id, &side.config.secret);
    m.stream_id = Some(id);
    m.core.event(Event::StreamOpened {
        id: header.id.clone(),
        from: header
            .from
            .as_deref()
            .and_then(|from| xmpp_jid::Jid::new(from).ok()),
        lang: header.lang.clone(),
    });
    m.core.send(&handshake_element(Some(&digest)));
    m.step = Step::AwaitHandshake;
    Ok(())
}

/// The server's empty `<handshake/>`: we are connected.
pub(crate) fn handshake_accepted(m: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    let Side::Component(side) = &m.side else {
        return Ok(());
    };
    let domain = side.config.domain.clone();
    established(m, domain);
    Ok(())
}

fn established(m: &mut Machine, domain: BareJid) {
    m.core.flags |= SessionFlags::AUTHENTICATED;
    m.step = Step::Established;
    m.core.negotiated();
    m.core.event(Event::ComponentNegotiated { domain });
}

// ----- the server's end -----

/// Wait for the component's header; a stream error before ours goes out behind a plain
/// header of ours (RFC 6120 §4.9.1.2).
pub(crate) fn expect_header(m: &mut Machine) {
    let mut fallback = StreamHeader::new(ContentNamespace::ComponentAccept);
    fallback.version = None;
    m.core.fallback_header = Some(Box::new(fallback));
    m.step = Step::AwaitHeader;
}

/// The component's header: answer with ours (a fresh id, `from` = the component's domain),
/// then check the namespace and that `to` names a component the host knows.
pub(crate) fn component_header(
    m: &mut Machine,
    header: &StreamHeader,
) -> Result<(), ProtocolError> {
    let Side::ComponentServer(side) = &mut m.side else {
        return Ok(());
    };
    // The component's domain and secret, if `to` names a configured one. Our header says
    // `from` only then: it must not claim to be an unknown domain.
    let known = crate::steps::header::domain(header.to.as_deref())
        .and_then(|domain| side.backend.secret(&domain).map(|secret| (domain, secret)));
    let id = random_token(
        m.core.entropy.as_mut(),
        crate::steps::header::STREAM_ID_BYTES,
    );
    let mut ours = StreamHeader::new(ContentNamespace::ComponentAccept);
    ours.version = None;
    ours.id = Some(id.clone());
    ours.from = known.as_ref().map(|(domain, _)| domain.as_str().to_owned());
    m.core.send_header(&ours);
    m.stream_id = Some(id.clone());
    if header.content_namespace != Some(ContentNamespace::ComponentAccept) {
        return Err(m.fail(
            StreamErrorCondition::InvalidNamespace,
            "stream is not jabber:component:accept",
        ));
    }
    let Some((domain, secret)) = known else {
        return Err(m.fail(
            StreamErrorCondition::HostUnknown,
            "stream to is not a configured component",
        ));
    };
    if let Side::ComponentServer(side) = &mut m.side {
        side.domain = Some(domain);
        side.secret = Some(secret);
    }
    m.core.event(Event::StreamOpened {
        id: Some(id),
        from: header
            .from
            .as_deref()
            .and_then(|from| xmpp_jid::Jid::new(from).ok()),
        lang: header.lang.clone(),
    });
    m.step = Step::AwaitHandshake;
    Ok(())
}

/// The component's `<handshake/>`: the right digest, and no other component connected for
/// the domain (conflict), or the stream ends.
pub(crate) fn verify_handshake(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let Side::ComponentServer(side) = &mut m.side else {
        return Ok(());
    };
    let (Some(domain), Some(secret), Some(id)) = (
        side.domain.clone(),
        side.secret.take(),
        m.stream_id.as_deref(),
    ) else {
        return Ok(());
    };
    // Character data only: the digest, optionally surrounded by whitespace.
    let text = element.text();
    let given = text.trim();
    let valid = element.children().next().is_none()
        && given.len() <= MAX_HANDSHAKE
        && same_digest(&handshake_digest(id, &secret), given);
    if !valid {
        return Err(m.fail(
            StreamErrorCondition::NotAuthorized,
            "handshake does not match the secret",
        ));
    }
    if side.backend.is_connected(&domain) {
        return Err(m.fail(
            StreamErrorCondition::Conflict,
            "a component for this domain is already connected",
        ));
    }
    m.core.send(&handshake_element(None));
    established(m, domain);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_lowercase_hex_sha1_of_id_and_secret() {
        // sha1("3BF96D32sharedsecret"), computed independently with Python's hashlib.
        assert_eq!(
            handshake_digest("3BF96D32", "sharedsecret"),
            "3b6c216d9b55a7b4f3e82ab3e10cb81569f115d4"
        );
        assert!(same_digest(
            "3b6c216d9b55a7b4f3e82ab3e10cb81569f115d4",
            "3B6C216D9B55A7B4F3E82AB3E10CB81569F115D4"
        ));
        assert!(!same_digest("ab", "ac"));
        assert!(!same_digest("ab", "abc"));
    }
}
