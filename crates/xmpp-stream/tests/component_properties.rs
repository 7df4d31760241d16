//! Property tests for XEP-0114 components: a recorded session (handshake, stanzas both ways,
//! a stanza error, a close), fed to either end in any chunking, yields the same events and
//! bytes as fed whole; arbitrary bytes after any prefix of it never panic and errors stick.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use minidom::Element;
use proptest::prelude::*;
use xmpp_stream::{
    AnyStream, BareJid, CloseReason, ComponentConfig, ComponentServerConfig, ComponentServerStream,
    ComponentStream, Event, Instant, MemoryComponents, Output, SeededEntropy, Transport,
};

const SECRET: &str = "s3cr3t";

fn domain() -> BareJid {
    BareJid::new("comp.example.com").unwrap()
}

/// Which end a machine is.
#[derive(Clone, Copy, Debug)]
enum End {
    Component,
    Server,
}

/// A fresh, started machine of `end`. Same seeds every time: the server's stream id, and so
/// the component's handshake, are the recorded ones.
fn machine(end: End) -> AnyStream {
    let mut machine: AnyStream = match end {
        End::Component => ComponentStream::new(
            ComponentConfig::new(domain(), SECRET),
            SeededEntropy::new(21),
        )
        .into(),
        End::Server => ComponentServerStream::new(
            ComponentServerConfig::new(),
            SeededEntropy::new(22),
            MemoryComponents::new().with_component(domain(), SECRET),
        )
        .into(),
    };
    machine.start(Instant::ZERO, Transport::Plain).unwrap();
    machine
}

fn stanza(xml: &str) -> Element {
    xml.parse().unwrap()
}

/// The bytes each end received in one whole session.
struct Recording {
    to_component: Vec<u8>,
    to_server: Vec<u8>,
}

/// Moves bytes between the two ends until both are quiet, recording them.
fn pump(component: &mut AnyStream, server: &mut AnyStream, rec: &mut Recording) {
    loop {
        let mut moved = false;
        while let Some(out) = component.poll_output() {
            moved = true;
            if let Output::Transmit(bytes) = out {
                rec.to_server.extend_from_slice(&bytes);
                server.handle_input(Instant::ZERO, &bytes).unwrap();
            }
        }
        while let Some(out) = server.poll_output() {
            moved = true;
            if let Output::Transmit(bytes) = out {
                rec.to_component.extend_from_slice(&bytes);
                component.handle_input(Instant::ZERO, &bytes).unwrap();
            }
        }
        if !moved {
            return;
        }
    }
}

/// Records a session between our two ends: the handshake; the component sends a message, a
/// presence from a subdomain, a message to a malformed address (answered with a
/// `jid-malformed` error) and an iq; the server routes a user's message (in
/// `jabber:client`) to the component; the component closes.
fn recording() -> &'static Recording {
    static RECORDING: OnceLock<Recording> = OnceLock::new();
    RECORDING.get_or_init(|| {
        let mut component = machine(End::Component);
        let mut server = machine(End::Server);
        let mut rec = Recording {
            to_component: Vec::new(),
            to_server: Vec::new(),
        };
        pump(&mut component, &mut server, &mut rec);
        assert!(component.is_negotiated() && server.is_negotiated());
        for xml in [
            "<message xmlns='jabber:component:accept' from='bot@comp.example.com' \
             to='juliet@example.com' id='m1'><body>hi</body></message>",
            "<presence xmlns='jabber:component:accept' from='rooms.comp.example.com' \
             to='juliet@example.com/balcony'/>",
            "<message xmlns='jabber:component:accept' from='bot@comp.example.com' to='a@b@c' \
             id='m2'><body>lost</body></message>",
            "<iq xmlns='jabber:component:accept' from='comp.example.com' to='example.com' \
             type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>",
        ] {
            component.send_stanza(Instant::ZERO, &stanza(xml)).unwrap();
        }
        server
            .send_stanza(
                Instant::ZERO,
                &stanza(
                    "<message xmlns='jabber:client' from='juliet@example.com/balcony' \
                     to='bot@comp.example.com' id='u1'><body>hello</body></message>",
                ),
            )
            .unwrap();
        pump(&mut component, &mut server, &mut rec);
        component.close(Instant::ZERO).unwrap();
        pump(&mut component, &mut server, &mut rec);
        assert!(component.is_closed() && server.is_closed());
        rec
    })
}

/// The bytes `end` receives in the recorded session.
fn input_of(end: End) -> &'static [u8] {
    let rec = recording();
    match end {
        End::Component => &rec.to_component,
        End::Server => &rec.to_server,
    }
}

/// Everything a machine output: transmissions concatenated (their split is not part of the
/// contract), events in order, and the errors its inputs returned.
#[derive(Debug, PartialEq)]
struct Outcome {
    bytes: Vec<u8>,
    events: Vec<Event>,
    errors: Vec<String>,
}

fn feed(end: End, cuts: &[usize]) -> Outcome {
    let input = input_of(end);
    let mut machine = machine(end);
    let mut outcome = Outcome {
        bytes: Vec::new(),
        events: Vec::new(),
        errors: Vec::new(),
    };
    let drain = |m: &mut AnyStream, o: &mut Outcome| {
        while let Some(out) = m.poll_output() {
            match out {
                Output::Transmit(b) => o.bytes.extend(b),
                Output::Event(e) => o.events.push(e),
                other => panic!("no component end outputs {other:?}"),
            }
        }
    };
    drain(&mut machine, &mut outcome);
    for piece in split(input, cuts) {
        if let Err(e) = machine.handle_input(Instant::ZERO, piece) {
            outcome.errors.push(e.to_string());
        }
        drain(&mut machine, &mut outcome);
    }
    outcome
}

/// Split points for `end`'s input: any increasing subsequence of its positions.
fn cuts(end: End) -> impl Strategy<Value = Vec<usize>> {
    let positions: Vec<usize> = (1..input_of(end).len()).collect();
    proptest::sample::subsequence(positions, 0..40)
}

/// `input` cut at the increasing positions `cuts`.
fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let bounds: Vec<usize> = core::iter::once(0)
        .chain(cuts.iter().copied())
        .chain(core::iter::once(input.len()))
        .collect();
    bounds.windows(2).map(|w| &input[w[0]..w[1]]).collect()
}

/// The session fed whole, checked once: what the chunked runs are compared against.
fn whole(end: End) -> &'static Outcome {
    static COMPONENT: OnceLock<Outcome> = OnceLock::new();
    static SERVER: OnceLock<Outcome> = OnceLock::new();
    let cell = match end {
        End::Component => &COMPONENT,
        End::Server => &SERVER,
    };
    cell.get_or_init(|| {
        let outcome = feed(end, &[]);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let negotiated = Event::ComponentNegotiated { domain: domain() };
        assert!(outcome.events.contains(&negotiated), "{:?}", outcome.events);
        let stanzas = outcome
            .events
            .iter()
            .filter(|e| matches!(e, Event::Stanza(_)))
            .count();
        // The server end gets the three good stanzas (the one to `a@b@c` is answered); the
        // component the user's message and the jid-malformed error.
        let expected = match end {
            End::Component => 2,
            End::Server => 3,
        };
        assert_eq!(stanzas, expected, "{end:?}: {:?}", outcome.events);
        assert_eq!(
            outcome.events.last(),
            Some(&Event::Closed {
                reason: CloseReason::Graceful
            })
        );
        outcome
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The server's bytes, split anywhere, give the component end the same bytes and events
    /// as delivered whole (the component's own bytes are deterministic, so the recorded
    /// answers stay valid).
    #[test]
    fn component_end_is_chunking_invariant(cuts in cuts(End::Component)) {
        prop_assert_eq!(&feed(End::Component, &cuts), whole(End::Component));
    }

    /// The component's bytes, split anywhere, give the server end the same bytes and events.
    #[test]
    fn server_end_is_chunking_invariant(cuts in cuts(End::Server)) {
        prop_assert_eq!(&feed(End::Server, &cuts), whole(End::Server));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any prefix of the session then arbitrary bytes, to either end: no panic; an error
    /// ends in `Closed` and every later input returns the same error; nothing after `Closed`.
    #[test]
    fn junk_after_any_prefix_is_survived(
        server_end in any::<bool>(),
        prefix in any::<usize>(),
        junk in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let end = if server_end { End::Server } else { End::Component };
        let input = input_of(end);
        let mut machine = machine(end);
        let mut closed = false;
        let drain = |m: &mut AnyStream, closed: &mut bool| -> Result<(), TestCaseError> {
            while let Some(out) = m.poll_output() {
                prop_assert!(!*closed, "output after Closed: {:?}", out);
                *closed |= matches!(out, Output::Event(Event::Closed { .. }));
            }
            Ok(())
        };
        let _ = machine.handle_input(Instant::ZERO, &input[..prefix % (input.len() + 1)]);
        drain(&mut machine, &mut closed)?;
        let first = machine.handle_input(Instant::from_millis(1), &junk);
        drain(&mut machine, &mut closed)?;
        machine.handle_timeout(Instant::from_millis(u64::MAX / 2));
        drain(&mut machine, &mut closed)?;
        if let Err(e) = first {
            prop_assert!(closed, "an error without Closed");
            prop_assert_eq!(machine.handle_input(Instant::from_millis(2), b"<x/>"), Err(e));
        }
    }
}
