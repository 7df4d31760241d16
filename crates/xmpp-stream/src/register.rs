//! XEP-0077 in-band registration: the `jabber:iq:register` IQs both roles exchange, parsed into
//! typed requests, and the typed outcomes.
//!
//! Before authentication the c2s machines run it themselves, as rows of the negotiation table
//! (`register.*`): the server ([`ServerConfig::allow_registration`](crate::ServerConfig::allow_registration),
//! off by default) lists `<register xmlns='http://jabber.org/features/iq-register'/>`, answers
//! the fields request, and hands a submitted username and password to the host as
//! [`Event::RegistrationRequested`](crate::Event::RegistrationRequested), whose answer
//! ([`ServerStream::registration_done`](crate::ServerStream::registration_done)) becomes the
//! IQ result or error; the client ([`ClientConfig::register`](crate::ClientConfig::register))
//! registers its account before SASL. After authentication registration IQs are ordinary
//! stanzas for the host: [`RegisterRequest::parse`] reads them (password change, §3.3;
//! cancellation, §3.2) and [`password_change`] / [`cancel`] build them.

use core::fmt;

use minidom::Element;
use xmpp_xml::{StanzaError, StanzaErrorCondition, StanzaErrorType};

use crate::codec::attr_name as name;
use crate::features::ns::JABBER_CLIENT;

/// The IQ namespace (XEP-0077 §3).
pub const NS: &str = "jabber:iq:register";
/// The stream feature's namespace (XEP-0077 §8).
pub const FEATURE_NS: &str = "http://jabber.org/features/iq-register";

/// Longest username or password taken from a request, in bytes (a localpart is at most 1023
/// bytes, RFC 7622 §3.3.1; a password longer than this is refused as `not-acceptable`).
pub const MAX_FIELD_BYTES: usize = 1023;

/// The instructions the server sends with the fields (XEP-0077 §3.1).
pub const INSTRUCTIONS: &str = "Choose a username and password to register with this server.";

/// A password taken from the wire: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A password.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    /// The password (to derive SCRAM keys from; keep it no longer than that).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// What a `jabber:iq:register` IQ asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterRequest {
    /// `get`: which fields to fill in (§3.1).
    Fields,
    /// `set` with `<username/>` and `<password/>`: register an account (before
    /// authentication, §3.1) or change the password (after it, §3.3).
    Submit {
        /// The username, as sent (not yet checked as a localpart).
        username: String,
        /// The password.
        password: Password,
    },
    /// `set` with `<remove/>` alone: cancel the registration (§3.2).
    Cancel,
}

/// Why a `jabber:iq:register` IQ is refused before it reaches the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegisterParseError {
    /// Not an `<iq/>` of type `get` or `set` carrying `<query xmlns='jabber:iq:register'/>`.
    NotRegister,
    /// A `set` without both a non-empty `<username/>` and `<password/>`, or with fields past
    /// [`MAX_FIELD_BYTES`] (§3.1: `not-acceptable`; §3.3: `bad-request`).
    MissingFields,
    /// `<remove/>` with other children (§3.2: `bad-request`).
    RemoveNotAlone,
}

impl RegisterRequest {
    /// Read a `jabber:iq:register` IQ of type `get` or `set`. Data forms (§4) are not
    /// supported: only `<username/>`, `<password/>` and `<remove/>` are read.
    pub fn parse(iq: &Element) -> Result<RegisterRequest, RegisterParseError> {
        if iq.name() != "iq" {
            return Err(RegisterParseError::NotRegister);
        }
        let Some(query) = iq.get_child("query", NS) else {
            return Err(RegisterParseError::NotRegister);
        };
        match iq.attr("type") {
            Some("get") => Ok(RegisterRequest::Fields),
            Some("set") => {
                if query.has_child("remove", NS) {
                    return if query.children().count() == 1 {
                        Ok(RegisterRequest::Cancel)
                    } else {
                        Err(RegisterParseError::RemoveNotAlone)
                    };
                }
                let field = |field: &str| {
                    query
                        .get_child(field, NS)
                        .map(Element::text)
                        .filter(|text| !text.is_empty() && text.len() <= MAX_FIELD_BYTES)
                };
                match (field("username"), field("password")) {
                    (Some(username), Some(password)) => Ok(RegisterRequest::Submit {
                        username,
                        password: Password(password),
                    }),
                    _ => Err(RegisterParseError::MissingFields),
                }
            }
            _ => Err(RegisterParseError::NotRegister),
        }
    }
}

/// Why the host did not create an account ([`ServerStream::registration_done`](crate::ServerStream::registration_done)),
/// with the stanza error each becomes (XEP-0077 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegistrationRefused {
    /// The username is taken: `<conflict/>` (type `cancel`).
    Conflict,
    /// The host's policy refuses this username or password: `<not-acceptable/>` (type
    /// `modify`).
    NotAcceptable,
    /// The host does not create accounts now (a rate limit, a closed server):
    /// `<not-allowed/>` (type `cancel`).
    NotAllowed,
    /// The account could not be stored: `<internal-server-error/>` (type `wait`).
    Storage,
}

impl RegistrationRefused {
    /// The stanza error condition sent.
    pub const fn condition(self) -> StanzaErrorCondition {
        match self {
            RegistrationRefused::Conflict => StanzaErrorCondition::Conflict,
            RegistrationRefused::NotAcceptable => StanzaErrorCondition::NotAcceptable,
            RegistrationRefused::NotAllowed => StanzaErrorCondition::NotAllowed,
            RegistrationRefused::Storage => StanzaErrorCondition::InternalServerError,
        }
    }

    /// The stanza error sent, with the type XEP-0077 gives it.
    pub fn stanza_error(self) -> StanzaError {
        let mut error = StanzaError::new(self.condition());
        error.error_type = match self {
            RegistrationRefused::Conflict | RegistrationRefused::NotAllowed => {
                StanzaErrorType::Cancel
            }
            RegistrationRefused::NotAcceptable => StanzaErrorType::Modify,
            RegistrationRefused::Storage => StanzaErrorType::Wait,
        };
        error
    }
}

/// A registration the host is asked to make durable ([`Event::RegistrationRequested`](crate::Event::RegistrationRequested)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The new account: the username (a valid localpart) at the stream's domain.
    pub jid: xmpp_jid::BareJid,
    /// Its password.
    pub password: Password,
}

fn iq(kind: &str, id: &str) -> Element {
    Element::builder("iq", JABBER_CLIENT)
        .attr(name("id"), id)
        .attr(name("type"), kind)
        .build()
}

fn text_child(name: &str, text: &str) -> Element {
    Element::builder(name, NS).append(text).build()
}

/// `<iq type='get'><query xmlns='jabber:iq:register'/></iq>`: ask for the fields (§3.1).
pub fn fields_request(id: &str) -> Element {
    let mut el = iq("get", id);
    el.append_child(Element::bare("query", NS));
    el
}

/// The fields result: `<instructions/>`, `<username/>` and `<password/>` (§3.1).
pub fn fields_result(id: &str) -> Element {
    let mut el = iq("result", id);
    el.append_child(
        Element::builder("query", NS)
            .append(text_child("instructions", INSTRUCTIONS))
            .append(Element::bare("username", NS))
            .append(Element::bare("password", NS))
            .build(),
    );
    el
}

/// `<iq type='set'>` with `<username/>` and `<password/>`: register (§3.1, before
/// authentication) or change the password (§3.3, after it; `username` is the account's
/// localpart).
pub fn submit(id: &str, username: &str, password: &str) -> Element {
    let mut el = iq("set", id);
    el.append_child(
        Element::builder("query", NS)
            .append(text_child("username", username))
            .append(text_child("password", password))
            .build(),
    );
    el
}

/// The password change request (§3.3): [`submit`] by another name, sent once authenticated.
pub fn password_change(id: &str, username: &str, password: &str) -> Element {
    submit(id, username, password)
}

/// `<iq type='set'><query><remove/></query></iq>`: cancel the registration (§3.2).
pub fn cancel(id: &str) -> Element {
    let mut el = iq("set", id);
    el.append_child(
        Element::builder("query", NS)
            .append(Element::bare("remove", NS))
            .build(),
    );
    el
}

/// An empty result answering `id`.
pub fn result(id: &str) -> Element {
    iq("result", id)
}

/// The answer to one of our registration IQs: `Ok(())` for a result, the error otherwise
/// (an error without a parsable `<error/>` reads as `undefined-condition`). `None` when
/// `iq` is no `result` or `error` IQ.
pub fn outcome(iq: &Element) -> Option<Result<(), StanzaError>> {
    if iq.name() != "iq" {
        return None;
    }
    match iq.attr("type") {
        Some("result") => Some(Ok(())),
        Some("error") => Some(Err(iq
            .children()
            .find(|c| c.name() == "error")
            .and_then(|e| StanzaError::from_element(e).ok())
            .unwrap_or_else(|| {
                StanzaError::new(StanzaErrorCondition::UndefinedCondition)
            }))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_round_trip() {
        assert_eq!(
            RegisterRequest::parse(&fields_request("a")),
            Ok(RegisterRequest::Fields)
        );
        assert_eq!(
            RegisterRequest::parse(&submit("b", "bill", "Calliope")),
            Ok(RegisterRequest::Submit {
                username: "bill".into(),
                password: Password::new("Calliope"),
            })
        );
        assert_eq!(
            RegisterRequest::parse(&cancel("c")),
            Ok(RegisterRequest::Cancel)
        );
        let mut two = cancel("d");
        if let Some(query) = two.get_child_mut("query", NS) {
            query.append_child(Element::bare("username", NS));
        }
        assert_eq!(
            RegisterRequest::parse(&two),
            Err(RegisterParseError::RemoveNotAlone)
        );
        assert_eq!(
            RegisterRequest::parse(&submit("e", "bill", "")),
            Err(RegisterParseError::MissingFields)
        );
        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        assert_eq!(
            RegisterRequest::parse(&submit("f", "bill", &long)),
            Err(RegisterParseError::MissingFields)
        );
        assert_eq!(
            RegisterRequest::parse(&result("g")),
            Err(RegisterParseError::NotRegister)
        );
        assert!(!format!("{:?}", Password::new("secret")).contains("secret"));
    }

    #[test]
    fn refusals_carry_the_xep_types() {
        let conflict = RegistrationRefused::Conflict.stanza_error();
        assert_eq!(conflict.condition, StanzaErrorCondition::Conflict);
        assert_eq!(conflict.error_type, StanzaErrorType::Cancel);
        let modify = RegistrationRefused::NotAcceptable.stanza_error();
        assert_eq!(modify.error_type, StanzaErrorType::Modify);
        let reply = modify.reply_to(&submit("x", "a", "b"));
        assert_eq!(
            outcome(&reply).and_then(Result::err).map(|e| e.condition),
            Some(StanzaErrorCondition::NotAcceptable)
        );
        assert_eq!(outcome(&result("y")), Some(Ok(())));
    }
}
