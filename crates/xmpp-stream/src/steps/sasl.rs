//! SASL (RFC 6120 §6), both ends: the client's mechanism choice and fallback policy, the
//! server's offer and exchange, each `<auth/>`, `<challenge/>`, `<response/>`, `<success/>`,
//! `<failure/>` and `<abort/>`. The mechanisms are `xmpp-sasl`'s; the wire elements are
//! [`crate::sasl::SaslElement`].

use minidom::Element;
use xmpp_jid::BareJid;
use xmpp_sasl::{
    ChannelBinding, ClientPolicy, Condition, Gs2Binding, Mechanism, Selection, ServerStep,
};
use xmpp_xml::StreamErrorCondition;

use crate::config::{Credentials, TlsPolicy};
use crate::entropy::random_nonce;
use crate::error::ProtocolError;
use crate::flags::SessionFlags;
use crate::machine::{Machine, Side};
use crate::output::{CloseReason, Event};
use crate::rules::Step;
use crate::sasl::{SaslElement, SaslParseError};

/// Characters in the client's SCRAM nonce (6 bits each: 192 bits).
const CLIENT_NONCE_LEN: usize = 32;

/// The state of SASL fallback on one stream: what the server offered and what was tried.
#[derive(Default)]
pub(crate) struct SaslAttempts {
    /// The server's `<mechanism/>` names, as listed (XEP-0474 hashes this exact list).
    names: Vec<String>,
    /// The server's XEP-0440 channel-binding types, if it listed them.
    binding_types: Option<Vec<String>>,
    /// Mechanisms already tried on this stream, in order.
    tried: Vec<Mechanism>,
}

// ----- policy -----

/// Whether a `<failure/>` with `condition` lets the client try its next mechanism.
///
/// Only the three conditions that say "not this mechanism, here" fall back:
/// `invalid-mechanism` (not offered after all), `mechanism-too-weak` (server policy wants a
/// stronger one) and `encryption-required` (this one needs TLS). The server has not judged
/// the credentials then, so another mechanism may well succeed.
///
/// Everything else ends the attempts:
/// - `not-authorized`, `credentials-expired`, `account-disabled`, `invalid-authzid`: the
///   credentials or the account are wrong. Another mechanism carries the same credentials,
///   so a retry is wasted, counts against the server's attempt limit (it may lock the
///   account), and with a weaker mechanism (PLAIN) it would hand the password to whoever
///   answered.
/// - `malformed-request`, `incorrect-encoding`: servers also send these when a GS2 header says
///   `y` (channel binding supported by the client, thought unsupported by the server) on a
///   server that does bind, which is how RFC 5802 detects a stripped `-PLUS`. Falling back
///   there would complete the downgrade the check exists to stop.
/// - `temporary-auth-failure`: the server's own trouble ("try again later"), not the
///   mechanism's.
/// - `aborted`, and any condition this crate does not know (parsed as `not-authorized`).
///
/// Orthogonally, a fallback never goes from a channel-bound mechanism to an unbound one
/// ([`next_mechanism`]): an attacker terminating TLS cannot complete `-PLUS`, but could
/// answer it with a forged `invalid-mechanism` and relay the unbound retry. XEP-0474 keeps
/// working across attempts because every attempt hashes the server's full, original
/// `<mechanisms/>` list; a client-side abort (downgrade detected, bad nonce, weak iteration
/// count) never falls back either.
pub(crate) fn may_fall_back(condition: Condition) -> bool {
    matches!(
        condition,
        Condition::InvalidMechanism | Condition::MechanismTooWeak | Condition::EncryptionRequired
    )
}

/// Whether `mechanism` is tied to the TLS session (so falling back from it to one that is not
/// would give a TLS-terminating attacker what channel binding denies it).
fn is_channel_bound(mechanism: Mechanism) -> bool {
    mechanism.is_plus() || mechanism == Mechanism::External
}

// ----- the client's end -----

/// The server listed `<mechanisms/>`: start with the most preferred usable one.
pub(crate) fn start(m: &mut Machine, names: &[String], binding_types: Option<&[String]>) {
    if let Side::Client(side) = &mut m.side {
        side.sasl = SaslAttempts {
            names: names.to_vec(),
            binding_types: binding_types.map(<[String]>::to_vec),
            tried: Vec::new(),
        };
    }
    match next_mechanism(m) {
        Some(selection) => begin(m, selection),
        None => m.give_up(CloseReason::NoMechanism),
    }
}

/// The next mechanism to try on this stream: the most preferred of the configured list that
/// the server offered, the policy allows and has not been tried. Once a channel-bound
/// mechanism (`-PLUS`, or EXTERNAL over the TLS client certificate) has been tried, only
/// channel-bound ones remain: see [`may_fall_back`] for why.
fn next_mechanism(m: &Machine) -> Option<Selection> {
    let Side::Client(side) = &m.side else {
        return None;
    };
    let secure = m.core.flags.contains(SessionFlags::SECURE);
    let offered: Vec<Mechanism> = side
        .sasl
        .names
        .iter()
        .filter_map(|name| name.parse().ok())
        .collect();
    let server_types: Option<Vec<xmpp_sasl::ChannelBindingType>> = side
        .sasl
        .binding_types
        .as_ref()
        .map(|types| types.iter().filter_map(|t| t.parse().ok()).collect());
    let listed = |mechanism: Mechanism| side.config.mechanisms.contains(&mechanism);
    let policy = ClientPolicy::new()
        .tls(secure)
        .binding_types(if secure {
            m.bindings.iter().map(ChannelBinding::kind).collect()
        } else {
            Vec::new()
        })
        .password(true)
        .certificate(listed(Mechanism::External))
        .allow_anonymous(listed(Mechanism::Anonymous))
        .allow_plain_without_tls(side.config.allow_plain_without_tls)
        .require_channel_binding(side.config.require_channel_binding)
        .preference(side.config.mechanisms.clone());
    let bound_tried = side.sasl.tried.iter().any(|m| is_channel_bound(*m));
    xmpp_sasl::acceptable_mechanisms(&offered, server_types.as_deref(), &policy)
        .into_iter()
        .filter(|s| !side.sasl.tried.contains(&s.mechanism))
        .find(|s| !bound_tried || is_channel_bound(s.mechanism))
}

/// Send `<auth/>` for `selection`.
fn begin(m: &mut Machine, selection: Selection) {
    let secure = m.core.flags.contains(SessionFlags::SECURE);
    let nonce = random_nonce(m.core.entropy.as_mut(), CLIENT_NONCE_LEN);
    let Side::Client(side) = &mut m.side else {
        return;
    };
    side.sasl.tried.push(selection.mechanism);
    let authcid = side.config.jid.node().unwrap_or_default().to_owned();
    let mut sasl = xmpp_sasl::ClientConfig::new(authcid, nonce)
        .gs2(selection.gs2)
        .advertised(side.sasl.names.clone(), side.sasl.binding_types.clone());
    if selection.mechanism == Mechanism::External && side.config.external_authzid {
        sasl = sasl.authzid(side.config.jid.to_string());
    }
    match &side.config.credentials {
        Credentials::Password(password) => sasl = sasl.password(password),
        Credentials::ScramKeys(keys) => sasl = sasl.cached_keys(keys.clone()),
    }
    if secure && !matches!(selection.gs2, Gs2Binding::None) {
        for binding in &m.bindings {
            sasl = sasl.channel_binding(binding.clone());
        }
    }
    let started = xmpp_sasl::Client::new(selection.mechanism, sasl).and_then(|mut client| {
        let initial = client.start()?;
        Ok((client, initial))
    });
    match started {
        Ok((client, initial)) => {
            side.exchange = Some(Box::new(client));
            let auth = SaslElement::Auth {
                mechanism: selection.mechanism.to_string(),
                initial,
            };
            m.core.send(&auth.to_element());
            m.step = Step::Sasl;
        }
        Err(_) => m.give_up(CloseReason::NoMechanism),
    }
}

/// Parse a SASL element the server sent; bad base64 is `bad-format` (RFC 6120 §4.9.3.1).
fn parse_from_server(m: &mut Machine, element: &Element) -> Result<SaslElement, ProtocolError> {
    SaslElement::parse(element).map_err(|error| match error {
        SaslParseError::Encoding => m.fail(
            StreamErrorCondition::BadFormat,
            "SASL payload is not base64",
        ),
        SaslParseError::Unknown => m.reject(),
    })
}

/// Client, `<challenge/>` (§6.4.3): answer it, or abort the exchange when the server's
/// challenge is unacceptable (bad nonce, too few iterations, downgrade detected).
pub(crate) fn challenge(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let SaslElement::Challenge(data) = parse_from_server(m, &element)? else {
        return Ok(());
    };
    let Side::Client(side) = &mut m.side else {
        return Ok(());
    };
    let Some(client) = side.exchange.as_mut() else {
        return Ok(());
    };
    if let Ok(response) = client.step(data.as_deref().unwrap_or_default()) {
        m.core
            .send(&SaslElement::Response(Some(response)).to_element());
    } else {
        side.aborting = Some(client.mechanism());
        side.exchange = None;
        m.core.send(&SaslElement::Abort.to_element());
        m.step = Step::SaslAborting;
    }
    Ok(())
}

/// Client, `<success/>` (§6.4.6): check the server's additional data (SCRAM server
/// signature), then restart authenticated.
pub(crate) fn success(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let SaslElement::Success(data) = parse_from_server(m, &element)? else {
        return Ok(());
    };
    let Side::Client(side) = &mut m.side else {
        return Ok(());
    };
    let Some(mut client) = side.exchange.take() else {
        return Ok(());
    };
    if client.finish(data.as_deref()).is_err() {
        m.give_up(CloseReason::ServerNotVerified);
        return Ok(());
    }
    let mechanism = client.mechanism();
    side.scram_keys = client.scram_keys().cloned();
    // The offer and the attempts are not needed once authenticated: do not keep them for
    // the life of the stream.
    side.sasl = SaslAttempts::default();
    let jid = side.config.jid.clone();
    m.core.flags |= SessionFlags::AUTHENTICATED;
    m.core.event(Event::Authenticated { jid, mechanism });
    m.restart();
    Ok(())
}

/// Client, `<failure/>` (§6.4.5), after our `<auth/>` or our `<abort/>`: report the attempt,
/// then try the next mechanism or give up.
pub(crate) fn failure(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let SaslElement::Failure { condition, text } = parse_from_server(m, &element)? else {
        return Ok(());
    };
    let Side::Client(side) = &mut m.side else {
        return Ok(());
    };
    let aborted_by_us = side.aborting.is_some();
    let Some(mechanism) = side
        .aborting
        .take()
        .or_else(|| side.exchange.take().map(|client| client.mechanism()))
    else {
        return Ok(());
    };
    let attempts = u32::try_from(side.sasl.tried.len()).unwrap_or(u32::MAX);
    let may_retry =
        !aborted_by_us && may_fall_back(condition) && attempts < side.config.max_auth_attempts;
    let next = if may_retry { next_mechanism(m) } else { None };
    m.core.event(Event::SaslAttemptFailed {
        mechanism,
        condition,
        text: text.clone(),
        next: next.map(|s| s.mechanism),
    });
    match next {
        Some(selection) => begin(m, selection),
        None => m.give_up(CloseReason::AuthenticationFailed { condition, text }),
    }
    Ok(())
}

/// Client, after our `<abort/>`: the server's challenge or success crossed it; its
/// `<failure/>` follows.
pub(crate) fn crossed_abort(_: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    Ok(())
}

// ----- the server's end -----

/// The `xmpp-sasl` server configuration for this stream: TLS state, channel bindings and the
/// XEP-0440 types we list (XEP-0474 hashes exactly those), the configured offer.
pub(crate) fn server_config(m: &Machine, nonce: String) -> xmpp_sasl::ServerConfig {
    let Side::Server(side) = &m.side else {
        return xmpp_sasl::ServerConfig::new(nonce);
    };
    let secure = m.core.flags.contains(SessionFlags::SECURE);
    let mut config = xmpp_sasl::ServerConfig::new(nonce)
        .tls(secure)
        .allow_plain_without_tls(side.config.allow_plain_without_tls)
        .downgrade_protection(side.config.downgrade_protection);
    if secure {
        for binding in &m.bindings {
            config = config.channel_binding(binding.clone());
        }
        // Only what `offer` lists: XEP-0474 hashes the advertised types, and a TLS layer
        // without binding data advertises none (an empty list would hash differently).
        if side.config.advertise_channel_binding_types && !m.bindings.is_empty() {
            let kinds = m.bindings.iter().map(ChannelBinding::kind).collect();
            config = config.advertised_binding_types(kinds);
        }
    }
    let mut offer = side.config.mechanisms.clone();
    // XEP-0178 §2: EXTERNAL once the client presented a certificate the host verified.
    if secure && side.peer_ids.is_some() {
        config = config.external_identity(String::new());
        if !offer.contains(&Mechanism::External) {
            offer.insert(0, Mechanism::External);
        }
    }
    config.offer(offer)
}

/// Server, `<auth/>` (§6.4.2): start the exchange with the named mechanism.
pub(crate) fn auth(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    let (mechanism, initial) = match SaslElement::parse(&element) {
        Ok(SaslElement::Auth { mechanism, initial }) => (mechanism, initial),
        Err(SaslParseError::Encoding) => {
            failed(m, Condition::IncorrectEncoding);
            return Ok(());
        }
        _ => {
            failed(m, Condition::MalformedRequest);
            return Ok(());
        }
    };
    let Side::Server(side) = &m.side else {
        return Ok(());
    };
    let secure = m.core.flags.contains(SessionFlags::SECURE);
    if side.config.tls == TlsPolicy::Required && !secure {
        failed(m, Condition::EncryptionRequired);
        return Ok(());
    }
    let Ok(mechanism) = mechanism.parse::<Mechanism>() else {
        failed(m, Condition::InvalidMechanism);
        return Ok(());
    };
    let nonce_len = side.config.scram_nonce_len;
    let nonce = random_nonce(m.core.entropy.as_mut(), nonce_len);
    let config = server_config(m, nonce);
    let server = match xmpp_sasl::Server::new(mechanism, config) {
        Ok(server) => server,
        Err(error) => {
            failed(m, error.condition());
            return Ok(());
        }
    };
    if let Side::Server(side) = &mut m.side {
        side.exchange = Some(Box::new(server));
    }
    m.step = Step::Sasl;
    match initial {
        // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
        None => m.core.send(&SaslElement::Challenge(None).to_element()),
        Some(data) => exchange_step(m, &data),
    }
    Ok(())
}

/// Server, `<response/>` (§6.4.3).
pub(crate) fn response(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    match SaslElement::parse(&element) {
        Ok(SaslElement::Response(data)) => exchange_step(m, data.as_deref().unwrap_or_default()),
        Err(SaslParseError::Encoding) => failed(m, Condition::IncorrectEncoding),
        _ => failed(m, Condition::MalformedRequest),
    }
    Ok(())
}

/// Server, `<abort/>` (§6.4.4): the attempt fails with `aborted`.
pub(crate) fn abort(m: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    failed(m, Condition::Aborted);
    Ok(())
}

/// Server, before an exchange: a SASL element that is not `<auth/>` or `<abort/>` fails the
/// attempt (`malformed-request`; `incorrect-encoding` for bad base64).
pub(crate) fn misplaced(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    match SaslElement::parse(&element) {
        Err(SaslParseError::Encoding) => failed(m, Condition::IncorrectEncoding),
        _ => failed(m, Condition::MalformedRequest),
    }
    Ok(())
}

/// Server, during an exchange: a known SASL element other than `<response/>`/`<abort/>`
/// fails the attempt; an unknown name in the SASL namespace is no SASL element at all, so the
/// table's default applies.
pub(crate) fn misplaced_in_exchange(
    m: &mut Machine,
    element: Element,
) -> Result<(), ProtocolError> {
    match SaslElement::parse(&element) {
        Err(SaslParseError::Unknown) => Err(m.reject()),
        Err(SaslParseError::Encoding) => {
            failed(m, Condition::IncorrectEncoding);
            Ok(())
        }
        Ok(_) => {
            failed(m, Condition::MalformedRequest);
            Ok(())
        }
    }
}

fn exchange_step(m: &mut Machine, data: &[u8]) {
    let Side::Server(side) = &mut m.side else {
        return;
    };
    let Some(server) = side.exchange.as_mut() else {
        return;
    };
    let domain = &side.config.domain;
    // EXTERNAL: the accounts the certificate names are the only identities (XEP-0178 §2).
    let external = server.mechanism() == Mechanism::External;
    let certified = match (&side.peer_ids, external) {
        (Some(ids), true) => side.backend.certificate_accounts(domain, ids),
        _ => Vec::new(),
    };
    let store = crate::backend::AtDomain {
        backend: side.backend.as_ref(),
        domain,
    };
    let certified_store = crate::backend::Certified {
        domain,
        accounts: &certified,
    };
    let store: &dyn xmpp_sasl::CredentialStore = if external { &certified_store } else { &store };
    match server.step(store, data) {
        Ok(ServerStep::Challenge(challenge)) => {
            m.core
                .send(&SaslElement::Challenge(Some(challenge)).to_element());
        }
        Ok(ServerStep::Success {
            additional_data,
            identity,
        }) => {
            let account = if external {
                crate::identity::client_account(
                    &side.config.domain,
                    &certified,
                    identity.authzid.as_deref(),
                )
                .map_err(crate::identity::ClientRefusal::condition)
            } else {
                let domain = side.config.domain.domain();
                let node = identity.authzid.as_deref().or(identity.authcid.as_deref());
                node.and_then(|node| match BareJid::new(node) {
                    // An authzid may be a full bare JID; an authcid is a localpart.
                    Ok(jid) if jid.node().is_some() && jid.domain() == domain => Some(jid),
                    _ => BareJid::from_parts(Some(node), domain).ok(),
                })
                .ok_or(Condition::NotAuthorized)
            };
            let account = match account {
                Ok(account) => account,
                Err(condition) => {
                    failed(m, condition);
                    return;
                }
            };
            side.exchange = None;
            side.account = Some(account.clone());
            m.core
                .send(&SaslElement::Success(additional_data).to_element());
            m.core.flags |= SessionFlags::AUTHENTICATED;
            m.core.event(Event::Authenticated {
                jid: account,
                mechanism: identity.mechanism,
            });
            m.restart();
        }
        Ok(_) => failed(m, Condition::TemporaryAuthFailure),
        Err(error) => failed(m, error.condition()),
    }
}

/// The attempt failed: `<failure/>`, and after `max_auth_attempts` the stream ends
/// (`policy-violation`, §6.4.5's advice to limit retries).
fn failed(m: &mut Machine, condition: Condition) {
    m.core.send(&SaslElement::failure(condition).to_element());
    m.step = Step::AwaitRequest;
    let Side::Server(side) = &mut m.side else {
        return;
    };
    side.exchange = None;
    side.failed_attempts = side.failed_attempts.saturating_add(1);
    if side.failed_attempts >= side.config.max_auth_attempts {
        let _ = m.fail(
            StreamErrorCondition::PolicyViolation,
            "too many failed authentication attempts",
        );
    }
}
