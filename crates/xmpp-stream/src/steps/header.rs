//! Opening a stream (RFC 6120 §4.2, §4.7): what each role sends or expects first, on start
//! and on every restart, and the c2s header checks of both ends.

use xmpp_jid::{BareJid, Jid};
use xmpp_xml::{ContentNamespace, StreamErrorCondition, StreamHeader};

use crate::entropy::random_token;
use crate::error::ProtocolError;
use crate::flags::SessionFlags;
use crate::machine::{Machine, Side};
use crate::output::Event;
use crate::rules::Step;
use crate::steps;

/// Random bytes in a stream id (160 bits, RFC 6120 §4.7.3 asks for at least 128).
pub(crate) const STREAM_ID_BYTES: usize = 20;

/// A domain-only JID (no localpart, no resource) from a header or attribute value: what the
/// `to` and `from` of component and server-to-server headers must be.
pub(crate) fn domain(value: Option<&str>) -> Option<BareJid> {
    value
        .and_then(|value| BareJid::new(value).ok())
        .filter(|jid| jid.node().is_none())
}

/// Open (or reopen after a restart) our side of the stream.
pub(crate) fn open(m: &mut Machine) {
    match &m.side {
        Side::Client(side) => {
            let mut header = StreamHeader::new(ContentNamespace::Client);
            header.to = Some(side.config.jid.domain().to_owned());
            if m.core.flags.contains(SessionFlags::SECURE) || side.config.from_before_tls {
                header.from = Some(side.config.jid.as_str().to_owned());
            }
            header.lang.clone_from(&side.config.lang);
            m.core.send_header(&header);
            m.step = Step::AwaitFeatures;
        }
        Side::Server(side) => {
            let mut fallback = StreamHeader::new(ContentNamespace::Client);
            fallback.from = Some(side.config.domain.as_str().to_owned());
            m.core.fallback_header = Some(Box::new(fallback));
            m.step = Step::AwaitHeader;
        }
        Side::S2s(_) if m.role == crate::kind::Role::Initiating => steps::s2s::open(m),
        Side::S2s(_) => steps::s2s::expect_header(m),
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
    if matches!(m.side, Side::Server(_)) {
        send_server_header(m, None, None);
    } else if let Some(header) = m.core.fallback_header.take() {
        m.core.send_header(&header);
    }
}

/// The c2s server's header: a fresh id, our domain, the client's `to` and language echoed.
fn send_server_header(m: &mut Machine, to: Option<String>, lang: Option<String>) {
    let Side::Server(side) = &m.side else {
        return;
    };
    let id = random_token(m.core.entropy.as_mut(), STREAM_ID_BYTES);
    let mut header = StreamHeader::new(ContentNamespace::Client);
    header.from = Some(side.config.domain.as_str().to_owned());
    header.id = Some(id.clone());
    header.to = to;
    header.lang = Some(lang.unwrap_or_else(|| side.config.lang.clone()));
    m.core.send_header(&header);
    m.stream_id = Some(id);
}

/// The peer's header must be in the stream kind's content namespace (`invalid-namespace`,
/// RFC 6120 §4.8.2 and §4.9.3.10) and carry version 1.0 (`unsupported-version`, §4.7.5 and
/// §4.9.3.25); `version_first` says which is checked first (a c2s client reports a missing
/// version before a wrong namespace). One place for every kind and role.
pub(crate) fn check_namespace_and_version(
    m: &mut Machine,
    header: &StreamHeader,
    version_first: bool,
) -> Result<(), ProtocolError> {
    let namespace_ok = header.content_namespace == Some(m.kind.content_namespace());
    let checks = [
        (
            header.version.is_some(),
            StreamErrorCondition::UnsupportedVersion,
            "peer stream has no version 1.0",
        ),
        (
            namespace_ok,
            StreamErrorCondition::InvalidNamespace,
            "peer stream is not in this kind's content namespace",
        ),
    ];
    let order: [usize; 2] = if version_first { [0, 1] } else { [1, 0] };
    for index in order {
        let (ok, condition, detail) = checks[index];
        if !ok {
            return Err(m.fail(condition, detail));
        }
    }
    Ok(())
}

/// Initiating c2s: the server's header (RFC 6120 §4.7). Version 1.0 and `jabber:client` are
/// required; a `from` other than the domain we asked for is fatal only once the server goes
/// on to negotiate (a stream error that follows, host-unknown..., is reported as such).
pub(crate) fn from_server(m: &mut Machine, header: &StreamHeader) -> Result<(), ProtocolError> {
    check_namespace_and_version(m, header, true)?;
    let Side::Client(side) = &mut m.side else {
        return Ok(());
    };
    side.foreign_from = header.from.as_deref().is_some_and(|from| {
        let ours = side.config.jid.domain();
        !BareJid::new(from).is_ok_and(|jid| jid.node().is_none() && jid.domain() == ours)
    });
    m.stream_id.clone_from(&header.id);
    m.core.event(Event::StreamOpened {
        id: header.id.clone(),
        from: header.from.as_deref().and_then(|from| Jid::new(from).ok()),
        lang: header.lang.clone(),
    });
    Ok(())
}

/// Receiving c2s: the client's header. Our header goes out before any error (RFC 6120
/// §4.9.1.2), echoing the client's `from` as `to` when it is a JID (§4.7.2); then namespace,
/// version and `to` are checked and the features for the session's flags are listed.
pub(crate) fn from_client(m: &mut Machine, header: &StreamHeader) -> Result<(), ProtocolError> {
    // A server of several domains serves this stream as the one it is `to`.
    if let Side::Server(side) = &mut m.side
        && let Some(to) = domain(header.to.as_deref())
        && side.config.other_domains.contains(&to)
    {
        side.config.domain = to;
    }
    let client = match header.from.as_deref().map(Jid::new) {
        None => None,
        Some(Ok(jid)) => Some(jid),
        Some(Err(_)) => {
            send_server_header(m, None, header.lang.clone());
            return Err(m.fail(
                StreamErrorCondition::InvalidFrom,
                "stream from is not a JID",
            ));
        }
    };
    send_server_header(
        m,
        client.as_ref().map(|jid| jid.as_str().to_owned()),
        header.lang.clone(),
    );
    check_namespace_and_version(m, header, false)?;
    let Side::Server(side) = &m.side else {
        return Ok(());
    };
    let to_us = header
        .to
        .as_deref()
        .and_then(|to| BareJid::new(to).ok())
        .is_some_and(|to| to == side.config.domain);
    if !to_us {
        return Err(m.fail(
            StreamErrorCondition::HostUnknown,
            "stream to is not this domain",
        ));
    }
    let secure = m.core.flags.contains(SessionFlags::SECURE);
    let redirect = side
        .config
        .redirect
        .as_ref()
        .filter(|r| r.after_tls == secure)
        .map(|r| r.to.to_string());
    m.core.event(Event::StreamOpened {
        id: m.stream_id.clone(),
        from: client,
        lang: header.lang.clone(),
    });
    if let Some(to) = redirect {
        // RFC 6120 §4.9.3.19: the configured redirect, right after our header.
        return Err(m.core.fail(ProtocolError::from_stream_error(
            xmpp_xml::StreamError::see_other_host(to),
            "configured redirect",
        )));
    }
    steps::features::offer(m);
    Ok(())
}
