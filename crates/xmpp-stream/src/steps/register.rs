//! XEP-0077 in-band registration before authentication, both ends: the server answers the
//! fields request and hands submissions to its host; the client registers its account, then
//! goes on with SASL. The IQs are built and parsed by [`crate::register`].

use minidom::Element;
use xmpp_jid::BareJid;
use xmpp_xml::{StanzaError, StanzaErrorCondition, StreamErrorCondition};

use crate::config::TlsPolicy;
use crate::entropy::random_token;
use crate::error::{ProtocolError, UsageError};
use crate::flags::SessionFlags;
use crate::machine::{Machine, Side};
use crate::output::{CloseReason, Event};
use crate::register::{
    self, Password, RegisterParseError, RegisterRequest, Registration, RegistrationRefused,
};
use crate::rules::Step;
use crate::time::Instant;

// ----- the server's end -----

fn refuse(m: &mut Machine, iq: &Element, condition: StanzaErrorCondition) {
    m.core.send(&StanzaError::new(condition).reply_to(iq));
}

/// Server, a `jabber:iq:register` IQ before authentication (XEP-0077 §3.1).
pub(crate) fn serve(m: &mut Machine, iq: Element) -> Result<(), ProtocolError> {
    // Results and errors are nobody's answer here: the table's default.
    if !matches!(iq.attr("type"), Some("get" | "set")) {
        return Err(m.reject());
    }
    let secure = m.core.flags.contains(SessionFlags::SECURE);
    let Side::Server(side) = &mut m.side else {
        return Ok(());
    };
    if !side.config.allow_registration {
        refuse(m, &iq, StanzaErrorCondition::ServiceUnavailable);
        return Ok(());
    }
    if side.config.tls == TlsPolicy::Required && !secure {
        // The password would cross in the clear (XEP-0077 §10; the feature is not listed).
        refuse(m, &iq, StanzaErrorCondition::NotAuthorized);
        return Ok(());
    }
    let request = RegisterRequest::parse(&iq);
    if !matches!(request, Ok(RegisterRequest::Fields)) {
        if side.registration_attempts >= side.config.max_registration_attempts {
            return Err(m.fail(
                StreamErrorCondition::PolicyViolation,
                "too many registration attempts on one stream",
            ));
        }
        side.registration_attempts += 1;
    }
    match request {
        Ok(RegisterRequest::Fields) => {
            m.core
                .send(&register::fields_result(iq.attr("id").unwrap_or_default()));
        }
        Ok(RegisterRequest::Submit { username, password }) => {
            if side.registration_pending.is_some() {
                refuse(m, &iq, StanzaErrorCondition::ResourceConstraint);
                return Ok(());
            }
            let Ok(jid) = BareJid::from_parts(Some(&username), side.config.domain.domain()) else {
                let error = RegistrationRefused::NotAcceptable.stanza_error();
                m.core.send(&error.reply_to(&iq));
                return Ok(());
            };
            side.registration_pending = Some(iq.attr("id").unwrap_or_default().to_owned());
            m.core
                .event(Event::RegistrationRequested(Box::new(Registration {
                    jid,
                    password,
                })));
        }
        // No account on this stream to cancel (§3.2's `unexpected-request`).
        Ok(RegisterRequest::Cancel) => refuse(m, &iq, StanzaErrorCondition::UnexpectedRequest),
        Err(RegisterParseError::MissingFields) => {
            let error = RegistrationRefused::NotAcceptable.stanza_error();
            m.core.send(&error.reply_to(&iq));
        }
        Err(RegisterParseError::RemoveNotAlone) => {
            refuse(m, &iq, StanzaErrorCondition::BadRequest);
        }
        Err(RegisterParseError::NotRegister) => return Err(m.reject()),
    }
    Ok(())
}

/// Server: the host answered the outstanding registration.
pub(crate) fn done(
    m: &mut Machine,
    now: Instant,
    outcome: Result<(), RegistrationRefused>,
) -> Result<(), UsageError> {
    let _ = m.process_input(false);
    m.core.tick(now);
    let Side::Server(side) = &mut m.side else {
        return Err(UsageError::NoRegistrationPending);
    };
    let Some(id) = side.registration_pending.take() else {
        return Err(UsageError::NoRegistrationPending);
    };
    m.core.check_open()?;
    let result = register::result(&id);
    let reply = match outcome {
        Ok(()) => result,
        Err(refused) => refused.stanza_error().reply_to(&result),
    };
    m.core.send(&reply);
    Ok(())
}

// ----- the client's end -----

/// Where the client's registration is.
pub(crate) struct ClientRegistration {
    /// The id of our request out.
    id: String,
    /// Whether the request out is the submission (else the fields request).
    submitted: bool,
    /// The server's mechanisms, for SASL after registration.
    mechanisms: Vec<String>,
    /// The server's XEP-0440 channel-binding types, if listed.
    binding_types: Option<Vec<String>>,
}

fn new_id(m: &mut Machine) -> String {
    random_token(m.core.entropy.as_mut(), 6)
}

/// Client: the server lists `<register/>` and we were asked to register: ask for the fields.
pub(crate) fn start(m: &mut Machine, mechanisms: &[String], binding_types: Option<&[String]>) {
    let id = new_id(m);
    let Side::Client(side) = &mut m.side else {
        return;
    };
    m.core.send(&register::fields_request(&id));
    side.registration = Some(Box::new(ClientRegistration {
        id,
        submitted: false,
        mechanisms: mechanisms.to_vec(),
        binding_types: binding_types.map(<[String]>::to_vec),
    }));
    m.step = Step::Register;
}

/// Client: the reply to our fields request or submission.
pub(crate) fn reply(m: &mut Machine, iq: Element) -> Result<(), ProtocolError> {
    let Side::Client(side) = &mut m.side else {
        return Ok(());
    };
    let Some(mut pending) = side.registration.take() else {
        return Ok(());
    };
    let outcome = register::outcome(&iq);
    let (Some(outcome), true) = (outcome, iq.attr("id") == Some(pending.id.as_str())) else {
        return Err(m.fail(
            StreamErrorCondition::UnsupportedStanzaType,
            "expected the reply to our registration request",
        ));
    };
    if let Err(error) = outcome {
        m.give_up(CloseReason::RegistrationFailed(Box::new(error)));
        return Ok(());
    }
    let jid = side.config.jid.clone();
    if !pending.submitted {
        // Only username and password are supported: a server wanting more answers the
        // submission with not-acceptable, which ends the attempt with that error.
        let username = jid.node().unwrap_or_default().to_owned();
        let password = match &side.config.credentials {
            crate::config::Credentials::Password(password) => Password::new(password.clone()),
            crate::config::Credentials::ScramKeys(_) => Password::new(String::new()),
        };
        let id = new_id(m);
        m.core
            .send(&register::submit(&id, &username, password.expose()));
        pending.id = id;
        pending.submitted = true;
        if let Side::Client(side) = &mut m.side {
            side.registration = Some(pending);
        }
        return Ok(());
    }
    side.registered = true;
    m.core.event(Event::Registered { jid });
    crate::steps::sasl::start(m, &pending.mechanisms, pending.binding_types.as_deref());
    Ok(())
}
