//! SASL EXTERNAL for clients (XEP-0178 §2) end to end: the example server with a client CA
//! (`--client-ca`) and xmpp-host's client presenting a certificate whose XmppAddr names the
//! account. The server offers EXTERNAL only for a certificate that chains to that CA, and
//! maps it to the account or answers `not-authorized`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::{loopback, runtime_config};
use xmpp_host::blocking::{ClientOptions, Connection};
use xmpp_host::tls::{Trust, Versions, client_config, client_config_with_certificate};
use xmpp_host::{Error, OsEntropy};
use xmpp_server::{HubConfig, ServerHandle, TlsMaterial};
use xmpp_stream::{
    BareJid, ClientConfig, ClientStream, CloseReason, Event, Mechanism, SaslCondition as Condition,
};
use xmpp_testpeers::{ServerCert, TestCa};

const DOMAIN: &str = "localhost";
const WAIT: Duration = Duration::from_secs(10);

fn server(client_ca: Option<&TestCa>) -> (ServerHandle, TlsMaterial) {
    let hub = HubConfig::new(BareJid::new(DOMAIN).unwrap()).with_user("alice", "alice-pw");
    let mut config = runtime_config(hub, DOMAIN);
    if let Some(ca) = client_ca {
        config.tls = config.tls.with_client_ca(ca.pem().as_bytes()).unwrap();
    }
    let tls = config.tls.clone();
    (
        ServerHandle::spawn_with(loopback(), None, config).unwrap(),
        tls,
    )
}

/// Connect as alice, presenting `certificate` if given, with these mechanisms; the
/// mechanism the server authenticated us with, or why the stream ended.
fn login(
    server: &(ServerHandle, TlsMaterial),
    certificate: Option<&ServerCert>,
    mechanisms: Vec<Mechanism>,
) -> Result<(Mechanism, String), Error> {
    let trust = Trust::Pem(server.1.cert_pem.clone().into_bytes());
    let tls = match certificate {
        Some(cert) => client_config_with_certificate(
            &trust,
            Versions::Any,
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
        )?,
        None => client_config(&trust, Versions::Any)?,
    };
    let options = ClientOptions::new(server.0.addr, DOMAIN, tls);
    let mut config = ClientConfig::new(BareJid::new("alice@localhost").unwrap(), "alice-pw");
    config.mechanisms = mechanisms;
    let mut client: Connection<ClientStream> =
        Connection::connect(&options, config, OsEntropy::new())?;
    let mut mechanism = None;
    loop {
        match client.next_event(WAIT)? {
            Some(Event::Authenticated { mechanism: m, .. }) => mechanism = Some(m),
            Some(Event::Negotiated { jid, .. }) => {
                return Ok((mechanism.unwrap(), jid.to_bare().to_string()));
            }
            Some(Event::Closed { reason }) => return Err(Error::from(reason)),
            Some(_) => {}
            None => return Err(Error::from(CloseReason::TransportClosed)),
        }
    }
}

fn closed_with(result: Result<(Mechanism, String), Error>) -> CloseReason {
    match result {
        Err(Error::Closed(reason)) => *reason,
        other => panic!("expected the stream to close, got {other:?}"),
    }
}

#[test]
fn xep0178_certificate_login_through_the_example_server() {
    let ca = TestCa::new("client CA").unwrap();
    let server = server(Some(&ca));
    let alice = ca.issue_client("alice@localhost").unwrap();
    // The certificate alone logs in, as the account its XmppAddr names.
    assert_eq!(
        login(&server, Some(&alice), vec![Mechanism::External]).unwrap(),
        (Mechanism::External, "alice@localhost".to_owned())
    );
    // A trusted certificate for an account this server does not have: not-authorized.
    let mallory = ca.issue_client("mallory@localhost").unwrap();
    assert_eq!(
        closed_with(login(&server, Some(&mallory), vec![Mechanism::External])),
        CloseReason::AuthenticationFailed {
            condition: Condition::NotAuthorized,
            text: None
        }
    );
    // A certificate from another CA: EXTERNAL is not offered, the password still works.
    let other_ca = TestCa::new("someone else").unwrap();
    let forged = other_ca.issue_client("alice@localhost").unwrap();
    assert_eq!(
        closed_with(login(&server, Some(&forged), vec![Mechanism::External])),
        CloseReason::NoMechanism
    );
    assert_eq!(
        login(
            &server,
            Some(&forged),
            vec![Mechanism::External, Mechanism::ScramSha256]
        )
        .unwrap()
        .0,
        Mechanism::ScramSha256
    );
    // No certificate: no EXTERNAL.
    assert_eq!(
        closed_with(login(&server, None, vec![Mechanism::External])),
        CloseReason::NoMechanism
    );
}

#[test]
fn xep0178_no_external_without_a_client_ca() {
    let ca = TestCa::new("client CA").unwrap();
    let server = server(None);
    let alice = ca.issue_client("alice@localhost").unwrap();
    assert_eq!(
        closed_with(login(&server, Some(&alice), vec![Mechanism::External])),
        CloseReason::NoMechanism
    );
}
