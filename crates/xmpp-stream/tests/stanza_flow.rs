//! The server's stanza path after negotiation (issue 5): `from` stamping and checks, `to`
//! validation, and stanzas processed as the host polls without changing what the host sees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, OnceLock};

use minidom::Element;
use xmpp_sasl::{Condition, CredentialStore, PasswordPrep, ScramHash, StoredCredentials};
use xmpp_stream::{
    BareJid, CloseReason, Event, Instant, Output, SeededEntropy, ServerBackend, ServerConfig,
    ServerStream, StreamErrorCondition, TlsPolicy, Transport,
};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";
const RESTART: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>";
/// SASL PLAIN for juliet (`\0juliet\0r0m30myr0m30`).
const AUTH_PLAIN: &str = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>\
    AGp1bGlldAByMG0zMG15cjBtMzA=</auth>";
const BIND: &str = "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
    <resource>balcony</resource></bind></iq>";
const FULL: &str = "juliet@im.example.com/balcony";

struct OneUser(Vec<StoredCredentials>);

impl CredentialStore for OneUser {
    fn scram_credentials(
        &self,
        authcid: &str,
        hash: ScramHash,
    ) -> Result<Option<StoredCredentials>, Condition> {
        Ok((authcid == "juliet")
            .then(|| self.0.iter().find(|c| c.hash() == hash).cloned())
            .flatten())
    }
}

impl ServerBackend for OneUser {}

fn store() -> Arc<OneUser> {
    static STORE: OnceLock<Arc<OneUser>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let creds = ScramHash::ALL
                .iter()
                .map(|h| {
                    StoredCredentials::derive(
                        *h,
                        "r0m30myr0m30",
                        PasswordPrep::SaslPrep,
                        b"salt",
                        4096,
                    )
                    .unwrap()
                })
                .collect();
            Arc::new(OneUser(creds))
        })
        .clone()
}

/// A server negotiated over PLAIN (no TLS) with every output drained.
fn negotiated() -> ServerStream {
    let mut config = ServerConfig::new(BareJid::new("im.example.com").unwrap());
    config.tls = TlsPolicy::Disabled;
    config.allow_plain_without_tls = true;
    let mut server = ServerStream::new(config, SeededEntropy::new(2), store());
    server.start(Instant::ZERO, Transport::Plain).unwrap();
    for step in [HEADER, AUTH_PLAIN, RESTART, BIND] {
        server.handle_input(Instant::ZERO, step.as_bytes()).unwrap();
        while server.poll_output().is_some() {}
    }
    assert!(server.is_negotiated());
    server
}

fn drain(server: &mut ServerStream) -> Vec<Output> {
    std::iter::from_fn(|| server.poll_output()).collect()
}

fn stanzas(outputs: &[Output]) -> Vec<&Element> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::Stanza(s)) => Some(s),
            _ => None,
        })
        .collect()
}

#[test]
fn from_is_stamped_checked_and_kept_when_already_the_full_jid() {
    let mut server = negotiated();
    let input = format!(
        "<message id='a' to='romeo@example.net'/>\
         <message id='b' from='{FULL}' to='romeo@example.net'/>\
         <message id='c' from='Juliet@IM.example.com' to='romeo@example.net'/>\
         <message id='d' from='JULIET@im.example.com/balcony'/>"
    );
    server
        .handle_input(Instant::ZERO, input.as_bytes())
        .unwrap();
    let outputs = drain(&mut server);
    let got: Vec<_> = stanzas(&outputs)
        .iter()
        .map(|s| (s.attr("id").unwrap(), s.attr("from").unwrap()))
        .collect();
    // Absent, exact, bare JID in another case, full JID in another case: all become the
    // bound full JID.
    assert_eq!(got, [("a", FULL), ("b", FULL), ("c", FULL), ("d", FULL)]);
    assert!(!server.is_closed());
}

#[test]
fn invalid_to_gets_jid_malformed_and_error_stanzas_get_nothing() {
    let mut server = negotiated();
    server
        .handle_input(
            Instant::ZERO,
            b"<message id='x' to='a@@b'/><message id='y' type='error' to='a@@b'/>\
              <message id='z' to='nurse@im.example.com'/>",
        )
        .unwrap();
    let outputs = drain(&mut server);
    let wire: Vec<u8> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let wire = String::from_utf8(wire).unwrap();
    assert_eq!(wire.matches("jid-malformed").count(), 1, "{wire}");
    assert!(
        wire.contains("id='x'") && !wire.contains("id='y'"),
        "{wire}"
    );
    let ids: Vec<_> = stanzas(&outputs).iter().map(|s| s.attr("id")).collect();
    assert_eq!(ids, [Some("z")]);
}

#[test]
fn stanzas_pending_when_the_transport_closes_are_still_delivered() {
    // The host reads three stanzas and the end of the connection, and reports both before
    // polling: the stanzas come first, then `Closed`, as if each had been processed at once.
    let mut server = negotiated();
    server
        .handle_input(
            Instant::ZERO,
            b"<message id='1'/><message id='2'/><presence id='3'/>",
        )
        .unwrap();
    server.transport_closed(Instant::ZERO);
    let outputs = drain(&mut server);
    let ids: Vec<_> = stanzas(&outputs).iter().map(|s| s.attr("id")).collect();
    assert_eq!(ids, [Some("1"), Some("2"), Some("3")]);
    assert!(matches!(
        outputs.last(),
        Some(Output::Event(Event::Closed {
            reason: CloseReason::TransportClosed
        }))
    ));
}

#[test]
fn an_error_after_stanzas_in_one_read_keeps_them_and_is_sticky() {
    let mut server = negotiated();
    // Polled one by one: the stanzas before the spoofed `from` are delivered, then the stream
    // error, then `Closed`; the error is returned by every later input.
    let first = server.handle_input(
        Instant::ZERO,
        b"<message id='1'/><message id='2'/><message id='3' from='romeo@example.net'/>\
          <message id='4'/>",
    );
    let outputs = drain(&mut server);
    let ids: Vec<_> = stanzas(&outputs).iter().map(|s| s.attr("id")).collect();
    assert_eq!(ids, [Some("1"), Some("2")]);
    let Some(Output::Event(Event::Closed {
        reason: CloseReason::ProtocolError(error),
    })) = outputs.last()
    else {
        panic!("no Closed: {outputs:?}");
    };
    assert_eq!(error.condition(), StreamErrorCondition::InvalidFrom);
    if let Err(e) = &first {
        assert_eq!(e, error);
    }
    assert_eq!(
        server.handle_input(Instant::ZERO, b"<presence/>"),
        Err(error.clone())
    );
    assert!(server.poll_output().is_none());
}

#[test]
fn unpolled_input_is_finished_before_a_command() {
    // A host that feeds input and then sends before polling sees the replies to the input
    // first, exactly as before stanzas were processed lazily.
    let mut server = negotiated();
    server
        .handle_input(
            Instant::ZERO,
            b"<message id='1' to='a@@b'/><message id='2'/>",
        )
        .unwrap();
    let reply = Element::builder("message", "jabber:client")
        .attr("id".try_into().unwrap(), "ours")
        .build();
    server.send_stanza(Instant::ZERO, &reply).unwrap();
    let outputs = drain(&mut server);
    let order: Vec<String> = outputs
        .iter()
        .map(|o| match o {
            Output::Transmit(b) => String::from_utf8_lossy(b).into_owned(),
            Output::Event(Event::Stanza(s)) => format!("stanza {}", s.attr("id").unwrap()),
            other => format!("{other:?}"),
        })
        .collect();
    let malformed = order
        .iter()
        .position(|o| o.contains("jid-malformed"))
        .unwrap();
    let stanza = order.iter().position(|o| o == "stanza 2").unwrap();
    let ours = order.iter().position(|o| o.contains("id='ours'")).unwrap();
    assert!(malformed < stanza && stanza < ours, "{order:?}");
}
