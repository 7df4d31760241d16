//! Server-to-server streams (RFC 6120 §13), both ends: the `jabber:server` header rules,
//! features, SASL EXTERNAL over the TLS certificate (§13.8, names matched by
//! [`crate::identity`]), Server Dialback (XEP-0220, keys per XEP-0185 from
//! [`crate::dialback`]) with the verification asked of the host, several domain pairs over one
//! connection (piggybacking), and the per-stanza check that `from` and `to` belong to an
//! authenticated pair.

use minidom::Element;
use xmpp_jid::{BareJid, Jid};
use xmpp_sasl::Mechanism;
use xmpp_xml::{ContentNamespace, StanzaErrorCondition, StreamErrorCondition, StreamHeader};

use crate::config::{S2sConfig, TlsPolicy};
use crate::dialback::{
    self, Content, DbResult, DbVerify, DialbackCondition, DialbackFeature, Domain, StreamId,
};
use crate::entropy::random_token;
use crate::error::ProtocolError;
use crate::features::{Advertised, FeatureKind, Features, ns};
use crate::flags::SessionFlags;
use crate::identity::{self, PresentedId, ReferenceId, Service};
use crate::machine::{Machine, Side};
use crate::output::{CloseReason, Event, S2sAuthMethod};
use crate::rules::Step;
use crate::sasl::{SaslElement, SaslParseError};
use crate::steps;
use crate::steps::header::domain;
use crate::time::Instant;
use crate::timers::Timer;

/// A dialback verification the host was asked for.
pub(crate) struct PendingDialback {
    pub(crate) originating: Domain,
    pub(crate) receiving: Domain,
    pub(crate) deadline: Instant,
}

/// The outcome of a dialback verification, as the host reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialbackOutcome {
    /// The authoritative server answered `valid`.
    Valid,
    /// It answered `invalid`.
    Invalid,
    /// It could not be asked or answered with an error: the condition to report (for example
    /// `remote-server-not-found` when it could not be reached, XEP-0220 §2.5).
    Error(DialbackCondition),
}

/// The server-to-server role data, both ends.
pub(crate) struct S2sSide {
    pub(crate) config: S2sConfig,
    /// Initiating: our domain of the first pair. Receiving: the header's `to`.
    pub(crate) local: Option<BareJid>,
    /// Initiating: the peer's domain. Receiving: the header's `from`, when given.
    pub(crate) remote: Option<BareJid>,
    /// Authenticated pairs, (ours, theirs).
    pub(crate) pairs: Vec<(BareJid, BareJid)>,
    /// Receiving: verifications the host was asked for.
    pub(crate) pending: Vec<PendingDialback>,
    /// Initiating: pairs whose `<db:result/>` is out, (ours, theirs).
    pub(crate) requested: Vec<(BareJid, BareJid)>,
    /// The names of the peer's certificate, as the host extracted them after checking its
    /// chain; `None` when the peer presented no certificate the host trusts.
    pub(crate) peer_ids: Option<Vec<PresentedId>>,
    /// Initiating: the peer listed the dialback feature on the current stream.
    pub(crate) dialback_offered: bool,
    /// How each pair was authenticated, in `pairs` order.
    methods: Vec<S2sAuthMethod>,
    /// Pairs already reported with `ServerAuthenticated` (a pair is reported once stanzas
    /// may flow for it: after EXTERNAL's restart, at once after dialback).
    reported: usize,
}

impl S2sSide {
    pub(crate) fn new(config: S2sConfig, local: Option<BareJid>, remote: Option<BareJid>) -> Self {
        S2sSide {
            config,
            local,
            remote,
            pairs: Vec::new(),
            pending: Vec::new(),
            requested: Vec::new(),
            peer_ids: None,
            dialback_offered: false,
            methods: Vec::new(),
            reported: 0,
        }
    }

    /// The pairs that carry stanzas: authenticated and reported with `ServerAuthenticated`
    /// (a pair authenticated by EXTERNAL joins them after the stream's restart).
    pub(crate) fn usable_pairs(&self) -> &[(BareJid, BareJid)] {
        self.pairs.get(..self.reported).unwrap_or_default()
    }

    /// Whether the pair is authenticated.
    pub(crate) fn has_pair(&self, local: &BareJid, remote: &BareJid) -> bool {
        self.pairs.iter().any(|(l, r)| l == local && r == remote)
    }

    fn add_pair(&mut self, local: BareJid, remote: BareJid, method: S2sAuthMethod) {
        if !self.has_pair(&local, &remote) {
            self.pairs.push((local, remote));
            self.methods.push(method);
        }
    }
}

fn side(m: &mut Machine) -> Option<&mut S2sSide> {
    match &mut m.side {
        Side::S2s(side) => Some(side),
        _ => None,
    }
}

fn header(from: Option<&BareJid>, to: Option<&BareJid>, id: Option<String>) -> StreamHeader {
    let mut header = StreamHeader::new(ContentNamespace::Server);
    header.from = from.map(|d| d.as_str().to_owned());
    header.to = to.map(|d| d.as_str().to_owned());
    header.id = id;
    // XEP-0220 §2.1: the dialback namespace is declared on the stream.
    header
        .namespace_declarations
        .push(("db".to_owned(), dialback::NS.to_owned()));
    header
}

/// Whether dialback may run on this stream now.
fn dialback_allowed(m: &Machine) -> bool {
    let Side::S2s(side) = &m.side else {
        return false;
    };
    side.config.dialback_secret.is_some()
        && (m.core.flags.contains(SessionFlags::SECURE) || side.config.dialback_without_tls)
}

/// The pair is authenticated; it is reported once the stream carries stanzas
/// ([`report`]).
fn authenticated(m: &mut Machine, local: BareJid, remote: BareJid, method: S2sAuthMethod) {
    if let Some(side) = side(m) {
        side.add_pair(local, remote, method);
    }
    report(m);
}

/// Report the authenticated pairs not reported yet, if stanzas may flow: `ServerAuthenticated`
/// tells the host it may route for the pair now.
fn report(m: &mut Machine) {
    if m.step != Step::Established {
        return;
    }
    let Side::S2s(side) = &mut m.side else {
        return;
    };
    let fresh: Vec<(BareJid, BareJid, S2sAuthMethod)> = side
        .pairs
        .iter()
        .zip(&side.methods)
        .skip(side.reported)
        .map(|((local, remote), method)| (local.clone(), remote.clone(), *method))
        .collect();
    side.reported = side.pairs.len();
    for (local, remote, method) in fresh {
        m.core.event(Event::ServerAuthenticated {
            local,
            remote,
            method,
        });
    }
}

/// The stream carries stanzas from now on; the pairs authenticated so far are reported.
fn establish(m: &mut Machine) {
    if m.step != Step::Established {
        m.step = Step::Established;
        m.core.flags |= SessionFlags::AUTHENTICATED;
        m.core.negotiated();
    }
    report(m);
}

// ----- the initiating end -----

/// Open (or reopen) the stream: `from` our domain, `to` the peer's.
pub(crate) fn open(m: &mut Machine) {
    let Side::S2s(side) = &m.side else {
        return;
    };
    let header = header(side.local.as_ref(), side.remote.as_ref(), None);
    m.core.send_header(&header);
    m.step = Step::AwaitFeatures;
}

/// The receiving server's header (RFC 6120 §4.7): `jabber:server`, version 1.0, an id (the
/// dialback key hashes it), and `from` the domain we asked for when given.
pub(crate) fn from_receiving(m: &mut Machine, header: &StreamHeader) -> Result<(), ProtocolError> {
    steps::header::check_namespace_and_version(m, header, false)?;
    let Side::S2s(side) = &m.side else {
        return Ok(());
    };
    if header.from.is_some() && domain(header.from.as_deref()) != side.remote {
        return Err(m.fail(
            StreamErrorCondition::InvalidFrom,
            "peer stream is from another domain",
        ));
    }
    m.stream_id.clone_from(&header.id);
    m.core.event(Event::StreamOpened {
        id: header.id.clone(),
        from: header.from.as_deref().and_then(|from| Jid::new(from).ok()),
        lang: header.lang.clone(),
    });
    Ok(())
}

/// The receiving server's features: STARTTLS first, then EXTERNAL, then dialback; once
/// authenticated (after EXTERNAL's restart) the stream is established.
pub(crate) fn choose(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let features = Features::parse(&element);
    let dialback_listed = features
        .others()
        .any(|other| DialbackFeature::parse(other).is_ok());
    let Some(side) = side(m) else {
        return Ok(());
    };
    side.dialback_offered = dialback_listed;
    let (tls, external) = (side.config.tls, side.config.sasl_external);
    let flags = m.core.flags;
    let secure = flags.contains(SessionFlags::SECURE);
    if flags.contains(SessionFlags::AUTHENTICATED) {
        establish(m);
        return Ok(());
    }
    let starttls = features.get(FeatureKind::StartTls).is_some();
    if !secure && starttls && tls != TlsPolicy::Disabled {
        steps::starttls::request(m);
        return Ok(());
    }
    if !secure && tls == TlsPolicy::Required {
        m.give_up(CloseReason::TlsFailed);
        return Ok(());
    }
    let bidi_listed = features
        .others()
        .any(|other| other.is("bidi", ns::BIDI_FEATURE));
    if secure && bidi_listed && !flags.contains(SessionFlags::BIDI) && bidi_wanted(m) {
        // XEP-0288 §2: asked for after TLS, before authentication; no answer comes.
        m.core.send(&Element::builder("bidi", ns::BIDI).build());
        m.core.flags |= SessionFlags::BIDI;
    }
    let external_offered = features.mechanisms().is_some_and(|names| {
        names
            .iter()
            .any(|name| name.parse::<Mechanism>() == Ok(Mechanism::External))
    });
    if secure && external && external_offered {
        // No authorization identity: the certificate names our domain (XEP-0178 §3).
        let auth = SaslElement::Auth {
            mechanism: Mechanism::External.to_string(),
            initial: Some(Vec::new()),
        };
        m.core.send(&auth.to_element());
        m.step = Step::Sasl;
        return Ok(());
    }
    request_dialback(m);
    Ok(())
}

/// Send `<db:result/>` for our first pair, or give up when dialback is not possible.
fn request_dialback(m: &mut Machine) {
    let offered = matches!(&m.side, Side::S2s(side) if side.dialback_offered);
    if !offered || !dialback_allowed(m) {
        m.give_up(CloseReason::ServerNotAuthenticated);
        return;
    }
    let Some((local, remote)) = (match &m.side {
        Side::S2s(side) => side.local.clone().zip(side.remote.clone()),
        _ => None,
    }) else {
        return;
    };
    if send_db_result(m, &local, &remote) {
        m.step = Step::Dialback;
    } else {
        m.give_up(CloseReason::ServerNotAuthenticated);
    }
}

/// Send the `<db:result/>` request for the pair; `false` when no key can be made (no secret,
/// no stream id, a domain the dialback codec refuses).
fn send_db_result(m: &mut Machine, local: &BareJid, remote: &BareJid) -> bool {
    let Some(id) = m.stream_id.as_deref().and_then(|id| StreamId::new(id).ok()) else {
        return false;
    };
    let Side::S2s(side) = &mut m.side else {
        return false;
    };
    let (Ok(from), Ok(to), Some(secret)) = (
        Domain::try_from(local.clone()),
        Domain::try_from(remote.clone()),
        side.config.dialback_secret.as_ref(),
    ) else {
        return false;
    };
    let key = secret.key(&to, &from, &id);
    side.requested.push((local.clone(), remote.clone()));
    m.core.send(&DbResult::request(from, to, key).to_element());
    true
}

/// `<success/>` to our EXTERNAL: the pair is authenticated; restart.
pub(crate) fn external_success(m: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    let Some((local, remote)) = (match &m.side {
        Side::S2s(side) => side.local.clone().zip(side.remote.clone()),
        _ => None,
    }) else {
        return Ok(());
    };
    authenticated(m, local, remote, S2sAuthMethod::SaslExternal);
    m.core.flags |= SessionFlags::AUTHENTICATED;
    m.restart();
    Ok(())
}

/// `<failure/>` to our EXTERNAL (ejabberd offers it even when it cannot verify us): dialback
/// when the peer offered it, else we are not authenticated.
pub(crate) fn external_failure(m: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    request_dialback(m);
    Ok(())
}

/// The answer to one of our `<db:result/>` requests (XEP-0220 §2.1.1 step 4).
pub(crate) fn dialback_answer(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let answer = match DbResult::parse(&element) {
        Ok(answer) => answer,
        Err(error) => {
            return Err(m.fail(error.stream_condition(), "malformed dialback answer"));
        }
    };
    let (local, remote) = (
        answer.to.as_bare_jid().clone(),
        answer.from.as_bare_jid().clone(),
    );
    let Some(side) = side(m) else {
        return Ok(());
    };
    let Some(at) = side
        .requested
        .iter()
        .position(|(l, r)| *l == local && *r == remote)
    else {
        return Err(m.fail(
            StreamErrorCondition::InvalidFrom,
            "dialback answer for a pair we did not request",
        ));
    };
    side.requested.remove(at);
    match answer.content {
        Content::Valid => {
            authenticated(m, local, remote, S2sAuthMethod::Dialback);
            establish(m);
        }
        Content::Key(_) => {
            return Err(m.fail(
                StreamErrorCondition::UnsupportedStanzaType,
                "dialback request where an answer was due",
            ));
        }
        _ if m.step == Step::Established => {
            m.core.event(Event::ServerRefused { local, remote });
        }
        _ => m.give_up(CloseReason::ServerNotAuthenticated),
    }
    Ok(())
}

/// Ask the peer to authenticate the pair (`local`, `remote`) on this stream (XEP-0220 §2.5
/// piggybacking, a further Target Domain included); `false` when dialback is not possible
/// here.
pub(crate) fn add_pair(m: &mut Machine, local: &BareJid, remote: &BareJid) -> bool {
    let pending = matches!(&m.side, Side::S2s(side)
        if side.has_pair(local, remote) || side.requested.iter().any(|(l, r)| l == local && r == remote));
    !pending && dialback_allowed(m) && send_db_result(m, local, remote)
}

/// A `<db:result/>` on an established XEP-0288 bidirectional stream, either end: both
/// servers ask for domain pairs over the one connection (XEP-0288 §3), so a request (a key,
/// no `type`) is verified as a receiving stream verifies one, and a typed answer answers one
/// of our own requests.
pub(crate) fn bidi_dialback(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    if element.attr("type").is_none() {
        dialback_request(m, element)
    } else {
        dialback_answer(m, element)
    }
}

/// Whether the peer authenticated `remote` on this stream (it is the theirs of a pair): it
/// is then the authoritative server for it, and further pairs with it may be asked for.
pub(crate) fn peer_authenticated_for(m: &Machine, remote: &BareJid) -> bool {
    matches!(&m.side, Side::S2s(side) if side.pairs.iter().any(|(_, r)| r == remote))
}

/// Whether the peer's certificate (validated by the host) names `remote`: the initiating
/// end may then ask for pairs with that Target Domain on this connection (the peer is
/// authoritative for it, XEP-0220 §2.5, RFC 6120 §13.7.2).
pub(crate) fn peer_certified_for(m: &Machine, remote: &BareJid) -> bool {
    matches!(&m.side, Side::S2s(side)
        if m.core.flags.contains(SessionFlags::SECURE) && certificate_names(side, remote))
}

/// Whether this end asks for or offers XEP-0288 bidirectional streams.
fn bidi_wanted(m: &Machine) -> bool {
    matches!(&m.side, Side::S2s(side) if side.config.bidi)
}

/// `<bidi xmlns='urn:xmpp:bidi'/>` (XEP-0288 §2): the initiating server wants stanzas both
/// ways; accepted when we offered it (after TLS), the stream goes on without an answer.
pub(crate) fn bidi_request(m: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    let offered = bidi_wanted(m) && m.core.flags.contains(SessionFlags::SECURE);
    if !offered {
        return Err(m.reject());
    }
    m.core.flags |= SessionFlags::BIDI;
    Ok(())
}

// ----- the receiving end -----

/// Wait for the initiating server's header; an error before ours is sent behind a plain
/// header of ours, from our domain if we have only one.
pub(crate) fn expect_header(m: &mut Machine) {
    let from = match &m.side {
        Side::S2s(side) => our_domain(side, None),
        _ => None,
    };
    m.core.fallback_header = Some(Box::new(header(from.as_ref(), None, None)));
    m.step = Step::AwaitHeader;
}

/// The domain of ours our header comes from, refusing or not (RFC 6120 §4.7.1, §4.9.1.2): the
/// one the peer's `to` names (its domain part, even when that `to` is no bare domain and is
/// refused), else our only domain; of several, with none named, none.
fn our_domain(side: &S2sSide, to: Option<&str>) -> Option<BareJid> {
    to.and_then(|to| Jid::new(to).ok())
        .and_then(|jid| BareJid::from_parts(None, jid.domain()).ok())
        .filter(|domain| side.config.serves(domain))
        .or_else(|| match side.config.local_domains.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        })
}

/// The initiating server's header: answer with ours (a fresh id, `from` the domain of ours
/// the `to` names even when refusing it, see [`our_domain`]), then `jabber:server`,
/// version 1.0, `to` one of our domains (host-unknown), `from` a domain when given
/// (invalid-from); list the features for the session's flags.
pub(crate) fn from_initiating(m: &mut Machine, header: &StreamHeader) -> Result<(), ProtocolError> {
    let Side::S2s(side) = &m.side else {
        return Ok(());
    };
    let to = domain(header.to.as_deref()).filter(|to| side.config.serves(to));
    let from = domain(header.from.as_deref());
    let named = our_domain(side, header.to.as_deref());
    let id = random_token(m.core.entropy.as_mut(), steps::header::STREAM_ID_BYTES);
    let ours = self::header(named.as_ref(), from.as_ref(), Some(id.clone()));
    m.core.send_header(&ours);
    m.stream_id = Some(id.clone());
    steps::header::check_namespace_and_version(m, header, false)?;
    let Some(to) = to else {
        return Err(m.fail(
            StreamErrorCondition::HostUnknown,
            "stream to is not a domain of ours",
        ));
    };
    if header.from.is_some() && from.is_none() {
        return Err(m.fail(
            StreamErrorCondition::InvalidFrom,
            "stream from is not a domain",
        ));
    }
    if let Some(s2s) = self::side(m) {
        s2s.local = Some(to);
        s2s.remote.clone_from(&from);
    }
    m.core.event(Event::StreamOpened {
        id: Some(id),
        from: from.map(Jid::from),
        lang: header.lang.clone(),
    });
    offer(m);
    Ok(())
}

/// The certificate names the peer's domain (RFC 6125 via [`identity::verify`]).
fn certificate_names(side: &S2sSide, domain: &BareJid) -> bool {
    let Some(presented) = &side.peer_ids else {
        return false;
    };
    ReferenceId::new(domain.as_str(), Service::XmppServer)
        .is_ok_and(|reference| identity::verify(&reference, presented).is_ok())
}

/// List the features: STARTTLS before TLS, EXTERNAL when the peer's certificate names its
/// domain, dialback when allowed; after EXTERNAL's restart, nothing but dialback (for more
/// pairs), and the stream is established.
fn offer(m: &mut Machine) {
    let dialback = dialback_allowed(m);
    let Side::S2s(side) = &m.side else {
        return;
    };
    let flags = m.core.flags;
    let secure = flags.contains(SessionFlags::SECURE);
    let mut items = Vec::new();
    if !secure && side.config.tls != TlsPolicy::Disabled {
        items.push(Advertised::StartTls {
            required: side.config.tls == TlsPolicy::Required,
        });
    }
    let tls_pending = !secure && side.config.tls == TlsPolicy::Required;
    if !tls_pending && !flags.contains(SessionFlags::AUTHENTICATED) {
        let names_peer = side
            .remote
            .as_ref()
            .is_some_and(|remote| certificate_names(side, remote));
        if secure && side.config.sasl_external && names_peer {
            items.push(Advertised::Mechanisms(vec![
                Mechanism::External.to_string(),
            ]));
        }
    }
    if secure && side.config.bidi && !flags.contains(SessionFlags::AUTHENTICATED) {
        items.push(Advertised::Other(
            Element::builder("bidi", ns::BIDI_FEATURE).build(),
        ));
    }
    if dialback && !tls_pending {
        items.push(Advertised::Other(
            DialbackFeature { errors: true }.to_element(),
        ));
    }
    m.core.send(&Features { items }.to_element());
    if flags.contains(SessionFlags::AUTHENTICATED) {
        establish(m);
    } else {
        m.step = Step::AwaitRequest;
    }
}

fn sasl_failure(m: &mut Machine, condition: xmpp_sasl::Condition) {
    m.core.send(&SaslElement::failure(condition).to_element());
}

/// `<auth/>` (RFC 6120 §13.8): only EXTERNAL, only over TLS, with no authorization identity
/// or the peer's own domain, and a certificate that names that domain.
pub(crate) fn external_auth(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    use xmpp_sasl::Condition;
    let (mechanism, initial) = match SaslElement::parse(&element) {
        Ok(SaslElement::Auth { mechanism, initial }) => (mechanism, initial),
        Err(SaslParseError::Encoding) => {
            sasl_failure(m, Condition::IncorrectEncoding);
            return Ok(());
        }
        _ => {
            sasl_failure(m, Condition::MalformedRequest);
            return Ok(());
        }
    };
    if mechanism.parse::<Mechanism>() != Ok(Mechanism::External) {
        sasl_failure(m, Condition::InvalidMechanism);
        return Ok(());
    }
    if !m.core.flags.contains(SessionFlags::SECURE) {
        sasl_failure(m, Condition::EncryptionRequired);
        return Ok(());
    }
    let Some(side) = side(m) else {
        return Ok(());
    };
    let authzid = initial.unwrap_or_default();
    let claimed = if authzid.is_empty() {
        side.remote.clone()
    } else {
        core::str::from_utf8(&authzid)
            .ok()
            .and_then(|text| domain(Some(text)))
            .filter(|claimed| side.remote.as_ref().is_none_or(|remote| remote == claimed))
    };
    let Some(remote) = claimed else {
        sasl_failure(m, Condition::InvalidAuthzid);
        return Ok(());
    };
    if !side.config.sasl_external || !certificate_names(side, &remote) {
        sasl_failure(m, Condition::NotAuthorized);
        return Ok(());
    }
    let Some(local) = side.local.clone() else {
        return Ok(());
    };
    side.remote = Some(remote.clone());
    m.core.send(&SaslElement::Success(None).to_element());
    authenticated(m, local, remote, S2sAuthMethod::SaslExternal);
    m.core.flags |= SessionFlags::AUTHENTICATED;
    m.restart();
    Ok(())
}

/// Answer a `<db:result/>` request at once with an error.
fn refuse_result(m: &mut Machine, request: &DbResult, condition: impl Into<DialbackCondition>) {
    m.core
        .send(&request.answer(Content::error(condition)).to_element());
}

/// `<db:result/>` with a key (XEP-0220 §2.1.1 step 1, or a piggybacked pair): ask the host to
/// verify it with the authoritative server; answered when it reports, or at the deadline.
pub(crate) fn dialback_request(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let request = match DbResult::parse(&element) {
        Ok(request) => request,
        Err(error) => {
            return Err(m.fail(error.stream_condition(), "malformed dialback request"));
        }
    };
    let Content::Key(key) = request.content.clone() else {
        return Err(m.fail(
            StreamErrorCondition::UnsupportedStanzaType,
            "dialback answer where a request was due",
        ));
    };
    let Some(id) = m.stream_id.as_deref().and_then(|id| StreamId::new(id).ok()) else {
        return Ok(());
    };
    let allowed = dialback_allowed(m);
    let secure = m.core.flags.contains(SessionFlags::SECURE);
    let now = m.core.now();
    let Some(side) = side(m) else {
        return Ok(());
    };
    let (originating, receiving) = (
        request.from.as_bare_jid().clone(),
        request.to.as_bare_jid().clone(),
    );
    if !side.config.serves(&receiving) {
        refuse_result(m, &request, StanzaErrorCondition::ItemNotFound);
        return Ok(());
    }
    if !allowed {
        refuse_result(m, &request, StanzaErrorCondition::PolicyViolation);
        return Ok(());
    }
    let busy = side.pending.len() >= side.config.max_pending_dialbacks
        || side.pairs.len() >= side.config.max_domain_pairs
        || side
            .pending
            .iter()
            .any(|p| p.originating == request.from && p.receiving == request.to);
    if busy {
        refuse_result(m, &request, StanzaErrorCondition::PolicyViolation);
        return Ok(());
    }
    let pending = PendingDialback {
        originating: request.from.clone(),
        receiving: request.to.clone(),
        deadline: now + side.config.dialback_timeout,
    };
    if secure && certificate_names(side, &originating) {
        // XEP-0344 §2.4, dialback without dialback: over TLS, a certificate the host
        // validated that names the Sender Domain proves it; no authoritative server is asked.
        answer_pending(m, &pending, DialbackOutcome::Valid);
        return Ok(());
    }
    side.pending.push(pending);
    arm_dialback_timer(m);
    m.core.event(Event::DialbackVerify {
        originating,
        receiving,
        stream_id: id,
        key,
    });
    Ok(())
}

fn arm_dialback_timer(m: &mut Machine) {
    let next = match &m.side {
        Side::S2s(side) => side.pending.iter().map(|p| p.deadline).min(),
        _ => None,
    };
    match next {
        Some(at) => m.core.timers.set(Timer::Dialback, at),
        None => m.core.timers.stop(Timer::Dialback),
    }
}

/// The host's answer to an [`Event::DialbackVerify`]: answer the peer's `<db:result/>`; a
/// valid key authenticates the pair (the first one establishes the stream). `false` when no
/// such verification is pending.
pub(crate) fn verified(
    m: &mut Machine,
    originating: &BareJid,
    receiving: &BareJid,
    outcome: DialbackOutcome,
) -> bool {
    let Some(side) = side(m) else {
        return false;
    };
    let Some(at) = side.pending.iter().position(|p| {
        p.originating.as_bare_jid() == originating && p.receiving.as_bare_jid() == receiving
    }) else {
        return false;
    };
    let pending = side.pending.remove(at);
    arm_dialback_timer(m);
    answer_pending(m, &pending, outcome);
    true
}

fn answer_pending(m: &mut Machine, pending: &PendingDialback, outcome: DialbackOutcome) {
    let content = match &outcome {
        DialbackOutcome::Valid => Content::Valid,
        DialbackOutcome::Invalid => Content::Invalid,
        DialbackOutcome::Error(condition) => Content::error(*condition),
    };
    let answer = DbResult {
        from: pending.receiving.clone(),
        to: pending.originating.clone(),
        content,
    };
    m.core.send(&answer.to_element());
    if outcome == DialbackOutcome::Valid {
        authenticated(
            m,
            pending.receiving.as_bare_jid().clone(),
            pending.originating.as_bare_jid().clone(),
            S2sAuthMethod::Dialback,
        );
        establish(m);
    }
}

/// Time passed: answer the verifications past their deadline with `remote-server-timeout`.
/// A stream that is closing or closed answers nothing: its verifications are dropped.
pub(crate) fn on_timeout(m: &mut Machine, now: Instant) {
    if m.core.phase != crate::core::Phase::Open {
        if let Some(side) = side(m) {
            side.pending.clear();
        }
        return;
    }
    let expired: Vec<PendingDialback> = match side(m) {
        Some(side) => {
            let (expired, kept) = core::mem::take(&mut side.pending)
                .into_iter()
                .partition(|p| p.deadline <= now);
            side.pending = kept;
            expired
        }
        None => return,
    };
    if expired.is_empty() {
        return;
    }
    arm_dialback_timer(m);
    for pending in &expired {
        answer_pending(
            m,
            pending,
            DialbackOutcome::Error(StanzaErrorCondition::RemoteServerTimeout.into()),
        );
    }
}

/// `<db:verify/>` (XEP-0220 §2.1.2): we are the authoritative server for `to`; answer with
/// our secret whether the key is the one we made for that stream.
pub(crate) fn dialback_verify(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let request = match DbVerify::parse(&element) {
        Ok(request) => request,
        Err(error) => {
            return Err(m.fail(error.stream_condition(), "malformed dialback verification"));
        }
    };
    let Content::Key(key) = &request.content else {
        return Err(m.fail(
            StreamErrorCondition::UnsupportedStanzaType,
            "dialback verification answer where a request was due",
        ));
    };
    let Side::S2s(side) = &m.side else {
        return Ok(());
    };
    let content = match &side.config.dialback_secret {
        _ if !side.config.serves(request.to.as_bare_jid()) => {
            Content::error(StanzaErrorCondition::ItemNotFound)
        }
        None => Content::error(StanzaErrorCondition::FeatureNotImplemented),
        // `from` is the server that received the key (the Target Domain), `to` ours (the
        // Sender Domain).
        Some(secret) if secret.verify(&request.from, &request.to, &request.id, key) => {
            Content::Valid
        }
        Some(_) => Content::Invalid,
    };
    m.core.send(&request.answer(content).to_element());
    Ok(())
}

/// A stanza on an established stream (RFC 6120 §4.9.3, §8.1.1.1, §8.1.2.1): `to` and `from`
/// present (improper-addressing), `to` at one of our domains (host-unknown), and the pair
/// (`to` domain, `from` domain) authenticated (invalid-from). A malformed `to` inside an
/// authenticated pair cannot happen: the domain check reads it. The checks are
/// [`inbound_addresses`]'s.
pub(crate) fn inbound_stanza(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    match inbound_addresses(m, element.attr("from"), element.attr("to"))? {
        Inbound::Accept => m.core.event(Event::Stanza(element)),
        Inbound::Malformed => steps::established::refuse_malformed_to(m, &element),
        Inbound::Drop => {}
    }
    Ok(())
}

/// An established stream in envelope mode: the checks of [`inbound_stanza`] on the decoded
/// header, no element built; only a refusal (`jid-malformed`, rare) builds the element, for
/// the error reply.
pub(crate) fn inbound_envelope(
    m: &mut Machine,
    envelope: xmpp_xml::Envelope,
) -> Result<(), ProtocolError> {
    match inbound_addresses(m, envelope.from(), envelope.to())? {
        Inbound::Accept => m
            .core
            .event(Event::StanzaEnvelope(std::sync::Arc::new(envelope))),
        Inbound::Malformed => match envelope.element() {
            Ok(element) => steps::established::refuse_malformed_to(m, &element),
            Err(_) => {
                return Err(m.fail(
                    StreamErrorCondition::InternalServerError,
                    "a validated stanza did not rebuild",
                ));
            }
        },
        Inbound::Drop => {}
    }
    Ok(())
}

/// What [`inbound_addresses`] decided about a stanza the stream goes on after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// Report it to the host.
    Accept,
    /// `from` or `to` is not a JID: refuse with `jid-malformed` (RFC 6120 §8.3.3.8), the
    /// stream goes on (as on c2s).
    Malformed,
    /// Not for this machine (not a server-to-server stream, or a domain that is no bare
    /// JID): dropped.
    Drop,
}

/// The address checks of [`inbound_stanza`] on a stanza's `from` and `to`, shared by the
/// element and envelope paths: `improper-addressing`, `host-unknown` and `invalid-from` are
/// returned as the stream error.
pub(crate) fn inbound_addresses(
    m: &mut Machine,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Inbound, ProtocolError> {
    let Side::S2s(side) = &m.side else {
        return Ok(Inbound::Drop);
    };
    let (Some(from), Some(to)) = (from, to) else {
        return Err(m.fail(
            StreamErrorCondition::ImproperAddressing,
            "s2s stanza without to or from",
        ));
    };
    let (Ok(from), Ok(to)) = (Jid::new(from), Jid::new(to)) else {
        return Ok(Inbound::Malformed);
    };
    let (Ok(from_domain), Ok(to_domain)) = (
        BareJid::from_parts(None, from.domain()),
        BareJid::from_parts(None, to.domain()),
    ) else {
        return Ok(Inbound::Drop);
    };
    if !side.config.serves(&to_domain) {
        return Err(m.fail(
            StreamErrorCondition::HostUnknown,
            "s2s stanza to a domain we do not serve",
        ));
    }
    if !side.has_pair(&to_domain, &from_domain) {
        return Err(m.fail(
            StreamErrorCondition::InvalidFrom,
            "s2s stanza from a domain not authenticated on this stream",
        ));
    }
    Ok(Inbound::Accept)
}

/// Whether the host may send a stanza with these `from` and `to` on this stream: their
/// domains are an authenticated pair, (ours, theirs). Shared by `send_stanza` (the element's
/// attributes) and `send_envelope` (the stamped values, else the envelope's own).
pub(crate) fn may_send(m: &Machine, from: Option<&str>, to: Option<&str>) -> bool {
    let Side::S2s(side) = &m.side else {
        return false;
    };
    let domain_of = |value: Option<&str>| {
        value
            .and_then(|value| Jid::new(value).ok())
            .and_then(|jid| BareJid::from_parts(None, jid.domain()).ok())
    };
    match (domain_of(from), domain_of(to)) {
        (Some(from), Some(to)) => side.has_pair(&from, &to),
        _ => false,
    }
}
