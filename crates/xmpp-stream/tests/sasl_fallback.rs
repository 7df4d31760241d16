//! The client's SASL mechanism list and its fallback after `<failure/>`, through the `Pair`.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sasl_common;

use sasl_common::{auth_failed, authenticated_with, closed};

use xmpp_sasl::{Condition, CredentialStore, ScramHash, StoredCredentials};
use xmpp_stream::pair::{Direction, LogEntry, Pair};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, Event, Mechanism, MemoryBackend,
    SeededEntropy, ServerBackend, ServerConfig, ServerStream, StreamError, StreamErrorCondition,
    TlsPolicy,
};

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn accounts() -> MemoryBackend {
    static ACCOUNTS: std::sync::OnceLock<MemoryBackend> = std::sync::OnceLock::new();
    ACCOUNTS
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096))
        .clone()
}

/// The real accounts, except that looking up credentials of the listed hashes fails with the
/// listed condition: the server then answers `<failure/>` with it to that SCRAM variant.
#[derive(Clone)]
struct Refusing {
    accounts: MemoryBackend,
    refuse: Vec<(ScramHash, Condition)>,
}

impl CredentialStore for Refusing {
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        match self.refuse.iter().find(|(h, _)| *h == hash) {
            Some((_, condition)) => Err(*condition),
            None => self.accounts.scram_credentials(authcid, hash),
        }
    }
}

impl ServerBackend for Refusing {}

fn client_config() -> ClientConfig {
    ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30")
}

fn server_config() -> ServerConfig {
    let mut server = ServerConfig::new(jid("im.example.com"));
    // Room for every fallback these tests make: the server's own limit is not under test.
    server.max_auth_attempts = 10;
    server
}

fn run(client: ClientConfig, server: ServerConfig, refuse: &[(ScramHash, Condition)]) -> Pair {
    let backend = Refusing {
        accounts: accounts(),
        refuse: refuse.to_vec(),
    };
    let mut pair = Pair::new(
        ClientStream::new(client, SeededEntropy::new(1)),
        ServerStream::new(server, SeededEntropy::new(2), backend),
    );
    pair.start();
    pair.drive();
    pair
}

/// The mechanisms the client named in `<auth/>`, in order.
fn auths(pair: &Pair) -> Vec<String> {
    pair.log
        .iter()
        .filter_map(|entry| match entry {
            LogEntry::Sent {
                direction: Direction::ToServer,
                bytes,
                ..
            } => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .flat_map(|text| {
            text.split("<auth ")
                .skip(1)
                .filter_map(|rest| {
                    let start = rest.find("mechanism='")? + "mechanism='".len();
                    let end = rest[start..].find('\'')?;
                    Some(rest[start..start + end].to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `(mechanism, condition, next)` of every `SaslAttemptFailed` the client reported.
fn failed_attempts(pair: &Pair) -> Vec<(Mechanism, String, Option<Mechanism>)> {
    pair.client_events
        .iter()
        .filter_map(|e| match e {
            Event::SaslAttemptFailed {
                mechanism,
                condition,
                next,
                ..
            } => Some((*mechanism, condition.to_string(), *next)),
            _ => None,
        })
        .collect()
}

#[test]
fn mechanism_level_failure_falls_back_to_the_next_mechanism() {
    for condition in [
        Condition::InvalidMechanism,
        Condition::MechanismTooWeak,
        Condition::EncryptionRequired,
    ] {
        // Fake TLS gives both sides tls-exporter data: the default list starts with -PLUS.
        let pair = run(
            client_config(),
            server_config(),
            &[(ScramHash::Sha512, condition)],
        );
        assert_eq!(
            auths(&pair),
            ["SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS"],
            "{condition}"
        );
        assert_eq!(
            failed_attempts(&pair),
            [(
                Mechanism::ScramSha512Plus,
                condition.to_string(),
                Some(Mechanism::ScramSha256Plus)
            )]
        );
        assert_eq!(
            authenticated_with(&pair.client_events),
            Some(Mechanism::ScramSha256Plus)
        );
        assert_eq!(
            authenticated_with(&pair.server_events),
            Some(Mechanism::ScramSha256Plus)
        );
        assert!(pair.client.is_negotiated() && pair.server.is_negotiated());
    }
}

#[test]
fn fallback_without_channel_binding_walks_the_scram_variants() {
    let mut pair = Pair::new(
        ClientStream::new(client_config(), SeededEntropy::new(1)),
        ServerStream::new(
            server_config(),
            SeededEntropy::new(2),
            Refusing {
                accounts: accounts(),
                refuse: vec![
                    (ScramHash::Sha512, Condition::InvalidMechanism),
                    (ScramHash::Sha256, Condition::MechanismTooWeak),
                ],
            },
        ),
    );
    // A TLS layer without channel-binding data: no -PLUS on either side.
    pair.client_bindings = Vec::new();
    pair.server_bindings = Vec::new();
    pair.start();
    pair.drive();
    assert_eq!(
        auths(&pair),
        ["SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"]
    );
    assert_eq!(
        authenticated_with(&pair.client_events),
        Some(Mechanism::ScramSha1)
    );
    assert!(pair.client.is_negotiated());
}

#[test]
fn credential_failures_do_not_fall_back() {
    for condition in [
        Condition::NotAuthorized,
        Condition::CredentialsExpired,
        Condition::AccountDisabled,
        Condition::InvalidAuthzid,
        Condition::TemporaryAuthFailure,
        Condition::MalformedRequest,
        Condition::IncorrectEncoding,
    ] {
        let refuse: Vec<_> = ScramHash::ALL.iter().map(|h| (*h, condition)).collect();
        let pair = run(client_config(), server_config(), &refuse);
        assert_eq!(auths(&pair), ["SCRAM-SHA-512-PLUS"], "{condition}");
        assert_eq!(
            failed_attempts(&pair),
            [(Mechanism::ScramSha512Plus, condition.to_string(), None)]
        );
        assert_eq!(
            closed(&pair.client_events),
            Some(&auth_failed(condition)),
            "{condition}"
        );
        assert!(!pair.client.is_negotiated());
    }
}

#[test]
fn wrong_password_is_one_attempt_even_with_plain_on_offer() {
    let mut client = client_config();
    client.credentials = xmpp_stream::Credentials::Password("wrong".to_owned());
    let pair = run(client, server_config(), &[]);
    // The server offers every SCRAM variant and PLAIN; not-authorized ends it at once.
    assert_eq!(auths(&pair), ["SCRAM-SHA-512-PLUS"]);
    assert_eq!(
        closed(&pair.client_events),
        Some(&auth_failed(Condition::NotAuthorized))
    );
}

#[test]
fn attempt_limit_bounds_the_fallback() {
    let refuse: Vec<_> = ScramHash::ALL
        .iter()
        .map(|h| (*h, Condition::MechanismTooWeak))
        .collect();
    let mut server = server_config();
    server.mechanisms = vec![
        Mechanism::ScramSha512,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
    ];

    // Default: every acceptable mechanism once, then the last failure is final.
    let pair = run(client_config(), server.clone(), &refuse);
    assert_eq!(
        auths(&pair),
        ["SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"]
    );
    assert_eq!(
        failed_attempts(&pair).last(),
        Some(&(Mechanism::ScramSha1, "mechanism-too-weak".to_owned(), None))
    );
    assert_eq!(
        closed(&pair.client_events),
        Some(&auth_failed(Condition::MechanismTooWeak))
    );

    // A limit of two.
    let mut client = client_config();
    client.max_auth_attempts = 2;
    let pair = run(client, server.clone(), &refuse);
    assert_eq!(auths(&pair), ["SCRAM-SHA-512", "SCRAM-SHA-256"]);
    assert_eq!(
        failed_attempts(&pair),
        [
            (
                Mechanism::ScramSha512,
                "mechanism-too-weak".to_owned(),
                Some(Mechanism::ScramSha256)
            ),
            (
                Mechanism::ScramSha256,
                "mechanism-too-weak".to_owned(),
                None
            ),
        ]
    );

    // 0 behaves as 1: the first attempt is always made.
    let mut client = client_config();
    client.max_auth_attempts = 0;
    let pair = run(client, server, &refuse);
    assert_eq!(auths(&pair), ["SCRAM-SHA-512"]);
}

#[test]
fn server_limit_closes_the_stream_during_fallback() {
    // The server tolerates two failures; the client would try three mechanisms.
    let refuse: Vec<_> = ScramHash::ALL
        .iter()
        .map(|h| (*h, Condition::InvalidMechanism))
        .collect();
    let mut server = server_config();
    server.max_auth_attempts = 2;
    server.mechanisms = vec![
        Mechanism::ScramSha512,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
    ];
    let pair = run(client_config(), server, &refuse);
    // The third <auth/> crosses the server's close on the wire; the server refuses it as
    // input on a closed stream (its sticky error), and the client sees the stream error.
    assert_eq!(auths(&pair).len(), 3);
    match closed(&pair.client_events) {
        Some(CloseReason::StreamError(e)) => {
            assert_eq!(e.condition, StreamErrorCondition::PolicyViolation);
        }
        other => panic!("{other:?}"),
    }
    assert!(pair.client_errors.is_empty());
}

#[test]
fn channel_bound_attempts_never_fall_back_to_unbound_ones() {
    // SCRAM-SHA-512-PLUS fails with a mechanism-level condition. Falling back to plain SCRAM
    // would let an attacker who terminates TLS forge that failure and relay the unbound
    // retry; only another -PLUS variant may follow.
    let mut server = server_config();
    server.mechanisms = vec![
        Mechanism::ScramSha512Plus,
        Mechanism::ScramSha512,
        Mechanism::ScramSha256,
        Mechanism::Plain,
    ];
    let pair = run(
        client_config(),
        server,
        &[(ScramHash::Sha512, Condition::InvalidMechanism)],
    );
    assert_eq!(auths(&pair), ["SCRAM-SHA-512-PLUS"]);
    assert_eq!(
        failed_attempts(&pair),
        [(
            Mechanism::ScramSha512Plus,
            "invalid-mechanism".to_owned(),
            None
        )]
    );
    assert_eq!(
        closed(&pair.client_events),
        Some(&auth_failed(Condition::InvalidMechanism))
    );
}

#[test]
fn downgrade_protection_holds_across_fallback() {
    let mut server = server_config();
    server.mechanisms = vec![
        Mechanism::ScramSha512,
        Mechanism::ScramSha256,
        Mechanism::Plain,
    ];
    assert!(server.downgrade_protection);
    let refuse = [(ScramHash::Sha512, Condition::InvalidMechanism)];

    // Untampered: the second attempt's XEP-0474 hash covers the server's full list, which
    // is still what the client saw, so the fallback completes.
    let pair = run(client_config(), server.clone(), &refuse);
    assert_eq!(auths(&pair), ["SCRAM-SHA-512", "SCRAM-SHA-256"]);
    assert_eq!(
        authenticated_with(&pair.client_events),
        Some(Mechanism::ScramSha256)
    );

    // SCRAM-SHA-512 stripped in flight: the client's first choice is SCRAM-SHA-256, the
    // server's downgrade hash disagrees with the list the client saw, the client aborts and
    // does not fall back to the PLAIN the attacker left on offer.
    let mut pair = Pair::new(
        ClientStream::new(client_config(), SeededEntropy::new(1)),
        ServerStream::new(
            server,
            SeededEntropy::new(2),
            Refusing {
                accounts: accounts(),
                refuse: refuse.to_vec(),
            },
        ),
    );
    pair.set_tamper(|direction, bytes| {
        if direction == Direction::ToClient {
            let text =
                String::from_utf8_lossy(bytes).replace("<mechanism>SCRAM-SHA-512</mechanism>", "");
            *bytes = text.into_bytes();
        }
    });
    pair.start();
    pair.drive();
    assert_eq!(auths(&pair), ["SCRAM-SHA-256"]);
    assert_eq!(
        failed_attempts(&pair),
        [(Mechanism::ScramSha256, "aborted".to_owned(), None)]
    );
    assert_eq!(
        closed(&pair.client_events),
        Some(&auth_failed(Condition::Aborted))
    );
    assert!(!pair.client.is_negotiated());
}

#[test]
fn allowed_list_order_is_respected() {
    for (list, expected) in [
        (
            vec![Mechanism::ScramSha1, Mechanism::ScramSha256],
            Mechanism::ScramSha1,
        ),
        (
            vec![Mechanism::Plain, Mechanism::ScramSha512Plus],
            Mechanism::Plain,
        ),
        (
            vec![Mechanism::ScramSha256, Mechanism::ScramSha512Plus],
            Mechanism::ScramSha256,
        ),
        // A listed mechanism the server does not offer is skipped.
        (
            vec![Mechanism::Anonymous, Mechanism::ScramSha1Plus],
            Mechanism::ScramSha1Plus,
        ),
    ] {
        let mut client = client_config();
        client.mechanisms.clone_from(&list);
        let pair = run(client, server_config(), &[]);
        assert_eq!(
            authenticated_with(&pair.client_events),
            Some(expected),
            "{list:?}"
        );
        assert_eq!(auths(&pair), [expected.to_string()], "{list:?}");
        assert!(pair.client.is_negotiated(), "{list:?}");
    }
}

#[test]
fn default_list_is_the_strongest_first_policy() {
    assert_eq!(
        ClientConfig::DEFAULT_MECHANISMS.to_vec(),
        client_config().mechanisms
    );
    let pair = run(client_config(), server_config(), &[]);
    assert_eq!(
        authenticated_with(&pair.client_events),
        Some(Mechanism::ScramSha512Plus)
    );
}

#[test]
fn nothing_allowed_on_offer_is_a_clean_error() {
    let mut client = client_config();
    client.mechanisms = vec![Mechanism::ScramSha512];
    let mut server = server_config();
    server.mechanisms = vec![Mechanism::ScramSha256, Mechanism::Plain];
    let pair = run(client, server, &[]);
    assert!(auths(&pair).is_empty());
    assert!(failed_attempts(&pair).is_empty());
    assert_eq!(closed(&pair.client_events), Some(&CloseReason::NoMechanism));
    // The client closed its stream properly; the server saw a graceful end.
    assert_eq!(closed(&pair.server_events), Some(&CloseReason::Graceful));
    assert!(pair.client_errors.is_empty() && pair.server_errors.is_empty());

    // An empty list allows nothing.
    let mut client = client_config();
    client.mechanisms = Vec::new();
    let pair = run(client, server_config(), &[]);
    assert!(auths(&pair).is_empty());
    assert_eq!(closed(&pair.client_events), Some(&CloseReason::NoMechanism));
}

#[test]
fn plain_is_refused_on_an_insecure_stream_even_when_listed() {
    let plain_only = |allow_on_client: bool| {
        let mut client = client_config();
        client.tls = TlsPolicy::Disabled;
        client.mechanisms = vec![Mechanism::Plain];
        client.allow_plain_without_tls = allow_on_client;
        let mut server = server_config();
        server.tls = TlsPolicy::Disabled;
        server.allow_plain_without_tls = true;
        server.mechanisms = vec![Mechanism::Plain];
        run(client, server, &[])
    };
    let pair = plain_only(false);
    assert!(
        auths(&pair).is_empty(),
        "PLAIN must not cross a plaintext stream"
    );
    assert_eq!(closed(&pair.client_events), Some(&CloseReason::NoMechanism));

    let pair = plain_only(true);
    assert_eq!(auths(&pair), ["PLAIN"]);
    assert!(pair.client.is_negotiated());
}

#[test]
fn plain_is_never_a_fallback_on_an_insecure_stream() {
    // SCRAM fails at the mechanism level on a plaintext stream that also offers PLAIN: the
    // client has nothing acceptable left and stops rather than sending the password.
    let mut client = client_config();
    client.tls = TlsPolicy::Disabled;
    let mut server = server_config();
    server.tls = TlsPolicy::Disabled;
    server.allow_plain_without_tls = true;
    server.mechanisms = vec![Mechanism::ScramSha256, Mechanism::Plain];
    let pair = run(
        client,
        server,
        &[(ScramHash::Sha256, Condition::MechanismTooWeak)],
    );
    assert_eq!(auths(&pair), ["SCRAM-SHA-256"]);
    assert_eq!(
        failed_attempts(&pair),
        [(
            Mechanism::ScramSha256,
            "mechanism-too-weak".to_owned(),
            None
        )]
    );
}

#[test]
fn client_can_close_with_a_stream_error() {
    let mut pair = run(client_config(), server_config(), &[]);
    assert!(pair.client.is_negotiated());
    let now = pair.now;
    pair.client
        .close_with_error(now, StreamError::new(StreamErrorCondition::PolicyViolation))
        .unwrap();
    pair.drive();
    match closed(&pair.server_events) {
        Some(CloseReason::StreamError(e)) => {
            assert_eq!(e.condition, StreamErrorCondition::PolicyViolation);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        closed(&pair.client_events),
        Some(CloseReason::ProtocolError(_))
    ));
    // A closed stream refuses the command.
    assert!(
        pair.client
            .close_with_error(now, StreamError::new(StreamErrorCondition::Conflict))
            .is_err()
    );
}
