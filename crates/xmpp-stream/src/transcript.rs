//! Transcripts: a recorded conversation (bytes each way, TLS switches, entropy, host commands
//! and expected events) and a replayer that drives one [`ClientStream`] or [`ServerStream`]
//! through it, checking every output byte-exact or XML-equivalent.
//!
//! The format is documented in `testdata/README.md` at the repository root. In short:
//!
//! ```text
//! !both compare xml                  setup directives: !client / !server / !both <key> <value>
//! !server entropy-b64 t7AMCin9zjMNwQKDnplntZPIDEI=
//! 0 C: <stream:stream to='im.example.com' ...>     bytes client -> server at 0 ms
//!    continuation lines are indented
//! S: <stream:features>...                          the time is optional
//! [TLS]                                            both sides switch to TLS here
//! H client: send <message to='romeo@example.net'><body>hi</body></message>
//! E client: Negotiated juliet@im.example.com/balcony
//! ```
//!
//! Replaying as the client, `S:` lines are input and `C:` lines are expected output; as the
//! server, the reverse. `H` lines for the other role are ignored (their effect is in the
//! bytes); `E` lines for the replayed role must match the emitted events, in order.

use core::fmt;
use core::time::Duration;

use base64::Engine as _;
use minidom::{Element, Node};
use xmpp_jid::{BareJid, FullJid};
use xmpp_sasl::{ChannelBinding, ChannelBindingType, Mechanism};
use xmpp_xml::{Event as XmlEvent, StreamHeader, StreamParser};

use crate::any::AnyStream;
use crate::backend::MemoryBackend;
use crate::client::ClientStream;
use crate::component::{
    ComponentConfig, ComponentServerConfig, ComponentServerStream, ComponentStream,
    MemoryComponents,
};
use crate::config::S2sConfig;
use crate::config::TlsPolicy;
use crate::config::{ClientConfig, ServerConfig};
use crate::dialback::DialbackSecret;
use crate::entropy::{Entropy, ScriptedEntropy, SeededEntropy, nonce_script};
use crate::identity::PresentedId;
use crate::kind::StreamKind;
use crate::output::{CloseReason, Event, Output, Transport};
use crate::s2s::{DialbackOutcome, S2sInitiatingStream, S2sReceivingStream};
use crate::server::ServerStream;
use crate::sm::{DetachedSession, PingConfig, SmConfig, SmState};
use crate::time::Instant;

/// Which machine a replay drives: the initiating end (`C:` lines are its output) or the
/// receiving end (`S:`). On a component transcript these are the component and its server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Drive a [`ClientStream`] (or a [`ComponentStream`]): `S:` lines
    /// are its input.
    Client,
    /// Drive a [`ServerStream`] (or a [`ComponentServerStream`]):
    /// `C:` lines are its input.
    Server,
}

/// Why a transcript could not be parsed or did not replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayError {
    /// 1-based line of the transcript the problem is attached to (0: the whole transcript).
    pub line: usize,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transcript line {}: {}", self.line, self.message)
    }
}

impl core::error::Error for ReplayError {}

fn err(line: usize, message: impl Into<String>) -> ReplayError {
    ReplayError {
        line,
        message: message.into(),
    }
}

/// One record of the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Record {
    Bytes { from: Role, data: Vec<u8> },
    Tls,
    Event { of: Role, summary: String },
    Host { of: Role, command: String },
}

#[derive(Clone, Debug)]
struct Line {
    number: usize,
    at: Option<Instant>,
    record: Record,
}

/// How outputs are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    Exact,
    Xml,
}

/// Setup for one role.
#[derive(Clone, Debug, Default)]
struct Setup {
    settings: Vec<(usize, String, String)>,
    entropy: Vec<u8>,
    seed: Option<u64>,
    bindings: Vec<ChannelBinding>,
    direct_tls: bool,
}

/// A parsed transcript.
#[derive(Clone, Debug)]
pub struct Transcript {
    compare: Compare,
    /// The stream kind: `jabber:client` unless a `component` / `component-server` word (or
    /// `!both kind component`) says otherwise.
    kind: StreamKind,
    client: Setup,
    server: Setup,
    lines: Vec<Line>,
}

fn unescape(text: &str, line: usize) -> Result<Vec<u8>, ReplayError> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            match bytes.get(i + 1) {
                Some(b'\\') => {
                    out.push(b'\\');
                    i += 2;
                }
                Some(b'x') => {
                    let hex = text
                        .get(i + 2..i + 4)
                        .ok_or_else(|| err(line, "truncated \\x escape"))?;
                    out.push(u8::from_str_radix(hex, 16).map_err(|_| err(line, "bad \\x escape"))?);
                    i += 4;
                }
                _ => return Err(err(line, "unknown escape (use \\\\ or \\xHH)")),
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex(text: &str, line: usize) -> Result<Vec<u8>, ReplayError> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if text.len() % 2 != 0 {
        return Err(err(line, "odd number of hex digits"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| err(line, "bad hex")))
        .collect()
}

/// The role a word names, and the stream kind when the word names one (`client` and
/// `server` leave it to the rest of the transcript).
fn role_of(word: &str) -> Option<(Role, Option<StreamKind>)> {
    match word {
        "client" => Some((Role::Client, None)),
        "server" => Some((Role::Server, None)),
        "component" => Some((Role::Client, Some(StreamKind::Component))),
        "component-server" => Some((Role::Server, Some(StreamKind::Component))),
        "s2s-initiating" => Some((Role::Client, Some(StreamKind::Server))),
        "s2s-receiving" => Some((Role::Server, Some(StreamKind::Server))),
        _ => None,
    }
}

/// The words a transcript may use for its two ends.
const ROLE_WORDS: &str =
    "client, server, component, component-server, s2s-initiating or s2s-receiving";

impl Transcript {
    /// Parse a transcript.
    pub fn parse(text: &str) -> Result<Transcript, ReplayError> {
        let mut transcript = Transcript {
            compare: Compare::Exact,
            kind: StreamKind::Client,
            client: Setup::default(),
            server: Setup::default(),
            lines: Vec::new(),
        };
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            if raw.starts_with(char::is_whitespace) {
                // A continuation of the previous bytes record.
                let Some(Line {
                    record: Record::Bytes { data, .. },
                    ..
                }) = transcript.lines.last_mut()
                else {
                    return Err(err(
                        number,
                        "continuation line without a C:/S: line before it",
                    ));
                };
                data.push(b'\n');
                data.extend(unescape(raw.trim_start(), number)?);
                continue;
            }
            if let Some(rest) = raw.strip_prefix('!') {
                transcript.directive(number, rest)?;
                continue;
            }
            // Optional time in milliseconds.
            let (at, body) = match raw.split_once(' ') {
                Some((first, rest)) if first.bytes().all(|b| b.is_ascii_digit()) => {
                    let ms = first.parse().map_err(|_| err(number, "bad time"))?;
                    (Some(Instant::from_millis(ms)), rest)
                }
                _ => (None, raw),
            };
            let record = if let Some(payload) = body.strip_prefix("C:") {
                Record::Bytes {
                    from: Role::Client,
                    data: unescape(payload.strip_prefix(' ').unwrap_or(payload), number)?,
                }
            } else if let Some(payload) = body.strip_prefix("S:") {
                Record::Bytes {
                    from: Role::Server,
                    data: unescape(payload.strip_prefix(' ').unwrap_or(payload), number)?,
                }
            } else if body.trim() == "[TLS]" {
                Record::Tls
            } else if let Some(rest) = body.strip_prefix("E ").or_else(|| body.strip_prefix("H ")) {
                let (who, payload) = rest
                    .split_once(": ")
                    .ok_or_else(|| err(number, "expected `E client: ...`"))?;
                let (of, kind) =
                    role_of(who).ok_or_else(|| err(number, format!("expected {ROLE_WORDS}")))?;
                if let Some(kind) = kind {
                    transcript.kind = kind;
                }
                if body.starts_with('E') {
                    Record::Event {
                        of,
                        summary: payload.trim().to_owned(),
                    }
                } else {
                    Record::Host {
                        of,
                        command: payload.trim().to_owned(),
                    }
                }
            } else {
                return Err(err(number, "unrecognized line"));
            };
            transcript.lines.push(Line { number, at, record });
        }
        Ok(transcript)
    }

    fn directive(&mut self, number: usize, rest: &str) -> Result<(), ReplayError> {
        let mut words = rest.splitn(3, ' ');
        let who = words.next().unwrap_or_default();
        let key = words.next().unwrap_or_default().to_owned();
        let value = words.next().unwrap_or_default().trim().to_owned();
        let role = role_of(who);
        if let Some((_, Some(kind))) = role {
            self.kind = kind;
        }
        let setups: Vec<&mut Setup> = match (who, role) {
            (_, Some((Role::Client, _))) => vec![&mut self.client],
            (_, Some((Role::Server, _))) => vec![&mut self.server],
            ("both", None) => {
                if key == "kind" {
                    self.kind = match value.as_str() {
                        "c2s" => StreamKind::Client,
                        "component" => StreamKind::Component,
                        "s2s" => StreamKind::Server,
                        _ => return Err(err(number, "kind is c2s, component or s2s")),
                    };
                    return Ok(());
                }
                if key == "compare" {
                    self.compare = match value.as_str() {
                        "exact" => Compare::Exact,
                        "xml" => Compare::Xml,
                        _ => return Err(err(number, "compare is exact or xml")),
                    };
                    return Ok(());
                }
                vec![&mut self.client, &mut self.server]
            }
            _ => {
                return Err(err(
                    number,
                    format!("directive target is {ROLE_WORDS} or both"),
                ));
            }
        };
        for setup in setups {
            match key.as_str() {
                "entropy" => setup.entropy.extend(hex(&value, number)?),
                "entropy-b64" => setup.entropy.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(&value)
                        .map_err(|_| err(number, "bad base64"))?,
                ),
                "nonce" => setup.entropy.extend(
                    nonce_script(&value)
                        .ok_or_else(|| err(number, "nonce outside the alphabet"))?,
                ),
                "seed" => setup.seed = Some(value.parse().map_err(|_| err(number, "bad seed"))?),
                "binding" => {
                    let (kind, data) = value
                        .split_once(' ')
                        .ok_or_else(|| err(number, "binding <type> <hex>"))?;
                    let kind: ChannelBindingType = kind
                        .parse()
                        .map_err(|_| err(number, "unknown binding type"))?;
                    setup
                        .bindings
                        .push(ChannelBinding::new(kind, hex(data, number)?));
                }
                "transport" => setup.direct_tls = value == "tls",
                _ => setup.settings.push((number, key.clone(), value.clone())),
            }
        }
        Ok(())
    }

    /// Drive `role`'s machine through the transcript and check every output.
    pub fn replay(&self, role: Role) -> Result<(), ReplayError> {
        let setup = match role {
            Role::Client => &self.client,
            Role::Server => &self.server,
        };
        let entropy: Box<dyn Entropy + Send> = match setup.seed {
            Some(seed) => Box::new(SeededEntropy::new(seed)),
            None => Box::new(ScriptedEntropy::new(setup.entropy.clone())),
        };
        let mut machine = match self.kind {
            StreamKind::Component => build_component(role, setup, entropy)?,
            StreamKind::Server => build_s2s(role, setup, entropy)?,
            _ => build(role, setup, entropy)?,
        };
        let transport = if setup.direct_tls {
            Transport::Tls(setup.bindings.clone())
        } else {
            Transport::Plain
        };
        let mut now = Instant::ZERO;
        machine
            .start(now, transport)
            .map_err(|e| err(0, format!("start: {e}")))?;

        // Expected and actual items, each tagged with how many inputs preceded it.
        let mut expected: Vec<(usize, usize, Item)> = Vec::new();
        let mut actual: Vec<(usize, Item)> = Vec::new();
        let mut inputs = 0usize;
        drain(&mut machine, inputs, &setup.bindings, now, &mut actual);
        for line in &self.lines {
            if let Some(at) = line.at {
                if at > now {
                    // Time travels with every input: fire what became due on the way.
                    now = at;
                    machine.handle_timeout(now);
                    drain(&mut machine, inputs, &setup.bindings, now, &mut actual);
                }
            }
            match &line.record {
                Record::Bytes { from, data } if *from == role => {
                    expected.push((line.number, inputs, Item::Bytes(data.clone())));
                }
                Record::Bytes { data, .. } => {
                    inputs += 1;
                    // A protocol error is visible in the outputs (stream error, Closed event).
                    let _ = machine.handle_input(now, data);
                    drain(&mut machine, inputs, &setup.bindings, now, &mut actual);
                }
                Record::Tls => expected.push((line.number, inputs, Item::Tls)),
                Record::Event { of, summary } if *of == role => {
                    expected.push((line.number, inputs, Item::Event(summary.clone())));
                }
                Record::Host { of, command } if *of == role => {
                    inputs += 1;
                    run_command(&mut machine, now, command, setup)
                        .map_err(|m| err(line.number, m))?;
                    drain(&mut machine, inputs, &setup.bindings, now, &mut actual);
                }
                Record::Event { .. } | Record::Host { .. } => {}
            }
        }
        self.compare_items(&expected, &actual)
    }

    fn compare_items(
        &self,
        expected: &[(usize, usize, Item)],
        actual: &[(usize, Item)],
    ) -> Result<(), ReplayError> {
        let expected_norm = normalize(
            self.compare,
            expected.iter().map(|(n, i, item)| (*n, *i, item.clone())),
        )?;
        let actual_norm = normalize(
            self.compare,
            actual.iter().map(|(i, item)| (0, *i, item.clone())),
        )?;
        for (position, (want, got)) in expected_norm.iter().zip(&actual_norm).enumerate() {
            if (want.1, &want.2) != (got.1, &got.2) {
                return Err(err(
                    want.0,
                    format!(
                        "output #{position} differs\n  expected (after input {}): {}\n  actual   (after input {}): {}",
                        want.1, want.2, got.1, got.2
                    ),
                ));
            }
        }
        match expected_norm.len().cmp(&actual_norm.len()) {
            core::cmp::Ordering::Equal => Ok(()),
            core::cmp::Ordering::Less => {
                let extra = &actual_norm[expected_norm.len()];
                Err(err(
                    0,
                    format!(
                        "unexpected extra output (after input {}): {}",
                        extra.1, extra.2
                    ),
                ))
            }
            core::cmp::Ordering::Greater => {
                let missing = &expected_norm[actual_norm.len()];
                Err(err(
                    missing.0,
                    format!("expected output never came: {}", missing.2),
                ))
            }
        }
    }
}

/// What a machine produced or a transcript expects.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    Bytes(Vec<u8>),
    Tls,
    Event(String),
    Header(String),
    Element(Element),
    End,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Bytes(bytes) => write!(f, "bytes {:?}", String::from_utf8_lossy(bytes)),
            Item::Tls => f.write_str("[TLS]"),
            Item::Event(summary) => write!(f, "event {summary}"),
            Item::Header(summary) => write!(f, "stream header {summary}"),
            Item::Element(element) => {
                let mut out = Vec::new();
                let _ = element.write_to(&mut out);
                write!(f, "element {}", String::from_utf8_lossy(&out))
            }
            Item::End => f.write_str("</stream:stream>"),
        }
    }
}

/// Merge adjacent byte runs of the same input step; in XML mode parse them into headers,
/// elements and stream ends with whitespace-only text dropped.
fn normalize(
    compare: Compare,
    items: impl Iterator<Item = (usize, usize, Item)>,
) -> Result<Vec<(usize, usize, Item)>, ReplayError> {
    let mut merged: Vec<(usize, usize, Item)> = Vec::new();
    for (line, input, item) in items {
        if let (Some((_, last_input, Item::Bytes(last))), Item::Bytes(more)) =
            (merged.last_mut(), &item)
        {
            if *last_input == input {
                last.extend_from_slice(more);
                continue;
            }
        }
        merged.push((line, input, item));
    }
    if compare == Compare::Exact {
        return Ok(merged);
    }
    let mut out = Vec::new();
    for (line, input, item) in merged {
        match item {
            Item::Bytes(bytes) => {
                for parsed in xml_items(&bytes).map_err(|m| err(line, m))? {
                    out.push((line, input, parsed));
                }
            }
            other => out.push((line, input, other)),
        }
    }
    Ok(out)
}

const SYNTHETIC_HEADER: &[u8] =
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

fn header_summary(header: &StreamHeader) -> String {
    let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    format!(
        "to={} from={} id={} version={} lang={} ns={}",
        field(&header.to),
        field(&header.from),
        field(&header.id),
        header
            .version
            .map_or_else(|| "-".to_owned(), |v| v.to_string()),
        field(&header.lang),
        header.default_namespace()
    )
}

fn strip_whitespace(element: &Element) -> Element {
    let mut copy = Element::builder(element.name(), element.ns()).build();
    for (ns, name, value) in element
        .attrs()
        .iter()
        .map(|((ns, name), value)| (ns.clone(), name.clone(), value.clone()))
    {
        copy.set_attr(ns, name, value);
    }
    for node in element.nodes() {
        match node {
            Node::Element(child) => {
                copy.append_child(strip_whitespace(child));
            }
            Node::Text(text) if !text.trim().is_empty() => copy.append_text_node(text.clone()),
            Node::Text(_) => {}
        }
    }
    copy
}

fn xml_items(bytes: &[u8]) -> Result<Vec<Item>, String> {
    let trimmed = bytes.trim_ascii_start();
    let has_header = trimmed.starts_with(b"<?xml") || trimmed.starts_with(b"<stream:stream");
    let mut parser = StreamParser::new();
    if !has_header {
        parser.feed(SYNTHETIC_HEADER);
    }
    parser.feed(trimmed);
    let mut items = Vec::new();
    loop {
        match parser.next_event() {
            Ok(Some(XmlEvent::StreamStart(header))) => {
                if has_header {
                    items.push(Item::Header(header_summary(&header)));
                }
            }
            Ok(Some(XmlEvent::Element(element))) => {
                items.push(Item::Element(strip_whitespace(&element)));
            }
            Ok(Some(XmlEvent::StreamEnd)) => items.push(Item::End),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "not XML: {e}: {:?}",
                    String::from_utf8_lossy(bytes)
                ));
            }
        }
    }
    if parser.has_unparsed_input() && !parser.is_ended() {
        return Err(format!(
            "incomplete XML: {:?}",
            String::from_utf8_lossy(bytes)
        ));
    }
    Ok(items)
}

/// A short, stable text form of an event, as written in `E` lines.
pub fn event_summary(event: &Event) -> String {
    match event {
        Event::StreamOpened { .. } => "StreamOpened".to_owned(),
        Event::Secured => "Secured".to_owned(),
        Event::SaslAttemptFailed {
            mechanism,
            condition,
            next,
            ..
        } => match next {
            Some(next) => format!("SaslAttemptFailed {mechanism} {condition} next {next}"),
            None => format!("SaslAttemptFailed {mechanism} {condition} final"),
        },
        Event::Authenticated { jid, mechanism } => format!("Authenticated {jid} {mechanism}"),
        Event::Negotiated { jid, .. } => format!("Negotiated {jid}"),
        Event::ComponentNegotiated { domain } => format!("ComponentNegotiated {domain}"),
        Event::ServerAuthenticated {
            local,
            remote,
            method,
        } => format!("ServerAuthenticated {local} {remote} {method}"),
        Event::ServerRefused { local, remote } => format!("ServerRefused {local} {remote}"),
        Event::DialbackVerify {
            originating,
            receiving,
            ..
        } => format!("DialbackVerify {originating} {receiving}"),
        Event::RegistrationRequested(registration) => {
            format!("RegistrationRequested {}", registration.jid)
        }
        Event::Registered { jid } => format!("Registered {jid}"),
        Event::Stanza(stanza) => format!(
            "Stanza {} {}",
            stanza.name(),
            stanza.attr("id").unwrap_or("-")
        ),
        Event::StanzaEnvelope(envelope) => format!(
            "Stanza {} {}",
            envelope.kind().name(),
            envelope.id().unwrap_or("-")
        ),
        Event::Nonza(element) => format!("Nonza {}", element.name()),
        Event::Sm(event) => crate::sm::summary(event),
        Event::Redirect { to } => format!("Redirect {to}"),
        Event::SeeOtherUri { uri } => format!("SeeOtherUri {uri}"),
        Event::Closed { reason } => format!("Closed {}", close_summary(reason)),
    }
}

fn close_summary(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Graceful => "Graceful".to_owned(),
        CloseReason::TransportClosed => "TransportClosed".to_owned(),
        CloseReason::Timeout(timer) => format!("Timeout {timer:?}"),
        CloseReason::ProtocolError(e) => format!("ProtocolError {}", e.condition()),
        CloseReason::StreamError(e) => format!("StreamError {}", e.condition),
        CloseReason::TlsFailed => "TlsFailed".to_owned(),
        CloseReason::AuthenticationFailed { condition, .. } => {
            format!("AuthenticationFailed {condition}")
        }
        CloseReason::NoMechanism => "NoMechanism".to_owned(),
        CloseReason::BindFailed(e) => format!("BindFailed {}", e.condition),
        CloseReason::ServerNotVerified => "ServerNotVerified".to_owned(),
        CloseReason::FeatureMissing(kind) => format!("FeatureMissing {kind:?}"),
        CloseReason::Requested => "Requested".to_owned(),
        CloseReason::ServerNotAuthenticated => "ServerNotAuthenticated".to_owned(),
        CloseReason::RegistrationFailed(e) => format!("RegistrationFailed {}", e.condition),
    }
}

fn flag(value: &str, line: usize) -> Result<bool, ReplayError> {
    match value {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(err(line, "expected true or false")),
    }
}

fn tls_policy(value: &str, line: usize) -> Result<TlsPolicy, ReplayError> {
    match value {
        "required" => Ok(TlsPolicy::Required),
        "optional" => Ok(TlsPolicy::Optional),
        "disabled" => Ok(TlsPolicy::Disabled),
        _ => Err(err(line, "tls is required, optional or disabled")),
    }
}

fn jid(value: &str, line: usize) -> Result<BareJid, ReplayError> {
    BareJid::new(value).map_err(|e| err(line, format!("bad JID: {e}")))
}

/// The machine under replay: `role`'s, configured by the transcript's directives.
fn build(
    role: Role,
    setup: &Setup,
    entropy: Box<dyn Entropy + Send>,
) -> Result<AnyStream, ReplayError> {
    let get = |key: &str| {
        setup
            .settings
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(n, _, v)| (*n, v.as_str()))
    };
    match role {
        Role::Client => {
            let (n, account) = get("jid").ok_or_else(|| err(0, "!client jid is required"))?;
            let password = get("password").map_or("", |(_, v)| v);
            let mut config = ClientConfig::new(jid(account, n)?, password);
            let mut resume = None;
            for (n, key, value) in &setup.settings {
                let n = *n;
                match key.as_str() {
                    "jid" | "password" => {}
                    "resource" => config.resource = Some(value.clone()),
                    "tls" => config.tls = tls_policy(value, n)?,
                    "allow-plain" => config.allow_plain_without_tls = flag(value, n)?,
                    "mechanisms" => {
                        let list: Result<Vec<Mechanism>, _> =
                            value.split(',').map(str::parse).collect();
                        config.mechanisms = list.map_err(|_| err(n, "unknown mechanism"))?;
                    }
                    "max-auth-attempts" => {
                        config.max_auth_attempts =
                            value.parse().map_err(|_| err(n, "bad count"))?;
                    }
                    "require-channel-binding" => {
                        config.require_channel_binding = flag(value, n)?;
                    }
                    "legacy-session" => config.legacy_session = flag(value, n)?,
                    "from-before-tls" => config.from_before_tls = flag(value, n)?,
                    "lang" => config.lang = Some(value.clone()),
                    "keepalive-ms" => {
                        config.timeouts.keepalive = Some(Duration::from_millis(
                            value.parse().map_err(|_| err(n, "bad ms"))?,
                        ));
                    }
                    "resume-with" => resume = Some(sm_state(value).map_err(|m| err(n, m))?),
                    _ if sm_setting(&mut config.sm, &mut config.ping, key, value)
                        .map_err(|m| err(n, m))? => {}
                    _ => return Err(err(n, format!("unknown client setting {key}"))),
                }
            }
            let mut stream = ClientStream::new(config, entropy);
            if let Some(state) = resume {
                stream
                    .resume_with(state)
                    .map_err(|e| err(0, format!("resume-with: {e}")))?;
            }
            Ok(stream.into())
        }
        Role::Server => {
            let (n, domain) = get("domain").ok_or_else(|| err(0, "!server domain is required"))?;
            let mut config = ServerConfig::new(jid(domain, n)?);
            let mut backend = MemoryBackend::new();
            for (n, key, value) in &setup.settings {
                let n = *n;
                match key.as_str() {
                    "domain" => {}
                    "tls" => config.tls = tls_policy(value, n)?,
                    "allow-plain" => config.allow_plain_without_tls = flag(value, n)?,
                    "legacy-session" => config.legacy_session = flag(value, n)?,
                    "cb-types" => config.advertise_channel_binding_types = flag(value, n)?,
                    "downgrade-protection" => config.downgrade_protection = flag(value, n)?,
                    "nonce-len" => {
                        config.scram_nonce_len = value.parse().map_err(|_| err(n, "bad length"))?;
                    }
                    "lang" => config.lang.clone_from(value),
                    "max-auth-attempts" => {
                        config.max_auth_attempts =
                            value.parse().map_err(|_| err(n, "bad count"))?;
                    }
                    "mechanisms" => {
                        let list: Result<Vec<Mechanism>, _> =
                            value.split(',').map(str::parse).collect();
                        config.mechanisms = list.map_err(|_| err(n, "unknown mechanism"))?;
                    }
                    "user" => {
                        // user <name> <password> <salt text> <iterations>
                        let parts: Vec<&str> = value.split(' ').collect();
                        let [name, password, salt, iterations] = parts.as_slice() else {
                            return Err(err(n, "user <name> <password> <salt> <iterations>"));
                        };
                        let iterations =
                            iterations.parse().map_err(|_| err(n, "bad iterations"))?;
                        backend =
                            backend.with_user_salted(name, password, salt.as_bytes(), iterations);
                    }
                    "taken" => backend = backend.with_taken(value),
                    "feature-after-auth" | "feature-before-auth" => {
                        let Some(Item::Element(element)) =
                            xml_items(value.as_bytes()).map_err(|m| err(n, m))?.pop()
                        else {
                            return Err(err(n, format!("{key} <element/>")));
                        };
                        config.extra_features.push(if key == "feature-after-auth" {
                            crate::features::HostFeature::after_auth(element)
                        } else {
                            crate::features::HostFeature::before_auth(element)
                        });
                    }
                    _ if sm_setting(&mut config.sm, &mut config.ping, key, value)
                        .map_err(|m| err(n, m))? => {}
                    _ => return Err(err(n, format!("unknown server setting {key}"))),
                }
            }
            Ok(ServerStream::new(config, entropy, backend).into())
        }
    }
}

/// The component machine under replay: `!component domain D`, `!component secret S` for the
/// component's end; `!component-server component D S` (repeatable) for the server's.
fn build_component(
    role: Role,
    setup: &Setup,
    entropy: Box<dyn Entropy + Send>,
) -> Result<AnyStream, ReplayError> {
    match role {
        Role::Client => {
            let (mut domain, mut secret) = (None, None);
            for (n, key, value) in &setup.settings {
                match key.as_str() {
                    "domain" => domain = Some(jid(value, *n)?),
                    "secret" => secret = Some(value.clone()),
                    _ => return Err(err(*n, format!("unknown component setting {key}"))),
                }
            }
            let domain = domain.ok_or_else(|| err(0, "!component domain is required"))?;
            let config = ComponentConfig::new(domain, secret.unwrap_or_default());
            Ok(ComponentStream::new(config, entropy).into())
        }
        Role::Server => {
            let mut components = MemoryComponents::new();
            for (n, key, value) in &setup.settings {
                match key.as_str() {
                    "component" => {
                        let (domain, secret) = value
                            .split_once(' ')
                            .ok_or_else(|| err(*n, "component <domain> <secret>"))?;
                        components = components.with_component(jid(domain, *n)?, secret);
                    }
                    _ => {
                        return Err(err(*n, format!("unknown component-server setting {key}")));
                    }
                }
            }
            let config = ComponentServerConfig::new();
            Ok(ComponentServerStream::new(config, entropy, components).into())
        }
    }
}

/// The server-to-server machine under replay. Both ends: `domain D` (repeatable: our
/// domains), `peer-id dns|srv|xmpp|cn NAME` (repeatable: the peer certificate's names),
/// `dialback-secret S`, `external true|false`, `tls required|optional|disabled`; the
/// initiating end also `local D` and `remote D`.
fn build_s2s(
    role: Role,
    setup: &Setup,
    entropy: Box<dyn Entropy + Send>,
) -> Result<AnyStream, ReplayError> {
    let mut config = S2sConfig::new(Vec::new());
    let (mut local, mut remote, mut peer_ids) = (None, None, Vec::new());
    for (n, key, value) in &setup.settings {
        let n = *n;
        match key.as_str() {
            "domain" => config.local_domains.push(jid(value, n)?),
            "local" => local = Some(jid(value, n)?),
            "remote" => remote = Some(jid(value, n)?),
            "dialback-secret" => {
                config.dialback_secret = Some(DialbackSecret::new(value.as_bytes()));
            }
            "external" => config.sasl_external = flag(value, n)?,
            "tls" => config.tls = tls_policy(value, n)?,
            "peer-id" => {
                let (kind, name) = value
                    .split_once(' ')
                    .ok_or_else(|| err(n, "peer-id dns|srv|xmpp|cn NAME"))?;
                peer_ids.push(match kind {
                    "dns" => PresentedId::Dns(name.to_owned()),
                    "srv" => PresentedId::Srv(name.to_owned()),
                    "xmpp" => PresentedId::XmppAddr(name.to_owned()),
                    "cn" => PresentedId::CommonName(name.to_owned()),
                    _ => return Err(err(n, "peer-id kind is dns, srv, xmpp or cn")),
                });
            }
            _ => return Err(err(n, format!("unknown s2s setting {key}"))),
        }
    }
    Ok(match role {
        Role::Client => {
            let local = local.ok_or_else(|| err(0, "!s2s-initiating local is required"))?;
            let remote = remote.ok_or_else(|| err(0, "!s2s-initiating remote is required"))?;
            if !config.serves(&local) {
                config.local_domains.push(local.clone());
            }
            let mut stream = S2sInitiatingStream::new(config, local, remote, entropy);
            stream.set_peer_identities(peer_ids);
            stream.into()
        }
        Role::Server => {
            let mut stream = S2sReceivingStream::new(config, entropy);
            if !peer_ids.is_empty() {
                stream.set_peer_identities(peer_ids);
            }
            stream.into()
        }
    })
}

/// Run one `H` line's command on the machine.
fn run_command(
    machine: &mut AnyStream,
    now: Instant,
    command: &str,
    setup: &Setup,
) -> Result<(), String> {
    let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
    let result = match verb {
        // detach ID QUEUED: the session is taken with that id and that many unacked stanzas.
        "detach" => return detach(machine, arg),
        // resume ID FULLJID HANDLED SENT ACKED SINCE_R [<stanza/>...]: the host found that
        // session.
        "resume" => {
            let (state, since_request, unacked) = sm_parts(arg)?;
            let since_request =
                since_request.ok_or("resume ID FULLJID HANDLED SENT ACKED SINCE_R")?;
            let jid = FullJid::new(&state.jid).map_err(|e| format!("bad JID: {e}"))?;
            let mut config = SmConfig::default();
            let mut ping = None;
            for (_, key, value) in &setup.settings {
                sm_setting(&mut config, &mut ping, key, value)?;
            }
            let session = DetachedSession::restore(
                state.id,
                jid,
                [state.handled, state.sent, state.acked, since_request],
                unacked,
                config,
            );
            let stream = machine
                .as_server_mut()
                .ok_or("resume is for the server end")?;
            return stream
                .resume(now, session)
                .map_err(|_| "resume: the session was handed back".to_owned());
        }
        "refuse_resume" => {
            let stream = machine
                .as_server_mut()
                .ok_or("refuse_resume is for the server end")?;
            stream.refuse_resume(now);
            return Ok(());
        }
        "send" => {
            // Parsed inside a jabber:client stream, so the stanza needs no xmlns.
            let Some(Item::Element(stanza)) = xml_items(arg.as_bytes())?.into_iter().next() else {
                return Err("send needs one stanza".to_owned());
            };
            machine.send_stanza(now, &stanza)
        }
        "close" => machine.close(now),
        "timeout" => {
            machine.handle_timeout(now);
            Ok(())
        }
        "transport-closed" => {
            machine.transport_closed(now);
            Ok(())
        }
        // dialback-verified ORIGINATING RECEIVING valid|invalid|error CONDITION
        "dialback-verified" => {
            let words: Vec<&str> = arg.split_whitespace().collect();
            let (Some(originating), Some(receiving), Some(answer)) =
                (words.first(), words.get(1), words.get(2))
            else {
                return Err(
                    "dialback-verified ORIGINATING RECEIVING valid|invalid|error COND".into(),
                );
            };
            let parse = |d: &str| BareJid::new(d).map_err(|e| format!("bad domain: {e}"));
            let (originating, receiving) = (parse(originating)?, parse(receiving)?);
            let outcome = match *answer {
                "valid" => DialbackOutcome::Valid,
                "invalid" => DialbackOutcome::Invalid,
                "error" => {
                    let condition: xmpp_xml::StanzaErrorCondition = words
                        .get(3)
                        .ok_or("error needs a condition")?
                        .parse()
                        .map_err(|_| "unknown stanza error condition".to_owned())?;
                    DialbackOutcome::Error(condition.into())
                }
                _ => return Err("the answer is valid, invalid or error".into()),
            };
            let AnyStream::S2sReceiving(stream) = machine else {
                return Err("dialback-verified is for the s2s-receiving end".into());
            };
            stream.dialback_verified(now, &originating, &receiving, outcome)
        }
        _ => return Err(format!("unknown host command {verb}")),
    };
    result.map_err(|e| format!("{verb}: {e}"))
}

/// The `H server:` command that checks a host's [`ServerStream::detach`] took `session`:
/// `detach ID QUEUED`.
pub fn detach_command(session: &DetachedSession) -> String {
    format!("detach {} {}", session.id(), session.queued())
}

/// The `H server:` command that hands `session` to [`ServerStream::resume`], as a recording
/// host writes it: `resume ID FULLJID HANDLED SENT ACKED SINCE_R <stanza/>...` (`SINCE_R`:
/// stanzas sent since the last `<r/>`; the unacknowledged stanzas, oldest first).
pub fn resume_command(session: &DetachedSession) -> String {
    let sm = &session.sm;
    let mut line = format!(
        "resume {} {} {} {} {} {}",
        session.id, session.jid, sm.handled, sm.sent, sm.acked, sm.since_request
    );
    // A stanza kept as spliced bytes is written as its element (never fails for what a
    // splice wrote; a host that forwards envelopes records no replayable transcript anyway).
    for stanza in sm.unacked.iter().filter_map(|stanza| stanza.element().ok()) {
        line.push(' ');
        line.push_str(&escape_bytes(String::from(&stanza).as_bytes()));
    }
    line
}

/// `detach ID QUEUED`: take the server stream's managed session and check it.
fn detach(machine: &mut AnyStream, arg: &str) -> Result<(), String> {
    let (id, queued) = arg
        .split_once(' ')
        .ok_or("detach ID QUEUED (`-` for no session)")?;
    let stream = machine
        .as_server_mut()
        .ok_or("detach is for the server end")?;
    match (stream.detach(), id) {
        (None, "-") => Ok(()),
        (None, _) => Err("detach: no session to detach".to_owned()),
        (Some(session), id) => {
            let got = format!("{} {}", session.id(), session.queued());
            if got == format!("{id} {queued}") {
                Ok(())
            } else {
                Err(format!("detach: got session {got}, expected {id} {queued}"))
            }
        }
    }
}

/// `ID FULLJID HANDLED SENT ACKED [<stanza/>...]`: a session's resumable state, as in
/// `!client resume-with` and `H server: resume`.
fn sm_state(text: &str) -> Result<SmState, String> {
    match sm_parts(text)? {
        (state, None, _) => Ok(state),
        _ => Err("resume-with ID FULLJID HANDLED SENT ACKED [<stanza/>...]".to_owned()),
    }
}

/// [`sm_state`], and the unacknowledged stanzas parsed (the stanza text is escaped as
/// `C:`/`S:` bytes are).
fn sm_parts(text: &str) -> Result<(SmState, Option<u32>, Vec<Element>), String> {
    let stanzas_at = text.find('<').unwrap_or(text.len());
    let words: Vec<&str> = text[..stanzas_at].split_whitespace().collect();
    let count = |w: &str| w.parse::<u32>().map_err(|_| format!("bad count {w}"));
    let (id, jid, handled, sent, acked, since_request) = match words.as_slice() {
        [id, jid, handled, sent, acked] => (id, jid, handled, sent, acked, None),
        [id, jid, handled, sent, acked, since] => {
            (id, jid, handled, sent, acked, Some(count(since)?))
        }
        _ => return Err("expected ID FULLJID HANDLED SENT ACKED [SINCE_R] [<stanza/>...]".into()),
    };
    let stanzas = unescape(&text[stanzas_at..], 0).map_err(|e| e.message)?;
    let elements: Vec<Element> = xml_items(&stanzas)?
        .into_iter()
        .filter_map(|item| match item {
            Item::Element(el) => Some(el),
            _ => None,
        })
        .collect();
    let unacked = elements.iter().map(String::from).collect();
    let state = SmState {
        id: (*id).to_owned(),
        jid: (*jid).to_owned(),
        location: None,
        handled: count(handled)?,
        sent: count(sent)?,
        acked: count(acked)?,
        unacked,
    };
    Ok((state, since_request, elements))
}

/// A stream-management or ping setting (both roles): `Ok(false)` when `key` is none of them.
fn sm_setting(
    sm: &mut SmConfig,
    ping: &mut Option<PingConfig>,
    key: &str,
    value: &str,
) -> Result<bool, String> {
    let number = |v: &str| v.parse::<u64>().map_err(|_| format!("bad number {v}"));
    let bool_of = |v: &str| flag(v, 0).map_err(|e| e.message);
    match key {
        "sm" => sm.enabled = bool_of(value)?,
        "sm-resume" => sm.resume = bool_of(value)?,
        "sm-max-resume" => {
            sm.max_resume = match value {
                "none" => None,
                v => Some(Duration::from_secs(number(v)?)),
            };
        }
        "sm-max-unacked" => {
            sm.max_unacked = usize::try_from(number(value)?).map_err(|e| e.to_string())?;
        }
        "sm-request-every" => {
            sm.request_every = u32::try_from(number(value)?).map_err(|e| e.to_string())?;
        }
        "sm-request-after-ms" => {
            sm.request_after = match value {
                "none" => None,
                v => Some(Duration::from_millis(number(v)?)),
            };
        }
        "ping" => {
            *ping = match value.split_once(' ') {
                None if value == "none" => None,
                Some((idle, timeout)) => Some(PingConfig::new(
                    Duration::from_millis(number(idle)?),
                    Duration::from_millis(number(timeout)?),
                )),
                None => return Err("ping IDLE_MS TIMEOUT_MS or none".to_owned()),
            };
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Take every output, tagged with the number of inputs so far; a `StartTls` is answered at
/// once with the transcript's channel bindings.
fn drain(
    machine: &mut AnyStream,
    inputs: usize,
    bindings: &[ChannelBinding],
    now: Instant,
    actual: &mut Vec<(usize, Item)>,
) {
    while let Some(output) = machine.poll_output() {
        match output {
            Output::Transmit(bytes) => actual.push((inputs, Item::Bytes(bytes))),
            Output::StartTls => {
                actual.push((inputs, Item::Tls));
                let _ = machine.tls_established(now, bindings.to_vec());
            }
            Output::Event(event) => actual.push((inputs, Item::Event(event_summary(&event)))),
        }
    }
}

/// Write the `C:`/`S:`/`[TLS]`/`E` lines of a `pair::Pair` run (feature `testing`) in the transcript
/// format (exact mode: one line per delivered chunk, bytes escaped so they survive as text).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                ' ' if out.is_empty() => out.push_str("\\x20"),
                c if c.is_control() && u32::from(c) < 0x80 => {
                    use core::fmt::Write as _;
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            use core::fmt::Write as _;
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\x20");
    }
    out
}
