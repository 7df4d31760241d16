//! Server-to-server streams (RFC 6120 §13), both ends in memory: STARTTLS (TLS faked), SASL
//! EXTERNAL with RFC 6125 names, dialback (XEP-0220) with the host's verification, several
//! domain pairs on one connection, and the hostile cases with their exact errors.
#![allow(clippy::unwrap_used, clippy::panic)]

use core::time::Duration;

use minidom::Element;
use xmpp_stream::dialback::{DialbackSecret, Domain, StreamId};
use xmpp_stream::identity::PresentedId;
use xmpp_stream::{
    AnyStream, BareJid, CloseReason, DialbackOutcome, Event, Instant, Output, S2sAuthMethod,
    S2sConfig, S2sInitiatingStream, S2sReceivingStream, SeededEntropy, StreamErrorCondition,
    TlsPolicy, Transport,
};

const SECRET: &[u8] = b"a.example's dialback secret";

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn config(domains: &[&str], dialback: bool) -> S2sConfig {
    let mut config = S2sConfig::new(domains.iter().map(|d| jid(d)).collect());
    if dialback {
        config.dialback_secret = Some(DialbackSecret::new(SECRET));
    }
    config
}

/// Our initiating end for a.example -> b.example, and b.example's receiving end.
fn ends(initiating: S2sConfig, receiving: S2sConfig, certificate_of_a: &str) -> [AnyStream; 2] {
    let mut out = S2sInitiatingStream::new(
        initiating,
        jid("a.example"),
        jid("b.example"),
        SeededEntropy::new(1),
    );
    out.set_peer_identities(vec![PresentedId::Dns("b.example".into())]);
    let mut inc = S2sReceivingStream::new(receiving, SeededEntropy::new(2));
    if !certificate_of_a.is_empty() {
        inc.set_peer_identities(vec![PresentedId::Dns(certificate_of_a.into())]);
    }
    let mut ends: [AnyStream; 2] = [out.into(), inc.into()];
    for end in &mut ends {
        end.start(Instant::ZERO, Transport::Plain).unwrap();
    }
    ends
}

/// The host of the receiving end: it verifies dialback keys as the authoritative server of
/// a.example would, with a.example's secret (or answers `outcome` when given).
struct Host {
    outcome: Option<DialbackOutcome>,
    answer: bool,
}

/// Moves bytes until both ends are quiet; returns each end's events.
fn drive(ends: &mut [AnyStream; 2], host: &Host, now: Instant) -> [Vec<Event>; 2] {
    xmpp_stream::pair::drive_ends(ends, now, |originating, receiving, id, key| {
        host.answer.then(|| {
            host.outcome.clone().unwrap_or_else(|| {
                xmpp_stream::pair::authoritative_answer(
                    &DialbackSecret::new(SECRET),
                    originating,
                    receiving,
                    id,
                    key,
                )
            })
        })
    })
}

const ANSWER: Host = Host {
    outcome: None,
    answer: true,
};

fn authenticated(events: &[Event]) -> Vec<(String, String, S2sAuthMethod)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ServerAuthenticated {
                local,
                remote,
                method,
            } => Some((local.to_string(), remote.to_string(), *method)),
            _ => None,
        })
        .collect()
}

fn stanza(xml: &str) -> Element {
    xml.parse().unwrap()
}

fn closed_with(events: &[Event]) -> Option<StreamErrorCondition> {
    events.iter().find_map(|e| match e {
        Event::Closed {
            reason: CloseReason::ProtocolError(error),
        } => Some(error.condition()),
        _ => None,
    })
}

#[test]
fn external_authenticates_and_stanzas_flow() {
    let mut ends = ends(
        config(&["a.example"], false),
        config(&["b.example"], false),
        "a.example",
    );
    let [out, inc] = drive(&mut ends, &ANSWER, Instant::ZERO);
    let pair = (
        "a.example".to_owned(),
        "b.example".to_owned(),
        S2sAuthMethod::SaslExternal,
    );
    assert_eq!(authenticated(&out), vec![pair.clone()]);
    assert_eq!(
        authenticated(&inc),
        vec![(
            "b.example".to_owned(),
            "a.example".to_owned(),
            S2sAuthMethod::SaslExternal
        )]
    );
    assert!(
        ends.iter()
            .all(|e| e.is_negotiated() && e.flags().contains(xmpp_stream::SessionFlags::SECURE))
    );

    // A message from a user of a.example to one of b.example, in jabber:client as a hub
    // routes it: it arrives in jabber:server.
    let message = stanza(
        "<message xmlns='jabber:client' from='alice@a.example/x' to='bob@b.example' id='m1'>\
         <body>hi</body></message>",
    );
    ends[0].send_stanza(Instant::ZERO, &message).unwrap();
    let [_, inc] = drive(&mut ends, &ANSWER, Instant::ZERO);
    let got: Vec<&Element> = inc
        .iter()
        .filter_map(|e| match e {
            Event::Stanza(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 1, "{inc:?}");
    assert!(got[0].is("message", "jabber:server"));
    assert_eq!(got[0].attr("from"), Some("alice@a.example/x"));

    // Not a pair of this stream: refused to the host, nothing sent.
    let foreign =
        stanza("<message xmlns='jabber:client' from='eve@c.example' to='bob@b.example'/>");
    assert!(ends[0].send_stanza(Instant::ZERO, &foreign).is_err());
}

#[test]
fn dialback_authenticates_and_stanzas_flow() {
    // No certificate of a.example the receiving end can check: no EXTERNAL, dialback.
    let mut ends = ends(
        config(&["a.example"], true),
        config(&["b.example"], true),
        "",
    );
    let [out, inc] = drive(&mut ends, &ANSWER, Instant::ZERO);
    assert!(
        inc.iter()
            .any(|e| matches!(e, Event::DialbackVerify { .. })),
        "{inc:?}"
    );
    assert_eq!(
        authenticated(&out),
        vec![(
            "a.example".to_owned(),
            "b.example".to_owned(),
            S2sAuthMethod::Dialback
        )]
    );
    assert!(ends.iter().all(AnyStream::is_negotiated));
    let message =
        stanza("<message xmlns='jabber:server' from='alice@a.example' to='bob@b.example'/>");
    ends[0].send_stanza(Instant::ZERO, &message).unwrap();
    let [_, inc] = drive(&mut ends, &ANSWER, Instant::ZERO);
    assert!(inc.iter().any(|e| matches!(e, Event::Stanza(_))), "{inc:?}");
}

#[test]
fn a_certificate_for_another_domain_falls_back_to_dialback() {
    // The receiving end offers no EXTERNAL (its certificate check fails): dialback.
    let mut ends = ends(
        config(&["a.example"], true),
        config(&["b.example"], true),
        "evil.example",
    );
    let [out, _] = drive(&mut ends, &ANSWER, Instant::ZERO);
    assert_eq!(authenticated(&out)[0].2, S2sAuthMethod::Dialback);

    // A peer that offers EXTERNAL and then refuses it (as ejabberd does when it cannot verify
    // us): the initiating end falls back to dialback.
    let mut out = S2sInitiatingStream::new(
        config(&["a.example"], true),
        jid("a.example"),
        jid("b.example"),
        SeededEntropy::new(1),
    );
    out.start(Instant::ZERO, Transport::Tls(Vec::new()))
        .unwrap();
    while out.poll_output().is_some() {}
    let header = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
        xmlns:db='jabber:server:dialback' from='b.example' to='a.example' id='s1' version='1.0'>";
    let features = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
        <mechanism>EXTERNAL</mechanism></mechanisms><dialback xmlns='urn:xmpp:features:dialback'>\
        <errors/></dialback></stream:features>";
    out.handle_input(Instant::ZERO, header.as_bytes()).unwrap();
    out.handle_input(Instant::ZERO, features.as_bytes())
        .unwrap();
    let sent = transmitted(&mut out.poll_output_all());
    assert!(sent.contains("mechanism='EXTERNAL'"), "{sent}");
    out.handle_input(
        Instant::ZERO,
        b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
    )
    .unwrap();
    let sent = transmitted(&mut out.poll_output_all());
    assert!(
        sent.contains("<db:result") || sent.contains("<result xmlns='jabber:server:dialback'"),
        "{sent}"
    );

    // The receiving end refuses EXTERNAL for a certificate that names another domain.
    let mut inc = S2sReceivingStream::new(config(&["b.example"], true), SeededEntropy::new(2));
    inc.set_peer_identities(vec![PresentedId::Dns("evil.example".into())]);
    inc.start(Instant::ZERO, Transport::Tls(Vec::new()))
        .unwrap();
    let (sent, _) = feed(
        &mut inc,
        &[&receiving_header("a.example", "b.example"), AUTH_EXTERNAL],
    );
    assert!(sent.contains("<not-authorized/>"), "{sent}");
    assert!(
        !sent.contains("<mechanism>EXTERNAL"),
        "not even offered: {sent}"
    );
}

/// Every pending output, in order.
trait DrainAll {
    fn poll_output_all(&mut self) -> Vec<Output>;
}

impl DrainAll for S2sInitiatingStream {
    fn poll_output_all(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.poll_output()).collect()
    }
}

fn transmitted(outputs: &mut Vec<Output>) -> String {
    let mut wire = Vec::new();
    for output in outputs.drain(..) {
        if let Output::Transmit(bytes) = output {
            wire.extend(bytes);
        }
    }
    String::from_utf8(wire).unwrap()
}

const AUTH_EXTERNAL: &str =
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>";

fn receiving_header(from: &str, to: &str) -> String {
    format!(
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
         xmlns:db='jabber:server:dialback' from='{from}' to='{to}' version='1.0'>"
    )
}

/// Feed raw inputs to a receiving end; returns what it wrote and its events.
fn feed(inc: &mut S2sReceivingStream, inputs: &[&str]) -> (String, Vec<Event>) {
    let (mut wire, mut events) = (Vec::new(), Vec::new());
    for input in inputs {
        let _ = inc.handle_input(Instant::ZERO, input.as_bytes());
        while let Some(output) = inc.poll_output() {
            match output {
                Output::Transmit(bytes) => wire.extend(bytes),
                Output::Event(event) => events.push(event),
                _ => {}
            }
        }
    }
    (String::from_utf8(wire).unwrap(), events)
}

/// A receiving end for b.example on direct TLS, dialback on.
fn receiving() -> S2sReceivingStream {
    let mut inc = S2sReceivingStream::new(
        config(&["b.example", "b2.example"], true),
        SeededEntropy::new(2),
    );
    inc.start(Instant::ZERO, Transport::Tls(Vec::new()))
        .unwrap();
    inc
}

#[test]
fn header_checks_on_the_receiving_end() {
    let cases = [
        (
            receiving_header("a.example", "b.example").replace("jabber:server'", "jabber:client'"),
            StreamErrorCondition::InvalidNamespace,
        ),
        (
            receiving_header("a.example", "c.example"),
            StreamErrorCondition::HostUnknown,
        ),
        (
            receiving_header("a@@example", "b.example"),
            StreamErrorCondition::InvalidFrom,
        ),
        (
            receiving_header("alice@a.example", "b.example"),
            StreamErrorCondition::InvalidFrom,
        ),
        (
            receiving_header("a.example", "b.example").replace(" version='1.0'", ""),
            StreamErrorCondition::UnsupportedVersion,
        ),
    ];
    for (header, condition) in cases {
        let (sent, events) = feed(&mut receiving(), &[&header]);
        assert_eq!(closed_with(&events), Some(condition), "{header}\n{sent}");
        // Our header first, and never naming a domain we do not serve.
        assert!(sent.contains("<stream:stream"), "{sent}");
        assert!(!sent.contains("from='c.example'"), "{sent}");
    }
    // The control: the same header, well-formed, opens the stream.
    let (_, events) = feed(
        &mut receiving(),
        &[&receiving_header("a.example", "b.example")],
    );
    assert_eq!(closed_with(&events), None);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::StreamOpened { .. }))
    );
}

/// The `from` of the first stream header in `sent`, if any.
fn header_from(sent: &str) -> Option<&str> {
    let start = sent.find("<stream:stream")?;
    let header = &sent[start..start + sent[start..].find('>')?];
    let value = &header[header.find(" from='")? + 7..];
    Some(&value[..value.find('\'')?])
}

#[test]
fn a_refusing_receiving_end_names_the_domain_it_was_asked_for() {
    // RFC 6120 §4.7.1, §4.9.1.2: the header sent before the error comes `from` our domain
    // whenever the peer's `to` named one of them (here the second of two).
    let cases = [
        (
            receiving_header("a.example", "b2.example").replace("jabber:server'", "jabber:client'"),
            StreamErrorCondition::InvalidNamespace,
        ),
        (
            receiving_header("a@@example", "b2.example"),
            StreamErrorCondition::InvalidFrom,
        ),
        (
            receiving_header("a.example", "b2.example").replace(" version='1.0'", ""),
            StreamErrorCondition::UnsupportedVersion,
        ),
        // A `to` at our domain but not a bare domain: still refused, from that domain.
        (
            receiving_header("a.example", "alice@b2.example"),
            StreamErrorCondition::HostUnknown,
        ),
        (
            receiving_header("a.example", "b2.example/x"),
            StreamErrorCondition::HostUnknown,
        ),
    ];
    for (header, condition) in cases {
        let (sent, events) = feed(&mut receiving(), &[&header]);
        assert_eq!(closed_with(&events), Some(condition), "{header}\n{sent}");
        assert_eq!(header_from(&sent), Some("b2.example"), "{header}\n{sent}");
    }
    // Of several domains, none named: which one is unknown, so no `from`.
    let (sent, events) = feed(
        &mut receiving(),
        &[&receiving_header("a.example", "c.example")],
    );
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::HostUnknown)
    );
    assert!(sent.contains("<stream:stream"), "{sent}");
    assert_eq!(header_from(&sent), None, "{sent}");

    // A server of one domain knows its domain whatever the peer sent (RFC 6120 §4.9.3.6's
    // example): the refusals and the header sent before an error that precedes the peer's.
    let single = || {
        let mut inc = S2sReceivingStream::new(config(&["b.example"], true), SeededEntropy::new(2));
        inc.start(Instant::ZERO, Transport::Tls(Vec::new()))
            .unwrap();
        inc
    };
    for header in [
        receiving_header("a.example", "c.example"),
        receiving_header("a.example", "alice@b.example"),
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
         from='a.example' version='1.0'>"
            .to_owned(),
        "<not-a-stream/>".to_owned(),
    ] {
        let (sent, events) = feed(&mut single(), &[&header]);
        assert!(closed_with(&events).is_some(), "{header}\n{sent}");
        assert_eq!(header_from(&sent), Some("b.example"), "{header}\n{sent}");
    }
}

#[test]
fn external_before_tls_is_encryption_required() {
    let mut inc = S2sReceivingStream::new(config(&["b.example"], true), SeededEntropy::new(2));
    inc.set_peer_identities(vec![PresentedId::Dns("a.example".into())]);
    let mut cfg_plain = config(&["b.example"], true);
    cfg_plain.tls = TlsPolicy::Optional;
    let mut inc_plain = S2sReceivingStream::new(cfg_plain, SeededEntropy::new(2));
    inc_plain.set_peer_identities(vec![PresentedId::Dns("a.example".into())]);
    for stream in [&mut inc, &mut inc_plain] {
        stream.start(Instant::ZERO, Transport::Plain).unwrap();
        let (sent, _) = feed(
            stream,
            &[&receiving_header("a.example", "b.example"), AUTH_EXTERNAL],
        );
        assert!(sent.contains("<encryption-required/>"), "{sent}");
        assert!(stream.pairs().is_empty());
    }
}

fn db_result(from: &str, to: &str, key: &str) -> String {
    format!("<db:result from='{from}' to='{to}'>{key}</db:result>")
}

#[test]
fn dialback_refusals_answer_with_the_exact_error() {
    // To a domain we do not serve: item-not-found, the stream goes on.
    let (sent, events) = feed(
        &mut receiving(),
        &[
            &receiving_header("a.example", "b.example"),
            &db_result("a.example", "c.example", "abc"),
        ],
    );
    assert!(
        sent.contains("type='error'") && sent.contains("<item-not-found"),
        "{sent}"
    );
    assert_eq!(closed_with(&events), None);

    // Without TLS (not allowed by default): policy-violation.
    let mut cfg = config(&["b.example"], true);
    cfg.tls = TlsPolicy::Optional;
    let mut inc = S2sReceivingStream::new(cfg, SeededEntropy::new(2));
    inc.start(Instant::ZERO, Transport::Plain).unwrap();
    let (sent, events) = feed(
        &mut inc,
        &[
            &receiving_header("a.example", "b.example"),
            &db_result("a.example", "b.example", "abc"),
        ],
    );
    assert!(sent.contains("<policy-violation"), "{sent}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DialbackVerify { .. }))
    );

    // A second request for a pair still pending, and more than the bound: policy-violation.
    let mut inc = receiving();
    let (sent, events) = feed(
        &mut inc,
        &[
            &receiving_header("a.example", "b.example"),
            &db_result("a.example", "b.example", "abc"),
            &db_result("a.example", "b.example", "abc"),
        ],
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::DialbackVerify { .. }))
            .count(),
        1
    );
    assert!(sent.contains("<policy-violation"), "{sent}");
}

#[test]
fn an_unanswered_verification_times_out() {
    let mut inc = receiving();
    let (_, events) = feed(
        &mut inc,
        &[
            &receiving_header("a.example", "b.example"),
            &db_result("a.example", "b.example", "abc"),
        ],
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::DialbackVerify { .. }))
    );
    let deadline = inc.poll_timeout().unwrap();
    assert!(deadline <= Instant::ZERO + Duration::from_secs(30));
    inc.handle_timeout(deadline);
    let mut wire = Vec::new();
    while let Some(output) = inc.poll_output() {
        if let Output::Transmit(bytes) = output {
            wire.extend(bytes);
        }
    }
    let sent = String::from_utf8(wire).unwrap();
    assert!(
        sent.contains("type='error'") && sent.contains("<remote-server-timeout"),
        "{sent}"
    );
    assert!(inc.pairs().is_empty());
    // The host answering late finds nothing pending.
    assert!(
        inc.dialback_verified(
            deadline,
            &jid("a.example"),
            &jid("b.example"),
            DialbackOutcome::Valid
        )
        .is_err()
    );
}

#[test]
fn an_invalid_key_authenticates_nothing() {
    let host = Host {
        outcome: Some(DialbackOutcome::Invalid),
        answer: true,
    };
    let mut ends = ends(
        config(&["a.example"], true),
        config(&["b.example"], true),
        "",
    );
    let [out, inc] = drive(&mut ends, &host, Instant::ZERO);
    assert!(authenticated(&out).is_empty() && authenticated(&inc).is_empty());
    assert!(!ends[0].is_negotiated() && !ends[1].is_negotiated());
    // The initiating end gives up: its close, the peer's, then `Closed` with the reason.
    assert!(
        out.contains(&Event::Closed {
            reason: CloseReason::ServerNotAuthenticated
        }),
        "{out:?}"
    );
}

#[test]
fn a_second_domain_is_piggybacked() {
    let mut initiating = config(&["a.example", "a2.example"], true);
    initiating.sasl_external = false;
    let mut receiving = config(&["b.example"], true);
    receiving.sasl_external = false;
    let mut ends = ends(initiating, receiving, "");
    let _ = drive(&mut ends, &ANSWER, Instant::ZERO);
    let AnyStream::S2sInitiating(out) = &mut ends[0] else {
        unreachable!()
    };
    out.add_domain(Instant::ZERO, &jid("a2.example")).unwrap();
    assert!(
        out.add_domain(Instant::ZERO, &jid("c.example")).is_err(),
        "not ours"
    );
    let [events, _] = drive(&mut ends, &ANSWER, Instant::ZERO);
    assert_eq!(
        authenticated(&events),
        vec![(
            "a2.example".to_owned(),
            "b.example".to_owned(),
            S2sAuthMethod::Dialback
        )]
    );
    let AnyStream::S2sReceiving(inc) = &ends[1] else {
        unreachable!()
    };
    assert_eq!(inc.pairs().len(), 2);

    // A refused further pair leaves the stream and the first pair up.
    let host = Host {
        outcome: Some(DialbackOutcome::Invalid),
        answer: true,
    };
    let mut initiating = config(&["a.example", "a3.example"], true);
    initiating.sasl_external = false;
    let mut ends2 = ends_with(initiating);
    let _ = drive(&mut ends2, &ANSWER, Instant::ZERO);
    let AnyStream::S2sInitiating(out) = &mut ends2[0] else {
        unreachable!()
    };
    out.add_domain(Instant::ZERO, &jid("a3.example")).unwrap();
    let [events, _] = drive(&mut ends2, &host, Instant::ZERO);
    assert!(
        events.contains(&Event::ServerRefused {
            local: jid("a3.example"),
            remote: jid("b.example")
        }),
        "{events:?}"
    );
    assert!(ends2[0].is_negotiated());
}

fn ends_with(initiating: S2sConfig) -> [AnyStream; 2] {
    let mut receiving = config(&["b.example"], true);
    receiving.sasl_external = false;
    ends(initiating, receiving, "")
}

#[test]
fn stanzas_outside_the_authenticated_pairs_are_invalid_from() {
    let established = || {
        let mut ends = ends(
            config(&["a.example"], false),
            config(&["b.example", "b2.example"], false),
            "a.example",
        );
        let _ = drive(&mut ends, &ANSWER, Instant::ZERO);
        let [_, AnyStream::S2sReceiving(inc)] = ends else {
            unreachable!()
        };
        inc
    };
    let cases = [
        (
            "<message from='eve@c.example' to='bob@b.example'/>",
            StreamErrorCondition::InvalidFrom,
        ),
        // b2.example is ours, but the pair (b2.example, a.example) was never authenticated.
        (
            "<message from='alice@a.example' to='bob@b2.example'/>",
            StreamErrorCondition::InvalidFrom,
        ),
        (
            "<message from='alice@a.example' to='bob@z.example'/>",
            StreamErrorCondition::HostUnknown,
        ),
        (
            "<message to='bob@b.example'/>",
            StreamErrorCondition::ImproperAddressing,
        ),
    ];
    for (xml, condition) in cases {
        let mut inc = established();
        let (_, events) = feed(&mut inc, &[xml]);
        assert_eq!(closed_with(&events), Some(condition), "{xml}");
        assert!(
            !events.iter().any(|e| matches!(e, Event::Stanza(_))),
            "{xml}"
        );
    }
    // A malformed `to` is refused with jid-malformed, the stream goes on.
    let mut inc = established();
    let (sent, events) = feed(
        &mut inc,
        &["<message from='alice@a.example' to='a@@b' id='x'/>"],
    );
    assert!(sent.contains("jid-malformed"), "{sent}");
    assert_eq!(closed_with(&events), None);
}

#[test]
fn stanzas_against_the_direction_are_refused() {
    let mut ends = ends(
        config(&["a.example"], false),
        config(&["b.example"], false),
        "a.example",
    );
    let _ = drive(&mut ends, &ANSWER, Instant::ZERO);
    let AnyStream::S2sInitiating(out) = &mut ends[0] else {
        unreachable!()
    };
    let _ = out.handle_input(
        Instant::ZERO,
        b"<message from='bob@b.example' to='alice@a.example'/>",
    );
    let events = events_of(out);
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::UnsupportedStanzaType)
    );
    // And the receiving end has nothing to send stanzas with.
    let message =
        stanza("<message xmlns='jabber:server' from='bob@b.example' to='alice@a.example'/>");
    assert!(ends[1].send_stanza(Instant::ZERO, &message).is_err());
}

#[test]
fn db_verify_is_answered_with_our_secret() {
    // We are b.example's authoritative server; a receiving server (c.example) asks about a
    // key it was given on stream 'x1' for the pair b.example -> c.example.
    let secret = DialbackSecret::new(SECRET);
    let key = secret.key(
        &Domain::new("c.example").unwrap(),
        &Domain::new("b.example").unwrap(),
        &StreamId::new("x1").unwrap(),
    );
    let verify = |key: &str, to: &str| {
        format!("<db:verify from='c.example' to='{to}' id='x1'>{key}</db:verify>")
    };
    let header = receiving_header("c.example", "b.example");
    let (sent, _) = feed(
        &mut receiving(),
        &[&header, &verify(key.as_str(), "b.example")],
    );
    assert!(
        sent.contains("type='valid'") && sent.contains("id='x1'"),
        "{sent}"
    );
    let (sent, _) = feed(
        &mut receiving(),
        &[&header, &verify(&"0".repeat(64), "b.example")],
    );
    assert!(sent.contains("type='invalid'"), "{sent}");
    let (sent, _) = feed(
        &mut receiving(),
        &[&header, &verify(key.as_str(), "z.example")],
    );
    assert!(
        sent.contains("type='error'") && sent.contains("<item-not-found"),
        "{sent}"
    );
}

/// Ends that both want XEP-0288 bidi, authenticated by EXTERNAL (certificate of a.example).
fn bidi_ends(receiving_bidi: bool) -> [AnyStream; 2] {
    let mut initiating = config(&["a.example"], false);
    initiating.bidi = true;
    let mut receiving = config(&["b.example", "b2.example"], false);
    receiving.bidi = receiving_bidi;
    let mut ends = ends(initiating, receiving, "a.example");
    let _ = drive(&mut ends, &ANSWER, Instant::ZERO);
    assert!(ends.iter().all(AnyStream::is_negotiated));
    ends
}

fn stanzas(events: &[Event]) -> Vec<&Element> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Stanza(s) => Some(s),
            _ => None,
        })
        .collect()
}

#[test]
fn bidi_carries_stanzas_both_ways() {
    let mut ends = bidi_ends(true);
    let [AnyStream::S2sInitiating(out), AnyStream::S2sReceiving(inc)] = &ends else {
        unreachable!()
    };
    assert!(out.is_bidi() && inc.is_bidi());
    // The receiving end sends on the one connection, for the pair it authenticated.
    let reply = stanza(
        "<message xmlns='jabber:client' from='bob@b.example/y' to='alice@a.example' id='r1'/>",
    );
    ends[1].send_stanza(Instant::ZERO, &reply).unwrap();
    let [out, _] = drive(&mut ends, &ANSWER, Instant::ZERO);
    let got = stanzas(&out);
    assert_eq!(got.len(), 1, "{out:?}");
    assert!(got[0].is("message", "jabber:server"));
    assert_eq!(got[0].attr("id"), Some("r1"));
    // Not an authenticated pair: refused to the host.
    let foreign =
        stanza("<message xmlns='jabber:client' from='bob@b2.example' to='alice@a.example'/>");
    assert!(ends[1].send_stanza(Instant::ZERO, &foreign).is_err());
    // And the initiating end checks what arrives like a receiving end: invalid-from.
    let AnyStream::S2sInitiating(out) = &mut ends[0] else {
        unreachable!()
    };
    let _ = out.handle_input(
        Instant::ZERO,
        b"<message from='bob@b2.example' to='alice@a.example'/>",
    );
    let events = events_of(out);
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::InvalidFrom)
    );

    // A peer that does not offer bidi: none asked for, one way only.
    let mut ends = bidi_ends(false);
    let [AnyStream::S2sInitiating(out), AnyStream::S2sReceiving(inc)] = &ends else {
        unreachable!()
    };
    assert!(!out.is_bidi() && !inc.is_bidi());
    assert!(ends[1].send_stanza(Instant::ZERO, &reply).is_err());

    // A `<bidi/>` request we did not offer: the table's default before authentication.
    let mut inc = receiving();
    let (_, events) = feed(
        &mut inc,
        &[
            &receiving_header("a.example", "b.example"),
            "<bidi xmlns='urn:xmpp:bidi'/>",
        ],
    );
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::NotAuthorized)
    );
}

#[test]
fn a_certificate_naming_the_domain_skips_the_dialback_verification() {
    // XEP-0344 §2.4: the initiating end uses dialback (no EXTERNAL), the receiving end holds a
    // validated certificate naming a.example and a2.example: no authoritative server is asked
    // (the host here never answers), the pairs are valid at once, the piggybacked one too.
    let mut initiating = config(&["a.example", "a2.example", "a3.example"], true);
    initiating.sasl_external = false;
    let mut receiving = config(&["b.example"], true);
    receiving.sasl_external = false;
    let mut ends = ends(initiating, receiving, "a.example");
    let AnyStream::S2sReceiving(inc) = &mut ends[1] else {
        unreachable!()
    };
    inc.set_peer_identities(vec![
        PresentedId::Dns("a.example".into()),
        PresentedId::Dns("a2.example".into()),
    ]);
    let silent = Host {
        outcome: None,
        answer: false,
    };
    let [out, inc] = drive(&mut ends, &silent, Instant::ZERO);
    let asked = |events: &[Event]| {
        events
            .iter()
            .any(|e| matches!(e, Event::DialbackVerify { .. }))
    };
    assert!(!asked(&inc), "{inc:?}");
    assert_eq!(authenticated(&out)[0].2, S2sAuthMethod::Dialback);
    let AnyStream::S2sInitiating(out) = &mut ends[0] else {
        unreachable!()
    };
    out.add_domain(Instant::ZERO, &jid("a2.example")).unwrap();
    let [out, inc] = drive(&mut ends, &silent, Instant::ZERO);
    assert!(!asked(&inc));
    assert_eq!(authenticated(&out).len(), 1, "{out:?}");
    // a3.example is not in the certificate: dialback proper, the authoritative server asked.
    let AnyStream::S2sInitiating(out) = &mut ends[0] else {
        unreachable!()
    };
    out.add_domain(Instant::ZERO, &jid("a3.example")).unwrap();
    let [out, inc] = drive(&mut ends, &silent, Instant::ZERO);
    assert!(asked(&inc), "{inc:?}");
    assert!(authenticated(&out).is_empty(), "not before the answer");

    // Without TLS the certificate proves nothing: the verification is asked for even when
    // dialback without TLS is configured.
    let mut cfg = config(&["b.example"], true);
    cfg.tls = TlsPolicy::Optional;
    cfg.dialback_without_tls = true;
    let mut inc = S2sReceivingStream::new(cfg, SeededEntropy::new(2));
    inc.set_peer_identities(vec![PresentedId::Dns("a.example".into())]);
    inc.start(Instant::ZERO, Transport::Plain).unwrap();
    let (sent, events) = feed(
        &mut inc,
        &[
            &receiving_header("a.example", "b.example"),
            &db_result("a.example", "b.example", "abc"),
        ],
    );
    assert!(asked(&events), "{sent}");
    assert!(!sent.contains("type='valid'"), "{sent}");
}

#[test]
fn dialback_without_tls_only_when_configured() {
    let plain = |without_tls: bool| {
        let mut cfg = config(&[], true);
        cfg.tls = TlsPolicy::Disabled;
        cfg.sasl_external = false;
        cfg.dialback_without_tls = without_tls;
        cfg
    };
    let with_domains = |mut cfg: S2sConfig, domains: &[&str]| {
        cfg.local_domains = domains.iter().map(|d| jid(d)).collect();
        cfg
    };
    // Not configured: the initiating end does not even try; nothing is authenticated.
    let mut refused = ends(
        with_domains(plain(false), &["a.example"]),
        with_domains(plain(false), &["b.example"]),
        "",
    );
    let [out, _] = drive(&mut refused, &ANSWER, Instant::ZERO);
    assert!(authenticated(&out).is_empty());
    assert!(
        out.contains(&Event::Closed {
            reason: CloseReason::ServerNotAuthenticated
        }),
        "{out:?}"
    );
    // Configured on both ends: dialback over plain TCP.
    let mut ends = ends(
        with_domains(plain(true), &["a.example"]),
        with_domains(plain(true), &["b.example"]),
        "",
    );
    let [out, _] = drive(&mut ends, &ANSWER, Instant::ZERO);
    assert_eq!(authenticated(&out).len(), 1, "{out:?}");
    assert!(!ends[0].flags().contains(xmpp_stream::SessionFlags::SECURE));
}

#[test]
fn further_target_domains_share_the_connection_when_the_certificate_names_them() {
    let mut initiating = config(&["a.example", "a2.example"], true);
    initiating.sasl_external = false;
    let mut receiving = config(&["b.example", "b2.example", "b3.example"], true);
    receiving.sasl_external = false;
    let mut ends = ends(initiating, receiving, "");
    let AnyStream::S2sInitiating(out) = &mut ends[0] else {
        unreachable!()
    };
    out.set_peer_identities(vec![
        PresentedId::Dns("b.example".into()),
        PresentedId::Dns("b2.example".into()),
    ]);
    let _ = drive(&mut ends, &ANSWER, Instant::ZERO);
    let AnyStream::S2sInitiating(out) = &mut ends[0] else {
        unreachable!()
    };
    assert!(out.certifies(&jid("b2.example")) && !out.certifies(&jid("b3.example")));
    // b3.example is not in the peer's certificate: refused before anything is sent.
    assert!(
        out.add_pair(Instant::ZERO, &jid("a.example"), &jid("b3.example"))
            .is_err()
    );
    out.add_pair(Instant::ZERO, &jid("a.example"), &jid("b2.example"))
        .unwrap();
    out.add_pair(Instant::ZERO, &jid("a2.example"), &jid("b2.example"))
        .unwrap();
    assert!(
        out.add_pair(Instant::ZERO, &jid("a2.example"), &jid("b2.example"))
            .is_err(),
        "already asked for"
    );
    let [events, _] = drive(&mut ends, &ANSWER, Instant::ZERO);
    assert_eq!(authenticated(&events).len(), 2, "{events:?}");
    let message = stanza("<message xmlns='jabber:client' from='x@a2.example' to='y@b2.example'/>");
    ends[0].send_stanza(Instant::ZERO, &message).unwrap();
    let [_, inc] = drive(&mut ends, &ANSWER, Instant::ZERO);
    assert_eq!(stanzas(&inc).len(), 1, "{inc:?}");
    let AnyStream::S2sReceiving(inc) = &ends[1] else {
        unreachable!()
    };
    assert_eq!(inc.pairs().len(), 3);
}

#[test]
fn a_pair_still_being_verified_carries_no_stanza() {
    // Dialback piggybacking for a pair not yet verified: its stanzas are invalid-from until
    // the authoritative server said valid.
    let mut initiating = config(&["a.example", "a2.example"], true);
    initiating.sasl_external = false;
    let mut ends = ends_with(initiating);
    let _ = drive(&mut ends, &ANSWER, Instant::ZERO);
    let AnyStream::S2sReceiving(inc) = &mut ends[1] else {
        unreachable!()
    };
    let (_, events) = feed(
        inc,
        &[
            &db_result("a2.example", "b.example", "abc"),
            "<message from='x@a2.example' to='y@b.example'/>",
        ],
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::DialbackVerify { .. }))
    );
    assert!(stanzas(&events).is_empty());
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::InvalidFrom)
    );

    // An answer for a pair the initiating end never asked for: invalid-from.
    let mut initiating = config(&["a.example"], true);
    initiating.sasl_external = false;
    let mut ends = ends_with(initiating);
    let _ = drive(&mut ends, &ANSWER, Instant::ZERO);
    let AnyStream::S2sInitiating(out) = &mut ends[0] else {
        unreachable!()
    };
    let _ = out.handle_input(
        Instant::ZERO,
        b"<db:result from='b.example' to='a9.example' type='valid'/>",
    );
    let events = events_of(out);
    assert_eq!(
        closed_with(&events),
        Some(StreamErrorCondition::InvalidFrom)
    );
}

#[test]
fn db_verify_for_a_stream_id_we_never_issued_is_invalid() {
    // A key that is right for stream 'x1', asked about for 'x2' (a stream b.example never
    // opened): invalid, whatever the key.
    let secret = DialbackSecret::new(SECRET);
    let key = secret.key(
        &Domain::new("c.example").unwrap(),
        &Domain::new("b.example").unwrap(),
        &StreamId::new("x1").unwrap(),
    );
    let (sent, events) = feed(
        &mut receiving(),
        &[
            &receiving_header("c.example", "b.example"),
            &format!(
                "<db:verify from='c.example' to='b.example' id='x2'>{}</db:verify>",
                key.as_str()
            ),
        ],
    );
    assert!(
        sent.contains("type='invalid'") && sent.contains("id='x2'"),
        "{sent}"
    );
    assert_eq!(closed_with(&events), None);
}

/// The events among an initiating end's pending outputs.
fn events_of(out: &mut S2sInitiatingStream) -> Vec<Event> {
    std::iter::from_fn(|| out.poll_output())
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn bidi_adds_pairs_in_the_reverse_direction() {
    // XEP-0288 §3: a.example opened the bidirectional stream (EXTERNAL for a.example ->
    // b.example); b.example's server asks over the same connection for pairs of its own:
    // b2.example by dialback (a.example's side verifies the key with the authoritative server),
    // b3.example by its certificate (XEP-0344: nobody asked).
    let with_bidi = |mut config: S2sConfig| {
        config.bidi = true;
        config
    };
    let initiating = with_bidi(config(&["a.example"], true));
    let receiving = with_bidi(config(&["b.example", "b2.example", "b3.example"], true));
    let mut ends = ends(initiating, receiving, "a.example");
    let AnyStream::S2sInitiating(out) = &mut ends[0] else {
        unreachable!()
    };
    out.set_peer_identities(vec![
        PresentedId::Dns("b.example".into()),
        PresentedId::Dns("b3.example".into()),
    ]);
    let _ = drive(&mut ends, &ANSWER, Instant::ZERO);
    let AnyStream::S2sReceiving(inc) = &mut ends[1] else {
        unreachable!()
    };
    assert!(inc.is_bidi());
    let now = Instant::ZERO;
    assert!(
        inc.add_pair(now, &jid("z.example"), &jid("a.example"))
            .is_err(),
        "not ours"
    );
    assert!(
        inc.add_pair(now, &jid("b2.example"), &jid("c.example"))
            .is_err(),
        "the peer is not authoritative for c.example"
    );
    assert!(
        inc.add_pair(now, &jid("b.example"), &jid("a.example"))
            .is_err(),
        "already there"
    );
    inc.add_pair(now, &jid("b2.example"), &jid("a.example"))
        .unwrap();
    let [out, inc] = drive(&mut ends, &ANSWER, now);
    let asked: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            Event::DialbackVerify {
                originating,
                receiving,
                ..
            } => Some((originating.to_string(), receiving.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        vec![("b2.example".to_owned(), "a.example".to_owned())]
    );
    let pair = |l: &str, r: &str| (l.to_owned(), r.to_owned(), S2sAuthMethod::Dialback);
    assert_eq!(authenticated(&out), vec![pair("a.example", "b2.example")]);
    assert_eq!(authenticated(&inc), vec![pair("b2.example", "a.example")]);
    // The new pair carries stanzas both ways.
    let reply = stanza(
        "<message xmlns='jabber:client' from='dave@b2.example' to='alice@a.example' id='r2'/>",
    );
    ends[1].send_stanza(now, &reply).unwrap();
    let back = stanza(
        "<message xmlns='jabber:client' from='alice@a.example' to='dave@b2.example' id='r3'/>",
    );
    ends[0].send_stanza(now, &back).unwrap();
    let [out, inc] = drive(&mut ends, &ANSWER, now);
    assert_eq!(stanzas(&out).len(), 1, "{out:?}");
    assert_eq!(stanzas(&inc).len(), 1, "{inc:?}");

    // b3.example: named by b.example's certificate, valid without asking anybody.
    let silent = Host {
        outcome: None,
        answer: false,
    };
    let AnyStream::S2sReceiving(inc) = &mut ends[1] else {
        unreachable!()
    };
    inc.add_pair(now, &jid("b3.example"), &jid("a.example"))
        .unwrap();
    let [out, inc] = drive(&mut ends, &silent, now);
    assert!(
        !out.iter()
            .any(|e| matches!(e, Event::DialbackVerify { .. })),
        "{out:?}"
    );
    assert_eq!(authenticated(&inc), vec![pair("b3.example", "a.example")]);

    // An invalid key: refused, the stream and its pairs stay.
    let refuse = Host {
        outcome: Some(DialbackOutcome::Invalid),
        answer: true,
    };
    let initiating = with_bidi(config(&["a.example"], true));
    let receiving = with_bidi(config(&["b.example", "b2.example"], true));
    let mut ends = bidi_ends_with(initiating, receiving);
    let AnyStream::S2sReceiving(inc) = &mut ends[1] else {
        unreachable!()
    };
    inc.add_pair(now, &jid("b2.example"), &jid("a.example"))
        .unwrap();
    let [_, inc] = drive(&mut ends, &refuse, now);
    assert!(
        inc.contains(&Event::ServerRefused {
            local: jid("b2.example"),
            remote: jid("a.example")
        }),
        "{inc:?}"
    );
    assert!(ends.iter().all(AnyStream::is_negotiated));

    // Without bidi the receiving end asks for nothing.
    let mut ends = bidi_ends(false);
    let AnyStream::S2sReceiving(inc) = &mut ends[1] else {
        unreachable!()
    };
    assert!(
        inc.add_pair(now, &jid("b2.example"), &jid("a.example"))
            .is_err()
    );
}

/// Ends with these configurations, authenticated by EXTERNAL (certificate of a.example).
fn bidi_ends_with(initiating: S2sConfig, receiving: S2sConfig) -> [AnyStream; 2] {
    let mut ends = ends(initiating, receiving, "a.example");
    let _ = drive(&mut ends, &ANSWER, Instant::ZERO);
    assert!(ends.iter().all(AnyStream::is_negotiated));
    ends
}
