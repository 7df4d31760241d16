//! Regressions found by the s2s fuzz targets (fuzz/fuzz_targets/s2s_receiving.rs and
//! s2s_initiating.rs), each the smallest input that shows the fault through the public API.
//! Both faults are fixed (nothing is transmitted after `Closed`, and the `closing.s2s-ignore`
//! row drops a peer's stanzas on a closing initiating s2s stream); the tests keep them fixed.
#![allow(clippy::unwrap_used, clippy::panic)]

use core::time::Duration;

use xmpp_stream::dialback::DialbackSecret;
use xmpp_stream::{
    BareJid, Event, Instant, Output, S2sConfig, S2sInitiatingStream, S2sReceivingStream,
    SeededEntropy, Transport,
};

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

const HEADER: &str = "<stream:stream xmlns='jabber:server' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
    from='a.example' to='b.example' version='1.0'>";

/// A receiving end for b.example on direct TLS with dialback on.
fn receiving() -> S2sReceivingStream {
    let mut config = S2sConfig::new(vec![jid("b.example")]);
    config.dialback_secret = Some(DialbackSecret::new(b"secret"));
    let mut inc = S2sReceivingStream::new(config, SeededEntropy::new(2));
    inc.start(Instant::ZERO, Transport::Tls(Vec::new()))
        .unwrap();
    inc
}

/// Everything queued, in order.
fn drain(inc: &mut S2sReceivingStream) -> Vec<Output> {
    std::iter::from_fn(|| inc.poll_output()).collect()
}

/// Found by `s2s_receiving` (a stream closed by a protocol error while a dialback
/// verification was pending, then a clock jump past the verification's deadline): the
/// deadline still answers the peer's `<db:result/>` with `remote-server-timeout`, a
/// `Transmit` after `Event::Closed`. Nothing may follow `Closed` (the same rule as for every
/// stream kind: fuzz/README.md). The cause, as read: `Machine::handle_timeout` calls
/// `steps::s2s::on_timeout` on a closed stream, and closing does not clear `S2sSide::pending`.
#[test]
fn nothing_after_closed_when_a_pending_verification_expires() {
    let mut inc = receiving();
    let _ = inc.handle_input(Instant::ZERO, HEADER.as_bytes());
    let _ = inc.handle_input(
        Instant::ZERO,
        format!(
            "<db:result from='a.example' to='b.example'>{}</db:result>",
            "ab".repeat(32)
        )
        .as_bytes(),
    );
    let outputs = drain(&mut inc);
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Event(Event::DialbackVerify { .. }))),
        "{outputs:?}"
    );
    // A protocol error while the verification is pending (not-well-formed): Closed.
    assert!(inc.handle_input(Instant::ZERO, b"<<").is_err());
    let outputs = drain(&mut inc);
    assert!(
        matches!(outputs.last(), Some(Output::Event(Event::Closed { .. }))),
        "{outputs:?}"
    );
    assert!(inc.is_closed());
    assert_eq!(inc.poll_timeout(), None);
    // The host's clock passes the verification's deadline.
    inc.handle_timeout(Instant::ZERO + Duration::from_secs(60));
    let after: Vec<String> = drain(&mut inc)
        .into_iter()
        .map(|output| match output {
            Output::Transmit(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    assert!(after.is_empty(), "output after Closed: {after:?}");
}

/// An initiating end for a.example -> b.example on direct TLS, established by dialback.
fn initiating_established() -> S2sInitiatingStream {
    let mut config = S2sConfig::new(vec![jid("a.example")]);
    config.dialback_secret = Some(DialbackSecret::new(b"secret"));
    let mut out = S2sInitiatingStream::new(
        config,
        jid("a.example"),
        jid("b.example"),
        SeededEntropy::new(1),
    );
    out.start(Instant::ZERO, Transport::Tls(Vec::new()))
        .unwrap();
    for input in [
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
         xmlns:db='jabber:server:dialback' from='b.example' to='a.example' id='s1' version='1.0'>",
        "<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>\
         </stream:features>",
        "<db:result from='b.example' to='a.example' type='valid'/>",
    ] {
        out.handle_input(Instant::ZERO, input.as_bytes()).unwrap();
    }
    while out.poll_output().is_some() {}
    assert!(out.is_negotiated());
    out
}

/// Found by `s2s_initiating`: once the host closed an initiating s2s stream, a stanza the
/// peer sends before its own `</stream:stream>` is reported as `Event::Stanza`, with no check
/// at all: against the direction (an established initiating stream refuses it with
/// `unsupported-stanza-type`, rule `s2s.no-bidi`) and from a domain no pair authenticates. The
/// cause, as read: the row `closing.stanza` (`Kinds::ALL`, `Roles::Initiating`, `Step::Done`,
/// `steps::established::while_closing`) applies to s2s streams too.
#[test]
fn no_stanza_from_the_peer_while_an_initiating_stream_closes() {
    let mut out = initiating_established();
    out.close(Instant::ZERO).unwrap();
    while out.poll_output().is_some() {}
    let _ = out.handle_input(
        Instant::ZERO,
        b"<message from='eve@evil.example' to='alice@a.example'><body>x</body></message>",
    );
    let stanzas: Vec<Output> = std::iter::from_fn(|| out.poll_output())
        .filter(|o| matches!(o, Output::Event(Event::Stanza(_))))
        .collect();
    assert!(stanzas.is_empty(), "{stanzas:?}");
}
