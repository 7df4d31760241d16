//! The hostile-peer suite (issue 8): named cases, each a peer doing something a real attacker
//! or broken implementation would do. Every case asserts the exact error the peer receives
//! (a stream error, or a SASL `<failure/>` / stanza error where the protocol answers with
//! one), that the host sees exactly one clean `Closed` event with the matching reason, and
//! that nothing is output after it. Every case runs twice: with the bytes as written, and
//! one byte at a time.
// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;

use base64::Engine as _;
use xmpp_stream::MemoryBackend;
use xmpp_stream::pair::{Direction, Pair, WireConfig};
use xmpp_stream::{
    AnyStream, BareJid, ChannelBinding, ChannelBindingType, ClientConfig, ClientStream,
    CloseReason, Event, Instant, Output, ProtocolError, SeededEntropy, ServerConfig, ServerStream,
    StreamErrorCondition, TlsPolicy, Transport,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

const DOMAIN: &str = "im.example.com";
const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";
const RESTART: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";
/// SASL PLAIN for juliet (`\0juliet\0r0m30myr0m30`).
const AUTH_PLAIN: &str = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>\
    AGp1bGlldAByMG0zMG15cjBtMzA=</auth>";
const BIND: &str = "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
    <resource>balcony</resource></bind></iq>";
const STARTTLS: &str = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn backend() -> MemoryBackend {
    static BACKEND: std::sync::OnceLock<MemoryBackend> = std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| MemoryBackend::new().with_user("juliet", "r0m30myr0m30", 4096))
        .clone()
}

fn binding() -> Vec<ChannelBinding> {
    vec![ChannelBinding::new(
        ChannelBindingType::TlsExporter,
        [7u8; 32],
    )]
}

/// What a scripted peer does next.
#[derive(Clone, Copy)]
enum Act<'a> {
    /// Send these bytes.
    Send(&'a str),
    /// Send these raw (possibly non-UTF-8) bytes.
    Raw(&'a [u8]),
    /// Let time pass (the machine's timers fire as they come due).
    Wait(Duration),
    /// Finish the TLS handshake the machine asked for (only needed with [`MANUAL_TLS`]).
    Tls,
}

thread_local! {
    /// When set, `StartTls` is not answered at once: the script says when (`Act::Tls`).
    static MANUAL_TLS: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Everything one machine did in a scripted run.
#[derive(Debug, Default)]
struct Run {
    /// Every transmitted byte, in order.
    wire: Vec<u8>,
    events: Vec<Event>,
    errors: Vec<ProtocolError>,
    starttls: usize,
}

impl Run {
    fn wire(&self) -> String {
        String::from_utf8_lossy(&self.wire).into_owned()
    }

    fn closed(&self) -> Vec<&CloseReason> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Closed { reason } => Some(reason),
                _ => None,
            })
            .collect()
    }

    /// The stream error we sent, as `(condition, everything after it)`.
    fn sent_stream_error(&self) -> Option<String> {
        let wire = self.wire();
        let at = wire.find("<stream:error")?;
        let rest = &wire[at..];
        let start = rest.find("><")? + 2;
        let name: String = rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        Some(name)
    }
}

fn drain(machine: &mut AnyStream, now: Instant, run: &mut Run) {
    while let Some(output) = machine.poll_output() {
        assert!(
            run.closed().is_empty(),
            "output after Closed: {output:?}\n{}",
            run.wire()
        );
        match output {
            Output::Transmit(bytes) => run.wire.extend_from_slice(&bytes),
            Output::StartTls => {
                run.starttls += 1;
                if !MANUAL_TLS.with(core::cell::Cell::get) {
                    let _ = machine.tls_established(now, binding());
                }
            }
            Output::Event(event) => run.events.push(event),
            other => panic!("unexpected output {other:?}"),
        }
    }
}

/// Play `acts` into a started `machine`; `one_byte` feeds every byte separately.
fn play(machine: &mut AnyStream, acts: &[Act<'_>], one_byte: bool) -> Run {
    let mut run = Run::default();
    let mut now = Instant::ZERO;
    drain(machine, now, &mut run);
    for act in acts {
        let bytes = match act {
            Act::Send(text) => text.as_bytes(),
            Act::Raw(bytes) => bytes,
            Act::Tls => {
                let _ = machine.tls_established(now, binding());
                drain(machine, now, &mut run);
                continue;
            }
            Act::Wait(by) => {
                let until = now + *by;
                while let Some(at) = machine.poll_timeout().filter(|at| *at <= until) {
                    now = now.max(at);
                    machine.handle_timeout(now);
                    drain(machine, now, &mut run);
                }
                now = until;
                machine.handle_timeout(now);
                drain(machine, now, &mut run);
                continue;
            }
        };
        let pieces: Vec<&[u8]> = if one_byte {
            bytes.chunks(1).collect()
        } else {
            vec![bytes]
        };
        for piece in pieces {
            now = now + Duration::from_millis(1);
            if let Err(e) = machine.handle_input(now, piece) {
                run.errors.push(e);
            }
            drain(machine, now, &mut run);
        }
    }
    run
}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new(jid(DOMAIN));
    config.tls = TlsPolicy::Optional;
    config.allow_plain_without_tls = true;
    config
}

fn serve(config: ServerConfig, transport: Transport, acts: &[Act<'_>], one_byte: bool) -> Run {
    let mut server = AnyStream::from(ServerStream::new(config, SeededEntropy::new(2), backend()));
    server.start(Instant::ZERO, transport).unwrap();
    let run = play(&mut server, acts, one_byte);
    assert!(server.is_closed(), "server not closed:\n{}", run.wire());
    // The error is sticky and nothing more comes out.
    let again = server.handle_input(Instant::ZERO, b"<presence/>");
    if let Some(first) = run.errors.first() {
        assert_eq!(again.as_ref().err(), Some(first), "sticky error");
    }
    assert!(server.poll_output().is_none());
    run
}

/// The server must answer with the stream error `condition`, close the stream, and report
/// `Closed` with that protocol error, in both chunkings.
fn server_rejects(
    name: &str,
    config: &ServerConfig,
    transport: &Transport,
    acts: &[Act<'_>],
    condition: StreamErrorCondition,
) {
    for one_byte in [false, true] {
        let run = serve(config.clone(), transport.clone(), acts, one_byte);
        let context = format!("{name} (one byte: {one_byte})\n{}", run.wire());
        assert_eq!(
            run.sent_stream_error().as_deref(),
            Some(condition.to_string().as_str()),
            "{context}"
        );
        assert!(run.wire().ends_with("</stream:stream>"), "{context}");
        let closed = run.closed();
        assert_eq!(closed.len(), 1, "{context}");
        match closed[0] {
            CloseReason::ProtocolError(e) => assert_eq!(e.condition(), condition, "{context}"),
            other => panic!("{context}: closed with {other:?}"),
        }
        assert_eq!(
            run.errors.first().map(ProtocolError::condition),
            Some(condition),
            "{context}"
        );
    }
}

fn plain_server_rejects(name: &str, acts: &[Act<'_>], condition: StreamErrorCondition) {
    server_rejects(name, &server_config(), &Transport::Plain, acts, condition);
}

// ----- malformed and hostile XML -----

#[test]
fn billion_laughs_doctype_is_restricted_xml() {
    plain_server_rejects(
        "billion laughs",
        &[Act::Send(
            "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>\
             <!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>",
        )],
        StreamErrorCondition::RestrictedXml,
    );
}

#[test]
fn doctype_inside_the_stream_is_restricted_xml() {
    plain_server_rejects(
        "doctype in stream",
        &[
            Act::Send(HEADER),
            Act::Send("<!DOCTYPE x [<!ENTITY a 'b'>]>"),
        ],
        StreamErrorCondition::RestrictedXml,
    );
}

#[test]
fn comment_is_restricted_xml() {
    plain_server_rejects(
        "comment",
        &[Act::Send(HEADER), Act::Send("<!-- hello -->")],
        StreamErrorCondition::RestrictedXml,
    );
}

#[test]
fn processing_instruction_is_restricted_xml() {
    plain_server_rejects(
        "processing instruction",
        &[Act::Send(HEADER), Act::Send("<?evil data?>")],
        StreamErrorCondition::RestrictedXml,
    );
}

#[test]
fn external_entity_reference_is_restricted_xml() {
    plain_server_rejects(
        "undeclared entity",
        &[
            Act::Send(HEADER),
            Act::Send("<message><body>&xxe;</body></message>"),
        ],
        StreamErrorCondition::RestrictedXml,
    );
}

#[test]
fn oversized_stanza_is_policy_violation() {
    let mut config = server_config();
    config.limits.max_stanza_bytes = 4096;
    let body = "a".repeat(5000);
    let stanza = format!("<message><body>{body}</body></message>");
    server_rejects(
        "oversized stanza",
        &config,
        &Transport::Plain,
        &[Act::Send(HEADER), Act::Send(&stanza)],
        StreamErrorCondition::PolicyViolation,
    );
}

#[test]
fn deep_nesting_is_policy_violation() {
    let open = "<a>".repeat(200);
    plain_server_rejects(
        "deep nesting",
        &[Act::Send(HEADER), Act::Send(&open)],
        StreamErrorCondition::PolicyViolation,
    );
}

#[test]
fn attribute_flood_is_policy_violation() {
    let attrs = (0..100).fold(String::new(), |acc, i| acc + &format!(" a{i}='x'"));
    let stanza = format!("<message{attrs}/>");
    plain_server_rejects(
        "attribute flood",
        &[Act::Send(HEADER), Act::Send(&stanza)],
        StreamErrorCondition::PolicyViolation,
    );
}

#[test]
fn namespace_declaration_flood_is_policy_violation() {
    let decls = (0..40).fold(String::new(), |acc, i| {
        acc + &format!(" xmlns:p{i}='urn:x:{i}'")
    });
    let stanza = format!("<message{decls}/>");
    plain_server_rejects(
        "namespace flood",
        &[Act::Send(HEADER), Act::Send(&stanza)],
        StreamErrorCondition::PolicyViolation,
    );
}

#[test]
fn invalid_utf8_is_not_well_formed() {
    plain_server_rejects(
        "invalid utf-8",
        &[
            Act::Send(HEADER),
            Act::Raw(b"<message><body>\xff\xfe\xc0\xaf</body></message>"),
        ],
        StreamErrorCondition::NotWellFormed,
    );
}

#[test]
fn mismatched_end_tag_is_not_well_formed() {
    plain_server_rejects(
        "mismatched tags",
        &[Act::Send(HEADER), Act::Send("<message><body></message>")],
        StreamErrorCondition::NotWellFormed,
    );
}

// ----- stream header -----

#[test]
fn wrong_content_namespace_is_invalid_namespace() {
    plain_server_rejects(
        "jabber:server header",
        &[Act::Send(
            "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
             to='im.example.com' version='1.0'>",
        )],
        StreamErrorCondition::InvalidNamespace,
    );
}

#[test]
fn wrong_stream_namespace_is_invalid_namespace() {
    plain_server_rejects(
        "bad stream namespace",
        &[Act::Send(
            "<stream:stream xmlns='jabber:client' xmlns:stream='urn:not:streams' \
             to='im.example.com' version='1.0'>",
        )],
        StreamErrorCondition::InvalidNamespace,
    );
}

#[test]
fn missing_version_is_unsupported_version() {
    plain_server_rejects(
        "no version",
        &[Act::Send(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
             to='im.example.com'>",
        )],
        StreamErrorCondition::UnsupportedVersion,
    );
}

#[test]
fn major_version_two_is_unsupported_version() {
    plain_server_rejects(
        "version 2.0",
        &[Act::Send(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
             to='im.example.com' version='2.0'>",
        )],
        StreamErrorCondition::UnsupportedVersion,
    );
}

#[test]
fn to_a_domain_we_do_not_serve_is_host_unknown() {
    plain_server_rejects(
        "foreign to",
        &[Act::Send(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
             to='evil.example' version='1.0'>",
        )],
        StreamErrorCondition::HostUnknown,
    );
}

// ----- ordering -----

#[test]
fn stanza_before_authentication_is_not_authorized() {
    plain_server_rejects(
        "message before auth",
        &[
            Act::Send(HEADER),
            Act::Send("<message to='romeo@example.net'><body>hi</body></message>"),
        ],
        StreamErrorCondition::NotAuthorized,
    );
}

#[test]
fn bind_before_sasl_is_not_authorized() {
    plain_server_rejects(
        "bind before sasl",
        &[Act::Send(HEADER), Act::Send(BIND)],
        StreamErrorCondition::NotAuthorized,
    );
}

#[test]
fn unsolicited_iq_result_before_negotiation_is_not_authorized() {
    plain_server_rejects(
        "iq result before auth",
        &[
            Act::Send(HEADER),
            Act::Send("<iq type='result' id='nobody-asked'/>"),
        ],
        StreamErrorCondition::NotAuthorized,
    );
}

#[test]
fn second_starttls_is_policy_violation() {
    let mut config = server_config();
    config.tls = TlsPolicy::Required;
    server_rejects(
        "second starttls",
        &config,
        &Transport::Plain,
        &[
            Act::Send(HEADER),
            Act::Send(STARTTLS),
            Act::Send(RESTART),
            Act::Send(STARTTLS),
        ],
        StreamErrorCondition::PolicyViolation,
    );
}

#[test]
fn starttls_on_direct_tls_is_policy_violation() {
    server_rejects(
        "starttls inside direct tls",
        &server_config(),
        &Transport::Tls(binding()),
        &[Act::Send(HEADER), Act::Send(STARTTLS)],
        StreamErrorCondition::PolicyViolation,
    );
}

#[test]
fn starttls_after_sasl_is_policy_violation() {
    plain_server_rejects(
        "starttls after sasl",
        &[
            Act::Send(HEADER),
            Act::Send(AUTH_PLAIN),
            Act::Send(RESTART),
            Act::Send(STARTTLS),
        ],
        StreamErrorCondition::PolicyViolation,
    );
}

#[test]
fn bytes_pipelined_after_starttls_are_policy_violation() {
    // Whole: the injected bytes sit unparsed behind <starttls/>; one byte at a time: they
    // arrive between the TLS switch and the handshake. Both are the injection attack.
    let injected = format!("{STARTTLS}{AUTH_PLAIN}");
    MANUAL_TLS.with(|m| m.set(true));
    plain_server_rejects(
        "pipelined after starttls",
        &[Act::Send(HEADER), Act::Send(&injected), Act::Tls],
        StreamErrorCondition::PolicyViolation,
    );
    MANUAL_TLS.with(|m| m.set(false));
}

#[test]
fn spoofed_from_is_invalid_from() {
    plain_server_rejects(
        "spoofed from",
        &[
            Act::Send(HEADER),
            Act::Send(AUTH_PLAIN),
            Act::Send(RESTART),
            Act::Send(BIND),
            Act::Send("<message from='romeo@example.net/orchard' to='nurse@im.example.com'/>"),
        ],
        StreamErrorCondition::InvalidFrom,
    );
}

#[test]
fn spoofed_from_of_another_resource_is_invalid_from() {
    plain_server_rejects(
        "spoofed resource",
        &[
            Act::Send(HEADER),
            Act::Send(AUTH_PLAIN),
            Act::Send(RESTART),
            Act::Send(BIND),
            Act::Send("<message from='juliet@im.example.com/chamber' to='nurse@im.example.com'/>"),
        ],
        StreamErrorCondition::InvalidFrom,
    );
}

#[test]
fn too_many_failed_sasl_attempts_is_policy_violation() {
    let bad = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>\
        AGp1bGlldAB3cm9uZw==</auth>";
    let run = serve(
        server_config(),
        Transport::Plain,
        &[
            Act::Send(HEADER),
            Act::Send(bad),
            Act::Send(bad),
            Act::Send(bad),
        ],
        false,
    );
    assert_eq!(
        run.wire().matches("<not-authorized/>").count(),
        3,
        "{}",
        run.wire()
    );
    assert_eq!(run.sent_stream_error().as_deref(), Some("policy-violation"));
    assert_eq!(run.closed().len(), 1);
}

// ----- time -----

#[test]
fn slowloris_hits_the_negotiation_deadline() {
    // One byte per 20 s: every byte is "activity", but the deadline counts from start.
    let header = HEADER.as_bytes();
    let mut acts = Vec::new();
    for byte in header.chunks(1) {
        acts.push(Act::Raw(byte));
        acts.push(Act::Wait(Duration::from_secs(20)));
    }
    for one_byte in [false, true] {
        let run = serve(server_config(), Transport::Plain, &acts, one_byte);
        assert_eq!(
            run.sent_stream_error().as_deref(),
            Some("connection-timeout"),
            "{}",
            run.wire()
        );
        assert_eq!(
            run.closed(),
            vec![&CloseReason::Timeout(xmpp_stream::Timer::Negotiation)]
        );
        assert!(run.wire().ends_with("</stream:stream>"));
    }
}

// ----- SASL through the pair (a client whose messages are tampered with) -----

fn pair(server: ServerConfig) -> Pair {
    let client = ClientStream::new(
        ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30"),
        SeededEntropy::new(1),
    );
    Pair::new(
        client,
        ServerStream::new(server, SeededEntropy::new(2), backend()),
    )
}

/// Rewrite the decoded SASL payload of the first element named `element` going `direction`.
fn rewrite_sasl(
    pair: &mut Pair,
    direction: Direction,
    element: &'static str,
    edit: fn(&str) -> String,
) {
    let open = format!("<{element} xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
    let mut done = false;
    pair.set_tamper(move |dir, bytes| {
        if done || dir != direction {
            return;
        }
        let text = String::from_utf8_lossy(bytes).into_owned();
        let Some(start) = text.find(&open) else {
            return;
        };
        let body_start = start + open.len();
        let Some(len) = text[body_start..].find('<') else {
            return;
        };
        let payload = B64.decode(&text[body_start..body_start + len]).unwrap();
        let edited = edit(&String::from_utf8(payload).unwrap());
        let encoded = if edited.starts_with('!') {
            edited
        } else {
            B64.encode(edited)
        };
        let new = format!(
            "{}{}{}",
            &text[..body_start],
            encoded,
            &text[body_start + len..]
        );
        *bytes = new.into_bytes();
        done = true;
    });
}

fn run_pair(
    server: ServerConfig,
    direction: Direction,
    element: &'static str,
    edit: fn(&str) -> String,
    one_byte: bool,
) -> Pair {
    let mut p = pair(server);
    if one_byte {
        for d in [Direction::ToServer, Direction::ToClient] {
            p.set_wire(
                d,
                WireConfig {
                    chunk: 1,
                    latency: Duration::from_millis(1),
                },
            );
        }
    }
    rewrite_sasl(&mut p, direction, element, edit);
    p.start();
    p.drive();
    p
}

fn closed_reason(events: &[Event]) -> Vec<&CloseReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Closed { reason } => Some(reason),
            _ => None,
        })
        .collect()
}

fn delivered_to(pair: &Pair, direction: Direction) -> String {
    pair.log
        .iter()
        .filter_map(|e| match e {
            xmpp_stream::pair::LogEntry::Delivered {
                direction: d,
                bytes,
                ..
            } if *d == direction => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

/// The server answers the tampered client message with SASL failure `condition`; the client
/// gives up with `AuthenticationFailed`; both hosts see one clean `Closed`.
fn client_tamper_fails_auth(
    name: &str,
    element: &'static str,
    edit: fn(&str) -> String,
    condition: &str,
) {
    for one_byte in [false, true] {
        let p = run_pair(
            server_config(),
            Direction::ToServer,
            element,
            edit,
            one_byte,
        );
        let context = format!("{name} (one byte: {one_byte})\n{}", p.log_text());
        let to_client = delivered_to(&p, Direction::ToClient);
        assert!(
            to_client.contains(&format!(
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><{condition}/>"
            )),
            "{context}"
        );
        assert_eq!(
            closed_reason(&p.client_events),
            vec![&CloseReason::AuthenticationFailed {
                condition: condition.parse().unwrap(),
                text: None
            }],
            "{context}"
        );
        assert_eq!(closed_reason(&p.server_events).len(), 1, "{context}");
        assert!(
            p.server.jid().is_none() && p.server.account().is_none(),
            "{context}"
        );
        assert!(p.client.is_closed() && p.server.is_closed(), "{context}");
    }
}

#[test]
fn scram_tampered_client_proof_is_not_authorized() {
    client_tamper_fails_auth(
        "tampered proof",
        "response",
        |msg| {
            let at = msg.rfind("p=").unwrap() + 2;
            let mut proof = B64.decode(&msg[at..]).unwrap();
            proof[0] ^= 1;
            format!("{}{}", &msg[..at], B64.encode(proof))
        },
        "not-authorized",
    );
}

#[test]
fn scram_client_final_with_a_bad_nonce_is_not_authorized() {
    client_tamper_fails_auth(
        "bad client nonce",
        "response",
        |msg| msg.replacen(",r=", ",r=X", 1),
        "malformed-request",
    );
}

#[test]
fn sasl_garbage_base64_is_incorrect_encoding() {
    client_tamper_fails_auth(
        "garbage base64",
        "response",
        |_| "!!!not*base64!!!".to_owned(),
        "incorrect-encoding",
    );
}

#[test]
fn sasl_mechanism_not_offered_is_invalid_mechanism() {
    // PLAIN is not offered on a plaintext stream by default.
    let mut config = ServerConfig::new(jid(DOMAIN));
    config.tls = TlsPolicy::Optional;
    let auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>\
        AGp1bGlldAByMG0zMG15cjBtMzA=</auth>";
    let unknown = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-EVIL'>=</auth>";
    for one_byte in [false, true] {
        for (attempt, condition) in [
            (auth, "encryption-required"),
            (unknown, "invalid-mechanism"),
        ] {
            let mut config = config.clone();
            config.max_auth_attempts = 1;
            let run = serve(
                config,
                Transport::Plain,
                &[Act::Send(HEADER), Act::Send(attempt)],
                one_byte,
            );
            let wire = run.wire();
            assert!(wire.contains(&format!("<{condition}/>")), "{wire}");
            assert!(!wire.contains("<success"), "{wire}");
            assert_eq!(run.sent_stream_error().as_deref(), Some("policy-violation"));
            assert_eq!(run.closed().len(), 1);
        }
    }
}

#[test]
fn sasl_known_mechanism_not_offered_is_invalid_mechanism() {
    let mut config = server_config();
    config.mechanisms = vec![xmpp_stream::Mechanism::ScramSha256];
    config.max_auth_attempts = 1;
    let auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>\
        biwsbj1qdWxpZXQscj1meXprbw==</auth>";
    for one_byte in [false, true] {
        let run = serve(
            config.clone(),
            Transport::Tls(binding()),
            &[Act::Send(HEADER), Act::Send(auth)],
            one_byte,
        );
        let wire = run.wire();
        assert!(wire.contains("<invalid-mechanism/>"), "{wire}");
        assert!(!wire.contains("<challenge"), "{wire}");
        assert_eq!(run.sent_stream_error().as_deref(), Some("policy-violation"));
        assert_eq!(run.closed().len(), 1);
    }
}

// ----- a peer that never reads -----

/// A negotiated server stream whose host stops polling (its socket writes block because the
/// client never reads) while stanzas for the client keep arriving from the rest of the server.
#[test]
fn peer_that_never_reads_hits_the_output_bound() {
    for one_byte in [false, true] {
        let mut config = server_config();
        config.max_output_bytes = 16 * 1024;
        let mut server =
            AnyStream::from(ServerStream::new(config, SeededEntropy::new(2), backend()));
        server.start(Instant::ZERO, Transport::Plain).unwrap();
        let run = play(
            &mut server,
            &[
                Act::Send(HEADER),
                Act::Send(AUTH_PLAIN),
                Act::Send(RESTART),
                Act::Send(BIND),
            ],
            one_byte,
        );
        assert!(server.is_negotiated(), "{}", run.wire());
        let body = "x".repeat(1000);
        let stanza: minidom::Element = format!(
            "<message xmlns='jabber:client' to='juliet@im.example.com/balcony'><body>{body}</body></message>"
        )
        .parse()
        .unwrap();
        let now = Instant::ZERO + Duration::from_secs(1);
        let mut accepted = 0usize;
        let refused = loop {
            match server.send_stanza(now, &stanza) {
                Ok(()) => accepted += 1,
                Err(e) => break e,
            }
            assert!(accepted < 1000, "no bound on queued output");
        };
        assert_eq!(refused, xmpp_stream::UsageError::Closed);
        // About 16 KiB of 1 KiB stanzas were accepted before the bound.
        assert!((10..=16).contains(&accepted), "{accepted}");
        // The host drains at last: the undeliverable backlog was dropped; what is left is
        // the stream error and the close, then `Closed`.
        let mut wire = Vec::new();
        let mut events = Vec::new();
        while let Some(output) = server.poll_output() {
            assert!(events.is_empty(), "output after Closed: {output:?}");
            match output {
                Output::Transmit(bytes) => wire.extend_from_slice(&bytes),
                Output::Event(Event::Closed { reason }) => events.push(reason),
                other => panic!("unexpected {other:?}"),
            }
        }
        let wire = String::from_utf8(wire).unwrap();
        assert!(wire.len() < 1024, "{wire}");
        assert_eq!(
            wire,
            "<stream:error><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             </stream:error></stream:stream>"
        );
        match events.as_slice() {
            [CloseReason::ProtocolError(e)] => {
                assert_eq!(e.condition(), StreamErrorCondition::ResourceConstraint);
            }
            other => panic!("{other:?}"),
        }
        assert!(server.is_closed());
        assert_eq!(
            server
                .handle_input(now, b"<presence/>")
                .err()
                .map(|e| e.condition()),
            Some(StreamErrorCondition::ResourceConstraint)
        );
        assert!(server.poll_timeout().is_none(), "no timers after Closed");
    }
}

/// The same on the client: its host keeps sending while the server never reads.
#[test]
fn client_whose_server_never_reads_hits_the_output_bound() {
    let mut config = ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30");
    config.max_output_bytes = 8 * 1024;
    let mut p = Pair::new(
        ClientStream::new(config, SeededEntropy::new(1)),
        ServerStream::new(server_config(), SeededEntropy::new(2), backend()),
    );
    p.start();
    p.drive();
    assert!(p.client.is_negotiated());
    let stanza: minidom::Element = format!(
        "<message xmlns='jabber:client' to='romeo@example.net'><body>{}</body></message>",
        "y".repeat(500)
    )
    .parse()
    .unwrap();
    let mut accepted = 0usize;
    while p.client.send_stanza(p.now, &stanza).is_ok() {
        accepted += 1;
        assert!(accepted < 1000, "no bound on queued output");
    }
    assert!((10..=16).contains(&accepted), "{accepted}");
    p.drive();
    match closed_reason(&p.client_events).as_slice() {
        [CloseReason::ProtocolError(e)] => {
            assert_eq!(e.condition(), StreamErrorCondition::ResourceConstraint);
        }
        other => panic!("{other:?}"),
    }
    // The server got the stream error and closed cleanly too.
    assert_eq!(closed_reason(&p.server_events).len(), 1);
}

// ----- a hostile server, seen by the client -----

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' from='im.example.com' id='s1' version='1.0'>";
const TLS_FEATURES: &str = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
    <required/></starttls></stream:features>";

fn client_rejects(name: &str, acts: &[Act<'_>], condition: StreamErrorCondition) {
    for one_byte in [false, true] {
        let mut client = AnyStream::from(ClientStream::new(
            ClientConfig::new(jid("juliet@im.example.com"), "r0m30myr0m30"),
            SeededEntropy::new(1),
        ));
        client.start(Instant::ZERO, Transport::Plain).unwrap();
        let run = play(&mut client, acts, one_byte);
        let context = format!("{name} (one byte: {one_byte})\n{}", run.wire());
        assert!(client.is_closed(), "{context}");
        assert_eq!(
            run.sent_stream_error().as_deref(),
            Some(condition.to_string().as_str()),
            "{context}"
        );
        assert!(run.wire().ends_with("</stream:stream>"), "{context}");
        match run.closed().as_slice() {
            [CloseReason::ProtocolError(e)] => assert_eq!(e.condition(), condition, "{context}"),
            other => panic!("{context}: closed with {other:?}"),
        }
        assert!(
            !client
                .flags()
                .contains(xmpp_stream::SessionFlags::AUTHENTICATED)
        );
        assert!(client.poll_output().is_none());
    }
}

#[test]
fn success_without_auth_is_refused_by_the_client() {
    client_rejects(
        "success instead of features",
        &[
            Act::Send(SERVER_HEADER),
            Act::Send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
        ],
        StreamErrorCondition::UnsupportedStanzaType,
    );
    client_rejects(
        "success instead of proceed",
        &[
            Act::Send(SERVER_HEADER),
            Act::Send(TLS_FEATURES),
            Act::Send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
        ],
        StreamErrorCondition::UnsupportedStanzaType,
    );
}

#[test]
fn bytes_pipelined_after_proceed_are_policy_violation() {
    let injected = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><stream:features>\
        <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>\
        </mechanisms></stream:features>";
    MANUAL_TLS.with(|m| m.set(true));
    client_rejects(
        "pipelined after proceed",
        &[
            Act::Send(SERVER_HEADER),
            Act::Send(TLS_FEATURES),
            Act::Send(injected),
            Act::Tls,
        ],
        StreamErrorCondition::PolicyViolation,
    );
    MANUAL_TLS.with(|m| m.set(false));
}

#[test]
fn server_header_with_the_wrong_namespace_is_invalid_namespace() {
    client_rejects(
        "server jabber:server",
        &[Act::Send(
            "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
             from='im.example.com' id='s1' version='1.0'>",
        )],
        StreamErrorCondition::InvalidNamespace,
    );
}

#[test]
fn server_header_without_version_is_unsupported_version() {
    client_rejects(
        "server no version",
        &[Act::Send(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
             from='im.example.com' id='s1'>",
        )],
        StreamErrorCondition::UnsupportedVersion,
    );
}

#[test]
fn server_header_from_another_domain_is_invalid_from() {
    client_rejects(
        "server from elsewhere",
        &[
            Act::Send(
                "<stream:stream xmlns='jabber:client' \
                 xmlns:stream='http://etherx.jabber.org/streams' from='evil.example' id='s1' \
                 version='1.0'>",
            ),
            Act::Send(TLS_FEATURES),
        ],
        StreamErrorCondition::InvalidFrom,
    );
}

#[test]
fn client_rejects_restricted_xml_from_the_server() {
    client_rejects(
        "server comment",
        &[Act::Send(SERVER_HEADER), Act::Send("<!-- hi -->")],
        StreamErrorCondition::RestrictedXml,
    );
}

/// A server whose SCRAM messages are tampered with: the client gives up on it, sending
/// `sent` to the server and reporting `expected`; both hosts see one clean `Closed`.
fn server_tamper(
    name: &str,
    element: &'static str,
    edit: fn(&str) -> String,
    sent: &str,
    expected: &dyn Fn(&CloseReason) -> bool,
) {
    for one_byte in [false, true] {
        let p = run_pair(
            server_config(),
            Direction::ToClient,
            element,
            edit,
            one_byte,
        );
        let context = format!("{name} (one byte: {one_byte})\n{}", p.log_text());
        assert!(p.client.jid().is_none(), "{context}");
        assert!(
            !p.client
                .flags()
                .contains(xmpp_stream::SessionFlags::AUTHENTICATED),
            "{context}"
        );
        assert!(
            delivered_to(&p, Direction::ToServer).contains(sent),
            "{context}"
        );
        match closed_reason(&p.client_events).as_slice() {
            [reason] => assert!(expected(reason), "{context}\n{reason:?}"),
            other => panic!("{context}\n{other:?}"),
        }
        assert_eq!(closed_reason(&p.server_events).len(), 1, "{context}");
        assert!(p.client.is_closed() && p.server.is_closed(), "{context}");
    }
}

const ABORT: &str = "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";

fn aborted(reason: &CloseReason) -> bool {
    *reason
        == CloseReason::AuthenticationFailed {
            condition: xmpp_sasl::Condition::Aborted,
            text: None,
        }
}

#[test]
fn scram_iteration_count_1_is_refused() {
    server_tamper(
        "i=1",
        "challenge",
        |m| m.replacen(",i=4096", ",i=1", 1),
        ABORT,
        &aborted,
    );
}

#[test]
fn scram_iteration_count_2_pow_31_is_refused() {
    server_tamper(
        "i=2^31",
        "challenge",
        |m| m.replacen(",i=4096", ",i=2147483648", 1),
        ABORT,
        &aborted,
    );
}

#[test]
fn scram_server_nonce_not_extending_ours_is_refused() {
    server_tamper(
        "bad server nonce",
        "challenge",
        |m| m.replacen("r=", "r=evil", 1),
        ABORT,
        &aborted,
    );
}

#[test]
fn scram_garbage_base64_challenge_is_bad_format() {
    server_tamper(
        "garbage challenge",
        "challenge",
        |_| "!!!%%%".to_owned(),
        "<stream:error><bad-format xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        &|r| matches!(r, CloseReason::ProtocolError(e) if e.condition() == StreamErrorCondition::BadFormat),
    );
}

#[test]
fn scram_tampered_server_signature_is_server_not_verified() {
    server_tamper(
        "tampered signature",
        "success",
        |m| {
            let at = m.find("v=").unwrap() + 2;
            let mut sig = B64.decode(&m[at..]).unwrap();
            sig[0] ^= 1;
            format!("{}{}", &m[..at], B64.encode(sig))
        },
        "</stream:stream>",
        &|r| *r == CloseReason::ServerNotVerified,
    );
}

// ----- stanzas nobody asked for -----

#[test]
fn unsolicited_iq_result_after_negotiation_gets_no_reply() {
    // RFC 6120 §8.2.3: never answer a result or an error; the host sees it and decides.
    for one_byte in [false, true] {
        let mut server = AnyStream::from(ServerStream::new(
            server_config(),
            SeededEntropy::new(2),
            backend(),
        ));
        server.start(Instant::ZERO, Transport::Plain).unwrap();
        let run = play(
            &mut server,
            &[
                Act::Send(HEADER),
                Act::Send(AUTH_PLAIN),
                Act::Send(RESTART),
                Act::Send(BIND),
            ],
            one_byte,
        );
        let before = run.wire.len();
        let run2 = play(
            &mut server,
            &[Act::Send("<iq type='result' id='nobody-asked'/>")],
            one_byte,
        );
        assert!(before > 0);
        assert!(run2.wire.is_empty(), "{}", run2.wire());
        assert!(run2.closed().is_empty() && !server.is_closed());
        match run2.events.as_slice() {
            [Event::Stanza(iq)] => {
                assert_eq!(iq.attr("type"), Some("result"));
                assert_eq!(iq.attr("from"), Some("juliet@im.example.com/balcony"));
            }
            other => panic!("{other:?}"),
        }
    }
}

// ----- the conformance cases (`xmpp_stream::conformance`), shared with xmpp-conformance -----

/// Every stream-layer case of the conformance table holds for our `ServerStream`: the same
/// bytes and the same judge the `xmpp-conformance` tool runs against real servers.
#[test]
fn every_stream_conformance_case_holds_in_memory() {
    use xmpp_stream::conformance::{Act as CaseAct, CASES, Layer, Observer, Phase, Vars, Verdict};
    let vars = Vars {
        domain: DOMAIN.to_owned(),
        a: "juliet@im.example.com".to_owned(),
        a_full: "juliet@im.example.com/balcony".to_owned(),
        plain: AUTH_PLAIN[AUTH_PLAIN.find('>').unwrap() + 1..AUTH_PLAIN.find("</").unwrap()]
            .to_owned(),
        plain_wrong: B64.encode(b"\0juliet\0wrong"),
        scram_first: B64.encode(b"n,,n=juliet,r=conformance0123456789"),
        ..Vars::default()
    };
    let mut checked = 0;
    // The component, server-to-server and WebSocket cases need other server streams or
    // framing: the tool's own tests run them against the example server.
    let c2s = |c: &&xmpp_stream::conformance::Case| {
        !matches!(
            c.phase,
            Phase::ComponentConnected
                | Phase::Component
                | Phase::S2sConnected
                | Phase::S2sAuthenticated
                | Phase::WsConnected
                | Phase::WsOpened
        )
    };
    for case in CASES
        .iter()
        .filter(|c| c.layer == Layer::Stream)
        .filter(c2s)
    {
        let setup: &[Act<'_>] = match case.phase {
            Phase::Connected => &[],
            Phase::Opened => &[Act::Send(HEADER)],
            Phase::Secured => &[Act::Send(HEADER), Act::Send(STARTTLS), Act::Send(RESTART)],
            Phase::Authenticated => &[Act::Send(HEADER), Act::Send(AUTH_PLAIN), Act::Send(RESTART)],
            Phase::Managed => &[
                Act::Send(HEADER),
                Act::Send(AUTH_PLAIN),
                Act::Send(RESTART),
                Act::Send(BIND),
                Act::Send("<enable xmlns='urn:xmpp:sm:3'/>"),
            ],
            _ => &[
                Act::Send(HEADER),
                Act::Send(AUTH_PLAIN),
                Act::Send(RESTART),
                Act::Send(BIND),
            ],
        };
        let texts: Vec<String> = case
            .acts
            .iter()
            .map(|act| match act {
                CaseAct::Send(_, text) => vars.fill(text),
                CaseAct::Raw(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        let acts: Vec<Act<'_>> = case
            .acts
            .iter()
            .zip(&texts)
            .map(|(act, text)| match act {
                CaseAct::Raw(bytes) => Act::Raw(bytes),
                _ => Act::Send(text),
            })
            .collect();
        // Stream management offered, as the XEP-0198 cases need (the others do not see it).
        let mut config = server_config();
        config.sm = xmpp_stream::SmConfig::on();
        let mut server =
            AnyStream::from(ServerStream::new(config, SeededEntropy::new(2), backend()));
        server.start(Instant::ZERO, Transport::Plain).unwrap();
        let before = play(&mut server, setup, false);
        let run = play(&mut server, &acts, false);
        let mut observer = if case.phase == Phase::Connected {
            Observer::before_header()
        } else {
            Observer::inside_stream()
        };
        observer.feed(&run.wire);
        if server.is_closed() {
            observer.eof();
        }
        let verdict = case.expect.judge(observer.seen(), &vars, true);
        assert_eq!(
            verdict,
            Verdict::Pass,
            "case {} {}\nsetup: {}\ncase: {}",
            case.id,
            case.name,
            before.wire(),
            run.wire()
        );
        checked += 1;
    }
    assert!(checked >= 25, "{checked}");
}
