//! The negotiation table: every rule that gives an incoming header or element its meaning,
//! for every stream kind and role, in one place (the shape of h11's `_state.py`).
//!
//! A row names the stream kinds and roles it applies to, the negotiation [`Step`] it needs,
//! what it reacts to ([`Match`]), the handler (a function in the module of its step, under
//! `steps/`), the RFC or XEP section it implements and the test that exercises it. A machine
//! looks up the first row that matches; an element no row accepts gets the one documented
//! default, [`unaccepted_condition`]. [`markdown`] prints the table; the crate README carries
//! it and a test keeps the two equal.

use core::fmt::Write as _;

use minidom::Element;
use xmpp_xml::{StreamErrorCondition, StreamHeader};

use crate::dialback;
use crate::error::ProtocolError;
use crate::features::ns;
use crate::flags::SessionFlags;
use crate::kind::{Kinds, Role, Roles, StreamKind};
use crate::machine::Machine;
use crate::steps;

/// Where a machine's negotiation is. Data a step needs (a running SASL exchange, the id of a
/// bind request) lives beside it in the machine, so steps compare as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Waiting for the peer's stream header.
    AwaitHeader,
    /// Initiating c2s: waiting for the peer's header and `<stream:features/>`.
    AwaitFeatures,
    /// Receiving c2s: features sent; waiting for a request (`<starttls/>`, `<auth/>`, bind).
    AwaitRequest,
    /// Initiating c2s: `<starttls/>` sent.
    AwaitProceed,
    /// `StartTls` emitted: nothing may arrive until `tls_established`.
    AwaitTls,
    /// A SASL exchange runs.
    Sasl,
    /// Initiating c2s: `<abort/>` sent; waiting for the server's `<failure/>`.
    SaslAborting,
    /// Initiating c2s: a bind (or legacy session) request is out.
    Bind,
    /// Initiating c2s: an XEP-0077 registration request (fields or submission) is out.
    Register,
    /// Initiating s2s: our `<db:result/>` is out; waiting for the peer's answer.
    Dialback,
    /// XEP-0198 resumption: the client sent `<resume/>` and waits for `<resumed/>` or
    /// `<failed/>`; the server waits for the host to find the session (`resume` or
    /// `refuse_resume`).
    Resume,
    /// Component: the handshake is not done (receiving: waiting for it; initiating: waiting
    /// for the server's answer).
    AwaitHandshake,
    /// Negotiated: stanzas flow.
    Established,
    /// Closing or closed: nothing more is negotiated.
    Done,
}

impl Step {
    /// The step's name as printed in the table.
    pub const fn name(self) -> &'static str {
        match self {
            Step::AwaitHeader => "AwaitHeader",
            Step::AwaitFeatures => "AwaitFeatures",
            Step::AwaitRequest => "AwaitRequest",
            Step::AwaitProceed => "AwaitProceed",
            Step::AwaitTls => "AwaitTls",
            Step::Sasl => "Sasl",
            Step::SaslAborting => "SaslAborting",
            Step::Bind => "Bind",
            Step::Register => "Register",
            Step::Dialback => "Dialback",
            Step::AwaitHandshake => "AwaitHandshake",
            Step::Resume => "Resume",
            Step::Established => "Established",
            Step::Done => "Done",
        }
    }
}

/// What a row reacts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Match {
    /// The peer's stream header.
    Header,
    /// An element with this local name in this namespace.
    Element(&'static str, &'static str),
    /// Any element in this namespace.
    Namespace(&'static str),
    /// An `<iq/>` in the stream's content namespace with a child of this name and namespace.
    IqChild(&'static str, &'static str),
    /// A stanza: `message`, `presence` or `iq` in the stream's content namespace.
    Stanza,
    /// Any element.
    Any,
}

impl Match {
    fn describe(self) -> String {
        match self {
            Match::Header => "stream header".to_owned(),
            Match::Element(name, ns) => format!("`<{name}/>` ({ns})"),
            Match::Namespace(ns) => format!("any element in {ns}"),
            Match::IqChild(name, ns) => format!("`<iq/>` with `<{name}/>` ({ns})"),
            Match::Stanza => "stanza".to_owned(),
            Match::Any => "any element".to_owned(),
        }
    }
}

/// What a row does: a function in the module of its step.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    Header(fn(&mut Machine, &StreamHeader) -> Result<(), ProtocolError>),
    Element(fn(&mut Machine, Element) -> Result<(), ProtocolError>),
    /// The documented default ([`unaccepted_condition`]), named in the table where a row
    /// makes it explicit (an element that would otherwise match a later, wider row).
    Reject,
}

/// One rule of the negotiation table.
#[derive(Clone, Copy)]
pub struct Rule {
    /// A stable name: `step.what`, e.g. `starttls.proceed`.
    pub name: &'static str,
    /// The stream kinds the rule applies to.
    pub kinds: Kinds,
    /// The roles it applies to.
    pub roles: Roles,
    /// The step it needs.
    pub step: Step,
    /// Session flags that must all be set.
    pub needs: SessionFlags,
    /// Session flags none of which may be set.
    pub forbids: SessionFlags,
    /// What it reacts to.
    pub on: Match,
    /// What it does, in words (the handler's summary).
    pub does: &'static str,
    /// The specification section it implements.
    pub section: &'static str,
    /// The test that exercises it: `file.rs::function` under the crate's `tests/`.
    pub test: &'static str,
    pub(crate) handler: Handler,
}

impl core::fmt::Debug for Rule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl Rule {
    /// The rule, applying only when all of `flags` are set.
    const fn needs(mut self, flags: SessionFlags) -> Rule {
        self.needs = flags;
        self
    }

    /// The rule, applying only when none of `flags` is set.
    const fn forbids(mut self, flags: SessionFlags) -> Rule {
        self.forbids = flags;
        self
    }

    fn flags_allow(&self, flags: SessionFlags) -> bool {
        flags.contains(self.needs) && !flags.intersects(self.forbids)
    }
}

/// Shorthand for the table below: one argument per column.
#[allow(clippy::too_many_arguments)]
const fn row(
    name: &'static str,
    kinds: Kinds,
    roles: Roles,
    step: Step,
    on: Match,
    handler: Handler,
    does: &'static str,
    section: &'static str,
    test: &'static str,
) -> Rule {
    Rule {
        name,
        kinds,
        roles,
        step,
        needs: SessionFlags::EMPTY,
        forbids: SessionFlags::EMPTY,
        on,
        does,
        section,
        test,
        handler,
    }
}

use Handler::{Element as E, Header as H};

const SM_NS: &str = crate::sm::NS;
use Match::{Element as El, Header as Hdr};

const COMPONENT_NS: &str = xmpp_xml::NS_COMPONENT_ACCEPT;
const REGISTER_NS: &str = crate::register::NS;

/// The table itself (see [`RULES`]).
const TABLE: &[Rule] = &[
    // ----- header -----
    row(
        "header.from-server",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::AwaitFeatures,
        Hdr,
        H(steps::header::from_server),
        "version 1.0 and jabber:client required; note a foreign `from`; report `StreamOpened`",
        "RFC 6120 §4.7",
        "hostile_peer.rs::server_header_without_version_is_unsupported_version",
    ),
    row(
        "header.from-client",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::AwaitHeader,
        Hdr,
        H(steps::header::from_client),
        "send our header first, then check `from`, namespace, version, `to`; list features",
        "RFC 6120 §4.7, §4.9.1.2",
        "negotiation.rs::server_header_checks",
    ),
    // ----- features -----
    row(
        "features.choose",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::AwaitFeatures,
        El("features", ns::STREAMS),
        E(steps::features::choose),
        "negotiate the first listed feature the flags and config allow, or close with the reason",
        "RFC 6120 §4.3.2",
        "negotiation.rs::tls_policies_combine",
    ),
    row(
        "features.expected",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::AwaitFeatures,
        Match::Any,
        E(steps::features::expected),
        "invalid-from if the header named another domain, else the default",
        "RFC 6120 §4.3.2, §4.9.3.9",
        "hostile_peer.rs::server_header_from_another_domain_is_invalid_from",
    ),
    // ----- starttls -----
    row(
        "starttls.proceed",
        Kinds::CLIENT_AND_SERVER,
        Roles::Initiating,
        Step::AwaitProceed,
        El("proceed", ns::TLS),
        E(steps::starttls::proceed),
        "emit `StartTls`; bytes pipelined after `<proceed/>` are policy-violation",
        "RFC 6120 §5.4.2.3",
        "negotiation.rs::injection_after_proceed_is_fatal",
    ),
    row(
        "starttls.failure",
        Kinds::CLIENT_AND_SERVER,
        Roles::Initiating,
        Step::AwaitProceed,
        El("failure", ns::TLS),
        E(steps::starttls::refused),
        "close with `TlsFailed`",
        "RFC 6120 §5.4.2.2",
        "negotiation.rs::starttls_failure_closes",
    ),
    row(
        "starttls.request",
        Kinds::CLIENT_AND_SERVER,
        Roles::Receiving,
        Step::AwaitRequest,
        Match::Namespace(ns::TLS),
        E(steps::starttls::starttls),
        "`<proceed/>` and `StartTls` if offered and nothing pipelined, else policy-violation",
        "RFC 6120 §5.4.2.1, §5.4.3.3",
        "negotiation.rs::server_starttls_injection_is_fatal",
    ),
    // ----- sasl -----
    row(
        "sasl.auth",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::AwaitRequest,
        El("auth", ns::SASL),
        E(steps::sasl::auth),
        "start the exchange (empty challenge without initial response); failures by condition",
        "RFC 6120 §6.4.2",
        "negotiation.rs::server_sasl_abort_invalid_mechanism_and_bad_base64",
    )
    .forbids(SessionFlags::AUTHENTICATED),
    row(
        "sasl.abort-idle",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::AwaitRequest,
        El("abort", ns::SASL),
        E(steps::sasl::abort),
        "`<failure><aborted/>`",
        "RFC 6120 §6.4.4",
        "rules.rs::sasl_elements_out_of_order_fail_the_attempt",
    )
    .forbids(SessionFlags::AUTHENTICATED),
    row(
        "sasl.misplaced",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::AwaitRequest,
        Match::Namespace(ns::SASL),
        E(steps::sasl::misplaced),
        "`<failure>`: malformed-request (incorrect-encoding for bad base64)",
        "RFC 6120 §6.5.8, §6.5.2",
        "rules.rs::sasl_elements_out_of_order_fail_the_attempt",
    )
    .forbids(SessionFlags::AUTHENTICATED),
    row(
        "sasl.response",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::Sasl,
        El("response", ns::SASL),
        E(steps::sasl::response),
        "next challenge, or `<success/>` and restart, or `<failure/>`",
        "RFC 6120 §6.4.3, §6.4.6",
        "negotiation.rs::starttls_scram_plus_bind_messages_and_close",
    ),
    row(
        "sasl.abort",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::Sasl,
        El("abort", ns::SASL),
        E(steps::sasl::abort),
        "`<failure><aborted/>`",
        "RFC 6120 §6.4.4",
        "negotiation.rs::server_sasl_abort_invalid_mechanism_and_bad_base64",
    ),
    row(
        "sasl.misplaced-in-exchange",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::Sasl,
        Match::Namespace(ns::SASL),
        E(steps::sasl::misplaced_in_exchange),
        "a known SASL element: malformed-request failure; an unknown name: the default",
        "RFC 6120 §6.5.8",
        "rules.rs::sasl_elements_out_of_order_fail_the_attempt",
    ),
    row(
        "sasl.challenge",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::Sasl,
        El("challenge", ns::SASL),
        E(steps::sasl::challenge),
        "answer, or `<abort/>` when the challenge is unacceptable; bad base64 is bad-format",
        "RFC 6120 §6.4.3",
        "negotiation.rs::every_mechanism_negotiates",
    ),
    row(
        "sasl.success",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::Sasl,
        El("success", ns::SASL),
        E(steps::sasl::success),
        "verify the server's additional data, restart authenticated",
        "RFC 6120 §6.4.6",
        "negotiation.rs::tampered_success_is_not_trusted",
    ),
    row(
        "sasl.failure",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::Sasl,
        El("failure", ns::SASL),
        E(steps::sasl::failure),
        "report the attempt; fall back to the next mechanism or close `AuthenticationFailed`",
        "RFC 6120 §6.4.5",
        "sasl_fallback.rs::mechanism_level_failure_falls_back_to_the_next_mechanism",
    ),
    row(
        "sasl.aborted",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::SaslAborting,
        El("failure", ns::SASL),
        E(steps::sasl::failure),
        "our abort was answered: report it, close (never a fallback after our abort)",
        "RFC 6120 §6.4.4",
        "rules.rs::a_challenge_crossing_our_abort_is_dropped",
    ),
    row(
        "sasl.crossed-abort",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::SaslAborting,
        Match::Namespace(ns::SASL),
        E(steps::sasl::crossed_abort),
        "a challenge or success that crossed our abort: drop it, the failure follows",
        "RFC 6120 §6.4.4",
        "rules.rs::a_challenge_crossing_our_abort_is_dropped",
    ),
    // ----- in-band registration (XEP-0077) -----
    row(
        "register.request",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::AwaitRequest,
        Match::IqChild("query", REGISTER_NS),
        E(steps::register::serve),
        "off: service-unavailable; before required TLS: not-authorized; get: the fields; set: `Event::RegistrationRequested` (bad username or missing field: not-acceptable; `<remove/>`: unexpected-request), at most `max_registration_attempts` (then policy-violation)",
        "XEP-0077 §3.1, §8; RFC 6120 §8.3.3",
        "register.rs::server_registers_through_the_host",
    )
    .forbids(SessionFlags::AUTHENTICATED),
    row(
        "register.reply",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::Register,
        El("iq", ns::JABBER_CLIENT),
        E(steps::register::reply),
        "fields: submit username and password; result: `Registered`, then SASL; error: close `RegistrationFailed`",
        "XEP-0077 §3.1",
        "register.rs::client_registers_then_authenticates",
    ),
    // ----- bind and session -----
    row(
        "bind.request",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::AwaitRequest,
        El("iq", ns::JABBER_CLIENT),
        E(steps::bind::serve),
        "bind the requested or a generated resource, or a stanza error; other IQs: the default",
        "RFC 6120 §7.6, §7.7",
        "negotiation.rs::requested_resource_is_bound_and_invalid_one_is_refused",
    )
    .needs(SessionFlags::AUTHENTICATED),
    row(
        "bind.reply",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::Bind,
        El("iq", ns::JABBER_CLIENT),
        E(steps::bind::reply),
        "bound (then the legacy session if required), retry on conflict, or close `BindFailed`",
        "RFC 6120 §7.6.2, §7.7.2.2; RFC 3921 §3",
        "negotiation.rs::bind_conflict_falls_back_to_a_generated_resource",
    ),
    row(
        "session.request",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::Established,
        Match::IqChild("session", ns::SESSION),
        E(steps::session::request),
        "after the stanza checks, answer with an empty result when legacy sessions are on",
        "RFC 3921 §3",
        "negotiation.rs::mandatory_legacy_session_is_negotiated",
    ),
    // ----- stream management (XEP-0198) and ping (XEP-0199) -----
    row(
        "sm.enable-early",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::AwaitRequest,
        El("enable", SM_NS),
        E(steps::sm::enable_early),
        "before binding: `<failed><unexpected-request/></failed>`",
        "XEP-0198 §3",
        "sm.rs::enable_before_bind_and_unknown_resume_fail",
    )
    .needs(SessionFlags::AUTHENTICATED),
    row(
        "sm.resume",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::AwaitRequest,
        El("resume", SM_NS),
        E(steps::sm::resume),
        "ask the host for the session (`SmEvent::ResumeRequested`); not offered: `item-not-found`; no `previd`/`h`: `bad-request`",
        "XEP-0198 §5",
        "sm.rs::server_resumes_and_resends_in_order",
    )
    .needs(SessionFlags::AUTHENTICATED)
    .forbids(SessionFlags::BOUND),
    row(
        "sm.resumed",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::Resume,
        El("resumed", SM_NS),
        E(steps::sm::resumed),
        "the old session goes on: drop what `h` acknowledges (too high: undefined-condition), re-send the rest in order",
        "XEP-0198 §5, §4",
        "sm.rs::client_resumes_after_a_cut_and_nothing_is_lost_or_doubled",
    ),
    row(
        "sm.resume-failed",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::Resume,
        El("failed", SM_NS),
        E(steps::sm::resume_failed),
        "report every unacknowledged stanza as not delivered, bind afresh",
        "XEP-0198 §5",
        "sm.rs::failed_resumption_reports_undelivered_and_binds",
    ),
    row(
        "sm.enable",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::Established,
        El("enable", SM_NS),
        E(steps::sm::enable),
        "`<enabled/>` (with a resumption id when asked and granted); not offered: feature-not-implemented; twice: unexpected-request",
        "XEP-0198 §3",
        "sm.rs::enable_ack_and_counters",
    ),
    row(
        "sm.enabled",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::Established,
        El("enabled", SM_NS),
        E(steps::sm::enabled),
        "inbound stanzas count from here; note id, `max`, `location`",
        "XEP-0198 §3",
        "sm.rs::enable_ack_and_counters",
    ),
    row(
        "sm.refused",
        Kinds::CLIENT,
        Roles::Initiating,
        Step::Established,
        El("failed", SM_NS),
        E(steps::sm::enable_refused),
        "our `<enable/>` was refused: no stream management (`SmEvent::Refused`)",
        "XEP-0198 §3",
        "sm.rs::enable_refused_is_reported",
    ),
    row(
        "sm.request",
        Kinds::CLIENT,
        Roles::Both,
        Step::Established,
        El("r", SM_NS),
        E(steps::sm::request),
        "answer `<a h=''/>` once the host has taken the stanzas before it; not enabled: server `unexpected-request`, client reports it",
        "XEP-0198 §4",
        "sm.rs::enable_ack_and_counters",
    ),
    row(
        "sm.answer",
        Kinds::CLIENT,
        Roles::Both,
        Step::Established,
        El("a", SM_NS),
        E(steps::sm::answer),
        "drop acknowledged stanzas; `h` above what was sent: undefined-condition + `<handled-count-too-high/>`",
        "XEP-0198 §4",
        "sm.rs::an_h_above_what_was_sent_closes_the_stream",
    ),
    row(
        "sm.misplaced",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::Established,
        Match::Namespace(SM_NS),
        Handler::Reject,
        "`<resume/>` after binding, `<enabled/>` or `<resumed/>` from a client",
        "XEP-0198 §5; RFC 6120 §4.9.3.24",
        "sm.rs::enable_before_bind_and_unknown_resume_fail",
    ),
    row(
        "ping.iq",
        Kinds::CLIENT,
        Roles::Both,
        Step::Established,
        El("iq", ns::JABBER_CLIENT),
        E(steps::ping::iq),
        "the reply to our ping is consumed; a client answers a ping; other iqs: the stanza rule below",
        "XEP-0199 §4.1, §4.2",
        "sm.rs::pings_when_idle_and_times_out",
    ),
    // ----- established c2s -----
    row(
        "established.from-client",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::Established,
        Match::Stanza,
        E(steps::established::from_client),
        "`from` must be the client (invalid-from), stamped; bad `to` gets jid-malformed; report",
        "RFC 6120 §8.1.2.1, §8.1.1.1",
        "negotiation.rs::spoofed_from_is_a_stream_error",
    ),
    row(
        "established.unsupported",
        Kinds::CLIENT,
        Roles::Receiving,
        Step::Established,
        Match::Any,
        Handler::Reject,
        "a first-level element the server does not support: answered, never ignored",
        "RFC 6120 §4.9.3.24",
        "sm.rs::unsupported_first_level_elements_are_answered",
    ),
    // ----- component (XEP-0114) -----
    row(
        "component.header",
        Kinds::COMPONENT,
        Roles::Initiating,
        Step::AwaitHeader,
        Hdr,
        H(steps::component::server_header),
        "check namespace and id, send `<handshake/>` = hex SHA-1(id + secret)",
        "XEP-0114 §3",
        "component.rs::component_handshakes_and_exchanges_stanzas",
    ),
    row(
        "component.accept-header",
        Kinds::COMPONENT,
        Roles::Receiving,
        Step::AwaitHeader,
        Hdr,
        H(steps::component::component_header),
        "send our header with a fresh id; `to` must be a configured component (host-unknown)",
        "XEP-0114 §3",
        "component.rs::unknown_component_is_host_unknown",
    ),
    row(
        "component.verify",
        Kinds::COMPONENT,
        Roles::Receiving,
        Step::AwaitHandshake,
        El("handshake", COMPONENT_NS),
        E(steps::component::verify_handshake),
        "compare with hex SHA-1(id + secret): `<handshake/>`, or not-authorized / conflict",
        "XEP-0114 §3",
        "component.rs::wrong_secret_is_not_authorized",
    ),
    row(
        "component.accepted",
        Kinds::COMPONENT,
        Roles::Initiating,
        Step::AwaitHandshake,
        El("handshake", COMPONENT_NS),
        E(steps::component::handshake_accepted),
        "the server accepted the handshake: negotiated",
        "XEP-0114 §3",
        "component.rs::component_handshakes_and_exchanges_stanzas",
    ),
    row(
        "component.second-handshake",
        Kinds::COMPONENT,
        Roles::Both,
        Step::Established,
        El("handshake", COMPONENT_NS),
        Handler::Reject,
        "a handshake after success is not a stanza",
        "RFC 6120 §4.9.3.24",
        "component.rs::second_handshake_is_rejected",
    ),
    row(
        "component.inbound-stanza",
        Kinds::COMPONENT,
        Roles::Receiving,
        Step::Established,
        Match::Stanza,
        E(steps::established::component_stanza),
        "`from` must be the component's domain or a subdomain (invalid-from); `to` and `from` present (improper-addressing)",
        "XEP-0114 §3, RFC 6120 §4.9.3.9",
        "component.rs::from_outside_the_domain_is_invalid_from",
    ),
    // ----- server-to-server (RFC 6120 §13, XEP-0220) -----
    row(
        "s2s.header-from-receiving",
        Kinds::SERVER,
        Roles::Initiating,
        Step::AwaitFeatures,
        Hdr,
        H(steps::s2s::from_receiving),
        "jabber:server and version 1.0 required; `from`, when given, the domain we asked for (invalid-from)",
        "RFC 6120 §4.7, §13.7",
        "s2s.rs::external_authenticates_and_stanzas_flow",
    ),
    row(
        "s2s.header-from-initiating",
        Kinds::SERVER,
        Roles::Receiving,
        Step::AwaitHeader,
        Hdr,
        H(steps::s2s::from_initiating),
        "our header first; jabber:server, version 1.0, `to` one of our domains (host-unknown), `from` a domain (invalid-from); list features",
        "RFC 6120 §4.7, §4.9.1.2",
        "s2s.rs::header_checks_on_the_receiving_end",
    ),
    row(
        "s2s.features",
        Kinds::SERVER,
        Roles::Initiating,
        Step::AwaitFeatures,
        El("features", ns::STREAMS),
        E(steps::s2s::choose),
        "STARTTLS, then SASL EXTERNAL if offered, else dialback if offered and allowed; once authenticated: established",
        "RFC 6120 §13.7, §13.8; XEP-0220 §2.1",
        "s2s.rs::external_authenticates_and_stanzas_flow",
    ),
    row(
        "s2s.external-success",
        Kinds::SERVER,
        Roles::Initiating,
        Step::Sasl,
        El("success", ns::SASL),
        E(steps::s2s::external_success),
        "our domain pair is authenticated; restart",
        "RFC 6120 §13.8",
        "s2s.rs::external_authenticates_and_stanzas_flow",
    ),
    row(
        "s2s.external-failure",
        Kinds::SERVER,
        Roles::Initiating,
        Step::Sasl,
        El("failure", ns::SASL),
        E(steps::s2s::external_failure),
        "fall back to dialback when offered, else close `ServerNotAuthenticated`",
        "RFC 6120 §13.8; XEP-0220 §1",
        "s2s.rs::a_certificate_for_another_domain_falls_back_to_dialback",
    ),
    row(
        "s2s.dialback-answer",
        Kinds::SERVER,
        Roles::Initiating,
        Step::Dialback,
        El("result", dialback::NS),
        E(steps::s2s::dialback_answer),
        "valid: the pair is authenticated, established; invalid or error: close `ServerNotAuthenticated`",
        "XEP-0220 §2.1.1 step 4",
        "s2s.rs::dialback_authenticates_and_stanzas_flow",
    ),
    row(
        "s2s.bidi-dialback",
        Kinds::SERVER,
        Roles::Both,
        Step::Established,
        El("result", dialback::NS),
        E(steps::s2s::bidi_dialback),
        "XEP-0288 negotiated: either end asks for pairs on the one connection; a key is verified (`Event::DialbackVerify`, or the certificate), a typed answer answers our request",
        "XEP-0288 §3; XEP-0220 §2.5",
        "s2s.rs::bidi_adds_pairs_in_the_reverse_direction",
    )
    .needs(SessionFlags::BIDI),
    row(
        "s2s.piggyback-answer",
        Kinds::SERVER,
        Roles::Initiating,
        Step::Established,
        El("result", dialback::NS),
        E(steps::s2s::dialback_answer),
        "an answer for a further pair: `ServerAuthenticated` or `ServerRefused`",
        "XEP-0220 §2.5",
        "s2s.rs::a_second_domain_is_piggybacked",
    ),
    row(
        "s2s.bidi-stanza",
        Kinds::SERVER,
        Roles::Initiating,
        Step::Established,
        Match::Stanza,
        E(steps::s2s::inbound_stanza),
        "XEP-0288 negotiated: a stanza from the peer, checked as on the receiving end (improper-addressing, host-unknown, invalid-from)",
        "XEP-0288 §2; RFC 6120 §8.1.1.1, §8.1.2.1",
        "s2s.rs::bidi_carries_stanzas_both_ways",
    )
    .needs(SessionFlags::BIDI),
    row(
        "s2s.no-bidi",
        Kinds::SERVER,
        Roles::Initiating,
        Step::Established,
        Match::Stanza,
        Handler::Reject,
        "stanzas flow from the initiating server only (no XEP-0288 bidi negotiated)",
        "RFC 6120 §13; RFC 6120 §4.9.3.24",
        "s2s.rs::stanzas_against_the_direction_are_refused",
    ),
    row(
        "s2s.external",
        Kinds::SERVER,
        Roles::Receiving,
        Step::AwaitRequest,
        El("auth", ns::SASL),
        E(steps::s2s::external_auth),
        "EXTERNAL only, over TLS, authzid empty or the peer's domain, certificate naming it (RFC 6125): success and restart, else `<failure/>`",
        "RFC 6120 §13.8, §6.4; RFC 6125 §6",
        "s2s.rs::a_certificate_for_another_domain_falls_back_to_dialback",
    )
    .forbids(SessionFlags::AUTHENTICATED),
    row(
        "s2s.bidi-request",
        Kinds::SERVER,
        Roles::Receiving,
        Step::AwaitRequest,
        El("bidi", ns::BIDI),
        E(steps::s2s::bidi_request),
        "XEP-0288: stanzas will flow both ways, if we offered it (after TLS); else the default",
        "XEP-0288 §2",
        "s2s.rs::bidi_carries_stanzas_both_ways",
    )
    .forbids(SessionFlags::AUTHENTICATED),
    row(
        "s2s.dialback-request",
        Kinds::SERVER,
        Roles::Receiving,
        Step::AwaitRequest,
        El("result", dialback::NS),
        E(steps::s2s::dialback_request),
        "ask the host to verify the key (`Event::DialbackVerify`), with a deadline; refuse unknown domains (item-not-found), dialback without TLS (policy-violation)",
        "XEP-0220 §2.1.1, §2.5",
        "s2s.rs::dialback_authenticates_and_stanzas_flow",
    ),
    row(
        "s2s.dialback-piggyback",
        Kinds::SERVER,
        Roles::Receiving,
        Step::Established,
        El("result", dialback::NS),
        E(steps::s2s::dialback_request),
        "a further pair on an established stream: verified the same way",
        "XEP-0220 §2.5",
        "s2s.rs::a_second_domain_is_piggybacked",
    ),
    row(
        "s2s.dialback-verify",
        Kinds::SERVER,
        Roles::Receiving,
        Step::AwaitRequest,
        El("verify", dialback::NS),
        E(steps::s2s::dialback_verify),
        "we are the authoritative server: answer valid or invalid with our secret",
        "XEP-0220 §2.1.2, XEP-0185 §2",
        "s2s.rs::db_verify_is_answered_with_our_secret",
    ),
    row(
        "s2s.dialback-verify-established",
        Kinds::SERVER,
        Roles::Receiving,
        Step::Established,
        El("verify", dialback::NS),
        E(steps::s2s::dialback_verify),
        "the same on an established stream",
        "XEP-0220 §2.1.2",
        "s2s.rs::db_verify_is_answered_with_our_secret",
    ),
    row(
        "s2s.inbound-stanza",
        Kinds::SERVER,
        Roles::Receiving,
        Step::Established,
        Match::Stanza,
        E(steps::s2s::inbound_stanza),
        "`to` and `from` present (improper-addressing), `to` ours (host-unknown), the pair authenticated (invalid-from)",
        "RFC 6120 §8.1.1.1, §8.1.2.1, §13",
        "s2s.rs::stanzas_outside_the_authenticated_pairs_are_invalid_from",
    ),
    // ----- established streams (every kind) -----
    row(
        "established.stanza",
        Kinds::CLIENT.with(StreamKind::Component),
        Roles::Initiating,
        Step::Established,
        Match::Stanza,
        E(steps::established::stanza),
        "report `Event::Stanza`",
        "RFC 6120 §8",
        "component.rs::component_handshakes_and_exchanges_stanzas",
    ),
    row(
        "established.nonza",
        Kinds::ALL,
        Roles::Both,
        Step::Established,
        Match::Any,
        E(steps::established::nonza),
        "report `Event::Nonza` (XEP-0198 `<r/>`...) for the host",
        "RFC 6120 §4.1",
        "component.rs::nonzas_reach_the_host",
    ),
    // ----- closing -----
    row(
        "closing.stanza",
        Kinds::CLIENT.with(StreamKind::Component),
        Roles::Initiating,
        Step::Done,
        Match::Any,
        E(steps::established::while_closing),
        "after our close, report the peer's stanzas until its close arrives; drop the rest",
        "RFC 6120 §4.4",
        "rules.rs::stanzas_sent_before_the_close_arrive",
    ),
    row(
        "closing.ignore",
        Kinds::ALL,
        Roles::Receiving,
        Step::Done,
        Match::Any,
        E(steps::established::ignore),
        "the stream is over for us: drop it",
        "RFC 6120 §4.4",
        "rules.rs::garbage_after_close_is_ignored",
    ),
    row(
        "closing.s2s-ignore",
        Kinds::SERVER,
        Roles::Initiating,
        Step::Done,
        Match::Any,
        E(steps::established::ignore),
        "an initiating s2s stream carries no stanzas from the peer (no bidi), closing or not: drop them",
        "RFC 6120 §4.4, §13",
        "s2s_regressions.rs::no_stanza_from_the_peer_while_an_initiating_stream_closes",
    ),
];

/// Every rule, grouped by step module. The first row that applies wins.
pub static RULES: &[Rule] = TABLE;

/// Rows in the table.
const ROWS: usize = TABLE.len();

// ----- lookup -----
//
// A machine looks up a row for every element it receives, stanzas included, so the lookup
// must not scan the table: the rows are indexed at compile time by (step, role, kind), in
// table order, and only the few rows of the machine's bucket are tried.

/// Most rows one (step, role, kind) bucket holds; a bigger bucket fails the build.
const BUCKET: usize = 12;
/// Steps, roles and kinds: the index's dimensions.
const STEPS: usize = Step::Done as usize + 1;
const KINDS: usize = StreamKind::ALL.len();
const BUCKETS: usize = STEPS * 2 * KINDS;

const fn bucket_of(step: Step, role: Role, kind: StreamKind) -> usize {
    ((step as usize) * 2 + (role as usize)) * KINDS + (kind as usize)
}

struct Index {
    rows: [[u8; BUCKET]; BUCKETS],
    len: [u8; BUCKETS],
}

static INDEX: Index = {
    let mut index = Index {
        rows: [[0; BUCKET]; BUCKETS],
        len: [0; BUCKETS],
    };
    let roles = [Role::Initiating, Role::Receiving];
    let mut row = 0;
    while row < ROWS {
        let rule = &TABLE[row];
        let mut k = 0;
        while k < KINDS {
            let mut r = 0;
            while r < 2 {
                if rule.kinds.contains(StreamKind::ALL[k]) && rule.roles.contains(roles[r]) {
                    let bucket = bucket_of(rule.step, roles[r], StreamKind::ALL[k]);
                    let len = index.len[bucket] as usize;
                    assert!(len < BUCKET, "a (step, role, kind) bucket overflows BUCKET");
                    #[allow(clippy::cast_possible_truncation)] // ROWS < 256, checked below
                    {
                        index.rows[bucket][len] = row as u8;
                        index.len[bucket] = (len + 1) as u8;
                    }
                }
                r += 1;
            }
            k += 1;
        }
        row += 1;
    }
    assert!(ROWS < 256, "row numbers are stored as u8");
    index
};

/// The rows a machine of this kind and role may apply in `step`, in table order.
fn bucket(kind: StreamKind, role: Role, step: Step) -> impl Iterator<Item = &'static Rule> {
    // Both lookups are in bounds by construction (`bucket_of` of any step, role and kind is
    // below BUCKETS, every stored row below ROWS); `get` keeps a mistake from panicking.
    let bucket = bucket_of(step, role, kind);
    let rows: &'static [u8] = match (INDEX.rows.get(bucket), INDEX.len.get(bucket)) {
        (Some(rows), Some(len)) => rows.get(..usize::from(*len)).unwrap_or_default(),
        _ => &[],
    };
    rows.iter().filter_map(|row| TABLE.get(usize::from(*row)))
}

/// The row for this element in this state, if any.
pub(crate) fn find(
    kind: StreamKind,
    role: Role,
    step: Step,
    flags: SessionFlags,
    element: &Element,
) -> Option<&'static Rule> {
    // Every stanza passes here: the element's name is read once, and whether it is in the
    // stream's content namespace at most once, whatever the rows ask.
    let name = element.name();
    let mut in_content: Option<bool> = None;
    let mut content = || *in_content.get_or_insert_with(|| element.has_ns(kind.namespace()));
    for rule in bucket(kind, role, step) {
        if !rule.flags_allow(flags) {
            continue;
        }
        let hit = match rule.on {
            Match::Header => false,
            Match::Element(local, ns) => name == local && element.has_ns(ns),
            Match::Namespace(ns) => element.has_ns(ns),
            Match::IqChild(local, ns) => name == "iq" && content() && element.has_child(local, ns),
            Match::Stanza => matches!(name, "message" | "presence" | "iq") && content(),
            Match::Any => true,
        };
        if hit {
            return Some(rule);
        }
    }
    None
}

/// The row for the peer's header in this state, if any.
pub(crate) fn find_header(
    kind: StreamKind,
    role: Role,
    step: Step,
    flags: SessionFlags,
) -> Option<&'static Rule> {
    bucket(kind, role, step)
        .find(|rule| matches!(rule.on, Match::Header) && rule.flags_allow(flags))
}

/// The one default for an element no row accepts (RFC 6120 §4.9.3):
///
/// - the receiving entity, before the stream is negotiated: `not-authorized` (§4.9.3.12:
///   data sent before the stream is authenticated, or an action of stream negotiation the
///   peer is not authorized to take);
/// - otherwise: `unsupported-stanza-type` (§4.9.3.24: a first-level child the entity does
///   not support here).
///
/// A second stream header where none is expected is `invalid-xml` (§4.9.3.11): the header is
/// not an element, and a stream has one per restart.
pub fn unaccepted_condition(role: Role, step: Step) -> StreamErrorCondition {
    if role == Role::Receiving && step != Step::Established {
        StreamErrorCondition::NotAuthorized
    } else {
        StreamErrorCondition::UnsupportedStanzaType
    }
}

/// Whether `element` is a stanza of a stream of `kind`.
pub(crate) fn is_stanza_of(kind: StreamKind, element: &Element) -> bool {
    matches!(element.name(), "message" | "presence" | "iq") && element.has_ns(kind.namespace())
}

/// Whether `element` is a stanza in any content namespace: what `send_stanza` accepts on
/// every kind (the writer puts it in the stream's own namespace).
pub(crate) fn is_stanza_any(element: &Element) -> bool {
    matches!(element.name(), "message" | "presence" | "iq")
        && (element.has_ns(xmpp_xml::NS_CLIENT)
            || element.has_ns(xmpp_xml::NS_SERVER)
            || element.has_ns(xmpp_xml::NS_COMPONENT_ACCEPT))
}

/// The table as Markdown: one line per rule with its kinds, roles, step, trigger, action,
/// section and test.
pub fn markdown() -> String {
    let mut out = String::from(
        "| rule | kinds | role | step | on | does | spec | test |\n|---|---|---|---|---|---|---|---|\n",
    );
    for rule in RULES {
        let kinds: Vec<&str> = StreamKind::ALL
            .iter()
            .filter(|kind| rule.kinds.contains(**kind))
            .map(|kind| kind.short_name())
            .collect();
        let roles = match rule.roles {
            Roles::Initiating => "initiating",
            Roles::Receiving => "receiving",
            Roles::Both => "both",
        };
        let mut step = rule.step.name().to_owned();
        if !rule.needs.is_empty() {
            let _ = write!(step, ", {:?}", rule.needs);
        }
        if !rule.forbids.is_empty() {
            let _ = write!(step, ", not {:?}", rule.forbids);
        }
        let does = match rule.handler {
            Handler::Reject => format!("{} (**default**)", rule.does),
            _ => rule.does.to_owned(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | `{}` |",
            rule.name,
            kinds.join(", "),
            roles,
            step,
            rule.on.describe(),
            does,
            rule.section,
            rule.test,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compile-time index holds, for every (step, role, kind), exactly the rows a scan of
    /// the table would try, in table order.
    #[test]
    fn index_agrees_with_a_scan() {
        let steps = [
            Step::AwaitHeader,
            Step::AwaitFeatures,
            Step::AwaitRequest,
            Step::AwaitProceed,
            Step::AwaitTls,
            Step::Sasl,
            Step::SaslAborting,
            Step::Bind,
            Step::Register,
            Step::Dialback,
            Step::AwaitHandshake,
            Step::Resume,
            Step::Established,
            Step::Done,
        ];
        assert_eq!(steps.len(), STEPS);
        let mut seen = 0;
        for step in steps {
            for role in [Role::Initiating, Role::Receiving] {
                for kind in StreamKind::ALL {
                    let indexed: Vec<&str> = bucket(kind, role, step).map(|r| r.name).collect();
                    let scanned: Vec<&str> = RULES
                        .iter()
                        .filter(|r| {
                            r.step == step && r.kinds.contains(kind) && r.roles.contains(role)
                        })
                        .map(|r| r.name)
                        .collect();
                    assert_eq!(indexed, scanned, "{step:?} {role:?} {kind:?}");
                    seen += indexed.len();
                }
            }
        }
        assert!(seen >= RULES.len(), "every row is in some bucket");
    }
}
