//! Stream features (RFC 6120 §4.3.2): what the receiving entity lists for the session's flags,
//! and what the initiating entity negotiates next from a list. The features themselves are
//! data ([`crate::features::FEATURES`]).

use minidom::Element;
use xmpp_xml::StreamErrorCondition;

use crate::config::TlsPolicy;
use crate::error::ProtocolError;
use crate::features::{Advertised, FEATURES, FeatureKind, Features};
use crate::flags::SessionFlags;
use crate::machine::{Machine, Side};
use crate::output::CloseReason;
use crate::rules::Step;
use crate::steps;

/// Receiving c2s: list the features for the current flags and wait for a request.
pub(crate) fn offer(m: &mut Machine) {
    let Side::Server(side) = &m.side else {
        return;
    };
    let flags = m.core.flags;
    let secure = flags.contains(SessionFlags::SECURE);
    let tls_required = side.config.tls == TlsPolicy::Required && !secure;
    let mut items = Vec::new();
    for spec in FEATURES.iter().filter(|spec| spec.available(flags)) {
        match spec.kind {
            // No STARTTLS on a framed stream: TLS is the WebSocket's (`wss:`, RFC 7395 §3.9).
            FeatureKind::StartTls if side.config.tls != TlsPolicy::Disabled && !m.core.framed => {
                items.push(Advertised::StartTls {
                    required: tls_required,
                });
            }
            FeatureKind::Sasl if !tls_required => {
                let names: Vec<String> = steps::sasl::server_config(m, String::new())
                    .mechanisms()
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                if !names.is_empty() {
                    items.push(Advertised::Mechanisms(names));
                }
            }
            FeatureKind::ChannelBindingTypes
                if side.config.advertise_channel_binding_types && !m.bindings.is_empty() =>
            {
                items.push(Advertised::ChannelBindingTypes(
                    m.bindings.iter().map(|b| b.kind().to_string()).collect(),
                ));
            }
            FeatureKind::Bind => items.push(Advertised::Bind),
            FeatureKind::Session if side.config.legacy_session => {
                items.push(Advertised::Session { optional: true });
            }
            FeatureKind::StreamManagement if side.config.sm.enabled => {
                items.push(Advertised::StreamManagement);
            }
            FeatureKind::Register if side.config.allow_registration && !tls_required => {
                items.push(Advertised::Register);
            }
            _ => {}
        }
    }
    // The host's rows, through the same gate.
    items.extend(
        side.config
            .extra_features
            .iter()
            .filter(|row| row.available(flags))
            .map(|row| Advertised::Other(row.element.clone())),
    );
    m.core.send(&Features { items }.to_element());
    m.step = Step::AwaitRequest;
}

/// Initiating c2s: `<stream:features/>` arrived; negotiate the first listed feature the flags
/// and our configuration allow, or give up with the reason.
pub(crate) fn choose(m: &mut Machine, element: Element) -> Result<(), ProtocolError> {
    if foreign(m) {
        return Err(foreign_from(m));
    }
    let features = Features::parse(&element);
    let Side::Client(side) = &mut m.side else {
        return Ok(());
    };
    let flags = m.core.flags;
    let secure = flags.contains(SessionFlags::SECURE);
    let tls_wanted = side.config.tls != TlsPolicy::Disabled && !m.core.framed;
    let register = side.config.register && !side.registered;
    let next = features
        .next_to_negotiate(flags, |item| match item {
            Advertised::StartTls { .. } => tls_wanted,
            Advertised::Mechanisms(_) | Advertised::Bind => true,
            Advertised::Register => register,
            _ => false,
        })
        .cloned();
    let tls_missing = !secure && side.config.tls == TlsPolicy::Required;
    match next {
        Some(Advertised::StartTls { .. }) => steps::starttls::request(m),
        Some(_) if tls_missing => m.give_up(CloseReason::TlsFailed),
        Some(Advertised::Register) => match features.mechanisms() {
            Some(names) => {
                steps::register::start(m, names, features.channel_binding_types());
            }
            None => m.give_up(CloseReason::NoMechanism),
        },
        // Asked to register, and the server does not offer it (it is listed before SASL).
        Some(Advertised::Mechanisms(_)) if register => {
            m.give_up(CloseReason::FeatureMissing(FeatureKind::Register));
        }
        Some(Advertised::Mechanisms(names)) => {
            steps::sasl::start(m, &names, features.channel_binding_types());
        }
        Some(Advertised::Bind) => {
            side.extra_features = features.others().cloned().collect();
            let session = side.config.legacy_session
                && features.get(FeatureKind::Session)
                    == Some(&Advertised::Session { optional: false });
            let requested = side.config.resource.is_some();
            side.sm_offered = features.get(FeatureKind::StreamManagement).is_some();
            side.bind_session = session;
            if side.sm_offered && side.resume.is_some() {
                // XEP-0198 §5: resume before binding.
                steps::sm::request_resume(m);
            } else {
                steps::bind::request(m, requested, session);
            }
        }
        _ => {
            let reason = if tls_missing
                || matches!(
                    features.get(FeatureKind::StartTls),
                    Some(Advertised::StartTls { required: true })
                ) {
                CloseReason::TlsFailed
            } else if !flags.contains(SessionFlags::AUTHENTICATED) {
                CloseReason::NoMechanism
            } else {
                CloseReason::FeatureMissing(FeatureKind::Bind)
            };
            m.give_up(reason);
        }
    }
    Ok(())
}

/// Initiating c2s: something other than `<stream:features/>` where they are due: the table's
/// default, unless the server's header already named another domain (then that is the
/// error).
pub(crate) fn expected(m: &mut Machine, _: Element) -> Result<(), ProtocolError> {
    if foreign(m) {
        return Err(foreign_from(m));
    }
    Err(m.reject())
}

fn foreign(m: &Machine) -> bool {
    matches!(&m.side, Side::Client(side) if side.foreign_from)
}

fn foreign_from(m: &mut Machine) -> ProtocolError {
    m.fail(
        StreamErrorCondition::InvalidFrom,
        "server stream is from another domain",
    )
}
