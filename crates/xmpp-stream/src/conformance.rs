//! The conformance cases (test support, behind the `testing` feature): what a client (or a
//! XEP-0114 component) sends a server and what RFC 6120 / RFC 6121 (or XEP-0198, XEP-0114)
//! says must come back, one numbered case per rule, as data. Two runners share this table: the hostile-peer suite runs every [`Layer::Stream`]
//! case against [`ServerStream`](crate::ServerStream) in memory, and the `xmpp-conformance`
//! tool runs every case against a real server over TCP. A case names the row of
//! [`RULES`](crate::rules::RULES) it checks ([`Case::rule`]), so a rule added to the library
//! either gets a case here or a reason in the tool why it cannot be checked from outside.
//!
//! Case text uses placeholders that the runner fills in ([`Vars::fill`]): `{domain}`, `{a}`
//! and `{b}` (the two accounts' bare JIDs), `{a_full}` and `{b_full}` (their bound full JIDs),
//! `{plain}` and `{plain_wrong}` (account A's SASL PLAIN message, base64, with the right and
//! a wrong password), `{scram_first}` (account A's SCRAM client-first message, base64),
//! `{resource}` (the resource account A's first connection bound), `{component}` (the
//! XEP-0114 component's domain, for the cases where the runner plays a component). Whatever a runner observes is judged by [`Expect::judge`], the one
//! place that decides pass or fail.

use minidom::Element;
use xmpp_xml::{Event as XmlEvent, StanzaErrorCondition, StreamErrorCondition, StreamParser};

use crate::features::ns;

/// How far negotiation must be before a case's [`Act`]s are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// The connection is up (TLS too, for direct TLS) and nothing is sent yet.
    Connected,
    /// Our stream header is sent and the server's header and features read (before TLS,
    /// unless the connection is direct TLS).
    Opened,
    /// TLS is up, the stream restarted over it and the features read; not authenticated.
    Secured,
    /// Account A authenticated with SASL PLAIN and the stream restarted; no resource bound.
    Authenticated,
    /// Account A negotiated completely by our client machine (`ClientStream`).
    Bound,
    /// Both accounts negotiated completely by our client machine.
    Pair,
    /// Account A negotiated completely by our client machine (connection A), and a second
    /// connection of account A authenticated by hand, no resource bound (connection B).
    Rebind,
    /// [`Phase::Bound`], then XEP-0198 stream management enabled by hand (`<enable/>` sent,
    /// `<enabled/>` read): the server's inbound count starts at zero here. A server that
    /// answers `<failed/>` does not offer it, and the case does not apply.
    Managed,
    /// A plain TCP connection to the server's XEP-0114 component port; nothing sent (the
    /// case's acts open the `jabber:component:accept` stream).
    ComponentConnected,
    /// The component stream opened (`to` the component's domain) and the handshake accepted:
    /// the checker is the component.
    Component,
    /// A plain TCP connection to the server's server-to-server port; nothing sent (the
    /// case's acts open the `jabber:server` stream: the checker plays a remote server).
    S2sConnected,
    /// [`Phase::S2sConnected`], then the checker authenticated as a remote server: its stream
    /// header `from` its domain, STARTTLS, a client certificate for that domain, SASL
    /// EXTERNAL (RFC 6120 §6.4, §13.8; XEP-0178 §3) and the stream restarted; the checker's
    /// domain is `{remote}`. The server must trust the certificate's CA.
    S2sAuthenticated,
    /// A WebSocket connection upgraded with the `xmpp` subprotocol (RFC 7395 §3.1); nothing
    /// sent. Each [`Act::Send`] is one text message, each [`Act::Raw`] one binary message.
    WsConnected,
    /// [`Phase::WsConnected`], then `<open/>` sent and the server's `<open/>` and features read.
    WsOpened,
}

/// Which implementation layer a case exercises (the in-memory runner runs only
/// [`Layer::Stream`] cases: the others need the whole server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layer {
    /// The stream machine alone decides (headers, XML, STARTTLS, SASL, bind, stanza
    /// addressing, close).
    Stream,
    /// The IM server behind the stream (RFC 6121 rules, routing, IQ handling).
    Im,
    /// Observed through our client machine's own negotiation.
    Client,
}

/// Which account's connection a send or an expectation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Who {
    /// Account A (every phase).
    A,
    /// Account B ([`Phase::Pair`] only).
    B,
}

/// One thing a case sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Act {
    /// This text (placeholders filled), on this account's connection.
    Send(Who, &'static str),
    /// These bytes as they are (not UTF-8, so no placeholders).
    Raw(&'static [u8]),
    /// Wait until the server has processed everything this account sent so far: the runner
    /// sends a roster get with `id='sync'` and reads until its answer (a server handles one
    /// connection's stanzas in order).
    Sync(Who),
}

/// What must come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expect {
    /// A `<stream:error/>` with this condition (and then the stream ends).
    StreamError(StreamErrorCondition),
    /// A SASL `<failure/>` with this condition (challenges before it are fine).
    SaslFailure(&'static str),
    /// SASL `<success/>`, after exactly this many `<failure/>`s.
    SaslSuccess {
        /// Failures expected first (earlier attempts of the case).
        after_failures: usize,
    },
    /// A SASL `<challenge/>`.
    SaslChallenge,
    /// The stanza with `id='c1'` is answered with an error of this condition.
    StanzaError(StanzaErrorCondition),
    /// The IQ with `id='c1'` is answered with a result.
    IqResult,
    /// The bind request `id='c1'` is answered with a result binding a resource other than
    /// the one requested: its `<jid/>` does not contain this text (RFC 6120 §7.7.1 lets a
    /// server override the requested resource).
    BoundOther(&'static str),
    /// `<proceed/>` and not one byte more before the TLS handshake.
    ProceedAlone,
    /// The server's stream features (it accepted what came before).
    Features,
    /// The server closes its stream with `</stream:stream>`.
    StreamEnd,
    /// A stanza with this name whose attribute has this value (placeholders filled), on
    /// [`Expect::on`]'s connection.
    Stanza {
        /// The account that must receive it.
        on: Who,
        /// `message`, `presence` or `iq`.
        name: &'static str,
        /// The attribute to compare (e.g. `from`).
        attr: &'static str,
        /// Its expected value.
        value: &'static str,
        /// A `type` it must have, if any.
        kind: Option<&'static str>,
    },
    /// Our client machine negotiated account A: nothing to send, the negotiation is the case.
    Negotiated,
    /// Either of these (the RFC leaves the server a choice).
    Either(&'static Expect, &'static Expect),
    /// This expectation, judged on this account's connection (for [`Phase::Rebind`], whose
    /// outcome may show on either connection).
    On(Who, &'static Expect),
    /// A `<stream:error/>` with this condition and this application-specific condition
    /// element (by local name, e.g. XEP-0198's `handled-count-too-high`).
    StreamErrorWith(StreamErrorCondition, &'static str),
    /// A `<stream:error/>`, whatever its condition (where the specification does not name one).
    AnyStreamError,
    /// XEP-0198 `<failed/>`, with this stanza error condition if one is given.
    SmFailed(Option<&'static str>),
    /// XEP-0198 `<a/>` whose `h` is this count of handled stanzas.
    SmAck(u32),
    /// A XEP-0220 dialback element (`jabber:server:dialback`) of this name and `type`.
    Dialback(&'static str, &'static str),
}

/// What a runner saw on one connection since the case's first act.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The depth-1 elements, in order.
    pub elements: Vec<Element>,
    /// The server ended its stream with `</stream:stream>`.
    pub stream_end: bool,
    /// The connection closed (or TLS failed) before the case was decided.
    pub eof: bool,
    /// The server's bytes were not well-formed XML (the parser's error).
    pub garbage: Option<String>,
    /// Bytes the runner saw before the TLS handshake after `<proceed/>` (only for
    /// [`Expect::ProceedAlone`]); no more than its byte limit keeps.
    pub raw: Vec<u8>,
    /// The `id` of the server's stream header, when the runner saw it.
    pub stream_id: Option<String>,
}

/// The verdict of [`Expect::judge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet: wait for more (at the deadline, a runner calls `judge` with
    /// `final_call` set, which always decides).
    Pending,
    /// The server did what the RFC requires.
    Pass,
    /// It did not: what came instead.
    Fail(String),
}

const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const STREAM_ERRORS_NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
const DIALBACK_NS: &str = crate::dialback::NS;

/// A short description of an element: its name and `type`, and the first child's name.
pub fn describe(element: &Element) -> String {
    let kind = element
        .attr("type")
        .map(|t| format!(" type='{t}'"))
        .unwrap_or_default();
    match element.children().next() {
        Some(child) => format!("<{}{kind}><{}/>", element.name(), child.name()),
        None => format!("<{}{kind}/>", element.name()),
    }
}

fn stream_error(seen: &Seen) -> Option<String> {
    seen.elements
        .iter()
        .find(|e| e.is("error", ns::STREAMS))
        .map(|e| {
            e.children()
                .find(|c| c.ns() == STREAM_ERRORS_NS && c.name() != "text")
                .map_or_else(|| "?".to_owned(), |c| c.name().to_owned())
        })
}

/// The application-specific condition of the stream error seen, if any (a child in neither
/// the stream-errors namespace nor `text`).
fn stream_error_app(seen: &Seen) -> Option<String> {
    seen.elements
        .iter()
        .find(|e| e.is("error", ns::STREAMS))?
        .children()
        .find(|c| c.ns() != STREAM_ERRORS_NS)
        .map(|c| c.name().to_owned())
}

/// The first XEP-0198 element seen (stream management answers in order).
fn sm_answer(seen: &Seen) -> Option<&Element> {
    seen.elements.iter().find(|e| e.ns() == ns::SM)
}

/// Why a connection ended without the expected answer, if it did.
fn ended(seen: &Seen) -> Option<String> {
    if let Some(condition) = stream_error(seen) {
        return Some(format!("stream error <{condition}/>"));
    }
    if let Some(garbage) = &seen.garbage {
        return Some(format!("not XML: {garbage}"));
    }
    if seen.stream_end {
        return Some("the server closed the stream".to_owned());
    }
    seen.eof.then(|| "the connection closed".to_owned())
}

fn reply_to_c1(seen: &Seen) -> Option<&Element> {
    seen.elements.iter().find(|e| e.attr("id") == Some("c1"))
}

fn stanza_error(stanza: &Element) -> Option<String> {
    stanza
        .children()
        .find(|c| c.name() == "error")?
        .children()
        .find(|c| c.ns() == STANZAS_NS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

impl Expect {
    /// The connection an expectation is judged on.
    pub const fn on(&self) -> Who {
        match self {
            Expect::Stanza { on, .. } | Expect::On(on, _) => *on,
            _ => Who::A,
        }
    }

    /// Whether a conforming server's answer can only be judged once the runner stops
    /// listening (nothing more may come).
    pub const fn settles(&self) -> bool {
        matches!(self, Expect::ProceedAlone)
    }

    /// What the expectation says, in words (for reports).
    pub fn describe(&self, vars: &Vars) -> String {
        match self {
            Expect::StreamError(c) => format!("stream error <{c}/>"),
            Expect::SaslFailure(c) => format!("SASL <failure><{c}/>"),
            Expect::SaslSuccess { after_failures } => {
                format!("SASL <success/> after {after_failures} failure(s)")
            }
            Expect::SaslChallenge => "SASL <challenge/>".to_owned(),
            Expect::StanzaError(c) => format!("stanza error <{c}/> to id c1"),
            Expect::IqResult => "<iq type='result'/> to id c1".to_owned(),
            Expect::BoundOther(_) => "a result binding another resource".to_owned(),
            Expect::ProceedAlone => "<proceed/> and nothing after it".to_owned(),
            Expect::Features => "<stream:features/>".to_owned(),
            Expect::StreamEnd => "</stream:stream>".to_owned(),
            Expect::Stanza {
                name, attr, value, ..
            } => format!("<{name} {attr}='{}'/>", vars.fill(value)),
            Expect::Negotiated => "negotiation by our client machine".to_owned(),
            Expect::Either(a, b) => format!("{} or {}", a.describe(vars), b.describe(vars)),
            Expect::On(who, inner) => {
                let connection = if *who == Who::B { "second" } else { "first" };
                format!("{} on the {connection} connection", inner.describe(vars))
            }
            Expect::StreamErrorWith(c, app) => format!("stream error <{c}/> with <{app}/>"),
            Expect::AnyStreamError => "a stream error".to_owned(),
            Expect::SmFailed(Some(c)) => format!("XEP-0198 <failed><{c}/>"),
            Expect::SmFailed(None) => "XEP-0198 <failed/>".to_owned(),
            Expect::SmAck(h) => format!("XEP-0198 <a h='{h}'/>"),
            Expect::Dialback(name, kind) => format!("<db:{name} type='{kind}'/>"),
        }
    }

    /// Judge what was seen. `final_call`: nothing more will be seen (the deadline passed or
    /// the runner stopped listening), so `Pending` is not an answer.
    pub fn judge(&self, seen: &Seen, vars: &Vars, final_call: bool) -> Verdict {
        self.judge_both(seen, seen, vars, final_call)
    }

    /// [`judge`](Self::judge) with what each connection saw (A's and B's): variants with a
    /// [`Who`] look at theirs, the others at A's.
    pub fn judge_both(&self, a: &Seen, b: &Seen, vars: &Vars, final_call: bool) -> Verdict {
        let verdict = self.judge_now((a, b), vars, final_call);
        let seen = if self.on() == Who::B { b } else { a };
        match verdict {
            Verdict::Pending if final_call => Verdict::Fail(match ended(seen) {
                Some(why) => why,
                None if seen.elements.is_empty() => "nothing (timeout)".to_owned(),
                None => format!(
                    "{} (then nothing)",
                    seen.elements
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            }),
            other => other,
        }
    }

    fn judge_now(&self, both: (&Seen, &Seen), vars: &Vars, final_call: bool) -> Verdict {
        let seen = both.0;
        match self {
            Expect::On(who, inner) => {
                let one = if *who == Who::B { both.1 } else { both.0 };
                inner.judge_now((one, one), vars, final_call)
            }
            Expect::Either(a, b) => match (
                a.judge_now(both, vars, final_call),
                b.judge_now(both, vars, final_call),
            ) {
                (Verdict::Pass, _) | (_, Verdict::Pass) => Verdict::Pass,
                (Verdict::Fail(x), Verdict::Fail(_)) => Verdict::Fail(x),
                _ => Verdict::Pending,
            },
            Expect::StreamError(condition) => match stream_error(seen) {
                Some(c) if c == condition.to_string() => Verdict::Pass,
                Some(c) => Verdict::Fail(format!("stream error <{c}/>")),
                None => fail_if_ended(seen),
            },
            Expect::SaslFailure(condition) => {
                match seen
                    .elements
                    .iter()
                    .find(|e| e.ns() == ns::SASL && e.name() != "challenge")
                {
                    Some(e) if e.name() == "failure" => {
                        match e.children().find(|c| c.name() != "text") {
                            Some(c) if c.name() == *condition => Verdict::Pass,
                            Some(c) => Verdict::Fail(format!("<failure><{}/>", c.name())),
                            None => Verdict::Fail("<failure/> with no condition".to_owned()),
                        }
                    }
                    Some(e) => Verdict::Fail(describe(e)),
                    None => fail_if_ended(seen),
                }
            }
            Expect::SaslSuccess { after_failures } => {
                let mut failures = 0;
                for e in seen.elements.iter().filter(|e| e.ns() == ns::SASL) {
                    match e.name() {
                        "success" if failures == *after_failures => return Verdict::Pass,
                        "success" => return Verdict::Fail(format!("success after {failures}")),
                        "failure" if failures == *after_failures => {
                            return Verdict::Fail(describe(e));
                        }
                        "failure" => failures += 1,
                        _ => {}
                    }
                }
                fail_if_ended(seen)
            }
            Expect::SaslChallenge => match seen.elements.iter().find(|e| e.ns() == ns::SASL) {
                Some(e) if e.name() == "challenge" => Verdict::Pass,
                Some(e) => Verdict::Fail(describe(e)),
                None => fail_if_ended(seen),
            },
            Expect::StanzaError(condition) => match reply_to_c1(seen) {
                Some(s) => match stanza_error(s) {
                    Some(c) if c == condition.to_string() => Verdict::Pass,
                    _ => Verdict::Fail(describe(s)),
                },
                None => fail_if_ended(seen),
            },
            Expect::IqResult => match reply_to_c1(seen) {
                Some(s) if s.name() == "iq" && s.attr("type") == Some("result") => Verdict::Pass,
                Some(s) => Verdict::Fail(describe(s)),
                None => fail_if_ended(seen),
            },
            Expect::BoundOther(requested) => match reply_to_c1(seen) {
                Some(s) if s.name() == "iq" && s.attr("type") == Some("result") => {
                    let jid = s
                        .get_child("bind", ns::BIND)
                        .and_then(|b| b.get_child("jid", ns::BIND))
                        .map(Element::text)
                        .unwrap_or_default();
                    if jid.contains(&vars.fill(requested)) || jid.is_empty() {
                        Verdict::Fail(format!("bound {jid:?}"))
                    } else {
                        Verdict::Pass
                    }
                }
                Some(s) => Verdict::Fail(describe(s)),
                None => fail_if_ended(seen),
            },
            Expect::ProceedAlone => {
                let proceed = seen.elements.first().filter(|e| e.is("proceed", ns::TLS));
                match (proceed, seen.elements.len()) {
                    (Some(_), 1) if seen.garbage.is_none() => match ended(seen) {
                        Some(why) => Verdict::Fail(why),
                        // Nothing else came before the runner stopped listening.
                        None if final_call => Verdict::Pass,
                        None => Verdict::Pending,
                    },
                    (Some(_), _) => Verdict::Fail(format!(
                        "bytes after <proceed/>: {}",
                        seen.elements
                            .iter()
                            .skip(1)
                            .map(describe)
                            .collect::<String>()
                    )),
                    (None, _) => match seen.elements.first() {
                        Some(e) => Verdict::Fail(describe(e)),
                        None => fail_if_ended(seen),
                    },
                }
            }
            Expect::Features => match seen.elements.first() {
                Some(e) if e.is("features", ns::STREAMS) => Verdict::Pass,
                Some(e) => Verdict::Fail(describe(e)),
                None => fail_if_ended(seen),
            },
            Expect::StreamEnd => {
                if seen.stream_end {
                    Verdict::Pass
                } else if let Some(c) = stream_error(seen) {
                    Verdict::Fail(format!("stream error <{c}/>"))
                } else if seen.eof {
                    Verdict::Fail("the connection closed without </stream:stream>".to_owned())
                } else {
                    Verdict::Pending
                }
            }
            Expect::Stanza {
                on,
                name,
                attr,
                value,
                kind,
            } => {
                let seen = if *on == Who::B { both.1 } else { both.0 };
                let value = vars.fill(value);
                let found = seen.elements.iter().any(|e| {
                    e.name() == *name
                        && e.attr(*attr) == Some(value.as_str())
                        && kind.is_none_or(|k| e.attr("type") == Some(k))
                });
                if found {
                    Verdict::Pass
                } else {
                    fail_if_ended(seen)
                }
            }
            // Reaching the case at all is the pass: the runner fails it if negotiation failed.
            Expect::Negotiated => Verdict::Pass,
            Expect::StreamErrorWith(condition, app) => {
                match (stream_error(seen), stream_error_app(seen)) {
                    (Some(c), Some(a)) if c == condition.to_string() && a == *app => Verdict::Pass,
                    (Some(c), a) => Verdict::Fail(format!(
                        "stream error <{c}/>{}",
                        a.map(|a| format!(" with <{a}/>")).unwrap_or_default()
                    )),
                    (None, _) => fail_if_ended(seen),
                }
            }
            Expect::AnyStreamError => match stream_error(seen) {
                Some(_) => Verdict::Pass,
                None => fail_if_ended(seen),
            },
            Expect::SmFailed(condition) => match sm_answer(seen) {
                Some(e) if e.name() == "failed" => {
                    let got = e.children().find(|c| c.ns() == STANZAS_NS);
                    match (condition, got) {
                        (None, _) => Verdict::Pass,
                        (Some(want), Some(c)) if c.name() == *want => Verdict::Pass,
                        (Some(_), Some(c)) => Verdict::Fail(format!("<failed><{}/>", c.name())),
                        (Some(_), None) => Verdict::Fail("<failed/> with no condition".to_owned()),
                    }
                }
                Some(e) => Verdict::Fail(describe(e)),
                None => fail_if_ended(seen),
            },
            Expect::Dialback(name, kind) => {
                match seen.elements.iter().find(|e| e.ns() == DIALBACK_NS) {
                    Some(e) if e.name() == *name && e.attr("type") == Some(kind) => Verdict::Pass,
                    Some(e) => Verdict::Fail(describe(e)),
                    None => fail_if_ended(seen),
                }
            }
            // The server's own `<r/>` asks, it does not answer: look past it.
            Expect::SmAck(h) => match seen
                .elements
                .iter()
                .find(|e| e.ns() == ns::SM && e.name() != "r")
            {
                Some(e) if e.name() == "a" => {
                    let got = e.attr("h").unwrap_or_default();
                    if got == h.to_string() {
                        Verdict::Pass
                    } else {
                        Verdict::Fail(format!("<a h='{got}'/>"))
                    }
                }
                Some(e) => Verdict::Fail(describe(e)),
                None => fail_if_ended(seen),
            },
        }
    }
}

fn fail_if_ended(seen: &Seen) -> Verdict {
    ended(seen).map_or(Verdict::Pending, Verdict::Fail)
}

/// How a deliberately broken server misses a case: a rewrite of the bytes it reads (or
/// writes), so the runner of the tool's own tests can show every case able to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Break {
    /// Rewrite what the server reads (`true`) or what it writes (`false`).
    pub input: bool,
    /// The text to replace (placeholders filled).
    pub from: &'static str,
    /// Its replacement (placeholders filled).
    pub to: &'static str,
}

const fn input(from: &'static str, to: &'static str) -> Break {
    Break {
        input: true,
        from,
        to,
    }
}

const fn output(from: &'static str, to: &'static str) -> Break {
    Break {
        input: false,
        from,
        to,
    }
}

/// One conformance case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Its stable number.
    pub id: u16,
    /// A short stable name, `area.what`.
    pub name: &'static str,
    /// The section of RFC 6120 or RFC 6121 it checks.
    pub section: &'static str,
    /// The row of [`RULES`](crate::rules::RULES) it checks, if the rule is one of the table's
    /// (XML restrictions are the parser's, RFC 6121 rules the IM server's).
    pub rule: Option<&'static str>,
    /// What the RFC requires, in words.
    pub requires: &'static str,
    /// Which layer decides it.
    pub layer: Layer,
    /// How far negotiation goes first.
    pub phase: Phase,
    /// What the case sends.
    pub acts: &'static [Act],
    /// What must come back.
    pub expect: Expect,
    /// How a deliberately broken server misses it (for the tool's own tests).
    pub breaks: Break,
}

/// Shorthand for the table below: one argument per field.
#[allow(clippy::too_many_arguments)]
const fn case(
    id: u16,
    name: &'static str,
    section: &'static str,
    rule: Option<&'static str>,
    requires: &'static str,
    (layer, phase): (Layer, Phase),
    acts: &'static [Act],
    expect: Expect,
    breaks: Break,
) -> Case {
    Case {
        id,
        name,
        section,
        rule,
        requires,
        layer,
        phase,
        acts,
        expect,
        breaks,
    }
}

use Act::Send;
use Expect as X;
use Layer::{Client as LC, Im as LI, Stream as LS};
use Phase::{
    Authenticated, Bound, Component, ComponentConnected, Connected, Managed, Opened, Pair, Rebind,
    S2sAuthenticated, S2sConnected, Secured, WsConnected, WsOpened,
};
use Who::{A, B};

const fn a(text: &'static str) -> Act {
    Send(A, text)
}

const fn b(text: &'static str) -> Act {
    Send(B, text)
}

/// A header's fixed part.
macro_rules! header {
    ($attrs:literal) => {
        concat!(
            "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' ",
            $attrs,
            ">"
        )
    };
}

/// A component's stream header to this domain.
macro_rules! component_header {
    ($to:literal) => {
        concat!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' ",
            "xmlns:stream='http://etherx.jabber.org/streams' to='",
            $to,
            "'>"
        )
    };
}

/// A remote server's stream header (from `checker.test`, dialback declared) with these
/// attributes.
macro_rules! s2s_header {
    ($attrs:literal) => {
        concat!(
            "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' ",
            "xmlns:db='jabber:server:dialback' ",
            $attrs,
            " version='1.0'>"
        )
    };
}

/// SASL namespace, for the texts below.
macro_rules! sasl {
    ($body:literal) => {
        concat!("xmlns='urn:ietf:params:xml:ns:xmpp-sasl'", $body)
    };
}

/// The cases, in the order of the RFC.
pub const CASES: &[Case] = &[
    // ----- stream header (RFC 6120 §4.7, §4.9.3) -----
    case(
        1,
        "header.content-namespace",
        "RFC 6120 §4.9.3.10",
        Some("header.from-client"),
        "a c2s header in jabber:server is invalid-namespace",
        (LS, Connected),
        &[a(header!(
            "xmlns='jabber:server' to='{domain}' version='1.0'"
        ))],
        X::StreamError(StreamErrorCondition::InvalidNamespace),
        input("xmlns='jabber:server'", "xmlns='jabber:client'"),
    ),
    case(
        2,
        "header.stream-namespace",
        "RFC 6120 §4.9.3.10",
        Some("header.from-client"),
        "a stream element outside http://etherx.jabber.org/streams is invalid-namespace",
        (LS, Connected),
        &[a(
            "<?xml version='1.0'?><stream:stream xmlns:stream='urn:example:not-streams' \
             xmlns='jabber:client' to='{domain}' version='1.0'>",
        )],
        X::StreamError(StreamErrorCondition::InvalidNamespace),
        input(
            "urn:example:not-streams",
            "http://etherx.jabber.org/streams",
        ),
    ),
    case(
        3,
        "header.version",
        "RFC 6120 §4.7.5",
        Some("header.from-client"),
        "a header with version 2.0 gets unsupported-version or a 1.0 stream",
        (LS, Connected),
        &[a(header!(
            "xmlns='jabber:client' to='{domain}' version='2.0'"
        ))],
        X::Either(
            &X::StreamError(StreamErrorCondition::UnsupportedVersion),
            &X::Features,
        ),
        output("<unsupported-version", "<undefined-condition"),
    ),
    case(
        4,
        "header.to-unknown",
        "RFC 6120 §4.9.3.6",
        Some("header.from-client"),
        "a header to a domain the server does not serve is host-unknown",
        (LS, Connected),
        &[a(header!(
            "xmlns='jabber:client' to='nowhere.invalid' version='1.0'"
        ))],
        X::StreamError(StreamErrorCondition::HostUnknown),
        input("to='nowhere.invalid'", "to='{domain}'"),
    ),
    // ----- restricted XML (RFC 6120 §11) -----
    case(
        5,
        "xml.comment",
        "RFC 6120 §11.1",
        None,
        "an XML comment is restricted-xml",
        (LS, Opened),
        &[a("<!-- a comment -->")],
        X::StreamError(StreamErrorCondition::RestrictedXml),
        input("<!-- a comment -->", ""),
    ),
    case(
        6,
        "xml.processing-instruction",
        "RFC 6120 §11.1",
        None,
        "a processing instruction is restricted-xml",
        (LS, Opened),
        &[a("<?evil data?>")],
        X::StreamError(StreamErrorCondition::RestrictedXml),
        input("<?evil data?>", ""),
    ),
    case(
        7,
        "xml.dtd",
        "RFC 6120 §11.1",
        None,
        "a document type declaration is restricted-xml",
        (LS, Opened),
        &[a("<!DOCTYPE x [<!ENTITY a 'b'>]>")],
        X::StreamError(StreamErrorCondition::RestrictedXml),
        input("<!DOCTYPE x [<!ENTITY a 'b'>]>", ""),
    ),
    case(
        8,
        "xml.entity",
        "RFC 6120 §11.1",
        None,
        "a reference to an undeclared entity is restricted-xml",
        (LS, Opened),
        &[a("<message><body>&xxe;</body></message>")],
        X::StreamError(StreamErrorCondition::RestrictedXml),
        input("<message><body>&xxe;</body></message>", ""),
    ),
    case(
        9,
        "xml.bad-utf8",
        "RFC 6120 §11.6, §4.9.3.13",
        None,
        "bytes that are not UTF-8 are not-well-formed",
        (LS, Opened),
        &[Act::Raw(
            b"<message><body>\xff\xfe\xc0\xaf</body></message>",
        )],
        X::Either(
            &X::StreamError(StreamErrorCondition::NotWellFormed),
            &X::StreamError(StreamErrorCondition::UnsupportedEncoding),
        ),
        output("<not-well-formed", "<undefined-condition"),
    ),
    case(
        10,
        "xml.unbound-prefix",
        "RFC 6120 §4.9.3.2",
        None,
        "an element with an undeclared prefix is bad-namespace-prefix (or not-well-formed)",
        (LS, Opened),
        &[a("<foo:message/>")],
        X::Either(
            &X::StreamError(StreamErrorCondition::BadNamespacePrefix),
            &X::StreamError(StreamErrorCondition::NotWellFormed),
        ),
        input("<foo:message/>", ""),
    ),
    case(
        11,
        "xml.mismatched-tags",
        "RFC 6120 §4.9.3.13",
        None,
        "mismatched tags are not-well-formed",
        (LS, Opened),
        &[a("<message><body></message>")],
        X::StreamError(StreamErrorCondition::NotWellFormed),
        input("<message><body></message>", ""),
    ),
    // ----- STARTTLS (RFC 6120 §5) -----
    case(
        12,
        "starttls.proceed-alone",
        "RFC 6120 §5.4.2.3",
        Some("starttls.request"),
        "after <proceed/> the server sends nothing in plaintext: the next bytes are TLS",
        (LS, Opened),
        &[a("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")],
        X::ProceedAlone,
        output(
            "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><stream:features/>",
        ),
    ),
    // ----- SASL (RFC 6120 §6) -----
    case(
        13,
        "sasl.plain",
        "RFC 6120 §6.4.6",
        Some("sasl.auth"),
        "a correct PLAIN initial response succeeds",
        (LS, Secured),
        &[a(concat!(
            "<auth mechanism='PLAIN' ",
            sasl!(">{plain}</auth>")
        ))],
        X::SaslSuccess { after_failures: 0 },
        input("{plain}</auth>", "{plain_wrong}</auth>"),
    ),
    case(
        14,
        "sasl.abort",
        "RFC 6120 §6.4.4",
        Some("sasl.abort"),
        "<abort/> during an exchange (after SCRAM's first challenge) is answered <failure><aborted/>",
        (LS, Secured),
        &[
            a(concat!(
                "<auth mechanism='SCRAM-SHA-1' ",
                sasl!(">{scram_first}</auth>")
            )),
            a(concat!("<abort ", sasl!("/>"))),
        ],
        X::SaslFailure("aborted"),
        input(concat!("<abort ", sasl!("/>")), ""),
    ),
    case(
        15,
        "sasl.abort-idle",
        "RFC 6120 §6.4.4",
        Some("sasl.abort-idle"),
        "<abort/> with no exchange running is answered <failure><aborted/>",
        (LS, Secured),
        &[a(concat!("<abort ", sasl!("/>")))],
        X::SaslFailure("aborted"),
        input(concat!("<abort ", sasl!("/>")), ""),
    ),
    case(
        16,
        "sasl.bad-base64",
        "RFC 6120 §6.5.2",
        Some("sasl.auth"),
        "an initial response that is not base64 is incorrect-encoding",
        (LS, Secured),
        &[a(concat!(
            "<auth mechanism='PLAIN' ",
            sasl!(">!!not*base64!!</auth>")
        ))],
        X::SaslFailure("incorrect-encoding"),
        input("!!not*base64!!", "{plain}"),
    ),
    case(
        17,
        "sasl.wrong-password",
        "RFC 6120 §6.5.10",
        Some("sasl.auth"),
        "wrong credentials are not-authorized",
        (LS, Secured),
        &[a(concat!(
            "<auth mechanism='PLAIN' ",
            sasl!(">{plain_wrong}</auth>")
        ))],
        X::SaslFailure("not-authorized"),
        input("{plain_wrong}", "{plain}"),
    ),
    case(
        18,
        "sasl.invalid-mechanism",
        "RFC 6120 §6.5.5",
        Some("sasl.auth"),
        "a mechanism the server did not offer is invalid-mechanism",
        (LS, Secured),
        &[a(concat!(
            "<auth mechanism='X-NOPE' ",
            sasl!(">{plain}</auth>")
        ))],
        X::SaslFailure("invalid-mechanism"),
        input("X-NOPE", "PLAIN"),
    ),
    case(
        19,
        "sasl.retry",
        "RFC 6120 §6.4.5",
        Some("sasl.auth"),
        "after a failed attempt the client may retry (at least 2 attempts allowed)",
        (LS, Secured),
        &[
            a(concat!(
                "<auth mechanism='PLAIN' ",
                sasl!(">{plain_wrong}</auth>")
            )),
            a(concat!(
                "<auth mechanism='PLAIN' ",
                sasl!(">{plain}</auth>")
            )),
        ],
        X::SaslSuccess { after_failures: 1 },
        input("{plain}</auth>", "{plain_wrong}</auth>"),
    ),
    case(
        20,
        "sasl.empty-initial-response",
        "RFC 6120 §6.4.2, §6.4.3",
        Some("sasl.auth"),
        "<auth/> with no initial response gets a challenge",
        (LS, Secured),
        &[a(concat!("<auth mechanism='PLAIN' ", sasl!("/>")))],
        X::SaslChallenge,
        input(concat!("<auth mechanism='PLAIN' ", sasl!("/>")), ""),
    ),
    case(
        21,
        "sasl.response",
        "RFC 6120 §6.4.3",
        Some("sasl.response"),
        "the answer to the challenge completes the exchange",
        (LS, Secured),
        &[
            a(concat!("<auth mechanism='PLAIN' ", sasl!("/>"))),
            a(concat!("<response ", sasl!(">{plain}</response>"))),
        ],
        X::SaslSuccess { after_failures: 0 },
        input("{plain}</response>", "{plain_wrong}</response>"),
    ),
    case(
        22,
        "sasl.misplaced-response",
        "RFC 6120 §6.5.8",
        Some("sasl.misplaced"),
        "a <response/> with no exchange running is malformed-request",
        (LS, Secured),
        &[a(concat!("<response ", sasl!(">{plain}</response>")))],
        X::SaslFailure("malformed-request"),
        input(concat!("<response ", sasl!(">{plain}</response>")), ""),
    ),
    case(
        23,
        "sasl.auth-during-exchange",
        "RFC 6120 §6.5.8",
        Some("sasl.misplaced-in-exchange"),
        "a second <auth/> while an exchange runs is malformed-request",
        (LS, Secured),
        &[
            a(concat!("<auth mechanism='PLAIN' ", sasl!("/>"))),
            a(concat!(
                "<auth mechanism='PLAIN' ",
                sasl!(">{plain}</auth>")
            )),
        ],
        X::SaslFailure("malformed-request"),
        input(
            concat!("<auth mechanism='PLAIN' ", sasl!(">{plain}</auth>")),
            "",
        ),
    ),
    case(
        24,
        "sasl.additional-data",
        "RFC 6120 §6.4.6",
        Some("sasl.response"),
        "SCRAM's server-final message comes with <success/> and verifies (our client checks it)",
        (LC, Bound),
        &[],
        X::Negotiated,
        output(
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj",
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dk",
        ),
    ),
    // ----- resource binding (RFC 6120 §7) -----
    case(
        25,
        "bind.generated",
        "RFC 6120 §7.6",
        Some("bind.request"),
        "a bind request with no resource gets a server-generated one",
        (LS, Authenticated),
        &[a(
            "<iq type='set' id='c1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
        )],
        X::IqResult,
        input(
            "urn:ietf:params:xml:ns:xmpp-bind'/>",
            "urn:example:broken'/>",
        ),
    ),
    case(
        26,
        "bind.bad-resource",
        "RFC 6120 §7.7.2.1",
        Some("bind.request"),
        "a resource that is not a valid resourcepart (U+007F, a control character) is bad-request, \
         or the server binds one of its own",
        (LS, Authenticated),
        &[a(
            "<iq type='set' id='c1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>bad&#x7F;res</resource></bind></iq>",
        )],
        X::Either(
            &X::StanzaError(StanzaErrorCondition::BadRequest),
            &X::BoundOther("bad"),
        ),
        output("<bad-request", "<undefined-condition"),
    ),
    case(
        40,
        "bind.conflict",
        "RFC 6120 §7.7.2.2",
        Some("bind.request"),
        "a second session asking for a resource in use is refused (conflict), given another \
         resource, or the first session is ended with a conflict stream error",
        (LI, Rebind),
        &[b(
            "<iq type='set' id='c1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{resource}</resource></bind></iq>",
        )],
        X::Either(
            &X::On(B, &X::StanzaError(StanzaErrorCondition::Conflict)),
            &X::Either(
                &X::On(B, &X::BoundOther("{resource}")),
                &X::On(A, &X::StreamError(StreamErrorCondition::Conflict)),
            ),
        ),
        output("<conflict", "<undefined-condition"),
    ),
    // ----- stanzas (RFC 6120 §8) -----
    case(
        27,
        "stanza.spoofed-from",
        "RFC 6120 §8.1.2.1",
        Some("established.from-client"),
        "a stanza whose from is not the client's JID is invalid-from",
        (LS, Bound),
        &[a(
            "<message from='romeo@montague.invalid/orchard' to='{a}' id='c1'><body>hi</body></message>",
        )],
        X::StreamError(StreamErrorCondition::InvalidFrom),
        input("from='romeo@montague.invalid/orchard' ", ""),
    ),
    case(
        28,
        "stanza.malformed-to",
        "RFC 6120 §8.3.3.8",
        Some("established.from-client"),
        "a to that is not a JID is jid-malformed",
        (LS, Bound),
        &[a(
            "<iq type='get' id='c1' to='a@b@c'><ping xmlns='urn:xmpp:ping'/></iq>",
        )],
        X::StanzaError(StanzaErrorCondition::JidMalformed),
        input("to='a@b@c'", ""),
    ),
    case(
        29,
        "stanza.iq-no-payload",
        "RFC 6120 §8.2.3",
        None,
        "an IQ get with no child element is bad-request",
        (LI, Bound),
        &[a("<iq type='get' id='c1'/>")],
        X::StanzaError(StanzaErrorCondition::BadRequest),
        input("<iq type='get' id='c1'/>", ""),
    ),
    case(
        30,
        "stanza.iq-two-payloads",
        "RFC 6120 §8.2.3",
        None,
        "an IQ get with two child elements is bad-request",
        (LI, Bound),
        &[a(
            "<iq type='get' id='c1'><query xmlns='jabber:iq:roster'/><ping xmlns='urn:xmpp:ping'/></iq>",
        )],
        X::StanzaError(StanzaErrorCondition::BadRequest),
        input("<ping xmlns='urn:xmpp:ping'/></iq>", "</iq>"),
    ),
    case(
        31,
        "stanza.iq-unknown-payload",
        "RFC 6120 §8.4",
        None,
        "an IQ get in a namespace the server does not know is service-unavailable",
        (LI, Bound),
        &[a(
            "<iq type='get' id='c1' to='{domain}'><query xmlns='urn:example:nope'/></iq>",
        )],
        X::Either(
            &X::StanzaError(StanzaErrorCondition::ServiceUnavailable),
            &X::StanzaError(StanzaErrorCondition::FeatureNotImplemented),
        ),
        input(
            "<iq type='get' id='c1' to='{domain}'><query xmlns='urn:example:nope'/></iq>",
            "",
        ),
    ),
    case(
        32,
        "stanza.iq-to-no-such-user",
        "RFC 6121 §8.5.1",
        None,
        "an IQ to an account that does not exist is service-unavailable",
        (LI, Bound),
        &[a(
            "<iq type='get' id='c1' to='nobody-here@{domain}'><query xmlns='urn:example:q'/></iq>",
        )],
        X::StanzaError(StanzaErrorCondition::ServiceUnavailable),
        output("<service-unavailable", "<undefined-condition"),
    ),
    case(
        33,
        "session.legacy",
        "RFC 3921 §3 (RFC 6121 §1.4)",
        Some("session.request"),
        "a legacy session request is answered with a result",
        (LS, Bound),
        &[a(
            "<iq type='set' id='c1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
        )],
        X::IqResult,
        input(
            "urn:ietf:params:xml:ns:xmpp-session'/>",
            "urn:example:broken'/>",
        ),
    ),
    // ----- RFC 6121: roster, subscriptions, presence, delivery (two accounts) -----
    case(
        34,
        "roster.get",
        "RFC 6121 §2.1.3",
        None,
        "a roster get is answered with a result",
        (LI, Bound),
        &[a(
            "<iq type='get' id='c1'><query xmlns='jabber:iq:roster'/></iq>",
        )],
        X::IqResult,
        input("jabber:iq:roster'/></iq>", "urn:example:broken'/></iq>"),
    ),
    case(
        35,
        "roster.set",
        "RFC 6121 §2.3.3",
        None,
        "a roster set of a new item is answered with a result",
        (LI, Bound),
        &[a("<iq type='set' id='c1'><query xmlns='jabber:iq:roster'>\
             <item jid='nurse@{domain}' name='Nurse'/></query></iq>")],
        X::IqResult,
        input("jabber:iq:roster'>", "urn:example:broken'>"),
    ),
    case(
        36,
        "presence.subscribe-stamped",
        "RFC 6121 §3.1.2",
        None,
        "a subscription request reaches the available contact from the user's bare JID",
        (LI, Pair),
        &[
            b("<presence/>"),
            Act::Sync(B),
            a("<presence to='{b}' type='subscribe'/>"),
        ],
        X::Stanza {
            on: B,
            name: "presence",
            attr: "from",
            value: "{a}",
            kind: Some("subscribe"),
        },
        input("<presence to='{b}' type='subscribe'/>", ""),
    ),
    case(
        37,
        "message.to-bare",
        "RFC 6121 §8.5.2.1.1",
        None,
        "a chat message to a bare JID reaches the available resource, from the sender's full JID",
        (LI, Pair),
        &[
            // Priority 1: the one highest-priority resource of B (other cases' are at 0).
            b("<presence><priority>1</priority></presence>"),
            Act::Sync(B),
            a("<message to='{b}' type='chat' id='m1'><body>hi</body></message>"),
        ],
        X::Stanza {
            on: B,
            name: "message",
            attr: "from",
            value: "{a_full}",
            kind: Some("chat"),
        },
        input(
            "<message to='{b}' type='chat' id='m1'><body>hi</body></message>",
            "",
        ),
    ),
    case(
        38,
        "iq.to-full",
        "RFC 6121 §8.5.3.1",
        None,
        "an IQ to a connected full JID is delivered to that resource",
        (LI, Pair),
        &[
            b("<presence/>"),
            Act::Sync(B),
            a("<iq type='get' id='q1' to='{b_full}'><query xmlns='urn:example:q'/></iq>"),
        ],
        X::Stanza {
            on: B,
            name: "iq",
            attr: "from",
            value: "{a_full}",
            kind: Some("get"),
        },
        input(
            "<iq type='get' id='q1' to='{b_full}'><query xmlns='urn:example:q'/></iq>",
            "",
        ),
    ),
    // ----- closing (RFC 6120 §4.4) -----
    case(
        39,
        "close.handshake",
        "RFC 6120 §4.4",
        None,
        "the server answers our </stream:stream> with its own",
        (LS, Bound),
        &[a("</stream:stream>")],
        X::StreamEnd,
        output("</stream:stream>", ""),
    ),
    case(
        41,
        "stream.unsupported-first-level",
        "RFC 6120 §4.9.3.24",
        Some("established.unsupported"),
        "a first-level element the server does not support is unsupported-stanza-type, never ignored",
        (LS, Bound),
        &[a("<frobnicate xmlns='urn:example:conformance'/>")],
        X::StreamError(StreamErrorCondition::UnsupportedStanzaType),
        input("<frobnicate xmlns='urn:example:conformance'/>", ""),
    ),
    // ----- stream management (XEP-0198; the case does not apply where it is not offered) -----
    case(
        42,
        "sm.enable-before-bind",
        "XEP-0198 §3",
        Some("sm.enable-early"),
        "<enable/> before resource binding does not enable stream management: <failed/> (§6: \
         errors are recoverable), or a stream error (misuse may end the stream)",
        (LS, Authenticated),
        &[a("<enable xmlns='urn:xmpp:sm:3'/>")],
        X::Either(&X::SmFailed(None), &X::AnyStreamError),
        output("failed", "enabled"),
    ),
    case(
        43,
        "sm.enable-twice",
        "XEP-0198 §3",
        Some("sm.enable"),
        "a second <enable/> is refused: a stream error (SHOULD), or <failed><unexpected-request/> \
         (§6)",
        (LS, Managed),
        &[a("<enable xmlns='urn:xmpp:sm:3'/>")],
        X::Either(&X::AnyStreamError, &X::SmFailed(Some("unexpected-request"))),
        output("failed", "enabled"),
    ),
    case(
        44,
        "sm.ack-count",
        "XEP-0198 §4",
        Some("sm.request"),
        "<r/> is answered with <a/> whose h counts the stanzas handled since <enable/>",
        (LS, Managed),
        &[
            a("<iq type='get' id='p1' to='{domain}'><ping xmlns='urn:xmpp:ping'/></iq>"),
            a("<iq type='get' id='p2' to='{domain}'><ping xmlns='urn:xmpp:ping'/></iq>"),
            a("<r xmlns='urn:xmpp:sm:3'/>"),
        ],
        X::SmAck(2),
        output("h='2'", "h='3'"),
    ),
    case(
        45,
        "sm.h-too-high",
        "XEP-0198 §4",
        Some("sm.answer"),
        "an <a/> acknowledging more than was sent ends the stream: undefined-condition with \
         <handled-count-too-high/>",
        (LS, Managed),
        &[a("<a xmlns='urn:xmpp:sm:3' h='1000'/>")],
        X::StreamErrorWith(
            StreamErrorCondition::UndefinedCondition,
            "handled-count-too-high",
        ),
        output("handled-count-too-high", "conformance-broken"),
    ),
    case(
        46,
        "sm.resume-unknown",
        "XEP-0198 §5",
        Some("sm.resume"),
        "<resume/> naming a session the server does not know is <failed><item-not-found/>",
        (LI, Authenticated),
        &[a(
            "<resume xmlns='urn:xmpp:sm:3' previd='conformance-no-such-session' h='0'/>",
        )],
        X::SmFailed(Some("item-not-found")),
        output("item-not-found", "undefined-condition"),
    ),
    // ----- components (XEP-0114; the checker plays the component) -----
    case(
        47,
        "component.unknown-domain",
        "RFC 6120 §4.9.3.6 (XEP-0114 §3)",
        Some("component.accept-header"),
        "a component stream to a domain the server does not serve as a component is host-unknown",
        (LS, ComponentConnected),
        &[a(component_header!("conformance-unknown.invalid"))],
        X::StreamError(StreamErrorCondition::HostUnknown),
        output("host-unknown", "undefined-condition"),
    ),
    case(
        48,
        "component.wrong-secret",
        "XEP-0114 §3",
        Some("component.verify"),
        "a handshake that does not prove the shared secret is not-authorized",
        (LS, ComponentConnected),
        &[
            a(component_header!("{component}")),
            a("<handshake>0000000000000000000000000000000000000000</handshake>"),
        ],
        X::StreamError(StreamErrorCondition::NotAuthorized),
        output("not-authorized", "undefined-condition"),
    ),
    case(
        49,
        "component.stanza-before-handshake",
        "RFC 6120 §4.9.3.12 (XEP-0114 §3)",
        None,
        "a stanza before the handshake is not-authorized",
        (LS, ComponentConnected),
        &[
            a(component_header!("{component}")),
            a("<message from='{component}' to='{a}' id='c1'><body>hi</body></message>"),
        ],
        X::StreamError(StreamErrorCondition::NotAuthorized),
        output("not-authorized", "undefined-condition"),
    ),
    case(
        50,
        "component.foreign-from",
        "RFC 6120 §4.9.3.9 (XEP-0114 §3)",
        Some("component.inbound-stanza"),
        "a stanza from a domain that is not the component's is invalid-from",
        (LS, Component),
        &[a(
            "<message from='{a}' to='{a}' id='c1'><body>hi</body></message>",
        )],
        X::StreamError(StreamErrorCondition::InvalidFrom),
        output("invalid-from", "undefined-condition"),
    ),
    // ----- server-to-server (RFC 6120 §13, XEP-0220; the checker plays a remote server) -----
    case(
        51,
        "s2s.client-namespace",
        "RFC 6120 §4.9.3.10",
        Some("s2s.header-from-initiating"),
        "a jabber:client stream on the server-to-server port is invalid-namespace",
        (LS, S2sConnected),
        &[a(s2s_header!(
            "xmlns='jabber:client' from='checker.test' to='{domain}'"
        ))],
        X::StreamError(StreamErrorCondition::InvalidNamespace),
        output("invalid-namespace", "undefined-condition"),
    ),
    case(
        52,
        "s2s.unknown-to",
        "RFC 6120 §4.9.3.6",
        Some("s2s.header-from-initiating"),
        "a server-to-server stream to a domain the server does not serve is host-unknown",
        (LS, S2sConnected),
        &[a(s2s_header!(
            "xmlns='jabber:server' from='checker.test' to='conformance-unknown.invalid'"
        ))],
        X::StreamError(StreamErrorCondition::HostUnknown),
        output("host-unknown", "undefined-condition"),
    ),
    case(
        59,
        "s2s.missing-to",
        "RFC 6120 §4.7.2, §4.9.3.6",
        Some("s2s.header-from-initiating"),
        "a server-to-server header with no to names no domain the server serves: host-unknown",
        (LS, S2sConnected),
        &[a(s2s_header!("xmlns='jabber:server' from='checker.test'"))],
        X::StreamError(StreamErrorCondition::HostUnknown),
        output("host-unknown", "undefined-condition"),
    ),
    case(
        60,
        "s2s.from-not-domain",
        "RFC 6120 §4.7.1, §4.9.3.9",
        Some("s2s.header-from-initiating"),
        "a server-to-server header whose from is not a domain (a JID with a localpart) is \
         invalid-from",
        (LS, S2sConnected),
        &[a(s2s_header!(
            "xmlns='jabber:server' from='someone@checker.test' to='{domain}'"
        ))],
        X::StreamError(StreamErrorCondition::InvalidFrom),
        output("invalid-from", "undefined-condition"),
    ),
    case(
        53,
        "s2s.stanza-before-auth",
        "RFC 6120 §4.9.3.12",
        None,
        "a stanza from a remote server that has not authenticated is not-authorized",
        (LS, S2sConnected),
        &[
            a(s2s_header!(
                "xmlns='jabber:server' from='checker.test' to='{domain}'"
            )),
            a("<message from='someone@checker.test' to='{a}' id='c1'><body>hi</body></message>"),
        ],
        X::StreamError(StreamErrorCondition::NotAuthorized),
        output("not-authorized", "undefined-condition"),
    ),
    case(
        54,
        "s2s.verify-unknown-id",
        "XEP-0220 §2.1.2, §2.4",
        Some("s2s.dialback-verify"),
        "a dialback verification for a stream id the server never issued is answered invalid",
        (LS, S2sConnected),
        &[
            a(s2s_header!(
                "xmlns='jabber:server' from='checker.test' to='{domain}'"
            )),
            a(
                "<db:verify from='checker.test' to='{domain}' id='conformance-no-such-stream'>\
               0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef</db:verify>",
            ),
        ],
        X::Dialback("verify", "invalid"),
        output("type='invalid'", "type='valid'"),
    ),
    case(
        55,
        "s2s.external-before-tls",
        "RFC 6120 §6.5.4, §13.8",
        Some("s2s.external"),
        "SASL EXTERNAL before TLS is encryption-required (or invalid-mechanism: it is not offered)",
        (LS, S2sConnected),
        &[
            a(s2s_header!(
                "xmlns='jabber:server' from='checker.test' to='{domain}'"
            )),
            a(concat!("<auth mechanism='EXTERNAL' ", sasl!(">=</auth>"))),
        ],
        X::Either(
            &X::SaslFailure("encryption-required"),
            &X::SaslFailure("invalid-mechanism"),
        ),
        output("<encryption-required", "<undefined-condition"),
    ),
    // ----- server-to-server after authentication (the checker is `{remote}`, by EXTERNAL) -----
    case(
        61,
        "s2s.foreign-from",
        "RFC 6120 §4.9.3.9, §8.1.2.1",
        Some("s2s.inbound-stanza"),
        "a stanza whose from is outside the domain the remote server authenticated as is \
         invalid-from",
        (LS, S2sAuthenticated),
        &[a(
            "<message from='someone@conformance-other.invalid' to='{a}' id='c1'>\
             <body>hi</body></message>",
        )],
        X::StreamError(StreamErrorCondition::InvalidFrom),
        output("invalid-from", "undefined-condition"),
    ),
    case(
        62,
        "s2s.stanza-without-to",
        "RFC 6120 §4.9.3.7, §8.1.1.1",
        Some("s2s.inbound-stanza"),
        "a stanza between servers without a to is improper-addressing",
        (LS, S2sAuthenticated),
        &[a(
            "<message from='someone@{remote}' id='c1'><body>hi</body></message>",
        )],
        X::StreamError(StreamErrorCondition::ImproperAddressing),
        output("improper-addressing", "undefined-condition"),
    ),
    case(
        63,
        "s2s.verify-established",
        "XEP-0220 §2.1.2, §2.4",
        Some("s2s.dialback-verify-established"),
        "a dialback verification on an authenticated stream, for a stream id the server never \
         issued, is answered invalid",
        (LS, S2sAuthenticated),
        &[a(
            "<db:verify from='{remote}' to='{domain}' id='conformance-no-such-stream'>\
             0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef</db:verify>",
        )],
        X::Dialback("verify", "invalid"),
        output("type='invalid'", "type='valid'"),
    ),
    // ----- XMPP over WebSocket (RFC 7395) -----
    case(
        56,
        "ws.stream-header",
        "RFC 7395 §3.3.2, §3.3.3",
        None,
        "a TCP stream header instead of <open/> is refused: invalid-namespace (the framing \
         namespace is required) or not-well-formed (a frame must be a whole document)",
        (LS, WsConnected),
        &[a(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
             to='{domain}' version='1.0'>",
        )],
        X::Either(
            &X::StreamError(StreamErrorCondition::InvalidNamespace),
            &X::StreamError(StreamErrorCondition::NotWellFormed),
        ),
        output("<invalid-namespace", "<undefined-condition"),
    ),
    case(
        57,
        "ws.open-namespace",
        "RFC 7395 §3.3.2 (RFC 6120 §4.9.3.10)",
        None,
        "an <open/> outside the framing namespace is invalid-namespace",
        (LS, WsConnected),
        &[a(
            "<open xmlns='urn:example:wrong' to='{domain}' version='1.0'/>",
        )],
        X::StreamError(StreamErrorCondition::InvalidNamespace),
        output("invalid-namespace", "undefined-condition"),
    ),
    case(
        58,
        "ws.partial-element",
        "RFC 7395 §3.3.3 (RFC 6120 §4.9.3.13)",
        None,
        "a message that is not a whole XML element is not-well-formed",
        (LS, WsOpened),
        &[a("<message xmlns='jabber:client' to='{a}'><body>x")],
        X::StreamError(StreamErrorCondition::NotWellFormed),
        output("not-well-formed", "undefined-condition"),
    ),
    // ----- in-band registration (XEP-0077) -----
    case(
        64,
        "register.off",
        "XEP-0077 §3.1, §8",
        Some("register.request"),
        "with in-band registration off (our server's default), a registration request before \
         authentication is refused: service-unavailable, or the stream error RFC 6120 gives \
         data before authentication",
        (LS, Secured),
        &[a(
            "<iq type='get' id='c1'><query xmlns='jabber:iq:register'/></iq>",
        )],
        X::Either(
            &X::StanzaError(StanzaErrorCondition::ServiceUnavailable),
            &X::AnyStreamError,
        ),
        output("<service-unavailable", "<undefined-condition"),
    ),
];

/// The values of a case's placeholders.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    /// The server's domain.
    pub domain: String,
    /// Account A's bare JID.
    pub a: String,
    /// Account A's full JID once bound.
    pub a_full: String,
    /// Account B's bare JID.
    pub b: String,
    /// Account B's full JID once bound.
    pub b_full: String,
    /// Account A's PLAIN message (base64), right password.
    pub plain: String,
    /// The same with a wrong password.
    pub plain_wrong: String,
    /// Account A's SCRAM client-first message (base64, `n,,n=USER,r=NONCE`).
    pub scram_first: String,
    /// The resource account A's first connection bound.
    pub resource: String,
    /// The XEP-0114 component's domain (the component cases).
    pub component: String,
    /// The domain the checker authenticated as on a server-to-server stream
    /// ([`Phase::S2sAuthenticated`]).
    pub remote: String,
}

impl Vars {
    /// Fill `text`'s placeholders.
    pub fn fill(&self, text: &str) -> String {
        text.replace("{domain}", &self.domain)
            .replace("{a_full}", &self.a_full)
            .replace("{b_full}", &self.b_full)
            .replace("{a}", &self.a)
            .replace("{b}", &self.b)
            .replace("{plain_wrong}", &self.plain_wrong)
            .replace("{plain}", &self.plain)
            .replace("{scram_first}", &self.scram_first)
            .replace("{resource}", &self.resource)
            .replace("{component}", &self.component)
            .replace("{remote}", &self.remote)
    }
}

/// Parses what a server sends during a case into a [`Seen`].
#[derive(Debug)]
pub struct Observer {
    parser: StreamParser,
    seen: Seen,
}

impl Observer {
    /// An observer for a stream whose header the server already sent (the parser starts
    /// inside a `jabber:client` stream).
    pub fn inside_stream() -> Self {
        let mut parser = StreamParser::new();
        parser.feed(
            b"<stream:stream xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams'>",
        );
        let _ = parser.next_event();
        Observer {
            parser,
            seen: Seen::default(),
        }
    }

    /// An observer for a server-to-server stream whose header the server already sent (the
    /// parser starts inside a `jabber:server` stream declaring the dialback prefix `db`).
    pub fn inside_server_stream() -> Self {
        let mut parser = StreamParser::new();
        parser.feed(
            b"<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' \
              xmlns:stream='http://etherx.jabber.org/streams'>",
        );
        let _ = parser.next_event();
        Observer {
            parser,
            seen: Seen::default(),
        }
    }

    /// An observer for a stream whose header is still to come.
    pub fn before_header() -> Self {
        Observer {
            parser: StreamParser::new(),
            seen: Seen::default(),
        }
    }

    /// Feed bytes from the server.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.seen.garbage.is_some() {
            return;
        }
        self.parser.feed(bytes);
        loop {
            match self.parser.next_event() {
                Ok(Some(XmlEvent::Element(element))) => self.seen.elements.push(element),
                Ok(Some(XmlEvent::StreamEnd)) => self.seen.stream_end = true,
                Ok(Some(XmlEvent::StreamStart(header))) => self.seen.stream_id = header.id,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    self.seen.garbage = Some(e.to_string());
                    break;
                }
            }
        }
    }

    /// The connection closed.
    pub fn eof(&mut self) {
        self.seen.eof = true;
    }

    /// What was seen.
    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    /// Record raw bytes (kept for [`Expect::ProceedAlone`]-style reports).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.seen.raw.extend_from_slice(bytes);
    }
}

/// The XEP-0114 §3 handshake a component sends on the stream `stream_id` with `secret`
/// (lowercase hex SHA-1 of the id and the secret), for runners that play a component.
pub fn component_handshake(stream_id: &str, secret: &str) -> String {
    crate::steps::component::handshake_digest(stream_id, secret)
}

/// The case with this number.
pub fn by_id(id: u16) -> Option<&'static Case> {
    CASES.iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_unique() {
        let mut ids: Vec<_> = CASES.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CASES.len());
        let mut names: Vec<_> = CASES.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CASES.len());
    }

    #[test]
    fn every_named_rule_exists() {
        for case in CASES {
            if let Some(rule) = case.rule {
                assert!(
                    crate::rules::RULES.iter().any(|r| r.name == rule),
                    "{}: no rule {rule}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn a_silent_server_fails_every_case_but_negotiation() {
        let vars = Vars::default();
        for case in CASES {
            let verdict = case.expect.judge(&Seen::default(), &vars, true);
            assert_eq!(
                verdict == Verdict::Pass,
                case.expect == Expect::Negotiated,
                "{}",
                case.name
            );
        }
    }
}
