//! XEP-0077 in-band registration before authentication: both ends of ours through the `Pair`,
//! and the server fed raw XML by a hostile or simply old client.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use xmpp_sasl::{Condition, CredentialStore, ScramHash, StoredCredentials};
use xmpp_stream::pair::Pair;
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, Event, FeatureKind, Instant, MemoryBackend,
    Output, Registration, RegistrationRefused, SeededEntropy, ServerBackend, ServerConfig,
    ServerStream, StanzaErrorCondition, StreamErrorCondition, TlsPolicy, Transport, UsageError,
};

const DOMAIN: &str = "im.example.com";
const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";
const GET: &str = "<iq type='get' id='g1'><query xmlns='jabber:iq:register'/></iq>";

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

/// Accounts the test adds to while the server stream runs, as a host's store would.
#[derive(Clone, Default)]
struct Accounts(Arc<Mutex<MemoryBackend>>);

impl Accounts {
    fn add(&self, registration: &Registration) {
        let mut backend = self.0.lock().unwrap();
        let name = registration.jid.node().unwrap().to_owned();
        *backend =
            std::mem::take(&mut *backend).with_user(&name, registration.password.expose(), 4096);
    }
}

impl CredentialStore for Accounts {
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        self.0.lock().unwrap().scram_credentials(authcid, hash)
    }
}

impl ServerBackend for Accounts {}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new(jid(DOMAIN));
    config.allow_registration = true;
    config
}

fn registering_client(name: &str, password: &str) -> ClientConfig {
    let mut config = ClientConfig::new(jid(&format!("{name}@{DOMAIN}")), password);
    config.register = true;
    config
}

fn pair(client: ClientConfig, server: ServerConfig, accounts: &Accounts) -> Pair {
    Pair::new(
        ClientStream::new(client, SeededEntropy::new(1)),
        ServerStream::new(server, SeededEntropy::new(2), accounts.clone()),
    )
}

fn requested(events: &[Event]) -> Vec<Registration> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RegistrationRequested(r) => Some((**r).clone()),
            _ => None,
        })
        .collect()
}

fn closed(events: &[Event]) -> Option<&CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed { reason } => Some(reason),
        _ => None,
    })
}

/// The server asks its host, the host creates the account and answers, and the client logs in
/// as it on the same stream.
#[test]
fn server_registers_through_the_host() {
    let accounts = Accounts::default();
    let mut pair = pair(
        registering_client("romeo", "wherefore"),
        server_config(),
        &accounts,
    );
    pair.start();
    pair.drive();
    let asked = requested(&pair.server_events);
    assert_eq!(asked.len(), 1, "{:?}", pair.server_events);
    assert_eq!(asked[0].jid, jid("romeo@im.example.com"));
    assert_eq!(asked[0].password.expose(), "wherefore");
    // Nothing goes on until the host answers.
    assert!(pair.client.jid().is_none());
    accounts.add(&asked[0]);
    pair.server
        .registration_done(pair.now, Ok(()))
        .expect("pending");
    pair.drive();
    assert!(pair.server_errors.is_empty(), "{:?}", pair.server_errors);
    assert_eq!(
        pair.client.jid().map(xmpp_stream::FullJid::to_bare),
        Some(jid("romeo@im.example.com"))
    );
    assert_eq!(pair.server.account(), Some(&jid("romeo@im.example.com")));
    // A second answer has nothing to answer.
    assert_eq!(
        pair.server.registration_done(pair.now, Ok(())),
        Err(UsageError::NoRegistrationPending)
    );
}

/// The client asks for the fields, submits its username and password after TLS, reports
/// `Registered` before authenticating, and goes on with SASL.
#[test]
fn client_registers_then_authenticates() {
    let accounts = Accounts::default();
    let mut pair = pair(
        registering_client("romeo", "wherefore"),
        server_config(),
        &accounts,
    );
    pair.start();
    pair.drive();
    let asked = requested(&pair.server_events);
    accounts.add(&asked[0]);
    pair.server.registration_done(pair.now, Ok(())).unwrap();
    pair.drive();
    let position = |f: &dyn Fn(&Event) -> bool| pair.client_events.iter().position(f);
    let secured = position(&|e| matches!(e, Event::Secured)).expect("secured");
    let registered = position(
        &|e| matches!(e, Event::Registered { jid } if jid.as_str() == "romeo@im.example.com"),
    )
    .expect("registered");
    let authenticated = position(&|e| matches!(e, Event::Authenticated { .. })).expect("auth");
    assert!(secured < registered && registered < authenticated);
    let log = pair.log_text();
    // Fields request and result, submission (the empty result names no namespace).
    assert_eq!(log.matches("jabber:iq:register").count(), 3, "{log}");
    assert!(log.contains("<username/>"), "{log}");
    assert!(log.contains("<username>romeo</username>"), "{log}");
}

/// A refusal from the host reaches the client typed, with the XEP's condition and type, and
/// closes its stream.
#[test]
fn host_refusals_reach_the_client() {
    for (refused, condition) in [
        (
            RegistrationRefused::Conflict,
            StanzaErrorCondition::Conflict,
        ),
        (
            RegistrationRefused::NotAcceptable,
            StanzaErrorCondition::NotAcceptable,
        ),
        (
            RegistrationRefused::Storage,
            StanzaErrorCondition::InternalServerError,
        ),
    ] {
        let accounts = Accounts::default();
        let mut pair = pair(
            registering_client("juliet", "r0m30"),
            server_config(),
            &accounts,
        );
        pair.start();
        pair.drive();
        pair.server
            .registration_done(pair.now, Err(refused))
            .unwrap();
        pair.drive();
        match closed(&pair.client_events) {
            Some(CloseReason::RegistrationFailed(error)) => {
                assert_eq!(error.condition, condition);
                assert_eq!(error.error_type, refused.stanza_error().error_type);
            }
            other => panic!("{refused:?}: {other:?}"),
        }
        assert!(
            !pair
                .client_events
                .iter()
                .any(|e| matches!(e, Event::Authenticated { .. }))
        );
    }
}

/// Off by default: no `<register/>` listed, and a client asked to register closes with
/// `FeatureMissing(Register)` instead of authenticating.
#[test]
fn registration_off_lists_no_feature() {
    let accounts = Accounts::default();
    let mut pair = pair(
        registering_client("romeo", "wherefore"),
        ServerConfig::new(jid(DOMAIN)),
        &accounts,
    );
    pair.start();
    pair.drive();
    assert!(!pair.log_text().contains("iq-register"));
    assert_eq!(
        closed(&pair.client_events),
        Some(&CloseReason::FeatureMissing(FeatureKind::Register))
    );
    assert!(requested(&pair.server_events).is_empty());
}

/// A server stream on a plain transport fed raw XML: what it wrote, its events.
struct Raw {
    server: ServerStream,
    wire: String,
    events: Vec<Event>,
}

impl Raw {
    fn new(mut config: ServerConfig) -> Raw {
        if config.tls == TlsPolicy::Required {
            config.tls = TlsPolicy::Disabled;
        }
        let mut server = ServerStream::new(config, SeededEntropy::new(3), Accounts::default());
        server.start(Instant::ZERO, Transport::Plain).unwrap();
        let mut raw = Raw {
            server,
            wire: String::new(),
            events: Vec::new(),
        };
        raw.feed(HEADER);
        raw
    }

    fn feed(&mut self, xml: &str) -> String {
        let _ = self.server.handle_input(Instant::ZERO, xml.as_bytes());
        self.drain()
    }

    fn drain(&mut self) -> String {
        let mut out = String::new();
        while let Some(output) = self.server.poll_output() {
            match output {
                Output::Transmit(bytes) => out.push_str(&String::from_utf8_lossy(&bytes)),
                Output::Event(event) => self.events.push(event),
                _ => {}
            }
        }
        self.wire.push_str(&out);
        out
    }
}

/// Registration off: the pre-authentication registration IQ gets `service-unavailable`
/// and the stream goes on; any other IQ before authentication is still the stream error
/// RFC 6120 gives it (`not-authorized`).
#[test]
fn registration_off_refuses_the_iq() {
    let mut raw = Raw::new(ServerConfig::new(jid(DOMAIN)));
    assert!(!raw.wire.contains("iq-register"), "{}", raw.wire);
    let answer = raw.feed(GET);
    assert!(answer.contains("type='error'"), "{answer}");
    assert!(answer.contains("<service-unavailable"), "{answer}");
    assert!(!answer.contains("</stream:stream>"), "{answer}");
    let answer = raw.feed(
        "<iq type='set' id='s1'><query xmlns='jabber:iq:register'><username>a</username>\
         <password>b</password></query></iq>",
    );
    assert!(answer.contains("<service-unavailable"), "{answer}");
    assert!(requested(&raw.events).is_empty());
    let answer = raw.feed("<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>");
    assert!(answer.contains("<not-authorized"), "{answer}");
    assert!(answer.contains("</stream:stream>"), "{answer}");
}

/// Registration on: the feature is listed, the fields come back, and bad submissions are
/// refused with the XEP's conditions before the host hears of them.
#[test]
fn server_answers_fields_and_refuses_bad_submissions() {
    let mut raw = Raw::new(server_config());
    assert!(
        raw.wire
            .contains("<register xmlns='http://jabber.org/features/iq-register'/>"),
        "{}",
        raw.wire
    );
    let fields = raw.feed(GET);
    assert!(fields.contains("id='g1'"), "{fields}");
    assert!(fields.contains("type='result'"), "{fields}");
    for field in ["<instructions>", "<username/>", "<password/>"] {
        assert!(fields.contains(field), "{field}: {fields}");
    }
    // Not a localpart (PRECIS refuses the space... and '@'): not-acceptable.
    let bad = raw.feed(
        "<iq type='set' id='s1'><query xmlns='jabber:iq:register'><username>ro meo@x</username>\
         <password>p</password></query></iq>",
    );
    assert!(bad.contains("<not-acceptable"), "{bad}");
    assert!(bad.contains("type='modify'"), "{bad}");
    // No password: not-acceptable.
    let missing = raw.feed(
        "<iq type='set' id='s2'><query xmlns='jabber:iq:register'><username>romeo</username>\
         </query></iq>",
    );
    assert!(missing.contains("<not-acceptable"), "{missing}");
    assert!(requested(&raw.events).is_empty());
}

/// A cancellation before authentication has no account to cancel (`unexpected-request`);
/// `<remove/>` with company is `bad-request`; a registration result from the client is the
/// table's default.
#[test]
fn removal_before_authentication_is_refused() {
    let mut raw = Raw::new(server_config());
    let cancel =
        raw.feed("<iq type='set' id='c1'><query xmlns='jabber:iq:register'><remove/></query></iq>");
    assert!(cancel.contains("<unexpected-request"), "{cancel}");
    let crowded = raw.feed(
        "<iq type='set' id='c2'><query xmlns='jabber:iq:register'><remove/><username>a</username>\
         </query></iq>",
    );
    assert!(crowded.contains("<bad-request"), "{crowded}");
    let result = raw.feed("<iq type='result' id='c3'><query xmlns='jabber:iq:register'/></iq>");
    assert!(result.contains("<not-authorized"), "{result}");
    assert!(result.contains("</stream:stream>"), "{result}");
}

/// One submission at a time, and at most `max_registration_attempts` per stream: the next
/// one closes the stream with `policy-violation`.
#[test]
fn submissions_are_bounded() {
    let mut config = server_config();
    config.max_registration_attempts = 2;
    let mut raw = Raw::new(config);
    let submit = |id: &str, name: &str| {
        format!(
            "<iq type='set' id='{id}'><query xmlns='jabber:iq:register'><username>{name}</username>\
             <password>p</password></query></iq>"
        )
    };
    let first = raw.feed(&submit("s1", "alice"));
    assert!(first.is_empty(), "{first}");
    assert_eq!(requested(&raw.events).len(), 1);
    // The first is not answered yet: the second waits its turn.
    let second = raw.feed(&submit("s2", "bob"));
    assert!(second.contains("<resource-constraint"), "{second}");
    let answered = {
        raw.server
            .registration_done(Instant::ZERO, Err(RegistrationRefused::Conflict))
            .unwrap();
        raw.drain()
    };
    assert!(answered.contains("id='s1'"), "{answered}");
    assert!(answered.contains("<conflict"), "{answered}");
    let third = raw.feed(&submit("s3", "carol"));
    assert!(third.contains("<policy-violation"), "{third}");
    assert!(third.contains("</stream:stream>"), "{third}");
    assert_eq!(requested(&raw.events).len(), 1);
    assert!(matches!(
        closed(&raw.events),
        Some(CloseReason::ProtocolError(e)) if e.condition() == StreamErrorCondition::PolicyViolation
    ));
}

/// With STARTTLS required, the feature is listed only on the encrypted stream, and a
/// registration attempted before it is `not-authorized` (the password would cross in the
/// clear).
#[test]
fn no_registration_before_required_tls() {
    let mut server = ServerStream::new(server_config(), SeededEntropy::new(3), Accounts::default());
    server.start(Instant::ZERO, Transport::Plain).unwrap();
    let _ = server.handle_input(Instant::ZERO, HEADER.as_bytes());
    let _ = server.handle_input(Instant::ZERO, GET.as_bytes());
    let mut wire = String::new();
    while let Some(output) = server.poll_output() {
        if let Output::Transmit(bytes) = output {
            wire.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert!(!wire.contains("iq-register"), "{wire}");
    assert!(wire.contains("<not-authorized"), "{wire}");
    assert!(!wire.contains("</stream:stream>"), "{wire}");
}

/// A client asked to register needs a password and a localpart.
#[test]
fn client_registration_needs_a_password() {
    let mut config = registering_client("romeo", "x");
    config.jid = jid(DOMAIN);
    let mut client = ClientStream::new(config, SeededEntropy::new(1));
    assert!(matches!(
        client.start(Instant::ZERO, Transport::Plain),
        Err(UsageError::InvalidConfig(_))
    ));
}
